//! The benchmark programs, written once in raw BPF instructions and run
//! unchanged by every engine, and their inputs.
//!
//! All of them are XDP programs for our VM and the kernel. rbpf has no XDP
//! context, so the packet parser gets a two-instruction prologue of its own
//! there (the packet pointers are loaded from rbpf's metadata buffer as
//! 64-bit values instead of from `xdp_md` as 32-bit ones); everything after
//! the prologue is byte-identical, and so is the number of instructions
//! executed. The map program's `bpf_map_lookup_elem` is answered by the
//! model environment in our VM, by a real array map in the kernel, and by a
//! registered stand-in helper returning a memory buffer in rbpf.
//!
//! Loop bounds are what the kernel's verifier accepts: it walks every
//! iteration of a bounded loop, and stops at one million processed
//! instructions.

use bpfrr_trace::isa::{AluOp::*, JmpCond::*, RawInsn, Size::*, Width};

use super::asm::{Asm, imm, reg};

/// Iterations of the ALU/branch loop.
pub const ALU_LOOP_ITERATIONS: i32 = 40_000;
/// Iterations of the stack/map-value loop.
pub const MAP_LOOP_ITERATIONS: i32 = 256;
/// Size of the map value the stack/map program works on.
pub const MAP_VALUE_SIZE: u32 = 64;
/// `bpf_map_lookup_elem`.
pub const HELPER_MAP_LOOKUP_ELEM: i32 = 1;

/// What the program is given, per engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Registers only.
    Loop,
    /// Reads the packet through data/data_end.
    Packet,
    /// Looks up entry 0 of one array map (value of `MAP_VALUE_SIZE` bytes).
    MapValue,
}

/// One benchmark program with its input.
pub struct Workload {
    pub name: &'static str,
    pub what: &'static str,
    pub shape: Shape,
    /// The program for our VM and the kernel (XDP).
    pub xdp: Vec<RawInsn>,
    /// The same program for rbpf (differs only in the packet prologue).
    pub rbpf: Vec<RawInsn>,
    /// The Ethernet frame the program runs on (ignored by the loop and map programs).
    pub packet: Vec<u8>,
}

impl Workload {
    pub fn rbpf_bytes(&self) -> Vec<u8> {
        self.rbpf.iter().flat_map(|i| i.to_bytes()).collect()
    }
}

/// Every workload, in the order of the report.
pub fn all() -> Vec<Workload> {
    let dummy = tcp_frame(64);
    vec![
        Workload {
            name: "alu_loop",
            what: "ALU64/ALU32 arithmetic and branches, 40k iterations",
            shape: Shape::Loop,
            xdp: alu_loop(),
            rbpf: alu_loop(),
            packet: dummy.clone(),
        },
        Workload {
            name: "parse_64",
            what: "Ethernet/IPv4/TCP parse with bounds checks, payload sum; 64-byte packet",
            shape: Shape::Packet,
            xdp: packet_parser(Engine::Xdp),
            rbpf: packet_parser(Engine::Rbpf),
            packet: tcp_frame(64),
        },
        Workload {
            name: "parse_1500",
            what: "the same parser on a 1500-byte packet",
            shape: Shape::Packet,
            xdp: packet_parser(Engine::Xdp),
            rbpf: packet_parser(Engine::Rbpf),
            packet: tcp_frame(1500),
        },
        Workload {
            name: "map_stack",
            what: "one map lookup, then 256 rounds of stack spills/fills and map-value loads/stores",
            shape: Shape::MapValue,
            xdp: map_stack(),
            rbpf: map_stack(),
            packet: dummy,
        },
    ]
}

/// Where a program gets its packet pointers from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Engine {
    /// `xdp_md->data` and `data_end` (32-bit context fields).
    Xdp,
    /// rbpf's metadata buffer: two 64-bit pointers.
    Rbpf,
}

