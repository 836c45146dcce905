//! The interpreter loop: one `match` over the pre-decoded `Op`s. Simple
//! operations are inline; calls, exits, atomics and helper traffic go to
//! out-of-line functions. `REC` selects step mode (every change pushed to
//! the effect list with its old value) or full speed (no recording; the
//! `if REC` branches compile away).

use std::sync::Arc;

use bpfrr_trace::isa::AtomicOp;
use bpfrr_trace::isa::opcode::MAX_CALL_FRAMES;

use super::effects::{CallRecord, Control, Effect, EffectList, StepLog, StepMark};
use super::env::{Callee, Env, HelperCall, HelperOutcome};
use super::fault::{Fault, FaultKind};
use super::machine::{
    Config, Frame, Machine, MachineState, PendingCall, RunStop, Status, code_address,
    decode_code_address,
};
use super::memory::{address, ids};
use super::program::{Op, Program};

/// What a slow-path instruction decided.
enum Next {
    /// Continue in the same program at this slot.
    Goto(usize),
    /// The top frame's program changed (tail call, or returning into another program).
    Switch,
    /// The program finished with this r0.
    Exit(u64),
}

#[inline(always)]
fn sext(v: u64, bytes: u8) -> u64 {
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

impl Machine {
    /// Runs up to `limit` instructions. Faults get their source line here.
    pub(crate) fn exec<const REC: bool, E: Env + ?Sized>(
        &mut self,
        env: &mut E,
        limit: u64,
        log: &mut EffectList,
    ) -> Result<RunStop, Fault> {
        let r = self.exec_inner::<REC, false, E>(env, limit, log, &mut Vec::new());
        r.map_err(|f| self.annotate(f))
    }

    /// Runs up to `limit` instructions recording, with each step's start
    /// marked in `log` (see `StepLog`).
    pub(crate) fn exec_logged<E: Env + ?Sized>(
        &mut self,
        env: &mut E,
        limit: u64,
        log: &mut StepLog,
    ) -> Result<RunStop, Fault> {
        let r = self.exec_inner::<true, true, E>(env, limit, &mut log.effects, &mut log.marks);
        r.map_err(|f| self.annotate(f))
    }

    /// `REC`: record every change in `log`. `MARK` (with `REC`): also push
    /// a `StepMark` to `marks` before each instruction.
    fn exec_inner<const REC: bool, const MARK: bool, E: Env + ?Sized>(
        &mut self,
        env: &mut E,
        limit: u64,
        log: &mut EffectList,
        marks: &mut Vec<StepMark>,
    ) -> Result<RunStop, Fault> {
        let Machine {
            programs,
            state: st,
            config,
            depths_known,
        } = self;
        let programs: &[Arc<Program>] = programs;
        let config: &Config = config;
        // One counter for both limits: instructions left before pausing (limit)
        // or faulting (step budget). `st.steps` is brought up to date on the way out.
        let budget_left = config.step_budget.saturating_sub(st.steps);
        let pause = limit < budget_left;
        let mut left = limit.min(budget_left);
        let start_steps = st.steps;
        let total = left;
        'program: loop {
            let prog = st.frames.last().map_or(0, |f| f.prog);
            let program: &Program = &programs[prog];
            let ops: &[Op] = &program.ops;
            let mut pc = st.pc;

            macro_rules! r {
                ($x:expr) => {
                    st.regs[($x & 15) as usize]
                };
            }
            macro_rules! w {
                ($d:expr, $v:expr) => {{
                    let v: u64 = $v;
                    let i = ($d & 15) as usize;
                    if REC {
                        log.push(Effect::Reg {
                            reg: $d,
                            old: st.regs[i],
                        });
                    }
                    st.regs[i] = v;
                }};
            }
            macro_rules! fault {
                ($k:expr) => {{
                    st.pc = pc;
                    st.steps = start_steps + (total - left);
                    return Err(Fault::new($k, prog, pc));
                }};
            }
            macro_rules! mem {
                ($e:expr) => {
                    match $e {
                        Ok(v) => v,
                        Err(k) => fault!(k),
                    }
                };
            }
            macro_rules! store {
                ($addr:expr, $size:expr, $v:expr) => {{
                    let undo = mem!(st.mem.store::<REC>($addr, $size as usize, $v));
                    if REC && let Some(u) = undo {
                        log.push(Effect::Store(u));
                    }
                }};
            }
            macro_rules! jump {
                ($cond:expr, $t:expr) => {
                    if $cond {
                        pc = $t as usize;
                        continue;
                    }
                };
            }
            macro_rules! slow {
                ($e:expr) => {{
                    st.pc = pc;
                    st.steps = start_steps + (total - left);
                    match $e {
                        Ok(Next::Goto(t)) => {
                            pc = t;
                            continue;
                        }
                        Ok(Next::Switch) => continue 'program,
                        Ok(Next::Exit(r0)) => {
                            st.status = Status::Exited(r0);
                            return Ok(RunStop::Exited(r0));
                        }
                        Err(f) => return Err(f),
                    }
                }};
            }

            loop {
                if left == 0 {
                    if pause {
                        st.pc = pc;
                        st.steps = start_steps + total;
                        return Ok(RunStop::Paused);
                    }
                    fault!(FaultKind::StepBudget {
                        steps: config.step_budget
                    });
                }
                if MARK {
                    marks.push(StepMark {
                        prog,
                        first_effect: log.len(),
                        before: Control {
                            pc,
                            steps: start_steps + (total - left),
                            may_goto_left: st.may_goto_left,
                            tail_calls: st.tail_calls,
                            status: st.status,
                        },
                    });
                }
                left -= 1;
                let Some(&op) = ops.get(pc) else {
                    fault!(FaultKind::BadCallTarget { target: pc as u64 });
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

                    Op::Load { d, s, off, size } => {
                        let v = mem!(
                            st.mem
                                .load(r!(s).wrapping_add(off as i64 as u64), size as usize)
                        );
                        w!(d, v)
                    }
                    Op::LoadSx { d, s, off, size } => {
                        let v = mem!(
                            st.mem
                                .load(r!(s).wrapping_add(off as i64 as u64), size as usize)
                        );
                        w!(d, sext(v, size))
                    }
                    Op::StoreR { d, s, off, size } => {
                        store!(r!(d).wrapping_add(off as i64 as u64), size, r!(s))
                    }
                    Op::StoreI { d, off, size, k } => {
                        store!(r!(d).wrapping_add(off as i64 as u64), size, k as i64 as u64)
                    }
                    Op::Atomic {
                        d,
                        s,
                        off,
                        size,
                        op,
                        fetch,
                    } => {
                        let addr = r!(d).wrapping_add(off as i64 as u64);
                        let size = size as usize;
                        let mask = if size == 8 {
                            u64::MAX
                        } else {
                            (1u64 << (8 * size)) - 1
                        };
                        match op {
                            AtomicOp::LoadAcquire => {
                                // `dst = *(src + off)`: the address is in src here.
                                let v =
                                    mem!(st.mem.load(r!(s).wrapping_add(off as i64 as u64), size));
                                w!(d, v)
                            }
                            AtomicOp::StoreRelease => store!(addr, size, r!(s)),
                            _ => {
                                let old = mem!(st.mem.load(addr, size));
                                let src = r!(s) & mask;
                                let new = match op {
                                    AtomicOp::Add => old.wrapping_add(src) & mask,
                                    AtomicOp::Or => old | src,
                                    AtomicOp::And => old & src,
                                    AtomicOp::Xor => old ^ src,
                                    AtomicOp::Xchg => src,
                                    _ => {
                                        // Cmpxchg: compare with r0, store only when equal.
                                        if old == r!(0) & mask { src } else { old }
                                    }
                                };
                                if new != old || op != AtomicOp::Cmpxchg {
                                    store!(addr, size, new);
                                }
                                if op == AtomicOp::Cmpxchg {
                                    w!(0, old);
                                } else if fetch {
                                    w!(s, old);
                                }
                            }
                        }
                    }
                    Op::LdImm64 { d, k } => {
                        w!(d, k);
                        pc += 2;
                        continue;
                    }
                    Op::LdFunc { d, t } => {
                        w!(d, code_address(prog, t as usize));
                        pc += 2;
                        continue;
                    }
                    Op::LdMapRef { d, kind, k } => {
                        let args = [r!(1), r!(2), r!(3), r!(4), r!(5)];
                        let mut call = HelperCall {
                            args,
                            prog,
                            pc,
                            tail_calls: st.tail_calls,
                            mem: &mut st.mem,
                            log: if REC { Some(&mut *log) } else { None },
                        };
                        let v = match env.resolve_imm64(kind, k, &mut call) {
                            Ok(v) => v,
                            Err(f) => {
                                st.pc = pc;
                                st.steps = start_steps + (total - left);
                                return Err(f);
                            }
                        };
                        w!(d, v);
                        pc += 2;
                        continue;
                    }
                    Op::LdPacket { size, s, k } => {
                        let off = match s {
                            Some(s) => (r!(s) as i32).wrapping_add(k),
                            None => k,
                        };
                        match packet_load(&st.mem, off, size) {
                            Some(v) => w!(0, v),
                            None => {
                                // The kernel ends the program with r0 = 0.
                                w!(0, 0);
                                st.pc = pc;
                                st.steps = start_steps + (total - left);
                                st.status = Status::Exited(0);
                                return Ok(RunStop::Exited(0));
                            }
                        }
                    }

                    Op::Ja { t } => {
                        pc = t as usize;
                        continue;
                    }
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
                    Op::MayGoto { t } => {
                        if st.may_goto_left == 0 {
                            pc = t as usize;
                            continue;
                        }
                        st.may_goto_left -= 1;
                    }

                    Op::CallHelper { id } => slow!(call_env::<REC, E>(
                        st,
                        programs,
                        config,
                        env,
                        log,
                        prog,
                        pc,
                        Callee::Helper(id)
                    )),
                    Op::CallKfunc { btf_id, module } => slow!(call_env::<REC, E>(
                        st,
                        programs,
                        config,
                        env,
                        log,
                        prog,
                        pc,
                        Callee::Kfunc { btf_id, module }
                    )),
                    Op::CallLocal { t } => slow!(
                        push_frame::<REC>(
                            st,
                            program,
                            config,
                            *depths_known,
                            log,
                            prog,
                            t as usize,
                            pc + 1,
                            None
                        )
                        .map(|()| Next::Goto(t as usize))
                        .map_err(|k| Fault::new(k, prog, pc))
                    ),
                    Op::CallReg { r } => {
                        let target = r!(r);
                        match decode_code_address(target) {
                            Some((p, t)) if p == prog && program.is_subprogram_start(t) => slow!(
                                push_frame::<REC>(
                                    st,
                                    program,
                                    config,
                                    *depths_known,
                                    log,
                                    prog,
                                    t,
                                    pc + 1,
                                    None
                                )
                                .map(|()| Next::Goto(t))
                                .map_err(|k| Fault::new(k, prog, pc))
                            ),
                            Some(_) => fault!(FaultKind::BadCallTarget { target }),
                            // Not a code address: bpf_conformance and uBPF call the helper with that id.
                            None if target <= i32::MAX as u64 => slow!(call_env::<REC, E>(
                                st,
                                programs,
                                config,
                                env,
                                log,
                                prog,
                                pc,
                                Callee::Helper(target as i32)
                            )),
                            None => fault!(FaultKind::BadCallTarget { target }),
                        }
                    }
                    Op::Exit => slow!(exit::<REC, E>(st, programs, config, env, log, prog, pc)),
                    Op::Hole => fault!(FaultKind::BadCallTarget { target: pc as u64 }),
                }
                pc += 1;
            }
        }
    }
}

