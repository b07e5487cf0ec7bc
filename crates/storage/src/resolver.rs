//! The only look-ups that do not start from a caller's context. Each turns a credential (an
//! e-mail at sign-in, a session cookie, an API token, an invitation secret) into a context or
//! nothing. Everything else in this crate takes a context.

use crate::codec::{from_json, parse_id};
use crate::keyring::DEPLOYMENT;
use crate::sessions::SessionPolicy;
use crate::users::password_place;
use crate::{Store, StoreError};
use printfleet_crypto::token;
use printfleet_domain::context::Me;
use printfleet_domain::{
    Actor, Ctx, Email, InvitationId, MembershipId, Redacted, RoleRef, Scope, TenantId, TokenId,
    UserId,
};
use sqlx::Row;

/// Only refresh `last_seen_at` this often, so reads do not each cost a write.
const TOUCH_EVERY_MS: i64 = 30_000;

/// Finds a person by e-mail through the blind index, with their password hash.
pub async fn sign_in_lookup(
    store: &Store,
    email: &Email,
) -> Result<Option<(UserId, Redacted<String>)>, StoreError> {
    let row = sqlx::query("SELECT id, password_hash FROM users WHERE email_index = $1")
        .bind(store.email_index(email))
        .fetch_optional(&store.pool)
        .await?;
    let Some(r) = row else { return Ok(None) };
    let id: UserId = parse_id("users.id", &r.try_get::<String, _>(0)?)?;
    let sealed: Option<Vec<u8>> = r.try_get(1)?;
    let Some(sealed) = sealed else {
        return Ok(None);
    };
    let hash: String = store
        .open_json(DEPLOYMENT, &password_place(id), &sealed)
        .await?;
    Ok(Some((id, Redacted::new(hash))))
}

/// The signed-in person for a session cookie, if the session is live (not revoked, within its
/// absolute lifetime, and used within the idle timeout).
pub async fn session(
    store: &Store,
    secret: &str,
    policy: SessionPolicy,
    source: Option<String>,
) -> Result<Option<Me>, StoreError> {
    if !token::well_formed(token::SESSION_PREFIX, secret) {
        return Ok(None);
    }
    let row = sqlx::query("SELECT id, user_id, last_seen_at, expires_at, revoked_at FROM sessions WHERE secret_hash = $1")
        .bind(token::hash(secret))
        .fetch_optional(&store.pool)
        .await?;
    let Some(r) = row else { return Ok(None) };
    let now = store.now_ms();
    let last_seen: i64 = r.try_get(2)?;
    let expires: i64 = r.try_get(3)?;
    let revoked: Option<i64> = r.try_get(4)?;
    if revoked.is_some() || now >= expires || now - last_seen >= policy.idle_ms {
        return Ok(None);
    }
    let id_text: String = r.try_get(0)?;
    if now - last_seen >= TOUCH_EVERY_MS {
        let mut w = store.begin_write().await?;
        sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id = $2")
            .bind(now)
            .bind(&id_text)
            .execute(&mut *w.tx)
            .await?;
        store.commit(w).await?;
    }
    Ok(Some(Me {
        user: parse_id("sessions.user_id", &r.try_get::<String, _>(1)?)?,
        session: Some(parse_id("sessions.id", &id_text)?),
        source,
    }))
}

/// The context of a person acting in a tenant through their membership; `NotFound` when they
/// are not a member.
pub async fn tenant_ctx(store: &Store, me: &Me, tenant: TenantId) -> Result<Ctx, StoreError> {
    let r = sqlx::query(
        "SELECT id, role, scope FROM memberships WHERE tenant_id = $1 AND user_id = $2",
    )
    .bind(tenant.to_string())
    .bind(me.user.to_string())
    .fetch_optional(&store.pool)
    .await?
    .ok_or(StoreError::NotFound)?;
    let membership: MembershipId = parse_id("memberships.id", &r.try_get::<String, _>(0)?)?;
    let role: RoleRef = r
        .try_get::<String, _>(1)?
        .parse()
        .map_err(|_| StoreError::Corrupt("memberships.role".into()))?;
    let scope: Scope = from_json("memberships.scope", &r.try_get::<String, _>(2)?)?;
    // A membership whose custom role was removed has no permissions rather than failing.
    let permissions = store
        .resolve_role(tenant, role)
        .await
        .map(|r| r.permissions)
        .unwrap_or_default();
    Ok(Ctx {
        tenant,
        actor: Actor::User(me.user),
        membership: Some(membership),
        permissions,
        scope,
        source: me.source.clone(),
    })
}

