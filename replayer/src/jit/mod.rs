//! Which native bytes of the kernel's JIT image each BPF instruction of the
//! original program became.
//!
//! # What the mapping relies on
//!
//! A trace's [`JitInfo`] holds the JIT `image`, the kernel's translated
//! program (`xlated`: the original after the verifier's rewrites), the native
//! offset of xlated instructions (`insn_offsets`) and, since format 2, the
//! first xlated instruction of each original slot (`orig_to_xlated`). The
//! recorder learns the last two from the kernel itself (see
//! `recorder/src/record/jit_probe.rs`): it loads the program once more with
//! one BTF line-info record per instruction; the kernel keeps each record on
//! the first instruction of whatever the verifier put in place of its
//! instruction and reports the native address the JIT gave that instruction
//! (`jited_line_info`: the start of the instruction's code in the final JIT
//! pass). So, for an original instruction `i` and the next instruction `n`
//! the kernel kept:
//!
//! - xlated range = `orig_to_xlated[i] .. orig_to_xlated[n]` (exact);
//! - native range = `insn_offsets[orig_to_xlated[i]] .. insn_offsets[orig_to_xlated[n]]`
//!   (exact; the last kept instruction runs to the end of the image).
//!
//! The ranges are contiguous and cover the image by construction. Where the
//! attribution is a convention rather than a fact, [`Segment::notes`] says so:
//!
//! - the first instruction of each function also holds that function's
//!   prologue (stack frame set-up, tail-call counter), which the JIT emits
//!   before the first instruction;
//! - code the verifier *inserted* (a context-access rewrite, an inlined
//!   helper, a division-by-zero guard, a prologue of the program type) is
//!   attributed to the original instruction it was put in front of or in
//!   place of ([`Fate::Rewritten`]); inside such a sequence the split of the
//!   native code between the xlated instructions is not known;
//! - instructions the verifier removed (dead code) have no code
//!   ([`Fate::Removed`]).
//!
//! Traces of format 1, or recorded when the probe was impossible (no BTF in
//! the object), only know offsets per *source line* record; then the map is
//! built over xlated instructions grouped by equal native offset
//! ([`Precision::XlatedGroups`]), with no link to original instructions.
//!
//! This module is pure data (no disassembler): the native bytes are handed
//! to a disassembler by the caller (`bpfrr`'s `jit_view` uses capstone).

use std::ops::Range;

use bpfrr_trace::isa::opcode::{CLASS_LD, MODE_IMM, SIZE_DW};
use bpfrr_trace::trace::{JitInfo, NOT_XLATED, Program};

/// How precise a [`JitMap`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    /// Per original instruction, from the kernel's per-instruction table.
    Exact,
    /// Only the kernel's line-granular table: segments are runs of xlated
    /// instructions that share a native offset, not original instructions.
    XlatedGroups,
}

/// What the verifier did with an original instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Kept as one instruction of the same opcode (immediates such as map
    /// addresses or call targets may have been filled in).
    Kept,
    /// Replaced by other or more instructions (ctx access, inlined helper,
    /// inserted guard or prologue).
    Rewritten,
    /// Removed as dead code: no native code.
    Removed,
    /// [`Precision::XlatedGroups`]: unknown.
    Unknown,
}

/// One original instruction (or, without the exact table, one group of
/// xlated instructions) and the code it became.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Slot of the original instruction in `Program::insns` (None for
    /// [`Precision::XlatedGroups`]).
    pub orig: Option<usize>,
    /// The xlated instructions (slots of `JitInfo::xlated`).
    pub xlated: Range<usize>,
    /// The native bytes (offsets in `JitInfo::image`).
    pub native: Range<usize>,
    pub fate: Fate,
    /// Where the attribution is approximate, in words.
    pub notes: Vec<&'static str>,
}

/// The map of one program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JitMap {
    pub precision: Precision,
    /// In image order; contiguous, covering `0..image_len` (removed
    /// instructions have empty ranges).
    pub segments: Vec<Segment>,
    pub image_len: usize,
}

