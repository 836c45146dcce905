//! Preparing a recording: load the object, load the ORIGINAL program (and
//! every program it can tail-call) with the full verifier log, create
//! bpfrr's two maps, instrument each program and load the instrumented
//! copies, and fill the program arrays.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

use bpfrr_trace::catalog::{MapType, ProgType};
use bpfrr_trace::isa::RawInsn;
use bpfrr_trace::object::LinkedProgram;

use crate::attach::AttachSpec;
use crate::instrument::packet_writes::may_change_packet;
use crate::instrument::probes::{entry_size, exit_size};
use crate::instrument::{
    CtxCapture, InstrumentError, Instrumented, LogSites, MapShape, PacketAccess, ProbeConfig,
    find_sites, instrument,
};
use crate::load::{LoadError, LoadOptions, LoadedObject, LoadedProgram};
use crate::sys::{
    BpfMap, LogLevel, MapSpec, ProgInfo, ProgLoad, RecordTable, SysError, current_cpu,
    possible_cpus, prog_info,
};
use crate::wire::{STATE_CPU, STATE_LOST, state_value_size};

use super::ctx_fields::context_capture;
use super::driver::CaptureHints;
use super::flush::{FlushProgram, online_cpus};

/// Default ring buffer size (`--buffer`).
pub const DEFAULT_BUFFER: u32 = 16 << 20;
/// Packet capture when neither `--snaplen` nor the driver says (jumbo frames).
pub const DEFAULT_SNAPLEN: u32 = 9216;
/// The largest snap length (BIG TCP packets): the per-CPU scratch buffer
/// holds twice an entry and an exit record of this size, and an array
/// value may not exceed 4 MiB. Longer packets are cut, their real length
/// kept.
pub const MAX_SNAPLEN: u32 = 256 << 10;
/// Bytes of XDP metadata captured (the kernel allows at most 32).
pub const META_CAP: u32 = 32;
/// Bytes captured of a helper output whose size is not a constant.
pub const OUTPUT_CAP: u32 = 512;
/// Programs whose verification processed fewer instructions than this
/// get probes that share the entry's state lookup (their verification
/// doubles, far from the kernel's limit of a million).
pub const REUSE_STATE_MAX_PROCESSED: u64 = 100_000;
/// Largest map value a helper probe copies with plain loads.
pub const INLINE_COPY_MAX: u32 = 64;
/// Batch size: an outermost invocation's exit sends the CPU's committed
/// invocations once they reach this many bytes (`ProbeConfig::batch_bytes`).
pub const BATCH_BYTES: u32 = 4096;
/// Smallest per-CPU scratch buffer: room for an invocation's records (a
/// thousand helper records besides its packets) and for a nested one.
pub const MIN_SCRATCH: u32 = 64 << 10;

/// Why preparing a recording failed.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Sys(#[from] SysError),
    #[error("the object has no program named {name:?}; it has: {available} (pick one with --prog)")]
    NoSuchProgram { name: String, available: String },
    #[error("the object has no programs")]
    NoPrograms,
    #[error("program {program:?} cannot be instrumented: {source}")]
    Instrument {
        program: String,
        #[source]
        source: InstrumentError,
    },
    /// The kernel rejected the instrumented copy: a bpfrr bug.
    #[error(
        "bpfrr bug: the kernel rejected the instrumented copy of {program:?} ({errno}) although it accepted the original; please report it with the object file. The end of the verifier log, with original instruction numbers:\n{tail}"
    )]
    InstrumentedRejected {
        program: String,
        errno: String,
        tail: String,
        log: String,
    },
    #[error(
        "the verifier log of {program:?} has no stack depths (it was truncated); bpfrr cannot place its scratch slots"
    )]
    NoStackDepths { program: String },
}

/// What to prepare.
#[derive(Clone, Debug, Default)]
pub struct PrepareOptions {
    /// The program to record (None: the object's first program).
    pub program: Option<String>,
    /// `--snaplen`: bytes of packet captured at entry and exit.
    pub snaplen: Option<u32>,
    /// `--buffer`: ring buffer size in bytes (a power of two, >= 4096).
    pub buffer_size: Option<u32>,
    pub hints: CaptureHints,
    /// Batch size in bytes (None: [`BATCH_BYTES`]; 0: every invocation
    /// leaves on its own, as in a ring buffer item of its own).
    pub batch_bytes: Option<u32>,
    /// Load tracing programs for this target instead of their section's
    /// (the live driver's `--fentry FUNC` / `--tp-btf NAME`).
    pub retarget: Option<AttachSpec>,
}

