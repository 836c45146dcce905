//! What the verifier believed next to what really happened: during the
//! replay of an invocation, the concrete registers (and the stack slots the
//! verifier tracked) before each executed instruction are compared with the
//! abstract states the verifier held at that instruction.
//!
//! - [`Beliefs`]: the parsed verifier log of every program of a trace, indexed
//!   by (instruction, frame), after checking that the log's instruction
//!   indices are those of the recorded instructions.
//! - [`Beliefs::check_step`]: one position of a session, every value compared.
//! - [`check_invocation`]: the soundness check over a whole invocation; a
//!   [`SoundnessFlag`] is a concrete value outside every state the verifier
//!   held there — a verifier bug or a recording bug, worth a report either way.
//!
//! Which states count: the verifier explores every path, so a value is fine
//! if ANY visit of the instruction (in the same call frame) contains it. A
//! visit the verifier pruned (`N: safe`) carries the state of the path that
//! reached it, which an earlier visit covered; its state counts too. A
//! register the verifier held as NOT_INIT on some visit is not checked (the
//! verifier made no claim). Pruning compares states only as far as they
//! matter: a scalar the verifier never needed exactly (not precise, `P`) or a
//! register it knew to be dead matches anything. So below a pruning point the
//! concrete values of such registers may legitimately lie outside the states
//! printed for the path that was explored instead; [`Beliefs::check_step`]
//! reports those as `relaxed` rather than as flags.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bpfrr_trace::isa::{AtomicOp, CallTarget, Insn, Operand, RawInsn};
use bpfrr_trace::trace::Trace;
use serde::Serialize;

use super::reg::{RegKind, RegState};
use super::soundness::{ValueRegion, contains};
use super::state::{SlotByte, SlotContents};
use super::{InsnVisit, VerifierLog, VisitKind};
use crate::session::{EndKind, Session, SessionEnv};
use crate::vm::{Frame, Memory, RegionKind, ids, split_address};

/// A map's sizes, as the verifier prints them (`ks=4,vs=8`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MapSizes {
    pub key_size: u32,
    pub value_size: u32,
}

/// Why a program's steps cannot be checked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Unchecked {
    /// The trace holds no verifier log for the program.
    NoLog,
    /// The log has no per-instruction states (log level below 2).
    NoStates,
    /// The log was cut short (no final `processed N insns` line), so it
    /// does not cover every path.
    Incomplete,
    /// The log's disassembly disagrees with the recorded instructions (it
    /// belongs to another version of the program): the first instruction
    /// whose opcode differs, and the opcodes.
    Mismatch {
        insn: usize,
        log_opcode: u8,
        trace_opcode: Option<u8>,
    },
}

impl Unchecked {
    /// One sentence for reports.
    pub fn message(&self) -> String {
        match self {
            Unchecked::NoLog => "the trace holds no verifier log for this program".into(),
            Unchecked::NoStates => {
                "the verifier log has no per-instruction states (it was captured below log level 2)"
                    .into()
            }
            Unchecked::Incomplete => {
                "the verifier log was cut short, so it does not cover every path".into()
            }
            Unchecked::Mismatch {
                insn,
                log_opcode,
                trace_opcode,
            } => format!(
                "the verifier log does not match the recorded instructions (instruction {insn} is opcode {log_opcode:#04x} in the log but {} in the trace)",
                trace_opcode.map_or("missing".to_string(), |o| format!("{o:#04x}"))
            ),
        }
    }
}

/// One program's verifier log, ready for lookups.
#[derive(Clone, Debug)]
pub struct ProgramBeliefs {
    log: VerifierLog,
    /// Visits (indices into `log.visits`) that carry a state, by (insn, frame).
    by_insn: HashMap<(usize, u32), Vec<usize>>,
    /// Instructions the log printed a visit of, in any frame.
    visited: BTreeSet<usize>,
    /// For a visit that pushed paths (`from X to Y`): their first visits.
    children: HashMap<usize, Vec<usize>>,
    unchecked: Option<Unchecked>,
}