/// The context of an API token: its membership's current role and scope. `None` for an unknown,
/// revoked or expired token, or one whose membership is gone.
pub async fn api_token(
    store: &Store,
    secret: &str,
    source: Option<String>,
) -> Result<Option<Ctx>, StoreError> {
    if !token::well_formed(token::API_TOKEN_PREFIX, secret) {
        return Ok(None);
    }
    let row = sqlx::query("SELECT tenant_id, id, user_id, expires_at, revoked_at, last_used_at FROM api_tokens WHERE token_hash = $1")
        .bind(token::hash(secret))
        .fetch_optional(&store.pool)
        .await?;
    let Some(r) = row else { return Ok(None) };
    let now = store.now_ms();
    let expires: Option<i64> = r.try_get(3)?;
    let revoked: Option<i64> = r.try_get(4)?;
    if revoked.is_some() || expires.is_some_and(|e| now >= e) {
        return Ok(None);
    }
    let tenant: TenantId = parse_id("api_tokens.tenant_id", &r.try_get::<String, _>(0)?)?;
    let token_id: TokenId = parse_id("api_tokens.id", &r.try_get::<String, _>(1)?)?;
    let user: UserId = parse_id("api_tokens.user_id", &r.try_get::<String, _>(2)?)?;
    let me = Me {
        user,
        session: None,
        source,
    };
    let mut ctx = match tenant_ctx(store, &me, tenant).await {
        Ok(c) => c,
        Err(StoreError::NotFound) => return Ok(None),
        Err(e) => return Err(e),
    };
    ctx.actor = Actor::Token {
        token: token_id,
        user,
    };
    let last_used: Option<i64> = r.try_get(5)?;
    if last_used.is_none_or(|l| now - l >= TOUCH_EVERY_MS) {
        let mut w = store.begin_write().await?;
        sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE tenant_id = $2 AND id = $3")
            .bind(now)
            .bind(tenant.to_string())
            .bind(token_id.to_string())
            .execute(&mut *w.tx)
            .await?;
        store.commit(w).await?;
    }
    Ok(Some(ctx))
}

/// The tenant and id of the invitation a secret belongs to.
pub(crate) async fn invitation_by_secret(
    store: &Store,
    secret: &str,
) -> Result<(TenantId, InvitationId), StoreError> {
    let r = sqlx::query("SELECT tenant_id, id FROM invitations WHERE token_hash = $1")
        .bind(token::hash(secret))
        .fetch_optional(&store.pool)
        .await?
        .ok_or(StoreError::NotFound)?;
    Ok((
        parse_id("invitations.tenant_id", &r.try_get::<String, _>(0)?)?,
        parse_id("invitations.id", &r.try_get::<String, _>(1)?)?,
    ))
}

/// The tenant and id of a live enrolment token (expiry, revocation and use count are checked by
/// the enrolment itself, so it can answer each with its own code).
pub(crate) async fn enrolment_token(
    store: &Store,
    secret: &str,
) -> Result<Option<(TenantId, printfleet_domain::EnrolmentTokenId)>, StoreError> {
    let r = sqlx::query("SELECT tenant_id, id FROM enrolment_tokens WHERE token_hash = $1")
        .bind(token::hash(secret))
        .fetch_optional(&store.pool)
        .await?;
    let Some(r) = r else { return Ok(None) };
    Ok(Some((
        parse_id("enrolment_tokens.tenant_id", &r.try_get::<String, _>(0)?)?,
        parse_id("enrolment_tokens.id", &r.try_get::<String, _>(1)?)?,
    )))
}

/// A live printer found by the key id of its heartbeat datagrams, with its secrets (device
/// identity resolution for the doorbell). Removed printers and revoked keys are not found.
pub async fn device_by_heartbeat_key(
    store: &Store,
    key_id: &[u8; 8],
) -> Result<
    Option<(
        TenantId,
        printfleet_domain::DeviceId,
        crate::enrolment::DeviceSecrets,
    )>,
    StoreError,
> {
    let r = sqlx::query(
        "SELECT tenant_id, id, secrets FROM devices WHERE hb_key_id = $1 AND removed_at IS NULL AND revoked_at IS NULL",
    )
    .bind(hex::encode(key_id))
    .fetch_optional(&store.pool)
    .await?;
    let Some(r) = r else { return Ok(None) };
    let tenant: TenantId = parse_id("devices.tenant_id", &r.try_get::<String, _>(0)?)?;
    let device: printfleet_domain::DeviceId = parse_id("devices.id", &r.try_get::<String, _>(1)?)?;
    let secrets = store
        .open_json(
            &crate::keyring::tenant_scope(tenant),
            &crate::enrolment::secrets_place(tenant, device),
            &r.try_get::<Vec<u8>, _>(2)?,
        )
        .await?;
    Ok(Some((tenant, device, secrets)))
}

