//! Writing a trace and reading it back: everything written comes back,
//! from a file (mmap) and from bytes, across block boundaries.

mod trace_common;

use bpfrr_trace::trace::*;
use trace_common::*;

#[test]
fn everything_written_reads_back_from_file_and_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.bpfrr");
    let summary = write_trace(&path, 100, 7);
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(summary.size_bytes, bytes.len() as u64);

    for trace in [
        Trace::open(&path).unwrap(),
        Trace::from_bytes(bytes).unwrap(),
    ] {
        assert_eq!(trace.format_version(), FORMAT_VERSION);
        let mut expected_meta = meta();
        expected_meta.format_version = FORMAT_VERSION;
        assert_eq!(trace.meta(), &expected_meta);
        assert_eq!(trace.programs(), programs().as_slice());
        let m = trace.maps();
        assert_eq!(m.len(), 3);
        assert_eq!(m[1], maps()[1]);
        assert_eq!(m[2], maps()[2]);
        // map 0 gained its end snapshot, marked End by the writer
        assert_eq!(m[0].snapshots.len(), 2);
        assert_eq!(m[0].snapshots[0], maps()[0].snapshots[0]);
        assert_eq!(m[0].snapshots[1].when, SnapshotTime::End);
        assert_eq!(m[0].snapshots[1].entries.len(), 2);
        assert_eq!(
            trace.lost(),
            &[
                LostCount { cpu: 0, count: 2 },
                LostCount { cpu: 1, count: 7 }
            ]
        );
        assert_eq!(trace.invocation_count(), 100);
        assert_eq!(trace.directory().blocks.len(), 15); // 14 full blocks of 7 + 2
        for i in 0..100 {
            assert_eq!(
                trace.invocation_owned(i).unwrap(),
                invocation(i),
                "invocation {i}"
            );
        }
        // zero-copy view: fields read in place
        let inv = trace.invocation(42).unwrap();
        assert_eq!(inv.seq.to_native(), 42);
        assert_eq!(inv.retval.to_native(), 2);
        assert_eq!(inv.events[1].kind.to_native(), EventKind::Kfunc);
        assert_eq!(&inv.ctx[..], &invocation(42).ctx[..]);
        assert_eq!(
            inv.packet.as_ref().map(|p| p.as_slice()),
            invocation(42).packet.as_deref()
        );
        let all: Vec<Invocation> = trace
            .iter_invocations()
            .map(|r| r.unwrap().to_owned_invocation())
            .collect();
        assert_eq!(all, (0..100).map(invocation).collect::<Vec<_>>());
        trace.verify_all().unwrap();
        assert_eq!(
            trace.summary(),
            Trace::open(&path)
                .unwrap()
                .summary()
                .with_file(trace.name())
        );
    }
}

trait WithFile {
    fn with_file(self, f: &str) -> Self;
}
impl WithFile for TraceSummary {
    fn with_file(mut self, f: &str) -> Self {
        self.file = f.to_string();
        self
    }
}

#[test]
fn summary_counts_programs_retvals_and_lost_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.bpfrr");
    let written = write_trace(&path, 100, 16);
    let s = Trace::open(&path).unwrap().summary();
    assert_eq!(s, written);
    assert_eq!(s.file, path.display().to_string());
    assert_eq!(s.size_bytes, std::fs::metadata(&path).unwrap().len());
    assert_eq!(s.invocation_count, 100);
    assert_eq!(s.partial_invocations, 1);
    assert_eq!(s.block_count, 7);
    assert_eq!(s.kernel_release, "6.18.0-test");
    assert_eq!(s.arch, "x86_64");
    assert_eq!(s.command, vec!["bpfrr", "record", "--count", "10"]);
    // retval 1 for i % 10 == 0, else 2
    assert_eq!(
        s.retvals,
        vec![
            RetvalCount {
                value: 1,
                count: 10
            },
            RetvalCount {
                value: 2,
                count: 90
            }
        ]
    );
    assert_eq!(s.other_retvals, 0);
    // program 1 runs for i % 5 == 4: 20 invocations, none with i % 10 == 0
    assert_eq!(s.programs[0].invocations, 80);
    assert_eq!(s.programs[1].invocations, 20);
    assert_eq!(
        s.programs[1].retvals,
        vec![RetvalCount {
            value: 2,
            count: 20
        }]
    );
    assert_eq!(s.programs[0].insn_count, 40);
    assert_eq!(s.programs[0].verifier_accepted, Some(true));
    assert_eq!(s.programs[0].jit_bytes, Some(10));
    assert_eq!(s.programs[1].verifier_accepted, None);
    assert_eq!(s.maps[0].entries_at_start, Some(1));
    assert_eq!(s.maps[0].entries_at_end, Some(2));
    assert_eq!(s.maps[2].entries_at_start, None);
    assert_eq!(s.lost_total, 9);
    // JSON round trip
    let json = serde_json::to_string(&s).unwrap();
    assert_eq!(serde_json::from_str::<TraceSummary>(&json).unwrap(), s);
}

