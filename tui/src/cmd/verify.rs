//! `bpfrr verify OBJ [--prog NAME] [--batch] [--json]`: loads programs of
//! a BPF object into the kernel without attaching them, captures the
//! verifier's level-2 log and statistics, and shows what the verifier
//! believed at each instruction; for a rejected program, the failing
//! instruction, the path that reached it with the states along it, and a
//! plain explanation with a fix hint.
//!
//! Loading needs root (or CAP_BPF + CAP_PERFMON); the rendering is pure
//! (see [`render_text`]) so it is testable without a kernel.
//!
//! Exit status: 0 when every program was accepted, 2 when the kernel
//! rejected one (the analysis is printed either way), 1 on other errors.
//!
//! `bpfrr verify TRACE --invocation N [--batch] [--json]`: given a trace
//! instead of an object, no kernel is needed: the verifier log stored in
//! the trace is set beside the replay of invocation N (see [`trace_view`]).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::PathBuf;

use bpfrr_replayer::verifier::{BranchDecision, FrameState, InsnVisit, VerifierLog, VisitKind};
use serde::Serialize;

#[derive(clap::Args)]
pub struct Args {
    /// The BPF object file (ELF from clang -target bpf), or a trace: then
    /// the recorded verifier log is compared with a replayed invocation.
    pub object: PathBuf,
    /// With a trace: the invocation to replay beside the verifier's beliefs.
    #[arg(long, short = 'i', value_name = "N")]
    pub invocation: Option<u64>,
    /// Only this program (default: every program in the file).
    #[arg(long = "prog", value_name = "NAME")]
    pub prog: Option<String>,
    /// Print the analysis as text (the interactive view is not there yet,
    /// so this is also what runs without it).
    #[arg(long)]
    pub batch: bool,
    /// Print the analysis as JSON (parsed log, error, explanation).
    #[arg(long, conflicts_with = "raw")]
    pub json: bool,
    /// Print the verifier's raw log instead of the analysis.
    #[arg(long)]
    pub raw: bool,
    /// Also write each program's log to DIR/<object>.<program>.log.
    #[arg(long, value_name = "DIR")]
    pub save_log: Option<PathBuf>,
    /// Analyse (and save) at most the last this many bytes of a log (a
    /// program the verifier gives up on can log gigabytes).
    #[arg(long, value_name = "BYTES", default_value_t = 16 << 20)]
    pub max_log_bytes: usize,
}

/// What loading one program produced.
#[derive(Clone, Debug, Serialize)]
pub struct Capture {
    pub program: String,
    /// bpftool's name of the program type (`xdp`, `sched_cls`...).
    pub prog_type: String,
    pub accepted: bool,
    /// The load's errno name when rejected (`EACCES`, `EINVAL`...).
    pub errno: Option<String>,
    /// The verifier log (possibly only its end, see `log_trimmed`).
    pub log: String,
    /// True when the kernel's log or bpfrr's `--max-log-bytes` cut off the
    /// log's beginning.
    pub log_trimmed: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if trace_view::is_trace(&args.object) {
        return trace_view::run(&args);
    }
    if args.invocation.is_some() {
        anyhow::bail!(
            "--invocation needs a trace, and {} is not one (record one with bpfrr record)",
            args.object.display()
        );
    }
    let captures = capture(&args)?;
    if let Some(dir) = &args.save_log {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
        let stem = object_stem(&args.object);
        for c in &captures {
            let path = dir.join(format!("{stem}.{}.log", c.program));
            std::fs::write(&path, &c.log)
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
        }
    }
    if args.json {
        let out: Vec<JsonReport> = captures.iter().map(json_report).collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
        exit_if_rejected(&captures);
        return Ok(());
    }
    if !args.batch && !args.raw && std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        for c in &captures {
            let verdict = if c.accepted {
                "accepted".to_string()
            } else {
                format!("REJECTED ({})", c.errno.as_deref().unwrap_or("error"))
            };
            let title = format!(" {} ({}): {verdict}", c.program, c.prog_type);
            crate::ui::verify_view::run_verify_view(&VerifierLog::parse(&c.log), &title)?;
        }
        exit_if_rejected(&captures);
        return Ok(());
    }
    if !args.batch && !args.raw {
        eprintln!(
            "note: stdout is not a terminal, so the interactive verifier view is not opened; printing the --batch text."
        );
    }
    for (i, c) in captures.iter().enumerate() {
        if i > 0 {
            println!();
        }
        if args.raw {
            print!("{}", c.log);
        } else {
            print!("{}", render_text(c, &VerifierLog::parse(&c.log)));
        }
    }
    exit_if_rejected(&captures);
    Ok(())
}

