//! Limits on what a hostile trace can make a replay allocate
//! (`bpfrr_replayer::limits`, docs/limits.md): each test crafts a trace or
//! a model run that asks for more than the limit and checks that the
//! replay refuses it with a clear sentence (a note, or a fault of the run)
//! before allocating.

mod model_support;
mod replay_support;

use bpfrr_replayer::env::{ModelConfig, ModelEnv};
use bpfrr_replayer::limits::{MAX_CPUS, MAX_DYNPTR_SIZE, MAX_MAP_VALUE_SIZE};
use bpfrr_replayer::replay::Replayer;
use bpfrr_replayer::replay::setup::initial_models;
use bpfrr_replayer::vm::{Context, Machine};
use bpfrr_trace::isa::{Insn, Size};
use bpfrr_trace::trace::{EventKind, HelperEvent, Invocation, Trace, TraceMeta, TraceWriter};
use model_support::*;
use replay_support::*;

const RAW_TP: u32 = 17;
const HASH: u32 = 1;
const PERCPU_ARRAY: u32 = 6;
const RINGBUF: u32 = 27;

/// An invocation of program 0 whose recording holds `events`.
fn invocation(events: Vec<HelperEvent>) -> Invocation {
    Invocation {
        ctx: vec![0; 8],
        events,
        ..Invocation::default()
    }
}

/// `n` recorded calls of helper `name` at instruction `insn`, each
/// returning `ret`.
fn calls(name: &str, insn: u32, ret: u64, n: usize) -> Vec<HelperEvent> {
    (0..n)
        .map(|_| HelperEvent {
            insn,
            kind: EventKind::Helper,
            id: helper_id(name),
            ret,
            outputs: vec![],
        })
        .collect()
}

/// A raw tracepoint program calling `bpf_ringbuf_reserve(map 0, size, 0)`
/// `times` times without submitting; the call is instruction 5.
fn reserve_loop(size: i32, times: i32) -> Vec<Insn> {
    vec![
        mov(6, 0),               // 0
        ld_map(1, 0),            // 1-2
        mov(2, size),            // 3
        mov(3, 0),               // 4
        call("ringbuf_reserve"), // 5
        add(6, 1),               // 6
        jne(6, times, -7),       // 7 -> 1
        mov(0, 0),               // 8
        exit(),                  // 9
    ]
}

const RECORD_ADDRESS: u64 = 0xffff_8880_0000_1000;

#[test]
fn ring_buffer_records_larger_than_their_ring_are_refused() {
    let p = trace_program(0, "reserve", RAW_TP, &reserve_loop(8192, 1));
    let ring = trace_map(0, "events", RINGBUF, (0, 0, 4096), vec![]);
    let trace = write_trace(
        &[p],
        &[ring],
        vec![invocation(calls("ringbuf_reserve", 5, RECORD_ADDRESS, 1))],
    );
    let mut replayer = Replayer::new(&trace);
    let mut run = replayer.start(0).expect("starts");
    let fault = run.machine.run(&mut run.env).unwrap_err();
    assert!(
        fault.to_string().contains(
            "the recording says a ring buffer record of 8192 bytes was reserved, larger than 4096 bytes"
        ),
        "{fault}"
    );
    assert_eq!(run.env.memory_created(), 0, "nothing was allocated");
}

#[test]
fn an_invocation_cannot_create_more_helper_memory_than_its_budget() {
    // A ring too large to model (1 GiB > MAX_MODELLED_RINGBUF): the env
    // makes each record itself, and a recording may hold many reservations.
    let p = trace_program(0, "reserve", RAW_TP, &reserve_loop(4096, 8));
    let ring = trace_map(0, "events", RINGBUF, (0, 0, 1 << 30), vec![]);
    let trace = write_trace(
        &[p],
        &[ring],
        vec![invocation(calls("ringbuf_reserve", 5, RECORD_ADDRESS, 8))],
    );
    let (_, tables, notes) = initial_models(&trace);
    assert!(tables.unmodelled[0], "{notes:?}");
    assert!(
        notes[0].contains(
            "a ring buffer of 1073741824 bytes is larger than the 268435456 bytes bpfrr models"
        ),
        "{notes:?}"
    );

    let mut replayer = Replayer::new(&trace);
    let mut run = replayer.start(0).expect("starts");
    run.env.set_memory_budget(3 * 4096 + 100);
    let fault = run.machine.run(&mut run.env).unwrap_err();
    assert!(
        fault.to_string().contains(
            "the recording makes this invocation create 16384 bytes of helper memory, more than bpfrr's limit of 12388 per invocation"
        ),
        "{fault}"
    );
    assert_eq!(run.env.memory_created(), 3 * 4096);
    assert_eq!(run.env.consumed(), 4, "the fourth reservation was refused");

    // Within the default budget the same trace replays to its end.
    let report = Replayer::new(&trace).replay(0).expect("replays");
    assert!(report.is_identical(), "{report}");
}

