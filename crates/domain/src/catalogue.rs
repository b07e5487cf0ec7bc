//! The settings catalogue: the shared vocabulary of printer telemetry and policies.
//!
//! The catalogue is data, not code: `catalogue/settings.toml` at the root of the workspace, built
//! into the binary with `include_str!` and described in `catalogue/README.md`. This module parses
//! and validates it into typed [`Setting`]s, and checks values against a setting's type
//! ([`Setting::validate_value`]).
//!
//! Nothing here performs I/O: [`Catalogue::parse`] takes the text, [`Catalogue::builtin`] uses the
//! text compiled in.

use crate::redact::Redacted;
use crate::validation::ValidationError;
use regex::Regex;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

/// The built-in catalogue's text, as compiled in.
pub const BUILTIN_TEXT: &str = include_str!("../../../catalogue/settings.toml");

/// The model families of the simulated fleet a setting may name in `models`.
pub const MODEL_FAMILIES: [&str; 5] = [
    "office-mono",
    "office-color",
    "mfp-mono",
    "mfp-color",
    "production",
];

/// Longest setting id accepted.
const MAX_ID_LEN: usize = 128;
/// Longest `name` accepted.
const MAX_NAME_LEN: usize = 120;
/// Longest `why` accepted.
const MAX_WHY_LEN: usize = 400;
/// Largest `max_len` a string or secret setting may declare.
const MAX_DECLARED_LEN: i64 = 4096;
/// Largest certificate (PEM text) accepted by [`Setting::validate_value`].
const MAX_CERTIFICATE_BYTES: usize = 64 * 1024;

// ------------------------------------------------------------------------------------------------
// Errors
// ------------------------------------------------------------------------------------------------

/// Why a catalogue text was refused. Setting errors name the setting (its id, or `#n` for the
/// n-th `[[setting]]` when it has no usable id) and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogueError {
    /// The text is not TOML at all.
    #[error("the catalogue is not valid TOML: {0}")]
    Syntax(String),
    /// A top-level field (`version`, `setting`) is missing or wrong.
    #[error("catalogue field {field}: {message}")]
    Catalogue { field: String, message: String },
    /// One setting is wrong.
    #[error("setting {id}: field {field}: {message}")]
    Setting {
        id: String,
        field: String,
        message: String,
    },
}

impl CatalogueError {
    fn top(field: &str, message: impl Into<String>) -> Self {
        Self::Catalogue {
            field: field.to_string(),
            message: message.into(),
        }
    }

    /// The setting the error is about, if it is about one.
    pub fn setting_id(&self) -> Option<&str> {
        match self {
            Self::Setting { id, .. } => Some(id),
            _ => None,
        }
    }

    /// The field the error is about, if it is about one.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::Catalogue { field, .. } | Self::Setting { field, .. } => Some(field),
            Self::Syntax(_) => None,
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Setting ids and categories
// ------------------------------------------------------------------------------------------------

/// A setting's stable id: dotted lower case, at least two segments, matching
/// `^[a-z0-9]+(\.[a-z0-9_-]+)+$`, e.g. `network.telnet.enabled`. Ids are never reused.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct SettingId(String);

impl SettingId {
    pub fn parse(value: &str) -> Result<Self, ValidationError> {
        if value.is_empty() || value.len() > MAX_ID_LEN {
            return Err(ValidationError::new(
                "id",
                format!("must be 1 to {MAX_ID_LEN} characters"),
            ));
        }
        let mut segments = value.split('.');
        let first_ok = segments.next().is_some_and(|s| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        });
        let mut rest = 0usize;
        let rest_ok = segments.all(|s| {
            rest += 1;
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        });
        if !first_ok || !rest_ok || rest == 0 {
            return Err(ValidationError::new(
                "id",
                r"must match ^[a-z0-9]+(\.[a-z0-9_-]+)+$",
            ));
        }
        Ok(Self(value.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SettingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SettingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SettingId({})", self.0)
    }
}

impl FromStr for SettingId {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl AsRef<str> for SettingId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for SettingId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// The feature area a setting belongs to (the categories of the WXP settings collection).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Category {
    Copier,
    DigitalSending,
    Fax,
    FileSystem,
    Network,
    Security,
    Solutions,
    WebServices,
}

impl Category {
    pub const ALL: [Category; 8] = [
        Category::Copier,
        Category::DigitalSending,
        Category::Fax,
        Category::FileSystem,
        Category::Network,
        Category::Security,
        Category::Solutions,
        Category::WebServices,
    ];

    /// The name used in the catalogue file and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Copier => "copier",
            Category::DigitalSending => "digital-sending",
            Category::Fax => "fax",
            Category::FileSystem => "file-system",
            Category::Network => "network",
            Category::Security => "security",
            Category::Solutions => "solutions",
            Category::WebServices => "web-services",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Category {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Category::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| {
                ValidationError::new("category", format!("must be one of: {}", category_list()))
            })
    }
}

fn category_list() -> String {
    Category::ALL
        .iter()
        .map(|c| c.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

// ------------------------------------------------------------------------------------------------
// Setting types
// ------------------------------------------------------------------------------------------------

/// The characters a generated or supplied secret may contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Alphabet {
    /// `!` to `~` (ASCII 0x21–0x7E): printable ASCII without the space.
    PrintableAscii,
    /// `A`–`Z`, `a`–`z`, `0`–`9`.
    Alphanumeric,
    /// `0`–`9`.
    Digits,
}

impl Alphabet {
    pub const ALL: [Alphabet; 3] = [
        Alphabet::PrintableAscii,
        Alphabet::Alphanumeric,
        Alphabet::Digits,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Alphabet::PrintableAscii => "printable-ascii",
            Alphabet::Alphanumeric => "alphanumeric",
            Alphabet::Digits => "digits",
        }
    }

    pub fn contains(self, c: char) -> bool {
        match self {
            Alphabet::PrintableAscii => c.is_ascii_graphic(),
            Alphabet::Alphanumeric => c.is_ascii_alphanumeric(),
            Alphabet::Digits => c.is_ascii_digit(),
        }
    }

    /// Every character of the alphabet, in ASCII order (for password generators).
    pub fn characters(self) -> impl Iterator<Item = char> {
        ('!'..='~').filter(move |c| self.contains(*c))
    }
}

impl FromStr for Alphabet {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Alphabet::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| {
                ValidationError::new(
                    "alphabet",
                    "must be one of: printable-ascii, alphanumeric, digits",
                )
            })
    }
}