/// Exit status 2 when the kernel rejected a program (1 is for errors), so
/// scripts can tell a rejection from a failure to load at all.
fn exit_if_rejected(captures: &[Capture]) {
    use std::io::Write as _;
    if captures.iter().any(|c| !c.accepted) {
        let _ = std::io::stdout().flush();
        std::process::exit(2);
    }
}

fn object_stem(path: &std::path::Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    name.trim_end_matches(".o")
        .trim_end_matches(".bpf")
        .to_string()
}

/// Keeps at most the last `max` bytes, starting at a line boundary.
fn trim_log(log: String, max: usize) -> (String, bool) {
    if log.len() <= max {
        return (log, false);
    }
    let mut start = log.len() - max;
    while !log.is_char_boundary(start) {
        start += 1;
    }
    let start = log[start..].find('\n').map_or(start, |i| start + i + 1);
    (log[start..].to_string(), true)
}

#[cfg(target_os = "linux")]
fn capture(args: &Args) -> anyhow::Result<Vec<Capture>> {
    use bpfrr_recorder::load::{LoadError, LoadOptions, LoadedObject};
    use bpfrr_trace::catalog::ProgType;

    let mut obj = LoadedObject::open(&args.object)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.object.display()))?;
    let names = match &args.prog {
        Some(p) => {
            let all = obj.program_names();
            if !all.contains(p) {
                anyhow::bail!(
                    "{} has no program {p:?}; its programs: {}",
                    args.object.display(),
                    all.join(", ")
                );
            }
            vec![p.clone()]
        }
        None => obj.program_names(),
    };
    if names.is_empty() {
        anyhow::bail!(
            "{} has no programs (no functions in SEC(\"...\") sections)",
            args.object.display()
        );
    }
    let type_of = |obj: &LoadedObject, name: &str| {
        obj.object
            .programs()
            .into_iter()
            .find(|p| p.name == name)
            .and_then(|p| ProgType::from_number(p.prog_type))
            .map_or("unknown".to_string(), |t| t.name().to_string())
    };
    let mut out = Vec::new();
    for name in names {
        let prog_type = type_of(&obj, &name);
        let (accepted, errno, log, truncated) =
            match obj.load_program(&name, &LoadOptions::default()) {
                Ok(p) => (true, None, p.log, p.log_truncated),
                Err(LoadError::Rejected { errno, log, .. }) => (false, Some(errno), log, false),
                Err(e) => return Err(anyhow::anyhow!("{}: {e}", args.object.display())),
            };
        let (log, trimmed) = trim_log(log, args.max_log_bytes);
        out.push(Capture {
            program: name,
            prog_type,
            accepted,
            errno,
            log,
            log_trimmed: trimmed || truncated,
        });
    }
    Ok(out)
}

#[cfg(not(target_os = "linux"))]
fn capture(_args: &Args) -> anyhow::Result<Vec<Capture>> {
    anyhow::bail!("bpfrr verify loads the program into the Linux kernel; it runs on Linux only")
}

