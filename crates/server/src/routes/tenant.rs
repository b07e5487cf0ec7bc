//! The tenant itself.

use crate::auth::TenantCaller;
use crate::error::ApiResult;
use crate::json::ApiJson;
use crate::state::AppState;
use crate::views;
use axum::extract::State;
use axum::Json;
use printfleet_domain::tenant::Contact;
use printfleet_domain::Permission;
use printfleet_storage::tenants::TenantUpdate;
use printfleet_wire as wire;

/// The tenant; contact data only with `tenant.settings`.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}", tag = "tenant", params(("tenant" = String, Path)),
    responses((status = 200, body = wire::TenantView), (status = 401, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn get_tenant(
    State(state): State<AppState>,
    TenantCaller(ctx): TenantCaller,
) -> ApiResult<Json<wire::TenantView>> {
    let t = state.store.tenant_get(&ctx).await?;
    Ok(Json(views::tenant(t, ctx.can(Permission::TenantSettings))))
}

/// Changes the tenant's name, region or contact data.
#[utoipa::path(patch, path = "/api/v1/tenants/{tenant}", tag = "tenant", params(("tenant" = String, Path)), request_body = wire::TenantPatch,
    responses((status = 200, body = wire::TenantView), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn patch_tenant(
    State(state): State<AppState>,
    TenantCaller(ctx): TenantCaller,
    ApiJson(req): ApiJson<wire::TenantPatch>,
) -> ApiResult<Json<wire::TenantView>> {
    let contact = match &req.contact {
        Some(c) => Some(Contact::parse(
            c.name.as_deref(),
            c.email.as_deref(),
            c.phone.as_deref(),
            c.postal_address.as_deref(),
        )?),
        None => None,
    };
    let t = state
        .store
        .tenant_update(
            &ctx,
            TenantUpdate {
                name: req.name,
                region: req.region,
                contact,
            },
        )
        .await?;
    Ok(Json(views::tenant(t, true)))
}
