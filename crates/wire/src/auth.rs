//! Sign-in, sessions and the signed-in person.

use printfleet_domain::{MembershipId, RoleRef, Scope, SessionId, TenantId, UserId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignInRequest {
    pub email: String,
    pub password: String,
}

impl std::fmt::Debug for SignInRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SignInRequest([redacted])")
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MembershipView {
    pub tenant_id: TenantId,
    pub tenant_name: String,
    pub membership_id: MembershipId,
    pub role: RoleRef,
    pub role_name: String,
    pub scope: Scope,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct SessionView {
    pub user_id: UserId,
    pub session_id: SessionId,
    /// Send this in the `X-CSRF-Token` header with every state-changing request made with the
    /// session cookie.
    pub csrf_token: String,
    pub memberships: Vec<MembershipView>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct MeView {
    pub user_id: UserId,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub locale: String,
    pub memberships: Vec<MembershipView>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SessionInfoView {
    pub id: SessionId,
    pub created_at_ms: i64,
    pub last_seen_at_ms: i64,
    pub expires_at_ms: i64,
    pub source: Option<String>,
    pub user_agent: Option<String>,
    pub current: bool,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptInvitationRequest {
    pub token: String,
    /// For a new person; omit when accepting while signed in.
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub locale: Option<String>,
    pub password: Option<String>,
}

impl std::fmt::Debug for AcceptInvitationRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AcceptInvitationRequest([redacted])")
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AcceptInvitationResponse {
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub membership_id: MembershipId,
}

crate::redacted_debug!(SessionView);

crate::redacted_debug!(MeView);
