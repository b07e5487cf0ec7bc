//! Assessment: a printer's reported state against its effective policy, item by item.
//!
//! - `unknown`: the printer has not reported its model or this item yet;
//! - `unsupported`: the catalogue says its model family lacks the setting, or the printer
//!   refused it as unsupported;
//! - `compliant` / `non_compliant`: the reported value against the wanted one. Secrets compare
//!   the printer's keyed verifier with the one computed from the policy's value (the secret
//!   itself is never reported); certificates compare fingerprints and flag expiry within
//!   [`EXPIRY_WARNING_MS`](super::EXPIRY_WARNING_MS).

use super::document::PolicyItem;
use super::effective::{EffectivePolicy, Origin};
use super::EXPIRY_WARNING_MS;
use crate::catalogue::{Catalogue, SettingValue};
use crate::telemetry::DeviceState;
use printfleet_protocol::messages::{DeviceInfo, ReportedValue};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    Compliant,
    NonCompliant,
    Unsupported,
    Unknown,
}

impl ItemStatus {
    pub const ALL: [ItemStatus; 4] = [
        ItemStatus::Compliant,
        ItemStatus::NonCompliant,
        ItemStatus::Unsupported,
        ItemStatus::Unknown,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            ItemStatus::Compliant => "compliant",
            ItemStatus::NonCompliant => "non_compliant",
            ItemStatus::Unsupported => "unsupported",
            ItemStatus::Unknown => "unknown",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// The assessment of one item. `reported` and `wanted` never hold a secret.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ItemAssessment {
    pub setting_id: String,
    pub status: ItemStatus,
    pub reported: Option<serde_json::Value>,
    pub wanted: Option<serde_json::Value>,
    /// Why, where the status alone does not say it (`expires within 30 days`, …).
    pub detail: Option<String>,
}

/// Counts of items by status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StatusTally {
    pub compliant: u64,
    pub non_compliant: u64,
    pub unsupported: u64,
    pub unknown: u64,
}

impl StatusTally {
    pub fn add(&mut self, s: ItemStatus, n: i64) {
        let slot = match s {
            ItemStatus::Compliant => &mut self.compliant,
            ItemStatus::NonCompliant => &mut self.non_compliant,
            ItemStatus::Unsupported => &mut self.unsupported,
            ItemStatus::Unknown => &mut self.unknown,
        };
        *slot = slot.saturating_add_signed(n);
    }
    pub fn merge(&mut self, other: &StatusTally) {
        self.compliant += other.compliant;
        self.non_compliant += other.non_compliant;
        self.unsupported += other.unsupported;
        self.unknown += other.unknown;
    }
    pub fn of<'a>(items: impl IntoIterator<Item = &'a ItemAssessment>) -> Self {
        let mut t = Self::default();
        for i in items {
            t.add(i.status, 1);
        }
        t
    }
    /// The printer's overall status: non-compliant if any item is; unknown if any item is
    /// unknown and none non-compliant; compliant otherwise (unsupported items do not count
    /// against it, they are reported on their own).
    pub fn overall(&self) -> ItemStatus {
        if self.non_compliant > 0 {
            ItemStatus::NonCompliant
        } else if self.unknown > 0 {
            ItemStatus::Unknown
        } else {
            ItemStatus::Compliant
        }
    }
}

/// The catalogue's model family of a printer, from the capabilities it reports (`None` until
/// it has reported them).
pub fn model_family(info: Option<&DeviceInfo>) -> Option<&'static str> {
    let c = info?.capabilities;
    Some(match (c.scan || c.fax, c.colour) {
        (true, true) => "mfp-color",
        (true, false) => "mfp-mono",
        (false, true) => "office-color",
        (false, false) => "office-mono",
    })
}

pub struct AssessInput<'a> {
    pub catalogue: &'a Catalogue,
    pub state: &'a DeviceState,
    pub effective: &'a EffectivePolicy,
    /// The verifier (lower hex) the printer must report for a secret item of the policy, computed
    /// with the printer's verifier key; `None` when it cannot be computed.
    pub expected_verifier: &'a dyn Fn(&str, &Origin) -> Option<String>,
    /// Settings the printer refused as unsupported when asked to apply them.
    pub refused_unsupported: &'a BTreeSet<String>,
    pub now_ms: i64,
}

