//! The interpreter loop: one `match` over the pre-decoded `Op`s. Simple
//! operations are inline; calls, exits, atomics and helper traffic go to
//! out-of-line functions. `REC` selects step mode (every change pushed to
//! the effect list with its old value) or full speed (no recording; the
//! `if REC` branches compile away).

use std::sync::Arc;

use bpfrr_trace::isa::AtomicOp;
use bpfrr_trace::isa::opcode::MAX_CALL_FRAMES;

use super::effects::{
    CallRecord, Control, Effect, EffectList, EffectSink, LogEffects, StepLog, StepMarks,
};
use super::env::{Callee, Env, HelperCall, HelperOutcome};
use super::fault::{Fault, FaultKind};
use super::machine::{
    Config, Frame, Machine, MachineState, PendingCall, RunStop, Status, decode_code_address,
};
use super::memory::{address, ids};
use super::program::{Op, Program};
use super::simple::{SimpleStop, Straight, run_full, run_simple, run_simple_inline, sext};

/// What a slow-path instruction decided.
enum Next {
    /// Continue in the same program at this slot.
    Goto(usize),
    /// The top frame's program changed (tail call, or returning into another program).
    Switch,
    /// The program finished with this r0.
    Exit(u64),
}

impl Machine {
    /// Runs up to `limit` instructions. Faults get their source line here.
    pub(crate) fn exec<const REC: bool, E: Env + ?Sized>(
        &mut self,
        env: &mut E,
        limit: u64,
        log: &mut EffectList,
    ) -> Result<RunStop, Fault> {
        let r = self.exec_inner::<REC, false, E, EffectList>(
            env,
            limit,
            log,
            &mut EffectList::default(),
            &mut StepMarks::default(),
        );
        r.map_err(|f| self.annotate(f))
    }

    /// Full speed (`exec::<false>`), with a shortcut for short runs: the
    /// straight-line loop runs first, and when it stops at the entry
    /// frame's `exit` the run ends here, without entering the general
    /// interpreter (whose set-up and exit cost as much as a few dozen
    /// instructions). Anything else the general loop takes over, from the
    /// instruction the straight-line loop stopped at, with the counters as
    /// they would be had it run from the start.
    pub(crate) fn exec_full<E: Env + ?Sized>(
        &mut self,
        env: &mut E,
        limit: u64,
    ) -> Result<RunStop, Fault> {
        let st = &mut self.state;
        let (ran, pc) = match st.frames.as_slice() {
            [entry] if st.status == Status::Running => {
                let prog = entry.prog;
                let Some(program) = self.programs.get(prog) else {
                    return self.exec::<false, E>(env, limit, &mut EffectList::default());
                };
                let total = limit.min(self.config.step_budget.saturating_sub(st.steps));
                let (mut pc, mut left) = (st.pc, total);
                let (regions, ctx) = st.mem.straight_parts(program.stores_in_line);
                let straight = Straight {
                    regs: &mut st.regs,
                    regions,
                    ctx,
                    ops: &program.ops,
                    prog,
                    steps_end: st.steps + total,
                    // Only marking runs read `before`.
                    before: Control {
                        pc,
                        steps: 0,
                        may_goto_left: 0,
                        tail_calls: 0,
                        status: Status::Running,
                    },
                };
                let stop = run_full(straight, program.frame_accesses, &mut pc, &mut left);
                if stop == SimpleStop::General && matches!(program.ops.get(pc), Some(Op::Exit)) {
                    // The entry frame returns: the general loop's `exit`
                    // would do exactly this.
                    let r0 = st.regs[0];
                    st.pc = pc;
                    st.steps += total - left;
                    st.status = Status::Exited(r0);
                    return Ok(RunStop::Exited(r0));
                }
                // The general loop runs the instruction the straight-line
                // loop stopped at (begun there, so not counted yet).
                let ran = match stop {
                    SimpleStop::General => total - left - 1,
                    SimpleStop::Counter => total - left,
                };
                (ran, pc)
            }
            _ => return self.exec::<false, E>(env, limit, &mut EffectList::default()),
        };
        st.pc = pc;
        st.steps += ran;
        self.exec::<false, E>(env, limit - ran, &mut EffectList::default())
    }

    /// Runs up to `limit` instructions recording, with each step's start
    /// marked in `log` (see `StepLog`).
    pub(crate) fn exec_logged<E: Env + ?Sized>(
        &mut self,
        env: &mut E,
        limit: u64,
        log: &mut StepLog,
    ) -> Result<RunStop, Fault> {
        // General-path instructions record into `scratch` (helpers write
        // through `HelperCall` into an `EffectList`); it is moved into the
        // log before the next step begins and when the run stops.
        let mut scratch = EffectList::default();
        let r = self.exec_inner::<true, true, E, LogEffects>(
            env,
            limit,
            &mut scratch,
            &mut log.effects,
            &mut log.marks,
        );
        scratch.move_into(&mut log.effects);
        r.map_err(|f| self.annotate(f))
    }

