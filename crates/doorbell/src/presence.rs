//! Where each printer was last heard from, and since when. Together with the key cache
//! ([`crate::cache`]) this is the per-printer state the doorbell keeps in memory, so it is kept
//! small and pruned once stale: memory follows the printers that are online, and only
//! authenticated, persisted datagrams create entries, so spoofed traffic cannot grow it.
//!
//! The address recorded is the exact source `SocketAddr` of the printer's latest authenticated
//! datagram, replaced (never added to) by each newer one: a ring can only go where the printer
//! has just been, which is what makes it safe to send unsolicited datagrams at all.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard, PoisonError};

use printfleet_domain::DeviceId;
use printfleet_protocol::heartbeat::{AcceptedRequest, HeartbeatKeyId};

/// Whether a printer is reachable, derived from its heartbeats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrinterStatus {
    /// Its latest authenticated datagram came from `addr` at `last_seen_ms` and is still fresh.
    Online { last_seen_ms: i64, addr: SocketAddr },
    /// Never heard from since this server started, or not within the freshness bound.
    Offline,
}

/// The per-printer entry (kept small: measured in a test).
#[derive(Debug)]
pub(crate) struct PrinterEntry {
    addr: SocketAddr,
    last_seen_ms: i64,
    /// To find the keys again when ringing (and so notice a revocation).
    key_id: HeartbeatKeyId,
    /// The latest datagram, accepted but not answered yet (a held keepalive): the only thing a
    /// ring may answer.
    held: Option<AcceptedRequest>,
}

/// Bytes per presence slot (printer id + entry), for [`crate::Doorbell::memory`].
pub(crate) fn entry_bytes() -> usize {
    std::mem::size_of::<(DeviceId, PrinterEntry)>()
}

/// Why a ring could not be sent right now (see [`crate::Doorbell::try_ring`]).
#[derive(Debug)]
pub(crate) enum NoTarget {
    Offline,
    NothingHeld,
}

/// Everything a ring needs, taken out of the table so the request is answered at most once.
#[derive(Debug)]
pub(crate) struct RingTarget {
    pub addr: SocketAddr,
    pub key_id: HeartbeatKeyId,
    pub held: AcceptedRequest,
}

#[derive(Debug)]
pub(crate) struct Presence {
    fresh_for_ms: i64,
    entries: Mutex<HashMap<DeviceId, PrinterEntry>>,
}

/// A clock stepping back makes an age negative; that still counts as fresh (age 0).
fn is_fresh(last_seen_ms: i64, now_ms: i64, fresh_for_ms: i64) -> bool {
    now_ms.saturating_sub(last_seen_ms) <= fresh_for_ms
}

