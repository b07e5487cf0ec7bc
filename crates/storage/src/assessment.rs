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
use crate::codec::{from_json, in_list_from, parse_id, tenant_scope, to_json, value_rows};
use crate::counts::{CountDeltas, Share};
use crate::dynamic_groups::DeviceAttrs;
use crate::enrolment::{secrets_place as device_secrets_place, DeviceSecrets};
use crate::outbox::WorkKind;
use crate::{Store, StoreError};
use printfleet_domain::catalogue::Catalogue;
use printfleet_domain::policy::{
    self, AssessInput, DeviceAttributes, EffectivePolicy, GroupRule, ItemAssessment, ItemStatus,
    PolicyItem, PolicyMode, PolicySecrets, StatusTally,
};
use printfleet_domain::telemetry::DeviceState;
use printfleet_domain::{DeviceId, GroupId, PolicyId, TenantId};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use std::collections::{BTreeMap, BTreeSet};

/// One assessed item as stored in `device_compliance.items`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(from = "StoredItemRow<String, serde_json::Value>")]
pub struct StoredItem {
    pub item: ItemAssessment,
    pub policy: PolicyId,
    pub version: i64,
    pub mode: PolicyMode,
    /// Since when the item has had this status.
    pub since_ms: i64,
}

/// The stored form of a [`StoredItem`]: one flat object, absent values left out. Written and
/// read by derived code rather than `#[serde(flatten)]`, which buffers every field and made
/// the items (60 per printer, every assessment) the assessor's costliest JSON.
#[derive(Serialize, Deserialize)]
struct StoredItemRow<S, V> {
    setting_id: S,
    status: ItemStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reported: Option<V>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    wanted: Option<V>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    detail: Option<S>,
    policy: PolicyId,
    version: i64,
    mode: PolicyMode,
    since_ms: i64,
}

impl From<StoredItemRow<String, serde_json::Value>> for StoredItem {
    fn from(r: StoredItemRow<String, serde_json::Value>) -> Self {
        StoredItem {
            item: ItemAssessment {
                setting_id: r.setting_id,
                status: r.status,
                reported: r.reported,
                wanted: r.wanted,
                detail: r.detail,
            },
            policy: r.policy,
            version: r.version,
            mode: r.mode,
            since_ms: r.since_ms,
        }
    }
}

