//! What each fuzz target does with its input, shared by the targets in
//! `fuzz_targets/` and the seed-corpus generator in `examples/`.
//!
//! Every function here feeds untrusted bytes through one public entry point
//! of bpfrr and then uses everything the result offers, the way a consumer
//! would. Errors are fine; a panic, a hang or an unbounded allocation is a
//! bug (libFuzzer reports it).

use bpfrr_replayer::replay::Replayer;
use bpfrr_replayer::vm::{
    Config, Context, Limits, Machine, Program, StepEffects, StepOutcome, UbpfHelpers,
};
use bpfrr_trace::btf::Btf;
use bpfrr_trace::isa::{DisasmOptions, RawInsn, check, decode, encode, format_insn};
use bpfrr_trace::object::ObjectFile;
use bpfrr_trace::trace::header::{ARCHIVE_ALIGN, FORMAT_VERSION, HEADER_LEN, MAGIC, checksum};
use bpfrr_trace::trace::{Trace, TraceDirectory};

// ---- trace_reader ----------------------------------------------------------

/// Opens `bytes` as a trace and, when it opens, reads everything: the
/// summary, every invocation (by index and by the iterator) as archived
/// views and as owned copies, and every reference the reader promises is
/// valid (program of an invocation, instruction of an event).
pub fn read_whole_trace(bytes: Vec<u8>) {
    let Ok(trace) = Trace::from_bytes(bytes) else {
        return;
    };
    let summary = trace.summary();
    assert_eq!(summary.invocation_count, trace.invocation_count());
    assert_eq!(summary.programs.len(), trace.programs().len());
    for p in trace.programs() {
        for f in &p.func_info {
            let _ = p.insns[f.insn as usize];
        }
        for l in &p.line_info {
            let _ = p.insns[l.insn as usize];
        }
    }
    // The file is at most a few MB, so the count of invocations it can
    // really hold is bounded; the cap only guards against a reader bug.
    let n = trace.invocation_count().min(100_000);
    for i in 0..n {
        match trace.invocation(i) {
            Ok(inv) => {
                let owned = inv.to_owned_invocation();
                let program = &trace.programs()[owned.program as usize];
                for e in &owned.events {
                    let _ = program.insns[e.insn as usize];
                }
                for l in &owned.btf_loads {
                    let _ = program.insns[l.insn as usize];
                }
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
    let mut seen = 0u64;
    for r in trace.iter_invocations() {
        match r {
            Ok(_) => seen += 1,
            Err(_) => break,
        }
    }
    assert!(seen <= trace.invocation_count());
    if trace.verify_all().is_ok() {
        assert_eq!(seen, trace.invocation_count());
    }
}

/// `bytes` made into a file that passes every checksum, so that mutations
/// reach the structure checks (bytecheck, directory rules) instead of
/// stopping at the first checksum: the header gets the magic, a known version and
/// the right payload length; the directory offset is kept when usable or
/// derived from the input; when the directory parses, every block checksum
/// in it is recomputed and the directory re-archived; then the directory
/// and header checksums are computed. `None` when the input is too short.
pub fn with_valid_checksums(bytes: &[u8]) -> Option<Vec<u8>> {
    let align = ARCHIVE_ALIGN as usize;
    if bytes.len() < HEADER_LEN + align {
        return None;
    }
    let mut file = bytes.to_vec();
    let slots = (file.len() - HEADER_LEN) / align;
    let asked = u64::from_le_bytes(file[24..32].try_into().ok()?);
    let dir_off = if asked >= HEADER_LEN as u64
        && asked.is_multiple_of(ARCHIVE_ALIGN)
        && asked < file.len() as u64
    {
        asked as usize
    } else {
        HEADER_LEN + align * (asked % slots as u64) as usize
    };
    // Keep a version the reader knows (older ones are converted on read);
    // only the current version's directory can be re-archived here.
    let asked_version = u32::from_le_bytes(file[8..12].try_into().ok()?);
    let version = if (1..=FORMAT_VERSION).contains(&asked_version) {
        asked_version
    } else {
        FORMAT_VERSION
    };
    let mut aligned = rkyv::util::AlignedVec::<16>::new();
    aligned.extend_from_slice(&file[dir_off..]);
    let current = version == FORMAT_VERSION;
    if let Some(mut dir) = current
        .then(|| TraceDirectory::from_archive_bytes(&aligned).ok())
        .flatten()
    {
        for b in &mut dir.blocks {
            let end = b.offset.checked_add(b.len);
            if let Some(end) = end.filter(|&e| e <= dir_off as u64) {
                b.checksum = checksum(&file[b.offset as usize..end as usize]);
            }
        }
        if let Ok(new) = dir.to_archive_bytes() {
            file.truncate(dir_off);
            file.extend_from_slice(&new);
        }
    }
    let len = file.len();
    file[0..8].copy_from_slice(&MAGIC);
    file[8..12].copy_from_slice(&version.to_le_bytes());
    file[12..16].copy_from_slice(&0u32.to_le_bytes());
    file[16..24].copy_from_slice(&((len - HEADER_LEN) as u64).to_le_bytes());
    file[24..32].copy_from_slice(&(dir_off as u64).to_le_bytes());
    file[32..40].copy_from_slice(&((len - dir_off) as u64).to_le_bytes());
    let dir_sum = checksum(&file[dir_off..]);
    file[40..48].copy_from_slice(&dir_sum.to_le_bytes());
    file[48..56].copy_from_slice(&0u64.to_le_bytes());
    let header_sum = checksum(&file[0..56]);
    file[56..64].copy_from_slice(&header_sum.to_le_bytes());
    Some(file)
}

// ---- trace_replay ------------------------------------------------------------

/// Instructions one replayed invocation may execute in the trace_replay target.
pub const REPLAY_STEP_BUDGET: u64 = 100_000;
/// Invocations the trace_replay target replays per input.
pub const REPLAYED_INVOCATIONS: u64 = 16;

/// Opens `bytes` as a trace and replays its first invocations under a step
/// budget: the models are built from the trace's maps and snapshots, every
/// recorded helper answer is used, and the report is formatted. Every
/// size the trace decides must be bounded (`bpfrr_replayer::limits`).
pub fn replay_trace(bytes: Vec<u8>) {
    let Ok(trace) = Trace::from_bytes(bytes) else {
        return;
    };
    let mut replayer = Replayer::new(&trace);
    replayer.set_step_budget(REPLAY_STEP_BUDGET);
    for i in 0..trace.invocation_count().min(REPLAYED_INVOCATIONS) {
        match replayer.replay(i) {
            Ok(report) => {
                let _ = report.to_string();
            }
            Err(e) => assert!(!e.to_string().is_empty()),
        }
    }
}

// ---- object_loader -----------------------------------------------------------

/// Parses `bytes` as a BPF object and uses all of it: programs, maps, text
/// sections (every slot decoded and disassembled), BTF, and linking every
/// program with map fds `0..n` (and once with one fd too few).
pub fn load_object(bytes: &[u8]) {
    let Ok(object) = ObjectFile::parse(bytes) else {
        return;
    };
    let maps = object.maps();
    let _ = object.license();
    for section in object.text_sections() {
        // The vm target fuzzes the disassembler; here a prefix shows that
        // the slots the object reader hands out decode as they should.
        disassemble_slots(&section.insns[..section.insns.len().min(1024)]);
    }
    if let Some(btf) = object.btf() {
        format_every_type(btf, bytes);
    }
    let fds: Vec<i32> = (0..maps.len() as i32).collect();
    for program in object.programs() {
        if let Ok(linked) = object.link(&program.name, &fds) {
            let n = linked.insns.len();
            assert!(linked.functions.iter().all(|f| f.start + f.len <= n));
            assert!(linked.func_info.iter().all(|f| f.insn < n));
            assert!(linked.line_info.iter().all(|l| l.insn < n));
            let _ = check(&linked.insns);
        }
        // Listings link without a kernel: kfunc calls named, never resolved.
        if let Ok((linked, kfunc_calls)) = object.link_for_listing(&program.name, &fds) {
            assert!(kfunc_calls.iter().all(|(pc, _)| *pc < linked.insns.len()));
        }
        if !fds.is_empty() {
            let _ = object.link(&program.name, &fds[1..]);
        }
    }
    let _ = object.link("no such program", &fds);
}

/// Parses `bytes` as a raw BTF blob and formats every type.
pub fn read_btf(bytes: &[u8]) {
    if let Ok(btf) = Btf::parse(bytes) {
        format_every_type(&btf, bytes);
    }
}

/// Names, sizes, members and a formatted value of every type of `btf`
/// (the value's bytes come from `data`, cut to at most 256 bytes).
fn format_every_type(btf: &Btf, data: &[u8]) {
    for (id, _) in btf.types() {
        let _ = btf.type_name(id);
        let _ = btf.resolve(id);
        let _ = btf.members(id);
        let size = btf.size_of(id).unwrap_or(0).min(256) as usize;
        let value = &data[..size.min(data.len())];
        let _ = btf.format_value(id, value);
    }
}

// ---- core_linker ----------------------------------------------------------------

/// Splits a core_linker input: a little-endian `u32` object length, the
/// object bytes, then the target BTF (empty: the object's own `.BTF`).
/// None when the length is past the end.
pub fn split_core_input(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let len = u32::from_le_bytes(data.get(..4)?.try_into().ok()?) as usize;
    let rest = &data[4..];
    (len <= rest.len()).then(|| rest.split_at(len))
}

/// The core_linker input made of `object` and `target_btf`.
pub fn join_core_input(object: &[u8], target_btf: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(4 + object.len() + target_btf.len());
    v.extend_from_slice(&(object.len() as u32).to_le_bytes());
    v.extend_from_slice(object);
    v.extend_from_slice(target_btf);
    v
}

/// Programs of one object the core_linker target links (a mutated object
/// can name hundreds; each link runs all of CO-RE again).
pub const CORE_LINKED_PROGRAMS: usize = 8;

/// Parses `object` and links its first programs with CO-RE against
/// `target_btf` (the object's own `.BTF` when empty), checking what the
/// linked program promises.
pub fn link_with_core(object: &[u8], target_btf: &[u8]) {
    let Ok(obj) = ObjectFile::parse(object) else {
        return;
    };
    let own;
    let target = if target_btf.is_empty() {
        own = obj.btf_bytes().map(<[u8]>::to_vec).unwrap_or_default();
        &own[..]
    } else {
        target_btf
    };
    let fds: Vec<i32> = (0..obj.maps().len() as i32).collect();
    for program in obj.programs().iter().take(CORE_LINKED_PROGRAMS) {
        if let Ok(linked) = obj.link_with_btf(&program.name, &fds, target) {
            let n = linked.insns.len();
            assert!(linked.functions.iter().all(|f| f.start + f.len <= n));
            assert!(linked.func_info.iter().all(|f| f.insn < n));
            assert!(linked.line_info.iter().all(|l| l.insn < n));
            let _ = check(&linked.insns);
        }
    }
}

/// True when a panic comes from aya-obj's own source: bpfrr runs aya-obj
/// under `catch_unwind` and turns such a panic into an error, so it is not
/// a crash. Any other panic (bpfrr's, std's from bpfrr code) is.
pub fn panic_is_inside_aya_obj(info: &std::panic::PanicHookInfo<'_>) -> bool {
    info.location()
        .is_some_and(|l| l.file().contains("aya-obj"))
}

/// Wraps the current panic hook (libFuzzer's, which aborts) so that panics
/// inside aya-obj unwind quietly to bpfrr's `catch_unwind`; every other
/// panic still reaches the old hook. Installed once.
pub fn install_core_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !panic_is_inside_aya_obj(info) {
                previous(info);
            }
        }));
    });
}

