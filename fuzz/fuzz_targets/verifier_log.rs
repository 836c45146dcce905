//! Arbitrary text as a kernel verifier log (level 2): the parser and
//! everything a view reads from its result.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    bpfrr_fuzz::parse_verifier_log(&String::from_utf8_lossy(data));
});