/// bpfrr's own maps.
#[derive(Debug)]
pub struct BpfrrMaps {
    /// `bpfrr_rb`: the ring buffer.
    pub ringbuf: BpfMap,
    /// `bpfrr_state`: an array with one value per CPU (`{cpu_seq, lost,
    /// tail_pending, cpu, ...}` then the CPU's scratch buffer, see
    /// `crate::wire`).
    pub state: BpfMap,
    /// Bytes of each CPU's scratch buffer.
    pub scratch: u32,
    /// The flush program: sends a CPU's committed invocations.
    pub flush: FlushProgram,
}

impl BpfrrMaps {
    pub fn create(buffer_size: u32, scratch: u32) -> Result<BpfrrMaps, SysError> {
        if buffer_size < 4096 || !buffer_size.is_power_of_two() {
            return Err(SysError::InvalidArgument(format!(
                "--buffer {buffer_size}: the ring buffer size must be a power of two of at least 4096 bytes (e.g. 16M)"
            )));
        }
        let ringbuf = BpfMap::create(&MapSpec {
            map_type: MapType::Ringbuf.number(),
            max_entries: buffer_size,
            name: "bpfrr_rb".into(),
            ..MapSpec::default()
        })?;
        let cpus = possible_cpus();
        let state = BpfMap::create(&MapSpec {
            map_type: MapType::Array.number(),
            key_size: 4,
            value_size: state_value_size(scratch),
            max_entries: cpus as u32,
            name: "bpfrr_state".into(),
            ..MapSpec::default()
        })?;
        // Each CPU's value knows its CPU number (written into every entry).
        let mut value = vec![0u8; state_value_size(scratch) as usize];
        for cpu in 0..cpus {
            let at = STATE_CPU as usize;
            value[at..at + 4].copy_from_slice(&(cpu as u32).to_le_bytes());
            state.update(&(cpu as u32).to_le_bytes(), &value, 0)?;
        }
        let flush = FlushProgram::load(&ringbuf, &state, scratch)?;
        Ok(BpfrrMaps {
            ringbuf,
            state,
            scratch,
            flush,
        })
    }

    /// Sends the committed invocations of every online CPU to the ring
    /// buffer (those of a CPU with an invocation running stay for the next
    /// flush).
    pub fn flush(&self) -> Result<(), SysError> {
        self.flush.run_on_cpus(online_cpus())
    }

    /// Sends the committed invocations after a driver's step: of the CPU a
    /// pinned test run is on (`CaptureHints::pinned_cpu`), or of every
    /// online CPU when nothing is pinned or the calling thread is no longer
    /// on its CPU (it went offline and the kernel moved the thread).
    pub fn flush_after_step(&self, pinned_cpu: Option<u32>) -> Result<(), SysError> {
        match pinned_cpu {
            Some(cpu) if current_cpu() == Some(cpu) => self.flush.run_on_cpus([cpu]),
            _ => self.flush(),
        }
    }

    /// Records lost per CPU (no room in the scratch or ring buffer), from
    /// the state map.
    pub fn lost_per_cpu(&self) -> Result<Vec<(u32, u64)>, SysError> {
        let at = STATE_LOST as usize;
        (0..possible_cpus() as u32)
            .map(|cpu| {
                let lost = self
                    .state
                    .lookup(&cpu.to_le_bytes())?
                    .and_then(|v| Some(u64::from_le_bytes(v.get(at..at + 8)?.try_into().ok()?)))
                    .unwrap_or(0);
                Ok((cpu, lost))
            })
            .collect()
    }
}

/// The scratch buffer each CPU needs for records of at most `entry` and
/// `exit` bytes: both, twice (an invocation nested in another), and room
/// for helper records; plus the batch of committed invocations (less
/// than `batch` bytes when the next one starts).
pub fn scratch_size(entry: usize, exit: usize, batch: u32) -> u32 {
    let need = 2 * (entry + exit) + (16 << 10);
    (need.next_multiple_of(4096) as u32).max(MIN_SCRATCH) + batch
}

