//! The numeric open-coded iterator (`bpf_iter_num_new/next/destroy`, what
//! `bpf_for` expands to) in replay and in the model: the kfuncs are known
//! by name (the trace's `Program::kfuncs`), carried out on the VM's stack,
//! `next` hands out the VM address of the iterator, the recorded r0 checks
//! the replay (a different `new` result or a different NULL from `next` is
//! a divergence), and sessions step over the calls and back exactly.

mod model_support;
mod replay_support;

use bpfrr_replayer::replay::{DivergenceKind, Replayer, check_all, replay_invocation};
use bpfrr_replayer::session::{Session, StopReason};
use bpfrr_replayer::vm::{Context, FaultKind};
use bpfrr_trace::isa::{CallTarget, Insn, Size};
use bpfrr_trace::trace::{EventKind, HelperEvent, Invocation, KfuncName, Trace};
use model_support::*;
use replay_support::*;

const TRACING: u32 = 26;
/// BTF ids of the recording kernel (any numbers: only the names count).
const NEW: i32 = 61_001;
const NEXT: i32 = 61_002;
const DESTROY: i32 = 61_003;
/// Where the kernel's `next` pointed: the iterator on the kernel's stack.
const KERNEL_IT: u64 = 0xffff_c900_0123_7ff8;
const EINVAL_R0: u64 = (-22i32) as u32 as u64;

fn kfunc(btf_id: i32) -> Insn {
    Insn::Call(CallTarget::Kfunc { btf_id, module: 0 })
}

/// `u64 prog(u64 *ctx) { s64 sum = 0; int *v; struct bpf_iter_num it;
///   int r = bpf_iter_num_new(&it, ctx[1], ctx[0]);
///   while ((v = bpf_iter_num_next(&it))) sum += *v;
///   bpf_iter_num_destroy(&it); return sum + r; }`
fn program_insns() -> Vec<Insn> {
    let [a, b] = fp(6, -8);
    vec![
        a,                      // 0: r6 = r10
        b,                      // 1: r6 += -8 (the iterator)
        ldx(Size::DW, 3, 1, 0), // 2: r3 = ctx[0] (end)
        ldx(Size::DW, 2, 1, 8), // 3: r2 = ctx[1] (start)
        mov_reg(1, 6),          // 4
        kfunc(NEW),             // 5
        mov_reg(8, 0),          // 6: r8 = new's result
        mov(7, 0),              // 7: sum
        mov_reg(1, 6),          // 8
        kfunc(NEXT),            // 9
        jeq(0, 0, 3),           // 10: -> 14
        ldx(Size::W, 1, 0, 0),  // 11: *v
        add_reg(7, 1),          // 12
        Insn::Ja {
            off: -6,
            long: false,
        }, // 13: -> 8
        mov_reg(1, 6),          // 14
        kfunc(DESTROY),         // 15
        mov_reg(0, 7),          // 16
        add_reg(0, 8),          // 17
        exit(),                 // 18
    ]
}

fn ev(insn: u32, id: i32, ret: u64) -> HelperEvent {
    HelperEvent {
        insn,
        kind: EventKind::Kfunc,
        id: id as u32,
        ret,
        outputs: Vec::new(),
    }
}

/// What the kernel records for `start..end` when `next` returns non-NULL
/// `steps` times: new's r0, the nexts, destroy.
fn events(new_ret: u64, steps: usize) -> Vec<HelperEvent> {
    let mut out = vec![ev(5, NEW, new_ret)];
    out.extend((0..steps).map(|_| ev(9, NEXT, KERNEL_IT)));
    out.push(ev(9, NEXT, 0));
    out.push(ev(15, DESTROY, 0));
    out
}

fn inv(start: i32, end: i32, events: Vec<HelperEvent>, retval: u64) -> Invocation {
    let mut ctx = (end as i64 as u64).to_le_bytes().to_vec();
    ctx.extend((start as i64 as u64).to_le_bytes());
    Invocation {
        ctx,
        events,
        retval,
        ..Invocation::default()
    }
}

