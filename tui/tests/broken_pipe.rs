//! `bpfrr disasm OBJ | head -1`: when the reader closes the pipe early,
//! bpfrr stops quietly (status 0, or killed by SIGPIPE like `cat`), never
//! with a panic or an I/O error message.

#![cfg(unix)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

#[test]
fn a_reader_closing_the_pipe_is_not_an_error() {
    // isa_coverage has over 30,000 instructions: far more text than a pipe
    // buffer holds, so bpfrr is still writing when the reader leaves.
    let obj = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/isa_coverage.bpf.o");
    let mut child = Command::new(env!("CARGO_BIN_EXE_bpfrr"))
        .args(["disasm", obj.to_str().unwrap(), "--no-source"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(!first.is_empty());
    // The reader is gone (stdout dropped); the rest of the log has nowhere to go.
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    use std::os::unix::process::ExitStatusExt;
    let quiet_exit = out.status.success() || out.status.signal() == Some(libc_sigpipe());
    assert!(quiet_exit, "status {:?}, stderr: {stderr}", out.status);
    assert!(stderr.is_empty(), "{stderr}");
    assert!(!stderr.contains("Broken pipe"), "{stderr}");
}

/// SIGPIPE's number on Linux and the BSDs.
fn libc_sigpipe() -> i32 {
    13
}
