//! Fidelity checks on traces made from assembled programs: a "recording"
//! is a model run logged as the recorder would log it (see
//! `replay_support`). Identical replays must pass; doctored traces
//! (changed return value, changed helper r0, removed or extra event,
//! changed packet byte, changed tail call) must each be reported as a
//! divergence naming the right instruction.

mod model_support;
mod replay_support;

use bpfrr_replayer::replay::{
    DivergenceKind, FidelityReport, Replayer, check_all, replay_invocation,
};
use bpfrr_trace::isa::{Imm64Kind, Insn, JmpCond, Operand, Size, Width};
use bpfrr_trace::trace::{EventKind, HelperEvent, TailCallTarget, Trace};
use model_support::*;
use replay_support::*;

const XDP: u32 = 6;
const RAW_TP: u32 = 17;
const ARRAY: u32 = 2;
const PROG_ARRAY: u32 = 3;

fn jgt_reg(dst: u8, src: u8, off: i16) -> Insn {
    Insn::Jump {
        width: Width::W64,
        cond: JmpCond::Gt,
        dst,
        src: Operand::Reg(src),
        off,
    }
}

fn jgt(dst: u8, imm: i32, off: i16) -> Insn {
    Insn::Jump {
        width: Width::W64,
        cond: JmpCond::Gt,
        dst,
        src: Operand::Imm(imm),
        off,
    }
}

/// An XDP program: counts invocations in array map 0, writes the count
/// and the low byte of `bpf_ktime_get_ns()` to packet bytes 0 and 1, and
/// returns XDP_PASS until the count exceeds 2, then XDP_DROP.
fn counter_insns() -> Vec<Insn> {
    let mut v = vec![
        mov_reg(6, 1),                 // 0
        st(Size::W, 10, -4, 0),        // 1
        ld_map(1, 0),                  // 2-3
        mov_reg(2, 10),                // 4
        add(2, -4),                    // 5
        call("map_lookup_elem"),       // 6
        jne(0, 0, 2),                  // 7 -> 10
        mov(0, 0),                     // 8
        exit(),                        // 9
        mov(7, 1),                     // 10
        atomic_add(Size::DW, 0, 0, 7), // 11
        ldx(Size::DW, 8, 0, 0),        // 12
        call("ktime_get_ns"),          // 13
        mov_reg(9, 0),                 // 14
        ldx(Size::W, 2, 6, 0),         // 15: data
        ldx(Size::W, 3, 6, 4),         // 16: data_end
        mov_reg(4, 2),                 // 17
        add(4, 2),                     // 18
        jgt_reg(4, 3, 2),              // 19 -> 22
        stx(Size::B, 2, 0, 8),         // 20: pkt[0] = count
        stx(Size::B, 2, 1, 9),         // 21: pkt[1] = ktime
        mov(0, 2),                     // 22: XDP_PASS
        jgt(8, 2, 1),                  // 23 -> 25
        exit(),                        // 24
        mov(0, 1),                     // 25: XDP_DROP
        exit(),                        // 26
    ];
    v.shrink_to_fit();
    v
}

const LOOKUP_INSN: u32 = 6;
const KTIME_INSN: u32 = 13;

fn counter_trace() -> Trace {
    let mut p = trace_program(0, "counter", XDP, &counter_insns());
    p.line_info = lines(&[
        (0, 10, "int counter(struct xdp_md *ctx)"),
        (6, 12, "count = bpf_map_lookup_elem(&counts, &key);"),
        (10, 13, "__sync_fetch_and_add(count, 1);"),
        (13, 14, "t = bpf_ktime_get_ns();"),
        (20, 16, "pkt[0] = *count;"),
        (21, 17, "pkt[1] = t;"),
        (22, 19, "return *count > 2 ? XDP_DROP : XDP_PASS;"),
    ]);
    p.verifier = verifier(&[4]);
    let counts = trace_map(
        0,
        "counts",
        ARRAY,
        (4, 8, 1),
        vec![(vec![0; 4], vec![0; 8])],
    );
    let inputs: Vec<Input> = (0..3)
        .map(|i| Input {
            program: 0,
            ctx: vec![0; 24],
            packet: Some((0..16).map(|b| b as u8 + 16 * i).collect()),
            ..Input::default()
        })
        .collect();
    record(&[p], &[counts], &inputs, |_| {})
}

fn divergence(r: &FidelityReport) -> &bpfrr_replayer::replay::Divergence {
    r.divergence
        .as_ref()
        .unwrap_or_else(|| panic!("expected a divergence, got {r}"))
}

