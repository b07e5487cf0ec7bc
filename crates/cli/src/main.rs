//! `printfleet`: the one binary. `serve` runs the server, `demo` a loopback demo with sample
//! users, `admin` the operator's tasks (bootstrap a tenant, rotate keys, verify the audit log),
//! `policy` policies as code through the API, `secret` break-glass reveals of generated
//! per-printer secrets.

mod admin;
mod bench;
mod demo;
mod policy;
mod rollout;
mod secret;
mod simulate;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use printfleet_server::config::{Config, Overrides};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "printfleet", version, about = "Self-hostable printer fleet management", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Options shared by every command that reads the configuration.
#[derive(Args, Clone, Debug)]
pub struct Common {
    /// TOML configuration file (every key is documented in docs/configuration.md).
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// Directory for the SQLite database, keys, certificate and audit checkpoints (key `data_dir`).
    #[arg(long, value_name = "DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// Database URL, sqlite://PATH or postgres://… (key `database_url`).
    #[arg(long, value_name = "URL", global = true)]
    pub database_url: Option<String>,
}

#[derive(Args, Clone, Debug)]
pub struct Listen {
    /// Address and port to listen on, e.g. 127.0.0.1:8443 (key `listen`).
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        listen: Listen,
        /// Serve plain HTTP instead of HTTPS (key `plain_http`); only for loopback testing.
        #[arg(long)]
        plain_http: bool,
    },
    /// Run a demo on loopback: a demo tenant, one user per built-in role and a group-scoped
    /// user, on SQLite in the data directory. Prints the URL and the sign-in details.
    Demo {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        listen: Listen,
        /// Serve HTTPS with a self-signed certificate instead of plain HTTP on loopback.
        #[arg(long)]
        tls: bool,
    },
    /// Operator tasks that run against the database directly.
    Admin {
        #[command(flatten)]
        common: Common,
        #[command(subcommand)]
        task: admin::Task,
    },
    /// Policies as code, through the API with an API token (PRINTFLEET_TOKEN or --token-file):
    /// export a policy as a TOML file, apply a file (--dry-run shows the difference first).
    Policy {
        #[command(subcommand)]
        task: policy::Task,
    },
    /// Staged roll-outs of policy changes, through the API with an API token: progress per
    /// wave (--watch draws progress bars until the roll-out ends), resume, cancel, rollback.
    Rollout {
        #[command(subcommand)]
        task: rollout::Task,
    },
    /// Break-glass for generated per-printer secrets: reveal one printer's value (signs in as
    /// you and re-authenticates with your password; audited, then rotated), list the reveals.
    Secret {
        #[command(subcommand)]
        task: secret::Task,
    },
    /// Benchmarks on loopback against a fresh database (see docs/benchmarks.md).
    Bench {
        #[command(subcommand)]
        target: bench::Target,
    },
    /// Simulate a fleet of printers against a server: each enrols with the token, heartbeats
    /// over UDP (or long-polls over HTTPS), reports realistic telemetry (meters, supplies,
    /// events, catalogue settings) and does the work it is rung for. Shows progress and a
    /// summary.
    Simulate(simulate::SimulateArgs),
    /// Print the effective configuration (file, environment, flags) with secrets masked.
    Config {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        listen: Listen,
    },
}

pub fn load_config(
    common: &Common,
    listen: Option<&Listen>,
    plain_http: Option<bool>,
) -> anyhow::Result<Config> {
    let o = Overrides {
        listen: listen.and_then(|l| l.listen.clone()),
        data_dir: common.data_dir.clone(),
        plain_http,
        database_url: common.database_url.clone(),
    };
    Ok(Config::load(common.config.as_deref(), &o)?)
}

pub fn init_tracing(cfg: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&cfg.log.level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if cfg.log.format == "json" {
        let _ = b.json().try_init();
    } else {
        let _ = b.try_init();
    }
}