/// What a certificate setting holds: a CA certificate the device trusts, or the device's own
/// identity certificate (with its private key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CertificateKind {
    Ca,
    Id,
}

/// A compiled regular expression that must match a string value as a whole. Compared and
/// serialized by its source text.
#[derive(Clone)]
pub struct Pattern {
    source: String,
    regex: Regex,
}

impl Pattern {
    /// Compiles `source`, anchored at both ends.
    pub fn new(source: &str) -> Result<Self, regex::Error> {
        let regex = Regex::new(&format!("^(?:{source})$"))?;
        Ok(Self {
            source: source.to_string(),
            regex,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the whole of `value` matches.
    pub fn is_match(&self, value: &str) -> bool {
        self.regex.is_match(value)
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for Pattern {}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pattern({:?})", self.source)
    }
}

impl Serialize for Pattern {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.source)
    }
}

/// A setting's type with its details (the `type` field of the catalogue and the fields that go
/// with it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum SettingType {
    Bool,
    Enum {
        values: Vec<String>,
    },
    Integer {
        min: i64,
        max: i64,
        #[serde(skip_serializing_if = "Option::is_none")]
        unit: Option<String>,
    },
    String {
        pattern: Pattern,
        max_len: usize,
    },
    Secret {
        min_len: usize,
        max_len: usize,
        alphabet: Alphabet,
    },
    Certificate {
        kind: CertificateKind,
    },
}

impl SettingType {
    /// The name used in the catalogue's `type` field.
    pub fn name(&self) -> &'static str {
        match self {
            SettingType::Bool => "bool",
            SettingType::Enum { .. } => "enum",
            SettingType::Integer { .. } => "integer",
            SettingType::String { .. } => "string",
            SettingType::Secret { .. } => "secret",
            SettingType::Certificate { .. } => "certificate",
        }
    }

    /// Secrets and certificates: no default or recommended value in the catalogue; values are
    /// handled as secrets.
    pub fn is_sensitive(&self) -> bool {
        matches!(
            self,
            SettingType::Secret { .. } | SettingType::Certificate { .. }
        )
    }
}

// ------------------------------------------------------------------------------------------------
// Values
// ------------------------------------------------------------------------------------------------

/// A setting's value. In JSON or TOML a value is a boolean, an integer or a string; strings
/// deserialize as [`SettingValue::Text`] and [`Setting::validate_value`] turns them into the
/// variant the setting needs (`Enum`, `Secret`).
///
/// `Secret` holds a validated secret (or an ID certificate with its private key); its `Debug`
/// prints `[redacted]`. Like [`Redacted`], it serializes its content: serialize it only towards
/// the device or encrypted storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettingValue {
    Bool(bool),
    Enum(String),
    Integer(i64),
    Text(String),
    Secret(Redacted<String>),
}

impl SettingValue {
    fn from_toml(value: &toml::Value) -> Option<Self> {
        match value {
            toml::Value::Boolean(b) => Some(Self::Bool(*b)),
            toml::Value::Integer(n) => Some(Self::Integer(*n)),
            toml::Value::String(s) => Some(Self::Text(s.clone())),
            _ => None,
        }
    }
}

impl Serialize for SettingValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Bool(b) => serializer.serialize_bool(*b),
            Self::Integer(n) => serializer.serialize_i64(*n),
            Self::Enum(s) | Self::Text(s) => serializer.serialize_str(s),
            Self::Secret(s) => serializer.serialize_str(s.expose()),
        }
    }
}

