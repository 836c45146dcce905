//! Why an invocation could not be replayed at all (as opposed to replaying
//! differently from the recording, which is a `Divergence`).

use bpfrr_trace::trace::TraceError;

/// A replay that could not start. One sentence each.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    /// The trace could not be read (a damaged block, an index past the end).
    #[error("{0}")]
    Trace(#[from] TraceError),
    /// The program the invocation runs cannot be loaded into the VM.
    #[error(
        "program {program} ({name}) of the trace cannot be loaded into the VM: {reason}; the trace may be damaged or made by a different bpfrr"
    )]
    Program {
        program: u32,
        name: String,
        reason: String,
    },
    /// The machine refused to start (a bug in bpfrr if it ever happens).
    #[error("invocation {index} cannot start in the VM: {reason}")]
    Start { index: u64, reason: String },
}
