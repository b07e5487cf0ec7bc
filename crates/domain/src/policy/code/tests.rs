use super::*;
use crate::catalogue::Catalogue;
use crate::policy::document::CertificateMeta;
use crate::redact::Redacted;
use serde_json::json;

const FP: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
const FP2: &str = "0000000000000000000000000000000000000000000000000000000000000001";

fn cat() -> Catalogue {
    Catalogue::builtin().unwrap()
}

fn sample() -> PolicyCode {
    let mut settings = BTreeMap::new();
    settings.insert("network.telnet.enabled".into(), CodeItem::Bool(false));
    settings.insert(
        "filesystem.stored_jobs.retention".into(),
        CodeItem::Integer(24),
    );
    settings.insert(
        "copier.color.access".into(),
        CodeItem::Text("sign-in-required".into()),
    );
    settings.insert("security.ews.admin_password".into(), CodeItem::Secret);
    settings.insert(
        "security.cert.ca".into(),
        CodeItem::Certificate { sha256: FP.into() },
    );
    PolicyCode {
        name: "Baseline \"HQ\"".into(),
        description: Some("Every printer — ümlauts too".into()),
        mode: PolicyMode::Remediate,
        settings,
    }
}

fn parsed(text: &str) -> ParsedCode {
    parse(text).unwrap()
}

