//! A policy version's items, and how an admin's input becomes them.
//!
//! Input arrives as JSON per catalogue setting id. Plain settings take their value
//! (`false`, `300`, `"sign-in-required"`); a secret takes `{"secret": "…"}`; a certificate takes
//! `{"pem": "…"}`, `{"der": "<base64>"}` or `{"pkcs12": "<base64>", "passphrase": "…"}`; a secret
//! or certificate may instead say `{"keep": true}` to carry the previous version's value over,
//! so that changing one setting does not mean re-entering every password.
//!
//! Certificates are parsed outside this crate (the server uses `printfleet-crypto`); what comes
//! back is a [`CertificateMeta`] and, for an ID certificate, its PEM with the private key, which
//! is a secret.

use crate::catalogue::{Catalogue, CertificateKind, SettingType, SettingValue};
use crate::redact::Redacted;
use crate::validation::ValidationError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Most items one policy may hold (the catalogue has fewer settings; this bounds input).
pub const MAX_ITEMS: usize = 512;

/// Whether a policy only assesses printers or also brings them into line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PolicyMode {
    Assess,
    Remediate,
}

impl PolicyMode {
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyMode::Assess => "assess",
            PolicyMode::Remediate => "remediate",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "assess" => Some(PolicyMode::Assess),
            "remediate" => Some(PolicyMode::Remediate),
            _ => None,
        }
    }
}

/// What is known of a certificate without its private key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateMeta {
    /// SHA-256 of the DER, lower-case hex: what printers report.
    pub sha256: String,
    pub subject: String,
    pub not_after_ms: i64,
    /// The certificate alone, PEM (public).
    pub pem: String,
}

/// One item of a policy version as stored and shown. Never holds a secret's value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PolicyItem {
    /// A bool, enum, integer or string setting.
    Value { value: SettingValue },
    /// A secret: its value is in [`PolicySecrets`]; shown as "set on DATE by USER".
    Secret { set_at_ms: i64, set_by: String },
    /// A CA or ID certificate; an ID certificate's PEM with its key is in [`PolicySecrets`].
    Certificate {
        certificate: CertificateMeta,
        set_at_ms: i64,
        set_by: String,
    },
}

pub type PolicyItems = BTreeMap<String, PolicyItem>;

/// The secret values of one policy version by setting id: passwords, and ID certificates as PEM
/// (certificate + private key). Stored only encrypted; sent only sealed to one printer. `Debug`
/// prints the ids only.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PolicySecrets(pub BTreeMap<String, Redacted<String>>);

impl fmt::Debug for PolicySecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl PolicySecrets {
    pub fn get(&self, id: &str) -> Option<&Redacted<String>> {
        self.0.get(id)
    }
}

/// A certificate as uploaded, before parsing. `Debug` hides everything but the form.
#[derive(Clone, PartialEq, Eq)]
pub enum CertificateUpload {
    Pem(Redacted<String>),
    Der(Vec<u8>),
    Pkcs12 {
        der: Vec<u8>,
        passphrase: Redacted<String>,
    },
}

impl fmt::Debug for CertificateUpload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CertificateUpload::Pem(_) => "Pem([redacted])",
            CertificateUpload::Der(_) => "Der(..)",
            CertificateUpload::Pkcs12 { .. } => "Pkcs12([redacted])",
        })
    }
}

/// One item of admin input, checked against the catalogue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ItemInput {
    Value(SettingValue),
    Secret(Redacted<String>),
    Certificate(CertificateKind, CertificateUpload),
    /// Carry the previous version's secret or certificate over.
    Keep,
}

/// An item ready for [`build_version`]: certificates already parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResolvedItem {
    Value(SettingValue),
    Secret(Redacted<String>),
    Certificate {
        meta: CertificateMeta,
        /// An ID certificate's PEM with its private key.
        secret_pem: Option<Redacted<String>>,
    },
    Keep,
}

fn base64_field(field: &str, v: &serde_json::Value) -> Result<Vec<u8>, ValidationError> {
    use base64::Engine as _;
    let s = v
        .as_str()
        .ok_or_else(|| ValidationError::new(field, "must be base64 text"))?;
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .map_err(|_| ValidationError::new(field, "is not valid base64"))
}

