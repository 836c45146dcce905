//! What one step changed, with the old values, so a session can undo it
//! exactly. The full-speed mode records none of this.

use std::borrow::Cow;

use super::env::{Callee, HelperOutcome};
use super::machine::{Frame, Status};
use super::memory::{Region, RegionId, SmallWrite};

/// One change a step made. Undo applies the old values in reverse order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Register `reg` was written; `old` is its previous value.
    Reg { reg: u8, old: u64 },
    /// A store of 1-8 bytes (program store, atomic, context field).
    Store(SmallWrite),
    /// Bytes a helper wrote, with the bytes they replaced.
    Write {
        region: RegionId,
        offset: u32,
        old: Box<[u8]>,
    },
    /// A region was created (undo removes it; creation is in id order).
    RegionCreated { id: RegionId },
    /// A region was replaced, resized or freed; `old` is what it was.
    RegionReplaced { id: RegionId, old: Box<Region> },
    /// The packet pointers moved; the old `data` offset (the region's window is in a `RegionReplaced`).
    PacketData { old_data: u32 },
    /// A frame was pushed (call, callback); `old_stack` is what its stack region held before.
    FramePushed { old_stack: Box<Region> },
    /// A frame was popped (exit); its stack bytes are kept so undo can restore them.
    FramePopped {
        frame: Box<Frame>,
        stack: Box<Region>,
    },
    /// The top frame was replaced (tail call).
    FrameReplaced {
        old: Box<Frame>,
        old_stack: Box<Region>,
    },
    /// A helper or kfunc was called (or resumed after a callback) and what it answered.
    /// Informational: the environment's own state is not the machine's to undo.
    Called(Box<CallRecord>),
}

/// A helper, kfunc or resumed helper call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallRecord {
    pub callee: Callee,
    /// r1-r5 at the call.
    pub args: [u64; 5],
    /// Set when this is the resumption after a callback returned this r0.
    pub callback_r0: Option<u64>,
    pub outcome: HelperOutcome,
}

/// `v.push(x)`, written so that the common case (room left) has no call
/// in it: the compiler then stores `x` straight into the vector instead
/// of building it on the stack first and copying it, a copy whose wide
/// loads stall on the narrow stores that built it (store-to-load
/// forwarding fails), which cost about a third of a logged run.
#[inline(always)]
pub(crate) fn push_fast<T>(v: &mut Vec<T>, x: T) {
    if v.len() < v.capacity() {
        v.push(x);
    } else {
        push_grow(v, x);
    }
}

#[cold]
#[inline(never)]
fn push_grow<T>(v: &mut Vec<T>, x: T) {
    v.push(x);
}

/// Where the interpreter loops put the effects they record: an
/// `EffectList`, or a single slot for `Machine::step`'s one straight-line
/// instruction (which changes at most one thing).
pub(crate) trait EffectSink {
    fn push(&mut self, e: Effect);
    fn len(&self) -> usize;
    /// `push(Effect::Reg { reg, old })`. The straight-line loop records
    /// through this and `push_store`: sinks that keep plain data
    /// (`StepLog`, a single step's slot) then never build an `Effect`,
    /// whose drop code was a call per logged step (7 % of a logged run).
    #[inline(always)]
    fn push_reg(&mut self, reg: u8, old: u64) {
        self.push(Effect::Reg { reg, old })
    }
    /// `push(Effect::Store(w))`; see `push_reg`.
    #[inline(always)]
    fn push_store(&mut self, w: SmallWrite) {
        self.push(Effect::Store(w))
    }
}

impl EffectSink for EffectList {
    #[inline(always)]
    fn push(&mut self, e: Effect) {
        EffectList::push(self, e)
    }
    #[inline(always)]
    fn len(&self) -> usize {
        EffectList::len(self)
    }
    #[inline(always)]
    fn push_reg(&mut self, reg: u8, old: u64) {
        self.push_plain(PlainEffect::Reg { reg, old })
    }
    #[inline(always)]
    fn push_store(&mut self, w: SmallWrite) {
        self.push_plain(PlainEffect::Store(w))
    }
}

