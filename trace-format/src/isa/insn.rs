//! The raw 8-byte instruction slot and the decoded instruction.
//!
//! `RawInsn` is what sits in an object file or the kernel: one 64-bit slot.
//! `Insn` is its meaning, after `decode`: one variant per kind of operation,
//! so that the disassembler, the interpreter and the instrumenter match on
//! meaning rather than on bit patterns. `ld_imm64` takes two slots and
//! decodes to one `Insn::LoadImm64`; the second slot has no `Insn` of its own.

/// One 8-byte instruction slot, as stored (little-endian): opcode,
/// dst_reg (low nibble) | src_reg (high nibble), 16-bit offset, 32-bit immediate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RawInsn {
    pub code: u8,
    pub dst: u8,
    pub src: u8,
    pub off: i16,
    pub imm: i32,
}

impl RawInsn {
    pub const SIZE: usize = 8;

    pub fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Self {
        RawInsn {
            code,
            dst,
            src,
            off,
            imm,
        }
    }

    /// Reads one slot from 8 little-endian bytes.
    pub fn from_bytes(b: [u8; 8]) -> Self {
        RawInsn {
            code: b[0],
            dst: b[1] & 0x0f,
            src: b[1] >> 4,
            off: i16::from_le_bytes([b[2], b[3]]),
            imm: i32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        }
    }

    pub fn to_bytes(self) -> [u8; 8] {
        let off = self.off.to_le_bytes();
        let imm = self.imm.to_le_bytes();
        [
            self.code,
            (self.dst & 0x0f) | (self.src << 4),
            off[0],
            off[1],
            imm[0],
            imm[1],
            imm[2],
            imm[3],
        ]
    }

    /// Splits a byte slice into slots; trailing bytes that do not fill a slot
    /// are an error (the caller names the file).
    pub fn parse_all(bytes: &[u8]) -> Result<Vec<RawInsn>, TrailingBytes> {
        if !bytes.len().is_multiple_of(Self::SIZE) {
            return Err(TrailingBytes { len: bytes.len() });
        }
        Ok(bytes
            .chunks_exact(Self::SIZE)
            .map(|c| RawInsn::from_bytes(c.try_into().expect("chunk of 8")))
            .collect())
    }

    pub fn class(self) -> u8 {
        self.code & super::opcode::CLASS_MASK
    }
}

/// A byte string whose length is not a multiple of 8.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{len} bytes is not a whole number of 8-byte BPF instructions")]
pub struct TrailingBytes {
    pub len: usize,
}

/// Operand width of ALU and conditional-jump instructions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Width {
    /// `BPF_ALU` / `BPF_JMP32`: operates on the low 32 bits (ALU results are zero-extended).
    W32,
    /// `BPF_ALU64` / `BPF_JMP`.
    W64,
}

/// The second operand of ALU, jump and store instructions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operand {
    Reg(u8),
    Imm(i32),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AluOp {
    Add,
    Sub,
    Mul,
    Div,
    /// Signed division (`off == 1`, ISA v4).
    SDiv,
    Or,
    And,
    Lsh,
    Rsh,
    Mod,
    /// Signed modulo (`off == 1`, ISA v4).
    SMod,
    Xor,
    Mov,
    Arsh,
}

/// Byte-order operations (`BPF_END`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EndianOp {
    /// `le16/32/64`: to little-endian (on a little-endian host: truncate).
    ToLe,
    /// `be16/32/64`: to big-endian.
    ToBe,
    /// `bswap16/32/64` (ISA v4, `BPF_ALU64 | BPF_END`): unconditional swap.
    Swap,
}

/// Access size of loads, stores and atomics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Size {
    B,
    H,
    W,
    DW,
}

