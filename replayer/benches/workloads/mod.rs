//! The side-by-side benchmark shared by `replayer/benches/vm.rs` (our VM
//! and rbpf) and `recorder/benches/vm_vs_kernel.rs` (the same, plus the
//! kernel's JIT through BPF_PROG_TEST_RUN).
//!
//! Each workload runs on every engine under one criterion group; the
//! group's throughput is the number of BPF instructions one run executes
//! (counted by our VM), so criterion's `thrpt` reads as instructions per
//! second. Before timing, each engine's result on a fresh state is
//! checked against our VM's, so every engine provably runs the same
//! program to the same end. At the end a table of ns per run, instructions
//! per second and speed relative to rbpf is printed.

pub mod asm;
pub mod programs;

use std::cell::Cell;
use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Mutex;
use std::time::Duration;

use bpfrr_replayer::env::{ModelConfig, ModelEnv};
use bpfrr_replayer::maps::{Map, MapDef, MapType};
use bpfrr_replayer::vm::{Context, Machine, Program, RunStop, StepLog, StepOutcome, XdpMd};
use cpu_time::ThreadTime;
use criterion::{Criterion, SamplingMode, Throughput};

pub use programs::{MAP_VALUE_SIZE, Shape, Workload};

/// The engines, in the order of the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Engine {
    /// Our VM, `Machine::run` (nothing recorded).
    VmFull,
    /// Our VM, `Machine::step` until exit (every step's effects reported).
    VmStep,
    /// Our VM, `Machine::run_logged`: every step's effects kept in a `StepLog`.
    VmLog,
    /// The rbpf crate's interpreter.
    Rbpf,
    /// The kernel's JIT, timed by the kernel (BPF_PROG_TEST_RUN `duration`).
    KernelJit,
}

impl Engine {
    pub fn id(self) -> &'static str {
        match self {
            Engine::VmFull => "vm_full",
            Engine::VmStep => "vm_step",
            Engine::VmLog => "vm_log",
            Engine::Rbpf => "rbpf",
            Engine::KernelJit => "kernel_jit",
        }
    }
}

/// The kernel as the physical reference (implemented by the recorder's bench).
pub trait KernelReference {
    /// Loads the workload as an XDP program (creating its maps afresh) and
    /// runs it once: the low 32 bits of r0.
    fn load(&mut self, w: &Workload) -> Result<u32, String>;
    /// Runs the loaded program `repeat` times: the kernel's mean time per
    /// run in nanoseconds (the kernel rounds it down to whole ns).
    fn mean_ns(&mut self, repeat: u32) -> Result<u32, String>;
}

// ---- our VM ---------------------------------------------------------------

/// Our VM set up for one workload: machine, model environment, context.
pub struct VmRun {
    machine: Machine,
    env: ModelEnv,
    ctx: Context,
}

impl VmRun {
    pub fn new(w: &Workload) -> VmRun {
        let bytes: Vec<u8> = w.xdp.iter().flat_map(|i| i.to_bytes()).collect();
        let program = Program::from_bytes(&bytes).expect("the benchmark program loads");
        let maps = match w.shape {
            Shape::MapValue => vec![
                Map::new(
                    MapDef::new("values", MapType::Array, 4, MAP_VALUE_SIZE, 1),
                    1,
                )
                .expect("an array map model"),
            ],
            Shape::Loop | Shape::Packet => Vec::new(),
        };
        VmRun {
            machine: Machine::new(program),
            env: ModelEnv::new(maps, ModelConfig::default()),
            ctx: Context::xdp(&w.packet, &[], XdpMd::default()),
        }
    }

    /// One run at full speed: (r0, instructions executed).
    pub fn run(&mut self) -> (u64, u64) {
        let r0 = self
            .env
            .run(&mut self.machine, 0, &self.ctx)
            .unwrap_or_else(|f| panic!("the benchmark program faulted: {f}"));
        (r0, self.machine.steps())
    }

    /// One run step by step, every step's effects produced: (r0, instructions).
    pub fn step_run(&mut self) -> (u64, u64) {
        self.env.begin_run();
        self.machine
            .start(0, &self.ctx)
            .unwrap_or_else(|f| panic!("the benchmark program cannot start: {f}"));
        let r0 = loop {
            let step = self.machine.step(&mut self.env);
            match step.outcome {
                StepOutcome::Running => {
                    black_box(&step);
                }
                StepOutcome::Exited(r0) => break r0,
                StepOutcome::Faulted(f) => panic!("the benchmark program faulted: {f}"),
            }
        };
        self.env.end_run(self.machine.memory());
        (r0, self.machine.steps())
    }

    /// One run logging every step with its effects in `log` (cleared
    /// first): (r0, instructions).
    pub fn logged_run(&mut self, log: &mut StepLog) -> (u64, u64) {
        self.env.begin_run();
        log.clear();
        self.machine
            .start(0, &self.ctx)
            .unwrap_or_else(|f| panic!("the benchmark program cannot start: {f}"));
        let r0 = loop {
            match self.machine.run_logged(&mut self.env, u64::MAX, log) {
                Ok(RunStop::Exited(r0)) => break r0,
                Ok(RunStop::Paused) => {}
                Err(f) => panic!("the benchmark program faulted: {f}"),
            }
        };
        self.env.end_run(self.machine.memory());
        assert_eq!(log.len() as u64, self.machine.steps());
        (r0, self.machine.steps())
    }
}

