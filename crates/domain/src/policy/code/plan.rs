//! A parsed file against the policy's current version: what to send and what would change.
//!
//! A file holds no secret values and no certificates, only references, so applying it can only
//! *keep* what the server already has: a `{ secret = "set" }` becomes `{"keep": true}` when the
//! current version has that secret, a certificate reference when the current version has the
//! certificate with that fingerprint. Anything else is refused, naming the line and the item —
//! except secrets whose new value the caller gives separately (`--secret ID=FILE`).

use super::render::{item_text, quoted};
use super::{CodeError, CodeItem, ParsedCode, PolicyCode};
use crate::catalogue::{Catalogue, SettingValue};
use crate::redact::Redacted;
use serde_json::{json, Value as J};
use std::collections::BTreeMap;
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    Added,
    Changed,
    Removed,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Added => "added",
            ChangeKind::Changed => "changed",
            ChangeKind::Removed => "removed",
        }
    }
}

/// One difference: a setting id, or `mode` / `description`. `before` and `after` are the items
/// as a file writes them, so a secret shows only as `{ secret = "set" }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub item: String,
    pub kind: ChangeKind,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// What applying a file sends, and what it changes.
#[derive(Clone, PartialEq, Eq)]
pub struct Plan {
    /// The API request's `settings` (values, `{"keep": true}`, and `{"secret": …}` for the
    /// secrets given separately).
    pub settings: BTreeMap<String, J>,
    /// In order: mode, description, then settings by id.
    pub changes: Vec<Change>,
}

/// Prints the ids only: `settings` may hold new secret values.
impl fmt::Debug for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plan")
            .field("settings", &self.settings.keys().collect::<Vec<_>>())
            .field("changes", &self.changes)
            .finish()
    }
}

const NEW_SECRET: &str = "{ secret = \"set\" } (new value)";

fn change(item: &str, kind: ChangeKind, before: Option<String>, after: Option<String>) -> Change {
    Change {
        item: item.to_string(),
        kind,
        before,
        after,
    }
}

/// Plans applying `file` over `current` (`None`: the policy does not exist yet). `new_secrets`
/// are secret values given apart from the file, each for a `{ secret = "set" }` of the file;
/// they are checked against the catalogue (errors never hold the value).
pub fn plan(
    file: &ParsedCode,
    current: Option<&PolicyCode>,
    new_secrets: &BTreeMap<String, Redacted<String>>,
    catalogue: &Catalogue,
) -> Result<Plan, CodeError> {
    for (id, value) in new_secrets {
        let line = file.line(id);
        if file.code.settings.get(id) != Some(&CodeItem::Secret) {
            return Err(CodeError::item(
                line,
                id,
                "a value was given with --secret, but the file does not reference this secret",
            ));
        }
        if let Some(setting) = catalogue.get(id) {
            setting
                .validate_value(&SettingValue::Text(value.expose().clone()))
                .map_err(|e| CodeError::item(line, id, format!("the given value {}", e.message)))?;
        }
    }
    let mut settings = BTreeMap::new();
    for (id, item) in &file.code.settings {
        let line = file.line(id);
        let now = current.and_then(|c| c.settings.get(id));
        let sent = match item {
            CodeItem::Bool(b) => json!(b),
            CodeItem::Integer(n) => json!(n),
            CodeItem::Text(s) => json!(s),
            CodeItem::Secret => match (new_secrets.get(id), now) {
                (Some(v), _) => json!({ "secret": v.expose() }),
                (None, Some(CodeItem::Secret)) => json!({ "keep": true }),
                (None, _) => {
                    return Err(CodeError::item(
                        line,
                        id,
                        format!("the current version has no secret here to keep; give its value with --secret {id}=FILE"),
                    ))
                }
            },
            CodeItem::Certificate { sha256 } => match now {
                Some(CodeItem::Certificate { sha256: have }) if have == sha256 => {
                    json!({ "keep": true })
                }
                Some(CodeItem::Certificate { sha256: have }) => {
                    return Err(CodeError::item(
                        line,
                        id,
                        format!("the file names certificate sha256:{sha256} but the current version has sha256:{have}; a file cannot carry a certificate: upload it through the API, then export again"),
                    ))
                }
                _ => {
                    return Err(CodeError::item(
                        line,
                        id,
                        format!("the current version has no certificate sha256:{sha256} to keep; a file cannot carry a certificate: upload it through the API, then export again"),
                    ))
                }
            },
        };
        settings.insert(id.clone(), sent);
    }
    Ok(Plan {
        settings,
        changes: changes(&file.code, current, new_secrets),
    })
}

fn changes(
    file: &PolicyCode,
    current: Option<&PolicyCode>,
    new_secrets: &BTreeMap<String, Redacted<String>>,
) -> Vec<Change> {
    let mut out = Vec::new();
    let empty = BTreeMap::new();
    let before = current.map(|c| &c.settings).unwrap_or(&empty);
    if let Some(c) = current {
        if c.mode != file.mode {
            out.push(change(
                "mode",
                ChangeKind::Changed,
                Some(quoted(c.mode.as_str())),
                Some(quoted(file.mode.as_str())),
            ));
        }
        let kind = match (&c.description, &file.description) {
            (None, Some(_)) => Some(ChangeKind::Added),
            (Some(_), None) => Some(ChangeKind::Removed),
            (Some(a), Some(b)) if a != b => Some(ChangeKind::Changed),
            _ => None,
        };
        if let Some(kind) = kind {
            out.push(change(
                "description",
                kind,
                c.description.as_deref().map(quoted),
                file.description.as_deref().map(quoted),
            ));
        }
    }
    let mut ids: Vec<&String> = before.keys().chain(file.settings.keys()).collect();
    ids.sort();
    ids.dedup();
    for id in ids {
        let fresh = new_secrets.contains_key(id.as_str());
        let after_text = |i: &CodeItem| {
            if fresh {
                NEW_SECRET.to_string()
            } else {
                item_text(i)
            }
        };
        match (before.get(id), file.settings.get(id)) {
            (None, Some(a)) => out.push(change(id, ChangeKind::Added, None, Some(after_text(a)))),
            (Some(b), None) => out.push(change(id, ChangeKind::Removed, Some(item_text(b)), None)),
            (Some(b), Some(a)) if b != a || fresh => out.push(change(
                id,
                ChangeKind::Changed,
                Some(item_text(b)),
                Some(after_text(a)),
            )),
            _ => {}
        }
    }
    out
}