/// The one change of a straight-line step (`Machine::step`'s inline
/// path): a register write or a store. Plain data, so that setting it
/// costs no drop call and it stays in registers until the result is built.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct OneEffect(Option<PlainEffect>);

impl OneEffect {
    #[inline(always)]
    pub(crate) fn plain(self) -> Option<PlainEffect> {
        self.0
    }
}

impl EffectSink for OneEffect {
    #[inline(always)]
    fn push(&mut self, e: Effect) {
        debug_assert!(self.0.is_none(), "a straight-line step makes one change");
        // `simple.rs` records nothing else.
        self.0 = Some(PlainEffect::of(&e).unwrap_or_else(|| {
            unreachable!("a straight-line instruction only writes a register or memory")
        }));
    }
    #[inline(always)]
    fn len(&self) -> usize {
        self.0.is_some() as usize
    }
    #[inline(always)]
    fn push_reg(&mut self, reg: u8, old: u64) {
        debug_assert!(self.0.is_none(), "a straight-line step makes one change");
        self.0 = Some(PlainEffect::Reg { reg, old });
    }
    #[inline(always)]
    fn push_store(&mut self, w: SmallWrite) {
        debug_assert!(self.0.is_none(), "a straight-line step makes one change");
        self.0 = Some(PlainEffect::Store(w));
    }
}

/// One effect as a `StepLog` keeps it, in 16 bytes (an `Effect::Store`
/// would take 32 as an enum): register writes and stores (nearly every
/// effect) inline; anything else as an index into `LogEffects::heavy`.
/// Plain data has no drop glue, so clearing or truncating a log costs
/// nothing per step (dropping a list of `Effect`s calls the enum's drop
/// code once per effect: a sixth of a logged run).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LogEntry {
    /// The register's or the bytes' old value; a heavy effect's index.
    old: u64,
    /// A store's offset in its region.
    offset: u32,
    /// The low byte says what the entry is: `TAG_REG` a register write
    /// (the register in the next byte), `TAG_HEAVY` a heavy effect, else
    /// a store of that many bytes (its region in the upper 24 bits).
    tag: u32,
}

const TAG_REG: u32 = 0;
const TAG_HEAVY: u32 = 0xff;

impl LogEntry {
    #[inline(always)]
    fn reg(reg: u8, old: u64) -> LogEntry {
        LogEntry {
            old,
            offset: 0,
            tag: (reg as u32) << 8 | TAG_REG,
        }
    }

    /// The store inline, when its region and length fit the tag (a region
    /// id from an address always does: ids are 24 bits, `OFFSET_BITS`).
    #[inline(always)]
    fn store(w: SmallWrite) -> Option<LogEntry> {
        let fits = w.region < 1 << 24 && (w.len as u32) != TAG_REG && (w.len as u32) != TAG_HEAVY;
        fits.then_some(LogEntry {
            old: w.old,
            offset: w.offset,
            tag: w.region << 8 | w.len as u32,
        })
    }

    /// The entry of a register write or a store that fits one (tests).
    #[cfg(test)]
    fn store_or_reg(e: &Effect) -> Option<LogEntry> {
        match *e {
            Effect::Reg { reg, old } => Some(LogEntry::reg(reg, old)),
            Effect::Store(w) => LogEntry::store(w),
            _ => None,
        }
    }

    fn heavy(index: usize) -> LogEntry {
        LogEntry {
            old: index as u64,
            offset: 0,
            tag: TAG_HEAVY,
        }
    }

    fn heavy_index(self) -> Option<usize> {
        (self.tag & 0xff == TAG_HEAVY).then_some(self.old as usize)
    }
}

