//! Key rotation: re-wrapping every data key under a new master key, and rolling a scope's data
//! key with re-encryption of its fields in resumable batches (safe while servers run: they pick up
//! the new active version within `ACTIVE_TTL_MS`, and rows they still write under the old version
//! are caught by the next batch, because batches select by `key_version`).

use crate::audit::{tenant_chain, AuditEvent, DEPLOYMENT_CHAIN};
use crate::codec::tenant_scope;
use crate::keyring::{wrap_context, DEPLOYMENT};
use crate::users::{password_place, pii_place, UserPii};
use crate::{Store, StoreError};
use printfleet_crypto::MasterKey;
use printfleet_domain::audit::AuditAction;
use printfleet_domain::{Actor, TenantId};
use rand::rngs::OsRng;
use sqlx::Row;

impl Store {
    /// Re-wraps every data key under `new_master` in one transaction. Run with the server stopped
    /// (servers cache the master key). Returns how many keys were re-wrapped.
    pub async fn rewrap_all(&self, new_master: &MasterKey) -> Result<usize, StoreError> {
        let rows = sqlx::query("SELECT scope, version FROM data_keys WHERE master_id <> $1")
            .bind(new_master.id())
            .fetch_all(&self.pool)
            .await?;
        let mut w = self.begin_write().await?;
        for r in &rows {
            let scope: String = r.try_get(0)?;
            let version: i64 = r.try_get(1)?;
            let key = self.keys.get(&self.pool, &scope, version).await?;
            let wrapped = new_master.wrap(&key, &wrap_context(&scope, version), &mut OsRng);
            sqlx::query("UPDATE data_keys SET wrapped = $1, master_id = $2 WHERE scope = $3 AND version = $4")
                .bind(wrapped)
                .bind(new_master.id())
                .bind(&scope)
                .bind(version)
                .execute(&mut *w.tx)
                .await?;
        }
        let ev = AuditEvent {
            actor: Actor::System,
            action: AuditAction::MasterKeyRotated,
            target: format!("master:{}", new_master.id()),
            source: None,
            detail: serde_json::json!({ "rewrapped": rows.len() }),
        };
        self.append_audit(&mut w, DEPLOYMENT_CHAIN, ev).await?;
        self.commit(w).await?;
        Ok(rows.len())
    }

    /// Adds a new version of the tenant's data key (or the deployment key for `None`), which
    /// becomes active. Returns the new version.
    pub async fn roll_data_key(&self, tenant: Option<TenantId>) -> Result<i64, StoreError> {
        let scope = tenant
            .map(tenant_scope)
            .unwrap_or_else(|| DEPLOYMENT.to_string());
        let mut w = self.begin_write().await?;
        let max: Option<i64> = sqlx::query("SELECT MAX(version) FROM data_keys WHERE scope = $1")
            .bind(&scope)
            .fetch_one(&mut *w.tx)
            .await?
            .try_get(0)?;
        let version = max.ok_or(StoreError::NotFound)? + 1;
        self.keys.insert_new_key(&mut w.tx, &scope, version).await?;
        let ev = AuditEvent {
            actor: Actor::System,
            action: AuditAction::DataKeyRolled,
            target: format!("key:{scope}"),
            source: None,
            detail: serde_json::json!({ "version": version }),
        };
        let chain = tenant
            .map(tenant_chain)
            .unwrap_or_else(|| DEPLOYMENT_CHAIN.to_string());
        self.append_audit(&mut w, &chain, ev).await?;
        self.commit(w).await?;
        self.keys.forget_active(&scope);
        Ok(version)
    }

