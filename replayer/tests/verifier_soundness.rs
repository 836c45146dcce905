//! The soundness check on real kernel recordings: every committed sample
//! trace, every invocation, stays quiet; a verifier log doctored to claim
//! a tighter bound than the real value makes it fire at the right step,
//! instruction, register and value; a log of other instructions is refused.

use std::path::{Path, PathBuf};

use bpfrr_replayer::replay::Replayer;
use bpfrr_replayer::session::Session;
use bpfrr_replayer::verifier::VerifierLog;
use bpfrr_replayer::verifier::compare::{
    Beliefs, Checker, MapSizes, Place, ProgramBeliefs, SoundnessReport, StepCheck, Unchecked,
    check_invocation,
};
use bpfrr_trace::isa::RawInsn;
use bpfrr_trace::trace::Trace;

fn traces() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/traces");
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("samples/traces")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "bpfrr"))
        .collect();
    out.sort();
    assert!(out.len() >= 4, "the committed sample traces are there");
    out
}

fn open(name: &str) -> Trace {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../samples/traces")
        .join(name);
    Trace::open(&p).expect("sample trace opens")
}

fn check_trace(trace: &Trace, beliefs: &Beliefs) -> Vec<SoundnessReport> {
    let mut replayer = Replayer::new(trace);
    let mut out = Vec::new();
    for i in 0..trace.invocation_count() {
        let mut s = Session::for_invocation(&mut replayer, i).expect("session");
        out.push(check_invocation(&mut s, beliefs));
        s.finish_into(&mut replayer, i);
    }
    out
}

/// Every position of invocation `index`, checked in order.
fn step_checks(trace: &Trace, beliefs: &Beliefs, index: u64) -> Vec<StepCheck> {
    let mut replayer = Replayer::new(trace);
    let mut s = Session::for_invocation(&mut replayer, index).expect("session");
    let mut checker = Checker::new(beliefs);
    let mut out = Vec::new();
    while !s.at_end() {
        out.push(checker.check(&s));
        let before = s.position();
        s.goto(before + 1);
        assert!(s.position() > before, "the sample runs to its exit");
    }
    out
}

fn insns(trace: &Trace, prog: usize) -> Vec<RawInsn> {
    trace.programs()[prog]
        .insns
        .iter()
        .map(|b| RawInsn::from_bytes(*b))
        .collect()
}

fn map_sizes(trace: &Trace) -> Vec<MapSizes> {
    trace
        .maps()
        .iter()
        .map(|m| MapSizes {
            key_size: m.key_size,
            value_size: m.value_size,
        })
        .collect()
}

/// Beliefs from the trace, with program `prog`'s log replaced by `log`.
fn beliefs_with_log(trace: &Trace, prog: usize, log: &str) -> Beliefs {
    let programs = (0..trace.programs().len())
        .map(|p| {
            let text = if p == prog {
                log.to_string()
            } else {
                trace.programs()[p].verifier.as_ref()?.log.clone()
            };
            Some(ProgramBeliefs::new(
                VerifierLog::parse(&text),
                &insns(trace, p),
            ))
        })
        .collect();
    Beliefs::new(programs, map_sizes(trace))
}

#[test]
fn every_invocation_of_every_sample_trace_is_quiet() {
    let mut totals = (0u64, 0u64, 0u64, 0u64);
    for path in traces() {
        let trace = Trace::open(&path).expect("trace opens");
        let beliefs = Beliefs::from_trace(&trace);
        // Each program's log is the original program's and its instruction
        // indices are the recorded instructions' (opcodes agree everywhere).
        for (i, p) in trace.programs().iter().enumerate() {
            assert!(
                p.verifier.is_some(),
                "{}: program {i} has a log",
                path.display()
            );
            assert_eq!(
                beliefs.unchecked(i),
                None,
                "{}: program {i}",
                path.display()
            );
            let log = beliefs.program(i).unwrap().log();
            assert!(log.insns.len() > 10 && !log.visits.is_empty());
        }
        let reports = check_trace(&trace, &beliefs);
        assert_eq!(reports.len() as u64, trace.invocation_count());
        for (i, r) in reports.iter().enumerate() {
            let flags: Vec<String> = r.flags.iter().map(|f| f.to_string()).collect();
            assert!(
                r.is_clean(),
                "{} invocation {i}: {}",
                path.display(),
                flags.join("\n")
            );
            assert!(r.steps > 0);
            assert_eq!(
                r.steps_checked,
                r.steps,
                "{} #{i}: {:?}",
                path.display(),
                r.unchecked
            );
            assert!(r.steps_strict > 0 && r.values_checked > r.steps);
            totals.0 += r.steps;
            totals.1 += r.steps_strict;
            totals.2 += r.values_checked;
            totals.3 += r.relaxed;
        }
    }
    eprintln!(
        "soundness: {} steps checked ({} on explored paths), {} values, {} relaxed, 0 flags",
        totals.0, totals.1, totals.2, totals.3
    );
}

