//! A tiny assembler with labels over the project's decoded `Insn`, so the
//! benchmark programs read like BPF assembly and jump offsets are computed
//! rather than counted by hand.

use std::collections::HashMap;

use bpfrr_trace::isa::{
    AluOp, CallTarget, EndianOp, Imm64Kind, Insn, JmpCond, Operand, RawInsn, Size, Width,
    encode_all,
};

/// A register operand.
pub fn reg(r: u8) -> Operand {
    Operand::Reg(r)
}

/// An immediate operand.
pub fn imm(k: i32) -> Operand {
    Operand::Imm(k)
}

/// Builds a program instruction by instruction; jumps name labels.
#[derive(Default)]
pub struct Asm {
    insns: Vec<Insn>,
    /// Slot index of each instruction in `insns` (ld_imm64 takes two slots).
    slots: Vec<usize>,
    next_slot: usize,
    labels: HashMap<&'static str, usize>,
    /// (index in `insns`, label) of jumps whose offset is filled in by `finish`.
    fixups: Vec<(usize, &'static str)>,
}

impl Asm {
    pub fn new() -> Asm {
        Asm::default()
    }

    fn push(&mut self, insn: Insn) -> &mut Asm {
        self.slots.push(self.next_slot);
        self.next_slot += insn.slots();
        self.insns.push(insn);
        self
    }

    /// Names the next instruction.
    pub fn label(&mut self, name: &'static str) -> &mut Asm {
        let old = self.labels.insert(name, self.next_slot);
        assert!(old.is_none(), "label {name} defined twice");
        self
    }

    pub fn alu64(&mut self, op: AluOp, dst: u8, src: Operand) -> &mut Asm {
        self.push(Insn::Alu {
            width: Width::W64,
            op,
            dst,
            src,
        })
    }

    pub fn alu32(&mut self, op: AluOp, dst: u8, src: Operand) -> &mut Asm {
        self.push(Insn::Alu {
            width: Width::W32,
            op,
            dst,
            src,
        })
    }

    /// `dst = be16/32/64(dst)`.
    pub fn be(&mut self, dst: u8, bits: u8) -> &mut Asm {
        self.push(Insn::Endian {
            op: EndianOp::ToBe,
            dst,
            bits,
        })
    }

    /// `dst = *(size *)(src + off)`.
    pub fn load(&mut self, size: Size, dst: u8, src: u8, off: i16) -> &mut Asm {
        self.push(Insn::Load {
            size,
            signed: false,
            dst,
            src,
            off,
        })
    }

    /// `*(size *)(dst + off) = src`.
    pub fn store(&mut self, size: Size, dst: u8, off: i16, src: Operand) -> &mut Asm {
        self.push(Insn::Store {
            size,
            dst,
            off,
            src,
        })
    }

    /// `dst = map[index] ll` with `BPF_PSEUDO_MAP_IDX` (an fd_array index in
    /// the kernel, the map's position for the model environment).
    pub fn ld_map(&mut self, dst: u8, index: u32) -> &mut Asm {
        self.push(Insn::LoadImm64 {
            kind: Imm64Kind::MapIdx,
            dst,
            imm: index as u64,
        })
    }

    pub fn call_helper(&mut self, id: i32) -> &mut Asm {
        self.push(Insn::Call(CallTarget::Helper(id)))
    }

    /// `if dst cond src goto label`.
    pub fn jump(
        &mut self,
        width: Width,
        cond: JmpCond,
        dst: u8,
        src: Operand,
        label: &'static str,
    ) -> &mut Asm {
        self.fixups.push((self.insns.len(), label));
        self.push(Insn::Jump {
            width,
            cond,
            dst,
            src,
            off: 0,
        })
    }

    /// `if dst cond src goto label` on 64 bits.
    pub fn jmp(&mut self, cond: JmpCond, dst: u8, src: Operand, label: &'static str) -> &mut Asm {
        self.jump(Width::W64, cond, dst, src, label)
    }

    pub fn exit(&mut self) -> &mut Asm {
        self.push(Insn::Exit)
    }

    /// Resolves the labels and encodes the program.
    pub fn finish(&mut self) -> Vec<RawInsn> {
        for &(i, label) in &self.fixups {
            let Some(&target) = self.labels.get(label) else {
                panic!("jump to undefined label {label}");
            };
            let rel = target as i64 - (self.slots[i] as i64 + 1);
            let rel16 = i16::try_from(rel).expect("jump offset fits 16 bits");
            match &mut self.insns[i] {
                Insn::Jump { off, .. } => *off = rel16,
                _ => unreachable!("only jumps are fixed up"),
            }
        }
        encode_all(&self.insns)
    }
}
