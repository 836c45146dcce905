//! Programs built on the numeric open-coded iterator (`bpf_for`,
//! `bpf_repeat`: the kfuncs `bpf_iter_num_new/next/destroy`) on the real
//! kernel: the instrumented program loads, the test-run recording replays
//! identically, and the model environment (what `bpfrr run` does) gives the
//! kernel's return values, packets and map contents. The fixture is
//! `samples/fixtures/iter_num.bpf.c`: sums packet bytes with bpf_for, counts
//! with bpf_repeat, and tries an empty range, start > end (-EINVAL) and
//! ranges longer than BPF_MAX_LOOPS (-E2BIG). Kernel tests: root, or
//! SKIPPED (CI=true: failed).
#![cfg(target_os = "linux")]

mod common;

use std::path::{Path, PathBuf};

use bpfrr_recorder::record::{PrepareOptions, RecordOptions, TestInput, TestRunDriver, record};
use bpfrr_recorder::stop::{Interrupt, StopConditions};
use bpfrr_replayer::env::{ModelConfig, ModelEnv};
use bpfrr_replayer::maps::{Map, MapDef, MapType};
use bpfrr_replayer::replay::{Replayer, check_all};
use bpfrr_replayer::session::{Session, StopReason};
use bpfrr_replayer::vm::{Context, Limits, Machine, Program, XdpMd};
use bpfrr_trace::btf::Btf;
use bpfrr_trace::isa::{CallTarget, Insn, check};
use bpfrr_trace::object::ObjectFile;
use bpfrr_trace::trace::{EventKind, Invocation, SnapshotTime, Trace};

const KERNEL_BTF: &str = "/sys/kernel/btf/vmlinux";
/// The fixture's `results` map: key = what, value = s64.
const SUM: u32 = 0;
const REPEATS: u32 = 1;
const EMPTY_STEPS: u32 = 2;
const REVERSED_RET: u32 = 3;
const REVERSED_STEPS: u32 = 4;
const TOO_LONG_RET: u32 = 5;
const FULL_INT_RET: u32 = 6;
const LAST_INDEX: u32 = 7;
const NR_RESULTS: u32 = 8;

fn object() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/fixtures/iter_num.bpf.o")
}

/// Frames of several lengths: odd and even sums, the 64-byte cap.
fn frames() -> Vec<Vec<u8>> {
    let udp =
        "ffffffffffff00112233445508004500001c0001000040110000c0a80001c0a80002003500350008abcd";
    let udp: Vec<u8> = (0..udp.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&udp[i..i + 2], 16).unwrap())
        .collect();
    let mut long = udp.clone();
    long.extend((0..100u8).map(|b| b.wrapping_mul(7)));
    let mut zeros = vec![0u8; 14];
    zeros[13] = 1;
    vec![udp, zeros, long, vec![2u8; 20]]
}

fn record_fixture(out: &Path) -> Trace {
    let opts = RecordOptions {
        object: object(),
        output: out.to_path_buf(),
        prepare: PrepareOptions {
            program: Some("iter_num".into()),
            ..PrepareOptions::default()
        },
        stop: StopConditions::default(),
        command_line: vec!["record_iter_num".into()],
        status_line: false,
    };
    let inputs = frames()
        .into_iter()
        .map(|frame| TestInput::Packet { frame, ctx: None })
        .collect();
    let mut driver = TestRunDriver::new(inputs, 1);
    let report = record(&opts, &mut driver, Interrupt::manual().handle())
        .unwrap_or_else(|e| panic!("recording failed: {e}"));
    assert!(report.lost.is_empty() && report.incomplete == 0 && report.orphans == 0);
    Trace::open(out).expect("the trace opens")
}

/// The `results` map at the end of the recording, by key (s64 values).
fn recorded_results(trace: &Trace) -> Vec<i64> {
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
    (0..NR_RESULTS)
        .map(|k| {
            end.entries
                .iter()
                .find(|e| e.key == k.to_le_bytes())
                .map_or(0, |e| i64::from_le_bytes(e.value[..8].try_into().unwrap()))
        })
        .collect()
}