/// The effects of a `StepLog`, oldest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct LogEffects {
    list: Vec<LogEntry>,
    /// The effects that own heap data (frames, regions, helper calls), and
    /// stores too large for a `LogEntry`.
    heavy: Vec<Effect>,
}

impl LogEffects {
    /// The `k`-th effect (a copy for the inline kinds).
    pub(crate) fn get(&self, k: usize) -> Option<Cow<'_, Effect>> {
        let e = *self.list.get(k)?;
        Some(match e.tag & 0xff {
            TAG_REG => Cow::Owned(Effect::Reg {
                reg: (e.tag >> 8) as u8,
                old: e.old,
            }),
            TAG_HEAVY => Cow::Borrowed(self.heavy.get(e.old as usize)?),
            len => Cow::Owned(Effect::Store(SmallWrite {
                region: e.tag >> 8,
                offset: e.offset,
                len: len as u8,
                old: e.old,
            })),
        })
    }

    /// Keeps the first `n` effects.
    pub(crate) fn truncate(&mut self, n: usize) {
        let first_heavy = self
            .list
            .get(n..)
            .and_then(|gone| gone.iter().find_map(|e| e.heavy_index()));
        if let Some(i) = first_heavy {
            self.heavy.truncate(i);
        }
        self.list.truncate(n);
    }

    pub(crate) fn clear(&mut self) {
        self.list.clear();
        self.heavy.clear();
    }

    #[cold]
    #[inline(never)]
    fn push_heavy(&mut self, e: Effect) {
        self.heavy.push(e);
        let entry = LogEntry::heavy(self.heavy.len() - 1);
        self.list.push(entry);
    }
}

impl EffectSink for LogEffects {
    #[inline(always)]
    fn push(&mut self, e: Effect) {
        match e {
            Effect::Reg { reg, old } => self.push_reg(reg, old),
            Effect::Store(w) => self.push_store(w),
            e => self.push_heavy(e),
        }
    }
    #[inline(always)]
    fn len(&self) -> usize {
        self.list.len()
    }
    #[inline(always)]
    fn push_reg(&mut self, reg: u8, old: u64) {
        push_fast(&mut self.list, LogEntry::reg(reg, old));
    }
    #[inline(always)]
    fn push_store(&mut self, w: SmallWrite) {
        match LogEntry::store(w) {
            Some(entry) => push_fast(&mut self.list, entry),
            None => self.push_heavy(Effect::Store(w)),
        }
    }
}

/// Machine-wide counters and position before a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Control {
    pub pc: usize,
    pub steps: u64,
    pub may_goto_left: u64,
    pub tail_calls: u32,
    pub status: Status,
}

/// A register write or a 1-8 byte store: nearly every effect, as plain
/// data (no heap, no drop code).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PlainEffect {
    Reg { reg: u8, old: u64 },
    Store(SmallWrite),
}

impl PlainEffect {
    #[inline(always)]
    fn effect(self) -> Effect {
        match self {
            PlainEffect::Reg { reg, old } => Effect::Reg { reg, old },
            PlainEffect::Store(w) => Effect::Store(w),
        }
    }

    #[inline(always)]
    fn of(e: &Effect) -> Option<PlainEffect> {
        match *e {
            Effect::Reg { reg, old } => Some(PlainEffect::Reg { reg, old }),
            Effect::Store(w) => Some(PlainEffect::Store(w)),
            _ => None,
        }
    }
}

/// The effects of one step, in the order they happened. Effects come out
/// as `Cow`s: register writes and stores as copies, the rest borrowed.
#[derive(Clone, Debug, Default)]
pub struct EffectList {
    // Most instructions change exactly one register or memory word: that
    // first effect is kept inline as plain data, so that a step's result
    // (`StepEffects`) costs no drop call (a fifth of a stepped run when it
    // was an `Effect`, whose drop code is a call). Set only while `rest`
    // is empty, so it always comes first.
    first: Option<PlainEffect>,
    rest: Vec<Effect>,
}

