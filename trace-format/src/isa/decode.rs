//! Slot bytes to `Insn`: the meaning of every opcode, with the kernel's
//! rules for which fields must be zero.

use super::insn::*;
use super::opcode::*;

/// Why one instruction cannot be decoded. `pc` is the slot index.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("instruction {pc}: unknown opcode {code:#04x}")]
    UnknownOpcode { pc: usize, code: u8 },
    #[error(
        "instruction {pc}: reserved field {field} is {value:#x} but must be zero (opcode {code:#04x})"
    )]
    ReservedField {
        pc: usize,
        code: u8,
        field: &'static str,
        value: i64,
    },
    #[error("instruction {pc}: invalid register r{reg} (only r0-r10 exist)")]
    BadRegister { pc: usize, reg: u8 },
    #[error("instruction {pc}: ld_imm64 needs a second slot but the program ends")]
    IncompleteLdImm64 { pc: usize },
    #[error(
        "instruction {pc}: the second slot of ld_imm64 must have opcode 0 and zero registers and offset"
    )]
    BadLdImm64Tail { pc: usize },
    #[error("instruction {pc}: opcode {code:#04x} has invalid {field} {value}")]
    BadField {
        pc: usize,
        code: u8,
        field: &'static str,
        value: i64,
    },
}

fn reserved(pc: usize, code: u8, field: &'static str, value: i64) -> Result<(), DecodeError> {
    if value != 0 {
        Err(DecodeError::ReservedField {
            pc,
            code,
            field,
            value,
        })
    } else {
        Ok(())
    }
}

fn reg(pc: usize, r: u8) -> Result<u8, DecodeError> {
    if r > REG_FP {
        Err(DecodeError::BadRegister { pc, reg: r })
    } else {
        Ok(r)
    }
}

fn size_of(code: u8) -> Size {
    match code & SIZE_MASK {
        SIZE_B => Size::B,
        SIZE_H => Size::H,
        SIZE_W => Size::W,
        _ => Size::DW,
    }
}

/// Decodes the instruction at slot `pc`. For `ld_imm64` the next slot is read too.
pub fn decode(slots: &[RawInsn], pc: usize) -> Result<Insn, DecodeError> {
    let r = slots[pc];
    let code = r.code;
    let unknown = || DecodeError::UnknownOpcode { pc, code };
    match r.class() {
        CLASS_ALU | CLASS_ALU64 => decode_alu(r, pc),
        CLASS_JMP | CLASS_JMP32 => decode_jmp(r, pc),
        CLASS_LDX => {
            let signed = match code & MODE_MASK {
                MODE_MEM => false,
                MODE_MEMSX if code & SIZE_MASK != SIZE_DW => true,
                _ => return Err(unknown()),
            };
            reserved(pc, code, "imm", r.imm as i64)?;
            Ok(Insn::Load {
                size: size_of(code),
                signed,
                dst: reg(pc, r.dst)?,
                src: reg(pc, r.src)?,
                off: r.off,
            })
        }
        CLASS_ST => {
            if code & MODE_MASK != MODE_MEM {
                return Err(unknown());
            }
            reserved(pc, code, "src_reg", r.src as i64)?;
            Ok(Insn::Store {
                size: size_of(code),
                dst: reg(pc, r.dst)?,
                off: r.off,
                src: Operand::Imm(r.imm),
            })
        }
        CLASS_STX => match code & MODE_MASK {
            MODE_MEM => {
                reserved(pc, code, "imm", r.imm as i64)?;
                Ok(Insn::Store {
                    size: size_of(code),
                    dst: reg(pc, r.dst)?,
                    off: r.off,
                    src: Operand::Reg(reg(pc, r.src)?),
                })
            }
            MODE_ATOMIC => decode_atomic(r, pc),
            _ => Err(unknown()),
        },
        CLASS_LD => match code & MODE_MASK {
            MODE_IMM if code & SIZE_MASK == SIZE_DW => decode_ld_imm64(slots, pc),
            MODE_ABS | MODE_IND if code & SIZE_MASK != SIZE_DW => {
                reserved(pc, code, "dst_reg", r.dst as i64)?;
                reserved(pc, code, "off", r.off as i64)?;
                let src = if code & MODE_MASK == MODE_IND {
                    Some(reg(pc, r.src)?)
                } else {
                    reserved(pc, code, "src_reg", r.src as i64)?;
                    None
                };
                Ok(Insn::LoadPacket {
                    size: size_of(code),
                    src,
                    imm: r.imm,
                })
            }
            _ => Err(unknown()),
        },
        _ => unreachable!("class is three bits"),
    }
}