#[test]
fn dynptr_memory_larger_than_the_kernels_limit_is_refused() {
    let insns = [
        fp(1, -16)[0],
        fp(1, -16)[1],
        mov(2, 0),
        mov(3, 1 << 25),
        call("dynptr_data"), // 4
        mov(0, 0),
        exit(),
    ];
    let p = trace_program(0, "slice", RAW_TP, &insns);
    let trace = write_trace(
        &[p],
        &[],
        vec![invocation(calls("dynptr_data", 4, RECORD_ADDRESS, 1))],
    );
    let mut replayer = Replayer::new(&trace);
    let mut run = replayer.start(0).expect("starts");
    let fault = run.machine.run(&mut run.env).unwrap_err();
    let expected = format!(
        "the recording says bpf_dynptr_data returned 33554432 bytes of memory, more than the {MAX_DYNPTR_SIZE} bytes it can return"
    );
    assert!(fault.to_string().contains(&expected), "{fault}");
    assert_eq!(run.env.memory_created(), 0);
}

/// A trace whose meta says it was recorded on `n_cpus` CPUs.
fn trace_with_cpus(
    n_cpus: u32,
    maps: &[bpfrr_trace::trace::Map],
    invocations: Vec<Invocation>,
) -> Trace {
    let path = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("limits-cpus-{}.bpfrr", std::process::id()));
    let meta = TraceMeta { n_cpus, ..meta() };
    let p = trace_program(0, "p", RAW_TP, &[mov(0, 0), exit()]);
    let mut w = TraceWriter::create(&path, meta, vec![p], maps.to_vec()).expect("valid trace");
    for inv in invocations {
        w.push(inv).expect("valid invocation");
    }
    w.finish().expect("written");
    let bytes = std::fs::read(&path).expect("readable");
    let _ = std::fs::remove_file(&path);
    Trace::from_bytes(bytes).expect("opens")
}

#[test]
fn a_made_up_cpu_count_does_not_multiply_per_cpu_values() {
    let counters = trace_map(
        0,
        "counters",
        PERCPU_ARRAY,
        (4, 8, 1),
        vec![(vec![0; 4], vec![1; 8])],
    );
    let trace = trace_with_cpus(u32::MAX, &[counters], vec![invocation(vec![])]);
    let (models, tables, notes) = initial_models(&trace);
    assert!(!tables.unmodelled[0]);
    assert_eq!(models.maps()[0].n_cpus(), MAX_CPUS);
    assert_eq!(models.model_bytes(), u64::from(MAX_CPUS) * 8);
    assert_eq!(
        notes,
        [format!(
            "the trace says it was recorded on {} CPUs, more than the kernel's limit of {MAX_CPUS} (NR_CPUS); per-CPU maps are modelled for {MAX_CPUS}",
            u32::MAX
        )]
    );
}

#[test]
fn map_sizes_the_kernel_refuses_are_not_modelled() {
    let huge_value = trace_map(0, "huge", HASH, (4, u32::MAX, 1 << 20), vec![]);
    let huge_key = trace_map(1, "keys", HASH, (4096, 8, 16), vec![]);
    let trace = write_trace(
        &[trace_program(0, "p", RAW_TP, &[mov(0, 0), exit()])],
        &[huge_value, huge_key],
        vec![invocation(vec![])],
    );
    let (models, tables, notes) = initial_models(&trace);
    assert_eq!(tables.unmodelled, [true, true]);
    assert!(
        notes[0].contains(&format!(
            "value_size 4294967295 is larger than the kernel's {MAX_MAP_VALUE_SIZE} (KMALLOC_MAX_SIZE)"
        )),
        "{notes:?}"
    );
    assert!(
        notes[1].contains("key_size 4096 is larger than the kernel's 512 (MAX_BPF_STACK)"),
        "{notes:?}"
    );
    // The stand-ins hold places only: nothing of the recorded sizes.
    assert!(
        models
            .maps()
            .iter()
            .all(|m| m.def().value_size <= MAX_MAP_VALUE_SIZE)
    );
    let report = Replayer::new(&trace).replay(0).expect("replays");
    assert!(report.is_identical(), "{report}");
}