impl ProgramBeliefs {
    /// Indexes `log`, checking it against the program's instructions: every
    /// instruction the log disassembled must have the same opcode in `insns`.
    pub fn new(log: VerifierLog, insns: &[RawInsn]) -> ProgramBeliefs {
        let mut by_insn: HashMap<(usize, u32), Vec<usize>> = HashMap::new();
        let mut visited = BTreeSet::new();
        for (i, v) in log.visits.iter().enumerate() {
            visited.insert(v.insn);
            if v.has_state {
                by_insn.entry((v.insn, v.frame)).or_default().push(i);
            }
        }
        let mut children: HashMap<usize, Vec<usize>> = HashMap::new();
        for p in &log.paths {
            if let (Some(parent), Some(first)) = (p.parent, p.first_visit) {
                children.entry(parent).or_default().push(first);
            }
        }
        let mismatch = log.insns.iter().find_map(|(&insn, text)| {
            let op = text.opcode?;
            let have = insns.get(insn).map(|r| r.code);
            (have != Some(op)).then_some(Unchecked::Mismatch {
                insn,
                log_opcode: op,
                trace_opcode: have,
            })
        });
        let unchecked = if let Some(m) = mismatch {
            Some(m)
        } else if log.visits.is_empty() {
            Some(Unchecked::NoStates)
        } else if log.stats.is_none() {
            Some(Unchecked::Incomplete)
        } else {
            None
        };
        ProgramBeliefs {
            log,
            by_insn,
            visited,
            children,
            unchecked,
        }
    }

    pub fn log(&self) -> &VerifierLog {
        &self.log
    }

    /// Why this program cannot be checked (None when it can).
    pub fn unchecked(&self) -> Option<&Unchecked> {
        self.unchecked.as_ref()
    }

    /// The visits of `insn` in `frame` that carry a state, in log order.
    pub fn visits(&self, insn: usize, frame: u32) -> Vec<&InsnVisit> {
        self.by_insn
            .get(&(insn, frame))
            .map(|v| v.iter().map(|&i| &self.log.visits[i]).collect())
            .unwrap_or_default()
    }
}

/// The verifier's beliefs about every program of a trace.
#[derive(Clone, Debug, Default)]
pub struct Beliefs {
    /// By program index (the trace's program id); None without a log.
    programs: Vec<Option<ProgramBeliefs>>,
    /// By map index (the trace's map id).
    maps: Vec<MapSizes>,
}

impl Beliefs {
    /// From logs already parsed (one per program, None when there is none)
    /// and the map sizes.
    pub fn new(programs: Vec<Option<ProgramBeliefs>>, maps: Vec<MapSizes>) -> Beliefs {
        Beliefs { programs, maps }
    }

    /// Parses the verifier log the trace stored for each program.
    pub fn from_trace(trace: &Trace) -> Beliefs {
        let programs = trace
            .programs()
            .iter()
            .map(|p| {
                let v = p.verifier.as_ref()?;
                let insns: Vec<RawInsn> = p.insns.iter().map(|b| RawInsn::from_bytes(*b)).collect();
                Some(ProgramBeliefs::new(VerifierLog::parse(&v.log), &insns))
            })
            .collect();
        let maps = trace
            .maps()
            .iter()
            .map(|m| MapSizes {
                key_size: m.key_size,
                value_size: m.value_size,
            })
            .collect();
        Beliefs { programs, maps }
    }

    /// Program `prog`'s beliefs (None without a log).
    pub fn program(&self, prog: usize) -> Option<&ProgramBeliefs> {
        self.programs.get(prog)?.as_ref()
    }

    /// Why program `prog` cannot be checked, if it cannot.
    pub fn unchecked(&self, prog: usize) -> Option<Unchecked> {
        match self.program(prog) {
            None => Some(Unchecked::NoLog),
            Some(p) => p.unchecked.clone(),
        }
    }
}

/// Follows one invocation through the verifier's exploration, position
/// by position (see the module documentation).
///
/// While the concrete run follows a path the verifier explored, the
/// candidates are exactly the visits of that path (and of the paths it
/// pushed at the branches just taken), and every value is checked
/// strictly. Once the run reaches a pruning point, the verifier's claim is
/// only that some explored state covers it up to liveness and precision:
/// from then on the candidates are every visit of the instruction, dead
/// registers (per the log's liveness table) and stack slots are not
/// checked, and a non-precise scalar outside them is only `Relaxed`.
pub struct Checker<'b> {
    beliefs: &'b Beliefs,
    /// Where the previous check was: (step, program).
    last: Option<(u64, usize)>,
    /// Visits (indices into the program's log) the run may be at.
    candidates: Vec<usize>,
    relaxed: bool,
}