// ---- rbpf -----------------------------------------------------------------

thread_local! {
    /// Where the rbpf stand-in for `bpf_map_lookup_elem` points.
    static RBPF_VALUE: Cell<u64> = const { Cell::new(0) };
}

/// rbpf's `bpf_map_lookup_elem`: the one value buffer of the workload.
fn rbpf_map_lookup_stand_in(_map: u64, _key: u64, _: u64, _: u64, _: u64) -> u64 {
    RBPF_VALUE.with(Cell::get)
}

/// rbpf set up for one workload. The packet parser runs with rbpf's
/// metadata buffer holding `data` and `data_end` (mem = the packet); the
/// map program with mem = the map value, which the stand-in lookup returns.
pub struct RbpfRun<'a> {
    shape: Shape,
    mbuff_vm: rbpf::EbpfVmMbuff<'a>,
    raw_vm: rbpf::EbpfVmRaw<'a>,
    packet: Vec<u8>,
    /// `[data, data_end]` of `packet`, as rbpf's metadata buffer.
    mbuff: Vec<u8>,
    value: Vec<u8>,
}

impl<'a> RbpfRun<'a> {
    pub fn new(w: &Workload, prog: &'a [u8]) -> RbpfRun<'a> {
        let mut mbuff_vm = rbpf::EbpfVmMbuff::new(Some(prog)).expect("rbpf accepts the program");
        let mut raw_vm = rbpf::EbpfVmRaw::new(Some(prog)).expect("rbpf accepts the program");
        let id = programs::HELPER_MAP_LOOKUP_ELEM as u32;
        mbuff_vm
            .register_helper(id, rbpf_map_lookup_stand_in)
            .expect("rbpf registers a helper");
        raw_vm
            .register_helper(id, rbpf_map_lookup_stand_in)
            .expect("rbpf registers a helper");
        let packet = w.packet.clone();
        let data = packet.as_ptr() as u64;
        let mut mbuff = data.to_le_bytes().to_vec();
        mbuff.extend_from_slice(&(data + packet.len() as u64).to_le_bytes());
        RbpfRun {
            shape: w.shape,
            mbuff_vm,
            raw_vm,
            packet,
            mbuff,
            value: vec![0; MAP_VALUE_SIZE as usize],
        }
    }

    /// One run: r0.
    pub fn run(&mut self) -> u64 {
        let r = match self.shape {
            Shape::Packet => self.mbuff_vm.execute_program(&self.packet, &self.mbuff),
            Shape::Loop => self.raw_vm.execute_program(&mut []),
            Shape::MapValue => {
                RBPF_VALUE.with(|v| v.set(self.value.as_ptr() as u64));
                self.raw_vm.execute_program(&mut self.value)
            }
        };
        r.unwrap_or_else(|e| panic!("rbpf failed to run the benchmark program: {e}"))
    }
}

// ---- measuring ------------------------------------------------------------

/// ns per run of each sample, per (workload, engine).
static SAMPLES: Mutex<BTreeMap<(usize, Engine), Vec<f64>>> = Mutex::new(BTreeMap::new());

fn record(workload: usize, engine: Engine, iters: u64, elapsed: Duration) {
    if iters > 0 {
        let ns = elapsed.as_nanos() as f64 / iters as f64;
        let mut s = SAMPLES.lock().unwrap();
        s.entry((workload, engine)).or_default().push(ns);
    }
}

/// Times `iters` calls of `f` and records them. The time is the thread's
/// CPU time, so time spent descheduled on a busy machine does not count.
fn timed(workload: usize, engine: Engine, iters: u64, mut f: impl FnMut()) -> Duration {
    let start = ThreadTime::now();
    for _ in 0..iters {
        f();
    }
    let elapsed = start.elapsed();
    record(workload, engine, iters, elapsed);
    elapsed
}

/// Criterion as tuned for this benchmark (the whole run stays under five
/// minutes); command-line options still apply.
pub fn criterion() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(800))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30)
        .configure_from_args()
}

/// What one workload is, for the report.
pub struct Row {
    pub name: &'static str,
    pub what: &'static str,
    pub insns: u64,
}

