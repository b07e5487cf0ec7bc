//! In-memory backends, for tests and the demo. They forget everything when dropped, so
//! [`InMemoryReplayStore`] does not protect against replays across a restart (use
//! [`crate::FileReplayStore`] or the database for that).

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

use printfleet_domain::DeviceId;
use printfleet_protocol::heartbeat::{HeartbeatKey, HeartbeatKeyId};

use crate::backend::{BackendError, BoxFuture, HeartbeatKeys, PrinterKeys, ReplayStore, WorkQueue};

/// A poisoned lock only means another thread panicked while holding it; the maps stay
/// consistent (every update is a single insert or remove), so keep going.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Heartbeat keys by key id.
#[derive(Debug, Default)]
pub struct InMemoryKeys {
    by_id: Mutex<HashMap<HeartbeatKeyId, PrinterKeys>>,
}

impl InMemoryKeys {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `printer`'s heartbeat key; returns its key id.
    pub fn insert(&self, printer: DeviceId, key: &HeartbeatKey) -> HeartbeatKeyId {
        let keys = key.keys();
        let id = keys.key_id();
        lock(&self.by_id).insert(id, PrinterKeys { printer, keys });
        id
    }

    /// Forgets a key (revocation): its datagrams become `unknown_key` and rings stop.
    pub fn revoke(&self, key_id: HeartbeatKeyId) {
        lock(&self.by_id).remove(&key_id);
    }
}

impl HeartbeatKeys for InMemoryKeys {
    fn lookup(
        &self,
        key_id: HeartbeatKeyId,
    ) -> BoxFuture<'_, Result<Option<PrinterKeys>, BackendError>> {
        let found = lock(&self.by_id).get(&key_id).cloned();
        Box::pin(async move { Ok(found) })
    }
}

/// Replay windows in a map.
#[derive(Debug, Default)]
pub struct InMemoryReplayStore {
    windows: Mutex<HashMap<(DeviceId, HeartbeatKeyId), Vec<u8>>>,
}

impl InMemoryReplayStore {
    pub fn new() -> Self {
        Self::default()
    }
}

impl ReplayStore for InMemoryReplayStore {
    fn load(
        &self,
        printer: DeviceId,
        key_id: HeartbeatKeyId,
    ) -> BoxFuture<'_, Result<Option<Vec<u8>>, BackendError>> {
        let found = lock(&self.windows).get(&(printer, key_id)).cloned();
        Box::pin(async move { Ok(found) })
    }

    fn save<'a>(
        &'a self,
        printer: DeviceId,
        key_id: HeartbeatKeyId,
        window: &'a [u8],
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        lock(&self.windows).insert((printer, key_id), window.to_vec());
        Box::pin(async { Ok(()) })
    }
}

/// The set of printers with pending work.
#[derive(Debug, Default)]
pub struct InMemoryWorkQueue {
    pending: Mutex<HashSet<DeviceId>>,
}

impl InMemoryWorkQueue {
    pub fn new() -> Self {
        Self::default()
    }

    /// Marks (`true`) or clears (`false`) pending work for `printer`.
    pub fn set_pending(&self, printer: DeviceId, pending: bool) {
        let mut set = lock(&self.pending);
        if pending {
            set.insert(printer);
        } else {
            set.remove(&printer);
        }
    }
}

impl WorkQueue for InMemoryWorkQueue {
    fn has_work(&self, printer: DeviceId) -> BoxFuture<'_, Result<bool, BackendError>> {
        let pending = lock(&self.pending).contains(&printer);
        Box::pin(async move { Ok(pending) })
    }
}