/// Why no map could be made; one sentence each.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JitError {
    #[error(
        "program {program:?} has no JIT image in this trace (the kernel did not give it: record as root, with the JIT enabled, net.core.bpf_jit_enable=1)"
    )]
    NoJit { program: String },
    #[error(
        "the JIT table of program {program:?} is inconsistent ({detail}); the trace is damaged"
    )]
    Inconsistent { program: String, detail: String },
}

const NOTE_PROLOGUE: &str = "includes the function's prologue";
const NOTE_INSERTED: &str = "the verifier's rewrite; native code not split per xlated instruction";
const NOTE_GROUPED: &str = "line-granular table: the kernel's offsets are per source line";

fn is_ld_imm64(opcode: u8) -> bool {
    opcode == CLASS_LD | MODE_IMM | SIZE_DW
}

/// Builds the map of `program` (see the module documentation).
pub fn map_program(program: &Program) -> Result<JitMap, JitError> {
    let jit = program.jit.as_ref().ok_or_else(|| JitError::NoJit {
        program: program.name.clone(),
    })?;
    let bad = |detail: String| JitError::Inconsistent {
        program: program.name.clone(),
        detail,
    };
    if jit.image.is_empty() {
        return Err(JitError::NoJit {
            program: program.name.clone(),
        });
    }
    if jit.insn_offsets.len() != jit.xlated.len() {
        return Err(bad(format!(
            "{} native offsets for {} xlated instructions",
            jit.insn_offsets.len(),
            jit.xlated.len()
        )));
    }
    if let Some(w) = jit.insn_offsets.windows(2).position(|w| w[0] > w[1]) {
        return Err(bad(format!(
            "native offsets decrease at xlated instruction {}",
            w + 1
        )));
    }
    if let Some(&last) = jit.insn_offsets.last()
        && last as usize > jit.image.len()
    {
        return Err(bad(format!(
            "native offset {last} beyond the {}-byte image",
            jit.image.len()
        )));
    }
    if jit.orig_to_xlated.is_empty() {
        Ok(grouped(jit))
    } else {
        exact(program, jit).map_err(bad)
    }
}

fn exact(program: &Program, jit: &JitInfo) -> Result<JitMap, String> {
    let n = program.insns.len();
    if jit.orig_to_xlated.len() != n {
        return Err(format!(
            "{} table entries for {n} original slots",
            jit.orig_to_xlated.len()
        ));
    }
    let func_starts: Vec<usize> = program.func_info.iter().map(|f| f.insn as usize).collect();
    // Instruction starts, and among them those the kernel kept.
    let mut starts = Vec::with_capacity(n);
    let mut i = 0;
    while i < n {
        starts.push(i);
        i += if is_ld_imm64(program.insns[i][0]) {
            2
        } else {
            1
        };
    }
    let kept: Vec<(usize, usize)> = starts
        .iter()
        .filter(|&&i| jit.orig_to_xlated[i] != NOT_XLATED)
        .map(|&i| (i, jit.orig_to_xlated[i] as usize))
        .collect();
    if let Some(&(i, x)) = kept.iter().find(|(_, x)| *x >= jit.xlated.len()) {
        return Err(format!(
            "instruction {i} maps past the xlated program (slot {x})"
        ));
    }
    if let Some(w) = kept.windows(2).find(|w| w[0].1 >= w[1].1) {
        return Err(format!(
            "instructions {} and {} map to xlated slots out of order",
            w[0].0, w[1].0
        ));
    }
    if kept.first().is_some_and(|&(_, x)| x != 0) {
        return Err("the first kept instruction is not at xlated slot 0".into());
    }
    let native_at = |x: usize| -> usize {
        jit.insn_offsets
            .get(x)
            .map_or(jit.image.len(), |&o| o as usize)
    };
    let mut segments = Vec::with_capacity(starts.len());
    let mut k = 0; // next entry of `kept`
    for &i in &starts {
        if k < kept.len() && kept[k].0 == i {
            let x = kept[k].1;
            let x_end = kept.get(k + 1).map_or(jit.xlated.len(), |e| e.1);
            let native = if k == 0 { 0 } else { native_at(x) }..if k + 1 == kept.len() {
                jit.image.len()
            } else {
                native_at(x_end)
            };
            let width = if is_ld_imm64(program.insns[i][0]) {
                2
            } else {
                1
            };
            let same = x_end - x == width && jit.xlated[x][0] == program.insns[i][0];
            let mut notes = Vec::new();
            if func_starts.contains(&i) || k == 0 {
                notes.push(NOTE_PROLOGUE);
            }
            if !same {
                notes.push(NOTE_INSERTED);
            }
            segments.push(Segment {
                orig: Some(i),
                xlated: x..x_end,
                native,
                fate: if same { Fate::Kept } else { Fate::Rewritten },
                notes,
            });
            k += 1;
        } else {
            // Removed: empty ranges at the position of the next kept code.
            let x = kept.get(k).map_or(jit.xlated.len(), |e| e.1);
            let at = if k < kept.len() {
                native_at(x)
            } else {
                jit.image.len()
            };
            segments.push(Segment {
                orig: Some(i),
                xlated: x..x,
                native: at..at,
                fate: Fate::Removed,
                notes: Vec::new(),
            });
        }
    }
    Ok(JitMap {
        precision: Precision::Exact,
        segments,
        image_len: jit.image.len(),
    })
}

