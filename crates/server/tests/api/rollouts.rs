//! Staged roll-outs (issue 6, item 2) over real sockets: a fleet of printers reporting over the
//! device API, a remediating policy, and a change rolled out canary first, then in waves. A
//! canary whose printers fail the setting halts the roll-out before the second wave — no
//! printer outside the canary is sent anything, the halt's reason is recorded and audited — and
//! an admin's resume releases the next waves; a canary that succeeds advances through every
//! wave to full compliance, and a rollback saves the version before the change again.

use crate::helpers::{spawn_app_with, world, Backend, Options, TestApp, World, PASSWORD};
use printfleet_agent::{enrol, DeviceClient, Identity};
use printfleet_protocol::messages::{
    ApplySettings, ApplyValue, Capabilities, CheckIn, DeviceInfo, Outcome, ReportedValue,
    SettingOutcome, SettingResult, WorkAck,
};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const RETENTION: &str = "filesystem.stored_jobs.retention";
const TELNET: &str = "network.telnet.enabled";
/// Simulated time per round of the fleet (well inside the plans' 600 s response timeout).
const ROUND_MS: i64 = 20_000;

struct Api<'a> {
    app: &'a TestApp,
    c: reqwest::Client,
    csrf: String,
    tenant: String,
}

impl<'a> Api<'a> {
    async fn new(app: &'a TestApp, w: &'a World, email: &str) -> Self {
        let (c, csrf) = app.sign_in(email, PASSWORD).await;
        Api {
            app,
            c,
            csrf,
            tenant: w.a.to_string(),
        }
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let url = self
            .app
            .url(&format!("/api/v1/tenants/{}/{path}", self.tenant));
        let mut r = self
            .c
            .request(method.parse().unwrap(), url)
            .header("x-csrf-token", &self.csrf);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or_default())
    }

    async fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (s, v) = self.call(method, path, body).await;
        assert!((200..300).contains(&s), "{method} {path}: {s} {v}");
        v
    }
}

fn now(app: &TestApp) -> u64 {
    app.state.clock.now_ms() as u64
}

/// A simulated printer: applies what it is sent and reports it, or fails the setting.
struct Printer {
    client: DeviceClient,
    id: String,
    seq: u64,
    fails: bool,
    retention: i64,
    acks: Vec<WorkAck>,
}

impl Printer {
    async fn enrol(app: &TestApp, token: &str, serial: &str, fails: bool) -> Printer {
        let http = reqwest::Client::new();
        let e = enrol(
            &http,
            &app.base,
            token,
            &Identity {
                serial: serial.into(),
                model: "LaserJet MFP M430".into(),
                firmware: "2506.1".into(),
            },
            now(app),
        )
        .await
        .unwrap();
        let client = DeviceClient::new(http, vec![app.base.clone()], e);
        let id = client.enrolment().printer_id.to_string();
        let mut p = Printer {
            client,
            id,
            seq: 0,
            fails,
            retention: 24,
            acks: vec![],
        };
        p.report(app, Some(serial)).await;
        p
    }

    async fn report(&mut self, app: &TestApp, serial: Option<&str>) {
        self.seq += 1;
        let report = CheckIn {
            seq: self.seq,
            taken_at_ms: now(app),
            info: serial.map(|serial| DeviceInfo {
                name: format!("Printer {serial}"),
                model: "LaserJet MFP M430".into(),
                serial: serial.into(),
                firmware: "2506.1".into(),
                region: None,
                language: None,
                // mfp-mono: has the stored-jobs retention setting.
                capabilities: Capabilities {
                    colour: false,
                    duplex: true,
                    scan: true,
                    fax: false,
                },
            }),
            meters: None,
            supplies: None,
            events: vec![],
            settings: BTreeMap::from([
                (TELNET.to_string(), ReportedValue::Bool(false)),
                (
                    RETENTION.to_string(),
                    ReportedValue::Integer(self.retention),
                ),
            ]),
        };
        self.client.check_in(&report, now(app)).await.unwrap();
    }

