//! Crash safety, on SQLite and on PostgreSQL: printers report back to back while the server is
//! killed with SIGKILL at random moments and restarted on the same data. Every report the
//! server acknowledged (`stored` or `duplicate`) must be in the history afterwards, exactly
//! once; the audit chain must verify and the SQLite file must pass its integrity check; work
//! queued before a kill must still be delivered; and a heartbeat datagram accepted before a
//! kill must not be accepted again after it (the replay window is durable), while the printer's
//! next counter — from its file, as after a reboot — is answered.

use crate::harness::{
    audit_verify, bootstrap, free_udp_port, serve_env, sign_in, PgDatabase, Server, PASSWORD,
};
use printfleet_agent::{enrol, AgentError, CounterSource, DeviceClient, Enrolment, FileCounter};
use printfleet_protocol::heartbeat::{
    open_answer, seal_request, HeartbeatKeys, Request, RequestType,
};
use printfleet_protocol::messages::{
    AckStatus, Capabilities, CheckIn, DeviceInfo, Meters, Outcome, WorkAck,
};
use rand::Rng;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::watch;

/// Printers reporting back to back.
const PRINTERS: usize = 20;
/// Kills (each followed by a restart).
const KILLS: usize = 4;
/// New acknowledgements required from each server before it may be killed, so every
/// incarnation really ingested.
const PROGRESS: u64 = 40;
/// The history API returns at most 1000 rows: a printer stops reporting before that.
const MAX_SEQ: u64 = 950;
/// How long a restarted server may take to acknowledge again. Generous: the machine is shared.
const PROGRESS_TIMEOUT: Duration = Duration::from_secs(60);

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn meter(seq: u64) -> u64 {
    10_000 + 7 * seq
}

fn serial(printer: usize) -> String {
    format!("CRASH{printer:04}")
}

/// Report `seq` of printer `printer`: meters that grow with `seq` (so each report has a
/// `meters` history row), the device information in the first.
fn report(printer: usize, seq: u64) -> CheckIn {
    CheckIn {
        seq,
        taken_at_ms: now_ms(),
        info: (seq == 1).then(|| DeviceInfo {
            name: format!("crash-{printer}"),
            model: "LaserJet M507".into(),
            serial: serial(printer),
            firmware: "2506.1".into(),
            region: None,
            language: None,
            capabilities: Capabilities::default(),
        }),
        meters: Some(Meters {
            total_impressions: meter(seq),
            jams: Some(seq / 10),
            ..Meters::default()
        }),
        supplies: None,
        events: Vec::new(),
        settings: BTreeMap::new(),
    }
}

/// What the printers saw, shared with the test.
#[derive(Default)]
struct Tally {
    /// Per printer, every seq acknowledged `stored` or `duplicate`, in order.
    acked: Mutex<HashMap<uuid::Uuid, Vec<u64>>>,
    total: AtomicU64,
    duplicates: AtomicU64,
    /// Attempts that got no acknowledgement (no answer, or a server error).
    retries: AtomicU64,
    /// Of these, answers 5xx.
    server_errors: AtomicU64,
    /// What must not happen: a refusal, an acknowledgement of another seq…
    errors: Mutex<Vec<String>>,
    stop: AtomicBool,
}

impl Tally {
    fn summary(&self) -> String {
        format!(
            "{} acknowledged ({} of them duplicate), {} attempts without an acknowledgement \
             ({} answered 5xx)",
            self.total.load(Ordering::SeqCst),
            self.duplicates.load(Ordering::SeqCst),
            self.retries.load(Ordering::SeqCst),
            self.server_errors.load(Ordering::SeqCst)
        )
    }

    fn error(&self, e: String) {
        self.errors.lock().unwrap().push(e);
    }
}

