//! Memberships: a person's role and scope in one tenant.

use crate::audit::{tenant_chain, AuditEvent, WriteTx};
use crate::codec::{from_json, parse_id, to_json};
use crate::{Store, StoreError};
use printfleet_domain::audit::AuditAction;
use printfleet_domain::context::Me;
use printfleet_domain::user::User;
use printfleet_domain::{
    BuiltInRole, Ctx, MembershipId, Permission, RoleRef, Scope, TenantId, UserId,
};
use sqlx::Row;

#[derive(Debug, Clone)]
pub struct Member {
    pub id: MembershipId,
    pub user: User,
    pub role: RoleRef,
    pub role_name: String,
    pub scope: Scope,
    pub created_at_ms: i64,
}

#[derive(Debug, Clone)]
pub struct MyMembership {
    pub tenant: TenantId,
    pub tenant_name: String,
    pub membership: MembershipId,
    pub role: RoleRef,
    pub role_name: String,
    pub scope: Scope,
}

/// (user, role, scope, created_at) from a row whose first four columns are those.
fn member_fields(r: &sqlx::any::AnyRow) -> Result<(UserId, RoleRef, Scope, i64), StoreError> {
    Ok((
        parse_id("memberships.user_id", &r.try_get::<String, _>(0)?)?,
        r.try_get::<String, _>(1)?
            .parse()
            .map_err(|_| StoreError::Corrupt("memberships.role".into()))?,
        from_json("memberships.scope", &r.try_get::<String, _>(2)?)?,
        r.try_get(3)?,
    ))
}

const IT_ADMIN: &str = "it-admin";

impl Store {
    pub(crate) async fn insert_membership(
        &self,
        w: &mut WriteTx,
        tenant: TenantId,
        user: UserId,
        role: RoleRef,
        scope: &Scope,
    ) -> Result<MembershipId, StoreError> {
        let id = MembershipId::new_random();
        let res = sqlx::query(
            "INSERT INTO memberships (tenant_id, id, user_id, role, scope, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(tenant.to_string())
        .bind(id.to_string())
        .bind(user.to_string())
        .bind(role.to_string())
        .bind(to_json(scope)?)
        .bind(self.now_ms())
        .execute(&mut *w.tx)
        .await;
        match res {
            Ok(_) => Ok(id),
            Err(e) if StoreError::is_unique_violation(&e) => Err(StoreError::conflict(
                "already_member",
                "this person is already a member of the tenant",
            )),
            Err(e) => Err(e.into()),
        }
    }

    async fn member_row(
        &self,
        ctx: &Ctx,
        id: MembershipId,
    ) -> Result<(UserId, RoleRef, Scope, i64), StoreError> {
        let r = sqlx::query("SELECT user_id, role, scope, created_at FROM memberships WHERE tenant_id = $1 AND id = $2")
            .bind(ctx.tenant.to_string())
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        member_fields(&r)
    }

    async fn member_from_row(
        &self,
        ctx: &Ctx,
        id: MembershipId,
        row: (UserId, RoleRef, Scope, i64),
    ) -> Result<Member, StoreError> {
        let (user_id, role, scope, created_at_ms) = row;
        let role_name = self
            .resolve_role(ctx.tenant, role)
            .await
            .map(|r| r.name)
            .unwrap_or_else(|_| "(deleted role)".into());
        Ok(Member {
            id,
            user: self.load_user(user_id).await?,
            role,
            role_name,
            scope,
            created_at_ms,
        })
    }

    pub async fn members_list(&self, ctx: &Ctx) -> Result<Vec<Member>, StoreError> {
        ctx.require(Permission::UsersManage)?;
        // One query for every membership, not one more per member.
        let rows = sqlx::query(
            "SELECT user_id, role, scope, created_at, id FROM memberships WHERE tenant_id = $1 ORDER BY created_at, id",
        )
        .bind(ctx.tenant.to_string())
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let id: MembershipId = parse_id("memberships.id", &r.try_get::<String, _>(4)?)?;
            out.push(self.member_from_row(ctx, id, member_fields(r)?).await?);
        }
        Ok(out)
    }

    pub async fn member_get(&self, ctx: &Ctx, id: MembershipId) -> Result<Member, StoreError> {
        let row = self.member_row(ctx, id).await?;
        ctx.require(Permission::UsersManage)?;
        self.member_from_row(ctx, id, row).await
    }

    /// Tenant-wide IT Admins other than `id`: a group-scoped one cannot manage people.
    async fn it_admins_other_than(
        &self,
        w: &mut WriteTx,
        tenant: TenantId,
        id: MembershipId,
    ) -> Result<i64, StoreError> {
        let rows = sqlx::query(
            "SELECT scope FROM memberships WHERE tenant_id = $1 AND role = $2 AND id <> $3",
        )
        .bind(tenant.to_string())
        .bind(IT_ADMIN)
        .bind(id.to_string())
        .fetch_all(&mut *w.tx)
        .await?;
        let mut n = 0;
        for r in rows {
            let scope: Scope = from_json("memberships.scope", &r.try_get::<String, _>(0)?)?;
            if scope.is_tenant_wide() {
                n += 1;
            }
        }
        Ok(n)
    }