fn decode_alu(r: RawInsn, pc: usize) -> Result<Insn, DecodeError> {
    let code = r.code;
    let width = if r.class() == CLASS_ALU64 {
        Width::W64
    } else {
        Width::W32
    };
    let dst = reg(pc, r.dst)?;
    let is_x = code & SRC_X != 0;
    // For byte swaps the source bit picks le/be and imm is the width, so the
    // operand rules below do not apply (`be16` is 0xdc with imm 16).
    if code & OP_MASK == ALU_END {
        return decode_endian(r, pc, width, is_x, dst);
    }
    let src = if is_x {
        reserved(pc, code, "imm", r.imm as i64)?;
        Operand::Reg(reg(pc, r.src)?)
    } else {
        reserved(pc, code, "src_reg", r.src as i64)?;
        Operand::Imm(r.imm)
    };
    let op = match code & OP_MASK {
        ALU_ADD => AluOp::Add,
        ALU_SUB => AluOp::Sub,
        ALU_MUL => AluOp::Mul,
        ALU_OR => AluOp::Or,
        ALU_AND => AluOp::And,
        ALU_LSH => AluOp::Lsh,
        ALU_RSH => AluOp::Rsh,
        ALU_XOR => AluOp::Xor,
        ALU_ARSH => AluOp::Arsh,
        ALU_DIV | ALU_MOD => {
            let signed = match r.off {
                0 => false,
                1 => true,
                v => return Err(reserved(pc, code, "off", v as i64).unwrap_err()),
            };
            let op = match (code & OP_MASK == ALU_DIV, signed) {
                (true, false) => AluOp::Div,
                (true, true) => AluOp::SDiv,
                (false, false) => AluOp::Mod,
                (false, true) => AluOp::SMod,
            };
            return Ok(Insn::Alu {
                width,
                op,
                dst,
                src,
            });
        }
        ALU_MOV => {
            match (r.off, src) {
                (0, _) => {}
                (8 | 16, Operand::Reg(s)) => {
                    return Ok(Insn::MovSx {
                        width,
                        dst,
                        src: s,
                        bits: r.off as u8,
                    });
                }
                (32, Operand::Reg(s)) if width == Width::W64 => {
                    return Ok(Insn::MovSx {
                        width,
                        dst,
                        src: s,
                        bits: 32,
                    });
                }
                (v, _) => return Err(reserved(pc, code, "off", v as i64).unwrap_err()),
            }
            AluOp::Mov
        }
        ALU_NEG => {
            if is_x {
                return Err(DecodeError::UnknownOpcode { pc, code });
            }
            reserved(pc, code, "imm", r.imm as i64)?;
            reserved(pc, code, "off", r.off as i64)?;
            return Ok(Insn::Neg { width, dst });
        }
        _ => return Err(DecodeError::UnknownOpcode { pc, code }),
    };
    reserved(pc, code, "off", r.off as i64)?;
    Ok(Insn::Alu {
        width,
        op,
        dst,
        src,
    })
}