impl<'de> Deserialize<'de> for SettingValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = SettingValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a boolean, an integer or a string")
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(SettingValue::Bool(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(SettingValue::Integer(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
                i64::try_from(v)
                    .map(SettingValue::Integer)
                    .map_err(|_| E::custom("integer out of range"))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(SettingValue::Text(v.to_string()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(SettingValue::Text(v))
            }
        }
        deserializer.deserialize_any(V)
    }
}

// ------------------------------------------------------------------------------------------------
// Settings and the catalogue
// ------------------------------------------------------------------------------------------------

/// One setting of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Setting {
    pub id: SettingId,
    pub category: Category,
    pub name: String,
    #[serde(flatten)]
    pub kind: SettingType,
    /// The factory default. Required for bool, enum and integer settings; never present for
    /// secrets and certificates.
    pub default: Option<SettingValue>,
    /// The recommended secure value, where one exists.
    pub secure: Option<SettingValue>,
    /// One sentence on why the setting matters for security.
    pub why: String,
    /// The model families that support the setting (see [`MODEL_FAMILIES`]).
    pub models: BTreeSet<String>,
    pub snmp_oid: Option<String>,
    pub ipp_attribute: Option<String>,
}

impl Setting {
    /// Checks `value` against the setting's type and returns it in the variant the setting
    /// needs: enum strings become [`SettingValue::Enum`], secrets and ID certificates become
    /// [`SettingValue::Secret`]. The error names the setting id as its field and never contains
    /// the value.
    pub fn validate_value(&self, value: &SettingValue) -> Result<SettingValue, ValidationError> {
        let err = |message: String| ValidationError::new(self.id.as_str(), message);
        match &self.kind {
            SettingType::Bool => match value {
                SettingValue::Bool(b) => Ok(SettingValue::Bool(*b)),
                _ => Err(err("must be true or false".into())),
            },
            SettingType::Enum { values } => match value {
                SettingValue::Enum(s) | SettingValue::Text(s) if values.contains(s) => {
                    Ok(SettingValue::Enum(s.clone()))
                }
                _ => Err(err(format!("must be one of: {}", values.join(", ")))),
            },
            SettingType::Integer { min, max, unit } => {
                let unit = unit.as_deref().map(|u| format!(" {u}")).unwrap_or_default();
                match value {
                    SettingValue::Integer(n) if (*min..=*max).contains(n) => {
                        Ok(SettingValue::Integer(*n))
                    }
                    _ => Err(err(format!("must be an integer from {min} to {max}{unit}"))),
                }
            }
            SettingType::String { pattern, max_len } => {
                let s = match value {
                    SettingValue::Text(s) | SettingValue::Enum(s) => s,
                    _ => return Err(err("must be a string".into())),
                };
                if s.chars().count() > *max_len {
                    return Err(err(format!("must be at most {max_len} characters")));
                }
                if !pattern.is_match(s) {
                    return Err(err(format!("must match the pattern {}", pattern.as_str())));
                }
                Ok(SettingValue::Text(s.clone()))
            }
            SettingType::Secret {
                min_len,
                max_len,
                alphabet,
            } => {
                let s = match value {
                    SettingValue::Text(s) => s.as_str(),
                    SettingValue::Secret(s) => s.expose().as_str(),
                    _ => return Err(err("must be a string".into())),
                };
                let len = s.chars().count();
                if len < *min_len || len > *max_len {
                    return Err(err(format!(
                        "must be {min_len} to {max_len} characters long"
                    )));
                }
                if !s.chars().all(|c| alphabet.contains(c)) {
                    return Err(err(format!(
                        "must contain only {} characters",
                        alphabet.as_str()
                    )));
                }
                Ok(SettingValue::Secret(Redacted::new(s.to_string())))
            }
            SettingType::Certificate { kind } => {
                let pem = match value {
                    SettingValue::Text(s) => s.as_str(),
                    SettingValue::Secret(s) => s.expose().as_str(),
                    _ => return Err(err("must be PEM text".into())),
                };
                validate_certificate_pem(*kind, pem).map_err(err)?;
                Ok(match kind {
                    CertificateKind::Ca => SettingValue::Text(pem.to_string()),
                    CertificateKind::Id => SettingValue::Secret(Redacted::new(pem.to_string())),
                })
            }
        }
    }

    /// Whether the model family supports the setting.
    pub fn supports(&self, family: &str) -> bool {
        self.models.contains(family)
    }
}

/// A shallow check of PEM text: a CA certificate is one or more certificates and no private key;
/// an ID certificate is a certificate with its private key. Parsing the X.509 content is left to
/// the code that installs it.
fn validate_certificate_pem(kind: CertificateKind, pem: &str) -> Result<(), String> {
    if pem.len() > MAX_CERTIFICATE_BYTES {
        return Err(format!("must be at most {MAX_CERTIFICATE_BYTES} bytes"));
    }
    if !(pem.contains("-----BEGIN CERTIFICATE-----") && pem.contains("-----END CERTIFICATE-----")) {
        return Err("must be a PEM certificate (-----BEGIN CERTIFICATE-----)".into());
    }
    let has_key = pem.contains("PRIVATE KEY-----");
    match kind {
        CertificateKind::Ca if has_key => {
            Err("a CA certificate must not carry a private key".into())
        }
        CertificateKind::Id if !has_key => {
            Err("an ID certificate must come with its PEM private key".into())
        }
        _ => Ok(()),
    }
}

/// The settings catalogue: its version (stored with every assessment) and its settings, in file
/// order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Catalogue {
    pub version: String,
    pub settings: Vec<Setting>,
}

impl Catalogue {
    /// The catalogue compiled into the binary.
    pub fn builtin() -> Result<Self, CatalogueError> {
        Self::parse(BUILTIN_TEXT)
    }

    /// Parses and validates a catalogue text.
    pub fn parse(text: &str) -> Result<Self, CatalogueError> {
        let mut root: toml::Table =
            toml::from_str(text).map_err(|e| CatalogueError::Syntax(e.to_string()))?;

        let version = match root.remove("version") {
            Some(toml::Value::String(v)) => v,
            Some(_) => return Err(CatalogueError::top("version", "must be a string")),
            None => return Err(CatalogueError::top("version", "is missing")),
        };
        if !valid_version(&version) {
            return Err(CatalogueError::top(
                "version",
                "must look like YEAR.MONTH.N, e.g. 2026.11.1",
            ));
        }
        let raw_settings = match root.remove("setting") {
            Some(toml::Value::Array(a)) => a,
            Some(_) => {
                return Err(CatalogueError::top(
                    "setting",
                    "must be an array of tables ([[setting]])",
                ))
            }
            None => return Err(CatalogueError::top("setting", "is missing")),
        };
        if let Some(key) = root.keys().next() {
            return Err(CatalogueError::top(key, "is not a known catalogue field"));
        }

        let mut settings = Vec::with_capacity(raw_settings.len());
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for (index, raw) in raw_settings.into_iter().enumerate() {
            let position = index + 1;
            let toml::Value::Table(table) = raw else {
                return Err(CatalogueError::Setting {
                    id: format!("#{position}"),
                    field: "setting".into(),
                    message: "must be a table".into(),
                });
            };
            let setting = parse_setting(position, table)?;
            if let Some(first) = seen.insert(setting.id.as_str().to_string(), position) {
                return Err(CatalogueError::Setting {
                    id: setting.id.as_str().to_string(),
                    field: "id".into(),
                    message: format!("duplicate id (setting #{position} repeats setting #{first})"),
                });
            }
            settings.push(setting);
        }
        Ok(Self { version, settings })
    }

