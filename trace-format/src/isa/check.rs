//! Whole-program checks the kernel makes before the verifier proper runs
//! (the ones that need no types): every slot decodes, `ld_imm64` is whole,
//! every jump and local call lands on an instruction inside the program,
//! jumps stay inside their function (`check_subprogs`), every function ends
//! in exit or an unconditional jump, and nothing writes the frame pointer r10.

use super::decode::{DecodeError, decode};
use super::insn::*;

/// Why a program cannot be run or loaded; each names the instruction.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    #[error("the program is empty")]
    Empty,
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("instruction {pc}: jump to {target} is outside the program (0..{len})")]
    JumpOutOfRange { pc: usize, target: i64, len: usize },
    #[error("instruction {pc}: jump to {target} lands in the second half of the ld_imm64 at {}", target - 1)]
    JumpIntoLdImm64 { pc: usize, target: usize },
    #[error(
        "instruction {pc}: the last instruction of a function is neither exit nor an unconditional jump"
    )]
    FallsOffEnd { pc: usize },
    #[error(
        "instruction {pc}: jump to {target} leaves its function (instructions {start}..{end}); \
         only calls may cross functions"
    )]
    JumpLeavesFunction {
        pc: usize,
        target: usize,
        start: usize,
        end: usize,
    },
    #[error("instruction {pc}: writes r10, the read-only frame pointer")]
    WritesFramePointer { pc: usize },
}

/// A program that passed `check`: its raw slots and, per slot, the decoded
/// instruction (`None` for the second slot of an `ld_imm64`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckedProgram {
    pub raw: Vec<RawInsn>,
    pub insns: Vec<Option<Insn>>,
}

/// Where control may go from `pc` besides falling through: the target slot of a
/// jump or local call, relative offsets resolved. `None` for other instructions.
pub fn branch_target(insn: &Insn, pc: usize) -> Option<i64> {
    let next = pc as i64 + 1;
    match *insn {
        Insn::Ja { off, .. } => Some(next + off as i64),
        Insn::Jump { off, .. } | Insn::MayGoto { off } => Some(next + off as i64),
        Insn::Call(CallTarget::Local(off)) => Some(next + off as i64),
        Insn::LoadImm64 {
            kind: Imm64Kind::Func,
            imm,
            ..
        } => Some(next + (imm as u32 as i32) as i64),
        _ => None,
    }
}

/// Decodes and checks a whole program as the kernel would before verification.
pub fn check(raw: &[RawInsn]) -> Result<CheckedProgram, CheckError> {
    if raw.is_empty() {
        return Err(CheckError::Empty);
    }
    let len = raw.len();
    let mut insns = vec![None; len];
    let mut pc = 0;
    while pc < len {
        let insn = decode(raw, pc)?;
        insns[pc] = Some(insn);
        pc += insn.slots();
    }
    for (pc, insn) in insns.iter().enumerate() {
        let Some(insn) = insn else { continue };
        if let Some(target) = branch_target(insn, pc) {
            if target < 0 || target >= len as i64 {
                return Err(CheckError::JumpOutOfRange { pc, target, len });
            }
            if insns[target as usize].is_none() {
                return Err(CheckError::JumpIntoLdImm64 {
                    pc,
                    target: target as usize,
                });
            }
        }
    }
    check_functions(&insns)?;
    if let Some(pc) = (0..len).find(|&pc| insns[pc].is_some_and(|i| writes_frame_pointer(&i))) {
        return Err(CheckError::WritesFramePointer { pc });
    }
    Ok(CheckedProgram {
        raw: raw.to_vec(),
        insns,
    })
}

/// Splits the program into functions as the kernel does (a function starts at
/// 0 and at every local call or `ld_imm64` func target) and checks that no
/// jump leaves its function and that no function falls through its end.
/// Branch targets are already known to be in range.
fn check_functions(insns: &[Option<Insn>]) -> Result<(), CheckError> {
    let len = insns.len();
    let mut starts = vec![0usize];
    for (pc, insn) in insns.iter().enumerate() {
        let is_function_ref = matches!(
            insn,
            Some(Insn::Call(CallTarget::Local(_)))
                | Some(Insn::LoadImm64 {
                    kind: Imm64Kind::Func,
                    ..
                })
        );
        if let (true, Some(target)) = (is_function_ref, insn.and_then(|i| branch_target(&i, pc))) {
            starts.push(target as usize);
        }
    }
    starts.sort_unstable();
    starts.dedup();
    for (i, &start) in starts.iter().enumerate() {
        let end = starts.get(i + 1).copied().unwrap_or(len);
        for (pc, insn) in insns.iter().enumerate().take(end).skip(start) {
            let Some(insn) = *insn else { continue };
            if matches!(
                insn,
                Insn::Ja { .. } | Insn::Jump { .. } | Insn::MayGoto { .. }
            ) {
                let target = branch_target(&insn, pc).expect("jumps have targets") as usize;
                if !(start..end).contains(&target) {
                    return Err(CheckError::JumpLeavesFunction {
                        pc,
                        target,
                        start,
                        end,
                    });
                }
            }
        }
        // The last real instruction must not fall through into the next function.
        let last = (start..end)
            .rev()
            .find(|&pc| insns[pc].is_some())
            .expect("a function starts on an instruction");
        if !matches!(insns[last], Some(Insn::Exit) | Some(Insn::Ja { .. })) {
            return Err(CheckError::FallsOffEnd { pc: last });
        }
    }
    Ok(())
}

/// Whether `insn` writes r10 (the kernel: "frame pointer is read only").
fn writes_frame_pointer(insn: &Insn) -> bool {
    use super::opcode::REG_FP;
    match *insn {
        Insn::Alu { dst, .. }
        | Insn::Neg { dst, .. }
        | Insn::MovSx { dst, .. }
        | Insn::Endian { dst, .. }
        | Insn::Load { dst, .. }
        | Insn::LoadImm64 { dst, .. } => dst == REG_FP,
        Insn::Atomic {
            op: AtomicOp::LoadAcquire,
            dst,
            ..
        } => dst == REG_FP,
        Insn::Atomic {
            op: AtomicOp::Cmpxchg,
            ..
        } => false, // the old value goes to r0
        Insn::Atomic {
            fetch: true, src, ..
        } => src == REG_FP,
        _ => false,
    }
}
