//! Shared by the kfunc fixture tests (record_iter_num.rs,
//! record_dynptr.rs): recording a fixture program on frames, its `results`
//! map at the end, the same program run in the model environment as
//! `bpfrr run` does, and a session stepping over calls and back.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use bpfrr_recorder::record::{PrepareOptions, RecordOptions, TestInput, TestRunDriver, record};
use bpfrr_recorder::stop::{Interrupt, StopConditions};
use bpfrr_replayer::env::{ModelConfig, ModelEnv};
use bpfrr_replayer::maps::{Map, MapDef, MapType};
use bpfrr_replayer::replay::{Replayer, check_all};
use bpfrr_replayer::session::{Session, StopReason};
use bpfrr_replayer::vm::{Context, Limits, Machine, Program};
use bpfrr_trace::btf::Btf;
use bpfrr_trace::isa::{CallTarget, Insn, check};
use bpfrr_trace::object::ObjectFile;
use bpfrr_trace::trace::{Invocation, SnapshotTime, Trace};

pub const KERNEL_BTF: &str = "/sys/kernel/btf/vmlinux";

/// `samples/fixtures/NAME.bpf.o`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../samples/fixtures/{name}.bpf.o"))
}

/// Bytes from hex digits.
pub fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Records `program` of `object` with the test-run driver, one run per
/// frame, into `out`; nothing may be lost.
pub fn record_program(object: &Path, program: &str, frames: Vec<Vec<u8>>, out: &Path) -> Trace {
    let opts = RecordOptions {
        object: object.to_path_buf(),
        output: out.to_path_buf(),
        prepare: PrepareOptions {
            program: Some(program.into()),
            ..PrepareOptions::default()
        },
        stop: StopConditions::default(),
        command_line: vec![format!("record {program}")],
        status_line: false,
    };
    let inputs = frames
        .into_iter()
        .map(|frame| TestInput::Packet { frame, ctx: None })
        .collect();
    let mut driver = TestRunDriver::new(inputs, 1);
    let report = record(&opts, &mut driver, Interrupt::manual().handle())
        .unwrap_or_else(|e| panic!("recording failed: {e}"));
    assert!(report.lost.is_empty() && report.incomplete == 0 && report.orphans == 0);
    Trace::open(out).expect("the trace opens")
}

/// Records with `record` into a temporary file named after `tag`, which
/// is removed once the trace is open.
pub fn record_in_temp(tag: &str, record: impl Fn(&Path) -> Trace) -> Trace {
    let out = std::env::temp_dir().join(format!("{tag}-{}.bpfrr", std::process::id()));
    let trace = record(&out);
    let _ = std::fs::remove_file(&out);
    trace
}

/// The `results` map at the end of the recording, keys 0..entries (s64
/// values; 0 for a missing key).
pub fn recorded_map(trace: &Trace, entries: u32) -> Vec<i64> {
    let map = trace
        .maps()
        .iter()
        .find(|m| m.name == "results")
        .expect("the results map is in the trace");
    let end = map
        .snapshots
        .iter()
        .find(|s| s.when == SnapshotTime::End)
        .expect("an end snapshot");
    (0..entries)
        .map(|k| {
            end.entries
                .iter()
                .find(|e| e.key == k.to_le_bytes())
                .map_or(0, |e| i64::from_le_bytes(e.value[..8].try_into().unwrap()))
        })
        .collect()
}

