//! Slicing (pure part): programs, maps and ids of a slice, its snapshots,
//! metadata and lost counts, and its errors. Replay of slices is tested in
//! tui/tests/bugreport.rs.

mod edit_common;

use bpfrr_trace::edit::{EditError, SlicePlan, SliceState, write_slice};
use bpfrr_trace::trace::*;
use edit_common::*;

const XDP: u32 = 6;
const ARRAY: u32 = 2;
const HASH: u32 = 1;
const PROG_ARRAY: u32 = 3;

/// Programs: 0 entry (maps a, jmp; tail calls to 1 or 3), 1 target (b,
/// jmp), 2 other (c), 3 target2 (b). Six invocations.
fn trace() -> Trace {
    let mut entry = program(0, "entry", XDP, vec![0, 2]);
    entry.tail_call_targets = vec![
        TailCallTarget {
            map: 2,
            slot: 0,
            program: 1,
        },
        TailCallTarget {
            map: 2,
            slot: 1,
            program: 3,
        },
    ];
    let programs = vec![
        entry,
        program(1, "target", XDP, vec![1, 2]),
        program(2, "other", XDP, vec![3]),
        program(3, "target2", XDP, vec![1]),
    ];
    let maps = vec![
        map(0, "a", ARRAY, 1),
        map(1, "b", HASH, 2),
        map(2, "jmp", PROG_ARRAY, 3),
        map(3, "c", ARRAY, 4),
    ];
    let inv = |seq: u64, program: u32, events: Vec<HelperEvent>| Invocation {
        seq,
        cpu: (seq % 2) as u32,
        cpu_seq: seq / 2,
        time_ns: 1000 + seq,
        program,
        ctx: vec![seq as u8; 24],
        packet: Some(vec![seq as u8; 60]),
        events,
        retval: seq,
        ..Invocation::default()
    };
    let invocations = vec![
        inv(0, 2, vec![helper(2, 1, vec![])]),
        inv(
            1,
            0,
            vec![helper(2, 1, vec![]), tail_call(5, 3), helper(2, 1, vec![])],
        ),
        inv(2, 0, vec![tail_call(5, u32::MAX)]),
        inv(3, 2, vec![]),
        inv(4, 0, vec![helper(5, 1, vec![])]),
        inv(5, 2, vec![]),
    ];
    write(
        &scratch("orig"),
        meta(),
        programs,
        maps,
        invocations,
        &[(1, 7)],
    )
}

#[test]
fn a_slice_keeps_the_programs_it_ran_and_the_maps_they_use_renumbered() {
    let t = trace();
    let plan = SlicePlan::new(&t, &[5, 2, 4, 4]).unwrap();
    assert_eq!(plan.invocations(), [2, 4, 5]);
    assert_eq!(plan.programs(), [0, 2]);
    assert_eq!(plan.maps(), [0, 2, 3]);
    let out = scratch("slice");
    let summary = write_slice(&t, &plan, &SliceState::default(), &out).unwrap();
    assert_eq!(summary.invocation_count, 3);

    let s = reopen(&out);
    let names: Vec<&str> = s.programs().iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["entry", "other"]);
    let maps: Vec<&str> = s.maps().iter().map(|m| m.name.as_str()).collect();
    assert_eq!(maps, ["a", "jmp", "c"]);
    assert_eq!(s.programs()[0].used_maps, [0, 1]);
    assert_eq!(s.programs()[1].used_maps, [2]);
    // Neither tail-call target ran in the slice: their slots go.
    assert!(s.programs()[0].tail_call_targets.is_empty());
    // Instructions are unchanged (map references index used_maps).
    assert_eq!(s.programs()[1].insns, t.programs()[2].insns);

    let invs = all_invocations(&s);
    let seqs: Vec<u64> = invs.iter().map(|i| i.seq).collect();
    assert_eq!(seqs, [2, 4, 5], "seq numbers stay those of the original");
    let progs: Vec<u32> = invs.iter().map(|i| i.program).collect();
    assert_eq!(progs, [0, 0, 1]);
    assert_eq!(invs[0].events[0].id, u32::MAX, "an empty slot stays empty");
    let orig = t.invocation_owned(4).unwrap();
    assert_eq!(invs[1], orig, "a kept invocation is otherwise untouched");

    // Metadata and lost counts.
    assert!(s.meta().notes.starts_with("recorded by the tests\n"));
    assert!(
        s.meta()
            .notes
            .contains("kept invocations 2, 4-5 (original indices; seq numbers unchanged)"),
        "{}",
        s.meta().notes
    );
    assert!(s.meta().notes.contains(t.name()));
    assert_eq!(s.lost(), [LostCount { cpu: 1, count: 7 }]);
    assert_eq!(s.meta().hostname.as_deref(), Some("secret-host"));
    // Statistics were recomputed by the writer.
    assert_eq!(s.summary().programs[0].invocations, 2);
    assert_eq!(s.summary().programs[1].invocations, 1);
}