/// `LD_ABS`/`LD_IND`: a big-endian load from the packet data; None when out of bounds.
fn packet_load(mem: &super::memory::Memory, off: i32, size: u8) -> Option<u64> {
    let data = mem.packet_data()?;
    if off < 0 {
        return None;
    }
    let b = data.get(off as usize..off as usize + size as usize)?;
    Some(match size {
        1 => b[0] as u64,
        2 => u16::from_be_bytes([b[0], b[1]]) as u64,
        _ => u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as u64,
    })
}

/// Pushes a frame for a call to slot `target` of the current program.
#[allow(clippy::too_many_arguments)]
fn push_frame<const REC: bool>(
    st: &mut MachineState,
    program: &Program,
    config: &Config,
    depths_known: bool,
    log: &mut EffectList,
    prog: usize,
    target: usize,
    return_pc: usize,
    callback: Option<PendingCall>,
) -> Result<(), FaultKind> {
    let depth = st.frames.len();
    if depth >= MAX_CALL_FRAMES {
        return Err(FaultKind::CallDepth { frames: depth + 1 });
    }
    let subprog = program.subprogram_of(target);
    let stack_size = program.subprograms()[subprog].stack_depth;
    if depths_known {
        let needed: u32 = st.frames.iter().map(|f| f.stack_size).sum::<u32>() + stack_size;
        if needed > config.stack_limit {
            return Err(FaultKind::StackLimit {
                needed,
                limit: config.stack_limit,
            });
        }
    }
    let region = ids::STACK0 + depth as u32;
    if REC {
        let old = st.mem.region(region).cloned();
        if let Some(old) = old {
            log.push(Effect::FramePushed {
                old_stack: Box::new(old),
            });
        }
    }
    st.mem.set_fixed_zeroed(region, stack_size as usize, true);
    st.frames.push(Frame {
        prog,
        subprog,
        return_pc,
        saved: [st.regs[6], st.regs[7], st.regs[8], st.regs[9]],
        stack_size,
        callback,
    });
    let top = address(region, stack_size as u64);
    if REC {
        log.push(Effect::Reg {
            reg: 10,
            old: st.regs[10],
        });
    }
    st.regs[10] = top;
    Ok(())
}

