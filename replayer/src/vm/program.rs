//! A checked program turned into the machine's compact form, once: one `Op`
//! per slot with immediates pre-extended and jump targets resolved to
//! absolute slot indices, plus the subprogram table.
//!
//! Preparation also makes the load-time checks the kernel makes and the
//! machine relies on: no instruction writes r10, every subprogram ends in
//! `exit` or `ja`, no jump leaves its subprogram.

use std::collections::BTreeMap;

use bpfrr_trace::isa::*;

use super::fault::SourceLine;

/// Why a program cannot be prepared for the machine.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    #[error("{0}")]
    Bytes(#[from] TrailingBytes),
    #[error("{0}")]
    Check(#[from] CheckError),
    #[error("the program has {len} instructions, more than the limit of {max}")]
    TooManyInstructions { len: usize, max: usize },
    #[error("instruction {pc}: r10 (the frame pointer) is read-only")]
    WritesFramePointer { pc: usize },
    #[error(
        "instruction {pc}: the subprogram starting at {start} does not end with exit or an unconditional jump"
    )]
    SubprogramFallsThrough { pc: usize, start: usize },
    #[error("instruction {pc}: jump to {target} leaves its subprogram ({start}..{end})")]
    JumpLeavesSubprogram {
        pc: usize,
        target: usize,
        start: usize,
        end: usize,
    },
    #[error("{given} stack depths were given but the program has {subprograms} subprograms")]
    StackDepths { given: usize, subprograms: usize },
    #[error(
        "subprogram {subprogram} is given a stack depth of {depth} bytes, more than the kernel's limit of {max}"
    )]
    StackTooDeep {
        subprogram: usize,
        depth: u32,
        max: usize,
    },
}

/// Limits applied when preparing a program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Maximum number of slots (the kernel allows 1M to privileged loaders; uBPF 65536).
    pub max_insns: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_insns: 1_000_000,
        }
    }
}

/// One subprogram: its slots and the stack it needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subprogram {
    pub start: usize,
    pub end: usize,
    /// Stack bytes for a frame of this subprogram (default 512).
    pub stack_depth: u32,
}

