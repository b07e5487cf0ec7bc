//! Growing delays after failed sign-ins, per account and per source address. While a key is
//! delayed, sign-in answers 429 without checking the password. Unknown accounts are throttled
//! exactly like known ones, so the answers reveal nothing. Kept in memory: a restart forgets
//! delays (a multi-node deployment would move this to a shared store).

use printfleet_domain::clock::Clock;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Clone, Copy, Debug)]
pub struct ThrottlePolicy {
    pub threshold: u32,
    pub base_ms: i64,
    pub max_ms: i64,
}

#[derive(Default, Clone, Copy, Debug)]
struct Entry {
    failures: u32,
    blocked_until: i64,
}

pub struct Throttle {
    clock: Arc<dyn Clock>,
    entries: Mutex<HashMap<String, Entry>>,
}

impl Throttle {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Milliseconds until `key` may try again (0 when it may now).
    pub fn wait_ms(&self, key: &str) -> i64 {
        let now = self.clock.now_ms();
        self.entries
            .lock()
            .ok()
            .and_then(|m| m.get(key).copied())
            .map(|e| (e.blocked_until - now).max(0))
            .unwrap_or(0)
    }

    /// Records a failure; returns true when this failure started (or extended) a delay.
    pub fn fail(&self, key: &str, p: ThrottlePolicy) -> bool {
        let now = self.clock.now_ms();
        let Ok(mut m) = self.entries.lock() else {
            return false;
        };
        // Bound memory under a flood of distinct keys: drop entries that no longer delay anyone.
        if m.len() > 100_000 {
            m.retain(|_, e| e.blocked_until > now);
        }
        let e = m.entry(key.to_string()).or_default();
        e.failures = e.failures.saturating_add(1);
        if e.failures >= p.threshold {
            let exp = (e.failures - p.threshold).min(30);
            let delay = p.base_ms.saturating_mul(1_i64 << exp).min(p.max_ms);
            e.blocked_until = now + delay;
            true
        } else {
            false
        }
    }

    pub fn succeed(&self, key: &str) {
        if let Ok(mut m) = self.entries.lock() {
            m.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use printfleet_domain::clock::ManualClock;

    #[test]
    fn delays_grow_and_reset() {
        let clock = ManualClock::new(1_000_000);
        let t = Throttle::new(Arc::new(clock.clone()));
        let p = ThrottlePolicy {
            threshold: 3,
            base_ms: 1000,
            max_ms: 5000,
        };
        assert!(!t.fail("a", p));
        assert!(!t.fail("a", p));
        assert_eq!(t.wait_ms("a"), 0);
        assert!(t.fail("a", p));
        assert_eq!(t.wait_ms("a"), 1000);
        clock.advance_ms(1000);
        assert_eq!(t.wait_ms("a"), 0);
        t.fail("a", p);
        assert_eq!(t.wait_ms("a"), 2000);
        t.fail("a", p);
        t.fail("a", p);
        assert_eq!(t.wait_ms("a"), 5000, "capped");
        assert_eq!(t.wait_ms("b"), 0, "other keys unaffected");
        t.succeed("a");
        assert_eq!(t.wait_ms("a"), 0);
    }
}
