#!/usr/bin/env python3
"""Checks the samples against the running kernel (root, bpftool, bpffs).

    make -C samples verify        (builds, then runs this)
    python3 samples/tools/verify_samples.py

1. Every samples/*.bpf.o loads: `bpftool prog loadall` succeeds, so the
   verifier accepts every program in it.
2. The packet samples run with BPF_PROG_TEST_RUN (`bpftool prog run`) on the
   committed inputs/*.hex files; return values, output packets and map
   contents are compared with what samples/README.md documents, planted bugs
   included: a case marked BUG checks that the bug really shows.
3. The tracing samples run under tools/trace_attach with their workloads
   (uprobe_target, tools/open_threads), and their maps and ring buffer
   records are checked the same way.

With --fixed, the samples are first copied to a temporary directory, the
one-line fix of each planted bug (FIXES below, also in README.md) is
applied, everything is rebuilt with clang, and the same checks expect the
intended behaviour instead: this proves that each documented bug is the one
and only cause of its symptom.

Everything pinned lives under /sys/fs/bpf/bpfrr-samples-<pid> and is removed
at the end. Exit status 0 when every check passed.
"""

import glob
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

SOURCE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLES = SOURCE_DIR  # where objects and binaries are taken from
INPUTS = os.path.join(SOURCE_DIR, "inputs")
FIXED = False  # True: expect the intended behaviour (bugs fixed)

# The planted bugs: (file, buggy text, fixed text). Each buggy text occurs
# exactly once in its file.
FIXES = [
    ("xdp_fw.bpf.c",
     "return parse_ports(ip + 1, data_end, ip->protocol, info);",
     "return parse_ports((void *)ip + ip->ihl * 4, data_end, ip->protocol, info);"),
    ("tc_rewrite.bpf.c",
     "new_port, sizeof(new_port));",
     "new_port, BPF_F_MARK_MANGLED_0 | sizeof(new_port));"),
    ("sock_filter.bpf.c",
     "dport < PORT_LAST)",
     "dport <= PORT_LAST)"),
    ("cgroup_skb.bpf.c",
     "skb->protocol == ETH_P_IPV6)",
     "skb->protocol == bpf_htons(ETH_P_IPV6))"),
    ("tp_syscalls.bpf.c",
     "key = (__u32)pid_tgid;",
     "key = pid;"),
    ("uprobe_args.bpf.c",
     "int price = PT_REGS_PARM3(ctx);",
     "long price = PT_REGS_PARM3(ctx);"),
]
PIN_ROOT = f"/sys/fs/bpf/bpfrr-samples-{os.getpid()}"

XDP_DROP, XDP_PASS = 1, 2
TC_ACT_OK = 0
CGROUP_DENY, CGROUP_ALLOW = 0, 1

failures = []


def expect(as_built, intended):
    """What a check expects: the planted bug's result, or with --fixed the
    intended one."""
    return intended if FIXED else as_built


def bug_note(as_built, intended, show=str):
    if as_built == intended:
        return ""
    return f" (fixed: {show(intended)})" if FIXED else f" (BUG: intended {show(intended)})"


def check(condition, what):
    print(("ok   " if condition else "FAIL ") + what)
    if not condition:
        failures.append(what)
    return condition


def run(*args, capture=True):
    return subprocess.run(args, capture_output=capture, text=True)


def bpftool_json(*args):
    res = run("bpftool", "-j", *args)
    if res.returncode != 0:
        raise RuntimeError(f"bpftool {' '.join(args)} failed: {res.stderr.strip()}")
    return json.loads(res.stdout) if res.stdout.strip() else None


def u32_key(n):
    return [str(b) for b in struct.pack("<I", n)]


def frame(case):
    with open(os.path.join(INPUTS, case + ".hex")) as f:
        return bytes.fromhex(f.read().strip())


