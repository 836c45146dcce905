//! Running a [`Command`] against a session. [`execute_session`] works on
//! any session (a replay or a model run); [`Debugger`] adds what needs the
//! trace: switching invocation, listing invocations and maps.

use bpfrr_replayer::env::recorded::RecordedEnv;
use bpfrr_replayer::expr::{self, Format, Location, ValueKind};
use bpfrr_replayer::replay::Replayer;
use bpfrr_replayer::session::{OriginEnd, Session, SessionEnv, Stop, StopReason};
use bpfrr_trace::catalog::{MapType, ProgType, helper_by_name};
use bpfrr_trace::trace::{SnapshotTime, Trace};

use super::help::{COMMANDS, CommandHelp, find};
use super::output::*;
use super::parse::{BreakSpec, Command, DumpFormat, Examine, InfoTopic, parse};
use super::view;

/// `info invocations` lists at most this many, around the current one.
pub const MAX_LISTED_INVOCATIONS: u64 = 200;

/// Lines `list` shows on each side of the centre, and instructions `disas` shows before/after.
const LIST_RADIUS: u32 = 5;
const DISAS_BEFORE: usize = 5;
const DISAS_AFTER: usize = 10;

/// Runs `command` on `session`. `prog_type` names return values
/// (`XDP_PASS`). Commands that need a trace (`invocation`, `info
/// invocations`, `info maps`) answer with an error; use [`Debugger`] for those.
pub fn execute_session<E: SessionEnv>(
    session: &mut Session<E>,
    command: &Command,
    prog_type: Option<ProgType>,
) -> Output {
    match run(session, command, prog_type) {
        Ok(o) => o,
        Err(message) => Output::Error { message },
    }
}

type Result<T> = std::result::Result<T, String>;

fn stopped<E: SessionEnv>(s: &Session<E>, stop: &Stop, prog_type: Option<ProgType>) -> Output {
    let reason = match &stop.reason {
        StopReason::Done => Reason::Done,
        StopReason::Breakpoint { id } => Reason::Breakpoint { id: *id },
        StopReason::Watchpoint { id, old, new } => Reason::Watchpoint {
            id: *id,
            expr: s
                .watchpoints()
                .iter()
                .find(|w| w.id == *id)
                .map_or_else(String::new, |w| w.expr.clone()),
            old: old.as_deref().map(hex),
            new: new.as_deref().map(hex),
        },
        StopReason::Exited { r0 } => Reason::Exited {
            r0: *r0,
            name: view::retval_name(prog_type, *r0),
        },
        StopReason::Fault(f) => Reason::Fault {
            message: f.to_string(),
        },
        StopReason::Divergence { message } => Reason::Divergence {
            message: message.clone(),
        },
        StopReason::Start => Reason::Start,
        StopReason::Interrupted => Reason::Interrupted,
    };
    Output::Stopped(Stopped {
        reason,
        place: view::current_place(s),
    })
}

/// Repeats a one-step movement `n` times, stopping early on anything but `Done`.
fn repeat<E: SessionEnv>(
    s: &mut Session<E>,
    n: u64,
    mut one: impl FnMut(&mut Session<E>) -> Stop,
) -> Stop {
    let mut stop = one(s);
    for _ in 1..n {
        if stop.reason != StopReason::Done {
            break;
        }
        stop = one(s);
    }
    stop
}

fn check_insn<E: SessionEnv>(s: &Session<E>, pc: usize) -> Result<()> {
    let m = s.machine();
    let exists = (0..m.programs()).any(|p| m.program(p).is_some_and(|p| p.insn(pc).is_some()));
    if exists {
        Ok(())
    } else {
        Err(format!(
            "instruction {pc} does not exist (or is the second half of an ld_imm64); see `disas`"
        ))
    }
}