#[inline(always)]
fn set_reg<const REC: bool>(st: &mut MachineState, log: &mut EffectList, r: u8, v: u64) {
    if REC {
        log.push(Effect::Reg {
            reg: r,
            old: st.regs[r as usize],
        });
    }
    st.regs[r as usize] = v;
}

/// A helper or kfunc call at `pc`.
#[allow(clippy::too_many_arguments)]
#[inline(never)]
fn call_env<const REC: bool, E: Env + ?Sized>(
    st: &mut MachineState,
    programs: &[Arc<Program>],
    config: &Config,
    env: &mut E,
    log: &mut EffectList,
    prog: usize,
    pc: usize,
    callee: Callee,
) -> Result<Next, Fault> {
    let args = [st.regs[1], st.regs[2], st.regs[3], st.regs[4], st.regs[5]];
    let outcome = {
        let mut call = HelperCall {
            args,
            prog,
            pc,
            tail_calls: st.tail_calls,
            mem: &mut st.mem,
            log: if REC { Some(&mut *log) } else { None },
        };
        match callee {
            Callee::Helper(id) => env.call_helper(id, &mut call)?,
            Callee::Kfunc { btf_id, module } => env.call_kfunc(btf_id, module, &mut call)?,
        }
    };
    if REC {
        log.push(Effect::Called(Box::new(CallRecord {
            callee,
            args,
            callback_r0: None,
            outcome: outcome.clone(),
        })));
    }
    apply_outcome::<REC>(st, programs, config, log, prog, pc, callee, args, outcome)
}

