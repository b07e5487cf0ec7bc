//! Invitations: an IT Admin invites an e-mail address with a role and scope. The link carries a
//! single-use secret that expires; only its hash is stored, and the address is encrypted under
//! the tenant's key.

use crate::audit::{tenant_chain, AuditEvent};
use crate::codec::{from_json, parse_id, tenant_scope, to_json};
use crate::{Store, StoreError};
use printfleet_crypto::token;
use printfleet_domain::audit::AuditAction;
use printfleet_domain::context::Me;
use printfleet_domain::user::Profile;
use printfleet_domain::{
    Actor, Ctx, Email, InvitationId, MembershipId, Permission, Redacted, RoleRef, Scope, TenantId,
    UserId,
};
use rand::rngs::OsRng;
use sqlx::Row;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InvitationState {
    Pending,
    Accepted,
    Revoked,
    Expired,
}

#[derive(Debug, Clone)]
pub struct Invitation {
    pub id: InvitationId,
    pub email: Email,
    pub role: RoleRef,
    pub scope: Scope,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    pub state: InvitationState,
}

/// Who accepts an invitation.
#[derive(Debug)]
pub enum Acceptor {
    /// Someone new: their profile (its e-mail must be the invited one) and password hash.
    NewPerson {
        profile: Profile,
        password_hash: Redacted<String>,
    },
    /// A person already signed in whose e-mail is the invited one.
    Existing(Me),
}

fn place(t: TenantId, id: InvitationId) -> String {
    format!("invitations.email:{t}:{id}")
}

impl Store {
    async fn invitation_from_row(
        &self,
        tenant: TenantId,
        r: &sqlx::any::AnyRow,
    ) -> Result<Invitation, StoreError> {
        let id: InvitationId = parse_id("invitations.id", &r.try_get::<String, _>(0)?)?;
        let email: String = self
            .open_json(
                &tenant_scope(tenant),
                &place(tenant, id),
                &r.try_get::<Vec<u8>, _>(1)?,
            )
            .await?;
        let expires: i64 = r.try_get(5)?;
        let accepted: Option<i64> = r.try_get(6)?;
        let revoked: Option<i64> = r.try_get(7)?;
        let state = if accepted.is_some() {
            InvitationState::Accepted
        } else if revoked.is_some() {
            InvitationState::Revoked
        } else if expires <= self.now_ms() {
            InvitationState::Expired
        } else {
            InvitationState::Pending
        };
        Ok(Invitation {
            id,
            email: Email::parse("email", &email).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            role: r
                .try_get::<String, _>(2)?
                .parse()
                .map_err(|_| StoreError::Corrupt("invitations.role".into()))?,
            scope: from_json("invitations.scope", &r.try_get::<String, _>(3)?)?,
            created_at_ms: r.try_get(4)?,
            expires_at_ms: expires,
            state,
        })
    }

