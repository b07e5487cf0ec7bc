//! `printfleet bench heartbeats`: the UDP doorbell on loopback, in this process, against a fresh
//! database, with a baseline taken by the same load generator in the same run.
//!
//! 1. A fresh store (SQLite in a temporary directory, or a fresh PostgreSQL database), one
//!    tenant, an enrolment token, and `--printers` real printer identities provisioned in bulk
//!    (`printfleet_storage::provision`).
//! 2. The doorbell with the real store backends (key look-ups, replay windows, pending work).
//! 3. Either
//!    - **capacity** (default): the load generator's closed loop against the doorbell for
//!      `--seconds` (after a warm-up pass that brings every printer's keys into memory), then
//!      the same against a bare UDP echo server with the same I/O style; or
//!    - **fleet** (`--interval-s`): every printer heartbeats every interval from a random
//!      start, for `--intervals` intervals, each unanswered heartbeat retried once; reports the
//!      process's memory and the kernel's UDP drop counters.
//!
//! What is measured and how to read it: `docs/benchmarks.md`, "Heartbeats".

mod echo;
mod load;
mod sys;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use printfleet_domain::clock::{Clock, SystemClock};
use printfleet_domain::tenant::Contact;
use printfleet_domain::Ctx;
use printfleet_protocol::heartbeat::derive_heartbeat_key;
use printfleet_server::config::Config;
use printfleet_server::doorbell::service::{
    self as doorbell, CounterSnapshot, DoorbellConfig, DoorbellServer, MemoryStats,
};
use printfleet_storage::provision::{ProvisionPlan, Provisioned};
use printfleet_storage::Store;
use rand::Rng;
use sqlx::{Connection, Executor};
use tokio::sync::oneshot;

use super::Backend;
use load::{Live, Printer, Shard, Stats, Target};
use sys::{mib, Rss, UdpCounters};

#[derive(Args, Clone, Debug)]
pub struct HeartbeatsArgs {
    /// Database backend. SQLite lives in a temporary directory; PostgreSQL gets a fresh
    /// database (`pf_bench_…`) created through --database-url and dropped at the end.
    #[arg(long, value_enum, default_value = "sqlite")]
    pub backend: Backend,
    /// PostgreSQL server to use (required with --backend postgres); the user must be allowed to
    /// CREATE DATABASE.
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// Printers to provision (real identities: keys, encrypted secrets, heartbeat key ids).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub printers: u64,
    /// Capacity mode: duration of each measured phase (doorbell, then echo), in seconds.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub seconds: u64,
    /// Load generator sockets (one task each).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub sockets: u64,
    /// Capacity mode: requests outstanding per socket.
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub window: u64,
    /// Fleet mode: each printer heartbeats every this many seconds (first at a random moment
    /// within the first interval), instead of the capacity measurement.
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub interval_s: Option<u64>,
    /// Fleet mode: how many intervals to run.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub intervals: u32,
    /// An answer not back within this is a timeout (capacity) or retried once (fleet).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub timeout_ms: u64,
    /// Diagnostic only: keep replay windows in memory instead of the database (NOT durable; a
    /// restart would accept replays). Shows what the doorbell does without the window writes.
    #[arg(long)]
    pub windows_in_memory: bool,
}

pub async fn run(args: HeartbeatsArgs) -> anyhow::Result<()> {
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; build with --release for meaningful figures");
    }
    let db = Db::create(args.backend, args.database_url.as_deref()).await?;
    let outcome = tokio::select! {
        r = measure(&args, &db) => r,
        r = tokio::signal::ctrl_c() => match r {
            Ok(()) => Err(anyhow::anyhow!("interrupted")),
            Err(e) => Err(e.into()),
        },
    };
    let cleanup = db.remove().await;
    outcome?;
    cleanup
}

/// The receive buffer of every socket of the run (the doorbell's default).
const RECV_BUFFER: usize = doorbell::DEFAULT_RECV_BUFFER;

