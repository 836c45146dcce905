//! Breakpoints of every kind and watchpoints forward and in reverse.

mod session_support;

use bpfrr_replayer::env::{ModelConfig, ModelEnv};
use bpfrr_replayer::session::{BreakLocation, DebugInfo, Session, StopReason};
use bpfrr_replayer::vm::{Context, Machine, SkBuff, SkbProgram};
use bpfrr_trace::isa::Size;
use session_support::*;

fn source_line(needle: &str) -> u32 {
    let text = std::fs::read_to_string(samples_dir().join("xdp_fw.bpf.c")).unwrap();
    text.lines().position(|l| l.contains(needle)).expect("line") as u32 + 1
}

#[test]
fn instruction_breakpoints_with_hits_conditions_ignore_counts_and_states() {
    let mut s = model_session(&counting_loop(10), &[0; 16]);
    let b = s.add_breakpoint("13").unwrap();
    for i in 1..=3 {
        let stop = s.continue_();
        assert_eq!(stop.reason, StopReason::Breakpoint { id: b });
        assert_eq!(s.pc(), 13);
        assert_eq!(s.regs()[6], i - 1);
        assert_eq!(s.breakpoints()[0].hits, i);
    }
    // Ignore the next two hits.
    s.set_ignore_count(b, 2).unwrap();
    s.continue_();
    assert_eq!(s.regs()[6], 5);
    // Condition.
    s.set_condition(b, Some("r6 == 8")).unwrap();
    s.continue_();
    assert_eq!(s.regs()[6], 8);
    assert_eq!(s.breakpoints()[0].condition.as_deref(), Some("r6 == 8"));
    // Disabled: runs to the end. Reverse-continue with it enabled stops on it.
    s.enable_point(b, false).unwrap();
    assert_eq!(s.continue_().reason, StopReason::Exited { r0: 10 });
    s.enable_point(b, true).unwrap();
    s.set_condition(b, None).unwrap();
    assert_eq!(
        s.reverse_continue().reason,
        StopReason::Breakpoint { id: b }
    );
    assert_eq!((s.pc(), s.regs()[6]), (13, 9));
    // Delete.
    s.delete_point(b).unwrap();
    assert!(s.delete_point(b).is_err());
    assert!(s.breakpoints().is_empty());
    assert_eq!(s.reverse_continue().reason, StopReason::Start);
}

#[test]
fn conditional_breakpoint_in_one_command() {
    let mut s = model_session(&counting_loop(100), &[0; 16]);
    let b = s.add_breakpoint("14 if r6 > 64").unwrap();
    assert_eq!(s.continue_().reason, StopReason::Breakpoint { id: b });
    assert_eq!(s.regs()[6], 65);
    assert_eq!(s.breakpoints()[0].hits, 1);
}

#[test]
fn line_function_and_helper_breakpoints_on_the_sample() {
    let pkt = hex_file("xdp_fw-tcp23.hex");
    let mut s = xdp_fw_session(&pkt, &[]);

    let f = s.add_breakpoint("parse_packet").unwrap();
    assert!(
        matches!(&s.breakpoints()[0].location, BreakLocation::Function(n) if n == "parse_packet")
    );
    assert_eq!(s.continue_().reason, StopReason::Breakpoint { id: f });
    assert_eq!(s.frames().len(), 2, "inside the bpf-to-bpf call");

    let line = source_line("proto = bpf_ntohs(eth->h_proto);");
    let l = s.add_breakpoint(&format!("xdp_fw.bpf.c:{line}")).unwrap();
    assert_eq!(s.continue_().reason, StopReason::Breakpoint { id: l });
    assert_eq!(s.line().unwrap().line, line);

    let h = s.add_breakpoint("bpf_map_lookup_elem").unwrap();
    assert_eq!(s.continue_().reason, StopReason::Breakpoint { id: h });
    assert!(
        s.insn_text(s.prog(), s.pc())
            .contains("bpf_map_lookup_elem")
    );
    assert_eq!(
        s.line().unwrap().line,
        source_line("hits = bpf_map_lookup_elem")
    );
    // Lookups of blocked_src, blocked_prefixes and rule_stats.
    let mut calls = 1;
    while let StopReason::Breakpoint { .. } = s.continue_().reason {
        calls += 1;
    }
    assert_eq!(calls, 3);
    assert_eq!(s.breakpoints().iter().find(|b| b.id == h).unwrap().hits, 3);

    // Errors say what is wrong.
    let e = s.add_breakpoint("xdp_fw.bpf.c:1").unwrap_err().to_string();
    assert!(e.contains("no instruction is on line 1"), "{e}");
    let e = s.add_breakpoint("no_such_thing").unwrap_err().to_string();
    assert!(e.contains("not an instruction index"), "{e}");
    let e = s
        .add_breakpoint("bpf_ringbuf_output")
        .unwrap_err()
        .to_string();
    assert!(e.contains("never call"), "{e}");
    assert!(s.add_breakpoint("100000").is_err());
    assert!(s.add_breakpoint("12 if r1 +").is_err());
}

