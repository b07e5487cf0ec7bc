//! Sign-in, sign-out and the current session.

use crate::auth::{SessionCaller, Source};
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::state::AppState;
use crate::views;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use axum_extra::extract::cookie::{Cookie, SameSite};
use axum_extra::extract::CookieJar;
use printfleet_crypto::password::Verified;
use printfleet_domain::audit::AuditAction;
use printfleet_domain::context::Me;
use printfleet_domain::{Actor, Email};
use printfleet_storage::audit::{AuditEvent, DEPLOYMENT_CHAIN};
use printfleet_storage::resolver;
use printfleet_wire as wire;
use rand::rngs::OsRng;

fn session_cookie(state: &AppState, value: String, max_age_s: i64) -> Cookie<'static> {
    let mut c = Cookie::new(state.cookie_name(), value);
    c.set_http_only(true);
    c.set_same_site(SameSite::Strict);
    c.set_path("/");
    c.set_secure(state.settings.secure_cookies);
    c.set_max_age(time::Duration::seconds(max_age_s));
    c
}

async fn session_view(state: &AppState, me: &Me, secret: &str) -> ApiResult<wire::SessionView> {
    let memberships = state.store.my_memberships(me).await?;
    Ok(wire::SessionView {
        user_id: me.user,
        session_id: me.session.ok_or(ApiError::Unauthenticated)?,
        csrf_token: state.csrf_token(secret),
        memberships: memberships.into_iter().map(views::membership).collect(),
    })
}

/// Signs in with e-mail and password; sets the session cookie and returns the CSRF token.
#[utoipa::path(post, path = "/api/v1/auth/sign-in", tag = "auth", request_body = wire::SignInRequest,
    responses((status = 200, body = wire::SessionView), (status = 400, body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody), (status = 429, body = crate::error::ErrorBody)))]
pub async fn sign_in(
    State(state): State<AppState>,
    Source(source): Source,
    headers: HeaderMap,
    jar: CookieJar,
    ApiJson(req): ApiJson<wire::SignInRequest>,
) -> ApiResult<impl IntoResponse> {
    let email = Email::parse("email", &req.email)?;
    if req.password.is_empty() || req.password.len() > 1024 {
        return Err(ApiError::field("password", "must be 1 to 1024 bytes"));
    }
    let account_key = format!("acct:{}", state.store_email_key(&email));
    let address_key = format!("addr:{}", source.clone().unwrap_or_default());
    let wait = state
        .throttle
        .wait_ms(&account_key)
        .max(state.throttle.wait_ms(&address_key));
    if wait > 0 {
        state.metrics.sign_in_throttled.inc();
        return Err(ApiError::TooManyAttempts {
            retry_after_s: (wait + 999) / 1000,
        });
    }
    let found = resolver::sign_in_lookup(&state.store, &email).await?;
    // Always one Argon2 verification, against a dummy hash when the account is unknown.
    let verdict = state.hasher.verify(
        &req.password,
        found.as_ref().map(|(_, h)| h.expose().as_str()),
        &mut OsRng,
    );
    let user = match (verdict, found) {
        (Verified::No, found) | (_, found @ None) => {
            state.metrics.sign_in_failures.inc();
            let target = found
                .as_ref()
                .map(|(u, _)| format!("user:{u}"))
                .unwrap_or_else(|| "account:unknown".into());
            let locked_account = state
                .throttle
                .fail(&account_key, state.settings.throttle_account);
            let locked_address = state
                .throttle
                .fail(&address_key, state.settings.throttle_address);
            let actor = found
                .as_ref()
                .map(|(u, _)| Actor::User(*u))
                .unwrap_or(Actor::System);
            state
                .store
                .audit_standalone(
                    DEPLOYMENT_CHAIN,
                    AuditEvent {
                        actor,
                        action: AuditAction::SignInFailed,
                        target: target.clone(),
                        source: source.clone(),
                        detail: serde_json::Value::Null,
                    },
                )
                .await?;
            if locked_account || locked_address {
                state
                    .store
                    .audit_standalone(DEPLOYMENT_CHAIN, AuditEvent {
                        actor,
                        action: AuditAction::LockedOut,
                        target,
                        source,
                        detail: serde_json::json!({ "account": locked_account, "address": locked_address }),
                    })
                    .await?;
            }
            return Err(ApiError::BadCredentials);
        }
        (Verified::Yes, Some((u, _))) => u,
        (Verified::YesRehash(new_hash), Some((u, _))) => {
            let me = Me {
                user: u,
                session: None,
                source: source.clone(),
            };
            state.store.set_password_hash(&me, &new_hash).await?;
            u
        }
    };
    state.throttle.succeed(&account_key);
    let user_agent = headers
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    // A fresh session id on every sign-in; an existing cookie is replaced, never reused.
    let (session, secret) = state
        .store
        .session_create(user, state.settings.session, source.clone(), user_agent)
        .await?;
    let me = Me {
        user,
        session: Some(session),
        source,
    };
    let view = session_view(&state, &me, secret.expose()).await?;
    let jar = jar.add(session_cookie(
        &state,
        secret.into_inner(),
        state.settings.session.absolute_ms / 1000,
    ));
    Ok((jar, Json(view)))
}

/// Ends the current session.
#[utoipa::path(post, path = "/api/v1/auth/sign-out", tag = "auth",
    responses((status = 204), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
pub async fn sign_out(
    State(state): State<AppState>,
    caller: SessionCaller,
    jar: CookieJar,
) -> ApiResult<impl IntoResponse> {
    if let Some(id) = caller.me.session {
        state.store.session_revoke(&caller.me, id).await?;
    }
    let jar = jar.add(session_cookie(&state, String::new(), 0));
    Ok((jar, StatusCode::NO_CONTENT))
}

/// The current session, with its CSRF token.
#[utoipa::path(get, path = "/api/v1/auth/session", tag = "auth",
    responses((status = 200, body = wire::SessionView), (status = 401, body = crate::error::ErrorBody)))]
pub async fn current_session(
    State(state): State<AppState>,
    caller: SessionCaller,
) -> ApiResult<Json<wire::SessionView>> {
    Ok(Json(
        session_view(&state, &caller.me, caller.secret.expose()).await?,
    ))
}

impl crate::state::Inner {
    /// A key for the per-account throttle that holds no e-mail address.
    pub fn store_email_key(&self, email: &Email) -> String {
        self.csrf_key.index("throttle", email.expose())
    }
}
