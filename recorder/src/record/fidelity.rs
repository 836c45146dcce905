//! The fidelity step: replay every invocation of a finished trace with the
//! replayer's recorded environment and say whether each one matched.

use std::path::Path;

use bpfrr_replayer::replay::{Summary, check_all};
use bpfrr_trace::trace::{Trace, TraceError};

/// Replays every invocation of the trace at `path`, in recording order
/// (map state carried forward as it was recorded).
pub fn check_trace(path: &Path) -> Result<Summary, TraceError> {
    let trace = Trace::open(path)?;
    Ok(check_all(&trace))
}

/// The report lines: `N/N invocations replayed identically`, then each
/// divergence (naming the invocation and its first diverging instruction)
/// and each invocation that could not be replayed.
pub fn report_lines(summary: &Summary) -> Vec<String> {
    let mut lines = vec![format!(
        "{}/{} invocations replayed identically",
        summary.identical, summary.total
    )];
    if summary.partial > 0 {
        lines.push(format!(
            "  ({} of them partial recordings, replayed as far as they go)",
            summary.partial
        ));
    }
    for d in &summary.divergences {
        lines.push(format!("  {d}"));
    }
    for (index, e) in &summary.errors {
        lines.push(format!("  invocation {index} could not be replayed: {e}"));
    }
    let kept = summary.divergences.len() + summary.errors.len();
    let bad = summary.diverged + summary.failed;
    if bad > kept as u64 {
        lines.push(format!("  ... and {} more", bad - kept as u64));
    }
    lines
}
