//! Dry runs of a policy change or an assignment: the impact on the fleet, nothing applied.

use printfleet_domain::policy::{ItemStatus, StatusTally};
use printfleet_domain::{DeviceId, PolicyId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// Over every printer the change reaches that the caller may see, whatever page is asked for.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DryRunTotals {
    pub printers_assessed: u64,
    /// Printers with an item whose status or wanted value would change, or that would gain or
    /// lose an item.
    pub printers_changing: u64,
    /// Printers that would be sent settings (`apply_settings`) under remediating policies.
    pub printers_sent_settings: u64,
    /// Printers a remediating policy would find out of line that are not sent settings at
    /// once (remediation back-off running, or earlier work pending): sent when that ends.
    pub printers_sent_later: u64,
    /// Items whose status would change, counted by the status they would get.
    pub items_becoming: StatusTally,
    /// Items that would no longer apply to their printer.
    pub items_no_longer_assessed: u64,
    /// The same per setting id (ids with nothing to count are left out), with how many
    /// printers would be sent each.
    pub by_item: BTreeMap<String, DryRunItemTotals>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DryRunItemTotals {
    pub becoming: StatusTally,
    pub no_longer_assessed: u64,
    pub sent: u64,
}

/// One item of a printer, now and after the change. Never a secret's value: secrets show their
/// status only (`wanted_*` are `null`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DryRunItemView {
    pub setting_id: String,
    /// `null`: the item does not apply to the printer now.
    pub current: Option<ItemStatus>,
    /// `null`: the item would no longer apply.
    pub predicted: Option<ItemStatus>,
    #[schema(value_type = Object)]
    pub reported: Option<serde_json::Value>,
    #[schema(value_type = Object)]
    pub wanted_now: Option<serde_json::Value>,
    #[schema(value_type = Object)]
    pub wanted_after: Option<serde_json::Value>,
    /// Why, for the predicted status (`not set on the printer`, …).
    pub detail: Option<String>,
    /// The policy the item would come from.
    pub policy: Option<PolicyId>,
    /// Whether remediation would send it to the printer.
    pub sent: bool,
}

/// A printer that would change or be sent settings, with only those items.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DryRunPrinterView {
    pub device: DeviceId,
    pub serial: String,
    pub model: String,
    /// The name the printer reports, once it has.
    pub name: Option<String>,
    pub sent_settings: bool,
    pub items: Vec<DryRunItemView>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DryRunView {
    pub policy: PolicyId,
    /// The policy's current version.
    pub version: i64,
    /// The version printers would be assessed under (the next one for a policy change).
    pub version_after: i64,
    pub totals: DryRunTotals,
    /// Ordered by printer id; one page.
    pub printers: Vec<DryRunPrinterView>,
    /// Give as `after` for the next page; `null` on the last.
    pub next_after: Option<DeviceId>,
}
