//! Arbitrary bytes as a BPF ELF object (parse, programs, maps, text
//! sections, link) and as a raw BTF blob (parse, format every type).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    bpfrr_fuzz::load_object(data);
    bpfrr_fuzz::read_btf(data);
});
