//! check_in (0x02, printer → server): a printer's report.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::json::*;
use super::limits::*;
use super::*;

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

/// A setting's current value as reported. Secrets are never reported, only whether one is set
/// and, optionally, a verifier proving which one ([`crate::verifier`]; 64 lowercase hex digits,
/// only with `set: true`); certificates by fingerprint (64 lowercase hex digits) and expiry. A
/// `Text` value is at most [`MAX_SETTING_TEXT_LEN`] characters.
///
/// Deserialized by [`ReportedValue::from_json`] (the forms of §7.3), not by serde's untagged
/// matching: an object with a boolean `set` is a secret whatever else it holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ReportedValue {
    Bool(bool),
    Integer(i64),
    Text(String),
    Secret {
        set: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        verifier: Option<String>,
    },
    Certificate {
        sha256: String,
        not_after_ms: u64,
    },
}

impl ReportedValue {
    /// A secret reported only as set or not (no verifier).
    pub fn secret(set: bool) -> Self {
        Self::Secret {
            set,
            verifier: None,
        }
    }

    /// The form of §7.3 a JSON value has, or `None` (`bad_payload`, field `settings.<id>`).
    pub fn from_json(v: &serde_json::Value) -> Option<Self> {
        use serde_json::Value as J;
        match v {
            J::Bool(b) => Some(Self::Bool(*b)),
            J::Number(n) => n.as_i64().map(Self::Integer),
            J::String(s) => Some(Self::Text(s.clone())),
            J::Object(o) => {
                if let Some(J::Bool(set)) = o.get("set") {
                    let verifier = match o.get("verifier") {
                        None => None,
                        Some(J::String(s)) => Some(s.clone()),
                        Some(_) => return None,
                    };
                    return Some(Self::Secret {
                        set: *set,
                        verifier,
                    });
                }
                match (o.get("sha256"), o.get("not_after_ms").and_then(J::as_u64)) {
                    (Some(J::String(sha256)), Some(not_after_ms)) => Some(Self::Certificate {
                        sha256: sha256.clone(),
                        not_after_ms,
                    }),
                    _ => None,
                }
            }
            J::Null | J::Array(_) => None,
        }
    }
}

impl<'de> Deserialize<'de> for ReportedValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(deserializer)?;
        Self::from_json(&v).ok_or_else(|| serde::de::Error::custom(REPORTED_VALUE))
    }
}

impl CheckIn {
    pub fn decode(plaintext: &[u8]) -> Result<Self, MessageError> {
        let c: Self = decode_json(plaintext, CHECK_IN)?;
        c.check()?;
        Ok(c)
    }

    pub fn encode(&self) -> Vec<u8> {
        encode_json(self)
    }

    /// The limits, in the order of §7.2 (the first failure is reported).
    pub fn check(&self) -> Result<(), MessageError> {
        if self.seq == 0 {
            return Err(MessageError::new(
                "out_of_range",
                "seq",
                "must be at least 1",
            ));
        }
        safe("seq", Some(self.seq))?;
        safe("taken_at_ms", Some(self.taken_at_ms))?;
        if let Some(i) = &self.info {
            name("info.name", &i.name, MAX_TEXT_LEN)?;
            name("info.model", &i.model, MAX_TEXT_LEN)?;
            name("info.serial", &i.serial, MAX_TOKEN_LEN)?;
            name("info.firmware", &i.firmware, MAX_TOKEN_LEN)?;
            opt_text("info.region", &i.region, MAX_TOKEN_LEN)?;
            opt_text("info.language", &i.language, MAX_TOKEN_LEN)?;
        }
        if let Some(m) = &self.meters {
            for (meter, value) in m.named() {
                safe(&format!("meters.{meter}"), value)?;
            }
        }
        if let Some(supplies) = &self.supplies {
            count("supplies", supplies.len(), MAX_SUPPLIES)?;
            for (n, s) in supplies.iter().enumerate() {
                let f = |member: &str| format!("supplies[{n}].{member}");
                name(&f("id"), &s.id, MAX_TOKEN_LEN)?;
                opt_text(&f("colour"), &s.colour, MAX_TOKEN_LEN)?;
                opt_text(&f("part_number"), &s.part_number, MAX_TOKEN_LEN)?;
                if s.level_percent.is_some_and(|l| l > 100) {
                    return Err(MessageError::new(
                        "out_of_range",
                        f("level_percent"),
                        "must be from 0 to 100",
                    ));
                }
                safe(&f("capacity_pages"), s.capacity_pages)?;
                safe(&f("pages"), s.pages)?;
                if supplies[..n].iter().any(|o| o.id == s.id) {
                    return Err(MessageError::bad(f("id"), "supply ids must be unique"));
                }
            }
        }
        count("events", self.events.len(), MAX_EVENTS)?;
        for (n, e) in self.events.iter().enumerate() {
            safe(&format!("events[{n}].at_ms"), Some(e.at_ms))?;
            opt_text(&format!("events[{n}].code"), &e.code, MAX_TOKEN_LEN)?;
            opt_text(&format!("events[{n}].detail"), &e.detail, MAX_TEXT_LEN)?;
        }
        count("settings", self.settings.len(), MAX_SETTINGS)?;
        for (id, v) in &self.settings {
            // The id itself is not echoed: a bad id is reported as `settings`.
            name("settings", id, MAX_SETTING_ID_LEN)?;
            let field = format!("settings.{id}");
            match v {
                ReportedValue::Text(s) => text(&field, s, MAX_SETTING_TEXT_LEN)?,
                ReportedValue::Certificate {
                    sha256,
                    not_after_ms,
                } => {
                    if !is_lower_hex(sha256, 64) {
                        return Err(MessageError::bad(
                            format!("{field}.sha256"),
                            "must be 64 lowercase hex digits",
                        ));
                    }
                    safe(&format!("{field}.not_after_ms"), Some(*not_after_ms))?;
                }
                ReportedValue::Secret {
                    set,
                    verifier: Some(verifier),
                } => {
                    let field = format!("{field}.verifier");
                    if !set {
                        return Err(MessageError::bad(field, "only with \"set\": true"));
                    }
                    if !is_lower_hex(verifier, 64) {
                        return Err(MessageError::bad(field, "must be 64 lowercase hex digits"));
                    }
                }
                ReportedValue::Bool(_)
                | ReportedValue::Integer(_)
                | ReportedValue::Secret { verifier: None, .. } => {}
            }
        }
        Ok(())
    }
}
