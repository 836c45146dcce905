//! `Insn` back to slot bytes: the exact inverse of `decode`.
//!
//! For every slot sequence `decode` accepts, `encode(&decode(s, pc)?)` gives
//! back the same slots bit for bit (the round-trip tests prove it over every
//! opcode). An `Insn` that `decode` could never have produced — register 12,
//! `MovSx` of 7 bits, a short `Ja` whose offset does not fit 16 bits — is
//! encoded field by field as given; `decode` then rejects the result with the
//! matching `DecodeError`. Whoever builds instructions (the instrumenter)
//! chooses `Ja { long: true }` when an offset needs 32 bits.

use super::insn::*;
use super::opcode::*;

/// Encodes one instruction: one slot, or two for `ld_imm64`.
pub fn encode(insn: &Insn) -> Vec<RawInsn> {
    match *insn {
        Insn::LoadImm64 { kind, dst, imm } => {
            let code = CLASS_LD | MODE_IMM | SIZE_DW;
            vec![
                RawInsn::new(code, dst, imm64_pseudo(kind), 0, imm as u32 as i32),
                RawInsn::new(0, 0, 0, 0, (imm >> 32) as u32 as i32),
            ]
        }
        _ => vec![encode_slot(insn)],
    }
}

/// Encodes a sequence of instructions into one slot vector (ld_imm64 takes two).
pub fn encode_all(insns: &[Insn]) -> Vec<RawInsn> {
    insns.iter().flat_map(encode).collect()
}

fn width_class_alu(width: Width) -> u8 {
    match width {
        Width::W32 => CLASS_ALU,
        Width::W64 => CLASS_ALU64,
    }
}

fn width_class_jmp(width: Width) -> u8 {
    match width {
        Width::W32 => CLASS_JMP32,
        Width::W64 => CLASS_JMP,
    }
}

fn size_bits(size: Size) -> u8 {
    match size {
        Size::B => SIZE_B,
        Size::H => SIZE_H,
        Size::W => SIZE_W,
        Size::DW => SIZE_DW,
    }
}

/// The source bit, src_reg field and imm field of an operand.
fn operand_fields(src: Operand) -> (u8, u8, i32) {
    match src {
        Operand::Reg(r) => (SRC_X, r, 0),
        Operand::Imm(imm) => (SRC_K, 0, imm),
    }
}

/// The pseudo src_reg number of an `ld_imm64` kind.
pub(super) fn imm64_pseudo(kind: Imm64Kind) -> u8 {
    match kind {
        Imm64Kind::Imm => PSEUDO_IMM,
        Imm64Kind::MapFd => PSEUDO_MAP_FD,
        Imm64Kind::MapValue => PSEUDO_MAP_VALUE,
        Imm64Kind::BtfId => PSEUDO_BTF_ID,
        Imm64Kind::Func => PSEUDO_FUNC,
        Imm64Kind::MapIdx => PSEUDO_MAP_IDX,
        Imm64Kind::MapIdxValue => PSEUDO_MAP_IDX_VALUE,
    }
}

fn alu_op_bits(op: AluOp) -> (u8, i16) {
    match op {
        AluOp::Add => (ALU_ADD, 0),
        AluOp::Sub => (ALU_SUB, 0),
        AluOp::Mul => (ALU_MUL, 0),
        AluOp::Div => (ALU_DIV, 0),
        AluOp::SDiv => (ALU_DIV, 1),
        AluOp::Or => (ALU_OR, 0),
        AluOp::And => (ALU_AND, 0),
        AluOp::Lsh => (ALU_LSH, 0),
        AluOp::Rsh => (ALU_RSH, 0),
        AluOp::Mod => (ALU_MOD, 0),
        AluOp::SMod => (ALU_MOD, 1),
        AluOp::Xor => (ALU_XOR, 0),
        AluOp::Mov => (ALU_MOV, 0),
        AluOp::Arsh => (ALU_ARSH, 0),
    }
}

fn jmp_cond_bits(cond: JmpCond) -> u8 {
    match cond {
        JmpCond::Eq => JMP_JEQ,
        JmpCond::Gt => JMP_JGT,
        JmpCond::Ge => JMP_JGE,
        JmpCond::Set => JMP_JSET,
        JmpCond::Ne => JMP_JNE,
        JmpCond::SGt => JMP_JSGT,
        JmpCond::SGe => JMP_JSGE,
        JmpCond::Lt => JMP_JLT,
        JmpCond::Le => JMP_JLE,
        JmpCond::SLt => JMP_JSLT,
        JmpCond::SLe => JMP_JSLE,
    }
}

