//! Test-run recordings (`record::record` with the test-run driver) are
//! pinned: the driver pins the recording thread to its CPU, every
//! invocation runs there in the order the recorder calls it, so the probes
//! read no clock and each invocation gets the time its test-run call
//! started. A driver that does not pin records with the kernel's clock, as
//! live recordings do. Both must replay identically. Kernel tests: root, or
//! SKIPPED (CI=true: failed).
#![cfg(target_os = "linux")]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use bpfrr_recorder::record::testrun_driver::read_pcap_file;
use bpfrr_recorder::record::{
    CaptureHints, Driver, DriverError, DriverTarget, PrepareOptions, RecordOptions, Step,
    TestInput, TestRunDriver, record,
};
use bpfrr_recorder::stop::{Interrupt, StopConditions};
use bpfrr_recorder::sys::monotonic_ns;
use bpfrr_replayer::replay::check_all;
use bpfrr_trace::trace::{Invocation, Trace};

const REPEAT: u32 = 4;

fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples")
}

fn options(out: &Path) -> RecordOptions {
    RecordOptions {
        object: samples().join("xdp_fw.bpf.o"),
        output: out.to_path_buf(),
        prepare: PrepareOptions {
            program: Some("xdp_firewall".into()),
            ..PrepareOptions::default()
        },
        stop: StopConditions::default(),
        command_line: vec!["record_testrun".into()],
        status_line: false,
    }
}

/// The first three packets of the sample's pcap (a pass, a drop, ...).
fn inputs() -> Vec<TestInput> {
    read_pcap_file(&samples().join("inputs/xdp_fw.pcap"))
        .unwrap()
        .into_iter()
        .take(3)
        .map(|frame| TestInput::Packet { frame, ctx: None })
        .collect()
}

/// Records with `driver`, checks the replay, and returns the invocations
/// and the monotonic clock's value before and after the recording.
fn record_and_replay(name: &str, driver: &mut dyn Driver) -> (Vec<Invocation>, u64, u64) {
    let out =
        std::env::temp_dir().join(format!("bpfrr-testrun-{name}-{}.bpfrr", std::process::id()));
    let before = monotonic_ns();
    let report = record(&options(&out), driver, Interrupt::manual().handle())
        .unwrap_or_else(|e| panic!("recording failed: {e}"));
    let after = monotonic_ns();
    assert!(report.lost.is_empty() && report.incomplete == 0 && report.orphans == 0);
    let trace = Trace::open(&out).unwrap();
    let summary = check_all(&trace);
    assert!(
        summary.all_identical() && summary.total == trace.invocation_count(),
        "{summary:?}"
    );
    let invs = (0..trace.invocation_count())
        .map(|i| trace.invocation_owned(i).unwrap())
        .collect();
    let _ = std::fs::remove_file(&out);
    (invs, before, after)
}

/// The number of CPUs the calling thread may run on.
fn allowed_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[test]
fn test_runs_record_pinned_without_a_clock_and_stamp_each_call() {
    if !common::kernel_tests_enabled("test_runs_record_pinned_without_a_clock") {
        return;
    }
    // A thread of its own: the pinning must not outlive the recording, and
    // must not touch the test harness's threads if it does.
    std::thread::spawn(|| {
        let cpus_before = allowed_cpus();
        let mut driver = TestRunDriver::new(inputs(), REPEAT);
        let (invs, before, after) = record_and_replay("pinned", &mut driver);
        assert_eq!(allowed_cpus(), cpus_before, "the thread got its CPUs back");
        assert_eq!(invs.len(), 3 * REPEAT as usize);
        let cpu = invs[0].cpu;
        for (i, inv) in invs.iter().enumerate() {
            assert_eq!(inv.seq, i as u64);
            assert_eq!(inv.cpu, cpu, "every run on the pinned CPU: {inv:?}");
            assert_eq!(inv.cpu_seq, invs[0].cpu_seq + i as u64, "in call order");
        }
        // Each input's repeats share the time their call started; the
        // calls' times go forward and lie within the recording.
        let calls: Vec<&[Invocation]> = invs.chunks(REPEAT as usize).collect();
        for (input, repeats) in calls.iter().enumerate() {
            let t = repeats[0].time_ns;
            assert!(repeats.iter().all(|r| r.time_ns == t), "input {input}");
            assert!(before <= t && t <= after, "{before} <= {t} <= {after}");
            assert_eq!(repeats[0].packet.as_deref(), Some(&inputs_frame(input)[..]));
        }
        assert!(calls.windows(2).all(|w| w[0][0].time_ns < w[1][0].time_ns));
    })
    .join()
    .unwrap();
}

fn inputs_frame(i: usize) -> Vec<u8> {
    match &inputs()[i] {
        TestInput::Packet { frame, .. } => frame.clone(),
        TestInput::Context(c) => c.clone(),
    }
}

/// The test-run driver without its pinning: invocations may run on any
/// CPU, so the probes read the kernel's clock, as in a live recording.
struct Unpinned(TestRunDriver);

impl Driver for Unpinned {
    fn attach_point(&self) -> String {
        self.0.attach_point()
    }
    fn capture_hints(&self) -> CaptureHints {
        self.0.capture_hints()
    }
    fn start(&mut self, target: &DriverTarget<'_>) -> Result<(), DriverError> {
        self.0.start(target)
    }
    fn step(&mut self, budget: Duration) -> Result<Step, DriverError> {
        self.0.step(budget)
    }
    fn stop(&mut self) -> Result<(), DriverError> {
        self.0.stop()
    }
}

#[test]
fn unpinned_runs_carry_the_kernels_clock_per_invocation() {
    if !common::kernel_tests_enabled("unpinned_runs_carry_the_kernels_clock") {
        return;
    }
    let mut driver = Unpinned(TestRunDriver::new(inputs(), REPEAT));
    assert_eq!(driver.capture_hints().pinned_cpu, None);
    let (invs, before, after) = record_and_replay("unpinned", &mut driver);
    assert_eq!(invs.len(), 3 * REPEAT as usize);
    // Every entry read bpf_ktime_get_ns: distinct, rising times (a run
    // takes more than a nanosecond) on the same clock as CLOCK_MONOTONIC.
    for w in invs.windows(2) {
        assert!(
            w[0].time_ns < w[1].time_ns,
            "{} then {}",
            w[0].time_ns,
            w[1].time_ns
        );
    }
    for inv in &invs {
        assert!(before <= inv.time_ns && inv.time_ns <= after, "{inv:?}");
    }
}
