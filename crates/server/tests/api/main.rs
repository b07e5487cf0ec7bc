//! The server's integration tests: real sockets, a real database, one binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod auth;
mod device_path;
mod devices;
mod dry_run;
mod helpers;
mod matrix;
mod people;
mod policies;
mod protocol;
mod rollouts;
mod sessions;
mod unique_secrets;
