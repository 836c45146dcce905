//! The verifier's statistics lines. The parser moved to the replayer's
//! verifier-log analysis (`bpfrr_replayer::verifier::stats`), next to the
//! rest of the log parser; re-exported here for the recorder's users.

pub use bpfrr_replayer::verifier::stats::VerifierStats;