impl PartialEq for EffectList {
    fn eq(&self, other: &EffectList) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for EffectList {}

impl EffectList {
    /// The list of `first` alone (empty when None).
    #[inline(always)]
    pub(crate) fn from_plain(first: Option<PlainEffect>) -> EffectList {
        EffectList {
            first,
            rest: Vec::new(),
        }
    }

    #[inline(always)]
    pub(crate) fn push(&mut self, e: Effect) {
        if self.first.is_none()
            && self.rest.is_empty()
            && let Some(p) = PlainEffect::of(&e)
        {
            self.first = Some(p);
        } else {
            push_fast(&mut self.rest, e);
        }
    }

    #[inline(always)]
    fn push_plain(&mut self, p: PlainEffect) {
        if self.first.is_none() && self.rest.is_empty() {
            self.first = Some(p);
        } else {
            push_fast(&mut self.rest, p.effect());
        }
    }

    /// The effects, oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = Cow<'_, Effect>> {
        self.first
            .map(|p| Cow::Owned(p.effect()))
            .into_iter()
            .chain(self.rest.iter().map(Cow::Borrowed))
    }

    pub fn len(&self) -> usize {
        self.first.is_some() as usize + self.rest.len()
    }

    pub fn is_empty(&self) -> bool {
        self.first.is_none() && self.rest.is_empty()
    }

    /// The `i`-th effect, oldest first.
    pub fn get(&self, i: usize) -> Option<Cow<'_, Effect>> {
        match (self.first, i) {
            (Some(p), 0) => Some(Cow::Owned(p.effect())),
            (Some(_), _) => self.rest.get(i - 1).map(Cow::Borrowed),
            (None, _) => self.rest.get(i).map(Cow::Borrowed),
        }
    }

    /// Moves every effect, in order, to `sink`, leaving this list empty.
    #[inline]
    pub(crate) fn move_into<L: EffectSink>(&mut self, sink: &mut L) {
        match self.first.take() {
            Some(PlainEffect::Reg { reg, old }) => sink.push_reg(reg, old),
            Some(PlainEffect::Store(w)) => sink.push_store(w),
            None if self.rest.is_empty() => return,
            None => {}
        }
        for e in self.rest.drain(..) {
            sink.push(e);
        }
    }
}

/// Where one logged step starts: its instruction's slot and its first
/// effect, counted from its `MarkRun`'s `first_effect`. 8 bytes: a run
/// logs one per instruction, so what changes only at general-path
/// instructions (program, counters) is kept once per `MarkRun` instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StepMark {
    pc: u32,
    effect: u32,
}

/// Consecutive logged steps of one program whose `may_goto` and tail-call
/// counters are the same before each, with step counts rising by one from
/// `steps`: the part of the steps' `Control` not in their `StepMark`s. A
/// step only runs while the machine is `Running`, so the status needs no
/// room; program indices and pcs fit 32 bits (`Limits`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MarkRun {
    /// Index of its first step in `StepMarks::marks`.
    first: usize,
    /// What its steps' `StepMark::effect` count from.
    first_effect: usize,
    /// The step count before its first step.
    steps: u64,
    may_goto_left: u64,
    prog: u32,
    tail_calls: u32,
}

/// The most effects a `MarkRun` spans before its last step: its marks'
/// `effect` fields hold at most this. Small in unit tests, so that they
/// reach the split.
#[cfg(not(test))]
const RUN_EFFECTS_MAX: usize = u32::MAX as usize;
#[cfg(test)]
const RUN_EFFECTS_MAX: usize = 5;

/// The start of every logged step (see `StepLog`). A new `MarkRun` begins
/// only where the step before differs in program or counters, or where its
/// first effect would not fit a `StepMark`: the runs are a function of the
/// steps alone, not of how the logging was split into calls.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct StepMarks {
    marks: Vec<StepMark>,
    runs: Vec<MarkRun>,
}