impl Serialize for StoredItem {
    fn serialize<Z: serde::Serializer>(&self, z: Z) -> Result<Z::Ok, Z::Error> {
        StoredItemRow {
            setting_id: self.item.setting_id.as_str(),
            status: self.item.status,
            reported: self.item.reported.as_ref(),
            wanted: self.item.wanted.as_ref(),
            detail: self.item.detail.as_deref(),
            policy: self.policy,
            version: self.version,
            mode: self.mode,
            since_ms: self.since_ms,
        }
        .serialize(z)
    }
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

/// What an earlier assessment of an item is still needed for: its status and since when (for
/// `since_ms`, the history and the count deltas). Read without the item's values, which are
/// most of the stored JSON.
#[derive(Deserialize)]
pub(crate) struct PreviousItem {
    setting_id: String,
    status: ItemStatus,
    policy: PolicyId,
    version: i64,
    since_ms: i64,
}

/// A printer's stored assessment, as far as a new one needs it.
struct Previous {
    items: Vec<PreviousItem>,
    status: ItemStatus,
    /// The groups its share of the counts was added to.
    counted: Vec<GroupId>,
}

pub(crate) struct Remediation {
    pub(crate) attempts: i64,
    pub(crate) next_at: i64,
    pub(crate) unsupported: BTreeSet<String>,
    /// Whether the row names work still awaited (what "nothing to send" clears).
    pub(crate) has_last_work: bool,
}

impl Remediation {
    pub(crate) fn none() -> Self {
        Remediation {
            attempts: 0,
            next_at: 0,
            unsupported: BTreeSet::new(),
            has_last_work: false,
        }
    }
}

/// The part of a stored state an assessment reads (`DeviceState::same_compliance_inputs` says
/// which; keep the two together); the rest (meters, supplies, events, provenance) is skipped
/// while parsing instead of being built and dropped.
#[derive(Deserialize)]
struct AssessedState {
    #[serde(default)]
    info: Option<printfleet_protocol::messages::DeviceInfo>,
    #[serde(default)]
    settings: BTreeMap<String, printfleet_protocol::messages::ReportedValue>,
}

/// Items out of line per (policy, version).
pub(crate) type ToSend = BTreeMap<(PolicyId, i64), Vec<StoredItem>>;

/// What a printer's remediation needs after its assessment.
pub(crate) enum RemediationStep {
    /// Back-off not expired: nothing.
    Wait,
    /// Nothing out of line to send: no longer due for a retry.
    Clear,
    /// Items to send, per remediating policy version.
    Send(ToSend),
}

/// One printer's assessment, ready to write.
struct Assessed {
    device: DeviceId,
    /// The state's `settings_at` this was assessed against (`state_received_at`).
    received_at: i64,
    status: ItemStatus,
    tally: StatusTally,
    items: String,
    /// The groups its share of the counts goes to (JSON array).
    counted_groups: String,
    changes: Vec<serde_json::Value>,
    remediation: RemediationStep,
}

/// Rows per multi-row statement, keeping each statement near 100 parameters (see
/// `codec::value_rows`).
const IDS_PER_QUERY: usize = 100;
const COMPLIANCE_ROWS: usize = 8; // 13 columns
const HISTORY_ROWS: usize = 16; // 6 columns

/// Binds `ids` after the statement's other parameters.
fn bind_ids<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ids: &[DeviceId],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    for d in ids {
        q = q.bind(d.to_string());
    }
    q
}

impl Store {
    /// Up to `limit` printers that need assessing, with their tenants.
    pub async fn assessment_due(
        &self,
        limit: i64,
    ) -> Result<Vec<(TenantId, DeviceId)>, StoreError> {
        self.assessment_due_after(None, limit).await
    }