async fn measure(args: &HeartbeatsArgs, db: &Db) -> anyhow::Result<()> {
    let mut cfg = Config {
        data_dir: db.dir.path().to_path_buf(),
        database_url: db.url.clone(),
        heartbeat_listen: String::new(),
        ..Config::default()
    };
    cfg.log.level = "warn,sqlx=error,sqlx_core=error".into();
    cfg.validate()?;
    crate::init_tracing(&cfg);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = printfleet_server::open_store(&cfg, clock.clone()).await?;
    let outcome = async {
        let rss_empty = sys::rss();
        let (printers, took) = provision(&store, usize::try_from(args.printers)?).await?;
        let interval = args.interval_s.map(Duration::from_secs);
        let shards = shards(args, printers, interval).await?;
        match interval {
            None => capacity(args, &store, clock, shards, took).await,
            Some(i) => fleet(args, &store, clock, shards, i, took, rss_empty).await,
        }
    }
    .await;
    store.close().await;
    outcome
}

/// A tenant, a token, and the printers.
async fn provision(store: &Store, n: usize) -> anyhow::Result<(Vec<Provisioned>, Duration)> {
    let tenant = store
        .create_tenant("Bench Fleet", "us", &Contact::default(), None)
        .await?;
    let ctx = Ctx::system(tenant);
    let (token, _) = store
        .enrolment_token_create(&ctx, "bench", 86_400_000, None)
        .await?;
    let bar = ProgressBar::new(n as u64);
    bar.set_style(
        ProgressStyle::with_template("{prefix:<26} [{bar:30}] {pos}/{len} {per_sec}")?
            .progress_chars("=> "),
    );
    bar.set_prefix("provisioning printers");
    let plan = ProvisionPlan {
        count: n,
        serial_prefix: "BENCH-".into(),
        model: "Bench Printer".into(),
        firmware: "1.0".into(),
    };
    let t = Instant::now();
    let b = bar.clone();
    let printers = store
        .provision_printers(&ctx, token.id, &plan, &move |done| {
            b.set_position(done as u64)
        })
        .await?;
    let took = t.elapsed();
    bar.finish();
    Ok((printers, took))
}

/// Derives every printer's heartbeat keys (on all cores) and deals them out to the sockets.
async fn shards(
    args: &HeartbeatsArgs,
    printers: Vec<Provisioned>,
    interval: Option<Duration>,
) -> anyhow::Result<Vec<Shard>> {
    let sockets = usize::try_from(args.sockets)?;
    let interval_us = interval.map_or(0, |i| u64::try_from(i.as_micros()).unwrap_or(u64::MAX));
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let per = printers.len().div_ceil(workers).max(1);
    let mut tasks = Vec::new();
    let mut rest = printers;
    while !rest.is_empty() {
        let tail = rest.split_off(per.min(rest.len()));
        let chunk = std::mem::replace(&mut rest, tail);
        tasks.push(tokio::task::spawn_blocking(move || {
            let mut rng = rand::thread_rng();
            chunk
                .into_iter()
                .map(|p| {
                    let keys =
                        derive_heartbeat_key(&p.enrolment_secret, p.device.as_uuid().as_bytes())
                            .keys();
                    let offset = if interval_us > 0 {
                        u32::try_from(rng.gen_range(0..interval_us)).unwrap_or(u32::MAX)
                    } else {
                        0
                    };
                    Printer::new(keys, offset)
                })
                .collect::<Vec<_>>()
        }));
    }
    let mut dealt: Vec<Vec<Printer>> = (0..sockets).map(|_| Vec::new()).collect();
    let mut i = 0usize;
    for t in tasks {
        for p in t.await? {
            if let Some(d) = dealt.get_mut(i % sockets) {
                d.push(p);
            }
            i += 1;
        }
    }
    let mut out = Vec::with_capacity(sockets);
    for mut printers in dealt.into_iter().filter(|d| !d.is_empty()) {
        printers.sort_by_key(|p| p.offset_us());
        let socket = doorbell::bind_udp(SocketAddr::from(([127, 0, 0, 1], 0)), RECV_BUFFER)?;
        out.push(Shard::new(socket, printers)?);
    }
    Ok(out)
}