impl StepMarks {
    /// Readies steps that start with `before` (`steps` there is the count
    /// before the next step) in program `prog`, the log holding
    /// `effects` effects: continues the last run when they extend it,
    /// else begins a new one. Returns what the next steps' marks count
    /// their first effect from, and how many steps may be marked before
    /// `begin` must be called again (at least 1; each straight-line step
    /// makes at most one effect).
    #[inline]
    pub(crate) fn begin(&mut self, prog: usize, effects: usize, before: Control) -> (usize, u64) {
        debug_assert_eq!(before.status, Status::Running);
        let continues = self.runs.last().filter(|r| {
            r.prog as usize == prog
                && r.may_goto_left == before.may_goto_left
                && r.tail_calls == before.tail_calls
                && r.steps.wrapping_add((self.marks.len() - r.first) as u64) == before.steps
                && effects - r.first_effect <= RUN_EFFECTS_MAX
        });
        let base = match continues {
            Some(r) => r.first_effect,
            None => {
                self.runs.push(MarkRun {
                    first: self.marks.len(),
                    first_effect: effects,
                    steps: before.steps,
                    may_goto_left: before.may_goto_left,
                    prog: prog as u32,
                    tail_calls: before.tail_calls,
                });
                effects
            }
        };
        (base, (RUN_EFFECTS_MAX - (effects - base)) as u64 + 1)
    }

    /// Marks the start of a step at `pc` whose first effect is `effects`,
    /// `base` being what `begin` returned (and at most `RUN_EFFECTS_MAX`
    /// below it: `begin`'s step allowance sees to that).
    #[inline(always)]
    pub(crate) fn push(&mut self, pc: usize, effects: usize, base: usize) {
        push_fast(
            &mut self.marks,
            StepMark {
                pc: pc as u32,
                effect: (effects - base) as u32,
            },
        );
    }

    pub(crate) fn len(&self) -> usize {
        self.marks.len()
    }

    fn clear(&mut self) {
        self.marks.clear();
        self.runs.clear();
    }

    /// The run step `i` belongs to.
    fn run_of(&self, i: usize) -> Option<&MarkRun> {
        if i >= self.marks.len() {
            return None;
        }
        let k = self.runs.partition_point(|r| r.first <= i);
        self.runs.get(k.checked_sub(1)?)
    }

    /// Step `i`'s program, the position and counters before it, and the
    /// index of its first effect in the log.
    pub(crate) fn get(&self, i: usize) -> Option<(usize, Control, usize)> {
        let m = self.marks.get(i)?;
        let r = self.run_of(i)?;
        let before = Control {
            pc: m.pc as usize,
            steps: r.steps + (i - r.first) as u64,
            may_goto_left: r.may_goto_left,
            tail_calls: r.tail_calls,
            status: Status::Running,
        };
        Some((r.prog as usize, before, r.first_effect + m.effect as usize))
    }

    /// Forgets the newest step.
    pub(crate) fn pop(&mut self) {
        self.marks.pop();
        if self
            .runs
            .last()
            .is_some_and(|r| r.first >= self.marks.len())
        {
            self.runs.pop();
        }
    }
}

/// Every step of a run made with `Machine::run_logged`, each with the
/// effects it made, so that any number of them can be undone newest first
/// (`Machine::undo_logged`). It holds what a sequence of `Machine::step`
/// calls would return, without building a `StepEffects` per instruction:
/// the way to run many instructions and keep an exact undo log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StepLog {
    pub(crate) effects: LogEffects,
    pub(crate) marks: StepMarks,
}

impl StepLog {
    pub fn new() -> StepLog {
        StepLog::default()
    }

    /// Number of steps logged.
    pub fn len(&self) -> usize {
        self.marks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.marks.len() == 0
    }

    /// Forgets every step (the machine's state is not touched).
    pub fn clear(&mut self) {
        self.effects.clear();
        self.marks.clear();
    }