class Loaded:
    """An object loaded with bpftool, its programs and maps pinned."""

    def __init__(self, name):
        self.name = name
        self.progs = os.path.join(PIN_ROOT, name)
        self.maps = os.path.join(PIN_ROOT, name + "-maps")
        obj = os.path.join(SAMPLES, name + ".bpf.o")
        res = run("bpftool", "prog", "loadall", obj, self.progs, "pinmaps", self.maps)
        self.ok = check(res.returncode == 0,
                        f"{name}: loads, verifier accepts every program"
                        + ("" if res.returncode == 0 else f" ({res.stderr.strip()[-300:]})"))
        self.prog_names = sorted(os.listdir(self.progs)) if self.ok else []

    def prog(self, name):
        return os.path.join(self.progs, name)

    def map(self, name):
        return os.path.join(self.maps, name)

    def test_run(self, prog, case):
        """Runs `prog` on inputs/<case>.hex; returns (retval, output frame)."""
        with tempfile.TemporaryDirectory() as tmp:
            data_in = os.path.join(tmp, "in")
            data_out = os.path.join(tmp, "out")
            with open(data_in, "wb") as f:
                f.write(frame(case))
            out = bpftool_json("prog", "run", "pinned", self.prog(prog), "data_in", data_in,
                               "data_out", data_out)
            with open(data_out, "rb") as f:
                return out["retval"], f.read()

    def lookup(self, map_name, key_bytes):
        return bpftool_json("map", "lookup", "pinned", self.map(map_name), "key", *key_bytes)

    def percpu_sum(self, map_name, key, field):
        res = self.lookup(map_name, u32_key(key))
        return sum(v["value"][field] for v in res["formatted"]["values"])

    def globals(self, section):
        """Variables of a global data section (".bss", ".rodata") by name.
        libbpf names the map "<object prefix>.bss"; bpftool pins it as
        "<object prefix>_bss"."""
        suffix = "_" + section.lstrip(".")
        pin = next(p for p in os.listdir(self.maps) if p.endswith(suffix))
        res = bpftool_json("map", "dump", "pinned", self.map(pin))
        section = next(iter(res[0]["formatted"]["value"].values()))
        return {k: v for item in section for k, v in item.items()}


