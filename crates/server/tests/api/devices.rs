//! Printer enrolment over HTTP: distinct refusals, secrets sealed to the printer's key, removal
//! effective at once.

use crate::helpers::{json, spawn_app, world, PASSWORD};
use printfleet_protocol::heartbeat::derive_heartbeat_key;
use printfleet_protocol::{KeyPair, OpenLimits, PublicKey, ReplayCache, SealedToDevice};
use serde_json::json;

async fn admin(app: &crate::helpers::TestApp) -> (reqwest::Client, String) {
    app.sign_in("printer@a.example", PASSWORD).await
}

async fn new_token(
    app: &crate::helpers::TestApp,
    c: &reqwest::Client,
    csrf: &str,
    tenant: &str,
    body: serde_json::Value,
) -> (String, String) {
    let r = c
        .post(app.url(&format!("/api/v1/tenants/{tenant}/enrolment-tokens")))
        .header("x-csrf-token", csrf)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let v = json(r).await;
    assert!(v["secret"].as_str().unwrap().starts_with("pfe_"));
    (
        v["secret"].as_str().unwrap().to_string(),
        v["token"]["id"].as_str().unwrap().to_string(),
    )
}

fn enrol_body(token: &str, serial: &str, key: &KeyPair) -> serde_json::Value {
    json!({"token": token, "serial": serial, "model": "LaserJet M507", "firmware": "2506.1", "public_key": hex::encode(key.public.to_bytes())})
}

#[tokio::test]
async fn a_printer_enrols_and_only_it_can_open_its_secrets() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let (c, csrf) = admin(&app).await;
    let (token, _) = new_token(
        &app,
        &c,
        &csrf,
        &w.a.to_string(),
        json!({"name": "HQ", "max_uses": 10}),
    )
    .await;
    let p = enrol_over_http(&app, &token, "CNB123").await;
    let v = &p.answer;
    assert_eq!(
        v["parameters"]["heartbeat_port"],
        app.heartbeat.unwrap().port()
    );
    assert_eq!(v["parameters"]["https_ports"], json!([443, 631]));
    assert_eq!(p.secrets.len(), 64, "enrolment secret and verifier key");
    // Another key cannot open the sealed secrets.
    let other = KeyPair::generate(&mut printfleet_protocol::system_rng());
    let now = app.state.clock.now_ms() as u64;
    assert!(printfleet_protocol::open(
        &other.private,
        &p.server_key,
        &p.sealed,
        &OpenLimits::new(now),
        &mut ReplayCache::new(16)
    )
    .is_err());
    // The printer derives the same heartbeat key id the server finds it by.
    let printer_id = p.id.clone();
    let hb = p.keys.key_id();
    let found = printfleet_storage::resolver::device_by_heartbeat_key(&app.store, &hb.0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.1.to_string(), printer_id);
    let payload_secret = p.secrets[..32].to_vec();
    // Listed for the admin, with model and serial as attributes.
    let list = json(
        c.get(app.url(&format!("/api/v1/tenants/{}/devices", w.a)))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["serial"] == "CNB123" && d["connection"] == "direct"));
    // Removal takes effect at once.
    let r = c
        .delete(app.url(&format!("/api/v1/tenants/{}/devices/{printer_id}", w.a)))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(
        printfleet_storage::resolver::device_by_heartbeat_key(&app.store, &hb.0)
            .await
            .unwrap()
            .is_none()
    );
    // Nothing secret in the database in plaintext form: the enrolment secret is encrypted.
    let rows = sqlx::query("SELECT secrets FROM devices")
        .fetch_all(app.store.raw_pool())
        .await
        .unwrap();
    use sqlx::Row;
    for r in rows {
        let b: Vec<u8> = r.get(0);
        assert!(!b.windows(32).any(|x| x == payload_secret.as_slice()));
        assert!(!String::from_utf8_lossy(&b).contains(&hex::encode(&payload_secret)));
    }
    app.stop().await;
}

