//! Which registers are live (may be read before being written) before each
//! instruction of the original program: a backward analysis over each
//! function's control flow. The instrumenter uses it where a probe sits in
//! the middle of straight-line code (after a load through a BTF pointer):
//! the caller-saved registers the probe's own helper calls clobber must be
//! saved and restored only if the program still needs them.
//!
//! It is conservative (a register is live if any path may read it): a
//! helper call reads the arguments the catalogue gives it, a kfunc or
//! local call reads r1-r5, `exit` reads r0. Kernels from 6.15 print their
//! own (more precise) table in the verifier log; `sites` prefers it.

use bpfrr_trace::catalog::helper;
use bpfrr_trace::isa::{AtomicOp, CallTarget, CheckedProgram, Insn, Operand, branch_target};

/// A set of registers r0-r10, bit N = rN.
pub type RegSet = u16;

const ARGS: RegSet = 0b11_1110; // r1-r5
const CALLER_SAVED: RegSet = 0b11_1111; // r0-r5

fn bit(r: u8) -> RegSet {
    1 << (r & 15)
}

/// (read, written) registers of one instruction.
fn uses_defs(insn: &Insn) -> (RegSet, RegSet) {
    let op = |o: &Operand| match o {
        Operand::Reg(r) => bit(*r),
        Operand::Imm(_) => 0,
    };
    match insn {
        Insn::Alu {
            dst, src, op: o, ..
        } => {
            let reads_dst = !matches!(o, bpfrr_trace::isa::AluOp::Mov);
            (op(src) | if reads_dst { bit(*dst) } else { 0 }, bit(*dst))
        }
        Insn::Neg { dst, .. } | Insn::Endian { dst, .. } => (bit(*dst), bit(*dst)),
        Insn::MovSx { dst, src, .. } => (bit(*src), bit(*dst)),
        Insn::Load { dst, src, .. } => (bit(*src), bit(*dst)),
        Insn::Store { dst, src, .. } => (bit(*dst) | op(src), 0),
        Insn::Atomic {
            op: o,
            fetch,
            dst,
            src,
            ..
        } => match o {
            AtomicOp::LoadAcquire => (bit(*src), bit(*dst)),
            AtomicOp::StoreRelease => (bit(*dst) | bit(*src), 0),
            AtomicOp::Cmpxchg => (bit(*dst) | bit(*src) | bit(0), bit(0)),
            _ if *fetch => (bit(*dst) | bit(*src), bit(*src)),
            _ => (bit(*dst) | bit(*src), 0),
        },
        Insn::LoadImm64 { dst, .. } => (0, bit(*dst)),
        // LD_ABS/LD_IND read the socket buffer through r6 and clobber r0-r5.
        Insn::LoadPacket { src, .. } => (bit(6) | src.map_or(0, bit), CALLER_SAVED),
        Insn::Jump { dst, src, .. } => (bit(*dst) | op(src), 0),
        Insn::Ja { .. } | Insn::MayGoto { .. } => (0, 0),
        Insn::Call(CallTarget::Reg(r)) => (ARGS | bit(*r), CALLER_SAVED),
        // A helper reads as many arguments as the catalogue gives it.
        Insn::Call(CallTarget::Helper(id)) => match helper(*id) {
            Some(spec) => (ARGS & ((1 << (spec.args.len() + 1)) - 1), CALLER_SAVED),
            None => (ARGS, CALLER_SAVED),
        },
        Insn::Call(_) => (ARGS, CALLER_SAVED),
        Insn::Exit => (bit(0), 0),
    }
}

