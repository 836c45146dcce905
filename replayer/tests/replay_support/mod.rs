//! Making traces in tests: a "recording" is a model run whose helper calls
//! are logged the way the recorder logs them in the kernel (instruction,
//! id, r0, bytes written through output arguments, the value bytes of a
//! lookup as output 0; tail calls before they happen; callback-taking
//! helpers after their callbacks). Replaying such a trace with
//! `RecordedEnv` must give the same run: a check that the recorded and the
//! model environments agree.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use bpfrr_replayer::env::ModelEnv;
use bpfrr_replayer::env::recorded::{NO_TAIL_CALL_TARGET, RETURNED_MEMORY_ARG};
use bpfrr_replayer::replay::setup::{initial_models, invocation_context, vm_program};
use bpfrr_replayer::vm::{Callee, Env, Fault, HelperCall, HelperOutcome, Machine, RegionKind};
use bpfrr_trace::catalog::{OutSize, helper, helper_by_name};
use bpfrr_trace::isa::{Imm64Kind, Insn, RawInsn, encode_all};
use bpfrr_trace::trace::{
    EventKind, HelperEvent, HelperOutput, Invocation, LineInfo, Map, MapEntry, MapSnapshot,
    Program, SnapshotTime, Trace, TraceMeta, TraceWriter, VerifierInfo,
};

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

