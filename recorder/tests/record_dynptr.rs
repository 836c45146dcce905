//! Programs reading and changing their packet through a packet dynptr
//! (`bpf_dynptr_from_xdp`, `bpf_dynptr_slice`/`_rdwr`, the dynptr kfuncs
//! and the helpers `bpf_dynptr_read`/`_write`) on the real kernel: the
//! instrumented program loads, the test-run recording replays identically,
//! a session steps over every dynptr call and back exactly, and the model
//! environment (what `bpfrr run` does) gives the kernel's return values,
//! packets and map contents. The fixture is
//! `samples/fixtures/dynptr_xdp.bpf.c`. Kernel tests: root, or SKIPPED
//! (CI=true: failed).
#![cfg(target_os = "linux")]

mod common;
mod kfunc_fixture;

use std::path::{Path, PathBuf};

use bpfrr_replayer::vm::{Context, SkbProgram, XdpMd};
use bpfrr_trace::catalog::helper_by_name;
use bpfrr_trace::trace::{EventKind, Trace};
use kfunc_fixture::{
    final_packet, fixture, model_run_program, record_in_temp, record_program, recorded_map,
    replayed_identically_naming, step_over_each_call_and_back, unhex,
};

/// The fixture's `results` map keys (value = s64), as in the fixture.
#[allow(dead_code)]
#[derive(Clone, Copy)]
enum R {
    FromRet,
    BadFlagsRet,
    BadIsNull,
    Size,
    IsNull,
    IsRdonly,
    EthProto,
    IpProto,
    UdpDport,
    AtEndByte,
    PastEndNull,
    ReadSaddr,
    ReadRet,
    ReadPastEndRet,
    ReadFlagsRet,
    WriteRet,
    WriteFlagsRet,
    TtlAfter,
    CloneRet,
    AdjustRet,
    AdjustedSize,
    AdjustedFirst,
    AdjustReversedRet,
    AdjustRangeRet,
    ZeroAtEnd,
    BadSize,
    DataNull,
}
const NR_RESULTS: u32 = 27;

fn object() -> PathBuf {
    fixture("dynptr_xdp")
}

/// A TCP frame (dropped after the TTL changes), a non-IP frame, an IPv4
/// frame cut before the end of its header (the IP slice is NULL), UDP to
/// port 80 with a payload (XDP_PASS) and last UDP to port 53 (XDP_TX).
fn frames() -> Vec<Vec<u8>> {
    let eth = "0a0b0c0d0e0f00112233445508004500";
    let udp53 = unhex(&format!(
        "{eth}001c0001000040110000c0a80001c0a80002abcd00350008beef"
    ));
    let mut udp80 = unhex(&format!(
        "{eth}00240001000040110000c0a80001c0a80002abcd00500010beef"
    ));
    udp80.extend(b"payload!");
    let tcp = unhex(&format!(
        "{eth}00280001000040060000c0a80001c0a8000200500050000000000000000050000000aaaa0000"
    ));
    let short_ip = unhex(&format!("{eth}001c00010000401100"));
    let not_ip = vec![2u8; 20];
    vec![tcp, not_ip, short_ip, udp80, udp53]
}

fn record_fixture(out: &Path) -> Trace {
    record_program(&object(), "dynptr_xdp", frames(), out)
}

/// The `results` map at the end of the recording, by key (s64 values).
fn recorded_results(trace: &Trace) -> Vec<i64> {
    recorded_map(trace, NR_RESULTS)
}

/// The fixture run in the model environment, linked against the running
/// kernel's BTF as `bpfrr run` does (kfuncs by name): per frame the return
/// value and the packet out, and the `results` map at the end.
fn model_run(frames: &[Vec<u8>]) -> (Vec<(u64, Vec<u8>)>, Vec<i64>) {
    let ctx = |frame: &[u8]| Context::xdp(frame, &[], XdpMd::default());
    model_run_program(
        &object(),
        "dynptr_xdp",
        frames,
        ctx,
        NR_RESULTS,
        "bpf_dynptr_slice",
    )
}

