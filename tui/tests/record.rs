//! `bpfrr record` through the real binary, as root: every packet sample
//! recorded from its pcap (the documented inputs, bug triggers included)
//! replays 100% identically; `--until-retval` stops at the failing run; a
//! raw tracepoint program built at test time records from `--ctx`. Plus,
//! without root, the committed sample traces open and replay identically.
//!
//! Under CI=true the kernel tests fail rather than skip when not root.

#![cfg(target_os = "linux")]

use std::path::Path;
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

fn bpfrr(dir: &Path, args: &[&str]) -> Out {
    let out = Command::new(env!("CARGO_BIN_EXE_bpfrr"))
        .arg("record")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("bpfrr runs");
    Out {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

/// Records `sample` from its pcap and checks: exit 0, every packet an
/// invocation, N/N identical, the trace readable with those invocations.
fn record_sample(sample: &str, prog: &str, packets: u64) {
    let dir = tempdir();
    let out_path = dir.path().join(format!("{sample}.bpfrr"));
    let o = bpfrr(
        &samples(),
        &[
            &format!("{sample}.bpf.o"),
            "--prog",
            prog,
            "--pcap",
            &format!("inputs/{sample}.pcap"),
            "-o",
            out_path.to_str().unwrap(),
        ],
    );
    assert!(o.ok, "{sample}: {}\n{}", o.stdout, o.stderr);
    assert!(
        o.stdout.contains(&format!(
            "{packets}/{packets} invocations replayed identically"
        )),
        "{sample}: {}",
        o.stdout
    );
    assert!(o.stdout.contains("0 records lost"), "{}", o.stdout);
    let trace = Trace::open(&out_path).unwrap();
    assert_eq!(trace.invocation_count(), packets);
    let p = &trace.programs()[0];
    assert_eq!(p.name, prog);
    assert_eq!(p.attach_point, "test_run");
    let v = p.verifier.as_ref().expect("verifier info");
    assert!(v.accepted && v.log.contains("processed"), "level 2 log");
    assert!(!v.stack_depths.is_empty());
    // The JIT image with a native offset for every xlated instruction.
    let jit = p.jit.as_ref().expect("JIT info (root sees the image)");
    assert!(!jit.image.is_empty());
    assert_eq!(jit.insn_offsets.len(), jit.xlated.len());
    assert!(jit.insn_offsets.windows(2).all(|w| w[0] <= w[1]) || p.func_info.len() > 1);
    assert!(
        jit.insn_offsets
            .iter()
            .all(|&o| (o as usize) < jit.image.len())
    );
    assert!(trace.meta().command.iter().any(|a| a == "record"));
    for m in trace.maps() {
        assert_eq!(
            m.snapshots.len(),
            2,
            "start and end snapshots of {}",
            m.name
        );
    }
    for i in 0..packets {
        let inv = trace.invocation_owned(i).unwrap();
        assert!(!inv.partial);
        assert!(inv.packet.is_some() && inv.final_packet.is_some());
    }
}

fn pcap_len(sample: &str) -> u64 {
    bpfrr_recorder::record::testrun_driver::read_pcap_file(
        &samples().join(format!("inputs/{sample}.pcap")),
    )
    .unwrap()
    .len() as u64
}

#[test]
fn xdp_fw_records_and_replays_identically() {
    if kernel_tests_enabled("xdp_fw_records_and_replays_identically") {
        record_sample("xdp_fw", "xdp_firewall", pcap_len("xdp_fw"));
    }
}

#[test]
fn tc_rewrite_records_through_its_tail_call_and_replays_identically() {
    if kernel_tests_enabled("tc_rewrite_records_and_replays_identically") {
        record_sample("tc_rewrite", "tc_mark_dscp", pcap_len("tc_rewrite"));
    }
}

#[test]
fn sock_filter_records_and_replays_identically() {
    if kernel_tests_enabled("sock_filter_records_and_replays_identically") {
        record_sample("sock_filter", "udp_port_filter", pcap_len("sock_filter"));
    }
}

#[test]
fn cgroup_skb_records_and_replays_identically() {
    if kernel_tests_enabled("cgroup_skb_records_and_replays_identically") {
        record_sample("cgroup_skb", "egress_accounting", pcap_len("cgroup_skb"));
    }
}

#[test]
fn until_retval_stops_at_the_bug_trigger() {
    if !kernel_tests_enabled("until_retval_stops_at_the_bug_trigger") {
        return;
    }
    // tcp23 (dropped: 1) then the IP-options packet the bug lets through (2).
    let tcp23 = std::fs::read_to_string(samples().join("inputs/xdp_fw-tcp23.hex")).unwrap();
    let bug = std::fs::read_to_string(samples().join("inputs/xdp_fw-tcp23-ipopts.hex")).unwrap();
    let dir = tempdir();
    let path = dir.path().join("t.bpfrr");
    let o = bpfrr(
        &samples(),
        &[
            "xdp_fw.bpf.o",
            "--packet",
            tcp23.trim(),
            "--packet",
            bug.trim(),
            "--packet",
            tcp23.trim(),
            "--until-retval",
            "XDP_PASS",
            "-o",
            path.to_str().unwrap(),
        ],
    );
    assert!(o.ok, "{}\n{}", o.stdout, o.stderr);
    assert!(
        o.stdout.contains("2/2 invocations replayed identically"),
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains("--until-retval"), "{}", o.stdout);
    let trace = Trace::open(&path).unwrap();
    let last = trace.invocation_owned(1).unwrap();
    assert_eq!(last.retval, 2, "the failing run is the last one");
    assert_eq!(trace.invocation_owned(0).unwrap().retval, 1);
}

#[test]
fn repeat_and_snaplen_are_honoured_and_a_cut_packet_is_a_named_divergence() {
    if !kernel_tests_enabled("repeat_and_snaplen_are_honoured") {
        return;
    }
    let bug = std::fs::read_to_string(samples().join("inputs/xdp_fw-tcp23-ipopts.hex")).unwrap();
    let dir = tempdir();
    let full = dir.path().join("full.bpfrr");
    let o = bpfrr(
        &samples(),
        &[
            "xdp_fw.bpf.o",
            "--packet",
            bug.trim(),
            "--repeat",
            "5",
            "--buffer",
            "256K",
            "-o",
            full.to_str().unwrap(),
        ],
    );
    assert!(o.ok, "{}\n{}", o.stdout, o.stderr);
    assert!(
        o.stdout.contains("5/5 invocations replayed identically"),
        "{}",
        o.stdout
    );
    let trace = Trace::open(&full).unwrap();
    assert_eq!(trace.invocation_count(), 5);
    let first = trace.invocation_owned(0).unwrap();
    let last = trace.invocation_owned(4).unwrap();
    assert_eq!(
        last.cpu_seq,
        first.cpu_seq + 4,
        "one CPU sequence number per run"
    );

    // A snap length shorter than the packet: recorded, but the replay
    // cannot parse what was cut, and the check says where it went wrong.
    let cut = dir.path().join("cut.bpfrr");
    let o = bpfrr(
        &samples(),
        &[
            "xdp_fw.bpf.o",
            "--packet",
            bug.trim(),
            "--snaplen",
            "32",
            "-o",
            cut.to_str().unwrap(),
        ],
    );
    assert!(!o.ok, "a divergence exits non-zero");
    assert!(
        o.stdout.contains("0/1 invocations replayed identically"),
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains("invocation 0"), "{}", o.stdout);
    assert!(o.stdout.contains("diverges at instruction"), "{}", o.stdout);
    assert!(
        o.stderr.contains("did not replay identically"),
        "{}",
        o.stderr
    );
    let trace = Trace::open(&cut).unwrap();
    let inv = trace.invocation_owned(0).unwrap();
    assert_eq!(inv.packet.as_ref().unwrap().len(), 32);
    assert_eq!(
        inv.packet_truncated_from,
        Some((bug.trim().len() / 2) as u32)
    );
}

#[test]
fn bad_inputs_are_clear_errors_and_leave_no_trace() {
    if !kernel_tests_enabled("bad_inputs_are_clear_errors_and_leave_no_trace") {
        return;
    }
    let dir = tempdir();
    let path = dir.path().join("t.bpfrr");
    let p = path.to_str().unwrap();
    let o = bpfrr(&samples(), &["xdp_fw.bpf.o", "--packet", "0102", "-o", p]);
    assert!(!o.ok);
    assert!(o.stderr.contains("14-byte Ethernet header"), "{}", o.stderr);
    let o = bpfrr(
        &samples(),
        &["xdp_fw.bpf.o", "--prog", "nope", "--packet", "00", "-o", p],
    );
    assert!(!o.ok);
    assert!(
        o.stderr.contains("no program named \"nope\""),
        "{}",
        o.stderr
    );
    assert!(o.stderr.contains("xdp_firewall"), "{}", o.stderr);
    let o = bpfrr(
        &samples(),
        &[
            "tp_syscalls.bpf.o",
            "--packet",
            "000000000000000000000000000000",
            "-o",
            p,
        ],
    );
    assert!(!o.ok);
    assert!(o.stderr.contains("attach it live"), "{}", o.stderr);
    let o = bpfrr(
        &samples(),
        &["xdp_fw.bpf.o", "--packet", "00", "--buffer", "3M", "-o", p],
    );
    assert!(!o.ok);
    assert!(o.stderr.contains("power of two"), "{}", o.stderr);
    // Nothing that looks like a trace was left behind.
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

const RAW_TP_PROGRAM: &str = r#"
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 16);
    __type(key, __u64);
    __type(value, __u64);
} seen SEC(".maps");

SEC("raw_tracepoint/sys_enter")
int on_sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
    __u64 id = ctx->args[1];
    __u64 *n = bpf_map_lookup_elem(&seen, &id);
    if (n) {
        __sync_fetch_and_add(n, 1);
        return 2;
    }
    __u64 one = 1;
    bpf_map_update_elem(&seen, &id, &one, BPF_ANY);
    return id == 59 ? 1 : 0;
}

