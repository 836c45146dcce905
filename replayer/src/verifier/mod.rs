//! Verifier analysis: the kernel verifier's log (log level 2) turned into
//! per-instruction abstract states, paths, pruning points and the final
//! error, so a view can show what the verifier believed next to what
//! really happened, and explain a rejection.
//!
//! - [`VerifierLog::parse`]: pure, any OS, never panics (garbage in gives
//!   an empty or partial result).
//! - [`RegState`] / [`FrameState`] / [`StackSlot`]: one register, one
//!   frame, one stack slot as the kernel printed them.
//! - [`ErrorKind`]: the common rejections, each with an [`Explanation`].
//! - [`soundness::contains`]: does a concrete value lie inside an abstract state?
//!
//! How the log is read: the verifier walks paths depth-first. A path starts
//! at instruction 0 or at `from X to Y: <full state>` (a branch it pushed
//! earlier) and ends at `exit`, at a pruning point (`N: safe`) or at the
//! error. Each instruction it executes is printed as `N: (op) text` with,
//! after `;`, only the registers and slots the instruction touched (a
//! delta). [`VerifierLog`] keeps a running full state per frame and gives
//! every visit the state it had when the verifier reached it.
//! Kernel-version differences are confined to `line.rs`, `reg.rs` and
//! `state.rs`.

pub mod btf_loads;
pub mod compare;
mod error;
mod line;
mod reg;
pub mod soundness;
mod state;
pub mod stats;

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;

pub use error::{ErrorKind, Explanation};
pub use reg::{MapRef, PtrFlags, RegKind, RegState, ScalarBounds, Tnum};
pub use state::{FrameState, SlotByte, SlotContents, StackSlot};
pub use stats::VerifierStats;

use line::{CallBlock, Line, classify};

/// A source-line annotation (`; text @ file:line`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SourceLine {
    pub text: String,
    pub file: Option<String>,
    pub line: Option<u32>,
}

/// An instruction as the kernel disassembled it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InsnText {
    /// The opcode byte printed in parentheses (`(bf)`).
    pub opcode: Option<u8>,
    /// `r2 = *(u32 *)(r1 +4)`, `call bpf_map_lookup_elem#1`, `if w1 > 0x8 goto pc+13`.
    pub text: String,
}

/// What happened at a visit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum VisitKind {
    /// The verifier executed the instruction symbolically.
    Executed,
    /// `N: safe`: the state here is covered by one already verified, so
    /// the path stops (pruning). `propagating` lists the registers and
    /// slots whose precision marks were carried over (`r1,fp-8`).
    Pruned { propagating: Vec<String> },
}

/// Which way a conditional jump went on this visit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BranchDecision {
    /// Only the jump was followed (the condition was known true, or `goto`).
    Taken,
    /// Only the fall-through was followed (the condition was known false).
    FallThrough,
    /// Both: this path continued one way, and the other was explored later
    /// starting at visit `other`.
    Both { other: usize },
    /// The path ended at this instruction (error here).
    Unknown,
}

/// One time the verifier reached one instruction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InsnVisit {
    /// Instruction index.
    pub insn: usize,
    /// The call frame (0 = the entry function).
    pub frame: u32,
    pub kind: VisitKind,
    /// The current frame's registers when the verifier reached the
    /// instruction (before executing it).
    pub regs: Vec<(u8, RegState)>,
    /// The current frame's stack slots at that moment.
    pub stack: Vec<StackSlot>,
    /// Acquired references held at that moment.
    pub refs: Vec<u32>,
    /// False when the log printed no state for this visit (`from 3 to 50:
    /// safe`), so `regs` and `stack` are empty rather than known.
    pub has_state: bool,
    /// What the log printed after the instruction: the registers and slots
    /// it changed or used, as they are afterwards (on the fall-through
    /// side for a conditional jump).
    pub changed: Option<FrameState>,
    /// Set on the first visit of a path the verifier resumed from its
    /// stack: `from 7 to 12`.
    pub from: Option<(usize, usize)>,
    /// For conditional jumps (filled in once the whole log is read).
    pub branch: Option<BranchDecision>,
    /// The path this visit belongs to (index into [`VerifierLog::paths`]).
    pub path: usize,
    /// The source line this instruction belongs to.
    pub source: Option<SourceLine>,
    /// 1-based line number in the log.
    pub log_line: usize,
}

