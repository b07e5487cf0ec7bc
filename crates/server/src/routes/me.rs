//! The signed-in person: profile, memberships, sessions.

use crate::auth::SessionCaller;
use crate::error::ApiResult;
use crate::state::AppState;
use crate::views;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use printfleet_domain::SessionId;
use printfleet_wire as wire;

/// Your profile and the tenants you belong to.
#[utoipa::path(get, path = "/api/v1/me", tag = "me",
    responses((status = 200, body = wire::MeView), (status = 401, body = crate::error::ErrorBody)))]
pub async fn me(
    State(state): State<AppState>,
    caller: SessionCaller,
) -> ApiResult<Json<wire::MeView>> {
    let u = state.store.me_profile(&caller.me).await?;
    let memberships = state.store.my_memberships(&caller.me).await?;
    Ok(Json(wire::MeView {
        user_id: u.id,
        email: u.profile.email.expose().to_string(),
        first_name: u.profile.first_name.into_inner(),
        last_name: u.profile.last_name.into_inner(),
        locale: u.profile.locale,
        memberships: memberships.into_iter().map(views::membership).collect(),
    }))
}

/// Your live sessions.
#[utoipa::path(get, path = "/api/v1/me/sessions", tag = "me",
    responses((status = 200, body = Vec<wire::SessionInfoView>), (status = 401, body = crate::error::ErrorBody)))]
pub async fn my_sessions(
    State(state): State<AppState>,
    caller: SessionCaller,
) -> ApiResult<Json<Vec<wire::SessionInfoView>>> {
    let list = state.store.sessions_list(&caller.me).await?;
    Ok(Json(
        list.into_iter()
            .map(|s| wire::SessionInfoView {
                id: s.id,
                created_at_ms: s.created_at_ms,
                last_seen_at_ms: s.last_seen_at_ms,
                expires_at_ms: s.expires_at_ms,
                source: s.source,
                user_agent: s.user_agent,
                current: s.current,
            })
            .collect(),
    ))
}

/// Revokes one of your sessions.
#[utoipa::path(delete, path = "/api/v1/me/sessions/{session}", tag = "me",
    params(("session" = String, Path, description = "Session id")),
    responses((status = 204), (status = 401, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn revoke_session(
    State(state): State<AppState>,
    caller: SessionCaller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id: SessionId = id.parse().map_err(|_| crate::error::ApiError::NotFound)?;
    state.store.session_revoke(&caller.me, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
