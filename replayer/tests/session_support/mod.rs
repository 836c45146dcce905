//! Shared set-up for the session tests: a tiny assembler, loop programs,
//! and the xdp_fw sample linked from its committed object with its BTF,
//! functions, maps and source lines, run on the model environment.
#![allow(dead_code)]

use std::sync::Arc;

use bpfrr_replayer::env::{ModelConfig, ModelEnv};
use bpfrr_replayer::maps::{Map, MapDef, MapType};
use bpfrr_replayer::session::{DebugInfo, FunctionSym, MapInfo, Session};
use bpfrr_replayer::vm::{Context, Limits, Machine, MachineState, Program, SourceLine, XdpMd};
use bpfrr_trace::btf::{Btf, BtfKind};
use bpfrr_trace::catalog::helper_by_name;
use bpfrr_trace::isa::{
    AluOp, CallTarget, Imm64Kind, Insn, JmpCond, Operand, Size, Width, check, encode_all,
};
use bpfrr_trace::object::ObjectFile;

pub fn helper(name: &str) -> i32 {
    helper_by_name(name).expect("helper").id as i32
}
pub fn mov(dst: u8, imm: i32) -> Insn {
    alu(AluOp::Mov, dst, Operand::Imm(imm))
}
pub fn mov_reg(dst: u8, src: u8) -> Insn {
    alu(AluOp::Mov, dst, Operand::Reg(src))
}
pub fn alu(op: AluOp, dst: u8, src: Operand) -> Insn {
    Insn::Alu {
        width: Width::W64,
        op,
        dst,
        src,
    }
}
pub fn add(dst: u8, imm: i32) -> Insn {
    alu(AluOp::Add, dst, Operand::Imm(imm))
}
pub fn stx(size: Size, dst: u8, off: i16, src: u8) -> Insn {
    Insn::Store {
        size,
        dst,
        off,
        src: Operand::Reg(src),
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
pub fn ldx(size: Size, dst: u8, src: u8, off: i16) -> Insn {
    Insn::Load {
        size,
        signed: false,
        dst,
        src,
        off,
    }
}
pub fn jmp(cond: JmpCond, dst: u8, imm: i32, off: i16) -> Insn {
    Insn::Jump {
        width: Width::W64,
        cond,
        dst,
        src: Operand::Imm(imm),
        off,
    }
}
pub fn ja(off: i32) -> Insn {
    Insn::Ja { off, long: false }
}
pub fn call(name: &str) -> Insn {
    Insn::Call(CallTarget::Helper(helper(name)))
}
pub fn call_local(rel: i32) -> Insn {
    Insn::Call(CallTarget::Local(rel))
}
pub fn ld_map(dst: u8, map: u32) -> Insn {
    Insn::LoadImm64 {
        kind: Imm64Kind::MapFd,
        dst,
        imm: map as u64,
    }
}
pub fn exit() -> Insn {
    Insn::Exit
}

/// A program from instructions, with a made-up source line per instruction
/// (`prog.c:<index + 1>`) so line breakpoints can be tested.
pub fn program(insns: &[Insn]) -> Program {
    let raw = encode_all(insns);
    let checked = check(&raw).expect("valid program");
    let mut p = Program::new(&checked, Limits::default()).expect("loadable");
    let lines: Vec<(usize, SourceLine)> = (0..p.len())
        .map(|pc| {
            (
                pc,
                SourceLine {
                    file: "prog.c".into(),
                    line: pc as u32 + 1,
                    column: 0,
                    text: format!("line {}", pc + 1),
                },
            )
        })
        .collect();
    p.set_lines(lines);
    p
}

/// An array map `counts` (4-byte key, 8-byte value, 4 entries).
pub fn array_map() -> Map {
    Map::new(MapDef::new("counts", MapType::Array, 4, 8, 4), 1).expect("map")
}

/// A session over `insns` with the model environment and the `counts` map,
/// on an XDP context over `packet`.
pub fn model_session(insns: &[Insn], packet: &[u8]) -> Session<ModelEnv> {
    let mut machine = Machine::new(program(insns));
    let mut env = ModelEnv::new(vec![array_map()], ModelConfig::default());
    env.begin_run();
    machine
        .start(0, &Context::xdp(packet, &[], XdpMd::default()))
        .expect("start");
    let info = DebugInfo {
        maps: vec![MapInfo {
            name: "counts".into(),
            key_type: None,
            value_type: None,
        }],
        functions: vec![vec![FunctionSym {
            name: "main".into(),
            start: 0,
        }]],
        ..DebugInfo::default()
    };
    Session::new(machine, env, info).expect("session")
}

/// A loop of `n` iterations that spills its counter, reads it back, calls
/// `bpf_map_lookup_elem` every iteration and adds to the map value:
/// ```text
///  0: r6 = 0
///  1: *(u64 *)(r10 - 8) = r6          loop:
///  2: r7 = *(u64 *)(r10 - 8)
///  3: *(u32 *)(r10 - 12) = 0
///  4: r1 = map counts (ld_imm64, 2 slots)
///  6: r2 = r10
///  7: r2 += -12
///  8: call bpf_map_lookup_elem
///  9: if r0 == 0 goto +2
/// 10: r1 = *(u64 *)(r0 + 0)
/// 11: r1 += r7 ; *(u64 *)(r0 + 0) = r1  (12)
/// 13: r6 += 1
/// 14: if r6 < n goto loop (1)
/// 15: r0 = r6
/// 16: exit
/// ```
pub fn counting_loop(n: i32) -> Vec<Insn> {
    vec![
        mov(6, 0),
        stx(Size::DW, 10, -8, 6),
        ldx(Size::DW, 7, 10, -8),
        st(Size::W, 10, -12, 0),
        ld_map(1, 0),
        mov_reg(2, 10),
        add(2, -12),
        call("map_lookup_elem"),
        jmp(JmpCond::Eq, 0, 0, 3),
        ldx(Size::DW, 1, 0, 0),
        alu(AluOp::Add, 1, Operand::Reg(7)),
        stx(Size::DW, 0, 0, 1),
        add(6, 1),
        jmp(JmpCond::Lt, 6, n, -14),
        mov_reg(0, 6),
        exit(),
    ]
}

/// Everything a step can change, for exact comparisons.
pub fn snapshot<E: bpfrr_replayer::session::SessionEnv>(s: &Session<E>) -> MachineState {
    s.machine().state().clone()
}

pub fn samples_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("samples")
}

pub fn hex_file(name: &str) -> Vec<u8> {
    let text = std::fs::read_to_string(samples_dir().join("inputs").join(name)).expect("input");
    let t: String = text.split_whitespace().collect();
    (0..t.len() / 2)
        .map(|i| u8::from_str_radix(&t[2 * i..2 * i + 2], 16).expect("hex"))
        .collect()
}

/// The xdp_fw sample on `packet` with the model environment; `blocked`
/// IPv4 sources (network order bytes) are put into `blocked_src`.
pub fn xdp_fw_session(packet: &[u8], blocked: &[[u8; 4]]) -> Session<ModelEnv> {
    let bytes = std::fs::read(samples_dir().join("xdp_fw.bpf.o")).expect("object");
    let obj = ObjectFile::parse(&bytes).expect("parse");
    let defs = obj.maps();
    let mut maps = Vec::new();
    for d in &defs {
        let t = MapType::from_number(d.map_type).expect("map type");
        let mut def = MapDef::new(&d.name, t, d.key_size, d.value_size, d.max_entries);
        def.flags = d.flags;
        let mut m = Map::new(def, 1).expect("map");
        if let Some(data) = &d.initial_data {
            m.seed(&0u32.to_le_bytes(), data).expect("seed");
        }
        if d.name == "blocked_src" {
            for b in blocked {
                m.seed(b, &0u64.to_le_bytes()).expect("seed blocked");
            }
        }
        maps.push(m);
    }
    let fds: Vec<i32> = (0..maps.len() as i32).collect();
    let linked = obj.link("xdp_firewall", &fds).expect("link");
    let checked = check(&linked.insns).expect("check");
    let mut p = Program::new(&checked, Limits::default()).expect("program");
    p.set_lines(linked.line_info.iter().map(|l| {
        (
            l.insn,
            SourceLine {
                file: l.file.clone(),
                line: l.line,
                column: l.col,
                text: l.text.clone(),
            },
        )
    }));
    let btf = linked
        .btf
        .as_deref()
        .and_then(|b| Btf::parse(b).ok())
        .or_else(|| obj.btf().cloned());
    let context_type = btf
        .as_ref()
        .and_then(|b| b.find_by_name(BtfKind::Struct, "xdp_md"));
    let info = DebugInfo {
        maps: defs
            .iter()
            .map(|d| MapInfo {
                name: d.name.clone(),
                key_type: (d.btf_key_type_id != 0).then_some(d.btf_key_type_id),
                value_type: (d.btf_value_type_id != 0).then_some(d.btf_value_type_id),
            })
            .collect(),
        functions: vec![
            linked
                .functions
                .iter()
                .map(|f| FunctionSym {
                    name: f.name.clone(),
                    start: f.start,
                })
                .collect(),
        ],
        btf: btf.map(Arc::new),
        context_type,
    };
    let mut machine = Machine::new(p);
    let mut env = ModelEnv::new(maps, ModelConfig::default());
    env.begin_run();
    machine
        .start(
            0,
            &Context::xdp(
                packet,
                &[],
                XdpMd {
                    ingress_ifindex: 1,
                    ..XdpMd::default()
                },
            ),
        )
        .expect("start");
    Session::new(machine, env, info).expect("session")
}
