//! The compact undo log: one variable-length record per step, written
//! forward and read backward, so stepping back pops the newest record.
//!
//! Each item of a record is `payload, tag` (the tag last, so a backward
//! reader knows the payload's length from the tag). A record is its items
//! followed by a footer tag that says where the pc was before the step.
//! Footer tags never appear as item tags, so the previous record's footer
//! marks where this record begins.
//!
//! - Register write: tag `reg * 9 + n`, payload the `n` low bytes of
//!   `old ^ new` (a loop counter's `+= 1` costs 2 bytes).
//! - A single store: region, offset, size and the `n` bytes of `old ^ new`.
//! - Anything else (helper writes, frames, regions, several stores in one
//!   step): the `Effect` itself in a side table, referenced by index.
//! - Machine counters other than pc (may_goto budget, tail calls, status):
//!   a side-table entry, only when the step changed them.
//! - How many environment calls the step made (so the session can rewind
//!   its memo of environment answers).

use std::borrow::Cow;

use crate::vm::{Effect, EffectList, MachineState, Status, ids};

/// Machine counters before a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ctl {
    pub pc: usize,
    pub may_goto_left: u64,
    pub tail_calls: u32,
    pub status: Status,
}

impl Ctl {
    pub fn of(st: &MachineState) -> Ctl {
        Ctl {
            pc: st.pc,
            may_goto_left: st.may_goto_left,
            tail_calls: st.tail_calls,
            status: st.status,
        }
    }
}

const REG_MAX: u8 = 10 * 9 + 8; // tags 0..=98
const STORE: u8 = 100; // 100..=108
const RARE: u8 = 110;
const CTL: u8 = 111;
const CALLS: u8 = 112;
const SEQ1: u8 = 120;
const SEQ2: u8 = 121;
const SAME: u8 = 122;
const PC: u8 = 123;

fn is_footer(tag: u8) -> bool {
    (SEQ1..=PC).contains(&tag)
}

/// Minimal little-endian length of `x` (0 for 0).
fn nbytes(x: u64) -> usize {
    8 - (x.leading_zeros() / 8) as usize
}

/// One decoded item, newest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Item {
    Reg {
        reg: u8,
        xor: u64,
    },
    Store {
        region: u32,
        offset: u32,
        len: u8,
        xor: u64,
    },
    Rare(usize),
    Ctl(usize),
    Calls(u32),
}

/// How the pc before a step is found from the pc after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PcBefore {
    Minus(usize),
    At(usize),
}

impl PcBefore {
    pub fn resolve(self, pc_after: usize) -> usize {
        match self {
            PcBefore::Minus(n) => pc_after.wrapping_sub(n),
            PcBefore::At(p) => p,
        }
    }
}

/// The log of the steps from the session's base position to its current one.
#[derive(Default)]
pub(crate) struct UndoLog {
    bytes: Vec<u8>,
    rare: Vec<Effect>,
    ctls: Vec<Ctl>,
    steps: u64,
}

