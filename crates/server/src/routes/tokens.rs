//! API tokens for automation.

use crate::auth::TenantCaller;
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::state::AppState;
use crate::views;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use printfleet_domain::TokenId;
use printfleet_wire as wire;

/// Your tokens in this tenant (an IT Admin sees all of them). Secrets are never shown again.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/api-tokens", tag = "tokens", params(("tenant" = String, Path)),
    responses((status = 200, body = Vec<wire::TokenView>), (status = 401, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    TenantCaller(ctx): TenantCaller,
) -> ApiResult<Json<Vec<wire::TokenView>>> {
    Ok(Json(
        state
            .store
            .tokens_list(&ctx)
            .await?
            .into_iter()
            .map(views::token)
            .collect(),
    ))
}

/// Creates a token acting with your membership's role and scope. Needs a signed-in session.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/api-tokens", tag = "tokens", params(("tenant" = String, Path)), request_body = wire::TokenRequest,
    responses((status = 201, body = wire::TokenCreated), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    TenantCaller(ctx): TenantCaller,
    ApiJson(req): ApiJson<wire::TokenRequest>,
) -> ApiResult<(StatusCode, Json<wire::TokenCreated>)> {
    let (t, secret) = state
        .store
        .token_create(&ctx, &req.name, req.expires_at_ms)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(wire::TokenCreated {
            token: views::token(t),
            secret: secret.into_inner(),
        }),
    ))
}

#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/api-tokens/{token}", tag = "tokens", params(("tenant" = String, Path), ("token" = String, Path)),
    responses((status = 204), (status = 401, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn revoke(
    State(state): State<AppState>,
    TenantCaller(ctx): TenantCaller,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let id: TokenId = id.parse().map_err(|_| ApiError::NotFound)?;
    state.store.token_revoke(&ctx, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