fn trace_with(kfuncs: &[(i32, &str)], invocations: Vec<Invocation>) -> Trace {
    let mut p = trace_program(0, "iter", TRACING, &program_insns());
    p.verifier = verifier(&[8]);
    p.kfuncs = kfuncs
        .iter()
        .map(|&(id, name)| KfuncName {
            btf_id: id as u32,
            name: name.into(),
        })
        .collect();
    write_trace(&[p], &[], invocations)
}

fn trace(invocations: Vec<Invocation>) -> Trace {
    trace_with(
        &[
            (NEW, "bpf_iter_num_new"),
            (NEXT, "bpf_iter_num_next"),
            (DESTROY, "bpf_iter_num_destroy"),
        ],
        invocations,
    )
}

#[test]
fn iterator_loops_replay_identically() {
    let t = trace(vec![
        // 0+1+2
        inv(0, 3, events(0, 3), 3),
        // start == end: empty
        inv(7, 7, events(0, 0), 0),
        // start > end: -EINVAL, next returns NULL at once
        inv(5, 2, events(EINVAL_R0, 0), EINVAL_R0),
        // longer than BPF_MAX_LOOPS: -E2BIG
        inv(
            0,
            8 * 1024 * 1024 + 1,
            events((-7i32) as u32 as u64, 0),
            0xffff_fff9,
        ),
        // negative values, loaded as u32 (zero-extended): -2 + -1
        inv(-2, 0, events(0, 2), 0xffff_fffe + 0xffff_ffff),
    ]);
    let summary = check_all(&t);
    assert!(summary.all_identical(), "{summary:?}");
    assert_eq!(summary.identical, 5);
}

#[test]
fn next_points_at_the_vm_stack_not_at_the_kernel() {
    let t = trace(vec![inv(10, 12, events(0, 2), 21)]);
    let mut r = Replayer::new(&t);
    let mut s = Session::for_invocation(&mut r, 0).unwrap();
    s.goto(10); // after the first next
    let it = s.regs()[6];
    assert_eq!(s.regs()[0], it, "r0 is the iterator's VM address");
    assert_ne!(s.regs()[0], KERNEL_IT);
    let bytes = s.machine().memory().read(it, 8).unwrap().to_vec();
    assert_eq!(bytes, [10, 0, 0, 0, 12, 0, 0, 0], "cur = 10, end = 12");
    assert_eq!(s.continue_().reason, StopReason::Exited { r0: 21 });
}

#[test]
fn a_different_result_of_new_is_a_divergence() {
    // The kernel said -EINVAL where the replay's range is valid.
    let t = trace(vec![inv(0, 3, events(EINVAL_R0, 0), EINVAL_R0)]);
    let d = replay_invocation(&t, 0).unwrap().divergence.unwrap();
    assert_eq!(d.at.insn, 5);
    assert!(matches!(d.kind, DivergenceKind::Call { .. }), "{d:?}");
    assert!(
        d.message
            .contains("bpf_iter_num_new returns 0 in the replay, -22 in the recording"),
        "{d}"
    );
}

#[test]
fn next_returning_null_at_another_step_is_a_divergence() {
    // The kernel's loop stopped after two values; the replay's has three.
    let t = trace(vec![inv(0, 3, events(0, 2), 1)]);
    let d = replay_invocation(&t, 0).unwrap().divergence.unwrap();
    assert_eq!(d.at.insn, 9);
    assert!(
        d.message.contains(
            "bpf_iter_num_next returns the next value in the replay, NULL (done) in the recording"
        ),
        "{d}"
    );
    // And the other way round: one more value in the recording.
    let t = trace(vec![inv(0, 3, events(0, 4), 6)]);
    let d = replay_invocation(&t, 0).unwrap().divergence.unwrap();
    assert!(
        d.message.contains("returns NULL (done) in the replay"),
        "{d}"
    );
}

