//! People. An identity is deployment-wide (one person, many tenants); its personal data is
//! encrypted under the deployment data key and found at sign-in through the blind index.

use crate::audit::{AuditEvent, DEPLOYMENT_CHAIN};
use crate::keyring::DEPLOYMENT;
use crate::{Store, StoreError};
use printfleet_domain::audit::AuditAction;
use printfleet_domain::context::Me;
use printfleet_domain::user::{Profile, User};
use printfleet_domain::{Actor, Email, Redacted, UserId};
use serde::{Deserialize, Serialize};
use sqlx::Row;

#[derive(Serialize, Deserialize)]
pub(crate) struct UserPii {
    pub email: String,
    pub first_name: String,
    pub last_name: String,
}

pub(crate) fn pii_place(u: UserId) -> String {
    format!("users.pii:{u}")
}

pub(crate) fn password_place(u: UserId) -> String {
    format!("users.password_hash:{u}")
}

impl Store {
    /// Creates a person with an Argon2id hash (already computed by the caller). Used inside the
    /// transactions of bootstrap and invitation acceptance.
    pub(crate) async fn insert_user(
        &self,
        w: &mut crate::audit::WriteTx,
        profile: &Profile,
        password_hash: &str,
    ) -> Result<UserId, StoreError> {
        let id = UserId::new_random();
        let pii = UserPii {
            email: profile.email.expose().to_string(),
            first_name: profile.first_name.expose().clone(),
            last_name: profile.last_name.expose().clone(),
        };
        let (sealed_pii, version) = self.seal_json(DEPLOYMENT, &pii_place(id), &pii).await?;
        let (sealed_pw, _) = self
            .seal_json(DEPLOYMENT, &password_place(id), &password_hash)
            .await?;
        let res = sqlx::query(
            "INSERT INTO users (id, email_index, pii, password_hash, locale, key_version, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id.to_string())
        .bind(self.email_index(&profile.email))
        .bind(sealed_pii)
        .bind(sealed_pw)
        .bind(&profile.locale)
        .bind(version)
        .bind(self.now_ms())
        .execute(&mut *w.tx)
        .await;
        match res {
            Ok(_) => {}
            Err(e) if StoreError::is_unique_violation(&e) => {
                return Err(StoreError::conflict(
                    "email_taken",
                    "a person with this e-mail address already exists",
                ))
            }
            Err(e) => return Err(e.into()),
        }
        let ev = AuditEvent {
            actor: Actor::System,
            action: AuditAction::UserCreated,
            target: format!("user:{id}"),
            source: None,
            detail: serde_json::Value::Null,
        };
        self.append_audit(w, DEPLOYMENT_CHAIN, ev).await?;
        Ok(id)
    }

    /// The existing person with this e-mail address, if any (through the blind index).
    pub(crate) async fn user_id_by_email(
        &self,
        email: &Email,
    ) -> Result<Option<UserId>, StoreError> {
        let row = sqlx::query("SELECT id FROM users WHERE email_index = $1")
            .bind(self.email_index(email))
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| crate::codec::parse_id("users.id", &r.try_get::<String, _>(0)?))
            .transpose()
    }

    pub(crate) async fn load_user(&self, id: UserId) -> Result<User, StoreError> {
        let row = sqlx::query("SELECT pii, locale, created_at FROM users WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        let pii: UserPii = self
            .open_json(DEPLOYMENT, &pii_place(id), &row.try_get::<Vec<u8>, _>(0)?)
            .await?;
        Ok(User {
            id,
            profile: Profile {
                email: Email::parse("email", &pii.email)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                first_name: Redacted::new(pii.first_name),
                last_name: Redacted::new(pii.last_name),
                locale: row.try_get(1)?,
            },
            created_at_ms: row.try_get(2)?,
        })
    }

    /// The signed-in person's own profile.
    pub async fn me_profile(&self, me: &Me) -> Result<User, StoreError> {
        self.load_user(me.user).await
    }

    /// Stores a new password hash (after a re-hash with current parameters).
    pub async fn set_password_hash(&self, me: &Me, hash: &str) -> Result<(), StoreError> {
        let (sealed, _) = self
            .seal_json(DEPLOYMENT, &password_place(me.user), &hash)
            .await?;
        let mut w = self.begin_write().await?;
        sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
            .bind(sealed)
            .bind(me.user.to_string())
            .execute(&mut *w.tx)
            .await?;
        self.commit(w).await
    }
}