    /// Changes a member's role and/or scope. The last tenant-wide IT Admin cannot be demoted or
    /// narrowed to device groups.
    pub async fn member_update(
        &self,
        ctx: &Ctx,
        id: MembershipId,
        role: Option<RoleRef>,
        scope: Option<Scope>,
    ) -> Result<Member, StoreError> {
        let (user_id, old_role, old_scope, created) = self.member_row(ctx, id).await?;
        ctx.require(Permission::UsersManage)?;
        if !ctx.scope.is_tenant_wide() {
            return Err(StoreError::ScopeTooNarrow);
        }
        self.require_outranks(ctx, old_role).await?;
        let new_role = role.unwrap_or(old_role);
        self.assignable_role(ctx, new_role).await?;
        let new_scope = scope.unwrap_or(old_scope.clone());
        self.validate_scope(ctx.tenant, &new_scope).await?;
        let mut w = self.begin_write().await?;
        let it_admin = RoleRef::BuiltIn(BuiltInRole::ItAdmin);
        if old_role == it_admin
            && old_scope.is_tenant_wide()
            && (new_role != it_admin || !new_scope.is_tenant_wide())
            && self.it_admins_other_than(&mut w, ctx.tenant, id).await? == 0
        {
            return Err(StoreError::conflict(
                "last_it_admin",
                "the tenant's last IT Admin cannot be demoted or limited to device groups",
            ));
        }
        sqlx::query(
            "UPDATE memberships SET role = $1, scope = $2 WHERE tenant_id = $3 AND id = $4",
        )
        .bind(new_role.to_string())
        .bind(to_json(&new_scope)?)
        .bind(ctx.tenant.to_string())
        .bind(id.to_string())
        .execute(&mut *w.tx)
        .await?;
        let ev = AuditEvent::new(
            ctx,
            AuditAction::MembershipChanged,
            format!("membership:{id}"),
        )
        .with_detail(serde_json::json!({
            "user": format!("user:{user_id}"),
            "role": { "from": old_role.to_string(), "to": new_role.to_string() },
            "scope": { "from": old_scope, "to": new_scope },
        }));
        self.append_audit(&mut w, &tenant_chain(ctx.tenant), ev)
            .await?;
        self.commit(w).await?;
        self.member_from_row(ctx, id, (user_id, new_role, new_scope, created))
            .await
    }

    /// Nobody changes or removes a member holding a permission they lack themselves (a custom
    /// role with `users.manage` cannot demote an IT Admin).
    async fn require_outranks(&self, ctx: &Ctx, role: RoleRef) -> Result<(), StoreError> {
        if let Ok(r) = self.resolve_role(ctx.tenant, role).await {
            if let Some(p) = r.permissions.iter().find(|p| !ctx.can(**p)) {
                return Err(StoreError::Forbidden(*p));
            }
        }
        Ok(())
    }

    /// Removes a member and revokes the API tokens made through that membership.
    pub async fn member_remove(&self, ctx: &Ctx, id: MembershipId) -> Result<(), StoreError> {
        let (user_id, role, scope, _) = self.member_row(ctx, id).await?;
        ctx.require(Permission::UsersManage)?;
        if !ctx.scope.is_tenant_wide() {
            return Err(StoreError::ScopeTooNarrow);
        }
        self.require_outranks(ctx, role).await?;
        let mut w = self.begin_write().await?;
        if role == RoleRef::BuiltIn(BuiltInRole::ItAdmin)
            && scope.is_tenant_wide()
            && self.it_admins_other_than(&mut w, ctx.tenant, id).await? == 0
        {
            return Err(StoreError::conflict(
                "last_it_admin",
                "the tenant's last IT Admin cannot be removed",
            ));
        }
        sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE tenant_id = $2 AND membership_id = $3 AND revoked_at IS NULL")
            .bind(self.now_ms())
            .bind(ctx.tenant.to_string())
            .bind(id.to_string())
            .execute(&mut *w.tx)
            .await?;
        sqlx::query("DELETE FROM memberships WHERE tenant_id = $1 AND id = $2")
            .bind(ctx.tenant.to_string())
            .bind(id.to_string())
            .execute(&mut *w.tx)
            .await?;
        let ev = AuditEvent::new(
            ctx,
            AuditAction::MembershipRemoved,
            format!("membership:{id}"),
        )
        .with_detail(serde_json::json!({ "user": format!("user:{user_id}") }));
        self.append_audit(&mut w, &tenant_chain(ctx.tenant), ev)
            .await?;
        self.commit(w).await
    }

    /// The tenants the signed-in person belongs to.
    pub async fn my_memberships(&self, me: &Me) -> Result<Vec<MyMembership>, StoreError> {
        let rows = sqlx::query(
            "SELECT m.tenant_id, t.name, m.id, m.role, m.scope FROM memberships m JOIN tenants t ON t.id = m.tenant_id WHERE m.user_id = $1 ORDER BY t.name",
        )
        .bind(me.user.to_string())
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for r in rows {
            let tenant: TenantId = parse_id("memberships.tenant_id", &r.try_get::<String, _>(0)?)?;
            let role: RoleRef = r
                .try_get::<String, _>(3)?
                .parse()
                .map_err(|_| StoreError::Corrupt("memberships.role".into()))?;
            let role_name = self
                .resolve_role(tenant, role)
                .await
                .map(|r| r.name)
                .unwrap_or_else(|_| "(deleted role)".into());
            out.push(MyMembership {
                tenant,
                tenant_name: r.try_get(1)?,
                membership: parse_id("memberships.id", &r.try_get::<String, _>(2)?)?,
                role,
                role_name,
                scope: from_json("memberships.scope", &r.try_get::<String, _>(4)?)?,
            });
        }
        Ok(out)
    }
}
