//! The directory (written last: what is in the file and where) and the
//! invocation blocks, plus the consistency rules both must follow.
//!
//! Structural validity (every pointer in bounds, every enum tag known) is
//! rkyv's bytecheck; this module adds the rules bytecheck cannot know: ids
//! equal positions, references point at existing programs, maps and
//! instructions, blocks lie in order inside the file. Writer and reader use
//! the same rules, so the writer never produces a file the reader rejects.

use rkyv::{Archive, Deserialize, Serialize};

use super::model::{ArchivedInvocation, EventKind, Invocation, LostCount, Map, Program, TraceMeta};

/// Everything about a trace except the invocations, plus where they are.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
#[rkyv(derive(Debug))]
pub struct TraceDirectory {
    pub meta: TraceMeta,
    pub programs: Vec<Program>,
    pub maps: Vec<Map>,
    /// Records lost per CPU (only CPUs that lost any).
    pub lost: Vec<LostCount>,
    /// The invocation blocks, in order.
    pub blocks: Vec<BlockRef>,
    /// Counts gathered while writing, so `bpfrr info` needs no block.
    pub stats: TraceStats,
}

/// Where one block of invocations is and what it holds.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[rkyv(derive(Debug))]
pub struct BlockRef {
    /// From the start of the file; a multiple of 16.
    pub offset: u64,
    pub len: u64,
    /// xxh3-64 of the block's bytes.
    pub checksum: u64,
    /// Position (in the whole trace) of the block's first invocation.
    pub first_index: u64,
    /// Number of invocations in the block (at least one).
    pub count: u64,
}

/// The archived content of one block.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
#[rkyv(derive(Debug))]
pub struct InvocationBlock {
    pub invocations: Vec<Invocation>,
}

/// Counts over all invocations, kept by the writer.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
#[rkyv(derive(Debug))]
pub struct TraceStats {
    /// One per program, in program order.
    pub programs: Vec<ProgramStats>,
}

/// Invocation counts of one program.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
#[rkyv(derive(Debug))]
pub struct ProgramStats {
    pub invocations: u64,
    /// Invocations whose record is incomplete.
    pub partial: u64,
    /// Return values and how often each occurred, by value; at most
    /// `MAX_DISTINCT_RETVALS` distinct values are kept.
    pub retvals: Vec<RetvalCount>,
    /// Invocations whose return value did not fit in `retvals`.
    pub other_retvals: u64,
}

/// How many invocations returned `value`.
#[derive(
    Archive,
    Serialize,
    Deserialize,
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
#[rkyv(derive(Debug))]
pub struct RetvalCount {
    pub value: u64,
    pub count: u64,
}

/// Distinct return values counted per program before the rest go to "other".
pub const MAX_DISTINCT_RETVALS: usize = 256;

impl TraceDirectory {
    /// The archived bytes of this directory.
    pub fn to_archive_bytes(&self) -> Result<Vec<u8>, String> {
        rkyv::to_bytes::<rkyv::rancor::Error>(self)
            .map(|b| b.to_vec())
            .map_err(super::error::one_line)
    }

    /// Validates (bytecheck) and deserializes directory bytes. `bytes` must
    /// start at a 16-aligned address (an `rkyv::util::AlignedVec` or a mapped file).
    pub fn from_archive_bytes(bytes: &[u8]) -> Result<TraceDirectory, String> {
        let archived = rkyv::access::<ArchivedTraceDirectory, rkyv::rancor::Error>(bytes)
            .map_err(super::error::one_line)?;
        rkyv::deserialize::<TraceDirectory, rkyv::rancor::Error>(archived)
            .map_err(super::error::one_line)
    }

    /// Total number of invocations, from the block list.
    pub fn invocation_count(&self) -> u64 {
        self.blocks.iter().map(|b| b.count).sum()
    }

