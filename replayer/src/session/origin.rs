//! `origin`: where the value in a register or memory came from. Walks back
//! from the current position to the step that last wrote the location,
//! and from there through moves, stack spills and fills, map reads and
//! returns from functions, until the value was computed, loaded from a
//! constant, the packet or the context, or produced by a helper.

use bpfrr_trace::catalog::helper_name;
use bpfrr_trace::isa::{AluOp, CallTarget, Insn, Operand};

use super::core::{Session, SessionError};
use super::info::describe_value;
use super::memo::SessionEnv;
use super::undo::Item;
use crate::expr::Location;
use crate::vm::{Effect, RegionKind, SourceLine, split_address};

/// One step of the chain: the step that wrote the followed location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OriginLink {
    /// The step's number (the position before it).
    pub step: u64,
    pub prog: usize,
    pub pc: usize,
    pub line: Option<SourceLine>,
    pub text: String,
    /// What the step did to the value: `moved from r7`, `spilled r2 to fp-8`,
    /// `filled from fp-8`, `read from map_value(blocked)+0`.
    pub what: String,
    /// The location it wrote.
    pub location: Location,
}

/// Where the chain ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OriginEnd {
    /// A constant in the program (`r1 = 5`, `ld_imm64`, a store of an immediate).
    Constant,
    /// Computed by an ALU or atomic instruction (the last link).
    Computed,
    /// Returned in r0 by this helper.
    HelperReturn { helper: String },
    /// Written to memory by this helper (an output argument, a map value it returned).
    HelperOutput { helper: String },
    /// Read from the packet.
    Packet,
    /// Read from the context.
    Context,
    /// Nothing in this run wrote it: the value was there when the run started.
    Initial,
    /// Something the chain does not follow (said in words).
    Other(String),
}

/// The answer to `origin`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    pub location: Location,
    /// Newest first.
    pub chain: Vec<OriginLink>,
    pub end: OriginEnd,
}

/// Longest chain followed.
const MAX_LINKS: usize = 64;

fn overlaps(loc: &Location, region: u32, offset: u32, len: usize) -> bool {
    let Location::Mem { addr, len: l } = *loc else {
        return false;
    };
    let (id, off) = split_address(addr);
    id == region && off < offset as i64 + len as i64 && (offset as i64) < off + l as i64
}

fn covers(loc: &Location, addr: u64, size: usize) -> bool {
    let Location::Mem { addr: a, len } = *loc else {
        return false;
    };
    let (i1, o1) = split_address(a);
    let (i2, o2) = split_address(addr);
    i1 == i2 && o2 <= o1 && o1 + len as i64 <= o2 + size as i64
}

impl<E: SessionEnv> Session<E> {
    /// Whether the newest logged step wrote `loc`.
    fn last_step_wrote(&self, loc: &Location) -> bool {
        let Some((items, _, _)) = self.log.last() else {
            return false;
        };
        items.iter().any(|item| match (item, loc) {
            (Item::Reg { reg, .. }, Location::Reg { reg: r, .. }) => reg == r,
            (
                Item::Store {
                    region,
                    offset,
                    len,
                    ..
                },
                _,
            ) => overlaps(loc, *region, *offset, *len as usize),
            (Item::Rare(i), _) => match self.log.rare(*i) {
                Some(Effect::Reg { reg, .. }) => {
                    matches!(loc, Location::Reg { reg: r, .. } if r == reg)
                }
                Some(Effect::Store(w)) => overlaps(loc, w.region, w.offset, w.len as usize),
                Some(Effect::Write {
                    region,
                    offset,
                    old,
                }) => overlaps(loc, *region, *offset, old.len()),
                Some(Effect::RegionCreated { id }) | Some(Effect::RegionReplaced { id, .. }) => {
                    matches!(loc, Location::Mem { addr, .. } if split_address(*addr).0 == *id)
                }
                _ => false,
            },
            _ => false,
        })
    }

    /// Where the value of `text` (a register or memory expression) at the
    /// current position came from. The session ends where it started.
    pub fn origin(&mut self, text: &str) -> Result<Origin, SessionError> {
        let v = self.eval(text)?;
        let Some(start_loc) = v.location else {
            return Err(SessionError::invalid(format!(
                "`{text}` is a computed value; ask for the origin of a register or memory, e.g. r3"
            )));
        };
        let start = self.position();
        let result = self.follow(start_loc);
        self.seek(start);
        Ok(result)
    }