impl InsnVisit {
    /// The register's state when the verifier reached the instruction.
    pub fn reg(&self, n: u8) -> Option<&RegState> {
        self.regs.iter().find(|(r, _)| *r == n).map(|(_, s)| s)
    }

    /// The register as the log printed it right after the instruction
    /// (None when the instruction did not touch it).
    pub fn reg_after(&self, n: u8) -> Option<&RegState> {
        self.changed.as_ref().and_then(|c| c.reg(n))
    }

    /// The full state after the instruction: `regs` with `changed`
    /// applied (and r1-r5 cleared after a helper call).
    pub fn state_after(&self, text: Option<&InsnText>) -> FrameState {
        let mut st = FrameState {
            frame: self.frame,
            regs: self.regs.clone(),
            stack: self.stack.clone(),
            refs: self.refs.clone(),
            ..FrameState::default()
        };
        if text.is_some_and(|t| is_helper_call(&t.text)) {
            for r in 1..=5 {
                st.clear_reg(r);
            }
        }
        if let Some(c) = &self.changed {
            st.apply(c);
        }
        st
    }
}

/// One path of the depth-first walk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PathInfo {
    /// `from X to Y` (None for the path starting at instruction 0).
    pub from: Option<(usize, usize)>,
    /// The visit (index into `visits`) that pushed this path: the earlier
    /// visit of instruction X.
    pub parent: Option<usize>,
    /// The first visit of the path (None when the path has none, e.g. a
    /// log cut short).
    pub first_visit: Option<usize>,
    /// `true` for `from X to Y (speculative execution)`.
    pub speculative: bool,
}

/// The verifier's final error.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VerifierError {
    /// The instruction it failed at (None when the error is about the
    /// whole program, e.g. the combined stack size).
    pub insn: Option<usize>,
    /// The message lines, as printed.
    pub message: String,
    pub kind: ErrorKind,
}

impl VerifierError {
    /// The message's first line.
    pub fn headline(&self) -> &str {
        self.message.lines().next().unwrap_or("")
    }
}

/// A parsed verifier log.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct VerifierLog {
    /// Every instruction visit, in log order.
    pub visits: Vec<InsnVisit>,
    pub paths: Vec<PathInfo>,
    /// Subprogram start instructions (`func#N @S`), by N.
    pub subprogs: Vec<usize>,
    /// The kernel's disassembly of every instruction it printed.
    pub insns: BTreeMap<usize, InsnText>,
    /// Registers live before each instruction (bit N = rN), when the
    /// kernel prints the table (6.15+).
    pub live_regs: BTreeMap<usize, u16>,
    /// The source line of each instruction, when the log has line info.
    pub sources: BTreeMap<usize, SourceLine>,
    pub error: Option<VerifierError>,
    pub stats: Option<VerifierStats>,
    /// Lines not understood that were not part of the final error (1-based
    /// line number, text): newer kernels' additions, kept for display.
    pub unparsed: Vec<(usize, String)>,
}

/// `call bpf_map_lookup_elem#1`, `call unknown#999`, kfuncs: calls that
/// clobber r1-r5 and return to the next instruction in the same frame.
fn is_helper_call(text: &str) -> bool {
    text.starts_with("call ") && !text.starts_with("call pc")
}

/// `goto pc+K` / `goto pc-K` inside a jump's text → K.
fn jump_offset(text: &str) -> Option<i64> {
    let i = text.find("pc")?;
    let rest = &text[i + 2..];
    let end = rest
        .char_indices()
        .skip(1)
        .find(|(_, c)| !c.is_ascii_digit())
        .map_or(rest.len(), |(i, _)| i);
    rest.get(..end)?.parse::<i64>().ok()
}

