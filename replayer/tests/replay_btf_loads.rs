//! Loads through BTF pointers (tp_btf, fentry): the replayer has no kernel
//! memory, so a load that hits no region at an instruction where the
//! recording holds BTF loads takes the next recorded value. Identical
//! replays pass; a load the recording does not have, a recorded load the
//! replay never makes and loads out of order are divergences; a wild load
//! at any other instruction still faults; sessions step over them and back
//! exactly.

mod model_support;
mod replay_support;

use bpfrr_replayer::replay::{DivergenceKind, Replayer, check_all, replay_invocation};
use bpfrr_replayer::session::{Session, StopReason};
use bpfrr_replayer::vm::FaultKind;
use bpfrr_trace::isa::Size;
use bpfrr_trace::trace::{BtfLoad, Invocation, Trace};
use model_support::*;
use replay_support::*;

const TRACING: u32 = 26;
/// The task pointer the tracepoint passed: kernel memory, in no VM region.
const TASK: u64 = 0xffff_8881_0a2b_3c00;

/// `int prog(u64 *ctx) { struct task_struct *t = (void *)ctx[0];
///   if (t->pid != 42) return 1; return t->start_time; }`
fn program_insns() -> Vec<bpfrr_trace::isa::Insn> {
    vec![
        ldx(Size::DW, 2, 1, 0),    // 0: r2 = ctx[0] (the task)
        ldx(Size::W, 3, 2, 1234),  // 1: r3 = t->pid (BTF load)
        mov(0, 1),                 // 2
        jne(3, 42, 2),             // 3: -> 6
        ldx(Size::DW, 4, 2, 1640), // 4: r4 = t->start_time (BTF load)
        mov_reg(0, 4),             // 5
        exit(),                    // 6
    ]
}

fn inv(loads: &[(u32, u64)], retval: u64) -> Invocation {
    Invocation {
        ctx: TASK.to_le_bytes().to_vec(),
        btf_loads: loads
            .iter()
            .map(|&(insn, value)| BtfLoad { insn, value })
            .collect(),
        retval,
        ..Invocation::default()
    }
}

/// The program's verifier log (level 2), which says that 1 and 4 load
/// through the task pointer.
const LOG: &str = "func#0 @0
0: R1=ctx() R10=fp0
0: (79) r2 = *(u64 *)(r1 +0)          ; R1=ctx() R2_w=trusted_ptr_task_struct()
1: (61) r3 = *(u32 *)(r2 +1234)       ; R2_w=trusted_ptr_task_struct() R3_w=scalar()
2: (b7) r0 = 1                        ; R0_w=1
3: (55) if r3 != 0x2a goto pc+2       ; R3_w=42
4: (79) r4 = *(u64 *)(r2 +1640)       ; R2_w=trusted_ptr_task_struct() R4_w=scalar()
5: (bf) r0 = r4                       ; R0_w=scalar()
6: (95) exit
from 3 to 6: R0_w=1 R1=ctx() R2_w=trusted_ptr_task_struct() R3_w=scalar() R10=fp0
6: (95) exit
processed 9 insns (limit 1000000) max_states_per_insn 0 total_states 1 peak_states 1 mark_read 0
";

fn trace_with_log(invocations: Vec<Invocation>, log: &str) -> Trace {
    let mut p = replay_support::trace_program(0, "on_task", TRACING, &program_insns());
    p.verifier = verifier(&[0]);
    if let Some(v) = p.verifier.as_mut() {
        v.log = log.to_string();
    }
    write_trace(&[p], &[], invocations)
}

fn trace(invocations: Vec<Invocation>) -> Trace {
    trace_with_log(invocations, LOG)
}

#[test]
fn recorded_btf_loads_replay_identically() {
    let t = trace(vec![
        inv(&[(1, 42), (4, 0x1234_5678_9abc)], 0x1234_5678_9abc),
        inv(&[(1, 7)], 1),
    ]);
    let summary = check_all(&t);
    assert_eq!(summary.identical, 2, "{summary:?}");
    let r = replay_invocation(&t, 0).unwrap();
    assert_eq!((r.btf_loads_recorded, r.btf_loads_matched), (2, 2));
    assert_eq!(r.retval, Some(0x1234_5678_9abc));
}

