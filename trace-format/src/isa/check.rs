//! Whole-program checks the kernel makes before the verifier proper runs
//! (the ones that need no types): every slot decodes, `ld_imm64` is whole,
//! every jump and local call lands on an instruction inside the program.
//! The rules that need the program's function structure (a jump may not leave
//! its function, every function ends in exit, r10 is read-only) belong to the
//! replayer's loader (`bpfrr_replayer::vm::program`), which splits functions.

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
        "instruction {pc}: the program's last instruction is neither exit nor an unconditional jump"
    )]
    FallsOffEnd { pc: usize },
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
    // The last real instruction must not fall through past the end.
    let last = (0..len)
        .rev()
        .find(|&i| insns[i].is_some())
        .expect("non-empty");
    match insns[last] {
        Some(Insn::Exit) | Some(Insn::Ja { .. }) => {}
        _ => return Err(CheckError::FallsOffEnd { pc: last }),
    }
    Ok(CheckedProgram {
        raw: raw.to_vec(),
        insns,
    })
}