fn is_cond_jump(text: &str) -> bool {
    (text.starts_with("if ") && text.contains(" goto pc")) || text.starts_with("may_goto pc")
}

/// The running state while reading the log.
struct Reader {
    log: VerifierLog,
    /// Current full state of every frame on the call stack.
    frames: Vec<FrameState>,
    cur_frame: u32,
    source: Option<SourceLine>,
    /// The last executed visit whose after-state has not been printed yet.
    open_visit: Option<usize>,
    /// `from X to Y` waiting for its first visit.
    pending_from: Option<(usize, usize)>,
    block: Option<CallBlock>,
    /// Visits already matched as the parent of a `from` line.
    used_parents: HashSet<usize>,
    /// `propagating ...` lines seen since the last visit: the kernel prints
    /// them just before the `N: safe` they belong to.
    propagating: Vec<String>,
    /// Line number of the last line that was part of the walk; `Other`
    /// lines after it form the error message.
    last_walk_line: usize,
    others: Vec<(usize, String)>,
}

impl Reader {
    fn frame_mut(&mut self, n: u32) -> &mut FrameState {
        let n = n.min(64) as usize; // frames are at most 8 deep; never allocate wildly
        while self.frames.len() <= n {
            let f = self.frames.len() as u32;
            self.frames.push(FrameState {
                frame: f,
                ..FrameState::default()
            });
        }
        &mut self.frames[n]
    }

    fn cur(&mut self) -> FrameState {
        let f = self.cur_frame;
        self.frame_mut(f).clone()
    }

    fn current_path(&self) -> usize {
        self.log.paths.len().saturating_sub(1)
    }

    fn push_visit(
        &mut self,
        insn: usize,
        kind: VisitKind,
        has_state: bool,
        line_no: usize,
    ) -> usize {
        let st = if has_state {
            self.cur()
        } else {
            FrameState::default()
        };
        let path = self.current_path();
        let idx = self.log.visits.len();
        if let Some(p) = self.log.paths.get_mut(path)
            && p.first_visit.is_none()
        {
            p.first_visit = Some(idx);
        }
        self.log.visits.push(InsnVisit {
            insn,
            frame: self.cur_frame,
            kind,
            regs: st.regs,
            stack: st.stack,
            refs: st.refs,
            has_state,
            changed: None,
            from: self.pending_from.take(),
            branch: None,
            path,
            source: self.source.clone(),
            log_line: line_no,
        });
        idx
    }

    /// Starts a new path for `from X to Y`, finding the visit of X that pushed it.
    fn start_path(&mut self, from: usize, to: usize, speculative: bool) {
        let parent = self
            .log
            .visits
            .iter()
            .enumerate()
            .rev()
            .find(|(i, v)| {
                v.insn == from && v.kind == VisitKind::Executed && !self.used_parents.contains(i)
            })
            .map(|(i, _)| i);
        if let Some(p) = parent {
            self.used_parents.insert(p);
        }
        self.log.paths.push(PathInfo {
            from: Some((from, to)),
            parent,
            first_visit: None,
            speculative,
        });
        self.pending_from = Some((from, to));
        self.open_visit = None;
        self.block = None;
    }