/// The machine's form of one instruction. Registers are 0..=10; `t` is an
/// absolute slot index. 64-bit immediates are already sign-extended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    // 64-bit ALU, immediate and register forms.
    Add64I {
        d: u8,
        k: u64,
    },
    Add64R {
        d: u8,
        s: u8,
    },
    Sub64I {
        d: u8,
        k: u64,
    },
    Sub64R {
        d: u8,
        s: u8,
    },
    Mul64I {
        d: u8,
        k: u64,
    },
    Mul64R {
        d: u8,
        s: u8,
    },
    Div64I {
        d: u8,
        k: u64,
    },
    Div64R {
        d: u8,
        s: u8,
    },
    SDiv64I {
        d: u8,
        k: u64,
    },
    SDiv64R {
        d: u8,
        s: u8,
    },
    Mod64I {
        d: u8,
        k: u64,
    },
    Mod64R {
        d: u8,
        s: u8,
    },
    SMod64I {
        d: u8,
        k: u64,
    },
    SMod64R {
        d: u8,
        s: u8,
    },
    Or64I {
        d: u8,
        k: u64,
    },
    Or64R {
        d: u8,
        s: u8,
    },
    And64I {
        d: u8,
        k: u64,
    },
    And64R {
        d: u8,
        s: u8,
    },
    Lsh64I {
        d: u8,
        k: u64,
    },
    Lsh64R {
        d: u8,
        s: u8,
    },
    Rsh64I {
        d: u8,
        k: u64,
    },
    Rsh64R {
        d: u8,
        s: u8,
    },
    Arsh64I {
        d: u8,
        k: u64,
    },
    Arsh64R {
        d: u8,
        s: u8,
    },
    Xor64I {
        d: u8,
        k: u64,
    },
    Xor64R {
        d: u8,
        s: u8,
    },
    Mov64I {
        d: u8,
        k: u64,
    },
    Mov64R {
        d: u8,
        s: u8,
    },
    Neg64 {
        d: u8,
    },
    /// `d = s` followed by `d += k` in the next slot (which keeps its own
    /// `Add64I`): the pointer-plus-constant of every bounds check, run as
    /// one dispatch at full speed. Stepping runs the `mov` alone.
    MovAdd64 {
        d: u8,
        s: u8,
        k: u64,
    },
    /// `d += k` followed by `if d <cond> c goto t` in the next slot (which
    /// keeps its own 64-bit immediate jump): the loop counter's step and
    /// test, run as one dispatch at full speed. Stepping runs the add alone.
    /// Both immediates are the instructions' sign-extended 32-bit ones.
    AddJmp64I {
        d: u8,
        cond: JmpCond,
        k: i32,
        c: i32,
        t: u32,
    },
    // 32-bit ALU: results zero-extended.
    Add32I {
        d: u8,
        k: u32,
    },
    Add32R {
        d: u8,
        s: u8,
    },
    Sub32I {
        d: u8,
        k: u32,
    },
    Sub32R {
        d: u8,
        s: u8,
    },
    Mul32I {
        d: u8,
        k: u32,
    },
    Mul32R {
        d: u8,
        s: u8,
    },
    Div32I {
        d: u8,
        k: u32,
    },
    Div32R {
        d: u8,
        s: u8,
    },
    SDiv32I {
        d: u8,
        k: u32,
    },
    SDiv32R {
        d: u8,
        s: u8,
    },
    Mod32I {
        d: u8,
        k: u32,
    },
    Mod32R {
        d: u8,
        s: u8,
    },
    SMod32I {
        d: u8,
        k: u32,
    },
    SMod32R {
        d: u8,
        s: u8,
    },
    Or32I {
        d: u8,
        k: u32,
    },
    Or32R {
        d: u8,
        s: u8,
    },
    And32I {
        d: u8,
        k: u32,
    },
    And32R {
        d: u8,
        s: u8,
    },
    Lsh32I {
        d: u8,
        k: u32,
    },
    Lsh32R {
        d: u8,
        s: u8,
    },
    Rsh32I {
        d: u8,
        k: u32,
    },
    Rsh32R {
        d: u8,
        s: u8,
    },
    Arsh32I {
        d: u8,
        k: u32,
    },
    Arsh32R {
        d: u8,
        s: u8,
    },
    Xor32I {
        d: u8,
        k: u32,
    },
    Xor32R {
        d: u8,
        s: u8,
    },
    Mov32I {
        d: u8,
        k: u32,
    },
    Mov32R {
        d: u8,
        s: u8,
    },
    Neg32 {
        d: u8,
    },
    /// `d = (s{bits})s`, 64-bit result.
    MovSx64 {
        d: u8,
        s: u8,
        bits: u8,
    },
    /// `w_d = (s{bits})w_s`, zero-extended.
    MovSx32 {
        d: u8,
        s: u8,
        bits: u8,
    },
    /// `le16/32/64` (truncation on a little-endian machine).
    Le {
        d: u8,
        bits: u8,
    },
    /// `be16/32/64`.
    Be {
        d: u8,
        bits: u8,
    },
    /// `bswap16/32/64`.
    Swap {
        d: u8,
        bits: u8,
    },
    /// `d = *(size *)(s + off)`, zero-extended (`size` 1, 2, 4, 8).
    Load {
        d: u8,
        s: u8,
        off: i16,
        size: u8,
    },
    /// `d = *(s{size} *)(s + off)`, sign-extended.
    LoadSx {
        d: u8,
        s: u8,
        off: i16,
        size: u8,
    },
    /// `*(size *)(d + off) = s`.
    StoreR {
        d: u8,
        s: u8,
        off: i16,
        size: u8,
    },
    /// `*(size *)(d + off) = k`.
    StoreI {
        d: u8,
        off: i16,
        size: u8,
        k: i32,
    },
    Atomic {
        d: u8,
        s: u8,
        off: i16,
        size: u8,
        op: AtomicOp,
        fetch: bool,
    },
    /// `ld_imm64` of a plain constant.
    LdImm64 {
        d: u8,
        k: u64,
    },
    /// `ld_imm64` of a function: `t` is the target slot.
    LdFunc {
        d: u8,
        t: u32,
    },
    /// `ld_imm64` of a map reference: resolved by the environment.
    LdMapRef {
        d: u8,
        kind: Imm64Kind,
        k: u64,
    },
    /// `LD_ABS` (`s` is None) / `LD_IND`.
    LdPacket {
        size: u8,
        s: Option<u8>,
        k: i32,
    },
    Ja {
        t: u32,
    },
    // Conditional jumps, 64-bit: immediate (sign-extended) and register forms.
    Jeq64I {
        d: u8,
        k: u64,
        t: u32,
    },
    Jeq64R {
        d: u8,
        s: u8,
        t: u32,
    },
    Jne64I {
        d: u8,
        k: u64,
        t: u32,
    },
    Jne64R {
        d: u8,
        s: u8,
        t: u32,
    },
    Jgt64I {
        d: u8,
        k: u64,
        t: u32,
    },
    Jgt64R {
        d: u8,
        s: u8,
        t: u32,
    },
    Jge64I {
        d: u8,
        k: u64,
        t: u32,
    },
    Jge64R {
        d: u8,
        s: u8,
        t: u32,
    },
    Jlt64I {
        d: u8,
        k: u64,
        t: u32,
    },
    Jlt64R {
        d: u8,
        s: u8,
        t: u32,
    },
    Jle64I {
        d: u8,
        k: u64,
        t: u32,
    },
    Jle64R {
        d: u8,
        s: u8,
        t: u32,
    },
    Jset64I {
        d: u8,
        k: u64,
        t: u32,
    },
    Jset64R {
        d: u8,
        s: u8,
        t: u32,
    },
    Jsgt64I {
        d: u8,
        k: u64,
        t: u32,
    },
    Jsgt64R {
        d: u8,
        s: u8,
        t: u32,
    },
    Jsge64I {
        d: u8,
        k: u64,
        t: u32,
    },
    Jsge64R {
        d: u8,
        s: u8,
        t: u32,
    },
    Jslt64I {
        d: u8,
        k: u64,
        t: u32,
    },
    Jslt64R {
        d: u8,
        s: u8,
        t: u32,
    },
    Jsle64I {
        d: u8,
        k: u64,
        t: u32,
    },
    Jsle64R {
        d: u8,
        s: u8,
        t: u32,
    },
    // 32-bit conditional jumps compare the low halves.
    Jeq32I {
        d: u8,
        k: u32,
        t: u32,
    },
    Jeq32R {
        d: u8,
        s: u8,
        t: u32,
    },
    Jne32I {
        d: u8,
        k: u32,
        t: u32,
    },
    Jne32R {
        d: u8,
        s: u8,
        t: u32,
    },
    Jgt32I {
        d: u8,
        k: u32,
        t: u32,
    },
    Jgt32R {
        d: u8,
        s: u8,
        t: u32,
    },
    Jge32I {
        d: u8,
        k: u32,
        t: u32,
    },
    Jge32R {
        d: u8,
        s: u8,
        t: u32,
    },
    Jlt32I {
        d: u8,
        k: u32,
        t: u32,
    },
    Jlt32R {
        d: u8,
        s: u8,
        t: u32,
    },
    Jle32I {
        d: u8,
        k: u32,
        t: u32,
    },
    Jle32R {
        d: u8,
        s: u8,
        t: u32,
    },
    Jset32I {
        d: u8,
        k: u32,
        t: u32,
    },
    Jset32R {
        d: u8,
        s: u8,
        t: u32,
    },
    Jsgt32I {
        d: u8,
        k: u32,
        t: u32,
    },
    Jsgt32R {
        d: u8,
        s: u8,
        t: u32,
    },
    Jsge32I {
        d: u8,
        k: u32,
        t: u32,
    },
    Jsge32R {
        d: u8,
        s: u8,
        t: u32,
    },
    Jslt32I {
        d: u8,
        k: u32,
        t: u32,
    },
    Jslt32R {
        d: u8,
        s: u8,
        t: u32,
    },
    Jsle32I {
        d: u8,
        k: u32,
        t: u32,
    },
    Jsle32R {
        d: u8,
        s: u8,
        t: u32,
    },
    MayGoto {
        t: u32,
    },
    CallHelper {
        id: i32,
    },
    CallLocal {
        t: u32,
    },
    CallKfunc {
        btf_id: i32,
        module: i16,
    },
    CallReg {
        r: u8,
    },
    Exit,
    /// The second slot of `ld_imm64`; never executed (checked programs cannot jump there).
    Hole,
    /// `Load` whose base `s` is r10, told apart at preparation so that the
    /// full-speed loop can check r10's frame once per entry
    /// (`memory::FrameView`) and every other load pays nothing. Everywhere
    /// else it runs as `Load` (the same arms); the fields are `Load`'s, so
    /// the two have one layout and the loop decodes them alike. These three
    /// come last so that the other ops keep their tags (and the loop's jump
    /// table its order).
    LoadFp {
        d: u8,
        s: u8,
        off: i16,
        size: u8,
    },
    /// `StoreR` whose base `d` is r10, as `LoadFp`.
    StoreFpR {
        d: u8,
        s: u8,
        off: i16,
        size: u8,
    },
    /// `StoreI` whose base `d` is r10, as `LoadFp`.
    StoreFpI {
        d: u8,
        off: i16,
        size: u8,
        k: i32,
    },
}

