//! The device path end to end, as a printer lives it: the agent library enrols over HTTP,
//! checks in sealed telemetry that the admin API then shows, is rung over UDP when work is
//! queued and fetches it, falls back to HTTPS long-polls and to its second port, survives a
//! server restart without its old datagrams being accepted again, and is refused at once on
//! every channel when revoked or removed.

use crate::helpers::{json, spawn_app, spawn_app_with, world, Options, TestApp, World, PASSWORD};
use printfleet_agent::{
    enrol, reenrol, AgentError, DeviceClient, Enrolment, Heartbeater, Identity,
};
use printfleet_agent::{enrol_first, MemoryCounter, Reply};
use printfleet_protocol::heartbeat::RequestType;
use printfleet_protocol::messages::{
    AckStatus, CheckIn, Event, EventKind, Meters, Outcome, ReportedValue, Supply, SupplyKind,
    SupplyState, WorkAck,
};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;

pub(crate) fn now(app: &TestApp) -> u64 {
    app.state.clock.now_ms() as u64
}

pub(crate) async fn token(app: &TestApp, w: &World) -> String {
    let (c, csrf) = app.sign_in("printer@a.example", PASSWORD).await;
    let r = c
        .post(app.url(&format!("/api/v1/tenants/{}/enrolment-tokens", w.a)))
        .header("x-csrf-token", &csrf)
        .json(&json!({"name": "device path"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    json(r).await["secret"].as_str().unwrap().to_string()
}

fn identity(serial: &str) -> Identity {
    Identity {
        serial: serial.into(),
        model: "Color LaserJet Enterprise MFP M578".into(),
        firmware: "2506.1".into(),
    }
}

pub(crate) async fn printer(app: &TestApp, token: &str, serial: &str) -> DeviceClient {
    let e = enrol(
        &reqwest::Client::new(),
        &app.base,
        token,
        &identity(serial),
        now(app),
    )
    .await
    .unwrap();
    DeviceClient::new(reqwest::Client::new(), vec![app.base.clone()], e)
}

pub(crate) fn report(seq: u64, total: u64, black: u8) -> CheckIn {
    CheckIn {
        seq,
        taken_at_ms: 1_767_225_600_000,
        info: None,
        meters: Some(Meters {
            total_impressions: total,
            mono_impressions: Some(total - total / 4),
            colour_impressions: Some(total / 4),
            jams: Some(1),
            ..Meters::default()
        }),
        supplies: Some(vec![Supply {
            id: "toner-black".into(),
            kind: SupplyKind::Toner,
            colour: Some("black".into()),
            level_percent: Some(black),
            capacity_pages: Some(12_500),
            pages: Some(4_000),
            part_number: Some("W2020A".into()),
            state: SupplyState::Ok,
        }]),
        events: vec![Event {
            at_ms: 1_767_225_500_000,
            kind: EventKind::Jam,
            code: Some("13.B2.D1".into()),
            detail: None,
        }],
        settings: BTreeMap::from([
            ("network.telnet.enabled".into(), ReportedValue::Bool(true)),
            (
                "scan.email.smtp.password".into(),
                ReportedValue::secret(true),
            ),
        ]),
    }
}

pub(crate) async fn admin_get(app: &TestApp, w: &World, path: &str) -> (u16, serde_json::Value) {
    let (c, _) = app.sign_in("printer@a.example", PASSWORD).await;
    let r = c
        .get(app.url(&format!("/api/v1/tenants/{}/{path}", w.a)))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or_default())
}

pub(crate) async fn admin_post(
    app: &TestApp,
    w: &World,
    path: &str,
    body: serde_json::Value,
) -> u16 {
    let (c, csrf) = app.sign_in("printer@a.example", PASSWORD).await;
    c.post(app.url(&format!("/api/v1/tenants/{}/{path}", w.a)))
        .header("x-csrf-token", csrf)
        .json(&body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn refusal_code(e: AgentError) -> (u16, String) {
    match e {
        AgentError::Refused { status, code, .. } => (status, code),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

async fn heartbeater(app: &TestApp, e: &Enrolment) -> Heartbeater {
    Heartbeater::connect(
        app.heartbeat.unwrap(),
        e.heartbeat_keys.clone(),
        Box::new(MemoryCounter::default()),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn check_ins_are_stored_shown_and_nonsense_is_refused_without_damage() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let t = token(&app, &w).await;
    let p = printer(&app, &t, "TEL-1").await;
    let id = p.enrolment().printer_id;

    let ack = p.check_in(&report(1, 1000, 80), now(&app)).await.unwrap();
    assert_eq!(ack.status, AckStatus::Stored);
    let (status, state) = admin_get(&app, &w, &format!("devices/{id}/state")).await;
    assert_eq!(status, 200, "{state}");
    assert_eq!(state["meters"]["total_impressions"], 1000);
    assert_eq!(state["supplies"][0]["level_percent"], 80);
    assert_eq!(state["settings"]["network.telnet.enabled"], true);
    assert_eq!(
        state["settings"]["scan.email.smtp.password"],
        json!({"set": true})
    );
    assert_eq!(state["recent_events"][0]["kind"], "jam");
    assert!(!state["catalogue_version"].as_str().unwrap().is_empty());
    let origin = &state["provenance"]["settings.network.telnet.enabled"];
    assert_eq!(
        (
            &origin["via"],
            &origin["method"],
            &origin["seq"],
            &origin["key_version"]
        ),
        (&json!("direct"), &json!("check_in"), &json!(1), &json!(1))
    );

    // The same report again (a retry after a lost answer) changes nothing.
    let ack = p.check_in(&report(1, 1000, 80), now(&app)).await.unwrap();
    assert_eq!(ack.status, AckStatus::Duplicate);

    // Nonsense: each refused with its code and field, and nothing stored changes.
    let backwards = report(2, 999, 70);
    let mut over = report(2, 1100, 70);
    over.supplies.as_mut().unwrap()[0].level_percent = Some(101);
    let mut unknown = report(2, 1100, 70);
    unknown
        .settings
        .insert("network.gopher.enabled".into(), ReportedValue::Bool(true));
    let mut leaked = report(2, 1100, 70);
    leaked.settings.insert(
        "scan.email.smtp.password".into(),
        ReportedValue::Text("Hunter2-planted-secret".into()),
    );
    let mut long = report(2, 1100, 70);
    long.supplies.as_mut().unwrap()[0].part_number = Some("X".repeat(65));
    for (r, code, field) in [
        (backwards, "counter_backwards", "meters.total_impressions"),
        (over, "out_of_range", "supplies[0].level_percent"),
        (
            unknown,
            "unknown_setting",
            "settings.network.gopher.enabled",
        ),
        (
            leaked,
            "secret_value_reported",
            "settings.scan.email.smtp.password",
        ),
        (long, "too_long", "supplies[0].part_number"),
    ] {
        let ack = p.check_in(&r, now(&app)).await.unwrap();
        assert_eq!(ack.status, AckStatus::Refused);
        assert_eq!(
            (ack.code.as_deref(), ack.field.as_deref()),
            (Some(code), Some(field))
        );
        assert!(!ack
            .message
            .unwrap_or_default()
            .contains("Hunter2-planted-secret"));
    }
    let (_, after) = admin_get(&app, &w, &format!("devices/{id}/state")).await;
    assert_eq!(after, state, "refused reports changed nothing");

    let ack = p.check_in(&report(2, 1100, 70), now(&app)).await.unwrap();
    assert_eq!(ack.status, AckStatus::Stored);
    let (_, history) = admin_get(&app, &w, &format!("devices/{id}/history?class=meters")).await;
    let totals: Vec<_> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["body"]["total_impressions"].as_u64().unwrap())
        .collect();
    assert_eq!(totals, [1100, 1000], "meters history, newest first");
    let (status, _) = admin_get(&app, &w, &format!("devices/{id}/history?class=bogus")).await;
    assert_eq!(status, 400);

    // Outcomes are counted; the planted secret appears nowhere in /metrics.
    let metrics = reqwest::get(app.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("printfleet_check_ins_total{reason=\"stored\"} 2"));
    assert!(metrics.contains("printfleet_check_ins_total{reason=\"refused_counter_backwards\"} 1"));
    assert!(!metrics.contains("Hunter2"));
    app.stop().await;
}

#[tokio::test]
async fn queued_work_rings_the_doorbell_and_the_printer_fetches_it() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let t = token(&app, &w).await;
    let p = printer(&app, &t, "RING-1").await;
    let id = p.enrolment().printer_id;
    let mut hb = heartbeater(&app, p.enrolment()).await;
    assert_eq!(
        hb.beat(RequestType::Heartbeat).await.unwrap(),
        Reply::Nothing
    );

    // The printer keeps a keep-alive open; the admin queues work; the doorbell rings along the
    // keep-alive's path.
    let listen = tokio::spawn(async move {
        let r = hb.keepalive_and_listen(Duration::from_secs(20)).await;
        (hb, r)
    });
    // Wait until the keep-alive is held before queueing (else the next heartbeat finds it).
    let mut held = false;
    for _ in 0..100 {
        let m = reqwest::get(app.url("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if m.contains("printfleet_heartbeat_datagrams{reason=\"held\"} 1") {
            held = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(held, "the keep-alive is held");
    let (c, csrf) = app.sign_in("printer@a.example", PASSWORD).await;
    let r = c
        .post(app.url(&format!("/api/v1/tenants/{}/devices/{id}/work", w.a)))
        .header("x-csrf-token", &csrf)
        .json(&json!({"kind": "report_now"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let queued = json(r).await;
    assert_eq!(queued["rung"], true, "{queued}");
    let (mut hb, reply) = listen.await.unwrap();
    assert_eq!(reply.unwrap(), Reply::ComeFetch);

    let work = p.fetch(vec![], 0, now(&app)).await.unwrap();
    assert_eq!(work.items.len(), 1);
    assert_eq!(work.items[0].kind, "report_now");
    // Not acknowledged yet: delivered again (at least once), and heartbeats say come fetch.
    assert_eq!(
        hb.beat(RequestType::Heartbeat).await.unwrap(),
        Reply::ComeFetch
    );
    let again = p.fetch(vec![], 0, now(&app)).await.unwrap();
    assert_eq!(again.items[0].id, work.items[0].id);

    let ack = p.check_in(&report(1, 10, 90), now(&app)).await.unwrap();
    assert_eq!(ack.status, AckStatus::Stored);
    let done = p
        .fetch(
            vec![WorkAck::new(work.items[0].id.clone(), Outcome::Done, None)],
            0,
            now(&app),
        )
        .await
        .unwrap();
    assert!(done.items.is_empty());
    assert_eq!(
        hb.beat(RequestType::Heartbeat).await.unwrap(),
        Reply::Nothing
    );
    let (_, items) = admin_get(&app, &w, &format!("devices/{id}/work")).await;
    assert_eq!(items[0]["status"], "done");
    assert_eq!(items[0]["attempts"], 2);
    app.stop().await;
}

#[tokio::test]
async fn without_udp_a_long_poll_gets_the_work_as_it_is_queued() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let t = token(&app, &w).await;
    let p = std::sync::Arc::new(printer(&app, &t, "POLL-1").await);
    let id = p.enrolment().printer_id;
    let start = now(&app);
    let poller = {
        let p = p.clone();
        tokio::spawn(async move { p.fetch(vec![], 20_000, start).await })
    };
    // The poll is waiting (nothing pending); then work is queued and wakes it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!poller.is_finished());
    assert_eq!(
        admin_post(
            &app,
            &w,
            &format!("devices/{id}/work"),
            json!({"kind": "report_now"})
        )
        .await,
        201
    );
    let work = tokio::time::timeout(Duration::from_secs(15), poller)
        .await
        .expect("the long-poll is answered when work is queued")
        .unwrap()
        .unwrap();
    assert_eq!(work.items.len(), 1);
    // It never sent a heartbeat, yet it is online: by its HTTPS requests.
    let (_, d) = admin_get(&app, &w, &format!("devices/{id}")).await;
    assert_eq!(d["online"], true, "{d}");

    // Revoking the key ends a long-poll in progress with the refusal.
    let start = now(&app);
    let poller = {
        let p = p.clone();
        tokio::spawn(async move {
            let acks = vec![WorkAck::new(work.items[0].id.clone(), Outcome::Done, None)];
            p.fetch(acks, 20_000, start).await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!poller.is_finished());
    assert_eq!(
        admin_post(&app, &w, &format!("devices/{id}/revoke-key"), json!({})).await,
        204
    );
    let e = tokio::time::timeout(Duration::from_secs(15), poller)
        .await
        .expect("the long-poll ends when the key is revoked")
        .unwrap()
        .unwrap_err();
    assert_eq!(refusal_code(e), (403, "key_revoked".into()));
    app.stop().await;
}

#[tokio::test]
async fn the_agent_falls_back_to_the_second_port() {
    let app = spawn_app_with(Options {
        extra_listen: vec!["127.0.0.1:0".into()],
        ..Options::default()
    })
    .await;
    let w = world(&app).await;
    let t = token(&app, &w).await;
    // A port nobody listens on stands for a blocked 443.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let second = format!("http://{}", app.addrs[1]);
    let bases = vec![dead_url, second.clone()];
    let (e, used) = enrol_first(
        &reqwest::Client::new(),
        &bases,
        &t,
        &identity("PORT-1"),
        now(&app),
    )
    .await
    .unwrap();
    assert_eq!(used, second);
    let p = DeviceClient::new(reqwest::Client::new(), bases, e);
    let ack = p.check_in(&report(1, 5, 99), now(&app)).await.unwrap();
    assert_eq!(ack.status, AckStatus::Stored);
    assert_eq!(p.base(), second, "sticks to the port that answered");
    app.stop().await;
}

#[tokio::test]
async fn revoked_and_removed_printers_are_refused_on_every_channel() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let t = token(&app, &w).await;
    let p = printer(&app, &t, "REV-1").await;
    let id = p.enrolment().printer_id;
    let mut hb = heartbeater(&app, p.enrolment()).await;
    assert_eq!(
        hb.beat(RequestType::Heartbeat).await.unwrap(),
        Reply::Nothing
    );
    p.check_in(&report(1, 10, 90), now(&app)).await.unwrap();

    assert_eq!(
        admin_post(&app, &w, &format!("devices/{id}/revoke-key"), json!({})).await,
        204
    );
    let e = p.check_in(&report(2, 20, 90), now(&app)).await.unwrap_err();
    assert_eq!(refusal_code(e), (403, "key_revoked".into()));
    assert!(p.fetch(vec![], 0, now(&app)).await.is_err());
    assert_eq!(
        hb.beat(RequestType::Heartbeat).await.unwrap(),
        Reply::NoAnswer,
        "heartbeats of a revoked key are dropped"
    );
    // A revoked key proves nothing: re-enrolment needs an admin's approval.
    let http = reqwest::Client::new();
    let e = reenrol(
        &http,
        &app.base,
        &t,
        &identity("REV-1"),
        p.enrolment(),
        now(&app),
    )
    .await
    .unwrap_err();
    assert_eq!(refusal_code(e), (403, "key_revoked".into()));
    let e = enrol(&http, &app.base, &t, &identity("REV-1"), now(&app))
        .await
        .unwrap_err();
    assert_eq!(refusal_code(e), (409, "device_exists".into()));
    assert_eq!(
        admin_post(
            &app,
            &w,
            &format!("devices/{id}/approve-re-enrolment"),
            json!({})
        )
        .await,
        200
    );
    let again = enrol(&http, &app.base, &t, &identity("REV-1"), now(&app))
        .await
        .unwrap();
    assert_eq!(again.printer_id, id, "the same printer, with its history");
    let (_, d) = admin_get(&app, &w, &format!("devices/{id}")).await;
    assert_eq!(
        (d["key_version"].as_i64(), d["revoked_at_ms"].is_null()),
        (Some(2), true)
    );
    let p2 = DeviceClient::new(reqwest::Client::new(), vec![app.base.clone()], again);
    // Reports restart at seq 1 with the new key; meters still may not go backwards.
    let ack = p2.check_in(&report(1, 30, 80), now(&app)).await.unwrap();
    assert_eq!(ack.status, AckStatus::Stored);
    let mut hb2 = heartbeater(&app, p2.enrolment()).await;
    assert_eq!(
        hb2.beat(RequestType::Heartbeat).await.unwrap(),
        Reply::Nothing
    );

    // Removal: every channel refuses at once.
    let (c, csrf) = app.sign_in("printer@a.example", PASSWORD).await;
    let r = c
        .delete(app.url(&format!("/api/v1/tenants/{}/devices/{id}", w.a)))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let e = p2
        .check_in(&report(2, 40, 80), now(&app))
        .await
        .unwrap_err();
    assert_eq!(refusal_code(e), (401, "unknown_sender".into()));
    assert_eq!(
        hb2.beat(RequestType::Heartbeat).await.unwrap(),
        Reply::NoAnswer
    );
    app.stop().await;
}

#[tokio::test]
async fn reenrolment_with_proof_keeps_the_printer_and_renews_every_secret() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let t = token(&app, &w).await;
    let p = printer(&app, &t, "RE-1").await;
    let id = p.enrolment().printer_id;
    p.check_in(&report(5, 100, 90), now(&app)).await.unwrap();
    let http = reqwest::Client::new();
    let renewed = reenrol(
        &http,
        &app.base,
        &t,
        &identity("RE-1"),
        p.enrolment(),
        now(&app),
    )
    .await
    .unwrap();
    assert_eq!(renewed.printer_id, id);
    assert_ne!(renewed.verifier_key, p.enrolment().verifier_key);
    assert_ne!(
        renewed.heartbeat_keys.key_id(),
        p.enrolment().heartbeat_keys.key_id()
    );
    // The old key is no longer the printer's.
    let e = p
        .check_in(&report(6, 110, 90), now(&app))
        .await
        .unwrap_err();
    assert_eq!(refusal_code(e), (401, "unknown_sender".into()));
    let mut old_hb = heartbeater(&app, p.enrolment()).await;
    assert_eq!(
        old_hb.beat(RequestType::Heartbeat).await.unwrap(),
        Reply::NoAnswer
    );
    let p2 = DeviceClient::new(reqwest::Client::new(), vec![app.base.clone()], renewed);
    assert_eq!(
        p2.check_in(&report(1, 120, 90), now(&app))
            .await
            .unwrap()
            .status,
        AckStatus::Stored
    );
    // A proof from a key that is not the printer's current one is refused.
    let e = reenrol(
        &http,
        &app.base,
        &t,
        &identity("RE-1"),
        p.enrolment(),
        now(&app),
    )
    .await
    .unwrap_err();
    assert_eq!(refusal_code(e), (403, "bad_proof".into()));
    app.stop().await;
}

#[tokio::test]
async fn a_heartbeat_captured_before_a_restart_is_refused_after_it() {
    use printfleet_protocol::heartbeat::{open_answer, seal_request, Request};
    let app = spawn_app().await;
    let w = world(&app).await;
    let t = token(&app, &w).await;
    let p = printer(&app, &t, "RST-1").await;
    let keys = p.enrolment().heartbeat_keys.clone();
    let captured = seal_request(
        &keys,
        1,
        Request {
            kind: RequestType::Heartbeat,
            flags: 0,
        },
    )
    .unwrap();
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut buf = [0u8; 64];
    sock.send_to(&captured, app.heartbeat.unwrap())
        .await
        .unwrap();
    let n = tokio::time::timeout(Duration::from_secs(5), sock.recv(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(open_answer(&keys, 1, &buf[..n]).is_ok());
    let ack = p.check_in(&report(1, 10, 90), now(&app)).await.unwrap();
    assert_eq!(ack.status, AckStatus::Stored);

    let app = app.restart().await;
    let hb = app.heartbeat.unwrap();
    sock.send_to(&captured, hb).await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(500), sock.recv(&mut buf))
            .await
            .is_err(),
        "the captured datagram is refused after the restart"
    );
    let next = seal_request(
        &keys,
        2,
        Request {
            kind: RequestType::Heartbeat,
            flags: 0,
        },
    )
    .unwrap();
    sock.send_to(&next, hb).await.unwrap();
    let n = tokio::time::timeout(Duration::from_secs(5), sock.recv(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(open_answer(&keys, 2, &buf[..n]).is_ok());
    // The server's message-id guard starts empty, but a report sent again is a duplicate.
    let p = DeviceClient::new(
        reqwest::Client::new(),
        vec![app.base.clone()],
        printer_after_restart(p),
    );
    let ack = p.check_in(&report(1, 10, 90), now(&app)).await.unwrap();
    assert_eq!(ack.status, AckStatus::Duplicate);
    let (_, metrics) = (
        0,
        reqwest::get(app.url("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    assert!(
        metrics.contains("printfleet_heartbeat_datagrams{reason=\"dropped_replayed\"} 1"),
        "{metrics}"
    );
    app.stop().await;
}

/// The printer's enrolment, moved to a client for the restarted server's new port.
fn printer_after_restart(p: DeviceClient) -> Enrolment {
    p.into_enrolment()
}

#[tokio::test]
async fn sealed_bodies_that_cannot_be_opened_are_refused_with_codes_and_counted() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let t = token(&app, &w).await;
    let p = printer(&app, &t, "BAD-1").await;
    let e = p.enrolment();
    let http = reqwest::Client::new();
    let post = |body: Vec<u8>| {
        let http = http.clone();
        let url = app.url("/device/v1/check-in");
        async move {
            let r = http.post(url).body(body).send().await.unwrap();
            let status = r.status().as_u16();
            let v: serde_json::Value = r.json().await.unwrap();
            (status, v["code"].as_str().unwrap().to_string())
        }
    };
    let seal = |kind, ts: u64, plain: &[u8]| {
        let mut rng = printfleet_protocol::system_rng();
        let h = printfleet_protocol::Header::new(kind, &e.key.public, &e.server_key, ts, &mut rng);
        printfleet_protocol::seal(
            &e.server_key,
            &e.key.private,
            &e.key.public,
            &h,
            plain,
            &mut rng,
        )
        .unwrap()
        .into_bytes()
    };
    use printfleet_protocol::MessageType;
    let good = seal(MessageType::CheckIn, now(&app), &report(1, 1, 1).encode());
    let mut tampered = good.clone();
    *tampered.last_mut().unwrap() ^= 1;
    let stale = seal(
        MessageType::CheckIn,
        now(&app) - 600_000,
        &report(1, 1, 1).encode(),
    );
    let wrong_type = seal(MessageType::Fetch, now(&app), b"{}");
    let stranger = printfleet_protocol::KeyPair::generate(&mut printfleet_protocol::system_rng());
    let unknown = {
        let mut rng = printfleet_protocol::system_rng();
        let h = printfleet_protocol::Header::new(
            MessageType::CheckIn,
            &stranger.public,
            &e.server_key,
            now(&app),
            &mut rng,
        );
        printfleet_protocol::seal(
            &e.server_key,
            &stranger.private,
            &stranger.public,
            &h,
            b"{}",
            &mut rng,
        )
        .unwrap()
        .into_bytes()
    };
    assert_eq!(post(b"hello".to_vec()).await, (400, "bad_magic".into()));
    assert_eq!(post(tampered).await, (401, "tampered".into()));
    assert_eq!(post(stale).await, (400, "stale".into()));
    assert_eq!(post(wrong_type).await, (400, "wrong_type".into()));
    assert_eq!(post(unknown).await, (401, "unknown_sender".into()));
    assert_eq!(post(vec![0x50; 70_000]).await, (413, "oversized".into()));
    let r = http
        .post(app.url("/device/v1/check-in"))
        .body(good.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(post(good).await, (409, "replayed".into()));
    let metrics = reqwest::get(app.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for code in [
        "bad_magic",
        "tampered",
        "stale",
        "wrong_type",
        "unknown_sender",
        "oversized",
        "replayed",
    ] {
        assert!(
            metrics.contains(&format!(
                "printfleet_sealed_bodies_refused_total{{code=\"{code}\"}} 1"
            )),
            "{code} counted"
        );
    }
    app.stop().await;
}
