//! Device groups (printers arrive with the device work; scopes already apply).

use crate::auth::TenantCaller;
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::state::AppState;
use crate::views;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use printfleet_domain::GroupId;
use printfleet_wire as wire;

fn group_id(s: &str) -> Result<GroupId, ApiError> {
    s.parse().map_err(|_| ApiError::NotFound)
}

/// The groups you can see (all, or those in your scope).
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/groups", tag = "devices", params(("tenant" = String, Path)),
    responses((status = 200, body = Vec<wire::GroupView>), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    TenantCaller(ctx): TenantCaller,
) -> ApiResult<Json<Vec<wire::GroupView>>> {
    Ok(Json(
        state
            .store
            .groups_list(&ctx)
            .await?
            .into_iter()
            .map(views::group)
            .collect(),
    ))
}

#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/groups", tag = "devices", params(("tenant" = String, Path)), request_body = wire::GroupRequest,
    responses((status = 201, body = wire::GroupView), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    TenantCaller(ctx): TenantCaller,
    ApiJson(req): ApiJson<wire::GroupRequest>,
) -> ApiResult<(StatusCode, Json<wire::GroupView>)> {
    Ok((
        StatusCode::CREATED,
        Json(views::group(
            state.store.group_create(&ctx, &req.name).await?,
        )),
    ))
}

#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/groups/{group}", tag = "devices", params(("tenant" = String, Path), ("group" = String, Path)),
    responses((status = 200, body = wire::GroupView), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    TenantCaller(ctx): TenantCaller,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<Json<wire::GroupView>> {
    Ok(Json(views::group(
        state.store.group_get(&ctx, group_id(&id)?).await?,
    )))
}

#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/groups/{group}", tag = "devices", params(("tenant" = String, Path), ("group" = String, Path)),
    responses((status = 204), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    TenantCaller(ctx): TenantCaller,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    state.store.group_delete(&ctx, group_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
