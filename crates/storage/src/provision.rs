//! Bulk provisioning of printers, for benchmarks and load tests: many real printer identities
//! at once, much faster than enrolling each over HTTPS.
//!
//! Each printer gets what [`Store::enrol_device`] would give it — a fresh id, a real X25519
//! key pair (`kem_public`, `kem_key_id`), a random enrolment secret and verifier key encrypted
//! under the tenant's data key and bound to the row (`devices.secrets`), and the heartbeat key id
//! derived from the secret (`hb_key_id`) — so the doorbell and the device API treat them exactly
//! like enrolled printers. What differs: the rows are written with multi-row inserts,
//! [`ROWS_PER_TRANSACTION`] per transaction, with one audit entry per transaction (not one per
//! printer), and the key material is made on blocking threads while the previous transaction
//! commits.
//!
//! [`Store::provision_states`] then gives printers a stored state (what a first check-in would
//! leave), written the same way, so assessments have something to read.
//!
//! The caller gets each printer's id, enrolment secret (its heartbeat keys derive from it, see
//! `printfleet_protocol::heartbeat::derive_heartbeat_key`) and key-pair seed
//! (`printfleet_protocol::KeyPair::derive`).

use std::collections::VecDeque;
use std::sync::Arc;

use crate::audit::{tenant_chain, AuditEvent};
use crate::codec::tenant_scope;
use crate::enrolment::{secrets_place, DeviceSecrets};
use crate::{Store, StoreError};
use printfleet_crypto::{field, DataKey};
use printfleet_domain::audit::AuditAction;
use printfleet_domain::telemetry::DeviceState;
use printfleet_domain::{Ctx, DeviceId, EnrolmentTokenId, Permission};
use printfleet_protocol::heartbeat::derive_heartbeat_key;
use printfleet_protocol::KeyPair;
use rand::rngs::OsRng;
use rand::RngCore;

/// Printers written per transaction.
pub const ROWS_PER_TRANSACTION: usize = 4000;
/// Rows per `INSERT` statement (14 parameters each; see `codec::value_rows` on why small).
const ROWS_PER_STATEMENT: usize = 40;

/// What to provision.
#[derive(Clone, Debug)]
pub struct ProvisionPlan {
    pub count: usize,
    /// Serials are `{serial_prefix}{index:08}` (index from 0); they must not collide with live
    /// printers of the tenant.
    pub serial_prefix: String,
    pub model: String,
    pub firmware: String,
}

/// One provisioned printer, as the printer itself would know it after enrolment.
#[derive(Clone)]
pub struct Provisioned {
    pub device: DeviceId,
    /// The enrolment secret (its heartbeat keys derive from it with the printer id).
    pub enrolment_secret: [u8; 32],
    /// `KeyPair::derive(&kem_seed)` is the printer's X25519 key pair.
    pub kem_seed: [u8; 32],
}

impl std::fmt::Debug for Provisioned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Provisioned({}, [redacted])", self.device)
    }
}

/// A printer's row, ready to insert.
struct Row {
    printer: Provisioned,
    serial: String,
    kem_public: Vec<u8>,
    kem_key_id: String,
    hb_key_id: String,
    secrets: Vec<u8>,
}

/// Makes the key material of printers `first..first + n` (CPU only: X25519, HKDF, encryption).
fn make_rows(
    tenant: printfleet_domain::TenantId,
    key: &DataKey,
    key_version: u32,
    prefix: &str,
    first: usize,
    n: usize,
) -> Result<Vec<Row>, StoreError> {
    let mut rows = Vec::with_capacity(n);
    for i in first..first + n {
        let device = DeviceId::new_random();
        let mut enrolment_secret = [0u8; 32];
        OsRng.fill_bytes(&mut enrolment_secret);
        let mut verifier_key = [0u8; 32];
        OsRng.fill_bytes(&mut verifier_key);
        let mut kem_seed = [0u8; 32];
        OsRng.fill_bytes(&mut kem_seed);
        let kp = KeyPair::derive(&kem_seed);
        let hb_key_id = hex::encode(
            derive_heartbeat_key(&enrolment_secret, device.as_uuid().as_bytes())
                .keys()
                .key_id()
                .0,
        );
        let secrets = DeviceSecrets {
            enrolment_secret: hex::encode(enrolment_secret),
            verifier_key: hex::encode(verifier_key),
        };
        let plain = serde_json::to_vec(&secrets).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let sealed = field::seal_field(
            key,
            key_version,
            secrets_place(tenant, device).as_bytes(),
            &plain,
            &mut OsRng,
        );
        rows.push(Row {
            serial: format!("{prefix}{i:08}"),
            kem_public: kp.public.to_bytes().to_vec(),
            kem_key_id: hex::encode(kp.key_id().0),
            hb_key_id,
            secrets: sealed,
            printer: Provisioned {
                device,
                enrolment_secret,
                kem_seed,
            },
        });
    }
    Ok(rows)
}

