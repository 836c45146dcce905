//! A generator of random XDP programs that the kernel's verifier accepts,
//! for differential testing of the VM against the kernel.
//!
//! Every program is built so the verifier can prove it safe and so that its
//! result depends only on its input (the packet and the initial map
//! contents): no time, no randomness, no pointers stored anywhere. At exit
//! it copies every scalar register and its stack data slots into the `out`
//! map, so comparing maps compares the whole final state, not only r0.
//!
//! Invariants that keep the verifier happy:
//! - registers r0-r6 and r9 ("the pool") hold initialised scalars at every
//!   item boundary; r7 = packet data, r8 = packet end (main only), r10 is
//!   never written. Any item that leaves a pointer or an uninitialised
//!   register behind (helper calls, packet checks) re-initialises it before
//!   the next item.
//! - stack accesses are aligned to their size and stay inside slots the
//!   prologue initialised.
//! - jumps go forward over a nested block, except the one backward jump of a
//!   bounded loop whose counter (r6 or r9) the loop body never writes.
//! - map values are reached only through a null-checked lookup result.
//!
//! The maps are referenced with `ld_imm64` `BPF_PSEUDO_MAP_IDX` (an index
//! into the load's fd_array), so a program's bytes do not depend on fd
//! numbers and a failing case can be saved and replayed as is.

use bpfrr_trace::isa::RawInsn;
use bpfrr_trace::isa::opcode::*;

/// Helper ids (`enum bpf_func_id`) the generated programs call.
const HELPER_MAP_LOOKUP_ELEM: i32 = 1;
const HELPER_MAP_UPDATE_ELEM: i32 = 2;
const HELPER_MAP_DELETE_ELEM: i32 = 3;
const HELPER_XDP_ADJUST_HEAD: i32 = 44;
const HELPER_XDP_ADJUST_TAIL: i32 = 65;

/// `enum bpf_map_type` values used here.
pub const MAP_TYPE_HASH: u32 = 1;
pub const MAP_TYPE_ARRAY: u32 = 2;
/// `BPF_PROG_TYPE_XDP`.
pub const PROG_TYPE_XDP: u32 = 6;

/// A map every generated program may use.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FuzzMap {
    pub name: String,
    pub map_type: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
}

/// Index of each map in [`FuzzCase::maps`] (and in the load's fd_array).
pub const MAP_ARRAY: usize = 0;
pub const MAP_HASH: usize = 1;
pub const MAP_OUT: usize = 2;

const ARRAY_VALUE: u32 = 32;
const ARRAY_ENTRIES: u32 = 4;
const HASH_VALUE: u32 = 16;
const HASH_ENTRIES: u32 = 8;
/// The out map's value: the 8 pool registers, then the 8 stack data slots.
const OUT_VALUE: u32 = 128;

/// The three maps of every case: an array, a hash, and the out map.
pub fn fuzz_maps() -> Vec<FuzzMap> {
    vec![
        FuzzMap {
            name: "fz_array".into(),
            map_type: MAP_TYPE_ARRAY,
            key_size: 4,
            value_size: ARRAY_VALUE,
            max_entries: ARRAY_ENTRIES,
        },
        FuzzMap {
            name: "fz_hash".into(),
            map_type: MAP_TYPE_HASH,
            key_size: 4,
            value_size: HASH_VALUE,
            max_entries: HASH_ENTRIES,
        },
        FuzzMap {
            name: "fz_out".into(),
            map_type: MAP_TYPE_ARRAY,
            key_size: 4,
            value_size: OUT_VALUE,
            max_entries: 1,
        },
    ]
}

/// One map entry stored before the run.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MapEntry {
    pub map: usize,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
}

/// One generated test: an XDP program, its maps with their initial
/// entries, and the packet to run it on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FuzzCase {
    pub seed: u64,
    pub insns: Vec<RawInsn>,
    pub maps: Vec<FuzzMap>,
    /// Entries to store (from user space) before the run; array entries not
    /// listed are zero, hash keys not listed are absent.
    pub initial_entries: Vec<MapEntry>,
    pub packet: Vec<u8>,
}

impl FuzzCase {
    /// The program as little-endian bytes.
    pub fn program_bytes(&self) -> Vec<u8> {
        self.insns.iter().flat_map(|i| i.to_bytes()).collect()
    }
}

/// Which kinds of instruction the generator may emit; all on by default.
/// Turning one off keeps a known VM gap from hiding everything else.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Features {
    pub alu32: bool,
    pub div_mod: bool,
    /// `sdiv`/`smod` (ISA v4).
    pub signed_div_mod: bool,
    /// Shifts by a register holding any value (the kernel masks the amount).
    pub shift_by_reg: bool,
    /// `le`/`be`/`bswap`.
    pub endian: bool,
    /// Sign-extending moves and loads (ISA v4).
    pub sign_extend: bool,
    pub jmp32: bool,
    pub loops: bool,
    pub may_goto: bool,
    pub atomics: bool,
    /// `load_acquire` / `store_release` (Linux 6.15+).
    pub acquire_release: bool,
    pub packet: bool,
    /// `bpf_xdp_adjust_head` / `bpf_xdp_adjust_tail` (the packet moves and changes length).
    pub adjust_packet: bool,
    pub calls: bool,
    pub maps: bool,
}

impl Default for Features {
    fn default() -> Self {
        Features {
            alu32: true,
            div_mod: true,
            signed_div_mod: true,
            shift_by_reg: true,
            endian: true,
            sign_extend: true,
            jmp32: true,
            loops: true,
            may_goto: true,
            atomics: true,
            acquire_release: true,
            packet: true,
            adjust_packet: true,
            calls: true,
            maps: true,
        }
    }
}