#[test]
fn btf_loads_that_do_not_match_the_recording_are_divergences() {
    let t = trace(vec![
        // The replay makes a second load (pid is 42) the recording lacks.
        inv(&[(1, 42)], 5),
        // The recording has a load the replay never makes.
        inv(&[(1, 7), (4, 5)], 1),
        // Out of order: the first recorded load is the one at 4.
        inv(&[(4, 5), (1, 42)], 5),
    ]);
    let d0 = replay_invocation(&t, 0).unwrap().divergence.unwrap();
    assert_eq!(d0.kind, DivergenceKind::BtfLoad { load: None });
    assert_eq!(d0.at.insn, 4);
    assert!(d0.message.contains("no more such loads"), "{d0}");
    let d1 = replay_invocation(&t, 1).unwrap().divergence.unwrap();
    assert_eq!(
        d1.kind,
        DivergenceKind::MissingBtfLoads {
            next_load: 1,
            remaining: 1
        }
    );
    assert!(d1.message.contains("instruction 4"), "{d1}");
    let d2 = replay_invocation(&t, 2).unwrap().divergence.unwrap();
    assert_eq!(d2.kind, DivergenceKind::BtfLoad { load: Some(0) });
    assert_eq!(d2.at.insn, 1);
}

#[test]
fn wild_loads_elsewhere_still_fault() {
    // No verifier log, loads recorded at 4 only: the load at 1 is no BTF
    // load bpfrr knows of, so it is a wild read as before.
    let t = trace_with_log(vec![inv(&[(4, 1)], 1)], "");
    let d = replay_invocation(&t, 0).unwrap().divergence.unwrap();
    match d.kind {
        DivergenceKind::Fault(f) => {
            assert_eq!(f.pc, 1);
            assert!(
                matches!(f.kind, FaultKind::NoRegion { addr, size: 4, write: false } if addr == TASK + 1234),
                "{f:?}"
            );
        }
        other => panic!("expected a fault, got {other:?}"),
    }
}

#[test]
fn a_partial_recording_ends_at_its_last_btf_load() {
    let mut i = inv(&[(1, 42)], 0);
    i.partial = true;
    let t = trace(vec![i]);
    let r = replay_invocation(&t, 0).unwrap();
    assert!(r.is_identical(), "{r}");
    assert_eq!(r.btf_loads_matched, 1);
}

#[test]
fn sessions_step_over_btf_loads_and_back_exactly() {
    let t = trace(vec![
        inv(&[(1, 42), (4, 0xabcdef)], 0xabcdef),
        inv(&[(1, 9)], 1),
    ]);
    let mut r = Replayer::new(&t);
    for i in 0..2 {
        let recorded = t.invocation_owned(i).unwrap();
        let mut s = Session::for_invocation(&mut r, i).unwrap();
        let start = s.machine().state().clone();
        assert_eq!(
            s.continue_().reason,
            StopReason::Exited {
                r0: recorded.retval
            }
        );
        let end = s.machine().state().clone();
        assert_eq!(s.reverse_continue().reason, StopReason::Start);
        assert!(
            start == *s.machine().state(),
            "invocation {i}: back at the start"
        );
        s.goto(u64::MAX);
        assert!(end == *s.machine().state(), "invocation {i}: forward again");
        s.finish_into(&mut r, i);
    }
    // Back and forth across each load: the registers follow exactly.
    let mut r = Replayer::new(&t);
    let mut s = Session::for_invocation(&mut r, 0).unwrap();
    s.goto(2);
    assert_eq!(s.regs()[3], 42, "after the load at 1");
    s.reverse_step();
    assert_eq!(s.regs()[3], 0, "before it");
    s.step();
    assert_eq!(s.regs()[3], 42);
    s.goto(5);
    assert_eq!(s.regs()[4], 0xabcdef, "after the load at 4");
    s.goto(1);
    assert_eq!((s.regs()[3], s.regs()[4]), (0, 0));
    s.goto(5);
    assert_eq!((s.regs()[3], s.regs()[4]), (42, 0xabcdef));
    assert_eq!(s.continue_().reason, StopReason::Exited { r0: 0xabcdef });
}

#[test]
fn the_model_environment_faults_on_btf_loads() {
    // With no recording, kernel memory is simply not there.
    let mut e = env(Vec::new());
    let ctx = bpfrr_replayer::vm::Context::raw_tracepoint(&[TASK]);
    let f = run_once(&mut e, &program_insns(), &ctx).unwrap_err();
    assert_eq!(f.pc, 1);
    assert!(matches!(f.kind, FaultKind::NoRegion { .. }), "{f:?}");
}
