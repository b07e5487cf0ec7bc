//! Replays every file of `fuzz/regressions/<target>/` (inputs that once crashed a fuzz target)
//! and of the committed seed corpus `fuzz/corpus/<target>/` through the fuzz harnesses
//! themselves (`fuzz/src/lib.rs`, compiled in here by `#[path]`), and fails on any panic, naming
//! the file. Runs on stable with `cargo test`; fuzzing itself is `.ci/fuzz`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../fuzz/src/lib.rs"]
mod harness;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

fn harness_of(target: &str) -> harness::Harness {
    harness::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .map(|(_, f)| *f)
        .unwrap_or_else(|| panic!("no harness named {target} in fuzz/src/lib.rs"))
}

/// The input files of `dir` (hidden files such as `.gitkeep` and `*.md` notes are skipped).
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{} must exist: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            !name.starts_with('.') && !name.ends_with(".md")
        })
        .collect();
    files.sort();
    files
}

/// Runs every input of `fuzz/<kind>/<target>/` through the target's harness; returns how many.
fn replay(kind: &str, target: &str) -> usize {
    let run = harness_of(target);
    let files = inputs(&fuzz_dir().join(kind).join(target));
    let failed: Vec<String> = files
        .iter()
        .filter(|path| {
            let data = std::fs::read(path).unwrap();
            catch_unwind(AssertUnwindSafe(|| run(&data))).is_err()
        })
        .map(|path| path.display().to_string())
        .collect();
    assert!(
        failed.is_empty(),
        "{target}: {} input(s) panic (the panic messages are printed above): {failed:#?}",
        failed.len()
    );
    files.len()
}

fn check_target(target: &str) {
    replay("regressions", target);
    let seeds = replay("corpus", target);
    assert!(seeds > 0, "fuzz/corpus/{target} has no seed inputs");
}

#[test]
fn every_fuzz_target_has_a_harness_and_is_replayed_here() {
    let mut on_disk: Vec<String> = std::fs::read_dir(fuzz_dir().join("fuzz_targets"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let mut known: Vec<String> = harness::TARGETS
        .iter()
        .map(|(n, _)| (*n).to_owned())
        .collect();
    known.sort();
    assert_eq!(
        on_disk, known,
        "fuzz_targets/*.rs and harness::TARGETS differ"
    );
    let this_file = include_str!("fuzz_regressions.rs");
    for name in &known {
        assert!(
            this_file.contains(&format!("check_target(\"{name}\")")),
            "no test here replays {name}"
        );
    }
}

#[test]
fn sealed_open() {
    check_target("sealed_open");
}

#[test]
fn heartbeat_request() {
    check_target("heartbeat_request");
}

#[test]
fn heartbeat_answer() {
    check_target("heartbeat_answer");
}

#[test]
fn window_restore() {
    check_target("window_restore");
}

#[test]
fn sealed_to_device() {
    check_target("sealed_to_device");
}

#[test]
fn messages() {
    check_target("messages");
}

#[test]
fn session_open() {
    check_target("session_open");
}
