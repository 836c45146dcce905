//! The writer streams: a million invocations never sit in memory at once.

mod trace_common;

use bpfrr_trace::trace::*;
use trace_common::*;

#[test]
fn a_million_invocations_keep_the_writer_buffer_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.bpfrr");
    let options = WriterOptions::default();
    let mut w = TraceWriter::create_with(&path, meta(), programs(), maps(), options).unwrap();
    const N: u64 = 1_000_000;
    let mut max_buffered = 0;
    let mut one_invocation = 0;
    for i in 0..N {
        let inv = Invocation {
            seq: i,
            cpu: (i % 2) as u32,
            time_ns: i,
            program: (i % 2) as u32,
            ctx: vec![i as u8; 24],
            events: vec![HelperEvent {
                insn: 3,
                id: 5,
                ret: i,
                ..HelperEvent::default()
            }],
            retval: i % 3,
            ..Invocation::default()
        };
        one_invocation = one_invocation.max(inv.approx_archived_size());
        w.push(inv).unwrap();
        max_buffered = max_buffered.max(w.buffered_bytes());
    }
    // What the writer holds: at most one block of invocations (the block is
    // cut at `block_invocations`, before `block_bytes` for invocations this
    // small) plus the file buffer (64 KiB).
    let bound = (options.block_invocations * one_invocation)
        .min(options.block_bytes + one_invocation)
        + 64 * 1024;
    assert!(max_buffered > 0);
    assert!(
        max_buffered <= bound,
        "the writer buffered {max_buffered} bytes, more than {bound}"
    );
    // all of it went to disk already, except at most one block
    let on_disk = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum::<u64>();
    assert!(
        on_disk > N * 40,
        "only {on_disk} bytes on disk before finish"
    );

    let summary = w.finish().unwrap();
    assert_eq!(summary.invocation_count, N);
    assert!(summary.block_count >= N / options.block_invocations as u64);
    assert_eq!(summary.programs[0].invocations, N / 2);
    assert_eq!(summary.retvals.iter().map(|r| r.count).sum::<u64>(), N);

    let t = Trace::open(&path).unwrap();
    assert_eq!(t.invocation_count(), N);
    for i in [0, 1, 4095, 4096, 4097, 500_000, N - 1] {
        let inv = t.invocation(i).unwrap();
        assert_eq!(inv.seq.to_native(), i);
        assert_eq!(inv.events[0].ret.to_native(), i);
        assert_eq!(&inv.ctx[..], &[i as u8; 24][..]);
    }
    assert_eq!(t.iter_invocations().filter(|r| r.is_ok()).count() as u64, N);
}

#[test]
fn invocation_count_includes_the_block_being_filled() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = TraceWriter::create_with(
        dir.path().join("t.bpfrr"),
        trace_common::meta(),
        trace_common::programs(),
        trace_common::maps(),
        WriterOptions {
            block_bytes: 1 << 20,
            block_invocations: 4,
        },
    )
    .unwrap();
    for i in 0..6 {
        assert_eq!(w.invocation_count(), i);
        w.push(trace_common::invocation(i)).unwrap();
    }
    // One block of 4 is on disk, 2 are buffered: all 6 count.
    assert_eq!(w.invocation_count(), 6);
    assert_eq!(w.finish().unwrap().invocation_count, 6);
}