fn decode_endian(
    r: RawInsn,
    pc: usize,
    width: Width,
    is_x: bool,
    dst: u8,
) -> Result<Insn, DecodeError> {
    let code = r.code;
    reserved(pc, code, "src_reg", r.src as i64)?;
    reserved(pc, code, "off", r.off as i64)?;
    let op = match (width, is_x) {
        (Width::W32, false) => EndianOp::ToLe,
        (Width::W32, true) => EndianOp::ToBe,
        (Width::W64, false) => EndianOp::Swap,
        (Width::W64, true) => return Err(DecodeError::UnknownOpcode { pc, code }),
    };
    if !matches!(r.imm, 16 | 32 | 64) {
        return Err(DecodeError::BadField {
            pc,
            code,
            field: "imm (byte-swap width)",
            value: r.imm as i64,
        });
    }
    Ok(Insn::Endian {
        op,
        dst,
        bits: r.imm as u8,
    })
}

fn decode_jmp(r: RawInsn, pc: usize) -> Result<Insn, DecodeError> {
    let code = r.code;
    let is_jmp32 = r.class() == CLASS_JMP32;
    let is_x = code & SRC_X != 0;
    let unknown = DecodeError::UnknownOpcode { pc, code };
    let cond = match code & OP_MASK {
        JMP_JA => {
            if is_x {
                return Err(unknown);
            }
            reserved(pc, code, "dst_reg", r.dst as i64)?;
            reserved(pc, code, "src_reg", r.src as i64)?;
            return if is_jmp32 {
                reserved(pc, code, "off", r.off as i64)?;
                Ok(Insn::Ja {
                    off: r.imm,
                    long: true,
                })
            } else {
                reserved(pc, code, "imm", r.imm as i64)?;
                Ok(Insn::Ja {
                    off: r.off as i32,
                    long: false,
                })
            };
        }
        JMP_CALL => {
            if is_jmp32 {
                return Err(unknown);
            }
            reserved(pc, code, "off", if is_x { r.off as i64 } else { 0 })?;
            if is_x {
                // callx: the kernel (and clang) put the register in dst_reg.
                reserved(pc, code, "src_reg", r.src as i64)?;
                reserved(pc, code, "imm", r.imm as i64)?;
                return Ok(Insn::Call(CallTarget::Reg(reg(pc, r.dst)?)));
            }
            reserved(pc, code, "dst_reg", r.dst as i64)?;
            return match r.src {
                PSEUDO_CALL_HELPER => {
                    reserved(pc, code, "off", r.off as i64)?;
                    Ok(Insn::Call(CallTarget::Helper(r.imm)))
                }
                PSEUDO_CALL_LOCAL => {
                    reserved(pc, code, "off", r.off as i64)?;
                    Ok(Insn::Call(CallTarget::Local(r.imm)))
                }
                PSEUDO_CALL_KFUNC => Ok(Insn::Call(CallTarget::Kfunc {
                    btf_id: r.imm,
                    module: r.off,
                })),
                s => Err(DecodeError::BadField {
                    pc,
                    code,
                    field: "src_reg of call",
                    value: s as i64,
                }),
            };
        }
        JMP_EXIT => {
            if is_jmp32 || is_x {
                return Err(unknown);
            }
            reserved(pc, code, "dst_reg", r.dst as i64)?;
            reserved(pc, code, "src_reg", r.src as i64)?;
            reserved(pc, code, "off", r.off as i64)?;
            reserved(pc, code, "imm", r.imm as i64)?;
            return Ok(Insn::Exit);
        }
        JMP_JCOND => {
            if is_jmp32 || is_x || r.src != MAY_GOTO {
                return Err(unknown);
            }
            reserved(pc, code, "dst_reg", r.dst as i64)?;
            reserved(pc, code, "imm", r.imm as i64)?;
            return Ok(Insn::MayGoto { off: r.off });
        }
        JMP_JEQ => JmpCond::Eq,
        JMP_JGT => JmpCond::Gt,
        JMP_JGE => JmpCond::Ge,
        JMP_JSET => JmpCond::Set,
        JMP_JNE => JmpCond::Ne,
        JMP_JSGT => JmpCond::SGt,
        JMP_JSGE => JmpCond::SGe,
        JMP_JLT => JmpCond::Lt,
        JMP_JLE => JmpCond::Le,
        JMP_JSLT => JmpCond::SLt,
        JMP_JSLE => JmpCond::SLe,
        _ => return Err(unknown),
    };
    let src = if is_x {
        reserved(pc, code, "imm", r.imm as i64)?;
        Operand::Reg(reg(pc, r.src)?)
    } else {
        reserved(pc, code, "src_reg", r.src as i64)?;
        Operand::Imm(r.imm)
    };
    Ok(Insn::Jump {
        width: if is_jmp32 { Width::W32 } else { Width::W64 },
        cond,
        dst: reg(pc, r.dst)?,
        src,
        off: r.off,
    })
}

