use super::*;
use crate::catalogue::SettingValue;
use crate::ids::{GroupId, PolicyId};
use crate::policy::document::{CertificateMeta, PolicyItems, PolicyMode};
use crate::policy::effective::{effective, Assignment};
use printfleet_protocol::messages::Capabilities;
use std::collections::BTreeSet;
use uuid::Uuid;

const NOW: i64 = 1_800_000_000_000;
const DAY: i64 = 86_400_000;

fn info(scan: bool, colour: bool) -> DeviceInfo {
    DeviceInfo {
        name: "p".into(),
        model: "m".into(),
        serial: "s".into(),
        firmware: "1".into(),
        region: None,
        language: None,
        capabilities: Capabilities {
            colour,
            duplex: true,
            scan,
            fax: false,
        },
    }
}

fn policy() -> PolicyItems {
    let mut p = PolicyItems::new();
    p.insert(
        "network.telnet.enabled".into(),
        PolicyItem::Value {
            value: SettingValue::Bool(false),
        },
    );
    p.insert(
        "copier.color.access".into(),
        PolicyItem::Value {
            value: SettingValue::Enum("sign-in-required".into()),
        },
    );
    p.insert(
        "security.ews.admin_password".into(),
        PolicyItem::Secret {
            set_at_ms: 1,
            set_by: "u".into(),
            generate: None,
        },
    );
    p.insert(
        "security.cert.ca".into(),
        PolicyItem::Certificate {
            certificate: CertificateMeta {
                sha256: "ab".repeat(32),
                subject: "CN=ca".into(),
                not_after_ms: NOW + 400 * DAY,
                pem: String::new(),
            },
            set_at_ms: 1,
            set_by: "u".into(),
        },
    );
    p
}

fn run(state: &DeviceState, refused: &BTreeSet<String>) -> BTreeMap<String, ItemAssessment> {
    let c = Catalogue::builtin().unwrap();
    let items = policy();
    let g = GroupId(Uuid::from_bytes([1; 16]));
    let a = Assignment {
        policy: PolicyId(Uuid::from_bytes([2; 16])),
        version: 3,
        mode: PolicyMode::Assess,
        group: g,
        priority: 1,
    };
    let e = effective(&[g].into(), &[a], |_| Some(&items));
    let verifier = |id: &str, o: &Origin| {
        assert_eq!(o.version, 3);
        (id == "security.ews.admin_password").then(|| "cd".repeat(32))
    };
    assess(&AssessInput {
        catalogue: &c,
        state,
        effective: &e,
        expected_verifier: &verifier,
        refused_unsupported: refused,
        now_ms: NOW,
    })
    .into_iter()
    .map(|a| (a.setting_id.clone(), a))
    .collect()
}
use std::collections::BTreeMap;

fn status(r: &BTreeMap<String, ItemAssessment>, id: &str) -> ItemStatus {
    r[id].status
}

#[test]
fn nothing_reported_is_unknown() {
    let r = run(&DeviceState::default(), &BTreeSet::new());
    assert!(r.values().all(|a| a.status == ItemStatus::Unknown));
}

#[test]
fn values_secrets_and_certificates() {
    let mut s = DeviceState {
        info: Some(info(true, false)),
        ..Default::default()
    };
    s.settings
        .insert("network.telnet.enabled".into(), ReportedValue::Bool(true));
    s.settings.insert(
        "security.ews.admin_password".into(),
        ReportedValue::Secret {
            set: true,
            verifier: Some("cd".repeat(32)),
        },
    );
    s.settings.insert(
        "security.cert.ca".into(),
        ReportedValue::Certificate {
            sha256: "ab".repeat(32),
            not_after_ms: (NOW + 400 * DAY) as u64,
        },
    );
    let r = run(&s, &BTreeSet::new());
    assert_eq!(
        status(&r, "network.telnet.enabled"),
        ItemStatus::NonCompliant
    );
    assert_eq!(
        r["network.telnet.enabled"].reported,
        Some(serde_json::json!(true))
    );
    assert_eq!(
        r["network.telnet.enabled"].wanted,
        Some(serde_json::json!(false))
    );
    // mfp-mono has no colour copier.
    assert_eq!(status(&r, "copier.color.access"), ItemStatus::Unsupported);
    assert_eq!(
        status(&r, "security.ews.admin_password"),
        ItemStatus::Compliant
    );
    assert_eq!(r["security.ews.admin_password"].wanted, None);
    assert_eq!(status(&r, "security.cert.ca"), ItemStatus::Compliant);

    s.settings
        .insert("network.telnet.enabled".into(), ReportedValue::Bool(false));
    s.settings.insert(
        "security.ews.admin_password".into(),
        ReportedValue::Secret {
            set: true,
            verifier: Some("ee".repeat(32)),
        },
    );
    s.settings.insert(
        "security.cert.ca".into(),
        ReportedValue::Certificate {
            sha256: "ab".repeat(32),
            not_after_ms: (NOW + 10 * DAY) as u64,
        },
    );
    let r = run(&s, &BTreeSet::new());
    assert_eq!(status(&r, "network.telnet.enabled"), ItemStatus::Compliant);
    assert_eq!(
        status(&r, "security.ews.admin_password"),
        ItemStatus::NonCompliant
    );
    assert_eq!(status(&r, "security.cert.ca"), ItemStatus::NonCompliant);
    assert_eq!(
        r["security.cert.ca"].detail.as_deref(),
        Some("expires within 30 days")
    );

    s.settings.insert(
        "security.cert.ca".into(),
        ReportedValue::Certificate {
            sha256: "00".repeat(32),
            not_after_ms: (NOW + 400 * DAY) as u64,
        },
    );
    s.settings.insert(
        "security.ews.admin_password".into(),
        ReportedValue::Secret {
            set: false,
            verifier: None,
        },
    );
    let r = run(&s, &BTreeSet::new());
    assert_eq!(
        r["security.cert.ca"].detail.as_deref(),
        Some("a different certificate is installed")
    );
    assert_eq!(
        status(&r, "security.ews.admin_password"),
        ItemStatus::NonCompliant
    );
}

#[test]
fn a_refusal_as_unsupported_counts_as_unsupported() {
    let mut s = DeviceState {
        info: Some(info(true, true)),
        ..Default::default()
    };
    s.settings
        .insert("network.telnet.enabled".into(), ReportedValue::Bool(true));
    let refused: BTreeSet<String> = ["network.telnet.enabled".to_string()].into();
    let r = run(&s, &refused);
    assert_eq!(
        status(&r, "network.telnet.enabled"),
        ItemStatus::Unsupported
    );
    assert_eq!(status(&r, "copier.color.access"), ItemStatus::Unknown);
}

#[test]
fn tally_and_overall() {
    let mut t = StatusTally::default();
    t.add(ItemStatus::Compliant, 2);
    t.add(ItemStatus::Unsupported, 1);
    assert_eq!(t.overall(), ItemStatus::Compliant);
    t.add(ItemStatus::Unknown, 1);
    assert_eq!(t.overall(), ItemStatus::Unknown);
    t.add(ItemStatus::NonCompliant, 1);
    t.add(ItemStatus::Compliant, -1);
    assert_eq!((t.overall(), t.compliant), (ItemStatus::NonCompliant, 1));
    assert_eq!(model_family(Some(&info(false, true))), Some("office-color"));
}
