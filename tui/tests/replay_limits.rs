//! `bpfrr replay` on a trace of an endless loop (a hostile or broken
//! trace): a movement stops at the step budget (`--step-budget`, 2^24 by
//! default) with a fault saying so, and Ctrl-C stops it earlier, skipping
//! the commands after it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use bpfrr_trace::isa::{Insn, encode_all};
use bpfrr_trace::trace::{Invocation, Program, TraceMeta, TraceWriter};

/// A trace of one invocation of `l: goto l` (a raw tracepoint program).
fn endless_loop_trace() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("replay-limits-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("endless.bpfrr");
    let insns = encode_all(&[Insn::Ja {
        off: -1,
        long: false,
    }]);
    let program = Program {
        id: 0,
        name: "endless".into(),
        prog_type: 17,
        insns: insns.iter().map(|r| r.to_bytes()).collect(),
        ..Program::default()
    };
    let meta = TraceMeta {
        bpfrr_version: "test".into(),
        n_cpus: 1,
        ..TraceMeta::default()
    };
    let mut w = TraceWriter::create(&path, meta, vec![program], vec![]).unwrap();
    w.push(Invocation {
        ctx: vec![0; 8],
        ..Invocation::default()
    })
    .unwrap();
    w.finish().unwrap();
    path
}

fn bpfrr() -> Command {
    Command::new(env!("CARGO_BIN_EXE_bpfrr"))
}

#[test]
fn a_movement_stops_at_the_step_budget() {
    let trace = endless_loop_trace();
    let out = bpfrr()
        .arg("replay")
        .arg(&trace)
        .args([
            "--step-budget",
            "100000",
            "-x",
            "continue",
            "-x",
            "info registers",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains("step budget of 100000 instructions exhausted"),
        "{stdout}"
    );
    // The session stays usable after the fault.
    assert!(stdout.contains("r10"), "{stdout}");
}

#[test]
fn ctrl_c_stops_a_movement_and_the_commands_after_it() {
    let trace = endless_loop_trace();
    let child = bpfrr()
        .arg("replay")
        .arg(&trace)
        .args([
            "--step-budget",
            "1000000000000",
            "-x",
            "continue",
            "-x",
            "info registers",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Long enough for the handler to be installed (right after the trace
    // opens); the loop itself would run for hours.
    std::thread::sleep(std::time::Duration::from_secs(2));
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(!out.status.success());
    assert!(stdout.contains("interrupted"), "{stdout}");
    assert!(
        !stdout.contains("r10"),
        "info registers must not run: {stdout}"
    );
    assert!(
        stderr.contains("interrupted (Ctrl-C) during command 1 of 2; the rest were not run"),
        "{stderr}"
    );
}
