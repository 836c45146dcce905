//! The data model of a trace: what one recording holds.
//!
//! Every type here is stored with rkyv (archive + bytecheck validation), so the
//! reader can hand out `Archived*` views straight from the mapped file. The
//! types stay plain (byte vectors, strings, integers, fieldless enums) so the
//! archived form is easy to read: integers become little-endian wrappers
//! (`.to_native()`), `Vec<u8>` becomes an `ArchivedVec<u8>` that derefs to
//! `&[u8]`, `Option<T>` becomes `ArchivedOption` (`.as_ref()`).
//!
//! Indices: a program's `id` is its position in the trace's program list and
//! a map's `id` its position in the map list; everything that points at a
//! program or a map (invocations, tail-call targets, `used_maps`) uses these
//! positions, and the reader checks them, so consumers may index directly.

use rkyv::{Archive, Deserialize, Serialize};

/// Who recorded the trace, where and how.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
#[rkyv(derive(Debug))]
pub struct TraceMeta {
    /// The container format version the file was written with (the writer
    /// fills this in; equal to the header's version).
    pub format_version: u32,
    /// `CARGO_PKG_VERSION` of the bpfrr that recorded.
    pub bpfrr_version: String,
    /// `uname -r` of the recording machine, e.g. "6.18.0-1-amd64".
    pub kernel_release: String,
    /// `uname -m` of the recording machine, e.g. "x86_64".
    pub arch: String,
    pub hostname: Option<String>,
    /// The command line that made the recording, one argument per element.
    pub command: Vec<String>,
    /// Start of the recording, nanoseconds since the Unix epoch.
    pub start_time_ns: u64,
    /// Number of possible CPUs on the recording machine (per-CPU map values
    /// hold this many values).
    pub n_cpus: u32,
    /// Free text (e.g. why the recording stopped).
    pub notes: String,
}

/// One BPF program as the kernel received it.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
#[rkyv(derive(Debug))]
pub struct Program {
    /// Position in the trace's program list.
    pub id: u32,
    pub name: String,
    /// ELF section the program came from, e.g. "xdp" or "tracepoint/syscalls/sys_enter_openat".
    pub section: String,
    /// The kernel's `enum bpf_prog_type`.
    pub prog_type: u32,
    /// The kernel's `enum bpf_attach_type` given at load time.
    pub expected_attach_type: u32,
    /// Where it was attached ("eth0", "syscalls:sys_enter_openat", a binary
    /// and symbol, or "test_run" when driven by BPF_PROG_TEST_RUN).
    pub attach_point: String,
    /// License string given to the kernel (decides GPL-only helpers).
    pub license: String,
    /// The original instructions after relocation, one 8-byte little-endian
    /// slot each (`isa::RawInsn::from_bytes`). Map references in `ld_imm64`
    /// use `BPF_PSEUDO_MAP_IDX` / `BPF_PSEUDO_MAP_IDX_VALUE` with `imm` an
    /// index into `used_maps` (the kernel's fd_array convention), so the
    /// instructions do not depend on file descriptors of the recording run.
    pub insns: Vec<[u8; 8]>,
    /// Trace map ids this program uses, in `fd_array` order.
    pub used_maps: Vec<u32>,
    /// Raw BTF blob of the object file (types, strings), if it had one.
    pub btf: Option<Vec<u8>>,
    /// BTF func info: which instruction starts which function.
    pub func_info: Vec<FuncInfo>,
    /// BTF line info, decoded: source position and text per instruction.
    pub line_info: Vec<LineInfo>,
    /// Names of the kfuncs the program calls, by BTF id in the kernel's BTF.
    pub kfuncs: Vec<KfuncName>,
    /// What the verifier said when the original program was loaded.
    pub verifier: Option<VerifierInfo>,
    /// The JIT image of the loaded program, when the kernel exposed it.
    pub jit: Option<JitInfo>,
    /// Tail-call slots known at recording time (prog array map + slot -> program).
    pub tail_call_targets: Vec<TailCallTarget>,
}

/// BTF `bpf_func_info`: function starting at `insn`.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
#[rkyv(derive(Debug))]
pub struct FuncInfo {
    /// Instruction index (in `Program::insns`) where the function starts.
    pub insn: u32,
    /// BTF type id of the function (`BTF_KIND_FUNC`).
    pub type_id: u32,
    pub name: String,
}

/// BTF `bpf_line_info`, with the strings resolved.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
#[rkyv(derive(Debug))]
pub struct LineInfo {
    /// First instruction index (in `Program::insns`) of this source line.
    pub insn: u32,
    pub file: String,
    pub line: u32,
    pub col: u32,
    /// The source text of the line, as the BTF string table holds it.
    pub text: String,
}

/// A kfunc's name, so a call by BTF id can be shown by name.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
#[rkyv(derive(Debug))]
pub struct KfuncName {
    pub btf_id: u32,
    pub name: String,
}

