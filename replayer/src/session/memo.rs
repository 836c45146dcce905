//! The environment as a session sees it: a memo of every answer the real
//! environment gave, in call order.
//!
//! Execution is deterministic, so the k-th environment call of a run is
//! always the same call. The real environment (a recording's cursor, map
//! models) is therefore only ever asked once per call, at the furthest
//! point the session has executed; whenever the session re-executes
//! earlier steps (after stepping back, or from a checkpoint) the memo
//! replays the recorded answer: the same memory changes and the same
//! outcome (a load through a BTF pointer is an answer too). Nothing in the
//! environment ever has to move backwards, so any `Env` works in a session
//! unchanged.

use crate::vm::{
    Effect, EffectList, Env, Fault, FaultKind, HelperCall, HelperOutcome, Memory, Region, RegionId,
};

use bpfrr_trace::isa::Imm64Kind;

/// What a session needs from an environment beyond answering calls.
pub trait SessionEnv: Env {
    /// Where the environment found the run contradicting its recording
    /// (helper id or order), if it did. Asked right after a call that failed.
    fn divergence(&self) -> Option<String> {
        None
    }

    /// The name of the kfunc with this BTF id, when the environment knows
    /// it (from the trace's or the kernel's BTF), for what a session shows.
    fn kfunc_name(&self, _btf_id: i32) -> Option<&str> {
        None
    }
}

impl SessionEnv for crate::env::ModelEnv {
    fn kfunc_name(&self, btf_id: i32) -> Option<&str> {
        crate::env::ModelEnv::kfunc_name(self, btf_id)
    }
}
impl SessionEnv for crate::vm::NoHelpers {}
impl SessionEnv for crate::vm::UbpfHelpers {}

/// A memory change a call made, with the bytes it left (to redo it).
#[derive(Clone, Debug)]
enum Redo {
    Write {
        region: RegionId,
        offset: u32,
        bytes: Box<[u8]>,
    },
    Create {
        id: RegionId,
        region: Box<Region>,
    },
    Replace {
        id: RegionId,
        region: Box<Region>,
    },
    PacketData {
        data: u32,
    },
}

#[derive(Clone, Debug)]
enum Reply {
    Helper(Result<HelperOutcome, Fault>),
    Imm(Result<u64, Fault>),
    /// A load through a BTF pointer (`Env::btf_load`).
    Load(Result<Option<u64>, Fault>),
}

/// One remembered answer.
#[derive(Clone, Debug)]
struct Answer {
    prog: usize,
    pc: usize,
    redo: Vec<Redo>,
    reply: Reply,
    divergence: Option<String>,
}

/// The real environment behind a memo of its answers.
pub struct EnvMemo<E> {
    pub(crate) real: E,
    answers: Vec<Answer>,
    cursor: usize,
}

impl<E: SessionEnv> EnvMemo<E> {
    pub fn new(real: E) -> EnvMemo<E> {
        EnvMemo {
            real,
            answers: Vec::new(),
            cursor: 0,
        }
    }

    /// Calls answered so far at the session's current position.
    pub fn cursor(&self) -> usize {
        self.cursor
    }

    pub fn set_cursor(&mut self, c: usize) {
        self.cursor = c.min(self.answers.len());
    }

    /// The divergence the answer at `index` reported, if any.
    pub fn divergence_at(&self, index: usize) -> Option<&str> {
        self.answers.get(index)?.divergence.as_deref()
    }

    /// Number of answers remembered.
    pub fn answers(&self) -> usize {
        self.answers.len()
    }

