//! The doorbell's memory of heartbeat keys and replay windows, so that an accepted datagram
//! costs no database read: key id → printer, derived keys, and the key's replay window.
//!
//! - **Filled on a miss**: the receive loop parks the datagram and a resolver task looks the key
//!   and its persisted window up in the backend (batched), then the loop installs the entry.
//! - **The window in memory is the authority** while the entry exists. Every accepted counter is
//!   still persisted (group commit, [`crate::server`]) before it is answered, so a restart
//!   reloads a window that covers everything ever answered.
//! - **Evicted when idle** ([`crate::DoorbellConfig::evict_after`]), but never while a window
//!   update of the key is not committed yet: the database then holds the latest window, so the
//!   reload cannot accept a counter twice.
//! - **Forgotten at once** on removal, revocation or re-enrolment ([`crate::Doorbell::forget_printer`],
//!   [`crate::Doorbell::forget_key`]): the entry goes, its [`KeyMaterial`] is retired so that
//!   answers still in the pipeline for it are not sent, and the epoch moves so that a look-up
//!   that started before the change cannot install the old key afterwards.
//! - **Unknown key ids** are remembered for [`UNKNOWN_TTL_MS`] (at most [`MAX_UNKNOWN`] of them),
//!   so a printer that keeps sending with a revoked key, or a replayed datagram of one, costs no
//!   database look-up each time. Random spoofed key ids are bounded elsewhere: the loop keeps at
//!   most a fixed number of look-ups waiting and drops the rest as `busy`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use printfleet_domain::DeviceId;
use printfleet_protocol::heartbeat::{self, HeartbeatError, HeartbeatKeyId, ReplayWindow};

use crate::backend::PrinterKeys;
use crate::counters::DropReason;
use crate::pipeline::Accepted;

/// How long a key id found unknown is answered from memory.
pub const UNKNOWN_TTL_MS: i64 = 10_000;
/// At most this many unknown key ids are remembered (a flood of random ids cannot grow it).
pub const MAX_UNKNOWN: usize = 65_536;

/// A printer's heartbeat keys, shared by its cache entry and the answers in flight.
pub(crate) struct KeyMaterial {
    pub printer: DeviceId,
    pub keys: heartbeat::HeartbeatKeys,
    /// Cleared when the key is forgotten: answers still queued for it are then not sent.
    live: AtomicBool,
}

impl KeyMaterial {
    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::Acquire)
    }

    fn retire(&self) {
        self.live.store(false, Ordering::Release);
    }
}

/// One cached key.
pub(crate) struct KeyEntry {
    material: Arc<KeyMaterial>,
    window: ReplayWindow,
    last_used_ms: i64,
    /// Pipeline sequence number of the latest window update handed to the writer (0: none).
    last_queued: u64,
}

/// What the cache says about a datagram.
// Moved once per datagram and never stored: boxing the large variant would only add an
// allocation per datagram.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Accept {
    /// Authentic and new: the window moved; persist `Accepted` (and answer it when it carries a
    /// request; `request: None` is an authentic datagram of an unknown type).
    Accepted(Accepted),
    Dropped(DropReason),
    /// The key id is not in memory: look it up.
    Miss,
}

#[derive(Default)]
pub(crate) struct Inner {
    /// Boxed: a hash table keeps up to twice as many slots as entries, and an empty slot then
    /// costs 16 bytes instead of the entry's size.
    entries: HashMap<HeartbeatKeyId, Box<KeyEntry>>,
    by_printer: HashMap<DeviceId, HeartbeatKeyId>,
    unknown: HashMap<HeartbeatKeyId, i64>,
    epoch: u64,
}

/// The cache: one lock, taken briefly by the receive loop for each datagram.
#[derive(Default)]
pub(crate) struct Cache {
    inner: Mutex<Inner>,
}

/// Sizes of the per-printer state, in bytes (see [`crate::Doorbell::memory`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryStats {
    /// Printers whose keys and window are in memory.
    pub cached_keys: usize,
    /// Unknown key ids remembered.
    pub unknown_keys: usize,
    /// Printers with a presence entry (heard from within the freshness bound, until pruned).
    pub present_printers: usize,
    /// Bytes per cached key: its hash map slot (key id + pointer), the entry (window, times),
    /// the shared key material allocation, and the printer → key id index slot. Hash-table spare
    /// capacity (up to as many empty slots as entries) and allocator rounding come on top.
    pub key_entry_bytes: usize,
    /// Bytes per presence slot (printer id + entry).
    pub presence_entry_bytes: usize,
}

pub(crate) fn key_entry_bytes() -> usize {
    std::mem::size_of::<(HeartbeatKeyId, Box<KeyEntry>)>()
        + std::mem::size_of::<KeyEntry>()
        // Arc allocation: two counters and the material.
        + 2 * std::mem::size_of::<usize>()
        + std::mem::size_of::<KeyMaterial>()
        + std::mem::size_of::<(DeviceId, HeartbeatKeyId)>()
}

