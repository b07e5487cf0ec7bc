//! `printfleet bench checkins`: sealed, durable check-ins over real TLS on loopback, each figure
//! beside a bare HTTPS echo endpoint (same certificate, same rustls/hyper stack, same load
//! generator doing the same client work: seal a ~1 KiB report, POST it, read the answer).
//!
//! Phases: echo and check-ins with connection reuse; then a new TLS connection per request,
//! with session resumption (echo and check-ins) and without (check-ins). At the end the stored
//! history is counted, so every acknowledged report is known to be in the database.

use super::fixture::TempDatabase;
use super::load::{self, Op, OpFuture, Phase, Plan};
use super::Backend;
use anyhow::Context;
use clap::Args;
use printfleet_domain::clock::{Clock, SystemClock};
use printfleet_domain::device::DeviceFacts;
use printfleet_domain::tenant::Contact;
use printfleet_domain::Ctx;
use printfleet_protocol::messages::{
    AckStatus, CheckIn, CheckInAck, Event, EventKind, Meters, ReportedValue, Supply, SupplyKind,
    SupplyState,
};
use printfleet_protocol::session::{self, Direction, PrinterSession, SessionHeader, SessionKeys};
use printfleet_protocol::{Header, KeyPair, MessageType, OpenLimits, PublicKey};
use printfleet_storage::enrolment::Takeover;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Args, Clone, Debug)]
pub struct CheckinArgs {
    /// Database backend (as for `bench api`).
    #[arg(long, value_enum, default_value = "sqlite")]
    pub backend: Backend,
    /// PostgreSQL server to use with --backend postgres (a fresh database is created and dropped).
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// Duration of each measured phase, in seconds.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub seconds: u64,
    /// Concurrent clients (HTTPS connections) in each phase.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub concurrency: u64,
    /// Printers enrolled for the run (each client reports for its own share of them).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub printers: u64,
}

/// One simulated printer: its key, the next report number, and its protocol sessions (the one
/// the server holds, and a local one whose bodies only the echo server sees).
struct Printer {
    key: KeyPair,
    seq: AtomicU64,
    session: Slot,
    echo_session: Slot,
}

/// Where a printer keeps a session (the agent's own type, `PrinterSession`).
type Slot = Mutex<Option<PrinterSession>>;

fn set(slot: &Slot, session: Option<PrinterSession>) {
    *slot
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = session;
}

/// How a client talks: to the echo server, or to the server in sessions or with one HPKE
/// exchange per report (the protocol before sessions).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Echo,
    Sessions,
    OneShot,
}

struct Env {
    running: printfleet_server::Running,
    store: printfleet_storage::Store,
    echo: tokio::task::JoinHandle<std::io::Result<()>>,
    echo_handle: axum_server::Handle,
    base: String,
    echo_url: String,
    server_key: PublicKey,
    printers: Arc<Vec<Printer>>,
    cert_pem: Vec<u8>,
    state: printfleet_server::state::AppState,
}

impl Env {
    fn sessions_held(&self) -> usize {
        self.state.channel.sessions.len()
    }
}

pub async fn run(args: CheckinArgs) -> anyhow::Result<()> {
    if args.printers < args.concurrency {
        anyhow::bail!(
            "--printers must be at least --concurrency (each client has its own printers)"
        );
    }
    let r =
        super::fixture::on_temp_database(args.backend, args.database_url.as_deref(), async |db| {
            measure(&args, db).await
        })
        .await?;
    print(&args, &r);
    Ok(())
}

struct Results {
    echo: Phase,
    checkins: Phase,
    one_shot: Phase,
    echo_new: Phase,
    checkins_new: Phase,
    checkins_full: Phase,
    stored: i64,
    acknowledged: u64,
    sessions_held: usize,
}

async fn measure(args: &CheckinArgs, db: &TempDatabase) -> anyhow::Result<Results> {
    let env = start(args, db).await?;
    let r = phases(args, &env).await;
    env.running.stop().await;
    env.echo_handle.shutdown();
    let _ = env.echo.await;
    env.store.close().await;
    r
}

