//! One frame's abstract state as printed on a line of the log:
//! ` frame1: R0=0 R1=ctx() R10=fp0 fp-8=????mmmm fp-16=mmmmmmscalar(id=3) refs=4 cb`.

use serde::Serialize;

use super::reg::{RegState, parse_number, split_top_level};

/// The kind of one stack byte (the kernel's `enum bpf_stack_slot_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SlotByte {
    /// `?`: never written.
    Invalid,
    /// `r`: part of a spilled register.
    Spill,
    /// `m`: written with something the verifier does not track.
    Misc,
    /// `0`: known to be zero.
    Zero,
    /// `d`: part of a dynptr.
    Dynptr,
    /// `i`: part of an iterator.
    Iter,
    /// `f`: an IRQ flag slot.
    IrqFlag,
}

impl SlotByte {
    fn from_char(c: char) -> Option<SlotByte> {
        Some(match c {
            '?' => SlotByte::Invalid,
            'r' => SlotByte::Spill,
            'm' => SlotByte::Misc,
            '0' => SlotByte::Zero,
            'd' => SlotByte::Dynptr,
            'i' => SlotByte::Iter,
            'f' => SlotByte::IrqFlag,
            _ => return None,
        })
    }

    pub fn as_char(self) -> char {
        match self {
            SlotByte::Invalid => '?',
            SlotByte::Spill => 'r',
            SlotByte::Misc => 'm',
            SlotByte::Zero => '0',
            SlotByte::Dynptr => 'd',
            SlotByte::Iter => 'i',
            SlotByte::IrqFlag => 'f',
        }
    }
}

/// What an 8-byte stack slot holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SlotContents {
    /// Byte kinds, in the kernel's order: index 0 is the slot's HIGHEST
    /// address byte (`fp-1` for slot `fp-8`), index 7 its lowest.
    Bytes { bytes: Vec<SlotByte> },
    /// A spilled register; `above` are the kinds of the bytes above a
    /// narrower-than-8-byte spill (same order as `Bytes`).
    Spill {
        above: Vec<SlotByte>,
        reg: Box<RegState>,
    },
    /// A dynptr (`dynptr_ringbuf(ref_id=3)`), as printed.
    Dynptr { text: String },
    /// An open-coded iterator (`iter_num(ref_id=1,state=active,depth=0)`), as printed.
    Iter { text: String },
}

/// One stack slot: `offset` is the slot's lowest byte relative to the
/// frame pointer (-8, -16, ...).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StackSlot {
    pub offset: i32,
    pub contents: SlotContents,
}

impl StackSlot {
    /// The kind of the byte at `fp + offset` (within this slot).
    pub fn byte_at(&self, offset: i32) -> Option<SlotByte> {
        if !(self.offset..self.offset.saturating_add(8)).contains(&offset) {
            return None;
        }
        let i = (self.offset + 7 - offset) as usize;
        match &self.contents {
            SlotContents::Bytes { bytes } => bytes.get(i).copied(),
            SlotContents::Spill { above, .. } => {
                Some(above.get(i).copied().unwrap_or(SlotByte::Spill))
            }
            SlotContents::Dynptr { .. } => Some(SlotByte::Dynptr),
            SlotContents::Iter { .. } => Some(SlotByte::Iter),
        }
    }

    /// `????mmmm`, `spill pkt(off=14,r=14)`, `mmmm + spill 1`.
    pub fn compact(&self) -> String {
        match &self.contents {
            SlotContents::Bytes { bytes } => bytes.iter().map(|b| b.as_char()).collect(),
            SlotContents::Spill { above, reg } if above.is_empty() => reg.compact(),
            SlotContents::Spill { above, reg } => {
                let a: String = above.iter().map(|b| b.as_char()).collect();
                format!("{a}|{}", reg.compact())
            }
            SlotContents::Dynptr { text } | SlotContents::Iter { text } => text.clone(),
        }
    }
}

