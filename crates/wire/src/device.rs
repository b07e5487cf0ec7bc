//! What printers send and receive on the device endpoints (`/device/v1`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrolRequest {
    /// The enrolment token (`pfe_…`).
    pub token: String,
    pub serial: String,
    pub model: String,
    pub firmware: String,
    /// The printer's freshly generated X25519 public key, 64 hex digits.
    pub public_key: String,
    /// Re-enrolment of a serial that is already enrolled: a sealed `re_enrol` body (hex) from
    /// the printer's current key, naming its id and `public_key` (docs/protocol.md §6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<String>,
}

crate::redacted_debug!(EnrolRequest);

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeviceParameters {
    /// UDP port of the heartbeat (doorbell) service.
    pub heartbeat_port: u16,
    pub heartbeat_interval_s: u32,
    /// Interval of keep-alive datagrams that keep the NAT mapping (and the doorbell) fresh.
    pub keepalive_interval_s: u32,
    /// HTTPS ports to try, in order (443, then 631).
    pub https_ports: Vec<u16>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EnrolResponse {
    pub printer_id: printfleet_domain::DeviceId,
    /// The server's X25519 public key for sealed bodies, 64 hex digits.
    pub server_public_key: String,
    pub parameters: DeviceParameters,
    /// A sealed body (docs/protocol.md) from the server to the printer's key holding a
    /// `SealedToDevice` with purpose `enrolment`: the 32-byte enrolment secret (heartbeat keys
    /// derive from it) followed by the 32-byte verifier key. Hex.
    pub sealed_secrets: String,
}

/// The answer to queuing work for a whole group (`POST …/groups/{group}/work`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct GroupWorkQueued {
    /// Printers of the group the work was queued for (one item each, committed together).
    pub queued: u64,
}