/// Without the per-instruction table: runs of xlated instructions with the
/// same native offset.
fn grouped(jit: &JitInfo) -> JitMap {
    let mut segments: Vec<Segment> = Vec::new();
    for (x, &off) in jit.insn_offsets.iter().enumerate() {
        let off = off as usize;
        match segments.last_mut() {
            Some(s) if s.native.start == off => s.xlated.end = x + 1,
            _ => {
                if let Some(s) = segments.last_mut() {
                    s.native.end = off;
                }
                segments.push(Segment {
                    orig: None,
                    xlated: x..x + 1,
                    native: if segments.is_empty() { 0 } else { off }..off,
                    fate: Fate::Unknown,
                    notes: vec![NOTE_GROUPED],
                });
            }
        }
    }
    if let Some(s) = segments.last_mut() {
        s.native.end = jit.image.len();
    }
    JitMap {
        precision: Precision::XlatedGroups,
        segments,
        image_len: jit.image.len(),
    }
}

impl JitMap {
    /// The segment of original instruction `orig` (exact maps only; also
    /// the second slot of an `ld_imm64` finds its instruction).
    pub fn for_insn(&self, orig: usize) -> Option<&Segment> {
        if self.precision != Precision::Exact {
            return None;
        }
        let k = self
            .segments
            .partition_point(|s| s.orig.is_some_and(|o| o <= orig));
        self.segments[..k].last()
    }

    /// The segment whose native range holds image offset `offset` (for
    /// going from a native address back to BPF).
    pub fn for_native(&self, offset: usize) -> Option<&Segment> {
        self.segments.iter().find(|s| s.native.contains(&offset))
    }
}

/// The x86-64 JIT's register assignment (arch/x86/net/bpf_jit_comp.c), for
/// a legend: BPF register → native register.
pub const X86_64_REGS: [(&str, &str); 11] = [
    ("r0", "rax"),
    ("r1", "rdi"),
    ("r2", "rsi"),
    ("r3", "rdx"),
    ("r4", "rcx"),
    ("r5", "r8"),
    ("r6", "rbx"),
    ("r7", "r13"),
    ("r8", "r14"),
    ("r9", "r15"),
    ("r10", "rbp"),
];

