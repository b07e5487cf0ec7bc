//! `printfleet bench policies`: policy assessment at fleet scale, against a fresh database,
//! each figure beside a baseline taken in the same run.
//!
//! 1. **Per core**: `policy::assess` of one report against the 60-item policy in a loop on one
//!    thread, beside cloning, serialising and parsing the same state.
//! 2. **Set-up** (through the store, before the server starts): `--printers` printers
//!    provisioned in bulk, each with the state its first check-in would leave (60+ settings
//!    at typed values), a dynamic group of all printers and one of a model, and a 60-item
//!    assess-only policy assigned to all, whose version 1 wants six settings the other way.
//! 3. The server starts (the code path of `printfleet serve`); its assessor finds every
//!    printer due and assesses the fleet: timed until all are non-compliant.
//! 4. Baseline: every state row read and as many assessment-sized rows written in batches.
//! 5. **The policy change**: `PUT …/policies/{p}` with those six settings at the values the
//!    printers report — compliance needs no printer to do anything — timed until the kept counts
//!    show every printer compliant.
//! 6. **Fleet figures**: latency of `GET …/compliance` and of a group's figures (both from the
//!    kept counts) for the small group and for all printers, beside `GET /api/v1/me`.
//! 7. The counts that prove it: every printer assessed under the current epoch and compliant.
//!
//! What is measured and how to read it: `docs/benchmarks.md`, "Policies".

mod change;
mod fleet;
mod rate;
mod report;

use super::fixture::{on_temp_database, Bench, TempDatabase};
use super::load::{self, Phase, Plan as LoadPlan};
use super::Backend;
use clap::Args;
use printfleet_domain::clock::{Clock, SystemClock};
use std::time::{Duration, Instant};

#[derive(Args, Clone, Debug)]
pub struct PoliciesArgs {
    /// Database backend. SQLite lives in a temporary directory; PostgreSQL gets a fresh
    /// database (`pf_bench_…`) created through --database-url and dropped at the end.
    #[arg(long, value_enum, default_value = "sqlite")]
    pub backend: Backend,
    /// PostgreSQL server to use (required with --backend postgres); the user must be allowed to
    /// CREATE DATABASE.
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// Printers in the fleet.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..=2_000_000))]
    pub printers: u64,
    /// Printers of the model with a group of its own (the small group's figures).
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..=2_000_000))]
    pub group_printers: u64,
    /// Duration of each latency phase, in seconds (the per-core loops take a third of it each).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub seconds: u64,
    /// Give up when the fleet is not assessed after this many seconds.
    #[arg(long, default_value_t = 1800, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub timeout_s: u64,
}

pub async fn run(args: PoliciesArgs) -> anyhow::Result<()> {
    let r = on_temp_database(args.backend, args.database_url.as_deref(), async |db| {
        measure(&args, db).await
    })
    .await?;
    report::print(&args, &r);
    Ok(())
}

/// Everything a run measured.
pub struct Results {
    pub rates: rate::Rates,
    pub setup: fleet::Setup,
    pub first_sweep: Duration,
    pub baseline: (Duration, usize, u64),
    pub put: Duration,
    pub change: Duration,
    pub me: Phase,
    pub tenant_figures: Phase,
    pub small_figures: Phase,
    pub all_figures: Phase,
    pub verified: change::Verified,
    pub rss: Option<super::heartbeats::sys::Rss>,
    pub rss_before: Option<super::heartbeats::sys::Rss>,
}

async fn measure(args: &PoliciesArgs, db: &TempDatabase) -> anyhow::Result<Results> {
    let plan = std::sync::Arc::new(fleet::Plan::new()?);
    let per_loop = Duration::from_secs(args.seconds)
        .div_f64(3.0)
        .max(Duration::from_secs(1));
    let p = plan.clone();
    let now = SystemClock.now_ms();
    let rates = tokio::task::spawn_blocking(move || rate::measure(&p, per_loop, now)).await??;
    let printers = usize::try_from(args.printers)?;
    let small = usize::try_from(args.group_printers)?.min(printers);
    let rss_before = super::heartbeats::sys::rss();
    let (bench, (setup, started)) = Bench::start_prepared(db, 8, async |store, tenant| {
        let setup = fleet::set_up(store, tenant, &plan, printers, small).await?;
        if args.backend == Backend::Postgres {
            // PostgreSQL plans from table statistics; after a bulk load autovacuum gathers
            // them within a minute, but not on servers that run with it off. Without them
            // a look-up of 100 printers by id scans the tenant's whole index.
            sqlx::query("ANALYZE").execute(store.raw_pool()).await?;
        }
        Ok((setup, Instant::now()))
    })
    .await?;
    let outcome = phases(args, &bench, &plan, setup, started, rates, rss_before).await;
    bench.stop().await;
    outcome
}

#[allow(clippy::too_many_arguments)]
async fn phases(
    args: &PoliciesArgs,
    bench: &Bench,
    plan: &fleet::Plan,
    setup: fleet::Setup,
    started: Instant,
    rates: rate::Rates,
    rss_before: Option<super::heartbeats::sys::Rss>,
) -> anyhow::Result<Results> {
    let n = usize::try_from(args.printers)?;
    let timeout = Duration::from_secs(args.timeout_s);
    let first_sweep = change::until_all(
        bench,
        setup.policy,
        "non_compliant",
        n,
        started,
        timeout,
        "first assessment",
    )
    .await?;
    if args.backend == Backend::Postgres {
        // The first assessment filled device_compliance after the ANALYZE of the set-up:
        // autovacuum would have analysed it again by now (it does after 10 % of a table
        // changed); without that the planner still sees an empty table and scans it for each
        // look-up of 100 printers, which grows with the fleet.
        sqlx::query("ANALYZE")
            .execute(bench.store().raw_pool())
            .await?;
    }
    let baseline = change::baseline(bench).await?;
    let t = Instant::now();
    let put = change::put_fixed_policy(bench, plan, setup.policy).await?;
    let change = change::until_all(
        bench,
        setup.policy,
        "compliant",
        n,
        t,
        timeout,
        "after the policy change",
    )
    .await?;
    let rss = super::heartbeats::sys::rss();
    let lp = LoadPlan {
        duration: Duration::from_secs(args.seconds),
        concurrency: 1,
    };
    let t = bench.tenant();
    let (_, base, _) = bench.client();
    let me = load::run_phase(
        "GET /api/v1/me",
        lp,
        bench.get_op(format!("{base}/api/v1/me")),
    )
    .await?;
    let url = |path: String| format!("{base}/api/v1/tenants/{t}{path}");
    let tenant_figures = load::run_phase(
        "GET compliance (tenant)",
        lp,
        bench.get_op(url("/compliance".into())),
    )
    .await?;
    let small_figures = load::run_phase(
        "GET compliance (group)",
        lp,
        bench.get_op(url(format!("/groups/{}/compliance", setup.small))),
    )
    .await?;
    let all_figures = load::run_phase(
        "GET compliance (all group)",
        lp,
        bench.get_op(url(format!("/groups/{}/compliance", setup.all))),
    )
    .await?;
    let verified = change::verify(bench, setup.small).await?;
    Ok(Results {
        rates,
        setup,
        first_sweep,
        baseline,
        put,
        change,
        me,
        tenant_figures,
        small_figures,
        all_figures,
        verified,
        rss,
        rss_before,
    })
}