fn run<E: SessionEnv>(
    s: &mut Session<E>,
    command: &Command,
    prog_type: Option<ProgType>,
) -> Result<Output> {
    let stop = match command {
        Command::Step(n) => repeat(s, *n, Session::step),
        Command::Next(n) => repeat(s, *n, Session::next),
        Command::ReverseStep(n) => repeat(s, *n, Session::reverse_step),
        Command::ReverseNext(n) => repeat(s, *n, Session::reverse_next),
        Command::Finish => s.finish(),
        Command::Continue => s.continue_(),
        Command::ReverseFinish => s.reverse_finish(),
        Command::ReverseContinue => s.reverse_continue(),
        Command::Goto(n) => s.goto(*n),
        Command::Until(pc) => {
            check_insn(s, *pc)?;
            s.goto_visit(*pc, None, true)
        }
        Command::BackTo(pc) => {
            check_insn(s, *pc)?;
            s.goto_visit(*pc, None, false)
        }
        other => return inspect(s, other),
    };
    Ok(stopped(s, &stop, prog_type))
}

/// The commands that do not move.
fn inspect<E: SessionEnv>(s: &mut Session<E>, command: &Command) -> Result<Output> {
    let err = |e: bpfrr_replayer::session::SessionError| e.to_string();
    Ok(match command {
        Command::Break {
            location,
            condition,
        } => {
            let loc = match location {
                BreakSpec::Here => format!("*{}", s.pc()),
                BreakSpec::Text(t) => t.clone(),
                BreakSpec::Helper(h) => {
                    if helper_by_name(h).is_none() {
                        return Err(format!(
                            "there is no helper called `{h}`; give its full name, e.g. bpf_map_lookup_elem"
                        ));
                    }
                    h.clone()
                }
            };
            let spec = match condition {
                Some(c) => format!("{loc} if {c}"),
                None => loc,
            };
            let id = s.add_breakpoint(&spec).map_err(err)?;
            let b = s
                .breakpoints()
                .iter()
                .find(|b| b.id == id)
                .ok_or("the breakpoint vanished")?;
            Output::BreakpointSet(view::breakpoint_info(b))
        }
        Command::Ignore { id, count } => {
            s.set_ignore_count(*id, *count).map_err(err)?;
            Output::Message {
                message: format!("will ignore the next {count} hits of breakpoint {id}"),
            }
        }
        Command::Condition { id, condition } => {
            s.set_condition(*id, condition.as_deref()).map_err(err)?;
            Output::Message {
                message: match condition {
                    Some(c) => format!("breakpoint {id} stops only when {c}"),
                    None => format!("breakpoint {id} is now unconditional"),
                },
            }
        }
        Command::Enable(ids) | Command::Disable(ids) | Command::Delete(ids) => {
            let targets: Vec<u32> = if ids.is_empty() {
                s.breakpoints()
                    .iter()
                    .map(|b| b.id)
                    .chain(s.watchpoints().iter().map(|w| w.id))
                    .collect()
            } else {
                ids.clone()
            };
            let verb = match command {
                Command::Enable(_) => "enabled",
                Command::Disable(_) => "disabled",
                _ => "deleted",
            };
            if targets.is_empty() {
                return Ok(Output::Message {
                    message: format!("there are no breakpoints or watchpoints; nothing {verb}"),
                });
            }
            for id in &targets {
                match command {
                    Command::Enable(_) => s.enable_point(*id, true),
                    Command::Disable(_) => s.enable_point(*id, false),
                    _ => s.delete_point(*id),
                }
                .map_err(err)?;
            }
            let list: Vec<String> = targets.iter().map(u32::to_string).collect();
            Output::Message {
                message: format!("{verb} {}", list.join(", ")),
            }
        }
        Command::Watch(text) => {
            let id = s.add_watchpoint(text).map_err(err)?;
            let w = s
                .watchpoints()
                .iter()
                .find(|w| w.id == id)
                .ok_or("the watchpoint vanished")?;
            Output::WatchpointSet(view::watchpoint_info(s, w))
        }
        Command::Print { format, expr: text } => {
            let fmt = match format {
                Some(f) => Format::from_name(f).map_err(|e| e.to_string())?,
                None => Format::Natural,
            };
            let v = s.eval(text).map_err(err)?;
            let rendered = expr::render(&v, fmt, &s.scope());
            let value = match v.kind {
                ValueKind::Int { .. } | ValueKind::Pointer { .. } => v.as_u64(),
                _ => None,
            };
            Output::Value(ValueOut {
                expr: text.clone(),
                format: format.clone(),
                text: rendered,
                value,
                location: v.location.map(|l| match l {
                    Location::Reg { .. } => view::describe_location(s, &l),
                    Location::Mem { addr, .. } => {
                        view::points_to(s, addr).unwrap_or_else(|| format!("{addr:#x}"))
                    }
                }),
            })
        }
        Command::Examine(ex) => Output::Memory(examine(s, ex)?),
        Command::Origin(text) => {
            let o = s.origin(text).map_err(err)?;
            let chain = o
                .chain
                .iter()
                .map(|l| OriginStep {
                    place: view::place_at(s, l.step, l.prog, l.pc, l.line.as_ref(), l.text.clone()),
                    what: l.what.clone(),
                    wrote: view::describe_location(s, &l.location),
                })
                .collect();
            Output::Origin(OriginOut {
                expr: text.clone(),
                location: view::describe_location(s, &o.location),
                chain,
                end: origin_end(&o.end),
            })
        }
        Command::Info(topic) => match topic {
            InfoTopic::Breakpoints => Output::Breakpoints {
                breakpoints: s.breakpoints().iter().map(view::breakpoint_info).collect(),
            },
            InfoTopic::Watchpoints => Output::Watchpoints {
                watchpoints: s
                    .watchpoints()
                    .iter()
                    .map(|w| view::watchpoint_info(s, w))
                    .collect(),
            },
            InfoTopic::Registers => Output::Registers {
                registers: view::registers(s),
            },
            InfoTopic::Frame => {
                let mut f = view::frames(s, true);
                if f.is_empty() {
                    return Err("the program has no frame here".into());
                }
                Output::Frame(f.swap_remove(0))
            }
            InfoTopic::State => Output::State(view::state(s)),
            InfoTopic::Line => Output::Line(view::current_place(s)),
            InfoTopic::Invocations | InfoTopic::Maps => {
                return Err(
                    "this session is not over a trace, so it has no invocations or map definitions"
                        .into(),
                );
            }
        },
        Command::Backtrace => Output::Backtrace {
            frames: view::frames(s, false),
        },
        Command::List(center) => list(s, *center)?,
        Command::Disas(center) => disas(s, *center)?,
        Command::Help(topic) => help(topic.as_deref())?,
        Command::Invocation(_) => {
            return Err("this session is not over a trace; there are no other invocations".into());
        }
        // Movements are handled by `run`.
        _ => return Err("this command moves; it is run by the executor".into()),
    })
}