// ---- vm ---------------------------------------------------------------------

/// Instructions one run may execute in the vm target.
pub const VM_STEP_BUDGET: u64 = 10_000;
/// Fall-throughs of `may_goto` per run in the vm target.
pub const VM_MAY_GOTO_BUDGET: u64 = 1_000;

/// Splits a vm input: byte 0 is the memory length, then the memory, then
/// the instruction bytes (a trailing partial slot is dropped).
pub fn split_vm_input(data: &[u8]) -> (&[u8], &[u8]) {
    let Some((&mem_len, rest)) = data.split_first() else {
        return (&[], &[]);
    };
    let (mem, prog) = rest.split_at((mem_len as usize).min(rest.len()));
    (mem, &prog[..prog.len() / 8 * 8])
}

/// The vm input for a program and its memory (what the corpus generator writes).
pub fn join_vm_input(mem: &[u8], prog: &[u8]) -> Option<Vec<u8>> {
    let len = u8::try_from(mem.len()).ok()?;
    let mut v = vec![len];
    v.extend_from_slice(mem);
    v.extend_from_slice(prog);
    Some(v)
}

/// Decodes and disassembles every slot (ld_imm64 second halves included,
/// which decode rejects), and checks that `encode` inverts `decode`.
fn disassemble_slots(raw: &[RawInsn]) {
    for pc in 0..raw.len() {
        if let Ok(insn) = decode(raw, pc) {
            let _ = format_insn(&insn, pc, &DisasmOptions::default());
            let names = DisasmOptions {
                helper_names: true,
                ..DisasmOptions::default()
            };
            let _ = format_insn(&insn, pc, &names);
            let slots = encode(&insn);
            assert_eq!(
                slots[..],
                raw[pc..pc + slots.len()],
                "encode(decode(slots)) differs at {pc}"
            );
        }
    }
}