fn wanted_of(item: &PolicyItem) -> Option<serde_json::Value> {
    match item {
        PolicyItem::Value { value } => serde_json::to_value(value).ok(),
        PolicyItem::Secret { .. } => None,
        PolicyItem::Certificate { certificate, .. } => {
            Some(serde_json::json!({"sha256": certificate.sha256}))
        }
    }
}

fn reported_of(v: &ReportedValue) -> serde_json::Value {
    match v {
        ReportedValue::Secret { set, .. } => serde_json::json!({ "set": set }),
        other => serde_json::to_value(other).unwrap_or_default(),
    }
}

fn value_matches(wanted: &SettingValue, reported: &ReportedValue) -> bool {
    match (wanted, reported) {
        (SettingValue::Bool(a), ReportedValue::Bool(b)) => a == b,
        (SettingValue::Integer(a), ReportedValue::Integer(b)) => a == b,
        (SettingValue::Enum(a) | SettingValue::Text(a), ReportedValue::Text(b)) => a == b,
        _ => false,
    }
}

/// Assesses every item of the effective policy.
pub fn assess(input: &AssessInput<'_>) -> Vec<ItemAssessment> {
    let family = model_family(input.state.info.as_ref());
    input
        .effective
        .iter()
        .map(|(id, e)| {
            let wanted = wanted_of(&e.item);
            let reported = input.state.settings.get(id);
            let (status, detail) = judge(input, family, id, e, reported);
            ItemAssessment {
                setting_id: id.clone(),
                status,
                reported: reported.map(reported_of),
                wanted,
                detail,
            }
        })
        .collect()
}

fn judge(
    input: &AssessInput<'_>,
    family: Option<&str>,
    id: &str,
    e: &super::effective::EffectiveItem,
    reported: Option<&ReportedValue>,
) -> (ItemStatus, Option<String>) {
    use ItemStatus::*;
    let Some(family) = family else {
        return (
            Unknown,
            Some("the printer has not reported its model yet".into()),
        );
    };
    let supported = input
        .catalogue
        .get(id)
        .map(|s| s.supports(family))
        .unwrap_or(false);
    if !supported {
        return (
            Unsupported,
            Some(format!("not supported by {family} printers")),
        );
    }
    if input.refused_unsupported.contains(id) {
        return (
            Unsupported,
            Some("the printer refused it as unsupported".into()),
        );
    }
    let Some(reported) = reported else {
        return (Unknown, Some("not reported yet".into()));
    };
    match (&e.item, reported) {
        (PolicyItem::Value { value }, r) => {
            if value_matches(value, r) {
                (Compliant, None)
            } else {
                (NonCompliant, None)
            }
        }
        (PolicyItem::Secret { .. }, ReportedValue::Secret { set: false, .. }) => {
            (NonCompliant, Some("not set on the printer".into()))
        }
        (
            PolicyItem::Secret { .. },
            ReportedValue::Secret {
                set: true,
                verifier,
            },
        ) => match (verifier, (input.expected_verifier)(id, &e.origin)) {
            (Some(got), Some(want)) if *got == want => (Compliant, None),
            (Some(_), Some(_)) => (NonCompliant, Some("a different value is in place".into())),
            (None, _) => (
                NonCompliant,
                Some("set, but the printer did not prove which value".into()),
            ),
            (Some(_), None) => (Unknown, Some("cannot be verified yet".into())),
        },
        (
            PolicyItem::Certificate { certificate, .. },
            ReportedValue::Certificate {
                sha256,
                not_after_ms,
            },
        ) => {
            if *sha256 != certificate.sha256 {
                (
                    NonCompliant,
                    Some("a different certificate is installed".into()),
                )
            } else if i64::try_from(*not_after_ms).unwrap_or(i64::MAX) - input.now_ms
                < EXPIRY_WARNING_MS
            {
                (NonCompliant, Some("expires within 30 days".into()))
            } else {
                (Compliant, None)
            }
        }
        (PolicyItem::Certificate { .. }, ReportedValue::Secret { set: false, .. }) => {
            (NonCompliant, Some("no certificate installed".into()))
        }
        _ => (NonCompliant, Some("reported in an unexpected form".into())),
    }
}

#[cfg(test)]
mod tests;
