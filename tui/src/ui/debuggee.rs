//! The shared state every pane looks at: the trace, the session over one
//! invocation, names for instructions, the sources, and what is derived
//! once per position (the last step's changes, the memory the current
//! instruction touches, the explanation). Panes read it; movements go
//! through it, long ones in chunks (see [`Job`]).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use bpfrr_replayer::env::recorded::RecordedEnv;
use bpfrr_replayer::replay::Replayer;
use bpfrr_replayer::session::{EndKind, Session, SessionEnv, StepRecord, Stop, StopReason};
use bpfrr_replayer::vm::{ContextLayout, SkbProgram, split_address};
use bpfrr_trace::catalog::ProgType;
use bpfrr_trace::isa::{CallTarget, DisasmOptions, Imm64Kind, Insn, branch_target, format_insn};
use bpfrr_trace::trace::Trace;

use super::explain;
use super::packet_fields::LinkLayer;
use super::sources::Sources;

/// The session type of the UI.
pub type UiSession<'t> = Session<RecordedEnv<'t>>;

/// The text of every instruction of one program and the labels of jump targets.
#[derive(Clone, Debug, Default)]
pub struct ProgramText {
    pub name: String,
    /// Per slot: the instruction's text (None for the second slot of ld_imm64).
    pub insns: Vec<Option<String>>,
    /// Label of each jump/call target and function start.
    pub labels: BTreeMap<usize, String>,
}

/// Memory the current instruction is about to read or write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access {
    pub addr: u64,
    pub len: usize,
    pub write: bool,
}

/// What is derived once per position.
#[derive(Clone, Debug, Default)]
pub struct View {
    pub position: u64,
    pub prog: usize,
    pub pc: usize,
    pub insn: Option<Insn>,
    /// (file index in `Sources`, line) of the current instruction.
    pub line: Option<(usize, u32)>,
    /// The step that led here.
    pub last: Option<StepRecord>,
    /// Registers the last step changed.
    pub changed: [bool; 11],
    pub access: Option<Access>,
    /// The plain-words explanation of the current instruction.
    pub explain: String,
}

/// A movement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Motion {
    Step,
    Next,
    Finish,
    Continue,
    ReverseStep,
    ReverseNext,
    ReverseFinish,
    ReverseContinue,
}

impl Motion {
    pub fn name(self) -> &'static str {
        match self {
            Motion::Step => "step",
            Motion::Next => "next",
            Motion::Finish => "finish",
            Motion::Continue => "continue",
            Motion::ReverseStep => "reverse-step",
            Motion::ReverseNext => "reverse-next",
            Motion::ReverseFinish => "reverse-finish",
            Motion::ReverseContinue => "reverse-continue",
        }
    }
}

/// A movement that may take long, run a slice at a time so the UI keeps
/// drawing and reading keys in between.
#[derive(Clone, Debug)]
pub struct Job {
    pub motion: Motion,
    pub started: Instant,
    pub start_position: u64,
    /// Frame depth when it started (next/finish stop relative to it).
    depth: usize,
    first: bool,
    pub cancelled: bool,
}

impl Job {
    pub fn new(motion: Motion, position: u64, depth: usize) -> Job {
        Job {
            motion,
            started: Instant::now(),
            start_position: position,
            depth,
            first: true,
            cancelled: false,
        }
    }
}

/// The trace, the session and everything derived from them.
pub struct Debuggee<'t> {
    pub trace: &'t Trace,
    pub trace_name: String,
    pub replayer: Replayer<'t>,
    pub session: UiSession<'t>,
    pub invocation: u64,
    pub programs: Vec<ProgramText>,
    pub sources: Sources,
    pub link: LinkLayer,
    pub view: View,
    /// What the last movement or command said.
    pub last_stop: Option<Stop>,
    /// bpf_printk lines of this invocation, as execution first reached them.
    pub printk: Vec<String>,
}