/// One program of the recording: the original and its instrumented copy.
#[derive(Debug)]
pub struct PreparedProgram {
    /// Its id in the trace (0 = the program recorded, then tail-call targets).
    pub id: u32,
    pub original: LoadedProgram,
    pub instrumented: Instrumented,
    /// The instrumented copy in the kernel.
    pub fd: OwnedFd,
    pub instrumented_log: String,
    pub instrumented_info: ProgInfo,
    pub probe_config: ProbeConfig,
}

/// A program-array slot filled for the recording.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TailSlot {
    /// Object map index of the program array.
    pub map: u32,
    pub slot: u32,
    /// Index into `Prepared::programs` (= trace program id).
    pub program: u32,
}

/// Everything loaded, ready to drive.
#[derive(Debug)]
pub struct Prepared {
    pub object: LoadedObject,
    pub bpfrr: BpfrrMaps,
    /// `[0]` is the program recorded; the others are tail-call targets.
    pub programs: Vec<PreparedProgram>,
    pub tail_slots: Vec<TailSlot>,
    /// Things the user should know (e.g. calls not recorded).
    pub notes: Vec<String>,
}

impl Prepared {
    /// Puts the instrumented (or, for comparisons, the original) programs
    /// into their program-array slots.
    pub fn fill_prog_arrays(&self, instrumented: bool) -> Result<(), SysError> {
        for s in &self.tail_slots {
            let p = &self.programs[s.program as usize];
            let fd = if instrumented {
                p.fd.as_raw_fd()
            } else {
                p.original.fd.as_raw_fd()
            };
            self.object.maps[s.map as usize].map.update(
                &s.slot.to_le_bytes(),
                &(fd as u32).to_le_bytes(),
                0,
            )?;
        }
        Ok(())
    }

    /// The object's maps as the instrumenter sees them.
    pub fn map_shapes(&self) -> Vec<MapShape> {
        map_shapes(&self.object)
    }
}

fn map_shapes(object: &LoadedObject) -> Vec<MapShape> {
    object
        .maps
        .iter()
        .enumerate()
        .map(|(i, m)| MapShape {
            fd: m.map.fd.as_raw_fd(),
            index: i as u32,
            map_type: m.def.map_type,
            key_size: m.def.key_size,
            value_size: m.def.value_size,
        })
        .collect()
}

/// How the packet is read for a program type.
pub fn packet_access(prog_type: u32) -> PacketAccess {
    match ProgType::from_number(prog_type) {
        Some(ProgType::Xdp) => PacketAccess::Xdp,
        Some(
            ProgType::SocketFilter | ProgType::SchedCls | ProgType::SchedAct | ProgType::CgroupSkb,
        ) => PacketAccess::Skb,
        _ => PacketAccess::None,
    }
}