/// A hash-like mix of the loop counter, with a branch taken on three of
/// every four iterations. Every branch depends only on the counter, so the
/// verifier follows one path.
fn alu_loop() -> Vec<RawInsn> {
    let mut a = Asm::new();
    a.alu64(Mov, 0, imm(0))
        .alu64(Mov, 1, imm(0))
        .alu64(Mov, 6, imm(0x2545_f491))
        .alu64(Mov, 7, imm(1))
        .label("loop")
        .alu64(Mov, 2, reg(1))
        .alu64(Mul, 2, reg(6))
        .alu64(Mov, 3, reg(2))
        .alu64(Rsh, 3, imm(17))
        .alu64(Xor, 2, reg(3))
        .alu32(Mov, 4, reg(2))
        .alu32(Add, 4, imm(0x7f4a_7c15))
        .alu32(Lsh, 4, imm(3))
        .alu64(Add, 0, reg(4))
        .alu64(Xor, 0, reg(2))
        .jump(Width::W32, Set, 1, imm(3), "skip")
        .alu64(Mov, 5, reg(0))
        .alu64(Arsh, 5, imm(7))
        .alu64(Sub, 0, reg(5))
        .alu64(Or, 7, reg(0))
        .label("skip")
        .alu64(Add, 1, imm(1))
        .jmp(Lt, 1, imm(ALU_LOOP_ITERATIONS), "loop")
        .alu64(And, 0, reg(7))
        .exit();
    a.finish()
}

/// An XDP-style parser: Ethernet, IPv4 (variable header length), TCP
/// (variable data offset), every access bounds-checked against data_end,
/// then a 32-bit sum of the payload. Returns a flow hash mixed with the
/// folded sum, 1 (drop) for malformed packets, 2 (pass) for non-TCP.
fn packet_parser(engine: Engine) -> Vec<RawInsn> {
    let mut a = Asm::new();
    match engine {
        Engine::Xdp => a.load(W, 2, 1, 0).load(W, 3, 1, 4),
        Engine::Rbpf => a.load(DW, 2, 1, 0).load(DW, 3, 1, 8),
    };
    a.alu64(Mov, 4, reg(2))
        .alu64(Add, 4, imm(34)) // Ethernet + minimal IPv4 header
        .jmp(Gt, 4, reg(3), "drop")
        .load(H, 5, 2, 12) // h_proto
        .jmp(Ne, 5, imm(0x0008), "pass") // ETH_P_IP in network order
        .load(B, 5, 2, 14) // version, ihl
        .alu64(Mov, 6, reg(5))
        .alu64(Rsh, 6, imm(4))
        .jmp(Ne, 6, imm(4), "drop")
        .alu64(And, 5, imm(15))
        .jmp(Lt, 5, imm(5), "drop")
        .alu64(Lsh, 5, imm(2)) // IPv4 header length, 20..60
        .load(B, 6, 2, 23) // protocol
        .jmp(Ne, 6, imm(6), "pass") // TCP only
        .load(W, 8, 2, 26) // saddr
        .load(W, 9, 2, 30) // daddr
        .alu64(Xor, 8, reg(9))
        .load(H, 6, 2, 16) // tot_len
        .be(6, 16)
        .alu64(Add, 8, reg(6))
        .alu64(Mov, 4, reg(2))
        .alu64(Add, 4, imm(14))
        .alu64(Add, 4, reg(5)) // TCP header
        .alu64(Mov, 1, reg(4))
        .alu64(Add, 1, imm(20))
        .jmp(Gt, 1, reg(3), "drop")
        .load(H, 1, 4, 0) // source port
        .alu64(Lsh, 1, imm(16))
        .load(H, 6, 4, 2) // destination port
        .alu64(Or, 1, reg(6))
        .alu64(Xor, 8, reg(1))
        .load(B, 1, 4, 12) // data offset
        .alu64(Rsh, 1, imm(4))
        .jmp(Lt, 1, imm(5), "drop")
        .alu64(Lsh, 1, imm(2))
        .alu64(Add, 4, reg(1)) // payload
        .alu64(Mov, 6, imm(0)) // payload sum
        .alu64(Mov, 7, imm(0)) // words summed
        .label("word")
        .alu64(Mov, 1, reg(4))
        .alu64(Add, 1, imm(4))
        .jmp(Gt, 1, reg(3), "sum_done")
        .load(W, 1, 4, 0)
        .alu64(Add, 6, reg(1))
        .alu64(Add, 4, imm(4))
        .alu64(Add, 7, imm(1))
        .jmp(Lt, 7, imm(512), "word") // bound for the verifier (1500 bytes = 375 words)
        .label("sum_done");
    for _ in 0..2 {
        // Fold the sum to 16 bits.
        a.alu64(Mov, 1, reg(6))
            .alu64(Rsh, 1, imm(16))
            .alu64(And, 6, imm(0xffff))
            .alu64(Add, 6, reg(1));
    }
    a.alu64(Mov, 0, reg(8))
        .alu64(Xor, 0, reg(6))
        .alu64(And, 0, imm(0x7fff_ffff))
        .exit()
        .label("drop")
        .alu64(Mov, 0, imm(1))
        .exit()
        .label("pass")
        .alu64(Mov, 0, imm(2))
        .exit();
    a.finish()
}

