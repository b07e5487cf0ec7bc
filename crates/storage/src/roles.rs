//! Custom roles, and resolving any role reference to its permissions.

use crate::audit::{tenant_chain, AuditEvent};
use crate::codec::{from_json, parse_id, to_json};
use crate::{Store, StoreError};
use printfleet_domain::audit::AuditAction;
use printfleet_domain::role::validate_role_name;
use printfleet_domain::{BuiltInRole, Ctx, Permission, Role, RoleId, RoleRef, TenantId};
use sqlx::Row;
use std::collections::BTreeSet;

impl Store {
    /// Resolves a role reference within a tenant. Unknown custom roles are `NotFound`.
    pub(crate) async fn resolve_role(
        &self,
        tenant: TenantId,
        r: RoleRef,
    ) -> Result<Role, StoreError> {
        match r {
            RoleRef::BuiltIn(b) => Ok(Role::built_in(b)),
            RoleRef::Custom(id) => {
                let row = sqlx::query(
                    "SELECT name, permissions FROM roles WHERE tenant_id = $1 AND id = $2",
                )
                .bind(tenant.to_string())
                .bind(id.to_string())
                .fetch_optional(&self.pool)
                .await?
                .ok_or(StoreError::NotFound)?;
                Ok(Role {
                    reference: r,
                    name: row.try_get(0)?,
                    permissions: from_json("roles.permissions", &row.try_get::<String, _>(1)?)?,
                })
            }
        }
    }

    /// Checks a role can be assigned in the caller's tenant: it exists, and it grants nothing the
    /// caller does not hold (no escalation).
    pub(crate) async fn assignable_role(&self, ctx: &Ctx, r: RoleRef) -> Result<Role, StoreError> {
        let role = self
            .resolve_role(ctx.tenant, r)
            .await
            .map_err(|e| match e {
                StoreError::NotFound => {
                    printfleet_domain::ValidationError::new("role", "no such role in this tenant")
                        .into()
                }
                other => other,
            })?;
        if let Some(p) = role.permissions.iter().find(|p| !ctx.can(**p)) {
            return Err(StoreError::Forbidden(*p));
        }
        Ok(role)
    }

    fn require_role_read(ctx: &Ctx) -> Result<(), StoreError> {
        if ctx.can(Permission::RolesManage) || ctx.can(Permission::UsersManage) {
            Ok(())
        } else {
            Err(StoreError::Forbidden(Permission::RolesManage))
        }
    }

    /// Built-in roles followed by the tenant's custom roles.
    pub async fn roles_list(&self, ctx: &Ctx) -> Result<Vec<Role>, StoreError> {
        Self::require_role_read(ctx)?;
        let mut out: Vec<Role> = BuiltInRole::ALL.into_iter().map(Role::built_in).collect();
        let rows = sqlx::query(
            "SELECT id, name, permissions FROM roles WHERE tenant_id = $1 ORDER BY name",
        )
        .bind(ctx.tenant.to_string())
        .fetch_all(&self.pool)
        .await?;
        for r in rows {
            out.push(Role {
                reference: RoleRef::Custom(parse_id("roles.id", &r.try_get::<String, _>(0)?)?),
                name: r.try_get(1)?,
                permissions: from_json("roles.permissions", &r.try_get::<String, _>(2)?)?,
            });
        }
        Ok(out)
    }

    pub async fn role_get(&self, ctx: &Ctx, id: RoleId) -> Result<Role, StoreError> {
        let role = self.resolve_role(ctx.tenant, RoleRef::Custom(id)).await?;
        Self::require_role_read(ctx)?;
        Ok(role)
    }