/// The doorbell on 127.0.0.1 with the store's backends.
struct RunningDoorbell {
    addr: SocketAddr,
    bell: doorbell::Doorbell,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

async fn start_doorbell(
    args: &HeartbeatsArgs,
    store: &Store,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<RunningDoorbell> {
    let config = DoorbellConfig {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..DoorbellConfig::default()
    };
    let mut backends = printfleet_server::doorbell::store_backends(store, clock);
    if args.windows_in_memory {
        backends.replay = Arc::new(doorbell::InMemoryReplayStore::new());
    }
    let server = DoorbellServer::bind(config, backends)
        .await
        .context("binding the doorbell")?;
    let addr = server.local_addr()?;
    let bell = server.doorbell();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.run_until(async {
        let _ = stopped.await;
    }));
    Ok(RunningDoorbell {
        addr,
        bell,
        stop,
        task,
    })
}

impl RunningDoorbell {
    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// Runs `f` on every shard at once with a progress bar; returns the shards and merged stats.
async fn run_shards<F, Fut>(
    name: &str,
    expected: Duration,
    shards: Vec<Shard>,
    f: F,
) -> anyhow::Result<(Vec<Shard>, Stats)>
where
    F: Fn(Shard, Arc<Live>) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<(Shard, Stats)>> + Send + 'static,
{
    let live = Arc::new(Live::default());
    let tasks: Vec<_> = shards
        .into_iter()
        .map(|s| tokio::spawn(f(s, live.clone())))
        .collect();
    let bar = ProgressBar::new(u64::try_from(expected.as_millis()).unwrap_or(u64::MAX));
    bar.set_style(
        ProgressStyle::with_template("{prefix:<26} [{bar:30}] {msg}")?.progress_chars("=> "),
    );
    bar.set_prefix(name.to_string());
    let start = Instant::now();
    while !tasks.iter().all(|t| t.is_finished()) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let done = start.elapsed().min(expected);
        bar.set_position(u64::try_from(done.as_millis()).unwrap_or(u64::MAX));
        let answered = live.answered.load(Ordering::Relaxed);
        bar.set_message(format!(
            "{:>10} answered {:>8.0}/s",
            answered,
            answered as f64 / start.elapsed().as_secs_f64().max(1e-3)
        ));
    }
    let mut shards = Vec::new();
    let mut stats = Stats::default();
    for t in tasks {
        let (shard, s) = t.await??;
        stats.merge(&s);
        shards.push(shard);
    }
    bar.finish_with_message(format!("{:.0}/s", stats.rate()));
    Ok((shards, stats))
}

/// A measured phase with what the kernel and the doorbell counted meanwhile.
struct Phase {
    stats: Stats,
    /// CPU seconds the whole process used during the phase.
    cpu: Option<f64>,
    udp: Option<UdpCounters>,
    doorbell: Option<CounterSnapshot>,
}

async fn closed_phase(
    name: &str,
    shards: Vec<Shard>,
    target: Target,
    args: &HeartbeatsArgs,
    bell: Option<&doorbell::Doorbell>,
) -> anyhow::Result<(Vec<Shard>, Phase)> {
    let duration = Duration::from_secs(args.seconds);
    let timeout = Duration::from_millis(args.timeout_ms);
    let window = usize::try_from(args.window)?;
    let udp_before = sys::udp();
    let bell_before = bell.map(|b| b.counters());
    let cpu_before = sys::cpu_seconds();
    let (shards, stats) = run_shards(name, duration, shards, move |s, live| {
        load::closed_loop(s, target, window, duration, timeout, live)
    })
    .await?;
    let cpu = match (sys::cpu_seconds(), cpu_before) {
        (Some(a), Some(b)) => Some(a - b),
        _ => None,
    };
    let udp = match (sys::udp(), udp_before) {
        (Some(a), Some(b)) => Some(a.since(&b)),
        _ => None,
    };
    let doorbell = match (bell.map(|b| b.counters()), bell_before) {
        (Some(a), Some(b)) => Some(diff(&a, &b)),
        _ => None,
    };
    Ok((
        shards,
        Phase {
            stats,
            cpu,
            udp,
            doorbell,
        },
    ))
}

fn diff(a: &CounterSnapshot, b: &CounterSnapshot) -> CounterSnapshot {
    CounterSnapshot {
        received: a.received - b.received,
        answered: a.answered - b.answered,
        held: a.held - b.held,
        rung: a.rung - b.rung,
        ring_missed: a.ring_missed - b.ring_missed,
        dropped_malformed: a.dropped_malformed - b.dropped_malformed,
        dropped_unknown_key: a.dropped_unknown_key - b.dropped_unknown_key,
        dropped_bad_auth: a.dropped_bad_auth - b.dropped_bad_auth,
        dropped_replayed: a.dropped_replayed - b.dropped_replayed,
        dropped_unknown_type: a.dropped_unknown_type - b.dropped_unknown_type,
        dropped_backend: a.dropped_backend - b.dropped_backend,
        dropped_busy: a.dropped_busy - b.dropped_busy,
        work_errors: a.work_errors - b.work_errors,
        send_errors: a.send_errors - b.send_errors,
        recv_errors: a.recv_errors - b.recv_errors,
        key_lookups: a.key_lookups - b.key_lookups,
        window_commits: a.window_commits - b.window_commits,
        windows_saved: a.windows_saved - b.windows_saved,
    }
}

async fn connect_all(shards: &[Shard], to: SocketAddr) -> anyhow::Result<()> {
    for s in shards {
        s.connect(to).await?;
    }
    Ok(())
}

/// Capacity: warm-up, doorbell, echo.
async fn capacity(
    args: &HeartbeatsArgs,
    store: &Store,
    clock: Arc<dyn Clock>,
    shards: Vec<Shard>,
    provisioned_in: Duration,
) -> anyhow::Result<()> {
    let bell = start_doorbell(args, store, clock).await?;
    connect_all(&shards, bell.addr).await?;
    // Warm-up: every printer once (its key and window come into memory), not measured.
    let timeout = Duration::from_millis(args.timeout_ms);
    let window = usize::try_from(args.window)?;
    let largest = shards.iter().map(Shard::len).max().unwrap_or(0);
    let warm_for = Duration::from_secs(60);
    let t = Instant::now();
    let (shards, warm) = run_shards(
        "warm-up (each printer once)",
        warm_for,
        shards,
        move |s, live| load::one_pass(s, Target::Doorbell, window, warm_for, timeout, live),
    )
    .await?;
    let warm_took = t.elapsed();
    let cached = bell.bell.memory().cached_keys;
    let rss_before = sys::rss();
    let (shards, bell_phase) =
        closed_phase("doorbell", shards, Target::Doorbell, args, Some(&bell.bell)).await?;
    let rss_after = sys::rss();
    let memory = bell.bell.memory();
    bell.stop().await;
    // Let the last answers of the doorbell arrive (connect_all throws them away).
    tokio::time::sleep(Duration::from_millis(200)).await;

    let echo = echo::Echo::start(doorbell::bind_udp(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        RECV_BUFFER,
    )?)?;
    connect_all(&shards, echo.addr).await?;
    let (_shards, echo_phase) =
        closed_phase("bare UDP echo", shards, Target::Echo, args, None).await?;
    echo.stop().await;

    let r = CapacityReport {
        args,
        provisioned_in,
        warm,
        warm_took,
        warm_largest: largest,
        cached,
        bell: bell_phase,
        echo: echo_phase,
        rss_before,
        rss_after,
        memory,
    };
    r.print();
    Ok(())
}

struct CapacityReport<'a> {
    args: &'a HeartbeatsArgs,
    provisioned_in: Duration,
    warm: Stats,
    warm_took: Duration,
    warm_largest: usize,
    cached: usize,
    bell: Phase,
    echo: Phase,
    rss_before: Option<Rss>,
    rss_after: Option<Rss>,
    memory: MemoryStats,
}

