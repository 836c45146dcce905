//! Arbitrary text as a debugger command line (`step 3`, `break xdp_prog+4`,
//! `x/8xb pkt`, `print/x r1`, ...): the parser never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for line in String::from_utf8_lossy(data).lines() {
        bpfrr_fuzz::parse_command(line);
    }
    bpfrr_fuzz::parse_command(&String::from_utf8_lossy(data));
});
