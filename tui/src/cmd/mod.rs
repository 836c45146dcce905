//! One module per subcommand. Each has `Args` (clap) and `run(Args)`.

pub mod disasm;
pub mod exec;
pub mod info;
#[cfg(target_os = "linux")]
pub mod record;
pub mod run;
pub mod verify;
