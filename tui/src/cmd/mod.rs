//! One module per subcommand. Each has `Args` (clap) and `run(Args)`.

pub mod diff;
pub mod disasm;
pub mod exec;
pub mod export_pcap;
pub mod info;
pub mod log;
#[cfg(target_os = "linux")]
pub mod record;
pub mod redact;
pub mod replay;
pub mod run;
pub mod slice;
pub mod verify;
