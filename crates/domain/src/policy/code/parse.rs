//! Text → [`ParsedCode`]. Two steps, so that a file the server wrote can be read even when this
//! program's catalogue is older than the server's: [`parse`] checks TOML and the file's shape
//! (every error with its line, from toml's spans), [`ParsedCode::validate`] checks the items
//! against the catalogue.

use super::{CodeError, CodeItem, PolicyCode};
use crate::catalogue::{Catalogue, SettingType, SettingValue};
use crate::policy::document::{PolicyMode, MAX_ITEMS};
use crate::validation;
use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

/// A parsed file, with the line of each item for the messages of later checks (the catalogue
/// here, the server's answer and the secrets and certificates it has in the CLI).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedCode {
    pub code: PolicyCode,
    /// Line (1-based) of each setting id, and of `name`, `description` and `mode`.
    pub lines: BTreeMap<String, usize>,
}

impl ParsedCode {
    /// The line of an item; 1 (the document) for one the file does not hold.
    pub fn line(&self, item: &str) -> usize {
        self.lines.get(item).copied().unwrap_or(1)
    }

    /// Checks every setting against the catalogue: it exists, a secret is a secret reference, a
    /// certificate a fingerprint, and a value fits the setting's type, enum values, range,
    /// pattern and length. The first error in file order is returned.
    pub fn validate(&self, catalogue: &Catalogue) -> Result<(), CodeError> {
        let mut ids: Vec<(&String, &CodeItem)> = self.code.settings.iter().collect();
        ids.sort_by_key(|(id, _)| self.line(id));
        for (id, item) in ids {
            let err = |m: String| CodeError::item(self.line(id), id, m);
            let setting = catalogue
                .get(id)
                .ok_or_else(|| err("is not a setting of the catalogue".into()))?;
            match (&setting.kind, item) {
                (SettingType::Secret { .. }, CodeItem::Secret) => {}
                (SettingType::Secret { .. }, _) => {
                    return Err(err(
                        "is a secret: write { secret = \"set\" } (its value never goes in a file)"
                            .into(),
                    ))
                }
                (SettingType::Certificate { .. }, CodeItem::Certificate { .. }) => {}
                (SettingType::Certificate { .. }, _) => {
                    return Err(err(
                        "is a certificate: write { certificate = \"sha256:<fingerprint>\" }".into(),
                    ))
                }
                (kind, CodeItem::Secret | CodeItem::Certificate { .. }) => {
                    return Err(err(format!(
                        "is a {} setting, not a secret or certificate",
                        kind.name()
                    )))
                }
                (_, CodeItem::Bool(b)) => check(setting, SettingValue::Bool(*b), &err)?,
                (_, CodeItem::Integer(n)) => check(setting, SettingValue::Integer(*n), &err)?,
                (_, CodeItem::Text(s)) => check(setting, SettingValue::Text(s.clone()), &err)?,
            }
        }
        Ok(())
    }
}

fn check(
    setting: &crate::catalogue::Setting,
    value: SettingValue,
    err: &dyn Fn(String) -> CodeError,
) -> Result<(), CodeError> {
    setting
        .validate_value(&value)
        .map(|_| ())
        .map_err(|e| err(e.message))
}

/// The file's shape. Unknown top-level keys are refused so a typo (`mdoe`) is not ignored.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    name: Option<Spanned<toml::Value>>,
    description: Option<Spanned<toml::Value>>,
    mode: Option<Spanned<toml::Value>>,
    settings: Option<BTreeMap<Spanned<String>, Spanned<toml::Value>>>,
}

