//! Whole live recordings through the pipeline (`record::record` with the
//! live driver), on the real kernel: XDP and TC on a veth pair inside a
//! namespace the test creates (fed by AF_PACKET frames), the tracepoint
//! sample on openat calls this test makes, the uprobe sample on
//! samples/uprobe_target, cgroup_skb in a cgroup the test creates. Each
//! trace must replay identically, invocation for invocation; the stop
//! conditions (count, return value, duration, Ctrl-C) end each recording.
#![cfg(target_os = "linux")]

mod common;
mod netns;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bpfrr_recorder::attach::{
    AttachSpec, CgroupTarget, LiveDriver, TcTarget, TracepointTarget, UprobeTarget, XdpTarget,
};
use bpfrr_recorder::record::{PrepareOptions, RecordOptions, RecordReport, record};
use bpfrr_recorder::stop::{Interrupt, StopConditions, StopReason};
use bpfrr_replayer::replay::check_all;
use bpfrr_trace::trace::Trace;
use netns::samples::samples_dir;
use netns::{NetNs, TempCgroup, arp_frame, send_frames, tcp_syn_frame, udp_frame};

fn options(sample: &str, program: &str, stop: StopConditions, out: &Path) -> RecordOptions {
    RecordOptions {
        object: samples_dir().join(format!("{sample}.bpf.o")),
        output: out.to_path_buf(),
        prepare: PrepareOptions {
            program: Some(program.to_string()),
            ..PrepareOptions::default()
        },
        stop,
        command_line: vec!["attach_record".into()],
        status_line: false,
    }
}

fn trace_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("bpfrr-live-{name}-{}.bpfrr", std::process::id()))
}

/// Removes the trace file at the end of a test.
struct RemoveOnDrop(PathBuf);
impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Records with `driver` while `feed` runs (repeatedly, until the
/// recording ends), then checks that every invocation replays identically.
fn record_while(
    opts: &RecordOptions,
    spec: AttachSpec,
    run_in: Option<&NetNs>,
    interrupt: &Interrupt,
    feed: impl Fn() + Sync,
) -> (RecordReport, u64) {
    let done = AtomicBool::new(false);
    let report = std::thread::scope(|s| {
        s.spawn(|| {
            // Give the recorder time to load and attach, then feed it.
            while !done.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(50));
                feed();
            }
        });
        let mut driver = LiveDriver::new(spec);
        let result = match run_in {
            Some(ns) => ns.run(|| record(opts, &mut driver, interrupt.handle())),
            None => record(opts, &mut driver, interrupt.handle()),
        };
        done.store(true, Ordering::SeqCst);
        result
    });
    let report = report.unwrap_or_else(|e| panic!("recording failed: {e}"));
    let trace = Trace::open(&report.trace).expect("the trace opens");
    let summary = check_all(&trace);
    let recorded = trace.invocation_count();
    assert_eq!(summary.total, recorded, "{summary:?}");
    assert!(
        summary.all_identical(),
        "{}/{} invocations replayed identically: {:?}",
        summary.identical,
        summary.total,
        summary.divergences
    );
    assert!(report.lost.is_empty(), "records lost: {:?}", report.lost);
    (report, recorded)
}

#[test]
fn xdp_live_recording_replays_identically() {
    if !common::kernel_tests_enabled("xdp_live_recording_replays_identically") {
        return;
    }
    let ns = NetNs::create("recxdp");
    ns.veth_pair("va", "vb");
    let out = trace_path("xdp");
    let _rm = RemoveOnDrop(out.clone());
    let stop = StopConditions {
        count: Some(6),
        ..StopConditions::default()
    };
    let opts = options("xdp_fw", "xdp_firewall", stop, &out);
    let spec = AttachSpec::Xdp(XdpTarget::parse("vb:generic").unwrap());
    let frames = vec![
        tcp_syn_frame(40000, 23),
        udp_frame(5000, 53, b"query"),
        arp_frame(),
    ];
    let (report, recorded) = record_while(&opts, spec, Some(&ns), &Interrupt::manual(), || {
        ns.run(|| send_frames("va", &frames))
    });
    assert_eq!(recorded, 6);
    assert_eq!(report.stop, StopReason::Count(6));
    let trace = Trace::open(&out).unwrap();
    assert!(
        trace.programs()[0].attach_point.contains("vb"),
        "{}",
        trace.programs()[0].attach_point
    );
}