#[test]
fn map_models_stop_at_their_memory_budget() {
    // Updates keys 0, 1, 2, ... of a hash map (4-byte keys, 8-byte values:
    // 12 bytes an entry) until the budget of 120 bytes is passed.
    let insns = [
        mov(6, 0),                // 0
        stx(Size::W, 10, -4, 6),  // 1
        st(Size::DW, 10, -16, 0), // 2
        ld_map(1, 0),             // 3-4
        fp(2, -4)[0],             // 5
        fp(2, -4)[1],             // 6
        fp(3, -16)[0],            // 7
        fp(3, -16)[1],            // 8
        mov(4, 0),                // 9
        call("map_update_elem"),  // 10
        add(6, 1),                // 11
        jne(6, 1000, -12),        // 12 -> 1
        mov(0, 0),                // 13
        exit(),                   // 14
    ];
    let hash = map("h", bpfrr_replayer::maps::MapType::Hash, 4, 8, 1000);
    let config = ModelConfig {
        memory_budget: 120,
        ..ModelConfig::default()
    };
    let mut env = ModelEnv::new(vec![hash], config);
    let mut machine = Machine::new(program(&insns));
    let fault = env
        .run(&mut machine, 0, &Context::raw(vec![0; 8]))
        .unwrap_err();
    assert!(
        fault.to_string().contains(
            "bpf_map_update_elem: the map models would hold 132 bytes, more than bpfrr's limit of 120 (ModelConfig::memory_budget)"
        ),
        "{fault}"
    );
    assert_eq!(env.maps()[0].entries().len(), 11);
}

/// `r6 = 0; do r6 += 1 while r6 != n; return r6`: at position 2k, r6 = k.
fn counting(n: i32) -> Vec<Insn> {
    vec![mov(6, 0), add(6, 1), jne(6, n, -2), mov_reg(0, 6), exit()]
}

#[test]
fn session_checkpoints_stop_at_their_memory_budget() {
    use bpfrr_replayer::session::{DebugInfo, Session};
    let session = |budget: Option<usize>| {
        let mut machine = Machine::new(program(&counting(100_000)));
        let mut env = ModelEnv::new(vec![], ModelConfig::default());
        env.begin_run();
        // A large state (as helper memory can make it): 64 KiB of context.
        machine.start(0, &Context::raw(vec![0; 64 << 10])).unwrap();
        let mut s = Session::new(machine, env, DebugInfo::default()).unwrap();
        if let Some(b) = budget {
            s.set_checkpoint_budget(b);
        }
        s
    };
    let mut unbounded = session(None);
    unbounded.continue_();
    assert!(unbounded.stats().checkpoints > 40);

    let mut bounded = session(Some(200_000));
    bounded.continue_();
    let stats = bounded.stats();
    assert_eq!(stats.checkpoints, 3, "three states of 66 KB fit: {stats:?}");
    assert!(stats.checkpoint_bytes <= 200_000, "{stats:?}");
    assert_eq!(bounded.regs()[0], 100_000);
    // Going back still works, from the last checkpoint.
    bounded.goto(150_000);
    assert_eq!((bounded.position(), bounded.regs()[6]), (150_000, 75_000));
    bounded.reverse_step();
    assert_eq!(bounded.position(), 149_999);
    unbounded.goto(149_999);
    assert_eq!(bounded.regs(), unbounded.regs());
}

#[test]
fn a_recorded_value_longer_than_the_maps_value_size_is_cut_to_it() {
    // A lookup of a key the model lacks (it was added by "another CPU"),
    // recorded with 64 value bytes for a map of 8-byte values.
    let insns = [
        st(Size::W, 10, -4, 7),  // 0
        ld_map(1, 0),            // 1-2
        fp(2, -4)[0],            // 3
        fp(2, -4)[1],            // 4
        call("map_lookup_elem"), // 5
        jeq(0, 0, 1),            // 6 -> 8
        ldx(Size::DW, 0, 0, 0),  // 7
        exit(),                  // 8
    ];
    let p = trace_program(0, "lookup", RAW_TP, &insns);
    let h = trace_map(0, "h", HASH, (4, 8, 16), vec![]);
    let mut events = calls("map_lookup_elem", 5, RECORD_ADDRESS, 1);
    events[0].outputs = vec![bpfrr_trace::trace::HelperOutput {
        arg: 0,
        bytes: vec![0x11; 64],
    }];
    let inv = Invocation {
        retval: 0x1111_1111_1111_1111,
        ..invocation(events)
    };
    let trace = write_trace(&[p], &[h], vec![inv]);
    let report = Replayer::new(&trace).replay(0).expect("replays");
    assert_eq!(report.retval, Some(0x1111_1111_1111_1111), "{report}");
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.message.contains("absent in the model")),
        "{:?}",
        report.notes
    );
}