fn origin_end(end: &OriginEnd) -> String {
    match end {
        OriginEnd::Constant => "a constant in the program".into(),
        OriginEnd::Computed => "computed by that instruction".into(),
        OriginEnd::HelperReturn { helper } => format!("returned by {helper}"),
        OriginEnd::HelperOutput { helper } => format!("written by {helper}"),
        OriginEnd::Packet => "read from the packet".into(),
        OriginEnd::Context => "read from the context".into(),
        OriginEnd::Initial => {
            "already there when the run started (nothing in this run wrote it)".into()
        }
        OriginEnd::Other(s) => s.clone(),
    }
}

fn examine<E: SessionEnv>(s: &Session<E>, ex: &Examine) -> Result<MemoryDump> {
    let v = s.eval(&ex.expr).map_err(|e| e.to_string())?;
    let addr = match (&v.kind, v.location) {
        // A slice or a struct in memory: dump where it is.
        (ValueKind::Bytes(_) | ValueKind::Typed { .. }, Some(Location::Mem { addr, .. })) => addr,
        _ => v.as_u64().ok_or_else(|| {
            format!(
                "`{}` is not an address; x needs a pointer such as pkt, r10 - 16 or ctx",
                ex.expr
            )
        })?,
    };
    let want = ex.count as usize * ex.unit as usize;
    let mem = s.machine().memory();
    let bytes = match mem.read(addr, want) {
        Ok(b) => b.to_vec(),
        Err(fault) => {
            // Dump what is readable up to the end of the region.
            let (mut lo, mut hi) = (0usize, want);
            while lo < hi {
                let mid = (lo + hi).div_ceil(2);
                if mem.read(addr, mid).is_ok() {
                    lo = mid;
                } else {
                    hi = mid - 1;
                }
            }
            if lo == 0 {
                return Err(format!("cannot read memory at `{}`: {fault}", ex.expr));
            }
            mem.read(addr, lo).map(<[u8]>::to_vec).unwrap_or_default()
        }
    };
    let unit = ex.unit as usize;
    let units = bytes
        .chunks(unit)
        .filter(|c| c.len() == unit)
        .map(|c| {
            let mut a = [0u8; 8];
            a[..unit].copy_from_slice(c);
            let v = u64::from_le_bytes(a);
            match ex.format {
                DumpFormat::Hex if unit == 1 => format!("{v:02x}"),
                DumpFormat::Hex => format!("{v:#0w$x}", w = 2 + 2 * unit),
                DumpFormat::Unsigned => v.to_string(),
                DumpFormat::Signed => {
                    let shift = 64 - 8 * unit as u32;
                    (((v << shift) as i64) >> shift).to_string()
                }
            }
        })
        .collect();
    Ok(MemoryDump {
        expr: ex.expr.clone(),
        addr,
        place: view::points_to(s, addr).unwrap_or_else(|| format!("{addr:#x}")),
        unit: ex.unit,
        format: ex.format,
        bytes: hex(&bytes),
        requested: want as u32,
        units,
    })
}