/// One frame's registers, stack slots and references.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FrameState {
    /// The frame number (0 = the program's entry function).
    pub frame: u32,
    /// Registers that are not `NOT_INIT`, by number, ascending.
    pub regs: Vec<(u8, RegState)>,
    /// Slots with something written, by offset, highest (fp-8) first.
    pub stack: Vec<StackSlot>,
    /// `refs=`: acquired references not yet released.
    pub refs: Vec<u32>,
    /// `cb`: verifying a callback (bpf_loop, for_each_map_elem...).
    pub in_callback: bool,
    pub in_async_callback: bool,
}

impl FrameState {
    pub fn reg(&self, n: u8) -> Option<&RegState> {
        self.regs.iter().find(|(r, _)| *r == n).map(|(_, s)| s)
    }

    pub fn slot(&self, offset: i32) -> Option<&StackSlot> {
        self.stack.iter().find(|s| s.offset == offset)
    }

    /// Parses a state as printed after `N:`, `; ` or `from X to Y:`.
    /// Returns the state and whether it named its frame (` frameN:`).
    /// Tokens it does not understand are skipped.
    pub fn parse(text: &str) -> (FrameState, bool) {
        let mut st = FrameState::default();
        let mut named_frame = false;
        for tok in split_top_level(text.trim(), ' ') {
            let tok = tok.trim();
            if tok.is_empty() {
                continue;
            }
            if let Some(n) = tok.strip_prefix("frame").and_then(|t| t.strip_suffix(':'))
                && let Ok(n) = n.parse()
            {
                st.frame = n;
                named_frame = true;
                continue;
            }
            match tok {
                "cb" => st.in_callback = true,
                "async_cb" => st.in_async_callback = true,
                _ => {}
            }
            let Some((name, value)) = tok.split_once('=') else {
                continue;
            };
            // Liveness marks of kernels before 6.12: `R1_w`, `fp-8_rw`, `R6_D`.
            let name = name.split('_').next().unwrap_or(name);
            if let Some(n) = name.strip_prefix('R')
                && let Ok(n) = n.parse::<u8>()
            {
                if n <= 10
                    && let Some(r) = RegState::parse(value)
                {
                    st.set_reg(n, r);
                }
            } else if let Some(off) = name.strip_prefix("fp")
                && let Some(off) = parse_number(off)
            {
                if let Some(contents) = parse_slot(value) {
                    st.set_slot(StackSlot {
                        offset: off as i64 as i32,
                        contents,
                    });
                }
            } else if name == "refs" {
                st.refs = value.split(',').filter_map(|r| r.parse().ok()).collect();
            }
        }
        (st, named_frame)
    }

    pub fn set_reg(&mut self, n: u8, r: RegState) {
        match self.regs.binary_search_by_key(&n, |(k, _)| *k) {
            Ok(i) => self.regs[i].1 = r,
            Err(i) => self.regs.insert(i, (n, r)),
        }
    }

    pub fn clear_reg(&mut self, n: u8) {
        self.regs.retain(|(k, _)| *k != n);
    }

    pub fn set_slot(&mut self, slot: StackSlot) {
        match self.stack.binary_search_by(|s| slot.offset.cmp(&s.offset)) {
            Ok(i) => self.stack[i] = slot,
            Err(i) => self.stack.insert(i, slot),
        }
    }

    /// Applies what a later line printed (only the registers and slots it
    /// names change; references and flags are printed whole each time).
    pub fn apply(&mut self, delta: &FrameState) {
        for (n, r) in &delta.regs {
            self.set_reg(*n, r.clone());
        }
        for s in &delta.stack {
            self.set_slot(s.clone());
        }
        self.refs = delta.refs.clone();
        self.in_callback = delta.in_callback;
        self.in_async_callback = delta.in_async_callback;
    }

    /// `r1: ctx  r2: pkt(off=0,r=14)  fp-8: ????mmmm`.
    pub fn compact(&self) -> String {
        let mut parts: Vec<String> = self
            .regs
            .iter()
            .map(|(n, r)| format!("r{n}: {}", r.compact()))
            .collect();
        parts.extend(
            self.stack
                .iter()
                .map(|s| format!("fp{}: {}", s.offset, s.compact())),
        );
        if !self.refs.is_empty() {
            let refs: Vec<String> = self.refs.iter().map(u32::to_string).collect();
            parts.push(format!("refs: {}", refs.join(",")));
        }
        parts.join("  ")
    }
}

