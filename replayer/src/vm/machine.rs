//! The machine: registers, frames, memory and counters, and the two ways to
//! run — `step` (one instruction, effects recorded for undo) and `run`
//! (full speed, nothing recorded). Both use the same interpreter loop in
//! `interp.rs`.

use std::sync::Arc;

use bpfrr_trace::isa::opcode::{MAX_STACK, MAX_TAIL_CALLS};

use super::context::Context;
use super::effects::{
    Control, Effect, EffectList, OneEffect, StepEffects, StepLog, StepMarks, StepOutcome,
};
use super::env::{Callee, Env};
use super::fault::{Fault, FaultKind};
use super::memory::{Memory, RegionKind, address, ids};
use super::program::Program;
use super::simple::{SimpleStop, Straight, run_simple_inline};

/// The kernel's `BPF_MAX_LOOPS`: may_goto falls through this many times per run.
pub const MAY_GOTO_BUDGET: u64 = 8 * 1024 * 1024;

/// Tunable limits of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Instructions one run may execute before it faults with `StepBudget`.
    pub step_budget: u64,
    /// How many times `may_goto` falls through per run.
    pub may_goto_budget: u64,
    /// Tail calls per run (the kernel's `MAX_TAIL_CALL_CNT`, 33).
    pub max_tail_calls: u32,
    /// Combined stack of all active frames, enforced when the program's
    /// stack depths were given (`Program::set_stack_depths`).
    pub stack_limit: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            step_budget: 1 << 30,
            may_goto_budget: MAY_GOTO_BUDGET,
            max_tail_calls: MAX_TAIL_CALLS,
            stack_limit: MAX_STACK as u32,
        }
    }
}

/// Where the machine is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// No run started yet.
    Idle,
    Running,
    /// The program returned this r0.
    Exited(u64),
}

/// A helper call waiting for the callback it requested to return.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PendingCall {
    pub callee: Callee,
    /// Slot of the call instruction.
    pub call_pc: usize,
    /// r1-r5 of the original call.
    pub args: [u64; 5],
    /// The environment's state token from `HelperOutcome::Callback`.
    pub state: u64,
}

/// One call frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame {
    /// Program the frame runs (changes on tail calls).
    pub prog: usize,
    /// Subprogram index within that program.
    pub subprog: usize,
    /// Where the caller continues (for frame 0: unused).
    pub return_pc: usize,
    /// The caller's r6-r9, restored on exit.
    pub saved: [u64; 4],
    /// Stack bytes of this frame.
    pub stack_size: u32,
    /// Set for callback frames: the helper to resume when the frame exits.
    pub callback: Option<PendingCall>,
}

/// Everything that undo must restore.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MachineState {
    /// r0-r10 (indices 11-15 are unused padding that lets the loop skip bounds checks).
    pub(crate) regs: [u64; 16],
    pub(crate) pc: usize,
    pub(crate) frames: Vec<Frame>,
    pub(crate) mem: Memory,
    pub(crate) steps: u64,
    pub(crate) may_goto_left: u64,
    pub(crate) tail_calls: u32,
    pub(crate) status: Status,
}

/// A BPF machine over one or more programs (more than one for tail calls).
pub struct Machine {
    pub(crate) programs: Vec<Arc<Program>>,
    pub(crate) state: MachineState,
    pub(crate) config: Config,
    /// Whether stack depths were given for every program (enables the combined limit).
    pub(crate) depths_known: bool,
}

/// Why `run_steps` returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunStop {
    Exited(u64),
    /// The requested number of instructions ran; the program continues.
    Paused,
}

/// Size of a code address's program field: code address = `CODE << 40 | prog << 20 | pc`.
pub(crate) const CODE_PC_BITS: u32 = 20;

/// The code address of slot `pc` of program `prog` (what `ld_imm64` of a function yields).
pub fn code_address(prog: usize, pc: usize) -> u64 {
    address(ids::CODE, ((prog as u64) << CODE_PC_BITS) | pc as u64)
}

/// The (program, slot) of a code address.
pub fn decode_code_address(addr: u64) -> Option<(usize, usize)> {
    let (id, off) = super::memory::split_address(addr);
    (id == ids::CODE && off >= 0).then(|| {
        let off = off as u64;
        (
            (off >> CODE_PC_BITS) as usize,
            (off & ((1 << CODE_PC_BITS) - 1)) as usize,
        )
    })
}

impl Machine {
    /// A machine holding one program (index 0).
    pub fn new(program: Program) -> Machine {
        Machine::with_programs(vec![program])
    }

