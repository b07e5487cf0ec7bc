//! Dry runs: what a proposed policy version, or a new assignment, would do to the fleet — which
//! printers' items would change status or wanted value, and which would be sent settings —
//! with nothing written (no version, no audit entry, no outbox item, no doorbell).
//!
//! The prediction is exact because it is made the way the assessor makes the real one: the same
//! inputs (`effective_inputs`, dynamic rules applied to the stored attributes, the printers'
//! states, verifier keys and remediation rows) through the same functions (`policy::effective`,
//! `policy::assess`, `assessment::stored_items`, `assessment::remediation_step`). Each printer is
//! assessed twice from its latest report: under the assignments and versions in force ("now")
//! and under the proposal ("after"); the difference is the change's impact alone, even where a
//! stored assessment lags a report.
//!
//! Printers are read by id in pages of [`PAGE`], so memory does not grow with the fleet; the
//! totals cover every printer the change reaches, the list only one page of the caller's.

use crate::assessment::{remediation_step, stored_items, Remediation, RemediationStep, StoredItem};
use crate::audit::{tenant_chain, AuditEvent};
use crate::codec::{from_json, in_list_from, parse_id};
use crate::dynamic_groups::DeviceAttrs;
use crate::outbox::WorkKind;
use crate::policies::{check_priority, checked_text, PolicyWrite};
use crate::{Store, StoreError};
use printfleet_domain::audit::AuditAction;
use printfleet_domain::catalogue::Catalogue;
use printfleet_domain::policy::{
    self, AssessInput, Assignment, DeviceAttributes, GroupRule, ItemStatus, PolicyItem,
    PolicyItems, PolicyMode, PolicySecrets, StatusTally,
};
use printfleet_domain::telemetry::DeviceState;
use printfleet_domain::{Ctx, DeviceId, GroupId, Permission, PolicyId, Scope, TenantId};
use sqlx::Row;
use std::collections::{BTreeMap, BTreeSet};

/// Printers read per page (as the assessor's batches: a few `IN (…)` reads each).
const PAGE: i64 = 500;
/// Ids per `IN (…)` list.
const IDS_PER_QUERY: usize = 100;

/// Which printers of the answer's list to return: those after `after` (by id), at most `limit`.
#[derive(Clone, Copy, Debug)]
pub struct DryRunPage {
    pub after: Option<DeviceId>,
    pub limit: usize,
}

/// Over every printer the change reaches (and the caller may see).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DryRunTotals {
    pub printers_assessed: u64,
    /// Printers with an item whose status or wanted value would change (or that would gain or
    /// lose an item).
    pub printers_changing: u64,
    /// Printers that would be sent an `apply_settings` item.
    pub printers_sent_settings: u64,
    /// Printers a remediating policy would find out of line that are not sent settings now:
    /// their remediation back-off runs or earlier work is still pending. The assessor sends
    /// to them when that ends, as for any drift.
    pub printers_sent_later: u64,
    /// Items whose status would change, by the status they would get.
    pub items_becoming: StatusTally,
    /// Items that would no longer apply to their printer.
    pub items_no_longer_assessed: u64,
    /// The same per setting id (only ids with something to count), and how many printers
    /// would be sent each.
    pub by_item: BTreeMap<String, ItemTotals>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ItemTotals {
    pub becoming: StatusTally,
    pub no_longer_assessed: u64,
    pub sent: u64,
}