def ones_complement_ok(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(w for (w,) in struct.iter_unpack("!H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total == 0xFFFF


def ipv4_fields(pkt):
    ip = pkt[14:]
    ihl = (ip[0] & 0xF) * 4
    l4 = ip[ihl:]
    return {
        "tos": ip[1],
        "ip_csum_ok": ones_complement_ok(ip[:ihl]),
        "proto": ip[9],
        "dport": struct.unpack("!H", l4[2:4])[0],
        "udp_csum": struct.unpack("!H", l4[6:8])[0] if ip[9] == 17 else None,
        "l4_csum_ok": ones_complement_ok(
            ip[12:20] + struct.pack("!BBH", 0, ip[9], len(l4)) + l4),
    }


def verify_xdp_fw():
    s = Loaded("xdp_fw")
    if not s.ok:
        return
    prog = "xdp_firewall"
    rules = {"pass": 0, "src": 1, "prefix": 2, "port": 3, "malformed": 4, "non_ip": 5}
    expected_counts = dict.fromkeys(rules.values(), 0)
    # (case, observed verdict, intended verdict, rule counted)
    cases = [
        ("xdp_fw-udp-dns", XDP_PASS, XDP_PASS, "pass"),
        ("xdp_fw-tcp23", XDP_DROP, XDP_DROP, "port"),
        ("xdp_fw-tcp23-ipopts", XDP_PASS, XDP_DROP, "pass"),  # BUG
        ("xdp_fw-tcp22-ipopts", XDP_PASS, XDP_PASS, "pass"),
        ("xdp_fw-qinq-tcp23", XDP_DROP, XDP_DROP, "port"),
        ("xdp_fw-vlan-udp", XDP_PASS, XDP_PASS, "pass"),
        ("xdp_fw-ipv6-tcp23", XDP_DROP, XDP_DROP, "port"),
        ("xdp_fw-ipv6-udp", XDP_PASS, XDP_PASS, "pass"),
        ("xdp_fw-arp", XDP_PASS, XDP_PASS, "non_ip"),
        ("xdp_fw-truncated-ipv4", XDP_DROP, XDP_DROP, "malformed"),
        # Maps still empty: nothing blocks these two sources yet.
        ("xdp_fw-blocked-src", XDP_PASS, XDP_PASS, "pass"),
        ("xdp_fw-blocked-prefix", XDP_PASS, XDP_PASS, "pass"),
    ]
    for case, as_built, intended, rule in cases:
        retval, _ = s.test_run(prog, case)
        want = expect(as_built, intended)
        check(retval == want,
              f"xdp_fw: {case} -> {retval}, documented {want}{bug_note(as_built, intended)}")
        if case == "xdp_fw-tcp23-ipopts" and FIXED:
            rule = "port"
        expected_counts[rules[rule]] += 1

    # Block 192.0.2.66 (key in network byte order) and 198.51.100.0/24.
    run("bpftool", "map", "update", "pinned", s.map("blocked_src"),
        "key", "192", "0", "2", "66", "value", *["0"] * 8)
    run("bpftool", "map", "update", "pinned", s.map("blocked_prefixes"),
        "key", *u32_key(24), "198", "51", "100", "0", "value", *u32_key(1))
    for case, rule in (("xdp_fw-blocked-src", "src"), ("xdp_fw-blocked-prefix", "prefix")):
        retval, _ = s.test_run(prog, case)
        check(retval == XDP_DROP, f"xdp_fw: {case} with the map entry -> {retval}, expected DROP")
        expected_counts[rules[rule]] += 1
    hits = s.lookup("blocked_src", ["192", "0", "2", "66"])["formatted"]["value"]
    check(hits == 1, f"xdp_fw: blocked_src[192.0.2.66] counts {hits} drop(s), expected 1")
    for rule, n in expected_counts.items():
        got = s.percpu_sum("rule_stats", rule, "packets")
        check(got == n, f"xdp_fw: rule_stats[{rule}].packets summed over CPUs = {got}, expected {n}")


def verify_tc_rewrite():
    s = Loaded("tc_rewrite")
    if not s.ok:
        return
    prog = "tc_mark_dscp"
    # Empty jump table: the tail call falls through, the port stays.
    retval, out = s.test_run(prog, "tc_rewrite-udp5353")
    f = ipv4_fields(out)
    check(retval == TC_ACT_OK and f["tos"] == 0xB8 and f["dport"] == 5353 and f["ip_csum_ok"],
          f"tc_rewrite: empty jump_table -> DSCP 46 set, port kept (tos {f['tos']:#x}, "
          f"dport {f['dport']})")
    check(s.globals(".bss")["tail_call_misses"] == 1, "tc_rewrite: tail_call_misses == 1")

    run("bpftool", "map", "update", "pinned", s.map("jump_table"), "key", *u32_key(0),
        "value", "pinned", s.prog("tc_redirect_port"))

    retval, out = s.test_run(prog, "tc_rewrite-udp5353")
    f = ipv4_fields(out)
    check(retval == TC_ACT_OK and f["tos"] == 0xB8 and f["dport"] == 15353
          and f["ip_csum_ok"] and f["l4_csum_ok"],
          f"tc_rewrite: udp5353 -> tos {f['tos']:#x}, dport {f['dport']}, "
          f"IPv4 checksum ok {f['ip_csum_ok']}, UDP checksum ok {f['l4_csum_ok']}")

    retval, out = s.test_run(prog, "tc_rewrite-udp5353-nocsum")
    f = ipv4_fields(out)
    if FIXED:
        check(retval == TC_ACT_OK and f["dport"] == 15353 and f["udp_csum"] == 0,
              f"tc_rewrite: udp5353-nocsum -> UDP checksum {f['udp_csum']:#06x} (fixed: stays 0)")
    else:
        check(retval == TC_ACT_OK and f["dport"] == 15353 and f["udp_csum"] != 0
              and not f["l4_csum_ok"],
              f"tc_rewrite: udp5353-nocsum -> UDP checksum {f['udp_csum']:#06x}, not a valid "
              "checksum (BUG: intended to stay 0)")

    retval, out = s.test_run(prog, "tc_rewrite-udp53")
    f = ipv4_fields(out)
    check(retval == TC_ACT_OK and f["tos"] == 0xB9 and f["dport"] == 53 and f["ip_csum_ok"]
          and f["l4_csum_ok"],
          f"tc_rewrite: udp53 (ECN 01) -> tos {f['tos']:#x} (ECN kept), port 53 kept")

    retval, out = s.test_run(prog, "tc_rewrite-tcp80")
    f = ipv4_fields(out)
    check(retval == TC_ACT_OK and f["tos"] == 0xB8 and f["ip_csum_ok"] and f["l4_csum_ok"],
          f"tc_rewrite: tcp80 -> tos {f['tos']:#x}, checksums ok")

    original = frame("tc_rewrite-ipv6-udp5353")
    retval, out = s.test_run(prog, "tc_rewrite-ipv6-udp5353")
    check(retval == TC_ACT_OK and out == original, "tc_rewrite: ipv6-udp5353 -> unchanged")

    g = s.globals(".bss")
    check(g == {"packets_marked": 5, "ports_rewritten": 2, "tail_call_misses": 1},
          f"tc_rewrite: .bss counters {g}")


def verify_sock_filter():
    s = Loaded("sock_filter")
    if not s.ok:
        return
    # (case, accepted as built, accepted as intended)
    cases = [
        ("sock_filter-udp5000", True, True),
        ("sock_filter-udp5004", True, True),
        ("sock_filter-udp5009", False, True),  # BUG
        ("sock_filter-udp5010", False, False),
        ("sock_filter-udp4999", False, False),
        ("sock_filter-tcp5000", False, False),
        ("sock_filter-ipv6-udp5009", False, True),  # BUG
        ("sock_filter-ipv6-udp5001", True, True),
    ]
    for case, as_built, intended in cases:
        retval, _ = s.test_run("udp_port_filter", case)
        # The program sees the frame without its 14 Ethernet bytes.
        want = len(frame(case)) - 14 if expect(as_built, intended) else 0
        note = bug_note(as_built, intended, lambda a: "accept" if a else "drop")
        check(retval == want, f"sock_filter: {case} -> {retval}, documented {want}{note}")
    n_accepted = sum(1 for _, a, i in cases if expect(a, i))
    got = s.lookup("verdicts", u32_key(0))["formatted"]["value"]
    check(got == n_accepted, f"sock_filter: verdicts[accepted] = {got}, expected {n_accepted}")


def verify_cgroup_skb():
    s = Loaded("cgroup_skb")
    if not s.ok:
        return
    cases = [
        ("cgroup_skb-udp", CGROUP_ALLOW, CGROUP_ALLOW),
        ("cgroup_skb-icmp-echo", CGROUP_DENY, CGROUP_DENY),
        ("cgroup_skb-icmp-reply", CGROUP_ALLOW, CGROUP_ALLOW),
        ("cgroup_skb-ipv6-udp", CGROUP_ALLOW, CGROUP_ALLOW),
        ("cgroup_skb-ipv6-ping", CGROUP_ALLOW, CGROUP_DENY),  # BUG
    ]
    for case, as_built, intended in cases:
        retval, _ = s.test_run("egress_accounting", case)
        want = expect(as_built, intended)
        check(retval == want,
              f"cgroup_skb: {case} -> {retval}, documented {want}{bug_note(as_built, intended)}")
    # As built: IPv6 packets are parsed as IPv4, the "protocol" is byte 9 of
    # the IPv6 header, the second byte of the source address.
    counts = {p: s.percpu_sum("proto_stats", p, "packets") for p in (0, 1, 17, 58)}
    as_built, intended = {0: 1, 1: 3, 17: 1, 58: 0}, {0: 0, 1: 2, 17: 2, 58: 1}
    check(counts == expect(as_built, intended),
          f"cgroup_skb: proto_stats packets {counts}{bug_note(as_built, intended)}")


def trace_attach(*args):
    tool = os.path.join(SAMPLES, "tools", "trace_attach")
    res = run(tool, *args)
    if not check(res.returncode == 0, f"trace_attach {' '.join(args)}"
                 + ("" if res.returncode == 0 else f": {res.stderr.strip()[-300:]}")):
        return None
    out = {"ringbuf": [], "map": {}, "var": {}, "child": None}
    for line in res.stdout.splitlines():
        parts = line.split()
        if parts[0] == "child":
            out["child"] = int(parts[1])
        elif parts[0] == "ringbuf":
            out["ringbuf"].append(bytes.fromhex(parts[2]))
        elif parts[0] == "var":
            out["var"][parts[2]] = int.from_bytes(bytes.fromhex(parts[3]), "little")
        elif parts[0] == "map":
            out["map"].setdefault(parts[1], {})[bytes.fromhex(parts[2])] = bytes.fromhex(parts[3])
    return out


def verify_tp_syscalls():
    if not Loaded("tp_syscalls").ok:
        return
    threads, opens = 4, 10
    out = trace_attach("-p", "target_pid", os.path.join(SAMPLES, "tp_syscalls.bpf.o"), "--",
                       os.path.join(SAMPLES, "tools", "open_threads"), str(threads), str(opens))
    if out is None:
        return
    pid = out["child"]
    events = []
    for rec in out["ringbuf"]:
        ev_pid, tid, flags, path_len, base_off = struct.unpack_from("<IIIHH", rec)
        path = rec[32:32 + 128].split(b"\0")[0].decode(errors="replace")
        events.append((ev_pid, tid, path, base_off))
    check(events and all(e[0] == pid for e in events),
          f"tp_syscalls: {len(events)} ring buffer events, all from pid {pid} (target_pid filter)")
    dev_null = [e for e in events if e[2] == "/dev/null"]
    check(len(dev_null) == threads * opens and all(e[3] == 5 for e in dev_null),
          f"tp_syscalls: {len(dev_null)} events for /dev/null, base name at offset 5 (bpf_loop)")
    per_tid = {}
    for e in events:
        per_tid[e[1]] = per_tid.get(e[1], 0) + 1
    counts = {struct.unpack("<I", k)[0]: struct.unpack("<Q", v)[0]
              for k, v in out["map"].get("openat_per_process", {}).items()}
    if FIXED:
        check(counts == {pid: len(events)},
              f"tp_syscalls: openat_per_process {counts} (fixed: one key, the pid {pid})")
    else:
        check(counts == per_tid and len(counts) == threads + 1
              and counts.get(pid, 0) < len(events),
              f"tp_syscalls: openat_per_process has {len(counts)} keys (one per thread), "
              f"[{pid}] = {counts.get(pid)} (BUG: intended one key {pid} = {len(events)})")
    sent, lost = out["var"].get("events_sent"), out["var"].get("events_lost")
    check(sent == len(events) and lost == 0,
          f"tp_syscalls: .bss events_sent {sent}, events_lost {lost}")


def verify_uprobe_args():
    if not Loaded("uprobe_args").ok:
        return
    target = os.path.join(SAMPLES, "uprobe_target")
    obj = os.path.join(SAMPLES, "uprobe_args.bpf.o")
    # (price, (revenue, max_price) as built)
    cases = [(1999, (3 * 2 * 1999, 1999)),
             (5000000000, (3 * 2 * 705032704, 705032704)),
             (3000000000, (3 * 2 * -1294967296, 0))]
    for price, as_built in cases:
        intended = (3 * 2 * price, price)
        revenue, max_price = expect(as_built, intended)
        out = trace_attach("-u", target + ":process_order", obj, "--",
                           target, "3", "widget", "2", str(price), "42")
        if out is None:
            continue
        key = b"widget".ljust(16, b"\0")
        value = out["map"].get("order_stats", {}).get(key)
        if not check(value is not None, f"uprobe_args: order_stats has \"widget\" (price {price})"):
            continue
        orders, units, rev, maxp = struct.unpack("<QQqq", value)
        check((orders, units, rev, maxp) == (3, 6, revenue, max_price),
              f"uprobe_args: price {price}: orders {orders}, units {units}, revenue {rev}, "
              f"max_price {maxp}{bug_note(as_built, intended)}")
        per_customer = out["map"].get("orders_per_customer", {})
        check(per_customer == {struct.pack("<I", 42): struct.pack("<Q", 3)},
              "uprobe_args: orders_per_customer[42] == 3 (bpf_probe_read_user of the struct)")


def build_fixed_copy(tmp):
    """Copies the samples to tmp, applies FIXES and builds them there."""
    global SAMPLES, FIXED
    work = os.path.join(tmp, "samples")
    shutil.copytree(SOURCE_DIR, work, ignore=shutil.ignore_patterns("*.o", "uprobe_target"))
    for name, buggy, fixed in FIXES:
        path = os.path.join(work, name)
        with open(path) as f:
            text = f.read()
        if text.count(buggy) != 1:
            raise SystemExit(f"verify_samples: {name} no longer contains the planted bug "
                             f"{buggy!r} exactly once: update FIXES and README.md")
        with open(path, "w") as f:
            f.write(text.replace(buggy, fixed))
    res = run("make", "-C", work, "all", "tools")
    if res.returncode != 0:
        raise SystemExit(f"verify_samples: building the fixed samples failed:\n{res.stderr}")
    SAMPLES, FIXED = work, True


def main():
    if sys.argv[1:] not in ([], ["--fixed"]):
        print("usage: verify_samples.py [--fixed]", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("verify_samples: run as root (it loads programs into the kernel)", file=sys.stderr)
        return 2
    if not os.path.ismount("/sys/fs/bpf"):
        run("mount", "-t", "bpf", "bpf", "/sys/fs/bpf")
    tmp = tempfile.mkdtemp(prefix="bpfrr-samples-")
    os.makedirs(PIN_ROOT)
    try:
        if sys.argv[1:] == ["--fixed"]:
            build_fixed_copy(tmp)
        mine = {"xdp_fw", "tc_rewrite", "sock_filter", "cgroup_skb", "tp_syscalls", "uprobe_args"}
        for obj in sorted(glob.glob(os.path.join(SAMPLES, "*.bpf.o"))):
            name = os.path.basename(obj)[:-len(".bpf.o")]
            if name not in mine:
                Loaded(name)
        verify_xdp_fw()
        verify_tc_rewrite()
        verify_sock_filter()
        verify_cgroup_skb()
        verify_tp_syscalls()
        verify_uprobe_args()
    finally:
        shutil.rmtree(PIN_ROOT, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\n{len(failures)} failure(s)" if failures else "\nall checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