    fn follow(&mut self, start_loc: Location) -> Origin {
        let mut loc = start_loc;
        let mut chain = Vec::new();
        let end = loop {
            if self.position() == 0 || chain.len() >= MAX_LINKS {
                break OriginEnd::Initial;
            }
            self.ensure_log();
            let wrote = self.last_step_wrote(&loc);
            if !self.backward_one() {
                break OriginEnd::Initial;
            }
            if !wrote {
                continue;
            }
            let (prog, pc) = (self.prog(), self.pc());
            let Some(insn) = self.machine.program(prog).and_then(|p| p.insn(pc)).copied() else {
                break OriginEnd::Other("an instruction the session cannot decode".into());
            };
            let regs = self.machine.regs().to_vec();
            let place = |s: &Self, a: u64| {
                describe_value(a, s.machine.memory(), s.machine.frames(), &s.info)
                    .text()
                    .map_or_else(|| format!("{a:#x}"), str::to_string)
            };
            let mut next = None;
            let (what, end): (String, Option<OriginEnd>) = match insn {
                Insn::Alu {
                    op: AluOp::Mov,
                    src: Operand::Reg(s),
                    ..
                }
                | Insn::MovSx { src: s, .. } => {
                    next = Some(Location::Reg { reg: s, width: 8 });
                    (format!("moved from r{s}"), None)
                }
                Insn::Alu {
                    op: AluOp::Mov,
                    src: Operand::Imm(k),
                    ..
                } => (
                    format!("set to the constant {k}"),
                    Some(OriginEnd::Constant),
                ),
                Insn::LoadImm64 { imm, .. } => (
                    format!("loaded the 64-bit constant {imm:#x}"),
                    Some(OriginEnd::Constant),
                ),
                Insn::Load { src, off, size, .. } => {
                    let a = regs[src as usize].wrapping_add(off as i64 as u64);
                    let (id, _) = split_address(a);
                    let kind = self.machine.memory().region(id).map(|r| r.kind().clone());
                    let p = place(self, a);
                    match kind {
                        Some(RegionKind::Packet) => (
                            format!("read from the packet at {p}"),
                            Some(OriginEnd::Packet),
                        ),
                        Some(RegionKind::Context) => (
                            format!("read from the context at {p}"),
                            Some(OriginEnd::Context),
                        ),
                        Some(RegionKind::Stack { .. }) => {
                            next = Some(Location::Mem {
                                addr: a,
                                len: size.bytes() as u32,
                            });
                            (format!("filled from {p}"), None)
                        }
                        _ => {
                            next = Some(Location::Mem {
                                addr: a,
                                len: size.bytes() as u32,
                            });
                            (format!("read from {p}"), None)
                        }
                    }
                }
                Insn::LoadPacket { .. } => ("read from the packet".into(), Some(OriginEnd::Packet)),
                Insn::Store {
                    dst,
                    off,
                    size,
                    src,
                    ..
                } => {
                    let a = regs[dst as usize].wrapping_add(off as i64 as u64);
                    let p = place(self, a);
                    match src {
                        Operand::Reg(s) if covers(&loc, a, size.bytes()) => {
                            next = Some(Location::Reg { reg: s, width: 8 });
                            (format!("spilled r{s} to {p}"), None)
                        }
                        Operand::Reg(s) => (
                            format!("partly written from r{s} at {p}"),
                            Some(OriginEnd::Other(format!(
                                "only part of the value was written here (from r{s})"
                            ))),
                        ),
                        Operand::Imm(k) => (
                            format!("stored the constant {k} at {p}"),
                            Some(OriginEnd::Constant),
                        ),
                    }
                }
                Insn::Call(CallTarget::Helper(id)) => {
                    let name = helper_name(id).unwrap_or("an unknown helper").to_string();
                    if matches!(loc, Location::Reg { reg: 0, .. }) {
                        (
                            format!("returned by {name}"),
                            Some(OriginEnd::HelperReturn { helper: name }),
                        )
                    } else {
                        (
                            format!("written by {name}"),
                            Some(OriginEnd::HelperOutput { helper: name }),
                        )
                    }
                }
                Insn::Exit if matches!(loc, Location::Reg { reg: 6..=9, .. }) => {
                    // Callee-saved registers come back from before the call:
                    // continue before the call instruction.
                    let depth = self.frames().len();
                    while self.frames().len() >= depth && self.backward_one() {}
                    next = Some(loc);
                    ("restored on return from a function".into(), None)
                }
                Insn::Atomic { .. } => (
                    "changed by an atomic operation".into(),
                    Some(OriginEnd::Computed),
                ),
                Insn::Call(_) | Insn::Exit => (
                    "set by a call or return".into(),
                    Some(OriginEnd::Other("set up by a call or return".into())),
                ),
                _ => ("computed".into(), Some(OriginEnd::Computed)),
            };
            chain.push(OriginLink {
                step: self.position(),
                prog,
                pc,
                line: self
                    .machine
                    .program(prog)
                    .and_then(|p| p.line_of(pc))
                    .cloned(),
                text: self.insn_text(prog, pc),
                what,
                location: loc,
            });
            if let Some(e) = end {
                break e;
            }
            if let Some(n) = next {
                loc = n;
            }
        };
        // Steps recorded in the chain are positions before each writer step;
        // the exit case moved further back, which is fine: the link keeps its own.
        Origin {
            location: start_loc,
            chain,
            end,
        }
    }
}
