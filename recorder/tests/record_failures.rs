//! Recording failures through the library (`record::record`): records lost
//! to a full ring buffer are accounted for exactly (every record the
//! program produced is in the trace, counted as lost, or counted as an
//! orphan) and the invocations they touched are partial; failures before
//! and during writing return their error and leave no file behind.
//!
//! The binary's side (one line on stderr, exit status) is tested in
//! tui/tests/record_failures.rs. Kernel tests: root, or SKIPPED (CI=true:
//! failed).

#![cfg(target_os = "linux")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use bpfrr_recorder::attach::{AttachSpec, LiveDriver, XdpTarget};
use bpfrr_recorder::load::LoadError;
use bpfrr_recorder::record::testrun_driver::parse_hex;
use bpfrr_recorder::record::{
    Driver, PrepareError, PrepareOptions, RecordError, RecordOptions, TestInput, TestRunDriver,
    record,
};
use bpfrr_recorder::stop::{Interrupt, StopConditions};
use bpfrr_trace::trace::{Invocation, Trace, TraceErrorKind};

fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples")
}

/// A fresh directory under the system temp dir, removed at the end.
struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "bpfrr-failures-{what}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn is_empty(&self) -> bool {
        std::fs::read_dir(&self.0).unwrap().next().is_none()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn options(object: &str, program: Option<&str>, out: &Path, buffer: u32) -> RecordOptions {
    RecordOptions {
        object: samples().join(object),
        output: out.to_path_buf(),
        prepare: PrepareOptions {
            program: program.map(str::to_string),
            buffer_size: Some(buffer),
            ..PrepareOptions::default()
        },
        stop: StopConditions::default(),
        command_line: vec!["record_failures".into()],
        status_line: false,
    }
}

fn packet(case: &str) -> Vec<u8> {
    let text = std::fs::read_to_string(samples().join(format!("inputs/{case}.hex"))).unwrap();
    parse_hex(&text).unwrap()
}

fn record_with(opts: &RecordOptions, driver: &mut dyn Driver) -> Result<(), RecordError> {
    record(opts, driver, Interrupt::manual().handle()).map(|_| ())
}

fn invocations(trace: &Trace) -> Vec<Invocation> {
    (0..trace.invocation_count())
        .map(|i| trace.invocation_owned(i).unwrap())
        .collect()
}

/// Ring buffer records an invocation holds: its entry, one per helper
/// event, and its exit when it has one (XDP: the final packet).
fn records_of(inv: &Invocation) -> u64 {
    1 + inv.events.len() as u64 + u64::from(inv.final_packet.is_some())
}

#[test]
fn every_record_is_in_the_trace_lost_or_an_orphan() {
    if !common::kernel_tests_enabled("every_record_is_in_the_trace_lost_or_an_orphan") {
        return;
    }
    let dir = TempDir::new("overflow");
    // The planted bug's packet: parse_packet, map lookups, a full path.
    let frame = packet("xdp_fw-tcp23-ipopts");
    let input = || {
        vec![TestInput::Packet {
            frame: frame.clone(),
            ctx: None,
        }]
    };

    // Clean: how many records one run makes, and what the kernel returns.
    let clean_path = dir.path().join("clean.bpfrr");
    let opts = options("xdp_fw.bpf.o", None, &clean_path, 16 << 20);
    let mut clean_driver = TestRunDriver::new(input(), 1);
    let clean = record(&opts, &mut clean_driver, Interrupt::manual().handle()).unwrap();
    assert!(clean.lost.is_empty() && clean.incomplete == 0 && clean.orphans == 0);
    let clean_trace = Trace::open(&clean_path).unwrap();
    let one = clean_trace.invocation_owned(0).unwrap();
    assert!(!one.partial);
    let per_run = records_of(&one);
    assert!(per_run >= 3, "entry, helpers, exit: {per_run}");

    // 300 runs in ONE test-run call into a 4 KiB ring buffer.
    let runs = 300u64;
    let lossy_path = dir.path().join("lossy.bpfrr");
    let opts = options("xdp_fw.bpf.o", None, &lossy_path, 4096);
    let mut driver = TestRunDriver::new(input(), runs as u32);
    let report = record(&opts, &mut driver, Interrupt::manual().handle()).unwrap();
    let lost: u64 = report.lost.iter().map(|l| l.count).sum();
    assert!(lost > 0, "a 4 KiB buffer cannot hold {runs} runs");
    assert!(report.lost.iter().all(|l| l.count > 0));

    let trace = Trace::open(&lossy_path).unwrap();
    let stored: Vec<(u32, u64)> = trace.lost().iter().map(|l| (l.cpu, l.count)).collect();
    let reported: Vec<(u32, u64)> = report.lost.iter().map(|l| (l.cpu, l.count)).collect();
    assert_eq!(stored, reported, "the trace stores what the report says");
    assert_eq!(trace.summary().lost_total, lost);

    let invs = invocations(&trace);
    assert_eq!(invs.len() as u64, report.invocations);
    let partial = invs.iter().filter(|i| i.partial).count() as u64;
    assert_eq!(partial, report.incomplete + count_exit_but_partial(&invs));

    // Exact accounting: nothing vanished without being counted.
    let received: u64 = invs.iter().map(records_of).sum::<u64>() + report.orphans;
    assert_eq!(
        received + lost,
        runs * per_run,
        "records in the trace ({received}, orphans included) + lost ({lost}) = produced"
    );

    // A complete invocation is exactly the kernel's run; a partial one is
    // marked, never passed off as complete.
    let kernel = &driver.results[0];
    for (i, inv) in invs.iter().enumerate() {
        if inv.partial {
            continue;
        }
        assert_eq!(inv.retval, u64::from(kernel.retval), "invocation {i}");
        assert_eq!(inv.retval, one.retval, "invocation {i}");
        assert_eq!(inv.events.len(), one.events.len(), "invocation {i}");
        assert_eq!(inv.packet.as_deref(), Some(&frame[..]), "invocation {i}");
        assert_eq!(
            inv.final_packet.as_deref(),
            Some(&kernel.data_out[..]),
            "invocation {i}"
        );
    }
    // The fidelity check agrees: complete ones replay identically, partial
    // ones as far as they go.
    let summary = bpfrr_replayer::replay::check_all(&trace);
    assert!(summary.all_identical());
}