/// Size limits and features of generated programs.
#[derive(Clone, Debug)]
pub struct GenConfig {
    pub features: Features,
    /// Items (instructions or small idioms) at the top level of a function.
    pub max_items: usize,
    /// Nesting depth of branches.
    pub max_depth: usize,
    /// Subprograms besides the main program.
    pub max_subprogs: usize,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            features: Features::default(),
            max_items: 24,
            max_depth: 3,
            max_subprogs: 2,
        }
    }
}

/// Generates the case for `seed`: the same seed and config always give
/// the same case.
pub fn generate(seed: u64, cfg: &GenConfig) -> FuzzCase {
    let mut g = Gen {
        rng: Rng::new(seed),
        cfg,
        n_subprogs: 0,
    };
    g.case(seed)
}

/// xoshiro256** seeded through splitmix64: small, fast and stable across
/// releases (a dependency's generator could change its output stream).
#[derive(Clone, Debug)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        Rng {
            s: [next(), next(), next(), next()],
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        debug_assert!(n > 0);
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }

    /// True with probability `num/den`.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

/// Registers that hold scalars between items.
const POOL: [u8; 8] = [0, 1, 2, 3, 4, 5, 6, 9];
/// Callee-saved pool registers (survive calls): loop counters and re-init sources.
const SAVED: [u8; 2] = [6, 9];
const REG_DATA: u8 = 7;
const REG_DATA_END: u8 = 8;

// Stack layout of every frame: the key slot, then 8 data slots; main adds a
// dump area for the exit block.
const KEY_SLOT: i16 = -8;
const DATA_SLOTS: i16 = 8;
/// Lowest data slot offset (the data area is [DATA_LO, KEY_SLOT)).
const DATA_LO: i16 = KEY_SLOT - 8 * DATA_SLOTS;
const DUMP_LO: i16 = DATA_LO - 8 * POOL.len() as i16;
/// Main keeps the context pointer here (for helpers that take it).
const CTX_SLOT: i16 = DUMP_LO - 8;

/// Where an item is being generated.
#[derive(Clone, Debug)]
struct Scope {
    /// Registers this scope may overwrite (the pool minus a loop counter).
    writable: Vec<u8>,
    in_main: bool,
    /// Index of the current function (0 = main).
    func: usize,
    depth: usize,
    in_loop: bool,
}

/// A function being generated: its code and the bpf-to-bpf calls in it
/// (instruction index, callee function), patched once all are laid out.
#[derive(Default)]
struct Func {
    code: Vec<RawInsn>,
    calls: Vec<(usize, usize)>,
}

struct Gen<'a> {
    rng: Rng,
    cfg: &'a GenConfig,
    n_subprogs: usize,
}

/// Instruction builders over the named opcode constants.
mod asm {
    use super::*;

    pub fn alu(class: u8, op: u8, dst: u8, src: u8, off: i16, imm: i32) -> RawInsn {
        RawInsn::new(class | op, dst, src, off, imm)
    }
    pub fn mov64_imm(dst: u8, imm: i32) -> RawInsn {
        RawInsn::new(CLASS_ALU64 | ALU_MOV | SRC_K, dst, 0, 0, imm)
    }
    pub fn mov64_reg(dst: u8, src: u8) -> RawInsn {
        RawInsn::new(CLASS_ALU64 | ALU_MOV | SRC_X, dst, src, 0, 0)
    }
    pub fn add64_imm(dst: u8, imm: i32) -> RawInsn {
        RawInsn::new(CLASS_ALU64 | ALU_ADD | SRC_K, dst, 0, 0, imm)
    }
    pub fn ld_imm64(dst: u8, pseudo: u8, value: u64) -> [RawInsn; 2] {
        [
            RawInsn::new(
                CLASS_LD | SIZE_DW | MODE_IMM,
                dst,
                pseudo,
                0,
                value as u32 as i32,
            ),
            RawInsn::new(0, 0, 0, 0, (value >> 32) as u32 as i32),
        ]
    }
    pub fn ldx(size: u8, signed: bool, dst: u8, src: u8, off: i16) -> RawInsn {
        let mode = if signed { MODE_MEMSX } else { MODE_MEM };
        RawInsn::new(CLASS_LDX | mode | size, dst, src, off, 0)
    }
    pub fn stx(size: u8, dst: u8, off: i16, src: u8) -> RawInsn {
        RawInsn::new(CLASS_STX | MODE_MEM | size, dst, src, off, 0)
    }
    pub fn st(size: u8, dst: u8, off: i16, imm: i32) -> RawInsn {
        RawInsn::new(CLASS_ST | MODE_MEM | size, dst, 0, off, imm)
    }
    pub fn atomic(size: u8, dst: u8, off: i16, src: u8, op: i32) -> RawInsn {
        RawInsn::new(CLASS_STX | MODE_ATOMIC | size, dst, src, off, op)
    }
    pub fn jmp_imm(class: u8, op: u8, dst: u8, imm: i32, off: i16) -> RawInsn {
        RawInsn::new(class | op | SRC_K, dst, 0, off, imm)
    }
    pub fn jmp_reg(class: u8, op: u8, dst: u8, src: u8, off: i16) -> RawInsn {
        RawInsn::new(class | op | SRC_X, dst, src, off, 0)
    }
    pub fn ja(off: i16) -> RawInsn {
        RawInsn::new(CLASS_JMP | JMP_JA, 0, 0, off, 0)
    }
    pub fn may_goto(off: i16) -> RawInsn {
        RawInsn::new(CLASS_JMP | JMP_JCOND, 0, MAY_GOTO, off, 0)
    }
    pub fn call_helper(id: i32) -> RawInsn {
        RawInsn::new(CLASS_JMP | JMP_CALL, 0, PSEUDO_CALL_HELPER, 0, id)
    }
    pub fn call_local(rel: i32) -> RawInsn {
        RawInsn::new(CLASS_JMP | JMP_CALL, 0, PSEUDO_CALL_LOCAL, 0, rel)
    }
    pub fn exit() -> RawInsn {
        RawInsn::new(CLASS_JMP | JMP_EXIT, 0, 0, 0, 0)
    }
}