    fn line(&mut self, line_no: usize, raw: &str) {
        match classify(raw) {
            Line::Blank | Line::LiveRegsHeader | Line::Stats | Line::Bookkeeping => {}
            Line::Func { index, start } => {
                if index < 4096 {
                    if self.log.subprogs.len() <= index {
                        self.log.subprogs.resize(index + 1, 0);
                    }
                    self.log.subprogs[index] = start;
                }
            }
            Line::LiveRegs {
                insn,
                mask,
                opcode,
                text,
            } => {
                self.log.live_regs.insert(insn, mask);
                self.log.insns.entry(insn).or_insert_with(|| InsnText {
                    opcode,
                    text: text.to_string(),
                });
            }
            Line::Source { text, file, line } => {
                self.source = Some(SourceLine {
                    text: text.to_string(),
                    file: file.map(str::to_string),
                    line,
                });
            }
            Line::Insn {
                insn,
                opcode,
                text,
                state,
            } => {
                self.last_walk_line = line_no;
                self.block = None;
                self.log.insns.insert(
                    insn,
                    InsnText {
                        opcode,
                        text: text.to_string(),
                    },
                );
                if let Some(src) = &self.source {
                    self.log.sources.entry(insn).or_insert_with(|| src.clone());
                }
                // A delta naming its frame tells which frame we are in.
                let delta = state.map(FrameState::parse);
                if let Some((d, true)) = &delta {
                    self.cur_frame = d.frame;
                }
                self.propagating.clear();
                let idx = self.push_visit(insn, VisitKind::Executed, true, line_no);
                if is_helper_call(text) {
                    let f = self.cur_frame;
                    let fr = self.frame_mut(f);
                    for r in 1..=5 {
                        fr.clear_reg(r);
                    }
                }
                match delta {
                    Some((d, _)) => {
                        let f = self.cur_frame;
                        self.frame_mut(f).apply(&d);
                        self.log.visits[idx].changed = Some(d);
                        self.open_visit = None;
                    }
                    None => self.open_visit = Some(idx),
                }
            }
            Line::State { state, .. } => {
                self.last_walk_line = line_no;
                self.block = None;
                let (mut d, named) = FrameState::parse(state);
                if named {
                    self.cur_frame = d.frame;
                } else {
                    d.frame = self.cur_frame;
                }
                let f = self.cur_frame;
                self.frame_mut(f).apply(&d);
                if let Some(v) = self.open_visit.take()
                    && let Some(visit) = self.log.visits.get_mut(v)
                    && visit.changed.is_none()
                {
                    visit.changed = Some(d);
                }
            }
            Line::Safe { insn } => {
                self.last_walk_line = line_no;
                self.open_visit = None;
                self.block = None;
                let propagating = std::mem::take(&mut self.propagating);
                self.push_visit(insn, VisitKind::Pruned { propagating }, true, line_no);
            }
            Line::From {
                from,
                to,
                speculative,
                safe,
                state,
            } => {
                self.last_walk_line = line_no;
                self.start_path(from, to, speculative);
                if safe {
                    let propagating = std::mem::take(&mut self.propagating);
                    self.push_visit(to, VisitKind::Pruned { propagating }, false, line_no);
                } else {
                    // A popped state is printed whole: it replaces the frame.
                    let (mut st, named) = FrameState::parse(state);
                    if !named {
                        st.frame = 0;
                    }
                    self.cur_frame = st.frame;
                    let f = st.frame;
                    *self.frame_mut(f) = st;
                }
            }
            Line::Propagating { what } => {
                self.propagating
                    .extend(what.split(',').map(|s| s.trim().to_string()));
            }
            Line::CallBlock(b) => {
                self.last_walk_line = line_no;
                self.open_visit = None;
                self.block = Some(b);
            }
            Line::IndentedState { state } => {
                self.last_walk_line = line_no;
                let (mut st, named) = FrameState::parse(state);
                if !named {
                    st.frame = 0;
                }
                match self.block {
                    Some(CallBlock::Caller) | Some(CallBlock::Callee) => {
                        self.cur_frame = st.frame;
                        let f = st.frame;
                        *self.frame_mut(f) = st;
                    }
                    Some(CallBlock::ToCaller { .. }) => {
                        self.cur_frame = st.frame;
                        let f = st.frame;
                        self.frames.truncate(f as usize + 1);
                        *self.frame_mut(f) = st;
                    }
                    Some(CallBlock::Returning) => {
                        let f = st.frame;
                        *self.frame_mut(f) = st;
                    }
                    None => self.others.push((line_no, raw.trim_end().to_string())),
                }
            }
            Line::Other(text) => self.others.push((line_no, text.to_string())),
        }
    }

