//! `printfleet bench api`: a loopback benchmark of the API against a fresh database.
//!
//! Five phases, each for the same duration and number of concurrent clients:
//! 1. the raw insert rate of the database (sqlx, one row per transaction) as the baseline, with
//!    the clients' transactions concurrent, then serialized as the store serializes its writes;
//! 2. audited API writes (`POST …/groups`: a row and an audit entry in one transaction);
//! 3. `GET /healthz` (no authentication, no database) as the HTTP baseline;
//! 4. authenticated API reads (`GET …/groups/{id}`: session, membership and row look-ups).
//!
//! What is measured and how to read it is described in `docs/benchmarks.md`.

mod checkins;
mod doorbell;
mod fixture;
mod heartbeats;
mod load;
mod policies;
mod report;

use clap::{Args, Subcommand, ValueEnum};
use std::time::Duration;

#[derive(Subcommand, Debug)]
pub enum Target {
    /// Benchmark the HTTP API on loopback against a fresh database (see docs/benchmarks.md).
    Api(ApiArgs),
    /// Sealed, durable check-ins over TLS against a bare HTTPS echo baseline (see docs/benchmarks.md).
    Checkins(checkins::CheckinArgs),
    /// "Come fetch" to a whole fleet after one change: ring latency to every printer holding a
    /// keep-alive, beside a bare UDP baseline, then every printer's fetch (see docs/benchmarks.md).
    Doorbell(doorbell::DoorbellArgs),
    /// The UDP heartbeat service (doorbell) on loopback against a fresh database, with a bare
    /// UDP echo baseline; or a fleet at a fixed interval (see docs/benchmarks.md).
    Heartbeats(heartbeats::HeartbeatsArgs),
    /// Policy assessment at fleet scale: a policy change on --printers printers, the fleet
    /// compliance figures, and the assessment rate per core, each beside a same-run baseline
    /// (see docs/benchmarks.md).
    Policies(policies::PoliciesArgs),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

#[derive(Args, Clone, Debug)]
pub struct ApiArgs {
    /// Database backend. SQLite lives in a temporary directory; PostgreSQL gets a fresh
    /// database (`pf_bench_…`) created through --database-url and dropped at the end.
    #[arg(long, value_enum, default_value = "sqlite")]
    pub backend: Backend,
    /// PostgreSQL server to use (required with --backend postgres), e.g.
    /// postgres://postgres@127.0.0.1:5432/test. The user must be allowed to CREATE DATABASE.
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// Duration of each measured phase, in seconds.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub seconds: u64,
    /// Number of concurrent clients in each phase.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub concurrency: u64,
}

pub async fn run(target: Target) -> anyhow::Result<()> {
    match target {
        Target::Api(args) => api(args).await,
        Target::Heartbeats(args) => heartbeats::run(args).await,
        Target::Checkins(args) => checkins::run(args).await,
        Target::Doorbell(args) => doorbell::run(args).await,
        Target::Policies(args) => policies::run(args).await,
    }
}

async fn api(args: ApiArgs) -> anyhow::Result<()> {
    let results =
        fixture::on_temp_database(args.backend, args.database_url.as_deref(), async |db| {
            measure(&args, db).await
        })
        .await?;
    report::print(&args, &results);
    Ok(())
}

/// Runs the five phases against a server started on `db`.
async fn measure(args: &ApiArgs, db: &fixture::TempDatabase) -> anyhow::Result<report::Results> {
    let env = fixture::Bench::start(db, args.concurrency).await?;
    let outcome = phases(args, &env).await;
    env.stop().await;
    outcome
}

async fn phases(args: &ApiArgs, env: &fixture::Bench) -> anyhow::Result<report::Results> {
    let plan = load::Plan {
        duration: Duration::from_secs(args.seconds),
        concurrency: args.concurrency,
    };
    env.create_raw_table().await?;
    let raw = load::run_phase("raw inserts (sqlx)", plan, env.raw_insert_op(false)).await?;
    let raw_serial =
        load::run_phase("raw inserts, serialized", plan, env.raw_insert_op(true)).await?;
    let writes = load::run_phase("API writes (POST groups)", plan, env.write_op()).await?;
    let health = load::run_phase("GET /healthz", plan, env.healthz_op()).await?;
    let reads = load::run_phase("API reads (GET group)", plan, env.read_op()).await?;
    Ok(report::Results {
        backend: args.backend,
        pool_size: env.pool_size,
        raw,
        raw_serial,
        writes,
        health,
        reads,
    })
}