fn breakpoint_sites<E: SessionEnv>(s: &Session<E>) -> Vec<(usize, usize)> {
    s.breakpoints()
        .iter()
        .filter(|b| b.enabled)
        .flat_map(|b| b.sites.iter().copied())
        .collect()
}

fn list<E: SessionEnv>(s: &Session<E>, center: Option<u32>) -> Result<Output> {
    let prog = s.prog();
    let program = s.machine().program(prog).ok_or("no program here")?;
    let here = s.line().cloned().or_else(|| {
        // Before or between lines: the nearest line info at or before pc.
        (0..=s.pc())
            .rev()
            .find_map(|pc| program.line_of(pc).cloned())
    });
    let Some(here) = here else {
        return Err("the program has no line info (it was built without -g or BTF), so there is no source to list".into());
    };
    let mut known = std::collections::BTreeMap::new();
    let mut break_lines = std::collections::BTreeSet::new();
    let sites = breakpoint_sites(s);
    for pc in 0..program.len() {
        if let Some(l) = program.line_of(pc)
            && l.file == here.file
        {
            known
                .entry(l.line)
                .or_insert_with(|| l.text.trim_end().to_string());
            if sites.contains(&(prog, pc)) {
                break_lines.insert(l.line);
            }
        }
    }
    let c = center.unwrap_or(here.line);
    let lines: Vec<SourceLineOut> = known
        .range(c.saturating_sub(LIST_RADIUS)..=c.saturating_add(LIST_RADIUS))
        .map(|(&line, text)| SourceLineOut {
            line,
            text: text.clone(),
            current: line == here.line,
            breakpoint: break_lines.contains(&line),
        })
        .collect();
    if lines.is_empty() {
        return Err(format!(
            "no line of {} near line {c} has line info",
            here.file
        ));
    }
    Ok(Output::Source(SourceOut {
        file: here.file,
        lines,
    }))
}

fn disas<E: SessionEnv>(s: &Session<E>, center: Option<usize>) -> Result<Output> {
    let prog = s.prog();
    let program = s.machine().program(prog).ok_or("no program here")?;
    let c = center.unwrap_or(s.pc());
    if c >= program.len() {
        return Err(format!(
            "instruction {c} is past the end of {} ({} instructions)",
            program.name(),
            program.len()
        ));
    }
    let sites = breakpoint_sites(s);
    let functions = s.info().functions.get(prog);
    let lines = (c.saturating_sub(DISAS_BEFORE)..=(c + DISAS_AFTER).min(program.len() - 1))
        .filter(|&pc| program.insn(pc).is_some())
        .map(|pc| DisasLineOut {
            insn: pc,
            function: functions
                .and_then(|f| f.iter().find(|f| f.start == pc))
                .map(|f| f.name.clone()),
            text: view::insn_text(s, prog, pc),
            current: pc == s.pc(),
            breakpoint: sites.contains(&(prog, pc)),
        })
        .collect();
    Ok(Output::Disassembly {
        program: program.name().to_string(),
        lines,
    })
}