#[derive(Serialize)]
struct JsonReport<'a> {
    program: &'a str,
    prog_type: &'a str,
    accepted: bool,
    errno: Option<&'a str>,
    log_trimmed: bool,
    explanation: Option<bpfrr_replayer::verifier::Explanation>,
    /// Instruction indices of the path to the error.
    path_to_error: Vec<usize>,
    analysis: VerifierLog,
}

fn json_report(c: &Capture) -> JsonReport<'_> {
    let log = VerifierLog::parse(&c.log);
    JsonReport {
        program: &c.program,
        prog_type: &c.prog_type,
        accepted: c.accepted,
        errno: c.errno.as_deref(),
        log_trimmed: c.log_trimmed,
        explanation: log.error.as_ref().map(|e| e.kind.explain()),
        path_to_error: log.path_to_error().iter().map(|v| v.insn).collect(),
        analysis: log,
    }
}

/// How many distinct after-states to list per instruction.
const STATES_PER_INSN: usize = 3;
/// Longest path printed whole; longer ones keep their start and end.
const PATH_HEAD: usize = 20;
const PATH_TAIL: usize = 80;

/// The text report for one program.
pub fn render_text(c: &Capture, log: &VerifierLog) -> String {
    let mut out = String::new();
    let verdict = if c.accepted {
        "accepted by the verifier".to_string()
    } else {
        format!(
            "REJECTED by the verifier ({})",
            c.errno.as_deref().unwrap_or("error")
        )
    };
    let _ = writeln!(out, "program {} ({}): {verdict}", c.program, c.prog_type);
    if let Some(s) = &log.stats {
        let mut line = format!(
            "  {} instructions processed (limit {})",
            s.insns_processed, s.insn_limit
        );
        if let Some(t) = s.total_states {
            let _ = write!(line, ", {t} states");
        }
        if let Some(p) = s.peak_states {
            let _ = write!(line, " (peak {p})");
        }
        if !s.stack_depths.is_empty() {
            let d: Vec<String> = s.stack_depths.iter().map(u32::to_string).collect();
            let _ = write!(line, ", stack {} bytes", d.join("+"));
        }
        if let Some(us) = s.verification_time_usec {
            let _ = write!(line, ", {us} us");
        }
        let _ = writeln!(out, "{line}");
    }
    if c.log_trimmed {
        let _ = writeln!(
            out,
            "  (the log was too long: only its end was kept and analysed)"
        );
    }
    out.push('\n');
    match (&log.error, c.accepted) {
        (Some(_), _) | (None, false) => render_rejected(&mut out, log),
        (None, true) => render_accepted(&mut out, log),
    }
    out
}

/// `r2: pkt_end  r3: pkt(off=0,r=14)`: what the log printed after a visit.
fn delta_text(v: &InsnVisit) -> String {
    v.changed
        .as_ref()
        .map(FrameState::compact)
        .unwrap_or_default()
}

fn source_text(v: &InsnVisit) -> Option<String> {
    let s = v.source.as_ref()?;
    Some(match (&s.file, s.line) {
        (Some(f), Some(n)) => format!("; {}   [{f}:{n}]", s.text),
        _ => format!("; {}", s.text),
    })
}

fn insn_line(log: &VerifierLog, insn: usize, frame: u32, state: &str) -> String {
    let text = log.insn_text(insn).map_or("?", |t| t.text.as_str());
    let frame = if frame > 0 {
        format!(" [frame {frame}]")
    } else {
        String::new()
    };
    if state.is_empty() {
        format!("{insn:>5}: {text}{frame}")
    } else {
        format!("{insn:>5}: {text:<36}{frame} {state}")
    }
}