    /// `REC`: record every change in `log`. `MARK` (with `REC`): also push
    /// a `StepMark` to `marks` before each instruction; then straight-line
    /// instructions record into `marked` and the general ones into `log`,
    /// which is moved into `marked` before each new step.
    fn exec_inner<const REC: bool, const MARK: bool, E: Env + ?Sized, L: EffectSink>(
        &mut self,
        env: &mut E,
        limit: u64,
        log: &mut EffectList,
        marked: &mut L,
        marks: &mut StepMarks,
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
            // A load; one that hits no region may be a read of kernel
            // memory through a BTF pointer whose value the environment
            // recorded (`recorded_load`), else it faults.
            macro_rules! load {
                ($addr:expr, $size:expr) => {{
                    let addr: u64 = $addr;
                    match st.mem.load(addr, $size as usize) {
                        Ok(v) => v,
                        Err(k) => {
                            match recorded_load::<REC, E>(st, env, log, prog, pc, addr, $size, k) {
                                Ok(v) => v,
                                Err(f) => {
                                    st.pc = pc;
                                    st.steps = start_steps + (total - left);
                                    return Err(f);
                                }
                            }
                        }
                    }
                }};
            }
            macro_rules! store {
                ($addr:expr, $size:expr, $v:expr) => {{
                    let undo = mem!(st.mem.store::<REC>($addr, $size as usize, $v));
                    if REC && let Some(u) = undo {
                        log.push(Effect::Store(u));
                    }
                }};
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
                // Straight-line instructions run in `run_simple`; it stops at
                // the first one it does not take, with that step begun.
                let before = Control {
                    pc,
                    steps: 0,
                    may_goto_left: st.may_goto_left,
                    tail_calls: st.tail_calls,
                    status: st.status,
                };
                let (regions, ctx) = st.mem.straight_parts(program.stores_in_line);
                let straight = Straight {
                    regs: &mut st.regs,
                    regions,
                    ctx,
                    ops,
                    prog,
                    steps_end: start_steps + total,
                    before,
                };
                let stop = if MARK {
                    log.move_into(marked);
                    run_simple::<REC, MARK, false, L>(straight, &mut pc, &mut left, marked, marks)
                } else if REC {
                    run_simple_inline::<REC, MARK, false, _>(
                        straight, &mut pc, &mut left, log, marks,
                    )
                } else {
                    run_full(straight, program.frame_accesses, &mut pc, &mut left)
                };
                if stop == SimpleStop::Counter {
                    if MARK && left > 0 {
                        // The marks' run took all the steps it could
                        // (`StepMarks::begin`): the next call begins another.
                        continue;
                    }
                    if pause {
                        st.pc = pc;
                        st.steps = start_steps + total;
                        return Ok(RunStop::Paused);
                    }
                    fault!(FaultKind::StepBudget {
                        steps: config.step_budget
                    });
                }
                let Some(&op) = ops.get(pc) else {
                    fault!(FaultKind::BadCallTarget { target: pc as u64 });
                };
                match op {
                    // r10-based accesses are plain ones with r10 as base.
                    Op::Load { d, s, off, size } | Op::LoadFp { d, s, off, size } => {
                        let v = load!(r!(s).wrapping_add(off as i64 as u64), size);
                        w!(d, v)
                    }
                    Op::LoadSx { d, s, off, size } => {
                        let v = load!(r!(s).wrapping_add(off as i64 as u64), size);
                        w!(d, sext(v, size))
                    }
                    Op::StoreR { d, s, off, size } | Op::StoreFpR { d, s, off, size } => {
                        store!(r!(d).wrapping_add(off as i64 as u64), size, r!(s))
                    }
                    Op::StoreI { d, off, size, k } | Op::StoreFpI { d, off, size, k } => {
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
                    // Every other instruction is straight-line: `run_simple` runs
                    // it and never stops at one.
                    _ => unreachable!("run_simple stopped at a straight-line instruction"),
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

/// A load that hit no region of memory: asks the environment for a
/// recorded value (a read through a BTF pointer); otherwise the fault `k`.
/// The value is the destination register as the kernel left it (already
/// zero- or sign-extended; sign-extending it again changes nothing).
#[allow(clippy::too_many_arguments)]
#[cold]
#[inline(never)]
fn recorded_load<const REC: bool, E: Env + ?Sized>(
    st: &mut MachineState,
    env: &mut E,
    log: &mut EffectList,
    prog: usize,
    pc: usize,
    addr: u64,
    size: u8,
    k: FaultKind,
) -> Result<u64, Fault> {
    if !matches!(k, FaultKind::NoRegion { .. }) {
        return Err(Fault::new(k, prog, pc));
    }
    let mut call = HelperCall {
        args: [st.regs[1], st.regs[2], st.regs[3], st.regs[4], st.regs[5]],
        prog,
        pc,
        tail_calls: st.tail_calls,
        mem: &mut st.mem,
        log: if REC { Some(&mut *log) } else { None },
    };
    match env.btf_load(addr, size as usize, &mut call)? {
        Some(v) => Ok(v),
        None => Err(Fault::new(k, prog, pc)),
    }
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
