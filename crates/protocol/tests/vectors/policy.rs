//! The `policy` section of the vectors (docs/protocol.md §7.8, §7.9): secret verifiers, an
//! `apply_settings` work item with its sealed secrets, the acknowledgement with per-setting
//! results and the check-in proving the secrets, and `data` / secrets the checks refuse.

use std::collections::BTreeMap;

use printfleet_protocol::messages::{
    ApplySecrets, ApplySettings, ApplyValue, CheckIn, Fetch, MessageError, Outcome, ReportedValue,
    SettingOutcome, SettingResult, Work, WorkAck, WorkItem, APPLY_SETTINGS, SETTINGS_PURPOSE,
};
use printfleet_protocol::verifier::{secret_verifier, SECRET_VERIFIER_LABEL};
use printfleet_protocol::{KeyPair, MessageType, SealedToDevice};
use serde::Serialize;

use super::{message_vector, seq, valid_body, MessageVector, ValidBody, TS};

#[derive(Serialize)]
pub struct Policy {
    verifier_key_hex: String,
    verifier_label_hex: String,
    verifiers: Vec<VerifierVector>,
    /// The sealed body (type 0x01, purpose `settings`) inside the work item's `data.sealed`.
    sealed_secrets: ValidBody,
    /// The sealed secrets' content as JSON.
    secrets_json: serde_json::Value,
    /// `work` with one `apply_settings` item, its acknowledgement with results, and the check-in
    /// reporting the secrets with their verifiers.
    valid: Vec<MessageVector>,
    invalid_apply_data: Vec<InvalidText>,
    invalid_apply_secrets: Vec<InvalidText>,
}

#[derive(Serialize)]
struct VerifierVector {
    setting_id: &'static str,
    value: &'static str,
    message_hex: String,
    verifier_hex: String,
}

#[derive(Serialize)]
struct InvalidText {
    name: &'static str,
    text: String,
    expected_code: &'static str,
    expected_field: String,
}

const VERIFIER_CASES: [(&str, &str); 3] = [
    ("security.ews.admin_password", "Hunter2!"),
    ("scan.email.smtp.password", "Zugangsdaten-ÄÖÜ-2026"),
    ("network.snmp.v1v2c.set_community", ""),
];

pub fn policy_vectors() -> Policy {
    let server = KeyPair::derive(&seq(0x00));
    let printer = KeyPair::derive(&seq(0x20));
    let key = seq(0x60);
    let verifiers = VERIFIER_CASES
        .iter()
        .map(|&(setting_id, value)| {
            let message = [
                SECRET_VERIFIER_LABEL,
                b"\0",
                setting_id.as_bytes(),
                b"\0",
                value.as_bytes(),
            ]
            .concat();
            VerifierVector {
                setting_id,
                value,
                message_hex: hex::encode(message),
                verifier_hex: hex::encode(secret_verifier(&key, setting_id, value)),
            }
        })
        .collect();

    let secrets = ApplySecrets::new(BTreeMap::from([
        ("security.ews.admin_password".into(), "Hunter2!".into()),
        (
            "scan.email.smtp.password".into(),
            "Zugangsdaten-ÄÖÜ-2026".into(),
        ),
    ]));
    let payload = SealedToDevice {
        purpose: SETTINGS_PURPOSE.into(),
        content: secrets.encode(),
    };
    let ids: [[u8; 16]; 4] =
        std::array::from_fn(|n| std::array::from_fn(|i| 0x70 + 0x10 * n as u8 + i as u8));
    let sealed = valid_body(
        "apply_settings_secrets",
        &server,
        &printer,
        seq(0x16),
        ids[0],
        &payload,
    );
    let apply = ApplySettings {
        policy: "9b2e4f60-1c3d-4a5b-8c7d-6e5f4a3b2c1d".into(),
        version: 3,
        settings: BTreeMap::from([
            ("network.telnet.enabled".into(), ApplyValue::Bool(false)),
            (
                "security.tls.min_version".into(),
                ApplyValue::Text("1.2".into()),
            ),
            (
                "security.control_panel.inactivity_timeout".into(),
                ApplyValue::Integer(120),
            ),
            ("fax.receive.pin_required".into(), ApplyValue::Bool(true)),
        ]),
        sealed: Some(sealed.body_hex.clone()),
    };
    assert_eq!(ApplySettings::decode(&apply.to_data()), Ok(apply.clone()));
    let work = Work {
        reply_to: hex::encode(ids[1]),
        items: vec![WorkItem {
            id: "c4d5e6f7-0819-4a2b-9c3d-4e5f60718293".into(),
            kind: APPLY_SETTINGS.into(),
            data: apply.to_data(),
        }],
    };
    let fetch = Fetch {
        acks: vec![WorkAck {
            id: work.items[0].id.clone(),
            outcome: Outcome::Refused,
            reason: Some("1 of 6 settings not applied".into()),
            results: BTreeMap::from([(
                "fax.receive.pin_required".into(),
                SettingResult {
                    outcome: SettingOutcome::Refused,
                    reason: "unsupported".into(),
                },
            )]),
        }],
        wait_ms: 0,
    };
    let check_in = CheckIn {
        seq: 43,
        taken_at_ms: TS,
        info: None,
        meters: None,
        supplies: None,
        events: vec![],
        settings: secrets
            .iter()
            .map(|(id, value)| {
                let verifier = hex::encode(secret_verifier(&key, id, value));
                let v = ReportedValue::Secret {
                    set: true,
                    verifier: Some(verifier),
                };
                (id.to_string(), v)
            })
            .chain([("network.telnet.enabled".into(), ReportedValue::Bool(false))])
            .collect(),
    };
    assert_eq!(Work::decode(&work.encode()), Ok(work.clone()));
    assert_eq!(Fetch::decode(&fetch.encode()), Ok(fetch.clone()));
    assert_eq!(CheckIn::decode(&check_in.encode()), Ok(check_in.clone()));
    let (p, s) = (("printer", &printer), ("server", &server));
    let valid = vec![
        message_vector(
            "apply_work",
            MessageType::Work,
            s,
            p,
            seq(0x17),
            ids[2],
            &work.encode(),
        ),
        message_vector(
            "apply_fetch",
            MessageType::Fetch,
            p,
            s,
            seq(0x18),
            ids[1],
            &fetch.encode(),
        ),
        message_vector(
            "apply_check_in",
            MessageType::CheckIn,
            p,
            s,
            seq(0x19),
            ids[3],
            &check_in.encode(),
        ),
    ];
    Policy {
        verifier_key_hex: hex::encode(key),
        verifier_label_hex: hex::encode(SECRET_VERIFIER_LABEL),
        verifiers,
        sealed_secrets: sealed,
        secrets_json: serde_json::from_slice(&secrets.encode()).unwrap(),
        valid,
        invalid_apply_data: invalid(invalid_data(), ApplySettings::decode_bytes),
        invalid_apply_secrets: invalid(invalid_secrets(), ApplySecrets::decode),
    }
}