fn render_accepted(out: &mut String, log: &VerifierLog) {
    let _ = writeln!(
        out,
        "per instruction: the kernel's disassembly, then the registers and stack slots as the verifier saw them right after it (one line per distinct state, on each path it explored):"
    );
    let mut last_source: Option<String> = None;
    for &insn in log.insns.keys() {
        let visits: Vec<&InsnVisit> = log.states_at(insn).collect();
        let executed: Vec<&InsnVisit> = visits
            .iter()
            .copied()
            .filter(|v| v.kind == VisitKind::Executed)
            .collect();
        if let Some(src) = executed
            .first()
            .and_then(|v| source_text(v))
            .or_else(|| log.sources.get(&insn).map(|s| format!("; {}", s.text)))
            && last_source.as_ref() != Some(&src)
        {
            let _ = writeln!(out, "{src}");
            last_source = Some(src);
        }
        if executed.is_empty() {
            let note = if visits.is_empty() {
                "(never reached: dead code on every path)"
            } else {
                "(reached only at pruning points)"
            };
            let _ = writeln!(out, "{}", insn_line(log, insn, 0, note));
            continue;
        }
        let mut distinct: Vec<String> = Vec::new();
        for v in &executed {
            let d = delta_text(v);
            if !distinct.contains(&d) {
                distinct.push(d);
            }
        }
        // A visit with nothing printed after it says nothing new.
        if distinct.len() > 1 {
            distinct.retain(|d| !d.is_empty());
        }
        let mut notes = Vec::new();
        if executed.len() > 1 {
            notes.push(format!("{} visits", executed.len()));
        }
        let pruned = visits.len() - executed.len();
        if pruned > 0 {
            notes.push(format!("pruned {pruned}x"));
        }
        let decisions: BTreeSet<&'static str> = executed
            .iter()
            .filter_map(|v| v.branch)
            .map(|b| match b {
                BranchDecision::Taken => "jump always taken",
                BranchDecision::FallThrough => "jump never taken",
                BranchDecision::Both { .. } => "both ways explored",
                BranchDecision::Unknown => "direction unknown",
            })
            .collect();
        notes.extend(decisions.into_iter().map(str::to_string));
        let first = &distinct[0];
        let mut line = insn_line(log, insn, executed[0].frame, first);
        if !notes.is_empty() {
            let _ = write!(line, "   [{}]", notes.join(", "));
        }
        let _ = writeln!(out, "{line}");
        for d in distinct.iter().skip(1).take(STATES_PER_INSN - 1) {
            let _ = writeln!(out, "{:>43} {d}", "|");
        }
        if distinct.len() > STATES_PER_INSN {
            let _ = writeln!(
                out,
                "{:>43} ... {} more distinct states",
                "|",
                distinct.len() - STATES_PER_INSN
            );
        }
    }
}

fn render_rejected(out: &mut String, log: &VerifierLog) {
    let Some(err) = &log.error else {
        let _ = writeln!(
            out,
            "the kernel rejected the program but its log ends without an error message; the raw log follows:\n{}",
            log_tail_text(log)
        );
        return;
    };
    match err.insn {
        Some(i) => {
            let _ = writeln!(out, "error at instruction {i}: {}", err.headline());
        }
        None => {
            let _ = writeln!(out, "error (whole program): {}", err.headline());
        }
    }
    for l in err.message.lines().skip(1) {
        let _ = writeln!(out, "  {l}");
    }
    out.push('\n');
    let path = log.path_to_error();
    if err.insn.is_some() && !path.is_empty() {
        let _ = writeln!(
            out,
            "the path that reached it ({} instructions; after each, the registers and slots it changed):",
            path.len()
        );
        let mut last_source: Option<String> = None;
        let n = path.len();
        for (k, v) in path.iter().enumerate() {
            if n > PATH_HEAD + PATH_TAIL && k == PATH_HEAD {
                let _ = writeln!(
                    out,
                    "      ... {} instructions ...",
                    n - PATH_HEAD - PATH_TAIL
                );
            }
            if n > PATH_HEAD + PATH_TAIL && k >= PATH_HEAD && k < n - PATH_TAIL {
                continue;
            }
            if let Some(src) = source_text(v)
                && last_source.as_ref() != Some(&src)
            {
                let _ = writeln!(out, "{src}");
                last_source = Some(src);
            }
            if let Some((from, to)) = v.from {
                let _ = writeln!(out, "      (the branch at {from} taken to {to})");
            }
            let last = k + 1 == n;
            if last {
                let _ = writeln!(out, "{}", insn_line(log, v.insn, v.frame, ""));
                let before = FrameState {
                    frame: v.frame,
                    regs: v.regs.clone(),
                    stack: v.stack.clone(),
                    refs: v.refs.clone(),
                    ..FrameState::default()
                };
                let _ = writeln!(out, "       state here: {}", before.compact());
                let _ = writeln!(out, "       ^ {}", err.headline());
            } else {
                let _ = writeln!(out, "{}", insn_line(log, v.insn, v.frame, &delta_text(v)));
            }
        }
        out.push('\n');
    }
    let e = err.kind.explain();
    let _ = writeln!(out, "why: {}", e.title);
    let _ = writeln!(out, "  {}", e.explanation);
    let _ = writeln!(out, "fix: {}", e.fix);
}