/// A program ready to run: the decoded instructions, their compact form,
/// the subprograms, and optional line info for fault reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    pub(crate) ops: Vec<Op>,
    /// Whether `ops` hold a plain store (`StoreR`, `StoreI`), the only
    /// writes the straight-line loop makes itself: without one, running
    /// the loop leaves memory as it was (see `Memory::straight_parts`).
    pub(crate) stores_in_line: bool,
    /// Whether `ops` hold an r10-based access (`LoadFp`, `StoreFpR`,
    /// `StoreFpI`): only then does the full-speed loop check r10's frame
    /// on entry, so programs without them pay nothing for it.
    pub(crate) frame_accesses: bool,
    insns: Vec<Option<Insn>>,
    raw: Vec<RawInsn>,
    subprograms: Vec<Subprogram>,
    /// Which subprogram each slot belongs to.
    subprog_of: Vec<u32>,
    lines: BTreeMap<usize, SourceLine>,
    name: String,
}

fn writes_reg(insn: &Insn) -> Option<u8> {
    match *insn {
        Insn::Alu { dst, .. }
        | Insn::Neg { dst, .. }
        | Insn::MovSx { dst, .. }
        | Insn::Endian { dst, .. }
        | Insn::Load { dst, .. }
        | Insn::LoadImm64 { dst, .. } => Some(dst),
        Insn::Atomic {
            op: AtomicOp::LoadAcquire,
            dst,
            ..
        } => Some(dst),
        Insn::Atomic {
            fetch: true,
            op,
            src,
            ..
        } if op != AtomicOp::Cmpxchg => Some(src),
        _ => None,
    }
}

