//! The assessor's storage side: which printers need assessing, and assessing a batch of them in
//! one transaction — dynamic memberships refreshed, each printer's effective policy assessed
//! (`policy::assess`), its row, the history of its changed items and the fleet counts written
//! together, and remediation queued in the outbox for printers a remediating policy finds out
//! of line.
//!
//! A printer needs assessing when it has never been assessed, its state changed since, the
//! tenant's policy epoch moved on, it was marked (epoch -1), its remediation back-off expired
//! while still out of line, or it was removed (its row and counts are then taken away). This
//! is read from the tables, so a restart loses nothing; the server's assessor adds in-memory
//! hints only to be quick.

use crate::audit::WriteTx;
use crate::codec::{from_json, in_list_from, parse_id, tenant_scope, to_json};
use crate::enrolment::{secrets_place as device_secrets_place, DeviceSecrets};
use crate::outbox::WorkKind;
use crate::{Store, StoreError};
use printfleet_domain::catalogue::Catalogue;
use printfleet_domain::policy::{
    self, AssessInput, EffectivePolicy, ItemAssessment, ItemStatus, PolicyItem, PolicyMode,
    PolicySecrets, StatusTally,
};
use printfleet_domain::telemetry::DeviceState;
use printfleet_domain::{DeviceId, GroupId, PolicyId, TenantId};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use std::collections::{BTreeMap, BTreeSet};

/// One assessed item as stored in `device_compliance.items`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredItem {
    #[serde(flatten)]
    pub item: ItemAssessment,
    pub policy: PolicyId,
    pub version: i64,
    pub mode: PolicyMode,
    /// Since when the item has had this status.
    pub since_ms: i64,
}

/// What one call of [`Store::assess_devices`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AssessOutcome {
    pub assessed: usize,
    /// Printers that got remediation work (ring their doorbells).
    pub work_queued: Vec<DeviceId>,
}

/// First retry after a failed remediation; doubles per failure up to [`BACKOFF_MAX_MS`].
pub const BACKOFF_FIRST_MS: i64 = 60_000;
pub const BACKOFF_MAX_MS: i64 = 6 * 3_600_000;
/// After a printer applied settings, how long to wait for its report before sending again.
pub const REPORT_GRACE_MS: i64 = 30_000;

pub fn backoff_ms(attempts: i64) -> i64 {
    let shift = attempts.clamp(1, 20) - 1;
    (BACKOFF_FIRST_MS << shift).min(BACKOFF_MAX_MS)
}

struct Previous {
    items: Vec<StoredItem>,
}

struct Remediation {
    attempts: i64,
    next_at: i64,
    unsupported: BTreeSet<String>,
}