fn help_out(c: &CommandHelp) -> HelpOut {
    HelpOut {
        name: c.name.into(),
        aliases: c.aliases.iter().map(|a| a.to_string()).collect(),
        usage: c.usage.into(),
        summary: c.summary.into(),
    }
}

fn help(topic: Option<&str>) -> Result<Output> {
    let commands = match topic {
        None => COMMANDS.iter().map(help_out).collect(),
        Some(t) => vec![help_out(find(t).ok_or_else(|| {
            format!("`{t}` is not a command; type `help` for the list")
        })?)],
    };
    Ok(Output::Help { commands })
}

/// A replay session over one invocation of a trace, with the replayer
/// that can switch it to another invocation. This is what `bpfrr replay`
/// (batch and UI) drives.
pub struct Debugger<'t> {
    trace: &'t Trace,
    replayer: Replayer<'t>,
    /// Always `Some` between calls (taken only while switching).
    session: Option<Session<RecordedEnv<'t>>>,
    invocation: u64,
}

impl<'t> Debugger<'t> {
    /// A debugger positioned at step 0 of invocation `invocation`.
    pub fn new(trace: &'t Trace, invocation: u64) -> Result<Debugger<'t>> {
        Self::with_replayer(trace, Replayer::new(trace), invocation)
    }

    /// Like `new`, with at most `steps` instructions per invocation (then
    /// a movement stops with a step-budget fault).
    pub fn with_step_budget(trace: &'t Trace, invocation: u64, steps: u64) -> Result<Debugger<'t>> {
        let mut replayer = Replayer::new(trace);
        replayer.set_step_budget(steps);
        Self::with_replayer(trace, replayer, invocation)
    }

    fn with_replayer(
        trace: &'t Trace,
        mut replayer: Replayer<'t>,
        invocation: u64,
    ) -> Result<Debugger<'t>> {
        check_index(trace, invocation)?;
        let session = Session::for_invocation(&mut replayer, invocation)
            .map_err(|e| format!("cannot replay invocation {invocation}: {e}"))?;
        Ok(Debugger {
            trace,
            replayer,
            session: Some(session),
            invocation,
        })
    }

    pub fn trace(&self) -> &'t Trace {
        self.trace
    }

    /// The current invocation's index.
    pub fn invocation(&self) -> u64 {
        self.invocation
    }