async fn start(args: &CheckinArgs, db: &TempDatabase) -> anyhow::Result<Env> {
    let cfg = super::fixture::server_config(db, false)?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let keys = printfleet_server::keys::load(&cfg)?;
    let csrf_key = printfleet_server::keys::csrf_key(&keys);
    let store = printfleet_server::open_store(&cfg, clock.clone()).await?;
    let params = printfleet_crypto::PasswordParams {
        memory_kib: cfg.auth.argon2_memory_kib,
        iterations: cfg.auth.argon2_iterations,
        parallelism: 1,
    };
    let printers = Arc::new(enrol_printers(&store, args.printers).await?);
    let server_key = store.server_device_keypair().await?.public;
    let state = printfleet_server::build_state(&cfg, store.clone(), params, clock, csrf_key)?;
    let running = printfleet_server::start(&cfg, state.clone()).await?;
    let addr = *running
        .addrs
        .first()
        .context("the server bound no address")?;
    let (cert, key) = printfleet_server::tls::ensure_cert(None, None, &cfg.data_dir)?;
    let cert_pem = std::fs::read(&cert).context("reading the server certificate")?;
    let (echo, echo_handle, echo_addr) = start_echo(&cert, &key).await?;
    Ok(Env {
        running,
        store,
        echo,
        echo_handle,
        base: format!("https://{addr}"),
        echo_url: format!("https://{echo_addr}/echo"),
        server_key,
        printers,
        cert_pem,
        state,
    })
}

/// Enrols `n` printers through the storage layer (as `POST /device/v1/enrol` would).
async fn enrol_printers(store: &printfleet_storage::Store, n: u64) -> anyhow::Result<Vec<Printer>> {
    let contact = Contact::parse(
        Some("Bench"),
        Some("bench@bench.printfleet.test"),
        None,
        None,
    )?;
    let tenant = store
        .create_tenant("Bench Company", "us", &contact, None)
        .await?;
    let (_, token) = store
        .enrolment_token_create(&Ctx::system(tenant), "bench", 3_600_000, None)
        .await?;
    let bar = indicatif::ProgressBar::new(n);
    bar.set_style(indicatif::ProgressStyle::with_template(
        "{prefix:<26} [{bar:30}] {pos}/{len}",
    )?);
    bar.set_prefix("enrolling printers");
    let mut out = Vec::new();
    for i in 0..n {
        let key = KeyPair::generate(&mut printfleet_protocol::system_rng());
        let facts = DeviceFacts::parse(
            &format!("BENCH{i:07}"),
            "LaserJet Enterprise M507",
            "2506.1",
        )?;
        store
            .enrol_device(
                token.expose(),
                &facts,
                &key.public.to_bytes(),
                None,
                Takeover::None,
            )
            .await?
            .map_err(|r| anyhow::anyhow!("enrolment refused: {}", r.code()))?;
        out.push(Printer {
            key,
            seq: AtomicU64::new(0),
            session: Mutex::new(None),
            echo_session: Mutex::new(None),
        });
        bar.inc(1);
    }
    bar.finish();
    Ok(out)
}

/// The baseline: POST /echo answers the body back, on the same TLS certificate and stack.
async fn start_echo(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> anyhow::Result<(
    tokio::task::JoinHandle<std::io::Result<()>>,
    axum_server::Handle,
    std::net::SocketAddr,
)> {
    use axum::routing::post;
    let app = axum::Router::new().route(
        "/echo",
        post(|body: axum::body::Bytes| async move {
            (
                [(axum::http::header::CONTENT_TYPE, "application/octet-stream")],
                body,
            )
        }),
    );
    let tls = printfleet_server::tls::rustls_config(cert, key).await?;
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    l.set_nonblocking(true)?;
    let addr = l.local_addr()?;
    let handle = axum_server::Handle::new();
    let server = axum_server::from_tcp_rustls(l, tls).handle(handle.clone());
    let task = tokio::spawn(async move { server.serve(app.into_make_service()).await });
    Ok((task, handle, addr))
}

/// A client trusting the run's self-signed certificate; `reuse` keeps connections alive,
/// `resume` allows TLS session resumption on new ones.
fn client(cert_pem: &[u8], reuse: bool, resume: bool) -> anyhow::Result<reqwest::Client> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    printfleet_server::tls::install_provider();
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(cert_pem) {
        roots.add(c.context("the server certificate")?)?;
    }
    let mut tls = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    if !resume {
        tls.resumption = rustls::client::Resumption::disabled();
    }
    let mut b = reqwest::Client::builder().use_preconfigured_tls(tls);
    if !reuse {
        b = b.pool_max_idle_per_host(0);
    }
    Ok(b.build()?)
}

