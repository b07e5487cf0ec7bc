//! `printfleet simulate` against a running server: printers enrol with a token, heartbeat, report
//! their meters, supplies and settings, and do the work an admin queues (over the doorbell, or
//! over the HTTPS long-poll where UDP is blocked).

use crate::harness::{bin, bootstrap, serve, sign_in, Server, PASSWORD};
use serde_json::{json, Value};
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A server with a signed-in admin and an enrolment token for `max_uses` printers.
struct Setup {
    _dir: tempfile::TempDir,
    server: Server,
    c: reqwest::Client,
    csrf: String,
    tenant: String,
    token: String,
}

impl Setup {
    async fn new(max_uses: u32) -> Self {
        Self::with_log_level(max_uses, "info").await
    }

    async fn with_log_level(max_uses: u32, level: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        bootstrap(&data, None, "Acme", "ann@acme.example", "Ann", "Admin");
        let server = serve(&data, None, &dir.path().join("log"), level).await;
        let (c, csrf, tenant) = sign_in(&server.base, "ann@acme.example", PASSWORD).await;
        let t: Value = c
            .post(format!(
                "{}/api/v1/tenants/{tenant}/enrolment-tokens",
                server.base
            ))
            .header("x-csrf-token", &csrf)
            .json(&json!({"name": "simulator", "max_uses": max_uses}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = t["secret"].as_str().unwrap().to_string();
        Self {
            _dir: dir,
            server,
            c,
            csrf,
            tenant,
            token,
        }
    }

    fn url(&self, path: &str) -> String {
        format!(
            "{}/api/v1/tenants/{}/devices{path}",
            self.server.base, self.tenant
        )
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let r = self.c.get(self.url(path)).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    fn simulate(&self, printers: &str, extra: &[&str]) -> Command {
        let mut c = bin();
        c.args(["simulate", "--printers", printers, "--server"])
            .arg(&self.server.base)
            .args(["--token", &self.token, "--interval-s", "1"])
            .args(["--offline-percent", "0"])
            .args(extra);
        c
    }
}

/// A number in the summary, e.g. `count(s, " long-poll")` in "fetches: 3 long-poll, …".
fn count(summary: &str, after_number: &str) -> u64 {
    let end = summary
        .find(after_number)
        .unwrap_or_else(|| panic!("{after_number:?} in {summary}"));
    let start = summary[..end].rfind(' ').map_or(0, |i| i + 1);
    summary[start..end].parse().unwrap()
}

/// The state a printer reported, as the admin API shows it.
fn assert_realistic_state(state: &Value, model: &str) {
    assert!(state["seq"].as_u64().unwrap() >= 1, "{state}");
    assert_eq!(state["info"]["model"], model, "{state}");
    assert!(
        state["meters"]["total_impressions"].as_u64().unwrap() > 0,
        "{state}"
    );
    let supplies = state["supplies"].as_array().unwrap();
    assert!(!supplies.is_empty(), "{state}");
    assert!(supplies
        .iter()
        .all(|s| s["level_percent"].as_u64().unwrap() <= 100));
    let settings = state["settings"].as_object().unwrap();
    assert!(settings.contains_key("network.telnet.enabled"), "{state}");
    // Secrets only as set or not.
    assert!(settings["security.ews.admin_password"]["set"].is_boolean());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_printers_enrol_heartbeat_report_and_show_online() {
    let s = Setup::new(5).await;
    let mut cmd = s.simulate("6", &["--duration-s", "4", "--report-every", "2"]);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
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
    // Every printer's first (full) report was stored, and none was refused.
    assert!(count(&stdout, " stored") >= 5, "{stdout}");
    assert!(stdout.contains("duplicate, 0 refused,"), "{stdout}");
    let (_, devices) = s.get("").await;
    let list = devices.as_array().unwrap();
    assert_eq!(list.len(), 5);
    let models: std::collections::BTreeSet<&str> =
        list.iter().map(|d| d["model"].as_str().unwrap()).collect();
    assert!(models.len() >= 3, "several models: {models:?}");
    assert!(list.iter().all(|d| d["online"] == true), "{devices}");
    for d in list {
        let (status, state) = s
            .get(&format!("/{}/state", d["id"].as_str().unwrap()))
            .await;
        assert_eq!(status, 200, "{state}");
        assert_realistic_state(&state, d["model"].as_str().unwrap());
    }
}

/// Starts the simulator in the background, waits for a printer's first report, queues
/// `report_now` for it and waits until the printer acknowledged it done; returns the summary
/// the simulator prints when interrupted.
async fn report_now_is_done(extra: &[&str]) -> String {
    let mut setup = Setup::new(2).await;
    let mut child = setup
        .simulate("2", extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    // Stopped (SIGTERM) if the test fails half-way.
    let mut sim = Server {
        child,
        base: String::new(),
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let (device, seq) = loop {
        let (_, devices) = setup.get("").await;
        if let Some(d) = devices.as_array().and_then(|l| l.first()) {
            let id = d["id"].as_str().unwrap().to_string();
            let (status, state) = setup.get(&format!("/{id}/state")).await;
            if status == 200 {
                assert_realistic_state(&state, d["model"].as_str().unwrap());
                break (id, state["seq"].as_u64().unwrap());
            }
        }
        assert!(Instant::now() < deadline, "no printer reported");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let r = setup
        .c
        .post(setup.url(&format!("/{device}/work")))
        .header("x-csrf-token", &setup.csrf)
        .json(&json!({"kind": "report_now"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    loop {
        let (_, work) = setup.get(&format!("/{device}/work")).await;
        let status = work[0]["status"].as_str().unwrap().to_string();
        if status != "pending" {
            assert_eq!(status, "done", "{work}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "report_now still pending: {work}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The full report arrived with a later seq.
    let (_, state) = setup.get(&format!("/{device}/state")).await;
    assert!(state["seq"].as_u64().unwrap() > seq, "{state}");
    assert!(state["info"]["serial"].is_string(), "{state}");

    let pid = sim.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let summary = tokio::task::spawn_blocking(move || {
        let mut out = String::new();
        stdout.read_to_string(&mut out).unwrap();
        out
    })
    .await
    .unwrap();
    let status = sim.child.wait().unwrap();
    assert!(status.success(), "{summary}");
    assert_eq!(count(&summary, " done"), 1, "{summary}");
    assert!(summary.contains("duplicate, 0 refused,"), "{summary}");
    setup.server.stop();
    summary
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_now_reaches_a_printer_through_the_doorbell() {
    let summary = report_now_is_done(&[]).await;
    assert!(count(&summary, " heartbeats") > 0, "{summary}");
    assert_eq!(count(&summary, " long-poll"), 0, "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_now_reaches_a_printer_without_udp_by_long_poll() {
    let summary = report_now_is_done(&["--no-udp"]).await;
    assert_eq!(count(&summary, " heartbeats"), 0, "{summary}");
    assert!(count(&summary, " long-poll") > 0, "{summary}");
}

/// A policy's secret reaches simulated printers sealed to each and is verified in place by their
/// keyed verifiers; it never appears in clear in the server's trace log, the simulator's
/// output, the database or its WAL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_secret_reaches_printers_sealed_and_is_never_in_clear() {
    const PLANTED: &str = "Pl4nted-Secr3t!";
    let mut setup = Setup::with_log_level(2, "trace").await;
    let out = setup._dir.path().join("sim.out");
    let child = setup
        .simulate(
            "2",
            &["--apply-failure-percent", "0", "--drift-percent", "0"],
        )
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(setup._dir.path().join("sim.err")).unwrap())
        .spawn()
        .unwrap();
    let mut sim = Server {
        child,
        base: String::new(),
    };
    let t = format!("{}/api/v1/tenants/{}", setup.server.base, setup.tenant);
    let post = |path: String, body: Value| {
        setup
            .c
            .post(path)
            .header("x-csrf-token", &setup.csrf)
            .json(&body)
            .send()
    };
    let g: Value = post(format!("{t}/groups"), json!({"name": "All"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let group = g["id"].as_str().unwrap().to_string();
    let r = setup
        .c
        .put(format!("{t}/groups/{group}/rule"))
        .header("x-csrf-token", &setup.csrf)
        .json(&json!({"rule": {"all": true}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let p: Value = post(
        format!("{t}/policies"),
        json!({"name": "Secrets", "mode": "remediate", "settings": {
            "security.ews.admin_password": {"secret": PLANTED},
            "network.telnet.enabled": false,
        }}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let policy = p["id"].as_str().unwrap().to_string();
    let r = post(
        format!("{t}/policies/{policy}/assignments"),
        json!({"group": group, "priority": 1}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);

    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (_, devices) = setup.get("").await;
        let ids: Vec<String> = devices
            .as_array()
            .map(|l| {
                l.iter()
                    .map(|d| d["id"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default();
        let mut verified = 0;
        for id in &ids {
            let (_, c) = setup.get(&format!("/{id}/compliance")).await;
            let ok = c["items"].as_array().into_iter().flatten().any(|i| {
                i["setting_id"] == "security.ews.admin_password" && i["status"] == "compliant"
            });
            verified += usize::from(ok);
        }
        if ids.len() == 2 && verified == 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{verified} of {} printers hold the secret",
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    sim.stop();
    let metrics = reqwest::get(format!("{}/metrics", setup.server.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let data = setup._dir.path().join("data");
    let wal = std::fs::read(data.join("printfleet.db-wal")).unwrap_or_default();
    setup.server.stop();
    let mut places: Vec<(String, Vec<u8>)> = vec![
        ("/metrics".into(), metrics.into_bytes()),
        ("WAL".into(), wal),
    ];
    for f in ["log", "sim.out", "sim.err"] {
        places.push((f.into(), std::fs::read(setup._dir.path().join(f)).unwrap()));
    }
    for f in std::fs::read_dir(&data).unwrap() {
        let f = f.unwrap().path();
        if f.is_file() {
            places.push((f.display().to_string(), std::fs::read(&f).unwrap()));
        }
    }
    let log = String::from_utf8_lossy(&places[2].1).to_string();
    assert!(
        log.contains("TRACE") || log.contains("trace"),
        "the log is at trace level"
    );
    for (what, bytes) in places {
        assert!(
            !bytes
                .windows(PLANTED.len())
                .any(|w| w == PLANTED.as_bytes()),
            "{what} holds the planted secret"
        );
    }
}