#[test]
fn a_recording_made_from_a_model_run_replays_identically() {
    let trace = counter_trace();
    let summary = check_all(&trace);
    assert!(summary.all_identical(), "{summary}");
    assert_eq!(summary.total, 3);
    assert_eq!(summary.to_string(), "3/3 invocations replayed identically");
    let mut replayer = Replayer::new(&trace);
    let retvals: Vec<_> = (0..3)
        .map(|i| {
            let r = replayer.replay(i).expect("replays");
            assert_eq!((r.calls_recorded, r.calls_matched), (2, 2), "{r}");
            assert!(r.notes.is_empty(), "{:?}", r.notes);
            r.retval
        })
        .collect();
    assert_eq!(retvals, [Some(2), Some(2), Some(1)]);
}

#[test]
fn one_invocation_replays_alone_after_the_ones_before_it() {
    let trace = counter_trace();
    let r = replay_invocation(&trace, 2).expect("replays");
    assert!(r.is_identical(), "{r}");
    assert_eq!(r.retval, Some(1));
    // Going back rebuilds the maps from the start snapshot.
    let mut replayer = Replayer::new(&trace);
    for i in [2, 0, 1, 2] {
        let r = replayer.replay(i).expect("replays");
        assert!(r.is_identical(), "{r}");
    }
}

#[test]
fn a_changed_return_value_names_the_exit_and_the_instruction_that_set_r0() {
    let trace = counter_trace();
    let mut invs = invocations(&trace);
    invs[1].retval = 1;
    let doctored = with_invocations(&trace, invs);
    let summary = check_all(&doctored);
    assert_eq!((summary.identical, summary.diverged), (2, 1), "{summary}");
    let r = &summary.divergences[0];
    assert_eq!(r.invocation, 1);
    let d = divergence(r);
    assert_eq!(
        d.kind,
        DivergenceKind::ReturnValue {
            recorded: 1,
            replayed: 2
        }
    );
    assert_eq!(d.at.insn, 24, "{d}");
    let line = d.at.line.as_ref().expect("line info");
    assert_eq!(line.line, 19);
    let related = d.related.as_ref().expect("r0 located");
    assert_eq!(related.insn, 22, "{d}");
    assert!(related.step.is_some());
    let text = r.to_string();
    assert!(text.contains("invocation 1"), "{text}");
    assert!(text.contains("test.bpf.c:19"), "{text}");
    assert!(
        summary
            .to_string()
            .starts_with("2/3 invocations replayed identically")
    );
}

#[test]
fn a_changed_helper_result_is_traced_to_the_store_it_changes() {
    let trace = counter_trace();
    let mut invs = invocations(&trace);
    let ev = &mut invs[0].events[1];
    assert_eq!(ev.insn, KTIME_INSN);
    ev.ret ^= 0xff;
    let doctored = with_invocations(&trace, invs);
    let r = replay_invocation(&doctored, 0).expect("replays");
    let d = divergence(&r);
    assert!(
        matches!(d.kind, DivergenceKind::PacketByte { offset: 1, .. }),
        "{d}"
    );
    assert_eq!(d.at.insn, 21, "{d}");
    assert_eq!(d.at.line.as_ref().map(|l| l.line), Some(17));
}

#[test]
fn a_null_lookup_result_makes_the_program_skip_recorded_calls() {
    let trace = counter_trace();
    let mut invs = invocations(&trace);
    invs[2].events[0].ret = 0;
    invs[2].events[0].outputs.clear();
    let r = replay_invocation(&with_invocations(&trace, invs), 2).expect("replays");
    let d = divergence(&r);
    assert_eq!(
        d.kind,
        DivergenceKind::MissingCalls {
            next_event: 1,
            remaining: 1
        },
        "{d}"
    );
    assert_eq!(d.at.insn, 9, "the exit of the null branch: {d}");
    assert!(d.message.contains("bpf_ktime_get_ns"), "{d}");
}

#[test]
fn a_removed_event_is_reported_at_the_call_that_finds_another() {
    let trace = counter_trace();
    let mut invs = invocations(&trace);
    invs[2].events.remove(0); // the lookup
    invs[1].events.remove(1); // the ktime call
    let doctored = with_invocations(&trace, invs);
    let summary = check_all(&doctored);
    assert_eq!(summary.diverged, 2, "{summary}");
    let d1 = divergence(&summary.divergences[0]);
    assert_eq!(d1.at.insn, KTIME_INSN, "{d1}");
    assert_eq!(d1.kind, DivergenceKind::Call { event: None });
    assert!(d1.message.contains("no more calls"), "{d1}");
    let d2 = divergence(&summary.divergences[1]);
    assert_eq!(d2.at.insn, LOOKUP_INSN, "{d2}");
    assert_eq!(d2.kind, DivergenceKind::Call { event: Some(0) });
    assert!(
        d2.message.contains("bpf_map_lookup_elem") && d2.message.contains("bpf_ktime_get_ns"),
        "{d2}"
    );
    assert_eq!(d2.at.line.as_ref().map(|l| l.line), Some(12));
}

