//! Live recordings of programs that read kernel memory through BTF
//! pointers (tp_btf) and call kfuncs, on the real kernel. The C programs
//! are compiled by the test (clang-19, CO-RE against the running kernel).
//! The values loaded through BTF pointers must be in the trace (and be the
//! ones the test knows: its own thread id and process id, the argument it
//! passed to the syscall), and every invocation must replay identically.
#![cfg(target_os = "linux")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::Duration;

use bpfrr_recorder::attach::{AttachSpec, FentryTarget, LiveDriver, TpBtfTarget};
use bpfrr_recorder::record::{PrepareOptions, RecordOptions, RecordReport, record};
use bpfrr_recorder::stop::{Interrupt, StopConditions, StopReason};
use bpfrr_replayer::replay::check_all;
use bpfrr_trace::trace::{EventKind, Invocation, Trace};

/// The argument the tests pass to getpgid, which the programs look for
/// (plus a number per test: the tests run in parallel in one process, and
/// each program must see only its own test's calls).
const MAGIC: u64 = 0x6274_6600;

/// `tp_btf/sys_enter`: for getpgid(MAGIC), reads the current task's pid,
/// tgid, first comm byte and parent's pid through BTF pointers (the
/// syscall's registers too), branches on them, stores a summary in a map
/// and returns 1 (0 for every other syscall).
const TP_BTF_PROGRAM: &str = r#"
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct pt_regs { unsigned long di; } __attribute__((preserve_access_index));
struct task_struct {
    int pid;
    int tgid;
    char comm[16];
    struct task_struct *real_parent;
} __attribute__((preserve_access_index));

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 64);
    __type(key, int);
    __type(value, long);
} seen SEC(".maps");

SEC("tp_btf/sys_enter")
int on_enter(unsigned long long *ctx)
{
    struct pt_regs *regs = (void *)ctx[0];
    long id = ctx[1];
    if (id != SYS_GETPGID)
        return 0;
    if (regs->di != MAGIC)
        return 0;
    struct task_struct *t = bpf_get_current_task_btf();
    int pid = t->pid;
    long v = t->tgid;
    if (t->comm[0] == 0)
        v = -1;
    if (pid != t->tgid)
        v += (long)t->real_parent->pid << 32;
    bpf_map_update_elem(&seen, &pid, &v, BPF_ANY);
    return 1;
}

char LICENSE[] SEC("license") = "GPL";
"#;

/// `tp_btf/sys_enter` with kfuncs: for getpgid(MAGIC), looks the calling
/// thread up by its pid with `bpf_task_from_pid` (an acquired task
/// pointer, or NULL), reads its tgid through it, releases it, and returns
/// 2 when found (1 when not).
const KFUNC_PROGRAM: &str = r#"
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct pt_regs { unsigned long di; } __attribute__((preserve_access_index));
struct task_struct { int pid; int tgid; } __attribute__((preserve_access_index));

extern struct task_struct *bpf_task_from_pid(int pid) __ksym;
extern void bpf_task_release(struct task_struct *p) __ksym;

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, int);
    __type(value, long);
} found SEC(".maps");

SEC("tp_btf/sys_enter")
int on_enter(unsigned long long *ctx)
{
    struct pt_regs *regs = (void *)ctx[0];
    if (ctx[1] != SYS_GETPGID || regs->di != MAGIC)
        return 0;
    struct task_struct *me = bpf_get_current_task_btf();
    struct task_struct *t = bpf_task_from_pid(me->pid);
    if (!t)
        return 1;
    int key = 0;
    long tgid = t->tgid;
    bpf_task_release(t);
    bpf_map_update_elem(&found, &key, &tgid, BPF_ANY);
    return 2;
}

char LICENSE[] SEC("license") = "GPL";
"#;