fn header(args: &HeartbeatsArgs, mode: &str) {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!();
    if args.windows_in_memory {
        println!(
            "DIAGNOSTIC RUN: replay windows kept in memory only (not durable), not a valid result"
        );
    }
    println!(
        "printfleet bench heartbeats ({mode}): backend {}, {} printers, {} sockets, {} CPUs, {} build",
        args.backend.name(),
        args.printers,
        args.sockets,
        cores,
        if cfg!(debug_assertions) { "debug" } else { "release" },
    );
}

fn provisioned_line(n: u64, took: Duration) {
    println!(
        "provisioned {n} printers in {:.1} s ({:.0}/s)",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64().max(1e-9)
    );
}

fn phase_row(name: &str, s: &Stats) {
    println!(
        "{:<40} {:>10} {:>10} {:>9} {:>7} {:>10.0} {:>8.2} {:>8.2} {:>8.2}",
        name,
        s.sent,
        s.answered,
        s.timeouts,
        s.late + s.bad,
        s.rate(),
        s.latency.quantile_ms(0.50),
        s.latency.quantile_ms(0.99),
        s.latency.max_ms()
    );
}

fn udp_line(name: &str, u: Option<UdpCounters>) {
    match u {
        Some(u) => println!(
            "kernel UDP counters during {name} (whole machine): InDatagrams +{} InErrors +{} RcvbufErrors +{}",
            u.in_datagrams, u.in_errors, u.rcvbuf_errors
        ),
        None => println!("kernel UDP counters during {name}: not available"),
    }
}

