//! Straight-line instructions — ALU, byte swaps, sign extension, 64-bit
//! immediates, jumps, and loads and stores that land in bounds in a plain
//! region — in a loop of their own. The loop makes no calls, so the
//! compiler keeps the pc, the counter and the register file pointer in
//! machine registers. Anything else (calls, exits, atomics, context
//! fields, packet loads, may_goto, a memory access that faults) stops it,
//! and the general loop in `interp.rs` runs that instruction.

use super::effects::{Control, EffectList, EffectSink, StepMarks};
use super::machine::code_address;
use super::memory::{
    ContextView, FrameView, Region, context_load_in, frame_load_in, frame_store_in, load_plain_in,
    store_plain_in,
};
use super::program::{Op, holds64};

#[inline(always)]
pub(crate) fn sext(v: u64, bytes: u8) -> u64 {
    match bytes {
        1 => v as u8 as i8 as i64 as u64,
        2 => v as u16 as i16 as i64 as u64,
        4 => v as u32 as i32 as i64 as u64,
        _ => v,
    }
}

#[inline(always)]
fn div64(a: u64, b: u64) -> u64 {
    a.checked_div(b).unwrap_or(0)
}
#[inline(always)]
fn mod64(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { a % b }
}
#[inline(always)]
fn sdiv64(a: u64, b: u64) -> u64 {
    if b == 0 {
        0
    } else {
        (a as i64).wrapping_div(b as i64) as u64
    }
}
#[inline(always)]
fn smod64(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        (a as i64).wrapping_rem(b as i64) as u64
    }
}
#[inline(always)]
fn div32(a: u64, b: u32) -> u64 {
    (a as u32).checked_div(b).unwrap_or(0) as u64
}
#[inline(always)]
fn mod32(a: u64, b: u32) -> u64 {
    let a = a as u32;
    (if b == 0 { a } else { a % b }) as u64
}
#[inline(always)]
fn sdiv32(a: u64, b: u32) -> u64 {
    if b == 0 {
        0
    } else {
        (a as i32).wrapping_div(b as i32) as u32 as u64
    }
}
#[inline(always)]
fn smod32(a: u64, b: u32) -> u64 {
    if b == 0 {
        a as u32 as u64
    } else {
        (a as i32).wrapping_rem(b as i32) as u32 as u64
    }
}

/// What the straight-line loop works on.
pub(crate) struct Straight<'a> {
    pub regs: &'a mut [u64; 16],
    /// The memory's region table (`Memory::straight_parts`).
    pub regions: &'a mut [Region],
    /// For loads from the context (`context_load_in`).
    pub ctx: ContextView,
    pub ops: &'a [Op],
    /// Index of the program `ops` belong to.
    pub prog: usize,
    /// The run's step count when the counter reaches 0 (a step's count is
    /// `steps_end - left`).
    pub steps_end: u64,
    /// The counters before the next step (`pc` and `steps` are filled in per step).
    pub before: Control,
}

impl Straight<'_> {
    /// The same parts, borrowed again: for a second loop after the first.
    fn reborrow(&mut self) -> Straight<'_> {
        Straight {
            regs: &mut *self.regs,
            regions: &mut *self.regions,
            ops: self.ops,
            ..*self
        }
    }
}

/// Why `run_simple` returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SimpleStop {
    /// The counter reached 0 (from `run_stretches`: it could no longer
    /// cover a whole stretch); no step was begun.
    Counter,
    /// `ops[pc]` is for the general loop; its step is begun (counted, and
    /// marked when marking).
    General,
}

/// Runs straight-line instructions from `*pc` while `*left` (the counter of
/// instructions still allowed) lasts. With `REC`, every change goes to
/// `log` with its old value; with `MARK`, each step's start goes to `marks`.
///
/// With `FRAME`, r10-based accesses go through r10's frame, checked once on
/// entry (`FrameView`): for full speed (`run_full`) only, never with `REC`
/// or `MARK`.
///
/// Out of line, so that the loop gets the machine registers to itself.
#[inline(never)]
pub(crate) fn run_simple<const REC: bool, const MARK: bool, const FRAME: bool, L: EffectSink>(
    straight: Straight<'_>,
    pc_out: &mut usize,
    left_out: &mut u64,
    log: &mut L,
    marks: &mut StepMarks,
) -> SimpleStop {
    run_simple_inline::<REC, MARK, FRAME, L>(straight, pc_out, left_out, log, marks)
}

