//! The plaintexts of the printer ⇄ server messages carried in sealed bodies over HTTPS
//! (`docs/protocol.md` §7): check-ins (telemetry), their acknowledgements, fetching work, and
//! the proof of possession for re-enrolment; the data of the `apply_settings` work kind.
//!
//! Plaintexts are UTF-8 JSON objects. Decoding checks the *shape* (§7.2), in this order, and
//! reports the first failure: the syntax; that the top level is an object; that no object
//! repeats a member name; the structure (an object wherever a struct is expected, with its
//! required members, no member `null`, enumerations as strings, no `null` or list as a setting
//! value); the types of the values (via `serde_path_to_error`, so a type error names its path);
//! then the limits on every string, list and number below. What needs the catalogue or the
//! printer's stored state (setting ids and values, counters going backwards) is checked by the
//! server's domain code. Members a receiver does not know are ignored (additions are
//! compatible, §4); a missing optional member means "not reported in this message".

mod ack;
mod apply;
mod check_in;
mod json;
mod limits;
mod re_enrol;
mod work;

pub use ack::{AckStatus, CheckInAck};
pub use apply::{ApplySecrets, ApplySettings, ApplyValue, APPLY_SETTINGS, SETTINGS_PURPOSE};
pub use check_in::{
    Capabilities, CheckIn, DeviceInfo, Event, EventKind, Meters, ReportedValue, Supply, SupplyKind,
    SupplyState,
};
pub use re_enrol::ReEnrol;
pub use work::{
    Fetch, Outcome, SettingOutcome, SettingResult, Work, WorkAck, WorkItem, UNSUPPORTED,
};

/// Longest free-text value (device name, event detail…), in characters.
pub const MAX_TEXT_LEN: usize = 200;
/// Longest short token (ids, codes, part numbers, firmware), in characters.
pub const MAX_TOKEN_LEN: usize = 64;
/// Longest setting id, in characters (the settings catalogue's limit).
pub const MAX_SETTING_ID_LEN: usize = 128;
/// Longest string value of a setting, in characters (the catalogue's longest string setting).
pub const MAX_SETTING_TEXT_LEN: usize = 255;
/// At most this many settings in one `apply_settings` item (and in its sealed secrets), and
/// per-setting results in one acknowledgement.
pub const MAX_APPLY_SETTINGS: usize = 256;
/// Longest PEM text (a CA certificate, an ID certificate with its key) of a setting to apply,
/// in characters (the catalogue's certificate limit, 64 KiB).
pub const MAX_PEM_LEN: usize = 65_536;
/// What PEM text starts with.
pub const PEM_START: &str = "-----BEGIN ";
/// At most this many supplies in one check-in.
pub const MAX_SUPPLIES: usize = 32;
/// At most this many events in one check-in.
pub const MAX_EVENTS: usize = 64;
/// At most this many settings in one check-in.
pub const MAX_SETTINGS: usize = 512;
/// At most this many work items in one answer, and acknowledgements in one fetch.
pub const MAX_WORK_ITEMS: usize = 32;
/// The longest a fetch may ask the server to wait for work (the HTTPS long-poll fallback).
pub const MAX_WAIT_MS: u64 = 25_000;
/// The largest value of a counter or time (`seq`, `taken_at_ms`, meters, supply pages, event
/// and certificate times): 2^53 − 1, the largest integer every JSON implementation (including
/// those that read numbers as IEEE doubles) represents exactly.
pub const MAX_JSON_SAFE_INTEGER: u64 = (1 << 53) - 1;
/// The deepest nesting of lists and objects a plaintext may have (the top-level object is 1).
pub const MAX_NESTING: usize = 127;

/// Why a plaintext was refused. `field` is a JSON path such as `supplies[2].level_percent`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {field}: {message}")]
pub struct MessageError {
    /// Stable code: `bad_payload`, `too_long`, `too_many`, `out_of_range`.
    pub code: &'static str,
    pub field: String,
    pub message: String,
}

impl MessageError {
    pub(crate) fn new(
        code: &'static str,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            code,
            field: field.into(),
            message: message.into(),
        }
    }

    pub(crate) fn bad(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new("bad_payload", field, message)
    }
}

/// Hex of a message id, as used in `reply_to`.
pub fn message_id_hex(id: &crate::MessageId) -> String {
    id.0.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod policy_tests;
#[cfg(test)]
mod tests;
