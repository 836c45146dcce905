//! `bpfrr record` failures through the real binary: each one is ONE line on
//! stderr saying what went wrong and what to do, a non-zero exit, and an
//! output directory left exactly as it was (no trace that looks valid, no
//! temporary file). And the one loss that is not a failure, records lost to
//! a full ring buffer: counted, printed, stored, and the invocations it
//! touched marked partial, never silently wrong.
//!
//! Most cases need root (the object is loaded before the failure shows);
//! without root they print SKIPPED, and fail under CI=true. The cases that
//! fail before the kernel is involved (missing or damaged object, missing
//! output directory) run everywhere.

#![cfg(target_os = "linux")]

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use bpfrr_trace::trace::Trace;

mod support;

use support::samples;

/// True when kernel tests can run; under CI=true not being root fails.
fn kernel_tests_enabled(test: &str) -> bool {
    support::kernel_tests_enabled(test, "recording")
}

struct Out {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// Runs `PREFIX... bpfrr record ARGS` in `dir` with extra environment.
fn run(prefix: &[&str], bin: &Path, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Out {
    let mut cmd = match prefix.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(bin);
            c
        }
        None => Command::new(bin),
    };
    cmd.arg("record").args(args).current_dir(dir);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("bpfrr runs");
    Out {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_bpfrr"))
}

fn bpfrr(dir: &Path, args: &[&str]) -> Out {
    run(&[], &bin(), dir, args, &[])
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

/// The failure contract: non-zero exit, exactly one non-empty line on
/// stderr (`bpfrr: ...`) holding every one of `words`, nothing on stdout
/// that claims a recording, and `out_dir` empty (no trace, no temp file).
fn assert_one_line_failure(case: &str, o: &Out, words: &[&str], out_dir: &Path) -> String {
    assert!(!o.ok, "{case}: exited 0\n{}\n{}", o.stdout, o.stderr);
    let lines: Vec<&str> = o.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "{case}: not one line on stderr:\n{}",
        o.stderr
    );
    let line = lines[0];
    assert!(line.starts_with("bpfrr: "), "{case}: {line}");
    for w in words {
        assert!(line.contains(w), "{case}: {w:?} missing from: {line}");
    }
    assert!(!o.stdout.contains("recorded"), "{case}: {}", o.stdout);
    assert_empty(case, out_dir);
    line.to_string()
}

fn assert_empty(case: &str, dir: &Path) {
    let left: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        left.is_empty(),
        "{case}: left behind in {}: {left:?}",
        dir.display()
    );
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("UTF-8 temp path")
}

// ---- not root / no CAP_BPF ------------------------------------------------

/// A copy of the binary and the sample that user `nobody` can read and run
/// (the cargo target dir may not be reachable for it), plus an output
/// directory nobody may write, so only the missing privilege can fail.
struct UnprivilegedSetup {
    dir: tempfile::TempDir,
    bin: PathBuf,
    out: PathBuf,
}

fn unprivileged_setup() -> UnprivilegedSetup {
    let dir = tempdir();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin_copy = dir.path().join("bpfrr");
    std::fs::copy(bin(), &bin_copy).unwrap();
    std::fs::set_permissions(&bin_copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    for f in ["xdp_fw.bpf.o", "inputs/xdp_fw.pcap"] {
        let to = dir.path().join(Path::new(f).file_name().unwrap());
        std::fs::copy(samples().join(f), &to).unwrap();
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o777)).unwrap();
    UnprivilegedSetup {
        dir,
        bin: bin_copy,
        out,
    }
}

#[test]
fn without_root_or_cap_bpf_one_line_says_to_use_sudo() {
    if !kernel_tests_enabled("without_root_or_cap_bpf_one_line_says_to_use_sudo") {
        return;
    }
    let s = unprivileged_setup();
    let args = ["xdp_fw.bpf.o", "--pcap", "xdp_fw.pcap", "-o", "out/t.bpfrr"];
    let words = ["needs root or CAP_BPF", "sudo"];
    // User nobody.
    let o = run(
        &[
            "setpriv",
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
        ],
        &s.bin,
        s.dir.path(),
        &args,
        &[],
    );
    let line = assert_one_line_failure("user nobody", &o, &words, &s.out);
    assert!(!line.contains("although bpfrr runs as root"), "{line}");
    // Root without capabilities (a container, capabilities dropped): the
    // same sentence, not "the kernel restricts it".
    let o = run(
        &["setpriv", "--bounding-set=-all", "--inh-caps=-all"],
        &s.bin,
        s.dir.path(),
        &args,
        &[],
    );
    let line = assert_one_line_failure("root without capabilities", &o, &words, &s.out);
    assert!(!line.contains("although bpfrr runs as root"), "{line}");
}