/// Three frames, sent once the program is attached, and then no more
/// traffic: the probes keep the three invocations in the CPU's batch, and
/// only the flush on the recorder's poll ticks brings them to the trace,
/// so the recording stops on its count, not on its duration.
#[test]
fn xdp_live_recording_gets_the_last_invocations_after_traffic_stops() {
    if !common::kernel_tests_enabled("xdp_live_recording_gets_the_last_invocations") {
        return;
    }
    let ns = NetNs::create("recxdpl");
    ns.veth_pair("va", "vb");
    let out = trace_path("xdp_last");
    let _rm = RemoveOnDrop(out.clone());
    let stop = StopConditions {
        count: Some(3),
        duration: Some(Duration::from_secs(20)),
        ..StopConditions::default()
    };
    let opts = options("xdp_fw", "xdp_firewall", stop, &out);
    let spec = AttachSpec::Xdp(XdpTarget::parse("vb:generic").unwrap());
    let frames = vec![
        tcp_syn_frame(40000, 23),
        udp_frame(5000, 53, b"query"),
        arp_frame(),
    ];
    let sent = AtomicBool::new(false);
    let (report, recorded) = record_while(&opts, spec, Some(&ns), &Interrupt::manual(), || {
        let attached = ns.run(|| {
            Command::new("ip")
                .args(["link", "show", "vb"])
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("xdp"))
        });
        if attached && !sent.swap(true, Ordering::SeqCst) {
            ns.run(|| send_frames("va", &frames));
        }
    });
    assert_eq!(report.stop, StopReason::Count(3), "{report:?}");
    assert_eq!(recorded, 3);
}

#[test]
fn xdp_live_recording_stops_at_the_first_drop() {
    if !common::kernel_tests_enabled("xdp_live_recording_stops_at_the_first_drop") {
        return;
    }
    let ns = NetNs::create("recdrop");
    ns.veth_pair("va", "vb");
    let out = trace_path("xdpdrop");
    let _rm = RemoveOnDrop(out.clone());
    let stop = StopConditions {
        until_retval: Some(1), // XDP_DROP
        ..StopConditions::default()
    };
    let opts = options("xdp_fw", "xdp_firewall", stop, &out);
    let spec = AttachSpec::Xdp(XdpTarget::parse("vb:native").unwrap());
    // Two passes, then a telnet SYN (dropped), each round.
    let frames = vec![
        udp_frame(5000, 53, b"a"),
        udp_frame(5001, 53, b"b"),
        tcp_syn_frame(40000, 23),
    ];
    let (report, recorded) = record_while(&opts, spec, Some(&ns), &Interrupt::manual(), || {
        ns.run(|| send_frames("va", &frames))
    });
    let StopReason::Retval { value, invocation } = report.stop else {
        panic!("stopped for {:?}", report.stop);
    };
    assert_eq!(value, 1);
    // The failing run is the last one written.
    assert!(recorded >= 1);
    let trace = Trace::open(&out).unwrap();
    let n = trace.invocation_count();
    let last = trace.invocation_owned(n - 1).expect("an invocation");
    assert_eq!(last.retval, 1);
    assert_eq!(last.seq, invocation);
}

#[test]
fn tc_live_recording_with_a_tail_call_replays_identically() {
    if !common::kernel_tests_enabled("tc_live_recording_with_a_tail_call_replays_identically") {
        return;
    }
    let ns = NetNs::create("rectc");
    ns.veth_pair("va", "vb");
    let out = trace_path("tc");
    let _rm = RemoveOnDrop(out.clone());
    let stop = StopConditions {
        count: Some(4),
        ..StopConditions::default()
    };
    let opts = options("tc_rewrite", "tc_mark_dscp", stop, &out);
    let spec = AttachSpec::Tc(TcTarget::parse("vb:ingress").unwrap());
    let frames = vec![udp_frame(1000, 5353, b"mdns"), udp_frame(1001, 53, b"dns")];
    let (report, recorded) = record_while(&opts, spec, Some(&ns), &Interrupt::manual(), || {
        ns.run(|| send_frames("va", &frames))
    });
    assert_eq!(recorded, 4);
    assert_eq!(report.stop, StopReason::Count(4));
}

#[test]
fn tracepoint_live_recording_replays_identically() {
    if !common::kernel_tests_enabled("tracepoint_live_recording_replays_identically") {
        return;
    }
    let out = trace_path("tp");
    let _rm = RemoveOnDrop(out.clone());
    let stop = StopConditions {
        count: Some(5),
        ..StopConditions::default()
    };
    let opts = options("tp_syscalls", "count_openat", stop, &out);
    let spec =
        AttachSpec::Tracepoint(TracepointTarget::parse("syscalls:sys_enter_openat").unwrap());
    let (report, recorded) = record_while(&opts, spec, None, &Interrupt::manual(), || {
        for _ in 0..3 {
            let _ = std::fs::File::open("/etc/hostname");
        }
    });
    assert_eq!(recorded, 5);
    assert_eq!(report.stop, StopReason::Count(5));
}

