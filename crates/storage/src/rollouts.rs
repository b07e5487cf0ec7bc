//! Staged roll-outs of policy changes (`printfleet_domain::policy::rollout`): starting one
//! before the change is saved (so no printer can get the change ahead of its wave), the gate
//! remediation passes through (`assessment::remediate` asks [`RolloutGate`] which printers may
//! get a change now), the outcomes printers acknowledge, the driver that finishes waves,
//! releases the next or halts, and the admin's resume, cancel and rollback.
//!
//! A printer's wave is fixed when the roll-out starts, from the fleet the policy reaches then
//! (`rollout_devices`); a printer the policy reaches later joins the last wave. While a
//! roll-out is active or halted it gates every version of the policy after the one it started
//! from; a cancelled one gates only its own version.

use crate::audit::{tenant_chain, AuditEvent, WriteTx};
use crate::codec::{from_json, in_list_from, parse_id, to_json};
use crate::policies::PolicyWrite;
use crate::{Store, StoreError};
use printfleet_domain::audit::AuditAction;
use printfleet_domain::context::Actor;
use printfleet_domain::policy::rollout::{
    self, Canary, Command, HaltReason, HaltedPrinter, RolloutPlan, RolloutState, WaveTally,
    WaveVerdict,
};
use printfleet_domain::policy::{PolicyItem, PolicyMode};
use printfleet_domain::{Ctx, DeviceId, GroupId, Permission, PolicyId, TenantId, ValidationError};
use sqlx::Row;
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use crate::assessment::{RemediationStep, StoredItem, ToSend};
use printfleet_domain::policy::ItemStatus;

/// A roll-out as the API shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct RolloutRecord {
    pub id: String,
    pub policy: PolicyId,
    pub base_version: i64,
    pub version: Option<i64>,
    pub plan: RolloutPlan,
    pub state: RolloutState,
    pub released_wave: usize,
    pub wave_released_at_ms: i64,
    pub halt_reason: Option<HaltReason>,
    pub rollback_version: Option<i64>,
    pub created_by: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    /// Per wave (0: the canary).
    pub waves: Vec<WaveTally>,
}

/// What one drive of a roll-out did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Driven {
    /// The released wave is still running.
    Running,
    /// This wave was released (mark its printers: the assessor sends to them next).
    Released(usize),
    Halted,
    Completed,
}

const SELECT: &str = "SELECT id, policy_id, base_version, version, plan, state, released_wave, wave_released_at, halt_reason, rollback_version, created_by, created_at, updated_at, base_mode FROM rollouts";

/// A roll-out whose change is not saved this long after it started is cancelled by the driver.
const UNBOUND_GRACE_MS: i64 = 10 * 60_000;

/// Members read and updated per statement.
const IDS_PER_QUERY: usize = 100;
/// Printers named in a halt reason.
const HALT_PRINTERS: i64 = 20;

struct Row0 {
    rec: RolloutRecord,
    base_mode: PolicyMode,
}

fn row(r: &sqlx::any::AnyRow) -> Result<Row0, StoreError> {
    let state: String = r.try_get(5)?;
    let released: i64 = r.try_get(6)?;
    let halt: Option<String> = r.try_get(8)?;
    let mode: String = r.try_get(13)?;
    Ok(Row0 {
        rec: RolloutRecord {
            id: r.try_get(0)?,
            policy: parse_id("rollouts.policy_id", &r.try_get::<String, _>(1)?)?,
            base_version: r.try_get(2)?,
            version: r.try_get(3)?,
            plan: from_json("rollouts.plan", &r.try_get::<String, _>(4)?)?,
            state: RolloutState::parse(&state)
                .ok_or_else(|| StoreError::Corrupt("rollouts.state".into()))?,
            released_wave: usize::try_from(released)
                .map_err(|_| StoreError::Corrupt("rollouts.released_wave".into()))?,
            wave_released_at_ms: r.try_get(7)?,
            halt_reason: halt
                .map(|h| from_json("rollouts.halt_reason", &h))
                .transpose()?,
            rollback_version: r.try_get(9)?,
            created_by: r.try_get(10)?,
            created_at_ms: r.try_get(11)?,
            updated_at_ms: r.try_get(12)?,
            waves: Vec::new(),
        },
        base_mode: PolicyMode::parse(&mode)
            .ok_or_else(|| StoreError::Corrupt("rollouts.base_mode".into()))?,
    })
}

fn wave_i64(w: usize) -> i64 {
    i64::try_from(w).unwrap_or(i64::MAX)
}

/// One roll-out that gates remediation, as the gate needs it.
struct Gate {
    id: String,
    policy: PolicyId,
    base_version: i64,
    version: Option<i64>,
    state: RolloutState,
    released_wave: usize,
    last_wave: usize,
}

impl Gate {
    fn applies(&self, version: i64) -> bool {
        match self.state {
            RolloutState::Active | RolloutState::Halted => version > self.base_version,
            RolloutState::Cancelled => self.version == Some(version),
            _ => false,
        }
    }

