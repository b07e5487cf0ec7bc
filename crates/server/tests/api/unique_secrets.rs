//! Unique per-printer secrets (issue 6): every printer gets its own generated password, the
//! verifier confirms each, rotation replaces it, and a break-glass reveal is re-authenticated,
//! needs a reason, is audited and listed, and is followed by rotation.

use crate::helpers::{spawn_app_with, world, Backend, Options, TestApp, World, PASSWORD};
use printfleet_agent::{enrol, DeviceClient, Identity};
use printfleet_protocol::messages::{
    ApplySettings, Capabilities, CheckIn, DeviceInfo, Outcome, ReportedValue, WorkAck,
};
use printfleet_storage::assessment::REPORT_GRACE_MS;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const ID: &str = "security.ews.admin_password";

fn now(app: &TestApp) -> u64 {
    app.state.clock.now_ms() as u64
}

async fn call(
    app: &TestApp,
    w: &World,
    who: &str,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value, Option<String>) {
    let (c, csrf) = app.sign_in(who, PASSWORD).await;
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
    let cache = r
        .headers()
        .get("cache-control")
        .map(|v| v.to_str().unwrap().to_string());
    (status, r.json().await.unwrap_or_default(), cache)
}

fn report(serial: &str, seq: u64, value: Option<(&DeviceClient, &str)>) -> CheckIn {
    let reported = match value {
        Some((p, v)) => p.enrolment().reported_secret(ID, v),
        None => ReportedValue::secret(false),
    };
    CheckIn {
        seq,
        taken_at_ms: 1_767_225_600_000,
        info: (seq == 1).then(|| DeviceInfo {
            name: serial.into(),
            model: "LaserJet M406".into(),
            serial: serial.into(),
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
        settings: BTreeMap::from([(ID.to_string(), reported)]),
    }
}

/// Fetches the printer's `apply_settings` item, opens the value sealed to it, acknowledges.
///
/// Each empty poll moves the clock on a little, as a real printer's polls are spread in time:
/// under a frozen clock every answer would expire at the same instant, and the agent's small
/// replay cache, once full, refuses the next answer as possibly replayed (it fails closed).
async fn receive(app: &TestApp, p: &DeviceClient) -> (String, serde_json::Value) {
    for _ in 0..200 {
        let work = p.fetch(vec![], 0, now(app)).await.unwrap();
        if let Some(item) = work.items.into_iter().find(|i| i.kind == "apply_settings") {
            let apply = ApplySettings::decode(&item.data).unwrap();
            let secrets = p.open_apply_secrets(&apply, now(app)).unwrap().unwrap();
            let value = secrets.get(ID).unwrap().to_string();
            p.fetch(
                vec![WorkAck::new(item.id, Outcome::Done, None)],
                0,
                now(app),
            )
            .await
            .unwrap();
            return (value, item.data);
        }
        app.clock.advance_ms(100);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no apply_settings work");
}

async fn status_until(app: &TestApp, w: &World, device: &str, want: &str) {
    for _ in 0..200 {
        let (s, body, _) = call(
            app,
            w,
            "it@a.example",
            "GET",
            &format!("devices/{device}/compliance"),
            None,
        )
        .await;
        assert_eq!(s, 200, "{body}");
        let st = body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["setting_id"] == ID)
            .map(|i| i["status"].as_str().unwrap().to_string());
        if st.as_deref() == Some(want) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{device} never became {want}");
}

/// Every generated value still in clear somewhere in the database: on SQLite every file of the
/// data directory (each column of each table, the write-ahead log included), on PostgreSQL every
/// text and binary column of the test's schema.
async fn database_holds(app: &TestApp, backend: Backend, values: &[&String]) -> Vec<String> {
    let mut found = Vec::new();
    if backend == Backend::Sqlite {
        let files: Vec<Vec<u8>> = std::fs::read_dir(app.data_dir())
            .unwrap()
            .map(|f| std::fs::read(f.unwrap().path()).unwrap_or_default())
            .collect();
        assert!(
            files.iter().any(|b| b.len() > 4096),
            "no database file found"
        );
        for v in values {
            if files
                .iter()
                .any(|b| b.windows(v.len()).any(|x| x == v.as_bytes()))
            {
                found.push(format!("a file of the data directory holds {v}"));
            }
        }
        return found;
    }
    let columns: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text, data_type::text FROM information_schema.columns \
         WHERE table_schema = current_schema() AND data_type IN ('text', 'character varying', 'bytea', 'json', 'jsonb')",
    )
    .fetch_all(app.store.raw_pool())
    .await
    .unwrap();
    assert!(
        columns.iter().any(|(t, _, _)| t == "device_secrets"),
        "{columns:?}"
    );
    for (table, column, kind) in &columns {
        let hit = if kind == "bytea" {
            format!("position(convert_to($1, 'UTF8') in \"{column}\") > 0")
        } else {
            format!("strpos(\"{column}\"::text, $1) > 0")
        };
        let sql = format!("SELECT count(*) FROM \"{table}\" WHERE {hit}");
        for v in values {
            let (n,): (i64,) = sqlx::query_as(&sql)
                .bind(v.as_str())
                .fetch_one(app.store.raw_pool())
                .await
                .unwrap();
            if n > 0 {
                found.push(format!("{table}.{column} holds {v}"));
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unique_passwords_rotation_and_break_glass_on_sqlite() {
    unique_passwords_rotation_and_break_glass(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unique_passwords_rotation_and_break_glass_on_postgres() {
    unique_passwords_rotation_and_break_glass(Backend::Postgres).await;
}

async fn unique_passwords_rotation_and_break_glass(backend: Backend) {
    let app = spawn_app_with(Options {
        backend,
        ..Options::default()
    })
    .await;
    let w = world(&app).await;
    let it = "it@a.example";
    let (_, tok, _) = call(
        &app,
        &w,
        it,
        "POST",
        "enrolment-tokens",
        Some(json!({"name": "u"})),
    )
    .await;
    let mut printers = Vec::new();
    for i in 0..3 {
        let serial = format!("UNQ-{i}");
        let e = enrol(
            &reqwest::Client::new(),
            &app.base,
            tok["secret"].as_str().unwrap(),
            &Identity {
                serial: serial.clone(),
                model: "LaserJet M406".into(),
                firmware: "2506.1".into(),
            },
            now(&app),
        )
        .await
        .unwrap();
        let p = DeviceClient::new(reqwest::Client::new(), vec![app.base.clone()], e);
        p.check_in(&report(&serial, 1, None), now(&app))
            .await
            .unwrap();
        printers.push((serial, p));
    }
    let (s, g, _) = call(&app, &w, it, "POST", "groups", Some(json!({"name": "All"}))).await;
    assert_eq!(s, 201);
    let group = g["id"].as_str().unwrap().to_string();
    let (s, _, _) = call(
        &app,
        &w,
        it,
        "PUT",
        &format!("groups/{group}/rule"),
        Some(json!({"rule": {"all": true}})),
    )
    .await;
    assert_eq!(s, 200);
    // A weak setting cannot be generated: refused naming it.
    let (s, bad, _) = call(
        &app,
        &w,
        it,
        "POST",
        "policies",
        Some(json!({"name": "Bad", "mode": "remediate",
        "settings": {"fax.receive.pin": {"generate": {"rotate_days": 30}}}})),
    )
    .await;
    assert_eq!(
        (s, bad["field"].as_str()),
        (400, Some("fax.receive.pin")),
        "{bad}"
    );
    let (s, pol, _) = call(
        &app,
        &w,
        it,
        "POST",
        "policies",
        Some(json!({"name": "Unique", "mode": "remediate",
        "settings": {ID: {"generate": {"rotate_days": 30}}}})),
    )
    .await;
    assert_eq!(s, 201, "{pol}");
    assert_eq!(pol["settings"][ID]["generate"]["rotate_days"], 30);
    let policy = pol["id"].as_str().unwrap().to_string();
    let (s, _, _) = call(
        &app,
        &w,
        it,
        "POST",
        &format!("policies/{policy}/assignments"),
        Some(json!({"group": group, "priority": 10})),
    )
    .await;
    assert_eq!(s, 200);

    // Every printer receives its own value, sealed to it; each is verified.
    let mut values = Vec::new();
    let mut seq = 1;
    seq += 1;
    for (serial, p) in &printers {
        let (v, raw) = receive(&app, p).await;
        assert!(
            !raw.to_string().contains(&v),
            "the work item carries the value in clear"
        );
        assert_eq!(v.len(), 16);
        p.check_in(&report(serial, seq, Some((p, &v))), now(&app))
            .await
            .unwrap();
        status_until(&app, &w, &p.enrolment().printer_id.to_string(), "compliant").await;
        values.push(v);
    }
    assert_eq!(
        values.iter().collect::<BTreeSet<_>>().len(),
        3,
        "values must differ"
    );

    // Rotation: 31 days later each printer's value is replaced and it is compliant again.
    app.clock.advance_ms(31 * 86_400_000);
    // The assessor's periodic sweep (every 30 s of real time) finds rotations that came due; a
    // check-in that changes no setting no longer wakes it, so stand in for the sweeps those
    // 31 days would have seen.
    app.state.assessor.poke();
    seq += 1;
    let mut rotated = Vec::new();
    for (i, (serial, p)) in printers.iter().enumerate() {
        p.check_in(&report(serial, seq, Some((p, &values[i]))), now(&app))
            .await
            .unwrap();
        let (v, _) = receive(&app, p).await;
        assert_ne!(v, values[i], "rotation must replace the value");
        p.check_in(&report(serial, seq + 1, Some((p, &v))), now(&app))
            .await
            .unwrap();
        status_until(&app, &w, &p.enrolment().printer_id.to_string(), "compliant").await;
        rotated.push(v);
    }
    seq += 1;

    // Break-glass on printer 0.
    let d0 = printers[0].1.enrolment().printer_id.to_string();
    let path = format!("devices/{d0}/secrets/{ID}/reveal");
    let (s, b, _) = call(
        &app,
        &w,
        it,
        "POST",
        &path,
        Some(json!({"password": "wrong password!", "reason": "locked out"})),
    )
    .await;
    assert_eq!(s, 403, "{b}");
    let (s, b, _) = call(
        &app,
        &w,
        it,
        "POST",
        &path,
        Some(json!({"password": PASSWORD, "reason": "  "})),
    )
    .await;
    assert_eq!((s, b["field"].as_str()), (400, Some("reason")), "{b}");
    let (s, _, _) = call(
        &app,
        &w,
        "printer@a.example",
        "POST",
        &path,
        Some(json!({"password": PASSWORD, "reason": "x"})),
    )
    .await;
    assert_eq!(s, 403);
    let it_ctx = app.ctx(w.it_admin, w.a).await;
    let (_, token) = app.store.token_create(&it_ctx, "ci", None).await.unwrap();
    let s = reqwest::Client::new()
        .post(app.url(&format!("/api/v1/tenants/{}/{path}", w.a)))
        .bearer_auth(token.expose())
        .json(&json!({"password": PASSWORD, "reason": "x"}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    assert_eq!(s, 403, "an API token cannot re-authenticate");
    let (s, b, cache) = call(
        &app,
        &w,
        it,
        "POST",
        &path,
        Some(json!({"password": PASSWORD, "reason": "panel locked, vendor on site"})),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(cache.as_deref(), Some("no-store"));
    assert_eq!(b["value"].as_str(), Some(rotated[0].as_str()));
    let (s, audit, _) = call(&app, &w, it, "GET", "audit", None).await;
    assert_eq!(s, 200);
    let audit = audit.to_string();
    assert!(audit.contains("secret_revealed") && audit.contains("panel locked, vendor on site"));
    assert!(audit.contains("secret_reveal_refused"));
    let (s, feed, _) = call(&app, &w, "report@a.example", "GET", "break-glass", None).await;
    assert_eq!(s, 200, "{feed}");
    assert_eq!(feed["reveals"][0]["device"], json!(d0));
    assert_eq!(feed["reveals"][0]["reason"], "panel locked, vendor on site");

    // Followed by rotation: the revealed value no longer verifies. The printer applied its
    // current value moments ago, and the server gives a printer that applied settings
    // `REPORT_GRACE_MS` to report before it sends anything again: once that has passed, the
    // replacement arrives.
    app.clock.advance_ms(REPORT_GRACE_MS + 1_000);
    app.state.assessor.poke(); // the periodic sweep, as above
    let (serial, p) = &printers[0];
    p.check_in(&report(serial, seq + 1, Some((p, &rotated[0]))), now(&app))
        .await
        .unwrap();
    let (v, _) = receive(&app, p).await;
    assert_ne!(v, rotated[0]);
    p.check_in(&report(serial, seq + 2, Some((p, &rotated[0]))), now(&app))
        .await
        .unwrap();
    status_until(&app, &w, &d0, "non_compliant").await;
    p.check_in(&report(serial, seq + 3, Some((p, &v))), now(&app))
        .await
        .unwrap();
    status_until(&app, &w, &d0, "compliant").await;
    let (_, feed, _) = call(&app, &w, it, "GET", "break-glass", None).await;
    assert_eq!(feed["reveals"][0]["rotated_since"], true);

    // A reveal after the printer proved its value: confirmed. The rotation that follows is not
    // applied (the printer stays silent, as an offline one would): a second reveal shows the
    // new value unconfirmed and, beside it, the value the printer still holds.
    let (s, b, _) = call(
        &app,
        &w,
        it,
        "POST",
        &path,
        Some(json!({"password": PASSWORD, "reason": "vendor visit, second day"})),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["value"].as_str(), Some(v.as_str()));
    assert_eq!(b["confirmed"], true, "{}", b["generation"]);
    assert!(b["last_confirmed_value"].is_null());
    status_until(&app, &w, &d0, "non_compliant").await;
    let (s, b, _) = call(
        &app,
        &w,
        it,
        "POST",
        &path,
        Some(json!({"password": PASSWORD, "reason": "printer offline after the rotation"})),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_ne!(b["value"].as_str(), Some(v.as_str()));
    assert_eq!(b["confirmed"], false);
    assert_eq!(b["last_confirmed_value"].as_str(), Some(v.as_str()));

    // Rolling the tenant's data key re-encrypts the generated values (current and held) like
    // every other field; they still open.
    app.store.roll_data_key(Some(w.a)).await.unwrap();
    assert!(app.store.stale_fields(Some(w.a)).await.unwrap() > 0);
    while app.store.reencrypt_batch(Some(w.a), 10).await.unwrap() > 0 {}
    assert_eq!(app.store.stale_fields(Some(w.a)).await.unwrap(), 0);
    let (s, b, _) = call(
        &app,
        &w,
        it,
        "POST",
        &path,
        Some(json!({"password": PASSWORD, "reason": "after the key roll"})),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["last_confirmed_value"].as_str(), Some(v.as_str()), "{b}");

    // No generated value in any other answer, nor in the audit log or outbox.
    let (_, c0, _) = call(
        &app,
        &w,
        it,
        "GET",
        &format!("devices/{d0}/compliance"),
        None,
    )
    .await;
    let (_, pol, _) = call(&app, &w, it, "GET", &format!("policies/{policy}"), None).await;
    for v in values.iter().chain(&rotated).chain([&v]) {
        for text in [&audit, &feed.to_string(), &c0.to_string(), &pol.to_string()] {
            assert!(!text.contains(v.as_str()), "a generated value leaked");
        }
    }
    // Nor in the outbox (values are resolved at delivery and sealed to the printer) nor
    // anywhere in the database.
    let outbox: Vec<(String,)> = sqlx::query_as("SELECT data FROM outbox")
        .fetch_all(app.store.raw_pool())
        .await
        .unwrap();
    assert!(outbox.len() >= 7, "{outbox:?}");
    let all: Vec<&String> = values.iter().chain(&rotated).chain([&v]).collect();
    for v in &all {
        assert!(
            outbox.iter().all(|(d,)| !d.contains(v.as_str())),
            "the outbox holds a generated value"
        );
    }
    let found = database_holds(&app, backend, &all).await;
    assert!(found.is_empty(), "{found:?}");
    // The scan does see plaintext: a reveal's reason is stored in clear (for the feed).
    let reason = "panel locked, vendor on site".to_string();
    assert!(!database_holds(&app, backend, &[&reason]).await.is_empty());
    app.stop().await;
}