#[test]
fn tracepoint_live_recording_stops_after_its_duration() {
    if !common::kernel_tests_enabled("tracepoint_live_recording_stops_after_its_duration") {
        return;
    }
    let out = trace_path("tpdur");
    let _rm = RemoveOnDrop(out.clone());
    let stop = StopConditions {
        duration: Some(Duration::from_millis(1500)),
        ..StopConditions::default()
    };
    let opts = options("tp_syscalls", "count_openat", stop, &out);
    let spec =
        AttachSpec::Tracepoint(TracepointTarget::parse("syscalls:sys_enter_openat").unwrap());
    let started = std::time::Instant::now();
    let (report, recorded) = record_while(&opts, spec, None, &Interrupt::manual(), || {
        let _ = std::fs::File::open("/etc/hostname");
    });
    assert_eq!(
        report.stop,
        StopReason::Duration(Duration::from_millis(1500))
    );
    assert!(started.elapsed() >= Duration::from_millis(1500));
    assert!(recorded >= 1);
}

#[test]
fn ctrl_c_ends_a_live_recording_with_a_complete_trace() {
    if !common::kernel_tests_enabled("ctrl_c_ends_a_live_recording_with_a_complete_trace") {
        return;
    }
    let out = trace_path("tpint");
    let _rm = RemoveOnDrop(out.clone());
    let opts = options(
        "tp_syscalls",
        "count_openat",
        StopConditions::default(),
        &out,
    );
    let spec =
        AttachSpec::Tracepoint(TracepointTarget::parse("syscalls:sys_enter_openat").unwrap());
    let interrupt = Interrupt::manual();
    let opened = std::sync::atomic::AtomicU32::new(0);
    let (report, recorded) = record_while(&opts, spec, None, &interrupt, || {
        let _ = std::fs::File::open("/etc/hostname");
        // After a few rounds, as if the user pressed Ctrl-C.
        if opened.fetch_add(1, Ordering::SeqCst) == 20 {
            interrupt.raise(libc::SIGINT);
        }
    });
    assert_eq!(report.stop, StopReason::Signal(libc::SIGINT));
    assert!(recorded >= 1);
}

#[test]
fn uprobe_live_recording_replays_identically() {
    if !common::kernel_tests_enabled("uprobe_live_recording_replays_identically") {
        return;
    }
    let bin = samples_dir().join("uprobe_target");
    if !bin.exists() {
        let ok = Command::new("make")
            .args(["-C", samples_dir().to_str().unwrap(), "uprobe_target"])
            .status()
            .unwrap()
            .success();
        assert!(ok, "make -C samples uprobe_target");
    }
    let out = trace_path("uprobe");
    let _rm = RemoveOnDrop(out.clone());
    let stop = StopConditions {
        count: Some(5),
        ..StopConditions::default()
    };
    let opts = options("uprobe_args", "on_process_order", stop, &out);
    let spec = AttachSpec::Uprobe(
        UprobeTarget::parse(&format!("{}:process_order", bin.display())).unwrap(),
    );
    let (report, recorded) = record_while(&opts, spec, None, &Interrupt::manual(), || {
        let _ = Command::new(&bin)
            .args(["2", "widget", "3", "4294969295", "42"])
            .output();
    });
    assert_eq!(recorded, 5);
    assert_eq!(report.stop, StopReason::Count(5));
}

#[test]
fn cgroup_skb_live_recording_replays_identically() {
    if !common::kernel_tests_enabled("cgroup_skb_live_recording_replays_identically") {
        return;
    }
    let ns = NetNs::create("reccg");
    let cgroup = TempCgroup::create("reccg");
    let out = trace_path("cgroup");
    let _rm = RemoveOnDrop(out.clone());
    let stop = StopConditions {
        count: Some(3),
        ..StopConditions::default()
    };
    let opts = options("cgroup_skb", "egress_accounting", stop, &out);
    let spec = AttachSpec::Cgroup(CgroupTarget::parse(cgroup.path().to_str().unwrap()).unwrap());
    let script = format!(
        "echo $$ > {}/cgroup.procs && exec ip netns exec {} bash -c 'echo hi > /dev/udp/127.0.0.1/9 || true'",
        cgroup.path().display(),
        ns.name()
    );
    let (report, recorded) = record_while(&opts, spec, None, &Interrupt::manual(), || {
        let _ = Command::new("bash").args(["-c", &script]).output();
    });
    assert_eq!(recorded, 3);
    assert_eq!(report.stop, StopReason::Count(3));
}