fn atomic_imm(op: AtomicOp, fetch: bool) -> i32 {
    let fetch_bit = if fetch { ATOMIC_FETCH } else { 0 };
    match op {
        AtomicOp::Add => ATOMIC_ADD | fetch_bit,
        AtomicOp::Or => ATOMIC_OR | fetch_bit,
        AtomicOp::And => ATOMIC_AND | fetch_bit,
        AtomicOp::Xor => ATOMIC_XOR | fetch_bit,
        // xchg and cmpxchg always fetch; their constants include the bit.
        AtomicOp::Xchg => (ATOMIC_XCHG & !ATOMIC_FETCH) | fetch_bit,
        AtomicOp::Cmpxchg => (ATOMIC_CMPXCHG & !ATOMIC_FETCH) | fetch_bit,
        AtomicOp::LoadAcquire => ATOMIC_LOAD_ACQ | fetch_bit,
        AtomicOp::StoreRelease => ATOMIC_STORE_REL | fetch_bit,
    }
}

/// Every instruction but `ld_imm64`.
fn encode_slot(insn: &Insn) -> RawInsn {
    match *insn {
        Insn::Alu {
            width,
            op,
            dst,
            src,
        } => {
            let (op_bits, off) = alu_op_bits(op);
            let (x, src_reg, imm) = operand_fields(src);
            RawInsn::new(width_class_alu(width) | op_bits | x, dst, src_reg, off, imm)
        }
        Insn::Neg { width, dst } => RawInsn::new(width_class_alu(width) | ALU_NEG, dst, 0, 0, 0),
        Insn::MovSx {
            width,
            dst,
            src,
            bits,
        } => RawInsn::new(
            width_class_alu(width) | ALU_MOV | SRC_X,
            dst,
            src,
            bits as i16,
            0,
        ),
        Insn::Endian { op, dst, bits } => {
            let code = match op {
                EndianOp::ToLe => CLASS_ALU | ALU_END | SRC_K,
                EndianOp::ToBe => CLASS_ALU | ALU_END | SRC_X,
                EndianOp::Swap => CLASS_ALU64 | ALU_END | SRC_K,
            };
            RawInsn::new(code, dst, 0, 0, bits as i32)
        }
        Insn::Load {
            size,
            signed,
            dst,
            src,
            off,
        } => {
            let mode = if signed { MODE_MEMSX } else { MODE_MEM };
            RawInsn::new(CLASS_LDX | mode | size_bits(size), dst, src, off, 0)
        }
        Insn::Store {
            size,
            dst,
            off,
            src,
        } => match src {
            Operand::Imm(imm) => {
                RawInsn::new(CLASS_ST | MODE_MEM | size_bits(size), dst, 0, off, imm)
            }
            Operand::Reg(r) => RawInsn::new(CLASS_STX | MODE_MEM | size_bits(size), dst, r, off, 0),
        },
        Insn::Atomic {
            size,
            op,
            fetch,
            dst,
            src,
            off,
        } => RawInsn::new(
            CLASS_STX | MODE_ATOMIC | size_bits(size),
            dst,
            src,
            off,
            atomic_imm(op, fetch),
        ),
        Insn::LoadImm64 { .. } => unreachable!("encode handles ld_imm64 before encode_slot"),
        Insn::LoadPacket { size, src, imm } => match src {
            None => RawInsn::new(CLASS_LD | MODE_ABS | size_bits(size), 0, 0, 0, imm),
            Some(r) => RawInsn::new(CLASS_LD | MODE_IND | size_bits(size), 0, r, 0, imm),
        },
        Insn::Ja { off, long: true } => RawInsn::new(CLASS_JMP32 | JMP_JA, 0, 0, 0, off),
        // A short jump keeps the low 16 bits; see the module comment.
        Insn::Ja { off, long: false } => RawInsn::new(CLASS_JMP | JMP_JA, 0, 0, off as i16, 0),
        Insn::Jump {
            width,
            cond,
            dst,
            src,
            off,
        } => {
            let (x, src_reg, imm) = operand_fields(src);
            RawInsn::new(
                width_class_jmp(width) | jmp_cond_bits(cond) | x,
                dst,
                src_reg,
                off,
                imm,
            )
        }
        Insn::MayGoto { off } => RawInsn::new(CLASS_JMP | JMP_JCOND, 0, MAY_GOTO, off, 0),
        Insn::Call(target) => {
            let call = CLASS_JMP | JMP_CALL;
            match target {
                CallTarget::Helper(id) => RawInsn::new(call, 0, PSEUDO_CALL_HELPER, 0, id),
                CallTarget::Local(off) => RawInsn::new(call, 0, PSEUDO_CALL_LOCAL, 0, off),
                CallTarget::Kfunc { btf_id, module } => {
                    RawInsn::new(call, 0, PSEUDO_CALL_KFUNC, module, btf_id)
                }
                // callx: the register goes in dst_reg, as clang and the kernel put it.
                CallTarget::Reg(r) => RawInsn::new(call | SRC_X, r, 0, 0, 0),
            }
        }
        Insn::Exit => RawInsn::new(CLASS_JMP | JMP_EXIT, 0, 0, 0, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isa::decode::decode;

    #[test]
    fn ld_imm64_takes_two_slots_with_the_high_half_in_the_second() {
        let insn = Insn::LoadImm64 {
            kind: Imm64Kind::MapValue,
            dst: 1,
            imm: 0x1234_5678_9abc_def0,
        };
        let slots = encode(&insn);
        assert_eq!(
            slots,
            vec![
                RawInsn::new(0x18, 1, 2, 0, 0x9abc_def0_u32 as i32),
                RawInsn::new(0, 0, 0, 0, 0x1234_5678),
            ]
        );
        assert_eq!(decode(&slots, 0), Ok(insn));
    }

    #[test]
    fn known_encodings_match_the_kernel_macros() {
        // BPF_MOV64_IMM(BPF_REG_0, 0), BPF_EXIT_INSN(), BPF_ALU32_REG(BPF_SDIV...),
        // BPF_CALL_REL(-3), bswap32, gotol, may_goto, callx r2.
        let cases = [
            (
                Insn::Alu {
                    width: Width::W64,
                    op: AluOp::Mov,
                    dst: 0,
                    src: Operand::Imm(0),
                },
                [0xb7, 0, 0, 0, 0, 0, 0, 0],
            ),
            (Insn::Exit, [0x95, 0, 0, 0, 0, 0, 0, 0]),
            (
                Insn::Alu {
                    width: Width::W32,
                    op: AluOp::SDiv,
                    dst: 1,
                    src: Operand::Reg(2),
                },
                [0x3c, 0x21, 1, 0, 0, 0, 0, 0],
            ),
            (
                Insn::Call(CallTarget::Local(-3)),
                [0x85, 0x10, 0, 0, 0xfd, 0xff, 0xff, 0xff],
            ),
            (
                Insn::Endian {
                    op: EndianOp::Swap,
                    dst: 1,
                    bits: 32,
                },
                [0xd7, 0x01, 0, 0, 32, 0, 0, 0],
            ),
            (
                Insn::Ja {
                    off: 0x10000,
                    long: true,
                },
                [0x06, 0, 0, 0, 0, 0, 1, 0],
            ),
            (Insn::MayGoto { off: 3 }, [0xe5, 0, 3, 0, 0, 0, 0, 0]),
            (
                Insn::Call(CallTarget::Reg(2)),
                [0x8d, 0x02, 0, 0, 0, 0, 0, 0],
            ),
        ];
        for (insn, bytes) in cases {
            let slots = encode(&insn);
            assert_eq!(slots.len(), 1);
            assert_eq!(slots[0].to_bytes(), bytes, "{insn:?}");
        }
    }

    #[test]
    fn encode_all_concatenates_slots() {
        let prog = [
            Insn::LoadImm64 {
                kind: Imm64Kind::Imm,
                dst: 0,
                imm: 7,
            },
            Insn::Exit,
        ];
        let raw = encode_all(&prog);
        assert_eq!(raw.len(), 3);
        assert_eq!(decode(&raw, 2), Ok(Insn::Exit));
    }
}