/// `run_simple` at full speed (nothing recorded or marked). Programs with
/// r10-based accesses (`Program::frame_accesses`) get the loop that checks
/// r10's frame once on entry; the others the loop without it, so they pay
/// nothing for it (not even the registers the view would take).
#[inline(always)]
pub(crate) fn run_full(
    straight: Straight<'_>,
    frame_accesses: bool,
    pc_out: &mut usize,
    left_out: &mut u64,
) -> SimpleStop {
    if frame_accesses {
        run_full_with::<true>(straight, pc_out, left_out)
    } else {
        run_full_with::<false>(straight, pc_out, left_out)
    }
}

/// `run_full` for one kind of program: the uncounted loop
/// (`run_stretches`) while the counter covers a whole stretch, then the
/// counted one for the rest.
#[inline(always)]
fn run_full_with<const FRAME: bool>(
    mut straight: Straight<'_>,
    pc_out: &mut usize,
    left_out: &mut u64,
) -> SimpleStop {
    let (log, marks) = (&mut EffectList::default(), &mut StepMarks::default());
    if *left_out > straight.ops.len() as u64 {
        let stop = run_stretches::<FRAME>(straight.reborrow(), pc_out, left_out);
        if stop == SimpleStop::General {
            return stop;
        }
    }
    run_simple::<false, false, FRAME, EffectList>(straight, pc_out, left_out, log, marks)
}

/// Full speed with the counter kept per stretch instead of per
/// instruction. A stretch is a run of instructions whose pc only grows (it
/// ends at a taken jump), so it visits each slot at most once and runs at
/// most `ops.len()` instructions: entered with more than that left, the
/// counter cannot reach 0 inside one, and needs no check until the jump.
/// The counter is then settled and the next stretch entered only if it
/// still has more than `ops.len()` left; otherwise this returns `Counter`
/// (no step begun) and the counted loop goes on from there. Every stop
/// leaves `pc` and the counter exactly as the counted loop would.
#[inline(never)]
fn run_stretches<const FRAME: bool>(
    straight: Straight<'_>,
    pc_out: &mut usize,
    left_out: &mut u64,
) -> SimpleStop {
    run_loop::<false, false, FRAME, true, EffectList>(
        straight,
        pc_out,
        left_out,
        &mut EffectList::default(),
        &mut StepMarks::default(),
    )
}

/// `run_simple` inlined into its caller: for single steps (`Machine::step`
/// runs one instruction per call), where a call would cost more than the
/// instruction.
#[inline(always)]
pub(crate) fn run_simple_inline<
    const REC: bool,
    const MARK: bool,
    const FRAME: bool,
    L: EffectSink,
>(
    straight: Straight<'_>,
    pc_out: &mut usize,
    left_out: &mut u64,
    log: &mut L,
    marks: &mut StepMarks,
) -> SimpleStop {
    run_loop::<REC, MARK, FRAME, false, L>(straight, pc_out, left_out, log, marks)
}

/// The straight-line loop. With `STRETCH` (`run_stretches`) the counter is
/// kept per stretch, not per instruction.
#[inline(always)]
fn run_loop<
    const REC: bool,
    const MARK: bool,
    const FRAME: bool,
    const STRETCH: bool,
    L: EffectSink,