#[test]
fn histogram_keeps_a_bounded_number_of_distinct_values() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.bpfrr");
    let mut w = TraceWriter::create(&path, meta(), programs(), maps()).unwrap();
    let n = MAX_DISTINCT_RETVALS as u64 + 50;
    for i in 0..n {
        w.push(Invocation {
            program: 1,
            retval: i,
            ..Invocation::default()
        })
        .unwrap();
    }
    let s = w.finish().unwrap();
    assert_eq!(s.programs[1].retvals.len(), MAX_DISTINCT_RETVALS);
    assert_eq!(s.programs[1].other_retvals, 50);
    assert_eq!(s.other_retvals, 50);
    assert_eq!(s.invocation_count, n);
}

#[test]
fn a_trace_without_invocations_opens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.bpfrr");
    let s = TraceWriter::create(&path, meta(), vec![], vec![])
        .unwrap()
        .finish()
        .unwrap();
    assert_eq!(s.invocation_count, 0);
    let t = Trace::open(&path).unwrap();
    assert_eq!(t.invocation_count(), 0);
    assert!(t.programs().is_empty());
    assert_eq!(t.iter_invocations().count(), 0);
    let e = t.invocation(0).unwrap_err();
    assert!(e.to_string().contains("there is no invocation 0"), "{e}");
}

#[test]
fn an_unfinished_writer_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.bpfrr");
    {
        let mut w = TraceWriter::create(&path, meta(), programs(), maps()).unwrap();
        for i in 0..10_000 {
            w.push(invocation(i)).unwrap();
        }
        // a temporary file exists while writing, under another name
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1);
        assert!(
            names[0].to_string_lossy().starts_with("t.bpfrr.tmp-"),
            "{names:?}"
        );
        assert!(!path.exists());
    } // dropped without finish
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn finishing_replaces_an_existing_trace_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.bpfrr");
    write_trace(&path, 50, 8);
    let old = Trace::open(&path).unwrap();
    write_trace(&path, 20, 8);
    // the open trace still reads its own (old) contents
    assert_eq!(old.invocation_count(), 50);
    assert_eq!(old.invocation_owned(49).unwrap(), invocation(49));
    assert_eq!(Trace::open(&path).unwrap().invocation_count(), 20);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn the_writer_refuses_what_would_make_an_invalid_trace() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.bpfrr");
    let mut bad_ids = programs();
    bad_ids[1].id = 5;
    let e = TraceWriter::create(&path, meta(), bad_ids, maps())
        .err()
        .unwrap();
    assert!(
        matches!(e.kind(), TraceErrorKind::InvalidInput { .. }),
        "{e}"
    );
    assert!(e.to_string().contains("ids must equal positions"), "{e}");

    let mut w = TraceWriter::create(&path, meta(), programs(), maps()).unwrap();
    let e = w
        .push(Invocation {
            program: 2,
            ..Invocation::default()
        })
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("names program 2, but the trace has 2 programs"),
        "{e}"
    );
    let mut inv = invocation(0);
    inv.events[0].insn = 40;
    let e = w.push(inv).unwrap_err();
    assert!(e.to_string().contains("instruction 40"), "{e}");
    let e = w
        .set_end_snapshots([(9, MapSnapshot::default())])
        .unwrap_err();
    assert!(e.to_string().contains("map 9"), "{e}");
    // the writer is still usable after refusing input
    w.push(invocation(1)).unwrap();
    assert_eq!(w.finish().unwrap().invocation_count, 1);
}

#[test]
fn the_writer_names_an_unwritable_path() {
    let e = TraceWriter::create("/nonexistent-dir/t.bpfrr", meta(), vec![], vec![])
        .err()
        .unwrap();
    assert!(matches!(e.kind(), TraceErrorKind::Io { writing: true, .. }));
    assert!(
        e.to_string()
            .starts_with("cannot write /nonexistent-dir/t.bpfrr: "),
        "{e}"
    );
}

#[test]
fn blocks_are_cut_by_size_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.bpfrr");
    let mut w = TraceWriter::create_with(
        &path,
        meta(),
        programs(),
        maps(),
        WriterOptions {
            block_bytes: 10_000,
            block_invocations: 1_000_000,
        },
    )
    .unwrap();
    for i in 0..200 {
        let mut inv = invocation(i);
        inv.packet = Some(vec![0xaa; 1500]);
        w.push(inv).unwrap();
    }
    w.finish().unwrap();
    let t = Trace::open(&path).unwrap();
    let blocks = &t.directory().blocks;
    assert!(
        blocks.len() >= 200 * 1500 / 10_000,
        "{} blocks",
        blocks.len()
    );
    for b in blocks {
        assert_eq!(b.offset % 16, 0);
        assert!(b.len < 2 * 10_000 + 4096, "block of {} bytes", b.len);
    }
    assert_eq!(t.invocation_owned(199).unwrap().packet.unwrap().len(), 1500);
}

#[test]
fn trace_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Trace>();
    check::<TraceWriter>();
}