    /// The setting with this id.
    pub fn get(&self, id: &str) -> Option<&Setting> {
        self.settings.iter().find(|s| s.id.as_str() == id)
    }

    /// The settings of one category, in file order.
    pub fn in_category(&self, category: Category) -> impl Iterator<Item = &Setting> {
        self.settings.iter().filter(move |s| s.category == category)
    }

    /// The settings one model family supports, in file order.
    pub fn for_model(&self, family: &str) -> impl Iterator<Item = &Setting> + '_ {
        let family = family.to_string();
        self.settings.iter().filter(move |s| s.supports(&family))
    }
}

/// `YEAR.MONTH.N`: three dot-separated numbers, the first four digits, the second 1–12.
fn valid_version(v: &str) -> bool {
    let parts: Vec<&str> = v.split('.').collect();
    let numeric = |s: &str| !s.is_empty() && s.len() <= 6 && s.bytes().all(|b| b.is_ascii_digit());
    match parts.as_slice() {
        [year, month, n] => {
            year.len() == 4
                && numeric(year)
                && numeric(month)
                && numeric(n)
                && month.parse::<u8>().is_ok_and(|m| (1..=12).contains(&m))
        }
        _ => false,
    }
}

// ------------------------------------------------------------------------------------------------
// Parsing one setting
// ------------------------------------------------------------------------------------------------

const COMMON_FIELDS: [&str; 10] = [
    "id",
    "category",
    "name",
    "type",
    "default",
    "secure",
    "why",
    "models",
    "snmp_oid",
    "ipp_attribute",
];

fn type_fields(type_name: &str) -> Option<&'static [&'static str]> {
    Some(match type_name {
        "bool" => &[],
        "enum" => &["values"],
        "integer" => &["min", "max", "unit"],
        "string" => &["pattern", "max_len"],
        "secret" => &["min_len", "max_len", "alphabet"],
        "certificate" => &["kind"],
        _ => return None,
    })
}

/// Reads the fields of one `[[setting]]` table, naming the setting in every error.
struct Fields {
    id: String,
    table: toml::Table,
}

impl Fields {
    fn err(&self, field: &str, message: impl Into<String>) -> CatalogueError {
        CatalogueError::Setting {
            id: self.id.clone(),
            field: field.to_string(),
            message: message.into(),
        }
    }

    fn opt_str(&self, field: &str) -> Result<Option<&str>, CatalogueError> {
        match self.table.get(field) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(self.err(field, "must be a string")),
        }
    }

    fn str(&self, field: &str) -> Result<&str, CatalogueError> {
        self.opt_str(field)?
            .ok_or_else(|| self.err(field, "is missing"))
    }

    fn text(&self, field: &str, max: usize) -> Result<String, CatalogueError> {
        crate::validation::text(field, self.str(field)?, max)
            .map_err(|e| self.err(field, e.message))
    }

    fn int(&self, field: &str) -> Result<i64, CatalogueError> {
        match self.table.get(field) {
            Some(toml::Value::Integer(n)) => Ok(*n),
            Some(_) => Err(self.err(field, "must be an integer")),
            None => Err(self.err(field, "is missing")),
        }
    }

    fn len(&self, field: &str) -> Result<usize, CatalogueError> {
        let n = self.int(field)?;
        if !(1..=MAX_DECLARED_LEN).contains(&n) {
            return Err(self.err(field, format!("must be from 1 to {MAX_DECLARED_LEN}")));
        }
        usize::try_from(n).map_err(|_| self.err(field, "is out of range"))
    }

    fn str_array(&self, field: &str) -> Result<Vec<&str>, CatalogueError> {
        let Some(value) = self.table.get(field) else {
            return Err(self.err(field, "is missing"));
        };
        let toml::Value::Array(items) = value else {
            return Err(self.err(field, "must be an array of strings"));
        };
        items
            .iter()
            .map(|v| match v {
                toml::Value::String(s) => Ok(s.as_str()),
                _ => Err(self.err(field, "must be an array of strings")),
            })
            .collect()
    }
}

fn parse_setting(position: usize, table: toml::Table) -> Result<Setting, CatalogueError> {
    // The id first, so that every later error can name the setting.
    let raw_id = match table.get("id") {
        Some(toml::Value::String(s)) => Some(s.clone()),
        _ => None,
    };
    let fields = Fields {
        id: raw_id.clone().unwrap_or_else(|| format!("#{position}")),
        table,
    };
    let id = match raw_id {
        Some(raw) => SettingId::parse(&raw).map_err(|e| fields.err("id", e.message))?,
        None => return Err(fields.err("id", "is missing or not a string")),
    };

    let type_name = fields.str("type")?;
    let Some(extra_fields) = type_fields(type_name) else {
        return Err(fields.err(
            "type",
            "must be one of: bool, enum, integer, string, secret, certificate",
        ));
    };
    if let Some(unknown) = fields
        .table
        .keys()
        .find(|k| !COMMON_FIELDS.contains(&k.as_str()) && !extra_fields.contains(&k.as_str()))
    {
        return Err(fields.err(unknown, format!("is not a field of a {type_name} setting")));
    }

    let category = Category::from_str(fields.str("category")?)
        .map_err(|e| fields.err("category", e.message))?;
    let name = fields.text("name", MAX_NAME_LEN)?;
    let why = fields.text("why", MAX_WHY_LEN)?;
    let models = parse_models(&fields)?;

    let snmp_oid = fields.opt_str("snmp_oid")?.map(str::to_string);
    if let Some(oid) = &snmp_oid {
        if !valid_oid(oid) {
            return Err(fields.err(
                "snmp_oid",
                "must be a dotted numeric OID such as 1.3.6.1.2.1.1.6.0",
            ));
        }
    }
    let ipp_attribute = fields.opt_str("ipp_attribute")?.map(str::to_string);
    if let Some(attr) = &ipp_attribute {
        if !valid_keyword(attr) {
            return Err(fields.err(
                "ipp_attribute",
                "must be an IPP attribute name such as printer-location",
            ));
        }
    }

    let kind = parse_kind(&fields, type_name)?;

    let mut setting = Setting {
        id,
        category,
        name,
        kind,
        default: None,
        secure: None,
        why,
        models,
        snmp_oid,
        ipp_attribute,
    };

    for field in ["default", "secure"] {
        let Some(raw) = fields.table.get(field) else {
            continue;
        };
        if setting.kind.is_sensitive() {
            return Err(fields.err(
                field,
                format!("a {type_name} setting has no {field} value in the catalogue; remove it"),
            ));
        }
        let value = SettingValue::from_toml(raw)
            .ok_or_else(|| fields.err(field, "must be a boolean, an integer or a string"))?;
        let value = setting
            .validate_value(&value)
            .map_err(|e| fields.err(field, e.message))?;
        if field == "default" {
            setting.default = Some(value);
        } else {
            setting.secure = Some(value);
        }
    }
    if setting.default.is_none()
        && matches!(
            setting.kind,
            SettingType::Bool | SettingType::Enum { .. } | SettingType::Integer { .. }
        )
    {
        return Err(fields.err(
            "default",
            format!("is missing; a {type_name} setting needs its factory default"),
        ));
    }
    Ok(setting)
}

