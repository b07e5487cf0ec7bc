//! What printers reported: the merged latest state and the history (read-only for admins).

use crate::auth::TenantCaller;
use crate::error::{ApiError, ApiResult};
use crate::routes::devices::id;
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::Json;
use printfleet_domain::telemetry::DataClass;
use printfleet_domain::DeviceId;
use printfleet_wire as wire;
use serde::Deserialize;

fn value<T: serde::Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

/// The printer's latest reported state: information, meters, supplies, settings by catalogue
/// id (secrets only as "set" or not), recent events. 404 until its first check-in.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/devices/{device}/state", tag = "devices",
    params(("tenant" = String, Path), ("device" = String, Path)),
    responses((status = 200, body = wire::DeviceStateView), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    TenantCaller(ctx): TenantCaller,
    Path((_, d)): Path<(String, String)>,
) -> ApiResult<Json<wire::DeviceStateView>> {
    let s = state
        .store
        .device_state(&ctx, id::<DeviceId>(&d)?)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(wire::DeviceStateView {
        seq: s.seq,
        reported_at_ms: s.reported_at_ms,
        received_at_ms: s.received_at_ms,
        catalogue_version: s.catalogue_version.clone(),
        info: value(&s.info),
        meters: value(&s.meters),
        supplies: value(&s.supplies),
        settings: value(&s.settings),
        recent_events: value(&s.recent_events),
        provenance: value(&s.provenance),
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct HistoryQuery {
    /// Only this data class: `device_info`, `meters`, `supplies`, `events` or `settings`.
    pub class: Option<String>,
    /// At most this many rows (1–1000, default 100), newest first.
    pub limit: Option<i64>,
}

/// The printer's report history, newest first.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/devices/{device}/history", tag = "devices",
    params(("tenant" = String, Path), ("device" = String, Path), HistoryQuery),
    responses((status = 200, body = Vec<wire::HistoryEntryView>), (status = 400, body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)))]
pub async fn history(
    State(state): State<AppState>,
    TenantCaller(ctx): TenantCaller,
    Path((_, d)): Path<(String, String)>,
    Query(q): Query<HistoryQuery>,
) -> ApiResult<Json<Vec<wire::HistoryEntryView>>> {
    let class = match q.class.as_deref() {
        None | Some("") => None,
        Some(c) => Some(DataClass::parse(c).ok_or_else(|| {
            ApiError::field(
                "class",
                "must be device_info, meters, supplies, events or settings",
            )
        })?),
    };
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::field("limit", "must be from 1 to 1000"));
    }
    let rows = state
        .store
        .device_history(&ctx, id::<DeviceId>(&d)?, class, limit)
        .await?;
    Ok(Json(
        rows.into_iter()
            .map(|r| wire::HistoryEntryView {
                seq: r.seq,
                key_version: r.key_version,
                data_class: r.data_class.as_str().into(),
                reported_at_ms: r.reported_at_ms,
                received_at_ms: r.received_at_ms,
                body: r.body,
            })
            .collect(),
    ))
}
