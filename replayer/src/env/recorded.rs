//! `RecordedEnv`: the VM's environment during replay. It answers helper and
//! kfunc calls from one recorded invocation, in order, and keeps the map
//! models of a [`ModelEnv`] alongside.
//!
//! The recording is authoritative: every call must match the next recorded
//! event (same instruction, same helper or kfunc), its recorded output bytes
//! are written through the argument pointers, and its recorded r0 is
//! returned. A call that does not match is a *divergence*: the env remembers
//! it ([`RecordedEnv::divergence`]) and stops the machine with a fault, so
//! replay never panics and never goes on past the point where it went wrong.
//!
//! What the recording cannot say by itself comes from the model:
//! - pointers: a map lookup returns a `MapValue` region holding the recorded
//!   value bytes (the recorder stores them as output [`RETURNED_MEMORY_ARG`]),
//!   the same region for repeated lookups of the same key, so writes through
//!   it are visible; `bpf_ringbuf_reserve` returns a `RingbufRecord` region of
//!   the requested size;
//! - global data (`.data`, `.bss`, `.rodata`): the program reads it directly,
//!   so nothing is recorded; it lives in the models and carries over from one
//!   invocation to the next;
//! - packet changes made by helpers (`bpf_xdp_adjust_head`,
//!   `bpf_skb_store_bytes`, checksum helpers): the model carries them out when
//!   the kernel says they succeeded;
//! - packet dynptrs (`bpf_dynptr_from_xdp/skb`, slices, the dynptr kfuncs
//!   and the helpers `bpf_dynptr_read/write/data` on them): the model
//!   carries them out on the VM's memory (a slice is a VM pointer into the
//!   packet) and the recorded r0 checks the result;
//! - callbacks (`bpf_loop`, `bpf_for_each_map_elem`): the model runs the loop,
//!   the callbacks' own calls are matched against the recording in order, and
//!   the helper's own event (which the recorder writes when the helper
//!   returns, so after the callbacks' events) is checked at the end.
//!
//! Map-changing helpers are also run on the models (shadowed) so they follow
//! the program; when a model and the recording disagree (a lookup finds a
//! different value, an update returns a different result) the env adds a
//! [`Note`]: another CPU or userspace changed the map. Notes never change the
//! replay.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::rc::Rc;
use std::sync::OnceLock;

use bpfrr_trace::catalog::{HelperSpec, OutSize, RetKind, helper, helper_by_name, helper_name};
use bpfrr_trace::isa::Imm64Kind;
use bpfrr_trace::trace::{ArchivedInvocation, EventKind, Invocation};

use super::dynptr::{self, DynptrHelper, DynptrKfunc, Returns};
use super::iter_num::{self, IterNumKfunc};
use super::model::ModelEnv;
use crate::limits::{MAX_DYNPTR_SIZE, MAX_ENV_MEMORY_PER_INVOCATION, MAX_RETURNED_MEMORY};
use crate::maps::{BPF_ANY, Model};
use crate::vm::{
    Callee, Env, Fault, FaultKind, HelperCall, HelperOutcome, Memory, RegionId, RegionKind, address,
};

/// `HelperOutput::arg` of the memory a call returned a pointer to (r0): the
/// value bytes of a successful map lookup, the contents of a reserved ring
/// buffer record. Arguments proper are 1-5.
pub const RETURNED_MEMORY_ARG: u8 = 0;

/// `HelperEvent::id` of a `TailCall` event whose slot was empty (execution
/// fell through).
pub const NO_TAIL_CALL_TARGET: u32 = u32::MAX;

/// One recorded helper, kfunc or tail call, borrowed from a trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedCall<'a> {
    /// Index of the call instruction in the program that made it.
    pub insn: u32,
    pub kind: EventKind,
    /// Helper id, kfunc BTF id, or (tail calls) the program that ran next.
    pub id: u32,
    /// r0 after the call.
    pub ret: u64,
    /// `(arg, bytes)`: bytes written through argument `arg` (1-5), or the
    /// returned memory ([`RETURNED_MEMORY_ARG`]).
    pub outputs: Vec<(u8, &'a [u8])>,
}

impl<'a> RecordedCall<'a> {
    /// The bytes recorded for argument `arg`, if any.
    pub fn output(&self, arg: u8) -> Option<&'a [u8]> {
        self.outputs
            .iter()
            .find(|(a, _)| *a == arg)
            .map(|(_, b)| *b)
    }

    /// What was called, in words: `bpf_map_lookup_elem`, `kfunc 1234`,
    /// `bpf_tail_call to program 2`.
    pub fn describe(&self) -> String {
        describe_call(self.kind, self.id)
    }
}

/// The recorded calls of an invocation read in place from a trace.
pub fn recorded_calls(invocation: &ArchivedInvocation) -> Vec<RecordedCall<'_>> {
    invocation
        .events
        .iter()
        .map(|e| RecordedCall {
            insn: e.insn.to_native(),
            kind: e.kind.to_native(),
            id: e.id.to_native(),
            ret: e.ret.to_native(),
            outputs: e.outputs.iter().map(|o| (o.arg, &o.bytes[..])).collect(),
        })
        .collect()
}

/// The recorded calls of an owned invocation.
pub fn recorded_calls_owned(invocation: &Invocation) -> Vec<RecordedCall<'_>> {
    invocation
        .events
        .iter()
        .map(|e| RecordedCall {
            insn: e.insn,
            kind: e.kind,
            id: e.id,
            ret: e.ret,
            outputs: e.outputs.iter().map(|o| (o.arg, &o.bytes[..])).collect(),
        })
        .collect()
}

/// The loads through BTF pointers of an invocation read from a trace,
/// `(instruction, value)` in execution order.
pub fn recorded_btf_loads(invocation: &ArchivedInvocation) -> Vec<(u32, u64)> {
    invocation
        .btf_loads
        .iter()
        .map(|l| (l.insn.to_native(), l.value.to_native()))
        .collect()
}