/// Carries out what a helper answered.
#[allow(clippy::too_many_arguments)]
fn apply_outcome<const REC: bool>(
    st: &mut MachineState,
    programs: &[Arc<Program>],
    config: &Config,
    log: &mut EffectList,
    prog: usize,
    pc: usize,
    callee: Callee,
    args: [u64; 5],
    outcome: HelperOutcome,
) -> Result<Next, Fault> {
    match outcome {
        HelperOutcome::Return(v) => {
            set_reg::<REC>(st, log, 0, v);
            Ok(Next::Goto(pc + 1))
        }
        HelperOutcome::KeepR0 => Ok(Next::Goto(pc + 1)),
        HelperOutcome::Exit(v) => {
            set_reg::<REC>(st, log, 0, v);
            Ok(Next::Exit(v))
        }
        HelperOutcome::TailCall(target) => {
            if st.tail_calls >= config.max_tail_calls {
                return Ok(Next::Goto(pc + 1));
            }
            let Some(new) = programs.get(target) else {
                return Err(Fault::new(
                    FaultKind::BadTailCall { prog: target },
                    prog,
                    pc,
                ));
            };
            st.tail_calls += 1;
            let depth = st.frames.len() - 1;
            let region = ids::STACK0 + depth as u32;
            let old_frame = st.frames[depth];
            let stack_size = new.subprograms()[0].stack_depth;
            if REC && let Some(old_stack) = st.mem.region(region).cloned() {
                log.push(Effect::FrameReplaced {
                    old: Box::new(old_frame),
                    old_stack: Box::new(old_stack),
                });
            }
            // The kernel reuses the frame: same stack, registers as they are.
            if stack_size != old_frame.stack_size {
                st.mem.set_fixed_zeroed(region, stack_size as usize, true);
                set_reg::<REC>(st, log, 10, address(region, stack_size as u64));
            }
            let f = &mut st.frames[depth];
            f.prog = target;
            f.subprog = 0;
            f.stack_size = stack_size;
            st.pc = 0;
            Ok(Next::Switch)
        }
        HelperOutcome::Callback {
            target,
            args: cb_args,
            state,
        } => {
            let program = &programs[prog];
            let t = match decode_code_address(target) {
                Some((p, t)) if p == prog && program.is_subprogram_start(t) => t,
                _ => return Err(Fault::new(FaultKind::BadCallTarget { target }, prog, pc)),
            };
            let pending = PendingCall {
                callee,
                call_pc: pc,
                args,
                state,
            };
            push_frame::<REC>(st, program, config, false, log, prog, t, pc, Some(pending))
                .map_err(|k| Fault::new(k, prog, pc))?;
            for (i, v) in cb_args.iter().enumerate() {
                set_reg::<REC>(st, log, i as u8 + 1, *v);
            }
            Ok(Next::Goto(t))
        }
    }
}

