//! The work kind `apply_settings` (docs/protocol.md §7.8): the `data` of the work item, and the
//! secrets sealed inside it (purpose `settings`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use super::json::*;
use super::limits::*;
use super::*;

/// The work item kind.
pub const APPLY_SETTINGS: &str = "apply_settings";
/// The `SealedToDevice` purpose of the secrets of an `apply_settings` item.
pub const SETTINGS_PURPOSE: &str = "settings";

/// A non-secret value to apply. Strings are text of at most [`MAX_SETTING_TEXT_LEN`] characters
/// or PEM text (a CA certificate) of at most [`MAX_PEM_LEN`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ApplyValue {
    Bool(bool),
    Integer(i64),
    Text(String),
}

/// The `data` of an `apply_settings` work item: set these settings, as version `version` of
/// policy `policy`. Secrets travel only in `sealed` (hex of a sealed body, type
/// `sealed_to_device`, purpose [`SETTINGS_PURPOSE`], content [`ApplySecrets`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplySettings {
    pub policy: String,
    pub version: u64,
    pub settings: BTreeMap<String, ApplyValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed: Option<String>,
}

const APPLY: &[Member] = &[
    req("policy", Shape::Value),
    req("version", Shape::Value),
    req("settings", Shape::Value),
    opt("sealed", Shape::Value),
];

impl ApplySettings {
    /// Decodes and checks a work item's `data` (fields are relative to `data`). A work item's
    /// data has passed the syntax and repeated-name checks of its `work` already.
    pub fn decode(data: &serde_json::Value) -> Result<Self, MessageError> {
        Self::decode_bytes(&serde_json::to_vec(data).unwrap_or_default())
    }

    /// Decodes and checks `data` given as JSON text.
    pub fn decode_bytes(data: &[u8]) -> Result<Self, MessageError> {
        let a: Self = decode_json(data, APPLY)?;
        a.check()?;
        Ok(a)
    }

    /// The item's `data`.
    pub fn to_data(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    /// The limits, in the order of §7.8.
    pub fn check(&self) -> Result<(), MessageError> {
        name("policy", &self.policy, MAX_TOKEN_LEN)?;
        safe("version", Some(self.version))?;
        count("settings", self.settings.len(), MAX_APPLY_SETTINGS)?;
        for (id, v) in &self.settings {
            name("settings", id, MAX_SETTING_ID_LEN)?;
            if let ApplyValue::Text(s) = v {
                setting_string(&format!("settings.{id}"), s)?;
            }
        }
        if let Some(sealed) = &self.sealed {
            let hex_ok = !sealed.is_empty()
                && sealed.len() % 2 == 0
                && sealed.len() <= 2 * crate::MAX_BODY_LEN
                && is_lower_hex(sealed, sealed.len());
            if !hex_ok {
                return Err(MessageError::bad(
                    "sealed",
                    "must be a sealed body in lowercase hex",
                ));
            }
        }
        Ok(())
    }
}

/// The secrets of an `apply_settings` item: setting id → value (passwords, an ID certificate as
/// PEM text of certificate and private key). `Debug` shows only the ids; the values are wiped
/// when dropped.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct ApplySecrets {
    values: BTreeMap<String, String>,
}

impl std::fmt::Debug for ApplySecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApplySecrets")
            .field("ids", &self.values.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Drop for ApplySecrets {
    fn drop(&mut self) {
        for v in self.values.values_mut() {
            v.zeroize();
        }
    }
}

impl ApplySecrets {
    pub fn new(values: BTreeMap<String, String>) -> Self {
        Self { values }
    }

    /// Setting id → secret value, in ascending order of the ids.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn get(&self, id: &str) -> Option<&str> {
        self.values.get(id).map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The `content` of the `settings` payload: a UTF-8 JSON object, id → string.
    pub fn encode(&self) -> Vec<u8> {
        encode_json(&self.values)
    }

    /// Decodes and checks the `content` of a `settings` payload (fields are setting ids).
    /// Errors never contain a value.
    pub fn decode(content: &[u8]) -> Result<Self, MessageError> {
        let values: BTreeMap<String, String> = decode_json(content, &[])?;
        let s = Self { values };
        count("", s.values.len(), MAX_APPLY_SETTINGS)?;
        for (id, v) in &s.values {
            name("", id, MAX_SETTING_ID_LEN)?;
            setting_string(id, v)?;
        }
        Ok(s)
    }
}
