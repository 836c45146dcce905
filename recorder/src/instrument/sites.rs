//! What the ORIGINAL program's verifier log (level 2) tells the
//! instrumenter that the instructions alone do not:
//! - which loads read kernel memory through a BTF pointer (the source
//!   register is `ptr_<type>`, `trusted_ptr_...`, `rcu_ptr_...`, ... on the
//!   verifier's paths): the replayer has no such memory, so their values
//!   are recorded;
//! - for each kfunc call, whether it leaves a value in r0 (a void kfunc
//!   leaves r0 uninitialised, and a probe must not read it) and its name.
//!
//! A probe after a load sits in straight-line code where any register may
//! be live, and its own helper calls clobber r0-r5: the registers among
//! r0-r5 that are live after the load are saved and restored around it.
//! Saving reads them, so each must be set on every path the verifier took
//! to the load; a load where that does not hold is left unrecorded (with
//! the reason) rather than risk a rejection or a changed program.

use bpfrr_replayer::verifier::{RegKind, VerifierLog};
use bpfrr_trace::isa::{CallTarget, CheckedProgram, Insn};

use super::liveness::{RegSet, live_after, live_before};

const CALLER_SAVED: RegSet = 0b11_1111;

/// A load through a BTF pointer whose value is recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BtfLoadSite {
    /// Original instruction index of the load.
    pub insn: usize,
    /// Its destination register.
    pub dst: u8,
    /// Registers among r0-r5 (bit N = rN) the probe saves before its
    /// helper calls and restores after them (always includes `dst` when
    /// it is one of r0-r5: the probe reads the loaded value from its slot).
    pub keep: RegSet,
}

/// A kfunc call as the verifier saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KfuncSite {
    /// Original instruction index of the call.
    pub insn: usize,
    /// The kfunc's name as the log prints it (`bpf_task_from_pid`).
    pub name: Option<String>,
    /// The call leaves a value in r0.
    pub returns_value: bool,
}

/// The facts for one program.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogSites {
    pub btf_loads: Vec<BtfLoadSite>,
    pub kfuncs: Vec<KfuncSite>,
    /// Loads through BTF pointers that cannot be recorded, with why.
    pub unrecorded_loads: Vec<(u32, String)>,
}

impl LogSites {
    pub fn btf_load_at(&self, insn: usize) -> Option<&BtfLoadSite> {
        self.btf_loads.iter().find(|s| s.insn == insn)
    }
    pub fn kfunc_at(&self, insn: usize) -> Option<&KfuncSite> {
        self.kfuncs.iter().find(|s| s.insn == insn)
    }
}

/// Reads the sites out of the original program's verifier log.
pub fn find_sites(log: &str, prog: &CheckedProgram) -> LogSites {
    // Most programs have neither: spare them parsing a long log.
    let has_kfuncs = prog
        .insns
        .iter()
        .any(|i| matches!(i, Some(Insn::Call(CallTarget::Kfunc { .. }))));
    if !has_kfuncs && !log.contains("ptr_") {
        return LogSites::default();
    }
    let parsed = VerifierLog::parse(log);
    let n = prog.insns.len();
    // Per instruction: a BTF pointer was the load's source on some path;
    // the registers set on every path seen (None: no state seen yet).
    let mut btf_source = vec![false; n];
    let mut set_on_all: Vec<Option<RegSet>> = vec![None; n];
    let mut kfunc_r0 = vec![false; n];
    for v in &parsed.visits {
        let Some(Some(insn)) = prog.insns.get(v.insn) else {
            continue;
        };
        if let Insn::Call(CallTarget::Kfunc { .. }) = insn
            && v.reg_after(0).is_some()
        {
            kfunc_r0[v.insn] = true;
        }
        let Insn::Load { src, .. } = insn else {
            continue;
        };
        if !v.has_state {
            continue;
        }
        let set: RegSet = v.regs.iter().fold(0, |acc, (r, _)| acc | 1 << (r & 15));
        let all = &mut set_on_all[v.insn];
        *all = Some(all.map_or(set, |a| a & set));
        if v.reg(*src)
            .is_some_and(|r| matches!(r.kind, RegKind::Btf(_)))
        {
            btf_source[v.insn] = true;
        }
    }

    // The kernel's liveness table (6.15+) knows each call's real argument
    // count; without it, bpfrr's own conservative analysis.
    let own_live = live_before(prog);
    let live_after_load = |pc: usize| -> RegSet {
        match parsed.live_regs.get(&(pc + 1)) {
            Some(&mask) => mask,
            None => live_after(&own_live, prog, pc),
        }
    };
    let mut out = LogSites::default();
    for (pc, insn) in prog.insns.iter().enumerate() {
        match insn {
            Some(Insn::Load { dst, .. }) if btf_source[pc] => {
                let dst_bit: RegSet = 1 << dst;
                let needed = live_after_load(pc) & CALLER_SAVED & !dst_bit;
                let unset = needed & !set_on_all[pc].unwrap_or(0);
                if unset != 0 {
                    let r = unset.trailing_zeros();
                    out.unrecorded_loads.push((
                        pc as u32,
                        format!(
                            "r{r} is live after it but not set on every path the verifier took there, so bpfrr cannot save it around the probe"
                        ),
                    ));
                    continue;
                }
                out.btf_loads.push(BtfLoadSite {
                    insn: pc,
                    dst: *dst,
                    keep: needed | (dst_bit & CALLER_SAVED),
                });
            }
            Some(Insn::Call(CallTarget::Kfunc { .. })) => {
                let name = parsed.insns.get(&pc).and_then(|t| kfunc_name(&t.text));
                out.kfuncs.push(KfuncSite {
                    insn: pc,
                    name,
                    returns_value: kfunc_r0[pc],
                });
            }
            _ => {}
        }
    }
    out
}

