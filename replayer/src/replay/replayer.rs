//! The replay driver: runs invocations of a trace in the VM with a
//! [`RecordedEnv`] and judges each run against its recording.
//!
//! The map models (global data above all, which programs read directly and
//! the recording does not hold) evolve from one invocation to the next, so
//! the driver keeps them as a *world* that it carries forward in recording
//! order. Replaying invocation `k` needs the world as it was before `k`:
//! going forward it is at hand; going back (or far forward) it is restored
//! from the nearest [checkpoint](super::checkpoint) at or before `k` and
//! fast-forwarded, at most `CHECKPOINT_EVERY - 1` invocations.
//!
//! Runs are at full speed. Only when a final packet or return value
//! differs does the driver run the invocation again step by step, with
//! effects, to find the last write to the differing byte or to r0.

use std::rc::Rc;

use bpfrr_trace::trace::{ArchivedInvocation, Trace};

use crate::env::ModelEnv;
use crate::env::recorded::{RecordedEnv, ReplayTables, recorded_btf_loads, recorded_calls};
use crate::vm::{Config, Effect, Fault, Machine, Memory, Program, StepOutcome, ids};

use super::checkpoint::Checkpoints;
use super::error::ReplayError;
use super::report::{Divergence, DivergenceKind, FidelityReport, Location, Summary};
use super::setup::{initial_models, invocation_context, placeholder_program, vm_program};

/// How many divergences one replayer locates exactly by re-running (each
/// costs a re-run of the invocations before it); later ones name the exit.
const MAX_LOCATES: usize = 16;

/// One invocation ready to run: the machine is started on its program and
/// context, the env holds its recorded calls and the world's models.
/// Run it (`machine.run(&mut env)` or `machine.step(&mut env)`), then give
/// it back with [`Replayer::finish`].
pub struct InvocationRun<'t> {
    pub index: u64,
    pub machine: Machine,
    pub env: RecordedEnv<'t>,
}

/// What to look for when re-running with effects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    /// The last write of r0.
    R0,
    /// The last write to this offset of the packet region.
    PacketByte(u32),
    /// The last change of the packet's bounds.
    PacketWindow,
}

/// Replays the invocations of one trace.
pub struct Replayer<'t> {
    trace: &'t Trace,
    programs: Vec<Program>,
    load_errors: Vec<Option<String>>,
    depths_known: bool,
    tables: Rc<ReplayTables>,
    setup_notes: Vec<String>,
    /// The models as they were before invocation `world_at`.
    world: Option<ModelEnv>,
    world_at: u64,
    /// Worlds kept every `CHECKPOINT_EVERY` invocations (and the furthest
    /// one reached, when going back).
    checkpoints: Checkpoints,
    /// Invocations run only for their effect on the world, in all.
    fast_forwarded: u64,
    machine: Option<Machine>,
    locates_left: usize,
    /// Instructions one invocation may execute (`Config::step_budget`).
    step_budget: u64,
}

impl<'t> Replayer<'t> {
    /// Prepares every program of the trace for the VM. A program the VM
    /// cannot load makes only its own invocations fail.
    pub fn new(trace: &'t Trace) -> Replayer<'t> {
        let mut programs = Vec::new();
        let mut load_errors = Vec::new();
        let mut depths_known = true;
        for p in trace.programs() {
            match vm_program(p) {
                Ok((program, depths)) => {
                    depths_known &= depths;
                    programs.push(program);
                    load_errors.push(None);
                }
                Err(e) => {
                    depths_known = false;
                    programs.push(placeholder_program(&p.name));
                    load_errors.push(Some(e));
                }
            }
        }
        let (world, tables, setup_notes) = initial_models(trace);
        Replayer {
            trace,
            programs,
            load_errors,
            depths_known,
            tables: Rc::new(tables),
            setup_notes,
            world: Some(world),
            world_at: 0,
            checkpoints: Checkpoints::default(),
            fast_forwarded: 0,
            machine: None,
            locates_left: MAX_LOCATES,
            step_budget: Config::default().step_budget,
        }
    }

    pub fn trace(&self) -> &'t Trace {
        self.trace
    }

    /// The VM form of trace program `id` (instructions, subprograms, lines).
    pub fn program(&self, id: u32) -> Option<&Program> {
        self.programs.get(id as usize)
    }

    /// What could not be modelled when the map models were built.
    pub fn setup_notes(&self) -> &[String] {
        &self.setup_notes
    }

    /// Names an instruction: program, index, source line.
    pub fn location(&self, prog: usize, insn: u32, step: Option<u64>) -> Location {
        Location {
            program: prog as u32,
            program_name: self
                .trace
                .programs()
                .get(prog)
                .map(|p| p.name.clone())
                .unwrap_or_default(),
            insn,
            line: self
                .programs
                .get(prog)
                .and_then(|p| p.line_of(insn as usize))
                .cloned(),
            step,
        }
    }

