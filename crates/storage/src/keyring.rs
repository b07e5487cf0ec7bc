//! Data keys: generated here, stored wrapped by the master key, unwrapped on demand and cached.
//!
//! Scopes: `deployment` (people's identities), `blind-index` (the e-mail look-up key, never
//! rolled) and `tenant:<id>` (each tenant's data). The active key of a scope is its highest
//! version; servers re-read it every few seconds so a key rolled by `printfleet admin rotate-keys`
//! while they run is picked up.

use crate::StoreError;
use printfleet_crypto::{BlindIndexKey, DataKey, MasterKey};
use printfleet_domain::clock::Clock;
use printfleet_domain::TenantId;
use rand::rngs::OsRng;
use sqlx::{AnyPool, Row};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

pub const DEPLOYMENT: &str = "deployment";
pub const BLIND_INDEX: &str = "blind-index";
/// How long a server trusts its idea of a scope's active version.
pub const ACTIVE_TTL_MS: i64 = 2_000;

pub fn tenant_scope(t: TenantId) -> String {
    format!("tenant:{t}")
}

pub(crate) fn wrap_context(scope: &str, version: i64) -> String {
    format!("printfleet-data-key|{scope}|{version}")
}

pub struct Keyring {
    masters: Vec<MasterKey>,
    cache: RwLock<HashMap<(String, i64), Arc<DataKey>>>,
    active: RwLock<HashMap<String, (i64, i64)>>,
    blind: BlindIndexKey,
    clock: Arc<dyn Clock>,
}

impl Keyring {
    pub(crate) async fn load(
        pool: &AnyPool,
        masters: Vec<MasterKey>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StoreError> {
        if masters.is_empty() {
            return Err(StoreError::Config("no master key".into()));
        }
        let mut ring = Self {
            masters,
            cache: RwLock::new(HashMap::new()),
            active: RwLock::new(HashMap::new()),
            blind: BlindIndexKey::from_bytes([0; 32]),
            clock,
        };
        for scope in [DEPLOYMENT, BLIND_INDEX] {
            let exists = sqlx::query("SELECT COUNT(*) FROM data_keys WHERE scope = $1")
                .bind(scope)
                .fetch_one(pool)
                .await?
                .try_get::<i64, _>(0)?;
            if exists == 0 {
                let mut conn = pool.acquire().await?;
                ring.insert_new_key(&mut conn, scope, 1).await?;
            }
        }
        let (_, blind) = ring.active(pool, BLIND_INDEX).await?;
        ring.blind = BlindIndexKey::from_bytes(*blind.expose_bytes());
        // Fail at start, not at first use, when the master key does not fit the database.
        ring.active(pool, DEPLOYMENT).await?;
        Ok(ring)
    }

    pub fn blind_index(&self) -> &BlindIndexKey {
        &self.blind
    }

    pub fn current_master(&self) -> &MasterKey {
        &self.masters[0]
    }

    /// Generates and stores a new key for `scope` at `version`, and caches it.
    pub(crate) async fn insert_new_key(
        &self,
        conn: &mut sqlx::AnyConnection,
        scope: &str,
        version: i64,
    ) -> Result<Arc<DataKey>, StoreError> {
        let key = DataKey::generate(&mut OsRng);
        let master = self.current_master();
        let wrapped = master.wrap(&key, &wrap_context(scope, version), &mut OsRng);
        sqlx::query(
            "INSERT INTO data_keys (scope, version, wrapped, master_id, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(scope)
        .bind(version)
        .bind(wrapped)
        .bind(master.id())
        .bind(self.clock.now_ms())
        .execute(&mut *conn)
        .await?;
        let key = Arc::new(key);
        if let Ok(mut c) = self.cache.write() {
            c.insert((scope.to_string(), version), key.clone());
        }
        Ok(key)
    }

    /// The scope's active (highest) version and key.
    pub async fn active(
        &self,
        pool: &AnyPool,
        scope: &str,
    ) -> Result<(i64, Arc<DataKey>), StoreError> {
        let now = self.clock.now_ms();
        let cached = self
            .active
            .read()
            .ok()
            .and_then(|a| a.get(scope).copied())
            .filter(|(_, at)| now - at < ACTIVE_TTL_MS);
        let version = match cached {
            Some((v, _)) => v,
            None => {
                let v: Option<i64> =
                    sqlx::query("SELECT MAX(version) FROM data_keys WHERE scope = $1")
                        .bind(scope)
                        .fetch_one(pool)
                        .await?
                        .try_get(0)?;
                let v = v.ok_or(StoreError::NotFound)?;
                if let Ok(mut a) = self.active.write() {
                    a.insert(scope.to_string(), (v, now));
                }
                v
            }
        };
        Ok((version, self.get(pool, scope, version).await?))
    }

    /// Remembers a freshly created key as active (so a transaction can use it before commit).
    pub(crate) fn set_active(&self, scope: &str, version: i64) {
        if let Ok(mut a) = self.active.write() {
            a.insert(scope.to_string(), (version, self.clock.now_ms()));
        }
    }

    pub(crate) fn forget_active(&self, scope: &str) {
        if let Ok(mut a) = self.active.write() {
            a.remove(scope);
        }
    }

    /// The key of `scope` at `version`, unwrapped with whichever master key wrapped it.
    pub async fn get(
        &self,
        pool: &AnyPool,
        scope: &str,
        version: i64,
    ) -> Result<Arc<DataKey>, StoreError> {
        if let Some(k) = self
            .cache
            .read()
            .ok()
            .and_then(|c| c.get(&(scope.to_string(), version)).cloned())
        {
            return Ok(k);
        }
        let row = sqlx::query(
            "SELECT wrapped, master_id FROM data_keys WHERE scope = $1 AND version = $2",
        )
        .bind(scope)
        .bind(version)
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| StoreError::Crypto(format!("no data key {scope} v{version}")))?;
        let wrapped: Vec<u8> = row.try_get(0)?;
        let master_id: String = row.try_get(1)?;
        let master = self
            .masters
            .iter()
            .find(|m| m.id() == master_id)
            .ok_or_else(|| {
                StoreError::Config(format!(
                    "data key {scope} v{version} is wrapped by master key {master_id}, which was not given (check the master key file or PRINTFLEET_MASTER_KEY)"
                ))
            })?;
        let key = master
            .unwrap_key(&wrapped, &wrap_context(scope, version))
            .map_err(|e| StoreError::Crypto(e.to_string()))?;
        let key = Arc::new(key);
        if let Ok(mut c) = self.cache.write() {
            c.insert((scope.to_string(), version), key.clone());
        }
        Ok(key)
    }
}