impl Presence {
    pub fn new(fresh_for_ms: i64) -> Self {
        Self {
            fresh_for_ms,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Entries are replaced or removed whole, so a poisoned lock leaves a consistent map.
    fn lock(&self) -> MutexGuard<'_, HashMap<DeviceId, PrinterEntry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records an authenticated datagram from `addr`. Any request held from an earlier
    /// datagram is dropped: the printer now waits for the answer to its newer counter.
    pub fn record(&self, printer: DeviceId, addr: SocketAddr, key_id: HeartbeatKeyId, now: i64) {
        self.lock().insert(
            printer,
            PrinterEntry {
                addr,
                last_seen_ms: now,
                key_id,
                held: None,
            },
        );
    }

    /// Holds the just-recorded request for a later ring.
    pub fn hold(&self, printer: DeviceId, request: AcceptedRequest) {
        if let Some(e) = self.lock().get_mut(&printer) {
            e.held = Some(request);
        }
    }

    /// Takes the held request back with the address it came from (to answer it now), unless a
    /// ring already took it.
    pub fn take_held(&self, printer: DeviceId) -> Option<(AcceptedRequest, SocketAddr)> {
        self.lock()
            .get_mut(&printer)
            .and_then(|e| e.held.take().map(|h| (h, e.addr)))
    }

    /// Forgets the printer (removed, revoked, re-enrolled): offline, nothing to ring.
    pub fn forget(&self, printer: DeviceId) {
        self.lock().remove(&printer);
    }

    /// Takes what a ring needs, if the printer is fresh and a request is held.
    pub fn take_for_ring(&self, printer: DeviceId, now: i64) -> Result<RingTarget, NoTarget> {
        let mut map = self.lock();
        let Some(e) = map.get_mut(&printer) else {
            return Err(NoTarget::Offline);
        };
        if !is_fresh(e.last_seen_ms, now, self.fresh_for_ms) {
            return Err(NoTarget::Offline);
        }
        let held = e.held.take().ok_or(NoTarget::NothingHeld)?;
        Ok(RingTarget {
            addr: e.addr,
            key_id: e.key_id,
            held,
        })
    }

    pub fn status(&self, printer: DeviceId, now: i64) -> PrinterStatus {
        match self.lock().get(&printer) {
            Some(e) if is_fresh(e.last_seen_ms, now, self.fresh_for_ms) => PrinterStatus::Online {
                last_seen_ms: e.last_seen_ms,
                addr: e.addr,
            },
            _ => PrinterStatus::Offline,
        }
    }

    /// Forgets printers that are no longer fresh (their status is `Offline` either way).
    pub fn prune(&self, now: i64) {
        let fresh_for = self.fresh_for_ms;
        self.lock()
            .retain(|_, e| is_fresh(e.last_seen_ms, now, fresh_for));
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use printfleet_protocol::heartbeat::{
        derive_heartbeat_key, open_request, seal_request, ReplayWindow, Request, RequestType,
    };

    fn accepted(counter: u64) -> AcceptedRequest {
        let keys = derive_heartbeat_key(&[3; 32], &[1; 16]).keys();
        let req = Request {
            kind: RequestType::Keepalive,
            flags: 0,
        };
        let d = seal_request(&keys, counter, req).unwrap();
        open_request(&keys, &d, &mut ReplayWindow::new()).unwrap()
    }

    #[test]
    fn per_printer_entry_is_small() {
        let entry = std::mem::size_of::<PrinterEntry>();
        let slot = std::mem::size_of::<(DeviceId, PrinterEntry)>();
        println!("per-printer entry: {entry} bytes; map slot (id + entry): {slot} bytes");
        assert!(slot <= 96, "per-printer state grew to {slot} bytes");
    }

    #[test]
    fn freshness_bound_is_inclusive_and_tolerates_clock_steps_back() {
        assert!(is_fresh(1000, 61_000, 60_000));
        assert!(!is_fresh(1000, 61_001, 60_000));
        assert!(is_fresh(1000, 0, 60_000));
        assert!(!is_fresh(i64::MIN, i64::MAX, 60_000));
    }

    #[test]
    fn status_ring_and_prune_follow_the_latest_datagram() {
        let p = Presence::new(60_000);
        let printer = DeviceId::new_random();
        let a: SocketAddr = "192.0.2.1:4000".parse().unwrap();
        let b: SocketAddr = "192.0.2.1:4001".parse().unwrap();
        let key = HeartbeatKeyId([1; 8]);
        assert_eq!(p.status(printer, 0), PrinterStatus::Offline);
        assert!(matches!(
            p.take_for_ring(printer, 0),
            Err(NoTarget::Offline)
        ));

        p.record(printer, a, key, 1_000);
        assert_eq!(
            p.status(printer, 1_000),
            PrinterStatus::Online {
                last_seen_ms: 1_000,
                addr: a
            }
        );
        // Fresh but nothing held (a heartbeat that was answered at once).
        assert!(matches!(
            p.take_for_ring(printer, 1_000),
            Err(NoTarget::NothingHeld)
        ));

        p.hold(printer, accepted(5));
        // A newer datagram from another port replaces address and held request.
        p.record(printer, b, key, 2_000);
        assert!(matches!(
            p.take_for_ring(printer, 2_000),
            Err(NoTarget::NothingHeld)
        ));
        p.hold(printer, accepted(6));
        let t = p.take_for_ring(printer, 62_000).unwrap();
        assert_eq!((t.addr, t.key_id, t.held.counter()), (b, key, 6));
        // Taken once: a second ring has nothing to answer.
        assert!(matches!(
            p.take_for_ring(printer, 62_000),
            Err(NoTarget::NothingHeld)
        ));

        p.hold(printer, accepted(7));
        assert!(matches!(
            p.take_for_ring(printer, 62_001),
            Err(NoTarget::Offline)
        ));
        assert_eq!(p.status(printer, 62_001), PrinterStatus::Offline);
        p.prune(62_000);
        assert_eq!(p.len(), 1);
        p.prune(62_001);
        assert_eq!(p.len(), 0);
    }
}