/// 1-based line of a byte offset. Counted over bytes, so an offset inside a multi-byte
/// character cannot panic.
fn line_at(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// The key written on a line (`"network.telnet.enabled" = …` → its id) and whether it was
/// quoted, so a syntax error can name its item. Only the part before `=`: the rest might be a
/// secret typed in by mistake.
fn key_on_line(text: &str, line: usize) -> Option<(String, bool)> {
    let (raw, _) = text.lines().nth(line.checked_sub(1)?)?.split_once('=')?;
    let raw = raw.trim();
    let key = raw.trim_matches(['"', '\'']);
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    (!key.is_empty() && key.chars().all(plain)).then(|| (key.to_string(), key.len() != raw.len()))
}

const UNQUOTED: &str = "quote setting ids, as in \"network.telnet.enabled\" = false (unquoted, their dots make nested tables)";

/// Reads a policy file: TOML syntax and the file's shape. Values are not yet checked against
/// the catalogue ([`ParsedCode::validate`]).
pub fn parse(text: &str) -> Result<ParsedCode, CodeError> {
    let raw: Raw = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| line_at(text, s.start)).unwrap_or(1);
        let key = key_on_line(text, line);
        let message = match &key {
            // toml's own message for this case is about deserializer internals.
            Some((k, false)) if k.contains('.') => UNQUOTED.to_string(),
            _ => format!("not valid: {}", e.message().trim()),
        };
        CodeError::Syntax {
            line,
            item: key.map(|(k, _)| k),
            message,
        }
    })?;
    let mut lines = BTreeMap::new();
    let mut text_field = |key: &str, v: Option<Spanned<toml::Value>>| match v {
        None => Ok(None),
        Some(v) => {
            let line = line_at(text, v.span().start);
            lines.insert(key.to_string(), line);
            match v.into_inner() {
                toml::Value::String(s) => Ok(Some((s, line))),
                _ => Err(CodeError::item(line, key, "must be a string")),
            }
        }
    };
    let (name, name_line) =
        text_field("name", raw.name)?.ok_or_else(|| CodeError::item(1, "name", "is required"))?;
    let name = validation::text("name", &name, 100)
        .map_err(|e| CodeError::item(name_line, "name", e.message))?;
    let description = match text_field("description", raw.description)? {
        None => None,
        Some((d, line)) => validation::optional_text("description", Some(&d), 1000)
            .map_err(|e| CodeError::item(line, "description", e.message))?,
    };
    let (mode, mode_line) = text_field("mode", raw.mode)?
        .ok_or_else(|| CodeError::item(1, "mode", "is required (assess or remediate)"))?;
    let mode = PolicyMode::parse(&mode)
        .ok_or_else(|| CodeError::item(mode_line, "mode", "must be assess or remediate"))?;
    let raw_settings = raw.settings.unwrap_or_default();
    if raw_settings.len() > MAX_ITEMS {
        return Err(CodeError::item(
            1,
            "settings",
            format!("at most {MAX_ITEMS} items"),
        ));
    }
    // In file order, so the first error reported is the first in the file.
    let mut raw_settings: Vec<_> = raw_settings.into_iter().collect();
    raw_settings.sort_by_key(|(key, _)| key.span().start);
    let mut settings = BTreeMap::new();
    for (key, value) in raw_settings {
        let line = line_at(text, key.span().start);
        let id = key.into_inner();
        let item = item(&id, line, value.into_inner())?;
        lines.insert(id.clone(), line);
        settings.insert(id, item);
    }
    Ok(ParsedCode {
        code: PolicyCode {
            name,
            description,
            mode,
            settings,
        },
        lines,
    })
}

const FORMS: &str = "must be true/false, a whole number, a string, { secret = \"set\" } or { certificate = \"sha256:<fingerprint>\" }";

/// One setting's value. A secret's value is never echoed in an error.
fn item(id: &str, line: usize, value: toml::Value) -> Result<CodeItem, CodeError> {
    let err = |m: &str| CodeError::item(line, id, m);
    match value {
        toml::Value::Boolean(b) => Ok(CodeItem::Bool(b)),
        toml::Value::Integer(n) => Ok(CodeItem::Integer(n)),
        toml::Value::String(s) => Ok(CodeItem::Text(s)),
        toml::Value::Table(t) if t.len() == 1 => match t.iter().next() {
            Some((k, v)) if k == "secret" => match v.as_str() {
                Some("set") => Ok(CodeItem::Secret),
                _ => Err(err(
                    "a secret is only referenced, as { secret = \"set\" }: its value never goes in a file (give it with --secret ID=FILE)",
                )),
            },
            Some((k, v)) if k == "certificate" => v
                .as_str()
                .and_then(fingerprint)
                .map(|sha256| CodeItem::Certificate { sha256 })
                .ok_or_else(|| {
                    err("a certificate is referenced as { certificate = \"sha256:<64 hex digits>\" }")
                }),
            _ => Err(unquoted(id, line)),
        },
        toml::Value::Table(_) => Err(unquoted(id, line)),
        _ => Err(err(FORMS)),
    }
}

/// A table that is no reference: most likely an id written without quotes, which TOML reads as
/// nested tables (`network.telnet.enabled = false` is `network = { telnet = { … } }`).
fn unquoted(id: &str, line: usize) -> CodeError {
    if id.contains('.') {
        CodeError::item(line, id, FORMS)
    } else {
        CodeError::item(line, id, format!("is not a setting id: {UNQUOTED}"))
    }
}

/// `sha256:<64 hex digits>` → the lower-case hex.
fn fingerprint(s: &str) -> Option<String> {
    let hex = s.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| hex.to_ascii_lowercase())
}
