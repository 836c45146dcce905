//! Whether a program can change the packet it runs on.
//!
//! When no program of a recording can, the exit probes do not copy the
//! packet again: the exit record says "unchanged" and the final packet is
//! the entry packet (the replay still compares the VM's final packet with
//! it). The answer must never be a wrong "cannot": anything this analysis
//! does not understand counts as a possible change.
//!
//! It reads the ORIGINAL program's verifier log (level 2), which gives the
//! type of every register at every instruction the verifier walked:
//! - a store or atomic operation through a packet pointer changes it;
//! - a helper output argument that points into the packet changes it;
//! - a helper the catalogue says moves packet data, any other helper that
//!   takes the context and is not known to only read it, an unknown helper
//!   and any kfunc may change it.
//!
//! Instructions the verifier never reached are dead (the kernel does not
//! run them). A log without its final statistics line (truncated) or with
//! an error tells nothing: the program may change the packet.

use bpfrr_replayer::verifier::{RegKind, VerifierLog};
use bpfrr_trace::catalog::{ArgKind, helper};
use bpfrr_trace::isa::{CallTarget, Insn, check};
use bpfrr_trace::object::LinkedProgram;

/// Helpers that take the context but never write packet bytes.
const CTX_READERS: &[&str] = &[
    "skb_load_bytes",
    "skb_load_bytes_relative",
    "xdp_load_bytes",
    "perf_event_output",
    "skb_output",
    "xdp_output",
    "tail_call",
    "fib_lookup",
    "check_mtu",
    "get_socket_cookie",
    "get_socket_uid",
    "get_netns_cookie",
    "get_cgroup_classid",
    "get_route_realm",
    "get_hash_recalc",
    "skb_cgroup_id",
    "skb_ancestor_cgroup_id",
    "skb_cgroup_classid",
    "skb_under_cgroup",
    "sk_lookup_tcp",
    "sk_lookup_udp",
    "skc_lookup_tcp",
    "get_stackid",
    "get_stack",
    "skb_get_tunnel_key",
    "skb_get_tunnel_opt",
];

fn is_packet(kind: Option<&RegKind>) -> bool {
    // No type known: assume the worst.
    matches!(
        kind,
        None | Some(RegKind::Packet | RegKind::PacketMeta | RegKind::PacketEnd)
    )
}

/// Whether `prog` may change its packet, judged from the original
/// program's level-2 verifier `log`.
pub fn may_change_packet(prog: &LinkedProgram, log: &str) -> bool {
    let Ok(checked) = check(&prog.insns) else {
        return true;
    };
    let vlog = VerifierLog::parse(log);
    if vlog.stats.is_none() || vlog.error.is_some() {
        return true;
    }
    // Register `reg` of every visit of `pc` points into the packet, or may.
    let packet_reg = |pc: usize, reg: u8| {
        vlog.states_at(pc)
            .any(|v| !v.has_state || is_packet(v.reg(reg).map(|r| &r.kind)))
    };
    for (pc, insn) in checked.insns.iter().enumerate() {
        let Some(insn) = insn else { continue };
        match *insn {
            Insn::Store { dst, .. } | Insn::Atomic { dst, .. }
                if dst != 10 && packet_reg(pc, dst) =>
            {
                return true;
            }
            Insn::Call(CallTarget::Helper(id)) => {
                if vlog.states_at(pc).next().is_none() {
                    continue; // never reached
                }
                let Some(spec) = helper(id) else {
                    return true;
                };
                let takes_ctx = spec
                    .args
                    .iter()
                    .any(|a| matches!(a, ArgKind::Ctx | ArgKind::CtxOrNull));
                if spec.changes_packet_data()
                    || (takes_ctx && !CTX_READERS.contains(&spec.short_name()))
                {
                    return true;
                }
                if spec.output_args().iter().any(|o| packet_reg(pc, o.arg + 1)) {
                    return true;
                }
            }
            Insn::Call(CallTarget::Kfunc { .. }) if vlog.states_at(pc).next().is_some() => {
                return true;
            }
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use bpfrr_trace::isa::RawInsn;
    use bpfrr_trace::isa::opcode::*;

    fn prog(insns: Vec<RawInsn>) -> LinkedProgram {
        LinkedProgram {
            name: "p".into(),
            section: "xdp".into(),
            prog_type: 6,
            insns,
            license: "GPL".into(),
            ..LinkedProgram::default()
        }
    }

    #[test]
    fn a_log_that_tells_nothing_means_the_packet_may_change() {
        // r0 = 2; exit: nothing could change the packet, but without a
        // complete verifier log the analysis cannot know.
        let p = prog(vec![
            RawInsn::new(CLASS_ALU64 | ALU_MOV | SRC_K, 0, 0, 0, 2),
            RawInsn::new(CLASS_JMP | JMP_EXIT, 0, 0, 0, 0),
        ]);
        assert!(may_change_packet(&p, ""));
        assert!(may_change_packet(&p, "0: (b7) r0 = 2\n1: (95) exit\n"));
        // A program that does not pass the instruction checks.
        let bad = prog(vec![RawInsn::new(0xff, 0, 0, 0, 0)]);
        assert!(may_change_packet(&bad, ""));
    }
}