#[test]
fn register_and_stack_slot_watchpoints_forward_and_reverse() {
    let mut s = model_session(&counting_loop(5), &[0; 16]);
    let w = s.add_watchpoint("r6").unwrap();
    // r6 = 0 does not change it (it was 0); the first r6 += 1 does.
    let stop = s.continue_();
    assert_eq!(
        stop.reason,
        StopReason::Watchpoint {
            id: w,
            old: Some(0u64.to_le_bytes().to_vec()),
            new: Some(1u64.to_le_bytes().to_vec()),
        }
    );
    assert_eq!(s.last_step().unwrap().pc, 13);
    // From the end, reverse-continue stops before the step that last wrote r6.
    s.enable_point(w, false).unwrap();
    s.continue_();
    s.enable_point(w, true).unwrap();
    let stop = s.reverse_continue();
    assert_eq!(
        stop.reason,
        StopReason::Watchpoint {
            id: w,
            old: Some(4u64.to_le_bytes().to_vec()),
            new: Some(5u64.to_le_bytes().to_vec()),
        }
    );
    assert_eq!(s.pc(), 13, "the instruction that wrote it is next");
    assert_eq!(s.regs()[6], 4);
    s.delete_point(w).unwrap();

    // A stack slot of frame 0.
    s.goto(1);
    let slot = s.add_watchpoint("*(u64 *)(r10 - 8)").unwrap();
    assert!(matches!(s.continue_().reason, StopReason::Watchpoint { id, .. } if id == slot));
    assert_eq!(
        s.last_step().unwrap().pc,
        1,
        "the spill in the second iteration"
    );
    assert_eq!(s.print("*(u64 *)(r10 - 8)").unwrap(), "1");
    s.goto(u64::MAX);
    assert!(matches!(s.reverse_continue().reason, StopReason::Watchpoint { id, .. } if id == slot));
    assert_eq!(s.pc(), 1);
    assert_eq!(s.regs()[6], 4);
}

#[test]
fn map_value_watchpoint() {
    let mut s = model_session(&counting_loop(4), &[0; 16]);
    s.goto_visit(9, None, true); // right after the first lookup
    let w = s.add_watchpoint("*(u64 *)r0").unwrap();
    assert!(matches!(s.continue_().reason, StopReason::Watchpoint { id, .. } if id == w));
    assert_eq!(s.last_step().unwrap().pc, 12);
    // Iterations add 0, 1, 2, 3: the value goes 0 -> 1 -> 3 -> 6.
    let stop = s.continue_();
    assert_eq!(
        stop.reason,
        StopReason::Watchpoint {
            id: w,
            old: Some(1u64.to_le_bytes().to_vec()),
            new: Some(3u64.to_le_bytes().to_vec())
        }
    );
}

#[test]
fn packet_range_and_context_field_watchpoints() {
    // r2 = ctx->data; *(u16 *)(r2 + 12) = 0x0008; r0 = 2; exit
    let insns = vec![
        ldx(Size::W, 2, 1, 0),
        st(Size::H, 2, 12, 0x0008),
        mov(0, 2),
        exit(),
    ];
    let mut s = model_session(&insns, &[0xaa; 20]);
    let w = s.add_watchpoint("pkt[12:14]").unwrap();
    let stop = s.continue_();
    assert_eq!(
        stop.reason,
        StopReason::Watchpoint {
            id: w,
            old: Some(vec![0xaa, 0xaa]),
            new: Some(vec![0x08, 0x00])
        }
    );
    s.continue_();
    assert!(s.at_end());
    assert!(matches!(
        s.reverse_continue().reason,
        StopReason::Watchpoint { .. }
    ));
    assert_eq!(s.pc(), 1);

    // A TC program writing skb->mark.
    let insns = vec![st(Size::W, 1, 8, 7), mov(0, 0), exit()];
    let mut machine = Machine::new(program(&insns));
    machine
        .start(
            0,
            &Context::skb(SkbProgram::Tc, &[0; 60], SkBuff::default()),
        )
        .unwrap();
    let env = ModelEnv::new(vec![], ModelConfig::default());
    let mut s = Session::new(machine, env, DebugInfo::default()).unwrap();
    let w = s.add_watchpoint("ctx->mark").unwrap();
    assert_eq!(
        s.continue_().reason,
        StopReason::Watchpoint {
            id: w,
            old: Some(vec![0; 4]),
            new: Some(vec![7, 0, 0, 0])
        }
    );
    assert_eq!(s.print("ctx->mark").unwrap(), "7");
    // Only lvalues can be watched.
    let e = s.add_watchpoint("r1 + 1").unwrap_err().to_string();
    assert!(e.contains("computed value"), "{e}");
}
