//! Reading compliance: one printer's items, its history of changes, its effective policy, and
//! fleet figures. The tenant's and each group's figures come from the incrementally kept
//! `compliance_counts` (see `counts`); a caller scoped to several groups gets figures computed
//! over the printers it can see, so a scoped user never learns about printers outside its
//! groups.

use crate::assessment::StoredItem;
use crate::codec::{from_json, parse_id};
use crate::{Store, StoreError};
use printfleet_domain::policy::{self, EffectivePolicy, ItemStatus, StatusTally};
use printfleet_domain::{Ctx, DeviceId, GroupId, Permission, PolicyId, Scope};
use sqlx::Row;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, PartialEq)]
pub struct DeviceCompliance {
    pub status: ItemStatus,
    pub assessed_at_ms: Option<i64>,
    pub catalogue_version: Option<String>,
    pub items: Vec<StoredItem>,
    pub remediation: Option<RemediationInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemediationInfo {
    pub attempts: i64,
    pub next_at_ms: i64,
    pub last_reason: Option<String>,
    pub unsupported: BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry {
    pub at_ms: i64,
    pub catalogue_version: String,
    pub changes: serde_json::Value,
}

/// Fleet figures: printers by overall status, and per policy its printers and items by status.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures {
    pub printers: StatusTally,
    /// policy → (printers by their status under it, items by setting id)
    pub policies: BTreeMap<PolicyId, (StatusTally, BTreeMap<String, StatusTally>)>,
}

impl Store {
    pub async fn device_compliance(
        &self,
        ctx: &Ctx,
        d: DeviceId,
    ) -> Result<DeviceCompliance, StoreError> {
        self.device_get(ctx, d).await?;
        let row = sqlx::query(
            "SELECT status, assessed_at, catalogue_version, items FROM device_compliance WHERE tenant_id = $1 AND device_id = $2",
        )
        .bind(ctx.tenant.to_string())
        .bind(d.to_string())
        .fetch_optional(&self.pool)
        .await?;
        let rem = sqlx::query(
            "SELECT attempts, next_at, last_reason, unsupported FROM remediation_state WHERE tenant_id = $1 AND device_id = $2",
        )
        .bind(ctx.tenant.to_string())
        .bind(d.to_string())
        .fetch_optional(&self.pool)
        .await?;
        let remediation = rem
            .map(|r| -> Result<_, StoreError> {
                Ok(RemediationInfo {
                    attempts: r.try_get(0)?,
                    next_at_ms: r.try_get(1)?,
                    last_reason: r.try_get(2)?,
                    unsupported: from_json(
                        "remediation_state.unsupported",
                        &r.try_get::<String, _>(3)?,
                    )?,
                })
            })
            .transpose()?;
        Ok(match row {
            None => DeviceCompliance {
                status: ItemStatus::Unknown,
                assessed_at_ms: None,
                catalogue_version: None,
                items: Vec::new(),
                remediation,
            },
            Some(r) => DeviceCompliance {
                status: ItemStatus::parse(&r.try_get::<String, _>(0)?)
                    .ok_or_else(|| StoreError::Corrupt("device_compliance.status".into()))?,
                assessed_at_ms: Some(r.try_get(1)?),
                catalogue_version: Some(r.try_get(2)?),
                items: from_json("device_compliance.items", &r.try_get::<String, _>(3)?)?,
                remediation,
            },
        })
    }