    fn finish(mut self, text: &str) -> VerifierLog {
        // Lines after the walk's last step are the error message.
        let (err_lines, unparsed): (Vec<_>, Vec<_>) = self
            .others
            .drain(..)
            .partition(|(n, _)| *n > self.last_walk_line);
        self.log.unparsed = unparsed;
        if !err_lines.is_empty() {
            let message = err_lines
                .iter()
                .map(|(_, l)| l.as_str())
                .collect::<Vec<_>>()
                .join("\n");
            let kind = ErrorKind::classify(&message);
            let insn = if kind.is_whole_program() {
                None
            } else {
                insn_in_message(&message).or_else(|| self.log.visits.last().map(|v| v.insn))
            };
            self.log.error = Some(VerifierError {
                insn,
                message,
                kind,
            });
        }
        self.log.stats = VerifierStats::parse(text);
        decide_branches(&mut self.log);
        self.log
    }
}

/// `infinite loop detected at insn 5`, `back-edge from insn 10 to 5`,
/// `unreachable insn 3`, `jump out of range from insn 3 to 12`.
fn insn_in_message(message: &str) -> Option<usize> {
    let first = message.lines().next()?;
    for key in ["at insn ", "from insn ", "unreachable insn "] {
        if let Some(i) = first.find(key) {
            let rest = &first[i + key.len()..];
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            return rest[..digits].parse().ok();
        }
    }
    None
}

/// Fills `branch` for every conditional-jump visit.
fn decide_branches(log: &mut VerifierLog) {
    let children: BTreeMap<usize, usize> = log
        .paths
        .iter()
        .filter_map(|p| Some((p.parent?, p.first_visit?)))
        .collect();
    for i in 0..log.visits.len() {
        let v = &log.visits[i];
        if v.kind != VisitKind::Executed {
            continue;
        }
        let Some(text) = log.insns.get(&v.insn) else {
            continue;
        };
        if !is_cond_jump(&text.text) {
            continue;
        }
        let Some(off) = jump_offset(&text.text) else {
            continue;
        };
        let target = (v.insn as i64).saturating_add(1).saturating_add(off);
        let decision = if let Some(&other) = children.get(&i) {
            BranchDecision::Both { other }
        } else {
            match log.visits.get(i + 1) {
                Some(n) if n.path == v.path && n.from.is_none() => {
                    if n.insn as i64 == target {
                        BranchDecision::Taken
                    } else {
                        BranchDecision::FallThrough
                    }
                }
                _ => BranchDecision::Unknown,
            }
        };
        log.visits[i].branch = Some(decision);
    }
}

impl VerifierLog {
    /// Parses a verifier log (any level; level 2 gives the states).
    /// Never panics; unknown lines end up in `unparsed` or the error.
    pub fn parse(text: &str) -> VerifierLog {
        let mut r = Reader {
            log: VerifierLog::default(),
            frames: Vec::new(),
            cur_frame: 0,
            source: None,
            open_visit: None,
            pending_from: None,
            block: None,
            used_parents: HashSet::new(),
            last_walk_line: 0,
            propagating: Vec::new(),
            others: Vec::new(),
        };
        r.log.paths.push(PathInfo {
            from: None,
            parent: None,
            first_visit: None,
            speculative: false,
        });
        for (i, line) in text.lines().enumerate() {
            r.line(i + 1, line);
        }
        r.finish(text)
    }

    /// Whether the log ends in an error.
    pub fn rejected(&self) -> bool {
        self.error.is_some()
    }

    /// Every visit of instruction `insn`, in log order.
    pub fn states_at(&self, insn: usize) -> impl Iterator<Item = &InsnVisit> {
        self.visits.iter().filter(move |v| v.insn == insn)
    }

    /// The visits of the path that reached the error, from the program's
    /// entry to the failing instruction (following each `from X to Y`
    /// back to the visit of X that pushed it). Empty without an error.
    pub fn path_to_error(&self) -> Vec<&InsnVisit> {
        if self.error.is_none() {
            return Vec::new();
        }
        let Some(mut i) = self.visits.len().checked_sub(1) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut guard = 0usize;
        loop {
            let path = self.visits[i].path;
            // Walk back within this path.
            loop {
                out.push(&self.visits[i]);
                if i == 0 || self.visits[i - 1].path != path || self.visits[i].from.is_some() {
                    break;
                }
                i -= 1;
            }
            match self.paths.get(path).and_then(|p| p.parent) {
                Some(p) if p < i => i = p,
                _ => break,
            }
            guard += 1;
            if guard > self.paths.len() {
                break;
            }
        }
        out.reverse();
        out
    }