/// The arm64 JIT's register assignment (arch/arm64/net/bpf_jit_comp.c).
pub const ARM64_REGS: [(&str, &str); 11] = [
    ("r0", "x7"),
    ("r1", "x0"),
    ("r2", "x1"),
    ("r3", "x2"),
    ("r4", "x3"),
    ("r5", "x4"),
    ("r6", "x19"),
    ("r7", "x20"),
    ("r8", "x21"),
    ("r9", "x22"),
    ("r10", "x25"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use bpfrr_trace::trace::FuncInfo;

    const EXIT: [u8; 8] = [0x95, 0, 0, 0, 0, 0, 0, 0];
    const MOV: [u8; 8] = [0xb7, 0, 0, 0, 1, 0, 0, 0];
    const LDX: [u8; 8] = [0x61, 0x21, 0, 0, 0, 0, 0, 0];
    const LD64: [u8; 8] = [0x18, 1, 0, 0, 1, 0, 0, 0];

    fn program(insns: Vec<[u8; 8]>, jit: JitInfo) -> Program {
        Program {
            name: "p".into(),
            insns,
            func_info: vec![FuncInfo {
                insn: 0,
                ..FuncInfo::default()
            }],
            jit: Some(jit),
            ..Program::default()
        }
    }

    #[test]
    fn exact_ranges_follow_the_table_and_cover_the_image() {
        // mov; ldx (rewritten into 2); ld_imm64; mov (removed); exit
        let insns = vec![MOV, LDX, LD64, [0; 8], MOV, EXIT];
        let jit = JitInfo {
            arch: "x86_64".into(),
            image: vec![0x90; 40],
            xlated: vec![MOV, LDX, LDX, LD64, [0; 8], EXIT],
            insn_offsets: vec![0, 12, 12, 20, 20, 30],
            orig_to_xlated: vec![0, 1, 3, NOT_XLATED, NOT_XLATED, 5],
        };
        let map = map_program(&program(insns, jit)).unwrap();
        assert_eq!(map.precision, Precision::Exact);
        let s: Vec<_> = map
            .segments
            .iter()
            .map(|s| (s.orig.unwrap(), s.xlated.clone(), s.native.clone(), s.fate))
            .collect();
        assert_eq!(
            s,
            vec![
                (0, 0..1, 0..12, Fate::Kept),
                (1, 1..3, 12..20, Fate::Rewritten),
                (2, 3..5, 20..30, Fate::Kept),
                (4, 5..5, 30..30, Fate::Removed),
                (5, 5..6, 30..40, Fate::Kept),
            ]
        );
        assert!(map.segments[0].notes.contains(&NOTE_PROLOGUE));
        assert_eq!(map.for_insn(3).unwrap().orig, Some(2));
        assert_eq!(map.for_native(35).unwrap().orig, Some(5));
    }

    #[test]
    fn without_the_table_xlated_runs_are_grouped() {
        let jit = JitInfo {
            arch: "x86_64".into(),
            image: vec![0x90; 10],
            xlated: vec![MOV, MOV, EXIT],
            insn_offsets: vec![0, 0, 6],
            orig_to_xlated: vec![],
        };
        let map = map_program(&program(vec![MOV, MOV, EXIT], jit)).unwrap();
        assert_eq!(map.precision, Precision::XlatedGroups);
        let s: Vec<_> = map
            .segments
            .iter()
            .map(|s| (s.xlated.clone(), s.native.clone()))
            .collect();
        assert_eq!(s, vec![(0..2, 0..6), (2..3, 6..10)]);
        assert!(map.for_insn(0).is_none());
    }

    #[test]
    fn missing_and_damaged_tables_are_one_sentence_errors() {
        let mut p = program(vec![EXIT], JitInfo::default());
        p.jit = None;
        let e = map_program(&p).unwrap_err().to_string();
        assert!(e.starts_with("program \"p\" has no JIT image"), "{e}");
        let bad = JitInfo {
            arch: "x86_64".into(),
            image: vec![0xc3],
            xlated: vec![EXIT, EXIT],
            insn_offsets: vec![0, 5],
            orig_to_xlated: vec![0],
        };
        let e = map_program(&program(vec![EXIT], bad))
            .unwrap_err()
            .to_string();
        assert!(e.contains("beyond the 1-byte image"), "{e}");
        let out_of_order = JitInfo {
            arch: "x86_64".into(),
            image: vec![0xc3; 4],
            xlated: vec![MOV, EXIT],
            insn_offsets: vec![0, 2],
            orig_to_xlated: vec![1, 0],
        };
        let e = map_program(&program(vec![MOV, EXIT], out_of_order))
            .unwrap_err()
            .to_string();
        assert!(e.contains("out of order") || e.contains("slot 0"), "{e}");
        assert!(!e.contains('\n'));
    }
}
