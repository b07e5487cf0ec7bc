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
    /// A dynamic group's rule; absent for a static group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<printfleet_domain::policy::GroupRule>,
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
    /// Set when an admin revoked the printer's key: it is refused everywhere until it
    /// re-enrols with an admin's approval.
    pub revoked_at_ms: Option<i64>,
    /// Until when it may re-enrol without proof of its current key.
    pub reenrol_approved_until_ms: Option<i64>,
}

/// A printer's latest reported state, merged from its check-ins (docs/protocol.md §7).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeviceStateView {
    /// The latest stored report's number (0: none since the last re-enrolment).
    pub seq: u64,
    pub reported_at_ms: u64,
    pub received_at_ms: i64,
    /// The settings catalogue version the settings were checked against.
    pub catalogue_version: String,
    /// Name, model, serial, firmware, region, language, capabilities.
    #[schema(value_type = Object)]
    pub info: serde_json::Value,
    /// Lifetime counters.
    #[schema(value_type = Object)]
    pub meters: serde_json::Value,
    #[schema(value_type = Vec<Object>)]
    pub supplies: serde_json::Value,
    /// Current values by catalogue id; secrets only as `{"set": bool}`.
    #[schema(value_type = Object)]
    pub settings: serde_json::Value,
    /// The newest events (at most 20), oldest first.
    #[schema(value_type = Vec<Object>)]
    pub recent_events: serde_json::Value,
    /// Where each value came from (`info`, `meters`, `supplies`, `events`, `settings.<id>`):
    /// connection (`direct`/`proxy:<id>`), method (`check_in`), key version, report number and
    /// time received.
    #[schema(value_type = Object)]
    pub provenance: serde_json::Value,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HistoryEntryView {
    pub seq: i64,
    pub key_version: i64,
    /// `device_info`, `meters`, `supplies`, `events` or `settings`.
    pub data_class: String,
    pub reported_at_ms: i64,
    pub received_at_ms: i64,
    #[schema(value_type = Object)]
    pub body: serde_json::Value,
}

/// Work for a printer (the outbox), e.g. `report_now`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WorkView {
    pub id: String,
    pub kind: String,
    pub created_at_ms: i64,
    /// `pending` until the printer acknowledges it; then `done`, `failed` or `refused`.
    pub status: String,
    /// How many times it was handed to the printer.
    pub attempts: i64,
    pub sent_at_ms: Option<i64>,
    pub finished_at_ms: Option<i64>,
    /// The printer's reason for `failed` / `refused`.
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WorkRequest {
    /// What the printer should do: `report_now` (send a full check-in).
    pub kind: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WorkQueued {
    pub work: WorkView,
    /// Whether the printer's doorbell was rung (it is online over UDP) or its long-poll woken;
    /// otherwise it fetches at its next heartbeat.
    pub rung: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReenrolmentApproved {
    pub until_ms: i64,
}
