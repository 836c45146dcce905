//! A tiny assembler for the probe blocks: straight-line instructions with
//! block-local labels for forward jumps.

use bpfrr_trace::isa::RawInsn;
use bpfrr_trace::isa::opcode::*;

/// A block-local jump target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Label(usize);

/// Access size of loads and stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sz {
    B,
    H,
    W,
    DW,
}

impl Sz {
    fn bits(self) -> u8 {
        match self {
            Sz::B => SIZE_B,
            Sz::H => SIZE_H,
            Sz::W => SIZE_W,
            Sz::DW => SIZE_DW,
        }
    }

    pub fn from_bytes(n: u32) -> Option<Sz> {
        Some(match n {
            1 => Sz::B,
            2 => Sz::H,
            4 => Sz::W,
            8 => Sz::DW,
            _ => return None,
        })
    }
}

/// Instructions being assembled.
#[derive(Default, Debug)]
pub struct Block {
    insns: Vec<RawInsn>,
    /// (instruction index, label) of jumps whose offset is not known yet.
    fixups: Vec<(usize, Label)>,
    labels: Vec<Option<usize>>,
}

/// The highest helper/stack/field offsets a probe may use fit in i16; a
/// probe offset that does not is a bpfrr bug, caught here.
fn off16(off: i64) -> i16 {
    i16::try_from(off).expect("probe offsets are bounded well below i16::MAX")
}

impl Block {
    pub fn new() -> Block {
        Block::default()
    }

    pub fn len(&self) -> usize {
        self.insns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.insns.is_empty()
    }

    fn push(&mut self, code: u8, dst: u8, src: u8, off: i16, imm: i32) {
        self.insns.push(RawInsn::new(code, dst, src, off, imm));
    }

    pub fn new_label(&mut self) -> Label {
        self.labels.push(None);
        Label(self.labels.len() - 1)
    }

    /// Places `label` at the next instruction.
    pub fn bind(&mut self, label: Label) {
        self.labels[label.0] = Some(self.insns.len());
    }

    /// `dst = *(size *)(src + off)`
    pub fn ldx(&mut self, size: Sz, dst: u8, src: u8, off: i64) {
        self.push(CLASS_LDX | MODE_MEM | size.bits(), dst, src, off16(off), 0);
    }

    /// `*(size *)(dst + off) = src`
    pub fn stx(&mut self, size: Sz, dst: u8, off: i64, src: u8) {
        self.push(CLASS_STX | MODE_MEM | size.bits(), dst, src, off16(off), 0);
    }

    /// `*(size *)(dst + off) = imm`
    pub fn st(&mut self, size: Sz, dst: u8, off: i64, imm: i32) {
        self.push(CLASS_ST | MODE_MEM | size.bits(), dst, 0, off16(off), imm);
    }

    /// `dst = imm` (64-bit, sign-extended).
    pub fn mov_imm(&mut self, dst: u8, imm: i32) {
        self.push(CLASS_ALU64 | ALU_MOV | SRC_K, dst, 0, 0, imm);
    }

    /// `dst = src`
    pub fn mov(&mut self, dst: u8, src: u8) {
        self.push(CLASS_ALU64 | ALU_MOV | SRC_X, dst, src, 0, 0);
    }

    /// `dst += imm`
    pub fn add_imm(&mut self, dst: u8, imm: i32) {
        self.push(CLASS_ALU64 | ALU_ADD | SRC_K, dst, 0, 0, imm);
    }

    /// `dst += src`
    pub fn add(&mut self, dst: u8, src: u8) {
        self.push(CLASS_ALU64 | ALU_ADD | SRC_X, dst, src, 0, 0);
    }

    /// `dst &= imm` (the immediate sign-extended to 64 bits).
    pub fn and_imm(&mut self, dst: u8, imm: i32) {
        self.push(CLASS_ALU64 | ALU_AND | SRC_K, dst, 0, 0, imm);
    }

    /// `dst <<= imm`
    pub fn lsh_imm(&mut self, dst: u8, imm: i32) {
        self.push(CLASS_ALU64 | ALU_LSH | SRC_K, dst, 0, 0, imm);
    }

    /// `dst >>= imm` (logical)
    pub fn rsh_imm(&mut self, dst: u8, imm: i32) {
        self.push(CLASS_ALU64 | ALU_RSH | SRC_K, dst, 0, 0, imm);
    }