char LICENSE[] SEC("license") = "GPL";
"#;

#[test]
fn raw_tracepoint_records_from_its_context() {
    if !kernel_tests_enabled("raw_tracepoint_records_from_its_context") {
        return;
    }
    let dir = tempdir();
    let src = dir.path().join("rawtp.bpf.c");
    std::fs::write(&src, RAW_TP_PROGRAM).unwrap();
    let obj = dir.path().join("rawtp.bpf.o");
    let arch_inc = format!("-I/usr/include/{}-linux-gnu", std::env::consts::ARCH);
    let st = Command::new("clang-19")
        .args(["-O2", "-g", "-target", "bpf", &arch_inc, "-c"])
        .arg(&src)
        .arg("-o")
        .arg(&obj)
        .status()
        .expect("clang-19 is installed (scripts/setup.sh)");
    assert!(st.success());
    let mut ctx = Vec::new();
    ctx.extend(0u64.to_le_bytes());
    ctx.extend(59u64.to_le_bytes());
    std::fs::write(dir.path().join("ctx.bin"), &ctx).unwrap();
    let o = bpfrr(
        dir.path(),
        &[
            "rawtp.bpf.o",
            "--ctx",
            "ctx.bin",
            "--repeat",
            "3",
            "-o",
            "t.bpfrr",
        ],
    );
    assert!(o.ok, "{}\n{}", o.stdout, o.stderr);
    assert!(
        o.stdout.contains("3/3 invocations replayed identically"),
        "{}",
        o.stdout
    );
    let trace = Trace::open(dir.path().join("t.bpfrr")).unwrap();
    let r: Vec<u64> = (0..3)
        .map(|i| trace.invocation_owned(i).unwrap().retval)
        .collect();
    assert_eq!(r, vec![1, 2, 2], "first sight, then found in the map");
    let inv = trace.invocation_owned(0).unwrap();
    assert_eq!(inv.ctx, ctx, "the arguments as the program saw them");
    assert!(inv.packet.is_none());
    // The hash map's end snapshot holds the counter: 1 + 2 increments.
    let seen = &trace.maps()[0];
    let end = seen
        .snapshots
        .iter()
        .find(|s| s.when == bpfrr_trace::trace::SnapshotTime::End)
        .unwrap();
    assert_eq!(end.entries.len(), 1);
    assert_eq!(end.entries[0].value, 3u64.to_le_bytes());
}