#[test]
fn dynptr_programs_record_replay_and_match_the_model() {
    if !common::kernel_tests_enabled("dynptr_programs_record_replay_and_match_the_model") {
        return;
    }
    let trace = record_in_temp("bpfrr-dynptr", record_fixture);
    let frames = frames();
    assert_eq!(trace.invocation_count(), frames.len() as u64);

    // (b) Every invocation replays identically, and the recording names
    // the dynptr kfunc calls.
    let invs = replayed_identically_naming(
        &trace,
        &[
            "bpf_dynptr_from_xdp",
            "bpf_dynptr_slice",
            "bpf_dynptr_slice_rdwr",
            "bpf_dynptr_size",
            "bpf_dynptr_adjust",
            "bpf_dynptr_clone",
        ],
    );

    // (a) The kernel and the model agree on every frame and on the map.
    let (model, model_results) = model_run(&frames);
    for (i, (inv, (r0, packet))) in invs.iter().zip(&model).enumerate() {
        assert_eq!(inv.retval, *r0, "frame {i}: return value");
        assert_eq!(final_packet(inv), *packet, "frame {i}: packet out");
    }
    let kernel = recorded_results(&trace);
    assert_eq!(kernel, model_results, "the results map");

    // And they are what the dynptr semantics say. The last frame (UDP to
    // port 53) wrote every key.
    let r = |k: R| kernel[k as usize];
    let last = &frames[4];
    assert_eq!(r(R::FromRet), 0);
    assert_eq!(r(R::BadFlagsRet), -22, "-EINVAL");
    assert_eq!(r(R::BadIsNull), 1);
    assert_eq!(
        r(R::BadSize),
        i64::from((-22i32) as u32),
        "-EINVAL as a u32"
    );
    // bpf_xdp_pointer's quirk: zero bytes at the end are the packet's start.
    assert_eq!(
        r(R::ZeroAtEnd),
        1,
        "zero bytes at the end: a packet pointer"
    );
    assert_eq!(r(R::Size), last.len() as i64);
    assert_eq!((r(R::IsNull), r(R::IsRdonly)), (0, 0));
    assert_eq!(r(R::AtEndByte), i64::from(last[last.len() - 1]));
    assert_eq!(r(R::PastEndNull), 1);
    assert_eq!(r(R::ReadRet), 0);
    assert_eq!(r(R::ReadSaddr), 0x0100a8c0, "192.168.0.1");
    assert_eq!(r(R::ReadPastEndRet), -7, "-E2BIG");
    assert_eq!(r(R::ReadFlagsRet), -22);
    assert_eq!(
        r(R::DataNull),
        1,
        "bpf_dynptr_data: NULL on a packet dynptr"
    );
    assert_eq!((r(R::WriteRet), r(R::WriteFlagsRet)), (0, -22));
    assert_eq!((r(R::CloneRet), r(R::AdjustRet)), (0, 0));
    assert_eq!((r(R::AdjustedSize), r(R::AdjustedFirst)), (20, 0x45));
    assert_eq!(r(R::AdjustReversedRet), -22);
    assert_eq!(r(R::AdjustRangeRet), -34, "-ERANGE");
    assert_eq!(
        (r(R::IpProto), r(R::TtlAfter), r(R::UdpDport)),
        (17, 63, 53)
    );
    // The MACs are swapped and the TTL decremented in the packet out.
    let out = final_packet(&invs[4]);
    assert_eq!(out[..6], last[6..12]);
    assert_eq!(out[6..12], last[..6]);
    assert_eq!(out[22], last[22] - 1);
    assert_eq!(out[23..], last[23..]);
    let verdicts: Vec<u64> = invs.iter().map(|i| i.retval).collect();
    assert_eq!(verdicts, [1, 1, 1, 2, 3], "DROP x3, PASS, TX");
}

#[test]
fn sessions_step_over_recorded_dynptr_calls_and_back_exactly() {
    if !common::kernel_tests_enabled("sessions_step_over_recorded_dynptr_calls_and_back_exactly") {
        return;
    }
    let trace = record_in_temp("bpfrr-dynptr-session", record_fixture);
    let prog = &trace.programs()[0];
    let kfuncs: Vec<u32> = prog
        .kfuncs
        .iter()
        .filter(|k| k.name.starts_with("bpf_dynptr_"))
        .map(|k| k.btf_id)
        .collect();
    let helpers: Vec<u32> = ["dynptr_read", "dynptr_write", "dynptr_data"]
        .iter()
        .map(|n| helper_by_name(n).unwrap().id)
        .collect();
    // The UDP-to-53 frame: every dynptr call of the program runs.
    let index = 4;
    let inv = trace.invocation_owned(index).unwrap();
    let calls: Vec<usize> = inv
        .events
        .iter()
        .filter(|e| match e.kind {
            EventKind::Kfunc => kfuncs.contains(&e.id),
            EventKind::Helper => helpers.contains(&e.id),
            _ => false,
        })
        .map(|e| e.insn as usize)
        .collect();

    let stepped_over = step_over_each_call_and_back(&trace, index, &calls);
    assert_eq!(
        stepped_over,
        calls.len(),
        "every dynptr call was stepped over"
    );
    assert!(stepped_over >= 20, "{stepped_over} dynptr calls");
}

/// Keys of the skb fixture's `results` map; the cgroup program's are
/// these plus [`CG_BASE`].
const SKB_FROM_RET: usize = 0;
const SKB_BAD_FLAGS_RET: usize = 1;
const SKB_SIZE: usize = 2;
const SKB_IS_RDONLY: usize = 3;
const SKB_IP_PROTO: usize = 4;
const SKB_PAST_END_NULL: usize = 5;
const SKB_READ_RET: usize = 6;
const SKB_READ_SADDR: usize = 7;
const SKB_WRITE_RET: usize = 8;
const SKB_WRITE_FLAGS_RET: usize = 9;
const SKB_TTL_AFTER: usize = 10;
const SKB_ZERO_AT_END: usize = 11;
const CG_BASE: usize = 16;
const SKB_NR_RESULTS: u32 = 32;