fn size_bytes(size: u8) -> i16 {
    match size {
        SIZE_B => 1,
        SIZE_H => 2,
        SIZE_W => 4,
        _ => 8,
    }
}

/// Sets the offset of the forward jump at `at` to land at the end of `code`.
fn patch_forward(code: &mut [RawInsn], at: usize) {
    let off = code.len() - at - 1;
    code[at].off = i16::try_from(off).expect("generated blocks are far below 32K slots");
}

impl Gen<'_> {
    fn features(&self) -> &Features {
        &self.cfg.features
    }

    fn case(&mut self, seed: u64) -> FuzzCase {
        let maps = fuzz_maps();
        let initial_entries = self.initial_entries();
        // Mostly 14..=128 bytes; packet blocks check up to 64 bytes, so short
        // packets exercise the failed-bounds-check path.
        let len = if self.rng.chance(1, 8) {
            self.rng.range(14, 40)
        } else {
            self.rng.range(14, 128)
        } as usize;
        let packet = self.rng.bytes(len);

        self.n_subprogs = if self.features().calls {
            self.rng.below(self.cfg.max_subprogs as u64 + 1) as usize
        } else {
            0
        };
        // Subprograms first (last to first), so main knows which ones no one
        // calls yet: it calls those itself, since the verifier rejects
        // unreachable code.
        let mut funcs: Vec<Func> = Vec::new();
        for f in (0..=self.n_subprogs).rev() {
            let called: Vec<usize> = funcs
                .iter()
                .flat_map(|g| g.calls.iter().map(|c| c.1))
                .collect();
            let uncalled: Vec<usize> = (f + 1..=self.n_subprogs)
                .filter(|k| !called.contains(k))
                .collect();
            let func = self.function(f, if f == 0 { &uncalled } else { &[] });
            funcs.push(func);
        }
        funcs.reverse();
        // Lay out main then the subprograms, and resolve the calls.
        let starts: Vec<usize> = funcs
            .iter()
            .scan(0, |acc, f| {
                let s = *acc;
                *acc += f.code.len();
                Some(s)
            })
            .collect();
        let mut insns = Vec::new();
        for (f, func) in funcs.iter().enumerate() {
            let mut code = func.code.clone();
            for &(at, callee) in &func.calls {
                let rel = starts[callee] as i64 - (starts[f] + at + 1) as i64;
                code[at].imm = rel as i32;
            }
            insns.extend(code);
        }
        FuzzCase {
            seed,
            insns,
            maps,
            initial_entries,
            packet,
        }
    }

    fn initial_entries(&mut self) -> Vec<MapEntry> {
        let mut entries = Vec::new();
        for k in 0..ARRAY_ENTRIES {
            if self.rng.chance(3, 4) {
                entries.push(MapEntry {
                    map: MAP_ARRAY,
                    key: k.to_le_bytes().to_vec(),
                    value: self.rng.bytes(ARRAY_VALUE as usize),
                });
            }
        }
        let n = self.rng.below(HASH_ENTRIES as u64 + 1);
        let mut keys: Vec<u32> = Vec::new();
        while (keys.len() as u64) < n {
            let k = self.rng.below(12) as u32;
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
        for k in keys {
            entries.push(MapEntry {
                map: MAP_HASH,
                key: k.to_le_bytes().to_vec(),
                value: self.rng.bytes(HASH_VALUE as usize),
            });
        }
        entries
    }

    /// Generates function `f` (0 = main); main also calls each of `must_call`.
    fn function(&mut self, f: usize, must_call: &[usize]) -> Func {
        let mut func = Func::default();
        let code = &mut func.code;
        let in_main = f == 0;
        if in_main {
            // Save the context; r7 = xdp_md->data, r8 = xdp_md->data_end.
            code.push(asm::stx(SIZE_DW, REG_FP, CTX_SLOT, 1));
            code.push(asm::ldx(SIZE_W, false, REG_DATA, 1, 0));
            code.push(asm::ldx(SIZE_W, false, REG_DATA_END, 1, 4));
            for r in POOL {
                self.init_reg(code, r);
            }
        } else {
            // r1-r5 are the caller's arguments; r0, r6, r9 start undefined.
            for r in [0, 6, 9] {
                self.init_reg(code, r);
            }
        }
        // The key slot and the data slots.
        code.push(asm::st(SIZE_DW, REG_FP, KEY_SLOT, 0));
        for i in 0..DATA_SLOTS {
            let off = DATA_LO + 8 * i;
            if self.rng.chance(1, 2) {
                let imm = self.imm();
                code.push(asm::st(SIZE_DW, REG_FP, off, imm));
            } else {
                let r = self.rng.pick(&POOL);
                code.push(asm::stx(SIZE_DW, REG_FP, off, r));
            }
        }
        let scope = Scope {
            writable: POOL.to_vec(),
            in_main,
            func: f,
            depth: 0,
            in_loop: false,
        };
        let items = if in_main {
            self.rng.range(4, self.cfg.max_items as i64) as usize
        } else {
            self.rng.range(2, (self.cfg.max_items / 2).max(2) as i64) as usize
        };
        self.block(&scope, &mut func, items);
        for &callee in must_call {
            func.calls.push((func.code.len(), callee));
            func.code.push(asm::call_local(0));
            self.reinit(&mut func.code, &[1, 2, 3, 4, 5]);
        }
        if in_main {
            self.exit_block(&mut func.code);
        } else {
            func.code.push(asm::exit());
        }
        func
    }

    fn init_reg(&mut self, code: &mut Vec<RawInsn>, r: u8) {
        if self.rng.chance(1, 4) {
            let v = self.next_imm64();
            code.extend(asm::ld_imm64(r, PSEUDO_IMM, v));
        } else {
            let imm = self.imm();
            code.push(asm::mov64_imm(r, imm));
        }
    }

    /// Interesting 32-bit immediates: edges, small numbers, powers of two.
    fn imm(&mut self) -> i32 {
        match self.rng.below(8) {
            0 => self
                .rng
                .pick(&[0, 1, -1, 2, i32::MIN, i32::MAX, 0x7f, 0x80, 0xff, 0xffff]),
            1 => 1i32.wrapping_shl(self.rng.below(32) as u32),
            2 | 3 => self.rng.range(-16, 16) as i32,
            4 => self.rng.range(0, 255) as i32,
            _ => self.rng.next_u64() as i32,
        }
    }

    fn next_imm64(&mut self) -> u64 {
        match self.rng.below(4) {
            0 => self.rng.pick(&[
                0,
                u64::MAX,
                i64::MIN as u64,
                i64::MAX as u64,
                0xffff_ffff,
                0x1_0000_0000,
                0x8000_0000,
            ]),
            _ => self.rng.next_u64(),
        }
    }

    fn pick_writable(&mut self, scope: &Scope) -> u8 {
        self.rng.pick(&scope.writable)
    }

    /// Re-initialises registers after a call clobbered them (r1-r5), from
    /// callee-saved pool registers or constants.
    fn reinit(&mut self, code: &mut Vec<RawInsn>, regs: &[u8]) {
        for &r in regs {
            if self.rng.chance(1, 2) {
                let src = self.rng.pick(&SAVED);
                code.push(asm::mov64_reg(r, src));
            } else {
                let imm = self.imm();
                code.push(asm::mov64_imm(r, imm));
            }
        }
    }

    /// A sequence of `n` items.
    fn block(&mut self, scope: &Scope, func: &mut Func, n: usize) {
        for _ in 0..n {
            self.item(scope, func);
        }
    }

    fn item(&mut self, scope: &Scope, func: &mut Func) {
        let f = self.features().clone();
        loop {
            let choice = self.rng.below(100);
            let done = match choice {
                0..=34 => {
                    self.alu(scope, &mut func.code);
                    true
                }
                35..=39 => {
                    let r = self.pick_writable(scope);
                    let v = self.next_imm64();
                    func.code.extend(asm::ld_imm64(r, PSEUDO_IMM, v));
                    true
                }
                40..=47 => {
                    self.stack_access(scope, &mut func.code);
                    true
                }
                48..=52 if f.atomics => {
                    self.stack_atomic(scope, &mut func.code);
                    true
                }
                53..=54 if f.acquire_release => {
                    self.acquire_release(scope, &mut func.code);
                    true
                }
                55..=67 if scope.depth < self.cfg.max_depth => {
                    self.branch(scope, func);
                    true
                }
                68..=72 if f.packet && scope.in_main => {
                    self.packet_block(scope, &mut func.code);
                    true
                }
                73..=74 if f.packet && scope.in_main => {
                    self.packet_var_offset(scope, &mut func.code);
                    true
                }
                75 if f.adjust_packet && scope.in_main => {
                    self.adjust_packet(&mut func.code);
                    true
                }
                76..=84 if f.maps => {
                    self.map_block(scope, &mut func.code);
                    true
                }
                85..=89 if f.calls && scope.func < self.n_subprogs => {
                    self.call_subprog(scope, func);
                    true
                }
                90..=94 if f.loops && !scope.in_loop && scope.depth < self.cfg.max_depth => {
                    self.bounded_loop(scope, func);
                    true
                }
                _ => false,
            };
            if done {
                return;
            }
        }
    }

    fn alu(&mut self, scope: &Scope, code: &mut Vec<RawInsn>) {
        let f = self.features().clone();
        let w32 = f.alu32 && self.rng.chance(2, 5);
        let class = if w32 { CLASS_ALU } else { CLASS_ALU64 };
        let bits: i64 = if w32 { 32 } else { 64 };
        let dst = self.pick_writable(scope);
        let src = self.rng.pick(&POOL);
        let by_reg = self.rng.chance(1, 2);
        let mut ops = vec![
            ALU_ADD, ALU_SUB, ALU_MUL, ALU_OR, ALU_AND, ALU_XOR, ALU_MOV, ALU_LSH, ALU_RSH,
            ALU_ARSH, ALU_NEG,
        ];
        if f.div_mod {
            ops.extend([ALU_DIV, ALU_MOD]);
        }
        if f.endian {
            ops.push(ALU_END);
        }
        let op = self.rng.pick(&ops);
        let insn = match op {
            ALU_NEG => asm::alu(class, ALU_NEG, dst, 0, 0, 0),
            ALU_END => {
                let width = self.rng.pick(&[16, 32, 64]);
                match self.rng.below(3) {
                    0 => asm::alu(CLASS_ALU, ALU_END | SRC_K, dst, 0, 0, width),
                    1 => asm::alu(CLASS_ALU, ALU_END | SRC_X, dst, 0, 0, width),
                    _ => asm::alu(CLASS_ALU64, ALU_END | SRC_K, dst, 0, 0, width),
                }
            }
            ALU_DIV | ALU_MOD => {
                let signed = f.signed_div_mod && self.rng.chance(1, 3);
                let off = signed as i16;
                if by_reg {
                    asm::alu(class, op | SRC_X, dst, src, off, 0)
                } else {
                    let mut imm = self.imm();
                    if imm == 0 {
                        imm = self.rng.pick(&[1, -1, 3, 7]);
                    }
                    asm::alu(class, op | SRC_K, dst, 0, off, imm)
                }
            }
            ALU_LSH | ALU_RSH | ALU_ARSH => {
                if by_reg && f.shift_by_reg {
                    asm::alu(class, op | SRC_X, dst, src, 0, 0)
                } else {
                    let imm = self.rng.range(0, bits - 1) as i32;
                    asm::alu(class, op | SRC_K, dst, 0, 0, imm)
                }
            }
            ALU_MOV if by_reg && f.sign_extend && self.rng.chance(1, 3) => {
                let ext = if w32 {
                    self.rng.pick(&[8, 16])
                } else {
                    self.rng.pick(&[8, 16, 32])
                };
                asm::alu(class, ALU_MOV | SRC_X, dst, src, ext, 0)
            }
            _ => {
                if by_reg {
                    asm::alu(class, op | SRC_X, dst, src, 0, 0)
                } else {
                    let imm = self.imm();
                    asm::alu(class, op | SRC_K, dst, 0, 0, imm)
                }
            }
        };
        code.push(insn);
    }

    /// A random aligned offset into the data slots for an access of `size`.
    fn data_offset(&mut self, size: u8) -> i16 {
        let n = size_bytes(size);
        let slots = (8 * DATA_SLOTS / n) as u64;
        DATA_LO + n * self.rng.below(slots) as i16
    }

    fn random_size(&mut self) -> u8 {
        self.rng.pick(&[SIZE_B, SIZE_H, SIZE_W, SIZE_DW])
    }

    /// A load from or a store to the data slots (spills and fills included).
    fn stack_access(&mut self, scope: &Scope, code: &mut Vec<RawInsn>) {
        let size = self.random_size();
        let off = self.data_offset(size);
        match self.rng.below(3) {
            0 => {
                let dst = self.pick_writable(scope);
                let signed =
                    self.features().sign_extend && size != SIZE_DW && self.rng.chance(1, 3);
                code.push(asm::ldx(size, signed, dst, REG_FP, off));
            }
            1 => {
                let src = self.rng.pick(&POOL);
                code.push(asm::stx(size, REG_FP, off, src));
            }
            _ => {
                let imm = self.imm();
                code.push(asm::st(size, REG_FP, off, imm));
            }
        }
    }

    /// An atomic operation of a random kind; `base`+`off` must be aligned
    /// for `size` and point at initialised memory. `allow_r0`: r0 may take
    /// part (false when r0 is the base pointer).
    fn atomic_op(
        &mut self,
        scope: &Scope,
        size: u8,
        base: u8,
        off: i16,
        allow_r0: bool,
    ) -> RawInsn {
        let ops = [
            ATOMIC_ADD,
            ATOMIC_OR,
            ATOMIC_AND,
            ATOMIC_XOR,
            ATOMIC_ADD | ATOMIC_FETCH,
            ATOMIC_OR | ATOMIC_FETCH,
            ATOMIC_AND | ATOMIC_FETCH,
            ATOMIC_XOR | ATOMIC_FETCH,
            ATOMIC_XCHG,
            ATOMIC_CMPXCHG,
        ];
        let mut op = self.rng.pick(&ops);
        // cmpxchg compares with and writes r0, which must be a writable scalar.
        if op == ATOMIC_CMPXCHG && !(allow_r0 && scope.writable.contains(&0)) {
            op = ATOMIC_ADD | ATOMIC_FETCH;
        }
        let src = if op & ATOMIC_FETCH != 0 {
            // The old value goes to src: it must be writable (and not the base).
            let candidates: Vec<u8> = scope
                .writable
                .iter()
                .copied()
                .filter(|r| *r != base && (allow_r0 || *r != 0))
                .collect();
            self.rng.pick(&candidates)
        } else {
            let candidates: Vec<u8> = POOL
                .iter()
                .copied()
                .filter(|r| *r != base && (allow_r0 || *r != 0))
                .collect();
            self.rng.pick(&candidates)
        };
        asm::atomic(size, base, off, src, op)
    }

    fn stack_atomic(&mut self, scope: &Scope, code: &mut Vec<RawInsn>) {
        let size = self.rng.pick(&[SIZE_W, SIZE_DW]);
        let off = self.data_offset(size);
        let insn = self.atomic_op(scope, size, REG_FP, off, true);
        code.push(insn);
    }

    fn acquire_release(&mut self, scope: &Scope, code: &mut Vec<RawInsn>) {
        let size = self.random_size();
        let off = self.data_offset(size);
        if self.rng.chance(1, 2) {
            // load_acquire: dst = *(src + off), encoded with dst in the dst field.
            let dst = self.pick_writable(scope);
            code.push(asm::atomic(size, dst, off, REG_FP, ATOMIC_LOAD_ACQ));
        } else {
            let src = self.rng.pick(&POOL);
            code.push(asm::atomic(size, REG_FP, off, src, ATOMIC_STORE_REL));
        }
    }

    /// A conditional jump over a nested block, sometimes with an else block.
    fn branch(&mut self, scope: &Scope, func: &mut Func) {
        let jmp32 = self.features().jmp32 && self.rng.chance(1, 3);
        let class = if jmp32 { CLASS_JMP32 } else { CLASS_JMP };
        let op = self.rng.pick(&[
            JMP_JEQ, JMP_JNE, JMP_JGT, JMP_JGE, JMP_JLT, JMP_JLE, JMP_JSGT, JMP_JSGE, JMP_JSLT,
            JMP_JSLE, JMP_JSET,
        ]);
        let a = self.rng.pick(&POOL);
        let at = func.code.len();
        if self.rng.chance(1, 2) {
            let b = self.rng.pick(&POOL);
            func.code.push(asm::jmp_reg(class, op, a, b, 0));
        } else {
            let imm = self.imm();
            func.code.push(asm::jmp_imm(class, op, a, imm, 0));
        }
        let inner = Scope {
            depth: scope.depth + 1,
            ..scope.clone()
        };
        let n = self.rng.range(1, 4) as usize;
        self.block(&inner, func, n);
        if self.rng.chance(1, 3) {
            // if-else: the then-block jumps over the else-block.
            let ja_at = func.code.len();
            func.code.push(asm::ja(0));
            patch_forward(&mut func.code, at);
            let n = self.rng.range(1, 3) as usize;
            self.block(&inner, func, n);
            patch_forward(&mut func.code, ja_at);
        } else {
            patch_forward(&mut func.code, at);
        }
    }

    /// `rT = data + K; if rT > data_end goto skip;` then reads and writes of
    /// the first K bytes, through data or (negative offsets) through rT.
    fn packet_block(&mut self, scope: &Scope, code: &mut Vec<RawInsn>) {
        let t = self.pick_writable(scope);
        let k = self.rng.range(1, 64) as i16;
        code.push(asm::mov64_reg(t, REG_DATA));
        code.push(asm::add64_imm(t, k as i32));
        let at = code.len();
        if self.rng.chance(1, 2) {
            code.push(asm::jmp_reg(CLASS_JMP, JMP_JGT, t, REG_DATA_END, 0));
        } else {
            code.push(asm::jmp_reg(CLASS_JMP, JMP_JLT, REG_DATA_END, t, 0));
        }
        let others: Vec<u8> = scope.writable.iter().copied().filter(|r| *r != t).collect();
        let sources: Vec<u8> = POOL.iter().copied().filter(|r| *r != t).collect();
        for _ in 0..self.rng.range(1, 4) {
            let mut size = self.random_size();
            while size_bytes(size) > k {
                size = SIZE_B;
            }
            let n = size_bytes(size);
            let start = self.rng.range(0, (k - n) as i64) as i16;
            // Address data+start, either from data or from rT = data+K.
            let (base, off) = if self.rng.chance(1, 3) {
                (t, start - k)
            } else {
                (REG_DATA, start)
            };
            match self.rng.below(3) {
                0 if !others.is_empty() => {
                    let dst = self.rng.pick(&others);
                    let signed =
                        self.features().sign_extend && size != SIZE_DW && self.rng.chance(1, 3);
                    code.push(asm::ldx(size, signed, dst, base, off));
                }
                1 => {
                    let src = self.rng.pick(&sources);
                    code.push(asm::stx(size, base, off, src));
                }
                _ => {
                    let imm = self.imm();
                    code.push(asm::st(size, base, off, imm));
                }
            }
        }
        patch_forward(code, at);
        // rT is a packet pointer on both paths: make it a scalar again.
        self.reinit_one(code, t);
    }

    /// A bounds-checked access at a variable offset:
    /// `rI = rX & mask; rT = data + rI; rU = rT + n; if rU > data_end goto skip`
    /// then reads and writes of `rT[0..n]`.
    fn packet_var_offset(&mut self, scope: &Scope, code: &mut Vec<RawInsn>) {
        let temps: Vec<u8> = scope.writable.clone();
        if temps.len() < 3 {
            return self.packet_block(scope, code);
        }
        let i = self.rng.pick(&temps);
        let rest: Vec<u8> = temps.iter().copied().filter(|r| *r != i).collect();
        let t = self.rng.pick(&rest);
        let rest: Vec<u8> = rest.iter().copied().filter(|r| *r != t).collect();
        let u = self.rng.pick(&rest);
        let x = self.rng.pick(&POOL);
        let mask = self.rng.pick(&[7, 15, 31, 63]);
        let n = self.rng.range(1, 16) as i16;
        code.push(asm::mov64_reg(i, x));
        code.push(asm::alu(CLASS_ALU64, ALU_AND | SRC_K, i, 0, 0, mask));
        code.push(asm::mov64_reg(t, REG_DATA));
        code.push(asm::alu(CLASS_ALU64, ALU_ADD | SRC_X, t, i, 0, 0));
        code.push(asm::mov64_reg(u, t));
        code.push(asm::add64_imm(u, n as i32));
        let at = code.len();
        code.push(asm::jmp_reg(CLASS_JMP, JMP_JGT, u, REG_DATA_END, 0));
        let dsts: Vec<u8> = scope
            .writable
            .iter()
            .copied()
            .filter(|r| *r != t && *r != u)
            .collect();
        let srcs: Vec<u8> = POOL
            .iter()
            .copied()
            .filter(|r| *r != t && *r != u)
            .collect();
        for _ in 0..self.rng.range(1, 3) {
            let mut size = self.random_size();
            while size_bytes(size) > n {
                size = SIZE_B;
            }
            let off = self.rng.range(0, (n - size_bytes(size)) as i64) as i16;
            if self.rng.chance(1, 2) && !dsts.is_empty() {
                let dst = self.rng.pick(&dsts);
                code.push(asm::ldx(size, false, dst, t, off));
            } else {
                let src = self.rng.pick(&srcs);
                code.push(asm::stx(size, t, off, src));
            }
        }
        patch_forward(code, at);
        // Both temporaries are packet pointers: overwrite them with constants
        // (copying one from the other would keep a pointer).
        for r in [t, u] {
            let imm = self.imm();
            code.push(asm::mov64_imm(r, imm));
        }
    }

    /// `bpf_xdp_adjust_head(ctx, delta)` or `bpf_xdp_adjust_tail(ctx, delta)`,
    /// then data and data_end reloaded (the call invalidates packet pointers).
    fn adjust_packet(&mut self, code: &mut Vec<RawInsn>) {
        let helper = self
            .rng
            .pick(&[HELPER_XDP_ADJUST_HEAD, HELPER_XDP_ADJUST_TAIL]);
        let delta = if self.rng.chance(1, 6) {
            self.rng.range(-400, 400)
        } else {
            self.rng.range(-40, 40)
        } as i32;
        code.push(asm::ldx(SIZE_DW, false, 1, REG_FP, CTX_SLOT));
        code.push(asm::mov64_imm(2, delta));
        code.push(asm::call_helper(helper));
        self.reinit(code, &[1, 2, 3, 4, 5]);
        code.push(asm::ldx(SIZE_DW, false, 1, REG_FP, CTX_SLOT));
        code.push(asm::ldx(SIZE_W, false, REG_DATA, 1, 0));
        code.push(asm::ldx(SIZE_W, false, REG_DATA_END, 1, 4));
        self.reinit(code, &[1]);
    }

    fn reinit_one(&mut self, code: &mut Vec<RawInsn>, r: u8) {
        let sources: Vec<u8> = SAVED.iter().copied().filter(|s| *s != r).collect();
        if !sources.is_empty() && self.rng.chance(1, 2) {
            let s = self.rng.pick(&sources);
            code.push(asm::mov64_reg(r, s));
        } else {
            let imm = self.imm();
            code.push(asm::mov64_imm(r, imm));
        }
    }

    /// Writes a u32 key into the key slot: a constant near the map's range,
    /// or a register's low bits (sometimes masked into the range).
    fn key_setup(&mut self, code: &mut Vec<RawInsn>, max_entries: u32) {
        match self.rng.below(3) {
            0 => {
                let k = self.rng.below(max_entries as u64 + 2) as i32;
                code.push(asm::st(SIZE_W, REG_FP, KEY_SLOT, k));
            }
            1 => {
                // r1 is clobbered by the call that follows anyway.
                let src = self.rng.pick(&POOL);
                code.push(asm::mov64_reg(1, src));
                let mask = (max_entries.next_power_of_two() * 2 - 1) as i32;
                code.push(asm::alu(CLASS_ALU64, ALU_AND | SRC_K, 1, 0, 0, mask));
                code.push(asm::stx(SIZE_W, REG_FP, KEY_SLOT, 1));
            }
            _ => {
                let src = self.rng.pick(&POOL);
                code.push(asm::stx(SIZE_W, REG_FP, KEY_SLOT, src));
            }
        }
    }

    fn map_block(&mut self, scope: &Scope, code: &mut Vec<RawInsn>) {
        // Calls clobber r0-r5: only allowed where all of them are writable
        // (a loop counter is always r6 or r9).
        let map = if self.rng.chance(1, 2) {
            MAP_ARRAY
        } else {
            MAP_HASH
        };
        let (value_size, max_entries) = if map == MAP_ARRAY {
            (ARRAY_VALUE, ARRAY_ENTRIES)
        } else {
            (HASH_VALUE, HASH_ENTRIES)
        };
        self.key_setup(code, max_entries);
        code.extend(asm::ld_imm64(1, PSEUDO_MAP_IDX, map as u64));
        code.push(asm::mov64_reg(2, REG_FP));
        code.push(asm::add64_imm(2, KEY_SLOT as i32));
        match self.rng.below(5) {
            0..=2 => {
                code.push(asm::call_helper(HELPER_MAP_LOOKUP_ELEM));
                self.reinit(code, &[1, 2, 3, 4, 5]);
                let at = code.len();
                code.push(asm::jmp_imm(CLASS_JMP, JMP_JEQ, 0, 0, 0));
                self.value_accesses(scope, code, value_size);
                patch_forward(code, at);
                // r0 is a map value pointer or NULL: make it a scalar again.
                self.reinit_one(code, 0);
            }
            3 => {
                // The value comes from the data slots (initialised, 64 bytes).
                code.push(asm::mov64_reg(3, REG_FP));
                code.push(asm::add64_imm(3, DATA_LO as i32));
                let flags = self.rng.below(3) as i32;
                code.push(asm::mov64_imm(4, flags));
                code.push(asm::call_helper(HELPER_MAP_UPDATE_ELEM));
                self.reinit(code, &[1, 2, 3, 4, 5]);
            }
            _ => {
                code.push(asm::call_helper(HELPER_MAP_DELETE_ELEM));
                self.reinit(code, &[1, 2, 3, 4, 5]);
            }
        }
    }

    /// Loads, stores and atomics on the map value r0 points to.
    fn value_accesses(&mut self, scope: &Scope, code: &mut Vec<RawInsn>, value_size: u32) {
        let vs = value_size as i16;
        let dsts: Vec<u8> = scope.writable.iter().copied().filter(|r| *r != 0).collect();
        let srcs: Vec<u8> = POOL.iter().copied().filter(|r| *r != 0).collect();
        for _ in 0..self.rng.range(1, 4) {
            let size = self.random_size();
            let n = size_bytes(size);
            match self.rng.below(5) {
                0 | 1 if !dsts.is_empty() => {
                    let off = self.rng.range(0, (vs - n) as i64) as i16;
                    let dst = self.rng.pick(&dsts);
                    let signed =
                        self.features().sign_extend && size != SIZE_DW && self.rng.chance(1, 3);
                    code.push(asm::ldx(size, signed, dst, 0, off));
                }
                2 => {
                    let off = self.rng.range(0, (vs - n) as i64) as i16;
                    let src = self.rng.pick(&srcs);
                    code.push(asm::stx(size, 0, off, src));
                }
                3 => {
                    let off = self.rng.range(0, (vs - n) as i64) as i16;
                    let imm = self.imm();
                    code.push(asm::st(size, 0, off, imm));
                }
                _ if self.features().atomics => {
                    let size = self.rng.pick(&[SIZE_W, SIZE_DW]);
                    let n = size_bytes(size);
                    let off = n * self.rng.below((vs / n) as u64) as i16;
                    let insn = self.atomic_op(scope, size, 0, off, false);
                    code.push(insn);
                }
                _ => {}
            }
        }
    }

    fn call_subprog(&mut self, scope: &Scope, func: &mut Func) {
        // Only later functions: the call graph stays acyclic.
        let callee = self
            .rng
            .range(scope.func as i64 + 1, self.n_subprogs as i64) as usize;
        func.calls.push((func.code.len(), callee));
        func.code.push(asm::call_local(0));
        self.reinit(&mut func.code, &[1, 2, 3, 4, 5]);
    }

    /// `rC = 0; loop: [may_goto exit;] body; rC += 1; if rC < N goto loop`.
    fn bounded_loop(&mut self, scope: &Scope, func: &mut Func) {
        let counters: Vec<u8> = SAVED
            .iter()
            .copied()
            .filter(|r| scope.writable.contains(r))
            .collect();
        if counters.is_empty() {
            return self.alu(scope, &mut func.code);
        }
        let c = self.rng.pick(&counters);
        let n = self.rng.range(1, 5) as i32;
        func.code.push(asm::mov64_imm(c, 0));
        let start = func.code.len();
        let may_goto_at = if self.features().may_goto && self.rng.chance(1, 2) {
            func.code.push(asm::may_goto(0));
            Some(start)
        } else {
            None
        };
        let inner = Scope {
            writable: scope.writable.iter().copied().filter(|r| *r != c).collect(),
            depth: scope.depth + 1,
            in_loop: true,
            ..scope.clone()
        };
        let items = self.rng.range(1, 4) as usize;
        self.block(&inner, func, items);
        func.code.push(asm::add64_imm(c, 1));
        let back = start as i64 - (func.code.len() as i64 + 1);
        func.code
            .push(asm::jmp_imm(CLASS_JMP, JMP_JLT, c, n, back as i16));
        if let Some(at) = may_goto_at {
            patch_forward(&mut func.code, at);
        }
    }

    /// Copies the pool registers and data slots into the out map, then
    /// returns the saved r0.
    fn exit_block(&mut self, code: &mut Vec<RawInsn>) {
        for (i, r) in POOL.iter().enumerate() {
            code.push(asm::stx(SIZE_DW, REG_FP, DUMP_LO + 8 * i as i16, *r));
        }
        code.push(asm::st(SIZE_W, REG_FP, KEY_SLOT, 0));
        code.extend(asm::ld_imm64(1, PSEUDO_MAP_IDX, MAP_OUT as u64));
        code.push(asm::mov64_reg(2, REG_FP));
        code.push(asm::add64_imm(2, KEY_SLOT as i32));
        code.push(asm::call_helper(HELPER_MAP_LOOKUP_ELEM));
        let at = code.len();
        code.push(asm::jmp_imm(CLASS_JMP, JMP_JEQ, 0, 0, 0));
        for i in 0..POOL.len() as i16 {
            code.push(asm::ldx(SIZE_DW, false, 1, REG_FP, DUMP_LO + 8 * i));
            code.push(asm::stx(SIZE_DW, 0, 8 * i, 1));
        }
        for j in 0..DATA_SLOTS {
            code.push(asm::ldx(SIZE_DW, false, 1, REG_FP, DATA_LO + 8 * j));
            code.push(asm::stx(SIZE_DW, 0, 8 * (POOL.len() as i16 + j), 1));
        }
        patch_forward(code, at);
        code.push(asm::ldx(SIZE_DW, false, 0, REG_FP, DUMP_LO));
        code.push(asm::exit());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bpfrr_trace::isa::{CallTarget, Imm64Kind, Insn, check};

    #[test]
    fn same_seed_same_program() {
        let cfg = GenConfig::default();
        for seed in 0..50 {
            assert_eq!(generate(seed, &cfg), generate(seed, &cfg));
        }
        assert_ne!(generate(1, &cfg).insns, generate(2, &cfg).insns);
    }

    #[test]
    fn rng_is_stable() {
        // Pinned so that saved seeds keep meaning the same programs.
        let mut r = Rng::new(0);
        assert_eq!(r.next_u64(), 0x99ec_5f36_cb75_f2b4);
        let mut r = Rng::new(42);
        let v: Vec<u64> = (0..1000).map(|_| r.below(7)).collect();
        assert!(v.iter().all(|x| *x < 7));
        assert!((0..7).all(|k| v.contains(&k)));
    }

    #[test]
    fn programs_decode_and_pass_the_static_checks() {
        let cfg = GenConfig::default();
        let mut calls = 0;
        for seed in 0..500 {
            let case = generate(seed, &cfg);
            let checked = check(&case.insns)
                .unwrap_or_else(|e| panic!("seed {seed}: generated program fails check: {e}"));
            for insn in checked.insns.iter().flatten() {
                match insn {
                    Insn::LoadImm64 {
                        kind: Imm64Kind::MapIdx,
                        imm,
                        ..
                    } => assert!((*imm as usize) < case.maps.len()),
                    Insn::Call(CallTarget::Local(_)) => calls += 1,
                    _ => {}
                }
            }
            assert!(case.packet.len() >= 14);
            assert!(matches!(case.insns.last(), Some(i) if i.code == CLASS_JMP | JMP_EXIT));
        }
        assert!(calls > 0, "no bpf-to-bpf calls generated in 500 programs");
    }

    #[test]
    fn features_can_be_turned_off() {
        let cfg = GenConfig {
            features: Features {
                atomics: false,
                acquire_release: false,
                maps: false,
                calls: false,
                adjust_packet: false,
                ..Features::default()
            },
            ..GenConfig::default()
        };
        for seed in 0..200 {
            let case = generate(seed, &cfg);
            for i in &case.insns {
                let atomic = i.class() == CLASS_STX && i.code & MODE_MASK == MODE_ATOMIC;
                assert!(!atomic, "seed {seed}: atomic");
                if i.code == CLASS_JMP | JMP_CALL {
                    // Only the exit block's lookup of the out map remains.
                    assert_eq!(i.imm, HELPER_MAP_LOOKUP_ELEM);
                    assert_eq!(i.src, PSEUDO_CALL_HELPER);
                }
            }
        }
    }
}
