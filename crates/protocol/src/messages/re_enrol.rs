//! re_enrol (0x06, printer → server, inside an enrolment request).

use serde::{Deserialize, Serialize};

use super::json::*;
use super::limits::*;
use super::*;

// ------------------------------------------------------------------------------------------------
// re_enrol (0x06, printer → server, inside an enrolment request)
// ------------------------------------------------------------------------------------------------

/// Sealed with the printer's *current* key: "I, printer `printer_id`, move to `new_public_key`."
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReEnrol {
    /// The printer's id, a UUID in its lowercase hyphenated form.
    pub printer_id: String,
    /// 64 lowercase hex digits.
    pub new_public_key: String,
}

impl ReEnrol {
    pub fn decode(plaintext: &[u8]) -> Result<Self, MessageError> {
        let r: Self = decode_json(plaintext, RE_ENROL)?;
        if !is_uuid(&r.printer_id) {
            return Err(MessageError::bad(
                "printer_id",
                "must be a UUID in its lowercase hyphenated form (8-4-4-4-12 hex digits)",
            ));
        }
        if !is_lower_hex(&r.new_public_key, 64) {
            return Err(MessageError::bad(
                "new_public_key",
                "must be 64 lowercase hex digits",
            ));
        }
        Ok(r)
    }
    pub fn encode(&self) -> Vec<u8> {
        encode_json(self)
    }
}
