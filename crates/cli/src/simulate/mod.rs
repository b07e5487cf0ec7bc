//! `printfleet simulate`: N simulated printers in one process, over real sockets. Each enrols
//! with the token (HTTPS, or HTTP on loopback), reports what it is and how it is set up, then
//! heartbeats over UDP, prints pages and reports again every few heartbeats, and does the work
//! the server asks for (reports, policies to apply); where UDP is blocked it long-polls over
//! HTTPS instead. Some go offline for a while and come back, and now and then someone changes a
//! setting at the control panel, as in real fleets.

mod agent;
mod cert;
mod exchange;
mod models;
mod policy;
mod printer;
mod settings;
mod supplies;
mod tally;

pub use tally::Tally;

use agent::{now_ms, Agent, Timing};
use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use models::MODELS;
use printer::{Nameplate, SimPrinter};
use printfleet_agent::{enrol, DeviceClient, Enrolment, Heartbeater, Identity, MemoryCounter};
use printfleet_domain::catalogue::Catalogue;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Mixed into each printer's seed for its policy randomness stream.
const POLICY_SEED: u64 = 0x706f_6c69_6379;

#[derive(Args, Debug, Clone)]
pub struct SimulateArgs {
    /// How many printers to simulate.
    #[arg(long, default_value_t = 10)]
    pub printers: u32,
    /// The server's base URL, e.g. https://127.0.0.1:8443.
    #[arg(long)]
    pub server: String,
    /// An enrolment token (pfe_…) of the tenant the printers join.
    #[arg(long)]
    pub token: String,
    /// Seconds between heartbeats (each interval drawn within ±10 %).
    #[arg(long, default_value_t = 30)]
    pub interval_s: u64,
    /// Print some pages and send a report (meters, supplies, events) every this many
    /// heartbeats.
    #[arg(long, default_value_t = 3)]
    pub report_every: u64,
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long)]
    pub duration_s: Option<u64>,
    /// Accept the server's self-signed certificate (development only).
    #[arg(long)]
    pub insecure_tls: bool,
    /// Prefix of the simulated serial numbers (the printer number is appended).
    #[arg(long, default_value = "SIM")]
    pub serial_prefix: String,
    /// Chance in percent, per heartbeat after the first, that a printer is switched off for four
    /// intervals before it beats again (and reports a restart).
    #[arg(long, default_value_t = 2.0)]
    pub offline_percent: f64,
    /// Behave as if UDP were blocked: no heartbeats, work is fetched by HTTPS long-poll only.
    #[arg(long)]
    pub no_udp: bool,
    /// Seed of the printers' randomness (meters, supplies, settings), for a reproducible fleet.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Chance in percent, per setting of a policy applied, that the printer's firmware fails
    /// to apply it ("device busy"…).
    #[arg(long, default_value_t = 2.0)]
    pub apply_failure_percent: f64,
    /// Chance in percent, per report interval, that someone changes a setting at the control
    /// panel back to an insecure value (or a secret to a new one).
    #[arg(long, default_value_t = 1.0)]
    pub drift_percent: f64,
}

pub async fn run(args: SimulateArgs) -> anyhow::Result<()> {
    let tally = Arc::new(Tally::default());
    let stop = async {
        match args.duration_s {
            Some(s) => tokio::time::sleep(Duration::from_secs(s)).await,
            None => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    };
    let status = ProgressBar::new_spinner();
    tokio::select! {
        r = simulate(&args, tally.clone(), true) => r?,
        _ = stop => {}
        _ = show_status(&status, &tally) => {}
    }
    status.finish_and_clear();
    println!("{}", tally.summary(args.printers));
    Ok(())
}

/// A live status line once the printers are running.
async fn show_status(bar: &ProgressBar, tally: &Tally) {
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if tally.running.load(Ordering::Relaxed) {
            bar.set_message(tally.status());
            bar.tick();
        }
    }
}

