//! Staged roll-outs of policy changes (`docs/policies.md`, "Staged roll-out").

use crate::PolicyRequest;
use printfleet_domain::policy::rollout::{HaltReason, RolloutPlan, RolloutState, WaveTally};
use printfleet_domain::PolicyId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST …/policies/{p}/rollouts`: the policy's next version (the body of
/// `PUT …/policies/{p}`) and the plan it is rolled out by. The roll-out is in place before
/// the version is saved, so no printer gets the change ahead of its wave.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolloutRequest {
    pub change: PolicyRequest,
    pub plan: RolloutPlan,
}

/// One wave's progress. Wave 0 is the canary.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct WaveView {
    pub wave: usize,
    /// The cumulative share of the fleet this wave reaches (`null` for a canary group).
    pub up_to_percent: Option<u8>,
    pub released: bool,
    #[serde(flatten)]
    pub tally: WaveTally,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct RolloutView {
    pub id: String,
    pub policy: PolicyId,
    /// The version in force before the change.
    pub base_version: i64,
    /// The change's version (`null` until it is saved).
    pub version: Option<i64>,
    pub plan: RolloutPlan,
    pub state: RolloutState,
    pub released_wave: usize,
    pub wave_released_at_ms: i64,
    pub halt_reason: Option<HaltReason>,
    /// The version a rollback saved.
    pub rollback_version: Option<i64>,
    pub created_by: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    pub waves: Vec<WaveView>,
}

/// The answer to `POST …/rollouts`: the roll-out and the saved version's changes.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RolloutStarted {
    pub rollout: RolloutView,
    pub saved: crate::PolicySaved,
}
