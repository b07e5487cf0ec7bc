//! `printfleet rollout` against a real server over loopback with an API token: the status of a
//! roll-out with a line per wave, a refused command (409) exiting 1, and a rollback.

use crate::harness::{bin, bootstrap, serve, sign_in, PASSWORD};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_resume_and_rollback_through_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    bootstrap(&data, None, "Acme", "ann@acme.example", "Ann", "Admin");
    let server = serve(&data, None, &dir.path().join("server.log"), "info").await;
    let (http, csrf, tenant) = sign_in(&server.base, "ann@acme.example", PASSWORD).await;
    let url = |p: &str| format!("{}/api/v1/tenants/{tenant}/{p}", server.base);
    let post = |p: String, body: Value| {
        http.post(url(&p))
            .header("x-csrf-token", &csrf)
            .json(&body)
            .send()
    };
    let token: Value = post("api-tokens".into(), json!({"name": "rollouts"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["secret"].as_str().unwrap().to_string();
    let p: Value = post(
        "policies".into(),
        json!({"name": "Baseline", "mode": "remediate", "settings": {"network.telnet.enabled": false}}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let policy = p["id"].as_str().unwrap().to_string();
    // Assigned to no group: the fleet is empty, so every wave finishes at once.
    let r = post(
        format!("policies/{policy}/rollouts"),
        json!({"change": {"name": "Baseline", "mode": "remediate",
                "settings": {"network.telnet.enabled": false, "filesystem.stored_jobs.retention": 48}},
               "plan": {"canary": {"percent": 5}, "waves": [50, 100], "halt_when_failed_percent": 10}}),
    )
    .await
    .unwrap();
    assert_eq!(r.status().as_u16(), 201);

    let run = |args: &[&str]| {
        let out = bin()
            .arg("rollout")
            .args(args)
            .args([
                "--server",
                &server.base,
                "--tenant",
                &tenant,
                "--policy",
                "Baseline",
            ])
            .env("PRINTFLEET_TOKEN", &token)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let mut status = String::new();
    for _ in 0..100 {
        let (code, out, err) = run(&["status"]);
        assert_eq!(code, 0, "{out}{err}");
        status = out;
        if status.contains(": completed (version 1 -> 2)") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(status.contains(": completed (version 1 -> 2)"), "{status}");
    assert!(
        status.contains("canary (5 %)") && status.contains("wave 2 (to 100 %)"),
        "{status}"
    );
    let (code, out, _) = run(&["status", "--watch", "--interval", "1"]);
    assert_eq!(code, 0);
    assert!(out.contains("completed"), "{out}");

    let (code, _, err) = run(&["resume"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("409"), "{err}");
    let (code, out, err) = run(&["rollback"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("rolled back: version 3 restores version 1"),
        "{out}"
    );
    let (code, _, err) = run(&["status"]);
    assert_eq!(code, 0, "{err}");
    let no_token = bin()
        .args([
            "rollout",
            "status",
            "--server",
            &server.base,
            "--tenant",
            &tenant,
            "--policy",
            "Baseline",
        ])
        .env("PRINTFLEET_TOKEN", "pf_not_a_token")
        .output()
        .unwrap();
    assert_eq!(no_token.status.code(), Some(1));
}