    /// Whether the roll-out counts printers' compliance with `version` (also once completed).
    fn tracks(&self, version: i64) -> bool {
        match self.state {
            RolloutState::Active | RolloutState::Halted => version > self.base_version,
            RolloutState::Completed | RolloutState::Cancelled => self.version == Some(version),
            RolloutState::RolledBack => false,
        }
    }
}

/// The roll-outs gating one batch of remediation and the batch's printers' places in them.
#[derive(Default)]
pub(crate) struct RolloutGate {
    gates: Vec<Gate>,
    /// (gate index, printer) → (wave, status).
    members: BTreeMap<(usize, DeviceId), (usize, String)>,
    /// (gate index, printer) → the work item sent for the change.
    sent: BTreeMap<(usize, DeviceId), String>,
}

impl RolloutGate {
    fn gate_of(&self, policy: PolicyId, version: i64) -> Option<usize> {
        self.gates
            .iter()
            .position(|g| g.policy == policy && g.applies(version))
    }

    fn wave_of(&self, gi: usize, d: DeviceId) -> usize {
        self.members
            .get(&(gi, d))
            .map(|(w, _)| *w)
            .unwrap_or(self.gates[gi].last_wave)
    }

    /// What of `by_policy` may be sent to `d` now, and why the rest is held back.
    pub(crate) fn split<'a>(
        &self,
        d: DeviceId,
        by_policy: &'a ToSend,
    ) -> (Cow<'a, ToSend>, Option<String>) {
        if self.gates.is_empty() {
            return (Cow::Borrowed(by_policy), None);
        }
        let mut keep = ToSend::new();
        let mut held = None;
        for ((p, v), items) in by_policy {
            match self.gate_of(*p, *v) {
                None => {
                    keep.insert((*p, *v), items.clone());
                }
                Some(gi) => {
                    let g = &self.gates[gi];
                    let wave = self.wave_of(gi, d);
                    if g.state.stops_sending() {
                        held = Some(format!(
                            "roll-out {} is {}: nothing is sent for version {v}",
                            g.id,
                            g.state.as_str()
                        ));
                    } else if wave > g.released_wave {
                        held = Some(format!(
                            "waiting for wave {wave} of roll-out {} (version {v})",
                            g.id
                        ));
                    } else {
                        keep.insert((*p, *v), items.clone());
                    }
                }
            }
        }
        (Cow::Owned(keep), held)
    }

    /// `d` was sent `work` for (`policy`, `version`).
    pub(crate) fn sent(&mut self, d: DeviceId, policy: PolicyId, version: i64, work: &str) {
        if let Some(gi) = self.gate_of(policy, version) {
            self.sent.insert((gi, d), work.to_string());
        }
    }
}

impl Store {
    /// The roll-outs gating remediation in tenant `t` (and completed ones of a policy's current
    /// version, whose compliance is still counted) and where `devices` are in them. Costs one
    /// query when there are none.
    pub(crate) async fn rollout_gate(
        &self,
        w: &mut WriteTx,
        t: TenantId,
        devices: &[DeviceId],
    ) -> Result<RolloutGate, StoreError> {
        let rows = sqlx::query(&format!(
            "{SELECT} r WHERE r.tenant_id = $1 AND (r.state IN ('active', 'halted') OR (r.state IN ('cancelled', 'completed') AND r.version = (SELECT current_version FROM policies p WHERE p.tenant_id = r.tenant_id AND p.id = r.policy_id)))"
        ))
        .bind(t.to_string())
        .fetch_all(&mut *w.tx)
        .await?;
        let mut gate = RolloutGate::default();
        for r in &rows {
            let r = row(r)?.rec;
            gate.gates.push(Gate {
                last_wave: r.plan.last_wave(),
                id: r.id,
                policy: r.policy,
                base_version: r.base_version,
                version: r.version,
                state: r.state,
                released_wave: r.released_wave,
            });
        }
        for (gi, g) in gate.gates.iter().enumerate() {
            for chunk in devices.chunks(IDS_PER_QUERY) {
                let sql = format!(
                    "SELECT device_id, wave, status FROM rollout_devices WHERE tenant_id = $1 AND rollout_id = $2 AND device_id IN ({})",
                    in_list_from(3, chunk.len())
                );
                let mut q = sqlx::query(&sql).bind(t.to_string()).bind(&g.id);
                for d in chunk {
                    q = q.bind(d.to_string());
                }
                for r in q.fetch_all(&mut *w.tx).await? {
                    let d: DeviceId =
                        parse_id("rollout_devices.device_id", &r.try_get::<String, _>(0)?)?;
                    let wave = usize::try_from(r.try_get::<i64, _>(1)?)
                        .map_err(|_| StoreError::Corrupt("rollout_devices.wave".into()))?;
                    gate.members.insert((gi, d), (wave, r.try_get(2)?));
                }
            }
        }
        Ok(gate)
    }