#[test]
fn tail_call_targets_that_ran_are_kept_and_renumbered() {
    let t = trace();
    let plan = SlicePlan::new(&t, &[1]).unwrap();
    assert_eq!(plan.programs(), [0, 3]);
    assert_eq!(plan.maps(), [0, 1, 2]);
    assert_eq!((plan.program_id(3), plan.program_id(1)), (Some(1), None));
    let out = scratch("slice");
    write_slice(&t, &plan, &SliceState::default(), &out).unwrap();
    let s = reopen(&out);
    let inv = s.invocation_owned(0).unwrap();
    assert_eq!(inv.events[1].kind, EventKind::TailCall);
    assert_eq!(inv.events[1].id, 1, "the target's new id");
    assert_eq!(
        s.programs()[0].tail_call_targets,
        [TailCallTarget {
            map: 2,
            slot: 1,
            program: 1
        }]
    );
    assert_eq!(s.programs()[1].name, "target2");
}

#[test]
fn start_snapshots_are_replaced_and_end_snapshots_kept_only_at_the_trace_end() {
    let t = trace();
    let given = MapSnapshot {
        when: SnapshotTime::End, // set to Start by the slice
        n_cpus: 1,
        entries: vec![MapEntry {
            key: vec![0; 4],
            value: vec![42; 8],
        }],
    };
    let state = SliceState {
        start: vec![(3, given.clone())],
        end: vec![],
        notes: vec!["state computed by the test".into()],
    };
    let plan = SlicePlan::new(&t, &[3]).unwrap();
    let out = scratch("slice");
    write_slice(&t, &plan, &state, &out).unwrap();
    let s = reopen(&out);
    assert_eq!(s.maps().len(), 1);
    let c = &s.maps()[0];
    assert_eq!(c.name, "c");
    assert_eq!(
        c.snapshots.len(),
        1,
        "no End snapshot: the slice ends before the trace"
    );
    assert_eq!(c.snapshots[0].when, SnapshotTime::Start);
    assert_eq!(c.snapshots[0].entries, given.entries);
    assert!(s.meta().notes.ends_with("state computed by the test"));

    // Ending with the last invocation keeps the original End snapshot.
    let plan = SlicePlan::new(&t, &[5]).unwrap();
    let out = scratch("slice");
    write_slice(&t, &plan, &SliceState::default(), &out).unwrap();
    let s = reopen(&out);
    assert_eq!(s.maps()[0].snapshots, t.maps()[3].snapshots);
}

#[test]
fn bad_requests_are_clear_errors() {
    let t = trace();
    let e = SlicePlan::new(&t, &[1, 6]).unwrap_err().to_string();
    assert!(
        e.contains("has 6 invocations (0-5), so there is no invocation 6"),
        "{e}"
    );
    let e = SlicePlan::new(&t, &[]).unwrap_err().to_string();
    assert!(e.contains("no invocation"), "{e}");
    // Writing over the input is refused; the input stays intact.
    let plan = SlicePlan::new(&t, &[1]).unwrap();
    let input = std::path::PathBuf::from(t.name());
    let e = write_slice(&t, &plan, &SliceState::default(), &input).unwrap_err();
    assert!(matches!(e, EditError::Invalid(_)), "{e}");
    assert!(e.to_string().contains("is the input trace"), "{e}");
    reopen(&input);
    // A plan made for another trace is refused, not a panic.
    let other_plan = {
        let path = scratch("other");
        let other = write(
            &path,
            meta(),
            vec![program(0, "p", XDP, vec![])],
            vec![],
            vec![Invocation::default(); 3],
            &[],
        );
        SlicePlan::new(&other, &[2]).unwrap()
    };
    let e = write_slice(&t, &other_plan, &SliceState::default(), &scratch("x")).unwrap_err();
    assert!(e.to_string().contains("another trace"), "{e}");
}
