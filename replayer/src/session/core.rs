//! The session: position in time, the undo log, checkpoints, and the run
//! loop every movement command goes through.

use std::sync::Arc;

use super::info::DebugInfo;
use super::memo::{EnvMemo, SessionEnv};
use super::points::Points;
use super::undo::{Ctl, UndoLog};
use crate::expr::ExprError;
use crate::limits::MAX_CHECKPOINT_MEMORY;
use crate::vm::{EffectList, Fault, Frame, Machine, MachineState, RunStop, SourceLine, Status};

/// Steps between two full checkpoints of the machine state.
pub const CHECKPOINT_INTERVAL: u64 = 4096;
const K: u64 = CHECKPOINT_INTERVAL;

/// How often (in steps) a long movement reports progress.
const PROGRESS_EVERY: u64 = 1 << 16;

/// Why a session command failed. One sentence each.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("{0}")]
    Expr(#[from] ExprError),
    #[error("{0}")]
    Invalid(String),
}

impl SessionError {
    pub(crate) fn invalid(m: impl Into<String>) -> SessionError {
        SessionError::Invalid(m.into())
    }
}

/// How the invocation ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EndKind {
    /// The program returned r0 (the position is just after the exit).
    Exited(u64),
    /// The instruction at the end position faults (it is the current
    /// instruction there, not executed).
    Fault(Fault),
    /// The replay contradicts the recording here: a helper call that does
    /// not match the recorded one, or a return value or final packet that
    /// differs from the recorded one.
    Divergence { message: String },
}

/// Where and how the invocation ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct End {
    pub position: u64,
    pub kind: EndKind,
}

/// Why a movement stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// The command did what it was asked (one step, a finished `next`, a `goto`).
    Done,
    Breakpoint {
        id: u32,
    },
    /// A watched value changed; the bytes before and after the step that
    /// changed it, in execution order (for reverse movement too), `None` when unreadable.
    Watchpoint {
        id: u32,
        old: Option<Vec<u8>>,
        new: Option<Vec<u8>>,
    },
    /// The program returned this r0.
    Exited {
        r0: u64,
    },
    Fault(Fault),
    Divergence {
        message: String,
    },
    /// Reverse movement reached the first step.
    Start,
    /// The progress callback asked to stop.
    Interrupted,
}

/// The result of a movement: why it stopped and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stop {
    pub reason: StopReason,
    pub position: u64,
}

/// Sizes of a session's bookkeeping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionStats {
    /// Steps held in the undo log and its size in bytes.
    pub undo_steps: u64,
    pub undo_bytes: usize,
    pub checkpoints: usize,
    /// Bytes of machine state the checkpoints hold (estimated).
    pub checkpoint_bytes: usize,
    /// Environment answers remembered.
    pub env_answers: usize,
    /// Furthest position executed so far.
    pub horizon: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dir {
    Forward,
    Backward,
}

struct Checkpoint {
    state: MachineState,
    calls: usize,
}

/// What the recording says the invocation produced (the fidelity check).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpectedExit {
    pub r0: u64,
    /// The final packet data (`data..data_end`).
    pub packet: Option<Vec<u8>>,
    /// The recorded packet was cut short (snap length): compare only its bytes.
    pub packet_is_prefix: bool,
}

type Progress = Box<dyn FnMut(u64) -> bool>;

/// Bytes a copy of `state` holds (estimated: live regions and overhead).
fn state_bytes(state: &MachineState) -> usize {
    state
        .mem
        .live_regions()
        .map(|(_, r)| r.bytes().len() + 64)
        .sum::<usize>()
        + 256
}