/// Registers live before each instruction (0 for the second slot of an
/// `ld_imm64` and for unreachable code).
pub fn live_before(prog: &CheckedProgram) -> Vec<RegSet> {
    let n = prog.insns.len();
    let mut live = vec![0 as RegSet; n];
    // Iterate to a fixed point; sets only grow, so this ends after at most
    // 11 * n changes.
    let mut changed = true;
    while changed {
        changed = false;
        for pc in (0..n).rev() {
            let Some(insn) = prog.insns[pc] else { continue };
            let mut out: RegSet = 0;
            let falls_through = !matches!(insn, Insn::Ja { .. } | Insn::Exit);
            if falls_through && let Some(&l) = live.get(pc + insn.slots()) {
                out |= l;
            }
            // Jumps carry liveness back from their target; a local call's
            // target is another function (its r1-r5 are counted as read).
            if matches!(
                insn,
                Insn::Ja { .. } | Insn::Jump { .. } | Insn::MayGoto { .. }
            ) && let Some(t) = branch_target(&insn, pc)
                && let Some(&l) = live.get(t as usize)
            {
                out |= l;
            }
            let (uses, defs) = uses_defs(&insn);
            let new = uses | (out & !defs);
            if new != live[pc] {
                live[pc] = new;
                changed = true;
            }
        }
    }
    live
}

/// Registers live right after the instruction at `pc` when it falls
/// through (a load, an ALU operation).
pub fn live_after(live: &[RegSet], prog: &CheckedProgram, pc: usize) -> RegSet {
    let slots = prog
        .insns
        .get(pc)
        .copied()
        .flatten()
        .map_or(1, |i| i.slots());
    live.get(pc + slots).copied().unwrap_or(0)
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

    #[test]
    fn reads_before_writes_make_registers_live() {
        let p = vec![
            ins(CLASS_LDX | SIZE_W | MODE_MEM, 2, 1, 0, 0), // 0: r2 = *(u32 *)(r1 + 0)
            ins(CLASS_ALU64 | ALU_MOV | SRC_K, 3, 0, 0, 1), // 1: r3 = 1
            ins(CLASS_JMP | JMP_JEQ | SRC_K, 2, 0, 1, 0),   // 2: if r2 == 0 goto 4
            ins(CLASS_ALU64 | ALU_MOV | SRC_X, 0, 3, 0, 0), // 3: r0 = r3
            ins(CLASS_JMP | JMP_EXIT, 0, 0, 0, 0),          // 4: exit
        ];
        let c = check(&p).unwrap();
        let live = live_before(&c);
        assert_eq!(
            live[0],
            bit(1) | bit(0),
            "r1 read; r0 reaches exit via 2->4"
        );
        // After 0: r2 (the branch) and r0; r3 is written at 1 before 3 reads it.
        assert_eq!(live_after(&live, &c, 0), bit(2) | bit(0));
        assert_eq!(live_after(&live, &c, 1), bit(2) | bit(3) | bit(0));
        assert_eq!(live[3], bit(3));
        assert_eq!(live[4], bit(0));
    }

    #[test]
    fn calls_clobber_the_caller_saved_registers() {
        let p = vec![
            ins(CLASS_ALU64 | ALU_MOV | SRC_K, 4, 0, 0, 7), // 0: r4 = 7
            ins(CLASS_ALU64 | ALU_MOV | SRC_K, 6, 0, 0, 7), // 1: r6 = 7
            ins(CLASS_JMP | JMP_CALL, 0, 0, 0, 9999),       // 2: call (unknown helper)
            ins(CLASS_ALU64 | ALU_ADD | SRC_X, 0, 6, 0, 0), // 3: r0 += r6
            ins(CLASS_JMP | JMP_EXIT, 0, 0, 0, 0),          // 4: exit
        ];
        let c = check(&p).unwrap();
        let live = live_before(&c);
        assert_eq!(live_after(&live, &c, 2), bit(0) | bit(6));
        assert_eq!(
            live[2],
            ARGS | bit(6),
            "the call reads r1-r5 and r6 survives it"
        );
        assert_eq!(
            live_after(&live, &c, 0),
            ARGS,
            "r6 is written before it is read"
        );
    }
}