/// Runs instruction bytes on the VM with `mem` as input memory and the
/// uBPF test helpers, twice: at full speed, and one step at a time. Both
/// must end the same way; then every step is undone, newest first, and the
/// machine must be back in its state right after `start`.
pub fn run_vm(mem: &[u8], prog: &[u8]) {
    let Ok(raw) = RawInsn::parse_all(prog) else {
        return;
    };
    disassemble_slots(&raw);
    let Ok(checked) = check(&raw) else {
        return;
    };
    for (pc, insn) in checked.insns.iter().enumerate() {
        if let Some(insn) = insn {
            let _ = format_insn(insn, pc, &DisasmOptions::default());
        }
    }
    let limits = Limits { max_insns: 65_536 };
    let Ok(program) = Program::new(&checked, limits) else {
        return;
    };
    let config = Config {
        step_budget: VM_STEP_BUDGET,
        may_goto_budget: VM_MAY_GOTO_BUDGET,
        ..Config::default()
    };
    let ctx = Context::memory(mem.to_vec());

    let mut fast = Machine::new(program.clone());
    fast.set_config(config);
    let fast_result = fast.run_context(&mut UbpfHelpers, &ctx);

    let mut stepped = Machine::new(program);
    stepped.set_config(config);
    stepped.start(0, &ctx).expect("program 0 exists");
    let initial = stepped.state().clone();
    let mut steps: Vec<StepEffects> = Vec::new();
    // The budget ends every run; the bound only guards against a VM bug.
    let step_result = loop {
        assert!(
            steps.len() as u64 <= VM_STEP_BUDGET + 1,
            "step budget ignored"
        );
        let effects = stepped.step(&mut UbpfHelpers);
        let outcome = effects.outcome.clone();
        steps.push(effects);
        match outcome {
            StepOutcome::Running => {}
            StepOutcome::Exited(r0) => break Ok(r0),
            StepOutcome::Faulted(f) => break Err(f),
        }
    };
    assert_eq!(
        fast_result.as_ref().map_err(|f| f.to_string()),
        step_result.as_ref().map_err(|f| f.to_string()),
        "full-speed and single-step runs end differently"
    );
    for effects in steps.iter().rev() {
        stepped.undo(effects);
    }
    assert!(
        stepped.state() == &initial,
        "undoing every step does not restore the state after start"
    );
}

