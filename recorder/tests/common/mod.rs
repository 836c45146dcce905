//! Shared by the kernel tests: the root gate.

#![allow(dead_code)]

/// True when the kernel tests can run (root). When not root they are
/// skipped with a printed message, except under CI=true, where not being
/// root is a failure: CI must run them.
pub fn kernel_tests_enabled(test: &str) -> bool {
    if bpfrr_recorder::sys::is_root() {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test}: kernel tests need root and CI=true is set: run CI as root");
    }
    eprintln!(
        "SKIPPED {test}: kernel tests need root (run `sudo -E cargo test -p bpfrr-recorder`)"
    );
    false
}
