//! What the kernel says: this process's memory (`/proc/self/status`) and the system-wide UDP
//! counters (`/proc/net/snmp`). Linux only; elsewhere the figures are absent.

/// Resident set size now and at its peak, in bytes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Rss {
    pub now: u64,
    pub peak: u64,
}

pub fn rss() -> Option<Rss> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kib: u64 = line
            .trim_start_matches(name)
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kib * 1024)
    };
    Some(Rss {
        now: field("VmRSS:")?,
        peak: field("VmHWM:")?,
    })
}

/// The kernel's UDP error counters (all sockets of the machine, not only this process).
#[derive(Clone, Copy, Debug, Default)]
pub struct UdpCounters {
    pub in_datagrams: u64,
    pub in_errors: u64,
    pub rcvbuf_errors: u64,
}

pub fn udp() -> Option<UdpCounters> {
    let snmp = std::fs::read_to_string("/proc/net/snmp").ok()?;
    let mut lines = snmp.lines().filter(|l| l.starts_with("Udp:"));
    let names: Vec<&str> = lines.next()?.split_whitespace().collect();
    let values: Vec<&str> = lines.next()?.split_whitespace().collect();
    let get = |name: &str| -> Option<u64> {
        let i = names.iter().position(|n| *n == name)?;
        values.get(i)?.parse().ok()
    };
    Some(UdpCounters {
        in_datagrams: get("InDatagrams")?,
        in_errors: get("InErrors")?,
        rcvbuf_errors: get("RcvbufErrors")?,
    })
}

impl UdpCounters {
    pub fn since(&self, before: &UdpCounters) -> UdpCounters {
        UdpCounters {
            in_datagrams: self.in_datagrams.saturating_sub(before.in_datagrams),
            in_errors: self.in_errors.saturating_sub(before.in_errors),
            rcvbuf_errors: self.rcvbuf_errors.saturating_sub(before.rcvbuf_errors),
        }
    }
}

pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Latencies in microseconds, log-linear buckets (about 1.5 % wide above 128 µs), so a run of
/// millions of heartbeats needs a few kilobytes.
#[derive(Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

const LINEAR: u64 = 128;
const SUB_BITS: u32 = 6;

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: vec![0; Self::index(u64::MAX) + 1],
            total: 0,
            max: 0,
        }
    }
}

impl Histogram {
    fn index(us: u64) -> usize {
        if us < LINEAR {
            return us as usize;
        }
        let e = 63 - us.leading_zeros(); // ≥ 7
        let sub = (us >> (e - SUB_BITS)) & ((1 << SUB_BITS) - 1);
        (LINEAR + u64::from(e - 7) * (1 << SUB_BITS) + sub) as usize
    }

    /// The smallest value of bucket `i`.
    fn lower(i: usize) -> u64 {
        let i = i as u64;
        if i < LINEAR {
            return i;
        }
        let e = (i - LINEAR) / (1 << SUB_BITS) + 7;
        let sub = (i - LINEAR) % (1 << SUB_BITS);
        (1 << e) + (sub << (e - u64::from(SUB_BITS)))
    }

    pub fn record(&mut self, us: u64) {
        if let Some(c) = self.counts.get_mut(Self::index(us)) {
            *c += 1;
        }
        self.total += 1;
        self.max = self.max.max(us);
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    /// Nearest-rank quantile in milliseconds (the bucket's lower bound); NaN when empty.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.total == 0 {
            return f64::NAN;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Self::lower(i) as f64 / 1000.0;
            }
        }
        self.max as f64 / 1000.0
    }

    pub fn max_ms(&self) -> f64 {
        self.max as f64 / 1000.0
    }
}

/// CPU time this process has used (all threads, user + system), from `/proc/self/stat`
/// (clock ticks, assumed 100 per second as on every common Linux build).
pub fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may contain spaces) start at state (field 3).
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn buckets_are_ordered_and_tight() {
        let mut last = 0;
        for us in [0u64, 1, 127, 128, 129, 1000, 5_000, 1_000_000, u64::MAX / 2] {
            let i = Histogram::index(us);
            assert!(i >= last);
            last = i;
            let lo = Histogram::lower(i);
            assert!(lo <= us && us - lo <= us / 60 + 1, "{us} -> {lo}");
        }
        let mut h = Histogram::default();
        for us in 1..=1000 {
            h.record(us);
        }
        assert!((h.quantile_ms(0.5) - 0.5).abs() < 0.01);
        assert!((h.quantile_ms(0.99) - 0.99).abs() < 0.02);
        assert_eq!(h.max_ms(), 1.0);
    }

    #[test]
    fn proc_files_parse_here() {
        if cfg!(target_os = "linux") {
            let r = rss().unwrap();
            assert!(r.now > 0 && r.peak >= r.now);
            udp().unwrap();
        }
    }
}