impl<'b> Checker<'b> {
    pub fn new(beliefs: &'b Beliefs) -> Checker<'b> {
        Checker {
            beliefs,
            last: None,
            candidates: Vec::new(),
            relaxed: false,
        }
    }

    /// The visits the run may be at after moving from the current
    /// candidates to (`insn`, `frame`); empty when it left every path.
    fn advance(&self, p: &ProgramBeliefs, insn: usize, frame: u32) -> Vec<usize> {
        let visits = &p.log.visits;
        let mut next: Vec<usize> = Vec::new();
        for &c in &self.candidates {
            let v = &visits[c];
            if v.kind != VisitKind::Executed {
                continue;
            }
            let mut succ: Vec<usize> = p.children.get(&c).cloned().unwrap_or_default();
            if let Some(n) = visits.get(c + 1)
                && n.path == v.path
                && n.from.is_none()
            {
                succ.push(c + 1);
            }
            for s in succ {
                let n = &visits[s];
                if n.insn == insn && n.frame == frame && !next.contains(&s) {
                    next.push(s);
                }
            }
        }
        next
    }

    /// Compares the session's current position (the state before the
    /// instruction about to run) with the verifier's states there. Call it
    /// at consecutive positions from 0; anywhere else it compares against
    /// every visit of the instruction, relaxed.
    pub fn check<E: SessionEnv>(&mut self, s: &Session<E>) -> StepCheck {
        let m = s.machine();
        let prog = m.current_prog();
        let insn = m.pc();
        let frames = m.frames();
        let frame = verifier_frame(frames);
        let step = s.position();
        let mut out = StepCheck {
            step,
            prog,
            insn,
            frame,
            visits: 0,
            candidates: Vec::new(),
            relaxed: true,
            coverage: Coverage::Checked,
            values: Vec::new(),
        };
        let previous = self.last.replace((step, prog));
        let Some(p) = self.beliefs.program(prog) else {
            out.coverage = Coverage::Unchecked(Unchecked::NoLog);
            return out;
        };
        if let Some(u) = &p.unchecked {
            out.coverage = Coverage::Unchecked(u.clone());
            return out;
        }
        let entered = insn == 0 && frame == 0 && previous.is_none_or(|(_, q)| q != prog);
        let mut cands = if entered {
            // The program's entry (or a tail call into it): path 0.
            self.relaxed = false;
            p.log
                .visits
                .first()
                .filter(|v| v.insn == 0 && v.frame == 0)
                .map(|_| vec![0])
                .unwrap_or_default()
        } else if previous == Some((step.wrapping_sub(1), prog)) {
            self.advance(p, insn, frame)
        } else {
            Vec::new()
        };
        // A pruning point: the run continues in a state an explored one covers.
        if cands.is_empty()
            || cands
                .iter()
                .any(|&c| p.log.visits[c].kind != VisitKind::Executed)
        {
            self.relaxed = true;
            let kept: Vec<usize> = cands
                .iter()
                .copied()
                .filter(|&c| p.log.visits[c].has_state)
                .collect();
            cands = p.by_insn.get(&(insn, frame)).cloned().unwrap_or_default();
            for k in kept {
                if !cands.contains(&k) {
                    cands.push(k);
                }
            }
        }
        self.candidates = cands;
        out.relaxed = self.relaxed;
        let visits: Vec<&InsnVisit> = self
            .candidates
            .iter()
            .map(|&c| &p.log.visits[c])
            .filter(|v| v.has_state)
            .collect();
        out.visits = visits.len();
        out.candidates = self
            .candidates
            .iter()
            .copied()
            .filter(|&c| p.log.visits[c].has_state)
            .collect();
        if visits.is_empty() {
            out.coverage = if p.visited.contains(&insn) {
                Coverage::NoState
            } else {
                Coverage::NeverVisited
            };
            return out;
        }
        let regs = m.regs();
        let ctx = Ctx {
            memory: m.memory(),
            frames,
            base: frame_base(frames),
            maps: &self.beliefs.maps,
            session_desc: &|v| s.describe_value(v).text().map(str::to_string),
            relaxed: self.relaxed,
        };
        let live = p.log.live_regs.get(&insn).copied();
        for r in 0..=10u8 {
            // Dead here: pruning ignored it, so after a pruning point it may hold anything.
            if self.relaxed && live.is_some_and(|mask| mask & (1 << r) == 0) && r != 10 {
                continue;
            }
            let value = regs[r as usize];
            let states: Vec<&RegState> = visits.iter().filter_map(|v| v.reg(r)).collect();
            // Absent from some visit: NOT_INIT there, no claim.
            if states.len() < visits.len() {
                continue;
            }
            out.values.push(ctx.check(Place::Reg(r), value, &states));
        }
        // Stack liveness is not in the log: after a pruning point a dead
        // slot may hold anything, so slots are compared on explored paths only.
        if !self.relaxed {
            out.values.extend(check_slots(&ctx, &visits, regs[10]));
        }
        out
    }
}

/// Which verifier frame the machine's top frame is: its depth counted from
/// the frame the current program was entered in (a tail call replaces a
/// frame's program, and the new program's log counts from 0 again).
fn verifier_frame(frames: &[Frame]) -> u32 {
    (frames.len().saturating_sub(1) - frame_base(frames)) as u32
}

fn frame_base(frames: &[Frame]) -> usize {
    let Some(top) = frames.last() else { return 0 };
    let mut base = frames.len() - 1;
    while base > 0 && frames[base - 1].prog == top.prog {
        base -= 1;
    }
    base
}

/// A register or a stack slot of the current frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "kind", content = "at", rename_all = "snake_case")]
pub enum Place {
    Reg(u8),
    /// A stack slot, by its offset from the frame pointer (-8, -16...).
    Slot(i32),
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Place::Reg(r) => write!(f, "r{r}"),
            Place::Slot(o) => write!(f, "fp{o}"),
        }
    }
}