/// The same for an owned invocation.
pub fn recorded_btf_loads_owned(invocation: &Invocation) -> Vec<(u32, u64)> {
    invocation
        .btf_loads
        .iter()
        .map(|l| (l.insn, l.value))
        .collect()
}

/// A call described for messages.
pub fn describe_call(kind: EventKind, id: u32) -> String {
    match kind {
        EventKind::Helper => match helper_name(id as i32) {
            Some(name) => name.to_string(),
            None => format!("helper {id}"),
        },
        EventKind::Kfunc => format!("kfunc {id}"),
        EventKind::TailCall if id == NO_TAIL_CALL_TARGET => {
            "bpf_tail_call (empty slot, fell through)".to_string()
        }
        EventKind::TailCall => format!("bpf_tail_call to program {id}"),
    }
}

/// Something the replay noticed that does not make it wrong: the models
/// disagree with the recording (another CPU or userspace changed a map), or
/// a model cannot follow a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    /// Machine program index (= trace program id) and instruction of the call.
    pub prog: usize,
    pub insn: u32,
    pub message: String,
}

/// Where the replay stopped matching the recording's calls.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallDivergence {
    /// Machine program index (= trace program id) and instruction of the call.
    pub prog: usize,
    pub insn: u32,
    /// Index of the recorded event the replay was at (None: past the last one).
    pub event: Option<usize>,
    /// The divergence is at a load through a BTF pointer: `event` indexes
    /// the invocation's recorded BTF loads, not its calls.
    pub btf_load: bool,
    pub message: String,
}

/// What the env needs to know about the trace's programs and maps,
/// shared by the invocations of one replay.
#[derive(Clone, Debug, Default)]
pub struct ReplayTables {
    /// Per machine program (= trace program id): trace map ids in fd_array
    /// order (`Program::used_maps`), for `BPF_PSEUDO_MAP_IDX` references.
    pub used_maps: Vec<Vec<u32>>,
    /// Per trace map: the model is a stand-in (bpfrr does not model the
    /// map's type), so it cannot be compared with the recording.
    pub unmodelled: Vec<bool>,
    /// Per machine program: the loads through BTF pointers its verifier
    /// log shows (sorted instruction indices).
    pub btf_load_insns: Vec<Vec<u32>>,
}

/// How a helper call is run on the models besides being answered from the recording.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shadow {
    /// Not at all (its results are fully recorded, or it has no state).
    Skip,
    /// Run it so the models follow (printk text, ring buffer records, redirects).
    Follow,
    /// Run it and note when its r0 differs from the recorded one (map updates).
    Check,
    /// Only when the kernel says it succeeded (r0 == 0): it changes the packet.
    CheckIfOk,
}

/// Per-helper decisions, computed once.
struct Policy {
    shadow: Vec<Shadow>,
    tail_call: i32,
    bpf_loop: i32,
    for_each: i32,
    ringbuf_submit: i32,
    ringbuf_discard: i32,
    /// Lookups the model implements (the others get regions of their own).
    modelled_lookups: [i32; 2],
}

fn policy() -> &'static Policy {
    static POLICY: OnceLock<Policy> = OnceLock::new();
    POLICY.get_or_init(|| {
        let id = |name: &str| helper_by_name(name).map_or(-1, |h| h.id as i32);
        let mut shadow = vec![Shadow::Skip; bpfrr_trace::catalog::helpers().len()];
        let mut set = |names: &[&str], s: Shadow| {
            for n in names {
                if let Ok(i) = usize::try_from(id(n))
                    && let Some(slot) = shadow.get_mut(i)
                {
                    *slot = s;
                }
            }
        };
        set(
            &[
                "map_update_elem",
                "map_delete_elem",
                "map_push_elem",
                "map_pop_elem",
                "map_peek_elem",
            ],
            Shadow::Check,
        );
        set(
            &[
                "trace_printk",
                "trace_vprintk",
                "snprintf",
                "ringbuf_output",
                "perf_event_output",
                "redirect",
                "redirect_map",
            ],
            Shadow::Follow,
        );
        set(
            &[
                "xdp_adjust_head",
                "xdp_adjust_tail",
                "xdp_adjust_meta",
                "xdp_store_bytes",
                "skb_store_bytes",
                "l3_csum_replace",
                "l4_csum_replace",
            ],
            Shadow::CheckIfOk,
        );
        Policy {
            shadow,
            tail_call: id("tail_call"),
            bpf_loop: id("loop"),
            for_each: id("for_each_map_elem"),
            ringbuf_submit: id("ringbuf_submit"),
            ringbuf_discard: id("ringbuf_discard"),
            modelled_lookups: [id("map_lookup_elem"), id("map_lookup_percpu_elem")],
        }
    })
}

impl Policy {
    fn shadow(&self, id: i32) -> Shadow {
        usize::try_from(id)
            .ok()
            .and_then(|i| self.shadow.get(i).copied())
            .unwrap_or(Shadow::Skip)
    }
}

/// Identifies a returned-memory region the env made itself (no model
/// region), so a repeated lookup of the same key returns the same region.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct OwnKey {
    helper: i32,
    map: Option<u32>,
    key: Vec<u8>,
}

/// The replay environment of one invocation. Create it with the world's
/// models, run the machine, call [`RecordedEnv::end_run`], then take the
/// models back with [`RecordedEnv::into_model`] for the next invocation.
pub struct RecordedEnv<'a> {
    calls: Vec<RecordedCall<'a>>,
    next: usize,
    partial: bool,
    model: ModelEnv,
    tables: Rc<ReplayTables>,
    own: HashMap<OwnKey, RegionId>,
    own_records: Vec<RegionId>,
    notes: Vec<Note>,
    divergence: Option<CallDivergence>,
    ran_out: bool,
    /// Values read through BTF pointers, `(load instruction, value)`, in
    /// order, and how many the replay has used.
    btf_loads: Vec<(u32, u64)>,
    next_load: usize,
    /// Bytes of the regions this env created in this invocation, and how
    /// many it may create ([`MAX_ENV_MEMORY_PER_INVOCATION`]).
    created: u64,
    memory_budget: u64,
    /// The regions counted in `created`, with their sizes, so a rewind can
    /// give back the bytes of regions the undo removed.
    created_regions: Vec<(RegionId, u64)>,
}