/// Loads, instruments and loads again. `path` is the object file.
pub fn prepare(path: &Path, opts: &PrepareOptions) -> Result<Prepared, PrepareError> {
    let mut object = LoadedObject::open(path)?;
    let names = object.program_names();
    if names.is_empty() {
        return Err(PrepareError::NoPrograms);
    }
    let main_name = match &opts.program {
        Some(n) if names.contains(n) => n.clone(),
        Some(n) => {
            return Err(PrepareError::NoSuchProgram {
                name: n.clone(),
                available: names.join(", "),
            });
        }
        None => names[0].clone(),
    };
    let load_opts = LoadOptions {
        retarget: opts.retarget.clone(),
        ..LoadOptions::default()
    };
    let main = object.load_program(&main_name, &load_opts)?;
    // Tail-call targets: when the object has program arrays, the other
    // programs of the same type go into slots 0, 1, ... of each, in file
    // order (the object declares no initial contents bpfrr could use).
    let prog_arrays: Vec<u32> = object
        .maps
        .iter()
        .enumerate()
        .filter(|(_, m)| m.def.map_type == MapType::ProgArray.number())
        .map(|(i, _)| i as u32)
        .collect();
    let mut originals = vec![main];
    let mut tail_slots = Vec::new();
    if !prog_arrays.is_empty() {
        let infos = object.object.programs();
        let targets: Vec<String> = infos
            .iter()
            .filter(|p| p.name != main_name && p.prog_type == originals[0].linked.prog_type)
            .map(|p| p.name.clone())
            .collect();
        for (slot, name) in targets.iter().enumerate() {
            let p = object.load_program(name, &load_opts)?;
            originals.push(p);
            for &map in &prog_arrays {
                let max = object.maps[map as usize].def.max_entries;
                if (slot as u32) < max {
                    tail_slots.push(TailSlot {
                        map,
                        slot: slot as u32,
                        program: originals.len() as u32 - 1,
                    });
                }
            }
        }
    }

    let shapes = map_shapes(&object);
    let snap = opts
        .snaplen
        .or(opts.hints.max_packet)
        .unwrap_or(DEFAULT_SNAPLEN)
        .min(MAX_SNAPLEN);
    // The exit probes skip the final packet when no program of the
    // recording (tail-call targets included) can change it.
    let packet_unchanged = !originals
        .iter()
        .any(|p| may_change_packet(&p.linked, &p.log));
    let batch_bytes = opts.batch_bytes.unwrap_or(BATCH_BYTES);
    let mut configs: Vec<ProbeConfig> = originals
        .iter()
        .enumerate()
        .map(|(id, original)| {
            let linked = &original.linked;
            ProbeConfig {
                prog_id: id as u32,
                ringbuf_fd: -1,
                state_fd: -1,
                ctx: context_capture(
                    linked.prog_type,
                    linked.expected_attach_type,
                    opts.hints.ctx_size,
                ),
                packet: packet_access(linked.prog_type),
                packet_cap: (snap as usize).next_multiple_of(8) as u32,
                meta_cap: META_CAP,
                output_cap: OUTPUT_CAP,
                scratch: 0,
                inline_copy_max: INLINE_COPY_MAX,
                reuse_state: original
                    .stats
                    .as_ref()
                    .is_some_and(|s| s.insns_processed < REUSE_STATE_MAX_PROCESSED),
                packet_unchanged,
                batch_bytes,
                entry_clock: opts.hints.pinned_cpu.is_none(),
                sites: log_sites(original),
            }
        })
        .collect();
    let scratch = configs
        .iter()
        .map(|c| scratch_size(entry_size(c), exit_size(c), batch_bytes))
        .max()
        .unwrap_or(MIN_SCRATCH);
    let bpfrr = BpfrrMaps::create(opts.buffer_size.unwrap_or(DEFAULT_BUFFER), scratch)?;
    for c in &mut configs {
        c.ringbuf_fd = bpfrr.ringbuf.fd.as_raw_fd();
        c.state_fd = bpfrr.state.fd.as_raw_fd();
        c.scratch = scratch;
    }

    let mut programs = Vec::new();
    let mut notes = Vec::new();
    for ((id, original), cfg) in originals.into_iter().enumerate().zip(configs) {
        let linked = &original.linked;
        let depths = original.stack_depths().to_vec();
        if depths.is_empty() {
            return Err(PrepareError::NoStackDepths {
                program: linked.name.clone(),
            });
        }
        let mut cfg = cfg;
        let (inst, fd, log) = loop {
            let inst = instrument(linked, &depths, &shapes, &cfg).map_err(|source| {
                PrepareError::Instrument {
                    program: linked.name.clone(),
                    source,
                }
            })?;
            match load_linked(&object, &inst.program, original.attach_btf_id) {
                Ok((fd, log)) => break (inst, fd, log),
                // A map value with special fields (bpf_spin_lock, timers,
                // kptrs) cannot be read with plain loads: copy with
                // bpf_probe_read_kernel instead.
                Err(SysError::Rejected { .. }) if cfg.inline_copy_max > 0 => {
                    cfg.inline_copy_max = 0;
                }
                Err(e) => return Err(rejected(e, &inst)),
            }
        };
        for (insn, why) in &cfg.sites.unrecorded_loads {
            notes.push(format!(
                "{}: the load through a BTF pointer at instruction {insn} is not recorded ({why}); replay stops there",
                linked.name
            ));
        }
        for (insn, what) in &inst.unprobed_calls {
            notes.push(format!(
                "{}: the call at instruction {insn} ({what}) is not recorded; replay cannot reproduce its result",
                linked.name
            ));
        }
        let info = prog_info(&fd)?;
        programs.push(PreparedProgram {
            id: id as u32,
            original,
            instrumented: inst,
            fd,
            instrumented_log: log,
            instrumented_info: info,
            probe_config: cfg,
        });
    }
    let prepared = Prepared {
        object,
        bpfrr,
        programs,
        tail_slots,
        notes,
    };
    prepared.fill_prog_arrays(true)?;
    Ok(prepared)
}

