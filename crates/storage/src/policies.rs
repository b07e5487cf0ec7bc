//! Policies: named, versioned documents per tenant, and their assignments to device groups.
//!
//! Every change writes a new version (items as JSON, secret values encrypted under the tenant
//! key and bound to the version's row) and bumps the tenant's policy epoch, so the assessor
//! re-assesses every printer. Writing policies needs a tenant-wide scope: a policy reaches
//! printers through any group it is assigned to. Assigning needs the group in scope.

use crate::audit::WriteTx;
use crate::audit::{tenant_chain, AuditEvent};
use crate::codec::{from_json, parse_id, tenant_scope, to_json};
use crate::{Store, StoreError};
use printfleet_domain::audit::AuditAction;
use printfleet_domain::policy::{
    diff, Assignment, ItemChange, PolicyItems, PolicyMode, PolicySecrets,
};
use printfleet_domain::validation;
use printfleet_domain::{Ctx, GroupId, Permission, PolicyId, TenantId};
use sqlx::Row;

/// A policy at one version. `items` never hold a secret's value.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyRecord {
    pub id: PolicyId,
    pub name: String,
    pub description: Option<String>,
    pub mode: PolicyMode,
    pub version: i64,
    pub items: PolicyItems,
    pub catalogue_version: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    pub version_created_by: String,
}

/// What a create or an update writes.
#[derive(Debug, Clone)]
pub struct PolicyWrite {
    pub name: String,
    pub description: Option<String>,
    pub mode: PolicyMode,
    pub items: PolicyItems,
    pub secrets: PolicySecrets,
    pub catalogue_version: String,
    /// Whether the write enters new secret values (needs `secrets.write`).
    pub enters_secrets: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssignmentRecord {
    pub policy: PolicyId,
    pub group: GroupId,
    pub priority: i64,
    pub created_at_ms: i64,
}

pub(crate) fn secrets_place(t: TenantId, p: PolicyId, version: i64) -> String {
    format!("policy_versions.secrets:{t}:{p}:{version}")
}

const MAX_PRIORITY: i64 = 1_000_000;

/// A policy's name and description, checked (shared by saving and its dry run).
pub(crate) fn checked_text(p: &PolicyWrite) -> Result<(String, Option<String>), StoreError> {
    let name = validation::text("name", &p.name, 100)?;
    let description = validation::optional_text("description", p.description.as_deref(), 1000)?;
    Ok((name, description))
}

/// An assignment's priority (shared by assigning and its dry run).
pub(crate) fn check_priority(priority: i64) -> Result<(), StoreError> {
    if !(1..=MAX_PRIORITY).contains(&priority) {
        return Err(validation::ValidationError::new(
            "priority",
            format!("must be from 1 to {MAX_PRIORITY}"),
        )
        .into());
    }
    Ok(())
}

impl Store {
    /// What saving `w` needs; a dry run of it needs the same (`dry_run`).
    pub(crate) fn check_write(ctx: &Ctx, w: &PolicyWrite) -> Result<(), StoreError> {
        ctx.require(Permission::PoliciesManage)?;
        if w.enters_secrets {
            ctx.require(Permission::SecretsWrite)?;
        }
        if !ctx.scope.is_tenant_wide() {
            return Err(StoreError::ScopeTooNarrow);
        }
        Ok(())
    }

    pub(crate) async fn bump_policy_epoch(
        &self,
        w: &mut WriteTx,
        t: TenantId,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO policy_epochs (tenant_id, epoch) VALUES ($1, 1) \
             ON CONFLICT (tenant_id) DO UPDATE SET epoch = policy_epochs.epoch + 1",
        )
        .bind(t.to_string())
        .execute(&mut *w.tx)
        .await?;
        Ok(())
    }