const SLOT_CHARS: &str = "?rm0dif";

/// `????mmmm`, `mmmmmmscalar(id=3)`, `ctx()`, `mmmmP0`, `dynptr_local(...)`.
fn parse_slot(value: &str) -> Option<SlotContents> {
    if value.len() == 8 && value.chars().all(|c| SLOT_CHARS.contains(c)) {
        return Some(SlotContents::Bytes {
            bytes: value.chars().filter_map(SlotByte::from_char).collect(),
        });
    }
    if value.starts_with("dynptr_") {
        return Some(SlotContents::Dynptr {
            text: value.to_string(),
        });
    }
    if value.starts_with("iter_") {
        return Some(SlotContents::Iter {
            text: value.to_string(),
        });
    }
    // The non-spilled bytes above a narrow spill come first, then the
    // register: take the longest such prefix that leaves a register.
    let lead = value
        .chars()
        .take_while(|c| "?m0".contains(*c))
        .count()
        .min(7);
    for k in (0..=lead).rev() {
        let (above, reg) = value.split_at(k);
        if reg.is_empty() {
            continue;
        }
        if let Some(reg) = RegState::parse(reg) {
            return Some(SlotContents::Spill {
                above: above.chars().filter_map(SlotByte::from_char).collect(),
                reg: Box::new(reg),
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verifier::reg::RegKind;

    #[test]
    fn full_state_line() {
        let (st, named) = FrameState::parse(
            " frame1: R0=1 R1=scalar(smin=smin32=0,smax=umax=smax32=umax32=127,var_off=(0x0; 0x7f)) R2=fp[0]-16 R3=0 R10=fp0 fp-8=mmmm0 fp-16=ringbuf_mem(ref_obj_id=4,off=32,sz=160) refs=4,5 cb",
        );
        assert!(named);
        assert_eq!(st.frame, 1);
        assert_eq!(st.regs.len(), 5);
        assert_eq!(st.reg(1).unwrap().bounds.umax, 127);
        assert_eq!(st.reg(2).unwrap().frameno, Some(0));
        assert_eq!(st.refs, vec![4, 5]);
        assert!(st.in_callback);
        let s8 = st.slot(-8).unwrap();
        match &s8.contents {
            SlotContents::Spill { above, reg } => {
                assert_eq!(above.len(), 4);
                assert_eq!(reg.bounds.as_const(), Some(0));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(s8.byte_at(-1), Some(SlotByte::Misc));
        assert_eq!(s8.byte_at(-8), Some(SlotByte::Spill));
        match &st.slot(-16).unwrap().contents {
            SlotContents::Spill { above, reg } => {
                assert!(above.is_empty());
                assert_eq!(reg.kind, RegKind::Mem);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(st.stack[0].offset, -8);
    }

    #[test]
    fn slots() {
        let (st, named) = FrameState::parse("R10=fp0 fp-8=????mmmm fp-16=0000mmmm fp-24_w=mmmm1");
        assert!(!named);
        assert_eq!(
            st.slot(-8).unwrap().contents,
            SlotContents::Bytes {
                bytes: "????mmmm".chars().filter_map(SlotByte::from_char).collect()
            }
        );
        assert_eq!(st.slot(-8).unwrap().byte_at(-8), Some(SlotByte::Misc));
        assert_eq!(st.slot(-8).unwrap().byte_at(-1), Some(SlotByte::Invalid));
        assert!(matches!(
            st.slot(-24).unwrap().contents,
            SlotContents::Spill { .. }
        ));
        assert_eq!(st.slot(-24).unwrap().compact(), "mmmm|1");
    }

    #[test]
    fn delta_application() {
        let (mut st, _) = FrameState::parse("R1=ctx() R10=fp0");
        let (d, _) = FrameState::parse("R1=0 R2=pkt_end()");
        st.apply(&d);
        assert_eq!(st.regs.len(), 3);
        assert_eq!(st.compact(), "r1: 0  r2: pkt_end  r10: fp0");
    }
}