/// How a concrete value compares with the verifier's states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Inside at least one state.
    Inside,
    /// Outside every state, after the run passed a pruning point, and every
    /// state is a scalar the verifier did not track precisely: pruning
    /// treated such a scalar as matching any value, so the explored path
    /// whose states are printed here may have held a different one.
    Relaxed,
    /// Outside every state: a soundness flag.
    Outside,
}

/// One value compared.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ValueCheck {
    pub place: Place,
    /// The concrete value (a slot: its bytes as a little-endian number).
    pub value: u64,
    /// `17`, `pkt+14`, `fp-8`, `map_value(verdicts)+4`.
    pub described: String,
    /// The verifier's distinct states there (compact form).
    pub states: Vec<String>,
    pub verdict: Verdict,
}

/// Whether a step could be compared.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Coverage {
    Checked,
    /// The verifier reached the instruction only at pruning points that
    /// printed no state.
    NoState,
    /// The verifier never reached this instruction in this frame (it thought
    /// it dead): a soundness flag of its own.
    NeverVisited,
    Unchecked(Unchecked),
}

/// One position compared.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StepCheck {
    /// The session position (the step about to run).
    pub step: u64,
    pub prog: usize,
    pub insn: usize,
    /// The verifier's frame number (0 = the program's entry function).
    pub frame: u32,
    /// How many verifier visits with a state were compared against.
    pub visits: usize,
    /// Those visits: indices into the program's `log().visits`.
    pub candidates: Vec<usize>,
    /// The run has passed a pruning point (see [`Checker`]): only live
    /// registers are compared, and imprecise scalars loosely.
    pub relaxed: bool,
    pub coverage: Coverage,
    pub values: Vec<ValueCheck>,
}

impl StepCheck {
    /// The flags this step raises.
    pub fn flags(&self) -> Vec<SoundnessFlag> {
        let mut out: Vec<SoundnessFlag> = self
            .values
            .iter()
            .filter(|v| v.verdict == Verdict::Outside)
            .map(|v| SoundnessFlag {
                step: self.step,
                prog: self.prog,
                insn: self.insn,
                reg: v.place.to_string(),
                value: v.value,
                described: v.described.clone(),
                states: v.states.clone(),
            })
            .collect();
        if self.coverage == Coverage::NeverVisited {
            out.push(SoundnessFlag {
                step: self.step,
                prog: self.prog,
                insn: self.insn,
                reg: "pc".into(),
                value: self.insn as u64,
                described: format!(
                    "instruction {} ran in frame {}, where the verifier never reached it",
                    self.insn, self.frame
                ),
                states: Vec::new(),
            });
        }
        out
    }
}

