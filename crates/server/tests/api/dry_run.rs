//! Dry runs (issue 6, item 1) over real sockets: a fleet of printers reports over the device
//! API; a policy change is dry-run, then applied for real, and once the assessor has settled
//! every printer's changed items and every `apply_settings` item queued are exactly the ones the
//! dry run predicted — unsupported items included. The same for a new assignment made by a
//! group-scoped admin, who sees only its printers. The dry run writes nothing: no version, no
//! epoch, no audit entry, no outbox item; a new secret value in it is never echoed.

use crate::helpers::{spawn_app_with, world, Backend, Options, TestApp, World, PASSWORD};
use printfleet_agent::{enrol, DeviceClient, Identity};
use printfleet_protocol::messages::{Capabilities, CheckIn, DeviceInfo, ReportedValue};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const OLD: &str = "Old-Admin-Pass1";
const NEW: &str = "New-Admin-Pass2";
const PW: &str = "security.ews.admin_password";

/// A signed-in person of tenant A.
struct Api<'a> {
    app: &'a TestApp,
    w: &'a World,
    c: reqwest::Client,
    csrf: String,
}

impl<'a> Api<'a> {
    async fn new(app: &'a TestApp, w: &'a World, email: &str) -> Self {
        let (c, csrf) = app.sign_in(email, PASSWORD).await;
        Api { app, w, c, csrf }
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let url = self
            .app
            .url(&format!("/api/v1/tenants/{}/{path}", self.w.a));
        let mut r = self
            .c
            .request(method.parse().unwrap(), url)
            .header("x-csrf-token", &self.csrf);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        assert!(!text.contains(NEW), "a secret value was echoed: {text}");
        (status, serde_json::from_str(&text).unwrap_or_default())
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

/// Enrols a printer through the device API and has it report its model and `settings`.
async fn printer(
    app: &TestApp,
    token: &str,
    serial: &str,
    model: &str,
    caps: (bool, bool),
    settings: Vec<(&str, Setting)>,
) -> String {
    let identity = Identity {
        serial: serial.into(),
        model: model.into(),
        firmware: "2506.1".into(),
    };
    let http = reqwest::Client::new();
    let e = enrol(&http, &app.base, token, &identity, now(app))
        .await
        .unwrap();
    let p = DeviceClient::new(http, vec![app.base.clone()], e);
    let settings = settings
        .into_iter()
        .map(|(id, s)| {
            let v = match s {
                Setting::Plain(v) => v,
                Setting::Secret(value) => p.enrolment().reported_secret(id, value),
            };
            (id.to_string(), v)
        })
        .collect();
    let (colour, scan) = caps;
    let report = CheckIn {
        seq: 1,
        taken_at_ms: now(app),
        info: Some(DeviceInfo {
            name: format!("Printer {serial}"),
            model: model.into(),
            serial: serial.into(),
            firmware: "2506.1".into(),
            region: None,
            language: None,
            capabilities: Capabilities {
                colour,
                duplex: true,
                scan,
                fax: false,
            },
        }),
        meters: None,
        supplies: None,
        events: vec![],
        settings,
    };
    p.check_in(&report, now(app)).await.unwrap();
    p.enrolment().printer_id.to_string()
}

enum Setting {
    Plain(ReportedValue),
    Secret(&'static str),
}

fn b(v: bool) -> Setting {
    Setting::Plain(ReportedValue::Bool(v))
}
fn n(v: i64) -> Setting {
    Setting::Plain(ReportedValue::Integer(v))
}
fn s(v: &str) -> Setting {
    Setting::Plain(ReportedValue::Text(v.into()))
}

/// Waits until nothing is due for assessment: every change so far is assessed, and its rows,
/// history and remediation work committed (one transaction per batch).
async fn settle(app: &TestApp) {
    for _ in 0..300 {
        if app.store.assessment_due(1).await.unwrap().is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the assessor never settled");
}

/// Each printer's items by status, as its compliance page shows them.
async fn statuses(api: &Api<'_>, devices: &[String]) -> BTreeMap<(String, String), String> {
    let mut out = BTreeMap::new();
    for d in devices {
        let c = api
            .ok("GET", &format!("devices/{d}/compliance"), None)
            .await;
        for i in c["items"].as_array().unwrap() {
            out.insert(
                (d.clone(), i["setting_id"].as_str().unwrap().to_string()),
                i["status"].as_str().unwrap().to_string(),
            );
        }
    }
    out
}

/// (printer, item, new status) of every item whose status differs; "none" when gone.
fn changed(
    before: &BTreeMap<(String, String), String>,
    after: &BTreeMap<(String, String), String>,
) -> BTreeSet<(String, String, String)> {
    let keys: BTreeSet<_> = before.keys().chain(after.keys()).cloned().collect();
    keys.into_iter()
        .filter(|k| before.get(k) != after.get(k))
        .map(|(d, i)| {
            let s = after.get(&(d.clone(), i.clone())).cloned();
            (d, i, s.unwrap_or_else(|| "none".into()))
        })
        .collect()
}

/// The `apply_settings` work queued, per printer: the settings it names (values and names to
/// resolve at delivery).
async fn queued(app: &TestApp) -> BTreeMap<String, BTreeSet<String>> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT device_id, data FROM outbox WHERE kind = 'apply_settings'")
            .fetch_all(app.store.raw_pool())
            .await
            .unwrap();
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (d, data) in rows {
        let v: Value = serde_json::from_str(&data).unwrap();
        let set = out.entry(d).or_default();
        set.extend(v["settings"].as_object().unwrap().keys().cloned());
        for r in v["resolve"].as_array().unwrap() {
            set.insert(r.as_str().unwrap().to_string());
        }
    }
    out
}

/// Every page of a dry run (`limit` printers each), with the totals of each page checked equal.
async fn dry_run_all(api: &Api<'_>, path: &str, body: &Value, limit: u32) -> (Value, Vec<Value>) {
    let mut printers = Vec::new();
    let mut after: Option<String> = None;
    let mut totals: Option<Value> = None;
    loop {
        let q = match &after {
            Some(a) => format!("{path}?limit={limit}&after={a}"),
            None => format!("{path}?limit={limit}"),
        };
        let page = api.ok("POST", &q, Some(body.clone())).await;
        let list = page["printers"].as_array().unwrap();
        assert!(list.len() <= limit as usize);
        printers.extend(list.iter().cloned());
        match &totals {
            Some(t) => assert_eq!(t, &page["totals"], "totals differ between pages"),
            None => totals = Some(page["totals"].clone()),
        }
        match page["next_after"].as_str() {
            Some(a) => after = Some(a.to_string()),
            None => break,
        }
    }
    (totals.unwrap(), printers)
}

/// (printer, item, new status).
type Changes = BTreeSet<(String, String, String)>;
/// printer → the settings remediation sends it.
type Sent = BTreeMap<String, BTreeSet<String>>;

/// What a dry run predicts: the (printer, item, new status) of status changes, and the items
/// remediation would send per printer.
fn predicted(printers: &[Value]) -> (Changes, Sent) {
    let mut changes = Changes::new();
    let mut sent = Sent::new();
    for p in printers {
        let d = p["device"].as_str().unwrap().to_string();
        for i in p["items"].as_array().unwrap() {
            let id = i["setting_id"].as_str().unwrap().to_string();
            if i["current"] != i["predicted"] {
                let to = i["predicted"].as_str().unwrap_or("none").to_string();
                changes.insert((d.clone(), id.clone(), to));
            }
            if i["sent"] == json!(true) {
                sent.entry(d.clone()).or_default().insert(id);
            }
        }
        assert_eq!(
            p["sent_settings"].as_bool().unwrap(),
            sent.contains_key(&d),
            "{p}"
        );
    }
    (changes, sent)
}

/// Counts of what a dry run must not write.
async fn written(app: &TestApp) -> (i64, i64, i64, i64) {
    let count = |sql: &'static str| async move {
        let (n,): (i64,) = sqlx::query_as(sql)
            .fetch_one(app.store.raw_pool())
            .await
            .unwrap();
        n
    };
    (
        count("SELECT COUNT(*) FROM policy_versions").await,
        // A dry run trying a secret value is audited (checked on its own below).
        count("SELECT COUNT(*) FROM audit_log WHERE action <> 'policy_dry_run'").await,
        count("SELECT COUNT(*) FROM outbox").await,
        count("SELECT COALESCE(MAX(epoch), 0) FROM policy_epochs").await,
    )
}

fn item<'v>(printers: &'v [Value], device: &str, id: &str) -> &'v Value {
    printers
        .iter()
        .find(|p| p["device"] == device)
        .and_then(|p| {
            p["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|i| i["setting_id"] == id)
        })
        .unwrap_or_else(|| panic!("{device} {id} not in the dry run"))
}

async fn dry_run_predicts_the_roll_out(backend: Backend) {
    let app = spawn_app_with(Options {
        backend,
        ..Options::default()
    })
    .await;
    let w = world(&app).await;
    let admin = Api::new(&app, &w, "printer@a.example").await;
    let tok = admin
        .ok(
            "POST",
            "enrolment-tokens",
            Some(json!({"name": "dry run", "valid_for_hours": 1, "max_uses": 10})),
        )
        .await;
    let tok = tok["secret"].as_str().unwrap();
    let m406 = "LaserJet M406";
    let m507 = "LaserJet M507";
    // (colour, scan): office-mono, mfp-color, office-color, mfp-mono, mfp-color.
    let p1 = printer(
        &app,
        tok,
        "DR-1",
        m406,
        (false, false),
        vec![
            ("network.telnet.enabled", b(true)),
            (PW, Setting::Secret(OLD)),
        ],
    )
    .await;
    let p2 = printer(
        &app,
        tok,
        "DR-2",
        m406,
        (true, true),
        vec![
            ("network.telnet.enabled", b(false)),
            ("filesystem.stored_jobs.retention", n(48)),
            ("copier.color.access", s("enabled")),
            (PW, Setting::Secret(NEW)),
        ],
    )
    .await;
    let p3 = printer(
        &app,
        tok,
        "DR-3",
        m406,
        (true, false),
        vec![("network.telnet.enabled", b(false))],
    )
    .await;
    let p4 = printer(
        &app,
        tok,
        "DR-4",
        m507,
        (false, true),
        vec![
            ("network.telnet.enabled", b(true)),
            ("filesystem.stored_jobs.retention", n(24)),
            (PW, Setting::Secret(OLD)),
        ],
    )
    .await;
    let p5 = printer(
        &app,
        tok,
        "DR-5",
        m507,
        (true, true),
        vec![
            ("network.telnet.enabled", b(true)),
            ("filesystem.stored_jobs.retention", n(0)),
            ("copier.color.access", s("enabled")),
        ],
    )
    .await;
    let fleet = [&p1, &p2, &p3, &p4, &p5].map(|s| s.to_string());

    // M406s: a dynamic group (the dry run applies the rules as the assessor does); Extra:
    // static, with DR-4; DR-5 is in Floor 1 only, the scoped admin's group.
    let dynamic = admin
        .ok("POST", "groups", Some(json!({"name": "M406s"})))
        .await;
    let dynamic = dynamic["id"].as_str().unwrap().to_string();
    admin
        .ok(
            "PUT",
            &format!("groups/{dynamic}/rule"),
            Some(json!({"rule": {"models": [m406]}})),
        )
        .await;
    let extra = admin
        .ok("POST", "groups", Some(json!({"name": "Extra"})))
        .await;
    let extra = extra["id"].as_str().unwrap().to_string();
    admin
        .ok("PUT", &format!("groups/{extra}/devices/{p4}"), None)
        .await;
    admin
        .ok("PUT", &format!("groups/{}/devices/{p5}", w.g1), None)
        .await;
    let v1 = json!({"name": "Baseline", "mode": "assess", "settings": {
        "network.telnet.enabled": false,
        "filesystem.stored_jobs.retention": 24,
        PW: {"secret": OLD},
    }});
    let policy = admin.ok("POST", "policies", Some(v1)).await;
    let policy = policy["id"].as_str().unwrap().to_string();
    for (g, priority) in [(&dynamic, 10), (&extra, 20)] {
        admin
            .ok(
                "POST",
                &format!("policies/{policy}/assignments"),
                Some(json!({"group": g, "priority": priority})),
            )
            .await;
    }
    settle(&app).await;
    let before = statuses(&admin, &fleet).await;
    assert_eq!(before[&(p1.clone(), PW.to_string())], "compliant");
    assert_eq!(queued(&app).await.len(), 0, "assess mode sends nothing");

    // The change: remediate, retention 48, colour copies by sign-in, a new password.
    let v2 = json!({"name": "Baseline", "mode": "remediate", "settings": {
        "network.telnet.enabled": false,
        "filesystem.stored_jobs.retention": 48,
        "copier.color.access": "sign-in-required",
        PW: {"secret": NEW},
    }});
    let path = format!("policies/{policy}/dry-run");
    let written_before = written(&app).await;
    let (totals, printers) = dry_run_all(&admin, &path, &v2, 1000).await;
    assert_eq!(written(&app).await, written_before, "the dry run wrote");
    // It tried a password the policy does not hold: audited by name, never by value.
    let tried: Vec<(String, String)> =
        sqlx::query_as("SELECT target, detail FROM audit_log WHERE action = 'policy_dry_run'")
            .fetch_all(app.store.raw_pool())
            .await
            .unwrap();
    assert_eq!(tried.len(), 1, "{tried:?}");
    assert_eq!(tried[0].0, format!("policy:{policy}"));
    assert!(
        tried[0].1.contains(PW) && !tried[0].1.contains(NEW),
        "{tried:?}"
    );
    assert!(app.store.assessment_due(1).await.unwrap().is_empty());
    let (paged_totals, paged) = dry_run_all(&admin, &path, &v2, 1).await;
    assert_eq!((paged_totals, &paged), (totals.clone(), &printers));
    assert_eq!(totals["printers_assessed"], 4, "{totals}");
    assert_eq!(totals["printers_changing"], 4, "{totals}");
    // DR-3 has not reported the password (unknown) and lacks the rest: nothing to send.
    assert_eq!(totals["printers_sent_settings"], 3, "{totals}");
    // Unsupported where the catalogue says the model family lacks it.
    assert_eq!(
        item(&printers, &p1, "copier.color.access")["predicted"],
        "unsupported"
    );
    assert_eq!(
        item(&printers, &p4, "copier.color.access")["predicted"],
        "unsupported"
    );
    let retention = item(&printers, &p2, "filesystem.stored_jobs.retention");
    assert_eq!(
        (&retention["current"], &retention["predicted"]),
        (&json!("non_compliant"), &json!("compliant"))
    );
    assert_eq!(
        (&retention["wanted_now"], &retention["wanted_after"]),
        (&json!(24), &json!(48))
    );
    // The new password is checked against the printers' verifiers in memory only.
    let pw1 = item(&printers, &p1, PW);
    assert_eq!(
        (&pw1["current"], &pw1["predicted"]),
        (&json!("compliant"), &json!("non_compliant"))
    );
    assert_eq!(
        (
            &pw1["wanted_now"],
            &pw1["wanted_after"],
            pw1["sent"].as_bool()
        ),
        (&json!(null), &json!(null), Some(true))
    );
    assert_eq!(item(&printers, &p2, PW)["predicted"], "compliant");
    assert!(
        printers.iter().all(|p| p["device"] != p5),
        "DR-5 is not reached"
    );
    let first = &printers[0];
    assert_eq!(
        first["name"],
        format!("Printer {}", first["serial"].as_str().unwrap())
    );
    let (want_changes, want_sent) = predicted(&printers);

    // Applied for real: exactly what the dry run said.
    admin
        .ok("PUT", &format!("policies/{policy}"), Some(v2))
        .await;
    settle(&app).await;
    let after = statuses(&admin, &fleet).await;
    assert_eq!(changed(&before, &after), want_changes);
    assert_eq!(queued(&app).await, want_sent);

    // A new assignment by the admin scoped to Floor 1: only its printers, and exact again.
    let scoped = Api::new(&app, &w, "scoped@a.example").await;
    let assign = json!({"group": w.g1, "priority": 5});
    let apath = format!("policies/{policy}/assignments/dry-run");
    let written_before = written(&app).await;
    let (totals, printers) = dry_run_all(&scoped, &apath, &assign, 100).await;
    assert_eq!(written(&app).await, written_before, "the dry run wrote");
    assert_eq!(totals["printers_assessed"], 1, "{totals}");
    assert_eq!(printers.len(), 1);
    assert_eq!(printers[0]["device"], p5);
    assert_eq!(printers[0]["items"].as_array().unwrap().len(), 4);
    let (want_changes, want_sent) = predicted(&printers);
    let queued_before = queued(&app).await;
    scoped
        .ok(
            "POST",
            &format!("policies/{policy}/assignments"),
            Some(assign),
        )
        .await;
    settle(&app).await;
    let after_assign = statuses(&admin, &fleet).await;
    assert_eq!(changed(&after, &after_assign), want_changes);
    let mut new_work = queued(&app).await;
    new_work.retain(|d, _| !queued_before.contains_key(d));
    assert_eq!(new_work, want_sent);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_predicts_the_roll_out_on_sqlite() {
    dry_run_predicts_the_roll_out(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_predicts_the_roll_out_on_postgres() {
    dry_run_predicts_the_roll_out(Backend::Postgres).await;
}

/// Refusals: as the change itself (400 naming the field, 403, 404), and nothing written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_runs_refuse_as_the_change_would() {
    let app = spawn_app_with(Options::default()).await;
    let w = world(&app).await;
    let admin = Api::new(&app, &w, "printer@a.example").await;
    let policy = admin
        .ok(
            "POST",
            "policies",
            Some(json!({"name": "P", "mode": "assess", "settings": {"network.telnet.enabled": false}})),
        )
        .await;
    let policy = policy["id"].as_str().unwrap().to_string();
    let path = format!("policies/{policy}/dry-run");
    let apath = format!("policies/{policy}/assignments/dry-run");
    let doc = |settings: Value| json!({"name": "P", "mode": "assess", "settings": settings});
    let field = |v: &Value| v["field"].as_str().unwrap_or_default().to_string();
    // Everyone signs in first: sign-ins are audited.
    let report = Api::new(&app, &w, "report@a.example").await;
    let scoped = Api::new(&app, &w, "scoped@a.example").await;
    let (c, csrf) = app.sign_in("it@b.example", PASSWORD).await;
    let written_before = written(&app).await;

    let (s, e) = admin
        .call(
            "POST",
            &path,
            Some(doc(json!({"network.telnet.enabled": "maybe"}))),
        )
        .await;
    assert_eq!(
        (s, field(&e)),
        (400, "network.telnet.enabled".into()),
        "{e}"
    );
    let (s, e) = admin
        .call(
            "POST",
            &path,
            Some(doc(json!({"network.telnet.enabld": true}))),
        )
        .await;
    assert_eq!((s, field(&e)), (400, "network.telnet.enabld".into()), "{e}");
    let (s, e) = admin
        .call("POST", &path, Some(json!({"name": "", "mode": "assess"})))
        .await;
    assert_eq!((s, field(&e)), (400, "name".into()), "{e}");
    let (s, e) = admin
        .call("POST", &format!("{path}?limit=1001"), Some(doc(json!({}))))
        .await;
    assert_eq!((s, field(&e)), (400, "limit".into()), "{e}");
    let (s, e) = admin
        .call("POST", &apath, Some(json!({"group": w.g2, "priority": 0})))
        .await;
    assert_eq!((s, field(&e)), (400, "priority".into()), "{e}");
    // A group or policy that does not exist (or is another tenant's): 404.
    let (s, _) = admin
        .call(
            "POST",
            &apath,
            Some(json!({"group": uuid::Uuid::new_v4(), "priority": 5})),
        )
        .await;
    assert_eq!(s, 404);
    let (s, _) = admin
        .call(
            "POST",
            &format!("policies/{}/dry-run", uuid::Uuid::new_v4()),
            Some(doc(json!({}))),
        )
        .await;
    assert_eq!(s, 404);
    let r = c
        .post(app.url(&format!("/api/v1/tenants/{}/{path}", w.b)))
        .header("x-csrf-token", csrf)
        .json(&doc(json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "another tenant's policy");

    // A Report Admin may not; a scoped admin may not dry-run a policy change (saving needs a
    // tenant-wide scope), nor an assignment to a group outside its scope.
    assert_eq!(
        report.call("POST", &path, Some(doc(json!({})))).await.0,
        403
    );
    assert_eq!(
        scoped.call("POST", &path, Some(doc(json!({})))).await.0,
        403
    );
    let (s, _) = scoped
        .call("POST", &apath, Some(json!({"group": w.g2, "priority": 5})))
        .await;
    assert_eq!(s, 404);
    let (s, v) = scoped
        .call("POST", &apath, Some(json!({"group": w.g1, "priority": 5})))
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        written(&app).await,
        written_before,
        "a refused dry run wrote"
    );
    app.stop().await;
}