/// Records `program` of the skb fixture on the frames (TCP, a non-IP
/// frame, then UDP; the kernel's skb test run refuses an IPv4 frame cut
/// inside its header), checks the replay, and compares kernel and model:
/// the results map.
fn skb_program_matches_the_model(program: &str, kind: SkbProgram) -> (Trace, Vec<i64>) {
    let out = std::env::temp_dir().join(format!("bpfrr-{program}-{}.bpfrr", std::process::id()));
    let object = fixture("dynptr_skb");
    let all = frames();
    let frames = vec![all[0].clone(), all[1].clone(), all[4].clone()];
    let trace = record_program(&object, program, frames.clone(), &out);
    let _ = std::fs::remove_file(&out);
    assert_eq!(trace.invocation_count(), frames.len() as u64);
    let invs = replayed_identically_naming(&trace, &["bpf_dynptr_from_skb"]);
    let ctx = |frame: &[u8]| Context::skb_test_run(kind, frame);
    let (model, model_results) = model_run_program(
        &object,
        program,
        &frames,
        ctx,
        SKB_NR_RESULTS,
        "bpf_dynptr_from_skb",
    );
    for (i, (inv, (r0, packet))) in invs.iter().zip(&model).enumerate() {
        assert_eq!(inv.retval, *r0, "{program} frame {i}: return value");
        if kind == SkbProgram::Tc {
            assert_eq!(
                final_packet(inv),
                *packet,
                "{program} frame {i}: packet out"
            );
        }
    }
    let kernel = recorded_map(&trace, SKB_NR_RESULTS);
    assert_eq!(kernel, model_results, "{program}: the results map");
    (trace, kernel)
}

#[test]
fn tc_dynptrs_are_writable_record_replay_and_match_the_model() {
    if !common::kernel_tests_enabled("tc_dynptrs_are_writable_record_replay_and_match_the_model") {
        return;
    }
    let (trace, r) = skb_program_matches_the_model("dynptr_tc", SkbProgram::Tc);
    // The last frame, UDP to port 53, as TC sees it: the whole frame.
    let last = &frames()[4];
    assert_eq!((r[SKB_FROM_RET], r[SKB_BAD_FLAGS_RET]), (0, -22));
    assert_eq!((r[SKB_SIZE], r[SKB_IS_RDONLY]), (last.len() as i64, 0));
    assert_eq!((r[SKB_PAST_END_NULL], r[SKB_READ_RET]), (1, 0));
    assert_eq!(r[SKB_READ_SADDR], 0x0100a8c0, "192.168.0.1");
    assert_eq!((r[SKB_WRITE_RET], r[SKB_WRITE_FLAGS_RET]), (0, -22));
    assert_eq!((r[SKB_IP_PROTO], r[SKB_TTL_AFTER]), (17, 63));
    assert_eq!(r[SKB_ZERO_AT_END], 1, "zero bytes at the end: a pointer");
    let inv = trace.invocation_owned(2).unwrap();
    let out = final_packet(&inv);
    assert_eq!(out[..6], [2, 0, 0, 0, 0, 1], "the new destination MAC");
    assert_eq!(out[22], last[22] - 1, "the TTL");
    let verdicts: Vec<u64> = (0..3)
        .map(|i| trace.invocation_owned(i).unwrap().retval)
        .collect();
    assert_eq!(verdicts, [2, 2, 0], "SHOT, SHOT, OK");
}

#[test]
fn cgroup_skb_dynptrs_are_read_only_record_replay_and_match_the_model() {
    if !common::kernel_tests_enabled(
        "cgroup_skb_dynptrs_are_read_only_record_replay_and_match_the_model",
    ) {
        return;
    }
    let (trace, r) = skb_program_matches_the_model("dynptr_cgroup", SkbProgram::CgroupSkb);
    // The skb starts at the IP header: 14 bytes less than the frame.
    let last = &frames()[4];
    let cg = |k: usize| r[CG_BASE + k];
    assert_eq!(cg(SKB_FROM_RET), 0);
    assert_eq!(cg(SKB_SIZE), last.len() as i64 - 14);
    assert_eq!(cg(SKB_IS_RDONLY), 1);
    assert_eq!(cg(SKB_WRITE_RET), -22, "-EINVAL: read-only");
    assert_eq!((cg(SKB_READ_RET), cg(SKB_READ_SADDR)), (0, 0x0100a8c0));
    assert_eq!(cg(SKB_IP_PROTO), 17);
    let verdicts: Vec<u64> = (0..3)
        .map(|i| trace.invocation_owned(i).unwrap().retval)
        .collect();
    assert_eq!(verdicts, [0, 0, 1], "TCP and the non-IP frame are denied");
}
