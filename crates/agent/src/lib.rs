//! The printer side of the device protocol (docs/protocol.md): enrolment over HTTPS and UDP
//! heartbeats; policies (`apply_settings` work with sealed secrets, secret verifiers). This is what a firmware team embeds; the fleet simulator runs many of these.
//! The printer starts every exchange; nothing here listens for connections.

mod apply;
mod client;
mod counter;
mod enrol;
mod heartbeat;

pub use apply::open_apply_secrets;
pub use client::{base_urls, DeviceClient};
pub use counter::{CounterSource, FileCounter, MemoryCounter, RESERVATION_STEP};
pub use enrol::{enrol, enrol_first, reenrol, AgentError, Enrolment, Identity};
pub use heartbeat::{Heartbeater, Reply};