    async fn insert_version(
        &self,
        w: &mut WriteTx,
        ctx: &Ctx,
        id: PolicyId,
        version: i64,
        p: &PolicyWrite,
        now: i64,
    ) -> Result<(), StoreError> {
        let (sealed, key_version) = if p.secrets.0.is_empty() {
            (None, None)
        } else {
            let (sealed, key_version) = self
                .seal_json(
                    &tenant_scope(ctx.tenant),
                    &secrets_place(ctx.tenant, id, version),
                    &p.secrets,
                )
                .await?;
            (Some(sealed), Some(key_version))
        };
        sqlx::query(
            "INSERT INTO policy_versions (tenant_id, policy_id, version, items, secrets, catalogue_version, created_by, created_at, secrets_key_version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(ctx.tenant.to_string())
        .bind(id.to_string())
        .bind(version)
        .bind(to_json(&p.items)?)
        .bind(sealed)
        .bind(&p.catalogue_version)
        .bind(ctx.actor.audit_id())
        .bind(now)
        .bind(key_version)
        .execute(&mut *w.tx)
        .await?;
        Ok(())
    }

    pub async fn policy_create(
        &self,
        ctx: &Ctx,
        p: PolicyWrite,
    ) -> Result<PolicyRecord, StoreError> {
        Self::check_write(ctx, &p)?;
        let (name, description) = checked_text(&p)?;
        let id = PolicyId::new_random();
        let now = self.now_ms();
        let mut w = self.begin_write().await?;
        let res = sqlx::query(
            "INSERT INTO policies (tenant_id, id, name, description, mode, current_version, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 1, $6, $6)",
        )
        .bind(ctx.tenant.to_string())
        .bind(id.to_string())
        .bind(&name)
        .bind(&description)
        .bind(p.mode.as_str())
        .bind(now)
        .execute(&mut *w.tx)
        .await;
        if let Err(e) = res {
            return Err(if StoreError::is_unique_violation(&e) {
                StoreError::conflict(
                    "policy_name_taken",
                    "a policy with this name already exists",
                )
            } else {
                e.into()
            });
        }
        self.insert_version(&mut w, ctx, id, 1, &p, now).await?;
        self.bump_policy_epoch(&mut w, ctx.tenant).await?;
        let ev = AuditEvent::new(ctx, AuditAction::PolicyCreated, format!("policy:{id}")).with_detail(
            serde_json::json!({ "name": name, "mode": p.mode.as_str(), "version": 1, "items": p.items.len() }),
        );
        self.append_audit(&mut w, &tenant_chain(ctx.tenant), ev)
            .await?;
        self.commit(w).await?;
        self.policy_get(ctx, id).await
    }

    /// Writes the next version. Returns the new record and what changed.
    pub async fn policy_update(
        &self,
        ctx: &Ctx,
        id: PolicyId,
        p: PolicyWrite,
    ) -> Result<(PolicyRecord, Vec<ItemChange>), StoreError> {
        let before = self.policy_get(ctx, id).await?;
        Self::check_write(ctx, &p)?;
        let (name, description) = checked_text(&p)?;
        let now = self.now_ms();
        let mut w = self.begin_write().await?;
        // Re-read the version under the write lock: two admins saving at once get two versions.
        let current: i64 =
            sqlx::query("SELECT current_version FROM policies WHERE tenant_id = $1 AND id = $2")
                .bind(ctx.tenant.to_string())
                .bind(id.to_string())
                .fetch_optional(&mut *w.tx)
                .await?
                .ok_or(StoreError::NotFound)?
                .try_get(0)?;
        let version = current + 1;
        let res = sqlx::query(
            "UPDATE policies SET name = $3, description = $4, mode = $5, current_version = $6, updated_at = $7 WHERE tenant_id = $1 AND id = $2",
        )
        .bind(ctx.tenant.to_string())
        .bind(id.to_string())
        .bind(&name)
        .bind(&description)
        .bind(p.mode.as_str())
        .bind(version)
        .bind(now)
        .execute(&mut *w.tx)
        .await;
        if let Err(e) = res {
            return Err(if StoreError::is_unique_violation(&e) {
                StoreError::conflict(
                    "policy_name_taken",
                    "a policy with this name already exists",
                )
            } else {
                e.into()
            });
        }
        self.insert_version(&mut w, ctx, id, version, &p, now)
            .await?;
        self.bump_policy_epoch(&mut w, ctx.tenant).await?;
        let changes = diff(&before.items, &p.items);
        let ev = AuditEvent::new(ctx, AuditAction::PolicyChanged, format!("policy:{id}"))
            .with_detail(serde_json::json!({
                "version": version,
                "mode": p.mode.as_str(),
                "changed": changes.iter().map(|c| c.setting_id.as_str()).collect::<Vec<_>>(),
            }));
        self.append_audit(&mut w, &tenant_chain(ctx.tenant), ev)
            .await?;
        self.commit(w).await?;
        Ok((self.policy_get(ctx, id).await?, changes))
    }

    pub async fn policy_delete(&self, ctx: &Ctx, id: PolicyId) -> Result<(), StoreError> {
        self.policy_get(ctx, id).await?;
        ctx.require(Permission::PoliciesManage)?;
        if !ctx.scope.is_tenant_wide() {
            return Err(StoreError::ScopeTooNarrow);
        }
        let mut w = self.begin_write().await?;
        for table in ["policy_assignments", "policy_versions", "compliance_counts"] {
            sqlx::query(&format!(
                "DELETE FROM {table} WHERE tenant_id = $1 AND policy_id = $2"
            ))
            .bind(ctx.tenant.to_string())
            .bind(id.to_string())
            .execute(&mut *w.tx)
            .await?;
        }
        sqlx::query("DELETE FROM policies WHERE tenant_id = $1 AND id = $2")
            .bind(ctx.tenant.to_string())
            .bind(id.to_string())
            .execute(&mut *w.tx)
            .await?;
        self.bump_policy_epoch(&mut w, ctx.tenant).await?;
        let ev = AuditEvent::new(ctx, AuditAction::PolicyDeleted, format!("policy:{id}"));
        self.append_audit(&mut w, &tenant_chain(ctx.tenant), ev)
            .await?;
        self.commit(w).await
    }

    pub async fn policies_list(&self, ctx: &Ctx) -> Result<Vec<PolicyRecord>, StoreError> {
        ctx.require(Permission::PoliciesRead)?;
        let rows = sqlx::query(&format!("{SELECT} WHERE p.tenant_id = $1 ORDER BY p.name"))
            .bind(ctx.tenant.to_string())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(record).collect()
    }

    /// The current version.
    pub async fn policy_get(&self, ctx: &Ctx, id: PolicyId) -> Result<PolicyRecord, StoreError> {
        ctx.require(Permission::PoliciesRead)?;
        let r = sqlx::query(&format!("{SELECT} WHERE p.tenant_id = $1 AND p.id = $2"))
            .bind(ctx.tenant.to_string())
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        record(&r)
    }

    /// One version's items (for comparison), with who wrote it and when.
    pub async fn policy_version(
        &self,
        ctx: &Ctx,
        id: PolicyId,
        version: i64,
    ) -> Result<(PolicyItems, String, i64), StoreError> {
        ctx.require(Permission::PoliciesRead)?;
        let r = sqlx::query(
            "SELECT items, created_by, created_at FROM policy_versions WHERE tenant_id = $1 AND policy_id = $2 AND version = $3",
        )
        .bind(ctx.tenant.to_string())
        .bind(id.to_string())
        .bind(version)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)?;
        Ok((
            from_json("policy_versions.items", &r.try_get::<String, _>(0)?)?,
            r.try_get(1)?,
            r.try_get(2)?,
        ))
    }

