//! `printfleet bench doorbell`: how long "come fetch" takes to reach a whole fleet after one
//! change, and how long until every printer has fetched and acknowledged its work.
//!
//! 1. A fresh store, one tenant with an IT Admin and an API token, `--printers` real printer
//!    identities provisioned in bulk, and a group whose rule is "every printer".
//! 2. The server as `serve` runs it (HTTPS API and the UDP doorbell) on 127.0.0.1; the run waits
//!    until the assessor has assessed the new printers, so it does not compete with the test.
//! 3. Every printer sends a heartbeat (answered at once: its keys come into the doorbell's
//!    memory), then a keep-alive, which the doorbell holds.
//! 4. One `POST …/groups/{all}/work` (`report_now`) over HTTPS. Each printer's time from sending
//!    that request to opening its "come fetch" is its ring latency; on its ring it fetches over
//!    HTTPS (sealed) and acknowledges the item `done` in a second fetch.
//! 5. Baseline, same run, same client sockets and receive code: one pre-sealed datagram per
//!    printer sent from a bare UDP socket, timed from the first send.
//!
//! What is measured and how to read it: `docs/benchmarks.md`, "Doorbell latency".

mod baseline;
mod fetch;
mod fleet;
mod report;
mod setup;

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;

use super::fixture::TempDatabase;
use super::Backend;
use fleet::Mode;

#[derive(Args, Clone, Debug)]
pub struct DoorbellArgs {
    /// Database backend. SQLite lives in a temporary directory; PostgreSQL gets a fresh
    /// database (`pf_bench_…`) created through --database-url and dropped at the end.
    #[arg(long, value_enum, default_value = "sqlite")]
    pub backend: Backend,
    /// PostgreSQL server to use (required with --backend postgres); the user must be allowed to
    /// CREATE DATABASE.
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// Printers to provision, all online and holding a keep-alive when the work is queued.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub printers: u64,
    /// UDP sockets the printers share (printers are dealt out round-robin; the doorbell answers
    /// each printer at its source address, and the client tells printers apart by key id).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub sockets: u64,
    /// Printers fetching at the same time (each fetch a sealed HTTPS request, over kept-alive
    /// connections shared by the printers).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub fetch_concurrency: u64,
    /// Rings not arrived this long after the request count as missed.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout_s: u64,
}

pub async fn run(args: DoorbellArgs) -> anyhow::Result<()> {
    let r =
        super::fixture::on_temp_database(args.backend, args.database_url.as_deref(), async |db| {
            measure(&args, db).await
        })
        .await?;
    report::print(&args, &r);
    Ok(())
}

async fn measure(args: &DoorbellArgs, db: &TempDatabase) -> anyhow::Result<report::Results> {
    let env = setup::start(args, db).await?;
    let r = phases(args, &env).await;
    env.stop().await;
    r
}

async fn phases(args: &DoorbellArgs, env: &setup::Env) -> anyhow::Result<report::Results> {
    let n = env.printers.len();
    let timeout = Duration::from_secs(args.timeout_s);
    let mut fleet = fleet::Fleet::new(&env.printers, args.sockets, env.heartbeat_addr)?;

    // Every printer known to the doorbell (a heartbeat, answered "nothing" at once).
    let known = fleet.warm_up(timeout).await?;
    if known != n {
        anyhow::bail!("warm-up: heartbeats of {known} of {n} printers answered");
    }

    // Keep-alives, held by the doorbell; their listeners stay up for the rings.
    let held_before = env.counters().held;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let listening = fleet.start(Mode::Ring, timeout * 2, Some(tx));
    let held_at = Instant::now();
    while env.counters().held < held_before + n as u64 {
        if held_at.elapsed() > timeout {
            anyhow::bail!(
                "only {} of {n} keep-alives held after {timeout:?}",
                env.counters().held - held_before
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before = env.counters();
    let fetchers = fetch::start(env, rx, args.fetch_concurrency)?;

    // The one change.
    let t0 = Instant::now();
    let queued = env.queue_report_now().await?;
    let answered_after = t0.elapsed();
    if queued != n as u64 {
        anyhow::bail!("the request queued work for {queued} printers, not {n}");
    }
    let rings = fleet.finish(listening).await?;
    let fetched = fetchers.finish().await?;
    let after = env.counters();

    // The floor: the same number of datagrams to the same sockets, without the doorbell.
    let base = baseline::run(&mut fleet, timeout).await?;
    let stored_done = env.work_done().await?;
    Ok(report::Results {
        printers: n,
        provisioned_in: env.provisioned_in,
        assessed_in: env.assessed_in,
        answered_after,
        rings: report::Latencies::from_arrivals(t0, &rings.arrivals),
        rings_missed: n - rings.received,
        unexpected: rings.unexpected,
        doorbell_rung: after.rung - before.rung,
        doorbell_ring_missed: after.ring_missed - before.ring_missed,
        fetched: fetched.acknowledged,
        fetch_errors: fetched.errors,
        first_fetch_error: fetched.first_error,
        all_fetched_after: fetched.last_done.map(|t| t.saturating_duration_since(t0)),
        stored_done,
        baseline: report::Latencies::from_arrivals(base.t0, &base.arrivals),
        baseline_missed: n - base.received,
        baseline_sent_in: base.sent_in,
    })
}

/// Why the run cannot continue, with what the server said.
pub(super) fn refused(what: &str, status: reqwest::StatusCode, body: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "{what} answered {status}: {}",
        body.chars().take(200).collect::<String>()
    )
}

/// Milliseconds since the epoch, as the sealed bodies carry them.
pub(super) fn now_ms() -> anyhow::Result<u64> {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .context("the clock is before 1970")?;
    Ok(u64::try_from(d.as_millis())?)
}
