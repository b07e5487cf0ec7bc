//! Applying policies on simulated printers, and drift at the control panel.

use super::*;
use crate::simulate::cert::tests::self_signed;
use crate::simulate::settings::Hardening;
use printfleet_domain::telemetry::{apply as store, DeviceState, Verdict};
use printfleet_protocol::messages::{CheckIn, ReportedValue};
use printfleet_protocol::verifier::secret_verifier_hex;
use rand::rngs::StdRng;
use rand::SeedableRng;

const NOW: u64 = 1_767_225_600_000;
const KEY: [u8; 32] = [9; 32];
const PASSWORD: &str = "Hunter2-Hunter";

fn printer(family: &str, seed: u64) -> (Catalogue, SimSettings) {
    let c = Catalogue::builtin().unwrap();
    let mut rng = StdRng::seed_from_u64(seed);
    let s = SimSettings::new(&c, family, Hardening::Partial, &mut rng, NOW, KEY);
    (c, s)
}

fn item(settings: &[(&str, ApplyValue)]) -> ApplySettings {
    ApplySettings {
        policy: "p".into(),
        version: 1,
        settings: settings
            .iter()
            .map(|(id, v)| (id.to_string(), v.clone()))
            .collect(),
        sealed: None,
    }
}

fn secrets(values: &[(&str, &str)]) -> ApplySecrets {
    ApplySecrets::new(
        values
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

fn target<'a>(c: &'a Catalogue, family: &'a str, failure_chance: f64) -> Target<'a> {
    Target {
        catalogue: c,
        family,
        failure_chance,
    }
}

#[test]
fn applies_values_secrets_and_certificates_and_reports_them() {
    let (c, mut s) = printer("mfp-color", 1);
    s.take_all();
    let (ca, _) = self_signed();
    let (id_cert, id_key) = self_signed();
    let apply = item(&[
        ("network.telnet.enabled", ApplyValue::Bool(false)),
        (
            "security.control_panel.inactivity_timeout",
            ApplyValue::Integer(30),
        ),
        (
            "copier.color.access",
            ApplyValue::Text("sign-in-required".into()),
        ),
        ("security.cert.ca", ApplyValue::Text(ca.clone())),
    ]);
    let id_pem = format!("{id_cert}{id_key}");
    let sealed = secrets(&[
        ("security.ews.admin_password", PASSWORD),
        ("security.cert.id", &id_pem),
    ]);
    let mut rng = StdRng::seed_from_u64(2);
    let results = s.apply(
        &target(&c, "mfp-color", 0.0),
        &apply,
        Some(&sealed),
        &mut rng,
    );
    assert!(results.is_empty(), "{results:?}");
    let changed = s.take_changed();
    assert_eq!(changed.len(), 6);
    assert_eq!(
        changed["network.telnet.enabled"],
        ReportedValue::Bool(false)
    );
    assert_eq!(
        changed["security.ews.admin_password"],
        ReportedValue::Secret {
            set: true,
            verifier: Some(secret_verifier_hex(
                &KEY,
                "security.ews.admin_password",
                PASSWORD
            )),
        }
    );
    assert_eq!(
        Some(changed["security.cert.ca"].clone()),
        certificate_report(&ca)
    );
    assert_eq!(
        Some(changed["security.cert.id"].clone()),
        certificate_report(&id_cert)
    );
    // Secrets stay in memory, never in Debug output.
    let debug = format!("{s:?}");
    assert!(!debug.contains(PASSWORD) && !debug.contains("PRIVATE KEY"));
    // The report passes the server's checks.
    let report = CheckIn {
        seq: 1,
        taken_at_ms: NOW,
        info: None,
        meters: None,
        supplies: None,
        events: vec![],
        settings: changed,
    };
    let verdict = store(&DeviceState::default(), &report, &c, NOW as i64);
    assert!(matches!(verdict, Ok(Verdict::Store(_))), "{verdict:?}");
}

#[test]
fn refuses_what_the_model_cannot_do() {
    let (c, mut s) = printer("office-mono", 3);
    s.take_all();
    let apply = item(&[
        ("fax.receive.pin_required", ApplyValue::Bool(true)),
        ("no.such.setting", ApplyValue::Bool(true)),
        ("network.telnet.enabled", ApplyValue::Bool(false)),
        (
            "security.control_panel.inactivity_timeout",
            ApplyValue::Integer(5),
        ),
        (
            "security.ews.admin_password",
            ApplyValue::Text(PASSWORD.into()),
        ),
    ]);
    let sealed = secrets(&[("fax.receive.pin", "1234")]);
    let mut rng = StdRng::seed_from_u64(4);
    let results = s.apply(
        &target(&c, "office-mono", 0.0),
        &apply,
        Some(&sealed),
        &mut rng,
    );
    let got: Vec<(&str, SettingOutcome, &str)> = results
        .iter()
        .map(|(id, r)| (id.as_str(), r.outcome, r.reason.as_str()))
        .collect();
    use SettingOutcome::Refused;
    assert_eq!(
        got,
        [
            ("fax.receive.pin", Refused, UNSUPPORTED),
            ("fax.receive.pin_required", Refused, UNSUPPORTED),
            ("no.such.setting", Refused, UNSUPPORTED),
            (
                "security.control_panel.inactivity_timeout",
                Refused,
                "invalid value"
            ),
            ("security.ews.admin_password", Refused, "secret not sealed"),
        ]
    );
    // Only the setting that was applied is reported.
    let changed = s.take_changed();
    assert_eq!(
        changed.keys().collect::<Vec<_>>(),
        ["network.telnet.enabled"]
    );
}

#[test]
fn the_firmware_fails_some_settings_deterministically() {
    let (c, _) = printer("mfp-mono", 5);
    let ids: Vec<(&str, ApplyValue)> = c
        .for_model("mfp-mono")
        .filter(|s| matches!(s.kind, printfleet_domain::catalogue::SettingType::Bool))
        .map(|s| (s.id.as_str(), ApplyValue::Bool(true)))
        .collect();
    let apply = item(&ids);
    let run = |chance: f64, seed: u64| {
        let (c, mut s) = printer("mfp-mono", 5);
        let mut rng = StdRng::seed_from_u64(seed);
        s.apply(&target(&c, "mfp-mono", chance), &apply, None, &mut rng)
    };
    let all = run(1.0, 6);
    assert_eq!(all.len(), ids.len());
    assert!(all
        .values()
        .all(|r| r.outcome == SettingOutcome::Failed && FAILURES.contains(&r.reason.as_str())));
    assert!(run(0.0, 6).is_empty());
    // The same seed fails the same settings.
    let some = run(0.3, 7);
    assert_eq!(some, run(0.3, 7));
    assert!(!some.is_empty() && some.len() < ids.len(), "{}", some.len());
}

#[test]
fn drift_goes_back_to_insecure_values_deterministically() {
    let drifts = |seed: u64| {
        let (c, mut s) = printer("mfp-color", 8);
        let sealed = secrets(&[("security.ews.admin_password", PASSWORD)]);
        let apply = item(&[(
            "security.control_panel.inactivity_timeout",
            ApplyValue::Integer(30),
        )]);
        let mut rng = StdRng::seed_from_u64(seed);
        s.apply(
            &target(&c, "mfp-color", 0.0),
            &apply,
            Some(&sealed),
            &mut rng,
        );
        s.take_all();
        let mut seen = Vec::new();
        for _ in 0..40 {
            let Some(id) = s.drift(&c, &mut rng) else {
                break;
            };
            let value = s.take_changed().remove(&id).unwrap();
            seen.push((id, value));
        }
        (c, seen)
    };
    let (c, seen) = drifts(9);
    assert_eq!(seen, drifts(9).1);
    assert!(!seen.is_empty());
    let old = secret_verifier_hex(&KEY, "security.ews.admin_password", PASSWORD);
    for (id, value) in &seen {
        let setting = c.get(id).unwrap();
        match value {
            ReportedValue::Secret { set, verifier } => {
                assert!(
                    *set && verifier.as_deref().is_some_and(|v| v != old),
                    "{id}"
                );
            }
            v => {
                let secure = setting.secure.as_ref().and_then(reported);
                assert_ne!(Some(v), secure.as_ref(), "{id} drifted to its secure value");
            }
        }
    }
    // Nothing secure left to lose: drift stops.
    let (c, mut s) = printer("mfp-color", 8);
    s.values.clear();
    assert_eq!(s.drift(&c, &mut StdRng::seed_from_u64(1)), None);
}