// ---- kernel without BTF ---------------------------------------------------

/// One CO-RE relocation: the byte offset of `task_struct.pid` in the
/// running kernel, returned by a raw tracepoint program.
const CORE_PROGRAM: &str = r#"
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct task_struct { int pid; } __attribute__((preserve_access_index));

SEC("raw_tracepoint/sys_enter")
int pid_offset(void *ctx)
{
    return __builtin_preserve_field_info(((struct task_struct *)0)->pid, 0 /* BPF_FIELD_BYTE_OFFSET */);
}

char LICENSE[] SEC("license") = "GPL";
"#;

fn build_core_program(dir: &Path) -> PathBuf {
    let src = dir.join("core.bpf.c");
    std::fs::write(&src, CORE_PROGRAM).unwrap();
    let obj = dir.join("core.bpf.o");
    let arch_inc = format!("-I/usr/include/{}-linux-gnu", std::env::consts::ARCH);
    let st = Command::new("clang-19")
        .args(["-O2", "-g", "-target", "bpf", &arch_inc, "-c"])
        .arg(&src)
        .arg("-o")
        .arg(&obj)
        .status()
        .expect("clang-19 is installed (scripts/setup.sh)");
    assert!(st.success(), "clang-19 failed on the CO-RE test program");
    std::fs::write(dir.join("ctx.bin"), 0u64.to_le_bytes()).unwrap();
    obj
}

#[test]
fn without_kernel_btf_core_programs_fail_in_one_line_and_others_record() {
    if !kernel_tests_enabled("without_kernel_btf_core_programs_fail_in_one_line") {
        return;
    }
    let src = tempdir();
    build_core_program(src.path());
    let out = tempdir();
    let trace = out.path().join("t.bpfrr");
    let no_btf = [("BPFRR_VMLINUX_BTF", "/nonexistent/vmlinux")];
    let args = ["core.bpf.o", "--ctx", "ctx.bin", "-o", path_str(&trace)];
    let o = run(&[], &bin(), src.path(), &args, &no_btf);
    assert_one_line_failure(
        "CO-RE without BTF",
        &o,
        &[
            "\"pid_offset\" uses CO-RE (1 relocation)",
            "needs the kernel's BTF",
            "/nonexistent/vmlinux cannot be read",
            "CONFIG_DEBUG_INFO_BTF=y",
        ],
        out.path(),
    );

    // With the kernel's BTF the same program records, and CO-RE moved the
    // offset to the running kernel's.
    let o = run(&[], &bin(), src.path(), &args, &[]);
    assert!(o.ok, "{}\n{}", o.stdout, o.stderr);
    assert!(
        o.stdout.contains("1/1 invocations replayed identically"),
        "{}",
        o.stdout
    );
    let vmlinux = std::fs::read("/sys/kernel/btf/vmlinux").expect("this kernel has BTF");
    let kernel = bpfrr_trace::btf::Btf::parse(&vmlinux).unwrap();
    let task = kernel
        .find_by_name(bpfrr_trace::btf::BtfKind::Struct, "task_struct")
        .unwrap();
    let pid = kernel.member_by_name(task, "pid").unwrap().bit_offset / 8;
    let t = Trace::open(&trace).unwrap();
    assert_eq!(t.invocation_owned(0).unwrap().retval, pid as u64);

    // A program without CO-RE relocations needs no kernel BTF.
    let plain = out.path().join("plain.bpfrr");
    let o = run(
        &[],
        &bin(),
        &samples(),
        &[
            "xdp_fw.bpf.o",
            "--pcap",
            "inputs/xdp_fw.pcap",
            "-o",
            path_str(&plain),
        ],
        &no_btf,
    );
    assert!(o.ok, "{}\n{}", o.stdout, o.stderr);
    assert!(
        o.stdout.contains("invocations replayed identically"),
        "{}",
        o.stdout
    );
    assert!(Trace::open(&plain).unwrap().invocation_count() > 0);
}