fn parse_models(fields: &Fields) -> Result<BTreeSet<String>, CatalogueError> {
    let list = fields.str_array("models")?;
    if list.is_empty() {
        return Err(fields.err("models", "must name at least one model family"));
    }
    let mut models = BTreeSet::new();
    for m in list {
        if !MODEL_FAMILIES.contains(&m) {
            return Err(fields.err(
                "models",
                format!(
                    "unknown model family {m:?}; known: {}",
                    MODEL_FAMILIES.join(", ")
                ),
            ));
        }
        if !models.insert(m.to_string()) {
            return Err(fields.err("models", format!("model family {m:?} is listed twice")));
        }
    }
    Ok(models)
}

fn parse_kind(fields: &Fields, type_name: &str) -> Result<SettingType, CatalogueError> {
    Ok(match type_name {
        "bool" => SettingType::Bool,
        "enum" => {
            let list = fields.str_array("values")?;
            if list.is_empty() {
                return Err(fields.err("values", "must list at least one value"));
            }
            let mut values: Vec<String> = Vec::with_capacity(list.len());
            for v in list {
                if !valid_enum_value(v) {
                    return Err(fields.err(
                        "values",
                        format!("{v:?} must be lower case letters, digits, '.', '_' or '-'"),
                    ));
                }
                if values.iter().any(|x| x == v) {
                    return Err(fields.err("values", format!("{v:?} is listed twice")));
                }
                values.push(v.to_string());
            }
            SettingType::Enum { values }
        }
        "integer" => {
            let min = fields.int("min")?;
            let max = fields.int("max")?;
            if min > max {
                return Err(fields.err("max", format!("max ({max}) is below min ({min})")));
            }
            let unit = fields.opt_str("unit")?.map(str::to_string);
            if let Some(u) = &unit {
                if u.is_empty() || !u.bytes().all(|b| b.is_ascii_lowercase() || b == b'-') {
                    return Err(fields.err("unit", "must be a lower-case word such as seconds"));
                }
            }
            SettingType::Integer { min, max, unit }
        }
        "string" => {
            let source = fields.str("pattern")?;
            let pattern = Pattern::new(source)
                .map_err(|e| fields.err("pattern", format!("is not a valid regex: {e}")))?;
            let max_len = fields.len("max_len")?;
            SettingType::String { pattern, max_len }
        }
        "secret" => {
            let min_len = fields.len("min_len")?;
            let max_len = fields.len("max_len")?;
            if min_len > max_len {
                return Err(fields.err(
                    "max_len",
                    format!("max_len ({max_len}) is below min_len ({min_len})"),
                ));
            }
            let alphabet = Alphabet::from_str(fields.str("alphabet")?)
                .map_err(|e| fields.err("alphabet", e.message))?;
            SettingType::Secret {
                min_len,
                max_len,
                alphabet,
            }
        }
        "certificate" => match fields.str("kind")? {
            "ca" => SettingType::Certificate {
                kind: CertificateKind::Ca,
            },
            "id" => SettingType::Certificate {
                kind: CertificateKind::Id,
            },
            _ => return Err(fields.err("kind", "must be ca or id")),
        },
        _ => return Err(fields.err("type", "is not a known type")),
    })
}

fn valid_oid(oid: &str) -> bool {
    let mut arcs = 0usize;
    let ok = oid.split('.').all(|arc| {
        arcs += 1;
        !arc.is_empty() && arc.len() <= 10 && arc.bytes().all(|b| b.is_ascii_digit())
    });
    ok && arcs >= 2
}