impl<'a> RecordedEnv<'a> {
    /// An env answering `calls` (in order) for a run on `cpu`, with `model`
    /// (maps indexed by trace map id) alongside. With `partial`, running out
    /// of recorded calls ends the replay instead of being a divergence.
    /// Starts the model's run: call this right before `Machine::start`.
    pub fn new(
        calls: Vec<RecordedCall<'a>>,
        partial: bool,
        cpu: u32,
        mut model: ModelEnv,
        tables: Rc<ReplayTables>,
    ) -> RecordedEnv<'a> {
        model.begin_run();
        model.config_mut().cpu = cpu;
        // Nothing consumes the models' ring buffers during replay: empty them
        // so they never fill up, and drop the previous invocation's events.
        for map in model.maps_mut() {
            match map.model_mut() {
                Model::RingBuf(rb) => {
                    rb.drain();
                }
                Model::PerfEventArray(pe) => {
                    pe.drain();
                }
                _ => {}
            }
        }
        model.take_events();
        RecordedEnv {
            calls,
            next: 0,
            partial,
            model,
            tables,
            own: HashMap::new(),
            own_records: Vec::new(),
            notes: Vec::new(),
            divergence: None,
            ran_out: false,
            btf_loads: Vec::new(),
            next_load: 0,
            created: 0,
            memory_budget: MAX_ENV_MEMORY_PER_INVOCATION,
            created_regions: Vec::new(),
        }
    }

    /// Gives the env the invocation's loads through BTF pointers
    /// (`(instruction, value)` in execution order, see [`recorded_btf_loads`]).
    pub fn with_btf_loads(mut self, loads: Vec<(u32, u64)>) -> Self {
        self.btf_loads = loads;
        self.next_load = 0;
        self
    }

    /// The recorded loads through BTF pointers this env answers.
    pub fn btf_loads(&self) -> &[(u32, u64)] {
        &self.btf_loads
    }

    /// How many recorded BTF loads the replay has used so far.
    pub fn btf_loads_consumed(&self) -> usize {
        self.next_load
    }

    /// Sets how many bytes of regions (returned memory, ring buffer
    /// records) this env may create in the invocation.
    pub fn set_memory_budget(&mut self, bytes: u64) {
        self.memory_budget = bytes;
    }

    /// Bytes of regions this env has created in the invocation so far.
    pub fn memory_created(&self) -> u64 {
        self.created
    }

    /// Ends the model's run: copies what the program wrote through pointers
    /// (map values, global data) into the models.
    pub fn end_run(&mut self, memory: &Memory) {
        self.model.end_run(memory);
    }

    /// The models, for the next invocation.
    pub fn into_model(self) -> ModelEnv {
        self.model
    }

    /// The models (maps for display, captured printk output as events).
    pub fn model(&self) -> &ModelEnv {
        &self.model
    }

    pub fn model_mut(&mut self) -> &mut ModelEnv {
        &mut self.model
    }

    /// The recorded calls this env answers.
    pub fn calls(&self) -> &[RecordedCall<'a>] {
        &self.calls
    }

    /// How many recorded calls the replay has used so far.
    pub fn consumed(&self) -> usize {
        self.next
    }

    /// The first recorded call not used yet.
    pub fn next_call(&self) -> Option<&RecordedCall<'a>> {
        self.calls.get(self.next)
    }

    /// Where the replay's calls stopped matching the recording, if they did.
    pub fn divergence(&self) -> Option<&CallDivergence> {
        self.divergence.as_ref()
    }

    /// Model/recording disagreements noticed so far.
    pub fn notes(&self) -> &[Note] {
        &self.notes
    }

    pub fn take_notes(&mut self) -> Vec<Note> {
        std::mem::take(&mut self.notes)
    }

    /// Moves back to the point where `consumed` recorded calls had been
    /// used, after a session undid steps on the machine whose memory is
    /// `memory` now: regions the undo removed are forgotten, a divergence
    /// found later is cleared. (The models are not rewound: they are for
    /// display and notes, the recording stays authoritative.)
    pub fn rewind(&mut self, consumed: usize, memory: &Memory) {
        self.next = consumed.min(self.calls.len());
        let live = memory.region_count() as RegionId;
        self.own.retain(|_, id| *id < live);
        self.own_records.retain(|id| *id < live);
        self.created_regions.retain(|(id, _)| *id < live);
        self.created = self.created_regions.iter().map(|(_, n)| n).sum();
        self.divergence = None;
        self.ran_out = false;
    }

    /// The invocation is partial and the replay reached its end (the machine
    /// stopped with a fault at the first call past it).
    pub fn ran_out_of_recording(&self) -> bool {
        self.ran_out
    }

    // ---- matching -----------------------------------------------------------

    fn note(&mut self, call: &HelperCall<'_>, message: String) {
        self.notes.push(Note {
            prog: call.prog(),
            insn: call.pc() as u32,
            message,
        });
    }

    fn diverge(
        &mut self,
        call: &HelperCall<'_>,
        id: i32,
        event: Option<usize>,
        message: String,
    ) -> Fault {
        self.divergence = Some(CallDivergence {
            prog: call.prog(),
            insn: call.pc() as u32,
            event,
            btf_load: false,
            message: message.clone(),
        });
        call.fault(FaultKind::Helper {
            id,
            message: format!("the replay diverges from the recording: {message}"),
        })
    }

    /// A load through a BTF pointer that does not match the recording.
    fn diverge_load(
        &mut self,
        call: &HelperCall<'_>,
        load: Option<usize>,
        message: String,
    ) -> Fault {
        self.divergence = Some(CallDivergence {
            prog: call.prog(),
            insn: call.pc() as u32,
            event: load,
            btf_load: true,
            message: message.clone(),
        });
        call.fault(FaultKind::Helper {
            id: -1,
            message: format!("the replay diverges from the recording: {message}"),
        })
    }

    /// A call described for messages, kfuncs by name when the trace names them.
    fn describe(&self, kind: EventKind, id: u32) -> String {
        match self.model.kfunc_name(id as i32) {
            Some(name) if kind == EventKind::Kfunc => format!("{name} (kfunc {id})"),
            _ => describe_call(kind, id),
        }
    }

    /// Consumes the next recorded call if it is this one (`id` is not
    /// compared for tail calls: there it names the target).
    fn expect(
        &mut self,
        call: &HelperCall<'_>,
        kind: EventKind,
        id: u32,
    ) -> Result<RecordedCall<'a>, Fault> {
        let pc = call.pc() as u32;
        let index = self.next;
        let fault_id = id as i32;
        match self.calls.get(index) {
            Some(ev)
                if ev.insn == pc
                    && ev.kind == kind
                    && (kind == EventKind::TailCall || ev.id == id) =>
            {
                self.next += 1;
                Ok(ev.clone())
            }
            Some(ev) => {
                let message = format!(
                    "the program calls {} at instruction {pc}, but the recording's next call (event {index}) is {} at instruction {}",
                    self.describe(kind, id),
                    self.describe(ev.kind, ev.id),
                    ev.insn
                );
                Err(self.diverge(call, fault_id, Some(index), message))
            }
            None if self.partial => {
                self.ran_out = true;
                Err(call.fault(FaultKind::Helper {
                    id: fault_id,
                    message:
                        "the recording of this invocation is partial and ends before this call"
                            .into(),
                }))
            }
            None => {
                let message = format!(
                    "the program calls {} at instruction {pc}, but the recording has no more calls (it holds {})",
                    self.describe(kind, id),
                    self.calls.len()
                );
                Err(self.diverge(call, fault_id, None, message))
            }
        }
    }

    // ---- memory ---------------------------------------------------------------

    /// Writes the recorded output bytes through the argument pointers.
    fn write_outputs(
        &mut self,
        rec: &RecordedCall<'a>,
        call: &mut HelperCall<'_>,
    ) -> Result<(), Fault> {
        for &(arg, bytes) in &rec.outputs {
            if !(1..=5).contains(&arg) || bytes.is_empty() {
                continue;
            }
            let addr = call.arg(arg as usize);
            if addr == 0 {
                continue; // a NULL buffer (`..._OR_NULL` argument) the helper skipped
            }
            call.write(addr, bytes)?;
        }
        Ok(())
    }

    /// The trace map id behind a map pointer argument.
    fn map_of(&self, call: &HelperCall<'_>, arg: usize) -> Option<u32> {
        match call.region_of(call.arg(arg)) {
            Some((_, r, 0)) => match r.kind() {
                RegionKind::Map { map } => Some(*map),
                _ => None,
            },
            _ => None,
        }
    }

    fn modelled(&self, map: u32) -> bool {
        (map as usize) < self.model.maps().len()
            && !self
                .tables
                .unmodelled
                .get(map as usize)
                .copied()
                .unwrap_or(true)
    }

    /// A live region starting at `addr` with at least `len` bytes.
    fn region_at(call: &HelperCall<'_>, addr: u64, len: usize) -> Option<RegionId> {
        match call.region_of(addr) {
            Some((id, r, 0)) if r.bytes().len() >= len => Some(id),
            _ => None,
        }
    }

    /// Puts `bytes` at the start of region `id` (recorded, so undoable).
    fn overwrite(call: &mut HelperCall<'_>, id: RegionId, bytes: &[u8]) -> Result<(), Fault> {
        let Some(r) = call.memory().region(id) else {
            return Ok(());
        };
        let n = bytes.len().min(r.bytes().len());
        if r.bytes()[..n] == bytes[..n] {
            return Ok(());
        }
        if r.writable() {
            call.write(address(id, 0), &bytes[..n])
        } else {
            let mut all = r.bytes().to_vec();
            all[..n].copy_from_slice(&bytes[..n]);
            call.set_region_bytes(id, all);
            Ok(())
        }
    }

    /// The env's own region for `key`, created with `bytes` on first use and
    /// overwritten with them on later uses (the recording is authoritative).
    fn own_region(
        &mut self,
        call: &mut HelperCall<'_>,
        key: OwnKey,
        kind: RegionKind,
        bytes: &[u8],
        writable: bool,
    ) -> Result<u64, Fault> {
        if let Some(&id) = self.own.get(&key)
            && Self::region_at(call, address(id, 0), 0).is_some()
        {
            Self::overwrite(call, id, bytes)?;
            return Ok(address(id, 0));
        }
        self.charge(call, key.helper, bytes.len() as u64)?;
        let (id, addr) = call.alloc(kind, bytes.to_vec(), writable);
        self.created_regions.push((id, bytes.len() as u64));
        self.own.insert(key, id);
        Ok(addr)
    }

    /// Counts `len` more bytes of regions against the invocation's budget,
    /// before they are allocated; past it, the call faults.
    fn charge(&mut self, call: &HelperCall<'_>, id: i32, len: u64) -> Result<(), Fault> {
        let total = self.created.saturating_add(len);
        if total > self.memory_budget {
            return Err(call.error(
                id,
                format!(
                    "the recording makes this invocation create {total} bytes of helper memory, more than bpfrr's limit of {} per invocation",
                    self.memory_budget
                ),
            ));
        }
        self.created = total;
        Ok(())
    }

    // ---- helpers ----------------------------------------------------------------

    /// Runs a helper on the models, for their sake only.
    fn shadow(&mut self, id: i32, rec: &RecordedCall<'a>, call: &mut HelperCall<'_>) {
        let mode = policy().shadow(id);
        let name = helper_name(id).unwrap_or("helper");
        // A stand-in model of a map type bpfrr does not model has nothing to say.
        if (1..=2).any(|a| self.map_of(call, a).is_some_and(|m| !self.modelled(m))) {
            return;
        }
        match mode {
            Shadow::Skip => {}
            Shadow::CheckIfOk if rec.ret != 0 => {} // the kernel refused: nothing changed
            _ => match self.model.call_helper(id, call) {
                Ok(HelperOutcome::Return(v)) if mode != Shadow::Follow && v != rec.ret => {
                    let message = format!(
                        "{name}: the model returns {}, the recording {}; the model's map or packet differs from the kernel's (another CPU or userspace changed the map?)",
                        v as i64, rec.ret as i64
                    );
                    self.note(call, message);
                }
                Ok(_) => {}
                Err(f) => {
                    let message = format!("{name}: the model cannot follow this call ({})", f.kind);
                    self.note(call, message);
                }
            },
        }
        if mode == Shadow::Skip
            && rec.ret == 0
            && let Some(spec) = helper(id)
            && spec.changes_packet_data()
        {
            let message = format!(
                "{name} changes the packet and bpfrr has no model of it: the replayed packet may differ from the kernel's from here on"
            );
            self.note(call, message);
        }
    }

    /// A helper returning a map value (`bpf_map_lookup_elem`, local storage getters).
    fn map_value(
        &mut self,
        id: i32,
        rec: &RecordedCall<'a>,
        call: &mut HelperCall<'_>,
    ) -> Result<HelperOutcome, Fault> {
        let map = self.map_of(call, 1);
        let (key_size, value_size, read_only) =
            match map.and_then(|m| self.model.maps().get(m as usize)) {
                Some(m) => (
                    m.def().key_size as usize,
                    m.def().value_size as usize,
                    m.def().read_only_for_program(),
                ),
                None => (8, 0, false),
            };
        let key = call
            .memory()
            .read(call.arg(2), key_size)
            .map(|b| b.to_vec())
            .unwrap_or_else(|_| call.arg(2).to_le_bytes().to_vec());
        let modelled =
            map.is_some_and(|m| self.modelled(m)) && policy().modelled_lookups.contains(&id);
        let model_addr = if modelled {
            match self.model.call_helper(id, call) {
                Ok(HelperOutcome::Return(a)) => Some(a),
                Ok(_) => None,
                Err(f) => {
                    let message = format!("the model cannot look this up ({})", f.kind);
                    self.note(call, message);
                    None
                }
            }
        } else {
            None
        };
        let m = map.unwrap_or(u32::MAX);
        if rec.ret == 0 {
            if modelled && model_addr.is_some_and(|a| a != 0) {
                let message = format!(
                    "map {m}: key {} is absent in the recording but present in the model (another CPU or userspace deleted it)",
                    hex(&key)
                );
                self.note(call, message);
                // The model follows the recording.
                let _ = self.model.maps_mut()[m as usize].delete(&key);
            }
            return Ok(HelperOutcome::Return(0));
        }
        let recorded = rec.output(RETURNED_MEMORY_ARG);
        let mut region = model_addr
            .filter(|&a| a != 0)
            .and_then(|a| Self::region_at(call, a, recorded.map_or(0, <[u8]>::len)));
        if modelled && model_addr == Some(0) {
            let message = format!(
                "map {m}: key {} is present in the recording but absent in the model (another CPU or userspace added it)",
                hex(&key)
            );
            self.note(call, message);
            // Add it to the model, then look it up again for a shared region.
            let mut value = recorded.map(<[u8]>::to_vec).unwrap_or_default();
            value.resize(value_size, 0);
            let cpu = self.model.config().cpu;
            if self.model.maps_mut()[m as usize]
                .update(&key, &value, BPF_ANY, cpu)
                .is_ok()
                && let Ok(HelperOutcome::Return(a)) = self.model.call_helper(id, call)
                && a != 0
            {
                region = Self::region_at(call, a, value.len().min(recorded.map_or(0, <[u8]>::len)));
            }
        }
        let Some(bytes) = recorded else {
            // The recording has no value bytes: the model's value is all there is.
            let message =
                "the recording holds no value bytes for this lookup; the replay uses the model's value"
                    .to_string();
            self.note(call, message);
            if let Some(id) = region {
                return Ok(HelperOutcome::Return(address(id, 0)));
            }
            let zeros = vec![0; value_size];
            let key = OwnKey {
                helper: id,
                map,
                key,
            };
            let kind = own_value_kind(id, map, &key.key);
            return self
                .own_region(call, key, kind, &zeros, !read_only)
                .map(HelperOutcome::Return);
        };
        match region {
            Some(rid) => {
                let current = call
                    .memory()
                    .region(rid)
                    // A recording may hold more bytes than the region (a
                    // value longer than the map's value_size).
                    .map(|r| r.bytes()[..bytes.len().min(r.bytes().len())].to_vec())
                    .unwrap_or_default();
                if modelled && current != bytes {
                    let message = format!(
                        "map {m}: the value of key {} is {} in the recording, {} in the model (another CPU or userspace changed it)",
                        hex(&key),
                        hex(bytes),
                        hex(&current)
                    );
                    self.note(call, message);
                }
                Self::overwrite(call, rid, bytes)?;
                Ok(HelperOutcome::Return(address(rid, 0)))
            }
            None => {
                let key = OwnKey {
                    helper: id,
                    map,
                    key,
                };
                let kind = own_value_kind(id, map, &key.key);
                self.own_region(call, key, kind, bytes, !read_only)
                    .map(HelperOutcome::Return)
            }
        }
    }

    /// `bpf_ringbuf_reserve`: a record of the requested size.
    fn ringbuf_reserve(
        &mut self,
        id: i32,
        size_arg: u8,
        rec: &RecordedCall<'a>,
        call: &mut HelperCall<'_>,
    ) -> Result<HelperOutcome, Fault> {
        if rec.ret == 0 {
            return Ok(HelperOutcome::Return(0)); // the kernel had no room: nothing reserved
        }
        let size = call.arg(size_arg as usize + 1);
        let map = self.map_of(call, 1);
        // The kernel never hands out a record larger than its ring.
        let ring = map
            .and_then(|m| self.model.maps().get(m as usize))
            .map(|m| u64::from(m.def().max_entries));
        let limit = ring.unwrap_or(MAX_RETURNED_MEMORY).min(MAX_RETURNED_MEMORY);
        if size > limit {
            return Err(call.error(
                id,
                format!(
                    "the recording says a ring buffer record of {size} bytes was reserved, larger than {limit} bytes (the ring's size or bpfrr's limit)"
                ),
            ));
        }
        let from_model = if map.is_some_and(|m| self.modelled(m)) {
            match self.model.call_helper(id, call) {
                Ok(HelperOutcome::Return(a)) if a != 0 => Self::region_at(call, a, size as usize),
                _ => None,
            }
        } else {
            None
        };
        let rid = match from_model {
            Some(rid) => rid,
            None => {
                let kind = RegionKind::RingbufRecord {
                    map: map.unwrap_or(u32::MAX),
                };
                self.charge(call, id, size)?;
                let (rid, _) = call.alloc(kind, vec![0; size as usize], true);
                self.created_regions.push((rid, size));
                self.own_records.push(rid);
                rid
            }
        };
        if let Some(bytes) = rec.output(RETURNED_MEMORY_ARG) {
            Self::overwrite(call, rid, bytes)?;
        }
        Ok(HelperOutcome::Return(address(rid, 0)))
    }

    /// Submit/discard of a record the env made itself: the record is gone.
    fn release_own_record(&mut self, call: &mut HelperCall<'_>) -> bool {
        let Some((rid, _, 0)) = call.region_of(call.arg(1)) else {
            return false;
        };
        let Some(pos) = self.own_records.iter().position(|&r| r == rid) else {
            return false;
        };
        self.own_records.swap_remove(pos);
        call.free(rid);
        true
    }

    /// Memory returned by a helper or kfunc other than a map value or ring
    /// buffer record (`bpf_dynptr_data`, kfunc slices): a buffer holding the
    /// recorded bytes.
    fn returned_buffer(
        &mut self,
        helper_id: i32,
        size: Option<u64>,
        rec: &RecordedCall<'a>,
        call: &mut HelperCall<'_>,
    ) -> Result<HelperOutcome, Fault> {
        if rec.ret == 0 {
            return Ok(HelperOutcome::Return(0));
        }
        let recorded = rec.output(RETURNED_MEMORY_ARG);
        // Helpers return dynptr slices (at most the kernel's DYNPTR_MAX_SIZE);
        // kfunc memory has no smaller bound than bpfrr's.
        let limit = if size.is_some() {
            MAX_DYNPTR_SIZE
        } else {
            MAX_RETURNED_MEMORY
        };
        let len = recorded.map_or(size.unwrap_or(0), |b| b.len() as u64);
        if len > limit {
            return Err(call.error(
                helper_id,
                format!(
                    "the recording says {} returned {len} bytes of memory, more than the {limit} bytes it can return",
                    describe_call(rec.kind, rec.id)
                ),
            ));
        }
        let bytes = match (recorded, size) {
            (Some(b), _) => b.to_vec(),
            (None, Some(n)) => vec![0; n as usize],
            // Nothing known about the memory: give the program the recorded
            // value itself (a kernel pointer; dereferencing it faults).
            _ => return Ok(HelperOutcome::Return(rec.ret)),
        };
        let key = OwnKey {
            helper: helper_id,
            map: None,
            key: call.args().iter().flat_map(|a| a.to_le_bytes()).collect(),
        };
        let kind = RegionKind::HelperBuffer { helper: helper_id };
        self.own_region(call, key, kind, &bytes, true)
            .map(HelperOutcome::Return)
    }

    fn tail_call(&mut self, id: i32, call: &mut HelperCall<'_>) -> Result<HelperOutcome, Fault> {
        let rec = self.expect(call, EventKind::TailCall, 0)?;
        if rec.id == NO_TAIL_CALL_TARGET {
            // Tolerate a recorder that also logs the failed call as a helper event.
            if let Some(n) = self.calls.get(self.next)
                && n.kind == EventKind::Helper
                && n.id == id as u32
                && n.insn == rec.insn
            {
                self.next += 1;
            }
            return Ok(HelperOutcome::KeepR0);
        }
        if rec.id as usize >= self.tables.used_maps.len() {
            let message = format!(
                "the recording says the tail call ran program {}, but the trace has {} programs",
                rec.id,
                self.tables.used_maps.len()
            );
            return Err(self.diverge(call, id, Some(self.next - 1), message));
        }
        Ok(HelperOutcome::TailCall(rec.id as usize))
    }

    /// `bpf_loop` / `bpf_for_each_map_elem`: the model runs the loop.
    fn start_callbacks(
        &mut self,
        id: i32,
        call: &mut HelperCall<'_>,
    ) -> Result<HelperOutcome, Fault> {
        match self.model.call_helper(id, call) {
            Ok(HelperOutcome::Return(v)) => self.finish_callbacks(id, v, call),
            Ok(other) => Ok(other),
            Err(f) => {
                let name = helper_name(id).unwrap_or("helper");
                let message = format!("the model cannot run {name} ({})", f.kind);
                self.note(call, message);
                Err(f)
            }
        }
    }

    /// A numeric-iterator kfunc: the recorder keeps no bytes of the
    /// iterator (it is the program's stack), so the model carries the kfunc
    /// out on the VM's memory, and the recorded r0 checks it: `new`'s int
    /// must be the same, `next` must return NULL exactly when the kernel
    /// did (its pointer is the VM address of the iterator, not the kernel's).
    fn iter_num(
        &mut self,
        kfunc: IterNumKfunc,
        btf_id: i32,
        rec: &RecordedCall<'a>,
        call: &mut HelperCall<'_>,
    ) -> Result<HelperOutcome, Fault> {
        let replayed = iter_num::call(kfunc, call)?;
        let event = Some(self.next - 1);
        match kfunc {
            // An `int`: the kernel leaves it in the low 32 bits of r0.
            IterNumKfunc::New if replayed as u32 != rec.ret as u32 => {
                let message = format!(
                    "{} returns {} in the replay, {} in the recording",
                    kfunc.name(),
                    replayed as u32 as i32,
                    rec.ret as u32 as i32
                );
                Err(self.diverge(call, btf_id, event, message))
            }
            IterNumKfunc::New | IterNumKfunc::Destroy => Ok(HelperOutcome::Return(rec.ret)),
            IterNumKfunc::Next if (replayed == 0) != (rec.ret == 0) => {
                let said = |r: u64| {
                    if r == 0 {
                        "NULL (done)"
                    } else {
                        "the next value"
                    }
                };
                let message = format!(
                    "{} returns {} in the replay, {} in the recording",
                    kfunc.name(),
                    said(replayed),
                    said(rec.ret)
                );
                Err(self.diverge(call, btf_id, event, message))
            }
            IterNumKfunc::Next => Ok(HelperOutcome::Return(replayed)),
        }
    }

    /// A packet-dynptr kfunc: the recorder keeps no bytes of the dynptr
    /// (the program's stack) nor of the packet a slice points into, so the
    /// model carries the kfunc out on the VM's memory, and the recorded r0
    /// checks it: the same int or bool, a slice NULL exactly when the
    /// kernel's was (its pointer is a VM address, not the kernel's).
    fn dynptr_kfunc(
        &mut self,
        kfunc: DynptrKfunc,
        btf_id: i32,
        rec: &RecordedCall<'a>,
        call: &mut HelperCall<'_>,
    ) -> Result<HelperOutcome, Fault> {
        let replayed = dynptr::call_kfunc(kfunc, btf_id, call)?;
        let returns = kfunc.returns();
        if !same_result(returns, replayed, rec.ret) {
            let message = format!(
                "{} returns {} in the replay, {} in the recording",
                kfunc.name(),
                describe_result(returns, replayed),
                describe_result(returns, rec.ret)
            );
            return Err(self.diverge(call, btf_id, Some(self.next - 1), message));
        }
        Ok(HelperOutcome::Return(if returns == Returns::Pointer {
            replayed
        } else {
            rec.ret
        }))
    }

    /// `bpf_dynptr_read/write/data` on a packet dynptr the VM made: carried
    /// out on the VM's memory, checked against the recorded r0 (and, for a
    /// read, the recorded bytes it read).
    fn dynptr_helper(
        &mut self,
        helper: DynptrHelper,
        id: i32,
        rec: &RecordedCall<'a>,
        call: &mut HelperCall<'_>,
    ) -> Result<HelperOutcome, Fault> {
        let replayed = dynptr::call_helper(helper, id, call)?;
        let event = Some(self.next - 1);
        let returns = match helper {
            DynptrHelper::Data => Returns::Pointer,
            _ => Returns::Long,
        };
        if !same_result(returns, replayed, rec.ret) {
            let message = format!(
                "{} returns {} in the replay, {} in the recording",
                helper.name(),
                describe_result(returns, replayed),
                describe_result(returns, rec.ret)
            );
            return Err(self.diverge(call, id, event, message));
        }
        if helper == DynptrHelper::Read
            && replayed == 0
            && let Some(recorded) = rec.output(1)
        {
            let read = call.read(call.arg(1), recorded.len())?.to_vec();
            if read != recorded {
                let message = format!(
                    "{} reads {} from the packet in the replay, {} in the recording",
                    helper.name(),
                    hex(&read),
                    hex(recorded)
                );
                return Err(self.diverge(call, id, event, message));
            }
        }
        Ok(HelperOutcome::Return(if returns == Returns::Pointer {
            replayed
        } else {
            rec.ret
        }))
    }

    /// The loop is over: its own recorded event comes now.
    fn finish_callbacks(
        &mut self,
        id: i32,
        replayed: u64,
        call: &mut HelperCall<'_>,
    ) -> Result<HelperOutcome, Fault> {
        let rec = self.expect(call, EventKind::Helper, id as u32)?;
        if replayed != rec.ret {
            let name = helper_name(id).unwrap_or("helper");
            let message = format!(
                "{name} returns {} in the replay (callbacks run), {} in the recording",
                replayed as i64, rec.ret as i64
            );
            return Err(self.diverge(call, id, Some(self.next - 1), message));
        }
        self.write_outputs(&rec, call)?;
        Ok(HelperOutcome::Return(rec.ret))
    }
}