/// Checks one item of input against the catalogue. Errors name the setting id (and the member,
/// e.g. `security.cert.id.passphrase`) and never contain the value.
pub fn parse_item(
    catalogue: &Catalogue,
    id: &str,
    input: &serde_json::Value,
) -> Result<ItemInput, ValidationError> {
    use serde_json::Value as J;
    let setting = catalogue
        .get(id)
        .ok_or_else(|| ValidationError::new(id, "is not a setting of the catalogue"))?;
    let object = input.as_object();
    let keep = object
        .map(|o| o.len() == 1 && o.get("keep") == Some(&J::Bool(true)))
        .unwrap_or(false);
    match &setting.kind {
        SettingType::Secret { .. } => {
            if keep {
                return Ok(ItemInput::Keep);
            }
            let value = object
                .filter(|o| o.len() == 1)
                .and_then(|o| o.get("secret"))
                .and_then(J::as_str)
                .ok_or_else(|| {
                    ValidationError::new(
                        id,
                        "is a secret: give {\"secret\": \"…\"} or {\"keep\": true}",
                    )
                })?;
            match setting.validate_value(&SettingValue::Text(value.to_string()))? {
                SettingValue::Secret(s) => Ok(ItemInput::Secret(s)),
                _ => Err(ValidationError::new(id, "is not a secret")),
            }
        }
        SettingType::Certificate { kind } => {
            if keep {
                return Ok(ItemInput::Keep);
            }
            let hint = match kind {
                CertificateKind::Ca => "is a CA certificate: give {\"pem\": \"…\"} or {\"der\": \"<base64>\"}",
                CertificateKind::Id => "is an ID certificate: give {\"pem\": \"<certificate and private key>\"} or {\"pkcs12\": \"<base64>\", \"passphrase\": \"…\"}",
            };
            let o = object.ok_or_else(|| ValidationError::new(id, hint))?;
            let upload = match (o.get("pem"), o.get("der"), o.get("pkcs12"), o.len()) {
                (Some(p), None, None, 1) => CertificateUpload::Pem(Redacted::new(
                    p.as_str()
                        .ok_or_else(|| ValidationError::new(format!("{id}.pem"), "must be text"))?
                        .to_string(),
                )),
                (None, Some(d), None, 1) => {
                    CertificateUpload::Der(base64_field(&format!("{id}.der"), d)?)
                }
                (None, None, Some(p), 2) if *kind == CertificateKind::Id => {
                    let passphrase = o.get("passphrase").and_then(J::as_str).ok_or_else(|| {
                        ValidationError::new(format!("{id}.passphrase"), "is required with pkcs12")
                    })?;
                    CertificateUpload::Pkcs12 {
                        der: base64_field(&format!("{id}.pkcs12"), p)?,
                        passphrase: Redacted::new(passphrase.to_string()),
                    }
                }
                _ => return Err(ValidationError::new(id, hint)),
            };
            Ok(ItemInput::Certificate(*kind, upload))
        }
        _ => {
            let value = match input {
                J::Bool(b) => SettingValue::Bool(*b),
                J::Number(n) => SettingValue::Integer(
                    n.as_i64()
                        .ok_or_else(|| ValidationError::new(id, "must be a whole number"))?,
                ),
                J::String(s) => SettingValue::Text(s.clone()),
                _ => {
                    return Err(ValidationError::new(
                        id,
                        format!("must be a {} value", setting.kind.name()),
                    ))
                }
            };
            Ok(ItemInput::Value(setting.validate_value(&value)?))
        }
    }
}