    /// Indices of step `i`'s effects in `effects`.
    pub(crate) fn span(&self, i: usize) -> Option<std::ops::Range<usize>> {
        let (_, _, start) = self.marks.get(i)?;
        let end = self
            .marks
            .get(i + 1)
            .map_or(self.effects.len(), |(_, _, first)| first);
        Some(start..end)
    }

    /// Step `i` (oldest first): the program and slot of its instruction and
    /// the effects it made, in order (what `StepEffects` would hold).
    /// Register writes and stores come as copies, the rest borrowed.
    pub fn step(&self, i: usize) -> Option<(usize, usize, impl Iterator<Item = Cow<'_, Effect>>)> {
        let (prog, before, _) = self.marks.get(i)?;
        let span = self.span(i)?;
        Some((
            prog,
            before.pc,
            span.filter_map(move |k| self.effects.get(k)),
        ))
    }
}

/// How a step ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepOutcome {
    /// The program continues at the machine's new pc.
    Running,
    /// The program returned this r0 (exit of frame 0, or LD_ABS out of bounds).
    Exited(u64),
    /// The instruction faulted; effects made before the fault (a helper's
    /// writes) are listed and undoable; the pc stays on the instruction.
    Faulted(super::fault::Fault),
}

/// Everything one `Machine::step` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepEffects {
    /// Program index and slot of the instruction executed.
    pub prog: usize,
    pub pc: usize,
    pub effects: EffectList,
    pub outcome: StepOutcome,
    pub(crate) before: Control,
}

#[cfg(test)]
mod tests {
    //! The marks' runs, with `RUN_EFFECTS_MAX` small (5) so that runs also
    //! split on their effect count. `replayer/tests/vm.rs` checks logged
    //! runs against single steps with the real limit.
    use bpfrr_trace::isa::{RawInsn, check};

    use super::super::context::Context;
    use super::super::env::NoHelpers;
    use super::super::machine::{Machine, RunStop};
    use super::super::program::{Limits, Program};
    use super::*;

    /// A loop of stores and jumps, a `may_goto` per round (its counter
    /// changes, so the marks' run must change) and a local call whose
    /// callee writes its own frame.
    fn machine() -> Machine {
        let i = RawInsn::new;
        let slots = [
            i(0xb7, 1, 0, 0, 0),   // 0: r1 = 0
            i(0x7b, 10, 1, -8, 0), // 1: *(u64 *)(r10 - 8) = r1
            i(0x07, 1, 0, 0, 1),   // 2: r1 += 1
            i(0x05, 0, 0, 0, 0),   // 3: goto +0 (no effect)
            i(0xe5, 0, 0, 1, 0),   // 4: may_goto +1
            i(0x85, 0, 1, 0, 3),   // 5: call 9
            i(0xa5, 1, 0, -6, 12), // 6: if r1 < 12 goto 1
            i(0xbf, 0, 1, 0, 0),   // 7: r0 = r1
            i(0x95, 0, 0, 0, 0),   // 8: exit
            i(0x62, 10, 0, -4, 7), // 9: *(u32 *)(r10 - 4) = 7
            i(0xb7, 0, 0, 0, 1),   // 10: r0 = 1
            i(0x95, 0, 0, 0, 0),   // 11: exit
        ];
        let p = Program::new(&check(&slots).unwrap(), Limits::default()).unwrap();
        let mut m = Machine::new(p);
        m.start(0, &Context::none()).unwrap();
        m
    }

