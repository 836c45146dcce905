//! Switching invocations on a 100k-invocation model-recorded trace (a .bss
//! counter and a 64-entry hash map that change every invocation): time to
//! start the last invocation after the first (cold: no checkpoints yet),
//! again after going back (warm), and random switches.
//!
//! `cargo bench -p bpfrr-replayer --bench switch` (BPFRR_BENCH_INVOCATIONS
//! to change the size).

use std::time::{Duration, Instant};

use bpfrr_replayer::replay::{ModelInput, Replayer, record_model_run};
use bpfrr_trace::isa::{AluOp, Imm64Kind, Insn, Operand, Size, Width, encode_all};
use bpfrr_trace::trace::{Map, MapEntry, MapSnapshot, Program, SnapshotTime, Trace, TraceMeta};

fn alu(op: AluOp, dst: u8, src: Operand) -> Insn {
    Insn::Alu {
        width: Width::W64,
        op,
        dst,
        src,
    }
}

fn ldx(dst: u8, src: u8, off: i16) -> Insn {
    Insn::Load {
        size: Size::DW,
        signed: false,
        dst,
        src,
        off,
    }
}

fn stx(size: Size, dst: u8, off: i16, src: u8) -> Insn {
    Insn::Store {
        size,
        dst,
        off,
        src: Operand::Reg(src),
    }
}

/// count += 1 in .bss (map 1); last[count & 63] = count (map 0); return count.
fn program() -> Program {
    let update = bpfrr_trace::catalog::helper_by_name("map_update_elem")
        .expect("known helper")
        .id as i32;
    let insns = vec![
        Insn::LoadImm64 {
            kind: Imm64Kind::MapValue,
            dst: 6,
            imm: 1,
        },
        ldx(7, 6, 0),
        alu(AluOp::Add, 7, Operand::Imm(1)),
        stx(Size::DW, 6, 0, 7),
        alu(AluOp::Mov, 8, Operand::Reg(7)),
        alu(AluOp::And, 8, Operand::Imm(63)),
        stx(Size::W, 10, -4, 8),
        stx(Size::DW, 10, -16, 7),
        Insn::LoadImm64 {
            kind: Imm64Kind::MapFd,
            dst: 1,
            imm: 0,
        },
        alu(AluOp::Mov, 2, Operand::Reg(10)),
        alu(AluOp::Add, 2, Operand::Imm(-4)),
        alu(AluOp::Mov, 3, Operand::Reg(10)),
        alu(AluOp::Add, 3, Operand::Imm(-16)),
        alu(AluOp::Mov, 4, Operand::Imm(0)),
        Insn::Call(bpfrr_trace::isa::CallTarget::Helper(update)),
        alu(AluOp::Mov, 0, Operand::Reg(7)),
        Insn::Exit,
    ];
    Program {
        id: 0,
        name: "count".into(),
        prog_type: 17, // raw tracepoint
        insns: encode_all(&insns).iter().map(|r| r.to_bytes()).collect(),
        ..Program::default()
    }
}

fn map(id: u32, name: &str, map_type: u32, value_size: u32, max_entries: u32) -> Map {
    Map {
        id,
        name: name.into(),
        map_type,
        key_size: 4,
        value_size,
        max_entries,
        snapshots: vec![MapSnapshot {
            when: SnapshotTime::Start,
            n_cpus: 1,
            entries: Vec::<MapEntry>::new(),
        }],
        ..Map::default()
    }
}

fn trace(n: usize) -> Trace {
    let mut bss = map(1, ".bss", 2, 8, 1);
    bss.initial_data = Some(vec![0; 8]);
    let maps = [map(0, "last", 1, 8, 64), bss];
    let inputs = vec![
        ModelInput {
            ctx: vec![0; 16],
            ..ModelInput::default()
        };
        n
    ];
    let meta = TraceMeta {
        bpfrr_version: "bench".into(),
        n_cpus: 1,
        ..TraceMeta::default()
    };
    let path = std::env::temp_dir().join(format!("bpfrr-switch-{}.bpfrr", std::process::id()));
    let t = record_model_run(&path, meta, &[program()], &maps, &inputs, |_| {})
        .expect("the model run records");
    let _ = std::fs::remove_file(&path);
    t
}

/// Starts, runs and hands back invocation `k`; returns the time to start it.
fn switch(r: &mut Replayer<'_>, k: u64) -> Duration {
    let t = Instant::now();
    let mut run = r.start(k).expect("starts");
    let started = t.elapsed();
    let r0 = run.machine.run(&mut run.env).expect("runs");
    assert_eq!(r0, k + 1, "invocation {k} replays its count");
    r.finish(run);
    started
}

/// Resident memory in KiB (Linux; 0 elsewhere).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let n: usize = std::env::var("BPFRR_BENCH_INVOCATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let t = Instant::now();
    let trace = trace(n);
    println!("recorded {n} invocations in {:.2?}", t.elapsed());
    let last = n as u64 - 1;

    let mut r = Replayer::new(&trace);
    switch(&mut r, 0);
    let rss = rss_kib();
    let before = r.invocations_fast_forwarded();
    let cold = switch(&mut r, last);
    println!(
        "cold: start the last invocation after the first: {cold:.2?} ({} invocations fast-forwarded, {} checkpoints taken)",
        r.invocations_fast_forwarded() - before,
        r.checkpoint_count()
    );
    println!(
        "resident memory grew by {} KiB while taking them",
        rss_kib().saturating_sub(rss)
    );
    switch(&mut r, 0);
    let before = r.invocations_fast_forwarded();
    let warm = switch(&mut r, last);
    println!(
        "warm: start the last invocation after the first again: {warm:.2?} ({} fast-forwarded)",
        r.invocations_fast_forwarded() - before
    );

    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let (mut total, mut worst, switches) = (Duration::ZERO, Duration::ZERO, 1000);
    let before = r.invocations_fast_forwarded();
    for _ in 0..switches {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let d = switch(&mut r, seed % n as u64);
        total += d;
        worst = worst.max(d);
    }
    println!(
        "warm: {switches} random switches: mean {:.2?}, worst {worst:.2?}, {:.1} invocations fast-forwarded per switch",
        total / switches,
        (r.invocations_fast_forwarded() - before) as f64 / switches as f64
    );
    println!("checkpoints kept: {}", r.checkpoint_count());
}
