//! The doorbell's edges: where keys, replay windows and pending work come from. They are traits
//! so that the database can back them later (the storage crate is being extended separately)
//! while tests use the in-memory ([`crate::memory`]) and file ([`crate::file_store`]) versions.
//!
//! The methods return boxed futures (not `async fn`) so the server can hold them as
//! `Arc<dyn …>` and [`crate::Doorbell`] stays a plain, non-generic type that an HTTP handler can
//! keep in its state. One allocation per call is nothing next to a database round trip.
//!
//! The doorbell calls the batch methods (`lookup_many`, `load_many`, `save_many`,
//! `pending_among`): one call per batch of datagrams, not per datagram. Each has a default that
//! loops over the single-item method, so a simple backend only implements those; the database
//! backend implements the batch methods with one query (or one transaction) each.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;

use printfleet_domain::DeviceId;
use printfleet_protocol::heartbeat::{self, HeartbeatKeyId};

/// A future the doorbell can await from its receive loop (which runs on a multi-threaded
/// runtime, hence `Send`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A backend could not answer (database down, file unreadable, stored bytes corrupt…). The
/// doorbell then drops the datagram unanswered: it never guesses, so a failing replay store can
/// never let a replay through.
#[derive(Debug, thiserror::Error)]
#[error("doorbell backend failed: {0}")]
pub struct BackendError(Box<dyn std::error::Error + Send + Sync>);

impl BackendError {
    pub fn new(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self(source.into())
    }
}

/// A printer's heartbeat key material as the server needs it: who the printer is, and the key
/// id with the up (printer → server) and down (server → printer) ciphers.
#[derive(Clone, Debug)]
pub struct PrinterKeys {
    pub printer: DeviceId,
    /// From `printfleet_protocol::heartbeat::HeartbeatKey::keys()`.
    pub keys: heartbeat::HeartbeatKeys,
}

/// Finds a printer by the key id that travels in clear in every heartbeat datagram.
pub trait HeartbeatKeys: Send + Sync {
    /// `Ok(None)` for a key id that is unknown, revoked, or belongs to a removed printer: the
    /// datagram is then dropped as `unknown_key`.
    fn lookup(
        &self,
        key_id: HeartbeatKeyId,
    ) -> BoxFuture<'_, Result<Option<PrinterKeys>, BackendError>>;

    /// [`lookup`](Self::lookup) for several key ids at once; the answer has one entry per id,
    /// in order. The doorbell calls this for its cache misses, a batch at a time.
    fn lookup_many<'a>(
        &'a self,
        key_ids: &'a [HeartbeatKeyId],
    ) -> BoxFuture<'a, Result<Vec<Option<PrinterKeys>>, BackendError>> {
        Box::pin(async move {
            let mut out = Vec::with_capacity(key_ids.len());
            for id in key_ids {
                out.push(self.lookup(*id).await?);
            }
            Ok(out)
        })
    }
}

/// One replay window to persist: the key it belongs to and its bytes
/// (`ReplayWindow::to_bytes`).
#[derive(Clone, Copy, Debug)]
pub struct WindowUpdate<'a> {
    pub printer: DeviceId,
    pub key_id: HeartbeatKeyId,
    pub window: &'a [u8],
}

/// Persists each heartbeat key's replay window (`ReplayWindow::to_bytes`, 137 bytes), so that a
/// datagram accepted before a server restart is still refused after it. The protocol keeps one
/// window per heartbeat *key*, so the key id is part of the address: a new key after rotation
/// starts with a new, empty window while its counters restart at 1.
pub trait ReplayStore: Send + Sync {
    /// `Ok(None)`: nothing stored yet (a newly enrolled key). Bytes that do not decode make the
    /// doorbell drop the datagram (fail closed), never start over with an empty window.
    fn load(
        &self,
        printer: DeviceId,
        key_id: HeartbeatKeyId,
    ) -> BoxFuture<'_, Result<Option<Vec<u8>>, BackendError>>;

    /// Must be durable when it returns `Ok`: the doorbell answers only after a successful save.
    fn save<'a>(
        &'a self,
        printer: DeviceId,
        key_id: HeartbeatKeyId,
        window: &'a [u8],
    ) -> BoxFuture<'a, Result<(), BackendError>>;

    /// [`load`](Self::load) for several keys at once; one entry per key, in order.
    fn load_many<'a>(
        &'a self,
        keys: &'a [(DeviceId, HeartbeatKeyId)],
    ) -> BoxFuture<'a, Result<Vec<Option<Vec<u8>>>, BackendError>> {
        Box::pin(async move {
            let mut out = Vec::with_capacity(keys.len());
            for (printer, key_id) in keys {
                out.push(self.load(*printer, *key_id).await?);
            }
            Ok(out)
        })
    }

    /// Persists several windows (of distinct keys) **all or nothing**, durably when it returns
    /// `Ok`: the doorbell group-commits the windows of the datagrams accepted meanwhile through
    /// this and answers them only afterwards. On `Err` none of the answers is sent. The default
    /// saves one by one, which is all-or-nothing in effect: a later save of the same key
    /// supersedes an earlier one, and nothing is answered unless every save succeeded.
    fn save_many<'a>(
        &'a self,
        windows: &'a [WindowUpdate<'a>],
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            for w in windows {
                self.save(w.printer, w.key_id, w.window).await?;
            }
            Ok(())
        })
    }
}

/// Whether work waits for a printer. Asked for every accepted heartbeat, so it should be cheap
/// (an indexed `EXISTS`); the doorbell asks once per batch of answers through
/// [`pending_among`](Self::pending_among).
pub trait WorkQueue: Send + Sync {
    fn has_work(&self, printer: DeviceId) -> BoxFuture<'_, Result<bool, BackendError>>;

    /// Which of `printers` have work waiting.
    fn pending_among<'a>(
        &'a self,
        printers: &'a [DeviceId],
    ) -> BoxFuture<'a, Result<HashSet<DeviceId>, BackendError>> {
        Box::pin(async move {
            let mut out = HashSet::new();
            for p in printers {
                if self.has_work(*p).await? {
                    out.insert(*p);
                }
            }
            Ok(out)
        })
    }
}