impl Program {
    /// Parses raw instruction bytes (8 per slot), checks and prepares them.
    pub fn from_bytes(bytes: &[u8]) -> Result<Program, LoadError> {
        let raw = RawInsn::parse_all(bytes)?;
        Program::new(&check(&raw)?, Limits::default())
    }

    /// Prepares a checked program.
    pub fn new(checked: &CheckedProgram, limits: Limits) -> Result<Program, LoadError> {
        let len = checked.insns.len();
        if len > limits.max_insns {
            return Err(LoadError::TooManyInstructions {
                len,
                max: limits.max_insns,
            });
        }
        // Subprograms start at 0 and at every local call or function-pointer target.
        let mut starts = vec![0usize];
        for (pc, insn) in checked.insns.iter().enumerate() {
            let Some(insn) = insn else { continue };
            if writes_reg(insn) == Some(opcode::REG_FP) {
                return Err(LoadError::WritesFramePointer { pc });
            }
            if matches!(
                insn,
                Insn::Call(CallTarget::Local(_))
                    | Insn::LoadImm64 {
                        kind: Imm64Kind::Func,
                        ..
                    }
            ) && let Some(t) = branch_target(insn, pc)
            {
                starts.push(t as usize);
            }
        }
        starts.sort_unstable();
        starts.dedup();
        let mut subprograms = Vec::with_capacity(starts.len());
        let mut subprog_of = vec![0u32; len];
        for (i, &start) in starts.iter().enumerate() {
            let end = starts.get(i + 1).copied().unwrap_or(len);
            subprog_of[start..end].fill(i as u32);
            let last = (start..end)
                .rev()
                .find(|&p| checked.insns[p].is_some())
                .unwrap_or(start);
            if !matches!(
                checked.insns[last],
                Some(Insn::Exit) | Some(Insn::Ja { .. })
            ) {
                return Err(LoadError::SubprogramFallsThrough { pc: last, start });
            }
            subprograms.push(Subprogram {
                start,
                end,
                stack_depth: opcode::MAX_STACK as u32,
            });
        }
        let mut ops = Vec::with_capacity(len);
        for (pc, insn) in checked.insns.iter().enumerate() {
            let op = match insn {
                None => Op::Hole,
                Some(insn) => {
                    if let Some(t) = branch_target(insn, pc)
                        && !matches!(
                            insn,
                            Insn::Call(CallTarget::Local(_))
                                | Insn::LoadImm64 {
                                    kind: Imm64Kind::Func,
                                    ..
                                }
                        )
                    {
                        let sp = subprograms[subprog_of[pc] as usize];
                        if !(sp.start..sp.end).contains(&(t as usize)) {
                            return Err(LoadError::JumpLeavesSubprogram {
                                pc,
                                target: t as usize,
                                start: sp.start,
                                end: sp.end,
                            });
                        }
                    }
                    compile(insn, pc)
                }
            };
            ops.push(op);
        }
        fuse(&mut ops);
        let stores_in_line = ops.iter().any(|op| {
            matches!(
                op,
                Op::StoreR { .. } | Op::StoreI { .. } | Op::StoreFpR { .. } | Op::StoreFpI { .. }
            )
        });
        let frame_accesses = ops.iter().any(|op| {
            matches!(
                op,
                Op::LoadFp { .. } | Op::StoreFpR { .. } | Op::StoreFpI { .. }
            )
        });
        Ok(Program {
            ops,
            stores_in_line,
            frame_accesses,
            insns: checked.insns.clone(),
            raw: checked.raw.clone(),
            subprograms,
            subprog_of,
            lines: BTreeMap::new(),
            name: String::new(),
        })
    }

