//! Recordings made without a kernel: programs run on the map models, with
//! every helper call logged the way the recorder logs it in the kernel
//! (instruction, id, r0, bytes written through output arguments, the value
//! bytes of a lookup as the returned memory; tail calls when they happen;
//! callback-taking helpers after their callbacks). Replaying such a trace
//! with `RecordedEnv` must give the same run, which makes these traces the
//! fixtures of replay, slicing and redaction tests on any machine.
//!
//! - [`object_definitions`]: an object's programs and maps as a trace
//!   holds them (linked as the recorder links them; with the kernel's BTF,
//!   [`object_definitions_with_kfuncs`], kfunc calls too).
//! - [`record_model_run`]: runs inputs in order and writes the trace.

use std::path::Path;

use bpfrr_trace::btf::Btf;
use bpfrr_trace::catalog::{OutSize, helper};
use bpfrr_trace::isa::Imm64Kind;
use bpfrr_trace::isa::opcode::{
    PSEUDO_CALL_KFUNC, PSEUDO_MAP_FD, PSEUDO_MAP_IDX, PSEUDO_MAP_IDX_VALUE, PSEUDO_MAP_VALUE,
};
use bpfrr_trace::object::ObjectFile;
use bpfrr_trace::trace::{
    EventKind, HelperEvent, HelperOutput, Invocation, KfuncName, LineInfo, Map, MapEntry,
    MapSnapshot, Program, SnapshotTime, Trace, TraceMeta, TraceWriter,
};

use crate::env::ModelEnv;
use crate::env::recorded::{NO_TAIL_CALL_TARGET, RETURNED_MEMORY_ARG};
use crate::vm::{Callee, Env, Fault, HelperCall, HelperOutcome, Machine, RegionKind};

use super::setup::{initial_models, invocation_context, vm_program};

/// A model env that logs every call as the recorder would.
pub struct RecordingEnv {
    pub model: ModelEnv,
    pub events: Vec<HelperEvent>,
    /// Per program: trace map ids by fd_array index.
    pub used_maps: Vec<Vec<u32>>,
}

fn map_sizes(model: &ModelEnv, call: &HelperCall<'_>, arg: usize) -> Option<(usize, usize)> {
    let (_, r, _) = call.region_of(call.arg(arg))?;
    match r.kind() {
        RegionKind::Map { map } => {
            let d = model.maps().get(*map as usize)?.def();
            Some((d.key_size as usize, d.value_size as usize))
        }
        _ => None,
    }
}

impl RecordingEnv {
    fn out_size(&self, call: &HelperCall<'_>, size: OutSize) -> usize {
        match size {
            OutSize::Arg(n) => call.arg(n as usize + 1) as usize,
            OutSize::Fixed(n) => n as usize,
            OutSize::MapValue => map_sizes(&self.model, call, 1).map_or(0, |s| s.1),
            OutSize::MapKey => map_sizes(&self.model, call, 1).map_or(0, |s| s.0),
        }
    }
}

impl Env for RecordingEnv {
    fn call_helper(&mut self, id: i32, call: &mut HelperCall<'_>) -> Result<HelperOutcome, Fault> {
        let Some(spec) = helper(id) else {
            // Unknown to the catalogue: the model answers (and faults) alone.
            return self.model.call_helper(id, call);
        };
        // Output buffers and their sizes, as the instrumentation spills them before the call.
        let outs: Vec<(u8, u64, usize)> = spec
            .output_args()
            .iter()
            .map(|o| {
                (
                    o.arg + 1,
                    call.arg(o.arg as usize + 1),
                    self.out_size(call, o.size),
                )
            })
            .collect();
        let returned = spec.returned_memory().map(|s| self.out_size(call, s));
        let pc = call.pc() as u32;
        let outcome = self.model.call_helper(id, call)?;
        match &outcome {
            HelperOutcome::TailCall(p) => self.events.push(HelperEvent {
                insn: pc,
                kind: EventKind::TailCall,
                id: *p as u32,
                ret: 0,
                outputs: vec![],
            }),
            HelperOutcome::KeepR0 => self.events.push(HelperEvent {
                insn: pc,
                kind: EventKind::TailCall,
                id: NO_TAIL_CALL_TARGET,
                ret: 0,
                outputs: vec![],
            }),
            HelperOutcome::Return(r0) => {
                let mut outputs: Vec<HelperOutput> = outs
                    .iter()
                    .filter(|(_, addr, size)| *addr != 0 && *size > 0)
                    .filter_map(|(arg, addr, size)| {
                        let bytes = call.read(*addr, *size).ok()?.to_vec();
                        Some(HelperOutput { arg: *arg, bytes })
                    })
                    .collect();
                if let Some(size) = returned
                    && *r0 != 0
                    && let Ok(b) = call.read(*r0, size)
                {
                    outputs.push(HelperOutput {
                        arg: RETURNED_MEMORY_ARG,
                        bytes: b.to_vec(),
                    });
                }
                self.events.push(HelperEvent {
                    insn: pc,
                    kind: EventKind::Helper,
                    id: id as u32,
                    ret: *r0,
                    outputs,
                });
            }
            // Recorded when the helper returns (see `resume`).
            HelperOutcome::Callback { .. } | HelperOutcome::Exit(_) => {}
        }
        Ok(outcome)
    }