    pub async fn role_create(
        &self,
        ctx: &Ctx,
        name: &str,
        permissions: BTreeSet<Permission>,
    ) -> Result<Role, StoreError> {
        ctx.require(Permission::RolesManage)?;
        let name = validate_role_name(name)?;
        if permissions.is_empty() {
            return Err(printfleet_domain::ValidationError::new(
                "permissions",
                "must name at least one permission",
            )
            .into());
        }
        if let Some(p) = permissions.iter().find(|p| !ctx.can(**p)) {
            return Err(StoreError::Forbidden(*p));
        }
        let id = RoleId::new_random();
        let mut w = self.begin_write().await?;
        let res = sqlx::query("INSERT INTO roles (tenant_id, id, name, permissions, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(ctx.tenant.to_string())
            .bind(id.to_string())
            .bind(&name)
            .bind(to_json(&permissions)?)
            .bind(self.now_ms())
            .execute(&mut *w.tx)
            .await;
        if let Err(e) = res {
            return Err(if StoreError::is_unique_violation(&e) {
                StoreError::conflict("role_name_taken", "a role with this name already exists")
            } else {
                e.into()
            });
        }
        let ev = AuditEvent::new(ctx, AuditAction::RoleCreated, format!("role:{id}"))
            .with_detail(serde_json::json!({ "name": name, "permissions": permissions }));
        self.append_audit(&mut w, &tenant_chain(ctx.tenant), ev)
            .await?;
        self.commit(w).await?;
        Ok(Role {
            reference: RoleRef::Custom(id),
            name,
            permissions,
        })
    }

    pub async fn role_update(
        &self,
        ctx: &Ctx,
        id: RoleId,
        name: Option<&str>,
        permissions: Option<BTreeSet<Permission>>,
    ) -> Result<Role, StoreError> {
        let current = self.resolve_role(ctx.tenant, RoleRef::Custom(id)).await?;
        ctx.require(Permission::RolesManage)?;
        let name = match name {
            Some(n) => validate_role_name(n)?,
            None => current.name,
        };
        let permissions = permissions.unwrap_or(current.permissions);
        if permissions.is_empty() {
            return Err(printfleet_domain::ValidationError::new(
                "permissions",
                "must name at least one permission",
            )
            .into());
        }
        if let Some(p) = permissions.iter().find(|p| !ctx.can(**p)) {
            return Err(StoreError::Forbidden(*p));
        }
        let mut w = self.begin_write().await?;
        let res = sqlx::query(
            "UPDATE roles SET name = $1, permissions = $2 WHERE tenant_id = $3 AND id = $4",
        )
        .bind(&name)
        .bind(to_json(&permissions)?)
        .bind(ctx.tenant.to_string())
        .bind(id.to_string())
        .execute(&mut *w.tx)
        .await;
        if let Err(e) = res {
            return Err(if StoreError::is_unique_violation(&e) {
                StoreError::conflict("role_name_taken", "a role with this name already exists")
            } else {
                e.into()
            });
        }
        let ev = AuditEvent::new(ctx, AuditAction::RoleUpdated, format!("role:{id}"))
            .with_detail(serde_json::json!({ "name": name, "permissions": permissions }));
        self.append_audit(&mut w, &tenant_chain(ctx.tenant), ev)
            .await?;
        self.commit(w).await?;
        Ok(Role {
            reference: RoleRef::Custom(id),
            name,
            permissions,
        })
    }

    /// Deletes a custom role that no membership or open invitation uses.
    pub async fn role_delete(&self, ctx: &Ctx, id: RoleId) -> Result<(), StoreError> {
        self.resolve_role(ctx.tenant, RoleRef::Custom(id)).await?;
        ctx.require(Permission::RolesManage)?;
        let mut w = self.begin_write().await?;
        let used: i64 = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM memberships WHERE tenant_id = $1 AND role = $2) + (SELECT COUNT(*) FROM invitations WHERE tenant_id = $1 AND role = $2 AND accepted_at IS NULL AND revoked_at IS NULL)",
        )
        .bind(ctx.tenant.to_string())
        .bind(id.to_string())
        .fetch_one(&mut *w.tx)
        .await?
        .try_get(0)?;
        if used > 0 {
            return Err(StoreError::conflict(
                "role_in_use",
                "the role is held by members or open invitations",
            ));
        }
        sqlx::query("DELETE FROM roles WHERE tenant_id = $1 AND id = $2")
            .bind(ctx.tenant.to_string())
            .bind(id.to_string())
            .execute(&mut *w.tx)
            .await?;
        let ev = AuditEvent::new(ctx, AuditAction::RoleDeleted, format!("role:{id}"));
        self.append_audit(&mut w, &tenant_chain(ctx.tenant), ev)
            .await?;
        self.commit(w).await
    }
}
