//! `bpfrr replay TRACE [--invocation N] [-x CMD]... [--commands FILE] [--json]`:
//! with commands, batch mode (each command's output in order, as text or
//! one JSON object per line); without, the interactive UI.

use std::path::PathBuf;

use std::io::Write as _;

use anyhow::Context as _;
use bpfrr_recorder::stop::Interrupt;
use bpfrr_trace::trace::Trace;

use crate::commands::{Debugger, json, text};

#[derive(clap::Args)]
pub struct Args {
    /// The trace file.
    pub trace: PathBuf,
    /// The invocation to replay (see `bpfrr info`; `invocation N` switches later).
    #[arg(long, short = 'i', default_value_t = 0)]
    pub invocation: u64,
    /// Run this command (repeatable; after those of --commands). Batch mode.
    #[arg(short = 'x', long = "ex", value_name = "CMD")]
    pub commands: Vec<String>,
    /// Run the commands of this file, one a line (`#` starts a comment). Batch mode.
    #[arg(long = "commands", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Print each command's output as one JSON object per line.
    #[arg(long)]
    pub json: bool,
    /// Instructions one invocation may execute before a movement stops
    /// (batch mode; a trace of an endless loop must not run forever).
    #[arg(long, default_value_t = 1 << 24)]
    pub step_budget: u64,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let trace = Trace::open(&args.trace)?;
    let mut lines = Vec::new();
    if let Some(f) = &args.file {
        let body = std::fs::read_to_string(f)
            .with_context(|| format!("cannot read the command file {}", f.display()))?;
        lines.extend(
            body.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_string),
        );
    }
    lines.extend(args.commands.iter().cloned());
    if lines.is_empty() && args.file.is_none() {
        if args.json {
            anyhow::bail!("--json is for batch mode; give commands with -x CMD or --commands FILE");
        }
        return crate::ui::run_replay_ui(&trace, Some(&args.trace), args.invocation);
    }
    let mut debugger = Debugger::with_step_budget(&trace, args.invocation, args.step_budget)
        .map_err(anyhow::Error::msg)?;
    // Ctrl-C stops a long movement (the command's output says
    // "interrupted") and the commands after it.
    let interrupt = Interrupt::install().map_err(anyhow::Error::msg)?;
    let mut failed = 0usize;
    let mut stdout = std::io::stdout().lock();
    for (done, line) in lines.iter().enumerate() {
        // Installed before every line: `invocation N` makes a new session.
        let handle = interrupt.handle();
        debugger
            .session_mut()
            .set_progress(Some(Box::new(move |_| handle.signal().is_none())));
        let out = debugger.run_line(line);
        if out.is_error() {
            failed += 1;
        }
        let shown = if args.json {
            json::render(line, &out)
        } else {
            text::render(&out)
        };
        // A reader that went away (`| head`) ends the run quietly.
        if let Err(e) = writeln!(stdout, "{shown}") {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(());
            }
            return Err(e.into());
        }
        if interrupt.handle().signal().is_some() {
            anyhow::bail!(
                "interrupted (Ctrl-C) during command {} of {}; the rest were not run",
                done + 1,
                lines.len()
            );
        }
    }
    if failed > 0 {
        anyhow::bail!("{failed} of {} commands failed (see above)", lines.len());
    }
    Ok(())
}