    /// Checks the rules of the programs and maps (used by the writer before
    /// anything is written, and by the reader).
    pub fn check_definitions(programs: &[Program], maps: &[Map]) -> Result<(), String> {
        for (i, p) in programs.iter().enumerate() {
            if p.id as usize != i {
                return Err(format!(
                    "program \"{}\" at position {i} has id {}, ids must equal positions",
                    p.name, p.id
                ));
            }
            let n_insns = p.insns.len();
            let bad_insn = p
                .func_info
                .iter()
                .map(|f| f.insn)
                .chain(p.line_info.iter().map(|l| l.insn))
                .find(|&insn| insn as usize >= n_insns);
            if let Some(insn) = bad_insn {
                return Err(format!(
                    "program {i} has func or line info for instruction {insn}, but only {n_insns} instructions"
                ));
            }
            if let Some(m) = p.used_maps.iter().find(|&&m| m as usize >= maps.len()) {
                return Err(format!(
                    "program {i} uses map {m}, but the trace has {} maps",
                    maps.len()
                ));
            }
            for t in &p.tail_call_targets {
                if t.map as usize >= maps.len() || t.program as usize >= programs.len() {
                    return Err(format!(
                        "program {i} has a tail-call target (map {}, program {}) that does not exist",
                        t.map, t.program
                    ));
                }
            }
        }
        for (i, m) in maps.iter().enumerate() {
            if m.id as usize != i {
                return Err(format!(
                    "map \"{}\" at position {i} has id {}, ids must equal positions",
                    m.name, m.id
                ));
            }
        }
        Ok(())
    }

    /// Checks everything the reader relies on: definitions, block positions
    /// (in order, aligned, before the directory), counts, stats.
    pub fn check(&self, header_version: u32, directory_offset: u64) -> Result<(), String> {
        if self.meta.format_version != header_version {
            return Err(format!(
                "the directory says format version {}, the header {header_version}",
                self.meta.format_version
            ));
        }
        Self::check_definitions(&self.programs, &self.maps)?;
        let mut next_offset = super::header::HEADER_LEN as u64;
        let mut next_index = 0u64;
        for (k, b) in self.blocks.iter().enumerate() {
            let end = b.offset.checked_add(b.len);
            let placed = b.offset >= next_offset
                && b.offset.is_multiple_of(super::header::ARCHIVE_ALIGN)
                && b.len > 0
                && end.is_some_and(|e| e <= directory_offset);
            if !placed {
                return Err(format!(
                    "block {k} (offset {}, length {}) lies outside the space for blocks",
                    b.offset, b.len
                ));
            }
            if b.first_index != next_index || b.count == 0 {
                return Err(format!(
                    "block {k} starts at invocation {} with {} invocations, expected to start at {next_index} with at least one",
                    b.first_index, b.count
                ));
            }
            next_offset = end.unwrap_or(u64::MAX);
            next_index = next_index
                .checked_add(b.count)
                .ok_or("the invocation count overflows")?;
        }
        if self.stats.programs.len() != self.programs.len() {
            return Err(format!(
                "the statistics cover {} programs, the trace has {}",
                self.stats.programs.len(),
                self.programs.len()
            ));
        }
        let counted = self
            .stats
            .programs
            .iter()
            .try_fold(0u64, |acc, s| acc.checked_add(s.invocations));
        if counted != Some(next_index) {
            return Err(format!(
                "the statistics count {} invocations, the blocks hold {next_index}",
                counted.map_or("too many".to_string(), |c| c.to_string())
            ));
        }
        Ok(())
    }
}

/// One instruction an invocation refers to, in recording order. A tail call
/// moves the events that follow it into the program it reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InsnRef {
    /// A helper/kfunc call at `insn` of the program running at that point.
    Event { insn: u32 },
    /// A tail call at `insn`; `to` is the program that ran next (`u32::MAX`: none).
    TailCall { insn: u32, to: u32 },
    /// A load through a BTF pointer; it may belong to any program the run reached.
    BtfLoad { insn: u32 },
}