impl UndoLog {
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.rare.clear();
        self.ctls.clear();
        self.steps = 0;
    }

    /// Steps recorded.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Bytes held (the record stream plus the side tables, estimated).
    pub fn memory_bytes(&self) -> usize {
        self.bytes.len()
            + self.rare.len() * std::mem::size_of::<Effect>()
            + self
                .rare
                .iter()
                .map(|e| match e {
                    Effect::Write { old, .. } => old.len(),
                    Effect::RegionReplaced { old, .. }
                    | Effect::FramePushed { old_stack: old }
                    | Effect::FramePopped { stack: old, .. }
                    | Effect::FrameReplaced { old_stack: old, .. } => old.bytes().len() + 64,
                    _ => 0,
                })
                .sum::<usize>()
            + self.ctls.len() * std::mem::size_of::<Ctl>()
    }

    fn item(&mut self, payload: &[u8], tag: u8) {
        self.bytes.extend_from_slice(payload);
        self.bytes.push(tag);
    }

    fn reg(&mut self, reg: u8, xor: u64) {
        let n = nbytes(xor);
        self.item(&xor.to_le_bytes()[..n], (reg & 15).min(10) * 9 + n as u8);
    }

    /// Appends the record of a step that ran with `effects`, from `before`
    /// to the machine's current state, making `calls` environment calls.
    pub fn record(&mut self, effects: &EffectList, before: Ctl, st: &MachineState, calls: u32) {
        if effects.len() == 1 {
            if let Some(e) = effects.iter().next() {
                self.single(&e, st);
            }
        } else if effects.len() > 1 {
            // Register xors are relative to the value the next write of the
            // same register left: compute them newest first.
            let all: Vec<Cow<Effect>> = effects.iter().collect();
            let mut cur = st.regs;
            let mut xors = vec![0u64; all.len()];
            for (i, e) in all.iter().enumerate().rev() {
                if let Effect::Reg { reg, old } = &**e {
                    let r = (*reg & 15) as usize;
                    xors[i] = old ^ cur[r];
                    cur[r] = *old;
                }
            }
            for (i, e) in all.into_iter().enumerate() {
                match e {
                    Cow::Borrowed(Effect::Reg { reg, .. }) => self.reg(*reg, xors[i]),
                    Cow::Owned(Effect::Reg { reg, .. }) => self.reg(reg, xors[i]),
                    other => self.rare_item(other.into_owned()),
                }
            }
        }
        if calls > 0 {
            self.item(&calls.to_le_bytes(), CALLS);
        }
        let after = Ctl::of(st);
        if after.may_goto_left != before.may_goto_left
            || after.tail_calls != before.tail_calls
            || after.status != before.status
        {
            let i = self.ctls.len() as u32;
            self.ctls.push(before);
            self.item(&i.to_le_bytes(), CTL);
        }
        match after.pc.wrapping_sub(before.pc) {
            1 => self.bytes.push(SEQ1),
            2 => self.bytes.push(SEQ2),
            0 => self.bytes.push(SAME),
            _ => self.item(&(before.pc as u32).to_le_bytes(), PC),
        }
        self.steps += 1;
    }

    fn rare_item(&mut self, e: Effect) {
        let i = self.rare.len() as u32;
        self.rare.push(e);
        self.item(&i.to_le_bytes(), RARE);
    }

    fn single(&mut self, e: &Effect, st: &MachineState) {
        match e {
            Effect::Reg { reg, old } => {
                let xor = old ^ st.regs[(*reg & 15) as usize];
                self.reg(*reg, xor);
            }
            Effect::Store(w) => {
                let now = st
                    .mem
                    .region(w.region)
                    .and_then(|r| {
                        r.bytes()
                            .get(w.offset as usize..w.offset as usize + w.len as usize)
                    })
                    .map_or(0, le);
                let xor = now ^ w.old;
                let n = nbytes(xor);
                let mut payload = [0u8; 17];
                payload[..4].copy_from_slice(&w.region.to_le_bytes());
                payload[4..8].copy_from_slice(&w.offset.to_le_bytes());
                payload[8] = w.len;
                payload[9..9 + n].copy_from_slice(&xor.to_le_bytes()[..n]);
                self.item(&payload[..9 + n], STORE + n as u8);
            }
            other => self.rare_item(other.clone()),
        }
    }

    /// Reads the item ending at `end` (exclusive); returns it and where it starts.
    fn read_item(&self, end: usize) -> Option<(Item, usize)> {
        let tag = *self.bytes.get(end.checked_sub(1)?)?;
        let b = &self.bytes;
        let take = |len: usize| -> Option<&[u8]> { b.get(end - 1 - len..end - 1) };
        let u32_at = |s: &[u8]| u32::from_le_bytes([s[0], s[1], s[2], s[3]]);
        Some(match tag {
            0..=REG_MAX => {
                let n = (tag % 9) as usize;
                let p = take(n)?;
                (
                    Item::Reg {
                        reg: tag / 9,
                        xor: le(p),
                    },
                    end - 1 - n,
                )
            }
            STORE..=108 => {
                let n = (tag - STORE) as usize;
                let p = take(9 + n)?;
                (
                    Item::Store {
                        region: u32_at(&p[..4]),
                        offset: u32_at(&p[4..8]),
                        len: p[8],
                        xor: le(&p[9..]),
                    },
                    end - 10 - n,
                )
            }
            RARE | CTL | CALLS => {
                let p = take(4)?;
                let v = u32_at(p);
                let item = match tag {
                    RARE => Item::Rare(v as usize),
                    CTL => Item::Ctl(v as usize),
                    _ => Item::Calls(v),
                };
                (item, end - 5)
            }
            _ => return None,
        })
    }

    /// Decodes the newest record: its items (newest first), how to find
    /// the pc before it, and where it starts.
    pub fn last(&self) -> Option<(Vec<Item>, PcBefore, usize)> {
        if self.steps == 0 {
            return None;
        }
        let mut end = self.bytes.len();
        let footer = *self.bytes.get(end.checked_sub(1)?)?;
        let pc = match footer {
            SEQ1 => PcBefore::Minus(1),
            SEQ2 => PcBefore::Minus(2),
            SAME => PcBefore::Minus(0),
            PC => {
                let s = self.bytes.get(end - 5..end - 1)?;
                end -= 4;
                PcBefore::At(u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize)
            }
            _ => return None,
        };
        end -= 1;
        let mut items = Vec::new();
        while end > 0 && !is_footer(self.bytes[end - 1]) {
            let (item, start) = self.read_item(end)?;
            items.push(item);
            end = start;
        }
        Some((items, pc, end))
    }

    pub fn rare(&self, i: usize) -> Option<&Effect> {
        self.rare.get(i)
    }

    pub fn ctl(&self, i: usize) -> Option<&Ctl> {
        self.ctls.get(i)
    }

    /// Undoes the newest step on `st`; returns the number of environment
    /// calls it made, or None when the log is empty.
    pub fn pop(&mut self, st: &mut MachineState) -> Option<u32> {
        let (items, pc, start) = self.last()?;
        let mut calls = 0;
        let mut ctl = None;
        let pc_before = pc.resolve(st.pc);
        for item in items {
            match item {
                Item::Reg { reg, xor } => st.regs[(reg & 15) as usize] ^= xor,
                Item::Store {
                    region,
                    offset,
                    len,
                    xor,
                } => {
                    let o = offset as usize;
                    let now = st
                        .mem
                        .region(region)
                        .and_then(|r| r.bytes().get(o..o + len as usize))
                        .map_or(0, le);
                    let old = (now ^ xor).to_le_bytes();
                    st.mem
                        .restore(region, offset, &old[..(len as usize).min(8)]);
                }
                Item::Rare(i) => {
                    if let Some(e) = self.rare.get(i).cloned() {
                        undo_effect(st, &e);
                    }
                    self.rare.truncate(i);
                }
                Item::Ctl(i) => {
                    ctl = self.ctls.get(i).copied();
                    self.ctls.truncate(i);
                }
                Item::Calls(n) => calls = n,
            }
        }
        self.bytes.truncate(start);
        self.steps -= 1;
        match ctl {
            Some(c) => {
                st.pc = c.pc;
                st.may_goto_left = c.may_goto_left;
                st.tail_calls = c.tail_calls;
                st.status = c.status;
            }
            None => st.pc = pc_before,
        }
        st.steps = st.steps.saturating_sub(1);
        Some(calls)
    }
}

fn le(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    let n = b.len().min(8);
    a[..n].copy_from_slice(&b[..n]);
    u64::from_le_bytes(a)
}

/// Reverts one effect (the same rules as `Machine::undo`).
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
            let depth = st.frames.len().saturating_sub(1);
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
            let depth = st.frames.len().saturating_sub(1);
            if let Some(f) = st.frames.get_mut(depth) {
                *f = **old;
            }
            st.mem
                .put_region(ids::STACK0 + depth as u32, (**old_stack).clone());
        }
        Effect::Called(_) => {}
    }
}