/// What the original's verifier log says about its BTF loads and kfunc
/// calls (nothing when the instructions do not decode: `instrument`
/// reports that).
fn log_sites(original: &LoadedProgram) -> LogSites {
    match bpfrr_trace::isa::check(&original.linked.insns) {
        Ok(checked) => find_sites(&original.log, &checked),
        Err(_) => LogSites::default(),
    }
}

/// Turns a rejection of the instrumented copy into the bpfrr-bug report,
/// with instruction numbers mapped back to the original.
fn rejected(e: SysError, inst: &Instrumented) -> PrepareError {
    match e {
        SysError::Rejected { errno, log } => {
            let mapped = map_log_to_original(&log, &inst.new_to_orig);
            PrepareError::InstrumentedRejected {
                program: inst.program.name.clone(),
                errno: crate::sys::errno_name(errno),
                tail: crate::sys::log_tail(&mapped, 25),
                log: mapped,
            }
        }
        other => PrepareError::Sys(other),
    }
}

/// Rewrites each verifier log line starting `N: ` (an instruction of the
/// instrumented program) to `N (original M): `.
pub fn map_log_to_original(log: &str, new_to_orig: &[u32]) -> String {
    let mut out = String::with_capacity(log.len() + log.len() / 8);
    for line in log.lines() {
        let digits = line.bytes().take_while(u8::is_ascii_digit).count();
        let mapped = (digits > 0 && line[digits..].starts_with(": "))
            .then(|| line[..digits].parse::<usize>().ok())
            .flatten()
            .and_then(|n| new_to_orig.get(n).map(|o| (n, *o)));
        match mapped {
            Some((n, o)) => {
                out.push_str(&format!("{n} (original {o}){}", &line[digits..]));
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// Loads an instrumented program with the object's BTF, func_info and
/// line_info (so the kernel checks that they are consistent).
fn load_linked(
    object: &LoadedObject,
    linked: &LinkedProgram,
    attach_btf_id: Option<u32>,
) -> Result<(OwnedFd, String), SysError> {
    let func_info: Vec<u8> = linked
        .func_info
        .iter()
        .flat_map(|f| {
            let mut rec = (f.insn as u32).to_le_bytes().to_vec();
            rec.extend(f.type_id.to_le_bytes());
            rec
        })
        .collect();
    let line_info = line_info_records(linked);
    let mut load = ProgLoad::new(linked.prog_type, &linked.insns);
    load.name = &linked.name;
    load.license = &linked.license;
    load.expected_attach_type = linked.expected_attach_type;
    load.attach_btf_id = attach_btf_id;
    load.log_level = LogLevel::BRIEF;
    if let Some(btf) = &object.btf {
        load.prog_btf = Some(btf.fd.as_fd());
        if !func_info.is_empty() {
            load.func_info = Some(RecordTable {
                bytes: &func_info,
                rec_size: 8,
            });
        }
        if let Some(lines) = &line_info
            && !lines.is_empty()
        {
            load.line_info = Some(RecordTable {
                bytes: lines,
                rec_size: 16,
            });
        }
    }
    let loaded = load.load()?;
    Ok((loaded.fd, loaded.log))
}

/// `bpf_line_info` records of a linked program, string offsets found in its
/// BTF string section (None when there is no BTF or a string is missing).
fn line_info_records(linked: &LinkedProgram) -> Option<Vec<u8>> {
    let btf = linked.btf.as_deref()?;
    let u32_at =
        |o: usize| -> Option<u32> { Some(u32::from_le_bytes(btf.get(o..o + 4)?.try_into().ok()?)) };
    if btf.get(0..2)? != [0x9f, 0xeb] {
        return None;
    }
    let hdr_len = u32_at(4)? as usize;
    let str_off = u32_at(16)? as usize;
    let str_len = u32_at(20)? as usize;
    let start = hdr_len.checked_add(str_off)?;
    let strings = btf.get(start..start.checked_add(str_len)?)?;
    let mut index = std::collections::HashMap::new();
    let mut s = 0;
    for (i, b) in strings.iter().enumerate() {
        if *b == 0 {
            if let Ok(text) = std::str::from_utf8(&strings[s..i]) {
                index.entry(text).or_insert(s as u32);
            }
            s = i + 1;
        }
    }
    let mut out = Vec::with_capacity(linked.line_info.len() * 16);
    for l in &linked.line_info {
        let file = *index.get(l.file.as_str())?;
        let text = *index.get(l.text.as_str())?;
        out.extend((l.insn as u32).to_le_bytes());
        out.extend(file.to_le_bytes());
        out.extend(text.to_le_bytes());
        out.extend(((l.line << 10) | (l.col & 0x3ff)).to_le_bytes());
    }
    Some(out)
}

/// The instructions as the trace stores them: map fds replaced by indices
/// into `used_maps` (`BPF_PSEUDO_MAP_IDX[_VALUE]`); `used_maps` is the
/// object's map list, so the index is the trace map id.
pub fn trace_insns(insns: &[RawInsn], map_fds: &[i32]) -> Vec<[u8; 8]> {
    use bpfrr_trace::isa::opcode::{
        CLASS_LD, MODE_IMM, PSEUDO_MAP_FD, PSEUDO_MAP_IDX, PSEUDO_MAP_IDX_VALUE, PSEUDO_MAP_VALUE,
        SIZE_DW,
    };
    let mut out: Vec<RawInsn> = insns.to_vec();
    let mut pc = 0;
    while pc < out.len() {
        let i = out[pc];
        if i.code == CLASS_LD | SIZE_DW | MODE_IMM {
            if let Some(idx) = map_fds.iter().position(|&fd| fd == i.imm) {
                match i.src {
                    PSEUDO_MAP_FD => {
                        out[pc].src = PSEUDO_MAP_IDX;
                        out[pc].imm = idx as i32;
                    }
                    PSEUDO_MAP_VALUE => {
                        out[pc].src = PSEUDO_MAP_IDX_VALUE;
                        out[pc].imm = idx as i32;
                    }
                    _ => {}
                }
            }
            pc += 2;
        } else {
            pc += 1;
        }
    }
    out.iter().map(|i| i.to_bytes()).collect()
}

/// Whether `CtxCapture` for this program is a raw copy (for reports).
pub fn is_raw_context(c: &CtxCapture) -> bool {
    matches!(c, CtxCapture::Bytes(_))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_are_mapped_to_original_instructions() {
        let log = "func#0 @0\n12: (85) call bpf_map_lookup_elem#1\nR1 type=scalar\n3: R0=1\n";
        let map = vec![0u32, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2];
        let out = map_log_to_original(log, &map);
        assert!(out.contains("12 (original 2): (85) call"), "{out}");
        assert!(out.contains("3 (original 1): R0=1"), "{out}");
        assert!(out.contains("func#0 @0\n"));
    }

    #[test]
    fn map_fds_become_indices() {
        use bpfrr_trace::isa::opcode::*;
        let insns = vec![
            RawInsn::new(CLASS_LD | SIZE_DW | MODE_IMM, 1, PSEUDO_MAP_FD, 0, 77),
            RawInsn::new(0, 0, 0, 0, 0),
            RawInsn::new(CLASS_LD | SIZE_DW | MODE_IMM, 2, PSEUDO_MAP_VALUE, 0, 55),
            RawInsn::new(0, 0, 0, 0, 8),
            RawInsn::new(CLASS_JMP | JMP_EXIT, 0, 0, 0, 0),
        ];
        let out = trace_insns(&insns, &[55, 77]);
        let a = RawInsn::from_bytes(out[0]);
        assert_eq!((a.src, a.imm), (PSEUDO_MAP_IDX, 1));
        let b = RawInsn::from_bytes(out[2]);
        assert_eq!((b.src, b.imm), (PSEUDO_MAP_IDX_VALUE, 0));
        assert_eq!(RawInsn::from_bytes(out[3]).imm, 8);
    }
}
