//! Members of the tenant: list, inspect, change role and scope, remove.

use crate::auth::TenantCaller;
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::state::AppState;
use crate::views;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use printfleet_domain::MembershipId;
use printfleet_wire as wire;

fn member_id(s: &str) -> Result<MembershipId, ApiError> {
    s.parse().map_err(|_| ApiError::NotFound)
}

/// Everyone in the tenant, with role and scope.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/members", tag = "people", params(("tenant" = String, Path)),
    responses((status = 200, body = Vec<wire::MemberView>), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn list_members(
    State(state): State<AppState>,
    TenantCaller(ctx): TenantCaller,
) -> ApiResult<Json<Vec<wire::MemberView>>> {
    Ok(Json(
        state
            .store
            .members_list(&ctx)
            .await?
            .into_iter()
            .map(views::member)
            .collect(),
    ))
}

#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/members/{member}", tag = "people",
    params(("tenant" = String, Path), ("member" = String, Path)),
    responses((status = 200, body = wire::MemberView), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn get_member(
    State(state): State<AppState>,
    TenantCaller(ctx): TenantCaller,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<Json<wire::MemberView>> {
    Ok(Json(views::member(
        state.store.member_get(&ctx, member_id(&id)?).await?,
    )))
}

/// Changes a member's role or scope.
#[utoipa::path(patch, path = "/api/v1/tenants/{tenant}/members/{member}", tag = "people",
    params(("tenant" = String, Path), ("member" = String, Path)), request_body = wire::MemberPatch,
    responses((status = 200, body = wire::MemberView), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub async fn patch_member(
    State(state): State<AppState>,
    TenantCaller(ctx): TenantCaller,
    Path((_, id)): Path<(String, String)>,
    ApiJson(req): ApiJson<wire::MemberPatch>,
) -> ApiResult<Json<wire::MemberView>> {
    let m = state
        .store
        .member_update(&ctx, member_id(&id)?, req.role, req.scope)
        .await?;
    Ok(Json(views::member(m)))
}

/// Removes a member (and revokes their API tokens in this tenant).
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/members/{member}", tag = "people",
    params(("tenant" = String, Path), ("member" = String, Path)),
    responses((status = 204), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub async fn delete_member(
    State(state): State<AppState>,
    TenantCaller(ctx): TenantCaller,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    state.store.member_remove(&ctx, member_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