/// A replay session over one invocation.
pub struct Session<E: SessionEnv> {
    pub(crate) machine: Machine,
    pub(crate) env: EnvMemo<E>,
    pub(crate) info: Arc<DebugInfo>,
    pos: u64,
    base: u64,
    pub(crate) log: UndoLog,
    checkpoints: Vec<Checkpoint>,
    /// Bytes the checkpoints hold (estimated) and how many they may hold:
    /// past it, no more are taken (going back re-runs from the last one).
    checkpoint_bytes: usize,
    checkpoint_budget: usize,
    end: Option<End>,
    horizon: u64,
    pub(crate) points: Points,
    expected: Option<ExpectedExit>,
    progress: Option<Progress>,
}

impl<E: SessionEnv> Session<E> {
    /// A session over `machine`, which must be started (`Machine::start`)
    /// and not stepped yet, with `env` answering its helper calls.
    pub fn new(machine: Machine, env: E, info: DebugInfo) -> Result<Session<E>, SessionError> {
        if machine.status() != Status::Running || machine.steps() != 0 {
            return Err(SessionError::invalid(
                "a session needs a machine that was started (Machine::start) and not yet stepped",
            ));
        }
        let first = Checkpoint {
            state: machine.state.clone(),
            calls: 0,
        };
        let first_bytes = state_bytes(&first.state);
        Ok(Session {
            machine,
            env: EnvMemo::new(env),
            info: Arc::new(info),
            pos: 0,
            base: 0,
            log: UndoLog::default(),
            checkpoints: vec![first],
            checkpoint_bytes: first_bytes,
            checkpoint_budget: MAX_CHECKPOINT_MEMORY as usize,
            end: None,
            horizon: 0,
            points: Points::default(),
            expected: None,
            progress: None,
        })
    }

    /// Compare the run's end with what the recording says (the fidelity
    /// check): a different r0 or final packet data is a divergence.
    pub fn expect_exit(&mut self, expected: ExpectedExit) {
        self.expected = Some(expected);
    }

    /// Called every 65536 steps of a long movement with the position;
    /// returning false stops it (`StopReason::Interrupted`), e.g. on Ctrl-C.
    pub fn set_progress(&mut self, progress: Option<Box<dyn FnMut(u64) -> bool>>) {
        self.progress = progress;
    }

    // ---- where we are ---------------------------------------------------------

    /// Steps executed to reach the current state (0 = before the first instruction).
    pub fn position(&self) -> u64 {
        self.pos
    }
    /// The end of the invocation, once execution has reached it.
    pub fn end(&self) -> Option<&End> {
        self.end.as_ref()
    }
    /// Whether the current position is the end.
    pub fn at_end(&self) -> bool {
        self.end.as_ref().is_some_and(|e| e.position == self.pos)
    }
    pub fn machine(&self) -> &Machine {
        &self.machine
    }
    pub fn regs(&self) -> &[u64] {
        self.machine.regs()
    }
    pub fn frames(&self) -> &[Frame] {
        self.machine.frames()
    }
    pub fn pc(&self) -> usize {
        self.machine.pc()
    }
    /// Program index of the current instruction.
    pub fn prog(&self) -> usize {
        self.machine.current_prog()
    }
    /// The source line of the current instruction.
    pub fn line(&self) -> Option<&SourceLine> {
        self.machine.program(self.prog())?.line_of(self.pc())
    }
    pub fn info(&self) -> &DebugInfo {
        &self.info
    }
    /// The environment. It is as it was at the furthest point executed
    /// (the session never moves it backwards); machine memory, not the
    /// environment, is the truth about the current position.
    pub fn env(&self) -> &E {
        &self.env.real
    }
    pub fn env_mut(&mut self) -> &mut E {
        &mut self.env.real
    }

    /// Sets how many bytes of machine state the checkpoints may hold
    /// ([`MAX_CHECKPOINT_MEMORY`] unless set). A trace can make every
    /// state large (helper memory) and an invocation long; past the
    /// budget no more checkpoints are taken and going back re-runs from the
    /// last one, slower but in bounded memory.
    pub fn set_checkpoint_budget(&mut self, bytes: usize) {
        self.checkpoint_budget = bytes;
    }