#[test]
fn kfuncs_are_known_by_name_whatever_their_ids() {
    // The same names under other ids: still the iterator.
    let insns: Vec<Insn> = program_insns()
        .into_iter()
        .map(|i| match i {
            Insn::Call(CallTarget::Kfunc { btf_id, module }) => Insn::Call(CallTarget::Kfunc {
                btf_id: btf_id + 1000,
                module,
            }),
            other => other,
        })
        .collect();
    let mut p = trace_program(0, "iter", TRACING, &insns);
    p.verifier = verifier(&[8]);
    p.kfuncs = [
        "bpf_iter_num_new",
        "bpf_iter_num_next",
        "bpf_iter_num_destroy",
    ]
    .iter()
    .zip([NEW, NEXT, DESTROY])
    .map(|(name, id)| KfuncName {
        btf_id: (id + 1000) as u32,
        name: (*name).into(),
    })
    .collect();
    let shifted: Vec<HelperEvent> = events(0, 3)
        .into_iter()
        .map(|mut e| {
            e.id += 1000;
            e
        })
        .collect();
    let t = write_trace(&[p], &[], vec![inv(0, 3, shifted, 3)]);
    assert!(check_all(&t).all_identical());
    // Unnamed kfuncs are answered from the recording alone, as before:
    // next's r0 is then the kernel's pointer, which the VM cannot read.
    let t = trace_with(&[], vec![inv(0, 3, events(0, 3), 3)]);
    let d = replay_invocation(&t, 0).unwrap().divergence.unwrap();
    assert_eq!(d.at.insn, 11, "{d}");
}

#[test]
fn sessions_step_over_iterator_calls_and_back_exactly() {
    let t = trace(vec![inv(0, 3, events(0, 3), 3)]);
    let mut r = Replayer::new(&t);
    let mut s = Session::for_invocation(&mut r, 0).unwrap();
    let start = s.machine().state().clone();
    assert_eq!(s.continue_().reason, StopReason::Exited { r0: 3 });
    let end = s.machine().state().clone();
    assert_eq!(s.reverse_continue().reason, StopReason::Start);
    assert!(start == *s.machine().state(), "back at the start");
    s.goto(u64::MAX);
    assert!(end == *s.machine().state(), "forward again");

    // Across each call, the iterator's bytes follow exactly.
    let it_bytes = |s: &Session<_>| -> Vec<u8> {
        let it = s.regs()[6];
        s.machine().memory().read(it, 8).unwrap().to_vec()
    };
    s.goto(5); // before new
    let before_new = it_bytes(&s);
    s.step();
    assert_eq!(
        it_bytes(&s),
        [0xff, 0xff, 0xff, 0xff, 3, 0, 0, 0],
        "cur = -1"
    );
    s.reverse_step();
    assert_eq!(it_bytes(&s), before_new, "new undone");
    s.goto(10);
    assert_eq!(
        it_bytes(&s),
        [0, 0, 0, 0, 3, 0, 0, 0],
        "first next: cur = 0"
    );
    s.reverse_step();
    assert_eq!(it_bytes(&s), [0xff, 0xff, 0xff, 0xff, 3, 0, 0, 0]);
    // The last next (NULL) zeroes the iterator; stepping back restores it.
    s.goto(u64::MAX);
    while s.machine().pc() != 10 || s.regs()[0] != 0 {
        s.reverse_step();
    }
    assert_eq!(it_bytes(&s), [0; 8], "drained");
    s.reverse_step();
    assert_eq!(it_bytes(&s), [2, 0, 0, 0, 3, 0, 0, 0], "cur = 2 before it");
    assert_eq!(s.continue_().reason, StopReason::Exited { r0: 3 });
}

