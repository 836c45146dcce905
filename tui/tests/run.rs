//! `bpfrr run` through the real binary on the committed samples, with the
//! inputs and results documented in samples/README.md.

use std::path::PathBuf;
use std::process::Command;

fn samples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../samples")
}

fn bpfrr(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_bpfrr"))
        .arg("run")
        .args(args)
        .current_dir(samples())
        .output()
        .expect("bpfrr runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The r0 of every input, in order.
fn returns(stdout: &str) -> Vec<i64> {
    stdout
        .lines()
        .filter_map(|l| l.split_once(": r0 = "))
        .map(|(_, r)| r.split_whitespace().next().unwrap().parse().unwrap())
        .collect()
}

#[test]
fn xdp_firewall_on_its_pcap() {
    let (ok, out, err) = bpfrr(&[
        "xdp_fw.bpf.o",
        "--prog",
        "xdp_firewall",
        "--pcap",
        "inputs/xdp_fw.pcap",
    ]);
    assert!(ok, "{err}");
    // README: udp-dns, tcp23, tcp23-ipopts (the planted bug), tcp22-ipopts, qinq, vlan,
    // ipv6-tcp23, ipv6-udp, arp, truncated, blocked-src, blocked-prefix (maps empty).
    assert_eq!(returns(&out), vec![2, 1, 2, 2, 1, 2, 1, 2, 2, 1, 2, 2]);
    assert!(out.contains("r0 = 1 (XDP_DROP)"));
    assert!(
        out.contains("map rule_stats[3]: (none) -> { .packets = 1, .bytes = 54 }"),
        "{out}"
    );
    assert!(
        out.contains("map rule_stats[5]: (none)"),
        "ARP counted as non-IP: {out}"
    );
}

#[test]
fn tc_rewrite_with_and_without_its_tail_call() {
    let (ok, out, err) = bpfrr(&[
        "tc_rewrite.bpf.o",
        "--prog",
        "tc_mark_dscp",
        "--pcap",
        "inputs/tc_rewrite.pcap",
        "--tail",
        "jump_table:0=tc_redirect_port",
    ]);
    assert!(ok, "{err}");
    assert_eq!(returns(&out), vec![0; 5]);
    // The planted bug: the zero UDP checksum becomes 0xd8ef.
    let outs: Vec<&str> = out.lines().filter(|l| l.contains("packet out")).collect();
    assert_eq!(outs.len(), 4, "IPv6 is left unchanged: {out}");
    assert!(
        outs[1].contains("3bf9001fd8ef"),
        "dport 15353, checksum 0xd8ef: {}",
        outs[1]
    );
    assert!(outs[0].contains("45b8"), "tos 0xb8: {}", outs[0]);
    assert!(out.contains("tail call: jump_table[0] -> program 1"));
    let udp = std::fs::read_to_string(samples().join("inputs/tc_rewrite-udp5353.hex")).unwrap();
    let (ok, out, _) = bpfrr(&[
        "tc_rewrite.bpf.o",
        "--prog",
        "tc_mark_dscp",
        "--packet",
        udp.trim(),
    ]);
    assert!(ok);
    assert!(out.contains("fell through"), "{out}");
    assert!(out.contains(".tail_call_misses = 1"), "{out}");
}

#[test]
fn socket_filter_and_cgroup_skb() {
    let (ok, out, err) = bpfrr(&[
        "sock_filter.bpf.o",
        "--prog",
        "udp_port_filter",
        "--pcap",
        "inputs/sock_filter.pcap",
    ]);
    assert!(ok, "{err}");
    assert_eq!(returns(&out), vec![38, 34, 0, 0, 0, 0, 0, 50]);
    let (ok, out, err) = bpfrr(&[
        "cgroup_skb.bpf.o",
        "--prog",
        "egress_accounting",
        "--pcap",
        "inputs/cgroup_skb.pcap",
    ]);
    assert!(ok, "{err}");
    assert_eq!(returns(&out), vec![1, 0, 1, 1, 1]);
    assert!(out.contains("r0 = 0 (drop)"));
}

#[test]
fn repeat_keeps_map_contents() {
    let hex = std::fs::read_to_string(samples().join("inputs/xdp_fw-tcp23.hex")).unwrap();
    let (ok, out, _) = bpfrr(&[
        "xdp_fw.bpf.o",
        "--prog",
        "xdp_firewall",
        "--packet",
        hex.trim(),
        "--repeat",
        "3",
    ]);
    assert!(ok);
    assert!(out.contains("run 3: r0 = 1 (XDP_DROP)"), "{out}");
    assert!(out.contains("-> { .packets = 3, .bytes = 162 }"), "{out}");
}

#[test]
fn bad_input_is_one_clear_error() {
    let (ok, _, err) = bpfrr(&["xdp_fw.bpf.o", "--prog", "nope", "--packet", "00"]);
    assert!(!ok);
    assert!(
        err.contains("no program `nope`; it has: xdp_firewall"),
        "{err}"
    );
    let (ok, _, err) = bpfrr(&["xdp_fw.bpf.o", "--prog", "xdp_firewall", "--packet", "abc"]);
    assert!(!ok);
    assert!(err.contains("odd number of digits"), "{err}");
    let (ok, _, err) = bpfrr(&[
        "xdp_fw.bpf.o",
        "--prog",
        "xdp_firewall",
        "--ctx",
        "inputs/xdp_fw-arp.hex",
    ]);
    assert!(!ok);
    assert!(err.contains("needs --packet HEX or --pcap FILE"), "{err}");
}

/// `bpfrr run` of program NAME in samples/fixtures/NAME.bpf.o on one
/// packet: its output, or None without the kernel's BTF, where a kfunc
/// call cannot be linked and the command says so in one clear error.
fn run_kfunc_fixture(name: &str, packet_hex: &str) -> Option<String> {
    let object = format!("fixtures/{name}.bpf.o");
    let (ok, out, err) = bpfrr(&[&object, "--prog", name, "--packet", packet_hex]);
    if !std::path::Path::new("/sys/kernel/btf/vmlinux").exists() {
        assert!(!ok);
        assert!(
            err.contains("can only be resolved against the kernel's BTF"),
            "{err}"
        );
        return None;
    }
    assert!(ok, "{err}");
    Some(out)
}

#[test]
fn packet_dynptrs_run_in_the_model() {
    // samples/fixtures/dynptr_xdp: headers through bpf_dynptr_slice, the
    // MACs swapped with bpf_dynptr_write, the TTL decremented through
    // bpf_dynptr_slice_rdwr; kfuncs resolved by name against the kernel's BTF.
    let udp53 =
        "0a0b0c0d0e0f00112233445508004500001c0001000040110000c0a80001c0a80002abcd00350008beef";
    let Some(out) = run_kfunc_fixture("dynptr_xdp", udp53) else {
        return;
    };
    assert_eq!(returns(&out), vec![3], "XDP_TX for UDP port 53");
    assert!(
        out.contains("packet out (42 bytes): 0011223344550a0b0c0d0e0f08004500001c000100003f11"),
        "{out}"
    );
    for line in [
        "map results[1]: (none) -> -22",
        "map results[2]: (none) -> 1",
        "map results[3]: (none) -> 42",
        "map results[8]: (none) -> 53",
        "map results[13]: (none) -> -7",
        "map results[17]: (none) -> 63",
        "map results[20]: (none) -> 20",
        "map results[21]: (none) -> 69",
        "map results[23]: (none) -> -34",
    ] {
        assert!(out.contains(line), "{line}: {out}");
    }
}

#[test]
fn open_coded_iterators_run_in_the_model() {
    // samples/fixtures/iter_num: kfuncs are resolved by name against the
    // running kernel's BTF, as libbpf does.
    let udp =
        "ffffffffffff00112233445508004500001c0001000040110000c0a80001c0a80002003500350008abcd";
    let Some(out) = run_kfunc_fixture("iter_num", udp) else {
        return;
    };
    // The 42 bytes sum to 3185 (odd: XDP_DROP, first byte 0x71); three
    // repeats; -EINVAL for start > end, -E2BIG for the long ranges; the
    // last index summed is 41. Keys 2 and 4 (no steps) stay 0.
    assert_eq!(returns(&out), vec![1]);
    assert!(
        out.contains("packet out (42 bytes): 71ffffffffff0011"),
        "{out}"
    );
    for line in [
        "map results[0]: (none) -> 3185",
        "map results[1]: (none) -> 3",
        "map results[3]: (none) -> -22",
        "map results[5]: (none) -> -7",
        "map results[6]: (none) -> -7",
        "map results[7]: (none) -> 41",
    ] {
        assert!(out.contains(line), "{line}: {out}");
    }
    assert!(
        !out.contains("results[2]") && !out.contains("results[4]"),
        "{out}"
    );
}