>(
    straight: Straight<'_>,
    pc_out: &mut usize,
    left_out: &mut u64,
    log: &mut L,
    marks: &mut StepMarks,
) -> SimpleStop {
    let Straight {
        regs,
        regions,
        ctx,
        ops,
        prog,
        steps_end,
        before,
    } = straight;
    let mut pc = *pc_out;
    let mut left = *left_out;
    // Marking: the steps' run of marks, and the steps this call may mark
    // in it; any beyond (`rest`) are left for the next call.
    const { assert!(!MARK || REC, "marking runs record") };
    let (mark_base, rest) = if MARK && left > 0 {
        let (base, allowed) = marks.begin(
            prog,
            log.len(),
            Control {
                pc,
                steps: steps_end - left,
                ..before
            },
        );
        let rest = left.saturating_sub(allowed);
        left -= rest;
        (base, rest)
    } else {
        (0, 0)
    };
    // With `FRAME` (full speed, a program with r10-based accesses), those
    // go through r10's frame, checked here once. Everywhere else they are
    // checked as any other access: recorded and marking runs and single
    // steps, so stepping stays an independent reference, and programs
    // without them, whose loop then has no view to keep in a register.
    const {
        assert!(
            !(FRAME && (REC || MARK)),
            "the frame view is for full speed only"
        )
    };
    let frame = if FRAME {
        FrameView::new(regions, regs[10])
    } else {
        FrameView::NONE
    };
    const {
        assert!(
            !(STRETCH && (REC || MARK)),
            "stretches are for full speed only"
        )
    };
    // With `STRETCH`, `left` is not touched per instruction: the counter
    // before `ops[pc]` is `bias - pc` (wrapping: exact for any counter).
    // A jump taken from slot `j` to `t` ran one instruction and skipped
    // slots, so it sets `bias` to the counter after it plus `t`; an
    // `ld_imm64` is one instruction in two slots, so it adds 1. Everything
    // else moves pc by as many slots as it runs instructions.
    let len = ops.len() as u64;
    let mut bias = left.wrapping_add(pc as u64);

    macro_rules! r {
        ($x:expr) => {
            regs[($x & 15) as usize]
        };
    }
    macro_rules! w {
        ($d:expr, $v:expr) => {{
            let v: u64 = $v;
            let i = ($d & 15) as usize;
            if REC {
                log.push_reg($d, regs[i]);
            }
            regs[i] = v;
        }};
    }
    // The jump in slot `$from` taken to `$t`. With `STRETCH` it ends the
    // stretch: the next one runs uncounted only if the counter still covers
    // it; otherwise `Counter` hands over to the counted loop.
    macro_rules! taken {
        ($from:expr, $t:expr) => {{
            let t = $t as usize;
            if STRETCH {
                let after = bias.wrapping_sub($from as u64 + 1);
                bias = after.wrapping_add(t as u64);
                pc = t;
                if after <= len {
                    break SimpleStop::Counter;
                }
            } else {
                pc = t;
            }
            continue;
        }};
    }
    macro_rules! jump {
        ($cond:expr, $t:expr) => {
            if $cond {
                taken!(pc, $t)
            }
        };
    }
    macro_rules! store {
        ($addr:expr, $size:expr, $v:expr) => {{
            match store_plain_in::<REC>(regions, $addr, $size as usize, $v) {
                Some(undo) => {
                    if REC && let Some(u) = undo {
                        log.push_store(u);
                    }
                }
                None => break SimpleStop::General,
            }
        }};
    }

    macro_rules! load {
        ($d:expr, $addr:expr, $size:expr) => {{
            let addr: u64 = $addr;
            match load_plain_in(regions, addr, $size as usize) {
                Some(v) => w!($d, v),
                // Context fields the program type converts (`xdp_md`'s
                // `data`, `data_end`, ...) stay in the loop too.
                None => match context_load_in(regions, ctx, addr, $size as usize) {
                    Some(v) => w!($d, v),
                    None => break SimpleStop::General,
                },
            }
        }};
    }

    let stop = loop {
        if !STRETCH && left == 0 {
            break SimpleStop::Counter;
        }
        if MARK {
            marks.push(pc, log.len(), mark_base);
        }
        if !STRETCH {
            left -= 1;
        }
        let Some(&op) = ops.get(pc) else {
            break SimpleStop::General;
        };
        match op {
            Op::Add64I { d, k } => w!(d, r!(d).wrapping_add(k)),
            Op::Add64R { d, s } => w!(d, r!(d).wrapping_add(r!(s))),
            Op::Sub64I { d, k } => w!(d, r!(d).wrapping_sub(k)),
            Op::Sub64R { d, s } => w!(d, r!(d).wrapping_sub(r!(s))),
            Op::Mul64I { d, k } => w!(d, r!(d).wrapping_mul(k)),
            Op::Mul64R { d, s } => w!(d, r!(d).wrapping_mul(r!(s))),
            Op::Div64I { d, k } => w!(d, div64(r!(d), k)),
            Op::Div64R { d, s } => w!(d, div64(r!(d), r!(s))),
            Op::SDiv64I { d, k } => w!(d, sdiv64(r!(d), k)),
            Op::SDiv64R { d, s } => w!(d, sdiv64(r!(d), r!(s))),
            Op::Mod64I { d, k } => w!(d, mod64(r!(d), k)),
            Op::Mod64R { d, s } => w!(d, mod64(r!(d), r!(s))),
            Op::SMod64I { d, k } => w!(d, smod64(r!(d), k)),
            Op::SMod64R { d, s } => w!(d, smod64(r!(d), r!(s))),
            Op::Or64I { d, k } => w!(d, r!(d) | k),
            Op::Or64R { d, s } => w!(d, r!(d) | r!(s)),
            Op::And64I { d, k } => w!(d, r!(d) & k),
            Op::And64R { d, s } => w!(d, r!(d) & r!(s)),
            Op::Lsh64I { d, k } => w!(d, r!(d) << (k & 63)),
            Op::Lsh64R { d, s } => w!(d, r!(d) << (r!(s) & 63)),
            Op::Rsh64I { d, k } => w!(d, r!(d) >> (k & 63)),
            Op::Rsh64R { d, s } => w!(d, r!(d) >> (r!(s) & 63)),
            Op::Arsh64I { d, k } => w!(d, ((r!(d) as i64) >> (k & 63)) as u64),
            Op::Arsh64R { d, s } => w!(d, ((r!(d) as i64) >> (r!(s) & 63)) as u64),
            Op::Xor64I { d, k } => w!(d, r!(d) ^ k),
            Op::Xor64R { d, s } => w!(d, r!(d) ^ r!(s)),
            Op::Mov64I { d, k } => w!(d, k),
            Op::Mov64R { d, s } => w!(d, r!(s)),
            Op::Neg64 { d } => w!(d, r!(d).wrapping_neg()),
            Op::MovAdd64 { d, s, k } => {
                // (In a stretch the counter covers both.)
                if REC || (!STRETCH && left == 0) {
                    // One instruction at a time (recorded runs, single
                    // steps, the last step before the counter runs out):
                    // the mov alone; the next slot holds the add.
                    w!(d, r!(s));
                } else {
                    if !STRETCH {
                        left -= 1;
                    }
                    w!(d, r!(s).wrapping_add(k));
                    pc += 2;
                    continue;
                }
            }

            Op::AddJmp64I { d, cond, k, c, t } => {
                let v = r!(d).wrapping_add(k as i64 as u64);
                if REC || MARK || (!STRETCH && left == 0) {
                    // One instruction at a time, as `MovAdd64`: the add
                    // alone; the next slot holds the jump.
                    w!(d, v);
                } else {
                    if !STRETCH {
                        left -= 1;
                    }
                    w!(d, v);
                    if holds64(cond, v, c as i64 as u64) {
                        taken!(pc + 1, t)
                    }
                    pc += 2;
                    continue;
                }
            }

            Op::Add32I { d, k } => w!(d, (r!(d) as u32).wrapping_add(k) as u64),
            Op::Add32R { d, s } => w!(d, (r!(d) as u32).wrapping_add(r!(s) as u32) as u64),
            Op::Sub32I { d, k } => w!(d, (r!(d) as u32).wrapping_sub(k) as u64),
            Op::Sub32R { d, s } => w!(d, (r!(d) as u32).wrapping_sub(r!(s) as u32) as u64),
            Op::Mul32I { d, k } => w!(d, (r!(d) as u32).wrapping_mul(k) as u64),
            Op::Mul32R { d, s } => w!(d, (r!(d) as u32).wrapping_mul(r!(s) as u32) as u64),
            Op::Div32I { d, k } => w!(d, div32(r!(d), k)),
            Op::Div32R { d, s } => w!(d, div32(r!(d), r!(s) as u32)),
            Op::SDiv32I { d, k } => w!(d, sdiv32(r!(d), k)),
            Op::SDiv32R { d, s } => w!(d, sdiv32(r!(d), r!(s) as u32)),
            Op::Mod32I { d, k } => w!(d, mod32(r!(d), k)),
            Op::Mod32R { d, s } => w!(d, mod32(r!(d), r!(s) as u32)),
            Op::SMod32I { d, k } => w!(d, smod32(r!(d), k)),
            Op::SMod32R { d, s } => w!(d, smod32(r!(d), r!(s) as u32)),
            Op::Or32I { d, k } => w!(d, (r!(d) as u32 | k) as u64),
            Op::Or32R { d, s } => w!(d, (r!(d) as u32 | r!(s) as u32) as u64),
            Op::And32I { d, k } => w!(d, (r!(d) as u32 & k) as u64),
            Op::And32R { d, s } => w!(d, (r!(d) as u32 & r!(s) as u32) as u64),
            Op::Lsh32I { d, k } => w!(d, ((r!(d) as u32) << (k & 31)) as u64),
            Op::Lsh32R { d, s } => w!(d, ((r!(d) as u32) << (r!(s) & 31)) as u64),
            Op::Rsh32I { d, k } => w!(d, ((r!(d) as u32) >> (k & 31)) as u64),
            Op::Rsh32R { d, s } => w!(d, ((r!(d) as u32) >> (r!(s) & 31)) as u64),
            Op::Arsh32I { d, k } => w!(d, ((r!(d) as i32) >> (k & 31)) as u32 as u64),
            Op::Arsh32R { d, s } => w!(d, ((r!(d) as i32) >> (r!(s) & 31)) as u32 as u64),
            Op::Xor32I { d, k } => w!(d, (r!(d) as u32 ^ k) as u64),
            Op::Xor32R { d, s } => w!(d, (r!(d) as u32 ^ r!(s) as u32) as u64),
            Op::Mov32I { d, k } => w!(d, k as u64),
            Op::Mov32R { d, s } => w!(d, r!(s) as u32 as u64),
            Op::Neg32 { d } => w!(d, (r!(d) as u32).wrapping_neg() as u64),

            Op::MovSx64 { d, s, bits } => w!(d, sext(r!(s), bits / 8)),
            Op::MovSx32 { d, s, bits } => w!(d, sext(r!(s), bits / 8) as u32 as u64),
            Op::Le { d, bits } => w!(
                d,
                match bits {
                    16 => r!(d) as u16 as u64,
                    32 => r!(d) as u32 as u64,
                    _ => r!(d),
                }
            ),
            Op::Be { d, bits } | Op::Swap { d, bits } => w!(
                d,
                match bits {
                    16 => (r!(d) as u16).swap_bytes() as u64,
                    32 => (r!(d) as u32).swap_bytes() as u64,
                    _ => r!(d).swap_bytes(),
                }
            ),

            // r10-based accesses through the frame view (`FRAME` only): a
            // miss (r10 elsewhere, an offset out of the frame) goes to the
            // general loop, which checks it as `Load`/`StoreR`/`StoreI` and
            // reports any fault.
            Op::LoadFp { d, off, size, .. } if FRAME => {
                match frame_load_in(regions, frame, r!(10), off, size as usize) {
                    Some(v) => w!(d, v),
                    None => break SimpleStop::General,
                }
            }
            Op::StoreFpR { s, off, size, .. } if FRAME => {
                if !frame_store_in(regions, frame, r!(10), off, size as usize, r!(s)) {
                    break SimpleStop::General;
                }
            }
            Op::StoreFpI { off, size, k, .. } if FRAME => {
                if !frame_store_in(regions, frame, r!(10), off, size as usize, k as i64 as u64) {
                    break SimpleStop::General;
                }
            }
            Op::Load { d, s, off, size } => load!(d, r!(s).wrapping_add(off as i64 as u64), size),
            // Recorded and marking runs (single steps among them) take
            // r10-based accesses as the plain ones. A full-speed loop without
            // `FRAME` meets none (its program has none,
            // `Program::frame_accesses`) and leaves them to the last arm, so
            // that its code is the same as if they did not exist.
            Op::LoadFp { d, s, off, size } if REC || MARK => {
                load!(d, r!(s).wrapping_add(off as i64 as u64), size)
            }
            Op::StoreFpR { d, s, off, size } if REC || MARK => {
                store!(r!(d).wrapping_add(off as i64 as u64), size, r!(s))
            }
            Op::StoreFpI { d, off, size, k } if REC || MARK => {
                store!(r!(d).wrapping_add(off as i64 as u64), size, k as i64 as u64)
            }
            Op::LoadSx { d, s, off, size } => {
                match load_plain_in(
                    regions,
                    r!(s).wrapping_add(off as i64 as u64),
                    size as usize,
                ) {
                    Some(v) => w!(d, sext(v, size)),
                    None => break SimpleStop::General,
                }
            }
            Op::StoreR { d, s, off, size } => {
                store!(r!(d).wrapping_add(off as i64 as u64), size, r!(s))
            }
            Op::StoreI { d, off, size, k } => {
                store!(r!(d).wrapping_add(off as i64 as u64), size, k as i64 as u64)
            }
            Op::LdImm64 { d, k } => {
                w!(d, k);
                if STRETCH {
                    bias = bias.wrapping_add(1);
                }
                pc += 2;
                continue;
            }
            Op::LdFunc { d, t } => {
                w!(d, code_address(prog, t as usize));
                if STRETCH {
                    bias = bias.wrapping_add(1);
                }
                pc += 2;
                continue;
            }

            Op::Ja { t } => taken!(pc, t),
            Op::Jeq64I { d, k, t } => jump!(r!(d) == k, t),
            Op::Jeq64R { d, s, t } => jump!(r!(d) == r!(s), t),
            Op::Jne64I { d, k, t } => jump!(r!(d) != k, t),
            Op::Jne64R { d, s, t } => jump!(r!(d) != r!(s), t),
            Op::Jgt64I { d, k, t } => jump!(r!(d) > k, t),
            Op::Jgt64R { d, s, t } => jump!(r!(d) > r!(s), t),
            Op::Jge64I { d, k, t } => jump!(r!(d) >= k, t),
            Op::Jge64R { d, s, t } => jump!(r!(d) >= r!(s), t),
            Op::Jlt64I { d, k, t } => jump!(r!(d) < k, t),
            Op::Jlt64R { d, s, t } => jump!(r!(d) < r!(s), t),
            Op::Jle64I { d, k, t } => jump!(r!(d) <= k, t),
            Op::Jle64R { d, s, t } => jump!(r!(d) <= r!(s), t),
            Op::Jset64I { d, k, t } => jump!(r!(d) & k != 0, t),
            Op::Jset64R { d, s, t } => jump!(r!(d) & r!(s) != 0, t),
            Op::Jsgt64I { d, k, t } => jump!((r!(d) as i64) > k as i64, t),
            Op::Jsgt64R { d, s, t } => jump!((r!(d) as i64) > r!(s) as i64, t),
            Op::Jsge64I { d, k, t } => jump!((r!(d) as i64) >= k as i64, t),
            Op::Jsge64R { d, s, t } => jump!((r!(d) as i64) >= r!(s) as i64, t),
            Op::Jslt64I { d, k, t } => jump!((r!(d) as i64) < k as i64, t),
            Op::Jslt64R { d, s, t } => jump!((r!(d) as i64) < (r!(s) as i64), t),
            Op::Jsle64I { d, k, t } => jump!((r!(d) as i64) <= k as i64, t),
            Op::Jsle64R { d, s, t } => jump!((r!(d) as i64) <= r!(s) as i64, t),
            Op::Jeq32I { d, k, t } => jump!(r!(d) as u32 == k, t),
            Op::Jeq32R { d, s, t } => jump!(r!(d) as u32 == r!(s) as u32, t),
            Op::Jne32I { d, k, t } => jump!(r!(d) as u32 != k, t),
            Op::Jne32R { d, s, t } => jump!(r!(d) as u32 != r!(s) as u32, t),
            Op::Jgt32I { d, k, t } => jump!(r!(d) as u32 > k, t),
            Op::Jgt32R { d, s, t } => jump!(r!(d) as u32 > r!(s) as u32, t),
            Op::Jge32I { d, k, t } => jump!(r!(d) as u32 >= k, t),
            Op::Jge32R { d, s, t } => jump!(r!(d) as u32 >= r!(s) as u32, t),
            Op::Jlt32I { d, k, t } => jump!((r!(d) as u32) < k, t),
            Op::Jlt32R { d, s, t } => jump!((r!(d) as u32) < r!(s) as u32, t),
            Op::Jle32I { d, k, t } => jump!(r!(d) as u32 <= k, t),
            Op::Jle32R { d, s, t } => jump!(r!(d) as u32 <= r!(s) as u32, t),
            Op::Jset32I { d, k, t } => jump!(r!(d) as u32 & k != 0, t),
            Op::Jset32R { d, s, t } => jump!(r!(d) as u32 & r!(s) as u32 != 0, t),
            Op::Jsgt32I { d, k, t } => jump!(r!(d) as i32 > k as i32, t),
            Op::Jsgt32R { d, s, t } => jump!(r!(d) as i32 > r!(s) as i32, t),
            Op::Jsge32I { d, k, t } => jump!(r!(d) as i32 >= k as i32, t),
            Op::Jsge32R { d, s, t } => jump!(r!(d) as i32 >= r!(s) as i32, t),
            Op::Jslt32I { d, k, t } => jump!((r!(d) as i32) < k as i32, t),
            Op::Jslt32R { d, s, t } => jump!((r!(d) as i32) < r!(s) as i32, t),
            Op::Jsle32I { d, k, t } => jump!(r!(d) as i32 <= k as i32, t),
            Op::Jsle32R { d, s, t } => jump!(r!(d) as i32 <= r!(s) as i32, t),
            _ => break SimpleStop::General,
        }
        pc += 1;
    };
    if STRETCH {
        // A `General` stop has begun its step, as the counted loop does.
        left = bias
            .wrapping_sub(pc as u64)
            .wrapping_sub((stop == SimpleStop::General) as u64);
    }
    *pc_out = pc;
    *left_out = left + rest;
    stop
}