impl<'t> Debuggee<'t> {
    /// A debuggee on invocation `invocation` of `trace`.
    pub fn new(
        trace: &'t Trace,
        trace_path: Option<&Path>,
        invocation: u64,
    ) -> anyhow::Result<Self> {
        let count = trace.invocation_count();
        if count == 0 {
            anyhow::bail!("the trace holds no invocations: record some runs first");
        }
        if invocation >= count {
            anyhow::bail!(
                "the trace has {count} invocations (0 to {}); there is no invocation {invocation}",
                count - 1
            );
        }
        let mut replayer = Replayer::new(trace);
        let session = Session::for_invocation(&mut replayer, invocation)
            .map_err(|e| anyhow::anyhow!("cannot replay invocation {invocation}: {e}"))?;
        let trace_name = trace_path
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| trace.name().to_string());
        let mut d = Debuggee {
            trace,
            trace_name,
            replayer,
            session,
            invocation,
            programs: Vec::new(),
            sources: Sources::from_trace(trace, trace_path),
            link: LinkLayer::Ethernet,
            view: View::default(),
            last_stop: None,
            printk: Vec::new(),
        };
        d.programs = program_texts(trace, &d.session);
        d.link = link_layer(trace, invocation);
        d.refresh();
        Ok(d)
    }

    /// Switches to another invocation (the current one is run to its end
    /// first, so what it wrote to maps carries over).
    pub fn switch_invocation(&mut self, index: u64) -> anyhow::Result<()> {
        if index >= self.trace.invocation_count() {
            anyhow::bail!(
                "there is no invocation {index}; the trace has {}",
                self.trace.invocation_count()
            );
        }
        let next = Session::for_invocation(&mut self.replayer, index)
            .map_err(|e| anyhow::anyhow!("cannot replay invocation {index}: {e}"))?;
        let old = std::mem::replace(&mut self.session, next);
        // Breakpoints and watchpoints follow the user to the new invocation.
        for b in old.breakpoints() {
            let spec = match &b.condition {
                Some(c) => format!("{} if {c}", location_spec(&b.location)),
                None => location_spec(&b.location),
            };
            let _ = self.session.add_breakpoint(&spec);
        }
        old.finish_into(&mut self.replayer, self.invocation);
        self.invocation = index;
        self.link = link_layer(self.trace, index);
        self.printk.clear();
        self.last_stop = None;
        self.refresh();
        Ok(())
    }

    /// Recomputes the derived view after the position changed.
    pub fn refresh(&mut self) {
        for e in self.session.env_mut().model_mut().take_events() {
            if let bpfrr_replayer::env::ModelEvent::Printk(line) = e {
                self.printk.push(line);
            }
        }
        let s = &mut self.session;
        let last = s.last_step();
        let mut changed = [false; 11];
        if let Some(l) = &last {
            for r in &l.regs {
                if (r.reg as usize) < 11 {
                    changed[r.reg as usize] = true;
                }
            }
        }
        let prog = s.prog();
        let pc = s.pc();
        let insn = s.machine().program(prog).and_then(|p| p.insn(pc)).copied();
        let line = s
            .line()
            .and_then(|l| self.sources.find(&l.file).map(|f| (f, l.line)));
        let access = if s.at_end() {
            None
        } else {
            insn.and_then(|i| access_of(&i, s))
        };
        let mut view = View {
            position: s.position(),
            prog,
            pc,
            insn,
            line,
            last,
            changed,
            access,
            explain: String::new(),
        };
        view.explain = explain::explain(self, &view);
        self.view = view;
    }

    /// Starts a movement: one step at once, the others as a job.
    pub fn begin(&mut self, motion: Motion) -> Option<Job> {
        match motion {
            Motion::Step => {
                let stop = self.session.step();
                self.finish_motion(stop);
                None
            }
            Motion::ReverseStep => {
                let stop = self.session.reverse_step();
                self.finish_motion(stop);
                None
            }
            _ => Some(Job::new(
                motion,
                self.session.position(),
                self.session.frames().len(),
            )),
        }
    }

    /// Runs a slice of a job of about `slice`. Returns the stop when the job is over.
    pub fn run_slice(&mut self, job: &mut Job, slice: Duration) -> Option<Stop> {
        if job.cancelled {
            let stop = Stop {
                reason: StopReason::Interrupted,
                position: self.session.position(),
            };
            self.finish_motion(stop.clone());
            return Some(stop);
        }
        let deadline = Instant::now() + slice;
        self.session
            .set_progress(Some(Box::new(move |_| Instant::now() < deadline)));
        let s = &mut self.session;
        let depth = s.frames().len();
        let d0 = job.depth;
        let first = std::mem::replace(&mut job.first, false);
        // Resuming next/finish after an interruption: finish frames until
        // the depth the command aims for is reached.
        let stop = match (job.motion, first) {
            (Motion::Next, true) => s.next(),
            (Motion::Finish, true) => s.finish(),
            (Motion::ReverseNext, true) => s.reverse_next(),
            (Motion::ReverseFinish, true) => s.reverse_finish(),
            (Motion::Continue, _) => s.continue_(),
            (Motion::ReverseContinue, _) => s.reverse_continue(),
            (Motion::Next, false) if depth > d0 => s.finish(),
            (Motion::Finish, false) if depth >= d0 => s.finish(),
            (Motion::ReverseNext, false) if depth > d0 => s.reverse_finish(),
            (Motion::ReverseFinish, false) if depth >= d0 => s.reverse_finish(),
            (Motion::Step, _) => s.step(),
            (Motion::ReverseStep, _) => s.reverse_step(),
            _ => Stop {
                reason: StopReason::Done,
                position: s.position(),
            },
        };
        self.session.set_progress(None);
        let depth = self.session.frames().len();
        let reached = match job.motion {
            Motion::Next | Motion::ReverseNext => depth <= d0,
            Motion::Finish | Motion::ReverseFinish => depth < d0 || self.session.at_end(),
            _ => true,
        };
        let over = match &stop.reason {
            StopReason::Interrupted => job.cancelled,
            StopReason::Done => reached || first,
            _ => true,
        };
        if over {
            self.finish_motion(stop.clone());
            Some(stop)
        } else {
            None
        }
    }

    /// Records a movement's stop and refreshes the view.
    pub fn finish_motion(&mut self, stop: Stop) {
        self.last_stop = Some(stop);
        self.refresh();
    }

    /// Goes to step `n`.
    pub fn goto(&mut self, n: u64) {
        let stop = self.session.goto(n);
        self.finish_motion(stop);
    }

    /// Id of an enabled or disabled breakpoint stopping at (prog, pc).
    pub fn breakpoint_at(&self, prog: usize, pc: usize) -> Option<u32> {
        self.session
            .breakpoints()
            .iter()
            .find(|b| b.sites.contains(&(prog, pc)))
            .map(|b| b.id)
    }

    /// Whether a breakpoint stops at (prog, pc) and is enabled.
    pub fn has_enabled_breakpoint(&self, prog: usize, pc: usize) -> bool {
        self.session
            .breakpoints()
            .iter()
            .any(|b| b.enabled && b.sites.contains(&(prog, pc)))
    }

    /// Sets a breakpoint at slot `pc` of the current program, or deletes the one there.
    pub fn toggle_breakpoint(&mut self, pc: usize) -> String {
        let prog = self.view.prog;
        if let Some(id) = self.breakpoint_at(prog, pc) {
            return match self.session.delete_point(id) {
                Ok(()) => format!("deleted breakpoint {id} at instruction {pc}"),
                Err(e) => e.to_string(),
            };
        }
        match self.session.add_breakpoint(&pc.to_string()) {
            Ok(id) => format!("breakpoint {id} at instruction {pc}"),
            Err(e) => e.to_string(),
        }
    }

    /// The first instruction slot of source line `line` of file `file` in the current program.
    pub fn first_pc_of_line(&self, file: usize, line: u32) -> Option<usize> {
        let name = &self.sources.files.get(file)?.name;
        let p = self.session.machine().program(self.view.prog)?;
        (0..p.len()).find(|&pc| {
            p.insn(pc).is_some()
                && p.line_of(pc)
                    .is_some_and(|l| l.line == line && &l.file == name)
        })
    }

    /// A movement's stop in words, for the status line.
    pub fn describe_stop(&self, stop: &Stop) -> String {
        let at = format!("step {}", stop.position);
        match &stop.reason {
            StopReason::Done => at,
            StopReason::Breakpoint { id } => format!("breakpoint {id} hit at {at}"),
            StopReason::Watchpoint { id, old, new } => format!(
                "watchpoint {id} changed at {at}: {} -> {}",
                hex_bytes(old.as_deref()),
                hex_bytes(new.as_deref())
            ),
            StopReason::Exited { r0 } => {
                let layout = self.session.machine().memory().context_layout().copied();
                match bpfrr_replayer::env::model::verdict_name(layout, *r0) {
                    Some(v) => format!("the program returned {r0} ({v}) at {at}"),
                    None => format!("the program returned {r0} at {at}"),
                }
            }
            StopReason::Fault(f) => format!("fault at {at}: {f}"),
            StopReason::Divergence { message } => format!("divergence at {at}: {message}"),
            StopReason::Start => "at the first step".to_string(),
            StopReason::Interrupted => format!("stopped at {at}"),
        }
    }

    /// How the invocation ends, once known.
    pub fn end_text(&self) -> Option<String> {
        let e = self.session.end()?;
        Some(match &e.kind {
            EndKind::Exited(r0) => format!("returns {r0} after {} steps", e.position),
            EndKind::Fault(_) => format!("faults at step {}", e.position),
            EndKind::Divergence { .. } => format!("diverges at step {}", e.position),
        })
    }
}