#[test]
fn the_model_runs_the_iterator_by_name() {
    let ctx = |start: i64, end: i64| Context::raw_tracepoint(&[end as u64, start as u64]);
    let mut e = env(Vec::new());
    e.set_kfunc_names([
        (NEW as u32, "bpf_iter_num_new".to_string()),
        (NEXT as u32, "bpf_iter_num_next".to_string()),
        (DESTROY as u32, "bpf_iter_num_destroy".to_string()),
    ]);
    assert_eq!(run_once(&mut e, &program_insns(), &ctx(0, 5)), Ok(10));
    assert_eq!(run_once(&mut e, &program_insns(), &ctx(4, 4)), Ok(0));
    assert_eq!(
        run_once(&mut e, &program_insns(), &ctx(5, 2)),
        Ok(EINVAL_R0)
    );
    assert_eq!(
        run_once(
            &mut e,
            &program_insns(),
            &ctx(i32::MIN.into(), i32::MAX.into())
        ),
        Ok(0xffff_fff9),
        "-E2BIG"
    );
    // Unnamed: an unknown kfunc, as before.
    let mut bare = env(Vec::new());
    let f = run_once(&mut bare, &program_insns(), &ctx(0, 5)).unwrap_err();
    assert_eq!(f.pc, 5);
    assert!(
        matches!(f.kind, FaultKind::UnknownKfunc { btf_id: NEW, .. }),
        "{f:?}"
    );
    // Named but not modelled: the fault says which.
    let mut other = env(Vec::new());
    other.set_kfunc_names([(NEW as u32, "bpf_task_from_pid".to_string())]);
    let f = run_once(&mut other, &program_insns(), &ctx(0, 5)).unwrap_err();
    assert!(
        f.to_string().contains("bpf_task_from_pid is not modelled"),
        "{f}"
    );
}

#[test]
fn model_recordings_log_iterator_calls_and_replay_them() {
    // record_model_run (the `bpfrr run --ui` trace) logs the kfunc calls as
    // the recorder does; the replay checks them against the model again.
    let mut p = trace_program(0, "iter", TRACING, &program_insns());
    p.verifier = verifier(&[8]);
    p.kfuncs = trace(vec![]).programs()[0].kfuncs.clone();
    let input = |start: i64, end: i64| {
        let mut ctx = (end as u64).to_le_bytes().to_vec();
        ctx.extend((start as u64).to_le_bytes());
        Input {
            ctx,
            ..Input::default()
        }
    };
    let t = record(&[p], &[], &[input(0, 4), input(3, 1)], |_| {});
    let inv = t.invocation_owned(0).unwrap();
    assert_eq!(inv.retval, 6);
    let kinds: Vec<(u32, EventKind)> = inv.events.iter().map(|e| (e.insn, e.kind)).collect();
    assert_eq!(kinds.len(), 1 + 5 + 1, "new, 4 values and NULL, destroy");
    assert!(kinds.iter().all(|&(_, k)| k == EventKind::Kfunc));
    assert_eq!(t.invocation_owned(1).unwrap().retval, EINVAL_R0);
    let summary = check_all(&t);
    assert!(summary.all_identical() && summary.total == 2, "{summary:?}");
}

#[test]
fn divergences_name_the_kfuncs() {
    // The recording lacks the call to new.
    let mut evs = events(0, 3);
    evs.remove(0);
    let t = trace(vec![inv(0, 3, evs, 3)]);
    let d = replay_invocation(&t, 0).unwrap().divergence.unwrap();
    assert!(
        d.message.contains(&format!(
            "the program calls bpf_iter_num_new (kfunc {NEW}) at instruction 5, but the recording's next call (event 0) is bpf_iter_num_next (kfunc {NEXT}) at instruction 9"
        )),
        "{d}"
    );
}

#[test]
fn kfuncs_of_modules_are_not_taken_for_the_iterator() {
    // A module's BTF ids are its own: the same number as vmlinux's
    // bpf_iter_num_new in module 1 is another kfunc.
    let insns: Vec<Insn> = program_insns()
        .into_iter()
        .map(|i| match i {
            Insn::Call(CallTarget::Kfunc { btf_id: NEW, .. }) => Insn::Call(CallTarget::Kfunc {
                btf_id: NEW,
                module: 1,
            }),
            other => other,
        })
        .collect();
    let mut e = env(Vec::new());
    e.set_kfunc_names([(NEW as u32, "bpf_iter_num_new".to_string())]);
    let f = run_once(&mut e, &insns, &Context::raw_tracepoint(&[3, 0])).unwrap_err();
    assert!(
        matches!(
            f.kind,
            FaultKind::UnknownKfunc {
                btf_id: NEW,
                module: 1
            }
        ),
        "{f:?}"
    );
}