    /// The current version's secrets, for carrying them over into the next version.
    pub async fn policy_current_secrets(
        &self,
        ctx: &Ctx,
        id: PolicyId,
    ) -> Result<PolicySecrets, StoreError> {
        let p = self.policy_get(ctx, id).await?;
        ctx.require(Permission::PoliciesManage)?;
        self.policy_secrets(ctx.tenant, id, p.version).await
    }

    /// A version's secrets, opened. Only for the assessor and for sealing to a printer.
    pub(crate) async fn policy_secrets(
        &self,
        t: TenantId,
        id: PolicyId,
        version: i64,
    ) -> Result<PolicySecrets, StoreError> {
        let r = sqlx::query(
            "SELECT secrets FROM policy_versions WHERE tenant_id = $1 AND policy_id = $2 AND version = $3",
        )
        .bind(t.to_string())
        .bind(id.to_string())
        .bind(version)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)?;
        match r.try_get::<Option<Vec<u8>>, _>(0)? {
            None => Ok(PolicySecrets::default()),
            Some(sealed) => {
                self.open_json(&tenant_scope(t), &secrets_place(t, id, version), &sealed)
                    .await
            }
        }
    }

    pub async fn policy_assign(
        &self,
        ctx: &Ctx,
        policy: PolicyId,
        group: GroupId,
        priority: i64,
    ) -> Result<AssignmentRecord, StoreError> {
        self.policy_get(ctx, policy).await?;
        self.group_get(ctx, group).await?;
        ctx.require(Permission::PoliciesManage)?;
        check_priority(priority)?;
        let now = self.now_ms();
        let mut w = self.begin_write().await?;
        let updated = sqlx::query(
            "UPDATE policy_assignments SET priority = $4 WHERE tenant_id = $1 AND policy_id = $2 AND group_id = $3",
        )
        .bind(ctx.tenant.to_string())
        .bind(policy.to_string())
        .bind(group.to_string())
        .bind(priority)
        .execute(&mut *w.tx)
        .await?;
        if updated.rows_affected() == 0 {
            sqlx::query(
                "INSERT INTO policy_assignments (tenant_id, policy_id, group_id, priority, created_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(ctx.tenant.to_string())
            .bind(policy.to_string())
            .bind(group.to_string())
            .bind(priority)
            .bind(now)
            .execute(&mut *w.tx)
            .await?;
        }
        self.bump_policy_epoch(&mut w, ctx.tenant).await?;
        let ev = AuditEvent::new(ctx, AuditAction::PolicyAssigned, format!("policy:{policy}"))
            .with_detail(serde_json::json!({ "group": group.to_string(), "priority": priority }));
        self.append_audit(&mut w, &tenant_chain(ctx.tenant), ev)
            .await?;
        self.commit(w).await?;
        Ok(AssignmentRecord {
            policy,
            group,
            priority,
            created_at_ms: now,
        })
    }

    pub async fn policy_unassign(
        &self,
        ctx: &Ctx,
        policy: PolicyId,
        group: GroupId,
    ) -> Result<(), StoreError> {
        self.policy_get(ctx, policy).await?;
        self.group_get(ctx, group).await?;
        ctx.require(Permission::PoliciesManage)?;
        let mut w = self.begin_write().await?;
        let done = sqlx::query("DELETE FROM policy_assignments WHERE tenant_id = $1 AND policy_id = $2 AND group_id = $3")
            .bind(ctx.tenant.to_string())
            .bind(policy.to_string())
            .bind(group.to_string())
            .execute(&mut *w.tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        self.bump_policy_epoch(&mut w, ctx.tenant).await?;
        let ev = AuditEvent::new(
            ctx,
            AuditAction::PolicyUnassigned,
            format!("policy:{policy}"),
        )
        .with_detail(serde_json::json!({ "group": group.to_string() }));
        self.append_audit(&mut w, &tenant_chain(ctx.tenant), ev)
            .await?;
        self.commit(w).await
    }

    /// The assignments the caller can see (to groups in its scope).
    pub async fn assignments_list(&self, ctx: &Ctx) -> Result<Vec<AssignmentRecord>, StoreError> {
        ctx.require(Permission::PoliciesRead)?;
        Ok(self
            .assignments_of(ctx.tenant)
            .await?
            .into_iter()
            .filter(|a| ctx.scope.allows_group(a.group))
            .collect())
    }

    pub(crate) async fn assignments_of(
        &self,
        t: TenantId,
    ) -> Result<Vec<AssignmentRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT policy_id, group_id, priority, created_at FROM policy_assignments WHERE tenant_id = $1 ORDER BY priority, policy_id, group_id",
        )
        .bind(t.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AssignmentRecord {
                    policy: parse_id("policy_assignments.policy_id", &r.try_get::<String, _>(0)?)?,
                    group: parse_id("policy_assignments.group_id", &r.try_get::<String, _>(1)?)?,
                    priority: r.try_get(2)?,
                    created_at_ms: r.try_get(3)?,
                })
            })
            .collect()
    }

    /// The tenant's assignments joined with each policy's current version and items: the input
    /// of `policy::effective` for every printer of the tenant.
    pub(crate) async fn effective_inputs(
        &self,
        t: TenantId,
    ) -> Result<
        (
            Vec<Assignment>,
            std::collections::BTreeMap<PolicyId, PolicyItems>,
        ),
        StoreError,
    > {
        let rows = sqlx::query(
            "SELECT a.policy_id, a.group_id, a.priority, p.mode, p.current_version, v.items FROM policy_assignments a JOIN policies p ON p.tenant_id = a.tenant_id AND p.id = a.policy_id JOIN policy_versions v ON v.tenant_id = p.tenant_id AND v.policy_id = p.id AND v.version = p.current_version WHERE a.tenant_id = $1",
        )
        .bind(t.to_string())
        .fetch_all(&self.pool)
        .await?;
        let mut assignments = Vec::new();
        let mut items = std::collections::BTreeMap::new();
        for r in rows {
            let policy: PolicyId =
                parse_id("policy_assignments.policy_id", &r.try_get::<String, _>(0)?)?;
            let mode = PolicyMode::parse(&r.try_get::<String, _>(3)?)
                .ok_or_else(|| StoreError::Corrupt("policies.mode".into()))?;
            let version: i64 = r.try_get(4)?;
            if let std::collections::btree_map::Entry::Vacant(e) = items.entry(policy) {
                e.insert(from_json(
                    "policy_versions.items",
                    &r.try_get::<String, _>(5)?,
                )?);
            }
            assignments.push(Assignment {
                policy,
                version,
                mode,
                group: parse_id("policy_assignments.group_id", &r.try_get::<String, _>(1)?)?,
                priority: r.try_get(2)?,
            });
        }
        Ok((assignments, items))
    }
}