fn invalid<T>(
    cases: Vec<(&'static str, String, &'static str, &str)>,
    decode: impl Fn(&[u8]) -> Result<T, MessageError>,
) -> Vec<InvalidText> {
    cases
        .into_iter()
        .map(|(name, text, code, field)| {
            let e = decode(text.as_bytes()).err().unwrap();
            assert_eq!((e.code, e.field.as_str()), (code, field), "{name}");
            InvalidText {
                name,
                text,
                expected_code: e.code,
                expected_field: e.field,
            }
        })
        .collect()
}

fn invalid_data() -> Vec<(&'static str, String, &'static str, &'static str)> {
    let data = |settings: &str, extra: &str| {
        format!(r#"{{"policy":"p-1","version":3,"settings":{settings}{extra}}}"#)
    };
    let many = (0..257)
        .map(|n| format!(r#""s{n}":true"#))
        .collect::<Vec<_>>();
    let pem = format!("-----BEGIN CERTIFICATE-----{}", "A".repeat(65_536));
    vec![
        (
            "version_missing",
            r#"{"policy":"p","settings":{}}"#.into(),
            "bad_payload",
            "version",
        ),
        (
            "settings_missing",
            r#"{"policy":"p","version":1}"#.into(),
            "bad_payload",
            "settings",
        ),
        (
            "policy_empty",
            r#"{"policy":"","version":1,"settings":{}}"#.into(),
            "bad_payload",
            "policy",
        ),
        (
            "version_2_pow_53",
            r#"{"policy":"p","version":9007199254740992,"settings":{}}"#.into(),
            "out_of_range",
            "version",
        ),
        (
            "value_null",
            data(r#"{"a":null}"#, ""),
            "bad_payload",
            "settings.a",
        ),
        (
            "value_object",
            data(r#"{"a":{"set":true}}"#, ""),
            "bad_payload",
            "settings.a",
        ),
        (
            "value_fraction",
            data(r#"{"a":1.5}"#, ""),
            "bad_payload",
            "settings.a",
        ),
        (
            "257_settings",
            data(&format!("{{{}}}", many.join(",")), ""),
            "too_many",
            "settings",
        ),
        (
            "id_129_characters",
            data(&format!(r#"{{"{}":1}}"#, "x".repeat(129)), ""),
            "too_long",
            "settings",
        ),
        (
            "text_256_characters",
            data(&format!(r#"{{"a":"{}"}}"#, "ü".repeat(256)), ""),
            "too_long",
            "settings.a",
        ),
        (
            "text_with_line_feed",
            data(r#"{"a":"x\ny"}"#, ""),
            "bad_payload",
            "settings.a",
        ),
        (
            "pem_65537_characters",
            data(&format!(r#"{{"a":"{pem}"}}"#), ""),
            "too_long",
            "settings.a",
        ),
        (
            "pem_with_bell",
            data(r#"{"a":"-----BEGIN X\r\n\u0007"}"#, ""),
            "bad_payload",
            "settings.a",
        ),
        (
            "sealed_uppercase",
            data("{}", r#","sealed":"ABCD""#),
            "bad_payload",
            "sealed",
        ),
        (
            "sealed_odd_length",
            data("{}", r#","sealed":"abc""#),
            "bad_payload",
            "sealed",
        ),
        (
            "repeated_setting",
            data(r#"{"a":1,"a":2}"#, ""),
            "bad_payload",
            "settings.a",
        ),
    ]
}

fn invalid_secrets() -> Vec<(&'static str, String, &'static str, &'static str)> {
    let many = (0..257)
        .map(|n| format!(r#""s{n}":"x""#))
        .collect::<Vec<_>>();
    vec![
        ("top_level_list", r#"["x"]"#.into(), "bad_payload", ""),
        (
            "value_not_string",
            r#"{"a":"x","b":5}"#.into(),
            "bad_payload",
            "b",
        ),
        ("empty_id", r#"{"":"x"}"#.into(), "bad_payload", ""),
        (
            "control_character",
            r#"{"a":"x\u0000"}"#.into(),
            "bad_payload",
            "a",
        ),
        (
            "257_secrets",
            format!("{{{}}}", many.join(",")),
            "too_many",
            "",
        ),
    ]
}
