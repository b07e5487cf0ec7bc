//! Capacity: a warm-up pass, then the closed loop against the doorbell and against the bare UDP
//! echo, and their report.

use super::*;

/// A measured phase with what the kernel and the doorbell counted meanwhile.
pub(super) struct Phase {
    stats: Stats,
    /// CPU seconds the whole process used during the phase.
    cpu: Option<f64>,
    udp: Option<UdpCounters>,
    doorbell: Option<CounterSnapshot>,
}

pub(super) async fn closed_phase(
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

pub(super) fn diff(a: &CounterSnapshot, b: &CounterSnapshot) -> CounterSnapshot {
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

pub(super) async fn connect_all(shards: &[Shard], to: SocketAddr) -> anyhow::Result<()> {
    for s in shards {
        s.connect(to).await?;
    }
    Ok(())
}

/// Capacity: warm-up, doorbell, echo.
pub(super) async fn capacity(
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

pub(super) struct CapacityReport<'a> {
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

pub(super) fn header(args: &HeartbeatsArgs, mode: &str) {
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

pub(super) fn provisioned_line(n: u64, took: Duration) {
    println!(
        "provisioned {n} printers in {:.1} s ({:.0}/s)",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64().max(1e-9)
    );
}

pub(super) fn phase_row(name: &str, s: &Stats) {
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

pub(super) fn udp_line(name: &str, u: Option<UdpCounters>) {
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
