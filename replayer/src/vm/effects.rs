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

/// One effect as a `StepLog` keeps it: register writes and stores (nearly
/// every effect) inline, as plain data; anything else as an index into
/// `LogEffects::heavy`. Plain data has no drop glue, so clearing or
/// truncating a log costs nothing per step (dropping a list of `Effect`s
/// calls the enum's drop code once per effect: a sixth of a logged run).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LogEffect {
    Reg { reg: u8, old: u64 },
    Store(SmallWrite),
    Heavy(usize),
}

/// The effects of a `StepLog`, oldest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct LogEffects {
    list: Vec<LogEffect>,
    /// The effects that own heap data (frames, regions, helper calls).
    heavy: Vec<Effect>,
}

impl LogEffects {
    /// The `k`-th effect (a copy for the inline kinds).
    pub(crate) fn get(&self, k: usize) -> Option<Cow<'_, Effect>> {
        Some(match *self.list.get(k)? {
            LogEffect::Reg { reg, old } => Cow::Owned(Effect::Reg { reg, old }),
            LogEffect::Store(w) => Cow::Owned(Effect::Store(w)),
            LogEffect::Heavy(i) => Cow::Borrowed(self.heavy.get(i)?),
        })
    }

    /// Keeps the first `n` effects.
    pub(crate) fn truncate(&mut self, n: usize) {
        let first_heavy = self.list.get(n..).and_then(|gone| {
            gone.iter().find_map(|e| match e {
                LogEffect::Heavy(i) => Some(*i),
                _ => None,
            })
        });
        if let Some(i) = first_heavy {
            self.heavy.truncate(i);
        }
        self.list.truncate(n);
    }

    pub(crate) fn clear(&mut self) {
        self.list.clear();
        self.heavy.clear();
    }
}

impl EffectSink for LogEffects {
    #[inline(always)]
    fn push(&mut self, e: Effect) {
        let e = match e {
            Effect::Reg { reg, old } => LogEffect::Reg { reg, old },
            Effect::Store(w) => LogEffect::Store(w),
            e => {
                self.heavy.push(e);
                LogEffect::Heavy(self.heavy.len() - 1)
            }
        };
        push_fast(&mut self.list, e);
    }
    #[inline(always)]
    fn len(&self) -> usize {
        self.list.len()
    }
    #[inline(always)]
    fn push_reg(&mut self, reg: u8, old: u64) {
        push_fast(&mut self.list, LogEffect::Reg { reg, old });
    }
    #[inline(always)]
    fn push_store(&mut self, w: SmallWrite) {
        push_fast(&mut self.list, LogEffect::Store(w));
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

/// Where one logged step starts: the program and counters before it, and
/// the index of its first effect in the log. Kept compact (40 bytes rather
/// than a 64-byte `Control` plus indices): a run logs one per instruction.
/// A step only runs while the machine is `Running`, so the status before it
/// needs no room; program indices and pcs fit 32 bits (`Limits`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StepMark {
    pub first_effect: usize,
    steps: u64,
    may_goto_left: u64,
    prog: u32,
    pc: u32,
    tail_calls: u32,
}

impl StepMark {
    #[inline(always)]
    pub(crate) fn new(prog: usize, first_effect: usize, before: Control) -> StepMark {
        debug_assert_eq!(before.status, Status::Running);
        StepMark {
            first_effect,
            steps: before.steps,
            may_goto_left: before.may_goto_left,
            prog: prog as u32,
            pc: before.pc as u32,
            tail_calls: before.tail_calls,
        }
    }

    pub(crate) fn prog(&self) -> usize {
        self.prog as usize
    }

    /// The position and counters before the step.
    pub(crate) fn before(&self) -> Control {
        Control {
            pc: self.pc as usize,
            steps: self.steps,
            may_goto_left: self.may_goto_left,
            tail_calls: self.tail_calls,
            status: Status::Running,
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
    pub(crate) marks: Vec<StepMark>,
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
        self.marks.is_empty()
    }

    /// Forgets every step (the machine's state is not touched).
    pub fn clear(&mut self) {
        self.effects.clear();
        self.marks.clear();
    }

    /// Indices of step `i`'s effects in `effects`.
    pub(crate) fn span(&self, i: usize) -> Option<std::ops::Range<usize>> {
        let start = self.marks.get(i)?.first_effect;
        let end = self
            .marks
            .get(i + 1)
            .map_or(self.effects.len(), |m| m.first_effect);
        Some(start..end)
    }

    /// Step `i` (oldest first): the program and slot of its instruction and
    /// the effects it made, in order (what `StepEffects` would hold).
    /// Register writes and stores come as copies, the rest borrowed.
    pub fn step(&self, i: usize) -> Option<(usize, usize, impl Iterator<Item = Cow<'_, Effect>>)> {
        let m = self.marks.get(i)?;
        let span = self.span(i)?;
        Some((
            m.prog(),
            m.before().pc,
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
    use super::*;

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
