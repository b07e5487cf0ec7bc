//! Tenant administration: the tenant, members, invitations, roles, API tokens, groups, audit.

use printfleet_domain::{
    GroupId, InvitationId, MembershipId, Permission, RoleRef, Scope, TenantId, TokenId, UserId,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use utoipa::ToSchema;

#[derive(Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactView {
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub postal_address: Option<String>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct TenantView {
    pub id: TenantId,
    pub name: String,
    pub region: String,
    /// Present only for callers with `tenant.settings`.
    pub contact: Option<ContactView>,
    pub created_at_ms: i64,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantPatch {
    pub name: Option<String>,
    pub region: Option<String>,
    pub contact: Option<ContactView>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct MemberView {
    pub id: MembershipId,
    pub user_id: UserId,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub role: RoleRef,
    pub role_name: String,
    pub scope: Scope,
    pub created_at_ms: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberPatch {
    pub role: Option<RoleRef>,
    pub scope: Option<Scope>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvitationRequest {
    pub email: String,
    pub role: RoleRef,
    #[serde(default)]
    pub scope: Scope,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct InvitationView {
    pub id: InvitationId,
    pub email: String,
    pub role: RoleRef,
    pub scope: Scope,
    /// pending, accepted, revoked or expired.
    pub state: String,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct InvitationCreated {
    pub invitation: InvitationView,
    /// The single-use secret; shown only now. Until mail sending exists, pass the link on yourself.
    pub token: String,
    pub link: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RoleView {
    /// `it-admin`, `printer-admin`, `report-admin`, or a custom role's id.
    pub id: RoleRef,
    pub name: String,
    pub built_in: bool,
    pub permissions: BTreeSet<Permission>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleRequest {
    pub name: String,
    pub permissions: BTreeSet<Permission>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolePatch {
    pub name: Option<String>,
    pub permissions: Option<BTreeSet<Permission>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    pub name: String,
    /// Unix milliseconds; omit for no expiry.
    pub expires_at_ms: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenView {
    pub id: TokenId,
    pub name: String,
    pub membership_id: MembershipId,
    pub user_id: UserId,
    pub created_at_ms: i64,
    pub expires_at_ms: Option<i64>,
    pub last_used_at_ms: Option<i64>,
    pub revoked_at_ms: Option<i64>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct TokenCreated {
    pub token: TokenView,
    /// The secret (`pf_…`); shown only now, stored only as a hash.
    pub secret: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct GroupView {
    pub id: GroupId,
    pub name: String,
    pub created_at_ms: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupRequest {
    pub name: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditEntryView {
    pub seq: i64,
    pub at_ms: i64,
    /// Pseudonymous: `user:<id>`, `token:<id>/user:<id>` or `system`.
    pub actor: String,
    pub action: String,
    pub target: String,
    pub source: String,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditVerifyView {
    pub entries: i64,
    pub ok: bool,
    pub first_bad_seq: Option<i64>,
    pub problem: Option<String>,
}

crate::redacted_debug!(ContactView);

crate::redacted_debug!(TenantView);

crate::redacted_debug!(TenantPatch);

crate::redacted_debug!(MemberView);

crate::redacted_debug!(InvitationRequest);

crate::redacted_debug!(InvitationView);

crate::redacted_debug!(InvitationCreated);

crate::redacted_debug!(TokenCreated);

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrolmentTokenRequest {
    pub name: String,
    /// How long the token may be used (1 hour to 366 days; default 72).
    pub valid_for_hours: Option<i64>,
    /// How many printers may enrol with it; omit for no limit until expiry.
    pub max_uses: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EnrolmentTokenView {
    pub id: printfleet_domain::EnrolmentTokenId,
    pub name: String,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    pub max_uses: Option<i64>,
    pub uses: i64,
    pub revoked_at_ms: Option<i64>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct EnrolmentTokenCreated {
    pub token: EnrolmentTokenView,
    /// The secret (`pfe_…`) to configure on printers; shown only now.
    pub secret: String,
}

crate::redacted_debug!(EnrolmentTokenCreated);

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeviceView {
    pub id: printfleet_domain::DeviceId,
    pub serial: String,
    pub model: String,
    pub firmware: String,
    /// `direct`, or `proxy:<id>` for printers behind a Print Fleet Proxy.
    pub connection: String,
    pub key_version: i64,
    pub enrolled_at_ms: i64,
    pub groups: Vec<GroupId>,
    /// Online while its heartbeats arrive within the freshness bound (60 s).
    pub online: bool,
    pub last_seen_ms: Option<i64>,
}