/// The heartbeat replay window of a heartbeat key in `heartbeat_windows`, if any. The server's
/// doorbell reads through [`crate::window_log::WindowLog`], which also sees windows not yet
/// folded into this table.
pub async fn heartbeat_window_load(
    store: &Store,
    key_id: &[u8; 8],
) -> Result<Option<Vec<u8>>, StoreError> {
    let found = heartbeat_windows_load_many(store, &[*key_id]).await?;
    Ok(found.into_iter().next().map(|(_, window)| window))
}

/// Writes a heartbeat key's replay window into `heartbeat_windows` (one transaction). The
/// server's doorbell persists through [`crate::window_log::WindowLog`] instead.
pub async fn heartbeat_window_save(
    store: &Store,
    device: printfleet_domain::DeviceId,
    key_id: &[u8; 8],
    window: &[u8],
) -> Result<(), StoreError> {
    heartbeat_windows_save_many(store, &[(device, *key_id, window)]).await
}

/// A live printer found by the key id its sealed bodies name as sender (device identity
/// resolution for `/device/v1`). Removed printers are not found; a revoked key is found with
/// `revoked` set, so the answer can say so.
#[derive(Debug, Clone)]
pub struct DeviceKey {
    pub tenant: TenantId,
    pub device: printfleet_domain::DeviceId,
    pub public_key: Vec<u8>,
    pub key_version: i64,
    pub revoked: bool,
}

pub async fn device_by_kem_key(
    store: &Store,
    key_id: &[u8; 8],
) -> Result<Option<DeviceKey>, StoreError> {
    let r = sqlx::query(
        "SELECT tenant_id, id, kem_public, key_version, revoked_at FROM devices WHERE kem_key_id = $1 AND removed_at IS NULL",
    )
    .bind(hex::encode(key_id))
    .fetch_optional(&store.pool)
    .await?;
    let Some(r) = r else { return Ok(None) };
    Ok(Some(DeviceKey {
        tenant: parse_id("devices.tenant_id", &r.try_get::<String, _>(0)?)?,
        device: parse_id("devices.id", &r.try_get::<String, _>(1)?)?,
        public_key: r.try_get(2)?,
        key_version: r.try_get(3)?,
        revoked: r.try_get::<Option<i64>, _>(4)?.is_some(),
    }))
}

/// Whether work waits for a printer (asked by the doorbell for every accepted heartbeat; an
/// indexed look-up on the pending items).
pub async fn work_pending(
    store: &Store,
    device: printfleet_domain::DeviceId,
) -> Result<bool, StoreError> {
    Ok(
        sqlx::query("SELECT 1 FROM outbox WHERE device_id = $1 AND status = 'pending' LIMIT 1")
            .bind(device.to_string())
            .fetch_optional(&store.pool)
            .await?
            .is_some(),
    )
}

fn key_id_from_hex(what: &str, s: &str) -> Result<[u8; 8], StoreError> {
    hex::decode(s)
        .ok()
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .ok_or_else(|| StoreError::Corrupt(format!("{what}: not an 8-byte hex key id")))
}

/// [`device_by_heartbeat_key`] for many key ids at once (the doorbell's cache misses): one
/// query per 128 ids. Returns the live printers found, each with its key id, in no particular
/// order; ids not found are simply absent.
pub async fn devices_by_heartbeat_keys(
    store: &Store,
    key_ids: &[[u8; 8]],
) -> Result<
    Vec<(
        [u8; 8],
        TenantId,
        printfleet_domain::DeviceId,
        crate::enrolment::DeviceSecrets,
    )>,
    StoreError,
> {
    let mut out = Vec::with_capacity(key_ids.len());
    let ids: Vec<String> = key_ids.iter().map(hex::encode).collect();
    for chunk in crate::codec::padded_chunks(&ids) {
        let sql = format!(
            "SELECT hb_key_id, tenant_id, id, secrets FROM devices WHERE hb_key_id IN ({}) AND removed_at IS NULL AND revoked_at IS NULL",
            crate::codec::in_list(chunk.len())
        );
        let sql = crate::codec::positional(store.backend, sql);
        let mut q = sqlx::query(&sql);
        for id in chunk {
            q = q.bind(id);
        }
        for r in q.fetch_all(&store.pool).await? {
            let key_id = key_id_from_hex("devices.hb_key_id", &r.try_get::<String, _>(0)?)?;
            let tenant: TenantId = parse_id("devices.tenant_id", &r.try_get::<String, _>(1)?)?;
            let device: printfleet_domain::DeviceId =
                parse_id("devices.id", &r.try_get::<String, _>(2)?)?;
            let secrets = store
                .open_json(
                    &crate::keyring::tenant_scope(tenant),
                    &crate::enrolment::secrets_place(tenant, device),
                    &r.try_get::<Vec<u8>, _>(3)?,
                )
                .await?;
            out.push((key_id, tenant, device, secrets));
        }
    }
    Ok(out)
}