    /// A printer's assessment changes, newest first.
    pub async fn device_compliance_history(
        &self,
        ctx: &Ctx,
        d: DeviceId,
        limit: i64,
    ) -> Result<Vec<HistoryEntry>, StoreError> {
        self.device_get(ctx, d).await?;
        let rows = sqlx::query(
            "SELECT at, catalogue_version, changes FROM assessment_history WHERE tenant_id = $1 AND device_id = $2 ORDER BY at DESC LIMIT $3",
        )
        .bind(ctx.tenant.to_string())
        .bind(d.to_string())
        .bind(limit.clamp(1, 1000))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(HistoryEntry {
                    at_ms: r.try_get(0)?,
                    catalogue_version: r.try_get(1)?,
                    changes: from_json("assessment_history.changes", &r.try_get::<String, _>(2)?)?,
                })
            })
            .collect()
    }

    /// The policy that applies to a printer now, each item with its origin.
    pub async fn device_effective_policy(
        &self,
        ctx: &Ctx,
        d: DeviceId,
    ) -> Result<EffectivePolicy, StoreError> {
        let device = self.device_get(ctx, d).await?;
        ctx.require(Permission::PoliciesRead)?;
        let (assignments, items) = self.effective_inputs(ctx.tenant).await?;
        Ok(policy::effective(&device.groups, &assignments, |p| {
            items.get(&p)
        }))
    }

    /// Fleet figures the caller may see: of the tenant, of `group`, or of the one group a
    /// scoped caller is limited to, from the kept counts; a caller scoped to several groups
    /// gets figures computed over the printers it can see (their union cannot be added up from
    /// per-group counts), so it never learns about printers outside its groups.
    pub async fn compliance_figures(
        &self,
        ctx: &Ctx,
        group: Option<GroupId>,
    ) -> Result<Figures, StoreError> {
        if let Some(g) = group {
            let mut read = ctx.clone();
            read.permissions.insert(Permission::DevicesRead);
            self.group_get(&read, g).await?;
        }
        ctx.require(Permission::ReportsRead)?;
        let kept = match (group, &ctx.scope) {
            (Some(g), _) => Some(Some(g)),
            (None, Scope::Tenant) => Some(None),
            (None, Scope::Groups(g)) if g.len() == 1 => g.first().copied().map(Some),
            (None, Scope::Groups(_)) => None,
        };
        if let Some(scope) = kept {
            return self.kept_figures(ctx, scope).await;
        }
        let groups: BTreeSet<GroupId> = match &ctx.scope {
            Scope::Groups(g) => g.clone(),
            Scope::Tenant => BTreeSet::new(),
        };
        self.computed_figures(ctx, &groups).await
    }

    async fn computed_figures(
        &self,
        ctx: &Ctx,
        groups: &BTreeSet<GroupId>,
    ) -> Result<Figures, StoreError> {
        let mut devices: BTreeSet<String> = BTreeSet::new();
        for g in groups {
            for r in sqlx::query(
                "SELECT device_id FROM group_devices WHERE tenant_id = $1 AND group_id = $2",
            )
            .bind(ctx.tenant.to_string())
            .bind(g.to_string())
            .fetch_all(&self.pool)
            .await?
            {
                devices.insert(r.try_get(0)?);
            }
        }
        let mut f = Figures::default();
        let ids: Vec<String> = devices.into_iter().collect();
        for chunk in ids.chunks(100) {
            let sql = format!(
                "SELECT d.id, c.status, c.items FROM devices d LEFT JOIN device_compliance c ON c.tenant_id = d.tenant_id AND c.device_id = d.id WHERE d.tenant_id = $1 AND d.removed_at IS NULL AND d.id IN ({})",
                crate::codec::in_list_from(2, chunk.len())
            );
            let mut q = sqlx::query(&sql).bind(ctx.tenant.to_string());
            for d in chunk {
                q = q.bind(d);
            }
            for r in q.fetch_all(&self.pool).await? {
                let status: Option<String> = r.try_get(1)?;
                let status = status
                    .as_deref()
                    .and_then(ItemStatus::parse)
                    .unwrap_or(ItemStatus::Unknown);
                f.printers.add(status, 1);
                let Some(items) = r.try_get::<Option<String>, _>(2)? else {
                    continue;
                };
                let items: Vec<StoredItem> = from_json("device_compliance.items", &items)?;
                let mut per_policy: BTreeMap<PolicyId, StatusTally> = BTreeMap::new();
                for i in &items {
                    let entry = f.policies.entry(i.policy).or_default();
                    entry
                        .1
                        .entry(i.item.setting_id.clone())
                        .or_default()
                        .add(i.item.status, 1);
                    per_policy
                        .entry(i.policy)
                        .or_default()
                        .add(i.item.status, 1);
                }
                for (p, t) in per_policy {
                    f.policies.entry(p).or_default().0.add(t.overall(), 1);
                }
            }
        }
        Ok(f)
    }

    /// Figures of the tenant (`None`) or of one group from the kept counts: a few hundred rows
    /// whatever the fleet's size. Printers not assessed yet (new, or whose membership just
    /// changed) are the members beyond the assessed ones, shown as unknown.
    async fn kept_figures(&self, ctx: &Ctx, group: Option<GroupId>) -> Result<Figures, StoreError> {
        let tenant = ctx.tenant.to_string();
        let scope = group.map(|g| g.to_string()).unwrap_or_default();
        let members = match group {
            None => sqlx::query(
                "SELECT COUNT(*) FROM devices WHERE tenant_id = $1 AND removed_at IS NULL",
            )
            .bind(&tenant),
            Some(_) => sqlx::query(
                "SELECT COUNT(*) FROM group_devices WHERE tenant_id = $1 AND group_id = $2",
            )
            .bind(&tenant)
            .bind(&scope),
        };
        let members: i64 = members.fetch_one(&self.pool).await?.try_get(0)?;
        let mut f = Figures::default();
        let mut assessed = 0;
        for r in sqlx::query(
            "SELECT policy_id, setting_id, status, n FROM compliance_counts WHERE tenant_id = $1 AND scope = $2 AND n > 0",
        )
        .bind(&tenant)
        .bind(&scope)
        .fetch_all(&self.pool)
        .await?
        {
            let policy: String = r.try_get(0)?;
            let setting: String = r.try_get(1)?;
            let Some(status) = ItemStatus::parse(&r.try_get::<String, _>(2)?) else { continue };
            let n: i64 = r.try_get(3)?;
            if policy.is_empty() {
                assessed += n;
                f.printers.add(status, n);
                continue;
            }
            let p: PolicyId = parse_id("compliance_counts.policy_id", &policy)?;
            let entry = f.policies.entry(p).or_default();
            if setting.is_empty() {
                entry.0.add(status, n);
            } else {
                entry.1.entry(setting).or_default().add(status, n);
            }
        }
        f.printers
            .add(ItemStatus::Unknown, (members - assessed).max(0));
        Ok(f)
    }

    /// Remediate now: the printers' back-off is cleared and they are remediated at their next
    /// assessment (at once), for assess-only policies too. Returns how many printers.
    pub async fn remediate_now(
        &self,
        ctx: &Ctx,
        device: Option<DeviceId>,
        group: Option<GroupId>,
    ) -> Result<u64, StoreError> {
        let devices: Vec<DeviceId> = match (device, group) {
            (Some(d), _) => vec![self.device_get_visible(ctx, d).await?.id],
            (None, Some(g)) => {
                let mut read = ctx.clone();
                read.permissions.insert(Permission::DevicesRead);
                self.group_get(&read, g).await?;
                sqlx::query(
                    "SELECT device_id FROM group_devices WHERE tenant_id = $1 AND group_id = $2",
                )
                .bind(ctx.tenant.to_string())
                .bind(g.to_string())
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|r| parse_id("group_devices.device_id", &r.try_get::<String, _>(0)?))
                .collect::<Result<_, _>>()?
            }
            (None, None) => return Ok(0),
        };
        ctx.require(Permission::DevicesManage)?;
        ctx.require(Permission::PoliciesManage)?;
        let mut w = self.begin_write().await?;
        for d in &devices {
            let unsupported = sqlx::query(
                "SELECT unsupported FROM remediation_state WHERE tenant_id = $1 AND device_id = $2",
            )
            .bind(ctx.tenant.to_string())
            .bind(d.to_string())
            .fetch_optional(&mut *w.tx)
            .await?
            .map(|r| r.try_get::<String, _>(0))
            .transpose()?
            .map(|s| from_json("remediation_state.unsupported", &s))
            .transpose()?
            .unwrap_or_default();
            self.upsert_remediation(&mut w, ctx.tenant, *d, 0, -1, None, None, &unsupported)
                .await?;
            self.mark_for_assessment(&mut w, ctx.tenant, *d).await?;
        }
        let ev = crate::audit::AuditEvent::new(
            ctx,
            printfleet_domain::audit::AuditAction::RemediationRequested,
            match (device, group) {
                (Some(d), _) => format!("device:{d}"),
                (_, Some(g)) => format!("group:{g}"),
                _ => String::new(),
            },
        )
        .with_detail(serde_json::json!({ "printers": devices.len() }));
        self.append_audit(&mut w, &crate::audit::tenant_chain(ctx.tenant), ev)
            .await?;
        self.commit(w).await?;
        Ok(devices.len() as u64)
    }
}
