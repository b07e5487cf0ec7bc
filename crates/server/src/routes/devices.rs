//! Printers: enrolment tokens, the device list, removal, group membership.

use crate::auth::TenantCaller;
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use printfleet_domain::{DeviceId, EnrolmentTokenId, GroupId};
use printfleet_storage::devices::Device;
use printfleet_storage::enrolment::EnrolmentToken;
use printfleet_wire as wire;

pub(crate) fn id<T: std::str::FromStr>(s: &str) -> Result<T, ApiError> {
    s.parse().map_err(|_| ApiError::NotFound)
}

fn token_view(t: EnrolmentToken) -> wire::EnrolmentTokenView {
    wire::EnrolmentTokenView {
        id: t.id,
        name: t.name,
        created_at_ms: t.created_at_ms,
        expires_at_ms: t.expires_at_ms,
        max_uses: t.max_uses,
        uses: t.uses,
        revoked_at_ms: t.revoked_at_ms,
    }
}

fn device_view(state: &AppState, d: Device) -> wire::DeviceView {
    let status = state.doorbell.get().map(|b| b.status(d.id));
    let udp = match status {
        Some(printfleet_doorbell::PrinterStatus::Online { last_seen_ms, .. }) => Some(last_seen_ms),
        _ => None,
    };
    // Online by its heartbeats, or by its HTTPS requests where UDP is blocked (long-polls).
    let https = state.channel.last_seen(d.id, state.clock.now_ms());
    let last_seen_ms = udp.max(https);
    let online = last_seen_ms.is_some();
    wire::DeviceView {
        online,
        last_seen_ms,
        id: d.id,
        serial: d.serial,
        model: d.model,
        firmware: d.firmware,
        connection: d.connection,
        key_version: d.key_version,
        enrolled_at_ms: d.enrolled_at_ms,
        groups: d.groups.into_iter().collect(),
        revoked_at_ms: d.revoked_at_ms,
        reenrol_approved_until_ms: d.reenrol_approved_until_ms,
    }
}

#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/enrolment-tokens", tag = "devices", params(("tenant" = String, Path)),
    responses((status = 200, body = Vec<wire::EnrolmentTokenView>), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn list_tokens(
    State(state): State<AppState>,
    TenantCaller(ctx): TenantCaller,
) -> ApiResult<Json<Vec<wire::EnrolmentTokenView>>> {
    Ok(Json(
        state
            .store
            .enrolment_tokens_list(&ctx)
            .await?
            .into_iter()
            .map(token_view)
            .collect(),
    ))
}

/// Creates an enrolment token; its secret is shown only in this answer.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/enrolment-tokens", tag = "devices", params(("tenant" = String, Path)),
    request_body = wire::EnrolmentTokenRequest,
    responses((status = 201, body = wire::EnrolmentTokenCreated), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn create_token(
    State(state): State<AppState>,
    TenantCaller(ctx): TenantCaller,
    ApiJson(req): ApiJson<wire::EnrolmentTokenRequest>,
) -> ApiResult<(StatusCode, Json<wire::EnrolmentTokenCreated>)> {
    let hours = req.valid_for_hours.unwrap_or(72);
    if !(1..=366 * 24).contains(&hours) {
        return Err(ApiError::field(
            "valid_for_hours",
            "must be between 1 and 8784",
        ));
    }
    let (t, secret) = state
        .store
        .enrolment_token_create(&ctx, &req.name, hours * 3_600_000, req.max_uses)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(wire::EnrolmentTokenCreated {
            token: token_view(t),
            secret: secret.into_inner(),
        }),
    ))
}

#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/enrolment-tokens/{token}", tag = "devices",
    params(("tenant" = String, Path), ("token" = String, Path)),
    responses((status = 204), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn revoke_token(
    State(state): State<AppState>,
    TenantCaller(ctx): TenantCaller,
    Path((_, t)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    state
        .store
        .enrolment_token_revoke(&ctx, id::<EnrolmentTokenId>(&t)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The printers you can see (all, or those in your scope's groups).
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/devices", tag = "devices", params(("tenant" = String, Path)),
    responses((status = 200, body = Vec<wire::DeviceView>), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    TenantCaller(ctx): TenantCaller,
) -> ApiResult<Json<Vec<wire::DeviceView>>> {
    Ok(Json(
        state
            .store
            .devices_list(&ctx)
            .await?
            .into_iter()
            .map(|d| device_view(&state, d))
            .collect(),
    ))
}

#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/devices/{device}", tag = "devices", params(("tenant" = String, Path), ("device" = String, Path)),
    responses((status = 200, body = wire::DeviceView), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    TenantCaller(ctx): TenantCaller,
    Path((_, d)): Path<(String, String)>,
) -> ApiResult<Json<wire::DeviceView>> {
    let device = state.store.device_get(&ctx, id::<DeviceId>(&d)?).await?;
    Ok(Json(device_view(&state, device)))
}

/// Removes a printer; its keys stop working at once.
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/devices/{device}", tag = "devices", params(("tenant" = String, Path), ("device" = String, Path)),
    responses((status = 204), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn remove(
    State(state): State<AppState>,
    TenantCaller(ctx): TenantCaller,
    Path((_, d)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let device = id::<DeviceId>(&d)?;
    state.store.device_remove(&ctx, device).await?;
    // Its heartbeats are refused from now on (the doorbell caches keys).
    if let Some(d) = state.doorbell.get() {
        d.forget_printer(device);
    }
    // Its session bodies are refused from now on (it must open a new session, which fails).
    state.channel.sessions.forget(device);
    // A long-poll in progress ends now and is refused.
    state.channel.wake(device);
    Ok(StatusCode::NO_CONTENT)
}

/// Puts a printer into a group.
#[utoipa::path(put, path = "/api/v1/tenants/{tenant}/groups/{group}/devices/{device}", tag = "devices",
    params(("tenant" = String, Path), ("group" = String, Path), ("device" = String, Path)),
    responses((status = 204), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn add_to_group(
    State(state): State<AppState>,
    TenantCaller(ctx): TenantCaller,
    Path((_, g, d)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    state
        .store
        .group_add_device(&ctx, id::<GroupId>(&g)?, id::<DeviceId>(&d)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