    fn resume(
        &mut self,
        callee: Callee,
        state: u64,
        callback_r0: u64,
        call: &mut HelperCall<'_>,
    ) -> Result<HelperOutcome, Fault> {
        let outcome = self.model.resume(callee, state, callback_r0, call)?;
        if let (HelperOutcome::Return(r0), Callee::Helper(id)) = (&outcome, callee) {
            self.events.push(HelperEvent {
                insn: call.pc() as u32,
                kind: EventKind::Helper,
                id: id as u32,
                ret: *r0,
                outputs: vec![],
            });
        }
        Ok(outcome)
    }

    /// kfuncs the model carries out (the numeric iterator), logged as the
    /// recorder logs them: r0 under the BTF id.
    fn call_kfunc(
        &mut self,
        btf_id: i32,
        module: i16,
        call: &mut HelperCall<'_>,
    ) -> Result<HelperOutcome, Fault> {
        let outcome = self.model.call_kfunc(btf_id, module, call)?;
        if let HelperOutcome::Return(r0) = outcome {
            self.events.push(HelperEvent {
                insn: call.pc() as u32,
                kind: EventKind::Kfunc,
                id: btf_id as u32,
                ret: r0,
                outputs: vec![],
            });
        }
        Ok(outcome)
    }

    fn resolve_imm64(
        &mut self,
        kind: Imm64Kind,
        imm: u64,
        call: &mut HelperCall<'_>,
    ) -> Result<u64, Fault> {
        // The trace convention: map references are fd_array indices.
        let prog = call.prog();
        let map = |imm: u64| -> Option<u64> {
            let id = *self.used_maps.get(prog)?.get(imm as u32 as usize)?;
            Some((imm & !0xffff_ffff) | id as u64)
        };
        let (kind, imm) = match kind {
            Imm64Kind::MapIdx => (Imm64Kind::MapFd, map(imm).unwrap_or(u64::MAX)),
            Imm64Kind::MapIdxValue => (Imm64Kind::MapValue, map(imm).unwrap_or(u64::MAX)),
            other => (other, imm),
        };
        self.model.resolve_imm64(kind, imm, call)
    }
}

/// One input of a model recording: which program, on which CPU, with
/// which context bytes and packet.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModelInput {
    /// Trace program id.
    pub program: u32,
    pub cpu: u32,
    /// Raw context bytes (see `setup::invocation_context`).
    pub ctx: Vec<u8>,
    /// The packet, for packet programs.
    pub packet: Option<Vec<u8>>,
}

