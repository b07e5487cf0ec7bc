//! Break-glass: revealing one printer's generated secret, and the feed of reveals.

use printfleet_domain::DeviceId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST …/devices/{d}/secrets/{setting}/reveal`: the caller's own password again, and why.
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevealRequest {
    pub password: String,
    pub reason: String,
}
crate::redacted_debug!(RevealRequest);

/// The printer's current value, shown once. Its rotation is already scheduled.
#[derive(Deserialize, Serialize, ToSchema)]
pub struct RevealedSecret {
    pub device: DeviceId,
    pub setting_id: String,
    pub value: String,
    pub generation: i64,
    /// Whether the printer proved (by its verifier) that it holds `value`.
    pub confirmed: bool,
    /// When it has not: the last value it did prove it holds — what to try at its panel if it
    /// has not applied the newer one (offline, or the apply failed) — and its generation.
    pub last_confirmed_value: Option<String>,
    pub last_confirmed_generation: Option<i64>,
    /// Always true: the value is replaced right after a reveal.
    pub rotation_scheduled: bool,
}
crate::redacted_debug!(RevealedSecret);

/// One reveal in the break-glass feed (never the value).
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct RevealView {
    pub id: String,
    pub device: DeviceId,
    pub setting_id: String,
    pub actor: String,
    pub reason: String,
    pub at_ms: i64,
    pub generation: i64,
    pub rotated_since: bool,
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct BreakGlassFeed {
    pub reveals: Vec<RevealView>,
}
