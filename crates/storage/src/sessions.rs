//! Server-side sessions: listable and revocable, with idle and absolute timeouts. The cookie holds
//! a random secret; only its hash is stored.

use crate::audit::{AuditEvent, DEPLOYMENT_CHAIN};
use crate::codec::parse_id;
use crate::{Store, StoreError};
use printfleet_crypto::token;
use printfleet_domain::audit::AuditAction;
use printfleet_domain::context::Me;
use printfleet_domain::{Actor, Redacted, SessionId, UserId};
use rand::rngs::OsRng;
use sqlx::Row;

/// Session lifetimes.
#[derive(Clone, Copy, Debug)]
pub struct SessionPolicy {
    pub idle_ms: i64,
    pub absolute_ms: i64,
}

#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub id: SessionId,
    pub created_at_ms: i64,
    pub last_seen_at_ms: i64,
    pub expires_at_ms: i64,
    pub source: Option<String>,
    pub user_agent: Option<String>,
    pub current: bool,
}

impl Store {
    /// Starts a new session (always a new id: sign-in never reuses one) and audits the sign-in.
    pub async fn session_create(
        &self,
        user: UserId,
        policy: SessionPolicy,
        source: Option<String>,
        user_agent: Option<String>,
    ) -> Result<(SessionId, Redacted<String>), StoreError> {
        let id = SessionId::new_random();
        let secret = token::generate(token::SESSION_PREFIX, &mut OsRng);
        let now = self.now_ms();
        let ua = user_agent.map(|u| u.chars().take(200).collect::<String>());
        let mut w = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO sessions (id, secret_hash, user_id, created_at, last_seen_at, expires_at, source, user_agent) VALUES ($1, $2, $3, $4, $4, $5, $6, $7)",
        )
        .bind(id.to_string())
        .bind(token::hash(&secret))
        .bind(user.to_string())
        .bind(now)
        .bind(now + policy.absolute_ms)
        .bind(source.clone())
        .bind(ua)
        .execute(&mut *w.tx)
        .await?;
        let ev = AuditEvent {
            actor: Actor::User(user),
            action: AuditAction::SignIn,
            target: format!("session:{id}"),
            source,
            detail: serde_json::Value::Null,
        };
        self.append_audit(&mut w, DEPLOYMENT_CHAIN, ev).await?;
        self.commit(w).await?;
        Ok((id, Redacted::new(secret)))
    }

    pub async fn sessions_list(&self, me: &Me) -> Result<Vec<SessionInfo>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, created_at, last_seen_at, expires_at, source, user_agent FROM sessions WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 ORDER BY created_at DESC",
        )
        .bind(me.user.to_string())
        .bind(self.now_ms())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let id: SessionId = parse_id("sessions.id", &r.try_get::<String, _>(0)?)?;
                Ok(SessionInfo {
                    id,
                    created_at_ms: r.try_get(1)?,
                    last_seen_at_ms: r.try_get(2)?,
                    expires_at_ms: r.try_get(3)?,
                    source: r.try_get(4)?,
                    user_agent: r.try_get(5)?,
                    current: me.session == Some(id),
                })
            })
            .collect()
    }

    /// Revokes one of the person's own sessions (sign-out is revoking the current one).
    pub async fn session_revoke(&self, me: &Me, id: SessionId) -> Result<(), StoreError> {
        let mut w = self.begin_write().await?;
        let n = sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL")
            .bind(self.now_ms())
            .bind(id.to_string())
            .bind(me.user.to_string())
            .execute(&mut *w.tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        let action = if me.session == Some(id) {
            AuditAction::SignOut
        } else {
            AuditAction::SessionRevoked
        };
        let ev = AuditEvent {
            actor: Actor::User(me.user),
            action,
            target: format!("session:{id}"),
            source: me.source.clone(),
            detail: serde_json::Value::Null,
        };
        self.append_audit(&mut w, DEPLOYMENT_CHAIN, ev).await?;
        self.commit(w).await
    }
}
