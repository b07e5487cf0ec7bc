//! Device groups. A membership scoped to groups sees only those groups (and, later, their
//! printers); anything else answers `NotFound`.

use crate::audit::{tenant_chain, AuditEvent};
use crate::codec::from_json;
use crate::codec::parse_id;
use crate::{Store, StoreError};
use printfleet_domain::audit::AuditAction;
use printfleet_domain::policy::GroupRule;
use printfleet_domain::validation;
use printfleet_domain::{Ctx, GroupId, Permission, Scope, TenantId};
use sqlx::Row;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub id: GroupId,
    pub name: String,
    pub created_at_ms: i64,
    /// A dynamic group's rule; `None`: members are chosen one by one.
    pub rule: Option<GroupRule>,
}

impl Store {
    pub async fn groups_list(&self, ctx: &Ctx) -> Result<Vec<Group>, StoreError> {
        ctx.require(Permission::DevicesRead)?;
        let rows = sqlx::query(
            "SELECT id, name, created_at, rule FROM device_groups WHERE tenant_id = $1 ORDER BY name",
        )
        .bind(ctx.tenant.to_string())
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for r in rows {
            let id: GroupId = parse_id("device_groups.id", &r.try_get::<String, _>(0)?)?;
            if ctx.scope.allows_group(id) {
                out.push(Group {
                    id,
                    name: r.try_get(1)?,
                    created_at_ms: r.try_get(2)?,
                    rule: rule_of(r.try_get(3)?)?,
                });
            }
        }
        Ok(out)
    }

    /// A group the caller can see; `NotFound` when it is in another tenant or outside the scope.
    pub async fn group_get(&self, ctx: &Ctx, id: GroupId) -> Result<Group, StoreError> {
        if !ctx.scope.allows_group(id) {
            return Err(StoreError::NotFound);
        }
        let r = sqlx::query(
            "SELECT name, created_at, rule FROM device_groups WHERE tenant_id = $1 AND id = $2",
        )
        .bind(ctx.tenant.to_string())
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)?;
        ctx.require(Permission::DevicesRead)?;
        Ok(Group {
            id,
            name: r.try_get(0)?,
            created_at_ms: r.try_get(1)?,
            rule: rule_of(r.try_get(2)?)?,
        })
    }

    pub async fn group_create(&self, ctx: &Ctx, name: &str) -> Result<Group, StoreError> {
        ctx.require(Permission::DevicesManage)?;
        if !ctx.scope.is_tenant_wide() {
            return Err(StoreError::ScopeTooNarrow);
        }
        let name = validation::text("name", name, 100)?;
        let g = Group {
            id: GroupId::new_random(),
            name,
            created_at_ms: self.now_ms(),
            rule: None,
        };
        let mut w = self.begin_write().await?;
        let res = sqlx::query(
            "INSERT INTO device_groups (tenant_id, id, name, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(ctx.tenant.to_string())
        .bind(g.id.to_string())
        .bind(&g.name)
        .bind(g.created_at_ms)
        .execute(&mut *w.tx)
        .await;
        if let Err(e) = res {
            return Err(if StoreError::is_unique_violation(&e) {
                StoreError::conflict("group_name_taken", "a group with this name already exists")
            } else {
                e.into()
            });
        }
        let ev = AuditEvent::new(ctx, AuditAction::GroupCreated, format!("group:{}", g.id))
            .with_detail(serde_json::json!({ "name": g.name }));
        self.append_audit(&mut w, &tenant_chain(ctx.tenant), ev)
            .await?;
        self.commit(w).await?;
        Ok(g)
    }

    pub async fn group_delete(&self, ctx: &Ctx, id: GroupId) -> Result<(), StoreError> {
        if !ctx.scope.allows_group(id) {
            return Err(StoreError::NotFound);
        }
        let exists = sqlx::query("SELECT 1 FROM device_groups WHERE tenant_id = $1 AND id = $2")
            .bind(ctx.tenant.to_string())
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        if exists.is_none() {
            return Err(StoreError::NotFound);
        }
        ctx.require(Permission::DevicesManage)?;
        let mut w = self.begin_write().await?;
        // Its memberships, its policy assignments and its kept counts go with it; the epoch
        // moves so its members are re-assessed without the policies it brought.
        for sql in [
            "DELETE FROM device_groups WHERE tenant_id = $1 AND id = $2",
            "DELETE FROM group_devices WHERE tenant_id = $1 AND group_id = $2",
            "DELETE FROM policy_assignments WHERE tenant_id = $1 AND group_id = $2",
            "DELETE FROM compliance_counts WHERE tenant_id = $1 AND scope = $2",
        ] {
            sqlx::query(sql)
                .bind(ctx.tenant.to_string())
                .bind(id.to_string())
                .execute(&mut *w.tx)
                .await?;
        }
        self.bump_policy_epoch(&mut w, ctx.tenant).await?;
        let ev = AuditEvent::new(ctx, AuditAction::GroupDeleted, format!("group:{id}"));
        self.append_audit(&mut w, &tenant_chain(ctx.tenant), ev)
            .await?;
        self.commit(w).await
    }

    /// Checks every group of a scope exists in the tenant.
    pub(crate) async fn validate_scope(
        &self,
        tenant: TenantId,
        scope: &Scope,
    ) -> Result<(), StoreError> {
        if let Scope::Groups(groups) = scope {
            for g in groups {
                let found =
                    sqlx::query("SELECT 1 FROM device_groups WHERE tenant_id = $1 AND id = $2")
                        .bind(tenant.to_string())
                        .bind(g.to_string())
                        .fetch_optional(&self.pool)
                        .await?;
                if found.is_none() {
                    return Err(printfleet_domain::ValidationError::new(
                        "scope.groups",
                        "names a group that does not exist",
                    )
                    .into());
                }
            }
        }
        Ok(())
    }
}

fn rule_of(json: Option<String>) -> Result<Option<GroupRule>, StoreError> {
    json.map(|j| from_json("device_groups.rule", &j))
        .transpose()
}
