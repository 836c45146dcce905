//! The verifier-log parser on real logs from Linux 6.18: every sample
//! program (accepted) and every program of samples/rejected/ (rejected on
//! purpose). Regenerate with `tests/fixtures/verifier/regenerate.sh` (root).

use std::collections::HashSet;
use std::path::PathBuf;

use bpfrr_replayer::verifier::{
    BranchDecision, ErrorKind, RegKind, SlotByte, SlotContents, VerifierLog, VisitKind,
};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/verifier")
}

fn read(name: &str) -> String {
    let p = fixtures().join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
}

fn parse(name: &str) -> VerifierLog {
    VerifierLog::parse(&read(name))
}

/// Accepted sample programs (samples/*.bpf.o).
const ACCEPTED: &[&str] = &[
    "cgroup_skb.egress_accounting.log",
    "isa_coverage.isa_coverage.log",
    "sock_filter.udp_port_filter.log",
    "tc_rewrite.tc_mark_dscp.log",
    "tc_rewrite.tc_redirect_port.log",
    "tp_syscalls.count_openat.log",
    "uprobe_args.on_process_order.log",
    "xdp_fw.xdp_firewall.log",
];

/// samples/rejected/: (program, kind, failing instruction).
const REJECTED: &[(&str, ErrorKind, Option<usize>)] = &[
    ("bad_return_value", ErrorKind::InvalidReturnValue, Some(4)),
    ("combined_stack", ErrorKind::CombinedStackTooLarge, None),
    ("ctx_bad_offset", ErrorKind::InvalidContextAccess, Some(0)),
    ("gpl_only_helper", ErrorKind::GplOnlyHelper, Some(6)),
    ("helper_arg_type", ErrorKind::ArgumentType, Some(5)),
    ("helper_not_allowed", ErrorKind::HelperNotAllowed, Some(5)),
    ("helper_size_negative", ErrorKind::NegativeSize, Some(9)),
    ("infinite_loop", ErrorKind::InfiniteLoop, Some(1)),
    ("map_value_null", ErrorKind::NullablePointerDeref, Some(7)),
    (
        "map_value_out_of_bounds",
        ErrorKind::MapValueOutOfRange,
        Some(10),
    ),
    ("misaligned_stack", ErrorKind::MisalignedAccess, Some(1)),
    ("modified_ctx", ErrorKind::ModifiedContextPointer, Some(1)),
    (
        "pkt_end_arithmetic",
        ErrorKind::ProhibitedPointerArithmetic,
        Some(1),
    ),
    ("pkt_no_bounds_check", ErrorKind::PacketOutOfRange, Some(1)),
    (
        "pkt_unbounded_offset",
        ErrorKind::UnboundedPointerMath,
        Some(7),
    ),
    ("r0_not_set", ErrorKind::ReturnValueNotSet, Some(0)),
    ("reg_not_init", ErrorKind::UninitializedRegister, Some(0)),
    ("rodata_write", ErrorKind::ReadOnlyMap, Some(3)),
    ("scalar_deref", ErrorKind::ScalarDeref, Some(1)),
    (
        "stack_out_of_bounds",
        ErrorKind::InvalidStackOffset,
        Some(1),
    ),
    ("too_large", ErrorKind::ProgramTooLarge, Some(14)),
    (
        "unbounded_mem_access",
        ErrorKind::UnboundedMemAccess,
        Some(9),
    ),
    ("unknown_helper", ErrorKind::UnknownHelper, Some(0)),
    (
        "unreleased_reference",
        ErrorKind::UnreleasedReference,
        Some(17),
    ),
];

#[test]
fn every_fixture_is_listed_and_every_sample_has_one() {
    let mut listed: HashSet<String> = ACCEPTED.iter().map(|s| s.to_string()).collect();
    listed.extend(REJECTED.iter().map(|(p, _, _)| format!("{p}.{p}.log")));
    let on_disk: HashSet<String> = std::fs::read_dir(fixtures())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".log"))
        .collect();
    assert_eq!(listed, on_disk);
    // One fixture per rejected sample source, and at least 15 distinct kinds.
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../samples/rejected");
    let sources: HashSet<String> = std::fs::read_dir(&root)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter_map(|n| n.strip_suffix(".bpf.c").map(str::to_string))
        .collect();
    let rejected: HashSet<String> = REJECTED.iter().map(|(p, _, _)| p.to_string()).collect();
    assert_eq!(sources, rejected);
    let kinds: HashSet<ErrorKind> = REJECTED.iter().map(|(_, k, _)| *k).collect();
    assert_eq!(kinds.len(), REJECTED.len());
    assert!(kinds.len() >= 15);
}