    /// One round: acknowledge what was handled, fetch, apply (or fail) and report.
    async fn round(&mut self, app: &TestApp) -> usize {
        let acks = std::mem::take(&mut self.acks);
        let work = self.client.fetch(acks, 0, now(app)).await.unwrap();
        let mut applied = false;
        let mut got = 0;
        for item in work.items {
            if item.kind != "apply_settings" {
                self.acks.push(WorkAck::new(item.id, Outcome::Done, None));
                continue;
            }
            got += 1;
            let apply = ApplySettings::decode(&item.data).unwrap();
            if self.fails {
                self.acks.push(WorkAck {
                    id: item.id,
                    outcome: Outcome::Failed,
                    reason: None,
                    results: apply
                        .settings
                        .keys()
                        .map(|k| {
                            (
                                k.clone(),
                                SettingResult {
                                    outcome: SettingOutcome::Failed,
                                    reason: "storage locked".into(),
                                },
                            )
                        })
                        .collect(),
                });
            } else {
                if let Some(ApplyValue::Integer(v)) = apply.settings.get(RETENTION) {
                    self.retention = *v;
                }
                self.acks.push(WorkAck::new(item.id, Outcome::Done, None));
                applied = true;
            }
        }
        if !self.acks.is_empty() {
            let acks = std::mem::take(&mut self.acks);
            self.client.fetch(acks, 0, now(app)).await.unwrap();
        }
        if applied {
            self.report(app, None).await;
        }
        got
    }
}

/// Printers of `api`'s tenant with any `apply_settings` item, ever.
async fn sent_to(app: &TestApp) -> BTreeSet<String> {
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT device_id FROM outbox WHERE kind = 'apply_settings'")
            .fetch_all(app.store.raw_pool())
            .await
            .unwrap();
    rows.into_iter().map(|(d,)| d).collect()
}

/// Serves the fleet round after round until the roll-out satisfies `done`.
async fn drive_until(
    api: &Api<'_>,
    fleet: &mut [Printer],
    path: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    for _ in 0..300 {
        // The printers remember the ids of the server's answers while they are fresh (64 at
        // most): time moves on with each round, or a long run would be refused as a replay.
        api.app.clock.advance_ms(ROUND_MS);
        for p in fleet.iter_mut() {
            p.round(api.app).await;
        }
        let r = api.ok("GET", path, None).await;
        if done(&r) {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let r = api.ok("GET", path, None).await;
    panic!("the roll-out never got there: {r:#}");
}

struct Setup<'a> {
    api: Api<'a>,
    fleet: Vec<Printer>,
    policy: String,
    canary_group: String,
}

/// `n` printers reporting retention 24, a dynamic group of all of them, a remediating policy
/// (telnet off, which they comply with) assigned to it, and a static canary group of the first
/// `canary` printers, which fail every setting when `canary_fails`.
async fn setup<'a>(
    app: &'a TestApp,
    w: &'a World,
    n: usize,
    canary: usize,
    canary_fails: bool,
) -> Setup<'a> {
    let api = Api::new(app, w, "printer@a.example").await;
    let tok = api
        .ok(
            "POST",
            "enrolment-tokens",
            Some(json!({"name": "rollouts", "max_uses": 100})),
        )
        .await;
    let token = tok["secret"].as_str().unwrap().to_string();
    let mut fleet = Vec::new();
    for i in 0..n {
        fleet.push(
            Printer::enrol(
                app,
                &token,
                &format!("RO-{i:02}"),
                canary_fails && i < canary,
            )
            .await,
        );
    }
    let all = api
        .ok("POST", "groups", Some(json!({"name": "Fleet"})))
        .await;
    let all = all["id"].as_str().unwrap().to_string();
    api.ok(
        "PUT",
        &format!("groups/{all}/rule"),
        Some(json!({"rule": {"all": true}})),
    )
    .await;
    let cg = api
        .ok("POST", "groups", Some(json!({"name": "Canary"})))
        .await;
    let canary_group = cg["id"].as_str().unwrap().to_string();
    for p in &fleet[..canary] {
        api.ok(
            "PUT",
            &format!("groups/{canary_group}/devices/{}", p.id),
            None,
        )
        .await;
    }
    let pol = api
        .ok(
            "POST",
            "policies",
            Some(json!({"name": "Baseline", "mode": "remediate", "settings": {TELNET: false}})),
        )
        .await;
    let policy = pol["id"].as_str().unwrap().to_string();
    api.ok(
        "POST",
        &format!("policies/{policy}/assignments"),
        Some(json!({"group": all, "priority": 10})),
    )
    .await;
    Setup {
        api,
        fleet,
        policy,
        canary_group,
    }
}