/// A tp_btf program whose section names sys_exit, recorded on sys_enter:
/// for getpgid(TP_BTF_MAGIC) it reads the syscall's register and the
/// current task's pid through BTF pointers and returns 1 (on sys_exit,
/// ctx[1] would be the result, never the syscall number).
const TP_BTF_PROGRAM: &str = r#"
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct pt_regs { unsigned long di; } __attribute__((preserve_access_index));
struct task_struct { int pid; } __attribute__((preserve_access_index));

SEC("tp_btf/sys_exit")
int on_syscall(unsigned long long *ctx)
{
    struct pt_regs *regs = (void *)ctx[0];
    if (ctx[1] != SYS_GETPGID || regs->di != MAGIC)
        return 0;
    struct task_struct *t = bpf_get_current_task_btf();
    return t->pid > 0 ? 1 : 2;
}

char LICENSE[] SEC("license") = "GPL";
"#;
const TP_BTF_MAGIC: u64 = 0x6274_6631;

#[test]
fn tp_btf_records_on_the_tracepoint_named_on_the_command_line() {
    if !kernel_tests_enabled("tp_btf_records_on_the_tracepoint_named_on_the_command_line") {
        return;
    }
    let dir = tempdir();
    let src = dir.path().join("tpbtf.bpf.c");
    std::fs::write(&src, TP_BTF_PROGRAM).unwrap();
    let arch_inc = format!("-I/usr/include/{}-linux-gnu", std::env::consts::ARCH);
    let st = Command::new("clang-19")
        .args(["-O2", "-g", "-target", "bpf", &arch_inc])
        .arg(format!("-DSYS_GETPGID={}", libc::SYS_getpgid))
        .arg(format!("-DMAGIC={TP_BTF_MAGIC:#x}"))
        .arg("-c")
        .arg(&src)
        .arg("-o")
        .arg(dir.path().join("tpbtf.bpf.o"))
        .status()
        .expect("clang-19 is installed (scripts/setup.sh)");
    assert!(st.success());
    let done = std::sync::atomic::AtomicBool::new(false);
    let o = std::thread::scope(|s| {
        s.spawn(|| {
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                std::thread::sleep(std::time::Duration::from_millis(50));
                // SAFETY: getpgid takes an integer and touches no memory.
                unsafe { libc::syscall(libc::SYS_getpgid, TP_BTF_MAGIC) };
            }
        });
        let o = bpfrr(
            dir.path(),
            &[
                "tpbtf.bpf.o",
                "--tp-btf",
                "sys_enter",
                "--until-retval",
                "1",
                "--duration",
                "30s",
                "-o",
                "t.bpfrr",
            ],
        );
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        o
    });
    assert!(o.ok, "{}\n{}", o.stdout, o.stderr);
    assert!(
        o.stdout.contains("returned 1"),
        "{}\n{}",
        o.stdout,
        o.stderr
    );
    let trace = Trace::open(dir.path().join("t.bpfrr")).unwrap();
    let n = trace.invocation_count();
    assert!(
        o.stdout
            .contains(&format!("{n}/{n} invocations replayed identically")),
        "{}",
        o.stdout
    );
    let last = trace.invocation_owned(n - 1).unwrap();
    assert_eq!(last.retval, 1);
    let values: Vec<u64> = last.btf_loads.iter().map(|l| l.value).collect();
    assert_eq!(
        values.first(),
        Some(&TP_BTF_MAGIC),
        "regs->di first: {values:?}"
    );
    assert_eq!(values.len(), 2, "regs->di and t->pid: {values:?}");
}

