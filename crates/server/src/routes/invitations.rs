//! Invitations: create, list, revoke (IT Admin), and accept (the invited person).

use crate::auth::{MaybeSession, Source, TenantCaller};
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::state::AppState;
use crate::views;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use printfleet_domain::user::{validate_new_password, Profile};
use printfleet_domain::{Email, InvitationId, Redacted};
use printfleet_storage::invitations::Acceptor;
use printfleet_wire as wire;
use rand::rngs::OsRng;

/// Pending and past invitations.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/invitations", tag = "people",
    params(("tenant" = String, Path)),
    responses((status = 200, body = Vec<wire::InvitationView>), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    TenantCaller(ctx): TenantCaller,
) -> ApiResult<Json<Vec<wire::InvitationView>>> {
    let list = state.store.invitations_list(&ctx).await?;
    Ok(Json(list.into_iter().map(views::invitation).collect()))
}

/// Invites someone by e-mail with a role and scope. The single-use link is returned here and
/// written nowhere else.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/invitations", tag = "people",
    params(("tenant" = String, Path)), request_body = wire::InvitationRequest,
    responses((status = 201, body = wire::InvitationCreated), (status = 400, body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    TenantCaller(ctx): TenantCaller,
    ApiJson(req): ApiJson<wire::InvitationRequest>,
) -> ApiResult<(StatusCode, Json<wire::InvitationCreated>)> {
    let email = Email::parse("email", &req.email)?;
    let (inv, secret) = state
        .store
        .invitation_create(
            &ctx,
            email,
            req.role,
            req.scope,
            state.settings.invitation_ttl_ms,
        )
        .await?;
    let link = format!("{}/invite#{}", state.settings.public_url, secret.expose());
    Ok((
        StatusCode::CREATED,
        Json(wire::InvitationCreated {
            invitation: views::invitation(inv),
            token: secret.into_inner(),
            link,
        }),
    ))
}

/// Revokes a pending invitation.
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/invitations/{invitation}", tag = "people",
    params(("tenant" = String, Path), ("invitation" = String, Path)),
    responses((status = 204), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub async fn revoke(
    State(state): State<AppState>,
    TenantCaller(ctx): TenantCaller,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let id: InvitationId = id.parse().map_err(|_| ApiError::NotFound)?;
    state.store.invitation_revoke(&ctx, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Accepts an invitation: as a new person (name, locale, password) or, signed in, as yourself.
#[utoipa::path(post, path = "/api/v1/invitations/accept", tag = "people", request_body = wire::AcceptInvitationRequest,
    responses((status = 200, body = wire::AcceptInvitationResponse), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub async fn accept(
    State(state): State<AppState>,
    Source(source): Source,
    MaybeSession(session): MaybeSession,
    ApiJson(req): ApiJson<wire::AcceptInvitationRequest>,
) -> ApiResult<Json<wire::AcceptInvitationResponse>> {
    let acceptor = match session {
        Some(s) => Acceptor::Existing(s.me),
        None => {
            let need = |v: &Option<String>, f: &str| {
                v.clone()
                    .ok_or_else(|| ApiError::field(f, "is required for a new account"))
            };
            let password = validate_new_password(&need(&req.password, "password")?)?;
            let hash = state
                .hasher
                .hash(password.expose(), &mut OsRng)
                .map_err(ApiError::Internal)?;
            // The e-mail is the invited one; the storage layer fills it in and checks it.
            let email = state.store.invitation_email(&req.token).await?;
            let profile = Profile::parse(
                email.expose(),
                &need(&req.first_name, "first_name")?,
                &need(&req.last_name, "last_name")?,
                req.locale.as_deref().unwrap_or("en"),
            )?;
            Acceptor::NewPerson {
                profile,
                password_hash: Redacted::new(hash),
            }
        }
    };
    let (tenant_id, user_id, membership_id) = state
        .store
        .invitation_accept(&req.token, acceptor, source)
        .await?;
    Ok(Json(wire::AcceptInvitationResponse {
        tenant_id,
        user_id,
        membership_id,
    }))
}
