//! The results table and the one-line summary.

use super::load::Phase;
use super::{ApiArgs, Backend};

pub struct Results {
    pub backend: Backend,
    pub pool_size: u32,
    pub raw: Phase,
    /// The same inserts, one transaction at a time (as the store's write lock does).
    pub raw_serial: Phase,
    pub writes: Phase,
    pub health: Phase,
    pub reads: Phase,
}

impl Results {
    /// API writes per second divided by raw inserts per second.
    pub fn write_ratio(&self) -> f64 {
        self.writes.rate() / self.raw.rate()
    }
}

pub fn print(args: &ApiArgs, r: &Results) {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!();
    println!(
        "printfleet bench api: backend {}, {} clients, {} s per phase, pool {} connections, {} CPUs, {} build",
        r.backend.name(),
        args.concurrency,
        args.seconds,
        r.pool_size,
        cores,
        if cfg!(debug_assertions) { "debug" } else { "release" },
    );
    println!();
    println!(
        "{:<44} {:>9} {:>7} {:>10} {:>8} {:>8} {:>8}",
        "phase", "ok", "errors", "per s", "p50 ms", "p99 ms", "max ms"
    );
    row("raw insert, 1 row/transaction (sqlx)", &r.raw);
    row("raw insert, same, one writer at a time", &r.raw_serial);
    row("API write: POST groups, 201 (row + audit)", &r.writes);
    row("API read: GET group (session + DB)", &r.reads);
    row("GET /healthz (no auth, no DB)", &r.health);
    println!();
    println!(
        "audited API writes / raw inserts: {:.0} / {:.0} = {:.2}",
        r.writes.rate(),
        r.raw.rate(),
        r.write_ratio()
    );
    println!(
        "audited API writes / serialized raw inserts: {:.0} / {:.0} = {:.2}",
        r.writes.rate(),
        r.raw_serial.rate(),
        r.writes.rate() / r.raw_serial.rate()
    );
    for (name, p) in [
        ("raw inserts", &r.raw),
        ("serialized raw inserts", &r.raw_serial),
        ("API writes", &r.writes),
        ("API reads", &r.reads),
        ("healthz", &r.health),
    ] {
        if let Some(e) = &p.first_error {
            println!("{name}: {} failed; first error: {e}", p.errors);
        }
    }
    println!();
    println!("{}", summary(r));
}

fn row(name: &str, p: &Phase) {
    println!(
        "{:<44} {:>9} {:>7} {:>10.0} {:>8.2} {:>8.2} {:>8.2}",
        name,
        p.ok,
        p.errors,
        p.rate(),
        p.quantile_ms(0.50),
        p.quantile_ms(0.99),
        p.max_ms()
    );
}

fn summary(r: &Results) -> String {
    format!(
        "summary: {}: {:.0} audited writes/s = {:.2} x raw {:.0} inserts/s; authenticated reads {:.0}/s p50 {:.2} ms p99 {:.2} ms (healthz p50 {:.2} ms p99 {:.2} ms)",
        r.backend.name(),
        r.writes.rate(),
        r.write_ratio(),
        r.raw.rate(),
        r.reads.rate(),
        r.reads.quantile_ms(0.50),
        r.reads.quantile_ms(0.99),
        r.health.quantile_ms(0.50),
        r.health.quantile_ms(0.99),
    )
}
