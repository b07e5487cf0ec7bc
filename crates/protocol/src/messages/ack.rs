//! check_in_ack (0x03, server → printer).

use serde::{Deserialize, Serialize};

use super::json::*;
use super::*;

// ------------------------------------------------------------------------------------------------
// check_in_ack (0x03, server → printer)
// ------------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AckStatus {
    /// Durably stored.
    Stored,
    /// A report with this `seq` (or a later one) was stored before: nothing changed.
    Duplicate,
    /// Not stored; `code`, `field` and `message` say why. Retrying the same report will not help.
    Refused,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckInAck {
    /// The message id (32 hex digits) of the check-in this answers: an old acknowledgement
    /// replayed to the printer does not match its outstanding request.
    pub reply_to: String,
    pub seq: u64,
    pub status: AckStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl CheckInAck {
    pub fn decode(plaintext: &[u8]) -> Result<Self, MessageError> {
        decode_json(plaintext, CHECK_IN_ACK)
    }
    pub fn encode(&self) -> Vec<u8> {
        encode_json(self)
    }
}
