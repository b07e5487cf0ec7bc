//! `printfleet admin`: audit verification against tampering, key rotation, key files.

use crate::harness::{bin, bootstrap, serve, sign_in, PASSWORD};
use serde_json::json;
use sqlx::Row;
use std::path::Path;

fn verify(data: &Path) -> (i32, String) {
    let out = bin()
        .args(["admin", "audit", "verify", "--data-dir"])
        .arg(data)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
    )
}

async fn db(data: &Path) -> sqlx::SqlitePool {
    sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        data.join("printfleet.db").display()
    ))
    .await
    .unwrap()
}

async fn tenant_chain(pool: &sqlx::SqlitePool) -> String {
    sqlx::query("SELECT chain FROM audit_log WHERE chain <> 'deployment' LIMIT 1")
        .fetch_one(pool)
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn audit_verify_reports_the_first_bad_entry_after_edits_deletions_and_truncation() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    bootstrap(&data, None, "Acme", "ann@acme.example", "Ann", "Admin");
    // Some more entries through the API.
    let log = dir.path().join("log");
    let mut server = serve(&data, None, &log, "info").await;
    let (c, csrf, tenant) = sign_in(&server.base, "ann@acme.example", PASSWORD).await;
    for i in 0..4 {
        let r = c
            .post(format!("{}/api/v1/tenants/{tenant}/groups", server.base))
            .header("x-csrf-token", &csrf)
            .json(&json!({"name": format!("Floor {i}")}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    server.stop();
    let (code, out) = verify(&data);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("OK") && !out.contains("BAD"), "{out}");

    let pool = db(&data).await;
    let chain = tenant_chain(&pool).await;
    // An edited entry.
    sqlx::query("UPDATE audit_log SET target = 'group:forged' WHERE chain = ?1 AND seq = 3")
        .bind(&chain)
        .execute(&pool)
        .await
        .unwrap();
    let (code, out) = verify(&data);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("chain {chain}")) && out.contains("FIRST BAD ENTRY #3"),
        "{out}"
    );
    // A deleted entry (before the edited one) is reported first.
    sqlx::query("DELETE FROM audit_log WHERE chain = ?1 AND seq = 2")
        .bind(&chain)
        .execute(&pool)
        .await
        .unwrap();
    let (_, out) = verify(&data);
    assert!(
        out.contains("FIRST BAD ENTRY #2") && out.contains("deleted"),
        "{out}"
    );
    pool.close().await;
}

#[tokio::test]
async fn a_truncated_audit_tail_is_detected_through_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    bootstrap(&data, None, "Acme", "ann@acme.example", "Ann", "Admin");
    let pool = db(&data).await;
    let chain = tenant_chain(&pool).await;
    let max: i64 = sqlx::query("SELECT MAX(seq) FROM audit_log WHERE chain = ?1")
        .bind(&chain)
        .fetch_one(&pool)
        .await
        .unwrap()
        .get(0);
    sqlx::query("DELETE FROM audit_log WHERE chain = ?1 AND seq = ?2")
        .bind(&chain)
        .bind(max)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let (code, out) = verify(&data);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("FIRST BAD ENTRY #{max}")) && out.contains("truncated"),
        "{out}"
    );
}

#[tokio::test]
async fn keys_are_private_files_and_rotation_keeps_everything_readable() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    bootstrap(&data, None, "Acme", "ann@acme.example", "Ann", "Admin");
    use std::os::unix::fs::PermissionsExt;
    for f in ["master.key", "audit.key"] {
        let mode = std::fs::metadata(data.join(f))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{f}");
    }
    let before = std::fs::read_to_string(data.join("master.key")).unwrap();
    let out = bin()
        .args(["admin", "rotate-keys", "--master", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = std::fs::read_to_string(data.join("master.key")).unwrap();
    assert_ne!(before, after);
    assert_eq!(
        std::fs::read_to_string(data.join("master.key.previous")).unwrap(),
        before
    );
    // With the old key gone, the new one alone opens everything.
    std::fs::remove_file(data.join("master.key.previous")).unwrap();
    let log = dir.path().join("log");
    let mut server = serve(&data, None, &log, "info").await;
    let (c, csrf, tenant) = sign_in(&server.base, "ann@acme.example", PASSWORD).await;
    let tenant_url = format!("{}/api/v1/tenants/{tenant}", server.base);
    // Roll the data keys while the server runs and keeps writing encrypted fields.
    let rotation = tokio::task::spawn_blocking({
        let data = data.clone();
        move || {
            bin()
                .args([
                    "admin",
                    "rotate-keys",
                    "--all-tenants",
                    "--deployment",
                    "--data-dir",
                ])
                .arg(&data)
                .output()
                .unwrap()
        }
    });
    let mut last_phone = String::new();
    let mut writes = 0;
    while !rotation.is_finished() {
        writes += 1;
        last_phone = format!("+1 555 {writes:04}");
        let r = c
            .patch(&tenant_url)
            .header("x-csrf-token", &csrf)
            .json(&json!({"contact": {"phone": last_phone}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let out = rotation.await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("deployment: 1 fields re-encrypted"), "{text}");
    assert!(
        writes >= 10,
        "writes continued during the rotation: {writes}"
    );
    let me: serde_json::Value = c
        .get(format!("{}/api/v1/me", server.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["first_name"], "Ann");
    let t: serde_json::Value = c
        .get(&tenant_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(t["contact"]["phone"], last_phone.as_str());
    // Nothing was left under the old key.
    let out = bin()
        .args([
            "admin",
            "rotate-keys",
            "--all-tenants",
            "--resume",
            "--data-dir",
        ])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(": 0 fields re-encrypted"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    server.stop();
    let (code, out) = verify(&data);
    assert_eq!(
        code, 0,
        "rotations are audited and the chain still verifies: {out}"
    );
    // A wrong master key refuses to start, naming the problem.
    let out = bin()
        .args(["admin", "audit", "verify", "--data-dir"])
        .arg(&data)
        .env(
            "PRINTFLEET_MASTER_KEY",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("master key"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
