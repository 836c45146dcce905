//! `bpfrr log` through the real binary on the committed kernel recordings:
//! the line format, agreement with `bpfrr replay` at every step, register
//! changes that chain from the first state to the last, tail calls, JSON.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

mod support;

fn trace(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../samples/traces")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

fn bpfrr(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_bpfrr"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn ok(args: &[&str]) -> String {
    let (code, out, err) = bpfrr(args);
    assert_eq!(code, 0, "bpfrr {args:?} failed:\n{out}\n{err}");
    out
}

#[test]
fn one_line_a_step_with_instruction_source_and_changes() {
    let out = ok(&["log", &trace("xdp_fw.bpfrr"), "--invocation", "1"]);
    let lines: Vec<&str> = out.lines().collect();
    // Invocation 1 is TCP to port 23: dropped.
    assert_eq!(
        *lines.last().unwrap(),
        "exited: r0 = 1 (XDP_DROP) after 104 steps"
    );
    assert_eq!(lines.len(), 105);
    for (i, l) in lines[..104].iter().enumerate() {
        assert!(l.starts_with(&format!("step {i}, insn ")), "{l}");
        assert!(l.contains(" (xdp_fw.bpf.c:"), "{l}");
    }
    // Registers: old -> new, pointers named by region.
    assert!(
        lines[0].starts_with("step 0, insn 0 (xdp_fw.bpf.c:197): r6 = r1  | r6 0x0 -> 0x"),
        "{}",
        lines[0]
    );
    assert!(lines[0].ends_with(" (ctx)"), "{}", lines[0]);
    // Memory: region+offset, old bytes -> new bytes.
    assert_eq!(
        lines[2],
        "step 2, insn 2 (xdp_fw.bpf.c:199): *(u32 *)(r10 - 0x8) = w1  | fp-8 00000000 -> 00000000"
    );
    // A bpf-to-bpf call pushes a frame; helper calls are named and their r0 shown.
    assert!(lines[9].ends_with("| frame 1 pushed"), "{}", lines[9]);
    assert!(
        lines[9].contains(": call 0x69 <parse_packet>  |"),
        "{}",
        lines[9]
    );
    let lookup = lines
        .iter()
        .find(|l| l.contains("call bpf_map_lookup_elem"))
        .unwrap();
    assert!(
        lookup.contains("| bpf_map_lookup_elem returned 0x0"),
        "{lookup}"
    );
    // Writing the packet-derived ethertype into the caller's stack names the frame.
    assert!(
        lines.iter().any(|l| l.contains("| fp[0]-24 0000 -> 0008")),
        "{out}"
    );
}

#[test]
fn every_log_line_is_where_replay_is_at_that_step() {
    let t = trace("xdp_fw.bpfrr");
    let log = ok(&["log", &t, "-i", "4"]);
    let lines: Vec<&str> = log.lines().collect();
    let steps = lines.len() - 1;
    let mut args = vec!["replay".to_string(), t.clone(), "-i".into(), "4".into()];
    for k in 0..steps {
        args.push("-x".into());
        args.push(format!("goto {k}"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let replay = ok(&args);
    // Each `goto` prints the place line, then the source line.
    let places: Vec<&str> = replay.lines().filter(|l| l.starts_with("step ")).collect();
    assert_eq!(places.len(), steps);
    for (k, (log_line, place)) in lines.iter().zip(places).enumerate() {
        let head = log_line.split("  | ").next().unwrap();
        assert_eq!(head, place, "step {k}");
    }
}

#[test]
fn json_register_changes_chain_from_the_first_state_to_the_last() {
    let t = trace("xdp_fw.bpfrr");
    let out = ok(&["log", &t, "-i", "0", "--json"]);
    let objs: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (end, steps) = objs.split_last().unwrap();
    assert_eq!(end["end"], "exited");
    assert_eq!(end["r0"], 2);
    assert_eq!(end["name"], "XDP_PASS");
    assert_eq!(end["steps"], steps.len() as u64);

    let state = |cmd: &str| -> Vec<u64> {
        let out = ok(&[
            "replay",
            &t,
            "-i",
            "0",
            "--json",
            "-x",
            cmd,
            "-x",
            "info state",
        ]);
        let v: Value = serde_json::from_str(out.lines().nth(1).unwrap()).unwrap();
        v["registers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_u64().unwrap())
            .collect()
    };
    let mut regs = state("goto 0");
    for (i, s) in steps.iter().enumerate() {
        assert_eq!(s["step"], i as u64);
        for f in [
            "program", "insn", "file", "line", "source", "text", "regs", "mem", "calls", "notes",
        ] {
            assert!(s.get(f).is_some(), "step {i} has no {f}");
        }
        for c in s["regs"].as_array().unwrap() {
            let r: usize = c["reg"].as_str().unwrap()[1..].parse().unwrap();
            assert_eq!(
                c["old"].as_u64().unwrap(),
                regs[r],
                "step {i}: old value of r{r}"
            );
            regs[r] = c["new"].as_u64().unwrap();
        }
    }
    assert_eq!(regs, state("goto 1000000"));
}

#[test]
fn a_tail_call_continues_in_the_other_program() {
    // tc_rewrite invocation 0: UDP to 5353, tail call into tc_redirect_port.
    let out = ok(&["log", &trace("tc_rewrite.bpfrr"), "-i", "0"]);
    let first_other = out
        .lines()
        .position(|l| l.contains(" of tc_redirect_port "))
        .expect("steps in tc_redirect_port");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[first_other - 1].contains("call bpf_tail_call"),
        "{out}"
    );
    assert!(
        lines[first_other].contains(", insn 0 of tc_redirect_port ("),
        "{out}"
    );
    assert!(
        lines
            .last()
            .unwrap()
            .starts_with("exited: r0 = 0 (TC_ACT_OK)"),
        "{out}"
    );
}

#[test]
fn a_missing_invocation_is_one_clear_error_line() {
    let (code, out, err) = bpfrr(&["log", &trace("sock_filter.bpfrr"), "-i", "8"]);
    assert_eq!(code, 1);
    assert!(out.is_empty());
    assert_eq!(
        err,
        "bpfrr: there is no invocation 8; the trace has 8 (0 to 7)\n"
    );
    let p: PathBuf = Path::new(env!("CARGO_TARGET_TMPDIR")).join("log-not-a-trace");
    std::fs::write(&p, [0u8; 100]).unwrap();
    let (code, _, err) = bpfrr(&["log", p.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert_eq!(err.lines().count(), 1, "{err}");
}

/// A recording of a program calling kfuncs (the iterator fixture): the
/// log names them, in the instruction and in what the call answered.
#[test]
fn kfunc_calls_are_logged_by_name() {
    if !support::kernel_tests_enabled("kfunc_calls_are_logged_by_name", "recording") {
        return;
    }
    let fixtures = support::samples().join("fixtures");
    let out = std::env::temp_dir().join(format!("bpfrr-log-kfuncs-{}.bpfrr", std::process::id()));
    let out_s = out.to_string_lossy().into_owned();
    let object = fixtures
        .join("iter_num.bpf.o")
        .to_string_lossy()
        .into_owned();
    let pcap = support::samples()
        .join("inputs/xdp_fw.pcap")
        .to_string_lossy()
        .into_owned();
    ok(&[
        "record", &object, "--pcap", &pcap, "--count", "1", "-o", &out_s,
    ]);
    let log = ok(&["log", &out_s]);
    let _ = std::fs::remove_file(&out);
    let line = log
        .lines()
        .find(|l| l.contains("call bpf_iter_num_new"))
        .unwrap_or_else(|| panic!("no named kfunc call in:\n{log}"));
    assert!(line.contains("bpf_iter_num_new returned 0x0"), "{line}");
    assert!(!log.contains("kfunc 0x"), "{log}");
}