/// A realistic report of a little under 1 KiB: all meters, four supplies, two events, a few
/// settings (docs/benchmarks.md defines a check-in this way).
fn report(seq: u64) -> CheckIn {
    let total = 10_000 + seq * 7;
    let supply = |id: &str, colour: &str, part: &str, level: u8| Supply {
        id: id.into(),
        kind: SupplyKind::Toner,
        colour: Some(colour.into()),
        level_percent: Some(level),
        capacity_pages: Some(12_500),
        pages: Some(seq * 2),
        part_number: Some(part.into()),
        state: SupplyState::Ok,
    };
    CheckIn {
        seq,
        taken_at_ms: u64::try_from(SystemClock.now_ms()).unwrap_or(0),
        info: None,
        meters: Some(Meters {
            total_impressions: total,
            mono_impressions: Some(total - total / 3),
            colour_impressions: Some(total / 3),
            simplex_sheets: Some(total / 2),
            duplex_sheets: Some(total / 4),
            scans: Some(seq),
            faxes_sent: Some(seq / 10),
            faxes_received: Some(seq / 12),
            jams: Some(seq / 100),
        }),
        supplies: Some(vec![
            supply("toner-black", "black", "W2020A", 71),
            supply("toner-cyan", "cyan", "W2021A", 64),
            supply("toner-magenta", "magenta", "W2023A", 58),
            supply("toner-yellow", "yellow", "W2022A", 80),
        ]),
        events: vec![
            Event {
                at_ms: 1_767_225_500_000,
                kind: EventKind::Jam,
                code: Some("13.B2.D1".into()),
                detail: Some("Jam in tray 2".into()),
            },
            Event {
                at_ms: 1_767_225_560_000,
                kind: EventKind::SupplyLow,
                code: Some("10.00.10".into()),
                detail: None,
            },
        ],
        settings: BTreeMap::from([
            (
                "network.telnet.enabled".to_string(),
                ReportedValue::Bool(false),
            ),
            (
                "network.ftp_printing.enabled".to_string(),
                ReportedValue::Bool(true),
            ),
            (
                "copier.color.access".to_string(),
                ReportedValue::Text("enabled".into()),
            ),
            (
                "scan.email.smtp.password".to_string(),
                ReportedValue::secret(true),
            ),
        ]),
    }
}

/// The printer a client's `n`th operation reports for (each client has its own share).
fn printer_for(
    printers: &[Printer],
    worker: u64,
    n: u64,
    clients: u64,
) -> anyhow::Result<&Printer> {
    let mine = (printers.len() as u64)
        .saturating_sub(worker)
        .div_ceil(clients)
        .max(1);
    let idx = usize::try_from(worker + clients * (n % mine))?;
    printers.get(idx).context("printer index")
}

/// What the client must do with the answer to a request it sent.
enum Pending {
    /// A session body: the answer comes in the same session, bound to `seq`.
    Session { keys: Arc<SessionKeys>, seq: u64 },
    /// A sealed body: the answer is sealed with HPKE; `opening` is the session it opens.
    Sealed { opening: Option<SessionKeys> },
}

fn take_seq(slot: &Slot) -> Option<(Arc<SessionKeys>, u64)> {
    let now = u64::try_from(SystemClock.now_ms()).unwrap_or(0);
    let mut held = slot
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    held.as_mut()?.next_body(now)
}

fn seal_in(keys: &SessionKeys, seq: u64, plaintext: &[u8]) -> anyhow::Result<Vec<u8>> {
    let now = u64::try_from(SystemClock.now_ms()).unwrap_or(0);
    let h = SessionHeader {
        message_type: MessageType::CheckIn,
        session_id: keys.id,
        seq,
        timestamp_ms: now,
    };
    session::seal_in_session(keys, Direction::Up, &h, plaintext)
        .map_err(|e| anyhow::anyhow!("sealing: {}", e.code()))
}

/// Seals the next report of one of the client's printers, as `mode` wants: the echo and the
/// session check-ins both do one session seal (the same client work).
fn sealed_report(
    p: &Printer,
    server: &PublicKey,
    mode: Mode,
) -> anyhow::Result<(Vec<u8>, Pending)> {
    let seq = p.seq.fetch_add(1, Ordering::Relaxed) + 1;
    let plaintext = report(seq).encode();
    let slot = match mode {
        Mode::Echo => Some(&p.echo_session),
        Mode::Sessions => Some(&p.session),
        Mode::OneShot => None,
    };
    if let Some((keys, sseq)) = slot.and_then(take_seq) {
        let body = seal_in(&keys, sseq, &plaintext)?;
        return Ok((body, Pending::Session { keys, seq: sseq }));
    }
    let mut rng = printfleet_protocol::system_rng();
    let now = u64::try_from(SystemClock.now_ms()).unwrap_or(0);
    let h = Header::new(MessageType::CheckIn, &p.key.public, server, now, &mut rng);
    let (body, keys) = printfleet_protocol::seal_opening(
        server,
        &p.key.private,
        &p.key.public,
        &h,
        &plaintext,
        &mut rng,
    )
    .map_err(|e| anyhow::anyhow!("sealing: {}", e.code()))?;
    if mode == Mode::Echo {
        // The echo server holds no session: the printer's side is all the client needs.
        let mut session = PrinterSession::new(keys, now);
        let (keys, seq) = session
            .next_body(now)
            .context("a new session has a first seq")?;
        set(&p.echo_session, Some(session));
        let body = seal_in(&keys, seq, &plaintext)?;
        return Ok((body, Pending::Session { keys, seq }));
    }
    if mode == Mode::OneShot {
        // The server makes this body's session the printer's one: the old one is gone.
        set(&p.session, None);
    }
    let opening = (mode == Mode::Sessions).then_some(keys);
    Ok((body.into_bytes(), Pending::Sealed { opening }))
}

