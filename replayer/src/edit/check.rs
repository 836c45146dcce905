//! The fidelity check of an edited trace: each invocation is replayed in
//! the edited trace and compared with how its original replayed, so a
//! report can say which invocations an edit changed and why, never
//! silently.

use std::fmt;

use bpfrr_trace::trace::Trace;

use crate::replay::{FidelityReport, ReplayError, Replayer};

/// How many invocations that do not replay identically a check lists in full.
pub const MAX_LISTED: usize = 1000;

/// One invocation of an edited trace that does not replay identically.
#[derive(Debug, Clone)]
pub struct EditedReplay {
    /// Position in the edited trace.
    pub index: u64,
    /// Position of the invocation it came from in the original trace.
    pub original_index: u64,
    /// The replay in the edited trace.
    pub edited: Result<FidelityReport, ReplayError>,
    /// The original invocation replayed identically (so the edit made the difference).
    pub original_identical: bool,
    /// Maps whose state before this invocation differs from the original
    /// (slices: changed by invocations that were dropped).
    pub state_differs: Vec<String>,
}

impl fmt::Display for EditedReplay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invocation {}", self.index)?;
        if self.index != self.original_index {
            write!(f, " (invocation {} of the original)", self.original_index)?;
        }
        match &self.edited {
            Ok(r) => match &r.divergence {
                Some(d) => write!(f, " {d}")?,
                None => write!(f, " replays identically")?,
            },
            Err(e) => write!(f, " cannot be replayed: {e}")?,
        }
        if !self.state_differs.is_empty() {
            write!(
                f,
                "; the map state it starts from differs from the original in {} (changed by invocations the slice dropped: keep them too, e.g. with a range)",
                self.state_differs.join(", ")
            )?;
        }
        if !self.original_identical {
            write!(f, " (it did not replay identically in the original either)")?;
        }
        Ok(())
    }
}

/// The fidelity check of an edited trace against its original.
#[derive(Debug, Clone, Default)]
pub struct EditCheck {
    pub total: u64,
    /// Replay identically in the edited trace.
    pub identical: u64,
    /// Replayed identically in the original but not in the edited trace.
    pub lost: u64,
    /// Did not replay identically in the original either.
    pub already_different: u64,
    /// The first [`MAX_LISTED`] that do not replay identically, in order.
    pub listed: Vec<EditedReplay>,
}

impl EditCheck {
    /// Every invocation replays identically.
    pub fn all_identical(&self) -> bool {
        self.identical == self.total
    }

    /// Adds one invocation's results.
    pub fn add(
        &mut self,
        index: u64,
        original_index: u64,
        edited: Result<FidelityReport, ReplayError>,
        original_identical: bool,
        state_differs: Vec<String>,
    ) {
        self.total += 1;
        let identical = edited.as_ref().is_ok_and(|r| r.is_identical());
        if identical {
            self.identical += 1;
            return;
        }
        if original_identical {
            self.lost += 1;
        } else {
            self.already_different += 1;
        }
        if self.listed.len() < MAX_LISTED {
            self.listed.push(EditedReplay {
                index,
                original_index,
                edited,
                original_identical,
                state_differs,
            });
        }
    }
}

impl fmt::Display for EditCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{} invocations still replay identically",
            self.identical, self.total
        )?;
        if self.lost > 0 {
            write!(
                f,
                "\n{} no longer replay identically (they read what the edit changed):",
                self.lost
            )?;
            for r in self.listed.iter().filter(|r| r.original_identical) {
                write!(f, "\n  {r}")?;
            }
        }
        if self.already_different > 0 {
            write!(
                f,
                "\n{} did not replay identically in the original either:",
                self.already_different
            )?;
            for r in self.listed.iter().filter(|r| !r.original_identical) {
                write!(f, "\n  {r}")?;
            }
        }
        let unlisted = (self.lost + self.already_different) as usize - self.listed.len();
        if unlisted > 0 {
            write!(f, "\n  ... and {unlisted} more")?;
        }
        Ok(())
    }
}

/// Replays every invocation of `edited` and invocation `original_of(i)` of
/// `original` for each, and compares. `state_differs(i)` names the maps
/// whose starting state differs for edited invocation `i`.
pub fn compare_replays(
    original: &Trace,
    edited: &Trace,
    original_of: impl Fn(u64) -> u64,
    mut state_differs: impl FnMut(u64) -> Vec<String>,
) -> EditCheck {
    let mut check = EditCheck::default();
    let mut orig = Replayer::new(original);
    let mut new = Replayer::new(edited);
    for i in 0..edited.invocation_count() {
        let o = original_of(i);
        let original_identical = orig.replay(o).is_ok_and(|r| r.is_identical());
        let report = new.replay(i);
        let differs = if report.as_ref().is_ok_and(|r| r.is_identical()) {
            Vec::new()
        } else {
            state_differs(i)
        };
        check.add(i, o, report, original_identical, differs);
    }
    check
}
