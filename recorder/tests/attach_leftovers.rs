//! Nothing bpfrr attaches outlives it, even when it is SIGKILLed: a child
//! process (this test binary, re-run in child mode) loads programs and
//! attaches them live (tracepoint, uprobe, generic XDP inside a namespace
//! the parent created), reports their program and link ids, and is killed
//! with SIGKILL. The kernel's program and link lists must then hold none of
//! them, and no link may point at one of its programs. The same for a child
//! in the middle of a whole live recording, which must also leave no file
//! that opens as a trace.
#![cfg(target_os = "linux")]

mod common;
mod netns;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use std::path::PathBuf;

use bpfrr_recorder::attach::{AttachSpec, LiveDriver, TracepointTarget, UprobeTarget, XdpTarget};
use bpfrr_recorder::record::{PrepareOptions, RecordOptions, record};
use bpfrr_recorder::stop::{Interrupt, StopConditions};
use bpfrr_recorder::sys::{link_fd_by_id, link_ids, link_info, prog_fd_by_id};
use bpfrr_trace::trace::Trace;
use netns::samples::{attach_program, load, open_sample, samples_dir};
use netns::{NetNs, wait_for};

/// Set (to the namespace's name) in the attaching child.
const CHILD_ENV: &str = "BPFRR_LEFTOVER_CHILD_NETNS";
/// Set (to the trace path) in the recording child.
const RECORD_ENV: &str = "BPFRR_LEFTOVER_RECORD_OUT";

/// Child mode: attach, print the ids, wait to be killed. Does nothing in a
/// normal test run.
#[test]
fn leftover_child_process() {
    let Ok(ns_name) = std::env::var(CHILD_ENV) else {
        return;
    };
    let mut tp_obj = open_sample("tp_syscalls");
    let tp = load(&mut tp_obj, "count_openat");
    let tp_link =
        AttachSpec::Tracepoint(TracepointTarget::parse("syscalls:sys_enter_openat").unwrap())
            .attach(attach_program(&tp))
            .unwrap();

    let mut up_obj = open_sample("uprobe_args");
    let up = load(&mut up_obj, "on_process_order");
    let target = format!(
        "{}:process_order",
        samples_dir().join("uprobe_target").display()
    );
    let up_link = AttachSpec::Uprobe(UprobeTarget::parse(&target).unwrap())
        .attach(attach_program(&up))
        .unwrap();

    let mut xdp_obj = open_sample("xdp_fw");
    let xdp = load(&mut xdp_obj, "xdp_firewall");
    let spec = AttachSpec::Xdp(XdpTarget::parse("vb:generic").unwrap());
    let xdp_link =
        netns::NetNs::run_in_named(&ns_name, || spec.attach(attach_program(&xdp)).unwrap());

    println!(
        "READY progs={},{},{} links={},{},{}",
        tp.info.id,
        up.info.id,
        xdp.info.id,
        tp_link.id(),
        up_link.id(),
        xdp_link.id()
    );
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Child mode 2: a whole live recording (instrumented program, bpfrr's
/// maps, ring buffer, tracepoint link) writing to the path in
/// [`RECORD_ENV`]; reports the ids it holds (from /proc/self/fdinfo) once
/// the link is up.
#[test]
fn leftover_recording_child_process() {
    let Ok(out) = std::env::var(RECORD_ENV) else {
        return;
    };
    std::thread::spawn(move || {
        let opts = RecordOptions {
            object: samples_dir().join("tp_syscalls.bpf.o"),
            output: PathBuf::from(out),
            prepare: PrepareOptions::default(),
            stop: StopConditions::default(),
            command_line: Vec::new(),
            status_line: false,
        };
        let spec =
            AttachSpec::Tracepoint(TracepointTarget::parse("syscalls:sys_enter_openat").unwrap());
        let interrupt = Interrupt::manual();
        let result = record(&opts, &mut LiveDriver::new(spec), interrupt.handle());
        panic!(
            "the recording ended before it was killed: {:?}",
            result.err()
        );
    });
    let (progs, links) = wait_for(60, || {
        let (progs, links) = own_bpf_ids();
        (!links.is_empty()).then_some((progs, links))
    })
    .expect("the recording attached within 60 s");
    // Let it record a little.
    for _ in 0..10 {
        let _ = std::fs::File::open("/etc/hostname");
    }
    println!("READY progs={} links={}", join(&progs), join(&links));
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// The BPF program and link ids this process holds fds of.
fn own_bpf_ids() -> (Vec<u32>, Vec<u32>) {
    let (mut progs, mut links) = (Vec::new(), Vec::new());
    for entry in std::fs::read_dir("/proc/self/fdinfo").unwrap().flatten() {
        let Ok(info) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        let field = |key: &str| {
            info.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().parse::<u32>().ok())
        };
        match (field("link_id:"), field("prog_id:")) {
            (Some(link), _) => links.push(link),
            (None, Some(prog)) => progs.push(prog),
            _ => {}
        }
    }
    progs.sort_unstable();
    progs.dedup();
    links.sort_unstable();
    (progs, links)
}

fn join(ids: &[u32]) -> String {
    ids.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}

fn parse_ids(s: &str) -> Vec<u32> {
    s.split(',').map(|n| n.parse().unwrap()).collect()
}

/// Spawns this test binary running child test `child` with `env`, waits
/// for its READY line, checks its programs and links exist, SIGKILLs it,
/// and checks the kernel then holds none of them.
fn kill_child_and_check(child_test: &str, env: (&str, &str)) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", child_test, "--nocapture", "--test-threads=1"])
        .env(env.0, env.1)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    // Kill the child whatever happens below.
    struct KillOnDrop(std::process::Child);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let stdout = child.stdout.take().unwrap();
    let mut child = KillOnDrop(child);
    // Read the child's report on a thread, so a child stuck before it
    // fails the test instead of hanging it.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            // The harness may print "test leftover_child_process ... " first.
            if let Some(at) = line.find("READY ") {
                let _ = tx.send(line[at + 6..].to_string());
            }
        }
    });
    let ready = rx
        .recv_timeout(Duration::from_secs(90))
        .expect("the child did not attach within 90 s (see its stderr above)");
    let (progs, links) = ready.split_once(' ').unwrap();
    let progs = parse_ids(progs.strip_prefix("progs=").unwrap());
    let links = parse_ids(links.strip_prefix("links=").unwrap());
    eprintln!("{child_test}: programs {progs:?}, links {links:?}");

    // Everything is there while the child lives.
    for id in &progs {
        assert!(
            prog_fd_by_id(*id).unwrap().is_some(),
            "program {id} missing while attached"
        );
    }
    for id in &links {
        let fd = link_fd_by_id(*id)
            .unwrap()
            .expect("link exists while attached");
        assert!(progs.contains(&link_info(&fd).unwrap().prog_id));
    }

    child.0.kill().unwrap(); // SIGKILL
    let status = child.0.wait().unwrap();
    assert!(!status.success());

    // The kernel frees programs and links shortly after the fds close.
    let gone = wait_for(10, || {
        let progs_left = progs.iter().any(|id| prog_fd_by_id(*id).unwrap().is_some());
        let links_left = links.iter().any(|id| link_fd_by_id(*id).unwrap().is_some());
        (!progs_left && !links_left).then_some(())
    });
    assert!(
        gone.is_some(),
        "programs {progs:?} or links {links:?} survived SIGKILL"
    );
    // And no link in the whole kernel points at one of the child's programs.
    for id in link_ids().unwrap() {
        if let Some(fd) = link_fd_by_id(id).unwrap() {
            let info = link_info(&fd).unwrap();
            assert!(
                !progs.contains(&info.prog_id),
                "link {id} still runs program {}",
                info.prog_id
            );
        }
    }
    // bpftool agrees.
    if let Ok(out) = Command::new("bpftool")
        .args(["-j", "link", "show"])
        .output()
    {
        let text = String::from_utf8_lossy(&out.stdout);
        for id in &progs {
            assert!(
                !text.contains(&format!("\"prog_id\":{id},")),
                "bpftool link show: {text}"
            );
        }
    }
}