/// Opens the answer as a printer would (the echo's answer is the request body: opening it is
/// the same AEAD work as opening a session acknowledgement) and checks a check-in was stored.
fn open_answer(
    p: &Printer,
    server: &PublicKey,
    mode: Mode,
    pending: Pending,
    body: &[u8],
) -> anyhow::Result<()> {
    let mut limits = OpenLimits::new(u64::try_from(SystemClock.now_ms()).unwrap_or(0));
    limits.max_skew_ms += 60_000;
    let plaintext = match pending {
        Pending::Session { keys, seq } => {
            let dir = if mode == Mode::Echo {
                Direction::Up
            } else {
                Direction::Down
            };
            let (h, plain) = session::open_in_session(&keys, dir, body, &limits)
                .map_err(|e| anyhow::anyhow!("opening the answer: {}", e.code()))?;
            anyhow::ensure!(h.seq == seq, "answer to another request");
            plain
        }
        Pending::Sealed { opening } => {
            let (_, plain) = printfleet_protocol::open(
                &p.key.private,
                server,
                body,
                &limits,
                &mut printfleet_protocol::ReplayCache::new(1),
            )
            .map_err(|e| anyhow::anyhow!("opening the answer: {}", e.code()))?;
            if let Some(keys) = opening {
                let now = u64::try_from(SystemClock.now_ms()).unwrap_or(0);
                set(&p.session, Some(PrinterSession::new(keys, now)));
            }
            plain
        }
    };
    if mode != Mode::Echo {
        let ack = CheckInAck::decode(&plaintext).map_err(|e| anyhow::anyhow!("ack: {e}"))?;
        anyhow::ensure!(
            ack.status == AckStatus::Stored,
            "not stored: {:?}",
            ack.code
        );
    }
    Ok(())
}

fn post_op(
    env: &Env,
    client: reqwest::Client,
    url: String,
    clients: u64,
    mode: Mode,
    acked: Option<Arc<AtomicU64>>,
) -> Op {
    let printers = env.printers.clone();
    let server = env.server_key.clone();
    Arc::new(move |worker, n| -> OpFuture {
        let client = client.clone();
        let url = url.clone();
        let printers = printers.clone();
        let server = server.clone();
        let acked = acked.clone();
        Box::pin(async move {
            let p = printer_for(&printers, worker, n, clients)?;
            let (body, pending) = sealed_report(p, &server, mode)?;
            let resp = client
                .post(&url)
                .header("content-type", "application/octet-stream")
                .body(body)
                .send()
                .await?;
            let status = resp.status();
            let bytes = resp.bytes().await?;
            if status != reqwest::StatusCode::OK {
                if mode == Mode::Sessions {
                    // e.g. unknown_session: the printer opens a new session next time.
                    set(&p.session, None);
                }
                anyhow::bail!(
                    "answered {status}: {}",
                    String::from_utf8_lossy(&bytes)
                        .chars()
                        .take(200)
                        .collect::<String>()
                );
            }
            open_answer(p, &server, mode, pending, &bytes)?;
            if let Some(a) = acked {
                a.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        })
    })
}

async fn phases(args: &CheckinArgs, env: &Env) -> anyhow::Result<Results> {
    let plan = Plan {
        duration: Duration::from_secs(args.seconds),
        concurrency: args.concurrency,
    };
    let c = args.concurrency;
    let acked = Arc::new(AtomicU64::new(0));
    let check_in_url = format!("{}/device/v1/check-in", env.base);
    let run = |name: &'static str, client: &reqwest::Client, url: &str, mode: Mode| {
        let acked = (mode != Mode::Echo).then(|| acked.clone());
        load::run_phase(
            name,
            plan,
            post_op(env, client.clone(), url.to_string(), c, mode, acked),
        )
    };
    let reuse = client(&env.cert_pem, true, true)?;
    let echo = run("echo, reused", &reuse, &env.echo_url, Mode::Echo).await?;
    let checkins = run("check-ins, reused", &reuse, &check_in_url, Mode::Sessions).await?;
    let one_shot = run(
        "check-ins, no session",
        &reuse,
        &check_in_url,
        Mode::OneShot,
    )
    .await?;
    let resumed = client(&env.cert_pem, false, true)?;
    let echo_new = run(
        "echo, new conn (resumed)",
        &resumed,
        &env.echo_url,
        Mode::Echo,
    )
    .await?;
    let checkins_new = run(
        "check-ins, new (resumed)",
        &resumed,
        &check_in_url,
        Mode::Sessions,
    )
    .await?;
    let full = client(&env.cert_pem, false, false)?;
    let checkins_full = run(
        "check-ins, new (full hs)",
        &full,
        &check_in_url,
        Mode::Sessions,
    )
    .await?;
    let stored: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM report_history WHERE meters IS NOT NULL")
            .fetch_one(env.store.raw_pool())
            .await?;
    Ok(Results {
        echo,
        checkins,
        one_shot,
        echo_new,
        checkins_new,
        checkins_full,
        stored,
        acknowledged: acked.load(Ordering::Relaxed),
        sessions_held: env.sessions_held(),
    })
}

