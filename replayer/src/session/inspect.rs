//! Looking at the current position: expressions, values described by
//! region, the instruction text, and what the last step changed (also the
//! per-step `log`).

use bpfrr_trace::isa::{DisasmOptions, format_insn};

use super::core::{Session, SessionError};
use super::info::{ValueDesc, describe_value};
use super::memo::SessionEnv;
use super::undo::Item;
use crate::expr::{self, Scope, Value};
use crate::vm::{CallRecord, Effect, SourceLine, address};

/// A register a step changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegChange {
    pub reg: u8,
    pub old: u64,
    pub new: u64,
}

/// Memory a step changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemChange {
    /// Tagged address of the first byte.
    pub addr: u64,
    /// The address described (`fp-8`, `pkt+12`, `map_value(blocked)+0`).
    pub place: String,
    pub old: Vec<u8>,
    pub new: Vec<u8>,
}

/// One executed step, as `bpfrr log` prints it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepRecord {
    /// The step's number: the position before it (the first step is 0).
    pub step: u64,
    pub prog: usize,
    pub pc: usize,
    pub line: Option<SourceLine>,
    /// The instruction (llvm-objdump syntax, helper names).
    pub text: String,
    pub regs: Vec<RegChange>,
    pub mem: Vec<MemChange>,
    /// Helper and kfunc calls the step made (and what they answered).
    pub calls: Vec<CallRecord>,
    /// Frames pushed or popped, regions created or replaced, packet moves.
    pub notes: Vec<String>,
}

