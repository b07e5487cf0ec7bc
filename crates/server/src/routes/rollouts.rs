//! Staged roll-outs of policy changes (`docs/policies.md`, "Staged roll-out"): a change saved
//! with a plan — a canary first, then waves — progress per wave, and the admin's resume,
//! cancel and rollback. Waves are finished, released and halted by `rollout_driver`.

use crate::auth::TenantCaller;
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::routes::policies::{build, policy_id, view as policy_view};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use printfleet_domain::policy::rollout::Canary;
use printfleet_storage::policies::PolicyWrite;
use printfleet_storage::rollouts::RolloutRecord;
use printfleet_wire as wire;

pub(crate) fn view(r: RolloutRecord) -> wire::RolloutView {
    let waves = r
        .waves
        .iter()
        .enumerate()
        .map(|(i, tally)| wire::WaveView {
            wave: i,
            up_to_percent: match (i, r.plan.canary) {
                (0, Canary::Percent(p)) => Some(p),
                (0, Canary::Group(_)) => None,
                (i, _) => r.plan.waves.get(i - 1).copied(),
            },
            released: i <= r.released_wave,
            tally: *tally,
        })
        .collect();
    wire::RolloutView {
        id: r.id,
        policy: r.policy,
        base_version: r.base_version,
        version: r.version,
        plan: r.plan,
        state: r.state,
        released_wave: r.released_wave,
        wave_released_at_ms: r.wave_released_at_ms,
        halt_reason: r.halt_reason,
        rollback_version: r.rollback_version,
        created_by: r.created_by,
        created_at_ms: r.created_at_ms,
        updated_at_ms: r.updated_at_ms,
        waves,
    }
}