/// A concrete value outside every abstract state the verifier held at
/// that instruction: a verifier bug or a recording bug, worth a report
/// either way.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SoundnessFlag {
    /// The session position (the step about to run).
    pub step: u64,
    pub prog: usize,
    pub insn: usize,
    /// `r2`, `fp-8`, or `pc` for an instruction the verifier never reached.
    pub reg: String,
    pub value: u64,
    pub described: String,
    /// The verifier's states there, none of which contains the value.
    pub states: Vec<String>,
}

impl std::fmt::Display for SoundnessFlag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.reg == "pc" {
            return write!(f, "step {}: {}", self.step, self.described);
        }
        write!(
            f,
            "step {}, insn {}: {} = {} lies outside every state the verifier held there ({})",
            self.step,
            self.insn,
            self.reg,
            self.described,
            self.states.join(" | ")
        )
    }
}

/// The soundness check of one invocation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SoundnessReport {
    /// Positions looked at (every executed instruction, plus a faulting one).
    pub steps: u64,
    /// Positions compared with at least one verifier state.
    pub steps_checked: u64,
    /// Of those, positions compared on a path the verifier explored
    /// (strictly, before any pruning point).
    pub steps_strict: u64,
    /// Register and slot values compared.
    pub values_checked: u64,
    /// Values outside the printed states but explained by pruning (see [`Verdict::Relaxed`]).
    pub relaxed: u64,
    /// Positions that could not be compared, by reason (one sentence each).
    pub unchecked: BTreeMap<String, u64>,
    pub flags: Vec<SoundnessFlag>,
}

impl SoundnessReport {
    /// Adds one position's comparison.
    pub fn add(&mut self, c: &StepCheck) {
        self.steps += 1;
        match &c.coverage {
            Coverage::Checked => {
                self.steps_checked += 1;
                self.steps_strict += u64::from(!c.relaxed);
            }
            Coverage::NoState => {
                *self
                    .unchecked
                    .entry(
                        "reached by the verifier only at pruning points that print no state".into(),
                    )
                    .or_default() += 1
            }
            Coverage::NeverVisited => {}
            Coverage::Unchecked(u) => *self.unchecked.entry(u.message()).or_default() += 1,
        }
        self.values_checked += c.values.len() as u64;
        self.relaxed += c
            .values
            .iter()
            .filter(|v| v.verdict == Verdict::Relaxed)
            .count() as u64;
        self.flags.extend(c.flags());
    }

    pub fn is_clean(&self) -> bool {
        self.flags.is_empty()
    }
}

/// Replays the session's invocation from its start to its end, comparing
/// every position with the verifier's states. The session is left at the end.
pub fn check_invocation<E: SessionEnv>(s: &mut Session<E>, beliefs: &Beliefs) -> SoundnessReport {
    let mut report = SoundnessReport::default();
    let mut checker = Checker::new(beliefs);
    s.goto(0);
    loop {
        let exited = s
            .end()
            .is_some_and(|e| e.position == s.position() && matches!(e.kind, EndKind::Exited(_)));
        if exited {
            break;
        }
        report.add(&checker.check(s));
        if s.at_end() {
            break;
        }
        let before = s.position();
        s.goto(before + 1);
        if s.position() == before {
            break;
        }
    }
    report
}

/// What the comparison needs from the machine.
struct Ctx<'a> {
    memory: &'a Memory,
    frames: &'a [Frame],
    base: usize,
    maps: &'a [MapSizes],
    session_desc: &'a dyn Fn(u64) -> Option<String>,
    relaxed: bool,
}

