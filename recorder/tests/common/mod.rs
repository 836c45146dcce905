//! Shared by the kernel tests: the root gate, and dropping a link for good.

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

/// Drops a link and waits until the kernel has released it. Closing our fd
/// is not always the last reference at that instant: a child process that
/// another test forks in parallel holds a copy of every fd until its exec
/// closes the close-on-exec ones, so the detach can lag the drop slightly.
pub fn drop_and_wait_until_released<L>(id: u32, link: L) {
    drop(link);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while bpfrr_recorder::sys::link_fd_by_id(id)
        .expect("BPF_LINK_GET_FD_BY_ID")
        .is_some()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "link {id} still exists 5 s after it was dropped"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    // The kernel frees the id just before it detaches the program, in the
    // same call: give that call a moment to finish.
    std::thread::sleep(std::time::Duration::from_millis(20));
}
