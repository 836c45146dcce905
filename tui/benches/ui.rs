//! Frame render time of the replay UI on a 1M-step invocation: a trace
//! with one XDP invocation that loops over a packet load, a stack store
//! and a counter (5 instructions × 200,000 iterations + a prologue), the
//! session moved to the middle, every pane drawn into a ratatui
//! TestBackend at 200x50 (the wide layout with all eleven panes) and 80x24.
//!
//! `cargo bench -p bpfrr --bench ui` (BPFRR_BENCH_ITERATIONS to change the loop count).

#![allow(dead_code, unused_imports)]

#[path = "../src/commands/mod.rs"]
mod commands;
#[path = "../src/jit_view.rs"]
mod jit_view;
#[path = "../src/ui/mod.rs"]
mod ui;

use std::time::{Duration, Instant};

use bpfrr_trace::isa::{AluOp, Insn, JmpCond, Operand, Size, Width, encode_all};
use bpfrr_trace::trace::{Invocation, Program, Trace, TraceMeta, TraceWriter};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn alu(op: AluOp, dst: u8, src: Operand) -> Insn {
    Insn::Alu {
        width: Width::W64,
        op,
        dst,
        src,
    }
}

fn load(size: Size, dst: u8, src: u8, off: i16) -> Insn {
    Insn::Load {
        size,
        signed: false,
        dst,
        src,
        off,
    }
}

/// An XDP program running 5 × `iterations` + 9 instructions.
fn looping_program(iterations: i32) -> Program {
    let insns = vec![
        alu(AluOp::Mov, 6, Operand::Reg(1)),
        load(Size::W, 2, 6, 0),
        load(Size::W, 3, 6, 4),
        alu(AluOp::Mov, 4, Operand::Reg(2)),
        alu(AluOp::Add, 4, Operand::Imm(14)),
        Insn::Jump {
            width: Width::W64,
            cond: JmpCond::Gt,
            dst: 4,
            src: Operand::Reg(3),
            off: 7,
        },
        alu(AluOp::Mov, 7, Operand::Imm(0)),
        alu(AluOp::Mov, 8, Operand::Imm(0)),
        // loop (8):
        load(Size::B, 5, 2, 12),
        alu(AluOp::Add, 8, Operand::Reg(5)),
        Insn::Store {
            size: Size::DW,
            dst: 10,
            off: -8,
            src: Operand::Reg(8),
        },
        alu(AluOp::Add, 7, Operand::Imm(1)),
        Insn::Jump {
            width: Width::W64,
            cond: JmpCond::Lt,
            dst: 7,
            src: Operand::Imm(iterations),
            off: -5,
        },
        // out (13):
        alu(AluOp::Mov, 0, Operand::Imm(2)),
        Insn::Exit,
    ];
    Program {
        id: 0,
        name: "xdp_loop".into(),
        prog_type: 6, // BPF_PROG_TYPE_XDP
        insns: encode_all(&insns).iter().map(|r| r.to_bytes()).collect(),
        ..Program::default()
    }
}

fn trace(iterations: i32) -> Trace {
    let mut packet = vec![0u8; 64];
    packet[12] = 0x08; // EtherType IPv4
    packet[14] = 0x45;
    packet[26..30].copy_from_slice(&[192, 0, 2, 7]);
    let path = std::env::temp_dir().join(format!("bpfrr-ui-bench-{}.bpfrr", std::process::id()));
    let meta = TraceMeta {
        bpfrr_version: "bench".into(),
        n_cpus: 1,
        ..TraceMeta::default()
    };
    let mut w = TraceWriter::create(&path, meta, vec![looping_program(iterations)], Vec::new())
        .expect("trace definitions");
    w.push(Invocation {
        program: 0,
        ctx: vec![0; 24],
        packet: Some(packet.clone()),
        packet_meta: Some(Vec::new()),
        retval: 2,
        final_packet: Some(packet),
        ..Invocation::default()
    })
    .expect("invocation");
    w.finish().expect("trace written");
    let bytes = std::fs::read(&path).expect("trace readable");
    let _ = std::fs::remove_file(&path);
    Trace::from_bytes(bytes).expect("trace opens")
}

/// Wall time and this thread's CPU time of `f` (the machine is shared:
/// CPU time leaves out the time other processes had the core).
fn timed(f: impl FnOnce()) -> (Duration, Duration) {
    let wall = Instant::now();
    let cpu = cpu_time::ThreadTime::now();
    f();
    (wall.elapsed(), cpu.elapsed())
}

fn both(v: Vec<(Duration, Duration)>) -> String {
    let (wall, cpu): (Vec<_>, Vec<_>) = v.into_iter().unzip();
    format!("CPU {}; wall {}", stats(cpu), stats(wall))
}

fn stats(mut v: Vec<Duration>) -> String {
    v.sort();
    let med = v[v.len() / 2];
    let p99 = v[(v.len() * 99 / 100).min(v.len() - 1)];
    format!(
        "median {:.3} ms, p99 {:.3} ms, max {:.3} ms ({} frames)",
        med.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        v[v.len() - 1].as_secs_f64() * 1e3,
        v.len()
    )
}

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let iterations: i32 = std::env::var("BPFRR_BENCH_ITERATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if benching { 200_000 } else { 2_000 });
    let frames = if benching { 300 } else { 10 };
    let trace = trace(iterations);
    let d = ui::Debuggee::new(&trace, None, 0).expect("debuggee");
    let mut app = ui::App::new(d, ui::Theme { color: true });
    let t0 = Instant::now();
    let end = app.d.session.run_to_end();
    let run_end = t0.elapsed();
    println!(
        "invocation: {} steps ({:?}), run to the end in {:.1} ms",
        end.position,
        end.kind,
        run_end.as_secs_f64() * 1e3
    );
    let middle = end.position / 2;
    app.d.goto(middle);
    for (w, h) in [(200u16, 50u16), (80, 24)] {
        let mut term = Terminal::new(TestBackend::new(w, h)).expect("terminal");
        // Frames at the same position (what a redraw costs) ...
        let mut still = Vec::new();
        for _ in 0..frames {
            still.push(timed(|| {
                term.draw(|f| app.draw(f)).expect("draw");
            }));
        }
        // ... and a step forward + derived view + frame (what `s` costs), alternating with a step back.
        let mut stepping = Vec::new();
        for i in 0..frames {
            stepping.push(timed(|| {
                app.motion(if i % 2 == 0 {
                    ui::debuggee::Motion::Step
                } else {
                    ui::debuggee::Motion::ReverseStep
                });
                term.draw(|f| app.draw(f)).expect("draw");
            }));
        }
        // Frames after a far goto (the undo log must be rebuilt for the last step).
        let mut far = Vec::new();
        for i in 0..frames.min(50) {
            far.push(timed(|| {
                app.d.goto((i as u64 * 7919 * 4099) % end.position);
                term.draw(|f| app.draw(f)).expect("draw");
            }));
        }
        println!("{w}x{h} frame at step {middle}: {}", both(still));
        println!("{w}x{h} step/back + frame: {}", both(stepping));
        println!("{w}x{h} goto anywhere + frame: {}", both(far));
    }
    // A continue over the whole invocation run in slices, as the UI runs it.
    app.d.goto(0);
    let t = Instant::now();
    app.motion(ui::debuggee::Motion::Continue);
    let mut slices = 0;
    while app.run_job_slice(Duration::from_millis(40)) {
        slices += 1;
    }
    println!(
        "continue over {} steps in {} slices of <=40 ms: {:.1} ms",
        end.position,
        slices + 1,
        t.elapsed().as_secs_f64() * 1e3
    );
}