/// Replaces the `umax` bound of `R{reg}=scalar(...)` after the `;` of
/// `line` with `umax`, leaving the other bounds unknown.
fn doctor_umax(line: &str, reg: u8, umax: u64) -> Option<String> {
    let semi = line.find(';')?;
    let key = format!("R{reg}=scalar(");
    let start = semi + line[semi..].find(&key)?;
    let end = start + line[start..].find(')')? + 1;
    // `var_off=(0x0; 0x3c)` has its own parentheses: find the real end.
    let end = if line[start..end].contains("var_off=(") {
        end + line[end..].find(')')? + 1
    } else {
        end
    };
    if !line[start..end].contains("umax") {
        return None;
    }
    Some(format!(
        "{}R{reg}=scalar(umax={umax:#x}){}",
        &line[..start],
        &line[end..]
    ))
}

#[test]
fn a_doctored_bound_fires_at_that_step_instruction_register_and_value() {
    let trace = open("sock_filter.bpfrr");
    let original = trace.programs()[0].verifier.as_ref().unwrap().log.clone();
    let clean = step_checks(&trace, &Beliefs::from_trace(&trace), 0);
    assert!(clean.iter().all(|c| c.flags().is_empty()));
    // The first step on an explored path where a register holds a scalar
    // the previous instruction set: tighten the bound the log printed for
    // it below the real value.
    let mut doctored = None;
    'find: for w in clean.windows(2) {
        let (prev, here) = (&w[0], &w[1]);
        if here.relaxed {
            continue;
        }
        for v in &here.values {
            let Place::Reg(r) = v.place else { continue };
            if v.value == 0 || v.value > 0xffff || !v.states.iter().all(|s| s.starts_with("scalar"))
            {
                continue;
            }
            let prefix = format!("{}: (", prev.insn);
            let mut changed = false;
            let text: Vec<String> = original
                .lines()
                .map(|l| {
                    if l.starts_with(&prefix)
                        && let Some(d) = doctor_umax(l, r, v.value - 1)
                    {
                        changed = true;
                        return d;
                    }
                    l.to_string()
                })
                .collect();
            if changed {
                doctored = Some((here.step, here.insn, r, v.value, text.join("\n") + "\n"));
                break 'find;
            }
        }
    }
    let (step, insn, reg, value, log) = doctored.expect("a scalar set by the previous instruction");
    let beliefs = beliefs_with_log(&trace, 0, &log);
    assert_eq!(beliefs.unchecked(0), None);
    let mut replayer = Replayer::new(&trace);
    let mut s = Session::for_invocation(&mut replayer, 0).unwrap();
    let report = check_invocation(&mut s, &beliefs);
    let first = report.flags.first().expect("the doctored state fires");
    assert_eq!(
        (first.step, first.insn, first.reg.as_str(), first.value),
        (step, insn, format!("r{reg}").as_str(), value),
        "{first}"
    );
    assert_eq!(first.described, value.to_string());
    assert_eq!(first.states, vec![format!("scalar(0..{})", value - 1)]);
    assert!(first.to_string().contains("lies outside every state"));
    // Only that register is wrong; the other invocations' positions are untouched.
    assert!(report.flags.iter().all(|f| f.reg == format!("r{reg}")));
}

#[test]
fn a_doctored_pointer_offset_fires() {
    // sock_filter: `r3 = r10; r3 += -24` — claim fp-16 instead.
    let trace = open("sock_filter.bpfrr");
    let original = trace.programs()[0].verifier.as_ref().unwrap().log.clone();
    let log: String = original
        .lines()
        .map(|l| {
            if l.starts_with("5: (07) r3 += -24") {
                l.replace("R3=fp-24", "R3=fp-16")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert_ne!(log, original.trim_end(), "the sample's log has the line");
    let beliefs = beliefs_with_log(&trace, 0, &log);
    let mut replayer = Replayer::new(&trace);
    let mut s = Session::for_invocation(&mut replayer, 0).unwrap();
    let report = check_invocation(&mut s, &beliefs);
    let f = report.flags.first().expect("fires");
    assert_eq!(
        (f.insn, f.reg.as_str(), f.described.as_str()),
        (6, "r3", "fp-24")
    );
    assert_eq!(f.states, vec!["fp-16".to_string()]);
}

#[test]
fn a_log_of_other_instructions_is_not_compared() {
    let trace = open("sock_filter.bpfrr");
    let log = &trace.programs()[0].verifier.as_ref().unwrap().log;
    let mut shifted = insns(&trace, 0);
    shifted.rotate_left(1);
    let pb = ProgramBeliefs::new(VerifierLog::parse(log), &shifted);
    match pb.unchecked() {
        Some(Unchecked::Mismatch { insn, .. }) => assert_eq!(*insn, 0),
        other => panic!("{other:?}"),
    }
    let beliefs = Beliefs::new(vec![Some(pb)], map_sizes(&trace));
    let mut replayer = Replayer::new(&trace);
    let mut s = Session::for_invocation(&mut replayer, 0).unwrap();
    let report = check_invocation(&mut s, &beliefs);
    assert!(report.is_clean());
    assert_eq!(report.steps_checked, 0);
    let (reason, n) = report.unchecked.iter().next().unwrap();
    assert!(
        reason.contains("does not match the recorded instructions"),
        "{reason}"
    );
    assert_eq!(*n, report.steps);
    // A cut-short log is not compared either: it does not cover every path.
    let lines: Vec<&str> = log.lines().collect();
    let cut = lines[..lines.len() * 2 / 3].join("\n");
    let pb = ProgramBeliefs::new(VerifierLog::parse(&cut), &insns(&trace, 0));
    assert_eq!(pb.unchecked(), Some(&Unchecked::Incomplete));
}