#[test]
fn accepted_logs_parse_completely() {
    for name in ACCEPTED {
        let log = parse(name);
        assert!(log.error.is_none(), "{name}: {:?}", log.error);
        assert!(
            log.unparsed.is_empty(),
            "{name}: {:?}",
            &log.unparsed[..log.unparsed.len().min(5)]
        );
        let stats = log
            .stats
            .as_ref()
            .unwrap_or_else(|| panic!("{name}: no stats"));
        assert!(
            stats.insns_processed > 0 && !stats.stack_depths.is_empty(),
            "{name}"
        );
        assert!(!log.visits.is_empty(), "{name}");
        assert_eq!(log.subprogs.first(), Some(&0), "{name}");
        // Every executed visit has its disassembly and a state.
        for v in &log.visits {
            assert!(log.insn_text(v.insn).is_some(), "{name}: insn {}", v.insn);
            if v.kind == VisitKind::Executed {
                assert!(
                    v.has_state && v.reg(10).is_some(),
                    "{name}: insn {} has no r10",
                    v.insn
                );
            }
        }
        // The walk's paths: every `from X to Y` found the visit of X that
        // pushed it, and that visit is a branch explored both ways.
        for (i, p) in log.paths.iter().enumerate().skip(1) {
            let (from, to) = p.from.unwrap();
            let parent = p
                .parent
                .unwrap_or_else(|| panic!("{name}: path {i} from {from} has no parent"));
            assert_eq!(log.visits[parent].insn, from, "{name}");
            let first = p.first_visit.unwrap();
            assert_eq!(log.visits[first].insn, to, "{name}");
            assert_eq!(log.visits[first].from, Some((from, to)));
        }
        assert!(log.path_to_error().is_empty());
    }
}

#[test]
fn rejected_logs_have_the_right_error() {
    for (prog, kind, insn) in REJECTED {
        let name = format!("{prog}.{prog}.log");
        let log = parse(&name);
        let err = log
            .error
            .as_ref()
            .unwrap_or_else(|| panic!("{name}: no error found"));
        assert_eq!(err.kind, *kind, "{name}: {}", err.message);
        assert_eq!(err.insn, *insn, "{name}: {}", err.message);
        assert!(log.stats.is_some(), "{name}: no statistics");
        if insn.is_some() {
            let path = log.path_to_error();
            assert_eq!(path.last().map(|v| v.insn), *insn, "{name}");
        }
        // The expected message in the source's comment is what the kernel said.
        let src = std::fs::read_to_string(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join(format!("../samples/rejected/{prog}.bpf.c")),
        )
        .unwrap();
        let expected = src
            .lines()
            .find_map(|l| l.trim_start_matches([' ', '*']).strip_prefix("Expected: "))
            .unwrap_or_else(|| panic!("{prog}.bpf.c has no `Expected:` line"));
        let stable: String = expected
            .split(['N', '?'])
            .next()
            .unwrap()
            .trim_end()
            .to_string();
        assert!(
            err.message.contains(&stable),
            "{name}: message {:?} does not contain {stable:?}",
            err.message
        );
    }
}

