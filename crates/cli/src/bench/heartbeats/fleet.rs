//! Fleet: every printer heartbeats every interval, for several intervals; memory and kernel
//! drop counters.

use super::capacity::*;
use super::*;

/// Fleet: every printer every interval, for several intervals.
pub(super) async fn fleet(
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