fn own_value_kind(helper: i32, map: Option<u32>, key: &[u8]) -> RegionKind {
    match map {
        Some(map) => RegionKind::MapValue {
            map,
            key: key.to_vec(),
        },
        None => RegionKind::HelperBuffer { helper },
    }
}

/// Bytes as hex for notes, cut after 32 bytes.
fn hex(bytes: &[u8]) -> String {
    let mut s = String::new();
    for b in bytes.iter().take(32) {
        let _ = write!(s, "{b:02x}");
    }
    if bytes.is_empty() {
        s.push_str("(empty)");
    } else if bytes.len() > 32 {
        s.push_str("...");
    }
    s
}

/// The dynptr helper with this id, if it is one.
fn dynptr_helper(id: i32) -> Option<DynptrHelper> {
    helper(id).and_then(|h| DynptrHelper::from_name(h.short_name()))
}

/// Whether a replayed r0 and a recorded one are the same result.
fn same_result(returns: Returns, replayed: u64, recorded: u64) -> bool {
    match returns {
        Returns::Long => replayed == recorded,
        Returns::Int => replayed as u32 == recorded as u32,
        Returns::Bool => (replayed as u8 != 0) == (recorded as u8 != 0),
        Returns::Pointer => (replayed == 0) == (recorded == 0),
    }
}