impl<E: SessionEnv> Session<E> {
    /// What expressions are evaluated against at the current position.
    pub fn scope(&self) -> Scope<'_> {
        Scope {
            regs: self.machine.regs(),
            frames: self.machine.frames(),
            memory: self.machine.memory(),
            info: &self.info,
        }
    }

    /// Evaluates an expression (see [`crate::expr`]).
    pub fn eval(&self, text: &str) -> Result<Value, SessionError> {
        Ok(expr::evaluate(text, &self.scope())?)
    }

    /// `print/FMT EXPR` without the word `print`: `"/x r3"`, `"pkt[12:14]"`.
    pub fn print(&self, text: &str) -> Result<String, SessionError> {
        Ok(expr::print(text, &self.scope())?)
    }

    /// What a 64-bit value points to, for the register pane.
    pub fn describe_value(&self, value: u64) -> ValueDesc {
        describe_value(
            value,
            self.machine.memory(),
            self.machine.frames(),
            &self.info,
        )
    }

    /// The text of instruction `pc` of program `prog`.
    pub fn insn_text(&self, prog: usize, pc: usize) -> String {
        let Some(p) = self.machine.program(prog) else {
            return format!("<no program {prog}>");
        };
        match p.insn(pc) {
            Some(i) => format_insn(
                i,
                pc,
                &DisasmOptions {
                    helper_names: true,
                    label: None,
                },
            ),
            None => "<second slot of ld_imm64>".into(),
        }
    }

    /// The step that led to the current position (None at position 0).
    pub fn last_step(&mut self) -> Option<StepRecord> {
        self.ensure_log();
        let (items, pc_before, _) = self.log.last()?;
        let st = &self.machine.state;
        let mut regs = st.regs;
        let mut touched = [false; 16];
        let mut mem = Vec::new();
        let mut calls = Vec::new();
        let mut notes = Vec::new();
        let mut pc = pc_before.resolve(st.pc);
        let mut prog = self.machine.current_prog();
        let describe = |a: u64| {
            describe_value(a, &st.mem, &st.frames, &self.info)
                .text()
                .map_or_else(|| format!("{a:#x}"), str::to_string)
        };
        let bytes_now = |region: u32, offset: u32, len: usize| -> Vec<u8> {
            st.mem
                .region(region)
                .and_then(|r| r.bytes().get(offset as usize..offset as usize + len))
                .map_or_else(Vec::new, <[u8]>::to_vec)
        };
        for item in items {
            match item {
                Item::Reg { reg, xor } => {
                    let r = (reg & 15) as usize;
                    regs[r] ^= xor;
                    touched[r] = true;
                }
                Item::Store {
                    region,
                    offset,
                    len,
                    xor,
                } => {
                    let new = bytes_now(region, offset, len as usize);
                    let old: Vec<u8> = new
                        .iter()
                        .zip(xor.to_le_bytes())
                        .map(|(a, b)| a ^ b)
                        .collect();
                    let a = address(region, offset as u64);
                    mem.push(MemChange {
                        addr: a,
                        place: describe(a),
                        old,
                        new,
                    });
                }
                Item::Rare(i) => match self.log.rare(i) {
                    Some(Effect::Store(w)) => {
                        let new = bytes_now(w.region, w.offset, w.len as usize);
                        let a = address(w.region, w.offset as u64);
                        mem.push(MemChange {
                            addr: a,
                            place: describe(a),
                            old: w.old.to_le_bytes()[..(w.len as usize).min(8)].to_vec(),
                            new,
                        });
                    }
                    Some(Effect::Write {
                        region,
                        offset,
                        old,
                    }) => {
                        let a = address(*region, *offset as u64);
                        mem.push(MemChange {
                            addr: a,
                            place: describe(a),
                            old: old.to_vec(),
                            new: bytes_now(*region, *offset, old.len()),
                        });
                    }
                    Some(Effect::Called(c)) => calls.push((**c).clone()),
                    Some(Effect::FramePushed { .. }) => {
                        notes.push(format!("frame {} pushed", st.frames.len() - 1))
                    }
                    Some(Effect::FramePopped { frame, .. }) => {
                        prog = frame.prog;
                        notes.push(format!("frame {} popped", st.frames.len()));
                    }
                    Some(Effect::FrameReplaced { old, .. }) => {
                        prog = old.prog;
                        notes.push(format!("tail call from program {}", old.prog));
                    }
                    Some(Effect::RegionCreated { id }) => {
                        if let Some(r) = st.mem.region(*id) {
                            notes.push(format!("new region: {}", r.kind()));
                        }
                    }
                    Some(Effect::RegionReplaced { id, .. }) => {
                        if let Some(r) = st.mem.region(*id) {
                            notes.push(format!("region changed: {}", r.kind()));
                        }
                    }
                    Some(Effect::PacketData { .. }) => notes.push("packet pointers moved".into()),
                    Some(Effect::Reg { reg, old }) => {
                        regs[(*reg & 15) as usize] = *old;
                        touched[(*reg & 15) as usize] = true;
                    }
                    None => {}
                },
                Item::Ctl(i) => {
                    if let Some(c) = self.log.ctl(i) {
                        pc = c.pc;
                    }
                }
                Item::Calls(_) => {}
            }
        }
        mem.reverse();
        calls.reverse();
        notes.reverse();
        let regs: Vec<RegChange> = (0..11)
            .filter(|&r| touched[r] && regs[r] != st.regs[r])
            .map(|r| RegChange {
                reg: r as u8,
                old: regs[r],
                new: st.regs[r],
            })
            .collect();
        let line = self
            .machine
            .program(prog)
            .and_then(|p| p.line_of(pc))
            .cloned();
        Some(StepRecord {
            step: self.position() - 1,
            prog,
            pc,
            line,
            text: self.insn_text(prog, pc),
            regs,
            mem,
            calls,
            notes,
        })
    }

    /// Every step from the current position to the end, one record each
    /// (`bpfrr log`). Go to position 0 first for the whole execution.
    pub fn log(&mut self) -> LogIter<'_, E> {
        LogIter { s: self }
    }
}

/// The iterator of [`Session::log`].
pub struct LogIter<'s, E: SessionEnv> {
    s: &'s mut Session<E>,
}

impl<E: SessionEnv> Iterator for LogIter<'_, E> {
    type Item = StepRecord;

    fn next(&mut self) -> Option<StepRecord> {
        if self.s.at_end() {
            return None;
        }
        let before = self.s.position();
        self.s.forward_one();
        // A faulting instruction is not executed: nothing to log.
        if self.s.position() == before {
            return None;
        }
        self.s.last_step()
    }
}