/// The committed fixtures (samples/traces/, made by samples/traces/record.sh)
/// open and replay identically on any machine, without root.
#[test]
fn committed_sample_traces_replay_identically() {
    let dir = samples().join("traces");
    let mut n = 0;
    for sample in ["xdp_fw", "tc_rewrite", "sock_filter", "cgroup_skb"] {
        let path = dir.join(format!("{sample}.bpfrr"));
        let trace = Trace::open(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(trace.invocation_count(), pcap_len(sample), "{sample}");
        let summary = bpfrr_replayer::replay::check_all(&trace);
        assert!(
            summary.all_identical(),
            "{sample}: {}",
            bpfrr_recorder::record::fidelity::report_lines(&summary).join("\n")
        );
        n += 1;
    }
    assert_eq!(n, 4);
}

#[test]
fn open_coded_iterators_record_and_replay_identically() {
    if !kernel_tests_enabled("open_coded_iterators_record_and_replay_identically") {
        return;
    }
    // samples/fixtures/iter_num: bpf_for over the packet, bpf_repeat, and
    // bpf_iter_num_new's error cases.
    let dir = tempdir();
    let out_path = dir.path().join("iter_num.bpfrr");
    let udp =
        "ffffffffffff00112233445508004500001c0001000040110000c0a80001c0a80002003500350008abcd";
    let o = bpfrr(
        &samples(),
        &[
            "fixtures/iter_num.bpf.o",
            "--packet",
            udp,
            "--packet",
            "0202020202020202020202020202",
            "-o",
            out_path.to_str().unwrap(),
        ],
    );
    assert!(o.ok, "{}\n{}", o.stdout, o.stderr);
    assert!(
        o.stdout.contains("2/2 invocations replayed identically"),
        "{}",
        o.stdout
    );
    let trace = Trace::open(&out_path).unwrap();
    let names: Vec<&str> = trace.programs()[0]
        .kfuncs
        .iter()
        .map(|k| k.name.as_str())
        .collect();
    assert!(names.contains(&"bpf_iter_num_next"), "{names:?}");
    // 3185 (odd): XDP_DROP; 14 * 2 (even): XDP_PASS.
    let retvals: Vec<u64> = (0..2)
        .map(|i| trace.invocation_owned(i).unwrap().retval)
        .collect();
    assert_eq!(retvals, vec![1, 2]);
}