    pub fn stats(&self) -> SessionStats {
        let cp_bytes = self.checkpoint_bytes;
        SessionStats {
            undo_steps: self.log.steps(),
            undo_bytes: self.log.memory_bytes(),
            checkpoints: self.checkpoints.len(),
            checkpoint_bytes: cp_bytes,
            env_answers: self.env.answers(),
            horizon: self.horizon,
        }
    }

    // ---- the primitives ---------------------------------------------------------

    /// Runs one instruction in recording mode and logs it.
    fn exec_one(&mut self) -> Result<RunStop, Fault> {
        let before = Ctl::of(&self.machine.state);
        let c0 = self.env.cursor();
        let mut fx = EffectList::default();
        let r = self.machine.exec::<true, _>(&mut self.env, 1, &mut fx);
        let calls = (self.env.cursor() - c0) as u32;
        self.log.record(&fx, before, &self.machine.state, calls);
        r
    }

    fn reached(&mut self) {
        self.horizon = self.horizon.max(self.pos);
        if self.pos.is_multiple_of(K) && (self.pos / K) as usize == self.checkpoints.len() {
            let bytes = state_bytes(&self.machine.state);
            if self.checkpoint_bytes.saturating_add(bytes) <= self.checkpoint_budget {
                self.checkpoint_bytes += bytes;
                self.checkpoints.push(Checkpoint {
                    state: self.machine.state.clone(),
                    calls: self.env.cursor(),
                });
            }
        }
    }

    /// One step forward (not at the end). Returns how the run ended if this
    /// step ended it.
    pub(crate) fn forward_one(&mut self) -> Option<EndKind> {
        let c0 = self.env.cursor();
        match self.exec_one() {
            Ok(RunStop::Paused) => {
                self.pos += 1;
                self.reached();
                None
            }
            Ok(RunStop::Exited(r0)) => {
                self.pos += 1;
                self.reached();
                let kind = self.exit_kind(r0);
                self.end = Some(End {
                    position: self.pos,
                    kind: kind.clone(),
                });
                Some(kind)
            }
            Err(fault) => {
                // Put back what the instruction did before it faulted; the
                // session stays on it.
                if let Some(calls) = self.log.pop(&mut self.machine.state) {
                    self.env
                        .set_cursor(self.env.cursor().saturating_sub(calls as usize));
                }
                let div = (c0..self.env.answers())
                    .take(4)
                    .find_map(|i| self.env.divergence_at(i).map(str::to_string));
                let kind = match div {
                    Some(message) => EndKind::Divergence { message },
                    None => EndKind::Fault(fault),
                };
                self.end = Some(End {
                    position: self.pos,
                    kind: kind.clone(),
                });
                Some(kind)
            }
        }
    }

    fn exit_kind(&self, r0: u64) -> EndKind {
        let Some(exp) = &self.expected else {
            return EndKind::Exited(r0);
        };
        if exp.r0 != r0 {
            return EndKind::Divergence {
                message: format!(
                    "the replay returned {r0} ({r0:#x}) but the recorded run returned {} ({:#x})",
                    exp.r0, exp.r0
                ),
            };
        }
        if let Some(want) = &exp.packet {
            let got = self.machine.memory().packet_data().unwrap_or(&[]);
            let first_diff = got.iter().zip(want.iter()).position(|(a, b)| a != b);
            let length_differs = !exp.packet_is_prefix && got.len() != want.len();
            if first_diff.is_some() || length_differs {
                let at = first_diff.unwrap_or(got.len().min(want.len()));
                return EndKind::Divergence {
                    message: format!(
                        "the final packet differs from the recorded one at byte {at} ({} bytes replayed, {} recorded)",
                        got.len(),
                        want.len()
                    ),
                };
            }
        }
        EndKind::Exited(r0)
    }