/// Enrols every printer, then keeps them running until the future is dropped.
pub async fn simulate(
    args: &SimulateArgs,
    tally: Arc<Tally>,
    progress: bool,
) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .danger_accept_invalid_certs(args.insecure_tls)
        .build()
        .context("HTTP client")?;
    let url = reqwest::Url::parse(&args.server).context("--server: not a URL")?;
    let host = url.host_str().context("--server: no host")?.to_string();
    let catalogue = Arc::new(Catalogue::builtin().context("the settings catalogue")?);
    let seed = args.seed.unwrap_or_else(|| rand::thread_rng().gen());
    let timing = Timing {
        interval: Duration::from_secs(args.interval_s.max(1)),
        report_every: args.report_every.max(1),
        offline_chance: (args.offline_percent / 100.0).clamp(0.0, 1.0),
        no_udp: args.no_udp,
        apply_failure_chance: chance(args.apply_failure_percent),
        drift_chance: chance(args.drift_percent),
    };
    let bar = if progress {
        let b = ProgressBar::new(u64::from(args.printers));
        b.set_style(
            ProgressStyle::with_template("enrolling {bar:30} {pos}/{len} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b
    } else {
        ProgressBar::hidden()
    };
    let mut printers = Vec::new();
    for i in 0..args.printers {
        let model = &MODELS[i as usize % MODELS.len()];
        let identity = Identity {
            serial: format!("{}{:05}", args.serial_prefix, i + 1),
            model: model.name.to_string(),
            firmware: format!("2506.{}", i % 4),
        };
        match enrol(&http, &args.server, &args.token, &identity, now_ms()).await {
            Ok(e) => {
                tally.count(|t| &t.enrolled);
                let mut rng = StdRng::seed_from_u64(seed.wrapping_add(u64::from(i)));
                let nameplate = Nameplate {
                    serial: identity.serial,
                    firmware: identity.firmware,
                };
                let printer = SimPrinter::new(
                    model,
                    nameplate,
                    catalogue.clone(),
                    &mut rng,
                    now_ms(),
                    e.verifier_key,
                );
                // Policy behaviour (firmware failures, drift) draws from its own stream, so
                // it depends only on the seed and the work received, not on network timing.
                let policy_rng =
                    StdRng::seed_from_u64(seed.wrapping_add(u64::from(i)) ^ POLICY_SEED);
                printers.push((e, printer, rng, policy_rng));
            }
            Err(e) => {
                tally.count(|t| &t.refused);
                bar.set_message(format!("last refusal: {e}"));
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    tally.running.store(true, Ordering::Relaxed);
    // Dropping the set (when the simulation is stopped) aborts every printer.
    let mut tasks = tokio::task::JoinSet::new();
    for (enrolment, printer, rng, policy_rng) in printers {
        let heartbeater = if args.no_udp {
            None
        } else {
            heartbeater(&host, &enrolment).await
        };
        let client = DeviceClient::new(http.clone(), vec![args.server.clone()], enrolment);
        let rngs = (rng, policy_rng);
        let agent = Agent::new(client, heartbeater, printer, rngs, tally.clone(), timing);
        tasks.spawn(agent.run());
    }
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// A percentage as a probability for `gen_bool`, which panics outside 0..=1 (NaN included).
fn chance(percent: f64) -> f64 {
    if percent > 0.0 {
        (percent / 100.0).min(1.0)
    } else {
        0.0
    }
}

/// A UDP socket aimed at the server's heartbeat port; `None` when there is none to aim at.
async fn heartbeater(host: &str, e: &Enrolment) -> Option<Heartbeater> {
    let addr = tokio::net::lookup_host((host, e.parameters.heartbeat_port))
        .await
        .ok()?
        .next()?;
    let counter = Box::new(MemoryCounter::default());
    Heartbeater::connect(addr, e.heartbeat_keys.clone(), counter)
        .await
        .ok()
}
