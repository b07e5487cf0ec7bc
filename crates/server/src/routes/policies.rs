//! Policies: versioned documents of catalogue settings, secrets and certificates, and their
//! assignments to device groups. Input is checked item by item against the catalogue; uploaded
//! certificates are parsed and checked here (`printfleet-crypto`), and the error names the item.

use crate::auth::TenantCaller;
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use printfleet_crypto::certificate::{self, CertificateInput};
use printfleet_domain::catalogue::CertificateKind;
use printfleet_domain::policy::{
    self, code::PolicyCode, diff::display, CertificateMeta, CertificateUpload, ItemChange,
    ItemInput, PolicyItems, PolicySecrets, ResolvedItem,
};
use printfleet_domain::{Ctx, GroupId, PolicyId, Redacted, ValidationError};
use printfleet_storage::policies::{AssignmentRecord, PolicyRecord, PolicyWrite};
use printfleet_wire as wire;
use std::collections::BTreeMap;

pub(crate) fn policy_id(s: &str) -> Result<PolicyId, ApiError> {
    s.parse().map_err(|_| ApiError::NotFound)
}

fn group_id(s: &str) -> Result<GroupId, ApiError> {
    s.parse().map_err(|_| ApiError::NotFound)
}

pub(crate) fn view(p: PolicyRecord) -> wire::PolicyView {
    wire::PolicyView {
        id: p.id,
        name: p.name,
        description: p.description,
        mode: p.mode,
        version: p.version,
        catalogue_version: p.catalogue_version,
        created_at_ms: p.created_at_ms,
        updated_at_ms: p.updated_at_ms,
        version_created_by: p.version_created_by,
        settings: p
            .items
            .iter()
            .map(|(k, v)| (k.clone(), display(v)))
            .collect(),
    }
}

fn changes(c: Vec<ItemChange>) -> Vec<wire::ItemChangeView> {
    c.into_iter()
        .map(|c| wire::ItemChangeView {
            setting_id: c.setting_id,
            change: c.change.to_string(),
            before: c.before,
            after: c.after,
        })
        .collect()
}

fn assignment(a: AssignmentRecord) -> wire::AssignmentView {
    wire::AssignmentView {
        policy: a.policy,
        group: a.group,
        priority: a.priority,
        created_at_ms: a.created_at_ms,
    }
}

fn meta(info: &certificate::CertificateInfo) -> CertificateMeta {
    CertificateMeta {
        sha256: info.sha256.clone(),
        subject: info.subject.clone(),
        not_after_ms: info.not_after_ms,
        pem: info.pem.clone(),
    }
}

/// Turns the request's settings into a version's items and secrets: catalogue checks, then
/// certificates parsed (an ID certificate is checked against the CA certificate of the same
/// request or of the current version, when there is one). A dry run (`routes::dry_run`)
/// checks its proposal here too, so it refuses exactly what saving would.
pub(crate) fn build(
    state: &AppState,
    ctx: &Ctx,
    settings: &BTreeMap<String, serde_json::Value>,
    previous: Option<(&PolicyItems, &PolicySecrets)>,
) -> Result<(PolicyItems, PolicySecrets, bool), ApiError> {
    let catalogue = &state.channel.catalogue;
    let now = state.clock.now_ms();
    let mut parsed = BTreeMap::new();
    for (id, value) in settings {
        parsed.insert(id.clone(), policy::parse_item(catalogue, id, value)?);
    }
    let mut enters_secrets = false;
    let mut resolved = BTreeMap::new();
    let mut ca: Option<certificate::CertificateInfo> = None;
    // CA certificates first, so an ID certificate in the same request can chain to one.
    let mut ordered: Vec<(String, ItemInput)> = parsed.into_iter().collect();
    ordered.sort_by_key(|(_, i)| !matches!(i, ItemInput::Certificate(CertificateKind::Ca, _)));
    for (id, input) in ordered {
        let item = match input {
            ItemInput::Value(v) => ResolvedItem::Value(v),
            ItemInput::Secret(s) => {
                enters_secrets = true;
                ResolvedItem::Secret(s)
            }
            ItemInput::Generate(rule) => {
                // It decides every reached printer's value: as strong a right as entering one.
                enters_secrets = true;
                ResolvedItem::Generate(rule)
            }
            ItemInput::Keep => ResolvedItem::Keep,
            ItemInput::Certificate(kind, upload) => {
                let input = match upload {
                    CertificateUpload::Pem(p) => CertificateInput::Pem(p.into_inner()),
                    CertificateUpload::Der(d) => CertificateInput::Der(d),
                    CertificateUpload::Pkcs12 { der, passphrase } => {
                        CertificateInput::pkcs12(der, passphrase.into_inner())
                    }
                };
                let bad = |e: certificate::CertificateError| {
                    ApiError::from(ValidationError::new(id.as_str(), e.to_string()))
                };
                match kind {
                    CertificateKind::Ca => {
                        let info = certificate::parse_ca(&input, now).map_err(bad)?;
                        let m = meta(&info);
                        ca = Some(info);
                        ResolvedItem::Certificate {
                            meta: m,
                            secret_pem: None,
                        }
                    }
                    CertificateKind::Id => {
                        enters_secrets = true;
                        let ca_of_previous = previous
                            .and_then(|(items, _)| ca_item(items))
                            .and_then(|pem| {
                                certificate::parse_ca(&CertificateInput::Pem(pem), now).ok()
                            });
                        let anchor = ca.as_ref().or(ca_of_previous.as_ref());
                        let idc = certificate::parse_id(&input, anchor, now).map_err(bad)?;
                        let mut pem = idc.certificate.pem.clone();
                        for c in &idc.chain {
                            pem.push_str(&c.pem);
                        }
                        pem.push_str(idc.private_key_pem.expose());
                        ResolvedItem::Certificate {
                            meta: meta(&idc.certificate),
                            secret_pem: Some(Redacted::new(pem)),
                        }
                    }
                }
            }
        };
        resolved.insert(id, item);
    }
    let (items, secrets) = policy::build_version(resolved, previous, &ctx.actor.audit_id(), now)?;
    Ok((items, secrets, enters_secrets))
}

