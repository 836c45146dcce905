//! Opening a trace and reading its first invocation costs the same for any
//! trace size: a small (≈1 MiB) and a large (≈1 GiB) trace are compared.
//!
//! The traces are generated in the system temp directory on the first run
//! and reused afterwards (delete them to regenerate):
//! `cargo bench -p bpfrr-trace --bench trace_open`.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Instant;

use bpfrr_trace::trace::*;
use criterion::{Criterion, criterion_group, criterion_main};

const PACKET: usize = 1500;

fn invocation(i: u64) -> Invocation {
    Invocation {
        seq: i,
        cpu: (i % 2) as u32,
        cpu_seq: i / 2,
        time_ns: i * 1000,
        program: 0,
        ctx: vec![i as u8; 24],
        packet: Some(vec![(i % 251) as u8; PACKET]),
        events: vec![HelperEvent {
            insn: 1,
            kind: EventKind::Helper,
            id: 1,
            ret: i,
            outputs: vec![HelperOutput {
                arg: 3,
                bytes: vec![0; 16],
            }],
        }],
        retval: 2,
        ..Invocation::default()
    }
}

/// The path of a trace of at least `bytes` bytes, written if missing.
fn trace_of(bytes: u64, name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(name);
    if std::fs::metadata(&path).is_ok_and(|m| m.len() >= bytes) && Trace::open(&path).is_ok() {
        return path;
    }
    let started = Instant::now();
    let program = Program {
        id: 0,
        name: "bench".into(),
        section: "xdp".into(),
        prog_type: 6,
        insns: vec![
            [0xb7, 0, 0, 0, 2, 0, 0, 0],
            [0x85, 0, 0, 0, 1, 0, 0, 0],
            [0x95, 0, 0, 0, 0, 0, 0, 0],
        ],
        ..Program::default()
    };
    let mut w = TraceWriter::create(&path, TraceMeta::default(), vec![program], vec![]).unwrap();
    let per = invocation(0).approx_archived_size() as u64;
    for i in 0..bytes.div_ceil(per) {
        w.push(invocation(i)).unwrap();
    }
    let s = w.finish().unwrap();
    eprintln!(
        "wrote {} ({} invocations, {} bytes, {} blocks) in {:.1?}",
        path.display(),
        s.invocation_count,
        s.size_bytes,
        s.block_count,
        started.elapsed()
    );
    path
}

fn open_and_read_first(path: &Path) -> u64 {
    let trace = Trace::open(path).unwrap();
    let first = trace.invocation(0).unwrap();
    first.retval.to_native() + first.packet.as_ref().map_or(0, |p| p.len() as u64)
}

fn bench(c: &mut Criterion) {
    let small = trace_of(1 << 20, "bpfrr-bench-1m.bpfrr");
    let large = trace_of(1 << 30, "bpfrr-bench-1g.bpfrr");
    // One timing outside criterion's loop: the first open in this process.
    let t = Instant::now();
    black_box(open_and_read_first(&large));
    eprintln!(
        "first open of the 1 GiB trace + first invocation: {:.2?}",
        t.elapsed()
    );

    let mut g = c.benchmark_group("open_and_first_invocation");
    g.bench_function("1MiB", |b| {
        b.iter(|| black_box(open_and_read_first(&small)))
    });
    g.bench_function("1GiB", |b| {
        b.iter(|| black_box(open_and_read_first(&large)))
    });
    g.finish();
    c.bench_function("1GiB_open_and_last_invocation", |b| {
        b.iter(|| {
            let trace = Trace::open(&large).unwrap();
            let last = trace.invocation(trace.invocation_count() - 1).unwrap();
            black_box(last.seq.to_native())
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
