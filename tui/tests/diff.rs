//! `bpfrr diff` through the real binary on the committed xdp_fw kernel
//! recording: where a passed and a dropped packet part ways (checked
//! against the two step-by-step logs), the planted bug's two packets that
//! never part, JSON, and errors.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn xdp_fw() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../samples/traces/xdp_fw.bpfrr")
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

/// The instruction index of every step of an invocation, from `bpfrr log --json`.
fn path(inv: &str) -> Vec<u64> {
    ok(&["log", &xdp_fw(), "-i", inv, "--json"])
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter_map(|v| v["insn"].as_u64())
        .collect()
}

#[test]
fn a_passed_and_a_dropped_packet_split_at_the_protocol_test() {
    // Invocation 0: UDP to port 53 (XDP_PASS); 1: TCP to port 23 (XDP_DROP).
    let v: Value =
        serde_json::from_str(ok(&["diff", &xdp_fw(), "0", "1", "--json"]).trim()).unwrap();
    assert_eq!(v["kind"], "split");
    let step = v["place"]["step"].as_u64().unwrap() as usize;
    let insn = v["place"]["insn"].as_u64().unwrap();
    assert!(
        v["place"]["text"].as_str().unwrap().starts_with("if "),
        "{v}"
    );
    assert!(
        v["place"]["source"]
            .as_str()
            .unwrap()
            .contains("IPPROTO_TCP"),
        "{v}"
    );
    // The values that decided it: the IP protocol, UDP 17 against TCP 6.
    let regs = v["registers"].as_array().unwrap();
    assert_eq!(regs.len(), 1, "{v}");
    assert_eq!(regs[0]["a"], 17);
    assert_eq!(regs[0]["b"], 6);
    assert_eq!(v["a"]["invocation"], 0);
    assert_eq!(v["b"]["invocation"], 1);

    // The logs agree: identical paths up to and including the branch, then
    // each goes where the diff says.
    let (a, b) = (path("0"), path("1"));
    assert_eq!(a[..=step], b[..=step]);
    assert_eq!(a[step], insn);
    assert_eq!(a[step + 1], v["a"]["next_insn"].as_u64().unwrap());
    assert_eq!(b[step + 1], v["b"]["next_insn"].as_u64().unwrap());
    assert_ne!(a[step + 1], b[step + 1]);

    let text = ok(&["diff", &xdp_fw(), "0", "1"]);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with(&format!(
            "invocations 0 and 1 split at step {step}, insn {insn} (xdp_fw.bpf.c:"
        )),
        "{text}"
    );
    assert!(lines[1].contains("IPPROTO_TCP"), "{text}");
    assert_eq!(
        lines[2],
        format!(
            "  invocation 0 went to insn {}, invocation 1 to insn {}",
            a[step + 1],
            b[step + 1]
        )
    );
    let reg = regs[0]["reg"].as_str().unwrap();
    assert_eq!(lines[3], format!("  {reg}: 0x11 (17) in 0, 0x6 (6) in 1"));
}

#[test]
fn the_planted_bug_sends_telnet_with_ip_options_down_the_ssh_path() {
    // 2: TCP to port 23 with IP options; 3: TCP to port 22 with IP options.
    // The bug reads the "ports" from the options, so both take one path.
    let v: Value =
        serde_json::from_str(ok(&["diff", &xdp_fw(), "2", "3", "--json"]).trim()).unwrap();
    assert_eq!(v["kind"], "same");
    assert_eq!(v["a"]["end"]["r0"], 2);
    assert_eq!(v["b"]["end"]["r0"], 2);
    assert_eq!(path("2"), path("3"));
    let text = ok(&["diff", &xdp_fw(), "2", "3"]);
    assert!(
        text.starts_with("invocations 2 and 3 take the same path ("),
        "{text}"
    );
    assert!(text.contains("XDP_PASS"), "{text}");
    // Without options, port 23 is dropped: a split.
    let v: Value =
        serde_json::from_str(ok(&["diff", &xdp_fw(), "1", "2", "--json"]).trim()).unwrap();
    assert_eq!(v["kind"], "split");
}

#[test]
fn bad_invocations_are_one_clear_error_line() {
    let (code, out, err) = bpfrr(&["diff", &xdp_fw(), "0", "12"]);
    assert_eq!(code, 1);
    assert!(out.is_empty());
    assert_eq!(
        err,
        "bpfrr: there is no invocation 12; the trace has 12 (0 to 11)\n"
    );
    let (code, _, err) = bpfrr(&["diff", &xdp_fw(), "0"]);
    assert_eq!(code, 2, "clap usage error");
    assert!(err.contains("<B>"), "{err}");
}