fn hex_bytes(b: Option<&[u8]>) -> String {
    match b {
        None => "unreadable".into(),
        Some(b) => {
            let mut v = 0u64;
            for (i, x) in b.iter().take(8).enumerate() {
                v |= (*x as u64) << (8 * i);
            }
            format!("{v:#x}")
        }
    }
}

fn location_spec(l: &bpfrr_replayer::session::BreakLocation) -> String {
    use bpfrr_replayer::session::BreakLocation as L;
    match l {
        L::Insn { pc, .. } => pc.to_string(),
        L::Line { file, line } => format!("{file}:{line}"),
        L::Function(f) => f.clone(),
        L::Helper { name, .. } => name.clone(),
    }
}

/// Where the packet data of an invocation starts.
fn link_layer(trace: &Trace, invocation: u64) -> LinkLayer {
    let prog_type = trace
        .invocation(invocation)
        .ok()
        .and_then(|i| trace.programs().get(i.program.to_native() as usize))
        .and_then(|p| ProgType::from_number(p.prog_type));
    match prog_type {
        Some(ProgType::CgroupSkb) => LinkLayer::Ip,
        _ => LinkLayer::Ethernet,
    }
}

/// The memory `insn` reads or writes at the current position.
fn access_of(insn: &Insn, s: &UiSession<'_>) -> Option<Access> {
    let regs = s.regs();
    let at = |r: u8, off: i16| regs[r as usize].wrapping_add(off as i64 as u64);
    match *insn {
        Insn::Load { size, src, off, .. } => Some(Access {
            addr: at(src, off),
            len: size.bytes(),
            write: false,
        }),
        Insn::Store { size, dst, off, .. } | Insn::Atomic { size, dst, off, .. } => Some(Access {
            addr: at(dst, off),
            len: size.bytes(),
            write: true,
        }),
        Insn::LoadPacket { size, src, imm } => {
            let data = s.machine().memory().packet()?.data;
            let extra = src.map_or(0, |r| regs[r as usize]);
            Some(Access {
                addr: data.wrapping_add(extra).wrapping_add(imm as i64 as u64),
                len: size.bytes(),
                write: false,
            })
        }
        _ => None,
    }
}