#[test]
fn an_extra_recorded_event_is_reported_at_the_exit() {
    let trace = counter_trace();
    let mut invs = invocations(&trace);
    let extra = invs[0].events[1].clone();
    invs[0].events.push(extra);
    let r = replay_invocation(&with_invocations(&trace, invs), 0).expect("replays");
    let d = divergence(&r);
    assert!(matches!(d.kind, DivergenceKind::MissingCalls { .. }), "{d}");
    assert_eq!(d.at.insn, 24, "{d}");
}

#[test]
fn a_changed_packet_byte_names_its_last_write_or_the_exit() {
    let trace = counter_trace();
    let mut invs = invocations(&trace);
    invs[0].final_packet.as_mut().unwrap()[0] ^= 0x80;
    invs[1].final_packet.as_mut().unwrap()[5] ^= 0x80;
    let summary = check_all(&with_invocations(&trace, invs));
    assert_eq!(summary.diverged, 2, "{summary}");
    let d0 = divergence(&summary.divergences[0]);
    assert!(
        matches!(d0.kind, DivergenceKind::PacketByte { offset: 0, .. }),
        "{d0}"
    );
    assert_eq!(d0.at.insn, 20, "{d0}");
    let d1 = divergence(&summary.divergences[1]);
    assert!(
        matches!(d1.kind, DivergenceKind::PacketByte { offset: 5, .. }),
        "{d1}"
    );
    assert_eq!(d1.at.insn, 24, "{d1}");
    assert!(d1.message.contains("never writes that byte"), "{d1}");
}

#[test]
fn a_map_changed_behind_the_program_is_a_note_not_a_divergence() {
    // Looks up key 0, increments the value if present, returns 2.
    let insns = [
        st(Size::W, 10, -4, 0),
        ld_map(1, 0),
        mov_reg(2, 10),
        add(2, -4),
        call("map_lookup_elem"),
        jeq(0, 0, 2),
        mov(1, 1),
        atomic_add(Size::DW, 0, 0, 1),
        mov(0, 2),
        exit(),
    ];
    let p = trace_program(0, "bump", RAW_TP, &insns);
    let m = trace_map(0, "counts", ARRAY, (4, 8, 1), vec![]);
    let inputs = vec![
        Input {
            ctx: vec![0; 8],
            ..Input::default()
        };
        3
    ];
    let trace = record(&[p], &[m], &inputs, |_| {});
    assert!(check_all(&trace).all_identical());
    // Another CPU set the value to 100 before invocation 1.
    let mut invs = invocations(&trace);
    let out = &mut invs[1].events[0].outputs[0];
    assert_eq!(out.arg, 0, "lookups record the value as output 0");
    out.bytes = 100u64.to_le_bytes().to_vec();
    let doctored = with_invocations(&trace, invs);
    let mut replayer = Replayer::new(&doctored);
    let r0 = replayer.replay(0).expect("replays");
    assert!(
        r0.is_identical() && r0.notes.is_empty(),
        "{r0} {:?}",
        r0.notes
    );
    let r1 = replayer.replay(1).expect("replays");
    assert!(r1.is_identical(), "{r1}");
    assert_eq!(r1.notes.len(), 1, "{:?}", r1.notes);
    assert!(
        r1.notes[0].message.contains("another CPU or userspace"),
        "{:?}",
        r1.notes
    );
    assert_eq!(r1.notes[0].insn, 5);
    // The model followed the recording (100, then 101 after the increment);
    // invocation 2's recording still says 2, so they disagree again.
    let r2 = replayer.replay(2).expect("replays");
    assert!(r2.is_identical(), "{r2}");
    assert_eq!(r2.notes.len(), 1, "{:?}", r2.notes);
}