/// A result for divergence messages.
fn describe_result(returns: Returns, r0: u64) -> String {
    match returns {
        Returns::Long => (r0 as i64).to_string(),
        Returns::Int => (r0 as u32 as i32).to_string(),
        Returns::Bool => (r0 as u8 != 0).to_string(),
        Returns::Pointer if r0 == 0 => "NULL".into(),
        Returns::Pointer => "a pointer".into(),
    }
}

fn returned_memory(spec: Option<&HelperSpec>) -> Option<(RetKind, OutSize)> {
    let spec = spec?;
    spec.returned_memory().map(|size| (spec.ret, size))
}

impl Env for RecordedEnv<'_> {
    fn call_helper(&mut self, id: i32, call: &mut HelperCall<'_>) -> Result<HelperOutcome, Fault> {
        let p = policy();
        if id == p.tail_call {
            return self.tail_call(id, call);
        }
        if id == p.bpf_loop || id == p.for_each {
            return self.start_callbacks(id, call);
        }
        let rec = self.expect(call, EventKind::Helper, id as u32)?;
        if let Some(h) = dynptr_helper(id)
            && dynptr::is_packet_dynptr(call, call.arg(h.dynptr_arg()))
        {
            return self.dynptr_helper(h, id, &rec, call);
        }
        match returned_memory(helper(id)) {
            Some((_, OutSize::MapValue)) => return self.map_value(id, &rec, call),
            Some((RetKind::RingbufMemOrNull, OutSize::Arg(n))) => {
                return self.ringbuf_reserve(id, n, &rec, call);
            }
            Some((_, size)) => {
                self.write_outputs(&rec, call)?;
                let size = match size {
                    OutSize::Arg(n) => Some(call.arg(n as usize + 1)),
                    OutSize::Fixed(n) => Some(n as u64),
                    _ => None,
                };
                return self.returned_buffer(id, size, &rec, call);
            }
            None => {}
        }
        if (id == p.ringbuf_submit || id == p.ringbuf_discard) && self.release_own_record(call) {
            return Ok(HelperOutcome::Return(rec.ret));
        }
        self.shadow(id, &rec, call);
        self.write_outputs(&rec, call)?;
        Ok(HelperOutcome::Return(rec.ret))
    }

    fn resume(
        &mut self,
        callee: Callee,
        state: u64,
        callback_r0: u64,
        call: &mut HelperCall<'_>,
    ) -> Result<HelperOutcome, Fault> {
        match self.model.resume(callee, state, callback_r0, call)? {
            HelperOutcome::Return(v) => {
                let id = match callee {
                    Callee::Helper(id) => id,
                    Callee::Kfunc { btf_id, .. } => btf_id,
                };
                self.finish_callbacks(id, v, call)
            }
            other => Ok(other),
        }
    }

    fn call_kfunc(
        &mut self,
        btf_id: i32,
        module: i16,
        call: &mut HelperCall<'_>,
    ) -> Result<HelperOutcome, Fault> {
        let rec = self.expect(call, EventKind::Kfunc, btf_id as u32)?;
        if let Some(kfunc) = self.model.iter_num_kfunc(btf_id, module) {
            return self.iter_num(kfunc, btf_id, &rec, call);
        }
        // Dynptrs of other kinds (local, ring buffer) hold recorded kernel
        // bytes: they replay from the recording as before.
        if let Some(kfunc) = self.model.dynptr_kfunc(btf_id, module) {
            if kfunc.creates() || dynptr::is_packet_dynptr(call, call.arg(1)) {
                return self.dynptr_kfunc(kfunc, btf_id, &rec, call);
            }
            if kfunc == DynptrKfunc::Clone {
                dynptr::clone_recorded(call, rec.ret)?;
            }
        }
        self.write_outputs(&rec, call)?;
        if rec.ret != 0 && rec.output(RETURNED_MEMORY_ARG).is_some() {
            return self.returned_buffer(btf_id, None, &rec, call);
        }
        Ok(HelperOutcome::Return(rec.ret))
    }

    fn btf_load(
        &mut self,
        addr: u64,
        size: usize,
        call: &mut HelperCall<'_>,
    ) -> Result<Option<u64>, Fault> {
        let pc = call.pc() as u32;
        // Only loads through BTF pointers (the verifier log says which, and
        // the recording has some at this instruction): any other wild read
        // faults as before.
        let in_log = self
            .tables
            .btf_load_insns
            .get(call.prog())
            .is_some_and(|l| l.binary_search(&pc).is_ok());
        if !in_log && !self.btf_loads.iter().any(|&(insn, _)| insn == pc) {
            return Ok(None);
        }
        let index = self.next_load;
        match self.btf_loads.get(index) {
            Some(&(insn, value)) if insn == pc => {
                self.next_load += 1;
                Ok(Some(value))
            }
            Some(&(insn, _)) => {
                let message = format!(
                    "the program reads {size} bytes of kernel memory at {addr:#x} through a BTF pointer at instruction {pc}, but the recording's next such load (load {index}) is at instruction {insn}"
                );
                Err(self.diverge_load(call, Some(index), message))
            }
            None if self.partial => {
                self.ran_out = true;
                Err(call.fault(FaultKind::NoRegion {
                    addr,
                    size,
                    write: false,
                }))
            }
            None => {
                let message = format!(
                    "the program reads {size} bytes of kernel memory at {addr:#x} through a BTF pointer at instruction {pc}, but the recording has no more such loads (it holds {})",
                    self.btf_loads.len()
                );
                Err(self.diverge_load(call, None, message))
            }
        }
    }

    fn resolve_imm64(
        &mut self,
        kind: Imm64Kind,
        imm: u64,
        call: &mut HelperCall<'_>,
    ) -> Result<u64, Fault> {
        // Trace programs name maps by fd_array index (`used_maps`); the
        // models are indexed by trace map id, which `MapFd` forms carry.
        let (kind, imm) = match kind {
            Imm64Kind::MapIdx | Imm64Kind::MapIdxValue => {
                let index = imm as u32;
                let prog = call.prog();
                let used = self.tables.used_maps.get(prog);
                let Some(&map) = used.and_then(|u| u.get(index as usize)) else {
                    return Err(call.fault(FaultKind::Helper {
                        id: -1,
                        message: format!(
                            "ld_imm64 refers to map index {index} of program {prog}, which uses {} maps",
                            used.map_or(0, Vec::len)
                        ),
                    }));
                };
                let kind = if kind == Imm64Kind::MapIdx {
                    Imm64Kind::MapFd
                } else {
                    Imm64Kind::MapValue
                };
                (kind, (imm & !0xffff_ffff) | map as u64)
            }
            other => (other, imm),
        };
        self.model.resolve_imm64(kind, imm, call)
    }
}
