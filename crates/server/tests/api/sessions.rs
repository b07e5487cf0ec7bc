//! Protocol sessions (docs/protocol.md §2.8) over the real server: after one sealed check-in,
//! the printer's bodies travel in its session (no public-key operation, no key look-up), are
//! answered in it, and are refused with the documented codes when replayed, changed, stale,
//! of the wrong type, or when the server no longer holds the session — which the agent heals
//! by sealing a new opening. Revoking a printer ends its session at once.

use crate::device_path::{admin_post, now, printer, report, token};
use crate::helpers::{spawn_app, world};
use printfleet_agent::AgentError;
use printfleet_protocol::messages::{message_id_hex, AckStatus, CheckInAck};
use printfleet_protocol::session::{self, Direction, SessionHeader, SessionKeys};
use printfleet_protocol::{Header, KeyPair, MessageType, OpenLimits, ReplayCache};
use serde_json::json;

async fn metrics(app: &crate::helpers::TestApp) -> String {
    reqwest::get(app.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn after_one_sealed_check_in_the_printer_reports_in_its_session() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let t = token(&app, &w).await;
    let p = printer(&app, &t, "SESS-1").await;
    assert!(!p.has_session());
    for seq in 1..=4 {
        let ack = p
            .check_in(&report(seq, 100 + seq, 80), now(&app))
            .await
            .unwrap();
        assert_eq!(ack.status, AckStatus::Stored, "report {seq}");
        assert!(p.has_session());
    }
    let work = p.fetch(vec![], 0, now(&app)).await.unwrap();
    assert!(work.items.is_empty());
    let m = metrics(&app).await;
    assert!(
        m.contains("printfleet_sealed_bodies_accepted_total{message_type=\"check_in\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("printfleet_session_bodies_accepted_total{message_type=\"check_in\"} 3"),
        "{m}"
    );
    assert!(
        m.contains("printfleet_session_bodies_accepted_total{message_type=\"fetch\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("printfleet_check_ins_total{reason=\"stored\"} 4"),
        "{m}"
    );
    assert_eq!(app.state.channel.sessions.len(), 1);

    // Idle for longer than the server keeps a session: it forgets it, the printer's next
    // session body is refused `unknown_session`, and the agent seals a new opening itself.
    app.clock.advance_ms(11 * 60 * 1000);
    let ack = p.check_in(&report(5, 200, 80), now(&app)).await.unwrap();
    assert_eq!(ack.status, AckStatus::Stored);
    let m = metrics(&app).await;
    assert!(
        m.contains("printfleet_sealed_bodies_refused_total{code=\"unknown_session\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("printfleet_sealed_bodies_accepted_total{message_type=\"check_in\"} 2"),
        "{m}"
    );
    assert!(
        m.contains("printfleet_check_ins_total{reason=\"stored\"} 5"),
        "{m}"
    );
}

fn session_body(keys: &SessionKeys, kind: MessageType, seq: u64, ts: u64, plain: &[u8]) -> Vec<u8> {
    let h = SessionHeader {
        message_type: kind,
        session_id: keys.id,
        seq,
        timestamp_ms: ts,
    };
    session::seal_in_session(keys, Direction::Up, &h, plain).unwrap()
}

#[tokio::test]
async fn session_bodies_are_refused_with_codes_and_revocation_ends_the_session() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let t = token(&app, &w).await;
    let p = printer(&app, &t, "SESS-RAW").await;
    let e = p.enrolment();
    let http = reqwest::Client::new();
    let url = app.url("/device/v1/check-in");
    let post = |body: Vec<u8>| {
        let http = http.clone();
        let url = url.clone();
        async move {
            let r = http.post(url).body(body).send().await.unwrap();
            (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
        }
    };
    let code = |b: &[u8]| -> String {
        let v: serde_json::Value = serde_json::from_slice(b).unwrap();
        v["code"].as_str().unwrap().to_string()
    };
    // The opening: an ordinary sealed check-in, answered with a sealed acknowledgement.
    let mut rng = printfleet_protocol::system_rng();
    let h = Header::new(
        MessageType::CheckIn,
        &e.key.public,
        &e.server_key,
        now(&app),
        &mut rng,
    );
    let (opening, keys) = printfleet_protocol::seal_opening(
        &e.server_key,
        &e.key.private,
        &e.key.public,
        &h,
        &report(1, 100, 90).encode(),
        &mut rng,
    )
    .unwrap();
    let (status, answer) = post(opening.into_bytes()).await;
    assert_eq!(status, 200);
    let (_, plain) = printfleet_protocol::open(
        &e.key.private,
        &e.server_key,
        &answer,
        &OpenLimits::new(now(&app)),
        &mut ReplayCache::default(),
    )
    .unwrap();
    assert_eq!(
        CheckInAck::decode(&plain).unwrap().status,
        AckStatus::Stored
    );

    // Seq 1 in the session: stored, answered in the session, bound to the request.
    let first = session_body(
        &keys,
        MessageType::CheckIn,
        1,
        now(&app),
        &report(2, 110, 90).encode(),
    );
    let (status, answer) = post(first.clone()).await;
    assert_eq!(status, 200);
    assert!(session::is_session_body(&answer));
    let (ah, plain) =
        session::open_in_session(&keys, Direction::Down, &answer, &OpenLimits::new(now(&app)))
            .unwrap();
    assert_eq!((ah.seq, ah.message_type), (1, MessageType::CheckInAck));
    let ack = CheckInAck::decode(&plain).unwrap();
    assert_eq!(ack.status, AckStatus::Stored);
    let sent = SessionHeader::parse(&first, usize::MAX).unwrap();
    assert_eq!(ack.reply_to, message_id_hex(&sent.message_id()));

    // Refusals, each with its code; none stores anything.
    let (s, b) = post(first.clone()).await;
    assert_eq!((s, code(&b)), (409, "replayed".into()));
    let mut changed = session_body(
        &keys,
        MessageType::CheckIn,
        2,
        now(&app),
        &report(3, 120, 90).encode(),
    );
    *changed.last_mut().unwrap() ^= 1;
    let (s, b) = post(changed).await;
    assert_eq!((s, code(&b)), (401, "tampered".into()));
    let stale = session_body(&keys, MessageType::CheckIn, 3, now(&app) - 600_000, b"{}");
    let (s, b) = post(stale).await;
    assert_eq!((s, code(&b)), (400, "stale".into()));
    let fetch = session_body(&keys, MessageType::Fetch, 4, now(&app), b"{\"acks\":[]}");
    let (s, b) = post(fetch).await;
    assert_eq!((s, code(&b)), (400, "wrong_type".into()));
    let stranger = {
        let other = KeyPair::generate(&mut rng);
        let h = Header::new(
            MessageType::CheckIn,
            &other.public,
            &e.server_key,
            now(&app),
            &mut rng,
        );
        printfleet_protocol::seal_opening(
            &e.server_key,
            &other.private,
            &other.public,
            &h,
            b"{}",
            &mut rng,
        )
        .unwrap()
        .1
    };
    let (s, b) = post(session_body(
        &stranger,
        MessageType::CheckIn,
        1,
        now(&app),
        b"{}",
    ))
    .await;
    assert_eq!((s, code(&b)), (401, "unknown_session".into()));
    // A re-enrolment proof must be a sealed body.
    let r = http
        .post(app.url("/device/v1/enrol"))
        .json(&json!({
            "token": t, "serial": "SESS-RAW", "model": "Color LaserJet Enterprise MFP M578",
            "firmware": "2506.1", "public_key": hex::encode(e.key.public.to_bytes()),
            "proof": hex::encode(session_body(&keys, MessageType::ReEnrol, 5, now(&app), b"{}")),
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["code"], "bad_proof");
    assert!(
        v["message"].as_str().unwrap().contains("unknown_suite"),
        "{v}"
    );
    // Still usable after the refusals (they changed nothing).
    let next = session_body(
        &keys,
        MessageType::CheckIn,
        6,
        now(&app),
        &report(3, 120, 90).encode(),
    );
    assert_eq!(post(next).await.0, 200);
    let (s, state) =
        crate::device_path::admin_get(&app, &w, &format!("devices/{}/state", e.printer_id)).await;
    assert_eq!(s, 200);
    assert_eq!(state["meters"]["total_impressions"], 120, "{state}");

    // Revoked: the session ends at once; the agent's own next check-in finds the key revoked.
    assert_eq!(
        admin_post(
            &app,
            &w,
            &format!("devices/{}/revoke-key", e.printer_id),
            json!({})
        )
        .await,
        204
    );
    let late = session_body(
        &keys,
        MessageType::CheckIn,
        7,
        now(&app),
        &report(4, 130, 90).encode(),
    );
    let (s, b) = post(late).await;
    assert_eq!((s, code(&b)), (401, "unknown_session".into()));
    match p.check_in(&report(4, 130, 90), now(&app)).await {
        Err(AgentError::Refused { status, code, .. }) => {
            assert_eq!((status, code.as_str()), (403, "key_revoked"))
        }
        other => panic!("expected key_revoked, got {other:?}"),
    }
}
