//! Policies end to end, as an admin and a printer live them: a remediating policy with a
//! setting, a secret and a CA certificate is assigned to a dynamic group; the printer is
//! assessed item by item (unsupported, unknown, non-compliant), fetches the remediation with the
//! secret sealed to it, applies it and proves the secret with its verifier; it drifts and is
//! brought back; a scoped user sees only its groups' figures; and the secret never appears in
//! plaintext in the database, the outbox, API answers, the audit log or the metrics.

use crate::helpers::{spawn_app_with, world, Backend, Options, TestApp, World, PASSWORD};
use printfleet_agent::{enrol, DeviceClient, Identity};
use printfleet_protocol::messages::{
    ApplySettings, Capabilities, CheckIn, DeviceInfo, Outcome, ReportedValue, WorkAck,
};
use serde_json::json;
use sha2::Digest;
use std::collections::BTreeMap;
use std::time::Duration;

const SECRET: &str = "Planted-Admin-P1";

fn now(app: &TestApp) -> u64 {
    app.state.clock.now_ms() as u64
}

async fn admin(app: &TestApp) -> (reqwest::Client, String) {
    app.sign_in("printer@a.example", PASSWORD).await
}

async fn send(
    app: &TestApp,
    w: &World,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let (c, csrf) = admin(app).await;
    let mut r = c
        .request(
            method.parse().unwrap(),
            app.url(&format!("/api/v1/tenants/{}/{path}", w.a)),
        )
        .header("x-csrf-token", csrf);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or_default())
}

/// A self-signed CA certificate valid for `days` more days.
fn ca(days: i64) -> (String, String, u64) {
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name
        .push(rcgen::DnType::CommonName, "Printfleet Test CA");
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let now = time::OffsetDateTime::now_utc();
    p.not_before = now - time::Duration::days(1);
    p.not_after = now + time::Duration::days(days);
    let not_after = (p.not_after.unix_timestamp() * 1000) as u64;
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = p.self_signed(&key).unwrap();
    let sha = hex::encode(sha2::Sha256::digest(cert.der()));
    (cert.pem(), sha, not_after)
}

fn report(seq: u64, settings: BTreeMap<String, ReportedValue>) -> CheckIn {
    CheckIn {
        seq,
        taken_at_ms: 1_767_225_600_000,
        info: (seq == 1).then(|| DeviceInfo {
            name: "Lobby".into(),
            model: "LaserJet M406".into(),
            serial: "POL-1".into(),
            firmware: "2506.1".into(),
            region: None,
            language: None,
            // office-mono: no colour copier.
            capabilities: Capabilities {
                colour: false,
                duplex: true,
                scan: false,
                fax: false,
            },
        }),
        meters: None,
        supplies: None,
        events: vec![],
        settings,
    }
}

