//! The plaintexts of the printer ⇄ server messages carried in sealed bodies over HTTPS
//! (`docs/protocol.md` §7): check-ins (telemetry), their acknowledgements, fetching work, and
//! the proof of possession for re-enrolment.
//!
//! Plaintexts are UTF-8 JSON objects. Decoding checks the *shape*: types, the limits on every
//! string and list below, levels within 0–100. What needs the catalogue or the printer's stored
//! state (setting ids and values, counters going backwards) is checked by the server's domain
//! code. Members a receiver does not know are ignored (additions are compatible, §4); a
//! missing optional member means "not reported in this message".

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Longest free-text value (device name, event detail…), in characters.
pub const MAX_TEXT_LEN: usize = 200;
/// Longest short token (ids, codes, part numbers, firmware), in characters.
pub const MAX_TOKEN_LEN: usize = 64;
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
    fn new(code: &'static str, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code,
            field: field.into(),
            message: message.into(),
        }
    }
}

fn decode_json<'a, T: Deserialize<'a>>(plaintext: &'a [u8]) -> Result<T, MessageError> {
    serde_json::from_slice(plaintext).map_err(|e| {
        // serde_json's message names the line/column and the expected type, never the input.
        MessageError::new("bad_payload", "", e.to_string())
    })
}

