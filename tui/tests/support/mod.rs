//! What the binary's kernel tests share: where the samples are, and the
//! rule for tests that need root (skip with a message, but fail under
//! CI=true so CI never skips them silently).

#![allow(dead_code)] // each test binary uses its own part of this

use std::path::PathBuf;

pub fn samples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../samples")
}

pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

/// True when kernel tests can run. `what` names the work that needs root
/// ("recording", "bpfrr verify"); under CI=true not being root fails.
pub fn kernel_tests_enabled(test: &str, what: &str) -> bool {
    if is_root() {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test}: {what} needs root and CI=true is set: run CI as root");
    }
    eprintln!("SKIPPED {test}: {what} needs root (sudo -E cargo test -p bpfrr)");
    false
}
