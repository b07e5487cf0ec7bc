//! The `printfleet` binary as an operator runs it: demo, serve, admin, configuration errors,
//! and the search for planted personal data in everything the server writes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod admin;
mod config;
mod crash;
mod demo;
mod harness;
mod plaintext;
mod policy_code;
mod rollout;
mod secret;
mod simulate;
