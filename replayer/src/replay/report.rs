//! What a fidelity check found: per invocation a [`FidelityReport`] (with
//! the first [`Divergence`], if any), over a trace a [`Summary`].

use std::fmt;

use crate::env::recorded::Note;
use crate::vm::{Fault, SourceLine};

use super::error::ReplayError;

/// An instruction of a program, as a report names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// Trace program id.
    pub program: u32,
    pub program_name: String,
    /// Instruction index in the program's original instructions.
    pub insn: u32,
    /// Its source line, when the program has line info.
    pub line: Option<SourceLine>,
    /// Instructions the replay had executed before reaching it, when known.
    pub step: Option<u64>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "instruction {}", self.insn)?;
        if !self.program_name.is_empty() {
            write!(f, " of {}", self.program_name)?;
        }
        if let Some(l) = &self.line {
            write!(f, " ({}:{}", l.file, l.line)?;
            let text = l.text.trim();
            if !text.is_empty() {
                write!(f, ": {text}")?;
            }
            write!(f, ")")?;
        }
        if let Some(s) = self.step {
            write!(f, " at step {s}")?;
        }
        Ok(())
    }
}

/// How a replay differs from its recording.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DivergenceKind {
    /// The program made a different call than the recording's next one (or
    /// a call the recording does not have, or a callback helper returned
    /// differently). `event` is the recorded event it was compared with.
    Call { event: Option<usize> },
    /// The program ended while the recording still has calls.
    MissingCalls { next_event: usize, remaining: usize },
    /// A load through a BTF pointer at another instruction than the
    /// recording's next one (or past the last). `load` indexes the
    /// invocation's recorded BTF loads.
    BtfLoad { load: Option<usize> },
    /// The program ended while the recording still has BTF loads.
    MissingBtfLoads { next_load: usize, remaining: usize },
    /// The replay faulted where the kernel ran on.
    Fault(Fault),
    /// Different return values.
    ReturnValue { recorded: u64, replayed: u64 },
    /// The final packets have different lengths.
    PacketLength { recorded: usize, replayed: usize },
    /// The final packets differ at byte `offset` (first difference).
    PacketByte {
        offset: usize,
        recorded: u8,
        replayed: u8,
    },
}

/// The first place where a replay went wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Divergence {
    pub kind: DivergenceKind,
    /// The first instruction where the replay went wrong: the call that
    /// differs, the faulting instruction, the last write to a differing
    /// packet byte, or the exit.
    pub at: Location,
    /// A second place that explains it: for a return value, the instruction
    /// that last set r0.
    pub related: Option<Location>,
    /// One sentence saying what differs.
    pub message: String,
}

impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "diverges at {}: {}", self.at, self.message)?;
        if let Some(r) = &self.related {
            write!(f, " (r0 was last set at {r})")?;
        }
        Ok(())
    }
}

/// The fidelity check of one invocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FidelityReport {
    /// Position of the invocation in the trace.
    pub invocation: u64,
    pub seq: u64,
    pub cpu: u32,
    /// Trace program id of the entry program.
    pub program: u32,
    /// Instructions the replay executed.
    pub steps: u64,
    /// The replay's return value (None when it did not reach an exit).
    pub retval: Option<u64>,
    pub calls_recorded: usize,
    /// Recorded calls the replay made, in order, before it ended or diverged.
    pub calls_matched: usize,
    /// Values the recording read through BTF pointers (kernel memory).
    pub btf_loads_recorded: usize,
    /// Of those, how many the replay's loads took, in order.
    pub btf_loads_matched: usize,
    /// The recording of the invocation is incomplete; the replay went as
    /// far as it holds.
    pub partial: bool,
    /// Model/recording disagreements (another CPU or userspace changed a map).
    pub notes: Vec<Note>,
    pub divergence: Option<Divergence>,
}

impl FidelityReport {
    /// Return value, final packet, helper sequence and BTF loads all match
    /// the recording.
    pub fn is_identical(&self) -> bool {
        self.divergence.is_none()
    }
}

impl fmt::Display for FidelityReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invocation {} (seq {}, cpu {})",
            self.invocation, self.seq, self.cpu
        )?;
        match &self.divergence {
            Some(d) => write!(f, " {d}"),
            None => {
                write!(
                    f,
                    " replayed identically ({} instructions, {} calls)",
                    self.steps, self.calls_matched
                )?;
                if self.partial {
                    write!(f, " as far as its partial recording goes")?;
                }
                Ok(())
            }
        }
    }
}

/// How many reports and errors a [`Summary`] keeps in full.
pub const MAX_KEPT: usize = 100;

/// The fidelity check of a whole trace.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub total: u64,
    /// Replayed identically (partial recordings included, as far as they go).
    pub identical: u64,
    /// Of the identical ones, how many were partial recordings.
    pub partial: u64,
    pub diverged: u64,
    /// Could not be replayed at all.
    pub failed: u64,
    /// Notes over all invocations.
    pub notes: u64,
    /// Instructions executed over all invocations.
    pub instructions: u64,
    /// The first [`MAX_KEPT`] diverging invocations.
    pub divergences: Vec<FidelityReport>,
    /// The first [`MAX_KEPT`] failures: invocation index and error.
    pub errors: Vec<(u64, ReplayError)>,
}

impl Summary {
    /// Every invocation replayed identically.
    pub fn all_identical(&self) -> bool {
        self.identical == self.total
    }

    pub(crate) fn add(&mut self, index: u64, result: Result<FidelityReport, ReplayError>) {
        self.total += 1;
        match result {
            Ok(r) => {
                self.notes += r.notes.len() as u64;
                self.instructions += r.steps;
                if r.is_identical() {
                    self.identical += 1;
                    self.partial += u64::from(r.partial);
                } else {
                    self.diverged += 1;
                    if self.divergences.len() < MAX_KEPT {
                        self.divergences.push(r);
                    }
                }
            }
            Err(e) => {
                self.failed += 1;
                if self.errors.len() < MAX_KEPT {
                    self.errors.push((index, e));
                }
            }
        }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{} invocations replayed identically",
            self.identical, self.total
        )?;
        if self.partial > 0 {
            write!(
                f,
                " ({} of them partial recordings, replayed as far as they go)",
                self.partial
            )?;
        }
        for r in &self.divergences {
            write!(f, "\n{r}")?;
        }
        if self.diverged as usize > self.divergences.len() {
            write!(
                f,
                "\n... and {} more diverging invocations",
                self.diverged as usize - self.divergences.len()
            )?;
        }
        for (i, e) in &self.errors {
            write!(f, "\ninvocation {i} cannot be replayed: {e}")?;
        }
        if self.failed as usize > self.errors.len() {
            write!(
                f,
                "\n... and {} more invocations that cannot be replayed",
                self.failed as usize - self.errors.len()
            )?;
        }
        Ok(())
    }
}
