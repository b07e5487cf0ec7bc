//! `printfleet secret reveal` against a real server over loopback: an IT Admin reveals a
//! printer's generated value with a password file (audited as `secret_revealed`, signed out
//! after), a wrong password exits non-zero saying re-authentication failed, an unknown printer
//! says there is no generated value; `secret reveals` lists the feed with an API token.

use crate::harness::{bin, bootstrap, serve, sign_in, PASSWORD};
use printfleet_agent::{enrol, DeviceClient, Identity};
use printfleet_protocol::messages::{Capabilities, CheckIn, DeviceInfo, ReportedValue};
use serde_json::{json, Value};
use std::collections::BTreeMap;

const ID: &str = "security.ews.admin_password";

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reveal_with_a_password_file_is_audited_and_a_wrong_password_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    bootstrap(&data, None, "Acme", "ann@acme.example", "Ann", "Admin");
    let server = serve(&data, None, &dir.path().join("server.log"), "info").await;
    let (http, csrf, tenant) = sign_in(&server.base, "ann@acme.example", PASSWORD).await;
    let url = |p: &str| format!("{}/api/v1/tenants/{tenant}/{p}", server.base);
    let call = |method: &str, p: &str, body: Option<Value>| {
        let mut r = http
            .request(method.parse().unwrap(), url(p))
            .header("x-csrf-token", &csrf);
        if let Some(b) = body {
            r = r.json(&b);
        }
        async move {
            let r = r.send().await.unwrap();
            let s = r.status().as_u16();
            (s, r.json::<Value>().await.unwrap_or_default())
        }
    };

    // A printer in a group whose policy generates its admin password.
    let (s, tok) = call("POST", "enrolment-tokens", Some(json!({"name": "t"}))).await;
    assert_eq!(s, 201, "{tok}");
    let identity = Identity {
        serial: "SEC-1".into(),
        model: "LaserJet M406".into(),
        firmware: "2506.1".into(),
    };
    let e = enrol(
        &reqwest::Client::new(),
        &server.base,
        tok["secret"].as_str().unwrap(),
        &identity,
        now_ms(),
    )
    .await
    .unwrap();
    let printer = DeviceClient::new(reqwest::Client::new(), vec![server.base.clone()], e);
    let device = printer.enrolment().printer_id.to_string();
    let report = CheckIn {
        seq: 1,
        taken_at_ms: now_ms(),
        info: Some(DeviceInfo {
            name: "SEC-1".into(),
            model: "LaserJet M406".into(),
            serial: "SEC-1".into(),
            firmware: "2506.1".into(),
            region: None,
            language: None,
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
        settings: BTreeMap::from([(ID.to_string(), ReportedValue::secret(false))]),
    };
    printer.check_in(&report, now_ms()).await.unwrap();
    let (s, g) = call("POST", "groups", Some(json!({"name": "All"}))).await;
    assert_eq!(s, 201, "{g}");
    let group = g["id"].as_str().unwrap().to_string();
    let (s, _) = call(
        "PUT",
        &format!("groups/{group}/rule"),
        Some(json!({"rule": {"all": true}})),
    )
    .await;
    assert_eq!(s, 200);
    let (s, pol) = call(
        "POST",
        "policies",
        Some(json!({"name": "Unique", "mode": "remediate",
            "settings": {ID: {"generate": {"rotate_days": 30}}}})),
    )
    .await;
    assert_eq!(s, 201, "{pol}");
    let policy = pol["id"].as_str().unwrap().to_string();
    let (s, _) = call(
        "POST",
        &format!("policies/{policy}/assignments"),
        Some(json!({"group": group, "priority": 10})),
    )
    .await;
    assert_eq!(s, 200);
    // The value exists once the printer is sent its apply_settings work.
    let mut sent = false;
    for _ in 0..200 {
        let work = printer.fetch(vec![], 0, now_ms()).await.unwrap();
        if work.items.iter().any(|i| i.kind == "apply_settings") {
            sent = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(sent, "the printer never received its generated value");

    let good = dir.path().join("password");
    std::fs::write(&good, format!("{PASSWORD}\n")).unwrap();
    let bad = dir.path().join("wrong");
    std::fs::write(&bad, "not the password at all\n").unwrap();
    let run = |device: &str, password_file: &std::path::Path| {
        let out = bin()
            .args(["secret", "reveal", "--server", &server.base, "--tenant"])
            .args([&tenant, "--device", device, "--setting", ID])
            .args(["--email", "ann@acme.example", "--reason", "panel locked"])
            .arg("--password-file")
            .arg(password_file)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };

    let (code, out, err) = run(&device, &good);
    assert_eq!(code, 0, "{out}{err}");
    let value = out
        .lines()
        .find_map(|l| l.strip_prefix("value: "))
        .unwrap_or_default();
    assert!(!value.trim().is_empty(), "{out}");
    assert!(out.contains("confirmed: "), "{out}");
    assert!(err.contains("audited") && err.contains("rotated"), "{err}");
    assert!(!err.contains(value), "the value leaked to stderr: {err}");
    let (s, audit) = call("GET", "audit", None).await;
    assert_eq!(s, 200);
    let audit = audit.to_string();
    assert!(
        audit.contains("secret_revealed") && audit.contains("panel locked"),
        "{audit}"
    );

    let (code, out, err) = run(&device, &bad);
    assert_ne!(code, 0, "{out}{err}");
    assert!(err.contains("re-authentication failed"), "{err}");
    assert!(out.is_empty(), "{out}");

    let other = printfleet_domain::DeviceId::new_random().to_string();
    let (code, _, err) = run(&other, &good);
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("no generated value"), "{err}");

    // The feed, with an API token.
    let (s, t) = call("POST", "api-tokens", Some(json!({"name": "feed"}))).await;
    assert_eq!(s, 201, "{t}");
    let out = bin()
        .args(["secret", "reveals", "--server", &server.base, "--tenant"])
        .arg(&tenant)
        .env("PRINTFLEET_TOKEN", t["secret"].as_str().unwrap())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&device) && stdout.contains("panel locked"),
        "{stdout}"
    );
}
