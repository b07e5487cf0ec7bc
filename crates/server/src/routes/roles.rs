//! Roles: the built-in ones and the tenant's custom roles.

use crate::auth::TenantCaller;
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::state::AppState;
use crate::views;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use printfleet_domain::RoleId;
use printfleet_wire as wire;

fn role_id(s: &str) -> Result<RoleId, ApiError> {
    s.parse().map_err(|_| ApiError::NotFound)
}

#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/roles", tag = "roles", params(("tenant" = String, Path)),
    responses((status = 200, body = Vec<wire::RoleView>), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    TenantCaller(ctx): TenantCaller,
) -> ApiResult<Json<Vec<wire::RoleView>>> {
    Ok(Json(
        state
            .store
            .roles_list(&ctx)
            .await?
            .into_iter()
            .map(views::role)
            .collect(),
    ))
}

/// Defines a custom role. It cannot grant permissions the caller lacks.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/roles", tag = "roles", params(("tenant" = String, Path)), request_body = wire::RoleRequest,
    responses((status = 201, body = wire::RoleView), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    TenantCaller(ctx): TenantCaller,
    ApiJson(req): ApiJson<wire::RoleRequest>,
) -> ApiResult<(StatusCode, Json<wire::RoleView>)> {
    let r = state
        .store
        .role_create(&ctx, &req.name, req.permissions)
        .await?;
    Ok((StatusCode::CREATED, Json(views::role(r))))
}

#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/roles/{role}", tag = "roles", params(("tenant" = String, Path), ("role" = String, Path)),
    responses((status = 200, body = wire::RoleView), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    TenantCaller(ctx): TenantCaller,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<Json<wire::RoleView>> {
    Ok(Json(views::role(
        state.store.role_get(&ctx, role_id(&id)?).await?,
    )))
}

#[utoipa::path(patch, path = "/api/v1/tenants/{tenant}/roles/{role}", tag = "roles", params(("tenant" = String, Path), ("role" = String, Path)),
    request_body = wire::RolePatch,
    responses((status = 200, body = wire::RoleView), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub async fn patch(
    State(state): State<AppState>,
    TenantCaller(ctx): TenantCaller,
    Path((_, id)): Path<(String, String)>,
    ApiJson(req): ApiJson<wire::RolePatch>,
) -> ApiResult<Json<wire::RoleView>> {
    let r = state
        .store
        .role_update(&ctx, role_id(&id)?, req.name.as_deref(), req.permissions)
        .await?;
    Ok(Json(views::role(r)))
}

/// Deletes a custom role nobody holds.
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/roles/{role}", tag = "roles", params(("tenant" = String, Path), ("role" = String, Path)),
    responses((status = 204), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    TenantCaller(ctx): TenantCaller,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    state.store.role_delete(&ctx, role_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
