//! The generator's programs against the real kernel: the verifier accepts
//! them and BPF_PROG_TEST_RUN runs them deterministically.
#![cfg(target_os = "linux")]

mod common;

use bpfrr_recorder::fuzzgen::{GenConfig, MAP_OUT, generate};
use bpfrr_recorder::kernel_oracle::{KernelResult, run_case};

#[test]
fn verifier_accepts_generated_programs() {
    if !common::kernel_tests_enabled("verifier_accepts_generated_programs") {
        return;
    }
    let cfg = GenConfig::default();
    let n = 300;
    let mut rejected = Vec::new();
    for seed in 0..n {
        let case = generate(seed, &cfg);
        match run_case(&case).expect("kernel call failed") {
            KernelResult::Ran(out) => {
                // bpf_xdp_adjust_* never leave less than an Ethernet header.
                assert!(out.packet.len() >= 14, "seed {seed}");
                assert_eq!(out.maps.len(), case.maps.len());
                // The exit block always fills the out map's single entry.
                assert_eq!(out.maps[MAP_OUT].len(), 1);
            }
            KernelResult::Rejected { errno, log } => rejected.push((seed, errno, log)),
        }
    }
    for (seed, errno, log) in rejected.iter().take(3) {
        eprintln!(
            "seed {seed} rejected (errno {errno}):\n{}",
            bpfrr_recorder::sys::log_tail(log, 15)
        );
    }
    assert!(
        rejected.is_empty(),
        "{} of {n} generated programs rejected",
        rejected.len()
    );
}
