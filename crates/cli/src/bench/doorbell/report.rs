//! The run's figures and their printout: ring latency beside the bare-UDP baseline, then the
//! fetches.

use std::time::{Duration, Instant};

use super::DoorbellArgs;
use crate::bench::Backend;

/// Exact nearest-rank percentiles over every printer that received its datagram.
pub struct Latencies {
    sorted: Vec<Duration>,
}

impl Latencies {
    /// Latencies from `t0` to each arrival (missing arrivals left out).
    pub fn from_arrivals(t0: Instant, arrivals: &[Option<Instant>]) -> Self {
        let mut sorted: Vec<Duration> = arrivals
            .iter()
            .flatten()
            .map(|a| a.saturating_duration_since(t0))
            .collect();
        sorted.sort_unstable();
        Self { sorted }
    }

    /// Nearest rank: the smallest value with at least `q` of all values at or below it.
    pub fn quantile(&self, q: f64) -> Duration {
        let n = self.sorted.len();
        if n == 0 {
            return Duration::ZERO;
        }
        let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
        self.sorted.get(rank - 1).copied().unwrap_or_default()
    }

    pub fn min(&self) -> Duration {
        self.sorted.first().copied().unwrap_or_default()
    }

    pub fn max(&self) -> Duration {
        self.sorted.last().copied().unwrap_or_default()
    }
}

pub struct Results {
    pub printers: usize,
    pub provisioned_in: Duration,
    pub assessed_in: Duration,
    /// From sending the request to reading its answer (the server answers after ringing).
    pub answered_after: Duration,
    pub rings: Latencies,
    pub rings_missed: usize,
    /// Keep-alives answered with something other than "come fetch".
    pub unexpected: u64,
    /// The doorbell's own count of rings sent and of rings that sent nothing.
    pub doorbell_rung: u64,
    pub doorbell_ring_missed: u64,
    pub fetched: usize,
    pub fetch_errors: usize,
    pub first_fetch_error: Option<String>,
    pub all_fetched_after: Option<Duration>,
    /// `report_now` items stored as `done`.
    pub stored_done: i64,
    pub baseline: Latencies,
    pub baseline_missed: usize,
    pub baseline_sent_in: Duration,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub fn print(args: &DoorbellArgs, r: &Results) {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!();
    println!(
        "printfleet bench doorbell: backend {}, {} printers on {} UDP sockets, {} fetching at once, {} CPUs, {} build",
        match args.backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        },
        r.printers,
        args.sockets,
        args.fetch_concurrency,
        cores,
        if cfg!(debug_assertions) { "debug" } else { "release" },
    );
    println!(
        "setup: provisioned in {:.1} s; assessor's first sweep {:.1} s; every printer heartbeated, then held a keep-alive",
        r.provisioned_in.as_secs_f64(),
        r.assessed_in.as_secs_f64()
    );
    println!();
    println!(
        "{:<58} {:>8} {:>8} {:>9} {:>9} {:>9}",
        "one datagram to every printer", "arrived", "missed", "p50 ms", "p99 ms", "max ms"
    );
    for (name, l, missed) in [
        (
            "come fetch after POST …/groups/{all}/work (doorbell)",
            &r.rings,
            r.rings_missed,
        ),
        (
            "bare UDP socket, prepared datagrams (baseline)",
            &r.baseline,
            r.baseline_missed,
        ),
    ] {
        println!(
            "{:<58} {:>8} {:>8} {:>9.1} {:>9.1} {:>9.1}",
            name,
            l.sorted.len(),
            missed,
            ms(l.quantile(0.5)),
            ms(l.quantile(0.99)),
            ms(l.max())
        );
    }
    println!();
    println!(
        "ring p99 / baseline p99: {:.1} / {:.1} ms = {:.1}; target p99 < 1000 ms: {}",
        ms(r.rings.quantile(0.99)),
        ms(r.baseline.quantile(0.99)),
        ms(r.rings.quantile(0.99)) / ms(r.baseline.quantile(0.99)).max(1e-3),
        if r.rings_missed == 0 && r.rings.quantile(0.99) < Duration::from_secs(1) {
            "met"
        } else {
            "NOT met"
        }
    );
    println!(
        "first ring {:.1} ms after the request (the work was committed by then); the request was answered after {:.1} ms (all rung); the baseline sent its datagrams in {:.1} ms",
        ms(r.rings.min()),
        ms(r.answered_after),
        ms(r.baseline_sent_in)
    );
    println!(
        "doorbell: {} rung, {} rings sent nothing; {} keep-alives answered otherwise",
        r.doorbell_rung, r.doorbell_ring_missed, r.unexpected
    );
    println!(
        "fetched and acknowledged: {} of {} printers ({} errors), all done {} after the request; {} items stored done ({})",
        r.fetched,
        r.printers,
        r.fetch_errors,
        r.all_fetched_after
            .map_or_else(|| "never".to_string(), |d| format!("{:.2} s", d.as_secs_f64())),
        r.stored_done,
        if u64::try_from(r.stored_done).ok() == Some(r.printers as u64) && r.fetched == r.printers {
            "all there"
        } else {
            "MISMATCH"
        }
    );
    if let Some(e) = &r.first_fetch_error {
        println!("  first fetch error: {e}");
    }
}
