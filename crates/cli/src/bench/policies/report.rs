//! The printed results of `bench policies`.

use super::{PoliciesArgs, Results};
use crate::bench::heartbeats::sys::mib;
use crate::bench::load::Phase;
use std::time::Duration;

/// The targets.
const CHANGE_TARGET: Duration = Duration::from_secs(60);
const FIGURES_TARGET_MS: f64 = 200.0;

fn met(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "NOT met"
    }
}

fn per_s(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}

pub fn print(args: &PoliciesArgs, r: &Results) {
    let n = usize::try_from(args.printers).unwrap_or(usize::MAX);
    let cores = std::thread::available_parallelism().map_or(0, |c| c.get());
    println!();
    println!(
        "printfleet bench policies: backend {}, {} printers ({} in the small group), {}-item policy, {} CPUs, {} build",
        args.backend.name(),
        n,
        args.group_printers.min(args.printers),
        r.rates.items,
        cores,
        if cfg!(debug_assertions) { "debug" } else { "release" },
    );

    println!();
    println!(
        "1. one report against the {}-item policy, one thread (state JSON {} bytes):",
        r.rates.items, r.rates.state_bytes
    );
    let a = &r.rates.assess;
    println!(
        "   {:<32} {:>10.0} reports/s {:>11.0} items/s {:>8.1} µs per report",
        a.name,
        a.per_s,
        a.per_s * r.rates.items as f64,
        1e6 / a.per_s
    );
    for b in &r.rates.baselines {
        println!(
            "   {:<32} {:>10.0} per s     ({:.2} × assess) {:>8.1} µs each",
            b.name,
            b.per_s,
            b.per_s / a.per_s,
            1e6 / b.per_s
        );
    }

    println!();
    let s = &r.setup;
    println!(
        "set-up: {n} printers provisioned in {:.1} s; their states ({} bytes each) written in {:.1} s",
        s.provision_took.as_secs_f64(),
        s.state_bytes,
        s.states_took.as_secs_f64()
    );
    println!(
        "first assessment (server start → all {n} non-compliant under version 1): {:.1} s = {:.0} printers/s",
        r.first_sweep.as_secs_f64(),
        per_s(n, r.first_sweep)
    );
    let (bt, rows, bytes) = r.baseline;
    println!(
        "baseline: {rows} state rows read ({:.0} MiB) and {rows} assessment-sized rows written in transactions of 250: {:.1} s = {:.0} rows/s",
        mib(bytes),
        bt.as_secs_f64(),
        per_s(rows, bt)
    );
    println!(
        "2. policy change (PUT answered in {:.0} ms → all {n} assessed and compliant): {:.1} s = {:.0} printers/s = {:.2} × the baseline's time; target ≤ {} s: {}",
        r.put.as_secs_f64() * 1000.0,
        r.change.as_secs_f64(),
        per_s(n, r.change),
        r.change.as_secs_f64() / bt.as_secs_f64().max(1e-9),
        CHANGE_TARGET.as_secs(),
        met(r.change <= CHANGE_TARGET)
    );
    println!("   (the change sets values the printers already report: no printer has to act)");

    println!();
    println!(
        "3. fleet figures, one client, {} s each: {:>6} {:>6} {:>9} {:>9} {:>9}",
        args.seconds, "ok", "errors", "p50 ms", "p99 ms", "max ms"
    );
    row("GET /api/v1/me (baseline)", &r.me, false);
    row(
        "GET …/compliance (tenant, kept counts)",
        &r.tenant_figures,
        true,
    );
    row(
        &format!(
            "GET …/groups/{{model}}/compliance ({} printers, kept counts)",
            args.group_printers.min(args.printers)
        ),
        &r.small_figures,
        true,
    );
    row(
        &format!("GET …/groups/{{all}}/compliance ({n} printers, kept counts)"),
        &r.all_figures,
        true,
    );
    for (name, p) in [
        ("me", &r.me),
        ("tenant figures", &r.tenant_figures),
        ("group figures", &r.small_figures),
        ("all-group figures", &r.all_figures),
    ] {
        if let Some(e) = &p.first_error {
            println!("   {name}: {} failed; first error: {e}", p.errors);
        }
    }

    println!();
    if let (Some(before), Some(after)) = (&r.rss_before, &r.rss) {
        println!(
            "memory (server, database client and benchmark in one process): RSS {:.0} MiB before set-up, {:.0} MiB after the change, peak {:.0} MiB; the assessor holds one batch (250 printers) at a time",
            mib(before.now),
            mib(after.now),
            mib(after.peak)
        );
    }
    let v = &r.verified;
    let all_ok = usize::try_from(v.current_and_compliant).ok() == Some(n)
        && usize::try_from(v.printers).ok() == Some(n)
        && usize::try_from(v.api_compliant).ok() == Some(n);
    println!(
        "verified: {} live printers, {} assessed under the current policy epoch and compliant; GET …/compliance: {} compliant; small group: {} compliant; {} history rows: {}",
        v.printers,
        v.current_and_compliant,
        v.api_compliant,
        v.api_group_compliant,
        v.history_rows,
        if all_ok { "all compliant" } else { "NOT all compliant" }
    );
}

/// One latency row; `judged` rows say whether the target is met.
fn row(name: &str, p: &Phase, judged: bool) {
    let verdict = if judged {
        format!(
            "target p99 ≤ {FIGURES_TARGET_MS:.0} ms: {}",
            met(p.quantile_ms(0.99) <= FIGURES_TARGET_MS)
        )
    } else {
        String::new()
    };
    println!(
        "   {:<58} {:>6} {:>6} {:>9.2} {:>9.2} {:>9.2}  {}",
        name,
        p.ok,
        p.errors,
        p.quantile_ms(0.50),
        p.quantile_ms(0.99),
        p.max_ms(),
        verdict
    );
}
