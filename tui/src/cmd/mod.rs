//! One module per subcommand. Each has `Args` (clap) and `run(Args)`.

pub mod diff;
pub mod disasm;
pub mod exec;
pub mod info;
pub mod log;
#[cfg(target_os = "linux")]
pub mod record;
pub mod replay;
pub mod run;
pub mod verify;