fn change() -> Value {
    json!({"name": "Baseline", "mode": "remediate", "settings": {TELNET: false, RETENTION: 48}})
}

fn tally(r: &Value, wave: usize, field: &str) -> u64 {
    r["waves"][wave][field].as_u64().unwrap()
}

async fn a_failing_canary_halts_before_the_second_wave(backend: Backend) {
    let app = spawn_app_with(Options {
        backend,
        ..Options::default()
    })
    .await;
    let w = world(&app).await;
    let Setup {
        api,
        mut fleet,
        policy,
        canary_group,
    } = setup(&app, &w, 8, 2, true).await;
    let before = sent_to(&app).await;
    assert!(before.is_empty(), "compliant printers got work: {before:?}");

    // A bad plan is refused naming the field, and nothing is saved.
    let (s, bad) = api
        .call(
            "POST",
            &format!("policies/{policy}/rollouts"),
            Some(json!({"change": change(), "plan": {"canary": {"percent": 5}, "waves": [50], "halt_when_failed_percent": 10}})),
        )
        .await;
    assert_eq!(
        (s, bad["field"].as_str()),
        (400, Some("plan.waves")),
        "{bad}"
    );
    let (s, bad) = api
        .call(
            "POST",
            &format!("policies/{policy}/rollouts"),
            Some(json!({"change": change(), "plan": {"canary": {"group": uuid::Uuid::new_v4()}, "waves": [100], "halt_when_failed_percent": 10}})),
        )
        .await;
    assert_eq!(
        (s, bad["field"].as_str()),
        (400, Some("plan.canary.group")),
        "{bad}"
    );
    let p = api.ok("GET", &format!("policies/{policy}"), None).await;
    assert_eq!(p["version"], 1);

    let started = api
        .ok(
            "POST",
            &format!("policies/{policy}/rollouts"),
            Some(json!({"change": change(), "plan": {
                "canary": {"group": canary_group}, "waves": [50, 100],
                "halt_when_failed_percent": 10, "response_timeout_s": 600}})),
        )
        .await;
    let r = &started["rollout"];
    assert_eq!(started["saved"]["policy"]["version"], 2);
    assert_eq!(
        (r["base_version"].as_i64(), r["version"].as_i64()),
        (Some(1), Some(2))
    );
    assert_eq!(r["state"], "active");
    let id = r["id"].as_str().unwrap().to_string();
    let path = format!("policies/{policy}/rollouts/{id}");
    // The fleet is the 8 printers and the world's printer in Floor 2 (which never reported):
    // 2 canary printers, then ceil(7 / 2) = 4, then the other 3.
    assert_eq!(
        (0..3).map(|i| tally(r, i, "printers")).collect::<Vec<_>>(),
        vec![2, 4, 3]
    );
    // A second roll-out of the same policy waits for this one.
    let (s, _) = api
        .call(
            "POST",
            &format!("policies/{policy}/rollouts"),
            Some(json!({"change": change(), "plan": {"canary": {"percent": 10}, "waves": [100], "halt_when_failed_percent": 10}})),
        )
        .await;
    assert_eq!(s, 409);

    let halted = drive_until(&api, &mut fleet, &path, |r| r["state"] != "active").await;
    assert_eq!(halted["state"], "halted", "{halted:#}");
    let reason = &halted["halt_reason"];
    assert_eq!(reason["wave"], 0);
    assert_eq!(
        (reason["got_work"].as_u64(), reason["failed"].as_u64()),
        (Some(2), Some(2))
    );
    let named: BTreeSet<String> = reason["printers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            assert!(
                p["reason"].as_str().unwrap().contains("storage locked"),
                "{p}"
            );
            p["device"].as_str().unwrap().to_string()
        })
        .collect();
    let canary: BTreeSet<String> = fleet[..2].iter().map(|p| p.id.clone()).collect();
    assert_eq!(named, canary);
    assert_eq!(halted["released_wave"], 0);
    assert_eq!(
        tally(&halted, 1, "sent") + tally(&halted, 1, "succeeded"),
        0
    );

    // A few more rounds: still nothing for any printer outside the canary.
    for _ in 0..5 {
        app.clock.advance_ms(ROUND_MS);
        for p in fleet.iter_mut() {
            assert_eq!(p.round(&app).await, 0, "work after the halt");
        }
    }
    assert_eq!(sent_to(&app).await, canary, "only the canary got work");
    // Printers of later waves stay non_compliant, and say why.
    let waiting = api
        .ok("GET", &format!("devices/{}/compliance", fleet[7].id), None)
        .await;
    let why = waiting["remediation"]["last_reason"]
        .as_str()
        .unwrap_or_default();
    assert!(why.starts_with("waiting for wave "), "{waiting:#}");

    // The halt is audited, by Printfleet itself, with its reason.
    let audited: Vec<(String, String)> =
        sqlx::query_as("SELECT actor, detail FROM audit_log WHERE action = 'rollout_halted'")
            .fetch_all(app.store.raw_pool())
            .await
            .unwrap();
    assert_eq!(audited.len(), 1, "{audited:?}");
    assert!(audited[0].1.contains(&id) && audited[0].1.contains("storage locked"));

    // Who may see and act: a Report Admin cannot read policies; another tenant sees nothing.
    let report = Api::new(&app, &w, "report@a.example").await;
    assert_eq!(report.call("GET", &path, None).await.0, 403);
    assert_eq!(
        report.call("POST", &format!("{path}/resume"), None).await.0,
        403
    );
    let mut other = Api::new(&app, &w, "it@b.example").await;
    assert_eq!(other.call("GET", &path, None).await.0, 404);
    other.tenant = w.b.to_string();
    assert_eq!(other.call("GET", &path, None).await.0, 404);
    assert_eq!(
        other.call("POST", &format!("{path}/resume"), None).await.0,
        404
    );
    let list = api
        .ok("GET", &format!("policies/{policy}/rollouts"), None)
        .await;
    assert_eq!(list.as_array().unwrap().len(), 1);

    // Resume: wave 1 is released despite the halt; its printers succeed, wave 2 follows.
    let resumed = api.ok("POST", &format!("{path}/resume"), None).await;
    assert_eq!(
        (resumed["state"].as_str(), resumed["released_wave"].as_u64()),
        (Some("active"), Some(1))
    );
    let done = drive_until(&api, &mut fleet, &path, |r| r["state"] == "completed").await;
    assert_eq!(
        (1..3).map(|i| tally(&done, i, "succeeded")).sum::<u64>(),
        6,
        "{done:#}"
    );
    assert_eq!(sent_to(&app).await.len(), 8);
    let actions: Vec<(String,)> =
        sqlx::query_as("SELECT action FROM audit_log WHERE action LIKE 'rollout_%' ORDER BY seq")
            .fetch_all(app.store.raw_pool())
            .await
            .unwrap();
    let actions: Vec<String> = actions.into_iter().map(|(a,)| a).collect();
    // The waves the driver released by itself and the completion are audited too.
    assert_eq!(
        actions,
        vec![
            "rollout_started",
            "rollout_halted",
            "rollout_resumed",
            "rollout_wave_released",
            "rollout_completed"
        ]
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_canary_halts_before_the_second_wave_on_sqlite() {
    a_failing_canary_halts_before_the_second_wave(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_canary_halts_before_the_second_wave_on_postgres() {
    a_failing_canary_halts_before_the_second_wave(Backend::Postgres).await;
}

/// A canary that succeeds: every wave follows by itself to full compliance; then a rollback
/// saves version 1's document again as version 3 and the printers are sent it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_canary_advances_to_full_compliance_and_rolls_back() {
    let app = spawn_app_with(Options::default()).await;
    let w = world(&app).await;
    let Setup {
        api,
        mut fleet,
        policy,
        ..
    } = setup(&app, &w, 8, 0, false).await;
    let started = api
        .ok(
            "POST",
            &format!("policies/{policy}/rollouts"),
            Some(json!({"change": change(), "plan": {
                "canary": {"percent": 25}, "waves": [50, 100], "halt_when_failed_percent": 0}})),
        )
        .await;
    let r = &started["rollout"];
    // 9 printers (with the world's): ceil(9 / 4) = 3, up to ceil(9 / 2) = 5, then 4.
    assert_eq!(
        (0..3).map(|i| tally(r, i, "printers")).collect::<Vec<_>>(),
        vec![3, 2, 4]
    );
    assert_eq!(r["waves"][0]["up_to_percent"], 25);
    let id = r["id"].as_str().unwrap().to_string();
    let path = format!("policies/{policy}/rollouts/{id}");
    let done = drive_until(&api, &mut fleet, &path, |r| {
        r["state"] == "completed" && (0..3).map(|i| tally(r, i, "compliant")).sum::<u64>() == 9
    })
    .await;
    assert_eq!(
        (0..3).map(|i| tally(&done, i, "succeeded")).sum::<u64>(),
        8,
        "{done:#}"
    );
    assert!(done["halt_reason"].is_null());
    for p in &fleet {
        assert_eq!(p.retention, 48);
        let c = api
            .ok("GET", &format!("devices/{}/compliance", p.id), None)
            .await;
        assert_eq!(c["status"], "compliant", "{c:#}");
    }
    // Resume and cancel answer 409 on a completed roll-out; rollback does not.
    assert_eq!(
        api.call("POST", &format!("{path}/resume"), None).await.0,
        409
    );
    assert_eq!(
        api.call("POST", &format!("{path}/cancel"), None).await.0,
        409
    );
    let back = api.ok("POST", &format!("{path}/rollback"), None).await;
    assert_eq!(
        (back["state"].as_str(), back["rollback_version"].as_i64()),
        (Some("rolled_back"), Some(3))
    );
    let p = api.ok("GET", &format!("policies/{policy}"), None).await;
    assert_eq!(p["version"], 3);
    assert_eq!(p["settings"], json!({TELNET: false}));
    let cmp = api
        .ok(
            "GET",
            &format!("policies/{policy}/versions/1/compare/3"),
            None,
        )
        .await;
    assert!(
        cmp["changes"]
            .as_array()
            .map(|c| c.is_empty())
            .unwrap_or(true),
        "{cmp:#}"
    );
    assert_eq!(
        api.call("POST", &format!("{path}/rollback"), None).await.0,
        409
    );
    let audited: Vec<(String,)> =
        sqlx::query_as("SELECT detail FROM audit_log WHERE action = 'rollout_rolled_back'")
            .fetch_all(app.store.raw_pool())
            .await
            .unwrap();
    assert_eq!(audited.len(), 1);
    app.stop().await;
}

/// A canary that stops answering: its printers are sent the change but never fetch it. Once
/// `response_timeout_s` has passed they count as not responding, and the roll-out halts before
/// the second wave as it does for failures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_canary_halts_as_not_responding() {
    let app = spawn_app_with(Options::default()).await;
    let w = world(&app).await;
    let Setup {
        api,
        mut fleet,
        policy,
        canary_group,
    } = setup(&app, &w, 6, 2, false).await;
    let started = api
        .ok(
            "POST",
            &format!("policies/{policy}/rollouts"),
            Some(json!({"change": change(), "plan": {
                "canary": {"group": canary_group}, "waves": [100],
                "halt_when_failed_percent": 10, "response_timeout_s": 30}})),
        )
        .await;
    let id = started["rollout"]["id"].as_str().unwrap().to_string();
    let path = format!("policies/{policy}/rollouts/{id}");
    // No printer answers: only time passes.
    let r = drive_until(&api, &mut fleet[..0], &path, |r| r["state"] != "active").await;
    assert_eq!(r["state"], "halted", "{r:#}");
    assert_eq!(tally(&r, 0, "not_responding"), 2, "{r:#}");
    assert_eq!(tally(&r, 0, "failed"), 0, "{r:#}");
    let canary: BTreeSet<String> = fleet[..2].iter().map(|p| p.id.clone()).collect();
    assert_eq!(sent_to(&app).await, canary, "only the canary got work");
}