fn encode_json<T: Serialize>(value: &T) -> Vec<u8> {
    // Serializing these plain structs (string keys, no maps with non-string keys) cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

fn text(field: &str, value: &str, max: usize) -> Result<(), MessageError> {
    if value.chars().count() > max {
        return Err(MessageError::new(
            "too_long",
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(MessageError::new(
            "bad_payload",
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

fn opt_text(field: &str, value: &Option<String>, max: usize) -> Result<(), MessageError> {
    value.as_deref().map_or(Ok(()), |v| text(field, v, max))
}

fn count(field: &str, len: usize, max: usize) -> Result<(), MessageError> {
    if len > max {
        return Err(MessageError::new(
            "too_many",
            field,
            format!("at most {max} entries"),
        ));
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------------
// check_in (0x02, printer → server)
// ------------------------------------------------------------------------------------------------

/// A printer's report. `seq` is the printer's report number: strictly increasing per enrolment,
/// so a report retried after a lost acknowledgement is recognised and stored once.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckIn {
    pub seq: u64,
    /// When the printer took the readings (its clock, milliseconds).
    pub taken_at_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<DeviceInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meters: Option<Meters>,
    /// The full list of supplies when present (a supply not listed is gone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supplies: Option<Vec<Supply>>,
    /// Events since the previous check-in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<Event>,
    /// Current values by catalogue id; only changed ones need to be sent.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub settings: BTreeMap<String, ReportedValue>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    pub name: String,
    pub model: String,
    pub serial: String,
    pub firmware: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    pub capabilities: Capabilities,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    pub colour: bool,
    pub duplex: bool,
    pub scan: bool,
    pub fax: bool,
}

/// Lifetime counters. Each only ever grows; `None`: the printer has no such counter.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meters {
    pub total_impressions: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mono_impressions: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub colour_impressions: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub simplex_sheets: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplex_sheets: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scans: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faxes_sent: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faxes_received: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jams: Option<u64>,
}

impl Meters {
    /// Every counter by its JSON name, for checks that treat them alike.
    pub fn named(&self) -> [(&'static str, Option<u64>); 9] {
        [
            ("total_impressions", Some(self.total_impressions)),
            ("mono_impressions", self.mono_impressions),
            ("colour_impressions", self.colour_impressions),
            ("simplex_sheets", self.simplex_sheets),
            ("duplex_sheets", self.duplex_sheets),
            ("scans", self.scans),
            ("faxes_sent", self.faxes_sent),
            ("faxes_received", self.faxes_received),
            ("jams", self.jams),
        ]
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SupplyKind {
    Toner,
    Ink,
    Drum,
    Fuser,
    TransferBelt,
    WasteToner,
    Staples,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SupplyState {
    Ok,
    Low,
    VeryLow,
    Empty,
    Missing,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Supply {
    /// The printer's name for the slot, stable across replacements (e.g. `toner-black`).
    pub id: String,
    pub kind: SupplyKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub colour: Option<String>,
    /// 0–100; `None` when the printer cannot tell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level_percent: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_pages: Option<u64>,
    /// Pages printed with the supply now installed (restarts when it is replaced).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pages: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part_number: Option<String>,
    pub state: SupplyState,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Jam,
    Error,
    CoverOpen,
    SupplyReplaced,
    SupplyLow,
    Restarted,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub at_ms: u64,
    pub kind: EventKind,
    /// The printer's own code (e.g. `13.B2.D1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A setting's current value as reported. Secrets are never reported, only whether one is set;
/// certificates by fingerprint and expiry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ReportedValue {
    Bool(bool),
    Integer(i64),
    Text(String),
    Secret { set: bool },
    Certificate { sha256: String, not_after_ms: u64 },
}

impl CheckIn {
    pub fn decode(plaintext: &[u8]) -> Result<Self, MessageError> {
        let c: Self = decode_json(plaintext)?;
        c.check()?;
        Ok(c)
    }

    pub fn encode(&self) -> Vec<u8> {
        encode_json(self)
    }

    /// The shape limits (module docs).
    pub fn check(&self) -> Result<(), MessageError> {
        if let Some(i) = &self.info {
            text("info.name", &i.name, MAX_TEXT_LEN)?;
            text("info.model", &i.model, MAX_TEXT_LEN)?;
            text("info.serial", &i.serial, MAX_TOKEN_LEN)?;
            text("info.firmware", &i.firmware, MAX_TOKEN_LEN)?;
            opt_text("info.region", &i.region, MAX_TOKEN_LEN)?;
            opt_text("info.language", &i.language, MAX_TOKEN_LEN)?;
        }
        if let Some(supplies) = &self.supplies {
            count("supplies", supplies.len(), MAX_SUPPLIES)?;
            for (n, s) in supplies.iter().enumerate() {
                let f = |name: &str| format!("supplies[{n}].{name}");
                text(&f("id"), &s.id, MAX_TOKEN_LEN)?;
                opt_text(&f("colour"), &s.colour, MAX_TOKEN_LEN)?;
                opt_text(&f("part_number"), &s.part_number, MAX_TOKEN_LEN)?;
                if s.level_percent.is_some_and(|l| l > 100) {
                    return Err(MessageError::new(
                        "out_of_range",
                        f("level_percent"),
                        "must be from 0 to 100",
                    ));
                }
                if supplies[..n].iter().any(|o| o.id == s.id) {
                    return Err(MessageError::new(
                        "bad_payload",
                        f("id"),
                        "supply ids must be unique",
                    ));
                }
            }
        }
        count("events", self.events.len(), MAX_EVENTS)?;
        for (n, e) in self.events.iter().enumerate() {
            opt_text(&format!("events[{n}].code"), &e.code, MAX_TOKEN_LEN)?;
            opt_text(&format!("events[{n}].detail"), &e.detail, MAX_TEXT_LEN)?;
        }
        count("settings", self.settings.len(), MAX_SETTINGS)?;
        for (id, v) in &self.settings {
            text("settings", id, MAX_TOKEN_LEN)?;
            let field = format!("settings.{id}");
            match v {
                ReportedValue::Text(s) => text(&field, s, MAX_TEXT_LEN)?,
                ReportedValue::Certificate { sha256, .. }
                    if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) =>
                {
                    return Err(MessageError::new(
                        "bad_payload",
                        format!("{field}.sha256"),
                        "must be 64 hex digits",
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

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
        decode_json(plaintext)
    }
    pub fn encode(&self) -> Vec<u8> {
        encode_json(self)
    }
}

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
        let f: Self = decode_json(plaintext)?;
        count("acks", f.acks.len(), MAX_WORK_ITEMS)?;
        for (n, a) in f.acks.iter().enumerate() {
            text(&format!("acks[{n}].id"), &a.id, MAX_TOKEN_LEN)?;
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

/// One thing for the printer to do. `kind` says what; `data` is kind-specific (§7.4).
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
        let w: Self = decode_json(plaintext)?;
        count("items", w.items.len(), MAX_WORK_ITEMS)?;
        Ok(w)
    }
    pub fn encode(&self) -> Vec<u8> {
        encode_json(self)
    }
}

// ------------------------------------------------------------------------------------------------
// re_enrol (0x06, printer → server, inside an enrolment request)
// ------------------------------------------------------------------------------------------------

/// Sealed with the printer's *current* key: "I, printer `printer_id`, move to `new_public_key`."
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReEnrol {
    pub printer_id: String,
    /// 64 hex digits.
    pub new_public_key: String,
}

impl ReEnrol {
    pub fn decode(plaintext: &[u8]) -> Result<Self, MessageError> {
        let r: Self = decode_json(plaintext)?;
        text("printer_id", &r.printer_id, MAX_TOKEN_LEN)?;
        text("new_public_key", &r.new_public_key, MAX_TOKEN_LEN)?;
        Ok(r)
    }
    pub fn encode(&self) -> Vec<u8> {
        encode_json(self)
    }
}

/// Hex of a message id, as used in `reply_to`.
pub fn message_id_hex(id: &crate::MessageId) -> String {
    id.0.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> CheckIn {
        CheckIn {
            seq: 7,
            taken_at_ms: 1_767_225_600_000,
            info: None,
            meters: Some(Meters {
                total_impressions: 1200,
                mono_impressions: Some(1200),
                ..Meters::default()
            }),
            supplies: Some(vec![Supply {
                id: "toner-black".into(),
                kind: SupplyKind::Toner,
                colour: Some("black".into()),
                level_percent: Some(64),
                capacity_pages: Some(6000),
                pages: Some(2160),
                part_number: Some("CF287A".into()),
                state: SupplyState::Ok,
            }]),
            events: vec![],
            settings: BTreeMap::from([
                ("net.telnet.enabled".to_string(), ReportedValue::Bool(false)),
                (
                    "sec.ews.password".to_string(),
                    ReportedValue::Secret { set: true },
                ),
            ]),
        }
    }

    #[test]
    fn check_in_round_trips() {
        let c = sample();
        assert_eq!(CheckIn::decode(&c.encode()).unwrap(), c);
    }

    #[test]
    fn unknown_members_are_ignored() {
        let v = br#"{"seq":1,"taken_at_ms":5,"future":{"x":1}}"#;
        assert_eq!(CheckIn::decode(v).unwrap().seq, 1);
    }

    #[test]
    fn shape_errors_name_the_field() {
        let mut c = sample();
        c.supplies.as_mut().unwrap()[0].level_percent = Some(101);
        let e = CheckIn::decode(&c.encode()).unwrap_err();
        assert_eq!(
            (e.code, e.field.as_str()),
            ("out_of_range", "supplies[0].level_percent")
        );

        let mut c = sample();
        c.supplies.as_mut().unwrap()[0].part_number = Some("x".repeat(65));
        assert_eq!(CheckIn::decode(&c.encode()).unwrap_err().code, "too_long");

        let e = CheckIn::decode(br#"{"seq":-1,"taken_at_ms":5}"#).unwrap_err();
        assert_eq!(e.code, "bad_payload");
        let e = CheckIn::decode(b"\xff\xfe").unwrap_err();
        assert_eq!(e.code, "bad_payload");
        let e = Fetch::decode(br#"{"wait_ms":25001}"#).unwrap_err();
        assert_eq!((e.code, e.field.as_str()), ("out_of_range", "wait_ms"));
    }

    #[test]
    fn a_sample_check_in_fits_in_a_kibibyte() {
        assert!(sample().encode().len() < 1024);
    }
}
