//! Remembering the message ids of opened sealed bodies, in bounded memory.
//!
//! A body is only accepted while its timestamp is within the freshness window, so its id only
//! has to be remembered until `timestamp + max_skew` (its *expiry*). The cache keeps a *floor*:
//! every message whose expiry is at or below the floor is refused, because the cache may have
//! forgotten it. Forgetting (expiry passed, or eviction when full) only ever raises the floor, so
//! a replay is never accepted — not after eviction and not when the clock steps back; under a
//! flood larger than the capacity, the oldest fresh messages are refused instead (fail closed).

use std::collections::{BTreeSet, HashMap};

use crate::header::MessageId;

/// Decides whether a message id is new. Implemented in memory by [`ReplayCache`]; a multi-node
/// server can implement it over shared storage.
pub trait ReplayGuard {
    /// Returns `true` and records `id` if the message may be accepted, `false` if it was seen
    /// before or the guard cannot prove it was not. `expires_at_ms` is when the message stops
    /// being fresh; `now_ms` is the current time.
    fn check_and_record(&mut self, id: &MessageId, expires_at_ms: u64, now_ms: u64) -> bool;
}

/// Default capacity: about 6 MB of ids at most.
pub const DEFAULT_REPLAY_CAPACITY: usize = 65_536;

/// In-memory [`ReplayGuard`] with at most `capacity` remembered ids.
#[derive(Debug, Clone)]
pub struct ReplayCache {
    capacity: usize,
    by_id: HashMap<MessageId, u64>,
    by_expiry: BTreeSet<(u64, MessageId)>,
    floor_ms: u64,
}

impl Default for ReplayCache {
    fn default() -> Self {
        Self::new(DEFAULT_REPLAY_CAPACITY)
    }
}

impl ReplayCache {
    /// A cache remembering at most `capacity` ids (at least 1).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            by_id: HashMap::new(),
            by_expiry: BTreeSet::new(),
            floor_ms: 0,
        }
    }

    /// A cache that refuses every message expiring at or before `floor_ms`. After a restart
    /// without persisted state, use `now + 2 × max_skew` (see `docs/protocol.md` §2.6): nothing
    /// accepted before the restart can then be replayed.
    pub fn with_floor(capacity: usize, floor_ms: u64) -> Self {
        Self {
            floor_ms,
            ..Self::new(capacity)
        }
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Messages expiring at or before this time are refused.
    pub fn floor_ms(&self) -> u64 {
        self.floor_ms
    }

    fn forget_oldest(&mut self) {
        if let Some((expiry, id)) = self.by_expiry.pop_first() {
            self.by_id.remove(&id);
            self.floor_ms = self.floor_ms.max(expiry);
        }
    }

    fn prune(&mut self, now_ms: u64) {
        while let Some(&(expiry, _)) = self.by_expiry.first() {
            if expiry >= now_ms {
                break;
            }
            self.forget_oldest();
        }
    }
}

impl ReplayGuard for ReplayCache {
    fn check_and_record(&mut self, id: &MessageId, expires_at_ms: u64, now_ms: u64) -> bool {
        self.prune(now_ms);
        // Already expired (the caller should have refused it as stale), at or below the floor
        // (perhaps forgotten), or remembered: refused.
        if expires_at_ms < now_ms || expires_at_ms <= self.floor_ms || self.by_id.contains_key(id) {
            return false;
        }
        if self.by_id.len() >= self.capacity {
            // Full: a message older than everything kept is refused (nothing forgotten);
            // otherwise the oldest entry makes room and raises the floor.
            match self.by_expiry.first() {
                Some(&(oldest, _)) if expires_at_ms <= oldest => return false,
                _ => self.forget_oldest(),
            }
        }
        self.by_id.insert(*id, expires_at_ms);
        self.by_expiry.insert((expires_at_ms, *id));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> MessageId {
        MessageId([n; 16])
    }

    #[test]
    fn accepts_once() {
        let mut c = ReplayCache::new(10);
        assert!(c.check_and_record(&id(1), 100, 0));
        assert!(!c.check_and_record(&id(1), 100, 0));
        assert!(c.check_and_record(&id(2), 100, 0));
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn expired_entries_are_forgotten_but_raise_the_floor() {
        let mut c = ReplayCache::new(10);
        assert!(c.check_and_record(&id(1), 100, 0));
        assert!(c.check_and_record(&id(2), 200, 150));
        assert_eq!(c.len(), 1);
        assert_eq!(c.floor_ms(), 100);
        // Clock stepped back: the forgotten id is still refused.
        assert!(!c.check_and_record(&id(1), 100, 50));
    }

    #[test]
    fn floor_after_restart_refuses_everything_older() {
        let mut c = ReplayCache::with_floor(10, 1_000);
        assert!(!c.check_and_record(&id(1), 1_000, 500));
        assert!(c.check_and_record(&id(1), 1_001, 500));
    }

    #[test]
    fn full_cache_evicts_oldest_and_fails_closed() {
        let mut c = ReplayCache::new(2);
        assert!(c.check_and_record(&id(1), 100, 0));
        assert!(c.check_and_record(&id(2), 200, 0));
        assert!(c.check_and_record(&id(3), 300, 0));
        assert_eq!(c.len(), 2);
        // id 1 was evicted; its replay is refused by the floor.
        assert!(!c.check_and_record(&id(1), 100, 0));
        // A new message older than everything kept is refused too.
        assert!(!c.check_and_record(&id(4), 150, 0));
        assert_eq!(c.floor_ms(), 100);
        assert!(c.check_and_record(&id(5), 400, 0));
        assert_eq!(c.floor_ms(), 200);
        assert!(!c.check_and_record(&id(3), 300, 0));
        assert!(!c.check_and_record(&id(2), 200, 0));
    }
}
