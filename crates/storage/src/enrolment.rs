//! Enrolment tokens and enrolment itself. An IT Admin or Printer Admin makes a token (bound to
//! the tenant, expiring, optionally limited to N printers, revocable); a printer presents it with
//! its serial number, model and fresh public key, and becomes a device of the tenant.

use crate::audit::{tenant_chain, AuditEvent};
use crate::codec::{parse_id, tenant_scope};
use crate::{Store, StoreError};
use printfleet_crypto::token;
use printfleet_domain::audit::AuditAction;
use printfleet_domain::device::DeviceFacts;
use printfleet_domain::{
    validation, Actor, Ctx, DeviceId, EnrolmentTokenId, Permission, Redacted, TenantId,
};
use printfleet_protocol::heartbeat::derive_heartbeat_key;
use printfleet_protocol::PublicKey;
use rand::rngs::OsRng;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sqlx::Row;

#[derive(Debug, Clone)]
pub struct EnrolmentToken {
    pub id: EnrolmentTokenId,
    pub name: String,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    pub max_uses: Option<i64>,
    pub uses: i64,
    pub revoked_at_ms: Option<i64>,
}

/// Why an enrolment was refused. Each has its own stable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EnrolRefusal {
    #[error("the enrolment token is not well formed")]
    Malformed,
    #[error("the enrolment token is not known")]
    Unknown,
    #[error("the enrolment token has expired")]
    Expired,
    #[error("the enrolment token was revoked")]
    Revoked,
    #[error("the enrolment token has enrolled as many printers as it may")]
    Exhausted,
    #[error("a printer with this serial number is enrolled; re-enrolment needs its current key or an admin's approval")]
    AlreadyEnrolled,
    #[error("the public key is not a valid X25519 key")]
    BadKey,
    #[error("the public key is already used by another printer")]
    KeyInUse,
    #[error("the re-enrolment proof is not for this printer")]
    BadProof,
}

impl EnrolRefusal {
    pub fn code(self) -> &'static str {
        match self {
            Self::Malformed => "token_malformed",
            Self::Unknown => "token_unknown",
            Self::Expired => "token_expired",
            Self::Revoked => "token_revoked",
            Self::Exhausted => "token_exhausted",
            Self::AlreadyEnrolled => "device_exists",
            Self::BadKey => "bad_public_key",
            Self::KeyInUse => "public_key_in_use",
            Self::BadProof => "bad_proof",
        }
    }
}

/// The secrets a printer receives at enrolment (sealed to its key) and the server keeps
/// encrypted: the enrolment secret (heartbeat keys derive from it) and the verifier key.
#[derive(Serialize, Deserialize)]
pub struct DeviceSecrets {
    pub enrolment_secret: String,
    pub verifier_key: String,
}

impl std::fmt::Debug for DeviceSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeviceSecrets([redacted])")
    }
}

/// A freshly enrolled (or re-enrolled) printer.
#[derive(Debug)]
pub struct Enrolled {
    pub tenant: TenantId,
    pub device: DeviceId,
    pub secrets: DeviceSecrets,
    /// The printer's key version: 1 at first enrolment, one more at each re-enrolment.
    pub key_version: i64,
}

/// How a printer may take over an enrolled serial.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Takeover {
    /// None: a live printer with the serial means `device_exists` (unless an admin approved).
    None,
    /// The request carried a proof, opened with this printer's current key by the caller.
    Proven(DeviceId),
}

/// The key id of a printer's HPKE public key, as stored in `devices.kem_key_id`.
pub(crate) fn kem_key_id_hex(pk: &PublicKey) -> String {
    hex::encode(pk.key_id().0)
}

pub(crate) fn secrets_place(t: TenantId, d: DeviceId) -> String {
    format!("devices.secrets:{t}:{d}")
}

const TOKEN_COLUMNS: &str = "id, name, created_at, expires_at, max_uses, uses, revoked_at";

fn token_from_row(r: &sqlx::any::AnyRow) -> Result<EnrolmentToken, StoreError> {
    Ok(EnrolmentToken {
        id: parse_id("enrolment_tokens.id", &r.try_get::<String, _>(0)?)?,
        name: r.try_get(1)?,
        created_at_ms: r.try_get(2)?,
        expires_at_ms: r.try_get(3)?,
        max_uses: r.try_get(4)?,
        uses: r.try_get(5)?,
        revoked_at_ms: r.try_get(6)?,
    })
}