    /// One step back. False at position 0.
    pub(crate) fn backward_one(&mut self) -> bool {
        if self.pos == 0 {
            return false;
        }
        if self.log.steps() == 0 {
            self.refill();
        }
        match self.log.pop(&mut self.machine.state) {
            Some(calls) => {
                self.env
                    .set_cursor(self.env.cursor().saturating_sub(calls as usize));
                self.pos -= 1;
                true
            }
            None => false,
        }
    }

    /// Makes sure the undo log holds the step that led to the current position.
    pub(crate) fn ensure_log(&mut self) {
        if self.pos > 0 && self.log.steps() == 0 {
            self.refill();
        }
    }

    /// Rebuilds the log of the interval before the base by re-running it
    /// from its checkpoint.
    fn refill(&mut self) {
        let target = self.pos;
        let c = (target - 1) / K * K;
        self.restore_checkpoint(c);
        while self.pos < target {
            if self.forward_one().is_some() {
                break;
            }
        }
    }

    fn restore_checkpoint(&mut self, c: u64) {
        let i = ((c / K) as usize).min(self.checkpoints.len() - 1);
        let cp = &self.checkpoints[i];
        self.machine.state = cp.state.clone();
        self.env.set_cursor(cp.calls);
        self.pos = i as u64 * K;
        self.base = self.pos;
        self.log.clear();
    }

    /// Moves to `target` (clamped to the end) as fast as possible, with no
    /// breakpoint checks.
    pub(crate) fn seek(&mut self, target: u64) {
        let target = match &self.end {
            Some(e) => target.min(e.position),
            None => target,
        };
        if target == self.pos {
            return;
        }
        // Short hops back pop the log; longer ones restore a checkpoint and
        // re-run at most one interval, which bounds every goto.
        if target < self.pos && target >= self.base && self.pos - target <= K {
            while self.pos > target && self.backward_one() {}
            return;
        }
        if target > self.pos && target - self.pos <= K {
            while self.pos < target && !self.at_end() {
                if self.forward_one().is_some() {
                    break;
                }
            }
            return;
        }
        let c = target / K * K;
        let last = (self.checkpoints.len() as u64 - 1) * K;
        if c <= last {
            self.restore_checkpoint(c);
        } else {
            self.restore_checkpoint(last);
            while self.pos < c {
                match self.machine.run_steps(&mut self.env, K) {
                    Ok(RunStop::Paused) => {
                        self.pos += K;
                        self.base = self.pos;
                        self.log.clear();
                        self.reached();
                    }
                    _ => {
                        // The run ends inside this interval: find where, recording.
                        let here = self.pos;
                        self.restore_checkpoint(here);
                        while self.forward_one().is_none() {}
                        return;
                    }
                }
            }
        }
        while self.pos < target && !self.at_end() {
            if self.forward_one().is_some() {
                break;
            }
        }
    }

    fn end_reason(kind: &EndKind) -> StopReason {
        match kind {
            EndKind::Exited(r0) => StopReason::Exited { r0: *r0 },
            EndKind::Fault(f) => StopReason::Fault(f.clone()),
            EndKind::Divergence { message } => StopReason::Divergence {
                message: message.clone(),
            },
        }
    }

    fn stop(&self, reason: StopReason) -> Stop {
        Stop {
            reason,
            position: self.pos,
        }
    }

    /// The run loop: moves one step at a time in `dir`, checking
    /// breakpoints and watchpoints when `checks`, until `until` says stop.
    pub(crate) fn run(
        &mut self,
        dir: Dir,
        checks: bool,
        mut until: impl FnMut(&Self) -> Option<StopReason>,
    ) -> Stop {
        if checks {
            self.arm_watchpoints();
        }
        let mut n: u64 = 0;
        loop {
            match dir {
                Dir::Forward => {
                    if let Some(e) = self.end.as_ref().filter(|e| e.position == self.pos) {
                        let r = Self::end_reason(&e.kind);
                        return self.stop(r);
                    }
                    if let Some(kind) = self.forward_one() {
                        return self.stop(Self::end_reason(&kind));
                    }
                }
                Dir::Backward => {
                    if !self.backward_one() {
                        return self.stop(StopReason::Start);
                    }
                }
            }
            if checks && let Some(r) = self.check_points(dir) {
                return self.stop(r);
            }
            if let Some(r) = until(self) {
                return self.stop(r);
            }
            n += 1;
            if n.is_multiple_of(PROGRESS_EVERY)
                && let Some(p) = self.progress.as_mut()
                && !p(self.pos)
            {
                return self.stop(StopReason::Interrupted);
            }
        }
    }