// ---- ring buffer overflow -------------------------------------------------

/// The smallest ring buffer (one page) and 50 runs of each packet per
/// BPF_PROG_TEST_RUN call: the runs of one call fill the buffer long before
/// bpfrr can drain it, every time.
#[test]
fn a_full_ring_buffer_is_counted_printed_stored_and_marked() {
    if !kernel_tests_enabled("a_full_ring_buffer_is_counted_printed_stored_and_marked") {
        return;
    }
    let dir = tempdir();
    let clean = dir.path().join("clean.bpfrr");
    let lossy = dir.path().join("lossy.bpfrr");
    let o = bpfrr(
        &samples(),
        &[
            "xdp_fw.bpf.o",
            "--pcap",
            "inputs/xdp_fw.pcap",
            "-o",
            path_str(&clean),
        ],
    );
    assert!(o.ok, "{}\n{}", o.stdout, o.stderr);
    assert!(!o.stderr.contains("records lost"), "{}", o.stderr);
    let o = bpfrr(
        &samples(),
        &[
            "xdp_fw.bpf.o",
            "--pcap",
            "inputs/xdp_fw.pcap",
            "--repeat",
            "50",
            "--buffer",
            "4K",
            "-o",
            path_str(&lossy),
        ],
    );
    assert!(o.ok, "{}\n{}", o.stdout, o.stderr);

    // Printed at the end, per CPU, with what to do.
    let mut printed: HashMap<u32, u64> = HashMap::new();
    for line in o
        .stderr
        .lines()
        .filter(|l| l.contains("records lost on CPU"))
    {
        assert!(
            line.contains(": the ring buffer was full; use --buffer to enlarge it"),
            "{line}"
        );
        let words: Vec<&str> = line.split_whitespace().collect();
        let n: u64 = words[0].parse().unwrap();
        let cpu: u32 = words[5].trim_end_matches(':').parse().unwrap();
        printed.insert(cpu, n);
    }
    assert!(!printed.is_empty(), "no loss printed:\n{}", o.stderr);
    let total: u64 = printed.values().sum();
    assert!(total > 0);

    // Stored in the trace, the same figures.
    let trace = Trace::open(&lossy).unwrap();
    let stored: HashMap<u32, u64> = trace.lost().iter().map(|l| (l.cpu, l.count)).collect();
    assert_eq!(stored, printed);
    // Shown by bpfrr info.
    let info = Command::new(bin())
        .arg("info")
        .arg(&lossy)
        .output()
        .unwrap();
    let info = String::from_utf8_lossy(&info.stdout);
    assert!(info.contains(&format!("lost records {total}")), "{info}");

    // Fewer invocations than runs; the ones the loss touched are partial and
    // counted as such; every complete one is exactly what the kernel did
    // with its packet (the clean recording of the same packets says what).
    let runs = 50 * trace_len(&clean);
    let n = trace.invocation_count();
    assert!(n > 0 && n < runs, "{n} invocations of {runs} runs");
    let clean = Trace::open(&clean).unwrap();
    let expected: HashMap<Vec<u8>, (u64, Option<Vec<u8>>)> = (0..clean.invocation_count())
        .map(|i| {
            let inv = clean.invocation_owned(i).unwrap();
            (inv.packet.clone().unwrap(), (inv.retval, inv.final_packet))
        })
        .collect();
    let mut partial = 0;
    // Per CPU: invocations in the trace, highest sequence number.
    let mut per_cpu: HashMap<u32, (u64, u64)> = HashMap::new();
    for i in 0..n {
        let inv = trace.invocation_owned(i).unwrap();
        let c = per_cpu.entry(inv.cpu).or_default();
        c.0 += 1;
        c.1 = c.1.max(inv.cpu_seq);
        if inv.partial {
            partial += 1;
            continue;
        }
        let packet = inv
            .packet
            .as_ref()
            .expect("a complete invocation has its packet");
        let (retval, final_packet) = expected
            .get(packet)
            .unwrap_or_else(|| panic!("invocation {i}: a packet that was never sent"));
        assert_eq!(inv.retval, *retval, "invocation {i}");
        assert_eq!(&inv.final_packet, final_packet, "invocation {i}");
    }
    // Each invocation is one ring buffer write: a full buffer loses whole
    // invocations, whose records are all in the lost count and which leave
    // gaps in their CPU's sequence numbers (1, 2, ...). An invocation cut
    // short (its records did not fit bpfrr's per-CPU buffer) is marked
    // partial and reported.
    let missing: u64 = per_cpu.values().map(|(count, max)| max - count).sum();
    assert!(missing > 0, "lost invocations leave gaps: {per_cpu:?}");
    assert!(
        total >= missing,
        "{total} records lost, {missing} invocations missing"
    );
    if partial > 0 {
        assert!(
            o.stdout
                .contains(&format!("{partial} invocations are incomplete")),
            "{}",
            o.stdout
        );
        assert!(
            o.stdout.contains(&format!("({partial} of them partial")),
            "{}",
            o.stdout
        );
    }
}