/// Whether `addr` lies in the packet data; its offset from `data` if so.
pub fn packet_offset(s: &UiSession<'_>, addr: u64) -> Option<i64> {
    let p = s.machine().memory().packet()?;
    let (id, off) = split_address(addr);
    let (pid, data) = split_address(p.data);
    (id == pid).then_some(off - data)
}

/// Instruction texts with map and helper names and jump labels.
fn program_texts(trace: &Trace, s: &UiSession<'_>) -> Vec<ProgramText> {
    let m = s.machine();
    (0..m.programs())
        .map(|pi| {
            let Some(p) = m.program(pi) else {
                return ProgramText::default();
            };
            let tp = trace.programs().get(pi);
            let mut labels = BTreeMap::new();
            for f in s.info().functions.get(pi).into_iter().flatten() {
                labels.insert(f.start, f.name.clone());
            }
            for pc in 0..p.len() {
                if let Some(i) = p.insn(pc) {
                    let target = match i {
                        Insn::Call(CallTarget::Local(_))
                        | Insn::Ja { .. }
                        | Insn::Jump { .. }
                        | Insn::MayGoto { .. } => {
                            branch_target(i, pc).and_then(|t| usize::try_from(t).ok())
                        }
                        _ => None,
                    };
                    if let Some(t) = target {
                        labels.entry(t).or_insert_with(|| format!("L{t}"));
                    }
                }
            }
            let label_of = |t: usize| labels.get(&t).cloned();
            let opts = DisasmOptions {
                helper_names: true,
                label: Some(&label_of),
            };
            let insns = (0..p.len())
                .map(|pc| {
                    p.insn(pc).map(|i| match *i {
                        Insn::LoadImm64 { kind, dst, imm } => {
                            map_ref_text(trace, tp, kind, dst, imm)
                                .unwrap_or_else(|| format_insn(i, pc, &opts))
                        }
                        // `call bpf_dynptr_slice` rather than `call kfunc 0xf9a2`.
                        Insn::Call(CallTarget::Kfunc { btf_id, .. }) => s
                            .env()
                            .kfunc_name(btf_id)
                            .map_or_else(|| format_insn(i, pc, &opts), |n| format!("call {n}")),
                        _ => format_insn(i, pc, &opts),
                    })
                })
                .collect();
            ProgramText {
                name: p.name().to_string(),
                insns,
                labels,
            }
        })
        .collect()
}