    /// The session over the current invocation (for the UI's panes).
    pub fn session(&self) -> &Session<RecordedEnv<'t>> {
        self.session
            .as_ref()
            .expect("the debugger always holds a session between calls")
    }

    /// The session, mutably (e.g. to install a progress callback; it is
    /// lost on `invocation N`, see [`Debugger::switch_invocation`]).
    pub fn session_mut(&mut self) -> &mut Session<RecordedEnv<'t>> {
        self.session
            .as_mut()
            .expect("the debugger always holds a session between calls")
    }

    /// The program type of the current invocation's entry program.
    pub fn prog_type(&self) -> Option<ProgType> {
        let inv = self.trace.invocation(self.invocation).ok()?;
        let p = self
            .trace
            .programs()
            .get(inv.program.to_native() as usize)?;
        ProgType::from_number(p.prog_type)
    }

    /// Where the session is.
    pub fn place(&self) -> Place {
        view::current_place(self.session())
    }

    /// Parses and runs one line; a parse error is an [`Output::Error`].
    pub fn run_line(&mut self, line: &str) -> Output {
        match parse(line) {
            Ok(c) => self.execute(&c),
            Err(e) => Output::error(e.0),
        }
    }

    /// Runs one command.
    pub fn execute(&mut self, command: &Command) -> Output {
        match command {
            Command::Invocation(n) => self.switch_invocation(*n),
            Command::Info(InfoTopic::Invocations) => self.invocations(),
            Command::Info(InfoTopic::Maps) => self.maps(),
            other => {
                let pt = self.prog_type();
                execute_session(self.session_mut(), other, pt)
            }
        }
    }

    /// Switches to invocation `n` at step 0. Breakpoints are set again
    /// (possibly with new numbers); watchpoints are dropped (they watch
    /// addresses of the old run).
    pub fn switch_invocation(&mut self, n: u64) -> Output {
        if let Err(e) = check_index(self.trace, n) {
            return Output::error(e);
        }
        let Some(old) = self.session.take() else {
            return Output::error("the debugger lost its session");
        };
        let breaks: Vec<_> = old.breakpoints().to_vec();
        let watches = old.watchpoints().len();
        let old_index = self.invocation;
        // Going forward, finishing the current run carries the world
        // (maps, global data) to the next invocation without re-running
        // the trace from the start.
        if n > old_index {
            old.finish_into(&mut self.replayer, old_index);
        } else {
            drop(old);
        }
        let session = match Session::for_invocation(&mut self.replayer, n) {
            Ok(s) => s,
            Err(e) => {
                let message = format!("cannot replay invocation {n}: {e}");
                // Go back to where we were.
                match Session::for_invocation(&mut self.replayer, old_index) {
                    Ok(s) => self.session = Some(s),
                    Err(e2) => {
                        return Output::error(format!(
                            "{message}; and invocation {old_index} cannot be reopened: {e2}"
                        ));
                    }
                }
                return Output::error(message);
            }
        };
        self.session = Some(session);
        self.invocation = n;
        let mut notes = Vec::new();
        let s = self.session_mut();
        for b in &breaks {
            let mut spec = view::location_spec(&b.location);
            if let Some(c) = &b.condition {
                spec = format!("{spec} if {c}");
            }
            match s.add_breakpoint(&spec) {
                Ok(id) => {
                    if !b.enabled {
                        let _ = s.enable_point(id, false);
                    }
                    if id != b.id {
                        notes.push(format!("breakpoint {} is now breakpoint {id}", b.id));
                    }
                }
                Err(e) => notes.push(format!("breakpoint {} was not kept: {e}", b.id)),
            }
        }
        if watches > 0 {
            notes.push(format!(
                "{watches} watchpoint(s) dropped: they watched memory of invocation {old_index}"
            ));
        }
        Output::Switched {
            invocation: n,
            place: view::current_place(self.session()),
            notes,
        }
    }

    fn invocations(&self) -> Output {
        let total = self.trace.invocation_count();
        let half = MAX_LISTED_INVOCATIONS / 2;
        let from = self.invocation.saturating_sub(half);
        let to = (from + MAX_LISTED_INVOCATIONS).min(total);
        let from = to.saturating_sub(MAX_LISTED_INVOCATIONS);
        let programs = self.trace.programs();
        let mut invocations = Vec::new();
        for i in from..to {
            let inv = match self.trace.invocation(i) {
                Ok(inv) => inv,
                Err(e) => return Output::error(format!("cannot read invocation {i}: {e}")),
            };
            let prog = programs.get(inv.program.to_native() as usize);
            let pt = prog.and_then(|p| ProgType::from_number(p.prog_type));
            let retval = inv.retval.to_native();
            invocations.push(InvocationOut {
                index: i,
                program: prog.map_or_else(|| "?".into(), |p| p.name.clone()),
                cpu: inv.cpu.to_native(),
                time_ns: inv.time_ns.to_native(),
                retval,
                retval_name: view::retval_name(pt, retval),
                packet_len: inv.packet.as_ref().map(|p| p.len()),
                partial: inv.partial,
                current: i == self.invocation,
            });
        }
        Output::Invocations {
            current: self.invocation,
            total,
            invocations,
        }
    }

    fn maps(&self) -> Output {
        let maps = self
            .trace
            .maps()
            .iter()
            .enumerate()
            .map(|(i, m)| MapOut {
                index: i,
                name: m.name.clone(),
                map_type: MapType::from_number(m.map_type)
                    .map_or_else(|| format!("type {}", m.map_type), |t| t.name().to_string()),
                key_size: m.key_size,
                value_size: m.value_size,
                max_entries: m.max_entries,
                entries_at_start: m
                    .snapshots
                    .iter()
                    .find(|s| s.when == SnapshotTime::Start)
                    .map(|s| s.entries.len()),
            })
            .collect();
        Output::Maps { maps }
    }
}