/// Saves the policy's next version rolled out by a plan. The roll-out is in place before the
/// version is saved, so only the canary can get the change first; if saving fails, the
/// roll-out is cancelled. Needs what saving needs (`policies.manage`, `secrets.write` for new
/// secret values, a tenant-wide scope); one roll-out in progress per policy (else 409).
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/policies/{policy}/rollouts", tag = "policies", params(("tenant" = String, Path), ("policy" = String, Path)), request_body = wire::RolloutRequest,
    responses((status = 201, body = wire::RolloutStarted), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub async fn start(
    State(state): State<AppState>,
    TenantCaller(ctx): TenantCaller,
    Path((_, id)): Path<(String, String)>,
    ApiJson(req): ApiJson<wire::RolloutRequest>,
) -> ApiResult<(StatusCode, Json<wire::RolloutStarted>)> {
    let id = policy_id(&id)?;
    let current = state.store.policy_get(&ctx, id).await?;
    let secrets = state.store.policy_current_secrets(&ctx, id).await?;
    let change = req.change;
    let (items, secrets, enters_secrets) = build(
        &state,
        &ctx,
        &change.settings,
        Some((&current.items, &secrets)),
    )?;
    let rollout = state
        .store
        .rollout_start(&ctx, id, req.plan, enters_secrets)
        .await?;
    let saved = state
        .store
        .policy_update(
            &ctx,
            id,
            PolicyWrite {
                name: change.name,
                description: change.description,
                mode: change.mode,
                items,
                secrets,
                catalogue_version: state.channel.catalogue.version.clone(),
                enters_secrets,
            },
        )
        .await;
    let (p, changes) = match saved {
        Ok(s) => s,
        Err(e) => {
            if let Err(e2) = state
                .store
                .rollout_abandon(&ctx, id, &rollout.id, "the change was not saved")
                .await
            {
                tracing::warn!(error = %e2, "could not cancel the roll-out of an unsaved change");
            }
            return Err(e.into());
        }
    };
    state
        .store
        .rollout_bind(&ctx, id, &rollout.id, p.version)
        .await?;
    state.assessor.poke();
    let rollout = state.store.rollout_get(&ctx, id, &rollout.id).await?;
    Ok((
        StatusCode::CREATED,
        Json(wire::RolloutStarted {
            rollout: view(rollout),
            saved: wire::PolicySaved {
                policy: policy_view(p),
                changes: changes
                    .into_iter()
                    .map(|c| wire::ItemChangeView {
                        setting_id: c.setting_id,
                        change: c.change.to_string(),
                        before: c.before,
                        after: c.after,
                    })
                    .collect(),
            },
        }),
    ))
}

/// A policy's roll-outs, newest first, with progress per wave. Read like the policy.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/policies/{policy}/rollouts", tag = "policies", params(("tenant" = String, Path), ("policy" = String, Path)),
    responses((status = 200, body = Vec<wire::RolloutView>), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    TenantCaller(ctx): TenantCaller,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<Json<Vec<wire::RolloutView>>> {
    let list = state.store.rollouts_list(&ctx, policy_id(&id)?).await?;
    Ok(Json(list.into_iter().map(view).collect()))
}

fn rollout_id(s: &str) -> Result<String, ApiError> {
    uuid::Uuid::parse_str(s)
        .map(|u| u.to_string())
        .map_err(|_| ApiError::NotFound)
}

/// One roll-out: state, halt reason, and per wave its printers, how many were sent the change,
/// succeeded, failed, did not respond, needed nothing, and are compliant.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/policies/{policy}/rollouts/{rollout}", tag = "policies", params(("tenant" = String, Path), ("policy" = String, Path), ("rollout" = String, Path)),
    responses((status = 200, body = wire::RolloutView), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    TenantCaller(ctx): TenantCaller,
    Path((_, id, r)): Path<(String, String, String)>,
) -> ApiResult<Json<wire::RolloutView>> {
    let r = state
        .store
        .rollout_get(&ctx, policy_id(&id)?, &rollout_id(&r)?)
        .await?;
    Ok(Json(view(r)))
}

/// Resumes a halted roll-out: releases the next wave despite the halt (audited).
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/policies/{policy}/rollouts/{rollout}/resume", tag = "policies", params(("tenant" = String, Path), ("policy" = String, Path), ("rollout" = String, Path)),
    responses((status = 200, body = wire::RolloutView), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub async fn resume(
    State(state): State<AppState>,
    TenantCaller(ctx): TenantCaller,
    Path((_, id, r)): Path<(String, String, String)>,
) -> ApiResult<Json<wire::RolloutView>> {
    let r = state
        .store
        .rollout_resume(&ctx, policy_id(&id)?, &rollout_id(&r)?)
        .await?;
    state.assessor.poke();
    Ok(Json(view(r)))
}

/// Stops an active or halted roll-out: nothing more is sent for its version (audited).
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/policies/{policy}/rollouts/{rollout}/cancel", tag = "policies", params(("tenant" = String, Path), ("policy" = String, Path), ("rollout" = String, Path)),
    responses((status = 200, body = wire::RolloutView), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub async fn cancel(
    State(state): State<AppState>,
    TenantCaller(ctx): TenantCaller,
    Path((_, id, r)): Path<(String, String, String)>,
) -> ApiResult<Json<wire::RolloutView>> {
    let r = state
        .store
        .rollout_cancel(&ctx, policy_id(&id)?, &rollout_id(&r)?)
        .await?;
    Ok(Json(view(r)))
}

/// Rolls back: saves the version before the change again as the next version (secrets
/// included), sent to every printer at once (audited). The answer names it in
/// `rollback_version`.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/policies/{policy}/rollouts/{rollout}/rollback", tag = "policies", params(("tenant" = String, Path), ("policy" = String, Path), ("rollout" = String, Path)),
    responses((status = 200, body = wire::RolloutView), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub async fn rollback(
    State(state): State<AppState>,
    TenantCaller(ctx): TenantCaller,
    Path((_, id, r)): Path<(String, String, String)>,
) -> ApiResult<Json<wire::RolloutView>> {
    let (r, _) = state
        .store
        .rollout_rollback(&ctx, policy_id(&id)?, &rollout_id(&r)?)
        .await?;
    state.assessor.poke();
    Ok(Json(view(r)))
}