/// `program` of `object` run in the model environment on `frames`, linked
/// against the running kernel's BTF as `bpfrr run` does (kfuncs by name;
/// `expect_kfunc` must be among them): per frame the return value and the
/// packet out, and the `results` map (keys 0..nr_results) at the end.
pub fn model_run_program(
    object: &Path,
    program: &str,
    frames: &[Vec<u8>],
    context: impl Fn(&[u8]) -> Context,
    nr_results: u32,
    expect_kfunc: &str,
) -> (Vec<(u64, Vec<u8>)>, Vec<i64>) {
    let bytes = std::fs::read(object).unwrap();
    let obj = ObjectFile::parse(&bytes).unwrap();
    let kernel = std::fs::read(KERNEL_BTF).expect("the kernel's BTF");
    let linked = obj.link_with_kfuncs(program, &[0], &kernel).unwrap();
    let checked = check(&linked.insns).unwrap();
    let btf = Btf::parse(&kernel).unwrap();
    let names: Vec<(u32, String)> = checked
        .insns
        .iter()
        .filter_map(|i| match i {
            Some(Insn::Call(CallTarget::Kfunc { btf_id, .. })) => {
                let id = *btf_id as u32;
                Some((id, btf.type_by_id(id)?.name.clone()))
            }
            _ => None,
        })
        .collect();
    assert!(names.iter().any(|(_, n)| n == expect_kfunc), "{names:?}");
    let program = Program::new(&checked, Limits::default()).unwrap();
    let results = Map::new(MapDef::new("results", MapType::Array, 4, 8, nr_results), 1).unwrap();
    let mut env = ModelEnv::new(vec![results], ModelConfig::default());
    env.set_kfunc_names(names);
    let mut machine = Machine::new(program);
    let mut out = Vec::new();
    for frame in frames {
        let ctx = context(frame);
        let r0 = env
            .run(&mut machine, 0, &ctx)
            .unwrap_or_else(|f| panic!("the model run faults: {f}"));
        let packet = machine.memory().packet_data().unwrap().to_vec();
        out.push((r0, packet));
    }
    let entries = env.maps()[0].entries();
    let values = (0..nr_results)
        .map(|k| {
            entries
                .iter()
                .find(|(key, _)| key[..] == k.to_le_bytes())
                .map_or(0, |(_, v)| {
                    i64::from_le_bytes(v[0][..8].try_into().unwrap())
                })
        })
        .collect();
    (out, values)
}

/// Checks that every invocation of `trace` replays identically and that
/// its first program names each of `kfuncs`; returns the invocations.
pub fn replayed_identically_naming(trace: &Trace, kfuncs: &[&str]) -> Vec<Invocation> {
    let summary = check_all(trace);
    assert!(
        summary.all_identical() && summary.total == trace.invocation_count(),
        "{summary:?}"
    );
    let names: Vec<&str> = trace.programs()[0]
        .kfuncs
        .iter()
        .map(|k| k.name.as_str())
        .collect();
    for n in kfuncs {
        assert!(names.contains(n), "{n} in {names:?}");
    }
    (0..trace.invocation_count())
        .map(|i| trace.invocation_owned(i).unwrap())
        .collect()
}

/// The packet an invocation ended with.
pub fn final_packet(inv: &Invocation) -> Vec<u8> {
    inv.final_packet
        .clone()
        .or_else(|| inv.packet.clone())
        .unwrap_or_default()
}

/// Replays invocation `index` in a session; each time the program is at
/// one of `calls` (instruction indices): steps over the call (which must
/// change the state), back (exactly the state and packet before), and
/// over again (exactly the state and packet after). At the exit, back to
/// the start (the recorded packet) and forward to the recorded return
/// value. Returns how many calls were stepped over.
pub fn step_over_each_call_and_back(trace: &Trace, index: u64, calls: &[usize]) -> usize {
    let inv = trace.invocation_owned(index).unwrap();
    let mut r = Replayer::new(trace);
    let mut s = Session::for_invocation(&mut r, index).unwrap();
    let start = s.machine().state().clone();
    let packet = |m: &Machine| m.memory().packet_data().unwrap().to_vec();
    let mut stepped_over = 0;
    loop {
        if calls.contains(&s.pc()) {
            let (before, packet_before) = (s.machine().state().clone(), packet(s.machine()));
            assert_eq!(s.step().reason, StopReason::Done);
            let (after, packet_after) = (s.machine().state().clone(), packet(s.machine()));
            assert!(before != after, "the call at {} changes the state", s.pc());
            s.reverse_step();
            assert!(before == *s.machine().state(), "back before the call");
            assert_eq!(packet(s.machine()), packet_before);
            s.step();
            assert!(after == *s.machine().state(), "over it again");
            assert_eq!(packet(s.machine()), packet_after);
            stepped_over += 1;
            continue;
        }
        match s.step().reason {
            StopReason::Done => {}
            StopReason::Exited { .. } => break,
            other => panic!("the replay stops at {}: {other:?}", s.pc()),
        }
    }
    assert_eq!(s.reverse_continue().reason, StopReason::Start);
    assert!(start == *s.machine().state(), "back at the start");
    assert_eq!(packet(s.machine()), inv.packet.clone().unwrap());
    assert_eq!(s.continue_().reason, StopReason::Exited { r0: inv.retval });
    stepped_over
}