fn trace_len(path: &Path) -> u64 {
    Trace::open(path).unwrap().invocation_count()
}

// ---- disk full --------------------------------------------------------------

/// A small tmpfs mounted for the test, unmounted however the test ends.
struct SmallDisk {
    dir: tempfile::TempDir,
    mounted: bool,
}

impl SmallDisk {
    fn mount(size: &str) -> SmallDisk {
        let dir = tempdir();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("mount runs");
        assert!(st.success(), "mount -t tmpfs failed");
        SmallDisk { dir, mounted: true }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        if self.mounted {
            let _ = Command::new("umount").arg(self.dir.path()).status();
            self.mounted = false;
        }
    }
}

#[test]
fn a_full_disk_is_one_line_and_leaves_no_file() {
    if !kernel_tests_enabled("a_full_disk_is_one_line_and_leaves_no_file") {
        return;
    }
    // The xdp_fw trace is well over 100 KiB; 64 KiB cannot hold it.
    let disk = SmallDisk::mount("64k");
    let trace = disk.path().join("t.bpfrr");
    let o = bpfrr(
        &samples(),
        &[
            "xdp_fw.bpf.o",
            "--pcap",
            "inputs/xdp_fw.pcap",
            "-o",
            path_str(&trace),
        ],
    );
    assert_one_line_failure(
        "disk full",
        &o,
        &[
            "cannot write",
            "t.bpfrr",
            "the disk is full",
            "free some space",
        ],
        disk.path(),
    );
}

// ---- what the recording attaches to -----------------------------------------

#[test]
fn a_missing_interface_is_one_line() {
    if !kernel_tests_enabled("a_missing_interface_is_one_line") {
        return;
    }
    let out = tempdir();
    let trace = out.path().join("t.bpfrr");
    let o = bpfrr(
        &samples(),
        &[
            "xdp_fw.bpf.o",
            "--xdp",
            "nosuchif0",
            "--count",
            "1",
            "-o",
            path_str(&trace),
        ],
    );
    assert_one_line_failure(
        "--xdp nosuchif0",
        &o,
        &["no network interface \"nosuchif0\"", "ip link"],
        out.path(),
    );
}

#[test]
fn a_missing_cgroup_is_one_line() {
    if !kernel_tests_enabled("a_missing_cgroup_is_one_line") {
        return;
    }
    let out = tempdir();
    let trace = out.path().join("t.bpfrr");
    let o = bpfrr(
        &samples(),
        &[
            "cgroup_skb.bpf.o",
            "--cgroup",
            "/sys/fs/cgroup/nonexistent",
            "--count",
            "1",
            "-o",
            path_str(&trace),
        ],
    );
    assert_one_line_failure(
        "--cgroup nonexistent",
        &o,
        &["/sys/fs/cgroup/nonexistent", "create the cgroup first"],
        out.path(),
    );
}