    // ---- commands -------------------------------------------------------------

    /// Executes one instruction.
    pub fn step(&mut self) -> Stop {
        self.run(Dir::Forward, true, |_| Some(StopReason::Done))
    }

    /// Steps over bpf-to-bpf calls and helper callbacks: runs until the
    /// frame depth is back to the current one or less.
    #[allow(clippy::should_implement_trait)] // gdb's name for it
    pub fn next(&mut self) -> Stop {
        let depth = self.frames().len();
        self.run(Dir::Forward, true, move |s| {
            (s.frames().len() <= depth).then_some(StopReason::Done)
        })
    }

    /// Runs until the current frame returns (in frame 0: to the end).
    pub fn finish(&mut self) -> Stop {
        let depth = self.frames().len();
        self.run(Dir::Forward, true, move |s| {
            (s.frames().len() < depth).then_some(StopReason::Done)
        })
    }

    /// Runs until a breakpoint, a watchpoint or the end.
    pub fn continue_(&mut self) -> Stop {
        self.run(Dir::Forward, true, |_| None)
    }

    /// Undoes one instruction.
    pub fn reverse_step(&mut self) -> Stop {
        self.run(Dir::Backward, true, |_| Some(StopReason::Done))
    }

    /// Steps back over calls: back to the previous instruction of this frame.
    pub fn reverse_next(&mut self) -> Stop {
        let depth = self.frames().len();
        self.run(Dir::Backward, true, move |s| {
            (s.frames().len() <= depth).then_some(StopReason::Done)
        })
    }

    /// Back to the call that entered the current frame (in frame 0: to the start).
    pub fn reverse_finish(&mut self) -> Stop {
        let depth = self.frames().len();
        self.run(Dir::Backward, true, move |s| {
            (s.frames().len() < depth).then_some(StopReason::Done)
        })
    }

    /// Back until a breakpoint, a watchpoint (stopping before the step that
    /// last changed the value: "who last wrote this?") or the start.
    pub fn reverse_continue(&mut self) -> Stop {
        self.run(Dir::Backward, true, |_| None)
    }

    /// Goes to position `n` (clamped to the end), ignoring breakpoints.
    pub fn goto(&mut self, n: u64) -> Stop {
        self.seek(n);
        if let Some(e) = self.end.as_ref().filter(|e| e.position == self.pos) {
            let r = Self::end_reason(&e.kind);
            return self.stop(r);
        }
        self.stop(StopReason::Done)
    }

    /// Goes to the next (`forward`) or previous time instruction `pc` (of
    /// program `prog`, or of any program) is about to run, ignoring breakpoints.
    pub fn goto_visit(&mut self, pc: usize, prog: Option<usize>, forward: bool) -> Stop {
        let hit = move |s: &Self| {
            (s.pc() == pc && prog.is_none_or(|p| p == s.prog())).then_some(StopReason::Done)
        };
        let dir = if forward { Dir::Forward } else { Dir::Backward };
        self.run(dir, false, hit)
    }

    /// Runs to the end (no breakpoints) and returns it.
    pub fn run_to_end(&mut self) -> End {
        self.seek(u64::MAX);
        self.end.clone().unwrap_or(End {
            position: self.pos,
            kind: EndKind::Divergence {
                message: "the run did not end".into(),
            },
        })
    }
}
