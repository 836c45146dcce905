//! The BPF instruction set: opcode names, decoding, encoding, whole-program
//! checks and the llvm-objdump-style disassembler.

pub mod check;
pub mod decode;
pub mod disasm;
pub mod encode;
pub mod insn;
pub mod opcode;

pub use check::{CheckError, CheckedProgram, branch_target, check};
pub use decode::{DecodeError, decode};
pub use disasm::{DisasmOptions, format_insn};
pub use encode::{encode, encode_all};
pub use insn::*;