fn ca_item(items: &PolicyItems) -> Option<String> {
    items.iter().find_map(|(id, i)| match i {
        policy::PolicyItem::Certificate { certificate, .. } if id == "security.cert.ca" => {
            Some(certificate.pem.clone())
        }
        _ => None,
    })
}

#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/policies", tag = "policies", params(("tenant" = String, Path)),
    responses((status = 200, body = Vec<wire::PolicyView>), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    TenantCaller(ctx): TenantCaller,
) -> ApiResult<Json<Vec<wire::PolicyView>>> {
    Ok(Json(
        state
            .store
            .policies_list(&ctx)
            .await?
            .into_iter()
            .map(view)
            .collect(),
    ))
}

/// Creates a policy (version 1). Secret values need `secrets.write`; they are never returned.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/policies", tag = "policies", params(("tenant" = String, Path)), request_body = wire::PolicyRequest,
    responses((status = 201, body = wire::PolicyView), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    TenantCaller(ctx): TenantCaller,
    ApiJson(req): ApiJson<wire::PolicyRequest>,
) -> ApiResult<(StatusCode, Json<wire::PolicyView>)> {
    ctx.require(printfleet_domain::Permission::PoliciesManage)
        .map_err(printfleet_storage::StoreError::from)?;
    let (items, secrets, enters_secrets) = build(&state, &ctx, &req.settings, None)?;
    let p = state
        .store
        .policy_create(
            &ctx,
            PolicyWrite {
                name: req.name,
                description: req.description,
                mode: req.mode,
                items,
                secrets,
                catalogue_version: state.channel.catalogue.version.clone(),
                enters_secrets,
            },
        )
        .await?;
    state.assessor.poke();
    Ok((StatusCode::CREATED, Json(view(p))))
}