/// The persisted replay windows of many heartbeat keys (one query per 128 keys), in no
/// particular order; keys without a window are absent.
pub async fn heartbeat_windows_load_many(
    store: &Store,
    key_ids: &[[u8; 8]],
) -> Result<Vec<([u8; 8], Vec<u8>)>, StoreError> {
    let mut out = Vec::with_capacity(key_ids.len());
    let ids: Vec<String> = key_ids.iter().map(hex::encode).collect();
    for chunk in crate::codec::padded_chunks(&ids) {
        let sql = format!(
            "SELECT hb_key_id, replay_window FROM heartbeat_windows WHERE hb_key_id IN ({})",
            crate::codec::in_list(chunk.len())
        );
        let sql = crate::codec::positional(store.backend, sql);
        let mut q = sqlx::query(&sql);
        for id in chunk {
            q = q.bind(id);
        }
        for r in q.fetch_all(&store.pool).await? {
            out.push((
                key_id_from_hex("heartbeat_windows.hb_key_id", &r.try_get::<String, _>(0)?)?,
                r.try_get::<Vec<u8>, _>(1)?,
            ));
        }
    }
    Ok(out)
}

/// Persists many heartbeat keys' replay windows in **one** transaction (a window-log compaction
/// chunk): all of them durably, or none. The keys must be distinct (PostgreSQL refuses to
/// update one row twice in a statement).
///
/// The rows travel as **one** JSON array in one parameter, unpacked by the database
/// (`json_each` on SQLite, `jsonb_array_elements` on PostgreSQL): one statement and one round
/// trip per commit whatever its size. With multi-row `VALUES` (32 rows, then 256) a
/// 1 500-window commit took 7–41 round trips, each a hand-over to SQLite's connection thread
/// that waits for a core under load, and four bound values per row.
pub async fn heartbeat_windows_save_many(
    store: &Store,
    windows: &[(printfleet_domain::DeviceId, [u8; 8], &[u8])],
) -> Result<(), StoreError> {
    if windows.is_empty() {
        return Ok(());
    }
    let now = store.now_ms();
    let rows = windows_json(windows);
    let sql = match store.backend {
        crate::Backend::Sqlite => {
            // `WHERE true` tells SQLite's parser the ON CONFLICT belongs to the INSERT.
            "INSERT INTO heartbeat_windows (hb_key_id, device_id, replay_window, updated_at) \
             SELECT value->>0, value->>1, unhex(value->>2), ? FROM json_each(?) WHERE true \
             ON CONFLICT (hb_key_id) DO UPDATE SET replay_window = excluded.replay_window, updated_at = excluded.updated_at"
        }
        crate::Backend::Postgres => {
            "INSERT INTO heartbeat_windows (hb_key_id, device_id, replay_window, updated_at) \
             SELECT e->>0, e->>1, decode(e->>2, 'hex'), $1 FROM jsonb_array_elements($2::jsonb) e \
             ON CONFLICT (hb_key_id) DO UPDATE SET replay_window = excluded.replay_window, updated_at = excluded.updated_at"
        }
    };
    let mut w = store.begin_write().await?;
    sqlx::query(sql)
        .bind(now)
        .bind(rows)
        .execute(&mut *w.tx)
        .await?;
    store.commit(w).await
}

/// `[["<key id hex>","<printer id>","<window hex>"], …]`. Every value is hex or a printer id
/// (hex digits and hyphens), so nothing needs escaping.
fn windows_json(windows: &[(printfleet_domain::DeviceId, [u8; 8], &[u8])]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(windows.len() * 96 + 2);
    out.push('[');
    for (i, (device, key_id, window)) in windows.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        // Writing to a String cannot fail.
        let _ = write!(
            out,
            "[\"{}\",\"{}\",\"{}\"]",
            hex::encode(key_id),
            device,
            hex::encode(window)
        );
    }
    out.push(']');
    out
}

/// Which of `devices` have pending work: one indexed query per 128 printers (the doorbell asks
/// once per batch of answers instead of once per heartbeat).
pub async fn work_pending_among(
    store: &Store,
    devices: &[printfleet_domain::DeviceId],
) -> Result<std::collections::HashSet<printfleet_domain::DeviceId>, StoreError> {
    let mut out = std::collections::HashSet::new();
    let ids: Vec<String> = devices.iter().map(|d| d.to_string()).collect();
    for chunk in crate::codec::padded_chunks(&ids) {
        let sql = format!(
            "SELECT DISTINCT device_id FROM outbox WHERE status = 'pending' AND device_id IN ({})",
            crate::codec::in_list(chunk.len())
        );
        let sql = crate::codec::positional(store.backend, sql);
        let mut q = sqlx::query(&sql);
        for id in chunk {
            q = q.bind(id);
        }
        for r in q.fetch_all(&store.pool).await? {
            out.insert(parse_id("outbox.device_id", &r.try_get::<String, _>(0)?)?);
        }
    }
    Ok(out)
}
