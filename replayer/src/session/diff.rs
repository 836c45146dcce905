//! Comparing two invocations of the same programs: the first step where
//! their paths split, the instruction that decided it, and the register
//! values it read in each (`bpfrr diff TRACE A B`).

use bpfrr_trace::isa::{Insn, Operand};

use super::core::{EndKind, Session};
use super::memo::SessionEnv;
use crate::vm::SourceLine;

/// A register as the deciding instruction saw it in each run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiffRegister {
    pub reg: u8,
    pub a: u64,
    pub b: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DiffReport {
    /// Both runs took the same path to the end.
    Same {
        steps: u64,
        a: Option<EndKind>,
        b: Option<EndKind>,
    },
    /// At `step` both ran instruction `pc`; afterwards A was at `a_next` and B at `b_next`.
    Split {
        step: u64,
        prog: usize,
        pc: usize,
        line: Option<SourceLine>,
        text: String,
        a_next: usize,
        b_next: usize,
        /// The registers the instruction read (for a conditional jump), else those that differ.
        regs: Vec<DiffRegister>,
    },
    /// The paths agree, but one run ended at `step` while the other went on.
    Ended {
        step: u64,
        a: Option<EndKind>,
        b: Option<EndKind>,
    },
}

/// Runs both sessions from the start in lockstep and reports where their
/// paths split. Both sessions end at the split (or at the end).
pub fn diff<A: SessionEnv, B: SessionEnv>(a: &mut Session<A>, b: &mut Session<B>) -> DiffReport {
    a.seek(0);
    b.seek(0);
    loop {
        let here = (a.prog(), a.pc()) != (b.prog(), b.pc());
        if here {
            if a.position() == 0 {
                return split(a, b, Vec::new());
            }
            a.backward_one();
            b.backward_one();
            return split_after(a, b);
        }
        let (ea, eb) = (a.at_end(), b.at_end());
        if ea || eb {
            let ka = a.end().map(|e| e.kind.clone()).filter(|_| ea);
            let kb = b.end().map(|e| e.kind.clone()).filter(|_| eb);
            return if ea && eb {
                DiffReport::Same {
                    steps: a.position(),
                    a: ka,
                    b: kb,
                }
            } else {
                DiffReport::Ended {
                    step: a.position(),
                    a: ka,
                    b: kb,
                }
            };
        }
        a.forward_one();
        b.forward_one();
    }
}

/// Both sessions are before the deciding step: report it.
fn split_after<A: SessionEnv, B: SessionEnv>(a: &mut Session<A>, b: &mut Session<B>) -> DiffReport {
    let insn = a
        .machine
        .program(a.prog())
        .and_then(|p| p.insn(a.pc()))
        .copied();
    let read: Vec<u8> = match insn {
        Some(Insn::Jump { dst, src, .. }) => match src {
            Operand::Reg(s) => vec![dst, s],
            Operand::Imm(_) => vec![dst],
        },
        Some(Insn::Exit) => vec![0],
        Some(Insn::Call(_)) => vec![0, 1, 2, 3, 4, 5],
        _ => Vec::new(),
    };
    let regs: Vec<DiffRegister> = if read.is_empty() {
        (0..11u8)
            .filter(|&r| a.regs()[r as usize] != b.regs()[r as usize])
            .map(|r| DiffRegister {
                reg: r,
                a: a.regs()[r as usize],
                b: b.regs()[r as usize],
            })
            .collect()
    } else {
        read.iter()
            .map(|&r| DiffRegister {
                reg: r,
                a: a.regs()[r as usize],
                b: b.regs()[r as usize],
            })
            .collect()
    };
    // Look one step ahead in each to say where they went, then come back.
    let mut report = split(a, b, regs);
    a.forward_one();
    b.forward_one();
    if let DiffReport::Split { a_next, b_next, .. } = &mut report {
        *a_next = a.pc();
        *b_next = b.pc();
    }
    a.backward_one();
    b.backward_one();
    report
}

fn split<A: SessionEnv, B: SessionEnv>(
    a: &Session<A>,
    b: &Session<B>,
    regs: Vec<DiffRegister>,
) -> DiffReport {
    DiffReport::Split {
        step: a.position(),
        prog: a.prog(),
        pc: a.pc(),
        line: a.line().cloned(),
        text: a.insn_text(a.prog(), a.pc()),
        a_next: a.pc(),
        b_next: b.pc(),
        regs,
    }
}