/// Checks that an invocation's references exist: its program, the targets of
/// its tail calls, and each event's or BTF load's instruction index inside the
/// program that was running when it happened.
pub fn check_invocation(
    programs: &[Program],
    program: u32,
    refs: impl IntoIterator<Item = InsnRef>,
) -> Result<(), String> {
    let len_of = |id: u32| programs.get(id as usize).map(|p| p.insns.len());
    let Some(mut current_len) = len_of(program) else {
        return Err(format!(
            "an invocation names program {program}, but the trace has {} programs",
            programs.len()
        ));
    };
    let mut current = program;
    let mut longest_reached = current_len;
    let out_of_range = |prog: u32, insn: u32, len: usize| {
        format!(
            "an invocation records a call or load at instruction {insn} of program {prog}, but that program has {len} instructions"
        )
    };
    for r in refs {
        match r {
            InsnRef::Event { insn } | InsnRef::TailCall { insn, .. }
                if insn as usize >= current_len =>
            {
                return Err(out_of_range(current, insn, current_len));
            }
            InsnRef::TailCall { to, .. } if to != u32::MAX => {
                let Some(len) = len_of(to) else {
                    return Err(format!(
                        "an invocation tail-calls program {to}, but the trace has {} programs",
                        programs.len()
                    ));
                };
                current = to;
                current_len = len;
                longest_reached = longest_reached.max(len);
            }
            InsnRef::BtfLoad { insn } if insn as usize >= longest_reached => {
                return Err(out_of_range(current, insn, longest_reached));
            }
            _ => {}
        }
    }
    Ok(())
}

fn insn_ref(kind: EventKind, insn: u32, id: u32) -> InsnRef {
    match kind {
        EventKind::TailCall => InsnRef::TailCall { insn, to: id },
        EventKind::Helper | EventKind::Kfunc => InsnRef::Event { insn },
    }
}

impl Invocation {
    /// The instructions this invocation refers to, in recording order.
    pub(crate) fn referenced_insns(&self) -> impl Iterator<Item = InsnRef> + '_ {
        self.events
            .iter()
            .map(|e| insn_ref(e.kind, e.insn, e.id))
            .chain(
                self.btf_loads
                    .iter()
                    .map(|l| InsnRef::BtfLoad { insn: l.insn }),
            )
    }
}

impl ArchivedInvocation {
    /// The instructions this invocation refers to, in recording order.
    pub(crate) fn referenced_insns(&self) -> impl Iterator<Item = InsnRef> + '_ {
        self.events
            .iter()
            .map(|e| insn_ref(e.kind.to_native(), e.insn.to_native(), e.id.to_native()))
            .chain(self.btf_loads.iter().map(|l| InsnRef::BtfLoad {
                insn: l.insn.to_native(),
            }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn program(len: usize) -> Program {
        Program {
            insns: vec![[0u8; 8]; len],
            ..Default::default()
        }
    }

    #[test]
    fn events_after_a_tail_call_are_checked_against_the_target_program() {
        // Program 0 has 4 instructions, program 1 (the tail-call target) 100.
        let programs = [program(4), program(100)];
        let ok = [
            InsnRef::Event { insn: 2 },
            InsnRef::TailCall { insn: 3, to: 1 },
            InsnRef::Event { insn: 50 },
            InsnRef::BtfLoad { insn: 90 },
        ];
        assert_eq!(check_invocation(&programs, 0, ok), Ok(()));

        let before_tail_call = [InsnRef::Event { insn: 50 }];
        let err = check_invocation(&programs, 0, before_tail_call).unwrap_err();
        assert!(err.contains("instruction 50 of program 0"), "{err}");

        let empty_slot = [
            InsnRef::TailCall {
                insn: 3,
                to: u32::MAX,
            },
            InsnRef::Event { insn: 50 },
        ];
        assert!(check_invocation(&programs, 0, empty_slot).is_err());

        let bad_target = [InsnRef::TailCall { insn: 3, to: 7 }];
        let err = check_invocation(&programs, 0, bad_target).unwrap_err();
        assert!(err.contains("tail-calls program 7"), "{err}");
    }
}
