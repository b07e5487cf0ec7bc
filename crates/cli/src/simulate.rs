//! `printfleet simulate`: N simulated printers in one process, over real sockets. Each enrols
//! with the token (HTTPS, or HTTP on loopback) and then heartbeats over UDP; some go offline for
//! a while and come back, as real fleets do.

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use printfleet_agent::{enrol, Enrolment, Heartbeater, Identity, MemoryCounter, Reply};
use printfleet_protocol::heartbeat::RequestType;
use rand::Rng;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

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
    /// Seconds between heartbeats (each printer adds up to 20 % jitter).
    #[arg(long, default_value_t = 30)]
    pub interval_s: u64,
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
    /// intervals before it beats again.
    #[arg(long, default_value_t = 2.0)]
    pub offline_percent: f64,
}

/// Model families: mono/colour, fax or not, duplex or not.
const MODELS: &[&str] = &[
    "LaserJet Enterprise M507",
    "Color LaserJet Enterprise M554",
    "LaserJet Enterprise MFP M528",
    "Color LaserJet Enterprise MFP M578",
    "PageWide Enterprise Color 556",
];

#[derive(Default)]
pub struct Tally {
    pub enrolled: AtomicU64,
    pub refused: AtomicU64,
    pub beats: AtomicU64,
    pub nothing: AtomicU64,
    pub come_fetch: AtomicU64,
    pub no_answer: AtomicU64,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
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
    tokio::select! {
        r = simulate(&args, tally.clone(), true) => r?,
        _ = stop => {}
    }
    let t = &tally;
    println!(
        "simulated {} printers: {} enrolled, {} refused; {} heartbeats: {} nothing, {} come fetch, {} unanswered",
        args.printers,
        t.enrolled.load(Ordering::Relaxed),
        t.refused.load(Ordering::Relaxed),
        t.beats.load(Ordering::Relaxed),
        t.nothing.load(Ordering::Relaxed),
        t.come_fetch.load(Ordering::Relaxed),
        t.no_answer.load(Ordering::Relaxed),
    );
    Ok(())
}

/// Enrols every printer, then keeps them heartbeating until the future is dropped.
pub async fn simulate(
    args: &SimulateArgs,
    tally: Arc<Tally>,
    progress: bool,
) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(args.insecure_tls)
        .build()
        .context("HTTP client")?;
    let url = reqwest::Url::parse(&args.server).context("--server: not a URL")?;
    let host = url.host_str().context("--server: no host")?.to_string();
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
        let identity = Identity {
            serial: format!("{}{:05}", args.serial_prefix, i + 1),
            model: MODELS[i as usize % MODELS.len()].to_string(),
            firmware: format!("2506.{}", i % 4),
        };
        match enrol(&client, &args.server, &args.token, &identity, now_ms()).await {
            Ok(e) => {
                tally.enrolled.fetch_add(1, Ordering::Relaxed);
                printers.push(e);
            }
            Err(e) => {
                tally.refused.fetch_add(1, Ordering::Relaxed);
                bar.set_message(format!("last refusal: {e}"));
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let mut tasks = Vec::new();
    let offline = (args.offline_percent / 100.0).clamp(0.0, 1.0);
    for p in printers {
        tasks.push(tokio::spawn(heartbeat_loop(
            p,
            host.clone(),
            args.interval_s,
            offline,
            tally.clone(),
        )));
    }
    for t in tasks {
        let _ = t.await;
    }
    Ok(())
}

async fn heartbeat_loop(
    p: Enrolment,
    host: String,
    interval_s: u64,
    offline_chance: f64,
    tally: Arc<Tally>,
) {
    let Ok(Some(addr)) = tokio::net::lookup_host((host.as_str(), p.parameters.heartbeat_port))
        .await
        .map(|mut a| a.next())
    else {
        return;
    };
    let Ok(mut hb) = Heartbeater::connect(
        addr,
        p.heartbeat_keys.clone(),
        Box::new(MemoryCounter::default()),
    )
    .await
    else {
        return;
    };
    let interval_ms = interval_s.max(1) * 1000;
    let mut first = true;
    loop {
        let (jitter, offline) = {
            let mut rng = rand::thread_rng();
            (
                rng.gen_range(0..=interval_ms / 5),
                !first && rng.gen_bool(offline_chance),
            )
        };
        first = false;
        // Now and then a printer is switched off for a few intervals.
        let pause = if offline { interval_ms * 4 } else { 0 };
        tokio::time::sleep(Duration::from_millis(jitter + pause)).await;
        tally.beats.fetch_add(1, Ordering::Relaxed);
        match hb.beat(RequestType::Heartbeat).await {
            Ok(Reply::Nothing) => tally.nothing.fetch_add(1, Ordering::Relaxed),
            Ok(Reply::ComeFetch) => tally.come_fetch.fetch_add(1, Ordering::Relaxed),
            _ => tally.no_answer.fetch_add(1, Ordering::Relaxed),
        };
        tokio::time::sleep(Duration::from_millis(interval_ms - jitter)).await;
    }
}