const SELECT: &str = "SELECT p.id, p.name, p.description, p.mode, p.current_version, v.items, v.catalogue_version, p.created_at, p.updated_at, v.created_by FROM policies p JOIN policy_versions v ON v.tenant_id = p.tenant_id AND v.policy_id = p.id AND v.version = p.current_version";

fn record(r: &sqlx::any::AnyRow) -> Result<PolicyRecord, StoreError> {
    Ok(PolicyRecord {
        id: parse_id("policies.id", &r.try_get::<String, _>(0)?)?,
        name: r.try_get(1)?,
        description: r.try_get(2)?,
        mode: PolicyMode::parse(&r.try_get::<String, _>(3)?)
            .ok_or_else(|| StoreError::Corrupt("policies.mode".into()))?,
        version: r.try_get(4)?,
        items: from_json("policy_versions.items", &r.try_get::<String, _>(5)?)?,
        catalogue_version: r.try_get(6)?,
        created_at_ms: r.try_get(7)?,
        updated_at_ms: r.try_get(8)?,
        version_created_by: r.try_get(9)?,
    })
}

impl Store {
    /// What an `apply_settings` item needs at delivery for the items it names in `resolve`:
    /// CA certificates' PEM (public, returned as settings) and the secret values (passwords, ID
    /// certificates with their keys) to seal to the printer. Items no longer in the version are
    /// left out (the printer is re-assessed anyway).
    pub async fn apply_settings_payload(
        &self,
        t: TenantId,
        device: printfleet_domain::DeviceId,
        policy: PolicyId,
        version: i64,
        resolve: &[String],
    ) -> Result<(serde_json::Map<String, serde_json::Value>, PolicySecrets), StoreError> {
        let r = sqlx::query(
            "SELECT items FROM policy_versions WHERE tenant_id = $1 AND policy_id = $2 AND version = $3",
        )
        .bind(t.to_string())
        .bind(policy.to_string())
        .bind(version)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = r else {
            return Ok(Default::default());
        };
        let items: PolicyItems = from_json("policy_versions.items", &r.try_get::<String, _>(0)?)?;
        let all = self.policy_secrets(t, policy, version).await?;
        let mut settings = serde_json::Map::new();
        let mut secrets = PolicySecrets::default();
        for id in resolve {
            if let Some(printfleet_domain::policy::PolicyItem::Secret {
                generate: Some(_), ..
            }) = items.get(id)
            {
                // Unique per printer: this printer's own current value (rotated or not since
                // the item was queued, the current one is what it must hold).
                if let Some(v) = self.generated_value(t, device, id).await? {
                    secrets.0.insert(id.clone(), v);
                }
            } else if let Some(s) = all.get(id) {
                secrets.0.insert(id.clone(), s.clone());
            } else if let Some(printfleet_domain::policy::PolicyItem::Certificate {
                certificate,
                ..
            }) = items.get(id)
            {
                settings.insert(
                    id.clone(),
                    serde_json::Value::String(certificate.pem.clone()),
                );
            }
        }
        Ok((settings, secrets))
    }
}