/// The fixture run in the model environment, linked against the running
/// kernel's BTF as `bpfrr run` does (kfuncs by name): per frame the return
/// value and the packet out, and the `results` map at the end.
fn model_run(frames: &[Vec<u8>]) -> (Vec<(u64, Vec<u8>)>, Vec<i64>) {
    let bytes = std::fs::read(object()).unwrap();
    let obj = ObjectFile::parse(&bytes).unwrap();
    let kernel = std::fs::read(KERNEL_BTF).expect("the kernel's BTF");
    let linked = obj.link_with_kfuncs("iter_num", &[0], &kernel).unwrap();
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
    assert!(
        names.iter().any(|(_, n)| n == "bpf_iter_num_next"),
        "{names:?}"
    );
    let program = Program::new(&checked, Limits::default()).unwrap();
    let results = Map::new(MapDef::new("results", MapType::Array, 4, 8, NR_RESULTS), 1).unwrap();
    let mut env = ModelEnv::new(vec![results], ModelConfig::default());
    env.set_kfunc_names(names);
    let mut machine = Machine::new(program);
    let mut out = Vec::new();
    for frame in frames {
        let ctx = Context::xdp(frame, &[], XdpMd::default());
        let r0 = env
            .run(&mut machine, 0, &ctx)
            .unwrap_or_else(|f| panic!("the model run faults: {f}"));
        let packet = machine.memory().packet_data().unwrap().to_vec();
        out.push((r0, packet));
    }
    let entries = env.maps()[0].entries();
    let values = (0..NR_RESULTS)
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

fn final_packet(inv: &Invocation) -> Vec<u8> {
    inv.final_packet
        .clone()
        .or_else(|| inv.packet.clone())
        .unwrap_or_default()
}

#[test]
fn iterator_programs_record_replay_and_match_the_model() {
    if !common::kernel_tests_enabled("iterator_programs_record_replay_and_match_the_model") {
        return;
    }
    let out = std::env::temp_dir().join(format!("bpfrr-iter-num-{}.bpfrr", std::process::id()));
    let trace = record_fixture(&out);
    let _ = std::fs::remove_file(&out);
    let frames = frames();
    assert_eq!(trace.invocation_count(), frames.len() as u64);

    // (b) Every invocation replays identically.
    let summary = check_all(&trace);
    assert!(
        summary.all_identical() && summary.total == trace.invocation_count(),
        "{summary:?}"
    );

    // The recording holds the iterator's kfunc calls, named.
    let names: Vec<&str> = trace.programs()[0]
        .kfuncs
        .iter()
        .map(|k| k.name.as_str())
        .collect();
    for n in [
        "bpf_iter_num_new",
        "bpf_iter_num_next",
        "bpf_iter_num_destroy",
    ] {
        assert!(names.contains(&n), "{n} in {names:?}");
    }
    let invs: Vec<Invocation> = (0..trace.invocation_count())
        .map(|i| trace.invocation_owned(i).unwrap())
        .collect();
    let kfuncs = invs[0]
        .events
        .iter()
        .filter(|e| e.kind == EventKind::Kfunc)
        .count();
    // 42 bytes summed: 43 nexts, plus new/destroy and the other loops.
    assert!(kfuncs > 43 + 2, "{kfuncs} kfunc events");

    // (a) The kernel and the model agree on every frame and on the map.
    let (model, model_results) = model_run(&frames);
    for (i, (inv, (r0, packet))) in invs.iter().zip(&model).enumerate() {
        assert_eq!(inv.retval, *r0, "frame {i}: return value");
        assert_eq!(final_packet(inv), *packet, "frame {i}: packet out");
    }
    let kernel_results = recorded_results(&trace);
    assert_eq!(kernel_results, model_results, "the results map");

    // And they are what the iterator's semantics say, for the last frame
    // (20 bytes of 2).
    let last = &frames[3];
    assert_eq!(kernel_results[SUM as usize], 40);
    assert_eq!(kernel_results[LAST_INDEX as usize], last.len() as i64 - 1);
    assert_eq!(kernel_results[REPEATS as usize], 3);
    assert_eq!(kernel_results[EMPTY_STEPS as usize], 0);
    assert_eq!(kernel_results[REVERSED_RET as usize], -22, "-EINVAL");
    assert_eq!(kernel_results[REVERSED_STEPS as usize], 0);
    assert_eq!(kernel_results[TOO_LONG_RET as usize], -7, "-E2BIG");
    assert_eq!(kernel_results[FULL_INT_RET as usize], -7, "-E2BIG");
    // The sum's low byte went into the first packet byte; odd sums drop.
    assert_eq!(model[3].1[0], 40);
    assert_eq!(invs[3].retval, 2, "XDP_PASS for an even sum");
    assert_eq!(invs[1].retval, 1, "XDP_DROP for an odd sum");
}

#[test]
fn sessions_step_over_recorded_iterator_calls_and_back_exactly() {
    if !common::kernel_tests_enabled("sessions_step_over_recorded_iterator_calls_and_back_exactly")
    {
        return;
    }
    let out = std::env::temp_dir().join(format!(
        "bpfrr-iter-num-session-{}.bpfrr",
        std::process::id()
    ));
    let trace = record_fixture(&out);
    let _ = std::fs::remove_file(&out);
    let prog = &trace.programs()[0];
    let id_of = |name: &str| {
        prog.kfuncs
            .iter()
            .find(|k| k.name == name)
            .unwrap_or_else(|| panic!("{name} is named in the trace"))
            .btf_id
    };
    let inv = trace.invocation_owned(0).unwrap();
    let ids = [
        id_of("bpf_iter_num_new"),
        id_of("bpf_iter_num_next"),
        id_of("bpf_iter_num_destroy"),
    ];
    // Every call site of the three (each bpf_for has its own).
    let calls: Vec<usize> = inv
        .events
        .iter()
        .filter(|e| e.kind == EventKind::Kfunc && ids.contains(&e.id))
        .map(|e| e.insn as usize)
        .collect();

    let mut r = Replayer::new(&trace);
    let mut s = Session::for_invocation(&mut r, 0).unwrap();
    let start = s.machine().state().clone();
    let mut stepped_over = 0;
    // Each time the program is at one of the calls: step over it (the
    // iterator on the stack changes), back (exactly the state before),
    // and over again.
    loop {
        if calls.contains(&s.pc()) {
            let before = s.machine().state().clone();
            assert_eq!(s.step().reason, StopReason::Done);
            let after = s.machine().state().clone();
            assert!(before != after, "the call at {} changes the state", s.pc());
            s.reverse_step();
            assert!(before == *s.machine().state(), "back before the call");
            s.step();
            assert!(after == *s.machine().state(), "over it again");
            stepped_over += 1;
            continue;
        }
        match s.step().reason {
            StopReason::Done => {}
            StopReason::Exited { .. } => break,
            other => panic!("the replay stops at {}: {other:?}", s.pc()),
        }
    }
    assert!(stepped_over > 43, "{stepped_over} iterator calls");
    assert_eq!(s.reverse_continue().reason, StopReason::Start);
    assert!(start == *s.machine().state(), "back at the start");
    assert_eq!(s.continue_().reason, StopReason::Exited { r0: inv.retval });
}
