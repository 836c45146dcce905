//! `bpfrr redact TRACE [--snaplen N] [--zero-payload] [--drop-comm] -o safe.bpfrr`:
//! a copy of a trace without what should not travel with a bug report,
//! then a replay of every invocation of the copy: what was removed is
//! printed, and so is every invocation that no longer replays identically
//! (expected when the program read removed bytes), never silently.

use std::path::PathBuf;

use anyhow::bail;
use bpfrr_replayer::edit::redact_trace;
use bpfrr_trace::edit::RedactOptions;
use bpfrr_trace::trace::Trace;

#[derive(clap::Args)]
pub struct Args {
    /// The trace file.
    pub trace: PathBuf,
    /// Keep at most N bytes of each packet (the context stays as recorded).
    #[arg(long, value_name = "N")]
    pub snaplen: Option<u32>,
    /// Zero the packet bytes after the L4 (TCP/UDP/ICMP) header.
    #[arg(long)]
    pub zero_payload: bool,
    /// Zero bpf_get_current_comm outputs; drop the host name and command line.
    #[arg(long)]
    pub drop_comm: bool,
    /// Where to write the redacted trace.
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let opts = RedactOptions {
        snaplen: args.snaplen,
        zero_payload: args.zero_payload,
        drop_comm: args.drop_comm,
    };
    if opts.is_empty() {
        bail!("nothing to redact: give --snaplen N, --zero-payload and/or --drop-comm");
    }
    let trace = Trace::open(&args.trace)?;
    let outcome = redact_trace(&trace, &opts, &args.output)?;
    println!("{}: {}", args.output.display(), opts.describe());
    for line in outcome.stats.to_string().lines() {
        println!("\t{line}");
    }
    println!("{}", outcome.check);
    Ok(())
}