fn check_index(trace: &Trace, n: u64) -> Result<()> {
    let total = trace.invocation_count();
    if n < total {
        Ok(())
    } else if total == 0 {
        Err("the trace holds no invocations".into())
    } else {
        Err(format!(
            "there is no invocation {n}; the trace has {total} (0 to {})",
            total - 1
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::{json, text};

    fn sample() -> Trace {
        let p =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/traces/xdp_fw.bpfrr");
        Trace::open(p).expect("the committed sample trace opens")
    }

    /// Words that make random lines look like commands with arguments.
    const PIECES: &[&str] = &[
        "s",
        "n",
        "c",
        "rs",
        "rn",
        "rc",
        "rf",
        "fin",
        "goto",
        "until",
        "back-to",
        "b",
        "tbreak",
        "ignore",
        "condition",
        "delete",
        "enable",
        "disable",
        "watch",
        "p",
        "p/x",
        "p/ip4",
        "x",
        "x/4xg",
        "x/3dh",
        "origin",
        "info",
        "registers",
        "frame",
        "state",
        "maps",
        "invocation",
        "bt",
        "list",
        "disas",
        "help",
        "if",
        "r0",
        "r10",
        "w3",
        "-",
        "+",
        "*",
        "(",
        ")",
        "u32",
        "struct",
        "iphdr",
        "pkt",
        "pkt_end",
        "ctx",
        "->",
        "data",
        "[",
        ":",
        "]",
        "0",
        "1",
        "7",
        "42",
        "99999999999999999999",
        "0x10",
        "-8",
        "xdp_fw.bpf.c:210",
        "parse_packet",
        "helper",
        "bpf_map_lookup_elem",
        "==",
        "&&",
        "/",
        "%",
        "<<",
    ];

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

        /// Random command lines run against a real replay never panic and
        /// always print (text and JSON); errors are one line.
        #[test]
        fn random_command_lines_run_without_panicking(
            lines in proptest::collection::vec(
                proptest::collection::vec(proptest::sample::select(PIECES), 1..6),
                1..8,
            )
        ) {
            let trace = sample();
            let mut d = Debugger::new(&trace, 0).unwrap();
            for words in lines {
                let line = words.join(" ");
                let out = d.run_line(&line);
                let t = text::render(&out);
                let j = json::render(&line, &out);
                proptest::prop_assert!(serde_json::from_str::<serde_json::Value>(&j).is_ok());
                if let Output::Error { message } = &out {
                    proptest::prop_assert!(!message.is_empty() && !message.contains('\n'), "{}", message);
                    proptest::prop_assert!(t.starts_with("error: "));
                }
            }
        }
    }

    #[test]
    fn execute_session_works_on_a_bare_session_and_names_return_values() {
        let trace = sample();
        let mut d = Debugger::new(&trace, 1).unwrap();
        let s = d.session_mut();
        let out = execute_session(s, &Command::Step(3), Some(ProgType::Xdp));
        assert!(matches!(out, Output::Stopped(ref st) if st.place.step == 3));
        let out = execute_session(s, &Command::Info(InfoTopic::Invocations), None);
        assert!(out.is_error());
        let out = execute_session(s, &Command::Continue, Some(ProgType::Xdp));
        match out {
            Output::Stopped(Stopped {
                reason: Reason::Exited { r0, name },
                ..
            }) => {
                assert_eq!(r0, 1);
                assert_eq!(name.as_deref(), Some("XDP_DROP"));
            }
            other => panic!("{other:?}"),
        }
    }
}