/// Looks up entry 0 of map 0, then mixes the value's first words through
/// stack spills and fills, writing results back into the value.
fn map_stack() -> Vec<RawInsn> {
    let mut a = Asm::new();
    a.store(W, 10, -4, imm(0)) // key = 0
        .ld_map(1, 0)
        .alu64(Mov, 2, reg(10))
        .alu64(Add, 2, imm(-4))
        .call_helper(HELPER_MAP_LOOKUP_ELEM)
        .jmp(Eq, 0, imm(0), "out")
        .alu64(Mov, 7, reg(0))
        .alu64(Mov, 8, imm(0))
        .label("round")
        .load(DW, 1, 7, 0)
        .load(DW, 2, 7, 8)
        .store(DW, 10, -16, reg(1)) // spill
        .store(DW, 10, -24, reg(2))
        .load(DW, 3, 7, 16)
        .load(DW, 4, 7, 24)
        .store(DW, 10, -32, reg(3))
        .store(DW, 10, -40, reg(4))
        .load(DW, 1, 10, -24) // fill
        .load(DW, 2, 10, -32)
        .alu64(Add, 1, reg(8))
        .alu64(Xor, 2, reg(1))
        .store(DW, 7, 0, reg(2))
        .load(DW, 3, 10, -40)
        .load(DW, 4, 10, -16)
        .alu64(Add, 3, reg(4))
        .store(DW, 7, 8, reg(3))
        .store(W, 10, -44, reg(8))
        .load(W, 5, 10, -44)
        .alu64(Add, 5, reg(3))
        .store(DW, 7, 16, reg(5))
        .load(DW, 4, 7, 32 + 8 * 3)
        .alu64(Add, 4, imm(1))
        .store(DW, 7, 32 + 8 * 3, reg(4))
        .alu64(Add, 8, imm(1))
        .jmp(Lt, 8, imm(MAP_LOOP_ITERATIONS), "round")
        .load(DW, 0, 7, 0)
        .alu64(And, 0, imm(0x7fff_ffff))
        .label("out")
        .exit();
    a.finish()
}

/// An Ethernet/IPv4/TCP frame of `len` bytes (at least 54) with a
/// deterministic payload.
pub fn tcp_frame(len: usize) -> Vec<u8> {
    assert!(len >= 54, "a TCP frame needs at least 54 bytes");
    let mut f = vec![0u8; len];
    f[0..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x02]); // destination MAC
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x01]); // source MAC
    f[12..14].copy_from_slice(&[0x08, 0x00]); // IPv4
    let ip = &mut f[14..34];
    ip[0] = 0x45; // version 4, ihl 5
    ip[2..4].copy_from_slice(&((len - 14) as u16).to_be_bytes());
    ip[8] = 64; // ttl
    ip[9] = 6; // TCP
    ip[12..16].copy_from_slice(&[10, 0, 0, 1]);
    ip[16..20].copy_from_slice(&[10, 0, 0, 2]);
    let tcp = &mut f[34..54];
    tcp[0..2].copy_from_slice(&40000u16.to_be_bytes());
    tcp[2..4].copy_from_slice(&80u16.to_be_bytes());
    tcp[12] = 5 << 4; // data offset: 5 words
    tcp[13] = 0x18; // PSH, ACK
    for (i, b) in f[54..].iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(31).wrapping_add(7);
    }
    f
}