/// Runs `inputs` in order on the models of a trace with `programs` and
/// `maps` (as the recorder would see them in the kernel) and writes the
/// trace, with `meta`, to `path`; returns it opened. `configure` may set up
/// the model (user memory, task, clock) before the first run. Invocations
/// get `seq` = `cpu_seq` = position and `time_ns` = 1000 × (position + 1).
pub fn record_model_run(
    path: &Path,
    meta: TraceMeta,
    programs: &[Program],
    maps: &[Map],
    inputs: &[ModelInput],
    configure: impl FnOnce(&mut ModelEnv),
) -> Result<Trace, String> {
    // The models come from a trace: write the definitions first.
    TraceWriter::create(path, meta.clone(), programs.to_vec(), maps.to_vec())
        .and_then(|w| w.finish())
        .map_err(|e| e.to_string())?;
    let defs = Trace::from_bytes(std::fs::read(path).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let (mut model, _, notes) = initial_models(&defs);
    if !notes.is_empty() {
        return Err(format!(
            "some maps cannot be modelled: {}",
            notes.join("; ")
        ));
    }
    configure(&mut model);
    let vm = programs
        .iter()
        .map(|p| vm_program(p).map(|v| v.0))
        .collect::<Result<Vec<_>, _>>()?;
    let mut machine = Machine::with_programs(vm);
    let mut env = RecordingEnv {
        model,
        events: vec![],
        used_maps: programs.iter().map(|p| p.used_maps.clone()).collect(),
    };
    let mut invocations = vec![];
    for (seq, input) in inputs.iter().enumerate() {
        let p = programs.get(input.program as usize).ok_or_else(|| {
            format!(
                "input {seq} names program {}, but there are {} programs",
                input.program,
                programs.len()
            )
        })?;
        let ctx = invocation_context(p.prog_type, &input.ctx, input.packet.as_deref(), None);
        env.model.begin_run();
        env.model.config_mut().cpu = input.cpu;
        *machine.memory_mut() = Default::default();
        machine
            .start(input.program as usize, &ctx)
            .map_err(|f| format!("input {seq} cannot start: {f}"))?;
        let r0 = machine
            .run(&mut env)
            .map_err(|f| format!("input {seq} faults in the model run: {f}"))?;
        env.model.end_run(machine.memory());
        invocations.push(Invocation {
            seq: seq as u64,
            cpu: input.cpu,
            cpu_seq: seq as u64,
            time_ns: 1000 * (seq as u64 + 1),
            program: input.program,
            ctx: input.ctx.clone(),
            packet: input.packet.clone(),
            events: std::mem::take(&mut env.events),
            retval: r0,
            final_packet: input
                .packet
                .as_ref()
                .map(|_| machine.memory().packet_data().unwrap_or_default().to_vec()),
            ..Invocation::default()
        });
    }
    let mut w = TraceWriter::create(path, meta, programs.to_vec(), maps.to_vec())
        .map_err(|e| e.to_string())?;
    for inv in invocations {
        w.push(inv).map_err(|e| e.to_string())?;
    }
    w.finish().map_err(|e| e.to_string())?;
    Trace::open(path).map_err(|e| e.to_string())
}

/// The programs (in object order) and maps of a BPF object as a trace
/// holds them: linked as the recorder links them (map references as
/// fd_array indices, `used_maps` = every map), line info decoded, global
/// data with its initial bytes as the start snapshot.
pub fn object_definitions(obj: &ObjectFile) -> Result<(Vec<Program>, Vec<Map>), String> {
    object_definitions_with_kfuncs(obj, None)
}

/// Like [`object_definitions`], with calls to kfuncs resolved by name
/// against `kernel_btf` (the bytes of `/sys/kernel/btf/vmlinux`) and named
/// in each program's `kfuncs`, as a recording names them.
pub fn object_definitions_with_kfuncs(
    obj: &ObjectFile,
    kernel_btf: Option<&[u8]>,
) -> Result<(Vec<Program>, Vec<Map>), String> {
    let defs = obj.maps();
    let fds: Vec<i32> = (0..defs.len() as i32).collect();
    // Parsed when a program calls a kfunc.
    let mut kernel: Option<Btf> = None;
    let mut programs = Vec::new();
    for (id, info) in obj.programs().iter().enumerate() {
        let linked = match kernel_btf {
            Some(b) => obj.link_with_kfuncs(&info.name, &fds, b),
            None => obj.link(&info.name, &fds),
        }
        .map_err(|e| format!("program {}: {e}", info.name))?;
        let mut kfuncs: Vec<KfuncName> = Vec::new();
        for r in &linked.insns {
            if r.code != 0x85 || r.src != PSEUDO_CALL_KFUNC {
                continue;
            }
            let btf_id = r.imm as u32;
            if kfuncs.iter().any(|k| k.btf_id == btf_id) {
                continue;
            }
            if kernel.is_none()
                && let Some(b) = kernel_btf
            {
                kernel = Some(
                    Btf::parse(b).map_err(|e| format!("the kernel's BTF cannot be read: {e}"))?,
                );
            }
            if let Some(t) = kernel.as_ref().and_then(|k| k.type_by_id(btf_id)) {
                kfuncs.push(KfuncName {
                    btf_id,
                    name: t.name.clone(),
                });
            }
        }
        let insns = linked
            .insns
            .iter()
            .map(|r| {
                let mut r = *r;
                // The recorder's convention: BPF_PSEUDO_MAP_IDX(_VALUE).
                if r.code == 0x18 && r.src == PSEUDO_MAP_FD {
                    r.src = PSEUDO_MAP_IDX;
                } else if r.code == 0x18 && r.src == PSEUDO_MAP_VALUE {
                    r.src = PSEUDO_MAP_IDX_VALUE;
                }
                r.to_bytes()
            })
            .collect();
        programs.push(Program {
            id: id as u32,
            name: info.name.clone(),
            section: info.section.clone(),
            prog_type: info.prog_type,
            insns,
            used_maps: (0..defs.len() as u32).collect(),
            line_info: linked
                .line_info
                .iter()
                .map(|l| LineInfo {
                    insn: l.insn as u32,
                    file: l.file.clone(),
                    line: l.line,
                    col: l.col,
                    text: l.text.clone(),
                })
                .collect(),
            kfuncs,
            ..Program::default()
        });
    }
    let maps = defs
        .iter()
        .enumerate()
        .map(|(id, d)| Map {
            id: id as u32,
            name: d.name.clone(),
            map_type: d.map_type,
            key_size: d.key_size,
            value_size: d.value_size,
            max_entries: d.max_entries,
            flags: d.flags,
            initial_data: d.initial_data.clone(),
            snapshots: vec![MapSnapshot {
                when: SnapshotTime::Start,
                n_cpus: 1,
                entries: d
                    .initial_data
                    .iter()
                    .map(|v| MapEntry {
                        key: vec![0; 4],
                        value: v.clone(),
                    })
                    .collect(),
            }],
            frozen: d.read_only,
            ..Map::default()
        })
        .collect();
    Ok((programs, maps))
}
