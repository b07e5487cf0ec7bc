//! Decoding: syntax, top level, repeated names, structure, types (docs/protocol.md §7.2).

use std::collections::HashSet;

use serde::de::{self, DeserializeOwned};
use serde::{Deserialize, Serialize};

use super::MessageError;

// ------------------------------------------------------------------------------------------------
// Decoding: syntax, top level, repeated names, structure, types (docs/protocol.md §7.2)
// ------------------------------------------------------------------------------------------------

/// `path` + `.name` (just `name` at the top level).
pub(super) fn member_path(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

pub(super) fn index_path(path: &str, index: usize) -> String {
    format!("{path}[{index}]")
}

/// A plaintext as parsed, in document order and with any repeated member names: what the checks
/// serde's derives cannot make need (which kind of value is where). Scalars keep no value.
pub(super) enum Json {
    Null,
    String,
    /// A boolean or a number.
    Other,
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> de::Visitor<'de> for V {
            type Value = Json;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_bool<E>(self, _: bool) -> Result<Json, E> {
                Ok(Json::Other)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Json, E> {
                Ok(Json::Other)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Json, E> {
                Ok(Json::Other)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Json, E> {
                Ok(Json::Other)
            }
            fn visit_str<E>(self, _: &str) -> Result<Json, E> {
                Ok(Json::String)
            }
            fn visit_unit<E>(self) -> Result<Json, E> {
                Ok(Json::Null)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Json::Array(items))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
                let mut members = Vec::new();
                while let Some((name, value)) = map.next_entry::<String, Json>()? {
                    members.push((name, value));
                }
                Ok(Json::Object(members))
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// The first member (in document order, depth first) whose name repeats an earlier member of
/// the same object.
pub(super) fn no_repeated_names(value: &Json, path: &str) -> Result<(), MessageError> {
    match value {
        Json::Object(members) => {
            let mut seen = HashSet::with_capacity(members.len());
            for (name, _) in members {
                if !seen.insert(name.as_str()) {
                    return Err(MessageError::bad(
                        member_path(path, name),
                        "repeats a member name of the same object",
                    ));
                }
            }
            for (name, member) in members {
                no_repeated_names(member, &member_path(path, name))?;
            }
        }
        Json::Array(items) => {
            for (n, item) in items.iter().enumerate() {
                no_repeated_names(item, &index_path(path, n))?;
            }
        }
        Json::Null | Json::String | Json::Other => {}
    }
    Ok(())
}

/// What the structure check expects at a place of a plaintext.
#[derive(Clone, Copy)]
pub(super) enum Shape {
    /// A JSON object with these members (others are ignored).
    Object(&'static [Member]),
    /// When it is a list (anything else is a type error), each entry.
    ListOf(&'static Shape),
    /// When it is an object (anything else is a type error), each member's value.
    MapOf(&'static Shape),
    /// `settings`: when it is an object, no value is `null` or a list.
    Settings,
    /// An enumeration: a string.
    Enum,
    /// Checked by the types alone.
    Value,
}

pub(super) struct Member {
    pub(super) name: &'static str,
    pub(super) required: bool,
    pub(super) shape: Shape,
}

pub(super) const fn req(name: &'static str, shape: Shape) -> Member {
    Member {
        name,
        required: true,
        shape,
    }
}

pub(super) const fn opt(name: &'static str, shape: Shape) -> Member {
    Member {
        name,
        required: false,
        shape,
    }
}

use Shape::{Enum, Value as V};

pub(super) const CAPABILITIES: &[Member] = &[
    req("colour", V),
    req("duplex", V),
    req("scan", V),
    req("fax", V),
];
pub(super) const DEVICE_INFO: &[Member] = &[
    req("name", V),
    req("model", V),
    req("serial", V),
    req("firmware", V),
    opt("region", V),
    opt("language", V),
    req("capabilities", Shape::Object(CAPABILITIES)),
];
pub(super) const METERS: &[Member] = &[
    req("total_impressions", V),
    opt("mono_impressions", V),
    opt("colour_impressions", V),
    opt("simplex_sheets", V),
    opt("duplex_sheets", V),
    opt("scans", V),
    opt("faxes_sent", V),
    opt("faxes_received", V),
    opt("jams", V),
];
pub(super) const SUPPLY: Shape = Shape::Object(&[
    req("id", V),
    req("kind", Enum),
    opt("colour", V),
    opt("level_percent", V),
    opt("capacity_pages", V),
    opt("pages", V),
    opt("part_number", V),
    req("state", Enum),
]);
pub(super) const EVENT: Shape = Shape::Object(&[
    req("at_ms", V),
    req("kind", Enum),
    opt("code", V),
    opt("detail", V),
]);
pub(super) const CHECK_IN: &[Member] = &[
    req("seq", V),
    req("taken_at_ms", V),
    opt("info", Shape::Object(DEVICE_INFO)),
    opt("meters", Shape::Object(METERS)),
    opt("supplies", Shape::ListOf(&SUPPLY)),
    opt("events", Shape::ListOf(&EVENT)),
    opt("settings", Shape::Settings),
];
pub(super) const CHECK_IN_ACK: &[Member] = &[
    req("reply_to", V),
    req("seq", V),
    req("status", Enum),
    opt("code", V),
    opt("field", V),
    opt("message", V),
];
pub(super) const SETTING_RESULT: Shape = Shape::Object(&[req("outcome", Enum), req("reason", V)]);
pub(super) const WORK_ACK: Shape = Shape::Object(&[
    req("id", V),
    req("outcome", Enum),
    opt("reason", V),
    opt("results", Shape::MapOf(&SETTING_RESULT)),
]);
pub(super) const FETCH: &[Member] = &[opt("acks", Shape::ListOf(&WORK_ACK)), opt("wait_ms", V)];
pub(super) const WORK_ITEM: Shape = Shape::Object(&[req("id", V), req("kind", V), opt("data", V)]);
pub(super) const WORK: &[Member] = &[req("reply_to", V), req("items", Shape::ListOf(&WORK_ITEM))];
pub(super) const RE_ENROL: &[Member] = &[req("printer_id", V), req("new_public_key", V)];

/// The structure check: objects where structs are expected, with their required members (in
/// the order of the tables of §7), no member `null`; then each member in document order.
pub(super) fn structure(value: &Json, shape: Shape, path: &str) -> Result<(), MessageError> {
    match shape {
        Shape::Object(members) => {
            let Json::Object(present) = value else {
                return Err(MessageError::bad(path, "must be a JSON object"));
            };
            for m in members {
                if m.required && !present.iter().any(|(name, _)| name == m.name) {
                    return Err(MessageError::bad(member_path(path, m.name), "is required"));
                }
            }
            for (name, member) in present {
                let Some(m) = members.iter().find(|m| m.name == name) else {
                    continue; // unknown members are ignored
                };
                let p = member_path(path, name);
                if matches!(member, Json::Null) {
                    return Err(MessageError::bad(p, "must not be null (omit it instead)"));
                }
                structure(member, m.shape, &p)?;
            }
        }
        Shape::ListOf(entry) => {
            if let Json::Array(items) = value {
                for (n, item) in items.iter().enumerate() {
                    structure(item, *entry, &index_path(path, n))?;
                }
            }
        }
        Shape::MapOf(entry) => {
            if let Json::Object(members) = value {
                for (name, member) in members {
                    structure(member, *entry, &member_path(path, name))?;
                }
            }
        }
        Shape::Settings => {
            if let Json::Object(entries) = value {
                for (id, v) in entries {
                    if matches!(v, Json::Null | Json::Array(_)) {
                        return Err(MessageError::bad(member_path(path, id), REPORTED_VALUE));
                    }
                }
            }
        }
        Shape::Enum => {
            if !matches!(value, Json::String) {
                return Err(MessageError::bad(path, "must be a string"));
            }
        }
        Shape::Value => {}
    }
    Ok(())
}

pub(super) const REPORTED_VALUE: &str =
    "must be true, false, an i64 integer, a string, a secret or a certificate (§7.3)";

/// A `serde_path_to_error` path in the form of `MessageError::field`.
pub(super) fn path_string(path: &serde_path_to_error::Path) -> String {
    let mut out = String::new();
    for segment in path {
        match segment {
            serde_path_to_error::Segment::Seq { index } => out = index_path(&out, *index),
            serde_path_to_error::Segment::Map { key } => out = member_path(&out, key),
            serde_path_to_error::Segment::Enum { variant } => out = member_path(&out, variant),
            serde_path_to_error::Segment::Unknown => out = member_path(&out, "?"),
        }
    }
    out
}

/// The message of a type error without the input: serde's messages have the form
/// "invalid type: <the value>, expected <what>" (or "unknown variant `<the value>`, expected
/// one of …"); only what was expected is kept.
pub(super) fn type_message(e: &serde_json::Error) -> String {
    let s = e.to_string();
    if s.starts_with(REPORTED_VALUE) {
        return REPORTED_VALUE.to_string();
    }
    match s.rsplit_once(", expected ") {
        Some((_, want)) => {
            let want = want.rsplit_once(" at line ").map_or(want, |(w, _)| w);
            format!("has the wrong type or value: expected {want}")
        }
        None => "has the wrong type or value".to_string(),
    }
}

/// Decodes a plaintext whose top level has the members `members`: every check of §7.2 but the
/// limits (each type's `check`).
pub(super) fn decode_json<T: DeserializeOwned>(
    plaintext: &[u8],
    members: &'static [Member],
) -> Result<T, MessageError> {
    // serde_json's message names the line/column and what it expected, never the input. Its
    // recursion limit is MAX_NESTING.
    let json: Json =
        serde_json::from_slice(plaintext).map_err(|e| MessageError::bad("", e.to_string()))?;
    if !matches!(json, Json::Object(_)) {
        return Err(MessageError::bad("", "must be a JSON object"));
    }
    no_repeated_names(&json, "")?;
    structure(&json, Shape::Object(members), "")?;
    let mut de = serde_json::Deserializer::from_slice(plaintext);
    let value: T = serde_path_to_error::deserialize(&mut de)
        .map_err(|e| MessageError::bad(path_string(e.path()), type_message(e.inner())))?;
    de.end().map_err(|e| MessageError::bad("", e.to_string()))?;
    Ok(value)
}

pub(super) fn encode_json<T: Serialize>(value: &T) -> Vec<u8> {
    // Serializing these plain structs (string keys, no maps with non-string keys) cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}