struct TempDir(PathBuf);
impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("bpfrr-btf-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Compiles `source` into `dir/name.bpf.o`, looking for getpgid(`magic`).
fn compile(dir: &Path, name: &str, source: &str, magic: u64) -> PathBuf {
    let src = dir.join(format!("{name}.bpf.c"));
    std::fs::write(&src, source).unwrap();
    let obj = dir.join(format!("{name}.bpf.o"));
    let arch_inc = format!("-I/usr/include/{}-linux-gnu", std::env::consts::ARCH);
    let out = Command::new("clang-19")
        .args(["-O2", "-g", "-target", "bpf", &arch_inc])
        .arg(format!("-DSYS_GETPGID={}", libc::SYS_getpgid))
        .arg(format!("-DMAGIC={magic:#x}"))
        .arg("-c")
        .arg(&src)
        .arg("-o")
        .arg(&obj)
        .output()
        .expect("clang-19 is installed (scripts/setup.sh)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    obj
}

/// Records `object` on tp_btf `tracepoint` until it returns `until`,
/// while another thread calls getpgid(`magic`); returns the report, the
/// trace and that thread's id.
fn record_getpgid(
    object: &Path,
    magic: u64,
    tracepoint: &str,
    until: u64,
    out: &Path,
) -> (RecordReport, Trace, i32) {
    let opts = RecordOptions {
        object: object.to_path_buf(),
        output: out.to_path_buf(),
        prepare: PrepareOptions {
            program: Some("on_enter".into()),
            ..PrepareOptions::default()
        },
        stop: StopConditions {
            until_retval: Some(until),
            duration: Some(Duration::from_secs(30)),
            ..StopConditions::default()
        },
        command_line: vec!["record_btf".into()],
        status_line: false,
    };
    let spec = AttachSpec::TpBtf(TpBtfTarget::parse(tracepoint).unwrap());
    let done = AtomicBool::new(false);
    let tid = AtomicI32::new(0);
    let interrupt = Interrupt::manual();
    let report = std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: gettid and getpgid take plain integers and touch no memory.
            tid.store(unsafe { libc::gettid() }, Ordering::SeqCst);
            while !done.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(50));
                unsafe { libc::syscall(libc::SYS_getpgid, magic) };
            }
        });
        let mut driver = LiveDriver::new(spec);
        let r = record(&opts, &mut driver, interrupt.handle());
        done.store(true, Ordering::SeqCst);
        r
    });
    let report = report.unwrap_or_else(|e| panic!("recording failed: {e}"));
    let trace = Trace::open(&report.trace).expect("the trace opens");
    (report, trace, tid.load(Ordering::SeqCst))
}

/// Every invocation replays identically.
fn assert_all_identical(trace: &Trace) {
    let summary = check_all(trace);
    assert_eq!(summary.total, trace.invocation_count());
    assert!(
        summary.all_identical(),
        "{}/{} invocations replayed identically: {:?}",
        summary.identical,
        summary.total,
        summary.divergences
    );
}

fn last_returning(trace: &Trace, r0: u64) -> Invocation {
    (0..trace.invocation_count())
        .rev()
        .map(|i| trace.invocation_owned(i).unwrap())
        .find(|inv| inv.retval == r0)
        .unwrap_or_else(|| panic!("no invocation returned {r0}"))
}

#[test]
fn tp_btf_loads_through_btf_pointers_are_recorded_and_replayed() {
    if !common::kernel_tests_enabled("tp_btf_loads_through_btf_pointers_are_recorded_and_replayed")
    {
        return;
    }
    let dir = TempDir::new("tp");
    let magic = MAGIC + 1;
    let obj = compile(&dir.0, "tp_btf_task", TP_BTF_PROGRAM, magic);
    let out = dir.0.join("t.bpfrr");
    let (report, trace, tid) = record_getpgid(&obj, magic, "sys_enter", 1, &out);
    assert!(
        matches!(report.stop, StopReason::Retval { value: 1, .. }),
        "{:?}",
        report.stop
    );
    assert!(report.lost.is_empty(), "records lost: {:?}", report.lost);
    assert!(
        !report.notes.iter().any(|n| n.contains("not recorded")),
        "{:?}",
        report.notes
    );
    let inv = last_returning(&trace, 1);
    let values: Vec<u64> = inv.btf_loads.iter().map(|l| l.value).collect();
    // regs->di, t->pid, t->tgid, t->comm[0] (and the parent's pid: the
    // feeding thread is not the main thread).
    assert!(values.contains(&magic), "regs->di: {:?}", inv.btf_loads);
    assert!(
        values.contains(&(tid as u64)),
        "t->pid {tid}: {:?}",
        inv.btf_loads
    );
    assert!(
        values.contains(&(std::process::id() as u64)),
        "t->tgid: {:?}",
        inv.btf_loads
    );
    assert!(inv.btf_loads.len() >= 5, "{:?}", inv.btf_loads);
    // In execution order: the register first, then the task's fields.
    assert_eq!(inv.btf_loads[0].value, magic);
    // Other syscalls stop before any load through a pointer.
    let other = last_returning(&trace, 0);
    assert!(
        other.btf_loads.len() <= 1,
        "only regs->di, if anything: {:?}",
        other.btf_loads
    );
    assert_all_identical(&trace);
}

