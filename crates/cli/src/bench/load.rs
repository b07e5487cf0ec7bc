//! Running one phase: `concurrency` clients each repeating an operation back to back until the
//! phase's time is up, with a progress bar; latencies of successful operations are kept.

use indicatif::{ProgressBar, ProgressStyle};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub type OpFuture = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;

/// One operation, called with the client's number and its sequence number; `Ok` counts.
pub type Op = Arc<dyn Fn(u64, u64) -> OpFuture + Send + Sync>;

/// A client stops after this many failures in a row (e.g. the server is gone).
const MAX_FAILURES_IN_A_ROW: u64 = 100;

#[derive(Clone, Copy, Debug)]
pub struct Plan {
    pub duration: Duration,
    pub concurrency: u64,
}

/// What a phase measured.
#[derive(Debug)]
pub struct Phase {
    pub ok: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub elapsed: Duration,
    /// CPU seconds the whole process (server and load generator) used during the phase.
    pub cpu_seconds: Option<f64>,
    /// Latencies of the successful operations in microseconds, sorted.
    latencies_us: Vec<u64>,
}

impl Phase {
    /// Successful operations per second of wall-clock time.
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The latency at quantile `q` (0..=1, nearest rank) in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        let n = self.latencies_us.len();
        if n == 0 {
            return f64::NAN;
        }
        let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
        self.latencies_us.get(rank - 1).copied().unwrap_or(0) as f64 / 1000.0
    }

    pub fn max_ms(&self) -> f64 {
        self.latencies_us.last().copied().unwrap_or(0) as f64 / 1000.0
    }

    /// Cores busy on average (the whole process), if the OS told.
    pub fn cores_busy(&self) -> Option<f64> {
        self.cpu_seconds
            .map(|c| c / self.elapsed.as_secs_f64().max(1e-9))
    }

    /// CPU microseconds per successful operation (server and load generator together).
    pub fn cpu_us_per_op(&self) -> Option<f64> {
        self.cpu_seconds.map(|c| c * 1e6 / (self.ok.max(1) as f64))
    }
}

#[derive(Default)]
struct ClientStats {
    latencies_us: Vec<u64>,
    errors: u64,
    first_error: Option<String>,
}

/// Runs `op` from `plan.concurrency` clients for `plan.duration`; fails when nothing succeeded.
pub async fn run_phase(name: &str, plan: Plan, op: Op) -> anyhow::Result<Phase> {
    let ok = Arc::new(AtomicU64::new(0));
    let cpu_before = super::heartbeats::sys::cpu_seconds();
    let start = Instant::now();
    let deadline = start + plan.duration;
    let clients: Vec<_> = (0..plan.concurrency)
        .map(|n| tokio::spawn(client(op.clone(), n, deadline, ok.clone())))
        .collect();
    let bar = progress_bar(name, plan.duration)?;
    while Instant::now() < deadline && !clients.iter().all(|c| c.is_finished()) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let done = start.elapsed().min(plan.duration);
        bar.set_position(u64::try_from(done.as_millis()).unwrap_or(u64::MAX));
        bar.set_message(format!(
            "{:>5.1}/{} s {:>8} ok",
            done.as_secs_f64(),
            plan.duration.as_secs(),
            ok.load(Ordering::Relaxed)
        ));
    }
    let mut phase = Phase {
        ok: 0,
        errors: 0,
        first_error: None,
        elapsed: Duration::ZERO,
        cpu_seconds: None,
        latencies_us: Vec::new(),
    };
    for c in clients {
        let s = c.await?;
        phase.errors += s.errors;
        phase.first_error = phase.first_error.or(s.first_error);
        phase.latencies_us.extend(s.latencies_us);
    }
    phase.elapsed = start.elapsed();
    phase.cpu_seconds = super::heartbeats::sys::cpu_seconds()
        .zip(cpu_before)
        .map(|(a, b)| a - b);
    phase.ok = phase.latencies_us.len() as u64;
    phase.latencies_us.sort_unstable();
    bar.finish_with_message(format!("{:.0}/s", phase.rate()));
    if phase.ok == 0 {
        anyhow::bail!(
            "{name}: nothing succeeded; first error: {}",
            phase.first_error.as_deref().unwrap_or("(none)")
        );
    }
    Ok(phase)
}

fn progress_bar(name: &str, duration: Duration) -> anyhow::Result<ProgressBar> {
    let bar = ProgressBar::new(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX));
    bar.set_style(
        ProgressStyle::with_template("{prefix:<26} [{bar:30}] {msg}")?.progress_chars("=> "),
    );
    bar.set_prefix(name.to_string());
    Ok(bar)
}

async fn client(op: Op, n: u64, deadline: Instant, ok: Arc<AtomicU64>) -> ClientStats {
    let mut s = ClientStats::default();
    let mut seq = 0u64;
    let mut failures_in_a_row = 0u64;
    while Instant::now() < deadline && failures_in_a_row < MAX_FAILURES_IN_A_ROW {
        let t = Instant::now();
        match op(n, seq).await {
            Ok(()) => {
                s.latencies_us
                    .push(u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX));
                ok.fetch_add(1, Ordering::Relaxed);
                failures_in_a_row = 0;
            }
            Err(e) => {
                s.errors += 1;
                failures_in_a_row += 1;
                if s.first_error.is_none() {
                    s.first_error = Some(format!("{e:#}"));
                }
            }
        }
        seq += 1;
    }
    s
}