impl Env for RecordingEnv {
    fn call_helper(&mut self, id: i32, call: &mut HelperCall<'_>) -> Result<HelperOutcome, Fault> {
        let spec = helper(id).expect("a known helper");
        // Output buffers and their sizes, as the instrumentation spills them before the call.
        let outs: Vec<(u8, u64, usize)> = spec
            .output_args()
            .iter()
            .map(|o| {
                let size = match o.size {
                    OutSize::Arg(n) => call.arg(n as usize + 1) as usize,
                    OutSize::Fixed(n) => n as usize,
                    OutSize::MapValue => map_sizes(&self.model, call, 1).map_or(0, |s| s.1),
                    OutSize::MapKey => map_sizes(&self.model, call, 1).map_or(0, |s| s.0),
                };
                (o.arg + 1, call.arg(o.arg as usize + 1), size)
            })
            .collect();
        let returned = spec.returned_memory().map(|s| match s {
            OutSize::MapValue => map_sizes(&self.model, call, 1).map_or(0, |s| s.1),
            OutSize::Arg(n) => call.arg(n as usize + 1) as usize,
            OutSize::Fixed(n) => n as usize,
            OutSize::MapKey => map_sizes(&self.model, call, 1).map_or(0, |s| s.0),
        });
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

    fn resolve_imm64(
        &mut self,
        kind: Imm64Kind,
        imm: u64,
        call: &mut HelperCall<'_>,
    ) -> Result<u64, Fault> {
        // The trace convention: map references are fd_array indices.
        let map = |imm: u64| {
            let id = self.used_maps[call.prog()][imm as u32 as usize];
            (imm & !0xffff_ffff) | id as u64
        };
        let (kind, imm) = match kind {
            Imm64Kind::MapIdx => (Imm64Kind::MapFd, map(imm)),
            Imm64Kind::MapIdxValue => (Imm64Kind::MapValue, map(imm)),
            other => (other, imm),
        };
        self.model.resolve_imm64(kind, imm, call)
    }
}

/// One input of a recording: program, context bytes, packet.
#[derive(Clone, Debug, Default)]
pub struct Input {
    pub program: u32,
    pub cpu: u32,
    pub ctx: Vec<u8>,
    pub packet: Option<Vec<u8>>,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn temp_path(tag: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("replay-{tag}-{}-{n}.bpfrr", std::process::id()))
}

pub fn meta() -> TraceMeta {
    TraceMeta {
        bpfrr_version: "test".into(),
        n_cpus: 2,
        ..TraceMeta::default()
    }
}

/// Writes a trace and opens it again.
pub fn write_trace(programs: &[Program], maps: &[Map], invocations: Vec<Invocation>) -> Trace {
    let path = temp_path("t");
    let mut w = TraceWriter::create(&path, meta(), programs.to_vec(), maps.to_vec())
        .expect("trace definitions are valid");
    for inv in invocations {
        w.push(inv).expect("invocation is valid");
    }
    w.finish().expect("trace written");
    let bytes = std::fs::read(&path).expect("trace readable");
    let _ = std::fs::remove_file(&path);
    Trace::from_bytes(bytes).expect("trace opens")
}

/// Runs `inputs` in order on the models of a trace with `programs` and
/// `maps` (as the recorder would see them in the kernel) and returns the
/// trace holding the recorded invocations. `configure` may set up the
/// model (user memory, task) before the first run.
pub fn record(
    programs: &[Program],
    maps: &[Map],
    inputs: &[Input],
    configure: impl FnOnce(&mut ModelEnv),
) -> Trace {
    let defs = write_trace(programs, maps, vec![]);
    let (mut model, _, notes) = initial_models(&defs);
    assert!(notes.is_empty(), "every test map is modelled: {notes:?}");
    configure(&mut model);
    let vm: Vec<_> = programs
        .iter()
        .map(|p| vm_program(p).expect("test program loads").0)
        .collect();
    let mut machine = Machine::with_programs(vm);
    let mut env = RecordingEnv {
        model,
        events: vec![],
        used_maps: programs.iter().map(|p| p.used_maps.clone()).collect(),
    };
    let mut invocations = vec![];
    for (seq, input) in inputs.iter().enumerate() {
        let p = &programs[input.program as usize];
        let ctx = invocation_context(p.prog_type, &input.ctx, input.packet.as_deref(), None);
        env.model.begin_run();
        env.model.config_mut().cpu = input.cpu;
        *machine.memory_mut() = Default::default();
        machine.start(input.program as usize, &ctx).expect("starts");
        let r0 = machine.run(&mut env).expect("the model run succeeds");
        env.model.end_run(machine.memory());
        invocations.push(Invocation {
            seq: seq as u64,
            cpu: input.cpu,
            cpu_seq: seq as u64,
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
    write_trace(programs, maps, invocations)
}

/// A trace program from instructions.
pub fn trace_program(id: u32, name: &str, prog_type: u32, insns: &[Insn]) -> Program {
    let raw: Vec<RawInsn> = encode_all(insns);
    Program {
        id,
        name: name.into(),
        prog_type,
        insns: raw.iter().map(|r| r.to_bytes()).collect(),
        ..Program::default()
    }
}

/// Line info: one source line per listed instruction.
pub fn lines(entries: &[(u32, u32, &str)]) -> Vec<LineInfo> {
    entries
        .iter()
        .map(|&(insn, line, text)| LineInfo {
            insn,
            file: "test.bpf.c".into(),
            line,
            col: 1,
            text: text.into(),
        })
        .collect()
}

pub fn verifier(depths: &[u32]) -> Option<VerifierInfo> {
    Some(VerifierInfo {
        accepted: true,
        stack_depths: depths.to_vec(),
        ..VerifierInfo::default()
    })
}

/// A trace map with a start snapshot.
pub fn trace_map(
    id: u32,
    name: &str,
    map_type: u32,
    (key_size, value_size, max_entries): (u32, u32, u32),
    entries: Vec<(Vec<u8>, Vec<u8>)>,
) -> Map {
    Map {
        id,
        name: name.into(),
        map_type,
        key_size,
        value_size,
        max_entries,
        snapshots: vec![MapSnapshot {
            when: SnapshotTime::Start,
            n_cpus: 1,
            entries: entries
                .into_iter()
                .map(|(key, value)| MapEntry { key, value })
                .collect(),
        }],
        ..Map::default()
    }
}

/// An owned copy of every invocation, for doctoring.
pub fn invocations(trace: &Trace) -> Vec<Invocation> {
    (0..trace.invocation_count())
        .map(|i| trace.invocation_owned(i).expect("invocation readable"))
        .collect()
}

/// The same trace with its invocations replaced.
pub fn with_invocations(trace: &Trace, invocations: Vec<Invocation>) -> Trace {
    write_trace(trace.programs(), trace.maps(), invocations)
}

pub fn helper_id(name: &str) -> u32 {
    helper_by_name(name).expect("known helper").id
}

pub fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex"))
        .collect()
}
