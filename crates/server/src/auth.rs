//! Authentication extractors: who is calling, resolved through the storage resolver. Cookie
//! sessions must send the CSRF token on every state-changing request; API tokens (sent as
//! `Authorization: Bearer pf_…`) need none, as browsers never attach them on their own.

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{ConnectInfo, FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use axum::http::Method;
use axum_extra::extract::CookieJar;
use printfleet_domain::context::Me;
use printfleet_domain::{Ctx, Redacted, TenantId};
use printfleet_storage::{resolver, StoreError};
use std::net::SocketAddr;

pub const CSRF_HEADER: &str = "x-csrf-token";

pub fn source_of(parts: &Parts) -> Option<String> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
}

/// The caller's address (the TCP peer; no forwarding headers are trusted).
pub struct Source(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for Source {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Source(source_of(parts)))
    }
}

fn is_safe(m: &Method) -> bool {
    matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// A signed-in person (session cookie).
pub struct SessionCaller {
    pub me: Me,
    pub secret: Redacted<String>,
}

async fn session_from(parts: &Parts, state: &AppState) -> Result<Option<SessionCaller>, ApiError> {
    let jar = CookieJar::from_headers(&parts.headers);
    let Some(cookie) = jar.get(state.cookie_name()) else {
        return Ok(None);
    };
    let secret = cookie.value().to_string();
    let me = resolver::session(
        &state.store,
        &secret,
        state.settings.session,
        source_of(parts),
    )
    .await?;
    let Some(me) = me else {
        return Err(ApiError::Unauthenticated);
    };
    if !is_safe(&parts.method) {
        let sent = parts
            .headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !printfleet_crypto::token::equal(sent, &state.csrf_token(&secret)) {
            state.metrics.csrf_rejections.inc();
            return Err(ApiError::Csrf);
        }
    }
    Ok(Some(SessionCaller {
        me,
        secret: Redacted::new(secret),
    }))
}

impl FromRequestParts<AppState> for SessionCaller {
    type Rejection = ApiError;
    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        session_from(parts, state)
            .await?
            .ok_or(ApiError::Unauthenticated)
    }
}

/// A session if the request carries one (invitation acceptance works both ways).
pub struct MaybeSession(pub Option<SessionCaller>);

impl FromRequestParts<AppState> for MaybeSession {
    type Rejection = ApiError;
    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(MaybeSession(session_from(parts, state).await?))
    }
}

/// A caller acting inside the tenant named by the `{tenant}` path segment, by session or API
/// token. Someone who is not a member gets 404, exactly as for a tenant that does not exist.
pub struct TenantCaller(pub Ctx);

impl FromRequestParts<AppState> for TenantCaller {
    type Rejection = ApiError;
    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let tenant: Option<TenantId> = RawPathParams::from_request_parts(parts, state)
            .await
            .ok()
            .and_then(|p| {
                p.iter()
                    .find(|(k, _)| *k == "tenant")
                    .and_then(|(_, v)| v.parse().ok())
            });
        let bearer = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let ctx = if let Some(secret) = bearer {
            let ctx = resolver::api_token(&state.store, secret, source_of(parts))
                .await?
                .ok_or(ApiError::Unauthenticated)?;
            if Some(ctx.tenant) != tenant {
                return Err(ApiError::NotFound);
            }
            ctx
        } else {
            let s = session_from(parts, state)
                .await?
                .ok_or(ApiError::Unauthenticated)?;
            let tenant = tenant.ok_or(ApiError::NotFound)?;
            match resolver::tenant_ctx(&state.store, &s.me, tenant).await {
                Ok(c) => c,
                Err(StoreError::NotFound) => return Err(ApiError::NotFound),
                Err(e) => return Err(e.into()),
            }
        };
        Ok(TenantCaller(ctx))
    }
}