// ---- expr ---------------------------------------------------------------------

/// A paused XDP program with BTF (samples/xdp_fw.bpf.o) for expressions to
/// look at: r1 = ctx, r2/r3 = packet data/end, r4 = fp-8 (which holds r4).
pub struct ExprFixture {
    machine: Machine,
    info: bpfrr_replayer::session::DebugInfo,
}

impl ExprFixture {
    pub fn new() -> ExprFixture {
        use bpfrr_replayer::session::{DebugInfo, FunctionSym, MapInfo};
        use bpfrr_replayer::vm::{NoHelpers, XdpMd};
        let object = ObjectFile::parse(include_bytes!("../../samples/xdp_fw.bpf.o"))
            .expect("the sample object parses");
        let btf = object.btf().cloned();
        let context_type = btf
            .as_ref()
            .and_then(|b| b.find_by_name(bpfrr_trace::btf::BtfKind::Struct, "xdp_md"));
        let maps = object
            .maps()
            .into_iter()
            .map(|m| MapInfo {
                name: m.name,
                key_type: (m.btf_key_type_id != 0).then_some(m.btf_key_type_id),
                value_type: (m.btf_value_type_id != 0).then_some(m.btf_value_type_id),
            })
            .collect();
        let info = DebugInfo {
            btf: btf.map(std::sync::Arc::new),
            functions: vec![vec![FunctionSym {
                name: "xdp_prog".into(),
                start: 0,
            }]],
            maps,
            context_type,
        };
        #[rustfmt::skip]
        let code: [[u8; 8]; 7] = [
            [0x61, 0x12, 0, 0, 0, 0, 0, 0],          // r2 = *(u32 *)(r1 + 0)
            [0x61, 0x13, 4, 0, 0, 0, 0, 0],          // r3 = *(u32 *)(r1 + 4)
            [0xbf, 0xa4, 0, 0, 0, 0, 0, 0],          // r4 = r10
            [0x07, 0x04, 0, 0, 0xf8, 0xff, 0xff, 0xff], // r4 += -8
            [0x7b, 0x4a, 0xf8, 0xff, 0, 0, 0, 0],    // *(u64 *)(r10 - 8) = r4
            [0xb7, 0, 0, 0, 0, 0, 0, 0],             // r0 = 0
            [0x95, 0, 0, 0, 0, 0, 0, 0],             // exit
        ];
        let program = Program::from_bytes(code.as_flattened()).expect("the fixture loads");
        let mut machine = Machine::new(program);
        let packet: Vec<u8> = (0..64u8).collect();
        let ctx = Context::xdp(&packet, &[1, 2, 3, 4], XdpMd::default());
        machine.start(0, &ctx).expect("program 0 exists");
        machine
            .run_steps(&mut NoHelpers, 5)
            .expect("the fixture's first five instructions run");
        ExprFixture { machine, info }
    }

