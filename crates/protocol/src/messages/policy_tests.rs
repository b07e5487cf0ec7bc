//! Decoder tests of the policy additions: secret verifiers in check-ins, per-setting results in
//! acknowledgements, and the `apply_settings` data with its sealed secrets.

use super::*;
use std::collections::BTreeMap;

fn err(r: Result<impl std::fmt::Debug, MessageError>) -> (&'static str, String) {
    let e = r.unwrap_err();
    (e.code, e.field)
}

fn check_in(setting: &str) -> Vec<u8> {
    format!(r#"{{"seq":1,"taken_at_ms":5,"settings":{{"a.pw":{setting}}}}}"#).into_bytes()
}

const V: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

#[test]
fn secret_verifier_forms() {
    let c = CheckIn::decode(&check_in(&format!(r#"{{"set":true,"verifier":"{V}"}}"#))).unwrap();
    let want = ReportedValue::Secret {
        set: true,
        verifier: Some(V.into()),
    };
    assert_eq!(c.settings["a.pw"], want);
    assert_eq!(CheckIn::decode(&c.encode()).unwrap(), c);
    // Without a verifier, as before.
    let c = CheckIn::decode(&check_in(r#"{"set":true}"#)).unwrap();
    assert_eq!(c.settings["a.pw"], ReportedValue::secret(true));
    assert_eq!(
        String::from_utf8(c.encode()).unwrap(),
        r#"{"seq":1,"taken_at_ms":5,"settings":{"a.pw":{"set":true}}}"#
    );

    let bad = |v: &str| err(CheckIn::decode(&check_in(v)));
    let field = ("bad_payload", "settings.a.pw.verifier".to_string());
    assert_eq!(bad(&format!(r#"{{"set":false,"verifier":"{V}"}}"#)), field);
    assert_eq!(
        bad(&format!(r#"{{"set":true,"verifier":"{}"}}"#, &V[1..])),
        field
    );
    assert_eq!(
        bad(&format!(
            r#"{{"set":true,"verifier":"{}"}}"#,
            V.to_uppercase()
        )),
        field
    );
    assert_eq!(bad(r#"{"set":true,"verifier":""}"#), field);
    // Not a string: the value has none of the forms.
    let value = ("bad_payload", "settings.a.pw".to_string());
    assert_eq!(bad(r#"{"set":true,"verifier":5}"#), value);
    assert_eq!(bad(r#"{"set":true,"verifier":null}"#), value);
    // An object with a boolean `set` is a secret, whatever else it has.
    assert_eq!(
        bad(r#"{"set":true,"verifier":[],"sha256":"x","not_after_ms":1}"#),
        value
    );
    let e = CheckIn::decode(&check_in(r#"{"set":true,"verifier":"Hunter2"}"#)).unwrap_err();
    assert!(!e.to_string().contains("Hunter2"));
}

#[test]
fn reported_values_keep_their_forms() {
    for (json, want) in [
        ("true", ReportedValue::Bool(true)),
        ("-5", ReportedValue::Integer(-5)),
        (r#""1.2""#, ReportedValue::Text("1.2".into())),
        (r#"{"set":false,"x":1}"#, ReportedValue::secret(false)),
        (
            r#"{"sha256":"x","not_after_ms":7}"#,
            ReportedValue::Certificate {
                sha256: "x".into(),
                not_after_ms: 7,
            },
        ),
    ] {
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(ReportedValue::from_json(&v), Some(want), "{json}");
    }
    for json in [
        "1.0",
        "-0",
        "18446744073709551615",
        "{}",
        r#"{"set":1}"#,
        "null",
    ] {
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(ReportedValue::from_json(&v), None, "{json}");
    }
}

fn fetch(results: &str) -> Vec<u8> {
    format!(r#"{{"acks":[{{"id":"w1","outcome":"failed","reason":"r","results":{results}}}]}}"#)
        .into_bytes()
}

#[test]
fn work_ack_results() {
    let f = Fetch::decode(&fetch(
        r#"{"a.x":{"outcome":"refused","reason":"unsupported"},"b":{"outcome":"failed","reason":""}}"#,
    ))
    .unwrap();
    let r = &f.acks[0].results;
    assert_eq!(r["a.x"].outcome, SettingOutcome::Refused);
    assert_eq!(r["a.x"].reason, UNSUPPORTED);
    assert_eq!(r["b"].outcome, SettingOutcome::Failed);
    assert_eq!(Fetch::decode(&f.encode()).unwrap(), f);
    // Without results, as before.
    let plain = Fetch {
        acks: vec![WorkAck::new("w", Outcome::Done, None)],
        wait_ms: 0,
    };
    assert_eq!(
        plain.encode(),
        br#"{"acks":[{"id":"w","outcome":"done"}],"wait_ms":0}"#
    );

    let bad = |results: &str| err(Fetch::decode(&fetch(results)));
    let at = |code: &'static str, f: &str| (code, format!("acks[0].results{f}"));
    assert_eq!(
        bad(r#"{"a":{"outcome":"done","reason":""}}"#),
        at("bad_payload", ".a.outcome")
    );
    assert_eq!(
        bad(r#"{"a":{"outcome":"failed"}}"#),
        at("bad_payload", ".a.reason")
    );
    assert_eq!(bad(r#"{"a":null}"#), at("bad_payload", ".a"));
    assert_eq!(bad(r#"{"a":[]}"#), at("bad_payload", ".a"));
    assert_eq!(bad(r#"[]"#), at("bad_payload", ""));
    assert_eq!(
        bad(r#"{"":{"outcome":"failed","reason":""}}"#),
        at("bad_payload", "")
    );
    let long = format!(
        r#"{{"a":{{"outcome":"failed","reason":"{}"}}}}"#,
        "ü".repeat(201)
    );
    assert_eq!(bad(&long), at("too_long", ".a.reason"));
    let many: Vec<String> = (0..=MAX_APPLY_SETTINGS)
        .map(|n| format!(r#""s{n}":{{"outcome":"failed","reason":""}}"#))
        .collect();
    assert_eq!(bad(&format!("{{{}}}", many.join(","))), at("too_many", ""));
    let done = br#"{"acks":[{"id":"w","outcome":"done","results":{"a":{"outcome":"failed","reason":""}}}]}"#;
    assert_eq!(err(Fetch::decode(done)), at("bad_payload", ""));
}

const PEM: &str = "-----BEGIN CERTIFICATE-----\r\nMIIB\nAA==\n-----END CERTIFICATE-----\n";

fn apply(settings: &str, extra: &str) -> Vec<u8> {
    format!(r#"{{"policy":"p-1","version":3,"settings":{settings}{extra}}}"#).into_bytes()
}

#[test]
fn apply_settings_data() {
    let a = ApplySettings {
        policy: "3f2b8c1e-5d4a-4b6c-9e7f-0a1b2c3d4e5f".into(),
        version: 7,
        settings: BTreeMap::from([
            ("network.telnet.enabled".into(), ApplyValue::Bool(false)),
            ("security.timeout".into(), ApplyValue::Integer(60)),
            ("security.cert.ca".into(), ApplyValue::Text(PEM.into())),
        ]),
        sealed: Some("50465301".into()),
    };
    assert_eq!(ApplySettings::decode(&a.to_data()).unwrap(), a);
    let empty = ApplySettings::decode_bytes(&apply("{}", "")).unwrap();
    assert!(empty.settings.is_empty() && empty.sealed.is_none());

    let bad =
        |settings: &str, extra: &str| err(ApplySettings::decode_bytes(&apply(settings, extra)));
    let at = |code: &'static str, f: &str| (code, f.to_string());
    assert_eq!(bad(r#"{"a":null}"#, ""), at("bad_payload", "settings.a"));
    assert_eq!(
        bad(r#"{"a":{"set":true}}"#, ""),
        at("bad_payload", "settings.a")
    );
    assert_eq!(bad(r#"{"a":1.5}"#, ""), at("bad_payload", "settings.a"));
    assert_eq!(bad(r#"[]"#, ""), at("bad_payload", "settings"));
    assert_eq!(bad(r#"{"":1}"#, ""), at("bad_payload", "settings"));
    let id = "x".repeat(MAX_SETTING_ID_LEN + 1);
    assert_eq!(
        bad(&format!(r#"{{"{id}":1}}"#), ""),
        at("too_long", "settings")
    );
    let text = "ü".repeat(MAX_SETTING_TEXT_LEN + 1);
    assert_eq!(
        bad(&format!(r#"{{"a":"{text}"}}"#), ""),
        at("too_long", "settings.a")
    );
    assert_eq!(bad(r#"{"a":"x\ny"}"#, ""), at("bad_payload", "settings.a"));
    let pem = format!("-----BEGIN CERTIFICATE-----{}", "A".repeat(MAX_PEM_LEN));
    assert_eq!(
        bad(&format!(r#"{{"a":"{pem}"}}"#), ""),
        at("too_long", "settings.a")
    );
    assert_eq!(
        bad(r#"{"a":"-----BEGIN X\u0007"}"#, ""),
        at("bad_payload", "settings.a")
    );
    let many: Vec<String> = (0..=MAX_APPLY_SETTINGS)
        .map(|n| format!(r#""s{n}":1"#))
        .collect();
    assert_eq!(
        bad(&format!("{{{}}}", many.join(",")), ""),
        at("too_many", "settings")
    );
    for sealed in [r#""""#, r#""ABCD""#, r#""abc""#, "5"] {
        let e = bad("{}", &format!(r#","sealed":{sealed}"#));
        assert_eq!(e, at("bad_payload", "sealed"), "{sealed}");
    }
    assert_eq!(bad("{}", r#","sealed":null"#), at("bad_payload", "sealed"));
    let e = err(ApplySettings::decode_bytes(
        br#"{"policy":"p","settings":{}}"#,
    ));
    assert_eq!(e, at("bad_payload", "version"));
    let e = err(ApplySettings::decode_bytes(
        br#"{"policy":"","version":1,"settings":{}}"#,
    ));
    assert_eq!(e, at("bad_payload", "policy"));
    let e = err(ApplySettings::decode_bytes(
        br#"{"policy":"p","version":9007199254740992,"settings":{}}"#,
    ));
    assert_eq!(e, at("out_of_range", "version"));
    let e = err(ApplySettings::decode_bytes(
        br#"{"policy":"p","version":1}"#,
    ));
    assert_eq!(e, at("bad_payload", "settings"));
}

#[test]
fn apply_secrets_content() {
    let content = br#"{"security.ews.admin_password":"Hunter2!","security.cert.id":"-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n"}"#;
    let s = ApplySecrets::decode(content).unwrap();
    assert_eq!(s.len(), 2);
    assert_eq!(s.get("security.ews.admin_password"), Some("Hunter2!"));
    assert_eq!(ApplySecrets::decode(&s.encode()).unwrap(), s);
    let debug = format!("{s:?}");
    assert!(debug.contains("security.ews.admin_password") && !debug.contains("Hunter2"));

    let bad = |c: &[u8]| err(ApplySecrets::decode(c));
    assert_eq!(bad(br#"{"a":5}"#), ("bad_payload", "a".to_string()));
    assert_eq!(bad(br#"{"a":"x\u0000"}"#), ("bad_payload", "a".to_string()));
    assert_eq!(bad(br#"{"":"x"}"#), ("bad_payload", String::new()));
    assert_eq!(bad(br#"["x"]"#), ("bad_payload", String::new()));
    let e = ApplySecrets::decode(br#"{"a":"Hunter2\u0007"}"#).unwrap_err();
    assert!(!e.to_string().contains("Hunter2"));
    let many: Vec<String> = (0..=MAX_APPLY_SETTINGS)
        .map(|n| format!(r#""s{n}":"x""#))
        .collect();
    assert_eq!(
        bad(format!("{{{}}}", many.join(",")).as_bytes()),
        ("too_many", String::new())
    );
}