    /// After a batch's remediation: records the work sent for gated changes, which released
    /// printers need nothing (or nothing more), and adds printers the roll-out did not know.
    pub(crate) async fn rollout_record(
        &self,
        w: &mut WriteTx,
        t: TenantId,
        gate: &RolloutGate,
        steps: &[(DeviceId, &RemediationStep, &str)],
        now: i64,
    ) -> Result<(), StoreError> {
        if gate.gates.is_empty() {
            return Ok(());
        }
        let mut out_of_line: Vec<BTreeSet<(PolicyId, i64)>> = Vec::with_capacity(steps.len());
        for (_, _, items) in steps {
            let items: Vec<StoredItem> = from_json("device_compliance.items", items)?;
            out_of_line.push(
                items
                    .iter()
                    .filter(|i| {
                        i.item.status == ItemStatus::NonCompliant && i.mode == PolicyMode::Remediate
                    })
                    .map(|i| (i.policy, i.version))
                    .collect(),
            );
        }
        for (gi, g) in gate.gates.iter().enumerate() {
            for ((d, _, _), out) in steps.iter().zip(&out_of_line) {
                // Out of line with the change under a remediating policy.
                let needs = out.iter().any(|(p, v)| *p == g.policy && g.tracks(*v));
                let member = gate.members.get(&(gi, *d));
                if member.is_none() {
                    let gating = matches!(g.state, RolloutState::Active | RolloutState::Halted);
                    if !needs || !gating {
                        continue;
                    }
                    // Reached since the roll-out started: the last wave.
                    let status = if g.last_wave <= g.released_wave {
                        "pending"
                    } else {
                        "waiting"
                    };
                    sqlx::query(
                        "INSERT INTO rollout_devices (tenant_id, rollout_id, device_id, wave, status, compliant) VALUES ($1, $2, $3, $4, $5, 0)",
                    )
                    .bind(t.to_string())
                    .bind(&g.id)
                    .bind(d.to_string())
                    .bind(wave_i64(g.last_wave))
                    .bind(status)
                    .execute(&mut *w.tx)
                    .await?;
                }
                let sent = gate.sent.get(&(gi, *d));
                let q = if let Some(work) = sent {
                    sqlx::query(
                        "UPDATE rollout_devices SET status = CASE WHEN status IN ('pending', 'not_needed', 'skipped', 'waiting') THEN 'sent' ELSE status END, work_id = $4, sent_at = $5, compliant = 0 WHERE tenant_id = $1 AND rollout_id = $2 AND device_id = $3",
                    )
                    .bind(t.to_string())
                    .bind(&g.id)
                    .bind(d.to_string())
                    .bind(work.as_str())
                    .bind(now)
                } else if needs {
                    sqlx::query(
                        "UPDATE rollout_devices SET compliant = 0 WHERE tenant_id = $1 AND rollout_id = $2 AND device_id = $3 AND compliant <> 0",
                    )
                    .bind(t.to_string())
                    .bind(&g.id)
                    .bind(d.to_string())
                } else {
                    sqlx::query(
                        "UPDATE rollout_devices SET compliant = 1, status = CASE WHEN status = 'pending' THEN 'not_needed' ELSE status END WHERE tenant_id = $1 AND rollout_id = $2 AND device_id = $3",
                    )
                    .bind(t.to_string())
                    .bind(&g.id)
                    .bind(d.to_string())
                };
                q.execute(&mut *w.tx).await?;
            }
        }
        Ok(())
    }

