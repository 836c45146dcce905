//! `bpfrr diff TRACE A B [--json]`: runs invocations A and B side by side
//! and reports the first step where their paths split: the branch
//! instruction and source line, where each went, and the register values
//! that decided it.

use std::path::PathBuf;

use bpfrr_replayer::session::{DiffReport, EndKind, diff};
use bpfrr_trace::catalog::ProgType;
use bpfrr_trace::trace::Trace;
use serde_json::json;

use crate::commands::{Debugger, text, view};

#[derive(clap::Args)]
pub struct Args {
    /// The trace file.
    pub trace: PathBuf,
    /// The first invocation.
    pub a: u64,
    /// The second invocation.
    pub b: u64,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

fn end_text(kind: Option<&EndKind>, prog_type: Option<ProgType>) -> String {
    match kind {
        Some(EndKind::Exited(r0)) => match view::retval_name(prog_type, *r0) {
            Some(n) => format!("exited with r0 = {r0} ({n})"),
            None => format!("exited with r0 = {r0}"),
        },
        Some(EndKind::Fault(f)) => format!("faulted: {f}"),
        Some(EndKind::Divergence { message }) => format!("diverged from its recording: {message}"),
        None => "went on".into(),
    }
}

fn end_json(kind: Option<&EndKind>) -> serde_json::Value {
    match kind {
        Some(EndKind::Exited(r0)) => json!({"end": "exited", "r0": r0}),
        Some(EndKind::Fault(f)) => json!({"end": "fault", "message": f.to_string()}),
        Some(EndKind::Divergence { message }) => json!({"end": "divergence", "message": message}),
        None => json!({"end": "running"}),
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let trace = Trace::open(&args.trace)?;
    let (ia, ib) = (args.a, args.b);
    let mut a = Debugger::new(&trace, ia).map_err(anyhow::Error::msg)?;
    let mut b = Debugger::new(&trace, ib).map_err(anyhow::Error::msg)?;
    let (pta, ptb) = (a.prog_type(), b.prog_type());
    let report = diff(a.session_mut(), b.session_mut());
    let s = a.session();
    match report {
        DiffReport::Split {
            step,
            prog,
            pc,
            line,
            text: insn_text,
            a_next,
            b_next,
            regs,
        } => {
            let place = view::place_at(s, step, prog, pc, line.as_ref(), insn_text);
            if args.json {
                let registers: Vec<_> = regs
                    .iter()
                    .map(|r| json!({"reg": format!("r{}", r.reg), "a": r.a, "b": r.b}))
                    .collect();
                let v = json!({
                    "kind": "split",
                    "a": {"invocation": ia, "next_insn": a_next},
                    "b": {"invocation": ib, "next_insn": b_next},
                    "place": place,
                    "registers": registers,
                });
                println!("{v}");
            } else {
                println!(
                    "invocations {ia} and {ib} split at {}",
                    text::place_line(&place)
                );
                if let (Some(l), Some(src)) = (place.line, &place.source) {
                    println!("{l}\t{src}");
                }
                println!(
                    "  invocation {ia} went to insn {a_next}, invocation {ib} to insn {b_next}"
                );
                for r in &regs {
                    let differs = if r.a != r.b { "" } else { "  (same)" };
                    println!(
                        "  r{}: {:#x} ({}) in {ia}, {:#x} ({}) in {ib}{differs}",
                        r.reg, r.a, r.a as i64, r.b, r.b as i64
                    );
                }
            }
        }
        DiffReport::Same {
            steps,
            a: ea,
            b: eb,
        } => {
            if args.json {
                let v = json!({
                    "kind": "same",
                    "steps": steps,
                    "a": {"invocation": ia, "end": end_json(ea.as_ref())},
                    "b": {"invocation": ib, "end": end_json(eb.as_ref())},
                });
                println!("{v}");
            } else {
                println!(
                    "invocations {ia} and {ib} take the same path ({steps} steps); {ia} {}, {ib} {}",
                    end_text(ea.as_ref(), pta),
                    end_text(eb.as_ref(), ptb)
                );
            }
        }
        DiffReport::Ended { step, a: ea, b: eb } => {
            if args.json {
                let v = json!({
                    "kind": "ended",
                    "step": step,
                    "a": {"invocation": ia, "end": end_json(ea.as_ref())},
                    "b": {"invocation": ib, "end": end_json(eb.as_ref())},
                });
                println!("{v}");
            } else {
                println!(
                    "invocations {ia} and {ib} take the same path for {step} steps, then {ia} {} and {ib} {}",
                    end_text(ea.as_ref(), pta),
                    end_text(eb.as_ref(), ptb)
                );
            }
        }
    }
    Ok(())
}