#[test]
fn kfunc_results_are_recorded_and_replayed() {
    if !common::kernel_tests_enabled("kfunc_results_are_recorded_and_replayed") {
        return;
    }
    let dir = TempDir::new("kf");
    let magic = MAGIC + 2;
    let obj = compile(&dir.0, "tp_btf_kfunc", KFUNC_PROGRAM, magic);
    let out = dir.0.join("k.bpfrr");
    let (report, trace, tid) = record_getpgid(&obj, magic, "sys_enter", 2, &out);
    assert!(
        matches!(report.stop, StopReason::Retval { value: 2, .. }),
        "{:?}",
        report.stop
    );
    assert!(
        !report.notes.iter().any(|n| n.contains("not recorded")),
        "{:?}",
        report.notes
    );
    let inv = last_returning(&trace, 2);
    let kfuncs: Vec<_> = inv
        .events
        .iter()
        .filter(|e| e.kind == EventKind::Kfunc)
        .collect();
    assert_eq!(kfuncs.len(), 2, "from_pid and release: {:?}", inv.events);
    assert_ne!(kfuncs[0].ret, 0, "the task was found");
    let values: Vec<u64> = inv.btf_loads.iter().map(|l| l.value).collect();
    assert!(values.contains(&(tid as u64)), "me->pid: {values:?}");
    assert!(
        values.contains(&(std::process::id() as u64)),
        "t->tgid through the kfunc's pointer: {values:?}"
    );
    // The kfuncs are named in the trace.
    let names: Vec<String> = trace.programs()[0]
        .kfuncs
        .iter()
        .map(|k| k.name.clone())
        .collect();
    assert!(names.iter().any(|n| n == "bpf_task_from_pid"), "{names:?}");
    assert_all_identical(&trace);
}

#[test]
fn tp_btf_programs_are_loaded_for_the_tracepoint_the_driver_names() {
    if !common::kernel_tests_enabled(
        "tp_btf_programs_are_loaded_for_the_tracepoint_the_driver_names",
    ) {
        return;
    }
    // The section says sys_exit (same arguments as sys_enter: regs and a
    // long). On sys_exit ctx[1] is getpgid's result, never its number, so
    // the program returns 1 only if it really runs on sys_enter.
    let dir = TempDir::new("re");
    let source = TP_BTF_PROGRAM.replace("tp_btf/sys_enter", "tp_btf/sys_exit");
    let magic = MAGIC + 3;
    let obj = compile(&dir.0, "tp_btf_exit", &source, magic);
    let out = dir.0.join("r.bpfrr");
    let (report, trace, _) = record_getpgid(&obj, magic, "sys_enter", 1, &out);
    assert!(
        matches!(report.stop, StopReason::Retval { value: 1, .. }),
        "{:?}",
        report.stop
    );
    assert_eq!(trace.programs()[0].attach_point, "BTF tracepoint sys_enter");
    assert_all_identical(&trace);
}

#[test]
fn fentry_recordings_say_the_kernel_refuses_them_or_retarget() {
    if !common::kernel_tests_enabled("fentry_recordings_say_the_kernel_refuses_them_or_retarget") {
        return;
    }
    let dir = TempDir::new("fe");
    let source = r#"
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
SEC("fentry/do_unlinkat")
int on_enter(unsigned long long *ctx) { return 0; }
char LICENSE[] SEC("license") = "GPL";
"#;
    let obj = compile(&dir.0, "fentry", source, MAGIC);
    let opts = RecordOptions {
        object: obj,
        output: dir.0.join("f.bpfrr"),
        prepare: PrepareOptions::default(),
        stop: StopConditions {
            duration: Some(Duration::from_millis(200)),
            ..StopConditions::default()
        },
        command_line: vec!["record_btf".into()],
        status_line: false,
    };
    // Loaded for do_rmdir, not the section's do_unlinkat.
    let spec = AttachSpec::Fentry(FentryTarget::parse("do_rmdir").unwrap());
    let mut driver = LiveDriver::new(spec);
    match record(&opts, &mut driver, Interrupt::manual().handle()) {
        // This kernel (and any with lockdown or no trampoline) refuses them.
        Err(e) => {
            let text = e.to_string();
            assert!(text.contains("refuses fentry/fexit programs"), "{text}");
        }
        Ok(report) => {
            let trace = Trace::open(&report.trace).unwrap();
            assert!(
                trace.programs()[0].attach_point.contains("do_rmdir"),
                "{}",
                trace.programs()[0].attach_point
            );
        }
    }
}

#[test]
fn a_driver_target_of_the_wrong_kind_is_refused_before_loading() {
    if !common::kernel_tests_enabled("a_driver_target_of_the_wrong_kind_is_refused_before_loading")
    {
        return;
    }
    let dir = TempDir::new("wk");
    let obj = compile(&dir.0, "tp_btf_task", TP_BTF_PROGRAM, MAGIC);
    let opts = RecordOptions {
        object: obj,
        output: dir.0.join("w.bpfrr"),
        prepare: PrepareOptions::default(),
        stop: StopConditions::default(),
        command_line: vec!["record_btf".into()],
        status_line: false,
    };
    // A tp_btf program cannot be loaded as fentry.
    let spec = AttachSpec::Fentry(FentryTarget::parse("do_rmdir").unwrap());
    let e = record(
        &opts,
        &mut LiveDriver::new(spec),
        Interrupt::manual().handle(),
    )
    .expect_err("a tp_btf program is no fentry program");
    let text = e.to_string();
    assert!(text.contains("on_enter"), "{text}");
    assert!(text.contains("fentry"), "{text}");
    assert!(!dir.0.join("w.bpfrr").exists(), "no trace is left");
}
