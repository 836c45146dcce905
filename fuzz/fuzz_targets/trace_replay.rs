//! Arbitrary bytes as a trace, replayed: the models built from its maps
//! and snapshots, its first invocations run against their recorded helper
//! answers under a step budget. Each input is tried as given and with
//! every checksum made valid, as in trace_reader.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    bpfrr_fuzz::replay_trace(data.to_vec());
    if let Some(fixed) = bpfrr_fuzz::with_valid_checksums(data) {
        bpfrr_fuzz::replay_trace(fixed);
    }
});