impl Ctx<'_> {
    /// Every way the value can be read: what it points to (a packet
    /// pointer relative to `data`, `data_end` and `data_meta`), and always
    /// as a plain number too (a number may look like a tagged address).
    fn regions(&self, value: u64) -> Vec<ValueRegion> {
        let mut out = vec![ValueRegion::Scalar];
        let (id, offset) = split_address(value);
        if id == ids::NULL || id as usize >= self.memory.region_count() {
            return out;
        }
        let Some(region) = self.memory.region(id) else {
            return out;
        };
        let len = region.bytes().len() as u64;
        match region.kind() {
            RegionKind::Null => {}
            RegionKind::Stack { frame } => {
                let depth = *frame as usize;
                match self.frames.get(depth) {
                    Some(f) if depth >= self.base => out.push(ValueRegion::Stack {
                        frame: (depth - self.base) as u32,
                        offset: offset - f.stack_size as i64,
                    }),
                    _ => out.push(ValueRegion::Other),
                }
            }
            RegionKind::Context => out.push(ValueRegion::Context { offset }),
            RegionKind::Packet => {
                if let Some(pp) = self.memory.packet() {
                    let rel = |a: u64| offset - split_address(a).1;
                    out.push(ValueRegion::Packet {
                        offset: rel(pp.data),
                    });
                    out.push(ValueRegion::PacketEnd {
                        offset: rel(pp.end),
                    });
                    out.push(ValueRegion::PacketMeta {
                        offset: rel(pp.meta),
                    });
                }
            }
            RegionKind::Input
            | RegionKind::RingbufRecord { .. }
            | RegionKind::HelperBuffer { .. } => {
                out.push(ValueRegion::Memory { offset, size: len })
            }
            RegionKind::Code => out.push(ValueRegion::Code),
            RegionKind::Map { map } => {
                let s = self.maps.get(*map as usize).copied().unwrap_or_default();
                out.push(ValueRegion::MapObject {
                    key_size: s.key_size,
                    value_size: s.value_size,
                });
            }
            RegionKind::MapValue { map, .. } | RegionKind::GlobalData { map } => {
                let value_size = self
                    .maps
                    .get(*map as usize)
                    .map_or(len as u32, |s| s.value_size);
                out.push(ValueRegion::MapValue { offset, value_size });
            }
        }
        out
    }

    fn describe(&self, value: u64) -> String {
        (self.session_desc)(value).unwrap_or_else(|| format_scalar(value))
    }

    fn check(&self, place: Place, value: u64, states: &[&RegState]) -> ValueCheck {
        let regions = self.regions(value);
        let inside = states
            .iter()
            .any(|st| regions.iter().any(|r| contains(st, value, r)));
        let verdict = if inside {
            Verdict::Inside
        } else if self.relaxed
            && regions.first() == Some(&ValueRegion::Scalar)
            && states
                .iter()
                .all(|st| st.kind == RegKind::Scalar && !st.precise)
        {
            Verdict::Relaxed
        } else {
            Verdict::Outside
        };
        let mut texts: Vec<String> = Vec::new();
        for st in states {
            let t = st.compact();
            if !texts.contains(&t) {
                texts.push(t);
            }
        }
        ValueCheck {
            place,
            value,
            described: self.describe(value),
            states: texts,
            verdict,
        }
    }
}

/// `17`, `-1`, `0xffff0000`: a plain number as the listing shows it.
pub fn format_scalar(v: u64) -> String {
    let s = v as i64;
    if (-0x10000..=0xffff).contains(&s) {
        s.to_string()
    } else {
        format!("{v:#x}")
    }
}

