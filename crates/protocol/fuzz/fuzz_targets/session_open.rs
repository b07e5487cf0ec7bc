//! `cargo fuzz run -s none session_open`: see `printfleet_protocol_fuzz::session_open` (src/lib.rs),
//! which `crates/protocol/tests/fuzz_regressions.rs` also runs on the corpus and the regressions.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| printfleet_protocol_fuzz::session_open(data));