/// One printer: reports seq 1, 2, 3… back to back; a report without an acknowledgement is sent
/// again (sealed again, same seq) until it gets one, against the server address of the moment.
/// Stops between reports once `tally.stop` is set, so no report is left unacknowledged.
async fn printer(
    index: usize,
    http: reqwest::Client,
    mut base: watch::Receiver<String>,
    enrolment: Enrolment,
    tally: Arc<Tally>,
) -> u64 {
    let id = enrolment.printer_id;
    let mut client = DeviceClient::new(
        http.clone(),
        vec![base.borrow_and_update().clone()],
        enrolment,
    );
    let mut seq = 1;
    while !tally.stop.load(Ordering::SeqCst) && seq <= MAX_SEQ {
        loop {
            if base.has_changed().unwrap_or(false) {
                let b = base.borrow_and_update().clone();
                client = DeviceClient::new(http.clone(), vec![b], client.into_enrolment());
            }
            match client.check_in(&report(index, seq), now_ms()).await {
                Ok(ack) => {
                    match ack.status {
                        AckStatus::Stored | AckStatus::Duplicate if ack.seq == seq => {}
                        _ => {
                            tally.error(format!("printer {index} seq {seq}: {ack:?}"));
                            return seq - 1;
                        }
                    }
                    if ack.status == AckStatus::Duplicate {
                        tally.duplicates.fetch_add(1, Ordering::SeqCst);
                    }
                    tally.acked.lock().unwrap().entry(id).or_default().push(seq);
                    tally.total.fetch_add(1, Ordering::SeqCst);
                    break;
                }
                // A server error: the report may or may not have been stored; retry.
                Err(AgentError::Refused { status, .. }) if status >= 500 => {
                    tally.server_errors.fetch_add(1, Ordering::SeqCst);
                    tally.retries.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                // No answer (the server died, or is not up yet): retry.
                Err(AgentError::Http(_)) => {
                    tally.retries.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                // A clear refusal of the body, or a sealed answer that does not open or answers
                // another request: never right.
                Err(e) => {
                    tally.error(format!("printer {index} seq {seq}: {e}"));
                    return seq - 1;
                }
            }
        }
        seq += 1;
    }
    seq - 1
}

/// The server under test: its data, how to start it again, and an admin's session.
struct Rig {
    dir: tempfile::TempDir,
    data: PathBuf,
    database_url: Option<String>,
    server: Server,
    /// The heartbeat (UDP) address of the running server.
    heartbeat: SocketAddr,
    incarnation: usize,
    admin: reqwest::Client,
    csrf: String,
    tenant: String,
}

impl Rig {
    async fn start(
        dir: &Path,
        data: &Path,
        database_url: Option<&str>,
        incarnation: usize,
    ) -> (Server, SocketAddr) {
        let port = free_udp_port();
        let listen = format!("127.0.0.1:{port}");
        let log = dir.join(format!("server-{incarnation}.log"));
        let server = serve_env(
            data,
            database_url,
            &log,
            "info",
            &[("PRINTFLEET_HEARTBEAT_LISTEN", listen.as_str())],
        )
        .await;
        (server, listen.parse().unwrap())
    }

    async fn new(database_url: Option<String>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        bootstrap(
            &data,
            database_url.as_deref(),
            "Acme",
            "ann@acme.example",
            "Ann",
            "Admin",
        );
        let (server, heartbeat) = Self::start(dir.path(), &data, database_url.as_deref(), 0).await;
        let (admin, csrf, tenant) = sign_in(&server.base, "ann@acme.example", PASSWORD).await;
        Self {
            dir,
            data,
            database_url,
            server,
            heartbeat,
            incarnation: 0,
            admin,
            csrf,
            tenant,
        }
    }

    /// SIGKILL, then a new process on the same data (new ports).
    async fn kill_and_restart(&mut self) {
        self.server.kill9();
        self.incarnation += 1;
        let (server, heartbeat) = Self::start(
            self.dir.path(),
            &self.data,
            self.database_url.as_deref(),
            self.incarnation,
        )
        .await;
        self.server = server;
        self.heartbeat = heartbeat;
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/v1/tenants/{}{path}", self.server.base, self.tenant)
    }

    async fn get(&self, path: &str) -> Value {
        let r = self.admin.get(self.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "GET {path}");
        r.json().await.unwrap()
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .admin
            .post(self.url(path))
            .header("x-csrf-token", &self.csrf)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

/// Waits until the printers got `more` acknowledgements beyond `from`.
async fn progress(tally: &Tally, from: u64, more: u64, what: &str) {
    let deadline = Instant::now() + PROGRESS_TIMEOUT;
    while tally.total.load(Ordering::SeqCst) < from + more {
        let errors = tally.errors.lock().unwrap().clone();
        assert!(errors.is_empty(), "{what}: {errors:?}");
        assert!(
            Instant::now() < deadline,
            "{what}: no progress ({})",
            tally.summary()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn heartbeat_request(keys: &HeartbeatKeys, counter: u64) -> Vec<u8> {
    seal_request(
        keys,
        counter,
        Request {
            kind: RequestType::Heartbeat,
            flags: 0,
        },
    )
    .unwrap()
}

/// Sends heartbeats, each with the next counter, until one is answered (a datagram may be
/// lost); returns its counter and bytes. An answer to `never` (a replayed counter) fails.
async fn heartbeat_answered(
    sock: &UdpSocket,
    server: SocketAddr,
    keys: &HeartbeatKeys,
    counter: &mut FileCounter,
    never: Option<u64>,
) -> (u64, Vec<u8>) {
    for _ in 0..5 {
        let c = counter.next().unwrap();
        let datagram = heartbeat_request(keys, c);
        sock.send_to(&datagram, server).await.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        let mut buf = [0u8; 64];
        while let Ok(r) = tokio::time::timeout_at(deadline, sock.recv_from(&mut buf)).await {
            let (n, from) = r.unwrap();
            if from != server {
                continue;
            }
            if let Some(old) = never {
                assert!(
                    open_answer(keys, old, &buf[..n]).is_err(),
                    "the replayed heartbeat (counter {old}) was answered"
                );
            }
            if open_answer(keys, c, &buf[..n]).is_ok() {
                return (c, datagram);
            }
        }
    }
    panic!("no heartbeat was answered by {server}");
}

/// Sends `datagram` (counter `counter`) again and expects no answer within 500 ms.
async fn heartbeat_refused(
    sock: &UdpSocket,
    server: SocketAddr,
    keys: &HeartbeatKeys,
    counter: u64,
    datagram: &[u8],
) {
    sock.send_to(datagram, server).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
    let mut buf = [0u8; 64];
    while let Ok(r) = tokio::time::timeout_at(deadline, sock.recv_from(&mut buf)).await {
        let (n, _) = r.unwrap();
        assert!(
            open_answer(keys, counter, &buf[..n]).is_err(),
            "a heartbeat captured before the kill (counter {counter}) was answered after it"
        );
    }
}

async fn crash_safety(database_url: Option<String>) {
    let started = Instant::now();
    let mut rig = Rig::new(database_url).await;
    let (status, t) = rig
        .post(
            "/enrolment-tokens",
            json!({"name": "crash", "max_uses": PRINTERS + 1}),
        )
        .await;
    assert_eq!(status, 201, "{t}");
    let token = t["secret"].as_str().unwrap().to_string();

    // PRINTERS printers that report, and a quiet one (index PRINTERS) that neither reports nor
    // fetches: it gets the queued work and sends the heartbeats.
    let http = reqwest::Client::new();
    let mut enrolments = Vec::new();
    for i in 0..=PRINTERS {
        let identity = printfleet_agent::Identity {
            serial: serial(i),
            model: "LaserJet M507".into(),
            firmware: "2506.1".into(),
        };
        let e = enrol(&http, &rig.server.base, &token, &identity, now_ms())
            .await
            .unwrap_or_else(|e| panic!("enrolling printer {i}: {e}"));
        enrolments.push(e);
    }
    let quiet = enrolments.pop().unwrap();
    // The quiet printer's heartbeat counter lives in a file, as on a real printer.
    let counter_file = rig.dir.path().join("quiet-printer.counter");
    let mut counter = FileCounter::create(&counter_file).unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();

    let tally = Arc::new(Tally::default());
    let (base_tx, base_rx) = watch::channel(rig.server.base.clone());
    let mut tasks = tokio::task::JoinSet::new();
    for (i, e) in enrolments.into_iter().enumerate() {
        tasks.spawn(printer(i, http.clone(), base_rx.clone(), e, tally.clone()));
    }

    let mut work_id = None;
    let mut replay: Option<(u64, Vec<u8>)> = None;
    let mut quiet = Some(quiet);
    for kill in 1..=KILLS {
        let from = tally.total.load(Ordering::SeqCst);
        progress(&tally, from, PROGRESS, &format!("before kill {kill}")).await;
        if kill == 2 {
            // Work for the quiet printer, acknowledged (201) before the kill.
            let device = quiet.as_ref().unwrap().printer_id;
            let (status, queued) = rig
                .post(
                    &format!("/devices/{device}/work"),
                    json!({"kind": "report_now"}),
                )
                .await;
            assert_eq!(status, 201, "{queued}");
            work_id = Some(queued["work"]["id"].as_str().unwrap().to_string());
        }
        if kill == 3 {
            // A heartbeat the server accepted (and so recorded) before the kill.
            let keys = &quiet.as_ref().unwrap().heartbeat_keys;
            replay = Some(heartbeat_answered(&udp, rig.heartbeat, keys, &mut counter, None).await);
        }
        // Kill at a random moment while the printers keep reporting.
        let pause = rand::thread_rng().gen_range(0..700);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        rig.kill_and_restart().await;
        eprintln!(
            "[{:>5.1}s] kill {kill} (+{pause} ms): {} so far",
            started.elapsed().as_secs_f64(),
            tally.summary()
        );
        base_tx.send(rig.server.base.clone()).unwrap();

        if kill == 2 {
            // The work survived: the printer fetches it now, and acknowledges it after its
            // full report.
            let e = quiet.take().unwrap();
            let client = DeviceClient::new(http.clone(), vec![rig.server.base.clone()], e);
            let work = client.fetch(vec![], 0, now_ms()).await.unwrap();
            let id = work_id.clone().unwrap();
            assert!(
                work.items
                    .iter()
                    .any(|w| w.id == id && w.kind == "report_now"),
                "the work queued before the kill is delivered after it: {work:?}"
            );
            let ack = client
                .check_in(&report(PRINTERS, 1), now_ms())
                .await
                .unwrap();
            assert_eq!(ack.status, AckStatus::Stored, "{ack:?}");
            let done = WorkAck::new(id.clone(), Outcome::Done, None);
            let work = client.fetch(vec![done], 0, now_ms()).await.unwrap();
            assert!(work.items.iter().all(|w| w.id != id), "{work:?}");
            let device = client.enrolment().printer_id;
            let list = rig.get(&format!("/devices/{device}/work")).await;
            assert_eq!(list[0]["id"], id.as_str(), "{list}");
            assert_eq!(list[0]["status"], "done", "{list}");
            quiet = Some(client.into_enrolment());
        }
        if kill == 3 {
            let keys = &quiet.as_ref().unwrap().heartbeat_keys;
            let (old, bytes) = replay.take().unwrap();
            heartbeat_refused(&udp, rig.heartbeat, keys, old, &bytes).await;
            // The printer reboots too: its counter continues from the file.
            drop(counter);
            counter = FileCounter::open(&counter_file).unwrap();
            let (new, _) =
                heartbeat_answered(&udp, rig.heartbeat, keys, &mut counter, Some(old)).await;
            assert!(new > old, "{new} after {old}");
            // Once more, now that the doorbell certainly listens and has the window loaded.
            heartbeat_refused(&udp, rig.heartbeat, keys, old, &bytes).await;
        }
    }
    let from = tally.total.load(Ordering::SeqCst);
    progress(&tally, from, PROGRESS, "after the last restart").await;
    tally.stop.store(true, Ordering::SeqCst);
    let mut last_seqs = Vec::new();
    while let Some(r) = tasks.join_next().await {
        last_seqs.push(r.unwrap());
    }
    let errors = tally.errors.lock().unwrap().clone();
    assert!(errors.is_empty(), "{errors:?}");
    eprintln!(
        "[{:>5.1}s] ingest stopped: {}; last seq per printer {:?}",
        started.elapsed().as_secs_f64(),
        tally.summary(),
        last_seqs
    );

    // Every acknowledged report is stored, exactly once, and nothing else.
    let acked = std::mem::take(&mut *tally.acked.lock().unwrap());
    assert_eq!(acked.len(), PRINTERS);
    let mut verified = 0;
    for (device, seqs) in &acked {
        let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
        assert_eq!(seqs, &expected, "printer {device} acknowledged in order");
        let history = rig
            .get(&format!(
                "/devices/{device}/history?class=meters&limit=1000"
            ))
            .await;
        let mut stored = BTreeSet::new();
        for row in history.as_array().unwrap() {
            let seq = row["seq"].as_u64().unwrap();
            assert!(
                stored.insert(seq),
                "printer {device}: seq {seq} stored twice"
            );
            assert_eq!(
                row["body"]["total_impressions"].as_u64(),
                Some(meter(seq)),
                "printer {device} seq {seq}: {row}"
            );
        }
        let missing: Vec<u64> = seqs
            .iter()
            .filter(|s| !stored.contains(s))
            .copied()
            .collect();
        assert!(
            missing.is_empty(),
            "printer {device}: acknowledged but not stored: {missing:?}"
        );
        let extra: Vec<u64> = stored
            .iter()
            .filter(|s| **s > seqs.len() as u64)
            .copied()
            .collect();
        assert!(
            extra.is_empty(),
            "printer {device}: stored, never acknowledged: {extra:?}"
        );
        let state = rig.get(&format!("/devices/{device}/state")).await;
        assert_eq!(
            state["seq"].as_u64(),
            stored.last().copied(),
            "printer {device}: {state}"
        );
        assert_eq!(
            state["meters"]["total_impressions"].as_u64(),
            stored.last().copied().map(meter),
            "printer {device}: {state}"
        );
        verified += stored.len();
    }
    eprintln!(
        "[{:>5.1}s] verified: {verified} reports of {PRINTERS} printers stored exactly once",
        started.elapsed().as_secs_f64()
    );

    // The audit chains and (SQLite) the database file are intact after the kills.
    let (code, out) = audit_verify(&rig.data, rig.database_url.as_deref());
    assert_eq!(code, 0, "audit verify after {KILLS} kills: {out}");
    if rig.database_url.is_none() {
        use sqlx::{Connection, Row};
        let mut db = sqlx::SqliteConnection::connect(&format!(
            "sqlite://{}",
            rig.data.join("printfleet.db").display()
        ))
        .await
        .unwrap();
        let rows = sqlx::query("PRAGMA integrity_check")
            .fetch_all(&mut db)
            .await
            .unwrap();
        let result: Vec<String> = rows.iter().map(|r| r.get::<String, _>(0)).collect();
        assert_eq!(result, ["ok"], "PRAGMA integrity_check");
        db.close().await.unwrap();
    }
    rig.server.stop();
    eprintln!("[{:>5.1}s] done", started.elapsed().as_secs_f64());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_reports_work_and_replay_windows_survive_kill_9_on_sqlite() {
    crash_safety(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_reports_work_and_replay_windows_survive_kill_9_on_postgres() {
    // Dropped after the test's server stopped, also when it fails.
    let db = PgDatabase::create("pf_crash").await;
    crash_safety(Some(db.url.clone())).await;
}