type CountKey = (PolicyId, String, &'static str);

impl Store {
    /// Up to `limit` printers that need assessing, with their tenants.
    pub async fn assessment_due(
        &self,
        limit: i64,
    ) -> Result<Vec<(TenantId, DeviceId)>, StoreError> {
        let now = self.now_ms();
        let rows = sqlx::query(
            "SELECT d.tenant_id, d.id FROM devices d \
             LEFT JOIN device_state s ON s.tenant_id = d.tenant_id AND s.device_id = d.id \
             LEFT JOIN device_compliance c ON c.tenant_id = d.tenant_id AND c.device_id = d.id \
             LEFT JOIN policy_epochs e ON e.tenant_id = d.tenant_id \
             LEFT JOIN remediation_state r ON r.tenant_id = d.tenant_id AND r.device_id = d.id \
             WHERE (d.removed_at IS NULL AND (c.device_id IS NULL OR c.epoch < COALESCE(e.epoch, 0) \
                    OR c.state_received_at <> COALESCE(s.received_at, 0) \
                    OR (c.status = 'non_compliant' AND r.next_at IS NOT NULL AND r.next_at <= $1 AND r.last_work IS NOT NULL))) \
                OR (d.removed_at IS NOT NULL AND c.device_id IS NOT NULL) \
             ORDER BY d.tenant_id LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    parse_id("devices.tenant_id", &r.try_get::<String, _>(0)?)?,
                    parse_id("devices.id", &r.try_get::<String, _>(1)?)?,
                ))
            })
            .collect()
    }

    async fn states_of(
        &self,
        t: TenantId,
        devices: &[DeviceId],
    ) -> Result<BTreeMap<DeviceId, (DeviceState, i64)>, StoreError> {
        let mut out = BTreeMap::new();
        for chunk in devices.chunks(100) {
            let sql = format!(
                "SELECT device_id, state, received_at FROM device_state WHERE tenant_id = $1 AND device_id IN ({})",
                in_list_from(2, chunk.len())
            );
            let mut q = sqlx::query(&sql).bind(t.to_string());
            for d in chunk {
                q = q.bind(d.to_string());
            }
            for r in q.fetch_all(&self.pool).await? {
                let id: DeviceId = parse_id("device_state.device_id", &r.try_get::<String, _>(0)?)?;
                out.insert(
                    id,
                    (
                        from_json("device_state.state", &r.try_get::<String, _>(1)?)?,
                        r.try_get(2)?,
                    ),
                );
            }
        }
        Ok(out)
    }

    async fn previous_of(
        &self,
        w: &mut WriteTx,
        t: TenantId,
        devices: &[DeviceId],
    ) -> Result<BTreeMap<DeviceId, Previous>, StoreError> {
        let mut out = BTreeMap::new();
        for chunk in devices.chunks(100) {
            let sql = format!(
                "SELECT device_id, items FROM device_compliance WHERE tenant_id = $1 AND device_id IN ({})",
                in_list_from(2, chunk.len())
            );
            let mut q = sqlx::query(&sql).bind(t.to_string());
            for d in chunk {
                q = q.bind(d.to_string());
            }
            for r in q.fetch_all(&mut *w.tx).await? {
                let id: DeviceId =
                    parse_id("device_compliance.device_id", &r.try_get::<String, _>(0)?)?;
                out.insert(
                    id,
                    Previous {
                        items: from_json("device_compliance.items", &r.try_get::<String, _>(1)?)?,
                    },
                );
            }
        }
        Ok(out)
    }

    async fn remediation_of(
        &self,
        w: &mut WriteTx,
        t: TenantId,
        d: DeviceId,
    ) -> Result<Remediation, StoreError> {
        let r = sqlx::query(
            "SELECT attempts, next_at, unsupported FROM remediation_state WHERE tenant_id = $1 AND device_id = $2",
        )
        .bind(t.to_string())
        .bind(d.to_string())
        .fetch_optional(&mut *w.tx)
        .await?;
        Ok(match r {
            None => Remediation {
                attempts: 0,
                next_at: 0,
                unsupported: BTreeSet::new(),
            },
            Some(r) => Remediation {
                attempts: r.try_get(0)?,
                next_at: r.try_get(1)?,
                unsupported: from_json(
                    "remediation_state.unsupported",
                    &r.try_get::<String, _>(2)?,
                )?,
            },
        })
    }

    async fn groups_in_tx(
        &self,
        w: &mut WriteTx,
        t: TenantId,
        d: DeviceId,
    ) -> Result<BTreeSet<GroupId>, StoreError> {
        sqlx::query("SELECT group_id FROM group_devices WHERE tenant_id = $1 AND device_id = $2")
            .bind(t.to_string())
            .bind(d.to_string())
            .fetch_all(&mut *w.tx)
            .await?
            .iter()
            .map(|r| parse_id("group_devices.group_id", &r.try_get::<String, _>(0)?))
            .collect()
    }

    async fn verifier_key_of(
        &self,
        t: TenantId,
        d: DeviceId,
    ) -> Result<Option<[u8; 32]>, StoreError> {
        let r = sqlx::query("SELECT secrets FROM devices WHERE tenant_id = $1 AND id = $2")
            .bind(t.to_string())
            .bind(d.to_string())
            .fetch_optional(&self.pool)
            .await?;
        let Some(r) = r else { return Ok(None) };
        let sealed: Vec<u8> = r.try_get(0)?;
        let s: DeviceSecrets = self
            .open_json(&tenant_scope(t), &device_secrets_place(t, d), &sealed)
            .await?;
        let bytes = hex::decode(&s.verifier_key)
            .map_err(|_| StoreError::Corrupt("devices.secrets".into()))?;
        Ok(bytes.try_into().ok())
    }

    /// Assesses `devices` (all of tenant `t`) against their effective policies, in one
    /// transaction. Printers that are gone lose their row and their share of the counts.
    pub async fn assess_devices(
        &self,
        catalogue: &Catalogue,
        t: TenantId,
        devices: &[DeviceId],
    ) -> Result<AssessOutcome, StoreError> {
        let now = self.now_ms();
        let rules = self.group_rules(t).await?;
        let (assignments, items_by_policy) = self.effective_inputs(t).await?;
        let attrs = self.device_attrs(t, devices).await?;
        let live: BTreeSet<DeviceId> = attrs.iter().map(|a| a.device).collect();
        let states = self.states_of(t, devices).await?;
        let epoch: i64 = sqlx::query("SELECT epoch FROM policy_epochs WHERE tenant_id = $1")
            .bind(t.to_string())
            .fetch_optional(&self.pool)
            .await?
            .map(|r| r.try_get(0))
            .transpose()?
            .unwrap_or(0);
        // Secret values of the policies in force, opened once per batch.
        let mut policy_secrets: BTreeMap<(PolicyId, i64), PolicySecrets> = BTreeMap::new();
        for a in &assignments {
            let has_secret = items_by_policy
                .get(&a.policy)
                .is_some_and(|i| i.values().any(|x| matches!(x, PolicyItem::Secret { .. })));
            if has_secret && !policy_secrets.contains_key(&(a.policy, a.version)) {
                let s = self.policy_secrets(t, a.policy, a.version).await?;
                policy_secrets.insert((a.policy, a.version), s);
            }
        }
        // Verifier keys of printers that reported a verifier for a secret.
        let mut verifier_keys = BTreeMap::new();
        for (d, (state, _)) in &states {
            let reports_verifier = state.settings.values().any(|v| {
                matches!(
                    v,
                    printfleet_protocol::messages::ReportedValue::Secret {
                        verifier: Some(_),
                        ..
                    }
                )
            });
            if reports_verifier && !policy_secrets.is_empty() {
                if let Some(k) = self.verifier_key_of(t, *d).await? {
                    verifier_keys.insert(*d, k);
                }
            }
        }

        let mut w = self.begin_write().await?;
        self.refresh_dynamic_membership(&mut w, t, &rules, &attrs)
            .await?;
        let previous = self.previous_of(&mut w, t, devices).await?;
        let mut counts: BTreeMap<CountKey, i64> = BTreeMap::new();
        let mut outcome = AssessOutcome::default();
        let empty = DeviceState::default();
        for &d in devices {
            let old = previous.get(&d);
            if let Some(old) = old {
                for i in &old.items {
                    *counts
                        .entry((i.policy, i.item.setting_id.clone(), i.item.status.as_str()))
                        .or_default() -= 1;
                }
                for (p, s) in per_policy_overall(&old.items) {
                    *counts.entry((p, String::new(), s.as_str())).or_default() -= 1;
                }
            }
            if !live.contains(&d) {
                sqlx::query(
                    "DELETE FROM device_compliance WHERE tenant_id = $1 AND device_id = $2",
                )
                .bind(t.to_string())
                .bind(d.to_string())
                .execute(&mut *w.tx)
                .await?;
                continue;
            }
            let groups = self.groups_in_tx(&mut w, t, d).await?;
            let effective = policy::effective(&groups, &assignments, |p| items_by_policy.get(&p));
            let (state, received_at) = states.get(&d).map(|(s, r)| (s, *r)).unwrap_or((&empty, 0));
            let remediation = self.remediation_of(&mut w, t, d).await?;
            let key = verifier_keys.get(&d);
            let expected = |id: &str, o: &policy::Origin| -> Option<String> {
                let secret = policy_secrets.get(&(o.policy, o.version))?.get(id)?;
                Some(hex::encode(printfleet_protocol::verifier::secret_verifier(
                    key?,
                    id,
                    secret.expose(),
                )))
            };
            let assessed = policy::assess(&AssessInput {
                catalogue,
                state,
                effective: &effective,
                expected_verifier: &expected,
                refused_unsupported: &remediation.unsupported,
                now_ms: now,
            });
            let stored = stored_items(assessed, &effective, old, now);
            for i in &stored {
                *counts
                    .entry((i.policy, i.item.setting_id.clone(), i.item.status.as_str()))
                    .or_default() += 1;
            }
            for (p, s) in per_policy_overall(&stored) {
                *counts.entry((p, String::new(), s.as_str())).or_default() += 1;
            }
            let changes = history_changes(old.map(|o| o.items.as_slice()).unwrap_or(&[]), &stored);
            if !changes.is_empty() {
                sqlx::query(
                    "INSERT INTO assessment_history (tenant_id, id, device_id, at, catalogue_version, changes) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(t.to_string())
                .bind(uuid::Uuid::new_v4().to_string())
                .bind(d.to_string())
                .bind(now)
                .bind(&catalogue.version)
                .bind(serde_json::Value::Array(changes).to_string())
                .execute(&mut *w.tx)
                .await?;
            }
            let tally = StatusTally::of(stored.iter().map(|i| &i.item));
            let status = if stored.is_empty() {
                ItemStatus::Compliant
            } else {
                tally.overall()
            };
            self.write_compliance(
                &mut w,
                t,
                d,
                epoch,
                received_at,
                now,
                &catalogue.version,
                status,
                &tally,
                &stored,
            )
            .await?;
            if self
                .queue_remediation(&mut w, t, d, &stored, &remediation, now)
                .await?
            {
                outcome.work_queued.push(d);
            }
            outcome.assessed += 1;
        }
        self.apply_counts(&mut w, t, counts).await?;
        self.commit(w).await?;
        Ok(outcome)
    }

    #[allow(clippy::too_many_arguments)]
    async fn write_compliance(
        &self,
        w: &mut WriteTx,
        t: TenantId,
        d: DeviceId,
        epoch: i64,
        received_at: i64,
        now: i64,
        catalogue_version: &str,
        status: ItemStatus,
        tally: &StatusTally,
        items: &[StoredItem],
    ) -> Result<(), StoreError> {
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let updated = sqlx::query(
            "UPDATE device_compliance SET epoch = $3, state_received_at = $4, assessed_at = $5, catalogue_version = $6, status = $7, compliant = $8, non_compliant = $9, unsupported = $10, unknown = $11, items = $12 WHERE tenant_id = $1 AND device_id = $2",
        )
        .bind(t.to_string())
        .bind(d.to_string())
        .bind(epoch)
        .bind(received_at)
        .bind(now)
        .bind(catalogue_version)
        .bind(status.as_str())
        .bind(n(tally.compliant))
        .bind(n(tally.non_compliant))
        .bind(n(tally.unsupported))
        .bind(n(tally.unknown))
        .bind(to_json(&items)?)
        .execute(&mut *w.tx)
        .await?;
        if updated.rows_affected() == 0 {
            sqlx::query(
                "INSERT INTO device_compliance (tenant_id, device_id, epoch, state_received_at, assessed_at, catalogue_version, status, compliant, non_compliant, unsupported, unknown, items) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            )
            .bind(t.to_string())
            .bind(d.to_string())
            .bind(epoch)
            .bind(received_at)
            .bind(now)
            .bind(catalogue_version)
            .bind(status.as_str())
            .bind(n(tally.compliant))
            .bind(n(tally.non_compliant))
            .bind(n(tally.unsupported))
            .bind(n(tally.unknown))
            .bind(to_json(&items)?)
            .execute(&mut *w.tx)
            .await?;
        }
        Ok(())
    }

    async fn apply_counts(
        &self,
        w: &mut WriteTx,
        t: TenantId,
        counts: BTreeMap<CountKey, i64>,
    ) -> Result<(), StoreError> {
        for ((policy, setting, status), delta) in counts {
            if delta == 0 {
                continue;
            }
            let updated = sqlx::query(
                "UPDATE compliance_counts SET n = n + $5 WHERE tenant_id = $1 AND policy_id = $2 AND setting_id = $3 AND status = $4",
            )
            .bind(t.to_string())
            .bind(policy.to_string())
            .bind(&setting)
            .bind(status)
            .bind(delta)
            .execute(&mut *w.tx)
            .await?;
            if updated.rows_affected() == 0 {
                sqlx::query(
                    "INSERT INTO compliance_counts (tenant_id, policy_id, setting_id, status, n) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(t.to_string())
                .bind(policy.to_string())
                .bind(&setting)
                .bind(status)
                .bind(delta.max(0))
                .execute(&mut *w.tx)
                .await?;
            }
        }
        Ok(())
    }

    /// Queues one `apply_settings` item per remediating policy with items out of line, unless
    /// work of that kind is still pending or the back-off has not expired. An admin's "remediate
    /// now" (next_at = -1) also covers assess-only policies, once.
    async fn queue_remediation(
        &self,
        w: &mut WriteTx,
        t: TenantId,
        d: DeviceId,
        items: &[StoredItem],
        r: &Remediation,
        now: i64,
    ) -> Result<bool, StoreError> {
        let forced = r.next_at < 0;
        if !forced && r.next_at > now {
            return Ok(false);
        }
        let mut by_policy: BTreeMap<(PolicyId, i64), Vec<&StoredItem>> = BTreeMap::new();
        for i in items {
            if i.item.status == ItemStatus::NonCompliant
                && (forced || i.mode == PolicyMode::Remediate)
            {
                by_policy.entry((i.policy, i.version)).or_default().push(i);
            }
        }
        if by_policy.is_empty() {
            // Nothing to send: no longer due for a retry.
            sqlx::query("UPDATE remediation_state SET last_work = NULL WHERE tenant_id = $1 AND device_id = $2 AND last_work IS NOT NULL")
                .bind(t.to_string())
                .bind(d.to_string())
                .execute(&mut *w.tx)
                .await?;
            return Ok(false);
        }
        let pending = sqlx::query(
            "SELECT 1 FROM outbox WHERE tenant_id = $1 AND device_id = $2 AND kind = $3 AND status = 'pending'",
        )
        .bind(t.to_string())
        .bind(d.to_string())
        .bind(WorkKind::ApplySettings.as_str())
        .fetch_optional(&mut *w.tx)
        .await?;
        if pending.is_some() {
            // Still waiting for the printer to fetch: look again after a back-off.
            let next_at = now + backoff_ms(r.attempts.max(1));
            self.upsert_remediation(w, t, d, r.attempts, next_at, None, None, &r.unsupported)
                .await?;
            return Ok(false);
        }
        let mut last = None;
        for ((policy, version), its) in by_policy {
            let mut settings = serde_json::Map::new();
            let mut resolve = Vec::new();
            for i in its {
                match &i.item.wanted {
                    // Plain values travel as they are; secrets and certificates are resolved
                    // from the policy version at delivery and sealed to the printer there.
                    Some(v) if !v.is_object() => {
                        settings.insert(i.item.setting_id.clone(), v.clone());
                    }
                    _ => resolve.push(i.item.setting_id.clone()),
                }
            }
            let id = uuid::Uuid::new_v4().to_string();
            let data = serde_json::json!({
                "policy": policy.to_string(),
                "version": version,
                "settings": settings,
                "resolve": resolve,
            });
            sqlx::query(
                "INSERT INTO outbox (tenant_id, id, device_id, kind, data, created_by, created_at, status, attempts) VALUES ($1, $2, $3, $4, $5, 'assessor', $6, 'pending', 0)",
            )
            .bind(t.to_string())
            .bind(&id)
            .bind(d.to_string())
            .bind(WorkKind::ApplySettings.as_str())
            .bind(data.to_string())
            .bind(now)
            .execute(&mut *w.tx)
            .await?;
            last = Some(id);
        }
        let next_at = now + backoff_ms(r.attempts.max(1));
        self.upsert_remediation(
            w,
            t,
            d,
            r.attempts,
            next_at,
            last.as_deref(),
            None,
            &r.unsupported,
        )
        .await?;
        Ok(true)
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn upsert_remediation(
        &self,
        w: &mut WriteTx,
        t: TenantId,
        d: DeviceId,
        attempts: i64,
        next_at: i64,
        last_work: Option<&str>,
        last_reason: Option<&str>,
        unsupported: &BTreeSet<String>,
    ) -> Result<(), StoreError> {
        let updated = sqlx::query(
            "UPDATE remediation_state SET attempts = $3, next_at = $4, last_work = COALESCE($5, last_work), last_reason = $6, unsupported = $7 WHERE tenant_id = $1 AND device_id = $2",
        )
        .bind(t.to_string())
        .bind(d.to_string())
        .bind(attempts)
        .bind(next_at)
        .bind(last_work)
        .bind(last_reason)
        .bind(to_json(unsupported)?)
        .execute(&mut *w.tx)
        .await?;
        if updated.rows_affected() == 0 {
            sqlx::query(
                "INSERT INTO remediation_state (tenant_id, device_id, attempts, next_at, last_work, last_reason, unsupported) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(t.to_string())
            .bind(d.to_string())
            .bind(attempts)
            .bind(next_at)
            .bind(last_work)
            .bind(last_reason)
            .bind(to_json(unsupported)?)
            .execute(&mut *w.tx)
            .await?;
        }
        Ok(())
    }

    /// Records a printer's answer to an `apply_settings` item (inside the fetch's transaction):
    /// settings refused as unsupported are remembered, failures grow the back-off, success
    /// resets it; the printer is re-assessed either way.
    pub(crate) async fn record_remediation_ack(
        &self,
        w: &mut WriteTx,
        t: TenantId,
        d: DeviceId,
        ack: &printfleet_protocol::messages::WorkAck,
        now: i64,
    ) -> Result<(), StoreError> {
        use printfleet_protocol::messages::{Outcome, UNSUPPORTED};
        let mut r = self.remediation_of(w, t, d).await?;
        for (id, res) in &ack.results {
            if res.reason == UNSUPPORTED {
                r.unsupported.insert(id.clone());
            }
        }
        // Done, or nothing but unsupported settings left out: no retry needed for those.
        let ok = ack.outcome == Outcome::Done
            || (!ack.results.is_empty() && ack.results.values().all(|x| x.reason == UNSUPPORTED));
        // After success, give the printer time to report its new values before anything
        // still out of line is sent again.
        let (attempts, next_at) = if ok {
            (0, now + REPORT_GRACE_MS)
        } else {
            (r.attempts + 1, now + backoff_ms(r.attempts + 1))
        };
        self.upsert_remediation(
            w,
            t,
            d,
            attempts,
            next_at,
            Some(&ack.id),
            ack.reason.as_deref(),
            &r.unsupported,
        )
        .await?;
        self.mark_for_assessment(w, t, d).await
    }
}

fn stored_items(
    assessed: Vec<ItemAssessment>,
    effective: &EffectivePolicy,
    old: Option<&Previous>,
    now: i64,
) -> Vec<StoredItem> {
    let before: BTreeMap<&str, &StoredItem> = old
        .map(|o| {
            o.items
                .iter()
                .map(|i| (i.item.setting_id.as_str(), i))
                .collect()
        })
        .unwrap_or_default();
    assessed
        .into_iter()
        .filter_map(|item| {
            let origin = &effective.get(&item.setting_id)?.origin;
            let since_ms = match before.get(item.setting_id.as_str()) {
                Some(b) if b.item.status == item.status => b.since_ms,
                _ => now,
            };
            Some(StoredItem {
                policy: origin.policy,
                version: origin.version,
                mode: origin.mode,
                since_ms,
                item,
            })
        })
        .collect()
}

/// A printer's overall status per policy, from its items that policy decided.
fn per_policy_overall(items: &[StoredItem]) -> BTreeMap<PolicyId, ItemStatus> {
    let mut tallies: BTreeMap<PolicyId, StatusTally> = BTreeMap::new();
    for i in items {
        tallies.entry(i.policy).or_default().add(i.item.status, 1);
    }
    tallies.into_iter().map(|(p, t)| (p, t.overall())).collect()
}

fn history_changes(before: &[StoredItem], after: &[StoredItem]) -> Vec<serde_json::Value> {
    let old: BTreeMap<&str, ItemStatus> = before
        .iter()
        .map(|i| (i.item.setting_id.as_str(), i.item.status))
        .collect();
    let mut out: Vec<serde_json::Value> = after
        .iter()
        .filter(|i| old.get(i.item.setting_id.as_str()) != Some(&i.item.status))
        .map(|i| {
            serde_json::json!({
                "setting_id": i.item.setting_id,
                "status": i.item.status,
                "previous": old.get(i.item.setting_id.as_str()),
                "policy": i.policy,
                "version": i.version,
                "detail": i.item.detail,
            })
        })
        .collect();
    let now_ids: BTreeSet<&str> = after.iter().map(|i| i.item.setting_id.as_str()).collect();
    for i in before
        .iter()
        .filter(|i| !now_ids.contains(i.item.setting_id.as_str()))
    {
        out.push(serde_json::json!({
            "setting_id": i.item.setting_id,
            "status": "no_longer_assessed",
            "previous": i.item.status,
            "policy": i.policy,
            "version": i.version,
        }));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff_ms(0), BACKOFF_FIRST_MS);
        assert_eq!(backoff_ms(1), BACKOFF_FIRST_MS);
        assert_eq!(backoff_ms(3), 4 * BACKOFF_FIRST_MS);
        assert_eq!(backoff_ms(50), BACKOFF_MAX_MS);
    }
}
