//! `bpfrr slice TRACE --invocations 17,42[,a-b] -o small.bpfrr`: a trace
//! with only those invocations and what they need (programs they ran, maps
//! those programs use), for a bug report. The start snapshots become the
//! map state just before the first kept invocation (replayed), and every
//! kept invocation is replayed afterwards and compared with its original.

use std::path::PathBuf;

use bpfrr_replayer::edit::slice_trace;
use bpfrr_trace::edit::{format_invocation_list, parse_invocation_list};
use bpfrr_trace::trace::Trace;

#[derive(clap::Args)]
pub struct Args {
    /// The trace file.
    pub trace: PathBuf,
    /// Invocations to keep: 0-based indices and inclusive ranges, e.g. 17,42,50-60.
    #[arg(long, value_name = "LIST")]
    pub invocations: String,
    /// Where to write the slice.
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let wanted = parse_invocation_list(&args.invocations)?;
    let trace = Trace::open(&args.trace)?;
    let outcome = slice_trace(&trace, &wanted, &args.output)?;
    let plan = &outcome.plan;
    let names = |ids: &[u32], of: &dyn Fn(u32) -> String| {
        ids.iter()
            .enumerate()
            .map(|(new, &old)| {
                if new as u32 == old {
                    of(old)
                } else {
                    format!("{} ({old} -> {new})", of(old))
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "{}: {} of {} invocations ({}), {} of {} programs, {} of {} maps",
        args.output.display(),
        plan.invocations().len(),
        trace.invocation_count(),
        format_invocation_list(plan.invocations()),
        plan.programs().len(),
        trace.programs().len(),
        plan.maps().len(),
        trace.maps().len(),
    );
    println!(
        "\tprograms: {}",
        names(plan.programs(), &|id| trace.programs()[id as usize]
            .name
            .clone())
    );
    if !plan.maps().is_empty() {
        println!(
            "\tmaps: {}",
            names(plan.maps(), &|id| trace.maps()[id as usize].name.clone())
        );
    }
    for note in &outcome.notes {
        println!("\t{note}");
    }
    let lost: u64 = trace.lost().iter().map(|l| l.count).sum();
    if lost > 0 {
        println!("\t{lost} records lost in the original recording (kept as information)");
    }
    println!("{}", outcome.check);
    if outcome.check.lost > 0 {
        println!(
            "warning: {} kept invocations no longer replay identically (see above); the slice was written anyway",
            outcome.check.lost
        );
    }
    Ok(())
}
