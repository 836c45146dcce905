//! Which loads read kernel memory through a BTF pointer: on some path of
//! the verifier's walk, the load's source register was `ptr_<type>`
//! (`trusted_`, `rcu_`, `untrusted_` ...). The recorder records their
//! values; the replayer answers exactly these loads from the recording.

use bpfrr_trace::isa::Insn;

use super::{RegKind, VerifierLog};

/// Instruction indices (sorted) of the loads through BTF pointers, given
/// the program's decoded instructions (`isa::check`).
pub fn btf_pointer_loads(log: &VerifierLog, insns: &[Option<Insn>]) -> Vec<u32> {
    let mut out: Vec<u32> = log
        .visits
        .iter()
        .filter(|v| {
            let Some(Some(Insn::Load { src, .. })) = insns.get(v.insn) else {
                return false;
            };
            v.reg(*src)
                .is_some_and(|r| matches!(r.kind, RegKind::Btf(_)))
        })
        .map(|v| v.insn as u32)
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// The same from a log's text; cheap when the log names no BTF pointer
/// (programs that never see one are not parsed at all).
pub fn btf_pointer_loads_in(log_text: &str, insns: &[Option<Insn>]) -> Vec<u32> {
    if !log_text.contains("ptr_") {
        return Vec::new();
    }
    btf_pointer_loads(&VerifierLog::parse(log_text), insns)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bpfrr_trace::isa::opcode::*;
    use bpfrr_trace::isa::{RawInsn, check};

    #[test]
    fn loads_whose_source_is_a_btf_pointer_are_found() {
        let p = check(&[
            RawInsn::new(CLASS_LDX | SIZE_DW | MODE_MEM, 2, 1, 0, 0),
            RawInsn::new(CLASS_LDX | SIZE_W | MODE_MEM, 3, 2, 1234, 0),
            RawInsn::new(CLASS_ALU64 | ALU_MOV | SRC_K, 0, 0, 0, 0),
            RawInsn::new(CLASS_JMP | JMP_EXIT, 0, 0, 0, 0),
        ])
        .unwrap();
        let log = "func#0 @0
0: R1=ctx() R10=fp0
0: (79) r2 = *(u64 *)(r1 +0)          ; R1=ctx() R2_w=trusted_ptr_task_struct()
1: (61) r3 = *(u32 *)(r2 +1234)       ; R2_w=trusted_ptr_task_struct() R3_w=scalar()
2: (b7) r0 = 0                        ; R0_w=0
3: (95) exit
";
        assert_eq!(btf_pointer_loads_in(log, &p.insns), vec![1]);
        assert!(btf_pointer_loads_in("processed 4 insns", &p.insns).is_empty());
    }
}