#[test]
fn a_program_type_the_driver_cannot_run_is_one_line() {
    if !kernel_tests_enabled("a_program_type_the_driver_cannot_run_is_one_line") {
        return;
    }
    let out = tempdir();
    let trace = out.path().join("t.bpfrr");
    // A tracepoint program cannot be test-run on packets.
    let o = bpfrr(
        &samples(),
        &[
            "tp_syscalls.bpf.o",
            "--pcap",
            "inputs/xdp_fw.pcap",
            "-o",
            path_str(&trace),
        ],
    );
    assert_one_line_failure(
        "tracepoint with --pcap",
        &o,
        &[
            "\"count_openat\" is a tracepoint program",
            "BPF_PROG_TEST_RUN cannot run",
            "--tracepoint CAT:NAME",
        ],
        out.path(),
    );
    // A socket filter cannot be attached as XDP.
    let o = bpfrr(
        &samples(),
        &[
            "sock_filter.bpf.o",
            "--xdp",
            "lo",
            "--count",
            "1",
            "-o",
            path_str(&trace),
        ],
    );
    assert_one_line_failure(
        "socket filter with --xdp",
        &o,
        &["socket_filter program", "needs a xdp program", "--prog"],
        out.path(),
    );
}

// ---- the object ---------------------------------------------------------------

#[test]
fn no_program_of_that_name_lists_the_programs() {
    if !kernel_tests_enabled("no_program_of_that_name_lists_the_programs") {
        return;
    }
    let out = tempdir();
    let trace = out.path().join("t.bpfrr");
    let o = bpfrr(
        &samples(),
        &[
            "tc_rewrite.bpf.o",
            "--prog",
            "nosuch",
            "--pcap",
            "inputs/tc_rewrite.pcap",
            "-o",
            path_str(&trace),
        ],
    );
    assert_one_line_failure(
        "--prog nosuch",
        &o,
        &[
            "no program named \"nosuch\"",
            "it has: ",
            "tc_mark_dscp",
            "tc_redirect_port",
            "--prog",
        ],
        out.path(),
    );
}

#[test]
fn a_missing_object_file_is_one_line() {
    let out = tempdir();
    let trace = out.path().join("t.bpfrr");
    let o = bpfrr(
        &samples(),
        &[
            "no_such_object.bpf.o",
            "--pcap",
            "inputs/xdp_fw.pcap",
            "-o",
            path_str(&trace),
        ],
    );
    assert_one_line_failure(
        "missing object",
        &o,
        &[
            "cannot read the object file no_such_object.bpf.o",
            "No such file or directory",
            "check the path",
        ],
        out.path(),
    );
}

#[test]
fn a_truncated_object_file_is_one_line() {
    let src = tempdir();
    let whole = std::fs::read(samples().join("xdp_fw.bpf.o")).unwrap();
    let cut = src.path().join("cut.bpf.o");
    std::fs::write(&cut, &whole[..whole.len() / 3]).unwrap();
    std::fs::copy(
        samples().join("inputs/xdp_fw.pcap"),
        src.path().join("p.pcap"),
    )
    .unwrap();
    let out = tempdir();
    let trace = out.path().join("t.bpfrr");
    let o = bpfrr(
        src.path(),
        &["cut.bpf.o", "--pcap", "p.pcap", "-o", path_str(&trace)],
    );
    assert_one_line_failure(
        "truncated object",
        &o,
        &[
            "cut.bpf.o",
            "malformed or truncated BPF object",
            "rebuild it",
        ],
        out.path(),
    );
}

#[test]
fn an_output_directory_that_does_not_exist_is_one_line() {
    let out = tempdir();
    let trace = out.path().join("missing/dir/t.bpfrr");
    let o = bpfrr(
        &samples(),
        &[
            "xdp_fw.bpf.o",
            "--pcap",
            "inputs/xdp_fw.pcap",
            "-o",
            path_str(&trace),
        ],
    );
    let line = assert_one_line_failure(
        "-o into a missing directory",
        &o,
        &["does not exist", "mkdir -p"],
        out.path(),
    );
    assert!(
        line.contains(path_str(&out.path().join("missing/dir"))),
        "{line}"
    );
    // -o naming a directory is refused the same way.
    let o = bpfrr(
        &samples(),
        &[
            "xdp_fw.bpf.o",
            "--pcap",
            "inputs/xdp_fw.pcap",
            "-o",
            path_str(out.path()),
        ],
    );
    assert_one_line_failure(
        "-o a directory",
        &o,
        &["is a directory", "file name"],
        out.path(),
    );
}