    /// Creates an invitation; returns it and the single-use secret for the link (shown once).
    pub async fn invitation_create(
        &self,
        ctx: &Ctx,
        email: Email,
        role: RoleRef,
        scope: Scope,
        ttl_ms: i64,
    ) -> Result<(Invitation, Redacted<String>), StoreError> {
        ctx.require(Permission::UsersManage)?;
        if !ctx.scope.is_tenant_wide() {
            return Err(StoreError::ScopeTooNarrow);
        }
        self.assignable_role(ctx, role).await?;
        self.validate_scope(ctx.tenant, &scope).await?;
        let id = InvitationId::new_random();
        let secret = token::generate(token::INVITATION_PREFIX, &mut OsRng);
        let (sealed, version) = self
            .seal_json(
                &tenant_scope(ctx.tenant),
                &place(ctx.tenant, id),
                &email.expose(),
            )
            .await?;
        let now = self.now_ms();
        let mut w = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO invitations (tenant_id, id, token_hash, email, key_version, role, scope, created_by, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(ctx.tenant.to_string())
        .bind(id.to_string())
        .bind(token::hash(&secret))
        .bind(sealed)
        .bind(version)
        .bind(role.to_string())
        .bind(to_json(&scope)?)
        .bind(ctx.actor.audit_id())
        .bind(now)
        .bind(now + ttl_ms)
        .execute(&mut *w.tx)
        .await?;
        let ev = AuditEvent::new(
            ctx,
            AuditAction::InvitationCreated,
            format!("invitation:{id}"),
        )
        .with_detail(serde_json::json!({ "role": role.to_string(), "scope": scope }));
        self.append_audit(&mut w, &tenant_chain(ctx.tenant), ev)
            .await?;
        self.commit(w).await?;
        Ok((
            Invitation {
                id,
                email,
                role,
                scope,
                created_at_ms: now,
                expires_at_ms: now + ttl_ms,
                state: InvitationState::Pending,
            },
            Redacted::new(secret),
        ))
    }

    pub async fn invitations_list(&self, ctx: &Ctx) -> Result<Vec<Invitation>, StoreError> {
        ctx.require(Permission::UsersManage)?;
        let rows = sqlx::query(
            "SELECT id, email, role, scope, created_at, expires_at, accepted_at, revoked_at FROM invitations WHERE tenant_id = $1 ORDER BY created_at DESC",
        )
        .bind(ctx.tenant.to_string())
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for r in &rows {
            out.push(self.invitation_from_row(ctx.tenant, r).await?);
        }
        Ok(out)
    }

    pub async fn invitation_revoke(&self, ctx: &Ctx, id: InvitationId) -> Result<(), StoreError> {
        let exists = sqlx::query("SELECT 1 FROM invitations WHERE tenant_id = $1 AND id = $2")
            .bind(ctx.tenant.to_string())
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        if exists.is_none() {
            return Err(StoreError::NotFound);
        }
        ctx.require(Permission::UsersManage)?;
        let mut w = self.begin_write().await?;
        let n = sqlx::query("UPDATE invitations SET revoked_at = $1 WHERE tenant_id = $2 AND id = $3 AND accepted_at IS NULL AND revoked_at IS NULL")
            .bind(self.now_ms())
            .bind(ctx.tenant.to_string())
            .bind(id.to_string())
            .execute(&mut *w.tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::conflict(
                "invitation_closed",
                "the invitation was already accepted or revoked",
            ));
        }
        let ev = AuditEvent::new(
            ctx,
            AuditAction::InvitationRevoked,
            format!("invitation:{id}"),
        );
        self.append_audit(&mut w, &tenant_chain(ctx.tenant), ev)
            .await?;
        self.commit(w).await
    }

    /// Accepts an invitation with its secret. The secret is the credential, so this is one of the
    /// few calls without a context; it is single-use and checked for expiry and revocation.
    pub async fn invitation_accept(
        &self,
        secret: &str,
        acceptor: Acceptor,
        source: Option<String>,
    ) -> Result<(TenantId, UserId, MembershipId), StoreError> {
        let (tenant, inv) = self.pending_invitation(secret).await?;
        let id = inv.id;
        let existing = self.user_id_by_email(&inv.email).await?;
        let mut w = self.begin_write().await?;
        // Claim it first, inside the transaction, so two concurrent accepts cannot both succeed.
        let claimed = sqlx::query("UPDATE invitations SET accepted_at = $1 WHERE tenant_id = $2 AND id = $3 AND accepted_at IS NULL AND revoked_at IS NULL")
            .bind(self.now_ms())
            .bind(tenant.to_string())
            .bind(id.to_string())
            .execute(&mut *w.tx)
            .await?
            .rows_affected();
        if claimed == 0 {
            return Err(StoreError::conflict(
                "invitation_used",
                "the invitation was already used",
            ));
        }
        let user =
            match (acceptor, existing) {
                (Acceptor::Existing(me), Some(u)) if me.user == u => u,
                (Acceptor::Existing(_), _) => {
                    return Err(StoreError::conflict(
                        "invitation_other_email",
                        "this invitation is for a different e-mail address",
                    ))
                }
                (Acceptor::NewPerson { .. }, Some(_)) => return Err(StoreError::conflict(
                    "account_exists",
                    "a person with this e-mail address exists: sign in, then accept the invitation",
                )),
                (
                    Acceptor::NewPerson {
                        profile,
                        password_hash,
                    },
                    None,
                ) => {
                    if profile.email != inv.email {
                        return Err(printfleet_domain::ValidationError::new(
                            "email",
                            "must be the invited address",
                        )
                        .into());
                    }
                    self.insert_user(&mut w, &profile, password_hash.expose())
                        .await?
                }
            };
        let membership = self
            .insert_membership(&mut w, tenant, user, inv.role, &inv.scope)
            .await?;
        let ev = AuditEvent {
            actor: Actor::User(user),
            action: AuditAction::InvitationAccepted,
            target: format!("invitation:{id}"),
            source,
            detail: serde_json::json!({ "membership": membership.to_string(), "role": inv.role.to_string() }),
        };
        self.append_audit(&mut w, &tenant_chain(tenant), ev).await?;
        self.commit(w).await?;
        Ok((tenant, user, membership))
    }

