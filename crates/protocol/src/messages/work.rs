//! fetch (0x04, printer → server) and work (0x05, server → printer).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::json::*;
use super::limits::*;
use super::*;

// ------------------------------------------------------------------------------------------------
// fetch (0x04, printer → server) and work (0x05, server → printer)
// ------------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Done,
    Failed,
    Refused,
}

/// What became of a work item the printer received earlier.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkAck {
    pub id: String,
    pub outcome: Outcome,
    /// The printer's reason for `failed` / `refused`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// For an `apply_settings` item: the settings that were **not** applied, by setting id
    /// (a setting not listed was applied). Empty when the outcome is `done`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub results: BTreeMap<String, SettingResult>,
}

impl WorkAck {
    /// An acknowledgement without per-setting results.
    pub fn new(id: impl Into<String>, outcome: Outcome, reason: Option<String>) -> Self {
        Self {
            id: id.into(),
            outcome,
            reason,
            results: BTreeMap::new(),
        }
    }
}

/// Why one setting of an `apply_settings` item was not applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SettingOutcome {
    /// Tried, did not work (e.g. `device busy`); trying again later may help.
    Failed,
    /// Will not do it: [`UNSUPPORTED`] (the model does not have the setting), a value the
    /// printer does not accept…
    Refused,
}

/// The reason of a setting refused because the printer's model does not support it.
pub const UNSUPPORTED: &str = "unsupported";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingResult {
    pub outcome: SettingOutcome,
    /// Text, at most [`MAX_TEXT_LEN`] characters.
    pub reason: String,
}

/// "Give me my work", reporting what became of earlier items. With `wait_ms` > 0 the server
/// holds the request until work appears or the time is up (the long-poll fallback for networks
/// that block UDP).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fetch {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acks: Vec<WorkAck>,
    #[serde(default)]
    pub wait_ms: u64,
}

impl Fetch {
    pub fn decode(plaintext: &[u8]) -> Result<Self, MessageError> {
        let f: Self = decode_json(plaintext, FETCH)?;
        count("acks", f.acks.len(), MAX_WORK_ITEMS)?;
        for (n, a) in f.acks.iter().enumerate() {
            name(&format!("acks[{n}].id"), &a.id, MAX_TOKEN_LEN)?;
            opt_text(&format!("acks[{n}].reason"), &a.reason, MAX_TEXT_LEN)?;
            let field = format!("acks[{n}].results");
            count(&field, a.results.len(), MAX_APPLY_SETTINGS)?;
            // In ascending byte order of the ids (the map's order), like check-in settings.
            for (id, r) in &a.results {
                // The id itself is not echoed: a bad id is reported as `results`.
                name(&field, id, MAX_SETTING_ID_LEN)?;
                text(&format!("{field}.{id}.reason"), &r.reason, MAX_TEXT_LEN)?;
            }
            if a.outcome == Outcome::Done && !a.results.is_empty() {
                return Err(MessageError::bad(
                    field,
                    "must be empty when the outcome is done (it lists settings not applied)",
                ));
            }
        }
        if f.wait_ms > MAX_WAIT_MS {
            return Err(MessageError::new(
                "out_of_range",
                "wait_ms",
                format!("must be at most {MAX_WAIT_MS}"),
            ));
        }
        Ok(f)
    }
    pub fn encode(&self) -> Vec<u8> {
        encode_json(self)
    }
}

/// One thing for the printer to do. `kind` says what; `data` is kind-specific (§7.4), never
/// `null` on the wire (missing instead). `id` and `kind` are non-empty tokens.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkItem {
    pub id: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub data: serde_json::Value,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Work {
    pub reply_to: String,
    pub items: Vec<WorkItem>,
}

impl Work {
    pub fn decode(plaintext: &[u8]) -> Result<Self, MessageError> {
        let w: Self = decode_json(plaintext, WORK)?;
        count("items", w.items.len(), MAX_WORK_ITEMS)?;
        for (n, item) in w.items.iter().enumerate() {
            name(&format!("items[{n}].id"), &item.id, MAX_TOKEN_LEN)?;
            name(&format!("items[{n}].kind"), &item.kind, MAX_TOKEN_LEN)?;
        }
        Ok(w)
    }
    pub fn encode(&self) -> Vec<u8> {
        encode_json(self)
    }
}