#[tokio::test]
async fn refused_enrolments_have_distinct_codes() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let (c, csrf) = admin(&app).await;
    let t = w.a.to_string();
    let printer = reqwest::Client::new();
    let key = KeyPair::generate(&mut printfleet_protocol::system_rng());
    let enrol = |body: serde_json::Value| {
        let printer = printer.clone();
        let url = app.url("/device/v1/enrol");
        async move {
            let r = printer.post(url).json(&body).send().await.unwrap();
            let status = r.status().as_u16();
            (
                status,
                json(r).await["code"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        }
    };
    assert_eq!(
        enrol(enrol_body("not-a-token", "S1", &key)).await,
        (400, "token_malformed".into())
    );
    let unknown = format!("pfe_{}", "A".repeat(43));
    assert_eq!(
        enrol(enrol_body(&unknown, "S1", &key)).await,
        (403, "token_unknown".into())
    );
    let (once, _) = new_token(&app, &c, &csrf, &t, json!({"name": "one", "max_uses": 1})).await;
    assert_eq!(enrol(enrol_body(&once, "S1", &key)).await.0, 201);
    assert_eq!(
        enrol(enrol_body(&once, "S2", &key)).await,
        (403, "token_exhausted".into())
    );
    let (many, many_id) = new_token(&app, &c, &csrf, &t, json!({"name": "many"})).await;
    assert_eq!(
        enrol(enrol_body(&many, "S1", &key)).await,
        (409, "device_exists".into())
    );
    let mut bad_key = enrol_body(&many, "S3", &key);
    bad_key["public_key"] = json!("zz");
    assert_eq!(enrol(bad_key).await.0, 400);
    let mut bad_serial = enrol_body(&many, "S 3", &key);
    bad_serial["serial"] = json!("has space");
    let (status, _) = enrol(bad_serial).await;
    assert_eq!(status, 400);
    let r = c
        .delete(app.url(&format!("/api/v1/tenants/{t}/enrolment-tokens/{many_id}")))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        enrol(enrol_body(&many, "S4", &key)).await,
        (403, "token_revoked".into())
    );
    let (short, _) = new_token(
        &app,
        &c,
        &csrf,
        &t,
        json!({"name": "short", "valid_for_hours": 1}),
    )
    .await;
    app.clock.advance_ms(3_600_001);
    assert_eq!(
        enrol(enrol_body(&short, "S5", &key)).await,
        (403, "token_expired".into())
    );
    // The refused attempts created nothing. (The clock moved past the session's idle timeout.)
    let (c, _) = admin(&app).await;
    let list = json(
        c.get(app.url(&format!("/api/v1/tenants/{t}/devices")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let serials: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["serial"].as_str().unwrap())
        .collect();
    assert_eq!(serials, ["S1", "WORLD-0001"]);
    app.stop().await;
}

/// What a printer holds after enrolling over HTTP.
struct PrinterSide {
    id: String,
    keys: printfleet_protocol::heartbeat::HeartbeatKeys,
    answer: serde_json::Value,
    /// The opened `SealedToDevice` content: enrolment secret ‖ verifier key.
    secrets: Vec<u8>,
    sealed: Vec<u8>,
    server_key: PublicKey,
}

/// Enrols a printer over HTTP the way firmware would, and opens its sealed secrets.
async fn enrol_over_http(app: &crate::helpers::TestApp, token: &str, serial: &str) -> PrinterSide {
    let key = KeyPair::generate(&mut printfleet_protocol::system_rng());
    let r = reqwest::Client::new()
        .post(app.url("/device/v1/enrol"))
        .json(&enrol_body(token, serial, &key))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let v = json(r).await;
    let server_key =
        PublicKey::from_bytes(&hex::decode(v["server_public_key"].as_str().unwrap()).unwrap())
            .unwrap();
    let sealed = hex::decode(v["sealed_secrets"].as_str().unwrap()).unwrap();
    let now = app.state.clock.now_ms() as u64;
    let (_, plain) = printfleet_protocol::open(
        &key.private,
        &server_key,
        &sealed,
        &OpenLimits::new(now),
        &mut ReplayCache::new(16),
    )
    .unwrap();
    let payload = SealedToDevice::decode(&plain).unwrap();
    assert_eq!(payload.purpose, "enrolment");
    let id: uuid::Uuid = v["printer_id"].as_str().unwrap().parse().unwrap();
    let keys = derive_heartbeat_key(&payload.content[..32], id.as_bytes()).keys();
    PrinterSide {
        id: id.to_string(),
        keys,
        answer: v,
        secrets: payload.content,
        sealed,
        server_key,
    }
}

async fn exchange(sock: &tokio::net::UdpSocket, datagram: &[u8]) -> Option<Vec<u8>> {
    sock.send(datagram).await.unwrap();
    let mut buf = [0u8; 1500];
    match tokio::time::timeout(std::time::Duration::from_secs(5), sock.recv(&mut buf)).await {
        Ok(Ok(n)) => Some(buf[..n].to_vec()),
        _ => None,
    }
}

#[tokio::test]
async fn an_enrolled_printer_heartbeats_over_udp_and_shows_online() {
    use printfleet_protocol::heartbeat::{
        open_answer, seal_request, AnswerType, Request, RequestType,
    };
    let app = spawn_app().await;
    let w = world(&app).await;
    let (c, csrf) = admin(&app).await;
    let (token, _) = new_token(&app, &c, &csrf, &w.a.to_string(), json!({"name": "HQ"})).await;
    let p = enrol_over_http(&app, &token, "HB-1").await;
    let (id, keys, answer) = (p.id, p.keys, p.answer);
    let hb_addr = app.heartbeat.unwrap();
    assert_eq!(answer["parameters"]["heartbeat_port"], hb_addr.port());
    let device_url = app.url(&format!("/api/v1/tenants/{}/devices/{id}", w.a));
    assert_eq!(
        json(c.get(&device_url).send().await.unwrap()).await["online"],
        false
    );

    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.connect(hb_addr).await.unwrap();
    let request = seal_request(
        &keys,
        1,
        Request {
            kind: RequestType::Heartbeat,
            flags: 0,
        },
    )
    .unwrap();
    let reply = exchange(&sock, &request)
        .await
        .expect("an answer to an authentic heartbeat");
    assert!(
        reply.len() <= request.len(),
        "an answer is never larger than the datagram it answers"
    );
    assert_eq!(
        open_answer(&keys, 1, &reply).unwrap().kind,
        AnswerType::Nothing
    );
    let d = json(c.get(&device_url).send().await.unwrap()).await;
    assert_eq!(d["online"], true, "{d}");

    // The same datagram again is a replay: dropped silently.
    sock.send(&request).await.unwrap();
    let mut buf = [0u8; 64];
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(300), sock.recv(&mut buf))
            .await
            .is_err()
    );
    // So is garbage.
    sock.send(b"not a heartbeat").await.unwrap();
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(300), sock.recv(&mut buf))
            .await
            .is_err()
    );
    // Both drops were counted, silently to the sender, and show in /metrics.
    let metrics = c
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("printfleet_heartbeat_datagrams{reason=\"dropped_replayed\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("printfleet_heartbeat_datagrams{reason=\"dropped_malformed\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("printfleet_heartbeat_datagrams{reason=\"answered\"} 1"),
        "{metrics}"
    );
    // The replay window is in the database, so it survives the server: in the window log
    // (one row per group commit) until a compaction folds it into `heartbeat_windows`, which
    // commits before it deletes the log row.
    let (windows, log_rows): (i64, i64) = {
        use sqlx::Row;
        let r = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM heartbeat_windows), (SELECT COUNT(*) FROM heartbeat_window_log)",
        )
        .fetch_one(app.store.raw_pool())
        .await
        .unwrap();
        (r.get(0), r.get(1))
    };
    assert!(windows <= 1, "one key, one window row: {windows}");
    assert!(windows + log_rows >= 1, "the accepted window is persisted");

    // Offline once heartbeats stop for longer than the freshness bound.
    app.clock.advance_ms(61_000);
    let (c, _) = admin(&app).await;
    assert_eq!(
        json(c.get(&device_url).send().await.unwrap()).await["online"],
        false
    );

    // A removed printer's heartbeats are no longer answered.
    let (c, csrf) = admin(&app).await;
    assert_eq!(
        c.delete(&device_url)
            .header("x-csrf-token", &csrf)
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    let request = seal_request(
        &keys,
        2,
        Request {
            kind: RequestType::Heartbeat,
            flags: 0,
        },
    )
    .unwrap();
    sock.send(&request).await.unwrap();
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(300), sock.recv(&mut buf))
            .await
            .is_err()
    );
    app.stop().await;
}