#[test]
fn global_data_carries_over_from_one_invocation_to_the_next() {
    // .bss counter through a BPF_PSEUDO_MAP_IDX_VALUE reference (the trace
    // convention: imm indexes used_maps).
    let insns = [
        Insn::LoadImm64 {
            kind: Imm64Kind::MapIdxValue,
            dst: 1,
            imm: 0,
        },
        ldx(Size::DW, 0, 1, 0),
        add(0, 1),
        stx(Size::DW, 1, 0, 0),
        exit(),
    ];
    let mut p = trace_program(0, "bss_counter", RAW_TP, &insns);
    p.used_maps = vec![1];
    let other = trace_map(0, "unused", ARRAY, (4, 4, 1), vec![]);
    let mut bss = trace_map(
        1,
        ".bss",
        ARRAY,
        (4, 8, 1),
        vec![(vec![0; 4], 5u64.to_le_bytes().to_vec())],
    );
    bss.initial_data = Some(vec![0; 8]);
    let inputs = vec![
        Input {
            ctx: vec![0; 16],
            ..Input::default()
        };
        3
    ];
    let trace = record(&[p], &[other, bss], &inputs, |_| {});
    let retvals: Vec<u64> = invocations(&trace).iter().map(|i| i.retval).collect();
    assert_eq!(retvals, [6, 7, 8], "the start snapshot seeds .bss");
    assert!(check_all(&trace).all_identical());
    let r = replay_invocation(&trace, 2).expect("replays");
    assert!(r.is_identical(), "{r}");
    assert_eq!(r.retval, Some(8));
}

#[test]
fn tail_calls_follow_the_recording() {
    let main = [
        mov_reg(6, 1),
        call("ktime_get_ns"),
        ld_map(2, 0),
        mov(3, 0),
        mov_reg(1, 6),
        call("tail_call"), // 6
        mov(0, 9),
        exit(), // 8
    ];
    let target = [call("ktime_get_ns"), mov(0, 7), exit()];
    let mut p0 = trace_program(0, "entry", XDP, &main);
    p0.tail_call_targets = vec![TailCallTarget {
        map: 0,
        slot: 0,
        program: 1,
    }];
    let p1 = trace_program(1, "target", XDP, &target);
    let jmp = trace_map(0, "jmp", PROG_ARRAY, (4, 4, 4), vec![]);
    let inputs = vec![Input {
        ctx: vec![0; 24],
        packet: Some(vec![0; 20]),
        ..Input::default()
    }];
    let trace = record(&[p0, p1], &[jmp], &inputs, |_| {});
    let inv = trace.invocation_owned(0).unwrap();
    assert_eq!(inv.retval, 7);
    assert_eq!(inv.events[1].kind, EventKind::TailCall);
    assert_eq!((inv.events[1].insn, inv.events[1].id), (6, 1));
    let r = replay_invocation(&trace, 0).expect("replays");
    assert!(r.is_identical(), "{r}");
    assert_eq!(r.retval, Some(7));

    // The recording says the slot was empty: the replay falls through,
    // returns 9 and leaves the target's call unmade.
    let mut invs = invocations(&trace);
    invs[0].events[1].id = u32::MAX;
    let r = replay_invocation(&with_invocations(&trace, invs), 0).expect("replays");
    let d = divergence(&r);
    assert!(
        matches!(d.kind, DivergenceKind::MissingCalls { remaining: 1, .. }),
        "{d}"
    );
    assert_eq!((d.at.program, d.at.insn), (0, 8), "{d}");
    assert_eq!(r.retval, Some(9));
}

#[test]
fn callbacks_run_as_the_recording_says() {
    let insns = [
        mov(1, 3),
        ld_func(2, 5), // 1-2 -> 7
        mov(3, 0),
        mov(4, 0),
        call("loop"), // 5
        exit(),
        call("ktime_get_ns"), // 7
        mov(0, 0),
        exit(),
    ];
    let mut p = trace_program(0, "looper", RAW_TP, &insns);
    p.verifier = verifier(&[0, 0]);
    let inputs = vec![Input {
        ctx: vec![0; 8],
        ..Input::default()
    }];
    let trace = record(&[p], &[], &inputs, |_| {});
    let inv = trace.invocation_owned(0).unwrap();
    let order: Vec<u32> = inv.events.iter().map(|e| e.insn).collect();
    assert_eq!(
        order,
        [7, 7, 7, 5],
        "callback calls come before the loop's own event"
    );
    assert_eq!(inv.retval, 3);
    let r = replay_invocation(&trace, 0).expect("replays");
    assert!(r.is_identical(), "{r}");
    assert_eq!(r.calls_matched, 4);

    // One callback call fewer in the recording: the third iteration's call diverges.
    let mut invs = invocations(&trace);
    invs[0].events.remove(0);
    let r = replay_invocation(&with_invocations(&trace, invs), 0).expect("replays");
    let d = divergence(&r);
    assert_eq!(d.at.insn, 7, "{d}");
    assert_eq!(d.kind, DivergenceKind::Call { event: Some(2) });

    // A different loop count in the recording.
    let mut invs = invocations(&trace);
    invs[0].events[3].ret = 2;
    let r = replay_invocation(&with_invocations(&trace, invs), 0).expect("replays");
    let d = divergence(&r);
    assert_eq!(d.at.insn, 5, "{d}");
    assert!(d.message.contains("bpf_loop"), "{d}");
}