/// The stack slots every visit printed, compared where it is cheap: a
/// spilled register (8 bytes, or a narrow spill whose value fits its
/// bytes) against its state, and bytes the verifier knew to be zero.
fn check_slots(ctx: &Ctx<'_>, visits: &[&InsnVisit], fp: u64) -> Vec<ValueCheck> {
    let mut offsets: BTreeSet<i32> = BTreeSet::new();
    for v in visits {
        offsets.extend(v.stack.iter().map(|s| s.offset));
    }
    let mut out = Vec::new();
    for off in offsets.into_iter().rev() {
        // Every visit must say something about the slot; a visit without
        // it held the slot as never written (no claim).
        let slots: Vec<_> = visits
            .iter()
            .filter_map(|v| v.stack.iter().find(|s| s.offset == off))
            .collect();
        if slots.len() < visits.len() {
            continue;
        }
        let Ok(bytes) = ctx
            .memory
            .read(fp.wrapping_add(off as i64 as u64), 8)
            .map(<[u8]>::to_vec)
        else {
            continue;
        };
        let word = u64::from_le_bytes(bytes[..8].try_into().unwrap_or([0; 8]));
        // A slot whose every visit is a full spill: compare the register.
        let spills: Option<Vec<&RegState>> = slots
            .iter()
            .map(|s| match &s.contents {
                SlotContents::Spill { above, reg } if above.is_empty() => Some(&**reg),
                _ => None,
            })
            .collect();
        if let Some(states) = spills {
            out.push(ctx.check(Place::Slot(off), word, &states));
            continue;
        }
        // Otherwise compare byte by byte what each visit claims: a narrow
        // spill of a value that fits it, and zero bytes.
        let ok = slots.iter().any(|s| slot_holds(s, &bytes));
        let all_claim_nothing = slots.iter().all(|s| !slot_claims(s));
        if all_claim_nothing {
            continue;
        }
        let mut states: Vec<String> = Vec::new();
        for s in &slots {
            let t = s.compact();
            if !states.contains(&t) {
                states.push(t);
            }
        }
        out.push(ValueCheck {
            place: Place::Slot(off),
            value: word,
            described: bytes.iter().map(|b| format!("{b:02x}")).collect(),
            states,
            verdict: if ok {
                Verdict::Inside
            } else {
                Verdict::Outside
            },
        });
    }
    out
}

/// Whether a slot's state claims anything checkable about its bytes.
fn slot_claims(s: &super::StackSlot) -> bool {
    match &s.contents {
        SlotContents::Bytes { bytes } => bytes.contains(&SlotByte::Zero),
        SlotContents::Spill { above, reg } => {
            above.contains(&SlotByte::Zero) || narrow_spill_value_fits(above.len(), reg)
        }
        _ => false,
    }
}

/// A narrow spill of `8 - above` bytes keeps the register's whole state;
/// its bytes equal the register only when its value fits them.
fn narrow_spill_value_fits(above: usize, reg: &RegState) -> bool {
    let size = 8usize.saturating_sub(above);
    reg.kind == RegKind::Scalar && size > 0 && size < 8 && reg.bounds.umax >> (8 * size) == 0
}

/// Whether the concrete slot bytes (`bytes[0]` is the slot's lowest
/// address) agree with what the slot's state claims.
fn slot_holds(s: &super::StackSlot, bytes: &[u8]) -> bool {
    // The state's byte kinds run from the highest address down.
    let kind_at = |i: usize| s.byte_at(s.offset + i as i32);
    let zeros_ok = (0..8).all(|i| kind_at(i) != Some(SlotByte::Zero) || bytes[i] == 0);
    if !zeros_ok {
        return false;
    }
    match &s.contents {
        SlotContents::Spill { above, reg } if narrow_spill_value_fits(above.len(), reg) => {
            let size = 8 - above.len();
            let mut v = 0u64;
            for (i, b) in bytes[..size].iter().enumerate() {
                v |= (*b as u64) << (8 * i);
            }
            reg.bounds.contains(v)
        }
        _ => true,
    }
}

