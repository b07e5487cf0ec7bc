//! Policies as code: a policy as a TOML document that can live in version control.
//!
//! ```toml
//! name = "Baseline"
//! description = "Every printer"
//! mode = "remediate"
//!
//! [settings]
//! "network.telnet.enabled" = false
//! "filesystem.stored_jobs.retention" = 24
//! "security.ews.admin_password" = { secret = "set" }
//! "security.cert.ca" = { certificate = "sha256:9f86d0…" }
//! ```
//!
//! Values are typed as TOML (bool, integer, string). Secrets and certificates are only
//! *referenced*: a secret by its setting id (`{ secret = "set" }`, never its value), a
//! certificate by its fingerprint. So a file can be shared and reviewed without leaking
//! anything, and applying it carries the server's own secret or certificate into the next
//! version (`{"keep": true}`) — see [`plan`].
//!
//! - [`render`]: a policy → its canonical text (keys sorted, so an export is deterministic and
//!   export → apply → export is byte-identical).
//! - [`parse`]: text → [`ParsedCode`], every error naming the line and the item; then
//!   [`ParsedCode::validate`] against the catalogue.
//! - [`plan`]: a parsed file against the current version → the API request's settings and the
//!   item-by-item difference.

mod parse;
mod plan;
mod render;
#[cfg(test)]
mod tests;

pub use parse::{parse, ParsedCode};
pub use plan::{plan, Change, ChangeKind, Plan};
pub use render::render;

use super::document::{PolicyItem, PolicyItems, PolicyMode};
use crate::catalogue::SettingValue;
use std::collections::BTreeMap;

/// One item of a policy file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CodeItem {
    Bool(bool),
    Integer(i64),
    /// Enum and string settings alike: the catalogue tells them apart.
    Text(String),
    /// A reference to the secret the server holds for this setting; never a value.
    Secret,
    /// A certificate by the SHA-256 of its DER, lower-case hex (what printers report).
    Certificate {
        sha256: String,
    },
}

/// A policy as a file holds it: no id, no version, no secret values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyCode {
    pub name: String,
    pub description: Option<String>,
    pub mode: PolicyMode,
    pub settings: BTreeMap<String, CodeItem>,
}

impl PolicyCode {
    /// A stored version as a file: secrets become references, certificates fingerprints.
    pub fn from_items(
        name: &str,
        description: Option<&str>,
        mode: PolicyMode,
        items: &PolicyItems,
    ) -> Self {
        let settings = items
            .iter()
            .map(|(id, item)| {
                let code = match item {
                    PolicyItem::Value { value } => match value {
                        SettingValue::Bool(b) => CodeItem::Bool(*b),
                        SettingValue::Integer(n) => CodeItem::Integer(*n),
                        SettingValue::Enum(s) | SettingValue::Text(s) => CodeItem::Text(s.clone()),
                        // Never stored as a plain value; if it were, it still leaves only as a
                        // reference.
                        SettingValue::Secret(_) => CodeItem::Secret,
                    },
                    PolicyItem::Secret { .. } => CodeItem::Secret,
                    PolicyItem::Certificate { certificate, .. } => CodeItem::Certificate {
                        sha256: certificate.sha256.to_ascii_lowercase(),
                    },
                };
                (id.clone(), code)
            })
            .collect();
        Self {
            name: name.to_string(),
            description: description.map(str::to_string),
            mode,
            settings,
        }
    }
}

/// Why a policy file was refused. Every error names the line (1-based); item errors also name
/// the item (a setting id, or `name`, `description`, `mode`, `settings`). Messages never hold a
/// secret's value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    /// Not TOML, or not the shape of a policy file; `item` is the key written on that line,
    /// when there is one.
    #[error("line {line}: {}{message}", .item.as_deref().map(|i| format!("{i}: ")).unwrap_or_default())]
    Syntax {
        line: usize,
        item: Option<String>,
        message: String,
    },
    /// One item is wrong.
    #[error("line {line}: {item}: {message}")]
    Item {
        line: usize,
        item: String,
        message: String,
    },
}

impl CodeError {
    pub(crate) fn item(line: usize, item: &str, message: impl Into<String>) -> Self {
        Self::Item {
            line,
            item: item.to_string(),
            message: message.into(),
        }
    }

    /// A stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Syntax { .. } => "policy_file_syntax",
            Self::Item { .. } => "policy_file_item",
        }
    }

    pub fn line(&self) -> usize {
        match self {
            Self::Syntax { line, .. } | Self::Item { line, .. } => *line,
        }
    }

    /// The item the error is about, if it is about one.
    pub fn item_id(&self) -> Option<&str> {
        match self {
            Self::Item { item, .. } => Some(item),
            Self::Syntax { item, .. } => item.as_deref(),
        }
    }
}
