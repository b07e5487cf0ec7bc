//! Compliance: a printer's assessment, its history and effective policy; fleet figures; dynamic
//! group rules and printer attributes; "remediate now".

use crate::auth::TenantCaller;
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::Json;
use printfleet_domain::catalogue::Catalogue;
use printfleet_domain::policy::{diff::display, Origin, StatusTally};
use printfleet_domain::{DeviceId, GroupId};
use printfleet_storage::compliance::Figures;
use printfleet_storage::dynamic_groups::DeviceAttrs;
use printfleet_wire as wire;
use std::collections::BTreeMap;

fn device_id(s: &str) -> Result<DeviceId, ApiError> {
    s.parse().map_err(|_| ApiError::NotFound)
}

fn group_id(s: &str) -> Result<GroupId, ApiError> {
    s.parse().map_err(|_| ApiError::NotFound)
}

fn category(c: &Catalogue, id: &str) -> String {
    c.get(id)
        .map(|s| s.category.as_str().to_string())
        .unwrap_or_default()
}

fn origin(o: &Origin) -> wire::OriginView {
    wire::OriginView {
        policy: o.policy,
        version: o.version,
        mode: o.mode,
        group: o.group,
        priority: o.priority,
    }
}

#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/devices/{device}/compliance", tag = "compliance", params(("tenant" = String, Path), ("device" = String, Path)),
    responses((status = 200, body = wire::DeviceComplianceView), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn device(
    State(state): State<AppState>,
    TenantCaller(ctx): TenantCaller,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<Json<wire::DeviceComplianceView>> {
    let c = state.store.device_compliance(&ctx, device_id(&id)?).await?;
    let cat = &state.channel.catalogue;
    Ok(Json(wire::DeviceComplianceView {
        status: c.status,
        assessed_at_ms: c.assessed_at_ms,
        catalogue_version: c.catalogue_version,
        tally: StatusTally::of(c.items.iter().map(|i| &i.item)),
        items: c
            .items
            .into_iter()
            .map(|i| wire::ComplianceItemView {
                category: category(cat, &i.item.setting_id),
                setting_id: i.item.setting_id,
                status: i.item.status,
                reported: i.item.reported,
                wanted: i.item.wanted,
                detail: i.item.detail,
                policy: i.policy,
                version: i.version,
                since_ms: i.since_ms,
            })
            .collect(),
        remediation: c.remediation.map(|r| wire::RemediationView {
            attempts: r.attempts,
            next_attempt_at_ms: (r.next_at_ms > 0).then_some(r.next_at_ms),
            last_reason: r.last_reason,
            unsupported: r.unsupported.into_iter().collect(),
        }),
    }))
}

/// When each item changed status, newest first: "when did this printer drift?".
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/devices/{device}/compliance/history", tag = "compliance", params(("tenant" = String, Path), ("device" = String, Path)),
    responses((status = 200, body = Vec<wire::ComplianceChangeView>), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn history(
    State(state): State<AppState>,
    TenantCaller(ctx): TenantCaller,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<Json<Vec<wire::ComplianceChangeView>>> {
    Ok(Json(
        state
            .store
            .device_compliance_history(&ctx, device_id(&id)?, 200)
            .await?
            .into_iter()
            .map(|h| wire::ComplianceChangeView {
                at_ms: h.at_ms,
                catalogue_version: h.catalogue_version,
                changes: h.changes,
            })
            .collect(),
    ))
}

/// The policy in force on a printer, each item with the assignment it comes from.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/devices/{device}/effective-policy", tag = "compliance", params(("tenant" = String, Path), ("device" = String, Path)),
    responses((status = 200, body = Vec<wire::EffectiveItemView>), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn effective(
    State(state): State<AppState>,
    TenantCaller(ctx): TenantCaller,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<Json<Vec<wire::EffectiveItemView>>> {
    let e = state
        .store
        .device_effective_policy(&ctx, device_id(&id)?)
        .await?;
    Ok(Json(
        e.into_iter()
            .map(|(setting_id, e)| wire::EffectiveItemView {
                setting_id,
                value: display(&e.item),
                origin: origin(&e.origin),
                overridden: e.overridden.iter().map(origin).collect(),
            })
            .collect(),
    ))
}

fn summary(
    state: &AppState,
    names: &BTreeMap<printfleet_domain::PolicyId, String>,
    f: Figures,
) -> wire::ComplianceSummary {
    let cat = &state.channel.catalogue;
    wire::ComplianceSummary {
        printers: f.printers,
        policies: f
            .policies
            .into_iter()
            .map(|(policy, (printers, items))| {
                let mut categories: BTreeMap<String, StatusTally> = BTreeMap::new();
                for (id, t) in &items {
                    let c = categories.entry(category(cat, id)).or_default();
                    c.merge(t);
                }
                wire::PolicyFigures {
                    policy,
                    name: names.get(&policy).cloned().unwrap_or_default(),
                    printers,
                    categories: categories
                        .into_iter()
                        .map(|(category, items)| wire::CategoryFigures { category, items })
                        .collect(),
                    items: items
                        .into_iter()
                        .map(|(setting_id, items)| wire::ItemFigures {
                            category: category(cat, &setting_id),
                            setting_id,
                            items,
                        })
                        .collect(),
                }
            })
            .collect(),
    }
}

async fn policy_names(
    state: &AppState,
    ctx: &printfleet_domain::Ctx,
) -> ApiResult<BTreeMap<printfleet_domain::PolicyId, String>> {
    // Report Admins read figures without `policies.read`: names come without the documents.
    let mut read = ctx.clone();
    read.permissions
        .insert(printfleet_domain::Permission::PoliciesRead);
    Ok(state
        .store
        .policies_list(&read)
        .await?
        .into_iter()
        .map(|p| (p.id, p.name))
        .collect())
}

/// Fleet compliance per policy, category and item (over the caller's groups when scoped).
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/compliance", tag = "compliance", params(("tenant" = String, Path)),
    responses((status = 200, body = wire::ComplianceSummary), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn fleet(
    State(state): State<AppState>,
    TenantCaller(ctx): TenantCaller,
) -> ApiResult<Json<wire::ComplianceSummary>> {
    let f = state.store.compliance_figures(&ctx, None).await?;
    let names = policy_names(&state, &ctx).await?;
    Ok(Json(summary(&state, &names, f)))
}

#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/groups/{group}/compliance", tag = "compliance", params(("tenant" = String, Path), ("group" = String, Path)),
    responses((status = 200, body = wire::ComplianceSummary), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn group(
    State(state): State<AppState>,
    TenantCaller(ctx): TenantCaller,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<Json<wire::ComplianceSummary>> {
    let f = state
        .store
        .compliance_figures(&ctx, Some(group_id(&id)?))
        .await?;
    let names = policy_names(&state, &ctx).await?;
    Ok(Json(summary(&state, &names, f)))
}

/// Remediate one printer now (also under assess-only policies; clears its back-off).
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/devices/{device}/remediate", tag = "compliance", params(("tenant" = String, Path), ("device" = String, Path)),
    responses((status = 200, body = wire::RemediationQueued), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn remediate_device(
    State(state): State<AppState>,
    TenantCaller(ctx): TenantCaller,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<Json<wire::RemediationQueued>> {
    let printers = state
        .store
        .remediate_now(&ctx, Some(device_id(&id)?), None)
        .await?;
    state.assessor.poke();
    Ok(Json(wire::RemediationQueued { printers }))
}

/// Remediate every printer of a group now.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/groups/{group}/remediate", tag = "compliance", params(("tenant" = String, Path), ("group" = String, Path)),
    responses((status = 200, body = wire::RemediationQueued), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn remediate_group(
    State(state): State<AppState>,
    TenantCaller(ctx): TenantCaller,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<Json<wire::RemediationQueued>> {
    let printers = state
        .store
        .remediate_now(&ctx, None, Some(group_id(&id)?))
        .await?;
    state.assessor.poke();
    Ok(Json(wire::RemediationQueued { printers }))
}

/// Makes a group dynamic (`rule`) or static again (`rule: null`).
#[utoipa::path(put, path = "/api/v1/tenants/{tenant}/groups/{group}/rule", tag = "devices", params(("tenant" = String, Path), ("group" = String, Path)), request_body = wire::GroupRuleRequest,
    responses((status = 200, body = wire::GroupView), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn set_rule(
    State(state): State<AppState>,
    TenantCaller(ctx): TenantCaller,
    Path((_, id)): Path<(String, String)>,
    ApiJson(req): ApiJson<wire::GroupRuleRequest>,
) -> ApiResult<Json<wire::GroupView>> {
    let g = group_id(&id)?;
    state.store.group_set_rule(&ctx, g, req.rule).await?;
    state.assessor.poke();
    Ok(Json(crate::views::group(
        state.store.group_get(&ctx, g).await?,
    )))
}

fn attrs(a: DeviceAttrs) -> wire::DeviceAttributesView {
    wire::DeviceAttributesView {
        model: a.model,
        firmware: a.firmware,
        site: a.site,
        tags: a.tags.into_iter().collect(),
    }
}

#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/devices/{device}/attributes", tag = "devices", params(("tenant" = String, Path), ("device" = String, Path)),
    responses((status = 200, body = wire::DeviceAttributesView), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn get_attributes(
    State(state): State<AppState>,
    TenantCaller(ctx): TenantCaller,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<Json<wire::DeviceAttributesView>> {
    Ok(Json(attrs(
        state.store.device_attributes(&ctx, device_id(&id)?).await?,
    )))
}

/// Sets a printer's site and tags (dynamic groups select on them).
#[utoipa::path(put, path = "/api/v1/tenants/{tenant}/devices/{device}/attributes", tag = "devices", params(("tenant" = String, Path), ("device" = String, Path)), request_body = wire::DeviceAttributesRequest,
    responses((status = 200, body = wire::DeviceAttributesView), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn set_attributes(
    State(state): State<AppState>,
    TenantCaller(ctx): TenantCaller,
    Path((_, id)): Path<(String, String)>,
    ApiJson(req): ApiJson<wire::DeviceAttributesRequest>,
) -> ApiResult<Json<wire::DeviceAttributesView>> {
    let a = state
        .store
        .device_set_attributes(&ctx, device_id(&id)?, req.site.as_deref(), &req.tags)
        .await?;
    state.assessor.poke();
    Ok(Json(attrs(a)))
}