fn decode_atomic(r: RawInsn, pc: usize) -> Result<Insn, DecodeError> {
    let code = r.code;
    let size = size_of(code);
    let (op, fetch) = match r.imm {
        ATOMIC_LOAD_ACQ => (AtomicOp::LoadAcquire, false),
        ATOMIC_STORE_REL => (AtomicOp::StoreRelease, false),
        imm => {
            if !matches!(size, Size::W | Size::DW) {
                return Err(DecodeError::UnknownOpcode { pc, code });
            }
            let fetch = imm & ATOMIC_FETCH != 0;
            let op = match imm & !ATOMIC_FETCH {
                ATOMIC_ADD => AtomicOp::Add,
                ATOMIC_OR => AtomicOp::Or,
                ATOMIC_AND => AtomicOp::And,
                ATOMIC_XOR => AtomicOp::Xor,
                0xe0 if fetch => AtomicOp::Xchg,
                0xf0 if fetch => AtomicOp::Cmpxchg,
                _ => {
                    return Err(DecodeError::BadField {
                        pc,
                        code,
                        field: "atomic operation (imm)",
                        value: imm as i64,
                    });
                }
            };
            (op, fetch)
        }
    };
    Ok(Insn::Atomic {
        size,
        op,
        fetch,
        dst: reg(pc, r.dst)?,
        src: reg(pc, r.src)?,
        off: r.off,
    })
}

fn decode_ld_imm64(slots: &[RawInsn], pc: usize) -> Result<Insn, DecodeError> {
    let r = slots[pc];
    let code = r.code;
    reserved(pc, code, "off", r.off as i64)?;
    let Some(&hi) = slots.get(pc + 1) else {
        return Err(DecodeError::IncompleteLdImm64 { pc });
    };
    if hi.code != 0 || hi.dst != 0 || hi.src != 0 || hi.off != 0 {
        return Err(DecodeError::BadLdImm64Tail { pc });
    }
    let kind = match r.src {
        PSEUDO_IMM => Imm64Kind::Imm,
        PSEUDO_MAP_FD => Imm64Kind::MapFd,
        PSEUDO_MAP_VALUE => Imm64Kind::MapValue,
        PSEUDO_BTF_ID => Imm64Kind::BtfId,
        PSEUDO_FUNC => Imm64Kind::Func,
        PSEUDO_MAP_IDX => Imm64Kind::MapIdx,
        PSEUDO_MAP_IDX_VALUE => Imm64Kind::MapIdxValue,
        s => {
            return Err(DecodeError::BadField {
                pc,
                code,
                field: "src_reg of ld_imm64",
                value: s as i64,
            });
        }
    };
    // A map pointer has no offset; the kernel rejects a non-zero high half
    // ("unrecognized bpf_ld_imm64 insn").
    if matches!(kind, Imm64Kind::MapFd | Imm64Kind::MapIdx) {
        reserved(pc, code, "imm of the second ld_imm64 slot", hi.imm as i64)?;
    }
    Ok(Insn::LoadImm64 {
        kind,
        dst: reg(pc, r.dst)?,
        imm: (r.imm as u32 as u64) | ((hi.imm as u32 as u64) << 32),
    })
}
