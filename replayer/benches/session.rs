//! Session speed on a 1M-instruction invocation (a loop with a stack spill
//! and fill each iteration): time per step forward and back, goto to
//! random steps, reverse-continue to a watchpoint across the whole
//! invocation, and the undo log's bytes per step.
//!
//! `cargo bench -p bpfrr-replayer --bench session` (BPFRR_BENCH_STEPS to
//! change the size).

use std::time::{Duration, Instant};

use bpfrr_replayer::session::{DebugInfo, Session, StopReason};
use bpfrr_replayer::vm::{Context, Limits, Machine, NoHelpers, Program};
use bpfrr_trace::isa::{AluOp, Insn, JmpCond, Operand, Size, Width, check, encode_all};

fn alu(op: AluOp, dst: u8, src: Operand) -> Insn {
    Insn::Alu {
        width: Width::W64,
        op,
        dst,
        src,
    }
}

/// ~6 instructions per iteration; `iterations` of them.
fn loop_program(iterations: i32) -> Program {
    let insns = vec![
        alu(AluOp::Mov, 6, Operand::Imm(0)),
        Insn::Store {
            size: Size::DW,
            dst: 10,
            off: -16,
            src: Operand::Imm(7),
        },
        alu(AluOp::Mov, 7, Operand::Imm(0)),
        // loop: (3)
        alu(AluOp::Add, 6, Operand::Imm(1)),
        Insn::Store {
            size: Size::DW,
            dst: 10,
            off: -8,
            src: Operand::Reg(6),
        },
        Insn::Load {
            size: Size::DW,
            signed: false,
            dst: 1,
            src: 10,
            off: -8,
        },
        alu(AluOp::Add, 7, Operand::Reg(1)),
        alu(AluOp::Xor, 7, Operand::Reg(6)),
        Insn::Jump {
            width: Width::W64,
            cond: JmpCond::Lt,
            dst: 6,
            src: Operand::Imm(iterations),
            off: -6,
        },
        alu(AluOp::Mov, 0, Operand::Reg(7)),
        Insn::Exit,
    ];
    let checked = check(&encode_all(&insns)).expect("valid");
    Program::new(&checked, Limits::default()).expect("loadable")
}

fn session(iterations: i32) -> Session<NoHelpers> {
    let mut m = Machine::new(loop_program(iterations));
    m.start(0, &Context::none()).expect("start");
    Session::new(m, NoHelpers, DebugInfo::default()).expect("session")
}

fn per(d: Duration, n: u64) -> String {
    format!("{:.1} ns", d.as_nanos() as f64 / n.max(1) as f64)
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing: keep that quick.
    let benching = std::env::args().any(|a| a == "--bench");
    let steps: u64 = std::env::var("BPFRR_BENCH_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if benching { 1_000_000 } else { 20_000 });
    let iterations = (steps / 6) as i32;
    println!("session benchmark: loop program, {iterations} iterations");

    // Step forward through the whole invocation, one command each.
    let mut s = session(iterations);
    let t = Instant::now();
    let mut n = 0u64;
    while s.step().reason == StopReason::Done {
        n += 1;
    }
    let fwd = t.elapsed();
    let total = s.position();
    let stats = s.stats();
    println!("  invocation length            {total} steps");
    println!(
        "  step forward                 {} per step ({n} steps in {fwd:.2?})",
        per(fwd, n)
    );
    println!(
        "  undo log                     {:.2} bytes per step ({} bytes for {} steps), {} checkpoints ({} KiB)",
        stats.undo_bytes as f64 / stats.undo_steps.max(1) as f64,
        stats.undo_bytes,
        stats.undo_steps,
        stats.checkpoints,
        stats.checkpoint_bytes / 1024
    );

    // Step back through all of it (the log holds every step).
    let t = Instant::now();
    let mut n = 0u64;
    while s.reverse_step().reason == StopReason::Done {
        n += 1;
    }
    let back = t.elapsed();
    println!(
        "  step back (log held)         {} per step ({n} steps in {back:.2?})",
        per(back, n)
    );

    // Step back after a goto (the log is rebuilt one interval at a time).
    s.goto(total);
    let t = Instant::now();
    let mut n = 0u64;
    while s.reverse_step().reason == StopReason::Done {
        n += 1;
    }
    let back2 = t.elapsed();
    println!(
        "  step back (log rebuilt)      {} per step ({n} steps in {back2:.2?})",
        per(back2, n)
    );

    // goto: first into new territory (full speed), then random steps.
    let mut fresh = session(iterations);
    let t = Instant::now();
    fresh.goto(u64::MAX);
    println!(
        "  first goto to the end        {:.2?} (new territory, full speed + checkpoints)",
        t.elapsed()
    );
    let mut x: u64 = 0x9e3779b97f4a7c15;
    let mut worst = Duration::ZERO;
    let mut sum = Duration::ZERO;
    let jumps = 1000;
    for _ in 0..jumps {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let target = x % (total + 1);
        let t = Instant::now();
        fresh.goto(target);
        let d = t.elapsed();
        assert_eq!(fresh.position(), target);
        worst = worst.max(d);
        sum += d;
    }
    println!(
        "  goto a random step           mean {:.1} us, worst {:.1} us ({jumps} jumps)",
        sum.as_secs_f64() * 1e6 / jumps as f64,
        worst.as_secs_f64() * 1e6
    );

    // Reverse-continue from the end to the one write of fp-16 (step 1).
    fresh.goto(total);
    fresh.add_watchpoint("*(u64 *)(r10 - 16)").expect("watch");
    let t = Instant::now();
    let stop = fresh.reverse_continue();
    let rc = t.elapsed();
    assert!(
        matches!(stop.reason, StopReason::Watchpoint { .. }),
        "{stop:?}"
    );
    assert_eq!(fresh.position(), 1);
    println!(
        "  reverse-continue to a watch  {rc:.2?} over {} steps ({} per step)",
        total - 1,
        per(rc, total - 1)
    );

    // Continue forward with a breakpoint that never hits and a watchpoint.
    fresh.goto(0);
    fresh.add_breakpoint("9 if r6 == 0").expect("break");
    let t = Instant::now();
    let stop = fresh.continue_();
    let c = t.elapsed();
    assert!(matches!(stop.reason, StopReason::Watchpoint { .. }));
    fresh.enable_point(1, false).expect("disable watch");
    let t2 = Instant::now();
    let stop = fresh.continue_();
    let c2 = t2.elapsed();
    assert!(matches!(stop.reason, StopReason::Exited { .. }), "{stop:?}");
    println!(
        "  continue with a breakpoint   {} per step ({c2:.2?} for {} steps; first stop {c:.2?})",
        per(c2, total),
        total
    );
}