/// An IPP keyword-like attribute name: `^[a-z][a-z0-9]*(-[a-z0-9]+)*$`.
fn valid_keyword(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.split('-').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

fn valid_enum_value(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 64
        && v.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MUST_HAVE: &[(&str, &str)] = &[
        ("network.telnet.enabled", "bool"),
        ("network.ftp_printing.enabled", "bool"),
        ("security.ews.https_redirect.enabled", "bool"),
        ("network.snmp.v1v2c.enabled", "bool"),
        ("network.snmp.v1v2c.get_community", "secret"),
        ("network.snmp.v1v2c.set_community", "secret"),
        ("network.snmp.v3.enabled", "bool"),
        ("network.snmp.v3.auth_passphrase", "secret"),
        ("network.snmp.v3.privacy_passphrase", "secret"),
        ("filesystem.pjl.file_access", "bool"),
        ("security.pjl.password", "secret"),
        ("security.pjl.device_access", "bool"),
        ("security.ews.admin_password", "secret"),
        ("security.ldap.bind_password", "secret"),
        ("security.tls.v1_0.enabled", "bool"),
        ("security.tls.v1_1.enabled", "bool"),
        ("security.tls.min_version", "enum"),
        ("security.firmware.downgrade_allowed", "bool"),
        ("security.firmware.signature_check", "bool"),
        ("security.control_panel.inactivity_timeout", "integer"),
        ("security.usb.host_port.enabled", "bool"),
        ("security.usb.device_port.enabled", "bool"),
        ("fax.pc_fax_send.enabled", "bool"),
        ("fax.forwarding.enabled", "bool"),
        ("fax.archive.enabled", "bool"),
        ("filesystem.secure_erase.mode", "enum"),
        ("filesystem.stored_jobs.retention", "integer"),
        ("network.ipsec_firewall.enabled", "bool"),
        ("network.wins.enabled", "bool"),
        ("network.llmnr.enabled", "bool"),
        ("network.bonjour.enabled", "bool"),
        ("network.ipp.plain.enabled", "bool"),
        ("network.airprint.enabled", "bool"),
        ("webservices.cloud.enabled", "bool"),
        ("scan.email.smtp.tls_required", "bool"),
        ("scan.folder.credential_mode", "enum"),
        ("scan.folder.shared_password", "secret"),
        ("security.firmware.rfu_upload.enabled", "bool"),
        ("security.cert.ca", "certificate"),
        ("security.cert.id", "certificate"),
        ("network.dot1x.enabled", "bool"),
        ("network.wifi_direct.enabled", "bool"),
        ("filesystem.usb.print_from_drive", "bool"),
        ("filesystem.job_storage.encryption", "bool"),
        ("security.control_panel.lock_level", "enum"),
        ("security.control_panel.show_ip", "bool"),
    ];

    const CERT: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    const KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n";

    /// A one-setting catalogue with `body` as the setting's fields.
    fn one(body: &str) -> String {
        format!("version = \"2026.11.1\"\n\n[[setting]]\n{body}\n")
    }

    fn refused(text: &str) -> (String, String) {
        match Catalogue::parse(text) {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(CatalogueError::Setting { id, field, .. }) => (id, field),
            Err(e) => panic!("not a setting error: {e}"),
        }
    }

    const GOOD_INT: &str = r#"id = "security.timeout"
category = "security"
name = "Timeout"
type = "integer"
min = 10
max = 300
unit = "seconds"
default = 60
why = "Short is good."
models = ["mfp-mono"]"#;

    #[test]
    fn builtin_catalogue_is_complete_and_valid() {
        let c = Catalogue::builtin().unwrap();
        assert_eq!(c.version, "2026.11.1");
        assert!(c.settings.len() >= 44, "{} settings", c.settings.len());
        for cat in Category::ALL {
            let n = c.in_category(cat).count();
            assert!(n >= 3, "{cat}: only {n} settings");
        }
        for (id, type_name) in MUST_HAVE {
            let s = c.get(id).unwrap_or_else(|| panic!("missing {id}"));
            assert_eq!(s.kind.name(), *type_name, "{id}");
        }
        assert_eq!(
            c.get("security.cert.ca").unwrap().kind,
            SettingType::Certificate {
                kind: CertificateKind::Ca
            }
        );
        assert_eq!(
            c.get("security.cert.id").unwrap().kind,
            SettingType::Certificate {
                kind: CertificateKind::Id
            }
        );
        let timeout = c.get("security.control_panel.inactivity_timeout").unwrap();
        assert!(
            matches!(&timeout.kind, SettingType::Integer { unit: Some(u), .. } if u == "seconds")
        );

        for s in &c.settings {
            assert!(!s.why.trim().is_empty() && !s.models.is_empty(), "{}", s.id);
            if s.kind.is_sensitive() {
                assert!(s.default.is_none() && s.secure.is_none(), "{}", s.id);
                continue;
            }
            for v in [&s.default, &s.secure].into_iter().flatten() {
                assert_eq!(s.validate_value(v).as_ref(), Ok(v), "{}", s.id);
            }
            if matches!(
                s.kind,
                SettingType::Bool | SettingType::Enum { .. } | SettingType::Integer { .. }
            ) {
                assert!(s.default.is_some(), "{} has no default", s.id);
            }
        }
        // Fax, copier and scanning exist only on multifunction models.
        for cat in [Category::Fax, Category::Copier, Category::DigitalSending] {
            for s in c.in_category(cat) {
                assert!(s.models.iter().all(|m| m.starts_with("mfp-")), "{}", s.id);
            }
        }
        assert_eq!(
            c.get("network.device.location")
                .unwrap()
                .ipp_attribute
                .as_deref(),
            Some("printer-location")
        );
        assert!(c
            .for_model("office-mono")
            .all(|s| s.category != Category::Fax));
    }

    #[test]
    fn builtin_text_roundtrips_through_json() {
        let c = Catalogue::builtin().unwrap();
        let json = serde_json::to_value(&c).unwrap();
        let telnet = json["settings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == "network.telnet.enabled")
            .unwrap();
        assert_eq!(telnet["type"], "bool");
        assert_eq!(telnet["category"], "network");
        assert_eq!(telnet["default"], true);
        assert_eq!(telnet["secure"], false);
    }

    #[test]
    fn a_good_small_catalogue_parses() {
        let c = Catalogue::parse(&one(GOOD_INT)).unwrap();
        assert_eq!(c.settings.len(), 1);
        assert_eq!(c.settings[0].default, Some(SettingValue::Integer(60)));
        assert_eq!(c.settings[0].secure, None);
    }

    #[test]
    fn duplicate_id_is_refused() {
        let text = format!("{}\n[[setting]]\n{GOOD_INT}\n", one(GOOD_INT));
        assert_eq!(refused(&text), ("security.timeout".into(), "id".into()));
        let err = Catalogue::parse(&text).unwrap_err().to_string();
        assert!(err.contains("duplicate"), "{err}");
    }

    #[test]
    fn default_out_of_range_is_refused() {
        let text = one(&GOOD_INT.replace("default = 60", "default = 301"));
        assert_eq!(
            refused(&text),
            ("security.timeout".into(), "default".into())
        );
        let text = one(&format!("{GOOD_INT}\nsecure = 5"));
        assert_eq!(refused(&text), ("security.timeout".into(), "secure".into()));
    }

    #[test]
    fn unknown_category_is_refused() {
        let text = one(&GOOD_INT.replace("\"security\"", "\"printing\""));
        assert_eq!(
            refused(&text),
            ("security.timeout".into(), "category".into())
        );
    }

    #[test]
    fn secret_with_default_is_refused() {
        let body = r#"id = "security.ews.admin_password"
category = "security"
name = "EWS password"
type = "secret"
min_len = 12
max_len = 16
alphabet = "printable-ascii"
default = "hunter2hunter2"
why = "Protects the EWS."
models = ["mfp-mono"]"#;
        assert_eq!(
            refused(&one(body)),
            ("security.ews.admin_password".into(), "default".into())
        );
        let cert = r#"id = "security.cert.ca"
category = "security"
name = "CA"
type = "certificate"
kind = "ca"
secure = "x"
why = "Trust."
models = ["mfp-mono"]"#;
        assert_eq!(
            refused(&one(cert)),
            ("security.cert.ca".into(), "secure".into())
        );
    }

    #[test]
    fn other_mistakes_are_refused_naming_id_and_field() {
        let cases: Vec<(String, &str, &str)> = vec![
            (
                GOOD_INT.replace("security.timeout", "Security.Timeout"),
                "Security.Timeout",
                "id",
            ),
            (
                GOOD_INT.replace("security.timeout", "timeout"),
                "timeout",
                "id",
            ),
            (
                GOOD_INT.replace("id = \"security.timeout\"\n", ""),
                "#1",
                "id",
            ),
            (
                GOOD_INT.replace("min = 10", "min = 400"),
                "security.timeout",
                "max",
            ),
            (
                GOOD_INT.replace("default = 60", "default = \"60\""),
                "security.timeout",
                "default",
            ),
            (
                GOOD_INT.replace("default = 60\n", ""),
                "security.timeout",
                "default",
            ),
            (
                GOOD_INT.replace("Short is good.", " "),
                "security.timeout",
                "why",
            ),
            (
                GOOD_INT.replace("[\"mfp-mono\"]", "[]"),
                "security.timeout",
                "models",
            ),
            (
                GOOD_INT.replace("mfp-mono", "mfp-purple"),
                "security.timeout",
                "models",
            ),
            (
                GOOD_INT.replace("\"integer\"", "\"float\""),
                "security.timeout",
                "type",
            ),
            (
                format!("{GOOD_INT}\nvalues = [\"a\"]"),
                "security.timeout",
                "values",
            ),
            (
                format!("{GOOD_INT}\nsnmp_oid = \"1.3.six\""),
                "security.timeout",
                "snmp_oid",
            ),
            (
                format!("{GOOD_INT}\nipp_attribute = \"Printer Location\""),
                "security.timeout",
                "ipp_attribute",
            ),
        ];
        for (body, id, field) in cases {
            assert_eq!(
                refused(&one(&body)),
                (id.to_string(), field.to_string()),
                "{body}"
            );
        }

        let enum_body = r#"id = "security.tls.min_version"
category = "security"
name = "Minimum TLS"
type = "enum"
values = ["1.2", "1.3"]
default = "1.0"
why = "Old TLS is broken."
models = ["mfp-mono"]"#;
        assert_eq!(
            refused(&one(enum_body)),
            ("security.tls.min_version".into(), "default".into())
        );

        let string_body = r#"id = "network.snmp.v3.username"
category = "network"
name = "User"
type = "string"
pattern = '[a-z]{1,8}'
max_len = 8
default = "Admin1"
why = "Credential."
models = ["mfp-mono"]"#;
        assert_eq!(
            refused(&one(string_body)),
            ("network.snmp.v3.username".into(), "default".into())
        );
        let bad_regex = string_body.replace("[a-z]{1,8}", "[a-z");
        assert_eq!(
            refused(&one(&bad_regex)),
            ("network.snmp.v3.username".into(), "pattern".into())
        );

        let secret_body = r#"id = "fax.receive.pin"
category = "fax"
name = "PIN"
type = "secret"
min_len = 8
max_len = 4
alphabet = "digits"
why = "PIN."
models = ["mfp-mono"]"#;
        assert_eq!(
            refused(&one(secret_body)),
            ("fax.receive.pin".into(), "max_len".into())
        );
        let bad_alphabet = secret_body
            .replace("min_len = 8", "min_len = 4")
            .replace("\"digits\"", "\"emoji\"");
        assert_eq!(
            refused(&one(&bad_alphabet)),
            ("fax.receive.pin".into(), "alphabet".into())
        );
    }

    #[test]
    fn catalogue_level_mistakes_are_refused() {
        let no_version = format!("[[setting]]\n{GOOD_INT}\n");
        assert_eq!(
            Catalogue::parse(&no_version).unwrap_err().field(),
            Some("version")
        );
        let bad_version = one(GOOD_INT).replace("2026.11.1", "v1");
        assert_eq!(
            Catalogue::parse(&bad_version).unwrap_err().field(),
            Some("version")
        );
        let extra = format!("owner = \"me\"\n{}", one(GOOD_INT));
        assert_eq!(Catalogue::parse(&extra).unwrap_err().field(), Some("owner"));
        assert!(matches!(
            Catalogue::parse("version = "),
            Err(CatalogueError::Syntax(_))
        ));
    }

    #[test]
    fn setting_ids() {
        for good in [
            "network.telnet.enabled",
            "a.b",
            "security.tls.v1_0.enabled",
            "x1.y-z",
        ] {
            assert!(SettingId::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "network",
            "network.",
            ".a",
            "a..b",
            "Network.x",
            "a-b.c",
            "a.b c",
        ] {
            assert!(SettingId::parse(bad).is_err(), "{bad}");
        }
        let id: SettingId = serde_json::from_str("\"network.telnet.enabled\"").unwrap();
        assert_eq!(id.as_str(), "network.telnet.enabled");
        assert!(serde_json::from_str::<SettingId>("\"Nope\"").is_err());
    }

    #[test]
    fn validate_value_by_type() {
        let c = Catalogue::builtin().unwrap();
        let telnet = c.get("network.telnet.enabled").unwrap();
        assert_eq!(
            telnet.validate_value(&SettingValue::Bool(false)),
            Ok(SettingValue::Bool(false))
        );
        let e = telnet
            .validate_value(&SettingValue::Text("no".into()))
            .unwrap_err();
        assert_eq!(e.field, "network.telnet.enabled");

        let tls = c.get("security.tls.min_version").unwrap();
        assert_eq!(
            tls.validate_value(&SettingValue::Text("1.2".into())),
            Ok(SettingValue::Enum("1.2".into()))
        );
        assert!(tls
            .validate_value(&SettingValue::Text("1.4".into()))
            .is_err());

        let timeout = c.get("security.control_panel.inactivity_timeout").unwrap();
        assert!(timeout.validate_value(&SettingValue::Integer(10)).is_ok());
        assert!(timeout.validate_value(&SettingValue::Integer(300)).is_ok());
        assert!(timeout.validate_value(&SettingValue::Integer(9)).is_err());
        assert!(timeout.validate_value(&SettingValue::Integer(301)).is_err());

        let user = c.get("network.snmp.v3.username").unwrap();
        assert!(user
            .validate_value(&SettingValue::Text("fleet.mgr".into()))
            .is_ok());
        assert!(user
            .validate_value(&SettingValue::Text("has space".into()))
            .is_err());
        assert!(user
            .validate_value(&SettingValue::Text(String::new()))
            .is_err());

        let location = c.get("network.device.location").unwrap();
        assert!(location
            .validate_value(&SettingValue::Text("Building 2, floor 3".into()))
            .is_ok());
        assert!(location
            .validate_value(&SettingValue::Text("line\nbreak".into()))
            .is_err());
    }

    #[test]
    fn secrets_are_checked_and_redacted() {
        let c = Catalogue::builtin().unwrap();
        let pw = c.get("security.ews.admin_password").unwrap();
        let ok = pw
            .validate_value(&SettingValue::Text("S3cure!Passw0rd".into()))
            .unwrap();
        assert!(matches!(&ok, SettingValue::Secret(s) if s.expose() == "S3cure!Passw0rd"));
        assert!(!format!("{ok:?}").contains("S3cure"));

        let short = pw
            .validate_value(&SettingValue::Text("hunter2".into()))
            .unwrap_err();
        assert_eq!(short.field, "security.ews.admin_password");
        assert!(!short.to_string().contains("hunter2"));
        assert!(pw
            .validate_value(&SettingValue::Text("with space 12345".into()))
            .is_err());
        assert!(pw.validate_value(&SettingValue::Integer(1234)).is_err());

        let community = c.get("network.snmp.v1v2c.get_community").unwrap();
        assert!(community
            .validate_value(&SettingValue::Text("abcDEF123456".into()))
            .is_ok());
        assert!(community
            .validate_value(&SettingValue::Text("abcDEF12345!".into()))
            .is_err());

        assert_eq!(Alphabet::Digits.characters().count(), 10);
        assert_eq!(Alphabet::Alphanumeric.characters().count(), 62);
        assert_eq!(Alphabet::PrintableAscii.characters().count(), 94);
    }

    #[test]
    fn certificates_are_checked() {
        let c = Catalogue::builtin().unwrap();
        let ca = c.get("security.cert.ca").unwrap();
        let id = c.get("security.cert.id").unwrap();
        assert_eq!(
            ca.validate_value(&SettingValue::Text(CERT.into())),
            Ok(SettingValue::Text(CERT.into()))
        );
        assert!(ca
            .validate_value(&SettingValue::Text(format!("{CERT}{KEY}")))
            .is_err());
        assert!(ca
            .validate_value(&SettingValue::Text("not pem".into()))
            .is_err());
        assert!(id.validate_value(&SettingValue::Text(CERT.into())).is_err());
        let with_key = id
            .validate_value(&SettingValue::Text(format!("{CERT}{KEY}")))
            .unwrap();
        assert!(matches!(with_key, SettingValue::Secret(_)));
    }

    #[test]
    fn setting_values_from_json() {
        let v: SettingValue = serde_json::from_str("true").unwrap();
        assert_eq!(v, SettingValue::Bool(true));
        let v: SettingValue = serde_json::from_str("42").unwrap();
        assert_eq!(v, SettingValue::Integer(42));
        let v: SettingValue = serde_json::from_str("\"1.2\"").unwrap();
        assert_eq!(v, SettingValue::Text("1.2".into()));
        assert!(serde_json::from_str::<SettingValue>("1.5").is_err());
        assert!(serde_json::from_str::<SettingValue>("null").is_err());
        assert!(serde_json::from_str::<SettingValue>("[1]").is_err());
        assert_eq!(
            serde_json::to_string(&SettingValue::Enum("1.2".into())).unwrap(),
            "\"1.2\""
        );
    }
}
