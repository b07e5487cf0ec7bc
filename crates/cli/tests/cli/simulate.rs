//! `printfleet simulate` against a running server: printers enrol with a token and heartbeat.

use crate::harness::{bin, bootstrap, serve, sign_in, PASSWORD};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_printers_enrol_heartbeat_and_show_online() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    bootstrap(&data, None, "Acme", "ann@acme.example", "Ann", "Admin");
    let log = dir.path().join("log");
    let mut server = serve(&data, None, &log, "info").await;
    let (c, csrf, tenant) = sign_in(&server.base, "ann@acme.example", PASSWORD).await;
    let t: serde_json::Value = c
        .post(format!(
            "{}/api/v1/tenants/{tenant}/enrolment-tokens",
            server.base
        ))
        .header("x-csrf-token", &csrf)
        .json(&json!({"name": "simulator", "max_uses": 5}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = t["secret"].as_str().unwrap().to_string();
    let base = server.base.clone();
    let out = tokio::task::spawn_blocking(move || {
        bin()
            .args([
                "simulate",
                "--printers",
                "6",
                "--server",
                &base,
                "--token",
                &token,
                "--interval-s",
                "1",
                "--duration-s",
                "4",
                "--offline-percent",
                "0",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The token allows 5: the sixth printer is refused (token_exhausted).
    assert!(
        stdout.contains("6 printers: 5 enrolled, 1 refused"),
        "{stdout}"
    );
    assert!(
        !stdout.contains(" 0 nothing"),
        "heartbeats were answered: {stdout}"
    );
    let devices: serde_json::Value = c
        .get(format!("{}/api/v1/tenants/{tenant}/devices", server.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let list = devices.as_array().unwrap();
    assert_eq!(list.len(), 5);
    let models: std::collections::BTreeSet<&str> =
        list.iter().map(|d| d["model"].as_str().unwrap()).collect();
    assert!(models.len() >= 3, "several models: {models:?}");
    assert!(list.iter().all(|d| d["online"] == true), "{devices}");
    server.stop();
}