fn print(args: &CheckinArgs, r: &Results) {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!();
    println!(
        "printfleet bench checkins: backend {}, {} clients, {} printers, {} s per phase, {} CPUs, {} build",
        match args.backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        },
        args.concurrency,
        args.printers,
        args.seconds,
        cores,
        if cfg!(debug_assertions) { "debug" } else { "release" },
    );
    println!("a check-in: a ~1 KiB report in the printer's protocol session (docs/protocol.md §2.8; opened by one HPKE");
    println!("auth-mode body), stored durably before its acknowledgement, which the client opens and checks");
    println!();
    println!(
        "{:<48} {:>9} {:>7} {:>10} {:>8} {:>8} {:>8} {:>6} {:>10}",
        "phase", "ok", "errors", "per s", "p50 ms", "p99 ms", "max ms", "cores", "CPU µs/op"
    );
    for (name, p) in [
        ("HTTPS echo, connection reused (baseline)", &r.echo),
        ("check-ins, connection reused", &r.checkins),
        (
            "check-ins, reused, no session (HPKE per report)",
            &r.one_shot,
        ),
        ("HTTPS echo, new TLS conn, resumed (baseline)", &r.echo_new),
        ("check-ins, new TLS conn, resumed", &r.checkins_new),
        ("check-ins, new TLS conn, full handshake", &r.checkins_full),
    ] {
        println!(
            "{:<48} {:>9} {:>7} {:>10.0} {:>8.2} {:>8.2} {:>8.2} {:>6.2} {:>10.0}",
            name,
            p.ok,
            p.errors,
            p.rate(),
            p.quantile_ms(0.5),
            p.quantile_ms(0.99),
            p.max_ms(),
            p.cores_busy().unwrap_or(f64::NAN),
            p.cpu_us_per_op().unwrap_or(f64::NAN)
        );
        if let Some(e) = &p.first_error {
            println!("  first error: {e}");
        }
    }
    println!("(cores: CPU of the whole process, server and load generator, over the phase; CPU µs/op: per successful operation)");
    println!();
    println!(
        "check-ins / echo, reused connections: {:.0} / {:.0} = {:.2}",
        r.checkins.rate(),
        r.echo.rate(),
        r.checkins.rate() / r.echo.rate()
    );
    println!(
        "check-ins / echo, new resumed connections: {:.0} / {:.0} = {:.2}",
        r.checkins_new.rate(),
        r.echo_new.rate(),
        r.checkins_new.rate() / r.echo_new.rate()
    );
    println!(
        "sessions: {:.1} x the rate of one HPKE exchange per report; {} held by the server at the end, {} bytes each",
        r.checkins.rate() / r.one_shot.rate(),
        r.sessions_held,
        printfleet_server::device_sessions::bytes_per_session()
    );
    println!(
        "durability: {} check-ins acknowledged, {} reports in the stored history ({})",
        r.acknowledged,
        r.stored,
        if u64::try_from(r.stored).unwrap_or(0) == r.acknowledged {
            "all there"
        } else {
            "MISMATCH"
        }
    );
}