    /// A printer whose every change is held back by a roll-out: nothing awaited (so it is not
    /// due for a retry), and the reason shown in its compliance.
    pub(crate) async fn rollout_hold(
        &self,
        w: &mut WriteTx,
        t: TenantId,
        d: DeviceId,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO remediation_state (tenant_id, device_id, attempts, next_at, last_work, last_reason, unsupported) VALUES ($1, $2, 0, 0, NULL, $3, '[]') \
             ON CONFLICT (tenant_id, device_id) DO UPDATE SET last_work = NULL, last_reason = excluded.last_reason",
        )
        .bind(t.to_string())
        .bind(d.to_string())
        .bind(reason)
        .execute(&mut *w.tx)
        .await?;
        Ok(())
    }

    /// A printer acknowledged `work` (inside the fetch's transaction).
    pub(crate) async fn rollout_ack(
        &self,
        w: &mut WriteTx,
        t: TenantId,
        work: &str,
        ok: bool,
        reason: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE rollout_devices SET status = $3, finished_at = $4, reason = $5 WHERE tenant_id = $1 AND work_id = $2 AND status = 'sent'",
        )
        .bind(t.to_string())
        .bind(work)
        .bind(if ok { "succeeded" } else { "failed" })
        .bind(now)
        .bind(if ok { None } else { reason })
        .execute(&mut *w.tx)
        .await?;
        Ok(())
    }

    fn rollouts_write_check(ctx: &Ctx) -> Result<(), StoreError> {
        ctx.require(Permission::PoliciesManage)?;
        if !ctx.scope.is_tenant_wide() {
            return Err(StoreError::ScopeTooNarrow);
        }
        Ok(())
    }

    /// Starts a roll-out for the policy's next change (`enters_secrets`: the change carries
    /// new secret values, which need `secrets.write` as saving does): the plan checked, the fleet the policy
    /// reaches split into waves, the canary released. Until the change is saved
    /// ([`Store::rollout_bind`]) nothing differs: the current version is not gated.
    pub async fn rollout_start(
        &self,
        ctx: &Ctx,
        policy: PolicyId,
        plan: RolloutPlan,
        enters_secrets: bool,
    ) -> Result<RolloutRecord, StoreError> {
        let p = self.policy_get(ctx, policy).await?;
        Self::rollouts_write_check(ctx)?;
        if enters_secrets {
            ctx.require(Permission::SecretsWrite)?;
        }
        plan.check()?;
        let t = ctx.tenant;
        let now = self.now_ms();
        let mut w = self.begin_write().await?;
        let busy = sqlx::query(
            "SELECT id FROM rollouts WHERE tenant_id = $1 AND policy_id = $2 AND state IN ('active', 'halted')",
        )
        .bind(t.to_string())
        .bind(policy.to_string())
        .fetch_optional(&mut *w.tx)
        .await?;
        if busy.is_some() {
            return Err(StoreError::conflict(
                "rollout_in_progress",
                "this policy has a roll-out in progress: resume, cancel or roll it back first",
            ));
        }
        let canary_members: BTreeSet<DeviceId> = match plan.canary {
            Canary::Group(g) => {
                let exists =
                    sqlx::query("SELECT 1 FROM device_groups WHERE tenant_id = $1 AND id = $2")
                        .bind(t.to_string())
                        .bind(g.to_string())
                        .fetch_optional(&mut *w.tx)
                        .await?;
                if exists.is_none() {
                    return Err(ValidationError::new("plan.canary.group", "no such group").into());
                }
                self.group_devices_of(&mut w, t, g).await?
            }
            Canary::Percent(_) => BTreeSet::new(),
        };
        let reached = sqlx::query(
            "SELECT DISTINCT gd.device_id FROM group_devices gd \
             JOIN policy_assignments pa ON pa.tenant_id = gd.tenant_id AND pa.group_id = gd.group_id \
             JOIN devices d ON d.tenant_id = gd.tenant_id AND d.id = gd.device_id \
             WHERE gd.tenant_id = $1 AND pa.policy_id = $2 AND d.removed_at IS NULL",
        )
        .bind(t.to_string())
        .bind(policy.to_string())
        .fetch_all(&mut *w.tx)
        .await?;
        let mut fleet = Vec::with_capacity(reached.len());
        for r in &reached {
            let d: DeviceId = parse_id("group_devices.device_id", &r.try_get::<String, _>(0)?)?;
            fleet.push((d, canary_members.contains(&d)));
        }
        let waves = plan.assign(&fleet);
        let id = uuid::Uuid::new_v4().to_string();
        sqlx::query(
            "INSERT INTO rollouts (tenant_id, id, policy_id, base_version, base_mode, version, plan, state, released_wave, wave_released_at, halt_reason, rollback_version, created_by, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, NULL, $6, 'active', 0, $7, NULL, NULL, $8, $7, $7)",
        )
        .bind(t.to_string())
        .bind(&id)
        .bind(policy.to_string())
        .bind(p.version)
        .bind(p.mode.as_str())
        .bind(to_json(&plan)?)
        .bind(now)
        .bind(ctx.actor.audit_id())
        .execute(&mut *w.tx)
        .await?;
        for (d, wave) in &waves {
            sqlx::query(
                "INSERT INTO rollout_devices (tenant_id, rollout_id, device_id, wave, status, compliant) VALUES ($1, $2, $3, $4, $5, 0)",
            )
            .bind(t.to_string())
            .bind(&id)
            .bind(d.to_string())
            .bind(wave_i64(*wave))
            .bind(if *wave == 0 { "pending" } else { "waiting" })
            .execute(&mut *w.tx)
            .await?;
        }
        let mut per_wave = vec![0_u64; plan.last_wave() + 1];
        for wave in waves.values() {
            if let Some(n) = per_wave.get_mut(*wave) {
                *n += 1;
            }
        }
        let ev = AuditEvent::new(ctx, AuditAction::RolloutStarted, format!("policy:{policy}"))
            .with_detail(serde_json::json!({
                "rollout": id, "base_version": p.version, "plan": plan, "printers_per_wave": per_wave,
            }));
        self.append_audit(&mut w, &tenant_chain(t), ev).await?;
        self.commit(w).await?;
        self.rollout_get(ctx, policy, &id).await
    }

    async fn group_devices_of(
        &self,
        w: &mut WriteTx,
        t: TenantId,
        g: GroupId,
    ) -> Result<BTreeSet<DeviceId>, StoreError> {
        let rows = sqlx::query(
            "SELECT device_id FROM group_devices WHERE tenant_id = $1 AND group_id = $2",
        )
        .bind(t.to_string())
        .bind(g.to_string())
        .fetch_all(&mut *w.tx)
        .await?;
        rows.iter()
            .map(|r| parse_id("group_devices.device_id", &r.try_get::<String, _>(0)?))
            .collect()
    }

    /// The change was saved as `version`: the roll-out names it.
    pub async fn rollout_bind(
        &self,
        ctx: &Ctx,
        policy: PolicyId,
        id: &str,
        version: i64,
    ) -> Result<(), StoreError> {
        Self::rollouts_write_check(ctx)?;
        let mut w = self.begin_write().await?;
        sqlx::query(
            "UPDATE rollouts SET version = $4, updated_at = $5 WHERE tenant_id = $1 AND policy_id = $2 AND id = $3 AND version IS NULL",
        )
        .bind(ctx.tenant.to_string())
        .bind(policy.to_string())
        .bind(id)
        .bind(version)
        .bind(self.now_ms())
        .execute(&mut *w.tx)
        .await?;
        self.commit(w).await
    }

    /// The change was not saved: the roll-out ends (cancelled), naming why.
    pub async fn rollout_abandon(
        &self,
        ctx: &Ctx,
        policy: PolicyId,
        id: &str,
        why: &str,
    ) -> Result<(), StoreError> {
        let mut w = self.begin_write().await?;
        sqlx::query(
            "UPDATE rollouts SET state = 'cancelled', updated_at = $4 WHERE tenant_id = $1 AND policy_id = $2 AND id = $3",
        )
        .bind(ctx.tenant.to_string())
        .bind(policy.to_string())
        .bind(id)
        .bind(self.now_ms())
        .execute(&mut *w.tx)
        .await?;
        let ev = AuditEvent::new(
            ctx,
            AuditAction::RolloutCancelled,
            format!("policy:{policy}"),
        )
        .with_detail(serde_json::json!({ "rollout": id, "why": why }));
        self.append_audit(&mut w, &tenant_chain(ctx.tenant), ev)
            .await?;
        self.commit(w).await
    }

    async fn wave_tallies(
        &self,
        t: TenantId,
        id: &str,
        waves: usize,
    ) -> Result<Vec<WaveTally>, StoreError> {
        let rows = sqlx::query(
            "SELECT wave, status, compliant, COUNT(*) FROM rollout_devices WHERE tenant_id = $1 AND rollout_id = $2 GROUP BY wave, status, compliant",
        )
        .bind(t.to_string())
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        let mut out = vec![WaveTally::default(); waves];
        for r in &rows {
            let wave = usize::try_from(r.try_get::<i64, _>(0)?).unwrap_or(usize::MAX);
            let status: String = r.try_get(1)?;
            let compliant: i64 = r.try_get(2)?;
            let n = u64::try_from(r.try_get::<i64, _>(3)?).unwrap_or(0);
            let Some(tally) = out.get_mut(wave) else {
                continue;
            };
            add(tally, &status, n);
            if compliant != 0 {
                tally.compliant += n;
            }
        }
        Ok(out)
    }

    /// The roll-outs of a policy, newest first.
    pub async fn rollouts_list(
        &self,
        ctx: &Ctx,
        policy: PolicyId,
    ) -> Result<Vec<RolloutRecord>, StoreError> {
        self.policy_get(ctx, policy).await?;
        let rows = sqlx::query(&format!(
            "{SELECT} WHERE tenant_id = $1 AND policy_id = $2 ORDER BY created_at DESC, id"
        ))
        .bind(ctx.tenant.to_string())
        .bind(policy.to_string())
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let mut rec = row(r)?.rec;
            rec.waves = self
                .wave_tallies(ctx.tenant, &rec.id, rec.plan.last_wave() + 1)
                .await?;
            out.push(rec);
        }
        Ok(out)
    }

    /// One roll-out with its progress per wave. Read like the policy (`policies.read`).
    pub async fn rollout_get(
        &self,
        ctx: &Ctx,
        policy: PolicyId,
        id: &str,
    ) -> Result<RolloutRecord, StoreError> {
        self.policy_get(ctx, policy).await?;
        let mut rec = self.rollout_row(ctx.tenant, policy, id).await?.rec;
        rec.waves = self
            .wave_tallies(ctx.tenant, &rec.id, rec.plan.last_wave() + 1)
            .await?;
        Ok(rec)
    }

    async fn rollout_row(
        &self,
        t: TenantId,
        policy: PolicyId,
        id: &str,
    ) -> Result<Row0, StoreError> {
        let r = sqlx::query(&format!(
            "{SELECT} WHERE tenant_id = $1 AND policy_id = $2 AND id = $3"
        ))
        .bind(t.to_string())
        .bind(policy.to_string())
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)?;
        row(&r)
    }

    /// Marks wave `wave`'s printers for the assessor: they may get the change now.
    async fn release_wave(
        &self,
        w: &mut WriteTx,
        t: TenantId,
        id: &str,
        wave: usize,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE rollout_devices SET status = 'pending' WHERE tenant_id = $1 AND rollout_id = $2 AND wave = $3 AND status = 'waiting'",
        )
        .bind(t.to_string())
        .bind(id)
        .bind(wave_i64(wave))
        .execute(&mut *w.tx)
        .await?;
        sqlx::query(
            "UPDATE device_compliance SET epoch = -1 WHERE tenant_id = $1 AND device_id IN (SELECT device_id FROM rollout_devices WHERE tenant_id = $1 AND rollout_id = $2 AND wave = $3)",
        )
        .bind(t.to_string())
        .bind(id)
        .bind(wave_i64(wave))
        .execute(&mut *w.tx)
        .await?;
        sqlx::query(
            "UPDATE rollouts SET released_wave = $3, wave_released_at = $4, updated_at = $4 WHERE tenant_id = $1 AND id = $2",
        )
        .bind(t.to_string())
        .bind(id)
        .bind(wave_i64(wave))
        .bind(now)
        .execute(&mut *w.tx)
        .await?;
        Ok(())
    }

    async fn set_state(
        &self,
        w: &mut WriteTx,
        t: TenantId,
        id: &str,
        state: RolloutState,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE rollouts SET state = $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2",
        )
        .bind(t.to_string())
        .bind(id)
        .bind(state.as_str())
        .bind(now)
        .execute(&mut *w.tx)
        .await?;
        Ok(())
    }

    /// Reads the roll-out for an admin's command and checks the command against its state.
    async fn for_command(
        &self,
        ctx: &Ctx,
        policy: PolicyId,
        id: &str,
        cmd: Command,
    ) -> Result<(Row0, RolloutState), StoreError> {
        self.policy_get(ctx, policy).await?;
        let r = self.rollout_row(ctx.tenant, policy, id).await?;
        Self::rollouts_write_check(ctx)?;
        let next = rollout::command(r.rec.state, cmd)
            .map_err(|e| StoreError::conflict("rollout_state", e.to_string()))?;
        Ok((r, next))
    }

    /// Resumes a halted roll-out: the next wave is released despite the halt.
    pub async fn rollout_resume(
        &self,
        ctx: &Ctx,
        policy: PolicyId,
        id: &str,
    ) -> Result<RolloutRecord, StoreError> {
        let (r, next) = self.for_command(ctx, policy, id, Command::Resume).await?;
        let t = ctx.tenant;
        let now = self.now_ms();
        let mut w = self.begin_write().await?;
        let wave = r.rec.released_wave + 1;
        if wave > r.rec.plan.last_wave() {
            self.set_state(&mut w, t, id, RolloutState::Completed, now)
                .await?;
        } else {
            self.set_state(&mut w, t, id, next, now).await?;
            self.release_wave(&mut w, t, id, wave, now).await?;
        }
        let ev = AuditEvent::new(ctx, AuditAction::RolloutResumed, format!("policy:{policy}"))
            .with_detail(serde_json::json!({ "rollout": id, "released_wave": wave }));
        self.append_audit(&mut w, &tenant_chain(t), ev).await?;
        self.commit(w).await?;
        self.rollout_get(ctx, policy, id).await
    }

    /// Stops a roll-out: nothing more is sent for its version (a later version is not gated).
    pub async fn rollout_cancel(
        &self,
        ctx: &Ctx,
        policy: PolicyId,
        id: &str,
    ) -> Result<RolloutRecord, StoreError> {
        let (_, next) = self.for_command(ctx, policy, id, Command::Cancel).await?;
        let mut w = self.begin_write().await?;
        self.set_state(&mut w, ctx.tenant, id, next, self.now_ms())
            .await?;
        let ev = AuditEvent::new(
            ctx,
            AuditAction::RolloutCancelled,
            format!("policy:{policy}"),
        )
        .with_detail(serde_json::json!({ "rollout": id }));
        self.append_audit(&mut w, &tenant_chain(ctx.tenant), ev)
            .await?;
        self.commit(w).await?;
        self.rollout_get(ctx, policy, id).await
    }

    /// Rolls back: saves the version the roll-out started from again as the policy's next
    /// version (its items, mode and secrets; the name and description stay), sent to every
    /// printer at once. Restoring secrets needs `secrets.write` when they differ from the
    /// current version's.
    pub async fn rollout_rollback(
        &self,
        ctx: &Ctx,
        policy: PolicyId,
        id: &str,
    ) -> Result<(RolloutRecord, i64), StoreError> {
        let (r, next) = self.for_command(ctx, policy, id, Command::Rollback).await?;
        let t = ctx.tenant;
        let current = self.policy_get(ctx, policy).await?;
        let base = r.rec.base_version;
        let row = sqlx::query(
            "SELECT items, catalogue_version FROM policy_versions WHERE tenant_id = $1 AND policy_id = $2 AND version = $3",
        )
        .bind(t.to_string())
        .bind(policy.to_string())
        .bind(base)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)?;
        let items: printfleet_domain::policy::PolicyItems =
            from_json("policy_versions.items", &row.try_get::<String, _>(0)?)?;
        let secret_items = |i: &printfleet_domain::policy::PolicyItems| {
            i.iter()
                .filter(|(_, x)| !matches!(x, PolicyItem::Value { .. }))
                .map(|(k, x)| (k.clone(), x.clone()))
                .collect::<Vec<_>>()
        };
        let enters_secrets = secret_items(&items) != secret_items(&current.items);
        let secrets = self.policy_secrets(t, policy, base).await?;
        let (saved, _) = self
            .policy_update(
                ctx,
                policy,
                PolicyWrite {
                    name: current.name,
                    description: current.description,
                    mode: r.base_mode,
                    items,
                    secrets,
                    catalogue_version: row.try_get(1)?,
                    enters_secrets,
                },
            )
            .await?;
        let now = self.now_ms();
        let mut w = self.begin_write().await?;
        self.set_state(&mut w, t, id, next, now).await?;
        sqlx::query("UPDATE rollouts SET rollback_version = $3 WHERE tenant_id = $1 AND id = $2")
            .bind(t.to_string())
            .bind(id)
            .bind(saved.version)
            .execute(&mut *w.tx)
            .await?;
        // Printers held back while the rollback was saved are assessed again, ungated.
        self.bump_policy_epoch(&mut w, t).await?;
        let ev = AuditEvent::new(
            ctx,
            AuditAction::RolloutRolledBack,
            format!("policy:{policy}"),
        )
        .with_detail(serde_json::json!({
            "rollout": id, "restored_version": base, "version": saved.version,
        }));
        self.append_audit(&mut w, &tenant_chain(t), ev).await?;
        self.commit(w).await?;
        Ok((self.rollout_get(ctx, policy, id).await?, saved.version))
    }

    /// A started roll-out without its version: named after the version following its base if
    /// that exists (the server stopped before naming it), cancelled if none was saved within
    /// [`UNBOUND_GRACE_MS`].
    async fn rollout_unbound(
        &self,
        w: &mut WriteTx,
        t: TenantId,
        rec: &RolloutRecord,
        now: i64,
    ) -> Result<Driven, StoreError> {
        let current: Option<i64> =
            sqlx::query("SELECT current_version FROM policies WHERE tenant_id = $1 AND id = $2")
                .bind(t.to_string())
                .bind(rec.policy.to_string())
                .fetch_optional(&mut *w.tx)
                .await?
                .map(|r| r.try_get(0))
                .transpose()?;
        if current.is_some_and(|c| c > rec.base_version) {
            sqlx::query(
                "UPDATE rollouts SET version = $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2 AND version IS NULL",
            )
            .bind(t.to_string())
            .bind(&rec.id)
            .bind(rec.base_version + 1)
            .bind(now)
            .execute(&mut *w.tx)
            .await?;
        } else if now.saturating_sub(rec.created_at_ms) > UNBOUND_GRACE_MS {
            self.set_state(w, t, &rec.id, RolloutState::Cancelled, now)
                .await?;
            let ev = AuditEvent {
                actor: Actor::System,
                action: AuditAction::RolloutCancelled,
                target: format!("policy:{}", rec.policy),
                source: None,
                detail: serde_json::json!({ "rollout": rec.id, "why": "the change was not saved" }),
            };
            self.append_audit(w, &tenant_chain(t), ev).await?;
        }
        Ok(Driven::Running)
    }

    /// Active roll-outs, for the server's driver (deployment-wide, like
    /// `assessment_due`).
    pub async fn rollouts_to_drive(&self) -> Result<Vec<(TenantId, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT tenant_id, id FROM rollouts WHERE state = 'active' ORDER BY tenant_id, id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    parse_id("rollouts.tenant_id", &r.try_get::<String, _>(0)?)?,
                    r.try_get(1)?,
                ))
            })
            .collect()
    }

    /// One step of an active roll-out: printers past the timeout become not responding (or
    /// skipped), then the released wave's verdict — still running, passed (the next wave is
    /// released, or the roll-out completes) or halt (the reason stored and audited).
    pub async fn rollout_drive(&self, t: TenantId, id: &str) -> Result<Driven, StoreError> {
        let now = self.now_ms();
        let mut w = self.begin_write().await?;
        let r = sqlx::query(&format!("{SELECT} WHERE tenant_id = $1 AND id = $2"))
            .bind(t.to_string())
            .bind(id)
            .fetch_optional(&mut *w.tx)
            .await?
            .ok_or(StoreError::NotFound)?;
        let rec = row(&r)?.rec;
        if rec.state != RolloutState::Active {
            return Ok(Driven::Running);
        }
        if rec.version.is_none() {
            // Started, but its change not (yet) named: the server stopped between saving the
            // version and naming it, or the change was never saved.
            let out = self.rollout_unbound(&mut w, t, &rec, now).await?;
            self.commit(w).await?;
            return Ok(out);
        }
        let wave = rec.released_wave;
        let timeout_ms =
            i64::try_from(rec.plan.response_timeout_s.saturating_mul(1000)).unwrap_or(i64::MAX);
        let cutoff = now.saturating_sub(timeout_ms);
        sqlx::query(
            "UPDATE rollout_devices SET status = 'not_responding', finished_at = $4 WHERE tenant_id = $1 AND rollout_id = $2 AND wave <= $3 AND status = 'sent' AND sent_at <= $5",
        )
        .bind(t.to_string())
        .bind(id)
        .bind(wave_i64(wave))
        .bind(now)
        .bind(cutoff)
        .execute(&mut *w.tx)
        .await?;
        if rec.wave_released_at_ms <= cutoff {
            sqlx::query(
                "UPDATE rollout_devices SET status = 'skipped' WHERE tenant_id = $1 AND rollout_id = $2 AND wave <= $3 AND status = 'pending'",
            )
            .bind(t.to_string())
            .bind(id)
            .bind(wave_i64(wave))
            .execute(&mut *w.tx)
            .await?;
        }
        let rows = sqlx::query(
            "SELECT status, COUNT(*) FROM rollout_devices WHERE tenant_id = $1 AND rollout_id = $2 AND wave = $3 GROUP BY status",
        )
        .bind(t.to_string())
        .bind(id)
        .bind(wave_i64(wave))
        .fetch_all(&mut *w.tx)
        .await?;
        let mut tally = WaveTally::default();
        for r in &rows {
            let n = u64::try_from(r.try_get::<i64, _>(1)?).unwrap_or(0);
            add(&mut tally, &r.try_get::<String, _>(0)?, n);
        }
        let passed = |action: AuditAction| AuditEvent {
            actor: Actor::System,
            action,
            target: format!("policy:{}", rec.policy),
            source: None,
            detail: serde_json::json!({ "rollout": id, "version": rec.version, "wave_passed": wave, "tally": &tally }),
        };
        let out = match rollout::verdict(wave, &tally, &rec.plan) {
            WaveVerdict::Running => Driven::Running,
            WaveVerdict::Passed if wave >= rec.plan.last_wave() => {
                self.set_state(&mut w, t, id, RolloutState::Completed, now)
                    .await?;
                self.append_audit(
                    &mut w,
                    &tenant_chain(t),
                    passed(AuditAction::RolloutCompleted),
                )
                .await?;
                Driven::Completed
            }
            WaveVerdict::Passed => {
                self.release_wave(&mut w, t, id, wave + 1, now).await?;
                self.append_audit(
                    &mut w,
                    &tenant_chain(t),
                    passed(AuditAction::RolloutWaveReleased),
                )
                .await?;
                Driven::Released(wave + 1)
            }
            WaveVerdict::Halt(mut reason) => {
                let bad = sqlx::query(
                    "SELECT device_id, status, reason FROM rollout_devices WHERE tenant_id = $1 AND rollout_id = $2 AND wave = $3 AND status IN ('failed', 'not_responding') ORDER BY device_id LIMIT $4",
                )
                .bind(t.to_string())
                .bind(id)
                .bind(wave_i64(wave))
                .bind(HALT_PRINTERS)
                .fetch_all(&mut *w.tx)
                .await?;
                for b in &bad {
                    reason.printers.push(HaltedPrinter {
                        device: parse_id("rollout_devices.device_id", &b.try_get::<String, _>(0)?)?,
                        outcome: b.try_get(1)?,
                        reason: b.try_get(2)?,
                    });
                }
                sqlx::query(
                    "UPDATE rollouts SET state = 'halted', halt_reason = $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2",
                )
                .bind(t.to_string())
                .bind(id)
                .bind(to_json(&reason)?)
                .bind(now)
                .execute(&mut *w.tx)
                .await?;
                let ev = AuditEvent {
                    actor: Actor::System,
                    action: AuditAction::RolloutHalted,
                    target: format!("policy:{}", rec.policy),
                    source: None,
                    detail: serde_json::json!({ "rollout": id, "version": rec.version, "reason": reason }),
                };
                self.append_audit(&mut w, &tenant_chain(t), ev).await?;
                Driven::Halted
            }
        };
        self.commit(w).await?;
        Ok(out)
    }
}

fn add(t: &mut WaveTally, status: &str, n: u64) {
    t.printers += n;
    match status {
        "waiting" => t.waiting += n,
        "pending" => t.pending += n,
        "sent" => t.sent += n,
        "succeeded" => t.succeeded += n,
        "failed" => t.failed += n,
        "not_responding" => t.not_responding += n,
        "not_needed" => t.not_needed += n,
        _ => t.skipped += n,
    }
}