    /// The kernel's disassembly of instruction `insn`.
    pub fn insn_text(&self, insn: usize) -> Option<&InsnText> {
        self.insns.get(&insn)
    }

    /// Instructions the verifier never reached (dead code it proved
    /// unreachable on every path), among those it printed.
    pub fn unvisited(&self) -> Vec<usize> {
        let seen: HashSet<usize> = self.visits.iter().map(|v| v.insn).collect();
        self.insns
            .keys()
            .copied()
            .filter(|i| !seen.contains(i))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: &str = "func#0 @0
0: R1=ctx() R10=fp0
; int f(struct xdp_md *ctx) @ f.c:3
0: (61) r2 = *(u32 *)(r1 +4)          ; R1=ctx() R2=pkt_end()
1: (61) r1 = *(u32 *)(r1 +0)          ; R1=pkt(r=0)
2: (bf) r3 = r1                       ; R1=pkt(r=0) R3=pkt(r=0)
3: (07) r3 += 14                      ; R3=pkt(off=14,r=0)
4: (2d) if r3 > r2 goto pc+2          ; R2=pkt_end() R3=pkt(off=14,r=14)
5: (71) r0 = *(u8 *)(r1 +12)          ; R0=scalar(smin=smin32=0,smax=umax=smax32=umax32=255,var_off=(0x0; 0xff)) R1=pkt(r=14)
6: (95) exit

from 4 to 7: R1=pkt(r=0) R2=pkt_end() R3=pkt(off=14,r=0) R10=fp0
7: R1=pkt(r=0) R2=pkt_end() R3=pkt(off=14,r=0) R10=fp0
7: (71) r0 = *(u8 *)(r1 +12)
invalid access to packet, off=12 size=1, R1(id=0,off=12,r=0)
R1 offset is outside of the packet
processed 9 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0
";

    #[test]
    fn small_log() {
        let log = VerifierLog::parse(SMALL);
        assert_eq!(log.subprogs, vec![0]);
        assert_eq!(log.visits.len(), 8);
        let v0 = &log.visits[0];
        assert_eq!(v0.reg(1).unwrap().kind, RegKind::Ctx);
        assert_eq!(v0.reg_after(2).unwrap().kind, RegKind::PacketEnd);
        assert_eq!(v0.source.as_ref().unwrap().line, Some(3));
        let v4 = log.states_at(4).next().unwrap();
        assert_eq!(v4.reg(3).unwrap().range, Some(0));
        assert_eq!(v4.reg_after(3).unwrap().range, Some(14));
        assert_eq!(v4.branch, Some(BranchDecision::Both { other: 7 }));
        let v7 = log.states_at(7).next().unwrap();
        assert_eq!(v7.from, Some((4, 7)));
        assert_eq!(v7.reg(1).unwrap().range, Some(0));
        let err = log.error.as_ref().unwrap();
        assert_eq!(err.insn, Some(7));
        assert_eq!(err.kind, ErrorKind::PacketOutOfRange);
        assert_eq!(
            err.headline(),
            "invalid access to packet, off=12 size=1, R1(id=0,off=12,r=0)"
        );
        let path: Vec<usize> = log.path_to_error().iter().map(|v| v.insn).collect();
        assert_eq!(path, vec![0, 1, 2, 3, 4, 7]);
        assert_eq!(log.stats.as_ref().unwrap().insns_processed, 9);
        assert!(log.unparsed.is_empty());
    }

    #[test]
    fn jump_offsets() {
        assert_eq!(jump_offset("if r3 > r2 goto pc+2"), Some(2));
        assert_eq!(jump_offset("if w2 s> 0xffffffff goto pc-28"), Some(-28));
        assert_eq!(jump_offset("may_goto pc+3"), Some(3));
        assert_eq!(jump_offset("r0 = 1"), None);
    }
}