    /// The invited address of a pending invitation, for the person holding its secret.
    pub async fn invitation_email(&self, secret: &str) -> Result<Email, StoreError> {
        Ok(self.pending_invitation(secret).await?.1.email)
    }

    /// The pending invitation a secret belongs to, with its tenant; used and closed ones answer
    /// their own conflict code.
    async fn pending_invitation(&self, secret: &str) -> Result<(TenantId, Invitation), StoreError> {
        if !token::well_formed(token::INVITATION_PREFIX, secret) {
            return Err(StoreError::NotFound);
        }
        let (tenant, id) = crate::resolver::invitation_by_secret(self, secret).await?;
        let row = sqlx::query(
            "SELECT id, email, role, scope, created_at, expires_at, accepted_at, revoked_at FROM invitations WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant.to_string())
        .bind(id.to_string())
        .fetch_one(&self.pool)
        .await?;
        let inv = self.invitation_from_row(tenant, &row).await?;
        Self::require_pending(inv.state)?;
        Ok((tenant, inv))
    }

    fn require_pending(state: InvitationState) -> Result<(), StoreError> {
        match state {
            InvitationState::Pending => Ok(()),
            InvitationState::Accepted => Err(StoreError::conflict(
                "invitation_used",
                "the invitation was already used",
            )),
            InvitationState::Revoked => Err(StoreError::conflict(
                "invitation_revoked",
                "the invitation was revoked",
            )),
            InvitationState::Expired => Err(StoreError::conflict(
                "invitation_expired",
                "the invitation has expired",
            )),
        }
    }

    /// Creates a tenant's first IT Admin (a new person, or an existing one by e-mail).
    pub async fn bootstrap_admin(
        &self,
        tenant: TenantId,
        profile: &Profile,
        password_hash: &str,
    ) -> Result<(UserId, MembershipId), StoreError> {
        let existing = self.user_id_by_email(&profile.email).await?;
        let mut w = self.begin_write().await?;
        let user = match existing {
            Some(u) => u,
            None => self.insert_user(&mut w, profile, password_hash).await?,
        };
        let role = RoleRef::BuiltIn(printfleet_domain::BuiltInRole::ItAdmin);
        let m = self
            .insert_membership(&mut w, tenant, user, role, &Scope::Tenant)
            .await?;
        let ev = AuditEvent {
            actor: Actor::System,
            action: AuditAction::MembershipChanged,
            target: format!("membership:{m}"),
            source: None,
            detail: serde_json::json!({ "user": format!("user:{user}"), "role": { "to": role.to_string() } }),
        };
        self.append_audit(&mut w, &tenant_chain(tenant), ev).await?;
        self.commit(w).await?;
        Ok((user, m))
    }

    /// Adds an existing or new person to a tenant with any role (deployment operation for the
    /// demo and tests).
    pub async fn add_member_as_system(
        &self,
        tenant: TenantId,
        profile: &Profile,
        password_hash: &str,
        role: RoleRef,
        scope: Scope,
    ) -> Result<(UserId, MembershipId), StoreError> {
        self.validate_scope(tenant, &scope).await?;
        let existing = self.user_id_by_email(&profile.email).await?;
        let mut w = self.begin_write().await?;
        let user = match existing {
            Some(u) => u,
            None => self.insert_user(&mut w, profile, password_hash).await?,
        };
        let m = self
            .insert_membership(&mut w, tenant, user, role, &scope)
            .await?;
        let ev = AuditEvent {
            actor: Actor::System,
            action: AuditAction::MembershipChanged,
            target: format!("membership:{m}"),
            source: None,
            detail: serde_json::json!({ "user": format!("user:{user}"), "role": { "to": role.to_string() }, "scope": scope }),
        };
        self.append_audit(&mut w, &tenant_chain(tenant), ev).await?;
        self.commit(w).await?;
        Ok((user, m))
    }
}