/// The verifier's verdict on the original (uninstrumented) program.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
#[rkyv(derive(Debug))]
pub struct VerifierInfo {
    /// The full verifier log.
    pub log: String,
    /// `log_level` it was produced with (1 = branches, 2 = every instruction).
    pub log_level: u32,
    /// Whether the kernel accepted the program.
    pub accepted: bool,
    pub stats: VerifierStats,
    /// Stack depth of each subprogram (bytes), from the log's summary line.
    pub stack_depths: Vec<u32>,
    pub verification_time_usec: u64,
}

/// The numbers of the verifier log's last line.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
#[rkyv(derive(Debug))]
pub struct VerifierStats {
    pub insns_processed: u64,
    pub max_states_per_insn: u64,
    pub total_states: u64,
    pub peak_states: u64,
    pub mark_read: u64,
}

/// The native code of the loaded program.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
#[rkyv(derive(Debug))]
pub struct JitInfo {
    /// Architecture of `image` ("x86_64", "aarch64").
    pub arch: String,
    /// The JIT-ed machine code.
    pub image: Vec<u8>,
    /// Native offset in `image` of each xlated instruction (the kernel's
    /// jited line table, `jited_line_info` / `jited_ksyms` per insn). When
    /// `orig_to_xlated` is filled, exact at the first xlated instruction of
    /// every original instruction; otherwise (and inside a sequence the
    /// verifier put in place of one instruction) the offset of the enclosing
    /// line record.
    pub insn_offsets: Vec<u32>,
    /// The kernel's translated instructions (`xlated_prog_insns`), one 8-byte slot each.
    pub xlated: Vec<[u8; 8]>,
    /// Per slot of `Program::insns`: the index in `xlated` of the first
    /// instruction the verifier made of it, or [`NOT_XLATED`] (removed as
    /// dead code, or the second slot of an `ld_imm64`). Empty when the
    /// kernel did not tell (then only line-granular offsets are known).
    pub orig_to_xlated: Vec<u32>,
}

/// `JitInfo::orig_to_xlated` of an original slot that has no xlated instruction.
pub const NOT_XLATED: u32 = u32::MAX;

/// Slot `slot` of prog-array map `map` held program `program` while recording.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
#[rkyv(derive(Debug))]
pub struct TailCallTarget {
    /// Trace map id of the `BPF_MAP_TYPE_PROG_ARRAY`.
    pub map: u32,
    pub slot: u32,
    /// Trace program id.
    pub program: u32,
}

/// One BPF map: its definition and its contents at the start and end.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
#[rkyv(derive(Debug))]
pub struct Map {
    /// Position in the trace's map list.
    pub id: u32,
    pub name: String,
    /// The kernel's `enum bpf_map_type`.
    pub map_type: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    /// `map_flags` (BPF_F_*).
    pub flags: u32,
    pub btf_key_type_id: u32,
    pub btf_value_type_id: u32,
    /// For map-in-map types: the inner map's definition.
    pub inner: Option<InnerMap>,
    /// For global data maps (.data, .rodata, .bss): the section's initial bytes.
    pub initial_data: Option<Vec<u8>>,
    /// Contents captured during the recording (normally one at Start and one at End).
    pub snapshots: Vec<MapSnapshot>,
    /// The map was frozen (read-only from userspace, e.g. .rodata).
    pub frozen: bool,
}

/// Definition of the inner map of a map-in-map.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
#[rkyv(derive(Debug))]
pub struct InnerMap {
    pub map_type: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub flags: u32,
}

/// When a snapshot was taken.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[rkyv(derive(Debug, PartialEq, Eq, Clone, Copy))]
pub enum SnapshotTime {
    /// Before the first recorded invocation.
    #[default]
    Start,
    /// After the last recorded invocation.
    End,
}

/// All entries of a map at one moment.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
#[rkyv(derive(Debug))]
pub struct MapSnapshot {
    pub when: SnapshotTime,
    /// Values per entry: the number of CPUs for per-CPU maps (each value is
    /// then `n_cpus` values of `value_size` bytes, concatenated in CPU
    /// order), 1 otherwise.
    pub n_cpus: u32,
    pub entries: Vec<MapEntry>,
}

/// One key and its value bytes.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
#[rkyv(derive(Debug))]
pub struct MapEntry {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
}

