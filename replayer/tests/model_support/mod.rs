//! A tiny assembler for the model integration tests: instructions by name,
//! a program from a list of them, helper ids from the catalogue, and a
//! machine run through `ModelEnv`.
#![allow(dead_code)]

use bpfrr_replayer::env::{ModelConfig, ModelEnv};
use bpfrr_replayer::maps::{Map, MapDef, MapType};
use bpfrr_replayer::vm::{Context, Fault, Machine, Program};
use bpfrr_trace::catalog::helper_by_name;
use bpfrr_trace::isa::{
    AluOp, AtomicOp, CallTarget, Imm64Kind, Insn, JmpCond, Operand, RawInsn, Size, Width,
    encode_all,
};

pub fn helper(name: &str) -> i32 {
    helper_by_name(name)
        .unwrap_or_else(|| panic!("no helper {name}"))
        .id as i32
}

pub fn mov(dst: u8, imm: i32) -> Insn {
    Insn::Alu {
        width: Width::W64,
        op: AluOp::Mov,
        dst,
        src: Operand::Imm(imm),
    }
}
pub fn mov_reg(dst: u8, src: u8) -> Insn {
    Insn::Alu {
        width: Width::W64,
        op: AluOp::Mov,
        dst,
        src: Operand::Reg(src),
    }
}
pub fn add(dst: u8, imm: i32) -> Insn {
    Insn::Alu {
        width: Width::W64,
        op: AluOp::Add,
        dst,
        src: Operand::Imm(imm),
    }
}
pub fn add_reg(dst: u8, src: u8) -> Insn {
    Insn::Alu {
        width: Width::W64,
        op: AluOp::Add,
        dst,
        src: Operand::Reg(src),
    }
}
pub fn ld_map(dst: u8, map: u32) -> Insn {
    Insn::LoadImm64 {
        kind: Imm64Kind::MapFd,
        dst,
        imm: map as u64,
    }
}
pub fn ld_map_value(dst: u8, map: u32, off: u32) -> Insn {
    Insn::LoadImm64 {
        kind: Imm64Kind::MapValue,
        dst,
        imm: ((off as u64) << 32) | map as u64,
    }
}
/// `dst = &function` where the function starts `rel` slots after this ld_imm64's first slot + 1.
pub fn ld_func(dst: u8, rel: i32) -> Insn {
    Insn::LoadImm64 {
        kind: Imm64Kind::Func,
        dst,
        imm: rel as u32 as u64,
    }
}
pub fn st(size: Size, dst: u8, off: i16, imm: i32) -> Insn {
    Insn::Store {
        size,
        dst,
        off,
        src: Operand::Imm(imm),
    }
}
pub fn stx(size: Size, dst: u8, off: i16, src: u8) -> Insn {
    Insn::Store {
        size,
        dst,
        off,
        src: Operand::Reg(src),
    }
}
pub fn ldx(size: Size, dst: u8, src: u8, off: i16) -> Insn {
    Insn::Load {
        size,
        signed: false,
        dst,
        src,
        off,
    }
}
pub fn atomic_add(size: Size, dst: u8, off: i16, src: u8) -> Insn {
    Insn::Atomic {
        size,
        op: AtomicOp::Add,
        fetch: false,
        dst,
        src,
        off,
    }
}
pub fn jeq(dst: u8, imm: i32, off: i16) -> Insn {
    Insn::Jump {
        width: Width::W64,
        cond: JmpCond::Eq,
        dst,
        src: Operand::Imm(imm),
        off,
    }
}
pub fn jne(dst: u8, imm: i32, off: i16) -> Insn {
    Insn::Jump {
        width: Width::W64,
        cond: JmpCond::Ne,
        dst,
        src: Operand::Imm(imm),
        off,
    }
}
pub fn call(name: &str) -> Insn {
    Insn::Call(CallTarget::Helper(helper(name)))
}
pub fn exit() -> Insn {
    Insn::Exit
}
/// `r{dst} = r10 + off`: a stack pointer.
pub fn fp(dst: u8, off: i32) -> [Insn; 2] {
    [mov_reg(dst, 10), add(dst, off)]
}

pub fn program(insns: &[Insn]) -> Program {
    let raw: Vec<RawInsn> = encode_all(insns);
    let bytes: Vec<u8> = raw.iter().flat_map(|r| r.to_bytes()).collect();
    Program::from_bytes(&bytes).expect("test program loads")
}

pub fn map(name: &str, t: MapType, key: u32, value: u32, max: u32) -> Map {
    Map::new(MapDef::new(name, t, key, value, max), 1).expect("valid map")
}

pub fn env(maps: Vec<Map>) -> ModelEnv {
    ModelEnv::new(maps, ModelConfig::default())
}

/// Runs program 0 of a machine over `insns` once.
pub fn run_once(env: &mut ModelEnv, insns: &[Insn], ctx: &Context) -> Result<u64, Fault> {
    let mut m = Machine::new(program(insns));
    env.run(&mut m, 0, ctx)
}
