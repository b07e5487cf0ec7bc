//! Policies, assignments, dynamic groups, printer attributes and compliance.

use printfleet_domain::policy::{GroupRule, ItemStatus, PolicyMode, StatusTally};
use printfleet_domain::{GroupId, PolicyId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// A new policy or its next version. `settings` maps catalogue ids to values: plain values as
/// they are (`false`, `300`, `"sign-in-required"`); a secret as `{"secret": "…"}`; a CA
/// certificate as `{"pem": "…"}` or `{"der": "<base64>"}`; an ID certificate as
/// `{"pem": "<certificate and private key>"}` or `{"pkcs12": "<base64>", "passphrase": "…"}`;
/// a secret or certificate of the current version kept as it is with `{"keep": true}`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyRequest {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub mode: PolicyMode,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub settings: BTreeMap<String, serde_json::Value>,
}

impl std::fmt::Debug for PolicyRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyRequest")
            .field("name", &self.name)
            .field("mode", &self.mode)
            .field("settings", &self.settings.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// A policy at its current (or a given) version. Secrets show only when and by whom they were
/// set; certificates by fingerprint, subject and expiry.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PolicyView {
    pub id: PolicyId,
    pub name: String,
    pub description: Option<String>,
    pub mode: PolicyMode,
    pub version: i64,
    pub catalogue_version: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    /// Pseudonymous id of who wrote this version.
    pub version_created_by: String,
    #[schema(value_type = Object)]
    pub settings: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ItemChangeView {
    pub setting_id: String,
    /// `added`, `removed` or `changed`.
    pub change: String,
    #[schema(value_type = Object)]
    pub before: Option<serde_json::Value>,
    #[schema(value_type = Object)]
    pub after: Option<serde_json::Value>,
}

/// A saved version and what changed against the one before.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PolicySaved {
    pub policy: PolicyView,
    pub changes: Vec<ItemChangeView>,
}

/// Two versions compared.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PolicyComparison {
    pub from_version: i64,
    pub to_version: i64,
    pub changes: Vec<ItemChangeView>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignmentRequest {
    pub group: GroupId,
    /// 1 (highest) to 1 000 000; where two policies set one item, the lower number wins.
    pub priority: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AssignmentView {
    pub policy: PolicyId,
    pub group: GroupId,
    pub priority: i64,
    pub created_at_ms: i64,
}

/// Make a group dynamic (`rule`), or static and empty again (`rule: null`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupRuleRequest {
    pub rule: Option<GroupRule>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceAttributesRequest {
    #[serde(default)]
    pub site: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeviceAttributesView {
    pub model: String,
    pub firmware: String,
    pub site: Option<String>,
    pub tags: Vec<String>,
}

/// Where an effective item comes from.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OriginView {
    pub policy: PolicyId,
    pub version: i64,
    pub mode: PolicyMode,
    pub group: GroupId,
    pub priority: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EffectiveItemView {
    pub setting_id: String,
    #[schema(value_type = Object)]
    pub value: serde_json::Value,
    pub origin: OriginView,
    /// Assignments that also set the item but lost.
    pub overridden: Vec<OriginView>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ComplianceItemView {
    pub setting_id: String,
    pub category: String,
    pub status: ItemStatus,
    /// Never a secret: secrets show as `{"set": …}` only.
    #[schema(value_type = Object)]
    pub reported: Option<serde_json::Value>,
    #[schema(value_type = Object)]
    pub wanted: Option<serde_json::Value>,
    pub detail: Option<String>,
    pub policy: PolicyId,
    pub version: i64,
    pub since_ms: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RemediationView {
    /// Consecutive failed attempts.
    pub attempts: i64,
    pub next_attempt_at_ms: Option<i64>,
    pub last_reason: Option<String>,
    /// Settings the printer refused as unsupported.
    pub unsupported: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeviceComplianceView {
    /// `compliant`, `non_compliant` or `unknown`; `unknown` also before the first assessment.
    pub status: ItemStatus,
    pub assessed_at_ms: Option<i64>,
    pub catalogue_version: Option<String>,
    pub items: Vec<ComplianceItemView>,
    pub tally: StatusTally,
    pub remediation: Option<RemediationView>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ComplianceChangeView {
    pub at_ms: i64,
    pub catalogue_version: String,
    /// `[{setting_id, status, previous, policy, version, detail}]`.
    #[schema(value_type = Object)]
    pub changes: serde_json::Value,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ItemFigures {
    pub setting_id: String,
    pub category: String,
    pub items: StatusTally,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CategoryFigures {
    pub category: String,
    pub items: StatusTally,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PolicyFigures {
    pub policy: PolicyId,
    pub name: String,
    /// Printers by their overall status under this policy.
    pub printers: StatusTally,
    pub categories: Vec<CategoryFigures>,
    pub items: Vec<ItemFigures>,
}

/// Fleet compliance: over the whole tenant, or over the groups of a scoped caller, or one group.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ComplianceSummary {
    /// Printers by overall status (all policies together); printers never assessed count as
    /// unknown.
    pub printers: StatusTally,
    pub policies: Vec<PolicyFigures>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RemediationQueued {
    /// Printers marked for remediation now.
    pub printers: u64,
}