impl Size {
    pub fn bytes(self) -> usize {
        match self {
            Size::B => 1,
            Size::H => 2,
            Size::W => 4,
            Size::DW => 8,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AtomicOp {
    Add,
    Or,
    And,
    Xor,
    Xchg,
    Cmpxchg,
    /// `load_acquire` (Linux 6.15+): `dst = *(src + off)`.
    LoadAcquire,
    /// `store_release` (Linux 6.15+): `*(dst + off) = src`.
    StoreRelease,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JmpCond {
    Eq,
    Gt,
    Ge,
    Set,
    Ne,
    SGt,
    SGe,
    Lt,
    Le,
    SLt,
    SLe,
}

/// What the 64-bit immediate of `ld_imm64` means (its pseudo src_reg).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Imm64Kind {
    /// `BPF_PSEUDO_NONE`: a plain 64-bit constant.
    Imm,
    /// `BPF_PSEUDO_MAP_FD`: imm is a map fd; loads a map pointer.
    MapFd,
    /// `BPF_PSEUDO_MAP_VALUE`: low imm is a map fd, high imm an offset into its value.
    MapValue,
    /// `BPF_PSEUDO_BTF_ID`: a kernel variable by BTF id.
    BtfId,
    /// `BPF_PSEUDO_FUNC`: low imm is the relative instruction offset of a subprogram.
    Func,
    /// `BPF_PSEUDO_MAP_IDX`: low imm indexes the fd_array.
    MapIdx,
    /// `BPF_PSEUDO_MAP_IDX_VALUE`: like MapValue, with an fd_array index.
    MapIdxValue,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CallTarget {
    /// A helper by its `enum bpf_func_id` number.
    Helper(i32),
    /// A bpf-to-bpf call; the target is `pc + 1 + offset`.
    Local(i32),
    /// A kernel function by BTF id; `module` is the fd_array index (0 = vmlinux).
    Kfunc { btf_id: i32, module: i16 },
    /// `callx`: the target address is in a register.
    Reg(u8),
}

/// One decoded instruction. Field names follow the kernel: `dst`/`src` are
/// register numbers, `off` the 16-bit offset, jump offsets are in slots and
/// relative to the next instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Insn {
    /// `dst op= src`. For 32-bit width the result is zero-extended.
    Alu {
        width: Width,
        op: AluOp,
        dst: u8,
        src: Operand,
    },
    /// `dst = -dst`.
    Neg {
        width: Width,
        dst: u8,
    },
    /// `dst = (sN)src`: sign-extending move of the low `bits` (8, 16, 32) of src.
    MovSx {
        width: Width,
        dst: u8,
        src: u8,
        bits: u8,
    },
    /// Byte-order conversion of the low `bits` (16, 32, 64) of dst.
    Endian {
        op: EndianOp,
        dst: u8,
        bits: u8,
    },
    /// `dst = *(size *)(src + off)`, sign-extended when `signed` (BPF_MEMSX).
    Load {
        size: Size,
        signed: bool,
        dst: u8,
        src: u8,
        off: i16,
    },
    /// `*(size *)(dst + off) = src` (`BPF_STX`) or `= imm` (`BPF_ST`).
    Store {
        size: Size,
        dst: u8,
        off: i16,
        src: Operand,
    },
    /// Atomic read-modify-write at `dst + off` with `src`. When `fetch`,
    /// the old value goes to `src` (to r0 for cmpxchg, which is always fetching).
    Atomic {
        size: Size,
        op: AtomicOp,
        fetch: bool,
        dst: u8,
        src: u8,
        off: i16,
    },
    /// `ld_imm64`: two slots. `imm` is the full 64-bit value
    /// (low 32 bits from the first slot, high 32 from the second).
    LoadImm64 {
        kind: Imm64Kind,
        dst: u8,
        imm: u64,
    },
    /// Legacy packet loads `LD_ABS` (`src` is None) and `LD_IND`:
    /// `r0 = ntoh(*(size *)(skb->data + [src +] imm))`.
    LoadPacket {
        size: Size,
        src: Option<u8>,
        imm: i32,
    },
    /// Unconditional jump: `goto` (16-bit offset, `BPF_JMP`) or `gotol`
    /// (32-bit offset in imm, `BPF_JMP32`).
    Ja {
        off: i32,
        long: bool,
    },
    /// `if dst cond src goto +off`.
    Jump {
        width: Width,
        cond: JmpCond,
        dst: u8,
        src: Operand,
        off: i16,
    },
    /// `may_goto +off`: falls through while the loop budget lasts, then jumps.
    MayGoto {
        off: i16,
    },
    Call(CallTarget),
    Exit,
}

impl Insn {
    /// Number of 8-byte slots this instruction occupies (2 for ld_imm64).
    pub fn slots(&self) -> usize {
        match self {
            Insn::LoadImm64 { .. } => 2,
            _ => 1,
        }
    }
}