/// Registers an instruction reads and writes (for the comparison view).
pub fn insn_regs(insn: &Insn) -> (Vec<u8>, Vec<u8>) {
    let src_reg = |o: &Operand| match o {
        Operand::Reg(r) => Some(*r),
        Operand::Imm(_) => None,
    };
    let (reads, writes): (Vec<Option<u8>>, Vec<u8>) = match *insn {
        Insn::Alu { op, dst, src, .. } => {
            let dst_read = (op != bpfrr_trace::isa::AluOp::Mov).then_some(dst);
            (vec![dst_read, src_reg(&src)], vec![dst])
        }
        Insn::Neg { dst, .. } | Insn::Endian { dst, .. } => (vec![Some(dst)], vec![dst]),
        Insn::MovSx { dst, src, .. } => (vec![Some(src)], vec![dst]),
        Insn::Load { dst, src, .. } => (vec![Some(src)], vec![dst]),
        Insn::Store { dst, src, .. } => (vec![Some(dst), src_reg(&src)], vec![]),
        Insn::Atomic {
            op,
            fetch,
            dst,
            src,
            ..
        } => match op {
            AtomicOp::LoadAcquire => (vec![Some(src)], vec![dst]),
            AtomicOp::StoreRelease => (vec![Some(dst), Some(src)], vec![]),
            AtomicOp::Cmpxchg => (vec![Some(dst), Some(src), Some(0)], vec![0]),
            _ if fetch => (vec![Some(dst), Some(src)], vec![src]),
            _ => (vec![Some(dst), Some(src)], vec![]),
        },
        Insn::LoadImm64 { dst, .. } => (vec![], vec![dst]),
        Insn::LoadPacket { src, .. } => (vec![Some(6), src], vec![0]),
        Insn::Ja { .. } | Insn::MayGoto { .. } => (vec![], vec![]),
        Insn::Jump { dst, src, .. } => (vec![Some(dst), src_reg(&src)], vec![]),
        Insn::Call(CallTarget::Helper(id)) => {
            let n = bpfrr_trace::catalog::helper(id).map_or(5, |h| h.args.len().min(5));
            ((1..=n as u8).map(Some).collect(), vec![0])
        }
        Insn::Call(CallTarget::Kfunc { .. }) => {
            (vec![Some(1), Some(2), Some(3), Some(4), Some(5)], vec![0])
        }
        Insn::Call(CallTarget::Local(_)) => (vec![], vec![]),
        Insn::Call(CallTarget::Reg(r)) => (vec![Some(r)], vec![]),
        Insn::Exit => (vec![Some(0)], vec![]),
    };
    let mut r: Vec<u8> = reads.into_iter().flatten().collect();
    r.dedup();
    (r, writes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verifier::FrameState;
    use bpfrr_trace::isa::{AluOp, JmpCond, Size, Width};

    #[test]
    fn registers_read_and_written() {
        let add = Insn::Alu {
            width: Width::W64,
            op: AluOp::Add,
            dst: 3,
            src: Operand::Reg(2),
        };
        assert_eq!(insn_regs(&add), (vec![3, 2], vec![3]));
        let mov = Insn::Alu {
            width: Width::W32,
            op: AluOp::Mov,
            dst: 1,
            src: Operand::Imm(5),
        };
        assert_eq!(insn_regs(&mov), (vec![], vec![1]));
        let st = Insn::Store {
            size: Size::W,
            dst: 10,
            off: -8,
            src: Operand::Reg(1),
        };
        assert_eq!(insn_regs(&st), (vec![10, 1], vec![]));
        let jmp = Insn::Jump {
            width: Width::W64,
            cond: JmpCond::Gt,
            dst: 3,
            src: Operand::Reg(2),
            off: 2,
        };
        assert_eq!(insn_regs(&jmp), (vec![3, 2], vec![]));
        assert_eq!(insn_regs(&Insn::Exit), (vec![0], vec![]));
    }

    #[test]
    fn scalars_print_like_the_listing() {
        assert_eq!(format_scalar(17), "17");
        assert_eq!(format_scalar(u64::MAX), "-1");
        assert_eq!(format_scalar(0xffff_0000), "0xffff0000");
    }

    #[test]
    fn slot_claims_zero_bytes_and_narrow_spills() {
        let (st, _) =
            FrameState::parse("fp-8=mmmm0000 fp-16=????5 fp-24=????scalar(umax=0x1ffffffff)");
        let zero = st.slot(-8).unwrap();
        assert!(slot_claims(zero));
        // Bytes fp-8..fp-5 (the lowest four) are known zero.
        assert!(slot_holds(zero, &[0, 0, 0, 0, 9, 9, 9, 9]));
        assert!(!slot_holds(zero, &[0, 1, 0, 0, 9, 9, 9, 9]));
        let five = st.slot(-16).unwrap();
        assert!(slot_claims(five));
        assert!(slot_holds(five, &[5, 0, 0, 0, 0xaa, 0xbb, 0xcc, 0xdd]));
        assert!(!slot_holds(five, &[6, 0, 0, 0, 0, 0, 0, 0]));
        // A narrow spill of a value wider than its bytes keeps the whole
        // register's state: its bytes say nothing checkable.
        assert!(!slot_claims(st.slot(-24).unwrap()));
    }
}
