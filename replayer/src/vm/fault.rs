//! What can go wrong while a program runs: one `Fault` value per failure,
//! naming the instruction (and source line when known) and, for memory, the
//! region, offset and size. The machine never panics on bad programs.

use std::fmt;

use super::memory::RegionKind;

/// A source position from the program's line info.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceLine {
    pub file: String,
    pub line: u32,
    pub column: u32,
    /// The text of the line, when the line info carries it.
    pub text: String,
}

/// Why the machine stopped with an error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// The address belongs to no region (a null or wild pointer).
    NoRegion { addr: u64, size: usize, write: bool },
    /// The address names a region, but the access does not fit inside it.
    OutOfBounds {
        region: RegionKind,
        offset: i64,
        size: usize,
        /// Valid offsets of the region are `start..end`.
        start: u32,
        end: u32,
        write: bool,
    },
    /// A write to a read-only region (`.rodata`, a socket filter's packet, ...).
    ReadOnly {
        region: RegionKind,
        offset: i64,
        size: usize,
    },
    /// The region existed but was freed (a deleted map value, a submitted ring-buffer record).
    Freed {
        region: RegionKind,
        offset: i64,
        size: usize,
    },
    /// A context access the program type does not allow (no such field,
    /// wrong size, misaligned, or a write to a read-only field).
    BadContextAccess {
        offset: i64,
        size: usize,
        write: bool,
        why: &'static str,
    },
    /// `callx` or a callback to something that is not a function of this program.
    BadCallTarget { target: u64 },
    /// More than 8 nested frames (bpf-to-bpf calls and callbacks).
    CallDepth { frames: usize },
    /// The frames together need more than the kernel's 512 bytes of stack.
    StackLimit { needed: u32, limit: u32 },
    /// The step budget of this run is used up (an endless loop?).
    StepBudget { steps: u64 },
    /// The environment does not know this helper.
    UnknownHelper { id: i32 },
    /// The environment does not know this kfunc.
    UnknownKfunc { btf_id: i32, module: i16 },
    /// A helper or kfunc failed in a way the kernel would not allow (the message says how).
    Helper { id: i32, message: String },
    /// A map reference in `ld_imm64` that the environment cannot resolve.
    UnresolvedImm64 { kind: &'static str, imm: u64 },
    /// A tail call to a program index the machine does not hold.
    BadTailCall { prog: usize },
    /// The machine was asked to step after the program finished, or before it started.
    NotRunning,
}

/// A failure at one instruction of one program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    pub kind: FaultKind,
    /// Index of the program (0 unless tail calls are used).
    pub prog: usize,
    /// Slot index of the faulting instruction.
    pub pc: usize,
    pub line: Option<Box<SourceLine>>,
}

impl Fault {
    pub fn new(kind: FaultKind, prog: usize, pc: usize) -> Fault {
        Fault {
            kind,
            prog,
            pc,
            line: None,
        }
    }
}

fn rw(write: bool) -> &'static str {
    if write { "write" } else { "read" }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaultKind::NoRegion { addr, size, write } => write!(
                f,
                "{}-byte {} at {addr:#x}, which is not inside any memory region (null or wild pointer)",
                size,
                rw(*write)
            ),
            FaultKind::OutOfBounds {
                region,
                offset,
                size,
                start,
                end,
                write,
            } => write!(
                f,
                "{}-byte {} at offset {offset} of {region} is out of bounds (valid offsets {start}..{end})",
                size,
                rw(*write)
            ),
            FaultKind::ReadOnly {
                region,
                offset,
                size,
            } => write!(
                f,
                "{size}-byte write at offset {offset} of read-only {region}"
            ),
            FaultKind::Freed {
                region,
                offset,
                size,
            } => write!(
                f,
                "{size}-byte access at offset {offset} of {region}, which was already freed"
            ),
            FaultKind::BadContextAccess {
                offset,
                size,
                write,
                why,
            } => write!(
                f,
                "{}-byte context {} at offset {offset} is not allowed: {why}",
                size,
                rw(*write)
            ),
            FaultKind::BadCallTarget { target } => {
                write!(
                    f,
                    "call to {target:#x}, which is not a function of this program"
                )
            }
            FaultKind::CallDepth { frames } => write!(
                f,
                "call depth exceeded: {frames} frames are active and the kernel allows 8"
            ),
            FaultKind::StackLimit { needed, limit } => write!(
                f,
                "the active frames need {needed} bytes of stack, more than the limit of {limit}"
            ),
            FaultKind::StepBudget { steps } => write!(
                f,
                "step budget of {steps} instructions exhausted (endless loop?); raise it with Config::step_budget"
            ),
            FaultKind::UnknownHelper { id } => write!(f, "call to unknown helper {id}"),
            FaultKind::UnknownKfunc { btf_id, module } => {
                write!(
                    f,
                    "call to unknown kfunc (BTF id {btf_id}, module {module})"
                )
            }
            FaultKind::Helper { id, message } => write!(f, "helper {id} failed: {message}"),
            FaultKind::UnresolvedImm64 { kind, imm } => write!(
                f,
                "ld_imm64 of a {kind} ({imm:#x}) cannot be resolved by this environment"
            ),
            FaultKind::BadTailCall { prog } => {
                write!(
                    f,
                    "tail call to program {prog}, which the machine does not hold"
                )
            }
            FaultKind::NotRunning => write!(f, "the machine is not running a program"),
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "instruction {}", self.pc)?;
        if self.prog != 0 {
            write!(f, " of program {}", self.prog)?;
        }
        if let Some(l) = &self.line {
            write!(f, " ({}:{}", l.file, l.line)?;
            if !l.text.is_empty() {
                write!(f, ": {}", l.text.trim())?;
            }
            write!(f, ")")?;
        }
        write!(f, ": {}", self.kind)
    }
}

impl std::error::Error for Fault {}
