//! The tenant's audit log.

use crate::auth::TenantCaller;
use crate::error::ApiResult;
use crate::state::AppState;
use axum::extract::{Query, State};
use axum::Json;
use printfleet_wire as wire;
use serde::Deserialize;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct Page {
    /// Entries after this sequence number.
    #[serde(default)]
    pub after: i64,
    /// At most this many (1–1000, default 100).
    #[serde(default = "default_limit")]
    pub limit: i64,
}

fn default_limit() -> i64 {
    100
}

#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/audit", tag = "audit", params(("tenant" = String, Path), Page),
    responses((status = 200, body = Vec<wire::AuditEntryView>), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    TenantCaller(ctx): TenantCaller,
    Query(p): Query<Page>,
) -> ApiResult<Json<Vec<wire::AuditEntryView>>> {
    let list = state.store.audit_list(&ctx, p.after, p.limit).await?;
    Ok(Json(
        list.into_iter()
            .map(|e| wire::AuditEntryView {
                seq: e.seq,
                at_ms: e.at_ms,
                actor: e.actor,
                action: e.action,
                target: e.target,
                source: e.source,
                detail: e.detail,
            })
            .collect(),
    ))
}

/// Verifies the tenant's audit chain and its checkpoint.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/audit/verify", tag = "audit", params(("tenant" = String, Path)),
    responses((status = 200, body = wire::AuditVerifyView), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn verify(
    State(state): State<AppState>,
    TenantCaller(ctx): TenantCaller,
) -> ApiResult<Json<wire::AuditVerifyView>> {
    let r = state.store.audit_verify(&ctx).await?;
    Ok(Json(wire::AuditVerifyView {
        entries: r.entries,
        ok: r.first_bad.is_none(),
        first_bad_seq: r.first_bad.as_ref().map(|b| b.0),
        problem: r.first_bad.map(|b| b.1),
    }))
}