impl CapacityReport<'_> {
    fn print(&self) {
        let a = self.args;
        header(a, "capacity");
        println!(
            "closed loop: {} requests outstanding per socket, timeout {} ms, {} s per phase",
            a.window, a.timeout_ms, a.seconds
        );
        provisioned_line(a.printers, self.provisioned_in);
        println!(
            "warm-up: {} heartbeats ({} answered) in {:.1} s, {} keys in memory afterwards (largest socket: {} printers)",
            self.warm.sent,
            self.warm.answered,
            self.warm_took.as_secs_f64(),
            self.cached,
            self.warm_largest
        );
        println!();
        println!(
            "{:<40} {:>10} {:>10} {:>9} {:>7} {:>10} {:>8} {:>8} {:>8}",
            "phase", "sent", "answered", "timeouts", "other", "per s", "p50 ms", "p99 ms", "max ms"
        );
        phase_row("doorbell (auth, group commit, work)", &self.bell.stats);
        phase_row("bare UDP echo (same I/O, nothing else)", &self.echo.stats);
        println!();
        let ratio = self.bell.stats.rate() / self.echo.stats.rate().max(1e-9);
        println!(
            "doorbell / echo: {:.0} / {:.0} = {:.2}",
            self.bell.stats.rate(),
            self.echo.stats.rate(),
            ratio
        );
        if let Some(c) = &self.bell.doorbell {
            let per_commit = c.windows_saved as f64 / (c.window_commits.max(1)) as f64;
            println!(
                "doorbell counters: received {} answered {} dropped {} (backend {}, busy {}, replayed {}); {} commits, {:.0} windows per commit ({:.0} commits/s); {} key look-ups",
                c.received,
                c.answered,
                c.dropped(),
                c.dropped_backend,
                c.dropped_busy,
                c.dropped_replayed,
                c.window_commits,
                per_commit,
                c.window_commits as f64 / self.bell.stats.elapsed.as_secs_f64().max(1e-9),
                c.key_lookups
            );
        }
        for (name, p) in [("doorbell", &self.bell), ("echo", &self.echo)] {
            if let Some(cpu) = p.cpu {
                println!(
                    "CPU during the {name} phase (whole process, server and load generator): {:.2} of {} cores busy, {:.1} µs per answered heartbeat",
                    cpu / p.stats.elapsed.as_secs_f64().max(1e-9),
                    std::thread::available_parallelism().map_or(0, |n| n.get()),
                    cpu * 1e6 / p.stats.answered.max(1) as f64
                );
            }
        }
        udp_line("the doorbell phase", self.bell.udp);
        udp_line("the echo phase", self.echo.udp);
        if let (Some(b), Some(f)) = (self.rss_before, self.rss_after) {
            println!(
                "process RSS (server and load generator): {:.0} MiB after the warm-up, {:.0} MiB after the doorbell phase, peak {:.0} MiB",
                mib(b.now),
                mib(f.now),
                mib(f.peak)
            );
        }
        println!(
            "doorbell memory: {} keys cached, {} printers present; per printer {} bytes (key cache) + {} bytes (presence) by size_of",
            self.memory.cached_keys,
            self.memory.present_printers,
            self.memory.key_entry_bytes,
            self.memory.presence_entry_bytes
        );
        for (name, p) in [("doorbell", &self.bell.stats), ("echo", &self.echo.stats)] {
            if p.late + p.bad > 0 {
                println!(
                    "{name}: {} late answers (after their timeout), {} invalid",
                    p.late, p.bad
                );
            }
        }
        println!();
        println!(
            "summary: {}: doorbell {:.0} heartbeats/s = {:.2} x bare UDP echo {:.0}/s; p50 {:.2} ms p99 {:.2} ms; {} printers",
            a.backend.name(),
            self.bell.stats.rate(),
            ratio,
            self.echo.stats.rate(),
            self.bell.stats.latency.quantile_ms(0.5),
            self.bell.stats.latency.quantile_ms(0.99),
            a.printers
        );
    }
}