#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/policies/{policy}", tag = "policies", params(("tenant" = String, Path), ("policy" = String, Path)),
    responses((status = 200, body = wire::PolicyView), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    TenantCaller(ctx): TenantCaller,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<Json<wire::PolicyView>> {
    Ok(Json(view(
        state.store.policy_get(&ctx, policy_id(&id)?).await?,
    )))
}

/// The current version as a TOML policy file (`docs/policies.md`, "Policies as code"): values
/// as TOML, secrets as `{ secret = "set" }` references, certificates by fingerprint. Keys are
/// sorted, so the same version always exports to the same bytes. Read like the policy itself.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/policies/{policy}/export", tag = "policies", params(("tenant" = String, Path), ("policy" = String, Path)),
    responses((status = 200, description = "the policy file", content_type = "application/toml", body = String), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn export(
    State(state): State<AppState>,
    TenantCaller(ctx): TenantCaller,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<impl IntoResponse> {
    let p = state.store.policy_get(&ctx, policy_id(&id)?).await?;
    let code = PolicyCode::from_items(&p.name, p.description.as_deref(), p.mode, &p.items);
    Ok((
        [(header::CONTENT_TYPE, "application/toml; charset=utf-8")],
        policy::code::render(&code),
    ))
}

/// Saves the next version: the whole document (secrets and certificates may say
/// `{"keep": true}`). Answers with what changed.
#[utoipa::path(put, path = "/api/v1/tenants/{tenant}/policies/{policy}", tag = "policies", params(("tenant" = String, Path), ("policy" = String, Path)), request_body = wire::PolicyRequest,
    responses((status = 200, body = wire::PolicySaved), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    TenantCaller(ctx): TenantCaller,
    Path((_, id)): Path<(String, String)>,
    ApiJson(req): ApiJson<wire::PolicyRequest>,
) -> ApiResult<Json<wire::PolicySaved>> {
    let id = policy_id(&id)?;
    let current = state.store.policy_get(&ctx, id).await?;
    let secrets = state.store.policy_current_secrets(&ctx, id).await?;
    let (items, secrets, enters_secrets) = build(
        &state,
        &ctx,
        &req.settings,
        Some((&current.items, &secrets)),
    )?;
    let (p, c) = state
        .store
        .policy_update(
            &ctx,
            id,
            PolicyWrite {
                name: req.name,
                description: req.description,
                mode: req.mode,
                items,
                secrets,
                catalogue_version: state.channel.catalogue.version.clone(),
                enters_secrets,
            },
        )
        .await?;
    state.assessor.poke();
    Ok(Json(wire::PolicySaved {
        policy: view(p),
        changes: changes(c),
    }))
}

#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/policies/{policy}", tag = "policies", params(("tenant" = String, Path), ("policy" = String, Path)),
    responses((status = 204), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    TenantCaller(ctx): TenantCaller,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    state.store.policy_delete(&ctx, policy_id(&id)?).await?;
    state.assessor.poke();
    Ok(StatusCode::NO_CONTENT)
}

/// Compares version `from` with version `to` of a policy.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/policies/{policy}/versions/{from}/compare/{to}", tag = "policies",
    params(("tenant" = String, Path), ("policy" = String, Path), ("from" = i64, Path), ("to" = i64, Path)),
    responses((status = 200, body = wire::PolicyComparison), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn compare(
    State(state): State<AppState>,
    TenantCaller(ctx): TenantCaller,
    Path((_, id, from, to)): Path<(String, String, String, String)>,
) -> ApiResult<Json<wire::PolicyComparison>> {
    let id = policy_id(&id)?;
    let version = |s: &str| s.parse::<i64>().map_err(|_| ApiError::NotFound);
    let (from, to) = (version(&from)?, version(&to)?);
    let (a, _, _) = state.store.policy_version(&ctx, id, from).await?;
    let (b, _, _) = state.store.policy_version(&ctx, id, to).await?;
    Ok(Json(wire::PolicyComparison {
        from_version: from,
        to_version: to,
        changes: changes(policy::diff(&a, &b)),
    }))
}

#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/policy-assignments", tag = "policies", params(("tenant" = String, Path)),
    responses((status = 200, body = Vec<wire::AssignmentView>), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn assignments(
    State(state): State<AppState>,
    TenantCaller(ctx): TenantCaller,
) -> ApiResult<Json<Vec<wire::AssignmentView>>> {
    Ok(Json(
        state
            .store
            .assignments_list(&ctx)
            .await?
            .into_iter()
            .map(assignment)
            .collect(),
    ))
}

/// Assigns a policy to a group with a priority (or changes the priority).
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/policies/{policy}/assignments", tag = "policies", params(("tenant" = String, Path), ("policy" = String, Path)), request_body = wire::AssignmentRequest,
    responses((status = 200, body = wire::AssignmentView), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn assign(
    State(state): State<AppState>,
    TenantCaller(ctx): TenantCaller,
    Path((_, id)): Path<(String, String)>,
    ApiJson(req): ApiJson<wire::AssignmentRequest>,
) -> ApiResult<Json<wire::AssignmentView>> {
    let a = state
        .store
        .policy_assign(&ctx, policy_id(&id)?, req.group, req.priority)
        .await?;
    state.assessor.poke();
    Ok(Json(assignment(a)))
}

#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/policies/{policy}/assignments/{group}", tag = "policies",
    params(("tenant" = String, Path), ("policy" = String, Path), ("group" = String, Path)),
    responses((status = 204), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn unassign(
    State(state): State<AppState>,
    TenantCaller(ctx): TenantCaller,
    Path((_, id, group)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    state
        .store
        .policy_unassign(&ctx, policy_id(&id)?, group_id(&group)?)
        .await?;
    state.assessor.poke();
    Ok(StatusCode::NO_CONTENT)
}