impl Store {
    /// Provisions `plan.count` printers in the caller's tenant as if each had enrolled with
    /// `token` (which must be the tenant's and not revoked; its use count grows by the number
    /// provisioned, its expiry and limit are not checked). Needs `devices.manage` tenant-wide.
    /// `progress` is called after each committed transaction with the number provisioned so far.
    pub async fn provision_printers(
        &self,
        ctx: &Ctx,
        token: EnrolmentTokenId,
        plan: &ProvisionPlan,
        progress: &(dyn Fn(usize) + Send + Sync),
    ) -> Result<Vec<Provisioned>, StoreError> {
        ctx.require(Permission::DevicesManage)?;
        if !ctx.scope.is_tenant_wide() {
            return Err(StoreError::ScopeTooNarrow);
        }
        let tenant = ctx.tenant;
        let revoked: Option<i64> = {
            use sqlx::Row as _;
            sqlx::query("SELECT revoked_at FROM enrolment_tokens WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.to_string())
                .bind(token.to_string())
                .fetch_optional(&self.pool)
                .await?
                .ok_or(StoreError::NotFound)?
                .try_get(0)?
        };
        if revoked.is_some() {
            return Err(StoreError::Conflict {
                code: "token_revoked",
                message: "the enrolment token was revoked".into(),
            });
        }
        let (version, key) = self.keys.active(&self.pool, &tenant_scope(tenant)).await?;
        let key_version =
            u32::try_from(version).map_err(|_| StoreError::Corrupt("key version".into()))?;
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        let mut out = Vec::with_capacity(plan.count);
        let mut making = VecDeque::new();
        let mut next = 0usize;
        loop {
            // Keep every core busy making key material while transactions commit.
            while making.len() < workers + 1 && next < plan.count {
                let n = ROWS_PER_TRANSACTION.min(plan.count - next);
                let (key, prefix, first) = (Arc::clone(&key), plan.serial_prefix.clone(), next);
                making.push_back(tokio::task::spawn_blocking(move || {
                    make_rows(tenant, &key, key_version, &prefix, first, n)
                }));
                next += n;
            }
            let Some(task) = making.pop_front() else {
                break;
            };
            let rows = task
                .await
                .map_err(|e| StoreError::Unavailable(format!("provisioning worker: {e}")))??;
            self.insert_provisioned(ctx, token, plan, version, &rows)
                .await?;
            out.extend(rows.into_iter().map(|r| r.printer));
            progress(out.len());
        }
        Ok(out)
    }

    async fn insert_provisioned(
        &self,
        ctx: &Ctx,
        token: EnrolmentTokenId,
        plan: &ProvisionPlan,
        secrets_version: i64,
        rows: &[Row],
    ) -> Result<(), StoreError> {
        let now = self.now_ms();
        let tenant = ctx.tenant.to_string();
        let token_id = token.to_string();
        let mut w = self.begin_write().await?;
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let values = crate::codec::value_rows(chunk.len(), 14);
            let sql = format!(
                "INSERT INTO devices (tenant_id, id, serial, model, firmware, connection, kem_public, key_version, hb_key_id, secrets, secrets_key_version, enrolled_with, enrolled_at, kem_key_id) VALUES {values}"
            );
            let mut q = sqlx::query(&sql);
            for r in chunk {
                q = q
                    .bind(tenant.clone())
                    .bind(r.printer.device.to_string())
                    .bind(r.serial.clone())
                    .bind(plan.model.clone())
                    .bind(plan.firmware.clone())
                    .bind("direct")
                    .bind(r.kem_public.clone())
                    .bind(1_i64)
                    .bind(r.hb_key_id.clone())
                    .bind(r.secrets.clone())
                    .bind(secrets_version)
                    .bind(token_id.clone())
                    .bind(now)
                    .bind(r.kem_key_id.clone());
            }
            q.execute(&mut *w.tx).await?;
        }
        let n = i64::try_from(rows.len()).map_err(|_| StoreError::Corrupt("count".into()))?;
        sqlx::query(
            "UPDATE enrolment_tokens SET uses = uses + $1 WHERE tenant_id = $2 AND id = $3",
        )
        .bind(n)
        .bind(&tenant)
        .bind(&token_id)
        .execute(&mut *w.tx)
        .await?;
        let ev = AuditEvent::new(ctx, AuditAction::DeviceEnrolled, "devices:provisioned")
            .with_detail(serde_json::json!({
                "provisioned": n,
                "first_serial": rows.first().map(|r| r.serial.as_str()),
                "last_serial": rows.last().map(|r| r.serial.as_str()),
                "enrolment_token": token_id,
                "model": plan.model,
            }));
        self.append_audit(&mut w, &tenant_chain(ctx.tenant), ev)
            .await?;
        self.commit(w).await
    }
}

