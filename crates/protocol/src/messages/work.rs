//! fetch (0x04, printer → server) and work (0x05, server → printer).

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