#[test]
fn sigkill_leaves_nothing_attached() {
    if std::env::var(CHILD_ENV).is_ok()
        || std::env::var(RECORD_ENV).is_ok()
        || !common::kernel_tests_enabled("sigkill_leaves_nothing_attached")
    {
        return;
    }
    if !samples_dir().join("uprobe_target").exists() {
        let ok = Command::new("make")
            .args(["-C", samples_dir().to_str().unwrap(), "uprobe_target"])
            .status()
            .unwrap()
            .success();
        assert!(ok, "make -C samples uprobe_target");
    }
    let ns = NetNs::create("kill");
    ns.veth_pair("va", "vb");
    kill_child_and_check("leftover_child_process", (CHILD_ENV, ns.name()));
}

#[test]
fn sigkill_of_a_live_recording_leaves_nothing_and_no_trace() {
    if std::env::var(CHILD_ENV).is_ok()
        || std::env::var(RECORD_ENV).is_ok()
        || !common::kernel_tests_enabled("sigkill_of_a_live_recording_leaves_nothing_and_no_trace")
    {
        return;
    }
    let out = std::env::temp_dir().join(format!("bpfrr-killed-{}.bpfrr", std::process::id()));
    kill_child_and_check(
        "leftover_recording_child_process",
        (RECORD_ENV, out.to_str().unwrap()),
    );
    // The trace is renamed into place only when finished: nothing there
    // that looks like a trace.
    assert!(
        !out.exists() || Trace::open(&out).is_err(),
        "{} looks like a valid trace after SIGKILL",
        out.display()
    );
    // The writer's temporary file may be left; it does not open as a trace.
    let dir = std::fs::read_dir(std::env::temp_dir()).unwrap();
    for e in dir.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.contains(&format!("bpfrr-killed-{}", std::process::id())) {
            assert!(Trace::open(e.path()).is_err(), "{name} opens as a trace");
            let _ = std::fs::remove_file(e.path());
        }
    }
}