    /// A machine holding several programs; tail calls name them by index.
    pub fn with_programs(programs: Vec<Program>) -> Machine {
        let depths_known = false;
        Machine {
            programs: programs.into_iter().map(Arc::new).collect(),
            state: MachineState {
                regs: [0; 16],
                pc: 0,
                frames: Vec::new(),
                mem: Memory::new(),
                steps: 0,
                may_goto_left: 0,
                tail_calls: 0,
                status: Status::Idle,
            },
            config: Config::default(),
            depths_known,
        }
    }

    /// Adds a program and returns its index.
    pub fn add_program(&mut self, program: Program) -> usize {
        self.programs.push(Arc::new(program));
        self.programs.len() - 1
    }

    pub fn program(&self, index: usize) -> Option<&Program> {
        self.programs.get(index).map(|p| &**p)
    }

    pub fn programs(&self) -> usize {
        self.programs.len()
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn set_config(&mut self, config: Config) {
        self.config = config;
    }

    /// Enforce the combined stack limit (call after giving every program its
    /// stack depths with `Program::set_stack_depths`).
    pub fn enforce_stack_limit(&mut self, on: bool) {
        self.depths_known = on;
    }

    /// Starts a run of program `entry` with `ctx`: resets registers, frames,
    /// counters, the stack, context, packet and input regions (other regions,
    /// such as map values, persist across runs). r1 = the context (or the
    /// input memory, with r2 = its length), r10 = the top of frame 0's stack.
    pub fn start(&mut self, entry: usize, ctx: &Context) -> Result<(), Fault> {
        let Some(program) = self.programs.get(entry) else {
            return Err(Fault::new(FaultKind::BadTailCall { prog: entry }, entry, 0));
        };
        let stack_size = program.subprograms()[0].stack_depth;
        let st = &mut self.state;
        st.regs = [0; 16];
        st.pc = 0;
        st.steps = 0;
        st.may_goto_left = self.config.may_goto_budget;
        st.tail_calls = 0;
        st.status = Status::Running;
        st.frames.clear();
        st.frames.push(Frame {
            prog: entry,
            subprog: 0,
            return_pc: 0,
            saved: [0; 4],
            stack_size,
            callback: None,
        });
        // Frame 0 is made afresh below (not zeroed again if the last run
        // left it zero); the callee frames come when calls push them.
        st.mem.kill_call_frames();
        st.mem
            .set_fixed_zeroed(ids::STACK0, stack_size as usize, true);
        st.regs[10] = address(ids::STACK0, stack_size as u64);
        st.mem.set_context_layout(ctx.layout);
        if ctx.layout.is_some() {
            st.mem.set_fixed(ids::CONTEXT, &ctx.bytes, false);
            st.regs[1] = address(ids::CONTEXT, 0);
        } else {
            st.mem.kill_fixed(ids::CONTEXT);
        }
        match &ctx.packet {
            Some(p) => st
                .mem
                .set_packet(&p.buffer, p.meta, p.data, p.end, p.writable),
            None => st.mem.kill_fixed(ids::PACKET),
        }
        match &ctx.input {
            Some(bytes) => {
                st.mem.set_fixed(ids::INPUT, bytes, true);
                st.regs[1] = address(ids::INPUT, 0);
                st.regs[2] = bytes.len() as u64;
            }
            None => st.mem.kill_fixed(ids::INPUT),
        }
        Ok(())
    }

    /// Executes one instruction and reports what it changed. A fault is
    /// reported in the outcome; the machine stays on the faulting instruction.
    #[inline]
    pub fn step<E: Env + ?Sized>(&mut self, env: &mut E) -> StepEffects {
        // The counters are read one by one and the `Control` of the result
        // is built in place: copying the machine's counters as a block right
        // after the previous step updated one of them stalls the load
        // (store-to-load forwarding fails across differently sized stores).
        // With one program (no tail calls), every frame runs program 0: the
        // frame stack need not be read first (a chain of dependent loads
        // before the instruction can even be fetched).
        let prog = if self.programs.len() == 1 {
            0
        } else {
            self.current_prog()
        };
        let st = &mut self.state;
        let (pc, steps) = (st.pc, st.steps);
        // Straight-line instructions (most of them) run here, inline: going
        // through the general interpreter would cost several times what the
        // instruction does. Anything else, and every fault, goes the general way.
        if st.status == Status::Running
            && steps < self.config.step_budget
            && let Some(program) = self.programs.get(prog)
        {
            let (may_goto_left, tail_calls) = (st.may_goto_left, st.tail_calls);
            let before = Control {
                pc,
                steps,
                may_goto_left,
                tail_calls,
                status: Status::Running,
            };
            let (regions, ctx) = st.mem.straight_parts(program.stores_in_line);
            let straight = Straight {
                regs: &mut st.regs,
                regions,
                ctx,
                ops: &program.ops,
                prog,
                steps_end: steps + 1,
                before,
            };
            // A straight-line instruction makes at most one change; kept in a
            // plain local (not pushed to a list) so that it goes to the result
            // in registers.
            let mut effect = OneEffect::default();
            let (mut next_pc, mut left) = (pc, 1);
            let stop = run_simple_inline::<true, false, false, _>(
                straight,
                &mut next_pc,
                &mut left,
                &mut effect,
                &mut StepMarks::default(),
            );
            if stop == SimpleStop::Counter {
                st.pc = next_pc;
                st.steps = steps + 1;
                return StepEffects {
                    prog,
                    pc,
                    effects: EffectList::from_plain(effect.plain()),
                    outcome: StepOutcome::Running,
                    before: Control {
                        pc,
                        steps,
                        may_goto_left,
                        tail_calls,
                        status: Status::Running,
                    },
                };
            }
            // Stopped before changing anything: the general path runs it.
            debug_assert!(effect.plain().is_none());
        }
        self.step_general(env)
    }

    /// `step` for the instructions the straight-line loop does not take.
    #[inline(never)]
    fn step_general<E: Env + ?Sized>(&mut self, env: &mut E) -> StepEffects {
        let before = self.control();
        let (prog, pc) = (self.current_prog(), self.state.pc);
        let mut effects = EffectList::default();
        let outcome = if self.state.status != Status::Running {
            StepOutcome::Faulted(Fault::new(FaultKind::NotRunning, prog, pc))
        } else {
            match self.exec::<true, E>(env, 1, &mut effects) {
                Ok(RunStop::Paused) => StepOutcome::Running,
                Ok(RunStop::Exited(r0)) => StepOutcome::Exited(r0),
                Err(f) => StepOutcome::Faulted(f),
            }
        };
        StepEffects {
            prog,
            pc,
            effects,
            outcome,
            before,
        }
    }

    /// Runs to the end at full speed (nothing recorded) and returns r0.
    pub fn run<E: Env + ?Sized>(&mut self, env: &mut E) -> Result<u64, Fault> {
        match self.run_steps(env, u64::MAX)? {
            RunStop::Exited(r0) => Ok(r0),
            RunStop::Paused => unreachable!("an unlimited run only stops at exit or a fault"),
        }
    }

    /// Runs at most `n` instructions at full speed.
    pub fn run_steps<E: Env + ?Sized>(&mut self, env: &mut E, n: u64) -> Result<RunStop, Fault> {
        match self.state.status {
            Status::Running => {}
            Status::Exited(r0) => return Ok(RunStop::Exited(r0)),
            Status::Idle => {
                return Err(Fault::new(FaultKind::NotRunning, 0, 0));
            }
        }
        self.exec_full(env, n)
    }

    /// Starts a run of program 0 and runs it to the end.
    pub fn run_context<E: Env + ?Sized>(
        &mut self,
        env: &mut E,
        ctx: &Context,
    ) -> Result<u64, Fault> {
        self.start(0, ctx)?;
        self.run(env)
    }

    /// Reverts one step exactly (steps must be undone newest first).
    pub fn undo(&mut self, step: &StepEffects) {
        for e in step.effects.iter().rev() {
            undo_effect(&mut self.state, &e);
        }
        restore_control(&mut self.state, step.before);
    }

    /// Runs at most `n` instructions like `run_steps`, logging every step
    /// with its effects in `log` (appended to what it holds), as `step`
    /// would report them. A faulting step is logged too, with the effects
    /// it made before the fault.
    pub fn run_logged<E: Env + ?Sized>(
        &mut self,
        env: &mut E,
        n: u64,
        log: &mut StepLog,
    ) -> Result<RunStop, Fault> {
        match self.state.status {
            Status::Running => {}
            Status::Exited(r0) => return Ok(RunStop::Exited(r0)),
            Status::Idle => {
                return Err(Fault::new(FaultKind::NotRunning, 0, 0));
            }
        }
        self.exec_logged(env, n, log)
    }

    /// Reverts the newest step of `log` exactly and removes it from the
    /// log. Returns false when the log is empty.
    pub fn undo_logged(&mut self, log: &mut StepLog) -> bool {
        let Some(span) = log.len().checked_sub(1).and_then(|i| log.span(i)) else {
            return false;
        };
        for k in span.clone().rev() {
            if let Some(e) = log.effects.get(k) {
                undo_effect(&mut self.state, &e);
            }
        }
        log.effects.truncate(span.start);
        if let Some((_, before, _)) = log.marks.get(log.len() - 1) {
            restore_control(&mut self.state, before);
        }
        log.marks.pop();
        true
    }

    #[inline]
    fn control(&self) -> Control {
        Control {
            pc: self.state.pc,
            steps: self.state.steps,
            may_goto_left: self.state.may_goto_left,
            tail_calls: self.state.tail_calls,
            status: self.state.status,
        }
    }

    // ---- inspection ------------------------------------------------------

    /// r0-r10.
    pub fn regs(&self) -> &[u64] {
        &self.state.regs[..11]
    }
    pub fn reg(&self, r: u8) -> u64 {
        self.state.regs[(r & 15) as usize]
    }
    /// Sets a register (for tests and for sessions editing state; not recorded).
    pub fn set_reg(&mut self, r: u8, value: u64) {
        if r <= 10 {
            self.state.regs[r as usize] = value;
        }
    }
    pub fn pc(&self) -> usize {
        self.state.pc
    }
    /// Index of the program the top frame runs.
    #[inline]
    pub fn current_prog(&self) -> usize {
        self.state.frames.last().map_or(0, |f| f.prog)
    }
    pub fn frames(&self) -> &[Frame] {
        &self.state.frames
    }
    pub fn status(&self) -> Status {
        self.state.status
    }
    /// Instructions executed in this run.
    pub fn steps(&self) -> u64 {
        self.state.steps
    }
    pub fn tail_calls(&self) -> u32 {
        self.state.tail_calls
    }
    pub fn memory(&self) -> &Memory {
        &self.state.mem
    }
    /// Direct access to memory (setup between runs; changes are not recorded).
    pub fn memory_mut(&mut self) -> &mut Memory {
        &mut self.state.mem
    }
    /// The whole undoable state (compare two to prove an undo exact).
    pub fn state(&self) -> &MachineState {
        &self.state
    }

    /// Adds a fault's source line from the program's line info.
    pub(crate) fn annotate(&self, mut fault: Fault) -> Fault {
        if fault.line.is_none()
            && let Some(p) = self.programs.get(fault.prog)
        {
            fault.line = p.line_of(fault.pc).cloned().map(Box::new);
        }
        fault
    }

    /// The stack region kind of frame `depth` (for views).
    pub fn stack_region_kind(depth: usize) -> RegionKind {
        RegionKind::Stack { frame: depth as u8 }
    }
}

/// Puts back what one effect changed.
fn undo_effect(st: &mut MachineState, e: &Effect) {
    match e {
        Effect::Reg { reg, old } => st.regs[(*reg & 15) as usize] = *old,
        Effect::Store(w) => st.mem.restore_small(w),
        Effect::Write {
            region,
            offset,
            old,
        } => st.mem.restore(*region, *offset, old),
        Effect::RegionCreated { id } => st.mem.truncate_regions(*id as usize),
        Effect::RegionReplaced { id, old } => st.mem.put_region(*id, (**old).clone()),
        Effect::PacketData { old_data } => st.mem.set_packet_data_offset(*old_data),
        Effect::FramePushed { old_stack } => {
            let depth = st.frames.len() - 1;
            st.frames.pop();
            st.mem
                .put_region(ids::STACK0 + depth as u32, (**old_stack).clone());
        }
        Effect::FramePopped { frame, stack } => {
            st.frames.push(**frame);
            let depth = st.frames.len() - 1;
            st.mem
                .put_region(ids::STACK0 + depth as u32, (**stack).clone());
        }
        Effect::FrameReplaced { old, old_stack } => {
            let depth = st.frames.len() - 1;
            st.frames[depth] = **old;
            st.mem
                .put_region(ids::STACK0 + depth as u32, (**old_stack).clone());
        }
        Effect::Called(_) => {}
    }
}

/// Puts back the position and counters from before a step.
fn restore_control(st: &mut MachineState, c: Control) {
    st.pc = c.pc;
    st.steps = c.steps;
    st.may_goto_left = c.may_goto_left;
    st.tail_calls = c.tail_calls;
    st.status = c.status;
}
