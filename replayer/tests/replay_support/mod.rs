//! Making traces in tests: a "recording" is a model run whose helper calls
//! are logged the way the recorder logs them in the kernel
//! (`bpfrr_replayer::replay::record_model_run`). Replaying such a trace
//! with `RecordedEnv` must give the same run: a check that the recorded and
//! the model environments agree.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use bpfrr_replayer::env::ModelEnv;
use bpfrr_replayer::replay::record_model_run;
use bpfrr_trace::catalog::helper_by_name;
use bpfrr_trace::isa::{Insn, RawInsn, encode_all};
use bpfrr_trace::trace::{
    Invocation, LineInfo, Map, MapEntry, MapSnapshot, Program, SnapshotTime, Trace, TraceMeta,
    TraceWriter, VerifierInfo,
};

pub use bpfrr_replayer::replay::ModelInput as Input;

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn temp_path(tag: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("replay-{tag}-{}-{n}.bpfrr", std::process::id()))
}

pub fn meta() -> TraceMeta {
    TraceMeta {
        bpfrr_version: "test".into(),
        n_cpus: 2,
        ..TraceMeta::default()
    }
}

/// Writes a trace and opens it again.
pub fn write_trace(programs: &[Program], maps: &[Map], invocations: Vec<Invocation>) -> Trace {
    let path = temp_path("t");
    let mut w = TraceWriter::create(&path, meta(), programs.to_vec(), maps.to_vec())
        .expect("trace definitions are valid");
    for inv in invocations {
        w.push(inv).expect("invocation is valid");
    }
    w.finish().expect("trace written");
    let bytes = std::fs::read(&path).expect("trace readable");
    let _ = std::fs::remove_file(&path);
    Trace::from_bytes(bytes).expect("trace opens")
}

/// Runs `inputs` in order on the models of a trace with `programs` and
/// `maps` (as the recorder would see them in the kernel) and returns the
/// trace holding the recorded invocations (see `record_model_run`).
pub fn record(
    programs: &[Program],
    maps: &[Map],
    inputs: &[Input],
    configure: impl FnOnce(&mut ModelEnv),
) -> Trace {
    let path = temp_path("rec");
    record_model_run(&path, meta(), programs, maps, inputs, configure)
        .expect("the model run records");
    let bytes = std::fs::read(&path).expect("trace readable");
    let _ = std::fs::remove_file(&path);
    Trace::from_bytes(bytes).expect("trace opens")
}

/// A trace program from instructions.
pub fn trace_program(id: u32, name: &str, prog_type: u32, insns: &[Insn]) -> Program {
    let raw: Vec<RawInsn> = encode_all(insns);
    Program {
        id,
        name: name.into(),
        prog_type,
        insns: raw.iter().map(|r| r.to_bytes()).collect(),
        ..Program::default()
    }
}

/// Line info: one source line per listed instruction.
pub fn lines(entries: &[(u32, u32, &str)]) -> Vec<LineInfo> {
    entries
        .iter()
        .map(|&(insn, line, text)| LineInfo {
            insn,
            file: "test.bpf.c".into(),
            line,
            col: 1,
            text: text.into(),
        })
        .collect()
}

pub fn verifier(depths: &[u32]) -> Option<VerifierInfo> {
    Some(VerifierInfo {
        accepted: true,
        stack_depths: depths.to_vec(),
        ..VerifierInfo::default()
    })
}

/// A trace map with a start snapshot.
pub fn trace_map(
    id: u32,
    name: &str,
    map_type: u32,
    (key_size, value_size, max_entries): (u32, u32, u32),
    entries: Vec<(Vec<u8>, Vec<u8>)>,
) -> Map {
    Map {
        id,
        name: name.into(),
        map_type,
        key_size,
        value_size,
        max_entries,
        snapshots: vec![MapSnapshot {
            when: SnapshotTime::Start,
            n_cpus: 1,
            entries: entries
                .into_iter()
                .map(|(key, value)| MapEntry { key, value })
                .collect(),
        }],
        ..Map::default()
    }
}

/// An owned copy of every invocation, for doctoring.
pub fn invocations(trace: &Trace) -> Vec<Invocation> {
    (0..trace.invocation_count())
        .map(|i| trace.invocation_owned(i).expect("invocation readable"))
        .collect()
}

/// The same trace with its invocations replaced.
pub fn with_invocations(trace: &Trace, invocations: Vec<Invocation>) -> Trace {
    write_trace(trace.programs(), trace.maps(), invocations)
}

pub fn helper_id(name: &str) -> u32 {
    helper_by_name(name).expect("known helper").id
}

pub fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex"))
        .collect()
}