impl Store {
    pub async fn enrolment_token_create(
        &self,
        ctx: &Ctx,
        name: &str,
        ttl_ms: i64,
        max_uses: Option<i64>,
    ) -> Result<(EnrolmentToken, Redacted<String>), StoreError> {
        ctx.require(Permission::DevicesManage)?;
        if !ctx.scope.is_tenant_wide() {
            return Err(StoreError::ScopeTooNarrow);
        }
        let name = validation::text("name", name, 100)?;
        if !(60_000..=366 * 86_400_000).contains(&ttl_ms) {
            return Err(printfleet_domain::ValidationError::new(
                "valid_for_hours",
                "must be between 1 minute and 366 days",
            )
            .into());
        }
        if max_uses.is_some_and(|m| !(1..=1_000_000).contains(&m)) {
            return Err(printfleet_domain::ValidationError::new(
                "max_uses",
                "must be between 1 and 1000000",
            )
            .into());
        }
        let secret = token::generate(token::ENROLMENT_PREFIX, &mut OsRng);
        let now = self.now_ms();
        let t = EnrolmentToken {
            id: EnrolmentTokenId::new_random(),
            name,
            created_at_ms: now,
            expires_at_ms: now + ttl_ms,
            max_uses,
            uses: 0,
            revoked_at_ms: None,
        };
        let mut w = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO enrolment_tokens (tenant_id, id, name, token_hash, created_by, created_at, expires_at, max_uses, uses) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0)",
        )
        .bind(ctx.tenant.to_string())
        .bind(t.id.to_string())
        .bind(&t.name)
        .bind(token::hash(&secret))
        .bind(ctx.actor.audit_id())
        .bind(now)
        .bind(t.expires_at_ms)
        .bind(max_uses)
        .execute(&mut *w.tx)
        .await?;
        let ev = AuditEvent::new(ctx, AuditAction::EnrolmentTokenCreated, format!("enrolment-token:{}", t.id))
            .with_detail(serde_json::json!({ "name": t.name, "expires_at": t.expires_at_ms, "max_uses": max_uses }));
        self.append_audit(&mut w, &tenant_chain(ctx.tenant), ev)
            .await?;
        self.commit(w).await?;
        Ok((t, Redacted::new(secret)))
    }

    pub async fn enrolment_tokens_list(
        &self,
        ctx: &Ctx,
    ) -> Result<Vec<EnrolmentToken>, StoreError> {
        ctx.require(Permission::DevicesRead)?;
        let rows = sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS} FROM enrolment_tokens WHERE tenant_id = $1 ORDER BY created_at DESC"
        ))
        .bind(ctx.tenant.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(token_from_row).collect()
    }

    pub async fn enrolment_token_revoke(
        &self,
        ctx: &Ctx,
        id: EnrolmentTokenId,
    ) -> Result<(), StoreError> {
        let exists = sqlx::query("SELECT 1 FROM enrolment_tokens WHERE tenant_id = $1 AND id = $2")
            .bind(ctx.tenant.to_string())
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        if exists.is_none() {
            return Err(StoreError::NotFound);
        }
        ctx.require(Permission::DevicesManage)?;
        if !ctx.scope.is_tenant_wide() {
            return Err(StoreError::ScopeTooNarrow);
        }
        let mut w = self.begin_write().await?;
        sqlx::query("UPDATE enrolment_tokens SET revoked_at = $1 WHERE tenant_id = $2 AND id = $3 AND revoked_at IS NULL")
            .bind(self.now_ms())
            .bind(ctx.tenant.to_string())
            .bind(id.to_string())
            .execute(&mut *w.tx)
            .await?;
        let ev = AuditEvent::new(
            ctx,
            AuditAction::EnrolmentTokenRevoked,
            format!("enrolment-token:{id}"),
        );
        self.append_audit(&mut w, &tenant_chain(ctx.tenant), ev)
            .await?;
        self.commit(w).await
    }

    /// Enrols a printer with a token. The token is the credential, so there is no context: the
    /// tenant comes from the token (through the resolver). Returns the refusal reason or, on
    /// success, the device and the secrets to seal to it.
    ///
    /// A serial that a live printer of the tenant already has is re-enrolled in place (same id
    /// and history, next key version, all-new secrets, heartbeat state reset) when `takeover`
    /// proves the current key or an admin approved it within the last 24 hours; otherwise it is
    /// refused as `device_exists`.
    pub async fn enrol_device(
        &self,
        secret: &str,
        facts: &DeviceFacts,
        kem_public: &[u8],
        source: Option<String>,
        takeover: Takeover,
    ) -> Result<Result<Enrolled, EnrolRefusal>, StoreError> {
        if !token::well_formed(token::ENROLMENT_PREFIX, secret) {
            return Ok(Err(EnrolRefusal::Malformed));
        }
        let Some(pk) = PublicKey::from_bytes(kem_public) else {
            return Ok(Err(EnrolRefusal::BadKey));
        };
        let Some((tenant, token_id)) = crate::resolver::enrolment_token(self, secret).await? else {
            return Ok(Err(EnrolRefusal::Unknown));
        };
        // Which row this becomes decides the id the secrets are bound to; re-checked below.
        let existing = self
            .live_device_by_serial(tenant, &facts.serial, None)
            .await?;
        let device = existing.map(|e| e.0).unwrap_or_else(DeviceId::new_random);
        let mut enrolment_secret = [0u8; 32];
        OsRng.fill_bytes(&mut enrolment_secret);
        let mut verifier_key = [0u8; 32];
        OsRng.fill_bytes(&mut verifier_key);
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
        let (sealed, version) = self
            .seal_json(
                &tenant_scope(tenant),
                &secrets_place(tenant, device),
                &secrets,
            )
            .await?;
        let now = self.now_ms();
        let mut w = self.begin_write().await?;
        let row = sqlx::query("SELECT expires_at, max_uses, uses, revoked_at FROM enrolment_tokens WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.to_string())
            .bind(token_id.to_string())
            .fetch_one(&mut *w.tx)
            .await?;
        let expires: i64 = row.try_get(0)?;
        let max_uses: Option<i64> = row.try_get(1)?;
        let uses: i64 = row.try_get(2)?;
        let revoked: Option<i64> = row.try_get(3)?;
        if revoked.is_some() {
            return Ok(Err(EnrolRefusal::Revoked));
        }
        if now >= expires {
            return Ok(Err(EnrolRefusal::Expired));
        }
        if max_uses.is_some_and(|m| uses >= m) {
            return Ok(Err(EnrolRefusal::Exhausted));
        }
        let live = self
            .live_device_by_serial(tenant, &facts.serial, Some(&mut w))
            .await?;
        let reenrol = match (live, takeover) {
            (None, Takeover::None) => None,
            // The proven printer was removed (or its serial changed) since: nothing to take over.
            (None, Takeover::Proven(_)) => return Ok(Err(EnrolRefusal::BadProof)),
            (Some((id, _)), _) if id != device => return Ok(Err(EnrolRefusal::AlreadyEnrolled)),
            (Some((id, _)), Takeover::Proven(p)) if p == id => Some("proof"),
            (Some(_), Takeover::Proven(_)) => return Ok(Err(EnrolRefusal::BadProof)),
            (Some((_, Some(until))), Takeover::None) if until >= now => Some("approval"),
            (Some(_), Takeover::None) => return Ok(Err(EnrolRefusal::AlreadyEnrolled)),
        };
        let key_id = kem_key_id_hex(&pk);
        let key_taken =
            sqlx::query("SELECT 1 FROM devices WHERE kem_key_id = $1 AND removed_at IS NULL")
                .bind(&key_id)
                .fetch_optional(&mut *w.tx)
                .await?;
        if key_taken.is_some() {
            return Ok(Err(EnrolRefusal::KeyInUse));
        }
        sqlx::query("UPDATE enrolment_tokens SET uses = uses + 1 WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.to_string())
            .bind(token_id.to_string())
            .execute(&mut *w.tx)
            .await?;
        let key_version = match reenrol {
            None => {
                sqlx::query(
                    "INSERT INTO devices (tenant_id, id, serial, model, firmware, connection, kem_public, key_version, hb_key_id, secrets, secrets_key_version, enrolled_with, enrolled_at, kem_key_id) VALUES ($1, $2, $3, $4, $5, 'direct', $6, 1, $7, $8, $9, $10, $11, $12)",
                )
                .bind(tenant.to_string())
                .bind(device.to_string())
                .bind(&facts.serial)
                .bind(&facts.model)
                .bind(&facts.firmware)
                .bind(kem_public.to_vec())
                .bind(hb_key_id)
                .bind(sealed)
                .bind(version)
                .bind(token_id.to_string())
                .bind(now)
                .bind(&key_id)
                .execute(&mut *w.tx)
                .await?;
                let ev = AuditEvent {
                    actor: Actor::System,
                    action: AuditAction::DeviceEnrolled,
                    target: format!("device:{device}"),
                    source,
                    detail: serde_json::json!({ "enrolment_token": token_id.to_string(), "model": facts.model }),
                };
                self.append_audit(&mut w, &tenant_chain(tenant), ev).await?;
                1
            }
            Some(how) => {
                let old = sqlx::query(
                    "SELECT key_version, hb_key_id FROM devices WHERE tenant_id = $1 AND id = $2",
                )
                .bind(tenant.to_string())
                .bind(device.to_string())
                .fetch_one(&mut *w.tx)
                .await?;
                let kv: i64 = old.try_get(0)?;
                let old_hb_key: String = old.try_get(1)?;
                sqlx::query(
                    "UPDATE devices SET model = $1, firmware = $2, kem_public = $3, kem_key_id = $4, key_version = $5, hb_key_id = $6, secrets = $7, secrets_key_version = $8, enrolled_with = $9, enrolled_at = $10, revoked_at = NULL, reenrol_approved_until = NULL WHERE tenant_id = $11 AND id = $12",
                )
                .bind(&facts.model)
                .bind(&facts.firmware)
                .bind(kem_public.to_vec())
                .bind(&key_id)
                .bind(kv + 1)
                .bind(hb_key_id)
                .bind(sealed)
                .bind(version)
                .bind(token_id.to_string())
                .bind(now)
                .bind(tenant.to_string())
                .bind(device.to_string())
                .execute(&mut *w.tx)
                .await?;
                // The new heartbeat key starts with counters at 1 and a fresh window; reports
                // restart at seq 1 (history rows carry the key version). The old key's window
                // is deleted by its key, the table's primary key: `device_id` has no index,
                // and a scan of a million printers' windows would hold the write lock.
                sqlx::query("DELETE FROM heartbeat_windows WHERE hb_key_id = $1")
                    .bind(old_hb_key)
                    .execute(&mut *w.tx)
                    .await?;
                crate::telemetry::reset_seq(&mut w, tenant, device).await?;
                let ev = AuditEvent {
                    actor: Actor::System,
                    action: AuditAction::DeviceReenrolled,
                    target: format!("device:{device}"),
                    source,
                    detail: serde_json::json!({ "enrolment_token": token_id.to_string(), "key_version": kv + 1, "by": how }),
                };
                self.append_audit(&mut w, &tenant_chain(tenant), ev).await?;
                kv + 1
            }
        };
        self.commit(w).await?;
        Ok(Ok(Enrolled {
            tenant,
            device,
            secrets,
            key_version,
        }))
    }

    /// The live printer of the tenant with this serial: its id and re-enrolment approval.
    async fn live_device_by_serial(
        &self,
        tenant: TenantId,
        serial: &str,
        w: Option<&mut crate::audit::WriteTx>,
    ) -> Result<Option<(DeviceId, Option<i64>)>, StoreError> {
        let q = sqlx::query(
            "SELECT id, reenrol_approved_until FROM devices WHERE tenant_id = $1 AND serial = $2 AND removed_at IS NULL",
        )
        .bind(tenant.to_string())
        .bind(serial.to_string());
        let r = match w {
            Some(w) => q.fetch_optional(&mut *w.tx).await?,
            None => q.fetch_optional(&self.pool).await?,
        };
        r.map(|r| {
            Ok((
                parse_id("devices.id", &r.try_get::<String, _>(0)?)?,
                r.try_get(1)?,
            ))
        })
        .transpose()
    }

    /// Fills `devices.kem_key_id` for printers enrolled before the column existed.
    pub(crate) async fn backfill_kem_key_ids(&self) -> Result<(), StoreError> {
        let rows =
            sqlx::query("SELECT tenant_id, id, kem_public FROM devices WHERE kem_key_id IS NULL")
                .fetch_all(&self.pool)
                .await?;
        for r in rows {
            let Some(pk) = PublicKey::from_bytes(&r.try_get::<Vec<u8>, _>(2)?) else {
                continue;
            };
            sqlx::query("UPDATE devices SET kem_key_id = $1 WHERE tenant_id = $2 AND id = $3")
                .bind(kem_key_id_hex(&pk))
                .bind(r.try_get::<String, _>(0)?)
                .bind(r.try_get::<String, _>(1)?)
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }
}
