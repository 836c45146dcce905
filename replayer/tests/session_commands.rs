//! Every movement command, forward and reverse, on a program with a
//! bpf-to-bpf call, and the per-step log.

mod session_support;

use bpfrr_replayer::session::StopReason;
use bpfrr_trace::isa::Size;
use session_support::*;

/// ```text
/// 0: r1 = 5
/// 1: call 5          (sub: r0 = r1 + 10)
/// 2: r6 = r0
/// 3: r0 = r6
/// 4: exit
/// 5: r0 = r1
/// 6: r0 += 10
/// 7: exit
/// ```
fn with_call() -> Vec<bpfrr_trace::isa::Insn> {
    vec![
        mov(1, 5),
        call_local(3),
        mov_reg(6, 0),
        mov_reg(0, 6),
        exit(),
        mov_reg(0, 1),
        add(0, 10),
        exit(),
    ]
}

#[test]
fn step_next_finish_continue_and_their_reverse_twins() {
    let mut s = model_session(&with_call(), &[0; 16]);
    assert_eq!(s.step().reason, StopReason::Done);
    assert_eq!((s.pc(), s.position()), (1, 1));

    // next steps over the call: 4 instructions later, back in frame 0.
    assert_eq!(s.next().reason, StopReason::Done);
    assert_eq!((s.pc(), s.position(), s.frames().len()), (2, 5, 1));
    assert_eq!(s.regs()[0], 15);

    // reverse-next steps back over it, to the call.
    assert_eq!(s.reverse_next().reason, StopReason::Done);
    assert_eq!((s.pc(), s.position(), s.frames().len()), (1, 1, 1));

    // step into the call, then finish out of it.
    s.step();
    assert_eq!((s.pc(), s.frames().len()), (5, 2));
    s.step();
    assert_eq!(s.pc(), 6);
    assert_eq!(s.finish().reason, StopReason::Done);
    assert_eq!((s.pc(), s.frames().len(), s.position()), (2, 1, 5));

    // reverse-finish from inside the callee lands on the call.
    s.goto(3);
    assert_eq!((s.pc(), s.frames().len()), (6, 2));
    assert_eq!(s.reverse_finish().reason, StopReason::Done);
    assert_eq!((s.pc(), s.frames().len(), s.position()), (1, 1, 1));

    // continue to the end; reverse-continue to the start.
    assert_eq!(s.continue_().reason, StopReason::Exited { r0: 15 });
    assert!(s.at_end());
    assert_eq!(
        s.step().reason,
        StopReason::Exited { r0: 15 },
        "stepping at the end stays there"
    );
    assert_eq!(s.reverse_continue().reason, StopReason::Start);
    assert_eq!(s.position(), 0);

    // finish in frame 0 runs to the end; reverse-finish in frame 0 to the start.
    assert_eq!(s.finish().reason, StopReason::Exited { r0: 15 });
    assert_eq!(s.reverse_finish().reason, StopReason::Start);
}

#[test]
fn goto_and_visits_of_an_instruction() {
    let mut s = model_session(&counting_loop(5), &[0; 16]);
    // Instruction 13 (r6 += 1) runs once per iteration.
    let mut visits = Vec::new();
    loop {
        let stop = s.goto_visit(13, None, true);
        if stop.reason != StopReason::Done {
            assert_eq!(stop.reason, StopReason::Exited { r0: 5 });
            break;
        }
        assert_eq!(s.pc(), 13);
        visits.push(s.position());
    }
    assert_eq!(visits.len(), 5);
    let last = *visits.last().unwrap();
    assert_eq!(s.goto_visit(13, Some(0), false).position, last);
    assert_eq!(s.goto_visit(13, None, false).position, visits[3]);
    assert_eq!(s.goto(visits[1]).position, visits[1]);
    assert_eq!(s.regs()[6], 1);
}

#[test]
fn the_log_lists_each_step_with_its_changes() {
    let mut s = model_session(&counting_loop(2), &[0; 16]);
    let records: Vec<_> = s.log().collect();
    assert!(s.at_end());
    assert_eq!(records.len() as u64, s.position());
    assert_eq!(records[0].step, 0);
    assert_eq!(records[0].text, "r6 = 0x0");
    assert_eq!(records[0].line.as_ref().unwrap().line, 1);
    // The second loop iteration's spill writes 1 to fp-8.
    let spill = records
        .iter()
        .filter(|r| r.pc == 1)
        .nth(1)
        .expect("second spill");
    assert_eq!(spill.mem.len(), 1);
    assert_eq!(spill.mem[0].place, "fp-8");
    assert_eq!(spill.mem[0].old, 0u64.to_le_bytes());
    assert_eq!(spill.mem[0].new, 1u64.to_le_bytes());
    // r6 += 1 shows old -> new.
    let inc = records.iter().find(|r| r.pc == 13).unwrap();
    assert_eq!(inc.regs.len(), 1);
    assert_eq!(
        (inc.regs[0].reg, inc.regs[0].old, inc.regs[0].new),
        (6, 0, 1)
    );
    // The helper call is listed with what it answered.
    let call = records.iter().find(|r| r.pc == 8).unwrap();
    assert_eq!(call.calls.len(), 1);
    assert!(call.text.contains("bpf_map_lookup_elem"), "{}", call.text);
    assert!(call.regs.iter().any(|r| r.reg == 0));
    // last_step agrees with the log anywhere.
    s.goto(records[20].step + 1);
    assert_eq!(s.last_step().as_ref(), Some(&records[20]));
    s.goto(0);
    assert_eq!(s.last_step(), None);
}

#[test]
fn a_fault_stops_the_session_on_the_faulting_instruction() {
    // Reads 8 bytes below the stack.
    let insns = vec![mov(1, 1), ldx(Size::DW, 0, 10, -520), exit()];
    let mut s = model_session(&insns, &[0; 16]);
    let stop = s.continue_();
    let StopReason::Fault(f) = &stop.reason else {
        panic!("{stop:?}")
    };
    assert!(f.to_string().contains("out of bounds"), "{f}");
    assert_eq!((s.pc(), s.position()), (1, 1));
    assert_eq!(s.regs()[1], 1, "the state before the faulting instruction");
    assert_eq!(s.reverse_step().position, 0);
    assert!(matches!(s.continue_().reason, StopReason::Fault(_)));
}

#[test]
fn progress_can_interrupt_a_long_run() {
    let mut s = model_session(&counting_loop(100_000), &[0; 16]);
    s.set_progress(Some(Box::new(|pos| pos < 200_000)));
    let stop = s.continue_();
    assert_eq!(stop.reason, StopReason::Interrupted);
    assert!(stop.position >= 200_000 && stop.position < 300_000);
}
