//! The doorbell: the server end of the UDP heartbeat (`docs/protocol.md` §3).
//!
//! Printers send small authenticated, encrypted datagrams (default port 9930) asking whether
//! work waits; [`DoorbellServer`] answers "nothing" or "come fetch" to the exact source address
//! of each accepted datagram. While a printer's address is fresh, [`Doorbell::ring`] tells it
//! "come fetch" as soon as work appears, without waiting for its next heartbeat. The server
//! never opens connections to printers: everything it sends answers a datagram the printer has
//! just sent, to the address it came from.
//!
//! - [`backend`]: the traits at the edge (keys, replay windows, pending work), for the database
//!   to implement; [`memory`] and [`file_store`] implement them for tests.
//! - [`server`]: the receive loop and the ring; [`cache`]: keys and replay windows in memory;
//!   `pipeline`: group commit of the windows, then the answers; `resolve`: cache misses;
//!   [`presence`]: the per-printer address table; [`counters`]: what happened, by reason;
//!   [`config`]: the settings.
//!
//! The cryptography, the datagram format and the replay window are `printfleet-protocol`'s;
//! this crate adds sockets, time and storage.

pub mod backend;
pub mod cache;
pub mod config;
pub mod counters;
pub mod file_store;
pub mod memory;
mod pipeline;
pub mod presence;
mod resolve;
pub mod server;

pub use backend::{
    BackendError, BoxFuture, HeartbeatKeys, PrinterKeys, ReplayStore, WindowUpdate, WorkQueue,
};
pub use cache::MemoryStats;
pub use config::{
    DoorbellConfig, DEFAULT_EVICT_AFTER, DEFAULT_FRESH_FOR, DEFAULT_PORT, DEFAULT_RECV_BUFFER,
};
pub use counters::{CounterSnapshot, Counters, DropReason};
pub use file_store::FileReplayStore;
pub use memory::{InMemoryKeys, InMemoryReplayStore, InMemoryWorkQueue};
pub use presence::PrinterStatus;
pub use server::{bind_udp, Backends, Doorbell, DoorbellServer, RingOutcome};
