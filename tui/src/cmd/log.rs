//! `bpfrr log TRACE --invocation N [--json]`: the whole execution of one
//! invocation, one line a step:
//!
//! ```text
//! step 12, insn 7 (xdp_fw.bpf.c:45): r2 = *(u32 *)(r1 + 4)  | r2 0x0 -> 0x36 | fp-8 00000000 -> 36000000
//! ```
//!
//! the step number, instruction index, source line, instruction (helper
//! names), then each register changed (old -> new, pointers named by
//! region), what each helper call returned, and each memory write (region+offset, old bytes -> new bytes,
//! lowest address first), then notes (frames pushed or popped). The last
//! line says how the run ended. With `--json`, one object a step (fields
//! `step program insn file line source text regs mem calls notes`) and a last
//! object with `"end"`.

use std::path::PathBuf;

use bpfrr_replayer::session::{EndKind, Session, SessionEnv, StepRecord};
use bpfrr_replayer::vm::{CallRecord, Callee, HelperOutcome};
use bpfrr_trace::trace::Trace;
use serde::Serialize;

use crate::commands::output::{Place, hex};
use crate::commands::{Debugger, text, view};

#[derive(clap::Args)]
pub struct Args {
    /// The trace file.
    pub trace: PathBuf,
    /// The invocation to print (see `bpfrr info`).
    #[arg(long, short = 'i', default_value_t = 0)]
    pub invocation: u64,
    /// One JSON object per step instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct RegJson {
    reg: String,
    old: u64,
    new: u64,
    points_to: Option<String>,
}

#[derive(Serialize)]
struct MemJson {
    place: String,
    addr: u64,
    old: String,
    new: String,
}

#[derive(Serialize)]
struct StepJson {
    step: u64,
    program: usize,
    insn: usize,
    file: Option<String>,
    line: Option<u32>,
    source: Option<String>,
    text: String,
    regs: Vec<RegJson>,
    mem: Vec<MemJson>,
    /// Helper calls, as in the text: `bpf_map_lookup_elem returned 0x0`.
    calls: Vec<String>,
    notes: Vec<String>,
}

fn place<E: SessionEnv>(s: &Session<E>, r: &StepRecord) -> Place {
    // A kfunc call by name (`call bpf_dynptr_slice`), as the UI shows it.
    let text = r
        .calls
        .iter()
        .find_map(|c| match c.callee {
            Callee::Kfunc { btf_id, .. } => s.env().kfunc_name(btf_id).map(|n| format!("call {n}")),
            Callee::Helper(_) => None,
        })
        .unwrap_or_else(|| r.text.clone());
    view::place_at(s, r.step, r.prog, r.pc, r.line.as_ref(), text)
}

/// `0x36`, or `0x4000000e00000000 (pkt+14)` for a pointer.
fn value<E: SessionEnv>(s: &Session<E>, v: u64) -> String {
    match view::points_to(s, v) {
        Some(p) => format!("{v:#x} ({p})"),
        None => format!("{v:#x}"),
    }
}

/// What a helper call answered: `bpf_map_lookup_elem returned 0x0`.
fn call_text<E: SessionEnv>(s: &Session<E>, c: &CallRecord) -> String {
    let name = view::callee_name(s.env(), c);
    match &c.outcome {
        HelperOutcome::Return(v) => format!("{name} returned {}", value(s, *v)),
        HelperOutcome::KeepR0 => format!("{name}: no tail call, execution falls through"),
        HelperOutcome::TailCall(p) => format!("{name}: tail call into program {p}"),
        HelperOutcome::Exit(v) => format!("{name} ended the program with {v}"),
        HelperOutcome::Callback { target, .. } => {
            format!("{name} calls back into {}", value(s, *target))
        }
    }
}

/// One line of the text log.
pub fn step_line<E: SessionEnv>(s: &Session<E>, r: &StepRecord) -> String {
    let mut line = text::place_line(&place(s, r));
    let mut changes: Vec<String> = r
        .regs
        .iter()
        .map(|c| format!("r{} {} -> {}", c.reg, value(s, c.old), value(s, c.new)))
        .collect();
    changes.extend(r.calls.iter().map(|c| call_text(s, c)));
    changes.extend(
        r.mem
            .iter()
            .map(|m| format!("{} {} -> {}", m.place, hex(&m.old), hex(&m.new))),
    );
    changes.extend(r.notes.iter().cloned());
    if !changes.is_empty() {
        line.push_str("  | ");
        line.push_str(&changes.join(" | "));
    }
    line
}

fn step_json<E: SessionEnv>(s: &Session<E>, r: &StepRecord) -> StepJson {
    let p = place(s, r);
    StepJson {
        step: r.step,
        program: r.prog,
        insn: r.pc,
        file: p.file,
        line: p.line,
        source: p.source,
        text: r.text.clone(),
        regs: r
            .regs
            .iter()
            .map(|c| RegJson {
                reg: format!("r{}", c.reg),
                old: c.old,
                new: c.new,
                points_to: view::points_to(s, c.new),
            })
            .collect(),
        mem: r
            .mem
            .iter()
            .map(|m| MemJson {
                place: m.place.clone(),
                addr: m.addr,
                old: hex(&m.old),
                new: hex(&m.new),
            })
            .collect(),
        calls: r.calls.iter().map(|c| call_text(s, c)).collect(),
        notes: r.notes.clone(),
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    match write_log(args) {
        // A reader that went away (`| head`) ends the log quietly.
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            Ok(())
        }
        other => other,
    }
}

fn write_log(args: Args) -> anyhow::Result<()> {
    let trace = Trace::open(&args.trace)?;
    let mut debugger = Debugger::new(&trace, args.invocation).map_err(anyhow::Error::msg)?;
    let prog_type = debugger.prog_type();
    let s = debugger.session_mut();
    s.goto(0);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    use std::io::Write as _;
    // `log()` borrows the session; take one record at a time so the
    // record can be described against the session right after its step.
    while let Some(r) = s.log().next() {
        let line = if args.json {
            serde_json::to_string(&step_json(s, &r))?
        } else {
            step_line(s, &r)
        };
        writeln!(out, "{line}")?;
    }
    let end = s.end().cloned();
    let (end_text, end_json) = match end.as_ref().map(|e| &e.kind) {
        Some(EndKind::Exited(r0)) => {
            let name = view::retval_name(prog_type, *r0);
            (
                match &name {
                    Some(n) => format!("exited: r0 = {r0} ({n})"),
                    None => format!("exited: r0 = {r0} ({r0:#x})"),
                },
                serde_json::json!({"end": "exited", "r0": r0, "name": name, "steps": s.position()}),
            )
        }
        Some(EndKind::Fault(f)) => (
            format!("fault: {f}"),
            serde_json::json!({"end": "fault", "message": f.to_string(), "steps": s.position()}),
        ),
        Some(EndKind::Divergence { message }) => (
            format!("divergence from the recording: {message}"),
            serde_json::json!({"end": "divergence", "message": message, "steps": s.position()}),
        ),
        None => (
            "the run did not end".to_string(),
            serde_json::json!({"end": "none", "steps": s.position()}),
        ),
    };
    if args.json {
        writeln!(out, "{end_json}")?;
    } else {
        writeln!(out, "{end_text} after {} steps", s.position())?;
    }
    out.flush()?;
    Ok(())
}