/// `exit`: return to the caller, resume a helper waiting on a callback, or finish.
#[inline(never)]
fn exit<const REC: bool, E: Env + ?Sized>(
    st: &mut MachineState,
    programs: &[Arc<Program>],
    config: &Config,
    env: &mut E,
    log: &mut EffectList,
    prog: usize,
    pc: usize,
) -> Result<Next, Fault> {
    if st.frames.len() <= 1 {
        return Ok(Next::Exit(st.regs[0]));
    }
    let depth = st.frames.len() - 1;
    let frame = st.frames[depth];
    let region = ids::STACK0 + depth as u32;
    if REC && let Some(stack) = st.mem.region(region).cloned() {
        log.push(Effect::FramePopped {
            frame: Box::new(frame),
            stack: Box::new(stack),
        });
    }
    st.frames.pop();
    for i in 0..4 {
        set_reg::<REC>(st, log, 6 + i as u8, frame.saved[i]);
    }
    let caller = st.frames[depth - 1];
    set_reg::<REC>(
        st,
        log,
        10,
        address(ids::STACK0 + depth as u32 - 1, caller.stack_size as u64),
    );
    let _ = pc;
    match frame.callback {
        None => {
            if caller.prog != prog {
                st.pc = frame.return_pc;
                Ok(Next::Switch)
            } else {
                Ok(Next::Goto(frame.return_pc))
            }
        }
        Some(p) => {
            // The callback returned: give its r0 to the helper that asked for it.
            let r0 = st.regs[0];
            let caller_prog = caller.prog;
            let outcome = {
                let mut call = HelperCall {
                    args: p.args,
                    prog: caller_prog,
                    pc: p.call_pc,
                    tail_calls: st.tail_calls,
                    mem: &mut st.mem,
                    log: if REC { Some(&mut *log) } else { None },
                };
                env.resume(p.callee, p.state, r0, &mut call)?
            };
            if REC {
                log.push(Effect::Called(Box::new(CallRecord {
                    callee: p.callee,
                    args: p.args,
                    callback_r0: Some(r0),
                    outcome: outcome.clone(),
                })));
            }
            let next = apply_outcome::<REC>(
                st,
                programs,
                config,
                log,
                caller_prog,
                p.call_pc,
                p.callee,
                p.args,
                outcome,
            )?;
            if caller_prog != prog {
                if let Next::Goto(t) = next {
                    st.pc = t;
                }
                return Ok(if matches!(next, Next::Exit(_)) {
                    next
                } else {
                    Next::Switch
                });
            }
            Ok(next)
        }
    }
}
