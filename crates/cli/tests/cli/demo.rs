//! The README's first command: the demo starts and every printed login works.

use crate::harness::{bin, free_port, read_until, sign_in, Server};
use std::io::BufReader;
use std::process::Stdio;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_prints_a_url_and_logins_that_sign_in_with_their_roles() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = bin()
        .args([
            "demo",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(dir.path().join("demo"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    // Keep the pipe open while the server runs.
    let (lines, _stdout) = tokio::task::spawn_blocking(move || {
        let l = read_until(&mut out, "Stop with Ctrl-C.");
        (l, out)
    })
    .await
    .unwrap();
    let server = Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&format!("running at http://127.0.0.1:{port}"))),
        "{lines:?}"
    );
    let logins: Vec<(String, String, String)> = lines
        .iter()
        .filter(|l| {
            l.trim_start().contains("@demo.printfleet.test")
                && !l.contains("curl")
                && !l.contains("-d '")
        })
        .map(|l| {
            let mut parts = l.split_whitespace();
            let email = parts.next().unwrap().to_string();
            let password = parts.next().unwrap().to_string();
            (email, password, l.to_string())
        })
        .collect();
    assert_eq!(logins.len(), 4, "{lines:?}");
    for (email, password, line) in &logins {
        let (c, _, tenant) = sign_in(&server.base, email, password).await;
        let me: serde_json::Value = c
            .get(format!("{}/api/v1/me", server.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(me["email"], email.as_str());
        let role = me["memberships"][0]["role_name"].as_str().unwrap();
        assert!(line.contains(role), "{line} vs {role}");
        // Each sees what its role allows.
        let members = c
            .get(format!("{}/api/v1/tenants/{tenant}/members", server.base))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(members == 200, role == "IT Admin", "{email}: {members}");
    }
    // A living fleet: 50 simulated printers enrol, report and heartbeat (every 10 s, the first
    // beat within 2 s of enrolment; later some are switched off for a while, as in real fleets).
    let it_admin = logins
        .iter()
        .find(|(_, _, line)| line.contains("(IT Admin)"))
        .expect("an IT Admin login");
    let (c, csrf, tenant) = sign_in(&server.base, &it_admin.0, &it_admin.1).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let devices: serde_json::Value = c
            .get(format!("{}/api/v1/tenants/{tenant}/devices", server.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let list = devices.as_array().unwrap();
        let online = list.iter().filter(|d| d["online"] == true).count();
        if list.len() == 50 && online >= 45 {
            // Each reported what it is, its meters, supplies and settings right after enrolling
            // (a few are switched off for a while, as in real fleets: look at one that reported).
            let mut reported = None;
            for d in list {
                let id = d["id"].as_str().unwrap();
                let state: serde_json::Value = c
                    .get(format!(
                        "{}/api/v1/tenants/{tenant}/devices/{id}/state",
                        server.base
                    ))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                if state["code"] != "not_found" {
                    reported = Some((d, state));
                    break;
                }
            }
            let Some((device, state)) = reported else {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                continue;
            };
            assert_eq!(state["info"]["model"], device["model"], "{state}");
            assert!(state["meters"]["total_impressions"].as_u64().unwrap() > 0);
            assert!(!state["supplies"].as_array().unwrap().is_empty(), "{state}");
            assert!(
                !state["settings"].as_object().unwrap().is_empty(),
                "{state}"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} printers, {online} online",
            list.len()
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }

    // The baseline policy remediates the fleet: most printers come into line by themselves
    // (the simulator applies what it is sent; a few fail or drift, as in real fleets).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    loop {
        let figures: serde_json::Value = c
            .get(format!(
                "{}/api/v1/tenants/{tenant}/compliance",
                server.base
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let baseline = &figures["policies"][0];
        let compliant = baseline["printers"]["compliant"].as_u64().unwrap_or(0);
        if compliant >= 25 {
            // The only policy, by name.
            assert_eq!(baseline["name"], "Baseline security", "{figures}");
            assert_eq!(figures["policies"].as_array().unwrap().len(), 1);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "only {compliant} printers compliant: {figures}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }

    // The administrator password is unique per printer: generated by the server, sealed to each
    // printer, applied and proved by its verifier (per-item figures count printers compliant).
    const ADMIN_PASSWORD: &str = "security.ews.admin_password";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let figures: serde_json::Value = c
            .get(format!(
                "{}/api/v1/tenants/{tenant}/compliance",
                server.base
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let item = figures["policies"][0]["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["setting_id"] == ADMIN_PASSWORD)
            .cloned()
            .unwrap_or_default();
        let compliant = item["items"]["compliant"].as_u64().unwrap_or(0);
        if compliant >= 10 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "only {compliant} printers compliant on {ADMIN_PASSWORD}: {figures}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }

    // Break-glass: the IT Admin re-enters their password and gives a reason to see one printer's
    // value, which that printer has proved it holds; the reveal is listed in the feed.
    let devices: serde_json::Value = c
        .get(format!("{}/api/v1/tenants/{tenant}/devices", server.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut device = None;
    for d in devices.as_array().unwrap() {
        let id = d["id"].as_str().unwrap();
        let compliance: serde_json::Value = c
            .get(format!(
                "{}/api/v1/tenants/{tenant}/devices/{id}/compliance",
                server.base
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let compliant = compliance["items"].as_array().is_some_and(|items| {
            items
                .iter()
                .any(|i| i["setting_id"] == ADMIN_PASSWORD && i["status"] == "compliant")
        });
        if compliant {
            device = Some(id.to_string());
            break;
        }
    }
    let device = device.expect("a printer compliant on the administrator password");
    let r = c
        .post(format!(
            "{}/api/v1/tenants/{tenant}/devices/{device}/secrets/{ADMIN_PASSWORD}/reveal",
            server.base
        ))
        .header("x-csrf-token", &csrf)
        .json(
            &serde_json::json!({"password": it_admin.1, "reason": "demo: locked out of the panel"}),
        )
        .send()
        .await
        .unwrap();
    let status = r.status();
    let revealed: serde_json::Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{revealed}");
    assert!(
        !revealed["value"].as_str().unwrap_or_default().is_empty(),
        "{revealed}"
    );
    assert_eq!(revealed["confirmed"], true, "{revealed}");
    let feed: serde_json::Value = c
        .get(format!(
            "{}/api/v1/tenants/{tenant}/break-glass",
            server.base
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let reveal = &feed["reveals"][0];
    assert_eq!(reveal["device"].as_str(), Some(device.as_str()), "{feed}");
    assert_eq!(reveal["setting_id"], ADMIN_PASSWORD, "{feed}");
    assert_eq!(reveal["reason"], "demo: locked out of the panel", "{feed}");
}
