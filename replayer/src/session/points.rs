//! Breakpoints and watchpoints. They share one id space, as in gdb.
//!
//! A breakpoint stops *before* an instruction runs, at each of its sites
//! (program, slot): an instruction index, the first instruction of a
//! source line, a function's entry, or every call of a helper. It may
//! have a condition (an expression), an ignore count, and counts its hits.
//!
//! A watchpoint watches a register or memory range, fixed when it is set
//! (`*(u64 *)(r10 - 8)` watches that stack slot of the current frame). It
//! stops after any step that changes the value, forward or backward.

use bpfrr_trace::catalog::helper_by_name;
use bpfrr_trace::isa::{CallTarget, Insn};

use super::core::{Dir, Session, SessionError, StopReason};
use super::memo::SessionEnv;
use crate::expr::{self, Expr, Location};
use crate::vm::Machine;

/// Identifies a breakpoint or watchpoint.
pub type PointId = u32;

/// Where a breakpoint is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BreakLocation {
    /// An instruction slot, in one program or all.
    Insn { prog: Option<usize>, pc: usize },
    /// `file:line` (the file matches by path suffix).
    Line { file: String, line: u32 },
    /// A function's first instruction.
    Function(String),
    /// Before every call of this helper.
    Helper { id: i32, name: String },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Breakpoint {
    pub id: PointId,
    pub location: BreakLocation,
    /// (program, slot) where it stops.
    pub sites: Vec<(usize, usize)>,
    /// The condition as typed.
    pub condition: Option<String>,
    pub(crate) condition_expr: Option<Expr>,
    /// Hits still to ignore.
    pub ignore: u64,
    /// Times the location was reached with the condition true.
    pub hits: u64,
    pub enabled: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Watchpoint {
    pub id: PointId,
    /// The expression as typed.
    pub expr: String,
    pub location: Location,
    pub hits: u64,
    pub enabled: bool,
    pub(crate) last: Option<Vec<u8>>,
}

#[derive(Default)]
pub(crate) struct Points {
    pub breaks: Vec<Breakpoint>,
    pub watches: Vec<Watchpoint>,
    next_id: PointId,
    /// Per program, per slot: an enabled breakpoint is there.
    at: Vec<Vec<bool>>,
}

impl Points {
    fn rebuild(&mut self, machine: &Machine) {
        self.at = (0..machine.programs())
            .map(|p| vec![false; machine.program(p).map_or(0, |p| p.len())])
            .collect();
        for b in self.breaks.iter().filter(|b| b.enabled) {
            for &(p, pc) in &b.sites {
                if let Some(slot) = self.at.get_mut(p).and_then(|v| v.get_mut(pc)) {
                    *slot = true;
                }
            }
        }
    }

    fn new_id(&mut self) -> PointId {
        self.next_id += 1;
        self.next_id
    }
}

/// The bytes at a location now, if readable.
pub(crate) fn read_location(machine: &Machine, loc: &Location) -> Option<Vec<u8>> {
    match *loc {
        Location::Reg { reg, width } => {
            let v = *machine.regs().get(reg as usize)?;
            Some(v.to_le_bytes()[..(width as usize).min(8)].to_vec())
        }
        Location::Mem { addr, len } => machine
            .memory()
            .read(addr, len as usize)
            .ok()
            .map(<[u8]>::to_vec),
    }
}

impl<E: SessionEnv> Session<E> {
    /// Sets a breakpoint: `LOCATION [if CONDITION]`, where LOCATION is an
    /// instruction index (`42`), `file:line` (`xdp_fw.bpf.c:42`), a function
    /// name (`parse_packet`) or a helper (`bpf_map_lookup_elem`: before
    /// every call of it).
    pub fn add_breakpoint(&mut self, spec: &str) -> Result<PointId, SessionError> {
        let (loc_text, cond) = match spec.split_once(" if ") {
            Some((l, c)) => (l.trim(), Some(c.trim())),
            None => (spec.trim(), None),
        };
        let location = self.parse_location(loc_text)?;
        let sites = self.sites(&location)?;
        let (condition, condition_expr) = match cond {
            Some(c) => (Some(c.to_string()), Some(expr::parse(c)?)),
            None => (None, None),
        };
        let id = self.points.new_id();
        self.points.breaks.push(Breakpoint {
            id,
            location,
            sites,
            condition,
            condition_expr,
            ignore: 0,
            hits: 0,
            enabled: true,
        });
        self.points.rebuild(&self.machine);
        Ok(id)
    }

    fn parse_location(&self, text: &str) -> Result<BreakLocation, SessionError> {
        if text.is_empty() {
            return Err(SessionError::invalid(
                "a breakpoint needs a location: an instruction index, file:line, a function or a helper",
            ));
        }
        if let Some((file, line)) = text.rsplit_once(':')
            && let Ok(line) = line.trim().parse::<u32>()
        {
            return Ok(BreakLocation::Line {
                file: file.trim().to_string(),
                line,
            });
        }
        let digits = text.strip_prefix('*').unwrap_or(text);
        if let Ok(pc) = parse_index(digits) {
            return Ok(BreakLocation::Insn { prog: None, pc });
        }
        if !self.info.find_function(text).is_empty() {
            return Ok(BreakLocation::Function(text.to_string()));
        }
        if let Some(h) = helper_by_name(text) {
            return Ok(BreakLocation::Helper {
                id: h.id as i32,
                name: h.name.to_string(),
            });
        }
        Err(SessionError::invalid(format!(
            "`{text}` is not an instruction index, file:line, function or helper name"
        )))
    }

    fn sites(&self, loc: &BreakLocation) -> Result<Vec<(usize, usize)>, SessionError> {
        let m = &self.machine;
        let mut out = Vec::new();
        for p in 0..m.programs() {
            let Some(prog) = m.program(p) else { continue };
            match loc {
                BreakLocation::Insn { prog: want, pc } => {
                    if want.is_none_or(|w| w == p) && prog.insn(*pc).is_some() {
                        out.push((p, *pc));
                    }
                }
                BreakLocation::Line { file, line } => {
                    let matches = |pc: usize| {
                        prog.line_of(pc).is_some_and(|l| {
                            l.line == *line
                                && (l.file == *file
                                    || l.file.ends_with(&format!("/{file}"))
                                    || file.ends_with(&format!("/{}", l.file)))
                        })
                    };
                    for pc in 0..prog.len() {
                        if prog.insn(pc).is_some() && matches(pc) && (pc == 0 || !matches(pc - 1)) {
                            out.push((p, pc));
                        }
                    }
                }
                BreakLocation::Function(name) => {
                    for (fp, start) in self.info.find_function(name) {
                        if fp == p {
                            out.push((p, start));
                        }
                    }
                }
                BreakLocation::Helper { id, .. } => {
                    for pc in 0..prog.len() {
                        if matches!(prog.insn(pc), Some(Insn::Call(CallTarget::Helper(h))) if *h == *id)
                        {
                            out.push((p, pc));
                        }
                    }
                }
            }
        }
        if out.is_empty() {
            let what = match loc {
                BreakLocation::Insn { pc, .. } => {
                    format!(
                        "instruction {pc} does not exist (or is the second half of an ld_imm64)"
                    )
                }
                BreakLocation::Line { file, line } => {
                    format!("no instruction is on line {line} of {file}")
                }
                BreakLocation::Function(f) => format!("function {f} is not in the programs"),
                BreakLocation::Helper { name, .. } => format!("the programs never call {name}"),
            };
            return Err(SessionError::invalid(what));
        }
        Ok(out)
    }

    /// Watches a register or memory: `r3`, `*(u64 *)(r10 - 8)`, `pkt[12:14]`,
    /// `ctx->mark`, `*(u32 *)r0` (a map value).
    pub fn add_watchpoint(&mut self, text: &str) -> Result<PointId, SessionError> {
        let v = self.eval(text)?;
        let Some(location) = v.location else {
            return Err(SessionError::invalid(format!(
                "`{text}` is a computed value; watch a register or memory, e.g. r3 or *(u32 *)(r10 - 8)"
            )));
        };
        let id = self.points.new_id();
        let last = read_location(&self.machine, &location);
        self.points.watches.push(Watchpoint {
            id,
            expr: text.trim().to_string(),
            location,
            hits: 0,
            enabled: true,
            last,
        });
        Ok(id)
    }

    pub fn breakpoints(&self) -> &[Breakpoint] {
        &self.points.breaks
    }
    pub fn watchpoints(&self) -> &[Watchpoint] {
        &self.points.watches
    }

    fn no_point(id: PointId) -> SessionError {
        SessionError::invalid(format!("there is no breakpoint or watchpoint {id}"))
    }

    /// Deletes a breakpoint or watchpoint.
    pub fn delete_point(&mut self, id: PointId) -> Result<(), SessionError> {
        let (b, w) = (self.points.breaks.len(), self.points.watches.len());
        self.points.breaks.retain(|p| p.id != id);
        self.points.watches.retain(|p| p.id != id);
        if b == self.points.breaks.len() && w == self.points.watches.len() {
            return Err(Self::no_point(id));
        }
        self.points.rebuild(&self.machine);
        Ok(())
    }

    /// Enables or disables a breakpoint or watchpoint.
    pub fn enable_point(&mut self, id: PointId, enabled: bool) -> Result<(), SessionError> {
        if let Some(b) = self.points.breaks.iter_mut().find(|b| b.id == id) {
            b.enabled = enabled;
        } else if let Some(w) = self.points.watches.iter_mut().find(|w| w.id == id) {
            w.enabled = enabled;
        } else {
            return Err(Self::no_point(id));
        }
        self.points.rebuild(&self.machine);
        Ok(())
    }

    /// Sets (or with `None` removes) a breakpoint's condition.
    pub fn set_condition(&mut self, id: PointId, cond: Option<&str>) -> Result<(), SessionError> {
        let parsed = cond.map(expr::parse).transpose()?;
        let b = self
            .points
            .breaks
            .iter_mut()
            .find(|b| b.id == id)
            .ok_or_else(|| Self::no_point(id))?;
        b.condition = cond.map(|c| c.trim().to_string());
        b.condition_expr = parsed;
        Ok(())
    }

    /// The next `n` hits of breakpoint `id` do not stop.
    pub fn set_ignore_count(&mut self, id: PointId, n: u64) -> Result<(), SessionError> {
        let b = self
            .points
            .breaks
            .iter_mut()
            .find(|b| b.id == id)
            .ok_or_else(|| Self::no_point(id))?;
        b.ignore = n;
        Ok(())
    }

    /// Remembers the watched values at the current position.
    pub(crate) fn arm_watchpoints(&mut self) {
        for w in &mut self.points.watches {
            w.last = read_location(&self.machine, &w.location);
        }
    }

    /// After a step in `dir`: a breakpoint here, or a watched value that changed.
    pub(crate) fn check_points(&mut self, dir: Dir) -> Option<StopReason> {
        let mut reason = None;
        for i in 0..self.points.watches.len() {
            let w = &self.points.watches[i];
            if !w.enabled {
                continue;
            }
            let now = read_location(&self.machine, &w.location);
            if now != w.last {
                let w = &mut self.points.watches[i];
                let before = std::mem::replace(&mut w.last, now.clone());
                if reason.is_none() {
                    w.hits += 1;
                    // Report old -> new in execution order.
                    let (old, new) = match dir {
                        Dir::Forward => (before, now),
                        Dir::Backward => (now, before),
                    };
                    reason = Some(StopReason::Watchpoint { id: w.id, old, new });
                }
            }
        }
        if reason.is_some() {
            return reason;
        }
        let (prog, pc) = (self.prog(), self.pc());
        if !self
            .points
            .at
            .get(prog)
            .and_then(|v| v.get(pc))
            .copied()
            .unwrap_or(false)
        {
            return None;
        }
        for i in 0..self.points.breaks.len() {
            let b = &self.points.breaks[i];
            if !b.enabled || !b.sites.contains(&(prog, pc)) {
                continue;
            }
            if let Some(c) = &b.condition_expr {
                // A condition that cannot be evaluated here counts as true,
                // so the user sees why.
                let holds = expr::eval(c, &self.scope()).map_or(true, |v| v.truthy());
                if !holds {
                    continue;
                }
            }
            let b = &mut self.points.breaks[i];
            b.hits += 1;
            if b.ignore > 0 {
                b.ignore -= 1;
                continue;
            }
            return Some(StopReason::Breakpoint { id: b.id });
        }
        None
    }
}

fn parse_index(s: &str) -> Result<usize, ()> {
    let s = s.trim();
    if let Some(h) = s.strip_prefix("0x") {
        usize::from_str_radix(h, 16).map_err(|_| ())
    } else {
        s.parse().map_err(|_| ())
    }
}