/// Fleet: every printer every interval, for several intervals.
async fn fleet(
    args: &HeartbeatsArgs,
    store: &Store,
    clock: Arc<dyn Clock>,
    shards: Vec<Shard>,
    interval: Duration,
    provisioned_in: Duration,
    rss_empty: Option<Rss>,
) -> anyhow::Result<()> {
    let bell = start_doorbell(args, store, clock).await?;
    connect_all(&shards, bell.addr).await?;
    let timeout = Duration::from_millis(args.timeout_ms);
    let rounds = args.intervals;
    let rss_before = sys::rss();
    let udp_before = sys::udp();
    let bell_before = bell.bell.counters();
    let live = Arc::new(Live::default());
    let start = Instant::now() + Duration::from_millis(100);
    let tasks: Vec<_> = shards
        .into_iter()
        .map(|s| {
            tokio::spawn(load::paced(
                s,
                interval,
                rounds,
                timeout,
                start,
                live.clone(),
            ))
        })
        .collect();
    // One line per interval (and at the end): what the process holds.
    let mut samples = Vec::new();
    let mut next = start + interval;
    println!(
        "{:>6} {:>12} {:>12} {:>8} {:>10} {:>10} {:>12} {:>10}",
        "t s", "sent", "answered", "failed", "RSS MiB", "cached", "key look-ups", "commits"
    );
    loop {
        let finished = tasks.iter().all(|t| t.is_finished());
        if finished || Instant::now() >= next {
            let c = bell.bell.counters();
            let m = bell.bell.memory();
            let r = sys::rss();
            println!(
                "{:>6.0} {:>12} {:>12} {:>8} {:>10.0} {:>10} {:>12} {:>10}",
                start.elapsed().as_secs_f64(),
                live.sent.load(Ordering::Relaxed),
                live.answered.load(Ordering::Relaxed),
                live.failed.load(Ordering::Relaxed),
                r.map_or(f64::NAN, |r| mib(r.now)),
                m.cached_keys,
                c.key_lookups - bell_before.key_lookups,
                c.window_commits - bell_before.window_commits
            );
            samples.push((start.elapsed(), r, m));
            next += interval;
        }
        if finished {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut per_round = vec![Stats::default(); rounds as usize];
    // The shards stay alive until the last snapshot, so the load generator's memory is counted
    // at the end as it was at the start.
    let mut finished_shards = Vec::new();
    for t in tasks {
        let (shard, r) = t.await??;
        finished_shards.push(shard);
        for (total, s) in per_round.iter_mut().zip(&r.0) {
            total.merge(s);
        }
    }
    let rss_after = sys::rss();
    drop(finished_shards);
    let udp = match (sys::udp(), udp_before) {
        (Some(a), Some(b)) => Some(a.since(&b)),
        _ => None,
    };
    let counters = diff(&bell.bell.counters(), &bell_before);
    let memory = bell.bell.memory();
    bell.stop().await;

    header(args, "fleet");
    println!(
        "every printer heartbeats every {} s (first at a random moment in the first interval), {} intervals; timeout {} ms, one retry",
        interval.as_secs(),
        rounds,
        args.timeout_ms
    );
    provisioned_line(args.printers, provisioned_in);
    println!();
    println!(
        "{:<10} {:>10} {:>10} {:>9} {:>11} {:>8} {:>8} {:>8} {:>8}",
        "interval",
        "sent",
        "answered",
        "retried",
        "on retry",
        "failed",
        "p50 ms",
        "p99 ms",
        "max ms"
    );
    let mut total = Stats::default();
    for (i, s) in per_round.iter().enumerate() {
        println!(
            "{:<10} {:>10} {:>10} {:>9} {:>11} {:>8} {:>8.2} {:>8.2} {:>8.2}",
            i + 1,
            s.sent,
            s.answered,
            s.retries,
            s.answered_on_retry,
            s.timeouts,
            s.latency.quantile_ms(0.5),
            s.latency.quantile_ms(0.99),
            s.latency.max_ms()
        );
        total.merge(s);
    }
    println!();
    let heartbeats = total.sent;
    println!(
        "heartbeats: {} scheduled, {} answered ({} of them on the retry), {} failed (unanswered after one retry): {}",
        heartbeats,
        total.answered,
        total.answered_on_retry,
        total.timeouts,
        if total.timeouts == 0 && total.answered == heartbeats {
            "every heartbeat answered within one retry"
        } else {
            "NOT every heartbeat was answered within one retry"
        }
    );
    println!(
        "doorbell counters: received {} answered {} dropped {} (backend {}, busy {}); {} key look-ups; {} commits, {:.0} windows per commit",
        counters.received,
        counters.answered,
        counters.dropped(),
        counters.dropped_backend,
        counters.dropped_busy,
        counters.key_lookups,
        counters.window_commits,
        counters.windows_saved as f64 / counters.window_commits.max(1) as f64
    );
    udp_line("the run", udp);
    if let (Some(e), Some(b), Some(a)) = (rss_empty, rss_before, rss_after) {
        let growth = a.now.saturating_sub(b.now);
        println!(
            "process RSS (server, database client and load generator in one process): {:.0} MiB before provisioning, {:.0} MiB with the printers provisioned and the load generator ready, {:.0} MiB at the end; peak (VmHWM) {:.0} MiB",
            mib(e.now),
            mib(b.now),
            mib(a.now),
            mib(a.peak)
        );
        let per = growth as f64 / memory.cached_keys.max(1) as f64;
        println!(
            "growth during the run (the doorbell's memory, mostly): {:.0} MiB = {:.0} bytes per printer held in memory ({} keys cached, {} present)",
            mib(growth),
            per,
            memory.cached_keys,
            memory.present_printers
        );
    }
    println!(
        "per-printer state by size_of: {} bytes (key cache: slot, entry with the replay window, key material, index) + {} bytes (presence slot) = {} bytes, before hash-table spare capacity and allocator rounding",
        memory.key_entry_bytes,
        memory.presence_entry_bytes,
        memory.key_entry_bytes + memory.presence_entry_bytes
    );
    for (t, r, m) in &samples {
        if let Some(r) = r {
            println!(
                "  at {:>5.0} s: RSS {:>6.0} MiB, {} keys cached, {} present",
                t.as_secs_f64(),
                mib(r.now),
                m.cached_keys,
                m.present_printers
            );
        }
    }
    println!();
    println!(
        "summary: {}: {} printers every {} s for {} intervals: {} heartbeats, {} failed after one retry; RSS {:.0} MiB at the end (peak {:.0} MiB)",
        args.backend.name(),
        args.printers,
        interval.as_secs(),
        rounds,
        heartbeats,
        total.timeouts,
        rss_after.map_or(f64::NAN, |r| mib(r.now)),
        rss_after.map_or(f64::NAN, |r| mib(r.peak))
    );
    Ok(())
}

/// A database that exists only for this run (as `bench api`'s).
struct Db {
    dir: tempfile::TempDir,
    url: String,
    postgres: Option<(String, String)>,
}

impl Db {
    async fn create(backend: Backend, url: Option<&str>) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("pf-bench-")
            .tempdir()
            .context("creating a temporary data directory")?;
        match backend {
            Backend::Sqlite => {
                if url.is_some() {
                    anyhow::bail!("--database-url is only used with --backend postgres");
                }
                let url = format!("sqlite://{}", dir.path().join("printfleet.db").display());
                Ok(Self {
                    dir,
                    url,
                    postgres: None,
                })
            }
            Backend::Postgres => {
                let admin = url.context("--backend postgres needs --database-url")?;
                if !(admin.starts_with("postgres://") || admin.starts_with("postgresql://")) {
                    anyhow::bail!("--database-url must start with postgres:// or postgresql://");
                }
                let name = format!("pf_bench_{}", uuid::Uuid::new_v4().simple());
                let mut u = reqwest::Url::parse(admin).context("--database-url")?;
                u.set_path(&format!("/{name}"));
                let mut c = sqlx::PgConnection::connect(admin)
                    .await
                    .context("connecting to --database-url")?;
                c.execute(format!("CREATE DATABASE {name}").as_str())
                    .await
                    .with_context(|| format!("creating database {name}"))?;
                c.close().await?;
                Ok(Self {
                    dir,
                    url: u.to_string(),
                    postgres: Some((admin.to_string(), name)),
                })
            }
        }
    }

    async fn remove(self) -> anyhow::Result<()> {
        if let Some((admin, name)) = &self.postgres {
            let mut c = sqlx::PgConnection::connect(admin)
                .await
                .context("connecting to PostgreSQL to drop the benchmark database")?;
            c.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                .await
                .with_context(|| format!("dropping database {name}"))?;
            c.close().await?;
        }
        self.dir
            .close()
            .context("removing the temporary data directory")
    }
}