/// Benchmarks every workload on our VM (both modes), rbpf and, when given,
/// the kernel. Returns the rows for [`print_summary`].
pub fn bench_all(c: &mut Criterion, mut kernel: Option<&mut dyn KernelReference>) -> Vec<Row> {
    let workloads = programs::all();
    let mut rows = Vec::new();
    for (wi, w) in workloads.iter().enumerate() {
        // Results on a fresh state, and the instruction count, from our VM.
        let (r0, insns) = VmRun::new(w).run();
        let (step_r0, step_insns) = VmRun::new(w).step_run();
        assert_eq!(
            (step_r0, step_insns),
            (r0, insns),
            "{}: stepping and full speed disagree",
            w.name
        );
        let (log_r0, log_insns) = VmRun::new(w).logged_run(&mut StepLog::new());
        assert_eq!(
            (log_r0, log_insns),
            (r0, insns),
            "{}: the logged run and full speed disagree",
            w.name
        );
        let rbpf_prog = w.rbpf_bytes();
        let rbpf_r0 = RbpfRun::new(w, &rbpf_prog).run();
        assert_eq!(rbpf_r0, r0, "{}: rbpf and our VM disagree", w.name);
        let kernel_ok = match kernel.as_deref_mut() {
            Some(k) => match k.load(w) {
                Ok(retval) => {
                    assert_eq!(
                        retval, r0 as u32,
                        "{}: the kernel and our VM disagree",
                        w.name
                    );
                    true
                }
                Err(e) => {
                    println!("{}: kernel reference skipped: {e}", w.name);
                    false
                }
            },
            None => false,
        };
        rows.push(Row {
            name: w.name,
            what: w.what,
            insns,
        });

        let mut g = c.benchmark_group(w.name);
        g.throughput(Throughput::Elements(insns));
        if insns > 100_000 {
            // Milliseconds per run: fewer, flat samples.
            g.sampling_mode(SamplingMode::Flat).sample_size(15);
        }
        let mut vm = VmRun::new(w);
        g.bench_function(Engine::VmFull.id(), |b| {
            b.iter_custom(|iters| {
                timed(wi, Engine::VmFull, iters, || {
                    black_box(vm.run());
                })
            })
        });
        let mut vm = VmRun::new(w);
        g.bench_function(Engine::VmStep.id(), |b| {
            b.iter_custom(|iters| {
                timed(wi, Engine::VmStep, iters, || {
                    black_box(vm.step_run());
                })
            })
        });
        let mut vm = VmRun::new(w);
        let mut log = StepLog::new();
        g.bench_function(Engine::VmLog.id(), |b| {
            b.iter_custom(|iters| {
                timed(wi, Engine::VmLog, iters, || {
                    black_box(vm.logged_run(&mut log));
                })
            })
        });
        let mut rb = RbpfRun::new(w, &rbpf_prog);
        g.bench_function(Engine::Rbpf.id(), |b| {
            b.iter_custom(|iters| {
                timed(wi, Engine::Rbpf, iters, || {
                    black_box(rb.run());
                })
            })
        });
        if let (Some(k), true) = (kernel.as_deref_mut(), kernel_ok) {
            g.bench_function(Engine::KernelJit.id(), |b| {
                b.iter_custom(|iters| {
                    // The kernel times the runs itself; the syscall is not counted.
                    let mut total = Duration::ZERO;
                    let mut left = iters;
                    while left > 0 {
                        let n = left.min(u32::MAX as u64) as u32;
                        let mean = k
                            .mean_ns(n)
                            .unwrap_or_else(|e| panic!("BPF_PROG_TEST_RUN failed: {e}"));
                        total += Duration::from_nanos(mean as u64 * n as u64);
                        left -= n as u64;
                    }
                    record(wi, Engine::KernelJit, iters, total);
                    total
                })
            });
        }
        g.finish();
    }
    rows
}

fn median(v: &[f64]) -> Option<f64> {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    (!v.is_empty()).then(|| v[v.len() / 2])
}

fn fmt_ns(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

/// Prints the table: per workload and engine the median ns per run and
/// million instructions per second, and the VM's speed relative to rbpf.
pub fn print_summary(rows: &[Row]) {
    let samples = SAMPLES.lock().unwrap();
    let engines = [
        Engine::VmFull,
        Engine::VmStep,
        Engine::VmLog,
        Engine::Rbpf,
        Engine::KernelJit,
    ];
    let ns = |wi: usize, e: Engine| samples.get(&(wi, e)).and_then(|v| median(v));
    println!();
    println!("Median time per run and BPF instructions per second (M = 10^6):");
    println!();
    print!("| workload | insns/run |");
    for e in engines {
        print!(" {} |", e.id());
    }
    println!(" full / rbpf | step / rbpf | log / rbpf |");
    print!("|---|---:|");
    for _ in engines {
        print!("---:|");
    }
    println!("---:|---:|---:|");
    for (wi, row) in rows.iter().enumerate() {
        print!("| {} | {} |", row.name, row.insns);
        for e in engines {
            match ns(wi, e) {
                Some(t) => print!(" {} ({:.0} M/s) |", fmt_ns(t), row.insns as f64 / t * 1e3),
                None => print!(" — |"),
            }
        }
        let ratio = |e: Engine| match (ns(wi, e), ns(wi, Engine::Rbpf)) {
            (Some(t), Some(r)) => format!("{:.2}x", r / t),
            _ => "—".into(),
        };
        println!(
            " {} | {} | {} |",
            ratio(Engine::VmFull),
            ratio(Engine::VmStep),
            ratio(Engine::VmLog)
        );
    }
    println!();
    for row in rows {
        println!("- {}: {}", row.name, row.what);
    }
    println!();
}
