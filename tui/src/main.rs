//! `bpfrr`: record and replay eBPF programs.
//!
//! This file only parses the command line and dispatches; each subcommand
//! lives in its own module under `cmd/`.

mod cmd;
mod commands;
mod jit_view;
mod ui;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "bpfrr",
    version,
    about = "Record and replay eBPF programs, instruction by instruction"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Disassemble the programs of a BPF object file (llvm-objdump syntax).
    Disasm(cmd::disasm::Args),
    /// Describe a trace file: programs, maps, invocations, lost records.
    Info(cmd::info::Args),
    /// Run raw BPF instructions (bpf_conformance plugin protocol, or a packet program).
    Exec(cmd::exec::Args),
    /// Run a program of a BPF object on packets or a context, with map models (no kernel).
    Run(cmd::run::Args),
    /// Load a program without attaching it and explain the verifier's log (states, rejection, fix).
    Verify(cmd::verify::Args),
    /// Record a program's runs in the kernel into a trace, then check that each replays identically.
    #[cfg(target_os = "linux")]
    Record(cmd::record::Args),
    /// Replay one invocation: batch commands (-x, --commands) or the interactive UI.
    Replay(cmd::replay::Args),
    /// Print every step of one invocation: instruction, source line, registers and memory changed.
    Log(cmd::log::Args),
    /// Show where the paths of two invocations split, and the values that decided it.
    Diff(cmd::diff::Args),
    /// Cut a trace down to some invocations and what they need (programs, maps, state).
    Slice(cmd::slice::Args),
    /// Remove packet bytes, payloads, comm and host names from a trace, then re-check its replay.
    Redact(cmd::redact::Args),
    /// Write the recorded (or final) packets of a trace as a pcap file.
    ExportPcap(cmd::export_pcap::Args),
}

/// Rust ignores SIGPIPE, so `bpfrr disasm OBJ | head` would turn every later
/// `println!` into a panic. Like other command-line tools, die quietly
/// instead when the reader has gone.
#[cfg(unix)]
fn restore_default_sigpipe() {
    // SAFETY: called first thing in main, before any thread exists; setting a
    // signal's disposition to SIG_DFL has no other effect on this process.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

#[cfg(not(unix))]
fn restore_default_sigpipe() {}

fn main() {
    restore_default_sigpipe();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Disasm(a) => cmd::disasm::run(a),
        Command::Info(a) => cmd::info::run(a),
        Command::Exec(a) => cmd::exec::run(a),
        Command::Run(a) => cmd::run::run(a),
        Command::Verify(a) => cmd::verify::run(a),
        #[cfg(target_os = "linux")]
        Command::Record(a) => cmd::record::run(a),
        Command::Replay(a) => cmd::replay::run(a),
        Command::Log(a) => cmd::log::run(a),
        Command::Diff(a) => cmd::diff::run(a),
        Command::Slice(a) => cmd::slice::run(a),
        Command::Redact(a) => cmd::redact::run(a),
        Command::ExportPcap(a) => cmd::export_pcap::run(a),
    };
    if let Err(e) = result {
        // `bpfrr log TRACE | head`: the reader went away; that is not an error.
        if is_broken_pipe(&e) {
            std::process::exit(0);
        }
        eprintln!("bpfrr: {e:#}");
        std::process::exit(1);
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
