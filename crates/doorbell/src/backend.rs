//! The doorbell's edges: where keys, replay windows and pending work come from. They are traits
//! so that the database can back them later (the storage crate is being extended separately)
//! while tests use the in-memory ([`crate::memory`]) and file ([`crate::file_store`]) versions.
//!
//! The methods return boxed futures (not `async fn`) so the server can hold them as
//! `Arc<dyn …>` and [`crate::Doorbell`] stays a plain, non-generic type that an HTTP handler can
//! keep in its state. One allocation per call is nothing next to a database round trip.

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
}

/// Whether work waits for a printer. Asked for every accepted heartbeat, so it should be cheap
/// (an indexed `EXISTS`).
pub trait WorkQueue: Send + Sync {
    fn has_work(&self, printer: DeviceId) -> BoxFuture<'_, Result<bool, BackendError>>;
}
