//! bpfrr-recorder: the kernel side of bpfrr. Loads BPF programs with the
//! verifier log captured, creates their maps, runs them with
//! BPF_PROG_TEST_RUN, and (later) instruments and records them.
//!
//! Linux only: on other systems only the pure parts (the verifier
//! statistics parser and the random program generator) are built.

pub mod fuzzgen;
pub mod instrument;
#[cfg(target_os = "linux")]
pub mod kernel_oracle;
pub mod verifier_stats;
pub mod wire;

#[cfg(target_os = "linux")]
pub mod attach;
#[cfg(target_os = "linux")]
pub mod load;
#[cfg(target_os = "linux")]
pub mod record;
#[cfg(target_os = "linux")]
pub mod stop;
#[cfg(target_os = "linux")]
pub mod sys;
#[cfg(target_os = "linux")]
pub mod testrun;
