//! `cargo fuzz run -s none messages`: see `printfleet_protocol_fuzz::messages` (src/lib.rs), which
//! `crates/protocol/tests/fuzz_regressions.rs` also runs on the corpus and the regressions.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| printfleet_protocol_fuzz::messages(data));