    /// `dst -= src`
    pub fn sub(&mut self, dst: u8, src: u8) {
        self.push(CLASS_ALU64 | ALU_SUB | SRC_X, dst, src, 0, 0);
    }

    /// `dst = map` (`ld_imm64` with `BPF_PSEUDO_MAP_FD`).
    pub fn ld_map_fd(&mut self, dst: u8, fd: i32) {
        self.push(CLASS_LD | SIZE_DW | MODE_IMM, dst, PSEUDO_MAP_FD, 0, fd);
        self.push(0, 0, 0, 0, 0);
    }

    /// `exit`
    pub fn exit(&mut self) {
        self.push(CLASS_JMP | JMP_EXIT, 0, 0, 0, 0);
    }

    /// `call helper`
    pub fn call(&mut self, helper: i32) {
        self.push(CLASS_JMP | JMP_CALL, 0, PSEUDO_CALL_HELPER, 0, helper);
    }

    fn jump(&mut self, op: u8, dst: u8, imm: i32, target: Label) {
        self.fixups.push((self.insns.len(), target));
        self.push(CLASS_JMP | op | SRC_K, dst, 0, 0, imm);
    }

    /// `if dst > src goto target` (unsigned)
    pub fn jgt_reg(&mut self, dst: u8, src: u8, target: Label) {
        self.fixups.push((self.insns.len(), target));
        self.push(CLASS_JMP | JMP_JGT | SRC_X, dst, src, 0, 0);
    }

    /// `if dst == imm goto target`
    pub fn jeq(&mut self, dst: u8, imm: i32, target: Label) {
        self.jump(JMP_JEQ, dst, imm, target);
    }

    /// `if dst != imm goto target`
    pub fn jne(&mut self, dst: u8, imm: i32, target: Label) {
        self.jump(JMP_JNE, dst, imm, target);
    }

    /// `if dst <= imm goto target` (unsigned)
    pub fn jle(&mut self, dst: u8, imm: i32, target: Label) {
        self.jump(JMP_JLE, dst, imm, target);
    }

    /// `if dst < imm goto target` (unsigned)
    pub fn jlt(&mut self, dst: u8, imm: i32, target: Label) {
        self.jump(JMP_JLT, dst, imm, target);
    }

    /// `if dst > imm goto target` (unsigned)
    pub fn jgt(&mut self, dst: u8, imm: i32, target: Label) {
        self.jump(JMP_JGT, dst, imm, target);
    }

    /// `goto target`
    pub fn ja(&mut self, target: Label) {
        self.fixups.push((self.insns.len(), target));
        self.push(CLASS_JMP | JMP_JA, 0, 0, 0, 0);
    }

    /// `r(dst) = min(r(dst), cap)` as the verifier understands it: both
    /// paths leave `dst` in [0, cap].
    pub fn clamp(&mut self, dst: u8, cap: u32) {
        let done = self.new_label();
        self.jle(dst, cap as i32, done);
        self.mov_imm(dst, cap as i32);
        self.bind(done);
    }

    /// Appends another block (its labels are already resolved).
    pub fn append(&mut self, other: Block) {
        let base = self.insns.len();
        let insns = other.finish();
        debug_assert!(base < usize::MAX - insns.len());
        self.insns.extend(insns);
    }

    /// Resolves the labels; every label used must have been bound.
    pub fn finish(mut self) -> Vec<RawInsn> {
        for (at, label) in std::mem::take(&mut self.fixups) {
            let target = self.labels[label.0].expect("every probe label is bound");
            let off = target as i64 - at as i64 - 1;
            self.insns[at].off = off16(off);
        }
        self.insns
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bpfrr_trace::isa::{Insn, JmpCond, check, decode};

    #[test]
    fn labels_resolve_forward() {
        let mut b = Block::new();
        let end = b.new_label();
        b.jeq(0, 0, end);
        b.mov_imm(0, 1);
        b.ld_map_fd(1, 5);
        b.bind(end);
        b.clamp(2, 64);
        b.push(CLASS_JMP | JMP_EXIT, 0, 0, 0, 0);
        let insns = b.finish();
        check(&insns).unwrap();
        match decode(&insns, 0).unwrap() {
            Insn::Jump {
                cond: JmpCond::Eq,
                off,
                ..
            } => assert_eq!(off, 3),
            other => panic!("{other:?}"),
        }
        match decode(&insns, 4).unwrap() {
            Insn::Jump {
                cond: JmpCond::Le,
                off,
                ..
            } => assert_eq!(off, 1),
            other => panic!("{other:?}"),
        }
    }
}