impl Cache {
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every update leaves the maps consistent (single inserts/removes), so go on after a
        // panic elsewhere.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn epoch(&self) -> u64 {
        self.lock().epoch
    }
}

impl Inner {
    /// Authenticates `datagram` (whose clear fields are `clear`) against the cached key and
    /// window; on success the window has recorded the counter and `seq` is remembered as the
    /// key's latest queued update.
    pub fn accept(
        &mut self,
        clear: heartbeat::Clear,
        datagram: &[u8],
        from: SocketAddr,
        now: i64,
        seq: u64,
    ) -> Accept {
        let Some(e) = self.entries.get_mut(&clear.key_id) else {
            return match self.unknown.get(&clear.key_id) {
                Some(&until) if now <= until => Accept::Dropped(DropReason::UnknownKey),
                _ => Accept::Miss,
            };
        };
        let request = match heartbeat::open_request(&e.material.keys, datagram, &mut e.window) {
            Ok(a) => Some(a),
            // Authentic: the counter stays recorded (protocol §3.5 step 6) and is persisted,
            // but nothing is answered.
            Err(HeartbeatError::UnknownType) => None,
            Err(err) => return Accept::Dropped(DropReason::of(err)),
        };
        e.last_used_ms = now;
        e.last_queued = seq;
        Accept::Accepted(Accepted {
            material: Arc::clone(&e.material),
            key_id: clear.key_id,
            window: e.window.to_bytes(),
            request,
            from,
            seq,
        })
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Installs a key found in the backend with its persisted window, unless the key is cached
    /// already (then the cached window is newer). A printer has one live heartbeat key: an older
    /// key of the same printer still cached is dead now, so it goes.
    pub fn install(&mut self, found: PrinterKeys, window: ReplayWindow, now: i64) {
        let key_id = found.keys.key_id();
        self.unknown.remove(&key_id);
        if self.entries.contains_key(&key_id) {
            return;
        }
        if let Some(old) = self.by_printer.insert(found.printer, key_id) {
            if old != key_id {
                self.remove_entry(old);
            }
        }
        self.entries.insert(
            key_id,
            Box::new(KeyEntry {
                material: Arc::new(KeyMaterial {
                    printer: found.printer,
                    keys: found.keys,
                    live: AtomicBool::new(true),
                }),
                window,
                last_used_ms: now,
                last_queued: 0,
            }),
        );
    }

    /// Remembers that `key_id` is unknown, if there is room.
    pub fn mark_unknown(&mut self, key_id: HeartbeatKeyId, now: i64) {
        if self.unknown.len() >= MAX_UNKNOWN {
            self.unknown.retain(|_, until| *until >= now);
        }
        if self.unknown.len() < MAX_UNKNOWN {
            self.unknown
                .insert(key_id, now.saturating_add(UNKNOWN_TTL_MS));
        }
    }

    fn remove_entry(&mut self, key_id: HeartbeatKeyId) -> Option<DeviceId> {
        let e = self.entries.remove(&key_id)?;
        e.material.retire();
        let printer = e.material.printer;
        if self.by_printer.get(&printer) == Some(&key_id) {
            self.by_printer.remove(&printer);
        }
        Some(printer)
    }

    /// Forgets a key (and that it was unknown); returns its printer if it was cached.
    pub fn forget_key(&mut self, key_id: HeartbeatKeyId) -> Option<DeviceId> {
        self.epoch += 1;
        self.unknown.remove(&key_id);
        self.remove_entry(key_id)
    }

    /// Forgets the printer's cached key.
    pub fn forget_printer(&mut self, printer: DeviceId) {
        self.epoch += 1;
        if let Some(key_id) = self.by_printer.get(&printer).copied() {
            self.remove_entry(key_id);
        }
    }

    /// Evicts keys idle for more than `idle_ms` whose updates are all committed (`committed`:
    /// the highest pipeline sequence number whose batch is finished), and expired unknown ids.
    /// Returns how many keys went.
    pub fn evict(&mut self, now: i64, idle_ms: i64, committed: u64) -> usize {
        let before = self.entries.len();
        let by_printer = &mut self.by_printer;
        self.entries.retain(|key_id, e| {
            let keep = now.saturating_sub(e.last_used_ms) <= idle_ms || e.last_queued > committed;
            if !keep && by_printer.get(&e.material.printer) == Some(key_id) {
                by_printer.remove(&e.material.printer);
            }
            keep
        });
        self.unknown.retain(|_, until| *until >= now);
        if self.entries.capacity() > 2 * self.entries.len() + 1024 {
            self.entries.shrink_to_fit();
            self.by_printer.shrink_to_fit();
        }
        before - self.entries.len()
    }

    pub fn stats(&self) -> (usize, usize) {
        (self.entries.len(), self.unknown.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use printfleet_protocol::heartbeat::{
        derive_heartbeat_key, seal_request, Request, RequestType,
    };

    fn keys(n: u8) -> PrinterKeys {
        PrinterKeys {
            printer: DeviceId::new_random(),
            keys: derive_heartbeat_key(&[n; 32], &[n; 16]).keys(),
        }
    }

    fn datagram(k: &PrinterKeys, counter: u64) -> (heartbeat::Clear, Vec<u8>) {
        let d = seal_request(
            &k.keys,
            counter,
            Request {
                kind: RequestType::Heartbeat,
                flags: 0,
            },
        )
        .unwrap();
        (heartbeat::peek(&d).unwrap(), d)
    }

    fn from() -> SocketAddr {
        "192.0.2.1:4000".parse().unwrap()
    }

    #[test]
    fn per_printer_state_is_measured() {
        let bytes = key_entry_bytes();
        println!(
            "key cache: slot {} + entry {} + key material {} + index {} = {bytes} bytes per printer",
            std::mem::size_of::<(HeartbeatKeyId, Box<KeyEntry>)>(),
            std::mem::size_of::<KeyEntry>(),
            std::mem::size_of::<KeyMaterial>(),
            std::mem::size_of::<(DeviceId, HeartbeatKeyId)>()
        );
        assert!(bytes <= 400, "per-printer key state grew to {bytes} bytes");
    }

    #[test]
    fn accepts_once_misses_unknowns_and_forgets() {
        let mut c = Inner::default();
        let k = keys(1);
        let (clear, d) = datagram(&k, 1);
        assert!(matches!(c.accept(clear, &d, from(), 0, 1), Accept::Miss));
        c.install(k.clone(), ReplayWindow::new(), 0);
        let Accept::Accepted(a) = c.accept(clear, &d, from(), 0, 1) else {
            panic!("not accepted")
        };
        assert_eq!(a.request.unwrap().counter(), 1);
        assert_eq!(ReplayWindow::from_bytes(&a.window).unwrap().highest(), 1);
        assert!(matches!(
            c.accept(clear, &d, from(), 0, 2),
            Accept::Dropped(DropReason::Replayed)
        ));

        // Unknown ids are remembered for a while.
        let stranger = keys(2);
        let (sc, sd) = datagram(&stranger, 1);
        c.mark_unknown(sc.key_id, 0);
        assert!(matches!(
            c.accept(sc, &sd, from(), UNKNOWN_TTL_MS, 3),
            Accept::Dropped(DropReason::UnknownKey)
        ));
        assert!(matches!(
            c.accept(sc, &sd, from(), UNKNOWN_TTL_MS + 1, 3),
            Accept::Miss
        ));

        // Forgetting retires the material (answers in flight are not sent) and moves the epoch.
        let epoch = c.epoch();
        c.forget_printer(k.printer);
        assert!(!a.material.is_live());
        assert!(c.epoch() > epoch);
        let (clear2, d2) = datagram(&k, 2);
        assert!(matches!(c.accept(clear2, &d2, from(), 0, 4), Accept::Miss));
    }

    #[test]
    fn a_new_key_of_the_printer_replaces_the_old_one() {
        let mut c = Inner::default();
        let old = keys(1);
        let new = PrinterKeys {
            printer: old.printer,
            keys: derive_heartbeat_key(&[9; 32], &[9; 16]).keys(),
        };
        c.install(old.clone(), ReplayWindow::new(), 0);
        c.install(new.clone(), ReplayWindow::new(), 0);
        assert_eq!(c.stats().0, 1);
        let (clear, d) = datagram(&old, 1);
        assert!(matches!(c.accept(clear, &d, from(), 0, 1), Accept::Miss));
        c.forget_printer(new.printer);
        assert_eq!(c.stats().0, 0);
    }

    #[test]
    fn eviction_waits_for_idleness_and_for_the_commit() {
        let mut c = Inner::default();
        let k = keys(1);
        c.install(k.clone(), ReplayWindow::new(), 0);
        let (clear, d) = datagram(&k, 1);
        assert!(matches!(
            c.accept(clear, &d, from(), 1_000, 7),
            Accept::Accepted(_)
        ));
        // Idle long enough, but update 7 is not committed: kept.
        assert_eq!(c.evict(200_000, 120_000, 6), 0);
        // Committed but not idle long enough: kept.
        assert_eq!(c.evict(121_000, 120_000, 7), 0);
        assert_eq!(c.evict(121_001, 120_000, 7), 1);
        assert!(c.by_printer.is_empty());
    }
}