#[test]
fn a_replay_fault_is_a_divergence_naming_the_instruction() {
    // The recording says the lookup found a value, but holds no bytes and
    // the pointer is then read 8 bytes past a 4-byte value.
    let insns = [
        st(Size::W, 10, -4, 0),
        ld_map(1, 0),
        mov_reg(2, 10),
        add(2, -4),
        call("map_lookup_elem"),
        jeq(0, 0, 1),
        ldx(Size::DW, 0, 0, 0), // 7
        exit(),
    ];
    let p = trace_program(0, "reader", RAW_TP, &insns);
    let m = trace_map(0, "small", ARRAY, (4, 8, 1), vec![]);
    let trace = record(
        &[p],
        &[m],
        &[Input {
            ctx: vec![0; 8],
            ..Input::default()
        }],
        |_| {},
    );
    assert!(check_all(&trace).all_identical());
    let mut trace_maps = trace.maps().to_vec();
    trace_maps[0].value_size = 4; // the value is now too small for the 8-byte load
    let mut invs = invocations(&trace);
    invs[0].events[0].outputs[0].bytes.truncate(4);
    let doctored = write_trace(trace.programs(), &trace_maps, invs);
    let r = replay_invocation(&doctored, 0).expect("replays");
    let d = divergence(&r);
    assert!(matches!(d.kind, DivergenceKind::Fault(_)), "{d}");
    assert_eq!(d.at.insn, 7, "{d}");
    assert!(d.message.contains("out of bounds"), "{d}");
}

#[test]
fn a_partial_recording_replays_as_far_as_it_goes() {
    let trace = counter_trace();
    let mut invs = invocations(&trace);
    invs[0].events.truncate(1);
    invs[0].partial = true;
    invs[0].retval = 0;
    let summary = check_all(&with_invocations(&trace, invs));
    assert!(summary.all_identical(), "{summary}");
    assert_eq!(summary.partial, 1);
    assert!(summary.to_string().contains("1 of them partial"));
}

#[test]
fn bad_invocation_indices_are_errors_not_panics() {
    let trace = counter_trace();
    let e = replay_invocation(&trace, 99).unwrap_err();
    assert!(e.to_string().contains("there is no invocation 99"), "{e}");
    let mut bad = trace_program(0, "bad", XDP, &[mov(0, 0)]); // falls off the end
    bad.id = 0;
    let t = write_trace(
        &[bad],
        &[],
        vec![bpfrr_trace::trace::Invocation {
            events: vec![HelperEvent::default()],
            ..Default::default()
        }],
    );
    let e = replay_invocation(&t, 0).unwrap_err();
    assert!(
        e.to_string().contains("cannot be loaded into the VM"),
        "{e}"
    );
    let summary = check_all(&t);
    assert_eq!((summary.total, summary.failed), (1, 1));
    assert!(!summary.all_identical());
}

#[test]
fn stepping_with_effects_gives_the_same_run_and_rewinding_the_env_replays_again() {
    let trace = counter_trace();
    let mut replayer = Replayer::new(&trace);
    let mut run = replayer.start(0).expect("starts");
    let mut steps = vec![];
    loop {
        let consumed = run.env.consumed();
        let fx = run.machine.step(&mut run.env);
        let done = !matches!(fx.outcome, bpfrr_replayer::vm::StepOutcome::Running);
        steps.push((fx, consumed));
        if done {
            break;
        }
    }
    assert_eq!(run.machine.status(), bpfrr_replayer::vm::Status::Exited(2));
    assert_eq!(run.env.consumed(), 2);
    // Undo everything, rewind the env, run again at full speed.
    while let Some((fx, consumed)) = steps.pop() {
        run.machine.undo(&fx);
        run.env.rewind(consumed, run.machine.memory());
    }
    assert_eq!(run.env.consumed(), 0);
    assert_eq!(run.machine.run(&mut run.env), Ok(2));
    assert!(run.env.divergence().is_none());
    replayer.finish(run);
    let r = replayer.replay(1).expect("replays");
    assert!(r.is_identical(), "{r}");
}
