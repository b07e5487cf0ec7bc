//! Admin actions on one printer: queue work (the outbox) and ring it, revoke its key, approve
//! its re-enrolment.

use crate::auth::TenantCaller;
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::routes::devices::id;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use printfleet_domain::{DeviceId, GroupId};
use printfleet_storage::outbox::{WorkKind, WorkRecord};
use printfleet_wire as wire;

pub(crate) fn work_view(w: WorkRecord) -> wire::WorkView {
    wire::WorkView {
        id: w.id,
        kind: w.kind,
        created_at_ms: w.created_at_ms,
        status: w.status,
        attempts: w.attempts,
        sent_at_ms: w.sent_at_ms,
        finished_at_ms: w.finished_at_ms,
        reason: w.reason,
    }
}

/// Tells a printer that work waits: rings its doorbell (UDP, while its address is fresh) and
/// wakes its HTTPS long-poll. Either way it also learns at its next heartbeat.
pub(crate) async fn notify_work(state: &AppState, device: DeviceId) -> bool {
    let woke = state.channel.wake(device);
    let rung = match state.doorbell.get() {
        Some(d) => d.ring(device).await,
        None => false,
    };
    rung || woke
}

/// [`notify_work`] for many printers: long-polls woken, doorbells rung with batched key
/// look-ups (`Doorbell::ring_many`); returns how many were reached.
pub(crate) async fn notify_work_many(state: &AppState, devices: &[DeviceId]) -> usize {
    let woke: Vec<bool> = devices.iter().map(|d| state.channel.wake(*d)).collect();
    let rung = match state.doorbell.get() {
        Some(d) => d.ring_many(devices).await,
        None => Vec::new(),
    };
    woke.iter()
        .enumerate()
        .filter(|(i, w)| **w || rung.get(*i) == Some(&printfleet_doorbell::RingOutcome::Sent))
        .count()
}

/// The printer's work items, newest first.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/devices/{device}/work", tag = "devices",
    params(("tenant" = String, Path), ("device" = String, Path)),
    responses((status = 200, body = Vec<wire::WorkView>), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    TenantCaller(ctx): TenantCaller,
    Path((_, d)): Path<(String, String)>,
) -> ApiResult<Json<Vec<wire::WorkView>>> {
    let items = state.store.work_list(&ctx, id::<DeviceId>(&d)?).await?;
    Ok(Json(items.into_iter().map(work_view).collect()))
}

/// Queues work for the printer (today: `report_now`) and rings its doorbell.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/devices/{device}/work", tag = "devices",
    params(("tenant" = String, Path), ("device" = String, Path)), request_body = wire::WorkRequest,
    responses((status = 201, body = wire::WorkQueued), (status = 400, body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    TenantCaller(ctx): TenantCaller,
    Path((_, d)): Path<(String, String)>,
    ApiJson(req): ApiJson<wire::WorkRequest>,
) -> ApiResult<(StatusCode, Json<wire::WorkQueued>)> {
    let device = id::<DeviceId>(&d)?;
    let kind = match req.kind.as_str() {
        "report_now" => WorkKind::ReportNow,
        _ => return Err(ApiError::field("kind", "must be report_now")),
    };
    let work = state
        .store
        .work_enqueue(&ctx, device, kind, serde_json::Value::Null)
        .await?;
    let rung = notify_work(&state, device).await;
    Ok((
        StatusCode::CREATED,
        Json(wire::WorkQueued {
            work: work_view(work),
            rung,
        }),
    ))
}

/// Queues work for every printer of the group (today: `report_now`) in one transaction, then
/// rings them all.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/groups/{group}/work", tag = "devices",
    params(("tenant" = String, Path), ("group" = String, Path)), request_body = wire::WorkRequest,
    responses((status = 200, body = wire::GroupWorkQueued), (status = 400, body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)))]
pub async fn create_for_group(
    State(state): State<AppState>,
    TenantCaller(ctx): TenantCaller,
    Path((_, g)): Path<(String, String)>,
    ApiJson(req): ApiJson<wire::WorkRequest>,
) -> ApiResult<Json<wire::GroupWorkQueued>> {
    let group = id::<GroupId>(&g)?;
    let kind = match req.kind.as_str() {
        "report_now" => WorkKind::ReportNow,
        _ => return Err(ApiError::field("kind", "must be report_now")),
    };
    let devices = state
        .store
        .work_enqueue_group(&ctx, group, kind, serde_json::Value::Null)
        .await?;
    // Committed: ring now. A printer not reached learns at its next heartbeat.
    let reached = notify_work_many(&state, &devices).await;
    tracing::debug!(queued = devices.len(), reached, "work queued for a group");
    Ok(Json(wire::GroupWorkQueued {
        queued: u64::try_from(devices.len()).unwrap_or(u64::MAX),
    }))
}

/// Revokes the printer's key at once, on every channel; it must re-enrol with an admin's
/// approval.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/devices/{device}/revoke-key", tag = "devices",
    params(("tenant" = String, Path), ("device" = String, Path)),
    responses((status = 204), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)))]
pub async fn revoke_key(
    State(state): State<AppState>,
    TenantCaller(ctx): TenantCaller,
    Path((_, d)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let device = id::<DeviceId>(&d)?;
    state.store.device_revoke_key(&ctx, device).await?;
    // Its heartbeats are refused from now on (the doorbell caches keys).
    if let Some(d) = state.doorbell.get() {
        d.forget_printer(device);
    }
    // Its session bodies are refused from now on (it must open a new session, which fails).
    state.channel.sessions.forget(device);
    // A long-poll in progress ends now, and finds the key revoked on its next request.
    state.channel.wake(device);
    Ok(StatusCode::NO_CONTENT)
}

/// Allows the printer's serial to re-enrol within 24 hours without proof of its current key.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/devices/{device}/approve-re-enrolment", tag = "devices",
    params(("tenant" = String, Path), ("device" = String, Path)),
    responses((status = 200, body = wire::ReenrolmentApproved), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn approve_reenrolment(
    State(state): State<AppState>,
    TenantCaller(ctx): TenantCaller,
    Path((_, d)): Path<(String, String)>,
) -> ApiResult<Json<wire::ReenrolmentApproved>> {
    let until_ms = state
        .store
        .device_approve_reenrolment(&ctx, id::<DeviceId>(&d)?)
        .await?;
    Ok(Json(wire::ReenrolmentApproved { until_ms }))
}
