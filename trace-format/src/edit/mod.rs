//! Trace transformations for bug reports, pure (no replay): cut a trace
//! down to some invocations ([`slice`]), remove what should not travel
//! ([`redact`]), and hand the packets to Wireshark ([`export`]).
//!
//! Each writes a new, valid trace (or pcap file) with [`TraceWriter`],
//! streaming invocations so a large trace never sits in memory. What the
//! replayer must compute (the map state before the first kept invocation
//! of a slice, the fidelity check after a redaction) is given to these
//! functions or done by the caller: see `bpfrr_replayer::edit`.
//!
//! - [`headers`]: where a packet's Ethernet/VLAN/IP/TCP/UDP headers end.
//! - [`slice`]: keep some invocations and only the programs and maps they need.
//! - [`redact`]: cut packets to a snap length, zero payloads, drop comm and host names.
//! - [`export`]: the recorded (or final) packets as a classic pcap file.
//!
//! [`TraceWriter`]: crate::trace::TraceWriter

pub mod export;
pub mod headers;
pub mod redact;
pub mod slice;

pub use export::{ExportStats, PacketSource, export_pcap};
pub use headers::{HeaderEnd, LinkLayer, header_end};
pub use redact::{RedactOptions, RedactStats, redact_invocation, redact_meta, write_redacted};
pub use slice::{
    SlicePlan, SliceState, format_invocation_list, parse_invocation_list, write_slice,
};

use std::path::Path;

use crate::trace::TraceError;

/// Why a transformation could not be done.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    /// Reading the input trace or writing the output trace failed.
    #[error(transparent)]
    Trace(#[from] TraceError),
    /// The request does not fit the trace (a bad invocation list, …).
    #[error("{0}")]
    Invalid(String),
    /// Writing a non-trace output (a pcap file) failed.
    #[error("cannot write {path}: {message}")]
    Io { path: String, message: String },
}

/// Refuses to write over the input: the input is memory-mapped while the
/// output is written, and a failed edit must not lose the original.
pub fn check_output_path(input: &Path, output: &Path) -> Result<(), EditError> {
    let same = match (input.canonicalize(), output.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => input == output,
    };
    if same {
        return Err(EditError::Invalid(format!(
            "the output {} is the input trace; write to another file with -o",
            output.display()
        )));
    }
    Ok(())
}
