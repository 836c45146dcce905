//! The numbers of the BPF instruction set (RFC 9669 and the Linux extensions),
//! named once. The decoder, encoder, disassembler, interpreter and
//! instrumenter all use these names; nothing else spells an opcode as a number.

// Instruction classes: the low three bits of the opcode.
pub const CLASS_LD: u8 = 0x00;
pub const CLASS_LDX: u8 = 0x01;
pub const CLASS_ST: u8 = 0x02;
pub const CLASS_STX: u8 = 0x03;
pub const CLASS_ALU: u8 = 0x04;
pub const CLASS_JMP: u8 = 0x05;
pub const CLASS_JMP32: u8 = 0x06;
pub const CLASS_ALU64: u8 = 0x07;

/// Mask for the class bits of an opcode.
pub const CLASS_MASK: u8 = 0x07;

// Source operand bit for ALU and JMP classes.
pub const SRC_K: u8 = 0x00;
pub const SRC_X: u8 = 0x08;

// ALU operation codes: the high four bits.
pub const ALU_ADD: u8 = 0x00;
pub const ALU_SUB: u8 = 0x10;
pub const ALU_MUL: u8 = 0x20;
pub const ALU_DIV: u8 = 0x30;
pub const ALU_OR: u8 = 0x40;
pub const ALU_AND: u8 = 0x50;
pub const ALU_LSH: u8 = 0x60;
pub const ALU_RSH: u8 = 0x70;
pub const ALU_NEG: u8 = 0x80;
pub const ALU_MOD: u8 = 0x90;
pub const ALU_XOR: u8 = 0xa0;
pub const ALU_MOV: u8 = 0xb0;
pub const ALU_ARSH: u8 = 0xc0;
pub const ALU_END: u8 = 0xd0;

// Jump operation codes: the high four bits.
pub const JMP_JA: u8 = 0x00;
pub const JMP_JEQ: u8 = 0x10;
pub const JMP_JGT: u8 = 0x20;
pub const JMP_JGE: u8 = 0x30;
pub const JMP_JSET: u8 = 0x40;
pub const JMP_JNE: u8 = 0x50;
pub const JMP_JSGT: u8 = 0x60;
pub const JMP_JSGE: u8 = 0x70;
pub const JMP_CALL: u8 = 0x80;
pub const JMP_EXIT: u8 = 0x90;
pub const JMP_JLT: u8 = 0xa0;
pub const JMP_JLE: u8 = 0xb0;
pub const JMP_JSLT: u8 = 0xc0;
pub const JMP_JSLE: u8 = 0xd0;
/// Linux's `BPF_JCOND`: with src_reg `BPF_MAY_GOTO` it is `may_goto`.
pub const JMP_JCOND: u8 = 0xe0;

/// Mask for the operation bits (ALU and JMP classes).
pub const OP_MASK: u8 = 0xf0;

// Load/store size: bits 3-4.
pub const SIZE_W: u8 = 0x00;
pub const SIZE_H: u8 = 0x08;
pub const SIZE_B: u8 = 0x10;
pub const SIZE_DW: u8 = 0x18;
pub const SIZE_MASK: u8 = 0x18;

// Load/store mode: bits 5-7.
pub const MODE_IMM: u8 = 0x00;
pub const MODE_ABS: u8 = 0x20;
pub const MODE_IND: u8 = 0x40;
pub const MODE_MEM: u8 = 0x60;
pub const MODE_MEMSX: u8 = 0x80;
pub const MODE_ATOMIC: u8 = 0xc0;
pub const MODE_MASK: u8 = 0xe0;

// Atomic operations: the imm field of a `MODE_ATOMIC` store.
pub const ATOMIC_ADD: i32 = 0x00;
pub const ATOMIC_OR: i32 = 0x40;
pub const ATOMIC_AND: i32 = 0x50;
pub const ATOMIC_XOR: i32 = 0xa0;
pub const ATOMIC_FETCH: i32 = 0x01;
pub const ATOMIC_XCHG: i32 = 0xe0 | ATOMIC_FETCH;
pub const ATOMIC_CMPXCHG: i32 = 0xf0 | ATOMIC_FETCH;
/// Linux 6.15+: load-acquire (`BPF_LOAD_ACQ`).
pub const ATOMIC_LOAD_ACQ: i32 = 0x100;
/// Linux 6.15+: store-release (`BPF_STORE_REL`).
pub const ATOMIC_STORE_REL: i32 = 0x110;

// Pseudo source registers of `ld_imm64` (`BPF_LD | BPF_IMM | BPF_DW`).
pub const PSEUDO_IMM: u8 = 0;
pub const PSEUDO_MAP_FD: u8 = 1;
pub const PSEUDO_MAP_VALUE: u8 = 2;
pub const PSEUDO_BTF_ID: u8 = 3;
pub const PSEUDO_FUNC: u8 = 4;
pub const PSEUDO_MAP_IDX: u8 = 5;
pub const PSEUDO_MAP_IDX_VALUE: u8 = 6;

// Pseudo source registers of `call`.
pub const PSEUDO_CALL_HELPER: u8 = 0;
pub const PSEUDO_CALL_LOCAL: u8 = 1;
pub const PSEUDO_CALL_KFUNC: u8 = 2;

/// src_reg of a `BPF_JCOND` jump that means `may_goto`.
pub const MAY_GOTO: u8 = 0;

/// The frame pointer register, read-only.
pub const REG_FP: u8 = 10;
/// Number of registers r0..r10.
pub const NUM_REGS: usize = 11;
/// The kernel's stack size per program (all frames together).
pub const MAX_STACK: usize = 512;
/// The kernel's maximum bpf-to-bpf call depth.
pub const MAX_CALL_FRAMES: usize = 8;
/// The kernel's maximum number of tail calls in one run.
pub const MAX_TAIL_CALLS: u32 = 33;