fn log_tail_text(log: &VerifierLog) -> String {
    log.unparsed
        .iter()
        .rev()
        .take(20)
        .rev()
        .map(|(_, l)| l.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

/// `bpfrr verify TRACE --invocation N`: what the verifier believed next to
/// what really happened, one line per executed step:
///
/// ```text
///    17  insn 12  r1 = *(u8 *)(r10 - 15)     r10: fp0 = fp0  ->  r1: scalar(0..255) = 17
/// ```
///
/// each register the instruction reads as `rN: <verifier's states> = <real
/// value before>`, then after `->` each register it writes with the states
/// and the value after it. Soundness flags follow their step on a `!!`
/// line. Exit status 3 when there are flags.
mod trace_view {
    use std::fmt::Write as _;
    use std::io::{Read as _, Write as _};
    use std::path::Path;

    use bpfrr_replayer::session::{EndKind, Session, SessionEnv};
    use bpfrr_replayer::verifier::compare::{
        Beliefs, Checker, Coverage, SoundnessFlag, SoundnessReport, StepCheck, insn_regs,
    };
    use bpfrr_replayer::verifier::{InsnVisit, RegState};
    use bpfrr_trace::trace::{MAGIC, Trace};
    use serde::Serialize;

    use super::Args;
    use crate::commands::{Debugger, view};

    /// Whether the file starts with a trace's magic.
    pub fn is_trace(path: &Path) -> bool {
        let mut head = [0u8; 8];
        std::fs::File::open(path)
            .and_then(|mut f| f.read_exact(&mut head))
            .is_ok()
            && head == MAGIC
    }

    /// One register next to the verifier's belief about it.
    #[derive(Serialize)]
    struct RegView {
        reg: String,
        /// `read` (values before the instruction) or `write` (after it).
        access: &'static str,
        /// The verifier's distinct states (`?` = not initialised).
        verifier: Vec<String>,
        value: u64,
        /// `17`, `pkt+14`, `fp-8`.
        real: String,
    }

    #[derive(Serialize)]
    struct StepView {
        step: u64,
        program: usize,
        insn: usize,
        frame: u32,
        text: String,
        file: Option<String>,
        line: Option<u32>,
        source: Option<String>,
        /// Verifier visits compared with (0 when the step is not covered).
        visits: usize,
        /// The run has passed a pruning point.
        relaxed: bool,
        /// Why the step was not compared, if it was not.
        unchecked: Option<String>,
        regs: Vec<RegView>,
        flags: Vec<SoundnessFlag>,
    }

    #[derive(Serialize)]
    struct Report<'a> {
        trace: String,
        invocation: u64,
        program: String,
        steps: Vec<StepView>,
        end: serde_json::Value,
        soundness: &'a SoundnessReport,
    }

    fn distinct(states: impl Iterator<Item = String>) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for s in states {
            if !out.contains(&s) {
                out.push(s);
            }
        }
        out
    }

    fn compact(r: Option<&RegState>) -> String {
        r.map_or_else(|| "?".to_string(), RegState::compact)
    }

    fn real<E: SessionEnv>(s: &Session<E>, v: u64) -> String {
        view::points_to(s, v).unwrap_or_else(|| bpfrr_replayer::verifier::compare::format_scalar(v))
    }

    fn unchecked_text(c: &StepCheck) -> Option<String> {
        match &c.coverage {
            Coverage::Checked => None,
            Coverage::NoState => Some(
                "the verifier reached this instruction only at pruning points that print no state"
                    .into(),
            ),
            Coverage::NeverVisited => {
                Some("the verifier never reached this instruction in this frame".into())
            }
            Coverage::Unchecked(u) => Some(u.message()),
        }
    }

    pub fn run(args: &Args) -> anyhow::Result<()> {
        let trace = Trace::open(&args.object)?;
        let index = args.invocation.unwrap_or(0);
        let beliefs = Beliefs::from_trace(&trace);
        let mut debugger = Debugger::new(&trace, index).map_err(anyhow::Error::msg)?;
        let prog_type = debugger.prog_type();
        let s = debugger.session_mut();
        s.goto(0);
        let mut checker = Checker::new(&beliefs);
        let mut report = SoundnessReport::default();
        let mut steps: Vec<StepView> = Vec::new();
        loop {
            let exited = s.end().is_some_and(|e| {
                e.position == s.position() && matches!(e.kind, EndKind::Exited(_))
            });
            if exited {
                break;
            }
            let c = checker.check(s);
            report.add(&c);
            let log = beliefs.program(c.prog).map(|p| p.log());
            let visits: Vec<&InsnVisit> = log
                .map(|l| c.candidates.iter().map(|&i| &l.visits[i]).collect())
                .unwrap_or_default();
            let insn = s
                .machine()
                .program(c.prog)
                .and_then(|p| p.insn(c.insn))
                .copied();
            let (reads, writes) = insn.as_ref().map(insn_regs).unwrap_or_default();
            let line = s.line().cloned();
            let mut regs: Vec<RegView> = reads
                .iter()
                .map(|&r| {
                    let v = s.regs()[r as usize];
                    RegView {
                        reg: format!("r{r}"),
                        access: "read",
                        verifier: distinct(visits.iter().map(|x| compact(x.reg(r)))),
                        value: v,
                        real: real(s, v),
                    }
                })
                .collect();
            let mut view = StepView {
                step: c.step,
                program: c.prog,
                insn: c.insn,
                frame: c.frame,
                text: s.insn_text(c.prog, c.insn),
                file: line.as_ref().map(|l| l.file.clone()),
                line: line.as_ref().map(|l| l.line),
                source: line
                    .as_ref()
                    .map(|l| l.text.trim().to_string())
                    .filter(|t| !t.is_empty()),
                visits: c.visits,
                relaxed: c.relaxed,
                unchecked: unchecked_text(&c),
                regs: Vec::new(),
                flags: c.flags(),
            };
            let before = s.position();
            if !s.at_end() {
                s.goto(before + 1);
            }
            if s.position() > before {
                for &r in &writes {
                    let v = s.regs()[r as usize];
                    let after = visits.iter().map(|x| {
                        let text = log.and_then(|l| l.insn_text(x.insn));
                        compact(x.state_after(text).reg(r))
                    });
                    regs.push(RegView {
                        reg: format!("r{r}"),
                        access: "write",
                        verifier: distinct(after),
                        value: v,
                        real: real(s, v),
                    });
                }
            }
            view.regs = regs;
            steps.push(view);
            if s.position() == before {
                break;
            }
        }
        let (end_text, end_json) = match s.end().map(|e| &e.kind) {
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
        let program = trace
            .invocation(index)
            .ok()
            .and_then(|inv| trace.programs().get(inv.program.to_native() as usize))
            .map_or_else(String::new, |p| p.name.clone());
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        if args.json {
            let r = Report {
                trace: args.object.display().to_string(),
                invocation: index,
                program,
                steps,
                end: end_json,
                soundness: &report,
            };
            serde_json::to_writer_pretty(&mut out, &r)?;
            writeln!(out)?;
        } else {
            if !args.batch {
                eprintln!(
                    "note: printing the --batch text; to step through it interactively, open the trace with `bpfrr replay TRACE --invocation {index}` (its Verifier pane is key 0)."
                );
            }
            write!(out, "{}", render(&args.object, index, &program, &steps))?;
            writeln!(out, "{end_text} after {} steps", s.position())?;
            writeln!(out, "{}", summary(&report))?;
        }
        out.flush()?;
        if !report.is_clean() {
            std::process::exit(3);
        }
        Ok(())
    }

    fn summary(r: &SoundnessReport) -> String {
        let mut t = format!(
            "soundness: {} of {} steps compared with the verifier's states ({} on paths it explored, the rest past pruning points), {} values, {} flag{}",
            r.steps_checked,
            r.steps,
            r.steps_strict,
            r.values_checked,
            r.flags.len(),
            if r.flags.len() == 1 { "" } else { "s" }
        );
        for (why, n) in &r.unchecked {
            let _ = write!(t, "\n  {n} steps not compared: {why}");
        }
        t
    }

    fn reg_text(r: &RegView) -> String {
        format!("{}: {} = {}", r.reg, r.verifier.join(" | "), r.real)
    }

    fn render(path: &Path, index: u64, program: &str, steps: &[StepView]) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} invocation {index} ({program}): what the verifier believed next to what really happened",
            path.display()
        );
        let _ = writeln!(
            out,
            "each register: the verifier's states = the real value (before the instruction for registers it reads; after `->`, the registers it writes)"
        );
        let mut last_source: Option<String> = None;
        let mut relaxed = false;
        for st in steps {
            if let Some(src) = &st.source {
                let here = match (&st.file, st.line) {
                    (Some(f), Some(l)) => format!("; {src}   [{f}:{l}]"),
                    _ => format!("; {src}"),
                };
                if last_source.as_ref() != Some(&here) {
                    let _ = writeln!(out, "{here}");
                    last_source = Some(here);
                }
            }
            if st.relaxed && !relaxed && st.unchecked.is_none() {
                let _ = writeln!(
                    out,
                    "      (the run reached a point where the verifier pruned: from here its states are those of the explored paths that covered it)"
                );
            }
            relaxed = st.relaxed;
            let reads: Vec<String> = st
                .regs
                .iter()
                .filter(|r| r.access == "read")
                .map(reg_text)
                .collect();
            let writes: Vec<String> = st
                .regs
                .iter()
                .filter(|r| r.access == "write")
                .map(reg_text)
                .collect();
            let mut line = format!("{:>5}  insn {:<4} {:<34}", st.step, st.insn, st.text);
            if let Some(why) = &st.unchecked {
                let _ = write!(line, " (not compared: {why})");
            } else {
                if !reads.is_empty() {
                    let _ = write!(line, " {}", reads.join("  "));
                }
                if !writes.is_empty() {
                    let _ = write!(line, "  ->  {}", writes.join("  "));
                }
            }
            let _ = writeln!(out, "{}", line.trim_end());
            for f in &st.flags {
                let _ = writeln!(out, "      !! soundness: {f}");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_at_a_line_boundary() {
        let (t, cut) = trim_log("aaaa\nbbbb\ncccc\n".to_string(), 7);
        assert!(cut);
        assert_eq!(t, "cccc\n");
        let (t, cut) = trim_log("ab\n".to_string(), 7);
        assert!(!cut);
        assert_eq!(t, "ab\n");
    }

    #[test]
    fn stems() {
        assert_eq!(
            object_stem(std::path::Path::new("a/xdp_fw.bpf.o")),
            "xdp_fw"
        );
    }
}
