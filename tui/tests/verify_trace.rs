//! `bpfrr verify TRACE --invocation N` through the real binary (no root:
//! the verifier log comes from the trace): the verifier's belief next to
//! the real value per step, text and JSON, no flags on the committed
//! samples, and a flag printed and exit status 3 for a doctored log.

use std::path::PathBuf;
use std::process::Command;

use bpfrr_trace::trace::{Trace, TraceWriter};

fn trace_path(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../samples/traces")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn bpfrr(args: &[&str]) -> Out {
    let out = Command::new(env!("CARGO_BIN_EXE_bpfrr"))
        .args(args)
        .output()
        .expect("run bpfrr");
    Out {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The step line of instruction `insn` (`   19  insn 19   w2 &= 0x3c ...`).
fn step_line(text: &str, insn: usize) -> String {
    let key = format!("  insn {insn} ");
    text.lines()
        .find(|l| l.contains(&key) && !l.trim_start().starts_with(';'))
        .unwrap_or_else(|| panic!("no step of insn {insn} in:\n{text}"))
        .to_string()
}

/// The real value after `= ` following `what` in a line.
fn value_after(line: &str, what: &str) -> u64 {
    let i = line
        .find(what)
        .unwrap_or_else(|| panic!("{what:?} in {line}"))
        + what.len();
    let rest = line[i..].strip_prefix(" = ").expect("a real value");
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().expect("a decimal value")
}

#[test]
fn text_shows_each_steps_belief_and_real_value() {
    let t = trace_path("sock_filter.bpfrr");
    let out = bpfrr(&["verify", &t, "--invocation", "0", "--batch"]);
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    let text = &out.stdout;
    assert!(text.contains(
        "invocation 0 (udp_port_filter): what the verifier believed next to what really happened"
    ));
    // r6 = r1 at entry: the verifier knew r1 was the context, and it was.
    assert!(
        step_line(text, 0).contains("r1: ctx = ctx  ->  r6: ctx = ctx"),
        "{text}"
    );
    // `ihl * 4`: the verifier bounded the shifted header length by 1020,
    // then by 60 after `&= 60`; the real one lies inside and is a multiple of 4.
    let l = step_line(text, 19);
    assert!(l.contains("w2 &= 0x3c"), "{l}");
    let before = value_after(&l, "r2: scalar(0..1020)");
    let after = value_after(&l, "->  r2: scalar(0..60)");
    assert!(
        before <= 1020 && after <= 60 && after.is_multiple_of(4) && after >= 20,
        "{l}"
    );
    assert_eq!(after, before & 60);
    // Helper calls show the arguments the helper takes, and what it returned.
    let call = step_line(text, 9);
    assert!(call.contains("call bpf_skb_load_bytes"), "{call}");
    assert!(
        call.contains("r3: fp-24 = fp-24") && call.contains("r4: 20 = 20"),
        "{call}"
    );
    assert!(
        !call.contains("r5:"),
        "bpf_skb_load_bytes takes four arguments: {call}"
    );
    // Source lines head their steps; the end and the soundness summary close.
    assert!(text.contains("; return ip.ihl * 4;"));
    assert!(text.contains("exited: r0 = "));
    let summary = text.lines().last().unwrap();
    assert!(
        summary.starts_with("soundness: 45 of 45 steps compared") && summary.ends_with(", 0 flags"),
        "{summary}"
    );
    assert!(!text.contains("!!"));
}

#[test]
fn json_has_every_step_and_no_flags_past_pruning_points() {
    let t = trace_path("xdp_fw.bpfrr");
    let out = bpfrr(&["verify", &t, "-i", "8", "--json"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("one JSON document");
    assert_eq!(v["invocation"], 8);
    assert_eq!(v["program"], "xdp_firewall");
    assert_eq!(v["end"]["end"], "exited");
    let steps = v["steps"].as_array().unwrap();
    assert_eq!(steps.len() as u64, v["end"]["steps"].as_u64().unwrap());
    for (i, s) in steps.iter().enumerate() {
        assert_eq!(s["step"], i as u64);
        assert!(s["flags"].as_array().unwrap().is_empty());
        assert!(s["unchecked"].is_null(), "{s}");
        assert!(s["visits"].as_u64().unwrap() >= 1);
        for r in s["regs"].as_array().unwrap() {
            assert!(!r["verifier"].as_array().unwrap().is_empty(), "{r}");
            assert!(r["access"] == "read" || r["access"] == "write");
        }
    }
    assert_eq!(steps[0]["insn"], 0);
    assert_eq!(steps[0]["regs"][0]["verifier"][0], "ctx");
    assert_eq!(steps[0]["regs"][0]["real"], "ctx");
    // This packet's path meets a pruning point (checked loosely after it).
    assert!(steps.iter().any(|s| s["relaxed"] == true));
    assert!(steps.iter().any(|s| s["relaxed"] == false));
    let r = &v["soundness"];
    assert_eq!(r["steps"], steps.len() as u64);
    assert_eq!(r["steps_checked"], r["steps"]);
    assert!(r["flags"].as_array().unwrap().is_empty());
}

#[test]
fn every_invocation_of_every_sample_trace_is_quiet() {
    for name in ["xdp_fw", "tc_rewrite", "sock_filter", "cgroup_skb"] {
        let t = trace_path(&format!("{name}.bpfrr"));
        let n = Trace::open(&t).unwrap().invocation_count();
        for i in 0..n {
            let out = bpfrr(&["verify", &t, "-i", &i.to_string(), "--batch"]);
            assert_eq!(
                out.code,
                Some(0),
                "{name} #{i}: {}{}",
                out.stdout,
                out.stderr
            );
            assert!(out.stdout.trim_end().ends_with(", 0 flags"), "{name} #{i}");
        }
    }
}

#[test]
fn a_doctored_log_is_flagged_inline_with_exit_status_3() {
    // Rewrite sock_filter's trace with a log claiming `w2 &= 60` left r2 <= 16.
    let src = Trace::open(trace_path("sock_filter.bpfrr")).unwrap();
    let mut programs = src.programs().to_vec();
    let v = programs[0].verifier.as_mut().unwrap();
    let (insn, text) = v
        .log
        .lines()
        .find_map(|l| {
            let (n, _) = l.split_once(": (54) w2 &= 60")?;
            Some((n.parse::<usize>().ok()?, l.to_string()))
        })
        .expect("the log has `w2 &= 60`");
    let semi = text.find("; R2=").unwrap();
    let doctored = format!("{}; R2=scalar(umax=16)", &text[..semi]);
    v.log = v.log.replace(&text, &doctored);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("doctored.bpfrr");
    let mut w =
        TraceWriter::create(&path, src.meta().clone(), programs, src.maps().to_vec()).unwrap();
    for i in 0..src.invocation_count() {
        w.push(src.invocation_owned(i).unwrap()).unwrap();
    }
    w.finish().unwrap();
    let p = path.to_string_lossy().into_owned();

    let out = bpfrr(&["verify", &p, "-i", "0", "--batch"]);
    assert_eq!(out.code, Some(3), "{}{}", out.stdout, out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.contains(&format!("  insn {}  ", insn + 1)) && !l.starts_with(';'))
        .expect("the next instruction's step");
    let real = value_after(lines[at], "r2: scalar(0..16)");
    assert!(real > 16);
    let flag = lines[at + 1];
    assert!(flag.trim_start().starts_with("!! soundness:"), "{flag}");
    assert!(
        flag.contains(&format!(
            "insn {}: r2 = {real} lies outside every state",
            insn + 1
        )),
        "{flag}"
    );
    assert!(out.stdout.trim_end().ends_with(" 1 flag"), "{}", out.stdout);

    let out = bpfrr(&["verify", &p, "-i", "0", "--json"]);
    assert_eq!(out.code, Some(3));
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let flags = v["soundness"]["flags"].as_array().unwrap();
    assert_eq!(flags.len(), 1);
    assert_eq!(flags[0]["insn"], insn + 1);
    assert_eq!(flags[0]["reg"], "r2");
    assert_eq!(flags[0]["value"], real);
    assert_eq!(flags[0]["states"][0], "scalar(0..16)");
}

#[test]
fn bad_requests_get_one_sentence() {
    let t = trace_path("xdp_fw.bpfrr");
    let out = bpfrr(&["verify", &t, "-i", "99"]);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("there is no invocation 99"),
        "{}",
        out.stderr
    );
    let obj = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../samples/xdp_fw.bpf.o");
    let out = bpfrr(&["verify", &obj.to_string_lossy(), "--invocation", "1"]);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("--invocation needs a trace"),
        "{}",
        out.stderr
    );
}