    /// Like [`Store::assessment_due`], in (tenant, printer) order after `after`: a sweep passes
    /// the last printer of the previous answer, so it walks the printers once instead of
    /// re-reading every printer already assessed with each batch.
    pub async fn assessment_due_after(
        &self,
        after: Option<(TenantId, DeviceId)>,
        limit: i64,
    ) -> Result<Vec<(TenantId, DeviceId)>, StoreError> {
        let now = self.now_ms();
        // Every id sorts after the empty string.
        let (after_t, after_d) = after
            .map(|(t, d)| (t.to_string(), d.to_string()))
            .unwrap_or_default();
        let rows = sqlx::query(
            "SELECT d.tenant_id, d.id FROM devices d \
             LEFT JOIN device_state s ON s.tenant_id = d.tenant_id AND s.device_id = d.id \
             LEFT JOIN device_compliance c ON c.tenant_id = d.tenant_id AND c.device_id = d.id \
             LEFT JOIN policy_epochs e ON e.tenant_id = d.tenant_id \
             LEFT JOIN remediation_state r ON r.tenant_id = d.tenant_id AND r.device_id = d.id \
             WHERE (d.tenant_id, d.id) > ($3, $4) AND ( \
                (d.removed_at IS NULL AND (c.device_id IS NULL OR c.epoch < COALESCE(e.epoch, 0) \
                    OR c.state_received_at <> COALESCE(s.settings_at, 0) \
                    OR (c.status = 'non_compliant' AND r.next_at IS NOT NULL AND r.next_at <= $1 AND r.last_work IS NOT NULL))) \
                OR (d.removed_at IS NOT NULL AND c.device_id IS NOT NULL)) \
             ORDER BY d.tenant_id, d.id LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .bind(after_t)
        .bind(after_d)
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

    /// The info and settings of `devices` (what compliance depends on), with when they last
    /// changed (`settings_at`, which the compliance row records).
    pub(crate) async fn states_of(
        &self,
        t: TenantId,
        devices: &[DeviceId],
    ) -> Result<BTreeMap<DeviceId, (DeviceState, i64)>, StoreError> {
        let mut out = BTreeMap::new();
        for chunk in devices.chunks(IDS_PER_QUERY) {
            let sql = format!(
                "SELECT device_id, state, settings_at FROM device_state WHERE tenant_id = $1 AND device_id IN ({})",
                in_list_from(2, chunk.len())
            );
            let q = bind_ids(sqlx::query(&sql).bind(t.to_string()), chunk);
            for r in q.fetch_all(&self.pool).await? {
                let id: DeviceId = parse_id("device_state.device_id", &r.try_get::<String, _>(0)?)?;
                let s: AssessedState =
                    from_json("device_state.state", &r.try_get::<String, _>(1)?)?;
                let state = DeviceState {
                    info: s.info,
                    settings: s.settings,
                    ..DeviceState::default()
                };
                out.insert(id, (state, r.try_get(2)?));
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
        for chunk in devices.chunks(IDS_PER_QUERY) {
            let sql = format!(
                "SELECT device_id, items, status, counted_groups FROM device_compliance WHERE tenant_id = $1 AND device_id IN ({})",
                in_list_from(2, chunk.len())
            );
            let q = bind_ids(sqlx::query(&sql).bind(t.to_string()), chunk);
            for r in q.fetch_all(&mut *w.tx).await? {
                let id: DeviceId =
                    parse_id("device_compliance.device_id", &r.try_get::<String, _>(0)?)?;
                let status = ItemStatus::parse(&r.try_get::<String, _>(2)?)
                    .ok_or_else(|| StoreError::Corrupt("device_compliance.status".into()))?;
                out.insert(
                    id,
                    Previous {
                        items: from_json("device_compliance.items", &r.try_get::<String, _>(1)?)?,
                        status,
                        counted: from_json(
                            "device_compliance.counted_groups",
                            &r.try_get::<String, _>(3)?,
                        )?,
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
        Ok(self
            .remediations_of(w, t, &[d])
            .await?
            .remove(&d)
            .unwrap_or_else(Remediation::none))
    }

    /// The remediation rows of `devices` (printers without one are absent).
    async fn remediations_of(
        &self,
        w: &mut WriteTx,
        t: TenantId,
        devices: &[DeviceId],
    ) -> Result<BTreeMap<DeviceId, Remediation>, StoreError> {
        let mut out = BTreeMap::new();
        for chunk in devices.chunks(IDS_PER_QUERY) {
            let sql = format!(
                "SELECT device_id, attempts, next_at, unsupported, last_work FROM remediation_state WHERE tenant_id = $1 AND device_id IN ({})",
                in_list_from(2, chunk.len())
            );
            let q = bind_ids(sqlx::query(&sql).bind(t.to_string()), chunk);
            for r in q.fetch_all(&mut *w.tx).await? {
                let id: DeviceId =
                    parse_id("remediation_state.device_id", &r.try_get::<String, _>(0)?)?;
                let last_work: Option<String> = r.try_get(4)?;
                out.insert(
                    id,
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

    /// The groups of `devices` (printers in none are absent).
    async fn groups_of(
        &self,
        w: &mut WriteTx,
        t: TenantId,
        devices: &[DeviceId],
    ) -> Result<BTreeMap<DeviceId, BTreeSet<GroupId>>, StoreError> {
        let mut out: BTreeMap<DeviceId, BTreeSet<GroupId>> = BTreeMap::new();
        for chunk in devices.chunks(IDS_PER_QUERY) {
            let sql = format!(
                "SELECT device_id, group_id FROM group_devices WHERE tenant_id = $1 AND device_id IN ({})",
                in_list_from(2, chunk.len())
            );
            let q = bind_ids(sqlx::query(&sql).bind(t.to_string()), chunk);
            for r in q.fetch_all(&mut *w.tx).await? {
                out.entry(parse_id(
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
        Ok(out)
    }

    /// The ids of the tenant's groups (`table` device_groups) or policies (`policies`).
    async fn ids_in<I: std::str::FromStr + Ord>(
        &self,
        w: &mut WriteTx,
        t: TenantId,
        table: &'static str,
    ) -> Result<BTreeSet<I>, StoreError> {
        sqlx::query(&format!("SELECT id FROM {table} WHERE tenant_id = $1"))
            .bind(t.to_string())
            .fetch_all(&mut *w.tx)
            .await?
            .iter()
            .map(|r| parse_id(table, &r.try_get::<String, _>(0)?))
            .collect()
    }

    /// Brings the dynamic memberships of `attrs` in line with the rules, rewriting only the
    /// printers whose stored membership disagrees, and returns every printer's groups.
    async fn refresh_groups(
        &self,
        w: &mut WriteTx,
        t: TenantId,
        rules: &[(GroupId, GroupRule)],
        attrs: &[DeviceAttrs],
        devices: &[DeviceId],
    ) -> Result<BTreeMap<DeviceId, BTreeSet<GroupId>>, StoreError> {
        let mut groups = self.groups_of(w, t, devices).await?;
        let mut stale = Vec::new();
        for a in attrs {
            let view = DeviceAttributes {
                model: &a.model,
                firmware: &a.firmware,
                site: a.site.as_deref(),
                tags: &a.tags,
            };
            let set = groups.entry(a.device).or_default();
            let mut differs = false;
            for (g, rule) in rules {
                let want = rule.matches(&view);
                differs |= want != set.contains(g);
                if want {
                    set.insert(*g);
                } else {
                    set.remove(g);
                }
            }
            if differs {
                stale.push(a.clone());
            }
        }
        if !stale.is_empty() {
            self.refresh_dynamic_membership(w, t, rules, &stale).await?;
        }
        Ok(groups)
    }

    pub(crate) async fn verifier_key_of(
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
    ///
    /// Reads and writes go per batch, not per printer: a few `IN (…)` reads of the batch's
    /// states, memberships, previous assessments and remediation rows, everything assessed in
    /// memory, then multi-row writes of the rows, the history and the count deltas.
    pub async fn assess_devices(
        &self,
        catalogue: &Catalogue,
        t: TenantId,
        devices: &[DeviceId],
    ) -> Result<AssessOutcome, StoreError> {
        // Each printer once: a multi-row upsert may not touch a row twice.
        let unique: BTreeSet<DeviceId> = devices.iter().copied().collect();
        let devices: Vec<DeviceId> = unique.into_iter().collect();
        let devices = devices.as_slice();
        let now = self.now_ms();
        // The epoch is read before the policies: a change landing in between leaves these
        // printers assessed under the older epoch, so due again, never the reverse.
        let epoch: i64 = sqlx::query("SELECT epoch FROM policy_epochs WHERE tenant_id = $1")
            .bind(t.to_string())
            .fetch_optional(&self.pool)
            .await?
            .map(|r| r.try_get(0))
            .transpose()?
            .unwrap_or(0);
        let rules = self.group_rules(t).await?;
        let (assignments, items_by_policy) = self.effective_inputs(t).await?;
        let attrs = self.device_attrs(t, devices).await?;
        let live: BTreeSet<DeviceId> = attrs.iter().map(|a| a.device).collect();
        let states = self.states_of(t, devices).await?;
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
        // Unique per-printer secrets (`device_secrets`): does any policy in force generate one?
        let has_generated = crate::device_secrets::any_generated(&items_by_policy);
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
            if reports_verifier && (!policy_secrets.is_empty() || has_generated) {
                if let Some(k) = self.verifier_key_of(t, *d).await? {
                    verifier_keys.insert(*d, k);
                }
            }
        }

        let mut w = self.begin_write().await?;
        let groups = self
            .refresh_groups(&mut w, t, &rules, &attrs, devices)
            .await?;
        // Each live printer's effective policy, once: its generated values and its assessment
        // both follow from it.
        let no_groups = BTreeSet::new();
        let effective_of: BTreeMap<DeviceId, EffectivePolicy> = live
            .iter()
            .map(|d| {
                let in_groups = groups.get(d).unwrap_or(&no_groups);
                let e = policy::effective(in_groups, &assignments, |p| items_by_policy.get(&p));
                (*d, e)
            })
            .collect();
        // Each printer's own generated values, generated or rotated here when due.
        let generated = self
            .generated_for_batch(&mut w, catalogue, t, devices, &effective_of, now)
            .await?;
        let previous = self.previous_of(&mut w, t, devices).await?;
        let remediations = self.remediations_of(&mut w, t, devices).await?;
        // A deleted group's or policy's counts went with it: nothing to take out there.
        let existing: BTreeSet<GroupId> = self.ids_in(&mut w, t, "device_groups").await?;
        let policies: BTreeSet<PolicyId> = self.ids_in(&mut w, t, "policies").await?;
        let mut counts = CountDeltas::default();
        let mut held = Vec::new();
        let mut gone = Vec::new();
        let mut assessed = Vec::with_capacity(devices.len());
        let (empty_state, no_remediation) = (DeviceState::default(), Remediation::none());
        for &d in devices {
            let prev = previous.get(&d);
            let old = prev.map(|p| p.items.as_slice()).unwrap_or(&[]);
            let before = match prev {
                Some(p) => Share::of(
                    p.counted.iter().copied().filter(|g| existing.contains(g)),
                    p.status,
                    old.iter()
                        .filter(|i| policies.contains(&i.policy))
                        .map(|i| (i.policy, i.setting_id.as_str(), i.status)),
                ),
                None => Share::none(),
            };
            if !live.contains(&d) {
                if previous.contains_key(&d) {
                    gone.push(d);
                }
                counts.change(before, Share::none());
                continue;
            }
            let in_groups = groups.get(&d).unwrap_or(&no_groups);
            // Every live printer has one (computed above).
            let Some(effective) = effective_of.get(&d) else {
                return Err(StoreError::Corrupt(format!("no effective policy for {d}")));
            };
            let (state, received_at) = states
                .get(&d)
                .map(|(s, r)| (s, *r))
                .unwrap_or((&empty_state, 0));
            let remediation = remediations.get(&d).unwrap_or(&no_remediation);
            let key = verifier_keys.get(&d);
            let expected = |id: &str, o: &policy::Origin| -> Option<String> {
                let unique = matches!(
                    items_by_policy.get(&o.policy).and_then(|i| i.get(id)),
                    Some(PolicyItem::Secret {
                        generate: Some(_),
                        ..
                    })
                );
                let secret = if unique {
                    &generated.get(&(d, id.to_string()))?.value
                } else {
                    policy_secrets.get(&(o.policy, o.version))?.get(id)?
                };
                Some(hex::encode(printfleet_protocol::verifier::secret_verifier(
                    key?,
                    id,
                    secret.expose(),
                )))
            };
            let items = policy::assess(&AssessInput {
                catalogue,
                state,
                effective,
                expected_verifier: &expected,
                refused_unsupported: &remediation.unsupported,
                now_ms: now,
            });
            let stored = stored_items(items, effective, old, now);
            // A generated value the printer just proved it holds becomes the one a reveal
            // falls back to (see `device_secrets`).
            for i in &stored {
                let id = &i.item.setting_id;
                if let Some(g) = generated.get(&(d, id.clone())) {
                    if i.item.status == ItemStatus::Compliant
                        && g.held_generation != Some(g.generation)
                    {
                        held.push((d, id.clone(), g.generation));
                    }
                }
            }
            let tally = StatusTally::of(stored.iter().map(|i| &i.item));
            let status = if stored.is_empty() {
                ItemStatus::Compliant
            } else {
                tally.overall()
            };
            counts.change(
                before,
                Share::of(
                    in_groups.iter().copied(),
                    status,
                    stored
                        .iter()
                        .map(|i| (i.policy, i.item.setting_id.as_str(), i.item.status)),
                ),
            );
            assessed.push(Assessed {
                device: d,
                received_at,
                status,
                tally,
                items: to_json(&stored)?,
                counted_groups: to_json(in_groups)?,
                changes: history_changes(old, &stored),
                remediation: remediation_step(stored, remediation, now),
            });
        }
        self.delete_compliance(&mut w, t, &gone).await?;
        self.record_held(&mut w, t, &held).await?;
        self.write_history(&mut w, t, now, &catalogue.version, &assessed)
            .await?;
        self.write_compliance(&mut w, t, epoch, now, &catalogue.version, &assessed)
            .await?;
        let work_queued = self
            .remediate(&mut w, t, &assessed, &remediations, now)
            .await?;
        self.apply_count_deltas(&mut w, t, counts).await?;
        self.commit(w).await?;
        Ok(AssessOutcome {
            assessed: assessed.len(),
            work_queued,
        })
    }

    async fn delete_compliance(
        &self,
        w: &mut WriteTx,
        t: TenantId,
        devices: &[DeviceId],
    ) -> Result<(), StoreError> {
        for chunk in devices.chunks(IDS_PER_QUERY) {
            let sql = format!(
                "DELETE FROM device_compliance WHERE tenant_id = $1 AND device_id IN ({})",
                in_list_from(2, chunk.len())
            );
            bind_ids(sqlx::query(&sql).bind(t.to_string()), chunk)
                .execute(&mut *w.tx)
                .await?;
        }
        Ok(())
    }

    /// One history row per printer whose items changed.
    async fn write_history(
        &self,
        w: &mut WriteTx,
        t: TenantId,
        now: i64,
        catalogue_version: &str,
        assessed: &[Assessed],
    ) -> Result<(), StoreError> {
        let changed: Vec<&Assessed> = assessed.iter().filter(|a| !a.changes.is_empty()).collect();
        for chunk in changed.chunks(HISTORY_ROWS) {
            let sql = format!(
                "INSERT INTO assessment_history (tenant_id, id, device_id, at, catalogue_version, changes) VALUES {}",
                value_rows(chunk.len(), 6)
            );
            let sql = crate::codec::positional(self.backend, sql);
            let mut q = sqlx::query(&sql);
            for a in chunk {
                q = q
                    .bind(t.to_string())
                    .bind(uuid::Uuid::new_v4().to_string())
                    .bind(a.device.to_string())
                    .bind(now)
                    .bind(catalogue_version.to_string())
                    .bind(serde_json::Value::Array(a.changes.clone()).to_string());
            }
            q.execute(&mut *w.tx).await?;
        }
        Ok(())
    }

    /// Each printer's row, inserted or replaced.
    async fn write_compliance(
        &self,
        w: &mut WriteTx,
        t: TenantId,
        epoch: i64,
        now: i64,
        catalogue_version: &str,
        assessed: &[Assessed],
    ) -> Result<(), StoreError> {
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        for chunk in assessed.chunks(COMPLIANCE_ROWS) {
            let sql = format!(
                "INSERT INTO device_compliance (tenant_id, device_id, epoch, state_received_at, assessed_at, catalogue_version, status, compliant, non_compliant, unsupported, unknown, items, counted_groups) VALUES {} \
                 ON CONFLICT (tenant_id, device_id) DO UPDATE SET epoch = excluded.epoch, state_received_at = excluded.state_received_at, assessed_at = excluded.assessed_at, catalogue_version = excluded.catalogue_version, status = excluded.status, compliant = excluded.compliant, non_compliant = excluded.non_compliant, unsupported = excluded.unsupported, unknown = excluded.unknown, items = excluded.items, counted_groups = excluded.counted_groups",
                value_rows(chunk.len(), 13)
            );
            let sql = crate::codec::positional(self.backend, sql);
            let mut q = sqlx::query(&sql);
            for a in chunk {
                q = q
                    .bind(t.to_string())
                    .bind(a.device.to_string())
                    .bind(epoch)
                    .bind(a.received_at)
                    .bind(now)
                    .bind(catalogue_version.to_string())
                    .bind(a.status.as_str())
                    .bind(n(a.tally.compliant))
                    .bind(n(a.tally.non_compliant))
                    .bind(n(a.tally.unsupported))
                    .bind(n(a.tally.unknown))
                    .bind(a.items.clone())
                    .bind(a.counted_groups.clone());
            }
            q.execute(&mut *w.tx).await?;
        }
        Ok(())
    }

    /// Carries out the remediation steps of a batch: retries cleared in one statement per
    /// chunk; for printers with items to send, one `apply_settings` item per remediating policy
    /// unless work of that kind is still pending. Returns the printers that got work.
    async fn remediate(
        &self,
        w: &mut WriteTx,
        t: TenantId,
        assessed: &[Assessed],
        remediations: &BTreeMap<DeviceId, Remediation>,
        now: i64,
    ) -> Result<Vec<DeviceId>, StoreError> {
        let clear: Vec<DeviceId> = assessed
            .iter()
            .filter(|a| matches!(a.remediation, RemediationStep::Clear))
            .filter(|a| remediations.get(&a.device).is_some_and(|r| r.has_last_work))
            .map(|a| a.device)
            .collect();
        for chunk in clear.chunks(IDS_PER_QUERY) {
            let sql = format!(
                "UPDATE remediation_state SET last_work = NULL WHERE tenant_id = $1 AND last_work IS NOT NULL AND device_id IN ({})",
                in_list_from(2, chunk.len())
            );
            bind_ids(sqlx::query(&sql).bind(t.to_string()), chunk)
                .execute(&mut *w.tx)
                .await?;
        }
        let sending: Vec<(DeviceId, &ToSend)> = assessed
            .iter()
            .filter_map(|a| match &a.remediation {
                RemediationStep::Send(by_policy) => Some((a.device, by_policy)),
                _ => None,
            })
            .collect();
        let ids: Vec<DeviceId> = sending.iter().map(|(d, _)| *d).collect();
        let pending = self.pending_settings_work(w, t, &ids).await?;
        // Staged roll-outs (`rollouts`): which changes each printer may get now.
        let all: Vec<DeviceId> = assessed.iter().map(|a| a.device).collect();
        let mut gate = self.rollout_gate(w, t, &all).await?;
        let mut queued = Vec::new();
        let no_remediation = Remediation::none();
        for (d, by_policy) in sending {
            let r = remediations.get(&d).unwrap_or(&no_remediation);
            let next_at = now + backoff_ms(r.attempts.max(1));
            if pending.contains(&d) {
                // Still waiting for the printer to fetch: look again after a back-off.
                self.upsert_remediation(w, t, d, r.attempts, next_at, None, None, &r.unsupported)
                    .await?;
                continue;
            }
            let (by_policy, held) = gate.split(d, by_policy);
            if by_policy.is_empty() {
                self.rollout_hold(w, t, d, held.as_deref()).await?;
                continue;
            }
            let mut last = None;
            for ((policy, version), its) in by_policy.iter() {
                let id = self
                    .queue_apply_settings(w, t, d, *policy, *version, its, now)
                    .await?;
                gate.sent(d, *policy, *version, &id);
                last = Some(id);
            }
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
            queued.push(d);
        }
        let steps: Vec<(DeviceId, &RemediationStep, &str)> = assessed
            .iter()
            .map(|a| (a.device, &a.remediation, a.items.as_str()))
            .collect();
        self.rollout_record(w, t, &gate, &steps, now).await?;
        Ok(queued)
    }

    /// Which of `devices` still have an `apply_settings` item pending.
    async fn pending_settings_work(
        &self,
        w: &mut WriteTx,
        t: TenantId,
        devices: &[DeviceId],
    ) -> Result<BTreeSet<DeviceId>, StoreError> {
        let mut out = BTreeSet::new();
        for chunk in devices.chunks(IDS_PER_QUERY) {
            let sql = format!(
                "SELECT DISTINCT device_id FROM outbox WHERE tenant_id = $1 AND kind = $2 AND status = 'pending' AND device_id IN ({})",
                in_list_from(3, chunk.len())
            );
            let q = sqlx::query(&sql)
                .bind(t.to_string())
                .bind(WorkKind::ApplySettings.as_str());
            for r in bind_ids(q, chunk).fetch_all(&mut *w.tx).await? {
                out.insert(parse_id("outbox.device_id", &r.try_get::<String, _>(0)?)?);
            }
        }
        Ok(out)
    }

    /// Queues one `apply_settings` item; returns its id.
    #[allow(clippy::too_many_arguments)]
    async fn queue_apply_settings(
        &self,
        w: &mut WriteTx,
        t: TenantId,
        d: DeviceId,
        policy: PolicyId,
        version: i64,
        items: &[StoredItem],
        now: i64,
    ) -> Result<String, StoreError> {
        let mut settings = serde_json::Map::new();
        let mut resolve = Vec::new();
        for i in items {
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
        Ok(id)
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
        // One upsert (as the batched writes above): no read-then-write round trip.
        sqlx::query(
            "INSERT INTO remediation_state (tenant_id, device_id, attempts, next_at, last_work, last_reason, unsupported) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (tenant_id, device_id) DO UPDATE SET attempts = excluded.attempts, next_at = excluded.next_at, last_work = COALESCE(excluded.last_work, remediation_state.last_work), last_reason = excluded.last_reason, unsupported = excluded.unsupported",
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
        // A staged roll-out counts the outcome for the printer's wave.
        let reason = ack.reason.clone().or_else(|| {
            ack.results
                .iter()
                .find(|(_, x)| x.reason != UNSUPPORTED)
                .map(|(id, x)| format!("{id}: {}", x.reason))
        });
        self.rollout_ack(w, t, &ack.id, ok, reason.as_deref(), now)
            .await?;
        self.mark_for_assessment(w, t, d).await
    }
}

/// What a printer's remediation needs: nothing while its back-off runs; otherwise the items out
/// of line per remediating policy (or per any policy after an admin's "remediate now",
/// next_at = -1), or, with none, clearing the retry.
pub(crate) fn remediation_step(
    items: Vec<StoredItem>,
    r: &Remediation,
    now: i64,
) -> RemediationStep {
    let forced = r.next_at < 0;
    if !forced && r.next_at > now {
        return RemediationStep::Wait;
    }
    let mut by_policy = ToSend::new();
    for i in items {
        if i.item.status == ItemStatus::NonCompliant && (forced || i.mode == PolicyMode::Remediate)
        {
            by_policy.entry((i.policy, i.version)).or_default().push(i);
        }
    }
    if by_policy.is_empty() {
        RemediationStep::Clear
    } else {
        RemediationStep::Send(by_policy)
    }
}

pub(crate) fn stored_items(
    assessed: Vec<ItemAssessment>,
    effective: &EffectivePolicy,
    before: &[PreviousItem],
    now: i64,
) -> Vec<StoredItem> {
    let before: BTreeMap<&str, &PreviousItem> =
        before.iter().map(|i| (i.setting_id.as_str(), i)).collect();
    assessed
        .into_iter()
        .filter_map(|item| {
            let origin = &effective.get(&item.setting_id)?.origin;
            let since_ms = match before.get(item.setting_id.as_str()) {
                Some(b) if b.status == item.status => b.since_ms,
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

fn history_changes(before: &[PreviousItem], after: &[StoredItem]) -> Vec<serde_json::Value> {
    let old: BTreeMap<&str, ItemStatus> = before
        .iter()
        .map(|i| (i.setting_id.as_str(), i.status))
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
        .filter(|i| !now_ids.contains(i.setting_id.as_str()))
    {
        out.push(serde_json::json!({
            "setting_id": i.setting_id,
            "status": "no_longer_assessed",
            "previous": i.status,
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
