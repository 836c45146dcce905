//! `bpfrr verify` through the real binary, as root: an accepted sample
//! (per-instruction states) and several rejected ones (failing
//! instruction, path, explanation), text and JSON. Under CI=true these
//! fail rather than skip when not root.

use std::process::Command;

mod support;

use support::samples;

/// True when kernel tests can run; under CI=true not being root fails.
fn kernel_tests_enabled(test: &str) -> bool {
    support::kernel_tests_enabled(test, "bpfrr verify")
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

fn sample(rel: &str) -> String {
    samples().join(rel).to_string_lossy().into_owned()
}

/// The text line of instruction `insn` in a listing (`  116: r3 = ...`).
fn insn_line(text: &str, insn: usize) -> String {
    let prefix = format!("{insn:>5}: ");
    text.lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no line for instruction {insn} in:\n{text}"))
        .to_string()
}

#[test]
fn accepted_sample_shows_states_per_instruction() {
    if !kernel_tests_enabled("accepted_sample_shows_states_per_instruction") {
        return;
    }
    let out = bpfrr(&["verify", &sample("xdp_fw.bpf.o"), "--batch"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let t = &out.stdout;
    assert!(
        t.starts_with("program xdp_firewall (xdp): accepted by the verifier"),
        "{t}"
    );
    assert!(t.contains("instructions processed (limit 1000000)"), "{t}");
    // In parse_packet (frame 1): data_end, then the bounds check.
    let l = insn_line(t, 116);
    assert!(
        l.contains("r3 = *(u32 *)(r1 +4)") && l.contains("r3: pkt_end"),
        "{l}"
    );
    assert!(l.contains("[frame 1]"), "{l}");
    let l = insn_line(t, 120);
    assert!(
        l.contains("r1: pkt(off=14,r=14)") && l.contains("both ways explored"),
        "{l}"
    );
    // Source lines are interleaved.
    assert!(t.contains("[xdp_fw.bpf.c:"), "{t}");
    // Without --batch and not on a terminal: the same text, and a note why.
    let out2 = bpfrr(&["verify", &sample("xdp_fw.bpf.o")]);
    assert_eq!(out2.code, Some(0));
    assert!(
        out2.stderr.contains("stdout is not a terminal"),
        "{}",
        out2.stderr
    );
    assert!(out2.stdout.contains("r3: pkt_end"));
}

#[test]
fn every_program_of_an_object_and_prog_selection() {
    if !kernel_tests_enabled("every_program_of_an_object_and_prog_selection") {
        return;
    }
    let all = bpfrr(&["verify", &sample("tc_rewrite.bpf.o"), "--batch"]);
    assert_eq!(all.code, Some(0), "{}", all.stderr);
    assert!(
        all.stdout
            .contains("program tc_mark_dscp (sched_cls): accepted")
    );
    assert!(
        all.stdout
            .contains("program tc_redirect_port (sched_cls): accepted")
    );
    let one = bpfrr(&[
        "verify",
        &sample("tc_rewrite.bpf.o"),
        "--prog",
        "tc_redirect_port",
        "--batch",
    ]);
    assert_eq!(one.code, Some(0));
    assert!(!one.stdout.contains("tc_mark_dscp"));
    let bad = bpfrr(&["verify", &sample("tc_rewrite.bpf.o"), "--prog", "nope"]);
    assert_eq!(bad.code, Some(1));
    assert!(
        bad.stderr.contains("has no program \"nope\"") && bad.stderr.contains("tc_redirect_port"),
        "{}",
        bad.stderr
    );
}

#[test]
fn rejected_programs_are_explained() {
    if !kernel_tests_enabled("rejected_programs_are_explained") {
        return;
    }
    // (sample, error line, a state on the path or at the failure, why-title)
    let cases = [
        (
            "map_value_null",
            "error at instruction 7: R0 invalid mem access 'map_value_or_null'",
            "r0: map_value_or_null(id=1,map=counters)",
            "why: possibly-NULL pointer used without a check",
        ),
        (
            "pkt_no_bounds_check",
            "error at instruction 1: invalid access to packet, off=12 size=2",
            "r1: pkt(off=0,r=0)",
            "why: packet access without a bounds check",
        ),
        (
            "r0_not_set",
            "error at instruction 0: R0 !read_ok",
            "r1: ctx",
            "why: the return value was never set",
        ),
        (
            "unreleased_reference",
            "error at instruction 17: Unreleased reference id=2 alloc_insn=5",
            "refs: 2",
            "why: an acquired reference is not released on some path",
        ),
        (
            "infinite_loop",
            "error at instruction 1: infinite loop detected at insn 1",
            "r0: 0",
            "why: the loop never makes progress",
        ),
        (
            "combined_stack",
            "error (whole program): combined stack size of 2 calls is 640. Too large",
            "stack 320+320 bytes",
            "why: the call chain uses more than 512 bytes of stack",
        ),
    ];
    for (name, error, state, why) in cases {
        let out = bpfrr(&[
            "verify",
            &sample(&format!("rejected/{name}.bpf.o")),
            "--batch",
        ]);
        assert_eq!(out.code, Some(2), "{name}: {}", out.stderr);
        let t = &out.stdout;
        assert!(
            t.starts_with(&format!("program {name} (")) && t.contains("REJECTED by the verifier"),
            "{name}: {t}"
        );
        assert!(t.contains(error), "{name}: no {error:?} in:\n{t}");
        assert!(t.contains(state), "{name}: no {state:?} in:\n{t}");
        assert!(t.contains(why), "{name}: no {why:?} in:\n{t}");
        assert!(t.contains("\nfix: "), "{name}: {t}");
        if !error.contains("whole program") {
            assert!(t.contains("the path that reached it"), "{name}: {t}");
            assert!(t.contains("       ^ "), "{name}: {t}");
        }
    }
    // The failing path of unreleased_reference goes through the early return.
    let out = bpfrr(&[
        "verify",
        &sample("rejected/unreleased_reference.bpf.o"),
        "--batch",
    ]);
    assert!(out.stdout.contains("(the branch at "), "{}", out.stdout);
}

#[test]
fn json_report() {
    if !kernel_tests_enabled("json_report") {
        return;
    }
    let out = bpfrr(&["verify", &sample("rejected/map_value_null.bpf.o"), "--json"]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    let p = &v[0];
    assert_eq!(p["program"], "map_value_null");
    assert_eq!(p["prog_type"], "xdp");
    assert_eq!(p["accepted"], false);
    assert_eq!(p["errno"], "EACCES");
    assert_eq!(p["analysis"]["error"]["kind"], "nullable_pointer_deref");
    assert_eq!(p["analysis"]["error"]["insn"], 7);
    assert_eq!(
        p["explanation"]["title"],
        "possibly-NULL pointer used without a check"
    );
    let path: Vec<u64> = p["path_to_error"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect();
    assert_eq!(path, vec![0, 1, 2, 3, 4, 6, 7]);

    let ok = bpfrr(&["verify", &sample("sock_filter.bpf.o"), "--json"]);
    assert_eq!(ok.code, Some(0), "{}", ok.stderr);
    let v: serde_json::Value = serde_json::from_str(&ok.stdout).unwrap();
    assert_eq!(v[0]["accepted"], true);
    assert!(v[0]["analysis"]["error"].is_null());
    assert!(v[0]["analysis"]["visits"].as_array().unwrap().len() > 50);
}

#[test]
fn without_privileges_one_clear_sentence() {
    if !kernel_tests_enabled("without_privileges_one_clear_sentence") {
        return;
    }
    // Drop to nobody with setpriv (util-linux), as a user without root would run it.
    let Ok(out) = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            env!("CARGO_BIN_EXE_bpfrr"),
            "verify",
            &sample("xdp_fw.bpf.o"),
            "--batch",
        ])
        .output()
    else {
        panic!("setpriv (util-linux) is needed for this test");
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("needs root"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}
