//! A small forward analysis over the original program: which registers hold
//! a known map (from `ld_imm64` with a map fd) or a known constant at each
//! instruction. The instrumenter uses it at helper calls to size captures
//! statically: a map lookup's value size, a buffer whose size is a constant.
//! Anything the analysis cannot follow (values through the stack, arithmetic)
//! is `Unknown`, and the probe falls back to a bounded capture.

use bpfrr_trace::isa::{AluOp, CheckedProgram, Imm64Kind, Insn, Operand, Width, branch_target};

/// What a register is known to hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Val {
    Unknown,
    /// A map pointer, by the fd in its `ld_imm64`.
    Map(i32),
    Const(i64),
}

type Regs = [Val; 11];

fn join(a: &Regs, b: &Regs) -> Regs {
    let mut out = *a;
    for (o, v) in out.iter_mut().zip(b) {
        if *o != *v {
            *o = Val::Unknown;
        }
    }
    out
}

/// Register state before each instruction (None: unreachable from any
/// function start, or the second slot of an ld_imm64).
pub fn analyze(prog: &CheckedProgram, function_starts: &[usize]) -> Vec<Option<Regs>> {
    let n = prog.insns.len();
    let mut state: Vec<Option<Regs>> = vec![None; n];
    let mut work: Vec<usize> = Vec::new();
    for &s in function_starts {
        if s < n {
            state[s] = Some([Val::Unknown; 11]);
            work.push(s);
        }
    }
    // Each register can only go Const/Map -> Unknown once per instruction,
    // so this terminates after O(n * 11) updates.
    while let Some(pc) = work.pop() {
        let Some(insn) = prog.insns[pc] else { continue };
        let Some(mut regs) = state[pc] else { continue };
        let mut falls_through = true;
        match insn {
            Insn::Alu {
                width,
                op: AluOp::Mov,
                dst,
                src,
            } => {
                regs[dst as usize] = match (width, src) {
                    (Width::W64, Operand::Imm(i)) => Val::Const(i as i64),
                    (Width::W32, Operand::Imm(i)) => Val::Const(i as u32 as i64),
                    (Width::W64, Operand::Reg(r)) => regs[r as usize],
                    (Width::W32, Operand::Reg(r)) => match regs[r as usize] {
                        Val::Const(c) => Val::Const(c as u32 as i64),
                        _ => Val::Unknown,
                    },
                };
            }
            Insn::Alu { dst, .. }
            | Insn::Neg { dst, .. }
            | Insn::MovSx { dst, .. }
            | Insn::Endian { dst, .. }
            | Insn::Load { dst, .. } => regs[dst as usize] = Val::Unknown,
            Insn::LoadImm64 { kind, dst, imm } => {
                regs[dst as usize] = match kind {
                    Imm64Kind::Imm => Val::Const(imm as i64),
                    Imm64Kind::MapFd => Val::Map(imm as u32 as i32),
                    _ => Val::Unknown,
                }
            }
            Insn::Atomic { op, fetch, src, .. } => {
                use bpfrr_trace::isa::AtomicOp;
                match op {
                    AtomicOp::Cmpxchg => regs[0] = Val::Unknown,
                    AtomicOp::LoadAcquire => regs[src as usize] = Val::Unknown,
                    _ if fetch => regs[src as usize] = Val::Unknown,
                    _ => {}
                }
            }
            Insn::LoadPacket { .. } | Insn::Call(_) => {
                for r in regs.iter_mut().take(6) {
                    *r = Val::Unknown;
                }
            }
            Insn::Store { .. } | Insn::Jump { .. } | Insn::MayGoto { .. } => {}
            Insn::Ja { .. } | Insn::Exit => falls_through = false,
        }
        let mut succ: Vec<usize> = Vec::with_capacity(2);
        if falls_through {
            succ.push(pc + insn.slots());
        }
        // Local calls and callback addresses start a function (seeded as
        // Unknown); only jumps carry this function's state.
        if matches!(
            insn,
            Insn::Ja { .. } | Insn::Jump { .. } | Insn::MayGoto { .. }
        ) && let Some(t) = branch_target(&insn, pc)
        {
            succ.push(t as usize);
        }
        for s in succ {
            if s >= n {
                continue;
            }
            let new = match &state[s] {
                None => regs,
                Some(old) => join(old, &regs),
            };
            if state[s] != Some(new) {
                state[s] = Some(new);
                work.push(s);
            }
        }
    }
    state
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
    fn maps_and_constants_reach_calls_and_merge_to_unknown() {
        let p = vec![
            ins(CLASS_LD | SIZE_DW | MODE_IMM, 1, PSEUDO_MAP_FD, 0, 42), // 0: r1 = map 42
            ins(0, 0, 0, 0, 0),
            ins(CLASS_ALU64 | ALU_MOV | SRC_K, 3, 0, 0, 16), // 2: r3 = 16
            ins(CLASS_JMP | JMP_JEQ | SRC_K, 3, 0, 1, 0),    // 3: if r3 == 0 goto 5
            ins(CLASS_ALU64 | ALU_MOV | SRC_K, 3, 0, 0, 8),  // 4: r3 = 8
            ins(CLASS_ALU64 | ALU_MOV | SRC_X, 2, 1, 0, 0),  // 5: r2 = r1
            ins(CLASS_JMP | JMP_CALL, 0, 0, 0, 1),           // 6: call
            ins(CLASS_JMP | JMP_EXIT, 0, 0, 0, 0),           // 7
        ];
        let c = check(&p).unwrap();
        let st = analyze(&c, &[0]);
        let at6 = st[6].unwrap();
        assert_eq!(at6[1], Val::Map(42));
        assert_eq!(at6[2], Val::Map(42));
        assert_eq!(at6[3], Val::Unknown, "16 and 8 merge");
        let at7 = st[7].unwrap();
        assert_eq!(at7[1], Val::Unknown, "calls clobber r1-r5");
        assert_eq!(st[1], None, "second ld_imm64 slot");
        let at3 = st[3].unwrap();
        assert_eq!(at3[3], Val::Const(16));
    }
}