    #[test]
    fn log_entries_give_back_every_effect_and_truncate_with_their_heavy_ones() {
        let store = |region, len, old| {
            Effect::Store(SmallWrite {
                region,
                offset: 0xfedc_ba98,
                len,
                old,
            })
        };
        let effects = vec![
            Effect::Reg {
                reg: 0xff,
                old: u64::MAX,
            },
            store((1 << 24) - 1, 8, 0x0123_4567_89ab_cdef),
            Effect::PacketData { old_data: 7 },
            // Stores whose region or length do not fit an entry's tag are
            // kept whole, as heavy effects.
            store(1 << 24, 4, 1),
            store(3, 0, 2),
            store(3, 0xff, 3),
            store(3, 1, 0xaa),
            Effect::Reg { reg: 0, old: 0 },
            Effect::RegionCreated { id: 99 },
        ];
        let mut log = LogEffects::default();
        for e in &effects {
            log.push(e.clone());
        }
        assert_eq!(log.heavy.len(), 5);
        let back = |log: &LogEffects| -> Vec<Effect> {
            (0..log.len())
                .map(|k| log.get(k).unwrap().into_owned())
                .collect()
        };
        assert_eq!(back(&log), effects);
        assert!(log.get(effects.len()).is_none());
        for n in (0..effects.len()).rev() {
            log.truncate(n);
            assert_eq!(back(&log), effects[..n]);
            let heavy = effects[..n]
                .iter()
                .filter(|e| LogEntry::store_or_reg(e).is_none())
                .count();
            assert_eq!(log.heavy.len(), heavy, "{n} kept");
        }
    }

    #[test]
    fn marks_runs_answer_every_step_whatever_the_logging_calls_and_undo_exactly() {
        // Reference: single steps, the state before each.
        let mut m = machine();
        let mut snapshots = vec![m.state().clone()];
        let mut steps = Vec::new();
        loop {
            let s = m.step(&mut NoHelpers);
            let running = s.outcome == StepOutcome::Running;
            steps.push(s);
            snapshots.push(m.state().clone());
            if !running {
                break;
            }
        }
        assert_eq!(m.reg(0), 12);
        let mut logs = Vec::new();
        for chunk in [1, 2, 3, 7, u64::MAX] {
            let mut lm = machine();
            let mut log = StepLog::new();
            while let RunStop::Paused = lm.run_logged(&mut NoHelpers, chunk, &mut log).unwrap() {
                assert_eq!(lm.state(), &snapshots[log.len()], "chunk {chunk}");
            }
            assert_eq!(log.len(), steps.len(), "chunk {chunk}");
            for (i, s) in steps.iter().enumerate() {
                let (prog, before, _) = log.marks.get(i).unwrap();
                assert_eq!(
                    (prog, before),
                    (s.prog, s.before),
                    "chunk {chunk}, step {i}"
                );
                let (_, pc, effects) = log.step(i).unwrap();
                let effects: Vec<Effect> = effects.map(Cow::into_owned).collect();
                let expected: Vec<Effect> = s.effects.iter().map(Cow::into_owned).collect();
                assert_eq!((pc, effects), (s.pc, expected), "chunk {chunk}, step {i}");
            }
            assert!(log.marks.get(steps.len()).is_none());
            // Split by the counters and by the effect count, and never
            // more than `RUN_EFFECTS_MAX` effects into a run.
            assert!(log.marks.runs.len() > 12, "{:?}", log.marks.runs);
            assert!(
                log.marks
                    .marks
                    .iter()
                    .all(|m| m.effect as usize <= RUN_EFFECTS_MAX)
            );
            logs.push(log.clone());
            while lm.undo_logged(&mut log) {
                assert_eq!(lm.state(), &snapshots[log.len()], "chunk {chunk}");
            }
            assert_eq!(log, StepLog::new());
            // Logged again after the undo: the same log.
            while let RunStop::Paused = lm.run_logged(&mut NoHelpers, chunk, &mut log).unwrap() {}
            assert_eq!(&log, logs.last().unwrap(), "chunk {chunk}, logged again");
        }
        // The runs depend on the steps only, not on how the calls split them.
        assert!(logs.windows(2).all(|w| w[0] == w[1]));
        // A second run appended to the same log after a restart (the first
        // paused after two steps, same program and counters): its step
        // counts start again from 0, so it begins a run of its own.
        let n = steps.len();
        let mut lm = machine();
        let mut log = StepLog::new();
        lm.run_logged(&mut NoHelpers, 2, &mut log).unwrap();
        lm.start(0, &Context::none()).unwrap();
        assert_eq!(lm.state(), &snapshots[0]);
        lm.run_logged(&mut NoHelpers, u64::MAX, &mut log).unwrap();
        assert_eq!(log.len(), 2 + n);
        for (i, s) in steps.iter().enumerate() {
            let (prog, before, _) = log.marks.get(2 + i).unwrap();
            assert_eq!((prog, before), (s.prog, s.before), "second run, step {i}");
        }
        for k in (0..n).rev() {
            assert!(lm.undo_logged(&mut log));
            assert_eq!(lm.state(), &snapshots[k], "second run, undoing step {k}");
        }
    }