/// `r1 = map[blocked_src]`, `r2 = map_value[.rodata]+4` for ld_imm64 map references.
fn map_ref_text(
    trace: &Trace,
    prog: Option<&bpfrr_trace::trace::Program>,
    kind: Imm64Kind,
    dst: u8,
    imm: u64,
) -> Option<String> {
    let index = (imm & 0xffff_ffff) as usize;
    let map_id = match kind {
        Imm64Kind::MapIdx | Imm64Kind::MapIdxValue => *prog?.used_maps.get(index)? as usize,
        Imm64Kind::MapFd | Imm64Kind::MapValue => index,
        _ => return None,
    };
    let name = trace
        .maps()
        .get(map_id)
        .map_or_else(|| format!("map {map_id}"), |m| m.name.clone());
    Some(match kind {
        Imm64Kind::MapIdx | Imm64Kind::MapFd => format!("r{dst} = map[{name}] ll"),
        _ => {
            let off = imm >> 32;
            if off == 0 {
                format!("r{dst} = map_value[{name}] ll")
            } else {
                format!("r{dst} = map_value[{name}]+{off} ll")
            }
        }
    })
}

/// The context layout's verdict name of a return value, for lists.
pub fn verdict(trace: &Trace, program: u32, r0: u64) -> Option<&'static str> {
    let p = trace.programs().get(program as usize)?;
    let layout = match ProgType::from_number(p.prog_type)? {
        ProgType::Xdp => ContextLayout::Xdp,
        ProgType::SchedCls | ProgType::SchedAct => ContextLayout::SkBuff(SkbProgram::Tc),
        ProgType::CgroupSkb => ContextLayout::SkBuff(SkbProgram::CgroupSkb),
        _ => return None,
    };
    bpfrr_replayer::env::model::verdict_name(Some(layout), r0)
}