/// `call bpf_task_from_pid#12345` → `bpf_task_from_pid`.
fn kfunc_name(text: &str) -> Option<String> {
    let rest = text.strip_prefix("call ")?;
    let name = rest.split('#').next()?.trim();
    (!name.is_empty() && !name.starts_with("pc")).then(|| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bpfrr_trace::isa::RawInsn;
    use bpfrr_trace::isa::check;
    use bpfrr_trace::isa::opcode::*;

    fn ins(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> RawInsn {
        RawInsn::new(code, dst, src, off, imm)
    }

    /// A tp_btf program on sched_switch-like arguments: r1 = ctx, r2 =
    /// ctx[1] (a task pointer), r3 = task->pid, r4 = 5 kept live across
    /// the load of r3, then a kfunc with one argument.
    fn program() -> CheckedProgram {
        check(&[
            ins(CLASS_LDX | SIZE_DW | MODE_MEM, 2, 1, 8, 0), // 0: r2 = *(u64 *)(r1 + 8)
            ins(CLASS_ALU64 | ALU_MOV | SRC_K, 4, 0, 0, 5),  // 1: r4 = 5
            ins(CLASS_LDX | SIZE_W | MODE_MEM, 3, 2, 1234, 0), // 2: r3 = *(u32 *)(r2 + 1234)
            ins(CLASS_ALU64 | ALU_ADD | SRC_X, 3, 4, 0, 0),  // 3: r3 += r4
            ins(CLASS_ALU64 | ALU_MOV | SRC_X, 1, 3, 0, 0),  // 4: r1 = r3
            ins(CLASS_JMP | JMP_CALL, 0, PSEUDO_CALL_KFUNC, 0, 777), // 5: kfunc
            ins(CLASS_JMP | JMP_EXIT, 0, 0, 0, 0),           // 6
        ])
        .unwrap()
    }

    /// How a 6.18 kernel logs it at level 2 (liveness table included).
    const TABLE: &str = "Live regs before insn:
      0: .1........ (79) r2 = *(u64 *)(r1 +8)
      1: ..2....... (b7) r4 = 5
      2: ..2.4..... (61) r3 = *(u32 *)(r2 +1234)
      3: ...34..... (0f) r3 += r4
      4: ...3...... (bf) r1 = r3
      5: .1........ (85) call bpf_task_from_pid#777
      6: 0......... (95) exit
";
    const WALK: &str = "0: R1=ctx() R10=fp0
0: (79) r2 = *(u64 *)(r1 +8)          ; R1=ctx() R2=trusted_ptr_task_struct()
1: (b7) r4 = 5                        ; R4_w=5
2: (61) r3 = *(u32 *)(r2 +1234)       ; R2=trusted_ptr_task_struct() R3_w=scalar(smin=0,smax=umax=0xffffffff,var_off=(0x0; 0xffffffff))
3: (0f) r3 += r4                      ; R3_w=scalar() R4_w=5
4: (bf) r1 = r3                       ; R1_w=scalar()
5: (85) call bpf_task_from_pid#777    ; R0_w=ptr_or_null_task_struct(id=2,ref_obj_id=2)
6: (95) exit
processed 7 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0
";

    fn log(table: bool) -> String {
        format!("func#0 @0\n{}{WALK}", if table { TABLE } else { "" })
    }

    #[test]
    fn loads_through_btf_pointers_are_found_with_the_registers_to_keep() {
        let sites = find_sites(&log(true), &program());
        assert_eq!(
            sites.btf_loads,
            vec![BtfLoadSite {
                insn: 2,
                dst: 3,
                keep: 1 << 3 | 1 << 4,
            }],
            "the ctx load at 0 is not one; r4 is live after 2 and set"
        );
        assert!(sites.unrecorded_loads.is_empty());
        assert_eq!(
            sites.kfuncs,
            vec![KfuncSite {
                insn: 5,
                name: Some("bpf_task_from_pid".into()),
                returns_value: true,
            }]
        );
    }

    #[test]
    fn a_live_register_not_set_on_every_path_leaves_the_load_unrecorded() {
        // The state at 2 has no r4 (as if a path reached it without it).
        let log = log(true).replace("1: (b7) r4 = 5                        ; R4_w=5\n", "");
        let sites = find_sites(&log, &program());
        assert!(sites.btf_loads.is_empty());
        assert_eq!(sites.unrecorded_loads.len(), 1);
        assert_eq!(sites.unrecorded_loads[0].0, 2);
        assert!(sites.unrecorded_loads[0].1.contains("r4"), "{:?}", sites);
    }

    #[test]
    fn without_the_kernels_table_liveness_is_conservative() {
        // bpfrr's own analysis counts r1-r5 as read by the kfunc call, so
        // r5 (never set) looks live after the load: the load stays unrecorded.
        let sites = find_sites(&log(false), &program());
        assert!(sites.btf_loads.is_empty());
        assert!(sites.unrecorded_loads[0].1.contains("r5"), "{:?}", sites);
    }

    #[test]
    fn no_log_no_sites() {
        let sites = find_sites("", &program());
        assert!(sites.btf_loads.is_empty());
        assert_eq!(sites.kfuncs.len(), 1, "the call is known, its result not");
        assert!(!sites.kfuncs[0].returns_value);
    }
}
