//! The doorbell over real UDP sockets on 127.0.0.1: answers, rings, drops, restarts.
//! Time is a manual clock; the only waits are bounded ones (answers within seconds, silence
//! for 300 ms).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod answers;
mod cache;
mod drops;
mod helpers;
mod restart;
mod ring;
