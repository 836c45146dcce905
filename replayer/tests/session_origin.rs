//! `origin` follows a value back through fills, spills, moves, map reads
//! and helper outputs; `diff` finds where two runs' paths split.

mod session_support;

use bpfrr_replayer::expr::Location;
use bpfrr_replayer::session::{DiffReport, EndKind, OriginEnd, diff};
use session_support::*;

#[test]
fn origin_through_a_fill_and_a_spill_to_the_computation() {
    let mut s = model_session(&counting_loop(5), &[0; 16]);
    // Second iteration, at the jump after the lookup: r7 was filled from fp-8,
    // which r6 was spilled to, and r6 was computed by r6 += 1.
    s.goto_visit(9, None, true);
    s.goto_visit(9, None, true);
    let here = s.position();
    let o = s.origin("r7").unwrap();
    assert_eq!(s.position(), here, "origin leaves the session where it was");
    let what: Vec<_> = o.chain.iter().map(|l| (l.pc, l.what.as_str())).collect();
    assert_eq!(
        what,
        vec![
            (2, "filled from fp-8"),
            (1, "spilled r6 to fp-8"),
            (13, "computed"),
        ]
    );
    assert_eq!(o.end, OriginEnd::Computed);
    assert!(o.chain.windows(2).all(|w| w[0].step > w[1].step));
    assert_eq!(o.chain[0].line.as_ref().unwrap().line, 3);
    assert_eq!(
        o.chain[1].location,
        Location::Mem {
            addr: s.eval("r10 - 8").unwrap().as_u64().unwrap(),
            len: 8
        }
    );

    // In the first iteration the counter came from a constant.
    s.goto(0);
    s.goto_visit(9, None, true);
    let o = s.origin("*(u64 *)(r10 - 8)").unwrap();
    assert_eq!(o.chain.len(), 2);
    assert_eq!(o.end, OriginEnd::Constant);
}

#[test]
fn origin_of_helper_outputs_and_map_reads() {
    let mut s = model_session(&counting_loop(5), &[0; 16]);
    s.goto_visit(9, None, true);
    // r0 right after the call: returned by the helper.
    let o = s.origin("r0").unwrap();
    assert_eq!(
        o.end,
        OriginEnd::HelperReturn {
            helper: "bpf_map_lookup_elem".into()
        }
    );
    assert_eq!(o.chain[0].pc, 8);
    // The map value in the first iteration: the helper made it.
    let o = s.origin("*(u64 *)r0").unwrap();
    assert_eq!(
        o.end,
        OriginEnd::HelperOutput {
            helper: "bpf_map_lookup_elem".into()
        }
    );
    // r1 after the read of the map value (second iteration), through the
    // map value back to the previous iteration's store and its computation.
    s.goto_visit(9, None, true);
    s.step();
    s.step();
    assert_eq!(s.pc(), 11);
    let o = s.origin("r1").unwrap();
    let what: Vec<_> = o.chain.iter().map(|l| l.what.as_str()).collect();
    assert_eq!(what[0], "read from map_value(counts)");
    assert_eq!(what[1], "spilled r1 to map_value(counts)");
    assert_eq!(o.end, OriginEnd::Computed);
    // Computed values have no origin.
    assert!(s.origin("r1 + 1").is_err());
}

#[test]
fn diff_finds_the_branch_where_two_packets_part() {
    let mut a = xdp_fw_session(&hex_file("xdp_fw-tcp23.hex"), &[]);
    let mut b = xdp_fw_session(&hex_file("xdp_fw-udp-dns.hex"), &[]);
    let report = diff(&mut a, &mut b);
    let DiffReport::Split {
        step,
        pc,
        line,
        text,
        a_next,
        b_next,
        regs,
        ..
    } = report
    else {
        panic!("{report:?}")
    };
    assert!(text.starts_with("if "), "{text}");
    assert_ne!(a_next, b_next);
    assert!(step > 10);
    assert_eq!((a.position(), a.pc()), (step, pc));
    let line = line.expect("line");
    assert!(line.file.ends_with("xdp_fw.bpf.c"));
    // The protocol register: 6 (TCP) in A, 17 (UDP) in B.
    assert!(
        regs.iter().any(|r| (r.a, r.b) == (6, 17)),
        "{regs:?} at {}:{} {text}",
        line.file,
        line.line
    );

    // The same packet twice: same path.
    let mut a = xdp_fw_session(&hex_file("xdp_fw-tcp23.hex"), &[]);
    let mut b = xdp_fw_session(&hex_file("xdp_fw-tcp23.hex"), &[]);
    let report = diff(&mut a, &mut b);
    assert!(
        matches!(
            report,
            DiffReport::Same {
                a: Some(EndKind::Exited(1)),
                b: Some(EndKind::Exited(1)),
                ..
            }
        ),
        "{report:?}"
    );
}