    /// Starts invocation `index`: the world is brought to just before it,
    /// the machine started on its context.
    pub fn start(&mut self, index: u64) -> Result<InvocationRun<'t>, ReplayError> {
        let world = self.take_world(index);
        let mut machine = self.machine.take().unwrap_or_else(|| self.new_machine());
        match self.begin(index, &mut machine, world) {
            Ok(env) => Ok(InvocationRun {
                index,
                machine,
                env,
            }),
            Err((e, world)) => {
                // Nothing ran: the world before `index` is also the one after it.
                self.world = Some(world);
                self.world_at = index + 1;
                self.machine = Some(machine);
                Err(e)
            }
        }
    }

    /// Takes a run back: what it wrote to maps and global data becomes the
    /// world for the next invocation (also after a fault or a divergence,
    /// as far as the run went).
    pub fn finish(&mut self, run: InvocationRun<'t>) {
        let InvocationRun {
            index,
            machine,
            mut env,
        } = run;
        env.end_run(machine.memory());
        let world = env.into_model();
        if self.checkpoints.wants(index + 1) {
            self.checkpoints.save(index + 1, &world);
        }
        self.world = Some(world);
        self.world_at = index + 1;
        self.machine = Some(machine);
    }

    /// Replays invocation `index` at full speed and compares it with its
    /// recording: helper sequence, return value, final packet.
    pub fn replay(&mut self, index: u64) -> Result<FidelityReport, ReplayError> {
        let mut run = self.start(index)?;
        let result = run.machine.run(&mut run.env);
        let inv = self.trace.invocation(index)?;
        let (mut report, target) = self.judge(index, inv, &run, result);
        self.finish(run);
        if let (Some(target), Some(d)) = (target, report.divergence.as_mut()) {
            if self.locates_left > 0 {
                self.locates_left -= 1;
                self.locate(index, target, d);
            } else {
                d.message
                    .push_str(" (not traced back: too many divergences in this trace)");
            }
        }
        Ok(report)
    }

    /// Replays every invocation in order.
    pub fn check_all(&mut self) -> Summary {
        let mut summary = Summary::default();
        for index in 0..self.trace.invocation_count() {
            let result = self.replay(index);
            summary.add(index, result);
        }
        summary
    }

    /// How many invocations this replayer has run only to bring the world
    /// up to an invocation it was asked to start (a measure of how far
    /// `start` had to fast-forward).
    pub fn invocations_fast_forwarded(&self) -> u64 {
        self.fast_forwarded
    }

    /// Sets how many instructions one invocation may execute before it
    /// stops with a `StepBudget` fault (2^30 unless set): a trace of an
    /// endless loop must not run forever.
    pub fn set_step_budget(&mut self, steps: u64) {
        self.step_budget = steps;
        if let Some(m) = self.machine.as_mut() {
            m.set_config(Config {
                step_budget: steps,
                ..*m.config()
            });
        }
    }

    /// How many world checkpoints are kept.
    pub fn checkpoint_count(&self) -> usize {
        self.checkpoints.len()
    }

    // ---- internals ------------------------------------------------------------

    fn new_machine(&self) -> Machine {
        let mut m = Machine::with_programs(self.programs.clone());
        m.enforce_stack_limit(self.depths_known);
        m.set_config(Config {
            step_budget: self.step_budget,
            ..*m.config()
        });
        m
    }

    /// The world before invocation `index`.
    fn take_world(&mut self, index: u64) -> ModelEnv {
        let checkpoint = self.checkpoints.nearest(index);
        let (mut world, mut at) = match self.world.take() {
            Some(w) if self.world_at <= index && checkpoint.is_none_or(|c| c <= self.world_at) => {
                (w, self.world_at)
            }
            current => {
                if let Some(w) = current {
                    // Going back: keep the furthest world reached.
                    self.checkpoints.save_furthest(self.world_at, &w);
                }
                self.restored_world(checkpoint)
            }
        };
        let mut machine = self.machine.take().unwrap_or_else(|| self.new_machine());
        while at < index {
            world = self.fast_forward(at, &mut machine, world);
            self.fast_forwarded += 1;
            at += 1;
            if self.checkpoints.wants(at) {
                self.checkpoints.save(at, &world);
            }
        }
        self.machine = Some(machine);
        world
    }

    /// A fresh world at checkpoint `at` (or at the start), and where it is.
    fn restored_world(&self, at: Option<u64>) -> (ModelEnv, u64) {
        let mut world = initial_models(self.trace).0;
        match at {
            Some(at) if self.checkpoints.restore(at, &mut world) => (world, at),
            _ => (world, 0),
        }
    }

    /// Runs invocation `index` for its effect on the world only.
    fn fast_forward(&self, index: u64, machine: &mut Machine, world: ModelEnv) -> ModelEnv {
        match self.begin(index, machine, world) {
            Ok(mut env) => {
                let _ = machine.run(&mut env);
                env.end_run(machine.memory());
                env.into_model()
            }
            Err((_, world)) => world,
        }
    }

    /// Sets up the machine and env for invocation `index` (the world is
    /// handed back when that is impossible).
    #[allow(clippy::result_large_err)]
    fn begin(
        &self,
        index: u64,
        machine: &mut Machine,
        world: ModelEnv,
    ) -> Result<RecordedEnv<'t>, (ReplayError, ModelEnv)> {
        let inv: &'t ArchivedInvocation = match self.trace.invocation(index) {
            Ok(inv) => inv,
            Err(e) => return Err((e.into(), world)),
        };
        let prog = inv.program.to_native();
        let tp = &self.trace.programs()[prog as usize];
        if let Some(reason) = &self.load_errors[prog as usize] {
            let e = ReplayError::Program {
                program: prog,
                name: tp.name.clone(),
                reason: reason.clone(),
            };
            return Err((e, world));
        }
        let ctx = invocation_context(
            tp.prog_type,
            &inv.ctx,
            inv.packet.as_ref().map(|p| &p[..]),
            inv.packet_meta.as_ref().map(|p| &p[..]),
        );
        let env = RecordedEnv::new(
            recorded_calls(inv),
            inv.partial,
            inv.cpu.to_native(),
            world,
            Rc::clone(&self.tables),
        )
        .with_btf_loads(recorded_btf_loads(inv));
        // A fresh memory per invocation: regions of earlier runs go away.
        *machine.memory_mut() = Memory::new();
        if let Err(f) = machine.start(prog as usize, &ctx) {
            let e = ReplayError::Start {
                index,
                reason: f.to_string(),
            };
            return Err((e, env.into_model()));
        }
        Ok(env)
    }

    /// Compares a finished run with its recording.
    fn judge(
        &self,
        index: u64,
        inv: &ArchivedInvocation,
        run: &InvocationRun<'t>,
        result: Result<u64, Fault>,
    ) -> (FidelityReport, Option<Target>) {
        let (m, env) = (&run.machine, &run.env);
        let last_step = m.steps().saturating_sub(1);
        let mut target = None;
        let retval = result.as_ref().ok().copied();
        let divergence = match result {
            Err(fault) => {
                if let Some(d) = env.divergence() {
                    Some(Divergence {
                        kind: if d.btf_load {
                            DivergenceKind::BtfLoad { load: d.event }
                        } else {
                            DivergenceKind::Call { event: d.event }
                        },
                        at: self.location(d.prog, d.insn, Some(last_step)),
                        related: None,
                        message: d.message.clone(),
                    })
                } else if env.ran_out_of_recording() {
                    None
                } else {
                    Some(Divergence {
                        message: format!(
                            "the replay faults where the kernel ran on: {}",
                            fault.kind
                        ),
                        at: self.location(fault.prog, fault.pc as u32, Some(last_step)),
                        kind: DivergenceKind::Fault(fault),
                        related: None,
                    })
                }
            }
            Ok(r0) => {
                let (d, t) = self.compare_end(inv, m, env, r0);
                target = t;
                d
            }
        };
        let report = FidelityReport {
            invocation: index,
            seq: inv.seq.to_native(),
            cpu: inv.cpu.to_native(),
            program: inv.program.to_native(),
            steps: m.steps(),
            retval,
            calls_recorded: env.calls().len(),
            calls_matched: env.consumed(),
            btf_loads_recorded: env.btf_loads().len(),
            btf_loads_matched: env.btf_loads_consumed(),
            partial: inv.partial,
            notes: env.notes().to_vec(),
            divergence,
        };
        (report, target)
    }

    /// After an exit: are all recorded calls made, the final packet and
    /// the return value the recorded ones?
    fn compare_end(
        &self,
        inv: &ArchivedInvocation,
        m: &Machine,
        env: &RecordedEnv<'t>,
        r0: u64,
    ) -> (Option<Divergence>, Option<Target>) {
        let prog = m.current_prog();
        let exit = self.location(prog, m.pc() as u32, Some(m.steps().saturating_sub(1)));
        let consumed = env.consumed();
        if let Some(next) = env.calls().get(consumed) {
            let remaining = env.calls().len() - consumed;
            let message = format!(
                "the program exits, but the recording has {remaining} more call(s), the next being {} at {}",
                next.describe(),
                self.location(prog, next.insn, None)
            );
            let d = Divergence {
                kind: DivergenceKind::MissingCalls {
                    next_event: consumed,
                    remaining,
                },
                at: exit,
                related: None,
                message,
            };
            return (Some(d), None);
        }
        let loads = env.btf_loads_consumed();
        if let Some(&(insn, _)) = env.btf_loads().get(loads) {
            let remaining = env.btf_loads().len() - loads;
            let message = format!(
                "the program exits, but the recording has {remaining} more load(s) through BTF pointers, the next being at {}",
                self.location(prog, insn, None)
            );
            let d = Divergence {
                kind: DivergenceKind::MissingBtfLoads {
                    next_load: loads,
                    remaining,
                },
                at: exit,
                related: None,
                message,
            };
            return (Some(d), None);
        }
        if inv.partial {
            return (None, None); // no reliable end state recorded
        }
        if let Some(recorded) = inv.final_packet.as_ref() {
            let recorded: &[u8] = recorded;
            let replayed = m.memory().packet_data().unwrap_or_default();
            let data = m.memory().packet_window().map_or(0, |w| w.1);
            let n = recorded.len().min(replayed.len());
            if let Some(i) = (0..n).find(|&i| recorded[i] != replayed[i]) {
                let d = Divergence {
                    kind: DivergenceKind::PacketByte {
                        offset: i,
                        recorded: recorded[i],
                        replayed: replayed[i],
                    },
                    message: format!(
                        "byte {i} of the final packet is {:#04x} in the replay, {:#04x} in the recording",
                        replayed[i], recorded[i]
                    ),
                    at: exit,
                    related: None,
                };
                return (Some(d), Some(Target::PacketByte(data + i as u32)));
            }
            if inv.packet_truncated_from.is_none() && recorded.len() != replayed.len() {
                let d = Divergence {
                    kind: DivergenceKind::PacketLength {
                        recorded: recorded.len(),
                        replayed: replayed.len(),
                    },
                    message: format!(
                        "the final packet has {} bytes in the replay, {} in the recording",
                        replayed.len(),
                        recorded.len()
                    ),
                    at: exit,
                    related: None,
                };
                return (Some(d), Some(Target::PacketWindow));
            }
        }
        let recorded = inv.retval.to_native();
        if r0 != recorded {
            let d = Divergence {
                kind: DivergenceKind::ReturnValue {
                    recorded,
                    replayed: r0,
                },
                message: format!(
                    "the program returns {} in the replay, {} in the recording",
                    r0 as i64, recorded as i64
                ),
                at: exit,
                related: None,
            };
            return (Some(d), Some(Target::R0));
        }
        (None, None)
    }

    /// Re-runs invocation `index` step by step (on a world rebuilt to just
    /// before it, leaving the replayer's own world alone) to find the
    /// instruction behind a differing end state.
    fn locate(&self, index: u64, target: Target, d: &mut Divergence) {
        let mut machine = self.new_machine();
        let (mut world, from) = self.restored_world(self.checkpoints.nearest(index));
        for i in from..index {
            world = self.fast_forward(i, &mut machine, world);
        }
        let Ok(mut env) = self.begin(index, &mut machine, world) else {
            return;
        };
        let mut last = None;
        loop {
            let step = machine.steps();
            let fx = machine.step(&mut env);
            let hit = fx.effects.iter().any(|e| match (target, &*e) {
                (Target::R0, Effect::Reg { reg: 0, .. }) => true,
                (Target::PacketByte(off), Effect::Store(w)) => {
                    w.region == ids::PACKET && (w.offset..w.offset + w.len as u32).contains(&off)
                }
                (
                    Target::PacketByte(off),
                    Effect::Write {
                        region,
                        offset,
                        old,
                    },
                ) => *region == ids::PACKET && (*offset..*offset + old.len() as u32).contains(&off),
                (Target::PacketWindow, Effect::PacketData { .. }) => true,
                (Target::PacketWindow, Effect::RegionReplaced { id, .. }) => *id == ids::PACKET,
                _ => false,
            });
            if hit {
                last = Some(self.location(fx.prog, fx.pc as u32, Some(step)));
            }
            if !matches!(fx.outcome, StepOutcome::Running) {
                break;
            }
        }
        match (target, last) {
            (Target::R0, last) => d.related = last,
            (_, Some(l)) => d.at = l,
            (Target::PacketByte(_), None) => {
                d.message.push_str("; the replay never writes that byte")
            }
            (_, None) => d
                .message
                .push_str("; the replay never moves the packet bounds"),
        }
    }
}

/// Replays invocation `index` of `trace` (after the invocations before it,
/// for the maps and global data they leave) and compares it with its recording.
pub fn replay_invocation(trace: &Trace, index: u64) -> Result<FidelityReport, ReplayError> {
    Replayer::new(trace).replay(index)
}

/// Replays every invocation of `trace` in order: the fidelity check the
/// recorder runs at the end of each recording.
pub fn check_all(trace: &Trace) -> Summary {
    Replayer::new(trace).check_all()
}