/// Partial invocations that still have their exit (a record in the middle
/// was lost): the assembler does not count them as incomplete.
fn count_exit_but_partial(invs: &[Invocation]) -> u64 {
    invs.iter()
        .filter(|i| i.partial && i.final_packet.is_some())
        .count() as u64
}

#[test]
fn failures_before_the_first_run_leave_no_file() {
    if !common::kernel_tests_enabled("failures_before_the_first_run_leave_no_file") {
        return;
    }
    let dir = TempDir::new("before");
    let out = dir.path().join("t.bpfrr");
    let frame = packet("xdp_fw-udp-dns");
    let packets = || {
        TestRunDriver::new(
            vec![TestInput::Packet {
                frame: frame.clone(),
                ctx: None,
            }],
            1,
        )
    };

    // No program of that name: the error lists the ones there are.
    let e = record_with(
        &options("tc_rewrite.bpf.o", Some("nosuch"), &out, 1 << 20),
        &mut packets(),
    )
    .unwrap_err();
    match &e {
        RecordError::Prepare(PrepareError::NoSuchProgram { name, available }) => {
            assert_eq!(name, "nosuch");
            assert!(available.contains("tc_mark_dscp") && available.contains("tc_redirect_port"));
        }
        other => panic!("{other}"),
    }
    assert!(dir.is_empty());

    // A tracepoint program given packets: the test-run driver refuses it.
    let e = record_with(
        &options("tp_syscalls.bpf.o", None, &out, 1 << 20),
        &mut packets(),
    )
    .unwrap_err();
    assert!(matches!(e, RecordError::Driver(_)), "{e}");
    assert!(e.to_string().contains("--tracepoint"), "{e}");
    assert!(dir.is_empty());

    // An interface that does not exist: the live driver cannot attach.
    let spec = AttachSpec::Xdp(XdpTarget::parse("nosuchif0").unwrap());
    let e = record_with(
        &options("xdp_fw.bpf.o", None, &out, 1 << 20),
        &mut LiveDriver::new(spec),
    )
    .unwrap_err();
    assert!(matches!(e, RecordError::Driver(_)), "{e}");
    assert!(e.to_string().contains("nosuchif0"), "{e}");
    assert!(dir.is_empty());

    // A missing object.
    let mut opts = options("xdp_fw.bpf.o", None, &out, 1 << 20);
    opts.object = dir.path().join("missing.bpf.o");
    let e = record_with(&opts, &mut packets()).unwrap_err();
    assert!(
        matches!(
            e,
            RecordError::Prepare(PrepareError::Load(LoadError::Read { .. }))
        ),
        "{e}"
    );
    assert!(dir.is_empty());
}

/// A small tmpfs, unmounted however the test ends.
struct SmallDisk(TempDir);

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

#[test]
fn a_full_disk_is_a_write_error_and_leaves_no_file() {
    if !common::kernel_tests_enabled("a_full_disk_is_a_write_error_and_leaves_no_file") {
        return;
    }
    let disk = SmallDisk(TempDir::new("disk"));
    let st = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(disk.0.path())
        .status()
        .unwrap();
    assert!(st.success(), "mount -t tmpfs");
    let out = disk.0.path().join("t.bpfrr");
    // Enough packets that the trace cannot fit in 64 KiB.
    let frame = packet("xdp_fw-udp-dns");
    let mut driver = TestRunDriver::new(vec![TestInput::Packet { frame, ctx: None }], 500);
    let e = record_with(&options("xdp_fw.bpf.o", None, &out, 16 << 20), &mut driver).unwrap_err();
    match &e {
        RecordError::Trace(t) => match t.kind() {
            TraceErrorKind::Io { writing, message } => {
                assert!(*writing, "{e}");
                assert!(message.contains("os error 28"), "ENOSPC: {e}");
            }
            other => panic!("{other:?}"),
        },
        other => panic!("{other}"),
    }
    assert!(disk.0.is_empty(), "no trace and no temporary file left");
}