#[test]
fn pkt_end_and_packet_ranges_in_xdp_fw() {
    let log = parse("xdp_fw.xdp_firewall.log");
    // 116: r3 = *(u32 *)(r1 +4) in the subprogram parse_packet (frame 1).
    assert_eq!(log.insn_text(116).unwrap().text, "r3 = *(u32 *)(r1 +4)");
    let v = log.states_at(116).next().unwrap();
    assert_eq!(v.frame, 1);
    assert_eq!(v.reg(1).unwrap().kind, RegKind::Ctx);
    assert_eq!(v.reg_after(3).unwrap().kind, RegKind::PacketEnd);
    assert_eq!(
        v.reg(2).unwrap().frameno,
        Some(0),
        "r2 points into the caller's frame"
    );
    assert_eq!(v.reg(2).unwrap().off, -24);
    // 120: if r1 > r3 goto pc+107 — the bounds check gives r=14.
    let v = log.states_at(120).next().unwrap();
    let before = v.reg(1).unwrap();
    assert_eq!(
        (before.kind.clone(), before.off, before.range),
        (RegKind::Packet, 14, Some(0))
    );
    let after = v.reg_after(1).unwrap();
    assert_eq!((after.off, after.range), (14, Some(14)));
    assert!(matches!(v.branch, Some(BranchDecision::Both { .. })));
    // The subprogram's entry was reached through the call block.
    assert_eq!(log.subprogs, vec![0, 115]);
    // 2: *(u32 *)(r10 -8) = r1 with r1 = 0: a 4-byte spill of 0 under 4 invalid bytes.
    let v = log.states_at(2).next().unwrap();
    let slot = v.changed.as_ref().unwrap().slot(-8).unwrap();
    match &slot.contents {
        SlotContents::Spill { above, reg } => {
            assert_eq!(above, &vec![SlotByte::Invalid; 4]);
            assert_eq!(reg.bounds.as_const(), Some(0));
        }
        other => panic!("{other:?}"),
    }
    // Back in the caller after the call: frame 0 again.
    let v = log.states_at(10).next().unwrap();
    assert_eq!(v.frame, 0);
    assert_eq!(v.reg(6).unwrap().kind, RegKind::Ctx);
}

#[test]
fn map_lookup_and_null_check_in_sock_filter() {
    let log = parse("sock_filter.udp_port_filter.log");
    let v = log.states_at(34).next().unwrap();
    assert_eq!(
        log.insn_text(34).unwrap().text,
        "call bpf_map_lookup_elem#1"
    );
    let r1 = v.reg(1).unwrap();
    assert_eq!(r1.kind, RegKind::MapPtr);
    let r0 = v.reg_after(0).unwrap();
    assert_eq!(r0.kind, RegKind::MapValue);
    assert!(r0.flags.or_null);
    assert_eq!(r0.id, Some(1));
    let m = r0.map.as_ref().unwrap();
    assert_eq!(
        (m.name.as_deref(), m.key_size, m.value_size),
        (Some("verdicts"), 4, 8)
    );
    // The call clobbered r1-r5: not in the state at 35.
    let v35 = log.states_at(35).next().unwrap();
    assert!(v35.reg(1).is_none() && v35.reg(2).is_none());
    assert!(v35.reg(0).unwrap().flags.or_null);
    // After the null check (fall-through): map_value.
    let after = v35.reg_after(0).unwrap();
    assert_eq!(after.kind, RegKind::MapValue);
    assert!(!after.flags.or_null);
    // The taken side, explored later: R0 = 0.
    let BranchDecision::Both { other } = v35.branch.unwrap() else {
        panic!("35 should be explored both ways")
    };
    let taken = &log.visits[other];
    assert_eq!(taken.from, Some((35, 87)));
    assert_eq!(taken.insn, 87);
    assert_eq!(taken.reg(0).unwrap().bounds.as_const(), Some(0));
    // Pruning points.
    assert!(
        log.states_at(50)
            .any(|v| matches!(v.kind, VisitKind::Pruned { .. }))
    );
    // The helper wrote 20 bytes at fp-24: the slots after the call.
    let v9 = log.states_at(9).next().unwrap();
    let ch = v9.changed.as_ref().unwrap();
    assert_eq!(ch.slot(-8).unwrap().compact(), "????mmmm");
    assert_eq!(ch.reg(0).unwrap().kind, RegKind::Scalar);
    // Scalar bounds after `w2 &= 60`.
    let v19 = log.states_at(19).next().unwrap();
    let b = v19.reg_after(2).unwrap().bounds;
    assert_eq!((b.umin, b.umax, b.var_off.mask), (0, 60, 0x3c));
    // Source annotations.
    let src = v9.source.as_ref().unwrap();
    assert_eq!(src.file.as_deref(), Some("sock_filter.bpf.c"));
    assert_eq!(src.line, Some(49));
    // Live registers before 0: only r1.
    assert_eq!(log.live_regs.get(&0), Some(&0b10));
}