    fn store(offset: u32) -> Effect {
        Effect::Store(SmallWrite {
            region: 3,
            offset,
            len: 4,
            old: 0xdead_beef,
        })
    }

    fn owned(list: &EffectList) -> Vec<Effect> {
        list.iter().map(Cow::into_owned).collect()
    }

    #[test]
    fn an_effect_list_keeps_every_effect_in_order_whatever_comes_first() {
        let reg = Effect::Reg { reg: 2, old: 7 };
        let heavy = Effect::RegionCreated { id: 9 };
        let orders = [
            vec![],
            vec![reg.clone()],
            vec![heavy.clone()],
            vec![reg.clone(), heavy.clone(), store(8)],
            vec![heavy.clone(), reg.clone(), store(8)],
            vec![store(4), reg.clone(), store(8), heavy.clone()],
        ];
        for effects in orders {
            let mut list = EffectList::default();
            for e in &effects {
                list.push(e.clone());
            }
            assert_eq!(owned(&list), effects);
            assert_eq!(list.len(), effects.len());
            assert_eq!(list.is_empty(), effects.is_empty());
            for (i, e) in effects.iter().enumerate() {
                assert_eq!(list.get(i).as_deref(), Some(e), "effect {i} of {effects:?}");
            }
            assert_eq!(list.get(effects.len()), None);
            let newest_first: Vec<Effect> = list.iter().rev().map(Cow::into_owned).collect();
            assert!(newest_first.iter().eq(effects.iter().rev()));

            // Moving keeps the order, through the plain and the general push alike.
            let mut into = EffectList::default();
            let mut copy = list.clone();
            copy.move_into(&mut into);
            assert!(copy.is_empty());
            assert_eq!(owned(&into), effects);
            let mut log = LogEffects::default();
            list.clone().move_into(&mut log);
            let logged: Vec<Effect> = (0..log.len())
                .map(|k| log.get(k).unwrap().into_owned())
                .collect();
            assert_eq!(logged, effects);
        }
    }

    #[test]
    fn effect_lists_are_equal_when_their_effects_are() {
        // Pushed as plain data or as an `Effect`, the same register write.
        let mut plain = EffectList::default();
        EffectSink::push_reg(&mut plain, 1, 5);
        let mut general = EffectList::default();
        general.push(Effect::Reg { reg: 1, old: 5 });
        assert_eq!(plain, general);
        assert_eq!(
            plain,
            EffectList::from_plain(Some(PlainEffect::Reg { reg: 1, old: 5 }))
        );
        assert_ne!(plain, EffectList::default());
        let mut longer = plain.clone();
        longer.push(store(0));
        assert_ne!(plain, longer);
        // A plain effect after a heavy one goes after it, not first.
        let mut late = EffectList::default();
        late.push(Effect::RegionCreated { id: 1 });
        EffectSink::push_store(
            &mut late,
            SmallWrite {
                region: 3,
                offset: 0,
                len: 4,
                old: 0xdead_beef,
            },
        );
        assert_eq!(
            owned(&late),
            vec![Effect::RegionCreated { id: 1 }, store(0)]
        );
    }
}