/// Waits until the printer's assessment satisfies `ok`.
async fn compliance_until(
    app: &TestApp,
    w: &World,
    device: &str,
    ok: impl Fn(&BTreeMap<String, serde_json::Value>) -> bool,
) -> BTreeMap<String, serde_json::Value> {
    for _ in 0..200 {
        let (s, body) = send(app, w, "GET", &format!("devices/{device}/compliance"), None).await;
        assert_eq!(s, 200, "{body}");
        let items: BTreeMap<String, serde_json::Value> = body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| (i["setting_id"].as_str().unwrap().to_string(), i.clone()))
            .collect();
        if ok(&items) {
            return items;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the assessment never got there");
}

fn status(items: &BTreeMap<String, serde_json::Value>, id: &str) -> String {
    items
        .get(id)
        .map(|i| i["status"].as_str().unwrap().to_string())
        .unwrap_or_default()
}

async fn fetch_apply(
    app: &TestApp,
    p: &DeviceClient,
) -> (String, ApplySettings, serde_json::Value) {
    for _ in 0..100 {
        let work = p.fetch(vec![], 0, now(app)).await.unwrap();
        if let Some(item) = work.items.into_iter().find(|i| i.kind == "apply_settings") {
            let apply = ApplySettings::decode(&item.data).unwrap();
            return (item.id, apply, item.data);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no apply_settings work");
}

async fn policies_end_to_end(backend: Backend) {
    let app = spawn_app_with(Options {
        backend,
        ..Options::default()
    })
    .await;
    let w = world(&app).await;
    let (_, tok) = send(
        &app,
        &w,
        "POST",
        "enrolment-tokens",
        Some(json!({"name": "policies"})),
    )
    .await;
    let e = enrol(
        &reqwest::Client::new(),
        &app.base,
        tok["secret"].as_str().unwrap(),
        &Identity {
            serial: "POL-1".into(),
            model: "LaserJet M406".into(),
            firmware: "2506.1".into(),
        },
        now(&app),
    )
    .await
    .unwrap();
    let p = DeviceClient::new(reqwest::Client::new(), vec![app.base.clone()], e);
    let device = p.enrolment().printer_id.to_string();
    let (ca_pem, ca_sha, ca_not_after) = ca(10);
    let ack = p
        .check_in(
            &report(
                1,
                BTreeMap::from([
                    ("network.telnet.enabled".into(), ReportedValue::Bool(true)),
                    (
                        "security.ews.admin_password".into(),
                        ReportedValue::secret(false),
                    ),
                    ("security.cert.ca".into(), ReportedValue::secret(false)),
                ]),
            ),
            now(&app),
        )
        .await
        .unwrap();
    assert_eq!(ack.seq, 1);

    // A dynamic group of every printer, and a remediating policy assigned to it.
    let (s, g) = send(
        &app,
        &w,
        "POST",
        "groups",
        Some(json!({"name": "Everything"})),
    )
    .await;
    assert_eq!(s, 201);
    let group = g["id"].as_str().unwrap().to_string();
    let (s, _) = send(
        &app,
        &w,
        "PUT",
        &format!("groups/{group}/rule"),
        Some(json!({"rule": {"all": true}})),
    )
    .await;
    assert_eq!(s, 200);
    // Invalid input names the item and stores nothing.
    let (s, bad) = send(
        &app,
        &w,
        "POST",
        "policies",
        Some(json!({
        "name": "Bad", "mode": "assess", "settings": {"network.telnet.enabled": "maybe"}})),
    )
    .await;
    assert_eq!(
        (s, bad["field"].as_str()),
        (400, Some("network.telnet.enabled")),
        "{bad}"
    );
    let (s, bad) = send(&app, &w, "POST", "policies", Some(json!({
        "name": "Bad", "mode": "assess", "settings": {"security.cert.ca": {"pem": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}}}))).await;
    assert_eq!(
        (s, bad["field"].as_str()),
        (400, Some("security.cert.ca")),
        "{bad}"
    );
    let (s, pol) = send(
        &app,
        &w,
        "POST",
        "policies",
        Some(json!({
        "name": "Baseline", "mode": "remediate",
        "settings": {
            "network.telnet.enabled": false,
            "copier.color.access": "sign-in-required",
            "security.ews.admin_password": {"secret": SECRET},
            "security.cert.ca": {"pem": ca_pem},
        }})),
    )
    .await;
    assert_eq!(s, 201, "{pol}");
    assert!(!pol.to_string().contains(SECRET));
    assert_eq!(pol["settings"]["security.cert.ca"]["certificate"], ca_sha);
    let policy = pol["id"].as_str().unwrap().to_string();
    let (s, _) = send(
        &app,
        &w,
        "POST",
        &format!("policies/{policy}/assignments"),
        Some(json!({"group": group, "priority": 10})),
    )
    .await;
    assert_eq!(s, 200);

    let items = compliance_until(&app, &w, &device, |i| i.len() == 4).await;
    assert_eq!(status(&items, "network.telnet.enabled"), "non_compliant");
    assert_eq!(items["network.telnet.enabled"]["reported"], json!(true));
    assert_eq!(items["network.telnet.enabled"]["wanted"], json!(false));
    assert_eq!(status(&items, "copier.color.access"), "unsupported");
    assert_eq!(
        status(&items, "security.ews.admin_password"),
        "non_compliant"
    );
    assert_eq!(items["security.ews.admin_password"]["wanted"], json!(null));
    assert_eq!(status(&items, "security.cert.ca"), "non_compliant");
    assert_eq!(
        items["security.cert.ca"]["detail"],
        "no certificate installed"
    );
    let (_, eff) = send(
        &app,
        &w,
        "GET",
        &format!("devices/{device}/effective-policy"),
        None,
    )
    .await;
    assert_eq!(eff.as_array().unwrap().len(), 4);
    assert_eq!(eff[0]["origin"]["policy"], json!(policy));
    assert_eq!(eff[0]["origin"]["group"], json!(group));

    // The printer is rung (or polls), fetches, and finds the secret sealed to it only.
    let (id, apply, raw) = fetch_apply(&app, &p).await;
    assert!(
        !raw.to_string().contains(SECRET),
        "the work item carries the secret in clear"
    );
    assert_eq!(
        apply.settings.len(),
        2,
        "telnet and the CA certificate (unsupported items are not sent)"
    );
    let secrets = p.open_apply_secrets(&apply, now(&app)).unwrap().unwrap();
    assert_eq!(secrets.get("security.ews.admin_password"), Some(SECRET));
    p.fetch(vec![WorkAck::new(id, Outcome::Done, None)], 0, now(&app))
        .await
        .unwrap();
    let applied = BTreeMap::from([
        (
            "network.telnet.enabled".to_string(),
            ReportedValue::Bool(false),
        ),
        (
            "security.ews.admin_password".to_string(),
            p.enrolment()
                .reported_secret("security.ews.admin_password", SECRET),
        ),
        (
            "security.cert.ca".to_string(),
            ReportedValue::Certificate {
                sha256: ca_sha.clone(),
                not_after_ms: ca_not_after,
            },
        ),
    ]);
    p.check_in(&report(2, applied), now(&app)).await.unwrap();
    let items = compliance_until(&app, &w, &device, |i| {
        status(i, "network.telnet.enabled") == "compliant"
    })
    .await;
    assert_eq!(status(&items, "security.ews.admin_password"), "compliant");
    // The CA certificate is the right one but expires in 10 days: flagged.
    assert_eq!(status(&items, "security.cert.ca"), "non_compliant");
    assert_eq!(
        items["security.cert.ca"]["detail"],
        "expires within 30 days"
    );

    // Someone changes the panel password and turns telnet back on: drift, seen and dated.
    let drifted = BTreeMap::from([
        (
            "network.telnet.enabled".to_string(),
            ReportedValue::Bool(true),
        ),
        (
            "security.ews.admin_password".to_string(),
            p.enrolment()
                .reported_secret("security.ews.admin_password", "someone-else-1"),
        ),
    ]);
    p.check_in(&report(3, drifted), now(&app)).await.unwrap();
    compliance_until(&app, &w, &device, |i| {
        status(i, "network.telnet.enabled") == "non_compliant"
            && status(i, "security.ews.admin_password") == "non_compliant"
    })
    .await;
    let (_, hist) = send(
        &app,
        &w,
        "GET",
        &format!("devices/{device}/compliance/history"),
        None,
    )
    .await;
    let newest = &hist[0]["changes"];
    assert!(
        newest
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["setting_id"] == "network.telnet.enabled"
                && c["status"] == "non_compliant"
                && c["previous"] == "compliant"),
        "{hist}"
    );

    // Remediate now brings it back.
    let (s, r) = send(
        &app,
        &w,
        "POST",
        &format!("devices/{device}/remediate"),
        None,
    )
    .await;
    assert_eq!((s, r["printers"].as_u64()), (200, Some(1)));
    let (id, apply, _) = fetch_apply(&app, &p).await;
    let secrets = p.open_apply_secrets(&apply, now(&app)).unwrap().unwrap();
    p.fetch(vec![WorkAck::new(id, Outcome::Done, None)], 0, now(&app))
        .await
        .unwrap();
    let fixed = BTreeMap::from([
        (
            "network.telnet.enabled".to_string(),
            ReportedValue::Bool(false),
        ),
        (
            "security.ews.admin_password".to_string(),
            p.enrolment().reported_secret(
                "security.ews.admin_password",
                secrets.get("security.ews.admin_password").unwrap(),
            ),
        ),
    ]);
    p.check_in(&report(4, fixed), now(&app)).await.unwrap();
    compliance_until(&app, &w, &device, |i| {
        status(i, "network.telnet.enabled") == "compliant"
            && status(i, "security.ews.admin_password") == "compliant"
    })
    .await;

    // Fleet figures: tenant-wide for the admin; a scoped user sees only its groups.
    let (_, fleet) = send(&app, &w, "GET", "compliance", None).await;
    let pf = &fleet["policies"][0];
    assert_eq!(pf["name"], "Baseline");
    let telnet = pf["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["setting_id"] == "network.telnet.enabled")
        .unwrap();
    assert_eq!(telnet["items"]["compliant"], 1);
    assert_eq!(
        pf["printers"]["non_compliant"], 1,
        "the expiring certificate"
    );
    let (c, _) = app.sign_in("scoped@a.example", PASSWORD).await;
    let scoped: serde_json::Value = c
        .get(app.url(&format!("/api/v1/tenants/{}/compliance", w.a)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let total = |v: &serde_json::Value| {
        ["compliant", "non_compliant", "unsupported", "unknown"]
            .iter()
            .map(|k| v["printers"][k].as_u64().unwrap())
            .sum::<u64>()
    };
    assert_eq!(
        total(&scoped),
        0,
        "the printer is outside Floor 1: {scoped}"
    );
    let (s, _) = send(
        &app,
        &w,
        "PUT",
        &format!("groups/{}/devices/{device}", w.g1),
        None,
    )
    .await;
    assert_eq!(s, 204);
    let scoped: serde_json::Value = c
        .get(app.url(&format!("/api/v1/tenants/{}/compliance", w.a)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(total(&scoped), 1, "{scoped}");

    // The planted secret is nowhere in clear: API answers, audit, metrics, outbox, database.
    let (_, pol) = send(&app, &w, "GET", &format!("policies/{policy}"), None).await;
    assert!(
        pol["settings"]["security.ews.admin_password"]["set_at_ms"].is_i64(),
        "{pol}"
    );
    let (c, _) = app.sign_in("it@a.example", PASSWORD).await;
    for path in [
        format!("/api/v1/tenants/{}/audit", w.a),
        "/metrics".to_string(),
        format!("/api/v1/tenants/{}/policies", w.a),
    ] {
        let text = c
            .get(app.url(&path))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(!text.contains(SECRET), "{path}");
    }
    let outbox: Vec<(String,)> = sqlx::query_as("SELECT data FROM outbox")
        .fetch_all(app.store.raw_pool())
        .await
        .unwrap();
    assert!(outbox.len() >= 2 && outbox.iter().all(|(d,)| !d.contains(SECRET)));
    if backend == Backend::Sqlite {
        let dir = app.data_dir();
        for f in std::fs::read_dir(dir).unwrap() {
            let bytes = std::fs::read(f.unwrap().path()).unwrap_or_default();
            assert!(
                !bytes.windows(SECRET.len()).any(|x| x == SECRET.as_bytes()),
                "a file of the data directory holds the secret"
            );
        }
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_end_to_end_on_sqlite() {
    policies_end_to_end(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_end_to_end_on_postgres() {
    policies_end_to_end(Backend::Postgres).await;
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/../crypto/src/certificate/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// Certificate uploads are parsed and checked, and a bad one is refused naming the item and
/// what is wrong; the ID certificate's private key is never shown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_uploads_are_checked_and_the_key_never_shown() {
    use base64::Engine as _;
    let app = spawn_app_with(Options::default()).await;
    let w = world(&app).await;
    let b64 = |b: Vec<u8>| base64::engine::general_purpose::STANDARD.encode(b);
    let ca_pem = String::from_utf8(fixture("ca.pem")).unwrap();
    let p12 = b64(fixture("id-ec.p12"));
    let policy = |settings: serde_json::Value| json!({"name": "Certs", "mode": "assess", "settings": settings});

    let (s, e) = send(
        &app,
        &w,
        "POST",
        "policies",
        Some(policy(json!({
        "security.cert.id": {"pkcs12": p12, "passphrase": "wrong-horse"}}))),
    )
    .await;
    assert_eq!(
        (s, e["field"].as_str()),
        (400, Some("security.cert.id")),
        "{e}"
    );
    assert!(e["message"].as_str().unwrap().contains("passphrase"), "{e}");
    // Signed by the fixture CA, not by another one.
    let (other_ca, _, _) = ca(365);
    let (s, e) = send(
        &app,
        &w,
        "POST",
        "policies",
        Some(policy(json!({
        "security.cert.ca": {"pem": other_ca},
        "security.cert.id": {"pkcs12": p12, "passphrase": "correct-horse"}}))),
    )
    .await;
    assert_eq!(
        (s, e["field"].as_str()),
        (400, Some("security.cert.id")),
        "{e}"
    );
    assert!(
        e["message"].as_str().unwrap().contains("not signed by"),
        "{e}"
    );
    // A CA certificate with a key, or an ID certificate given as a CA: refused.
    let (s, e) = send(
        &app,
        &w,
        "POST",
        "policies",
        Some(policy(json!({
        "security.cert.ca": {"pkcs12": p12, "passphrase": "correct-horse"}}))),
    )
    .await;
    assert_eq!(
        (s, e["field"].as_str()),
        (400, Some("security.cert.ca")),
        "{e}"
    );

    let (s, p) = send(
        &app,
        &w,
        "POST",
        "policies",
        Some(policy(json!({
        "security.cert.ca": {"pem": ca_pem},
        "security.cert.id": {"pkcs12": p12, "passphrase": "correct-horse"}}))),
    )
    .await;
    assert_eq!(s, 201, "{p}");
    let id = &p["settings"]["security.cert.id"];
    assert_eq!(id["certificate"].as_str().unwrap().len(), 64, "{p}");
    assert!(
        id["subject"].as_str().unwrap().contains("printer-ec"),
        "{p}"
    );
    let text = p.to_string();
    assert!(
        !text.contains("PRIVATE KEY") && !text.contains("correct-horse"),
        "{text}"
    );
    let (_, list) = send(&app, &w, "GET", "policies", None).await;
    assert!(!list.to_string().contains("PRIVATE KEY"));
    // Keeping it in the next version needs no re-upload.
    let pid = p["id"].as_str().unwrap();
    let (s, saved) = send(
        &app,
        &w,
        "PUT",
        &format!("policies/{pid}"),
        Some(policy(json!({
        "security.cert.ca": {"keep": true},
        "security.cert.id": {"keep": true},
        "network.telnet.enabled": false}))),
    )
    .await;
    assert_eq!(s, 200, "{saved}");
    assert_eq!(saved["changes"].as_array().unwrap().len(), 1, "{saved}");
    assert_eq!(saved["policy"]["settings"]["security.cert.id"], *id);
    app.stop().await;
}