    /// Sets each subprogram's stack depth (from the verifier log or BTF), in
    /// subprogram order. With depths given, the machine enforces the
    /// kernel's 512-byte limit on all active frames together.
    pub fn set_stack_depths(&mut self, depths: &[u32]) -> Result<(), LoadError> {
        if depths.len() != self.subprograms.len() {
            return Err(LoadError::StackDepths {
                given: depths.len(),
                subprograms: self.subprograms.len(),
            });
        }
        // Depths come from a trace (untrusted): one beyond the kernel's
        // limit would make every run allocate it, so it is refused.
        if let Some((subprogram, &depth)) = depths
            .iter()
            .enumerate()
            .find(|&(_, &d)| d as usize > opcode::MAX_STACK)
        {
            return Err(LoadError::StackTooDeep {
                subprogram,
                depth,
                max: opcode::MAX_STACK,
            });
        }
        for (sp, d) in self.subprograms.iter_mut().zip(depths) {
            // The kernel rounds each frame up to 8 bytes (16 for the JIT; 8 is what programs see).
            sp.stack_depth = d.div_ceil(8) * 8;
        }
        Ok(())
    }

    /// Attaches source lines: the line of slot `pc` is the entry at or before it.
    pub fn set_lines(&mut self, lines: impl IntoIterator<Item = (usize, SourceLine)>) {
        self.lines = lines.into_iter().collect();
    }