/// One run of one program, with everything the replayer needs to redo it.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
#[rkyv(derive(Debug))]
pub struct Invocation {
    /// Global sequence number, in recording order.
    pub seq: u64,
    pub cpu: u32,
    /// Sequence number among the invocations of the same CPU.
    pub cpu_seq: u64,
    /// Entry time on the kernel's CLOCK_MONOTONIC, in ns: live recordings
    /// read `bpf_ktime_get_ns` at each entry; test-run recordings, where
    /// the recorder starts every invocation itself, stamp each with the
    /// time its BPF_PROG_TEST_RUN call started (the `--repeat`s of an
    /// input share it).
    pub time_ns: u64,
    /// Trace program id.
    pub program: u32,
    /// The context the program was called with (e.g. `struct xdp_md`), raw bytes.
    pub ctx: Vec<u8>,
    /// For packet programs: the packet from `data` to `data_end` at entry.
    pub packet: Option<Vec<u8>>,
    /// For packet programs: the bytes between `data_meta` and `data` at entry.
    pub packet_meta: Option<Vec<u8>>,
    /// Set when `packet` was cut to the snap length: the real packet length.
    pub packet_truncated_from: Option<u32>,
    /// Helper, kfunc and tail calls in execution order.
    pub events: Vec<HelperEvent>,
    /// Values read through BTF pointers (fentry, tp_btf) in execution order.
    pub btf_loads: Vec<BtfLoad>,
    /// The program's return value (r0 at exit).
    pub retval: u64,
    /// For packet programs: the packet as the program left it.
    pub final_packet: Option<Vec<u8>>,
    /// The record is incomplete (a ring buffer record of it was lost, or the
    /// recording stopped in the middle); replay it only up to what it holds.
    pub partial: bool,
}

/// What kind of call an event records.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[rkyv(derive(Debug, PartialEq, Eq, Clone, Copy))]
pub enum EventKind {
    /// `id` is the helper number (`enum bpf_func_id`).
    #[default]
    Helper,
    /// `id` is the kfunc's BTF id (see `Program::kfuncs`).
    Kfunc,
    /// `bpf_tail_call`: `id` is the trace program id that ran next, or
    /// `u32::MAX` when the slot was empty and execution fell through.
    TailCall,
}

/// One helper / kfunc / tail call and what it produced.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
#[rkyv(derive(Debug))]
pub struct HelperEvent {
    /// Index of the call instruction in `Program::insns` (the original program).
    pub insn: u32,
    pub kind: EventKind,
    pub id: u32,
    /// r0 after the call.
    pub ret: u64,
    /// Bytes the call wrote through its pointer arguments.
    pub outputs: Vec<HelperOutput>,
}

/// Memory a helper wrote through argument `arg` (1-5).
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
#[rkyv(derive(Debug))]
pub struct HelperOutput {
    pub arg: u8,
    pub bytes: Vec<u8>,
}

/// A value the program read through a BTF pointer (not replayable from memory).
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
#[rkyv(derive(Debug))]
pub struct BtfLoad {
    /// Index of the load instruction in `Program::insns`.
    pub insn: u32,
    pub value: u64,
}

/// Records lost on one CPU (ring buffer full): nothing is lost silently.
#[derive(
    Archive,
    Serialize,
    Deserialize,
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
#[rkyv(derive(Debug))]
pub struct LostCount {
    pub cpu: u32,
    pub count: u64,
}

impl ArchivedEventKind {
    /// The native enum, for matching.
    pub fn to_native(&self) -> EventKind {
        match self {
            ArchivedEventKind::Helper => EventKind::Helper,
            ArchivedEventKind::Kfunc => EventKind::Kfunc,
            ArchivedEventKind::TailCall => EventKind::TailCall,
        }
    }
}

impl ArchivedSnapshotTime {
    /// The native enum, for matching.
    pub fn to_native(&self) -> SnapshotTime {
        match self {
            ArchivedSnapshotTime::Start => SnapshotTime::Start,
            ArchivedSnapshotTime::End => SnapshotTime::End,
        }
    }
}

impl ArchivedInvocation {
    /// An owned copy of this invocation.
    pub fn to_owned_invocation(&self) -> Invocation {
        // Plain data (no shared pointers) only fails to deserialize on an
        // allocation failure, which aborts anyway.
        rkyv::deserialize::<Invocation, rkyv::rancor::Error>(self)
            .expect("deserializing validated plain data cannot fail")
    }
}

impl Invocation {
    /// Estimate of the archived size in bytes: the payload bytes plus a fixed
    /// cost per record. The writer uses it to cut blocks and to account the
    /// memory it holds; it need not be exact.
    pub fn approx_archived_size(&self) -> usize {
        const FIXED: usize = 112;
        const PER_EVENT: usize = 32;
        const PER_OUTPUT: usize = 16;
        const PER_BTF_LOAD: usize = 16;
        let opt = |v: &Option<Vec<u8>>| v.as_ref().map_or(0, |b| b.len() + 8);
        let events: usize = self
            .events
            .iter()
            .map(|e| {
                PER_EVENT
                    + e.outputs
                        .iter()
                        .map(|o| PER_OUTPUT + o.bytes.len())
                        .sum::<usize>()
            })
            .sum();
        FIXED
            + self.ctx.len()
            + opt(&self.packet)
            + opt(&self.packet_meta)
            + opt(&self.final_packet)
            + events
            + self.btf_loads.len() * PER_BTF_LOAD
    }
}