/// Rows per `INSERT` of states (5 parameters each).
const STATES_PER_STATEMENT: usize = 20;

impl Store {
    /// Gives printers of the caller's tenant a stored state, as if each had checked in once:
    /// `state_of(i, device)` makes the state of `devices[i]` (stored with `received_at` now).
    /// A printer's earlier state is replaced. Written [`ROWS_PER_TRANSACTION`] per transaction
    /// with multi-row statements; `progress` is called after each commit. Needs
    /// `devices.manage` tenant-wide.
    pub async fn provision_states(
        &self,
        ctx: &Ctx,
        devices: &[DeviceId],
        state_of: &(dyn Fn(usize, DeviceId) -> DeviceState + Send + Sync),
        progress: &(dyn Fn(usize) + Send + Sync),
    ) -> Result<(), StoreError> {
        ctx.require(Permission::DevicesManage)?;
        if !ctx.scope.is_tenant_wide() {
            return Err(StoreError::ScopeTooNarrow);
        }
        let tenant = ctx.tenant.to_string();
        let mut done = 0;
        for chunk in devices.chunks(ROWS_PER_TRANSACTION) {
            let now = self.now_ms();
            let rows = chunk
                .iter()
                .enumerate()
                .map(|(i, d)| {
                    let mut state = state_of(done + i, *d);
                    state.received_at_ms = now;
                    let seq = i64::try_from(state.seq).unwrap_or(i64::MAX);
                    Ok((d.to_string(), seq, crate::codec::to_json(&state)?))
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            let mut w = self.begin_write().await?;
            for part in rows.chunks(STATES_PER_STATEMENT) {
                let sql = format!(
                    "INSERT INTO device_state (tenant_id, device_id, seq, received_at, settings_at, state) VALUES {} \
                     ON CONFLICT (tenant_id, device_id) DO UPDATE SET seq = excluded.seq, received_at = excluded.received_at, settings_at = excluded.settings_at, state = excluded.state",
                    crate::codec::value_rows(part.len(), 6)
                );
                let mut q = sqlx::query(&sql);
                for (device, seq, state) in part {
                    q = q
                        .bind(tenant.clone())
                        .bind(device.clone())
                        .bind(*seq)
                        .bind(now)
                        .bind(now)
                        .bind(state.clone());
                }
                q.execute(&mut *w.tx).await?;
            }
            self.commit(w).await?;
            done += chunk.len();
            progress(done);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::resolver;
    use crate::{StoreKeys, StoreOptions};
    use printfleet_crypto::{AuditKey, MasterKey};
    use printfleet_domain::clock::{Clock, ManualClock};
    use printfleet_domain::tenant::Contact;

    async fn open(pg: bool) -> (Store, tempfile::TempDir, Option<String>) {
        let dir = tempfile::tempdir().unwrap();
        let schema = pg.then(|| format!("t_{}", uuid::Uuid::new_v4().simple()));
        let opts = if pg {
            StoreOptions {
                url: std::env::var("PF_TEST_DATABASE_URL")
                    .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into()),
                pg_schema: schema.clone(),
                max_connections: 4,
                checkpoint_path: dir.path().join("audit-checkpoint.json"),
            }
        } else {
            StoreOptions {
                url: format!("sqlite://{}", dir.path().join("t.db").display()),
                pg_schema: None,
                max_connections: 4,
                checkpoint_path: dir.path().join("audit-checkpoint.json"),
            }
        };
        let keys = StoreKeys {
            masters: vec![MasterKey::generate(&mut OsRng)],
            audit: AuditKey::from_bytes([7; 32]),
        };
        let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(1_700_000_000_000));
        let store = Store::open(opts, keys, clock)
            .await
            .expect("open the store (PostgreSQL: set PF_TEST_DATABASE_URL)");
        (store, dir, schema)
    }

    /// Provisioned printers are found like enrolled ones; the batched heartbeat functions of
    /// the resolver agree with the single ones.
    async fn check(pg: bool) {
        let (store, _dir, schema) = open(pg).await;
        let tenant = store
            .create_tenant("Bench", "us", &Contact::default(), None)
            .await
            .unwrap();
        let ctx = Ctx::system(tenant);
        let (token, _) = store
            .enrolment_token_create(&ctx, "bench", 3_600_000, None)
            .await
            .unwrap();
        let plan = ProvisionPlan {
            count: ROWS_PER_TRANSACTION + 7,
            serial_prefix: "B-".into(),
            model: "Bench".into(),
            firmware: "1".into(),
        };
        let seen = std::sync::Mutex::new(Vec::new());
        let printers = store
            .provision_printers(&ctx, token.id, &plan, &|n| seen.lock().unwrap().push(n))
            .await
            .unwrap();
        assert_eq!(printers.len(), plan.count);
        assert_eq!(*seen.lock().unwrap(), [ROWS_PER_TRANSACTION, plan.count]);

        let key_id = |p: &Provisioned| {
            derive_heartbeat_key(&p.enrolment_secret, p.device.as_uuid().as_bytes())
                .keys()
                .key_id()
                .0
        };
        let one = &printers[3];
        let (t, d, secrets) = resolver::device_by_heartbeat_key(&store, &key_id(one))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((t, d), (tenant, one.device));
        assert_eq!(secrets.enrolment_secret, hex::encode(one.enrolment_secret));
        let pk = KeyPair::derive(&one.kem_seed).public;
        let by_kem = resolver::device_by_kem_key(&store, &pk.key_id().0)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(by_kem.device, one.device);

        // Batched look-up: 600 known ids (five padded chunks) and an unknown one.
        let mut ids: Vec<[u8; 8]> = printers[..600].iter().map(key_id).collect();
        ids.push([0; 8]);
        let found = resolver::devices_by_heartbeat_keys(&store, &ids)
            .await
            .unwrap();
        assert_eq!(found.len(), 600);
        let p0 = found.iter().find(|f| f.0 == ids[0]).unwrap();
        assert_eq!(p0.2, printers[0].device);

        // Windows: a batch saved in one transaction, then overwritten, then loaded in bulk.
        let windows: Vec<(DeviceId, [u8; 8], Vec<u8>)> = printers[..300]
            .iter()
            .map(|p| (p.device, key_id(p), vec![1u8; 137]))
            .collect();
        let as_refs = |w: &[(DeviceId, [u8; 8], Vec<u8>)]| {
            w.iter()
                .map(|(d, k, b)| (*d, *k, b.clone()))
                .collect::<Vec<_>>()
        };
        let owned = as_refs(&windows);
        let refs: Vec<(DeviceId, [u8; 8], &[u8])> = owned
            .iter()
            .map(|(d, k, b)| (*d, *k, b.as_slice()))
            .collect();
        resolver::heartbeat_windows_save_many(&store, &refs)
            .await
            .unwrap();
        let newer: Vec<(DeviceId, [u8; 8], &[u8])> = owned[..5]
            .iter()
            .map(|(d, k, _)| (*d, *k, &[2u8; 137][..]))
            .collect();
        resolver::heartbeat_windows_save_many(&store, &newer)
            .await
            .unwrap();
        let loaded = resolver::heartbeat_windows_load_many(&store, &ids[..400])
            .await
            .unwrap();
        assert_eq!(loaded.len(), 300);
        for (k, bytes) in &loaded {
            let i = ids.iter().position(|x| x == k).unwrap();
            assert_eq!(bytes[0], if i < 5 { 2 } else { 1 });
        }
        assert_eq!(
            resolver::heartbeat_window_load(&store, &ids[0])
                .await
                .unwrap(),
            Some(vec![2u8; 137])
        );

        // States: written for some printers, each its own, read back like a check-in's.
        let some: Vec<DeviceId> = printers[..45].iter().map(|p| p.device).collect();
        store
            .provision_states(
                &ctx,
                &some,
                &|i, _| DeviceState {
                    seq: 1 + i as u64,
                    ..DeviceState::default()
                },
                &|_| {},
            )
            .await
            .unwrap();
        let state = store.device_state(&ctx, some[44]).await.unwrap().unwrap();
        assert_eq!(state.seq, 45);
        assert_eq!(state.received_at_ms, store.now_ms());

        // Pending work, asked for many printers at once.
        let devices: Vec<DeviceId> = printers[..20].iter().map(|p| p.device).collect();
        assert!(resolver::work_pending_among(&store, &devices)
            .await
            .unwrap()
            .is_empty());
        if let Some(schema) = schema {
            sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
                .execute(store.raw_pool())
                .await
                .unwrap();
        }
        store.close().await;
    }

    #[tokio::test]
    async fn sqlite_provisioning_and_batched_heartbeat_queries() {
        check(false).await;
    }

    #[tokio::test]
    async fn postgres_provisioning_and_batched_heartbeat_queries() {
        check(true).await;
    }
}