    pub fn set_name(&mut self, name: impl Into<String>) {
        self.name = name.into();
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The source line of slot `pc`, if line info was given.
    pub fn line_of(&self, pc: usize) -> Option<&SourceLine> {
        self.lines.range(..=pc).next_back().map(|(_, l)| l)
    }

    /// Number of slots.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The decoded instruction at slot `pc` (None for an ld_imm64's second slot).
    pub fn insn(&self, pc: usize) -> Option<&Insn> {
        self.insns.get(pc).and_then(|i| i.as_ref())
    }

    pub fn insns(&self) -> &[Option<Insn>] {
        &self.insns
    }

    pub fn raw(&self) -> &[RawInsn] {
        &self.raw
    }

    pub fn subprograms(&self) -> &[Subprogram] {
        &self.subprograms
    }

    /// Index of the subprogram slot `pc` belongs to.
    pub fn subprogram_of(&self, pc: usize) -> usize {
        self.subprog_of.get(pc).copied().unwrap_or(0) as usize
    }

    /// Whether `pc` starts a subprogram (a valid call target).
    pub fn is_subprogram_start(&self, pc: usize) -> bool {
        self.subprograms.iter().any(|s| s.start == pc)
    }
}

fn size_u8(s: Size) -> u8 {
    s.bytes() as u8
}

fn jump(width: Width, cond: JmpCond, d: u8, src: Operand, t: u32) -> Op {
    use JmpCond::*;
    match (width, src) {
        (Width::W64, Operand::Imm(i)) => {
            let k = i as i64 as u64;
            match cond {
                Eq => Op::Jeq64I { d, k, t },
                Ne => Op::Jne64I { d, k, t },
                Gt => Op::Jgt64I { d, k, t },
                Ge => Op::Jge64I { d, k, t },
                Lt => Op::Jlt64I { d, k, t },
                Le => Op::Jle64I { d, k, t },
                Set => Op::Jset64I { d, k, t },
                SGt => Op::Jsgt64I { d, k, t },
                SGe => Op::Jsge64I { d, k, t },
                SLt => Op::Jslt64I { d, k, t },
                SLe => Op::Jsle64I { d, k, t },
            }
        }
        (Width::W64, Operand::Reg(s)) => match cond {
            Eq => Op::Jeq64R { d, s, t },
            Ne => Op::Jne64R { d, s, t },
            Gt => Op::Jgt64R { d, s, t },
            Ge => Op::Jge64R { d, s, t },
            Lt => Op::Jlt64R { d, s, t },
            Le => Op::Jle64R { d, s, t },
            Set => Op::Jset64R { d, s, t },
            SGt => Op::Jsgt64R { d, s, t },
            SGe => Op::Jsge64R { d, s, t },
            SLt => Op::Jslt64R { d, s, t },
            SLe => Op::Jsle64R { d, s, t },
        },
        (Width::W32, Operand::Imm(i)) => {
            let k = i as u32;
            match cond {
                Eq => Op::Jeq32I { d, k, t },
                Ne => Op::Jne32I { d, k, t },
                Gt => Op::Jgt32I { d, k, t },
                Ge => Op::Jge32I { d, k, t },
                Lt => Op::Jlt32I { d, k, t },
                Le => Op::Jle32I { d, k, t },
                Set => Op::Jset32I { d, k, t },
                SGt => Op::Jsgt32I { d, k, t },
                SGe => Op::Jsge32I { d, k, t },
                SLt => Op::Jslt32I { d, k, t },
                SLe => Op::Jsle32I { d, k, t },
            }
        }
        (Width::W32, Operand::Reg(s)) => match cond {
            Eq => Op::Jeq32R { d, s, t },
            Ne => Op::Jne32R { d, s, t },
            Gt => Op::Jgt32R { d, s, t },
            Ge => Op::Jge32R { d, s, t },
            Lt => Op::Jlt32R { d, s, t },
            Le => Op::Jle32R { d, s, t },
            Set => Op::Jset32R { d, s, t },
            SGt => Op::Jsgt32R { d, s, t },
            SGe => Op::Jsge32R { d, s, t },
            SLt => Op::Jslt32R { d, s, t },
            SLe => Op::Jsle32R { d, s, t },
        },
    }
}

fn alu(width: Width, op: AluOp, d: u8, src: Operand) -> Op {
    use AluOp::*;
    match (width, src) {
        (Width::W64, Operand::Imm(i)) => {
            let k = i as i64 as u64;
            match op {
                Add => Op::Add64I { d, k },
                Sub => Op::Sub64I { d, k },
                Mul => Op::Mul64I { d, k },
                Div => Op::Div64I { d, k },
                SDiv => Op::SDiv64I { d, k },
                Mod => Op::Mod64I { d, k },
                SMod => Op::SMod64I { d, k },
                Or => Op::Or64I { d, k },
                And => Op::And64I { d, k },
                Lsh => Op::Lsh64I { d, k },
                Rsh => Op::Rsh64I { d, k },
                Arsh => Op::Arsh64I { d, k },
                Xor => Op::Xor64I { d, k },
                Mov => Op::Mov64I { d, k },
            }
        }
        (Width::W64, Operand::Reg(s)) => match op {
            Add => Op::Add64R { d, s },
            Sub => Op::Sub64R { d, s },
            Mul => Op::Mul64R { d, s },
            Div => Op::Div64R { d, s },
            SDiv => Op::SDiv64R { d, s },
            Mod => Op::Mod64R { d, s },
            SMod => Op::SMod64R { d, s },
            Or => Op::Or64R { d, s },
            And => Op::And64R { d, s },
            Lsh => Op::Lsh64R { d, s },
            Rsh => Op::Rsh64R { d, s },
            Arsh => Op::Arsh64R { d, s },
            Xor => Op::Xor64R { d, s },
            Mov => Op::Mov64R { d, s },
        },
        (Width::W32, Operand::Imm(i)) => {
            let k = i as u32;
            match op {
                Add => Op::Add32I { d, k },
                Sub => Op::Sub32I { d, k },
                Mul => Op::Mul32I { d, k },
                Div => Op::Div32I { d, k },
                SDiv => Op::SDiv32I { d, k },
                Mod => Op::Mod32I { d, k },
                SMod => Op::SMod32I { d, k },
                Or => Op::Or32I { d, k },
                And => Op::And32I { d, k },
                Lsh => Op::Lsh32I { d, k },
                Rsh => Op::Rsh32I { d, k },
                Arsh => Op::Arsh32I { d, k },
                Xor => Op::Xor32I { d, k },
                Mov => Op::Mov32I { d, k },
            }
        }
        (Width::W32, Operand::Reg(s)) => match op {
            Add => Op::Add32R { d, s },
            Sub => Op::Sub32R { d, s },
            Mul => Op::Mul32R { d, s },
            Div => Op::Div32R { d, s },
            SDiv => Op::SDiv32R { d, s },
            Mod => Op::Mod32R { d, s },
            SMod => Op::SMod32R { d, s },
            Or => Op::Or32R { d, s },
            And => Op::And32R { d, s },
            Lsh => Op::Lsh32R { d, s },
            Rsh => Op::Rsh32R { d, s },
            Arsh => Op::Arsh32R { d, s },
            Xor => Op::Xor32R { d, s },
            Mov => Op::Mov32R { d, s },
        },
    }
}

/// Turns `d = s; d += k` pairs into `MovAdd64` and `d += k; if d <cond> c
/// goto t` pairs into `AddJmp64I`, in the first slot. The second slot is
/// left as it is, for jumps into it and for single steps. (`mov; add; jcc`
/// becomes `MovAdd64; AddJmp64I; jcc`: the `MovAdd64` runs the add itself
/// and goes on at the jump.)
fn fuse(ops: &mut [Op]) {
    for pc in 1..ops.len() {
        if let (Op::Mov64R { d, s }, Op::Add64I { d: d2, k }) = (ops[pc - 1], ops[pc])
            && d == d2
        {
            ops[pc - 1] = Op::MovAdd64 { d, s, k };
        }
    }
    for pc in 1..ops.len() {
        if let Op::Add64I { d, k } = ops[pc - 1]
            && let Some((d2, cond, c, t)) = jump_imm64(ops[pc])
            && d == d2
            && let Ok(k) = i32::try_from(k as i64)
        {
            ops[pc - 1] = Op::AddJmp64I { d, cond, k, c, t };
        }
    }
}

/// A conditional jump comparing a register with a 64-bit immediate, as
/// (register, condition, the instruction's 32-bit immediate, target).
fn jump_imm64(op: Op) -> Option<(u8, JmpCond, i32, u32)> {
    use JmpCond::*;
    let (d, cond, k, t) = match op {
        Op::Jeq64I { d, k, t } => (d, Eq, k, t),
        Op::Jne64I { d, k, t } => (d, Ne, k, t),
        Op::Jgt64I { d, k, t } => (d, Gt, k, t),
        Op::Jge64I { d, k, t } => (d, Ge, k, t),
        Op::Jlt64I { d, k, t } => (d, Lt, k, t),
        Op::Jle64I { d, k, t } => (d, Le, k, t),
        Op::Jset64I { d, k, t } => (d, Set, k, t),
        Op::Jsgt64I { d, k, t } => (d, SGt, k, t),
        Op::Jsge64I { d, k, t } => (d, SGe, k, t),
        Op::Jslt64I { d, k, t } => (d, SLt, k, t),
        Op::Jsle64I { d, k, t } => (d, SLe, k, t),
        _ => return None,
    };
    Some((d, cond, i32::try_from(k as i64).ok()?, t))
}

/// Whether `a <cond> b` holds, 64-bit.
#[inline(always)]
pub(crate) fn holds64(cond: JmpCond, a: u64, b: u64) -> bool {
    use JmpCond::*;
    match cond {
        Eq => a == b,
        Ne => a != b,
        Gt => a > b,
        Ge => a >= b,
        Lt => a < b,
        Le => a <= b,
        Set => a & b != 0,
        SGt => (a as i64) > b as i64,
        SGe => (a as i64) >= b as i64,
        SLt => (a as i64) < (b as i64),
        SLe => (a as i64) <= b as i64,
    }
}

/// The compact form of one decoded instruction at slot `pc` (targets already checked).
fn compile(insn: &Insn, pc: usize) -> Op {
    let target = |insn: &Insn| branch_target(insn, pc).unwrap_or(0) as u32;
    match *insn {
        Insn::Alu {
            width,
            op,
            dst,
            src,
        } => alu(width, op, dst, src),
        Insn::Neg {
            width: Width::W64,
            dst,
        } => Op::Neg64 { d: dst },
        Insn::Neg {
            width: Width::W32,
            dst,
        } => Op::Neg32 { d: dst },
        Insn::MovSx {
            width: Width::W64,
            dst,
            src,
            bits,
        } => Op::MovSx64 {
            d: dst,
            s: src,
            bits,
        },
        Insn::MovSx {
            width: Width::W32,
            dst,
            src,
            bits,
        } => Op::MovSx32 {
            d: dst,
            s: src,
            bits,
        },
        Insn::Endian {
            op: EndianOp::ToLe,
            dst,
            bits,
        } => Op::Le { d: dst, bits },
        Insn::Endian {
            op: EndianOp::ToBe,
            dst,
            bits,
        } => Op::Be { d: dst, bits },
        Insn::Endian {
            op: EndianOp::Swap,
            dst,
            bits,
        } => Op::Swap { d: dst, bits },
        Insn::Load {
            size,
            signed: false,
            dst,
            src: opcode::REG_FP,
            off,
        } => Op::LoadFp {
            d: dst,
            s: opcode::REG_FP,
            off,
            size: size_u8(size),
        },
        Insn::Load {
            size,
            signed: false,
            dst,
            src,
            off,
        } => Op::Load {
            d: dst,
            s: src,
            off,
            size: size_u8(size),
        },
        Insn::Load {
            size,
            signed: true,
            dst,
            src,
            off,
        } => Op::LoadSx {
            d: dst,
            s: src,
            off,
            size: size_u8(size),
        },
        Insn::Store {
            size,
            dst: opcode::REG_FP,
            off,
            src: Operand::Reg(s),
        } => Op::StoreFpR {
            d: opcode::REG_FP,
            s,
            off,
            size: size_u8(size),
        },
        Insn::Store {
            size,
            dst: opcode::REG_FP,
            off,
            src: Operand::Imm(k),
        } => Op::StoreFpI {
            d: opcode::REG_FP,
            off,
            size: size_u8(size),
            k,
        },
        Insn::Store {
            size,
            dst,
            off,
            src: Operand::Reg(s),
        } => Op::StoreR {
            d: dst,
            s,
            off,
            size: size_u8(size),
        },
        Insn::Store {
            size,
            dst,
            off,
            src: Operand::Imm(k),
        } => Op::StoreI {
            d: dst,
            off,
            size: size_u8(size),
            k,
        },
        Insn::Atomic {
            size,
            op,
            fetch,
            dst,
            src,
            off,
        } => Op::Atomic {
            d: dst,
            s: src,
            off,
            size: size_u8(size),
            op,
            fetch,
        },
        Insn::LoadImm64 {
            kind: Imm64Kind::Imm,
            dst,
            imm,
        } => Op::LdImm64 { d: dst, k: imm },
        Insn::LoadImm64 {
            kind: Imm64Kind::Func,
            dst,
            ..
        } => Op::LdFunc {
            d: dst,
            t: target(insn),
        },
        Insn::LoadImm64 { kind, dst, imm } => Op::LdMapRef {
            d: dst,
            kind,
            k: imm,
        },
        Insn::LoadPacket { size, src, imm } => Op::LdPacket {
            size: size_u8(size),
            s: src,
            k: imm,
        },
        Insn::Ja { .. } => Op::Ja { t: target(insn) },
        Insn::Jump {
            width,
            cond,
            dst,
            src,
            ..
        } => jump(width, cond, dst, src, target(insn)),
        Insn::MayGoto { .. } => Op::MayGoto { t: target(insn) },
        Insn::Call(CallTarget::Helper(id)) => Op::CallHelper { id },
        Insn::Call(CallTarget::Local(_)) => Op::CallLocal { t: target(insn) },
        Insn::Call(CallTarget::Kfunc { btf_id, module }) => Op::CallKfunc { btf_id, module },
        Insn::Call(CallTarget::Reg(r)) => Op::CallReg { r },
        Insn::Exit => Op::Exit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prog(slots: &[RawInsn]) -> Result<Program, LoadError> {
        Program::new(&check(slots)?, Limits::default())
    }

    #[test]
    fn writes_to_r10_are_rejected() {
        let r = prog(&[
            RawInsn::new(0xb7, 10, 0, 0, 1),
            RawInsn::new(0x95, 0, 0, 0, 0),
        ]);
        assert_eq!(r.unwrap_err(), LoadError::WritesFramePointer { pc: 0 });
    }

    #[test]
    fn subprograms_are_split_at_call_targets_and_must_end_in_exit() {
        // mov r0, 1; call +1; (falls into subprogram) exit
        let r = prog(&[
            RawInsn::new(0xb7, 0, 0, 0, 1),
            RawInsn::new(0x85, 0, 1, 0, 0),
            RawInsn::new(0x95, 0, 0, 0, 0),
        ]);
        assert!(matches!(
            r,
            Err(LoadError::SubprogramFallsThrough { pc: 1, start: 0 })
        ));
        let p = prog(&[
            RawInsn::new(0x85, 0, 1, 0, 1),
            RawInsn::new(0x95, 0, 0, 0, 0),
            RawInsn::new(0xb7, 0, 0, 0, 7),
            RawInsn::new(0x95, 0, 0, 0, 0),
        ])
        .unwrap();
        assert_eq!(p.subprograms().len(), 2);
        assert_eq!(p.subprograms()[1].start, 2);
        assert_eq!(p.subprogram_of(3), 1);
    }

    #[test]
    fn jumps_may_not_leave_their_subprogram() {
        let r = prog(&[
            RawInsn::new(0x85, 0, 1, 0, 1),
            RawInsn::new(0x95, 0, 0, 0, 0),
            RawInsn::new(0x05, 0, 0, -3, 0),
        ]);
        assert!(matches!(
            r,
            Err(LoadError::JumpLeavesSubprogram {
                pc: 2,
                target: 0,
                ..
            })
        ));
    }

    #[test]
    fn too_many_instructions_is_an_error() {
        let mut slots = vec![RawInsn::new(0xb7, 0, 0, 0, 0); 10];
        slots.push(RawInsn::new(0x95, 0, 0, 0, 0));
        let r = Program::new(&check(&slots).unwrap(), Limits { max_insns: 10 });
        assert_eq!(
            r.unwrap_err(),
            LoadError::TooManyInstructions { len: 11, max: 10 }
        );
    }
}
