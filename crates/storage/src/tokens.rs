//! API tokens for automation: `pf_` prefixed, shown once, stored hashed, named, revocable, with
//! optional expiry. A token acts through the membership that made it, with that membership's
//! current role and scope.

use crate::audit::{tenant_chain, AuditEvent};
use crate::codec::parse_id;
use crate::{Store, StoreError};
use printfleet_crypto::token;
use printfleet_domain::audit::AuditAction;
use printfleet_domain::{validation, Ctx, MembershipId, Permission, Redacted, TokenId, UserId};
use rand::rngs::OsRng;
use sqlx::Row;

#[derive(Debug, Clone)]
pub struct ApiToken {
    pub id: TokenId,
    pub name: String,
    pub membership: MembershipId,
    pub user: UserId,
    pub created_at_ms: i64,
    pub expires_at_ms: Option<i64>,
    pub last_used_at_ms: Option<i64>,
    pub revoked_at_ms: Option<i64>,
}

const COLUMNS: &str =
    "id, name, membership_id, user_id, created_at, expires_at, last_used_at, revoked_at";

fn from_row(r: &sqlx::any::AnyRow) -> Result<ApiToken, StoreError> {
    Ok(ApiToken {
        id: parse_id("api_tokens.id", &r.try_get::<String, _>(0)?)?,
        name: r.try_get(1)?,
        membership: parse_id("api_tokens.membership_id", &r.try_get::<String, _>(2)?)?,
        user: parse_id("api_tokens.user_id", &r.try_get::<String, _>(3)?)?,
        created_at_ms: r.try_get(4)?,
        expires_at_ms: r.try_get(5)?,
        last_used_at_ms: r.try_get(6)?,
        revoked_at_ms: r.try_get(7)?,
    })
}

impl Store {
    /// Creates a token for the caller's own membership. Returns the secret once.
    pub async fn token_create(
        &self,
        ctx: &Ctx,
        name: &str,
        expires_at_ms: Option<i64>,
    ) -> Result<(ApiToken, Redacted<String>), StoreError> {
        let (Some(membership), Some(user)) = (ctx.membership, ctx.actor.user()) else {
            return Err(StoreError::SessionRequired);
        };
        if ctx.is_api_token() {
            return Err(StoreError::SessionRequired);
        }
        let name = validation::text("name", name, 100)?;
        let now = self.now_ms();
        if expires_at_ms.is_some_and(|e| e <= now) {
            return Err(printfleet_domain::ValidationError::new(
                "expires_at",
                "must be in the future",
            )
            .into());
        }
        let secret = token::generate(token::API_TOKEN_PREFIX, &mut OsRng);
        let t = ApiToken {
            id: TokenId::new_random(),
            name,
            membership,
            user,
            created_at_ms: now,
            expires_at_ms,
            last_used_at_ms: None,
            revoked_at_ms: None,
        };
        let mut w = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO api_tokens (tenant_id, id, membership_id, user_id, name, token_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(ctx.tenant.to_string())
        .bind(t.id.to_string())
        .bind(membership.to_string())
        .bind(user.to_string())
        .bind(&t.name)
        .bind(token::hash(&secret))
        .bind(now)
        .bind(expires_at_ms)
        .execute(&mut *w.tx)
        .await?;
        let ev = AuditEvent::new(ctx, AuditAction::TokenCreated, format!("token:{}", t.id))
            .with_detail(serde_json::json!({ "name": t.name, "expires_at": expires_at_ms }));
        self.append_audit(&mut w, &tenant_chain(ctx.tenant), ev)
            .await?;
        self.commit(w).await?;
        Ok((t, Redacted::new(secret)))
    }

    /// The caller's own tokens; an IT Admin (`users.manage`) sees every token of the tenant.
    pub async fn tokens_list(&self, ctx: &Ctx) -> Result<Vec<ApiToken>, StoreError> {
        let rows = if ctx.can(Permission::UsersManage) {
            sqlx::query(&format!(
                "SELECT {COLUMNS} FROM api_tokens WHERE tenant_id = $1 ORDER BY created_at"
            ))
            .bind(ctx.tenant.to_string())
            .fetch_all(&self.pool)
            .await?
        } else {
            sqlx::query(&format!(
                "SELECT {COLUMNS} FROM api_tokens WHERE tenant_id = $1 AND membership_id = $2 ORDER BY created_at"
            ))
            .bind(ctx.tenant.to_string())
            .bind(ctx.membership.map(|m| m.to_string()).unwrap_or_default())
            .fetch_all(&self.pool)
            .await?
        };
        rows.iter().map(from_row).collect()
    }

    pub async fn token_revoke(&self, ctx: &Ctx, id: TokenId) -> Result<(), StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM api_tokens WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(ctx.tenant.to_string())
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)?;
        let t = from_row(&row)?;
        let own = ctx.membership == Some(t.membership);
        if !own && !ctx.can(Permission::UsersManage) {
            return Err(StoreError::NotFound);
        }
        let mut w = self.begin_write().await?;
        sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE tenant_id = $2 AND id = $3 AND revoked_at IS NULL")
            .bind(self.now_ms())
            .bind(ctx.tenant.to_string())
            .bind(id.to_string())
            .execute(&mut *w.tx)
            .await?;
        let ev = AuditEvent::new(ctx, AuditAction::TokenRevoked, format!("token:{id}"));
        self.append_audit(&mut w, &tenant_chain(ctx.tenant), ev)
            .await?;
        self.commit(w).await
    }
}
