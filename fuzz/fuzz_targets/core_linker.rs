//! A BPF object and a target BTF (`fuzz::split_core_input`): parse the
//! object and link its programs with CO-RE against the BTF. Panics inside
//! aya-obj are caught by bpfrr and are not crashes; every other panic is.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    bpfrr_fuzz::install_core_panic_hook();
    if let Some((object, btf)) = bpfrr_fuzz::split_core_input(data) {
        bpfrr_fuzz::link_with_core(object, btf);
    }
});
