//! Trace edits that need the replayer: slicing with the map state carried
//! over, and the fidelity check after an edit. The transformations
//! themselves are pure and live in `bpfrr_trace::edit`.
//!
//! Why a slice needs the replayer: the recording holds every helper result,
//! but not what a program reads directly from global data (`.data`,
//! `.bss`) or the map state it carries from one invocation to the next;
//! the replayer rebuilds that state by replaying in recording order (see
//! [`crate::replay::replayer`]). A slice starting at invocation `k` must
//! therefore start from the state just before `k`, which is stored as the
//! slice's start snapshots. Invocations dropped *between* kept ones can
//! change that state too, and the format has no snapshot in the middle of
//! a trace: the check after slicing names every kept invocation that no
//! longer replays identically and the maps whose state differs.
//!
//! - [`state`]: map models as snapshots, and their comparison.
//! - [`check`]: replay an edited trace against its original.

pub mod check;
pub mod state;

use std::path::Path;

use bpfrr_trace::edit::{
    EditError, RedactOptions, RedactStats, SlicePlan, SliceState, write_redacted, write_slice,
};
use bpfrr_trace::trace::{Trace, TraceSummary};

use crate::replay::Replayer;

pub use check::{EditCheck, EditedReplay, compare_replays};
pub use state::{MapState, differing_maps, map_state, modelled_maps};

/// What a slice wrote and how its invocations replay.
#[derive(Debug)]
pub struct SliceOutcome {
    pub plan: SlicePlan,
    pub written: TraceSummary,
    /// How the start (and end) snapshots were chosen, as stored in the notes.
    pub notes: Vec<String>,
    pub check: EditCheck,
}

/// The map state before each invocation `kept[n]` of `trace` where
/// `capture(n)` (None elsewhere, or when it cannot be started), and after
/// the last one, by replaying `trace` in order.
fn states_along(
    trace: &Trace,
    kept: &[u64],
    capture: impl Fn(usize) -> bool,
) -> (Vec<Option<MapState>>, Option<MapState>) {
    let modelled = modelled_maps(trace);
    let mut replayer = Replayer::new(trace);
    let mut before = Vec::with_capacity(kept.len());
    let mut after = None;
    for (n, &k) in kept.iter().enumerate() {
        match replayer.start(k) {
            Ok(mut run) => {
                before.push(capture(n).then(|| map_state(run.env.model(), &modelled)));
                let _ = run.machine.run(&mut run.env);
                if n + 1 == kept.len() {
                    run.env.end_run(run.machine.memory());
                    after = Some(map_state(run.env.model(), &modelled));
                }
                replayer.finish(run);
            }
            Err(_) => before.push(None),
        }
    }
    (before, after)
}

/// A state of the trace's maps keyed by original map id.
fn by_original_id(state: &MapState, plan: &SlicePlan, n_maps: usize) -> MapState {
    let mut out = vec![None; n_maps];
    for (new, s) in state.iter().enumerate() {
        if let Some(&old) = plan.maps().get(new) {
            out[old as usize] = s.clone();
        }
    }
    out
}

/// Slices `trace` to `invocations` (original indices) into `out`, with the
/// start snapshots set to the replayed map state just before the first
/// kept invocation, then replays the slice and compares each invocation
/// with its original.
pub fn slice_trace(
    trace: &Trace,
    invocations: &[u64],
    out: &Path,
) -> Result<SliceOutcome, EditError> {
    let plan = SlicePlan::new(trace, invocations)?;
    let kept = plan.invocations().to_vec();
    let count = trace.invocation_count();
    let (first, last) = (kept[0], kept[kept.len() - 1]);
    // Where the state may differ from the original: the first kept
    // invocation and each one after a gap.
    let after_gap = |n: usize| n == 0 || kept[n] != kept[n - 1] + 1;
    let (before, after) = states_along(trace, &kept, after_gap);
    let mut state = SliceState::default();
    let name_of = |id: u32| trace.maps()[id as usize].name.clone();
    if first == 0 {
        state
            .notes
            .push("start snapshots: those of the original recording".into());
    } else if let Some(Some(start)) = before.first() {
        let mut kept_original = Vec::new();
        for &old in plan.maps() {
            match &start[old as usize] {
                Some(s) => state.start.push((old, s.clone())),
                None => kept_original.push(name_of(old)),
            }
        }
        state.notes.push(format!(
            "start snapshots: the map state just before original invocation {first}, computed by replaying the invocations before it"
        ));
        if !kept_original.is_empty() {
            state.notes.push(format!(
                "start snapshots of the original recording kept for {} (program arrays, ring buffers and unmodelled maps: the replay does not take their state from snapshots)",
                kept_original.join(", ")
            ));
        }
    } else {
        state.notes.push(format!(
            "start snapshots: those of the original recording (the state before invocation {first} cannot be replayed)"
        ));
    }
    if last + 1 == count {
        state
            .notes
            .push("end snapshots: those of the original recording".into());
    } else if let Some(end) = &after {
        state.end = plan
            .maps()
            .iter()
            .filter_map(|&old| end[old as usize].clone().map(|s| (old, s)))
            .collect();
        state.notes.push(format!(
            "end snapshots: the replayed map state after original invocation {last}"
        ));
    }
    let written = write_slice(trace, &plan, &state, out)?;
    let slice = Trace::open(out)?;
    slice.verify_all()?;

    // The state each slice invocation starts from, by original map id.
    let all: Vec<u64> = (0..slice.invocation_count()).collect();
    let (slice_before, _) = states_along(&slice, &all, |n| n > 0 && after_gap(n));
    let n_maps = trace.maps().len();
    let check = compare_replays(
        trace,
        &slice,
        |i| kept[i as usize],
        |i| match (&before[i as usize], &slice_before[i as usize]) {
            (Some(o), Some(s)) => differing_maps(trace, o, &by_original_id(s, &plan, n_maps)),
            _ => Vec::new(),
        },
    );
    Ok(SliceOutcome {
        plan,
        written,
        notes: state.notes,
        check,
    })
}

/// What a redaction removed and how the result replays.
#[derive(Debug)]
pub struct RedactOutcome {
    pub stats: RedactStats,
    pub check: EditCheck,
}

/// Redacts `trace` into `out`, then replays every invocation of the result
/// and compares it with the original.
pub fn redact_trace(
    trace: &Trace,
    opts: &RedactOptions,
    out: &Path,
) -> Result<RedactOutcome, EditError> {
    let stats = write_redacted(trace, opts, out)?;
    let redacted = Trace::open(out)?;
    redacted.verify_all()?;
    let check = compare_replays(trace, &redacted, |i| i, |_| Vec::new());
    Ok(RedactOutcome { stats, check })
}