    /// Parses `text` as an expression, and prints it (`/FMT EXPR`) against
    /// the paused machine.
    pub fn print(&self, text: &str) {
        use bpfrr_replayer::expr::{Scope, parse, print};
        let _ = parse(text);
        let scope = Scope {
            regs: self.machine.regs(),
            frames: self.machine.frames(),
            memory: self.machine.memory(),
            info: &self.info,
        };
        let _ = print(text, &scope);
    }
}

impl Default for ExprFixture {
    fn default() -> Self {
        Self::new()
    }
}

// ---- verifier_log ---------------------------------------------------------------

/// Parses `text` as a kernel verifier log and uses what a view would: the
/// path to the error, unvisited instructions, every visit's state (first
/// 2000), register summaries, the error's explanation.
pub fn parse_verifier_log(text: &str) {
    use bpfrr_replayer::verifier::VerifierLog;
    let log = VerifierLog::parse(text);
    let _ = log.rejected();
    let _ = log.path_to_error();
    let _ = log.unvisited();
    for v in log.visits.iter().take(2000) {
        let _ = log.states_at(v.insn).count();
        let state = v.state_after(log.insn_text(v.insn));
        let _ = state.compact();
        for (_, r) in &v.regs {
            let _ = r.compact();
            let _ = r.type_name();
        }
    }
    if let Some(e) = &log.error {
        let _ = e.kind.explain();
        let _ = e.headline();
    }
}

// ---- command ------------------------------------------------------------------

/// The debugger's command-line parser, compiled from the binary crate's
/// sources (`tui` has no library target; these two files use only std).
#[path = "../../tui/src/commands"]
pub mod commands {
    pub mod help;
    pub mod parse;
    pub use parse::parse;
}

/// Parses one line typed at the debugger's prompt (or read from a batch
/// file); the error must be a sentence.
pub fn parse_command(line: &str) {
    if let Err(e) = commands::parse(line) {
        assert!(!e.0.is_empty(), "empty parse error for {line:?}");
    }
}