/// Refuses plain HTTP anywhere but loopback: sessions and passwords would cross the network.
pub fn check_plain_http(cfg: &Config) -> anyhow::Result<()> {
    if cfg.plain_http {
        let addr = cfg.listen_addr()?;
        if !addr.ip().is_loopback() {
            anyhow::bail!("configuration: plain_http: only allowed on a loopback address, not {addr}; configure TLS instead");
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("printfleet: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<std::process::ExitCode> {
    match cli.command {
        Command::Serve {
            common,
            listen,
            plain_http,
        } => {
            let cfg = load_config(&common, Some(&listen), plain_http.then_some(true))?;
            check_plain_http(&cfg)?;
            init_tracing(&cfg);
            serve(cfg, |_, _| {}).await?;
        }
        Command::Demo {
            common,
            listen,
            tls,
        } => {
            let mut common = common;
            if common.data_dir.is_none() && std::env::var_os("PRINTFLEET_DATA_DIR").is_none() {
                common.data_dir = Some(PathBuf::from("printfleet-demo"));
            }
            let mut listen = listen;
            if listen.listen.is_none() && std::env::var_os("PRINTFLEET_LISTEN").is_none() {
                listen.listen = Some(
                    if tls {
                        "127.0.0.1:8443"
                    } else {
                        "127.0.0.1:8080"
                    }
                    .into(),
                );
            }
            let mut cfg = load_config(&common, Some(&listen), (!tls).then_some(true))?;
            if common.config.is_none() && std::env::var_os("PRINTFLEET_HEARTBEAT_LISTEN").is_none()
            {
                // Any free port, so several demos can run side by side.
                cfg.heartbeat_listen = "127.0.0.1:0".into();
            }
            check_plain_http(&cfg)?;
            init_tracing(&cfg);
            demo::run(cfg).await?;
        }
        Command::Admin { common, task } => {
            let cfg = load_config(&common, None, None)?;
            init_tracing(&cfg);
            return admin::run(cfg, task).await;
        }
        Command::Policy { task } => return policy::run(task).await,
        Command::Rollout { task } => return rollout::run(task).await,
        Command::Secret { task } => return secret::run(task).await,
        Command::Bench { target } => bench::run(target).await?,
        Command::Simulate(args) => simulate::run(args).await?,
        Command::Config { common, listen } => {
            let cfg = load_config(&common, Some(&listen), None)?;
            print!("{}", cfg.to_masked_toml());
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// Opens the store, starts the server, calls `ready` with the state and addresses, and runs
/// until Ctrl-C or SIGTERM.
pub async fn serve(
    cfg: Config,
    ready: impl FnOnce(&printfleet_server::state::AppState, &[std::net::SocketAddr]),
) -> anyhow::Result<()> {
    let clock: std::sync::Arc<dyn printfleet_domain::clock::Clock> =
        std::sync::Arc::new(printfleet_domain::clock::SystemClock);
    let keys = printfleet_server::keys::load(&cfg)?;
    let csrf = printfleet_server::keys::csrf_key(&keys);
    let store = printfleet_server::open_store_with(&cfg, keys, clock.clone()).await?;
    let params = printfleet_crypto::PasswordParams {
        memory_kib: cfg.auth.argon2_memory_kib,
        iterations: cfg.auth.argon2_iterations,
        parallelism: 1,
    };
    let state = printfleet_server::build_state(&cfg, store.clone(), params, clock, csrf)?;
    let running = printfleet_server::start(&cfg, state.clone()).await?;
    let scheme = if cfg.plain_http { "http" } else { "https" };
    for a in &running.addrs {
        tracing::info!("listening on {scheme}://{a}");
    }
    if let Some(h) = running.heartbeat_addr {
        tracing::info!("heartbeat service on udp://{h}");
    }
    ready(&state, &running.addrs);
    shutdown_signal()
        .await
        .context("waiting for a shutdown signal")?;
    tracing::info!("shutting down");
    running.stop().await;
    store.close().await;
    Ok(())
}

async fn shutdown_signal() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r,
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}