    /// Re-encrypts up to `batch` fields still under an older key of the scope. Returns how many it
    /// examined; 0 means done. Resumable: run it again after an interruption. Each update is a
    /// compare-and-swap on the old ciphertext, so a concurrent write is never undone; a row that
    /// lost the race is examined again in the next batch if it is still stale.
    pub async fn reencrypt_batch(
        &self,
        tenant: Option<TenantId>,
        batch: i64,
    ) -> Result<usize, StoreError> {
        let scope = tenant
            .map(tenant_scope)
            .unwrap_or_else(|| DEPLOYMENT.to_string());
        self.keys.forget_active(&scope);
        let (active, _) = self.keys.active(&self.pool, &scope).await?;
        let mut done = 0;
        match tenant {
            Some(t) => {
                let rows =
                    sqlx::query("SELECT contact FROM tenants WHERE id = $1 AND key_version < $2")
                        .bind(t.to_string())
                        .bind(active)
                        .fetch_all(&self.pool)
                        .await?;
                for r in rows {
                    let place = format!("tenants.contact:{t}");
                    let sealed: Option<Vec<u8>> = r.try_get(0)?;
                    let Some(sealed) = sealed else { continue };
                    let (new, version) = self.reseal(&scope, &place, &sealed).await?;
                    let mut w = self.begin_write().await?;
                    // Compare-and-swap: a write that landed since the read wins.
                    sqlx::query("UPDATE tenants SET contact = $1, key_version = $2 WHERE id = $3 AND contact = $4")
                        .bind(new)
                        .bind(version)
                        .bind(t.to_string())
                        .bind(sealed)
                        .execute(&mut *w.tx)
                        .await?;
                    self.commit(w).await?;
                    done += 1;
                }
                let rows = sqlx::query("SELECT id, secrets FROM devices WHERE tenant_id = $1 AND secrets_key_version < $2 LIMIT $3")
                    .bind(t.to_string())
                    .bind(active)
                    .bind(batch)
                    .fetch_all(&self.pool)
                    .await?;
                let mut w = self.begin_write().await?;
                for r in rows {
                    let id: printfleet_domain::DeviceId =
                        crate::codec::parse_id("devices.id", &r.try_get::<String, _>(0)?)?;
                    let place = crate::enrolment::secrets_place(t, id);
                    let old: Vec<u8> = r.try_get(1)?;
                    let (new, version) = self.reseal(&scope, &place, &old).await?;
                    sqlx::query("UPDATE devices SET secrets = $1, secrets_key_version = $2 WHERE tenant_id = $3 AND id = $4 AND secrets = $5")
                        .bind(new)
                        .bind(version)
                        .bind(t.to_string())
                        .bind(id.to_string())
                        .bind(old)
                        .execute(&mut *w.tx)
                        .await?;
                    done += 1;
                }
                self.commit(w).await?;
                done += self
                    .reencrypt_policy_secrets(t, &scope, active, batch)
                    .await?;
                let rows = sqlx::query("SELECT id, email FROM invitations WHERE tenant_id = $1 AND key_version < $2 LIMIT $3")
                    .bind(t.to_string())
                    .bind(active)
                    .bind(batch)
                    .fetch_all(&self.pool)
                    .await?;
                let mut w = self.begin_write().await?;
                for r in rows {
                    let id: String = r.try_get(0)?;
                    let place = format!("invitations.email:{t}:{id}");
                    let old: Vec<u8> = r.try_get(1)?;
                    let (new, version) = self.reseal(&scope, &place, &old).await?;
                    sqlx::query("UPDATE invitations SET email = $1, key_version = $2 WHERE tenant_id = $3 AND id = $4 AND email = $5")
                        .bind(new)
                        .bind(version)
                        .bind(t.to_string())
                        .bind(&id)
                        .bind(old)
                        .execute(&mut *w.tx)
                        .await?;
                    done += 1;
                }
                self.commit(w).await?;
            }
            None => {
                let rows = sqlx::query(
                    "SELECT id, pii, password_hash FROM users WHERE key_version < $1 LIMIT $2",
                )
                .bind(active)
                .bind(batch)
                .fetch_all(&self.pool)
                .await?;
                let mut w = self.begin_write().await?;
                for r in rows {
                    let id: printfleet_domain::UserId =
                        crate::codec::parse_id("users.id", &r.try_get::<String, _>(0)?)?;
                    let old_pii: Vec<u8> = r.try_get(1)?;
                    let pii: UserPii = self.open_json(&scope, &pii_place(id), &old_pii).await?;
                    let (new_pii, version) = self.seal_json(&scope, &pii_place(id), &pii).await?;
                    let pw: Option<Vec<u8>> = r.try_get(2)?;
                    let Some(old_pw) = pw else { continue };
                    let h: String = self.open_json(&scope, &password_place(id), &old_pw).await?;
                    let new_pw = self.seal_json(&scope, &password_place(id), &h).await?.0;
                    // Compare-and-swap: a password re-hash that landed since the read wins.
                    sqlx::query("UPDATE users SET pii = $1, password_hash = $2, key_version = $3 WHERE id = $4 AND pii = $5 AND password_hash = $6")
                        .bind(new_pii)
                        .bind(new_pw)
                        .bind(version)
                        .bind(id.to_string())
                        .bind(old_pii)
                        .bind(old_pw)
                        .execute(&mut *w.tx)
                        .await?;
                    done += 1;
                }
                self.commit(w).await?;
            }
        }
        Ok(done)
    }

    /// How many fields of the scope are still under an older key.
    pub async fn stale_fields(&self, tenant: Option<TenantId>) -> Result<i64, StoreError> {
        let scope = tenant
            .map(tenant_scope)
            .unwrap_or_else(|| DEPLOYMENT.to_string());
        self.keys.forget_active(&scope);
        let (active, _) = self.keys.active(&self.pool, &scope).await?;
        let n: i64 = match tenant {
            Some(t) => sqlx::query("SELECT (SELECT COUNT(*) FROM tenants WHERE id = $1 AND key_version < $2) + (SELECT COUNT(*) FROM invitations WHERE tenant_id = $1 AND key_version < $2) + (SELECT COUNT(*) FROM devices WHERE tenant_id = $1 AND secrets_key_version < $2) + (SELECT COUNT(*) FROM policy_versions WHERE tenant_id = $1 AND secrets IS NOT NULL AND (secrets_key_version IS NULL OR secrets_key_version < $2)) + (SELECT COUNT(*) FROM device_secrets WHERE tenant_id = $1 AND (key_version < $2 OR (held_value IS NOT NULL AND held_key_version < $2)))")
                .bind(t.to_string())
                .bind(active)
                .fetch_one(&self.pool)
                .await?
                .try_get(0)?,
            None => sqlx::query("SELECT COUNT(*) FROM users WHERE key_version < $1")
                .bind(active)
                .fetch_one(&self.pool)
                .await?
                .try_get(0)?,
        };
        Ok(n)
    }

    /// Every tenant id (for the admin command line).
    pub async fn tenant_ids(&self) -> Result<Vec<TenantId>, StoreError> {
        sqlx::query("SELECT id FROM tenants ORDER BY created_at")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| crate::codec::parse_id("tenants.id", &r.try_get::<String, _>(0)?))
            .collect()
    }
}
