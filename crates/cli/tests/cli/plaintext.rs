//! Plants personal data and secrets through the API, then searches everything the server wrote
//! for them: the SQLite file and its WAL, a pg_dump, the server's logs at trace level, and
//! /metrics. None may hold them in plaintext.

use crate::harness::{bootstrap, pg_url, serve, sign_in, PASSWORD};
use serde_json::json;
use std::path::Path;

const PLANTED: &[&str] = &[
    "Annabelle",
    "Zyxwvutsrq",
    "ann.planted@acme.example",
    "Quentin Plantedcontact",
    "quentin.planted@example.org",
    "+49 1234 98765",
    "Plantedstrasse 42",
    "invitee.planted@example.org",
    "Isolde",
    "Inviteesurname",
    PASSWORD,
    "second planted password 9902",
];

/// Exercises the API so every planted value passes through the server; returns the secrets it
/// handed out (session cookie, API token, invitation token), which must not leak either.
async fn plant(base: &str) -> Vec<String> {
    let (c, csrf, tenant) = sign_in(base, "ann.planted@acme.example", PASSWORD).await;
    let t = format!("{base}/api/v1/tenants/{tenant}");
    let r = c
        .patch(&t)
        .header("x-csrf-token", &csrf)
        .json(&json!({"contact": {"name": "Quentin Plantedcontact", "email": "quentin.planted@example.org", "phone": "+49 1234 98765", "postal_address": "Plantedstrasse 42"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let inv: serde_json::Value = c
        .post(format!("{t}/invitations"))
        .header("x-csrf-token", &csrf)
        .json(&json!({"email": "invitee.planted@example.org", "role": "report-admin"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let inv_token = inv["token"].as_str().unwrap().to_string();
    let r = reqwest::Client::new()
        .post(format!("{base}/api/v1/invitations/accept"))
        .json(&json!({"token": inv_token, "first_name": "Isolde", "last_name": "Inviteesurname", "password": "second planted password 9902"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let tok: serde_json::Value = c
        .post(format!("{t}/api-tokens"))
        .header("x-csrf-token", &csrf)
        .json(&json!({"name": "ci"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let api_secret = tok["secret"].as_str().unwrap().to_string();
    // A failed sign-in with the planted address.
    let _ = reqwest::Client::new()
        .post(format!("{base}/api/v1/auth/sign-in"))
        .json(&json!({"email": "quentin.planted@example.org", "password": "second planted password 9902"}))
        .send()
        .await
        .unwrap();
    let (_, isolde_csrf, _) = sign_in(
        base,
        "invitee.planted@example.org",
        "second planted password 9902",
    )
    .await;
    vec![inv_token, api_secret, csrf, isolde_csrf]
}

fn assert_absent(what: &str, bytes: &[u8], needles: &[String]) {
    let lower = String::from_utf8_lossy(bytes).to_lowercase();
    for n in needles {
        assert!(
            !lower.contains(&n.to_lowercase()),
            "{what} contains planted {n:?}"
        );
    }
}

fn needles(secrets: Vec<String>) -> Vec<String> {
    PLANTED
        .iter()
        .map(|s| s.to_string())
        .chain(secrets)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_planted_personal_data_or_secret_in_sqlite_wal_logs_or_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    bootstrap(
        &data,
        None,
        "Acme",
        "Ann.Planted@acme.example",
        "Annabelle",
        "Zyxwvutsrq",
    );
    let log = dir.path().join("server.log");
    let mut server = serve(&data, None, &log, "trace").await;
    let secrets = plant(&server.base).await;
    let metrics = reqwest::get(format!("{}/metrics", server.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("printfleet_http_requests_total"),
        "metrics are served"
    );
    let n = needles(secrets);
    assert_absent("/metrics", metrics.as_bytes(), &n);
    // While the server runs the newest writes are in the WAL.
    let wal = std::fs::read(data.join("printfleet.db-wal")).unwrap();
    assert!(!wal.is_empty(), "the WAL holds recent writes");
    assert_absent("printfleet.db-wal", &wal, &n);
    assert_absent(
        "printfleet.db (running)",
        &std::fs::read(data.join("printfleet.db")).unwrap(),
        &n,
    );
    server.stop();
    assert_absent(
        "printfleet.db",
        &std::fs::read(data.join("printfleet.db")).unwrap(),
        &n,
    );
    let logs = std::fs::read(&log).unwrap();
    assert!(logs.len() > 1000, "trace logs were written");
    assert_absent("server log", &logs, &n);
    let checkpoints = std::fs::read(data.join("audit-checkpoints.json")).unwrap();
    assert_absent("audit-checkpoints.json", &checkpoints, &n);
    check_dir_has_no_plaintext(&data, &n);
}

fn check_dir_has_no_plaintext(dir: &Path, n: &[String]) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            assert_absent(&p.display().to_string(), &std::fs::read(&p).unwrap(), n);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_planted_personal_data_or_secret_in_a_pg_dump() {
    let db = format!("pf_plain_{}", uuid::Uuid::new_v4().simple());
    let admin_url = pg_url();
    let out = std::process::Command::new("psql")
        .args([
            &admin_url,
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            &format!("CREATE DATABASE {db}"),
        ])
        .output()
        .unwrap_or_else(|e| panic!("psql is needed for this test: {e}"));
    assert!(
        out.status.success(),
        "cannot create a PostgreSQL database at {admin_url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let base_url = admin_url.rsplit_once('/').unwrap().0.to_string();
    let url = format!("{base_url}/{db}");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    bootstrap(
        &data,
        Some(&url),
        "Acme",
        "ann.planted@acme.example",
        "Annabelle",
        "Zyxwvutsrq",
    );
    let log = dir.path().join("server.log");
    let mut server = serve(&data, Some(&url), &log, "debug").await;
    let n = needles(plant(&server.base).await);
    server.stop();
    let dump = std::process::Command::new("pg_dump")
        .arg(&url)
        .output()
        .unwrap();
    assert!(
        dump.status.success(),
        "pg_dump: {}",
        String::from_utf8_lossy(&dump.stderr)
    );
    assert!(
        String::from_utf8_lossy(&dump.stdout).contains("audit_log"),
        "the dump holds the schema"
    );
    assert_absent("pg_dump", &dump.stdout, &n);
    assert_absent("server log", &std::fs::read(&log).unwrap(), &n);
    let _ = std::process::Command::new("psql")
        .args([&admin_url, "-c", &format!("DROP DATABASE {db}")])
        .output();
}
