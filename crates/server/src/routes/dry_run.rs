//! Dry runs: the impact of a policy's next version, or of an assignment, on the fleet before it
//! is applied — printers that would change, item by item, and what remediation would send —
//! with nothing written. The body is the one the change itself takes and is checked by the same
//! code (`policies::build`), so a dry run refuses exactly what saving would. A new secret value
//! is used in memory only, to compute the verifiers printers would have to report.

use crate::auth::TenantCaller;
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::routes::policies::{build, policy_id};
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::Json;
use printfleet_domain::DeviceId;
use printfleet_storage::dry_run::{DryRun, DryRunPage};
use printfleet_storage::policies::PolicyWrite;
use printfleet_wire as wire;
use serde::Deserialize;

const MAX_LIMIT: i64 = 1000;

/// Which page of the printers to list; the totals always cover the whole fleet.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DryRunQuery {
    /// Printers after this printer id (the previous page's `next_after`).
    #[serde(default)]
    #[param(value_type = Option<String>)]
    pub after: Option<DeviceId>,
    /// At most this many printers (1–1000, default 100).
    #[serde(default = "default_limit")]
    pub limit: i64,
}

fn default_limit() -> i64 {
    100
}

fn page(q: &DryRunQuery) -> Result<DryRunPage, ApiError> {
    if !(1..=MAX_LIMIT).contains(&q.limit) {
        return Err(ApiError::field(
            "limit",
            format!("must be from 1 to {MAX_LIMIT}"),
        ));
    }
    Ok(DryRunPage {
        after: q.after,
        limit: usize::try_from(q.limit).unwrap_or(100),
    })
}

fn view(d: DryRun) -> wire::DryRunView {
    let t = d.totals;
    wire::DryRunView {
        policy: d.policy,
        version: d.version,
        version_after: d.version_after,
        totals: wire::DryRunTotals {
            printers_assessed: t.printers_assessed,
            printers_changing: t.printers_changing,
            printers_sent_settings: t.printers_sent_settings,
            printers_sent_later: t.printers_sent_later,
            items_becoming: t.items_becoming,
            items_no_longer_assessed: t.items_no_longer_assessed,
            by_item: t
                .by_item
                .into_iter()
                .map(|(id, i)| {
                    let totals = wire::DryRunItemTotals {
                        becoming: i.becoming,
                        no_longer_assessed: i.no_longer_assessed,
                        sent: i.sent,
                    };
                    (id, totals)
                })
                .collect(),
        },
        printers: d
            .printers
            .into_iter()
            .map(|p| wire::DryRunPrinterView {
                device: p.device,
                serial: p.serial,
                model: p.model,
                name: p.name,
                sent_settings: p.sent_settings,
                items: p
                    .items
                    .into_iter()
                    .map(|i| wire::DryRunItemView {
                        setting_id: i.setting_id,
                        current: i.current,
                        predicted: i.predicted,
                        reported: i.reported,
                        wanted_now: i.wanted_now,
                        wanted_after: i.wanted_after,
                        detail: i.detail,
                        policy: i.policy,
                        sent: i.sent,
                    })
                    .collect(),
            })
            .collect(),
        next_after: d.next_after,
    }
}

/// What saving this body as the policy's next version would do (`PUT …/policies/{policy}`
/// takes the same body and needs the same permissions, plus `devices.read`). Nothing is saved.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/policies/{policy}/dry-run", tag = "policies",
    params(("tenant" = String, Path), ("policy" = String, Path), DryRunQuery), request_body = wire::PolicyRequest,
    responses((status = 200, body = wire::DryRunView), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn policy(
    State(state): State<AppState>,
    TenantCaller(ctx): TenantCaller,
    Path((_, id)): Path<(String, String)>,
    Query(q): Query<DryRunQuery>,
    ApiJson(req): ApiJson<wire::PolicyRequest>,
) -> ApiResult<Json<wire::DryRunView>> {
    let page = page(&q)?;
    let id = policy_id(&id)?;
    // The same steps, in the same order, as `policies::update`.
    let current = state.store.policy_get(&ctx, id).await?;
    let secrets = state.store.policy_current_secrets(&ctx, id).await?;
    let (items, secrets, enters_secrets) = build(
        &state,
        &ctx,
        &req.settings,
        Some((&current.items, &secrets)),
    )?;
    let proposed = PolicyWrite {
        name: req.name,
        description: req.description,
        mode: req.mode,
        items,
        secrets,
        catalogue_version: state.channel.catalogue.version.clone(),
        enters_secrets,
    };
    let d = state
        .store
        .dry_run_policy(&ctx, &state.channel.catalogue, id, &proposed, page)
        .await?;
    Ok(Json(view(d)))
}

/// What assigning the policy to a group with a priority would do (`POST …/assignments` takes
/// the same body and needs the same permissions, plus `devices.read`). Nothing is assigned.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/policies/{policy}/assignments/dry-run", tag = "policies",
    params(("tenant" = String, Path), ("policy" = String, Path), DryRunQuery), request_body = wire::AssignmentRequest,
    responses((status = 200, body = wire::DryRunView), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn assignment(
    State(state): State<AppState>,
    TenantCaller(ctx): TenantCaller,
    Path((_, id)): Path<(String, String)>,
    Query(q): Query<DryRunQuery>,
    ApiJson(req): ApiJson<wire::AssignmentRequest>,
) -> ApiResult<Json<wire::DryRunView>> {
    let page = page(&q)?;
    let d = state
        .store
        .dry_run_assignment(
            &ctx,
            &state.channel.catalogue,
            policy_id(&id)?,
            req.group,
            req.priority,
            page,
        )
        .await?;
    Ok(Json(view(d)))
}
