//! Key rotation for the policy secrets: each policy version's secrets and each printer's
//! generated values (current and last proved), re-encrypted under the tenant's active data key
//! in batches, with the same compare-and-swap on the old ciphertext as the other fields
//! (`rekey`).

use crate::codec::parse_id;
use crate::device_secrets::value_place;
use crate::policies::secrets_place;
use crate::{Store, StoreError};
use printfleet_domain::{DeviceId, PolicyId, TenantId};
use sqlx::Row;

impl Store {
    /// Re-encrypts up to `batch` policy versions' secrets and `batch` generated-value rows of
    /// tenant `t` still under a key older than `active`. Returns how many it examined.
    pub(crate) async fn reencrypt_policy_secrets(
        &self,
        t: TenantId,
        scope: &str,
        active: i64,
        batch: i64,
    ) -> Result<usize, StoreError> {
        let mut done = 0;
        let rows = sqlx::query("SELECT policy_id, version, secrets FROM policy_versions WHERE tenant_id = $1 AND secrets IS NOT NULL AND (secrets_key_version IS NULL OR secrets_key_version < $2) LIMIT $3")
            .bind(t.to_string())
            .bind(active)
            .bind(batch)
            .fetch_all(&self.pool)
            .await?;
        let mut w = self.begin_write().await?;
        for r in rows {
            let p: PolicyId = parse_id("policy_versions.policy_id", &r.try_get::<String, _>(0)?)?;
            let version: i64 = r.try_get(1)?;
            let old: Vec<u8> = r.try_get(2)?;
            let place = secrets_place(t, p, version);
            let (new, key_version) = self.reseal(scope, &place, &old).await?;
            sqlx::query("UPDATE policy_versions SET secrets = $1, secrets_key_version = $2 WHERE tenant_id = $3 AND policy_id = $4 AND version = $5 AND secrets = $6")
                .bind(new)
                .bind(key_version)
                .bind(t.to_string())
                .bind(p.to_string())
                .bind(version)
                .bind(old)
                .execute(&mut *w.tx)
                .await?;
            done += 1;
        }
        self.commit(w).await?;

        let rows = sqlx::query("SELECT device_id, setting_id, generation, value, held_generation, held_value FROM device_secrets WHERE tenant_id = $1 AND (key_version < $2 OR (held_value IS NOT NULL AND held_key_version < $2)) LIMIT $3")
            .bind(t.to_string())
            .bind(active)
            .bind(batch)
            .fetch_all(&self.pool)
            .await?;
        let mut w = self.begin_write().await?;
        for r in rows {
            let d: DeviceId = parse_id("device_secrets.device_id", &r.try_get::<String, _>(0)?)?;
            let setting: String = r.try_get(1)?;
            let generation: i64 = r.try_get(2)?;
            let old: Vec<u8> = r.try_get(3)?;
            let held_generation: Option<i64> = r.try_get(4)?;
            let held_old: Option<Vec<u8>> = r.try_get(5)?;
            let place = value_place(t, d, &setting, generation);
            let (new, key_version) = self.reseal(scope, &place, &old).await?;
            let (held_new, held_key_version) = match (held_generation, &held_old) {
                (Some(g), Some(sealed)) => {
                    let (n, k) = self
                        .reseal(scope, &value_place(t, d, &setting, g), sealed)
                        .await?;
                    (Some(n), Some(k))
                }
                _ => (None, None),
            };
            // Both swapped only if the current value is still the one read (a rotation in
            // between wins, and its row is examined again if still stale).
            sqlx::query("UPDATE device_secrets SET value = $1, key_version = $2, held_value = $3, held_key_version = $4 WHERE tenant_id = $5 AND device_id = $6 AND setting_id = $7 AND value = $8")
                .bind(new)
                .bind(key_version)
                .bind(held_new)
                .bind(held_key_version)
                .bind(t.to_string())
                .bind(d.to_string())
                .bind(&setting)
                .bind(old)
                .execute(&mut *w.tx)
                .await?;
            done += 1;
        }
        self.commit(w).await?;
        Ok(done)
    }
}
