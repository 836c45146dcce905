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
mod kfunc_fixture;

use std::path::{Path, PathBuf};

use bpfrr_replayer::vm::{Context, XdpMd};
use bpfrr_trace::trace::{EventKind, Trace};
use kfunc_fixture::{
    final_packet, fixture, model_run_program, record_in_temp, record_program, recorded_map,
    replayed_identically_naming, step_over_each_call_and_back, unhex,
};

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
    fixture("iter_num")
}

/// Frames of several lengths: odd and even sums, the 64-byte cap.
fn frames() -> Vec<Vec<u8>> {
    let udp =
        "ffffffffffff00112233445508004500001c0001000040110000c0a80001c0a80002003500350008abcd";
    let udp = unhex(udp);
    let mut long = udp.clone();
    long.extend((0..100u8).map(|b| b.wrapping_mul(7)));
    let mut zeros = vec![0u8; 14];
    zeros[13] = 1;
    vec![udp, zeros, long, vec![2u8; 20]]
}

fn record_fixture(out: &Path) -> Trace {
    record_program(&object(), "iter_num", frames(), out)
}

/// The `results` map at the end of the recording, by key (s64 values).
fn recorded_results(trace: &Trace) -> Vec<i64> {
    recorded_map(trace, NR_RESULTS)
}

/// The fixture run in the model environment (see `model_run_program`).
fn model_run(frames: &[Vec<u8>]) -> (Vec<(u64, Vec<u8>)>, Vec<i64>) {
    let ctx = |frame: &[u8]| Context::xdp(frame, &[], XdpMd::default());
    model_run_program(
        &object(),
        "iter_num",
        frames,
        ctx,
        NR_RESULTS,
        "bpf_iter_num_next",
    )
}

#[test]
fn iterator_programs_record_replay_and_match_the_model() {
    if !common::kernel_tests_enabled("iterator_programs_record_replay_and_match_the_model") {
        return;
    }
    let trace = record_in_temp("bpfrr-iter-num", record_fixture);
    let frames = frames();
    assert_eq!(trace.invocation_count(), frames.len() as u64);

    // (b) Every invocation replays identically, and the recording names
    // the iterator's kfunc calls.
    let invs = replayed_identically_naming(
        &trace,
        &[
            "bpf_iter_num_new",
            "bpf_iter_num_next",
            "bpf_iter_num_destroy",
        ],
    );
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
    let trace = record_in_temp("bpfrr-iter-num-session", record_fixture);
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

    let stepped_over = step_over_each_call_and_back(&trace, 0, &calls);
    assert_eq!(
        stepped_over,
        calls.len(),
        "every iterator call was stepped over"
    );
    assert!(stepped_over > 43, "{stepped_over} iterator calls");
}