#[test]
fn callbacks_references_and_ringbuf_in_tp_syscalls() {
    let log = parse("tp_syscalls.count_openat.log");
    // bpf_loop's callback find_base_name is verified in frame 1 with `cb`.
    let cb = log
        .visits
        .iter()
        .find(|v| v.from == Some((70, 82)))
        .expect("the callback path from 70 to 82");
    assert_eq!(cb.frame, 1);
    assert_eq!(cb.reg(2).unwrap().frameno, Some(0));
    assert_eq!(cb.refs, vec![4]);
    // The reserved record is a ringbuf_mem with a reference.
    let held = log
        .visits
        .iter()
        .flat_map(|v| v.regs.iter())
        .find(|(_, r)| r.kind == RegKind::Mem && r.flags.ringbuf)
        .map(|(_, r)| r.clone())
        .unwrap();
    assert_eq!(held.ref_obj_id, Some(4));
    assert_eq!(held.mem_size, Some(160));
}

#[test]
fn pruning_points_carry_their_precision_propagation() {
    // cgroup_skb: `frame 0: propagating r6` comes right before `50: safe`.
    let log = parse("cgroup_skb.egress_accounting.log");
    let pruned: Vec<&Vec<String>> = log
        .visits
        .iter()
        .filter_map(|v| match &v.kind {
            VisitKind::Pruned { propagating } => Some(propagating),
            _ => None,
        })
        .collect();
    assert!(!pruned.is_empty());
    assert!(pruned.iter().any(|p| p.as_slice() == ["r6"]), "{pruned:?}");
}

#[test]
fn rejected_paths_and_states() {
    let log = parse("map_value_null.map_value_null.log");
    let path: Vec<usize> = log.path_to_error().iter().map(|v| v.insn).collect();
    assert_eq!(path, vec![0, 1, 2, 3, 4, 6, 7]);
    let last = log.path_to_error().pop().unwrap();
    assert!(last.reg(0).unwrap().flags.or_null);

    let log = parse("pkt_end_arithmetic.pkt_end_arithmetic.log");
    assert_eq!(
        log.states_at(0).next().unwrap().reg_after(2).unwrap().kind,
        RegKind::PacketEnd
    );

    let log = parse("pkt_no_bounds_check.pkt_no_bounds_check.log");
    let v = log.path_to_error().pop().unwrap();
    let r1 = v.reg(1).unwrap();
    assert_eq!((r1.kind.clone(), r1.range), (RegKind::Packet, Some(0)));

    let log = parse("unreleased_reference.unreleased_reference.log");
    let v = log.path_to_error().pop().unwrap();
    assert!(
        !v.refs.is_empty(),
        "the leaked reference is still held at exit"
    );
    // The failing path went through the branch that returns early.
    assert!(log.path_to_error().iter().any(|v| v.from.is_some()));

    // The kernel's rotating buffer kept only the end of too_large's log:
    // the first line is cut, the parser carries on.
    let text = read("too_large.too_large.log");
    assert!(
        !text.starts_with(|c: char| c.is_ascii_digit())
            || !text.lines().next().unwrap().contains(": (")
    );
    let log = VerifierLog::parse(&text);
    assert!(log.visits.len() > 1000);
    assert_eq!(log.stats.as_ref().unwrap().insns_processed, 1_000_001);

    // combined_stack: the error is about the whole program; the depths are in the stats.
    let log = parse("combined_stack.combined_stack.log");
    assert_eq!(log.stats.unwrap().stack_depths, vec![320, 320]);
}

#[test]
fn isa_coverage_parses_fast_enough() {
    let text = read("isa_coverage.isa_coverage.log");
    let t = std::time::Instant::now();
    let log = VerifierLog::parse(&text);
    let elapsed = t.elapsed();
    assert_eq!(log.subprogs.len(), 7);
    assert!(log.insns.len() > 32_000);
    // Generous even for debug builds on a shared machine.
    assert!(elapsed.as_secs() < 20, "{elapsed:?}");
}
