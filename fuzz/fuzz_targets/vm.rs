//! Arbitrary instructions and input memory on the VM under a step budget:
//! decode, disassemble, check, run at full speed and step by step (same
//! end), then undo every step (same state as after start).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (mem, prog) = bpfrr_fuzz::split_vm_input(data);
    bpfrr_fuzz::run_vm(mem, prog);
});