/// Builds a new version's items and secrets from resolved input. `Keep` takes the item (and its
/// secret) from `previous`; anything not in `input` is not in the new version.
pub fn build_version(
    input: BTreeMap<String, ResolvedItem>,
    previous: Option<(&PolicyItems, &PolicySecrets)>,
    actor: &str,
    now_ms: i64,
) -> Result<(PolicyItems, PolicySecrets), ValidationError> {
    if input.len() > MAX_ITEMS {
        return Err(ValidationError::new(
            "settings",
            format!("at most {MAX_ITEMS} items"),
        ));
    }
    let mut items = PolicyItems::new();
    let mut secrets = PolicySecrets::default();
    for (id, item) in input {
        match item {
            ResolvedItem::Value(value) => {
                items.insert(id, PolicyItem::Value { value });
            }
            ResolvedItem::Secret(value) => {
                secrets.0.insert(id.clone(), value);
                items.insert(
                    id,
                    PolicyItem::Secret {
                        set_at_ms: now_ms,
                        set_by: actor.to_string(),
                    },
                );
            }
            ResolvedItem::Certificate { meta, secret_pem } => {
                if let Some(pem) = secret_pem {
                    secrets.0.insert(id.clone(), pem);
                }
                items.insert(
                    id,
                    PolicyItem::Certificate {
                        certificate: meta,
                        set_at_ms: now_ms,
                        set_by: actor.to_string(),
                    },
                );
            }
            ResolvedItem::Keep => {
                let old = previous.and_then(|(items, secrets)| {
                    items
                        .get(&id)
                        .filter(|i| !matches!(i, PolicyItem::Value { .. }))
                        .map(|i| (i.clone(), secrets.get(&id).cloned()))
                });
                let (item, secret) = old.ok_or_else(|| {
                    ValidationError::new(
                        id.as_str(),
                        "has no earlier secret or certificate to keep",
                    )
                })?;
                if let Some(s) = secret {
                    secrets.0.insert(id.clone(), s);
                }
                items.insert(id, item);
            }
        }
    }
    Ok((items, secrets))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cat() -> Catalogue {
        Catalogue::builtin().unwrap()
    }

    #[test]
    fn plain_values_are_checked_against_the_catalogue() {
        let c = cat();
        assert_eq!(
            parse_item(&c, "network.telnet.enabled", &json!(false)).unwrap(),
            ItemInput::Value(SettingValue::Bool(false))
        );
        let e = parse_item(&c, "network.telnet.enabled", &json!("no")).unwrap_err();
        assert_eq!(e.field, "network.telnet.enabled");
        let e = parse_item(&c, "copier.color.access", &json!("sometimes")).unwrap_err();
        assert!(e.message.contains("must be one of"), "{e}");
        let e = parse_item(&c, "no.such.setting", &json!(true)).unwrap_err();
        assert_eq!(e.field, "no.such.setting");
        assert!(parse_item(&c, "network.telnet.enabled", &json!([1])).is_err());
    }

    #[test]
    fn secrets_need_the_secret_form_and_errors_never_hold_the_value() {
        let c = cat();
        let id = "security.ews.admin_password";
        match parse_item(&c, id, &json!({"secret": "Correct-Horse-9"})).unwrap() {
            ItemInput::Secret(s) => assert_eq!(s.expose(), "Correct-Horse-9"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            parse_item(&c, id, &json!({"keep": true})).unwrap(),
            ItemInput::Keep
        );
        for bad in [
            json!("Correct-Horse-9"),
            json!({"secret": "short"}),
            json!({"keep": false}),
        ] {
            let e = parse_item(&c, id, &bad).unwrap_err();
            assert_eq!(e.field, id);
            assert!(!e.to_string().contains("Correct-Horse-9"));
            assert!(!e.to_string().contains("short\""));
        }
        let dbg = format!(
            "{:?}",
            parse_item(&c, id, &json!({"secret": "Correct-Horse-9"}))
        );
        assert!(!dbg.contains("Correct-Horse-9"), "{dbg}");
    }

    #[test]
    fn certificate_forms() {
        let c = cat();
        assert!(matches!(
            parse_item(&c, "security.cert.ca", &json!({"pem": "x"})).unwrap(),
            ItemInput::Certificate(CertificateKind::Ca, CertificateUpload::Pem(_))
        ));
        assert!(matches!(
            parse_item(
                &c,
                "security.cert.id",
                &json!({"pkcs12": "AAEC", "passphrase": "p"})
            )
            .unwrap(),
            ItemInput::Certificate(CertificateKind::Id, CertificateUpload::Pkcs12 { .. })
        ));
        let e = parse_item(&c, "security.cert.id", &json!({"pkcs12": "AAEC"})).unwrap_err();
        assert_eq!(e.field, "security.cert.id");
        let e = parse_item(&c, "security.cert.ca", &json!({"der": "%%"})).unwrap_err();
        assert_eq!(e.field, "security.cert.ca.der");
        // A CA certificate never comes as PKCS#12 (that form carries a private key).
        assert!(parse_item(
            &c,
            "security.cert.ca",
            &json!({"pkcs12": "AAEC", "passphrase": "p"})
        )
        .is_err());
    }

    #[test]
    fn keep_carries_the_previous_secret_over_and_needs_one() {
        let mut first = BTreeMap::new();
        first.insert(
            "fax.receive.pin".to_string(),
            ResolvedItem::Secret(Redacted::new("1234".into())),
        );
        let (items, secrets) = build_version(first, None, "u1", 10).unwrap();
        let mut second = BTreeMap::new();
        second.insert("fax.receive.pin".to_string(), ResolvedItem::Keep);
        second.insert(
            "network.telnet.enabled".to_string(),
            ResolvedItem::Value(SettingValue::Bool(false)),
        );
        let (items2, secrets2) =
            build_version(second.clone(), Some((&items, &secrets)), "u2", 20).unwrap();
        assert_eq!(items2["fax.receive.pin"], items["fax.receive.pin"]);
        assert_eq!(secrets2.get("fax.receive.pin").unwrap().expose(), "1234");
        assert!(!format!("{secrets2:?}").contains("1234"));
        let e = build_version(second, None, "u2", 20).unwrap_err();
        assert_eq!(e.field, "fax.receive.pin");
    }
}
