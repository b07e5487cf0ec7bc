//! Break-glass: an IT Admin reveals one printer's generated secret in an emergency —
//! re-authenticated with their own password, with a stated reason, audited, listed in the
//! break-glass feed (the dashboard's), and followed by rotation of that printer's value.

use crate::auth::TenantCaller;
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use printfleet_crypto::password::Verified;
use printfleet_domain::DeviceId;
use printfleet_storage::StoreError;
use printfleet_wire as wire;
use rand::rngs::OsRng;

fn device_id(s: &str) -> Result<DeviceId, ApiError> {
    s.parse().map_err(|_| ApiError::NotFound)
}

/// Reveal one printer's current generated value of `setting` (break-glass).
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/devices/{device}/secrets/{setting}/reveal", tag = "break-glass",
    params(("tenant" = String, Path), ("device" = String, Path), ("setting" = String, Path)),
    request_body = wire::RevealRequest,
    responses((status = 200, body = wire::RevealedSecret), (status = 400, body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 429, body = crate::error::ErrorBody)))]
pub async fn reveal(
    State(state): State<AppState>,
    TenantCaller(ctx): TenantCaller,
    Path((_, device, setting)): Path<(String, String, String)>,
    ApiJson(req): ApiJson<wire::RevealRequest>,
) -> ApiResult<Response> {
    let d = device_id(&device)?;
    // Permission and "a signed-in person, not an API token" before anything else.
    let hash = state.store.reveal_reauth_hash(&ctx).await?;
    printfleet_storage::device_secrets::checked_reason(&req.reason).map_err(StoreError::from)?;
    if req.password.is_empty() || req.password.len() > 1024 {
        return Err(ApiError::field("password", "must be 1 to 1024 bytes"));
    }
    let key = format!("reveal:{}", ctx.actor.audit_id());
    let wait = state.throttle.wait_ms(&key);
    if wait > 0 {
        return Err(ApiError::TooManyAttempts {
            retry_after_s: (wait + 999) / 1000,
        });
    }
    let verdict = state
        .hasher
        .verify(&req.password, Some(hash.expose().as_str()), &mut OsRng);
    if verdict == Verified::No {
        state.throttle.fail(&key, state.settings.throttle_account);
        state.store.secret_reveal_refused(&ctx, d, &setting).await?;
        return Err(ApiError::Refused {
            code: "reauthentication_failed",
            message: "re-authentication failed: give your own password".into(),
        });
    }
    state.throttle.succeed(&key);
    let revealed = state
        .store
        .secret_reveal(&ctx, d, &setting, &req.reason)
        .await?;
    // The rotation is due now: let the assessor replace the value at once.
    state.assessor.poke();
    let mut res = Json(wire::RevealedSecret {
        device: d,
        setting_id: setting,
        value: revealed.value.into_inner(),
        generation: revealed.generation,
        confirmed: revealed.confirmed,
        last_confirmed_generation: revealed.last_confirmed.as_ref().map(|(_, g)| *g),
        last_confirmed_value: revealed.last_confirmed.map(|(v, _)| v.into_inner()),
        rotation_scheduled: true,
    })
    .into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
pub struct FeedQuery {
    /// At most this many reveals, newest first (1–500, default 100).
    pub limit: Option<i64>,
}

/// The break-glass feed: recent reveals (who, when, printer, setting, reason, rotated since).
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/break-glass", tag = "break-glass",
    params(("tenant" = String, Path), FeedQuery),
    responses((status = 200, body = wire::BreakGlassFeed), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody)))]
pub async fn feed(
    State(state): State<AppState>,
    TenantCaller(ctx): TenantCaller,
    Query(q): Query<FeedQuery>,
) -> ApiResult<Json<wire::BreakGlassFeed>> {
    let reveals = state
        .store
        .break_glass_list(&ctx, q.limit.unwrap_or(100))
        .await?
        .into_iter()
        .map(|r| wire::RevealView {
            id: r.id,
            device: r.device,
            setting_id: r.setting_id,
            actor: r.actor,
            reason: r.reason,
            at_ms: r.at_ms,
            generation: r.generation,
            rotated_since: r.rotated_since,
        })
        .collect();
    Ok(Json(wire::BreakGlassFeed { reveals }))
}