/// One item of a printer, now and after the change. `wanted_*` and `reported` are as the
/// assessment shows them: never a secret (secrets show their status only).
#[derive(Clone, Debug, PartialEq)]
pub struct ItemImpact {
    pub setting_id: String,
    /// `None`: the item does not apply now.
    pub current: Option<ItemStatus>,
    /// `None`: the item would no longer apply.
    pub predicted: Option<ItemStatus>,
    pub reported: Option<serde_json::Value>,
    pub wanted_now: Option<serde_json::Value>,
    pub wanted_after: Option<serde_json::Value>,
    pub detail: Option<String>,
    /// The policy the item would come from.
    pub policy: Option<PolicyId>,
    /// Whether remediation would send it.
    pub sent: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PrinterImpact {
    pub device: DeviceId,
    pub serial: String,
    pub model: String,
    /// The name the printer reports, if it has.
    pub name: Option<String>,
    pub sent_settings: bool,
    /// Only the items that would change or be sent.
    pub items: Vec<ItemImpact>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DryRun {
    pub policy: PolicyId,
    pub version: i64,
    /// The version the printers would be assessed under (the next one for a policy change).
    pub version_after: i64,
    pub totals: DryRunTotals,
    pub printers: Vec<PrinterImpact>,
    /// Pass as `after` for the next page; `None` on the last one.
    pub next_after: Option<DeviceId>,
}

/// Assignments, items and secrets: the inputs of `policy::effective` and of the verifiers, now
/// or after the change.
#[derive(Clone)]
struct Side {
    assignments: Vec<Assignment>,
    items: BTreeMap<PolicyId, PolicyItems>,
    secrets: BTreeMap<(PolicyId, i64), PolicySecrets>,
}

impl Side {
    fn has_secrets(&self) -> bool {
        self.secrets.values().any(|s| !s.0.is_empty())
    }

    /// One printer's items as the assessor would store them (its assessment loop, less the
    /// writing).
    fn assess(
        &self,
        catalogue: &Catalogue,
        groups: &BTreeSet<GroupId>,
        state: &DeviceState,
        key: Option<&[u8; 32]>,
        remediation: &Remediation,
        now: i64,
    ) -> Vec<StoredItem> {
        let effective = policy::effective(groups, &self.assignments, |p| self.items.get(&p));
        let expected = |id: &str, o: &policy::Origin| -> Option<String> {
            let secret = self.secrets.get(&(o.policy, o.version))?.get(id)?;
            Some(hex::encode(printfleet_protocol::verifier::secret_verifier(
                key?,
                id,
                secret.expose(),
            )))
        };
        let items = policy::assess(&AssessInput {
            catalogue,
            state,
            effective: &effective,
            expected_verifier: &expected,
            refused_unsupported: &remediation.unsupported,
            now_ms: now,
        });
        stored_items(items, &effective, &[], now)
    }
}

/// A printer of a page, with the groups it is in once the dynamic rules are applied.
struct Member {
    attrs: DeviceAttrs,
    serial: String,
    groups: BTreeSet<GroupId>,
}

impl Store {
    /// The impact of saving `proposed` as the next version of `policy`. Needs what saving needs
    /// (`policies.manage`, `secrets.write` for new secret values, a tenant-wide scope) and
    /// `devices.read`, as the answer lists printers. New secret values are used in memory only.
    /// A dry run with a secret value the policy does not hold answers whether printers hold
    /// it (their verifiers match or not): an oracle for guessing a password set at a printer's
    /// panel. Such a run is audited with the secrets' names (never the values), as saving it
    /// would be; a dry run that only keeps the policy's secrets is not.
    async fn audit_secrets_tried(
        &self,
        ctx: &Ctx,
        policy: PolicyId,
        version: i64,
        proposed: &PolicyWrite,
    ) -> Result<(), StoreError> {
        let held = self.policy_secrets(ctx.tenant, policy, version).await?;
        let tried: Vec<&String> = proposed
            .secrets
            .0
            .iter()
            .filter(|(id, v)| held.get(id).map(|h| h.expose()) != Some(v.expose()))
            .map(|(id, _)| id)
            .collect();
        if tried.is_empty() {
            return Ok(());
        }
        let mut w = self.begin_write().await?;
        let ev = AuditEvent::new(ctx, AuditAction::PolicyDryRun, format!("policy:{policy}"))
            .with_detail(serde_json::json!({ "secrets_tried": tried }));
        self.append_audit(&mut w, &tenant_chain(ctx.tenant), ev)
            .await?;
        self.commit(w).await
    }

    pub async fn dry_run_policy(
        &self,
        ctx: &Ctx,
        catalogue: &Catalogue,
        policy: PolicyId,
        proposed: &PolicyWrite,
        page: DryRunPage,
    ) -> Result<DryRun, StoreError> {
        let current = self.policy_get(ctx, policy).await?;
        Self::check_write(ctx, proposed)?;
        ctx.require(Permission::DevicesRead)?;
        checked_text(proposed)?;
        let now_side = self.side_now(ctx.tenant).await?;
        let version_after = current.version + 1;
        let mut after = now_side.clone();
        for a in after.assignments.iter_mut().filter(|a| a.policy == policy) {
            a.version = version_after;
            a.mode = proposed.mode;
        }
        after.items.insert(policy, proposed.items.clone());
        after
            .secrets
            .insert((policy, version_after), proposed.secrets.clone());
        let reach: BTreeSet<GroupId> = now_side
            .assignments
            .iter()
            .filter(|a| a.policy == policy)
            .map(|a| a.group)
            .collect();
        let (totals, printers, next_after) = self
            .impact(ctx, catalogue, &now_side, &after, &reach, page)
            .await?;
        self.audit_secrets_tried(ctx, policy, current.version, proposed)
            .await?;
        Ok(DryRun {
            policy,
            version: current.version,
            version_after,
            totals,
            printers,
            next_after,
        })
    }

    /// The impact of assigning `policy` to `group` with `priority` (or of changing the priority
    /// of that assignment). Needs what assigning needs (the group in scope, `policies.manage`)
    /// and `devices.read`.
    pub async fn dry_run_assignment(
        &self,
        ctx: &Ctx,
        catalogue: &Catalogue,
        policy: PolicyId,
        group: GroupId,
        priority: i64,
        page: DryRunPage,
    ) -> Result<DryRun, StoreError> {
        let current = self.policy_get(ctx, policy).await?;
        self.group_get(ctx, group).await?;
        ctx.require(Permission::PoliciesManage)?;
        ctx.require(Permission::DevicesRead)?;
        check_priority(priority)?;
        let now_side = self.side_now(ctx.tenant).await?;
        let mut after = now_side.clone();
        after
            .assignments
            .retain(|a| !(a.policy == policy && a.group == group));
        after.assignments.push(Assignment {
            policy,
            version: current.version,
            mode: current.mode,
            group,
            priority,
        });
        if !after.items.contains_key(&policy) {
            if has_secret_items(&current.items) {
                let s = self
                    .policy_secrets(ctx.tenant, policy, current.version)
                    .await?;
                after.secrets.insert((policy, current.version), s);
            }
            after.items.insert(policy, current.items.clone());
        }
        let reach = BTreeSet::from([group]);
        let (totals, printers, next_after) = self
            .impact(ctx, catalogue, &now_side, &after, &reach, page)
            .await?;
        Ok(DryRun {
            policy,
            version: current.version,
            version_after: current.version,
            totals,
            printers,
            next_after,
        })
    }

    /// The assignments and versions in force, with the secrets of the policies that have any
    /// (as the assessor opens them).
    async fn side_now(&self, t: TenantId) -> Result<Side, StoreError> {
        let (assignments, items) = self.effective_inputs(t).await?;
        let mut secrets = BTreeMap::new();
        for a in &assignments {
            let has = items.get(&a.policy).is_some_and(has_secret_items);
            if has && !secrets.contains_key(&(a.policy, a.version)) {
                let s = self.policy_secrets(t, a.policy, a.version).await?;
                secrets.insert((a.policy, a.version), s);
            }
        }
        Ok(Side {
            assignments,
            items,
            secrets,
        })
    }

    /// Every visible printer in a `reach` group, page by page: assessed now and after, the
    /// totals added up, and the changing ones of the requested page kept.
    async fn impact(
        &self,
        ctx: &Ctx,
        catalogue: &Catalogue,
        now_side: &Side,
        after: &Side,
        reach: &BTreeSet<GroupId>,
        page: DryRunPage,
    ) -> Result<(DryRunTotals, Vec<PrinterImpact>, Option<DeviceId>), StoreError> {
        let t = ctx.tenant;
        let now = self.now_ms();
        let rules = self.group_rules(t).await?;
        let want_keys = now_side.has_secrets() || after.has_secrets();
        let cursor = page.after.map(|d| d.to_string());
        let mut totals = DryRunTotals::default();
        let mut listed: Vec<PrinterImpact> = Vec::new();
        let mut more = false;
        let mut from = String::new();
        if reach.is_empty() {
            return Ok((totals, listed, None));
        }
        loop {
            let (members, last, full) = self.members_page(ctx, &rules, &from, PAGE).await?;
            let reached: Vec<&Member> = members
                .iter()
                .filter(|m| !m.groups.is_disjoint(reach))
                .collect();
            let ids: Vec<DeviceId> = reached.iter().map(|m| m.attrs.device).collect();
            let states = self.states_of(t, &ids).await?;
            let remediations = self.dry_run_remediations(t, &ids).await?;
            let (empty_state, none) = (DeviceState::default(), Remediation::none());
            let mut assessed = Vec::with_capacity(reached.len());
            for m in &reached {
                let d = m.attrs.device;
                let state = states.get(&d).map(|(s, _)| s).unwrap_or(&empty_state);
                let key = if want_keys && reports_verifier(state) {
                    self.verifier_key_of(t, d).await?
                } else {
                    None
                };
                let r = remediations.get(&d).unwrap_or(&none);
                let before = now_side.assess(catalogue, &m.groups, state, key.as_ref(), r, now);
                let after = after.assess(catalogue, &m.groups, state, key.as_ref(), r, now);
                let step = remediation_step(after.clone(), r, now);
                assessed.push((m, state, before, after, step));
            }
            let sending: Vec<DeviceId> = assessed
                .iter()
                .filter(|a| matches!(a.4, RemediationStep::Send(_)))
                .map(|a| a.0.attrs.device)
                .collect();
            let pending = self.dry_run_pending(t, &sending).await?;
            for (m, state, before, after, step) in assessed {
                let d = m.attrs.device;
                // What `remediate` would queue: nothing while work is still pending.
                let sent: BTreeSet<String> = match step {
                    RemediationStep::Send(by_policy) if !pending.contains(&d) => by_policy
                        .into_values()
                        .flatten()
                        .map(|i| i.item.setting_id)
                        .collect(),
                    _ => BTreeSet::new(),
                };
                let out_of_line = after.iter().any(|i| {
                    i.item.status == ItemStatus::NonCompliant && i.mode == PolicyMode::Remediate
                });
                let (items, changing) = compare(before, after, &sent, &mut totals);
                totals.printers_assessed += 1;
                totals.printers_changing += u64::from(changing);
                totals.printers_sent_settings += u64::from(!sent.is_empty());
                totals.printers_sent_later += u64::from(out_of_line && sent.is_empty());
                if items.is_empty() || cursor.as_ref().is_some_and(|c| at_or_before(&d, c)) {
                    continue;
                }
                if listed.len() >= page.limit {
                    more = true;
                    continue;
                }
                listed.push(PrinterImpact {
                    device: d,
                    serial: m.serial.clone(),
                    model: m.attrs.model.clone(),
                    name: state.info.as_ref().map(|i| i.name.clone()),
                    sent_settings: !sent.is_empty(),
                    items,
                });
            }
            match last {
                Some(d) if full => from = d.to_string(),
                _ => break,
            }
        }
        let next = if more {
            listed.last().map(|p| p.device)
        } else {
            None
        };
        Ok((totals, listed, next))
    }

    /// Up to `limit` live printers after `from` (by id), with their groups as the assessor's
    /// `refresh_groups` would make them (stored memberships, dynamic rules applied), keeping
    /// those the caller may see (a scoped caller: stored membership in one of its groups).
    /// Also returns the last id read and whether the page was full (more may follow).
    async fn members_page(
        &self,
        ctx: &Ctx,
        rules: &[(GroupId, GroupRule)],
        from: &str,
        limit: i64,
    ) -> Result<(Vec<Member>, Option<DeviceId>, bool), StoreError> {
        let t = ctx.tenant;
        let rows = sqlx::query(
            "SELECT id, model, firmware, site, tags, serial FROM devices WHERE tenant_id = $1 AND removed_at IS NULL AND id > $2 ORDER BY id LIMIT $3",
        )
        .bind(t.to_string())
        .bind(from)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut page = Vec::with_capacity(rows.len());
        for r in &rows {
            let tags: Option<String> = r.try_get(4)?;
            let attrs = DeviceAttrs {
                device: parse_id("devices.id", &r.try_get::<String, _>(0)?)?,
                model: r.try_get(1)?,
                firmware: r.try_get(2)?,
                site: r.try_get(3)?,
                tags: match tags {
                    Some(t) => from_json("devices.tags", &t)?,
                    None => BTreeSet::new(),
                },
            };
            page.push((attrs, r.try_get::<String, _>(5)?));
        }
        let ids: Vec<DeviceId> = page.iter().map(|(a, _)| a.device).collect();
        let (last, full) = (
            ids.last().copied(),
            i64::try_from(ids.len()).unwrap_or(i64::MAX) >= limit,
        );
        let mut stored: BTreeMap<DeviceId, BTreeSet<GroupId>> = BTreeMap::new();
        for chunk in ids.chunks(IDS_PER_QUERY) {
            let sql = format!(
                "SELECT device_id, group_id FROM group_devices WHERE tenant_id = $1 AND device_id IN ({})",
                in_list_from(2, chunk.len())
            );
            let mut q = sqlx::query(&sql).bind(t.to_string());
            for d in chunk {
                q = q.bind(d.to_string());
            }
            for r in q.fetch_all(&self.pool).await? {
                stored
                    .entry(parse_id(
                        "group_devices.device_id",
                        &r.try_get::<String, _>(0)?,
                    )?)
                    .or_default()
                    .insert(parse_id(
                        "group_devices.group_id",
                        &r.try_get::<String, _>(1)?,
                    )?);
            }
        }
        let mut out = Vec::with_capacity(page.len());
        for (attrs, serial) in page {
            let mine = stored.remove(&attrs.device).unwrap_or_default();
            let visible = match &ctx.scope {
                Scope::Tenant => true,
                Scope::Groups(g) => !g.is_disjoint(&mine),
            };
            if !visible {
                continue;
            }
            let mut groups = mine;
            let view = DeviceAttributes {
                model: &attrs.model,
                firmware: &attrs.firmware,
                site: attrs.site.as_deref(),
                tags: &attrs.tags,
            };
            for (g, rule) in rules {
                if rule.matches(&view) {
                    groups.insert(*g);
                } else {
                    groups.remove(g);
                }
            }
            out.push(Member {
                attrs,
                serial,
                groups,
            });
        }
        Ok((out, last, full))
    }

    /// The remediation rows of `devices`, read as `assessment::remediations_of` reads them but
    /// outside a write transaction: a dry run must not take the write lock.
    async fn dry_run_remediations(
        &self,
        t: TenantId,
        devices: &[DeviceId],
    ) -> Result<BTreeMap<DeviceId, Remediation>, StoreError> {
        let mut out = BTreeMap::new();
        for chunk in devices.chunks(IDS_PER_QUERY) {
            let sql = format!(
                "SELECT device_id, attempts, next_at, unsupported, last_work FROM remediation_state WHERE tenant_id = $1 AND device_id IN ({})",
                in_list_from(2, chunk.len())
            );
            let mut q = sqlx::query(&sql).bind(t.to_string());
            for d in chunk {
                q = q.bind(d.to_string());
            }
            for r in q.fetch_all(&self.pool).await? {
                let last_work: Option<String> = r.try_get(4)?;
                out.insert(
                    parse_id("remediation_state.device_id", &r.try_get::<String, _>(0)?)?,
                    Remediation {
                        attempts: r.try_get(1)?,
                        next_at: r.try_get(2)?,
                        unsupported: from_json(
                            "remediation_state.unsupported",
                            &r.try_get::<String, _>(3)?,
                        )?,
                        has_last_work: last_work.is_some(),
                    },
                );
            }
        }
        Ok(out)
    }

    /// Which of `devices` have an `apply_settings` item pending (the assessor then queues none).
    async fn dry_run_pending(
        &self,
        t: TenantId,
        devices: &[DeviceId],
    ) -> Result<BTreeSet<DeviceId>, StoreError> {
        let mut out = BTreeSet::new();
        for chunk in devices.chunks(IDS_PER_QUERY) {
            let sql = format!(
                "SELECT DISTINCT device_id FROM outbox WHERE tenant_id = $1 AND kind = $2 AND status = 'pending' AND device_id IN ({})",
                in_list_from(3, chunk.len())
            );
            let mut q = sqlx::query(&sql)
                .bind(t.to_string())
                .bind(WorkKind::ApplySettings.as_str());
            for d in chunk {
                q = q.bind(d.to_string());
            }
            for r in q.fetch_all(&self.pool).await? {
                out.insert(parse_id("outbox.device_id", &r.try_get::<String, _>(0)?)?);
            }
        }
        Ok(out)
    }
}

fn has_secret_items(items: &PolicyItems) -> bool {
    items
        .values()
        .any(|x| matches!(x, PolicyItem::Secret { .. }))
}

/// Whether `d` sorts at or before the cursor, in the database's order of ids (their text).
fn at_or_before(d: &DeviceId, cursor: &str) -> bool {
    d.to_string().as_str() <= cursor
}

fn reports_verifier(state: &DeviceState) -> bool {
    state.settings.values().any(|v| {
        matches!(
            v,
            printfleet_protocol::messages::ReportedValue::Secret {
                verifier: Some(_),
                ..
            }
        )
    })
}

/// The items of one printer that would change (status, wanted value, presence) or be sent, and
/// whether any would change; counts them into `totals`.
fn compare(
    before: Vec<StoredItem>,
    after: Vec<StoredItem>,
    sent: &BTreeSet<String>,
    totals: &mut DryRunTotals,
) -> (Vec<ItemImpact>, bool) {
    let mut now: BTreeMap<String, StoredItem> = before
        .into_iter()
        .map(|i| (i.item.setting_id.clone(), i))
        .collect();
    let mut out = Vec::new();
    let mut changing = false;
    let mut push = |b: Option<StoredItem>, a: Option<StoredItem>, id: String| {
        let status_changes = b.as_ref().map(|i| i.item.status) != a.as_ref().map(|i| i.item.status);
        let wanted = |i: &Option<StoredItem>| i.as_ref().and_then(|i| i.item.wanted.clone());
        let (wanted_now, wanted_after) = (wanted(&b), wanted(&a));
        let changes = status_changes || wanted_now != wanted_after;
        let is_sent = sent.contains(&id);
        if !changes && !is_sent {
            return;
        }
        changing |= changes;
        let per_item = totals.by_item.entry(id.clone()).or_default();
        per_item.sent += u64::from(is_sent);
        if status_changes {
            match a.as_ref() {
                Some(i) => {
                    totals.items_becoming.add(i.item.status, 1);
                    per_item.becoming.add(i.item.status, 1);
                }
                None => {
                    totals.items_no_longer_assessed += 1;
                    per_item.no_longer_assessed += 1;
                }
            }
        }
        let either = a.as_ref().or(b.as_ref());
        out.push(ItemImpact {
            current: b.as_ref().map(|i| i.item.status),
            predicted: a.as_ref().map(|i| i.item.status),
            reported: either.and_then(|i| i.item.reported.clone()),
            detail: a.as_ref().and_then(|i| i.item.detail.clone()),
            policy: a.as_ref().map(|i| i.policy),
            wanted_now,
            wanted_after,
            sent: is_sent,
            setting_id: id,
        });
    };
    for a in after {
        let id = a.item.setting_id.clone();
        let b = now.remove(&id);
        push(b, Some(a), id);
    }
    for (id, b) in now {
        push(Some(b), None, id);
    }
    out.sort_by(|x, y| x.setting_id.cmp(&y.setting_id));
    (out, changing)
}

#[cfg(test)]
mod tests {
    use super::*;
    use printfleet_domain::policy::ItemAssessment;

    fn item(id: &str, status: ItemStatus, wanted: serde_json::Value) -> StoredItem {
        StoredItem {
            item: ItemAssessment {
                setting_id: id.into(),
                status,
                reported: Some(serde_json::json!(true)),
                wanted: Some(wanted),
                detail: None,
            },
            policy: PolicyId::new_random(),
            version: 1,
            mode: PolicyMode::Remediate,
            since_ms: 0,
        }
    }

    #[test]
    fn only_what_changes_or_is_sent_is_listed_and_counted() {
        use serde_json::json as j;
        use ItemStatus::*;
        let before = vec![
            item("same", Compliant, j!(true)),
            item("flips", Compliant, j!(true)),
            item("retarget", NonCompliant, j!(24)),
            item("gone", Unknown, j!(1)),
            item("resent", NonCompliant, j!(false)),
        ];
        let after = vec![
            item("same", Compliant, j!(true)),
            item("flips", NonCompliant, j!(false)),
            item("retarget", NonCompliant, j!(48)),
            item("new", Unsupported, j!("x")),
            item("resent", NonCompliant, j!(false)),
        ];
        let sent = BTreeSet::from(["flips".to_string(), "resent".to_string()]);
        let mut totals = DryRunTotals::default();
        let (items, changing) = compare(before, after, &sent, &mut totals);
        let ids: Vec<&str> = items.iter().map(|i| i.setting_id.as_str()).collect();
        assert_eq!(ids, ["flips", "gone", "new", "resent", "retarget"]);
        assert!(changing);
        assert_eq!(totals.items_becoming.non_compliant, 1);
        assert_eq!(totals.items_becoming.unsupported, 1);
        assert_eq!(totals.items_no_longer_assessed, 1);
        assert_eq!(totals.by_item["flips"].becoming.non_compliant, 1);
        assert_eq!(totals.by_item["flips"].sent, 1);
        assert_eq!(totals.by_item["retarget"], ItemTotals::default());
        assert_eq!(totals.by_item.len(), 5);
        let gone = &items[1];
        assert_eq!((gone.current, gone.predicted), (Some(Unknown), None));
        assert!(items[3].sent && items[3].current == items[3].predicted);

        // Nothing but a resend: listed, not "changing".
        let mut t = DryRunTotals::default();
        let (items, changing) = compare(
            vec![item("a", NonCompliant, j!(1))],
            vec![item("a", NonCompliant, j!(1))],
            &BTreeSet::from(["a".to_string()]),
            &mut t,
        );
        assert_eq!((items.len(), changing), (1, false));
        assert_eq!(
            (t.items_becoming, t.by_item["a"].sent),
            (StatusTally::default(), 1)
        );
    }
}
