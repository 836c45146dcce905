//! Arbitrary bytes as a trace file: as given, and with every checksum made
//! valid so that mutations reach bytecheck and the directory rules.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    bpfrr_fuzz::read_whole_trace(data.to_vec());
    if let Some(fixed) = bpfrr_fuzz::with_valid_checksums(data) {
        bpfrr_fuzz::read_whole_trace(fixed);
    }
});