#[test]
fn export_is_canonical_sorted_and_holds_no_secret() {
    let text = render(&sample());
    let body: Vec<&str> = text.lines().skip_while(|l| l.starts_with('#')).collect();
    assert_eq!(
        body,
        [
            r#"name = "Baseline \"HQ\"""#,
            r#"description = "Every printer — ümlauts too""#,
            r#"mode = "remediate""#,
            "",
            "[settings]",
            r#""copier.color.access" = "sign-in-required""#,
            r#""filesystem.stored_jobs.retention" = 24"#,
            r#""network.telnet.enabled" = false"#,
            &format!(r#""security.cert.ca" = {{ certificate = "sha256:{FP}" }}"#),
            r#""security.ews.admin_password" = { secret = "set" }"#,
        ]
    );
}

#[test]
fn round_trip_is_lossless_and_byte_identical() {
    let code = sample();
    let text = render(&code);
    let p = parsed(&text);
    assert_eq!(p.code, code);
    p.validate(&cat()).unwrap();
    assert_eq!(render(&p.code), text);
    // No description, no settings.
    let bare = PolicyCode {
        name: "Empty".into(),
        description: None,
        mode: PolicyMode::Assess,
        settings: BTreeMap::new(),
    };
    assert_eq!(parsed(&render(&bare)).code, bare);
    // Any text survives quoting (the catalogue would refuse most of these; parsing must not).
    let mut odd = bare.clone();
    for (i, s) in [
        "back\\slash",
        "quote\"",
        "tab\tnew\nline\r",
        "\u{1}\u{7f}",
        "'single'",
        "€",
    ]
    .iter()
    .enumerate()
    {
        odd.settings
            .insert(format!("x.odd{i}"), CodeItem::Text(s.to_string()));
    }
    assert_eq!(parsed(&render(&odd)).code, odd);
}

#[test]
fn stored_items_become_references() {
    let mut items = PolicyItems::new();
    items.insert(
        "copier.color.access".into(),
        PolicyItem::Value {
            value: SettingValue::Enum("disabled".into()),
        },
    );
    items.insert(
        "fax.receive.pin".into(),
        PolicyItem::Secret {
            set_at_ms: 1,
            set_by: "u".into(),
            generate: None,
        },
    );
    items.insert(
        "security.cert.ca".into(),
        PolicyItem::Certificate {
            certificate: CertificateMeta {
                sha256: FP.to_uppercase(),
                subject: "CN=CA".into(),
                not_after_ms: 5,
                pem: "-----BEGIN CERTIFICATE-----".into(),
            },
            set_at_ms: 1,
            set_by: "u".into(),
        },
    );
    items.insert(
        "x.leaked".into(),
        PolicyItem::Value {
            value: SettingValue::Secret(Redacted::new("Hunter2-Hunter2".into())),
        },
    );
    let code = PolicyCode::from_items("P", None, PolicyMode::Assess, &items);
    assert_eq!(
        code.settings["copier.color.access"],
        CodeItem::Text("disabled".into())
    );
    assert_eq!(code.settings["fax.receive.pin"], CodeItem::Secret);
    assert_eq!(
        code.settings["security.cert.ca"],
        CodeItem::Certificate { sha256: FP.into() }
    );
    let text = render(&code);
    assert!(
        !text.contains("Hunter2") && !text.contains("BEGIN"),
        "{text}"
    );
}

/// `check(text, line, item, message part)`: the file is refused with that line and item.
fn refused(text: &str, line: usize, item: Option<&str>, part: &str) {
    let e = parse(text)
        .and_then(|p| p.validate(&cat()))
        .expect_err(text);
    assert_eq!(e.line(), line, "{e}");
    assert_eq!(e.item_id(), item, "{e}");
    assert!(e.to_string().contains(part), "{e}");
    assert!(e.to_string().starts_with(&format!("line {line}: ")), "{e}");
}

const HEAD: &str = "name = \"P\"\nmode = \"assess\"\n[settings]\n";

#[test]
fn errors_name_the_line_and_the_item() {
    // Syntax.
    refused(
        &format!("{HEAD}\"network.telnet.enabled\" = false\n\"network.lpd.enabled\" = = 1\n"),
        5,
        Some("network.lpd.enabled"),
        "not valid",
    );
    refused(
        &format!("{HEAD}\"network.telnet.enabled\" = false\n\"network.telnet.enabled\" = true\n"),
        5,
        Some("network.telnet.enabled"),
        "duplicate",
    );
    refused(
        "name = \"P\"\nmdoe = \"assess\"\n",
        2,
        Some("mdoe"),
        "unknown field",
    );
    refused(&format!("{HEAD}[broken\n"), 4, None, "not valid");
    refused(
        &format!("{HEAD}\n\nnetwork.telnet.enabled = false\n"),
        6,
        Some("network.telnet.enabled"),
        "quote setting ids",
    );
    refused(
        &format!("{HEAD}network = {{ telnet = 1 }}\n"),
        4,
        Some("network"),
        "is not a setting id: quote setting ids",
    );
    // Shape.
    refused("mode = \"assess\"\n", 1, Some("name"), "required");
    refused(
        "name = \"P\"\n\nmode = \"always\"\n",
        3,
        Some("mode"),
        "assess or remediate",
    );
    refused("name = 7\nmode = \"assess\"\n", 1, Some("name"), "string");
    refused(
        &format!("{HEAD}\n\"network.telnet.enabled\" = [true]\n"),
        5,
        Some("network.telnet.enabled"),
        "must be true/false",
    );
    refused(
        &format!("{HEAD}\"security.cert.ca\" = {{ certificate = \"md5:00\" }}\n"),
        4,
        Some("security.cert.ca"),
        "sha256:",
    );
    // The first error in file order, not in id order.
    refused(
        &format!("{HEAD}\"z.first\" = [1]\n\"a.second\" = [2]\n"),
        4,
        Some("z.first"),
        "must be true/false",
    );
    // Catalogue.
    refused(
        &format!("{HEAD}\"network.telnet.enabled\" = false\n\"no.such.setting\" = true\n"),
        5,
        Some("no.such.setting"),
        "not a setting of the catalogue",
    );
    refused(
        &format!("{HEAD}\"filesystem.stored_jobs.retention\" = 721\n"),
        4,
        Some("filesystem.stored_jobs.retention"),
        "from 0 to 720",
    );
    refused(
        &format!("{HEAD}\"copier.color.access\" = \"sometimes\"\n"),
        4,
        Some("copier.color.access"),
        "must be one of",
    );
    refused(
        &format!("{HEAD}\"network.telnet.enabled\" = {{ secret = \"set\" }}\n"),
        4,
        Some("network.telnet.enabled"),
        "not a secret",
    );
    refused(
        &format!("{HEAD}\"security.cert.ca\" = {{ secret = \"set\" }}\n"),
        4,
        Some("security.cert.ca"),
        "is a certificate",
    );
}

#[test]
fn a_secret_value_in_a_file_is_refused_without_being_echoed() {
    for text in [
        format!("{HEAD}\"security.ews.admin_password\" = {{ secret = \"Correct-Horse-9\" }}\n"),
        format!("{HEAD}\"security.ews.admin_password\" = \"Correct-Horse-9\"\n"),
        // A syntax error names the key, never the rest of the line.
        format!("{HEAD}\"security.ews.admin_password\" = \"Correct-Horse-9\n"),
    ] {
        let e = parse(&text).and_then(|p| p.validate(&cat())).unwrap_err();
        assert_eq!(e.item_id(), Some("security.ews.admin_password"));
        assert_eq!(e.line(), 4);
        assert!(!e.to_string().contains("Correct-Horse"), "{e}");
    }
}

fn current() -> PolicyCode {
    sample()
}

#[test]
fn applying_an_unchanged_export_keeps_secrets_and_certificates() {
    let file = parsed(&render(&sample()));
    let p = plan(&file, Some(&current()), &BTreeMap::new(), &cat()).unwrap();
    assert!(p.changes.is_empty(), "{:?}", p.changes);
    assert_eq!(
        p.settings["security.ews.admin_password"],
        json!({"keep": true})
    );
    assert_eq!(p.settings["security.cert.ca"], json!({"keep": true}));
    assert_eq!(p.settings["network.telnet.enabled"], json!(false));
    assert_eq!(p.settings["filesystem.stored_jobs.retention"], json!(24));
    assert_eq!(p.settings["copier.color.access"], json!("sign-in-required"));
}

#[test]
fn changes_are_listed_item_by_item_without_secret_values() {
    let mut edited = sample();
    edited.mode = PolicyMode::Assess;
    edited.description = None;
    edited.settings.remove("copier.color.access");
    edited.settings.insert(
        "filesystem.stored_jobs.retention".into(),
        CodeItem::Integer(48),
    );
    edited
        .settings
        .insert("network.lpd.enabled".into(), CodeItem::Bool(false));
    let file = parsed(&render(&edited));
    let mut secrets = BTreeMap::new();
    secrets.insert(
        "security.ews.admin_password".to_string(),
        Redacted::new("Correct-Horse-99".to_string()),
    );
    let p = plan(&file, Some(&current()), &secrets, &cat()).unwrap();
    let listed: Vec<(&str, &str, Option<&str>, Option<&str>)> = p
        .changes
        .iter()
        .map(|c| {
            (
                c.item.as_str(),
                c.kind.as_str(),
                c.before.as_deref(),
                c.after.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("mode", "changed", Some("\"remediate\""), Some("\"assess\"")),
            (
                "description",
                "removed",
                Some("\"Every printer — ümlauts too\""),
                None
            ),
            (
                "copier.color.access",
                "removed",
                Some("\"sign-in-required\""),
                None
            ),
            (
                "filesystem.stored_jobs.retention",
                "changed",
                Some("24"),
                Some("48")
            ),
            ("network.lpd.enabled", "added", None, Some("false")),
            (
                "security.ews.admin_password",
                "changed",
                Some("{ secret = \"set\" }"),
                Some("{ secret = \"set\" } (new value)")
            ),
        ]
    );
    assert_eq!(
        p.settings["security.ews.admin_password"],
        json!({"secret": "Correct-Horse-99"})
    );
    assert!(!format!("{p:?}").contains("Correct-Horse"));
}

#[test]
fn references_without_anything_to_keep_are_refused_naming_the_item() {
    let file = parsed(&render(&sample()));
    // A new policy: nothing to keep.
    let e = plan(&file, None, &BTreeMap::new(), &cat()).unwrap_err();
    assert_eq!(e.item_id(), Some("security.cert.ca"));
    assert_eq!(e.line(), file.line("security.cert.ca"));
    // A different certificate on the server.
    let mut other = current();
    other.settings.insert(
        "security.cert.ca".into(),
        CodeItem::Certificate { sha256: FP2.into() },
    );
    let e = plan(&file, Some(&other), &BTreeMap::new(), &cat()).unwrap_err();
    assert_eq!(e.item_id(), Some("security.cert.ca"));
    assert!(e.to_string().contains(FP2), "{e}");
    // No secret on the server.
    let mut no_secret = current();
    no_secret.settings.remove("security.ews.admin_password");
    let e = plan(&file, Some(&no_secret), &BTreeMap::new(), &cat()).unwrap_err();
    assert_eq!(e.item_id(), Some("security.ews.admin_password"));
    assert!(e.to_string().contains("--secret"), "{e}");
}

#[test]
fn given_secrets_must_be_referenced_and_valid() {
    let file = parsed(&format!(
        "{HEAD}\"fax.receive.pin\" = {{ secret = \"set\" }}\n"
    ));
    let one = |id: &str, v: &str| {
        let mut m = BTreeMap::new();
        m.insert(id.to_string(), Redacted::new(v.to_string()));
        m
    };
    let p = plan(&file, None, &one("fax.receive.pin", "4711"), &cat()).unwrap();
    assert_eq!(p.settings["fax.receive.pin"], json!({"secret": "4711"}));
    assert_eq!(p.changes[0].kind, ChangeKind::Added);
    let e = plan(&file, None, &one("fax.receive.pin", "123456789"), &cat()).unwrap_err();
    assert_eq!((e.line(), e.item_id()), (4, Some("fax.receive.pin")));
    assert!(!e.to_string().contains("123456789"), "{e}");
    let e = plan(&file, None, &one("filesystem.password", "abcdefgh"), &cat()).unwrap_err();
    assert_eq!(e.item_id(), Some("filesystem.password"));
}
