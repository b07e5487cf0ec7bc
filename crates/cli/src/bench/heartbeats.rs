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

mod capacity;
mod echo;
mod fleet;
mod load;
pub(super) mod sys;

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
use printfleet_server::doorbell::service::{
    self as doorbell, CounterSnapshot, DoorbellConfig, DoorbellServer, MemoryStats,
};
use printfleet_storage::provision::{ProvisionPlan, Provisioned};
use printfleet_storage::Store;
use rand::Rng;
use tokio::sync::oneshot;

use super::fixture::TempDatabase;
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
    super::fixture::on_temp_database(args.backend, args.database_url.as_deref(), async |db| {
        measure(&args, db).await
    })
    .await
}

/// The receive buffer of every socket of the run (the doorbell's default).
const RECV_BUFFER: usize = doorbell::DEFAULT_RECV_BUFFER;

pub(super) async fn measure(args: &HeartbeatsArgs, db: &TempDatabase) -> anyhow::Result<()> {
    let cfg = super::fixture::server_config(db, true)?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = printfleet_server::open_store(&cfg, clock.clone()).await?;
    let outcome = async {
        let rss_empty = sys::rss();
        let (printers, took) = provision(&store, usize::try_from(args.printers)?).await?;
        let interval = args.interval_s.map(Duration::from_secs);
        let shards = shards(args, printers, interval).await?;
        match interval {
            None => capacity::capacity(args, &store, clock, shards, took).await,
            Some(i) => fleet::fleet(args, &store, clock, shards, i, took, rss_empty).await,
        }
    }
    .await;
    store.close().await;
    outcome
}

/// A tenant, a token, and the printers.
pub(super) async fn provision(
    store: &Store,
    n: usize,
) -> anyhow::Result<(Vec<Provisioned>, Duration)> {
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
pub(super) async fn shards(
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
pub(super) struct RunningDoorbell {
    addr: SocketAddr,
    bell: doorbell::Doorbell,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

pub(super) async fn start_doorbell(
    args: &HeartbeatsArgs,
    store: &Store,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<RunningDoorbell> {
    let config = DoorbellConfig {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..DoorbellConfig::default()
    };
    let mut backends = printfleet_server::doorbell::store_backends(store, clock).await?;
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
pub(super) async fn run_shards<F, Fut>(
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