    fn answer<T: Clone>(
        &mut self,
        call: &mut HelperCall<'_>,
        ask: impl FnOnce(&mut E, &mut HelperCall<'_>) -> Result<T, Fault>,
        wrap: fn(Result<T, Fault>) -> Reply,
        unwrap: fn(&Reply) -> Option<Result<T, Fault>>,
    ) -> Result<T, Fault> {
        if let Some(a) = self.answers.get(self.cursor) {
            let reply = if a.prog == call.prog && a.pc == call.pc {
                unwrap(&a.reply)
            } else {
                None
            };
            let Some(reply) = reply else {
                return Err(call.fault(FaultKind::Helper {
                    id: -1,
                    message: format!(
                        "the session's memo of environment answers is out of step (call {} was at instruction {}, not {}); this is a bpfrr bug",
                        self.cursor, a.pc, call.pc
                    ),
                }));
            };
            for r in &a.redo {
                redo(call, r);
            }
            self.cursor += 1;
            return reply;
        }
        let mut local = EffectList::default();
        let result = {
            let mut inner = HelperCall {
                args: call.args,
                prog: call.prog,
                pc: call.pc,
                tail_calls: call.tail_calls,
                mem: &mut *call.mem,
                log: Some(&mut local),
            };
            ask(&mut self.real, &mut inner)
        };
        let redo: Vec<Redo> = local.iter().filter_map(|e| redo_of(call.mem, &e)).collect();
        if let Some(log) = call.log.as_deref_mut() {
            for e in local.iter() {
                log.push(e.into_owned());
            }
        }
        let divergence = if result.is_err() {
            self.real.divergence()
        } else {
            None
        };
        self.answers.push(Answer {
            prog: call.prog,
            pc: call.pc,
            redo,
            reply: wrap(result.clone()),
            divergence,
        });
        self.cursor += 1;
        result
    }
}

/// The "after" side of an effect a call made, read from memory right after it.
fn redo_of(mem: &Memory, e: &Effect) -> Option<Redo> {
    Some(match e {
        Effect::Write {
            region,
            offset,
            old,
        } => {
            let o = *offset as usize;
            let bytes = mem.region(*region)?.bytes().get(o..o + old.len())?;
            Redo::Write {
                region: *region,
                offset: *offset,
                bytes: bytes.into(),
            }
        }
        Effect::RegionCreated { id } => Redo::Create {
            id: *id,
            region: Box::new(mem.region(*id)?.clone()),
        },
        Effect::RegionReplaced { id, .. } => Redo::Replace {
            id: *id,
            region: Box::new(mem.region(*id)?.clone()),
        },
        Effect::PacketData { .. } => Redo::PacketData {
            data: mem.packet_data_offset(),
        },
        _ => return None,
    })
}

/// Applies a remembered change, logging its undo as the original call did.
fn redo(call: &mut HelperCall<'_>, r: &Redo) {
    let effect = match r {
        Redo::Write {
            region,
            offset,
            bytes,
        } => {
            let o = *offset as usize;
            let old: Box<[u8]> = call
                .mem
                .region(*region)
                .and_then(|r| r.bytes().get(o..o + bytes.len()))
                .map_or_else(|| bytes.clone(), Into::into);
            call.mem.restore(*region, *offset, bytes);
            Effect::Write {
                region: *region,
                offset: *offset,
                old,
            }
        }
        Redo::Create { id, region } => {
            // Ids are handed out in order, so this is `id` again.
            let got = call.mem.alloc(region.kind().clone(), Vec::new(), false);
            call.mem.put_region(got, (**region).clone());
            let _ = id;
            Effect::RegionCreated { id: got }
        }
        Redo::Replace { id, region } => {
            let old = call.mem.region(*id).cloned();
            call.mem.put_region(*id, (**region).clone());
            match old {
                Some(old) => Effect::RegionReplaced {
                    id: *id,
                    old: Box::new(old),
                },
                None => return,
            }
        }
        Redo::PacketData { data } => {
            let old_data = call.mem.packet_data_offset();
            call.mem.set_packet_data_offset(*data);
            Effect::PacketData { old_data }
        }
    };
    if let Some(log) = call.log.as_deref_mut() {
        log.push(effect);
    }
}

impl<E: SessionEnv> Env for EnvMemo<E> {
    fn call_helper(&mut self, id: i32, call: &mut HelperCall<'_>) -> Result<HelperOutcome, Fault> {
        self.answer(
            call,
            |e, c| e.call_helper(id, c),
            Reply::Helper,
            helper_reply,
        )
    }

    fn resume(
        &mut self,
        callee: crate::vm::Callee,
        state: u64,
        callback_r0: u64,
        call: &mut HelperCall<'_>,
    ) -> Result<HelperOutcome, Fault> {
        self.answer(
            call,
            |e, c| e.resume(callee, state, callback_r0, c),
            Reply::Helper,
            helper_reply,
        )
    }

    fn call_kfunc(
        &mut self,
        btf_id: i32,
        module: i16,
        call: &mut HelperCall<'_>,
    ) -> Result<HelperOutcome, Fault> {
        self.answer(
            call,
            |e, c| e.call_kfunc(btf_id, module, c),
            Reply::Helper,
            helper_reply,
        )
    }

    fn btf_load(
        &mut self,
        addr: u64,
        size: usize,
        call: &mut HelperCall<'_>,
    ) -> Result<Option<u64>, Fault> {
        self.answer(
            call,
            |e, c| e.btf_load(addr, size, c),
            Reply::Load,
            |r| match r {
                Reply::Load(v) => Some(v.clone()),
                _ => None,
            },
        )
    }

    fn resolve_imm64(
        &mut self,
        kind: Imm64Kind,
        imm: u64,
        call: &mut HelperCall<'_>,
    ) -> Result<u64, Fault> {
        self.answer(
            call,
            |e, c| e.resolve_imm64(kind, imm, c),
            Reply::Imm,
            |r| match r {
                Reply::Imm(v) => Some(v.clone()),
                _ => None,
            },
        )
    }
}

fn helper_reply(r: &Reply) -> Option<Result<HelperOutcome, Fault>> {
    match r {
        Reply::Helper(v) => Some(v.clone()),
        _ => None,
    }
}
