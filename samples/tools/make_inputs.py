#!/usr/bin/env python3
"""Writes the packet inputs of the packet samples (standard library only).

    python3 samples/tools/make_inputs.py samples/inputs

For every case below it writes <case>.hex (the Ethernet frame as one line of
hex, what `bpftool prog run ... data_in` takes after `xxd -r -p`) and, per
program, <program>.pcap holding all that program's cases in the order listed
here (Ethernet link type, one packet per case, microsecond timestamps 1 s
apart from the epoch, so the files are reproducible byte for byte).

The expected results of each case, with and without the planted bug, are in
verify_samples.py and samples/README.md.
"""

import os
import struct
import sys

MAC_DST = bytes.fromhex("020000000002")
MAC_SRC = bytes.fromhex("020000000001")

ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
ETH_P_ARP = 0x0806
ETH_P_8021Q = 0x8100
ETH_P_8021AD = 0x88A8

IPPROTO_ICMP = 1
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_ICMPV6 = 58


def ones_complement_sum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = 0
    for (word,) in struct.iter_unpack("!H", data):
        total += word
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def checksum(data: bytes) -> int:
    return ~ones_complement_sum(data) & 0xFFFF


def ipv4_addr(text: str) -> bytes:
    return bytes(int(part) for part in text.split("."))


def ipv6_addr(text: str) -> bytes:
    head, _, tail = text.partition("::")
    head_groups = [int(g, 16) for g in head.split(":") if g]
    tail_groups = [int(g, 16) for g in tail.split(":") if g]
    groups = head_groups + [0] * (8 - len(head_groups) - len(tail_groups)) + tail_groups
    return struct.pack("!8H", *groups)


def ethernet(ethertype: int, payload: bytes, vlans=()) -> bytes:
    """vlans: (tpid, vlan_id) pairs, outermost first."""
    frame = MAC_DST + MAC_SRC
    for tpid, vlan_id in vlans:
        frame += struct.pack("!HH", tpid, vlan_id)
    return frame + struct.pack("!H", ethertype) + payload


def ipv4(src, dst, proto, l4: bytes, tos=0, ttl=64, options=b"", frag_off=0) -> bytes:
    assert len(options) % 4 == 0
    ihl = 5 + len(options) // 4
    total = ihl * 4 + len(l4)
    header = struct.pack(
        "!BBHHHBBH4s4s", 0x40 | ihl, tos, total, 0x1234, frag_off, ttl, proto, 0,
        ipv4_addr(src), ipv4_addr(dst),
    ) + options
    csum = checksum(header)
    return header[:10] + struct.pack("!H", csum) + header[12:] + l4


def ipv6(src, dst, nexthdr, l4: bytes, hop_limit=64) -> bytes:
    return struct.pack(
        "!IHBB16s16s", 6 << 28, len(l4), nexthdr, hop_limit, ipv6_addr(src), ipv6_addr(dst)
    ) + l4


def pseudo_v4(src, dst, proto, length) -> bytes:
    return ipv4_addr(src) + ipv4_addr(dst) + struct.pack("!BBH", 0, proto, length)


def pseudo_v6(src, dst, proto, length) -> bytes:
    return ipv6_addr(src) + ipv6_addr(dst) + struct.pack("!IxxxB", length, proto)


def udp(sport, dport, payload: bytes, pseudo=None) -> bytes:
    """pseudo: a function(length) -> pseudo header, or None for checksum 0."""
    length = 8 + len(payload)
    header = struct.pack("!HHHH", sport, dport, length, 0)
    if pseudo is None:
        return header + payload
    csum = checksum(pseudo(length) + header + payload) or 0xFFFF
    return struct.pack("!HHHH", sport, dport, length, csum) + payload


def tcp(sport, dport, payload: bytes, pseudo, flags=0x02) -> bytes:
    header = struct.pack("!HHIIBBHHH", sport, dport, 1000, 0, 5 << 4, flags, 65535, 0, 0)
    csum = checksum(pseudo(len(header) + len(payload)) + header + payload)
    return header[:16] + struct.pack("!H", csum) + header[18:] + payload


def icmp_echo(type_, payload: bytes, pseudo=None) -> bytes:
    header = struct.pack("!BBHHH", type_, 0, 0, 0x42, 1)
    prefix = pseudo(len(header) + len(payload)) if pseudo else b""
    csum = checksum(prefix + header + payload)
    return header[:2] + struct.pack("!H", csum) + header[4:] + payload


def udp4(src, dst, sport, dport, payload, with_checksum=True, **ip_args) -> bytes:
    pseudo = (lambda n: pseudo_v4(src, dst, IPPROTO_UDP, n)) if with_checksum else None
    return ipv4(src, dst, IPPROTO_UDP, udp(sport, dport, payload, pseudo), **ip_args)


def tcp4(src, dst, sport, dport, payload=b"", **ip_args) -> bytes:
    pseudo = lambda n: pseudo_v4(src, dst, IPPROTO_TCP, n)  # noqa: E731
    return ipv4(src, dst, IPPROTO_TCP, tcp(sport, dport, payload, pseudo), **ip_args)


def udp6(src, dst, sport, dport, payload) -> bytes:
    pseudo = lambda n: pseudo_v6(src, dst, IPPROTO_UDP, n)  # noqa: E731
    return ipv6(src, dst, IPPROTO_UDP, udp(sport, dport, payload, pseudo))


def tcp6(src, dst, sport, dport, payload=b"") -> bytes:
    pseudo = lambda n: pseudo_v6(src, dst, IPPROTO_TCP, n)  # noqa: E731
    return ipv6(src, dst, IPPROTO_TCP, tcp(sport, dport, payload, pseudo))


def arp_request() -> bytes:
    return struct.pack(
        "!HHBBH6s4s6s4s", 1, ETH_P_IP, 6, 4, 1, MAC_SRC, ipv4_addr("10.0.0.1"),
        b"\0" * 6, ipv4_addr("10.0.0.2"),
    )


# IPv4 options: NOP, NOP, NOP, End of options list (one 32-bit word, IHL 6).
IP_OPTIONS_NOPS = bytes([1, 1, 1, 0])
DNS_QUERY = bytes.fromhex("abcd01000001000000000000076578616d706c6503636f6d0000010001")
MDNS_QUERY = bytes.fromhex("000000000001000000000000056c6f63616c0000ff0001")

# (case name, program, frame). Names start with the program's name.
CASES = [
    # xdp_fw
    ("xdp_fw-udp-dns", "xdp_fw",
     ethernet(ETH_P_IP, udp4("10.0.0.1", "10.0.0.2", 40000, 53, DNS_QUERY))),
    ("xdp_fw-tcp23", "xdp_fw",
     ethernet(ETH_P_IP, tcp4("10.0.0.1", "10.0.0.2", 40001, 23))),
    ("xdp_fw-tcp23-ipopts", "xdp_fw",
     ethernet(ETH_P_IP, tcp4("10.0.0.1", "10.0.0.2", 40002, 23, options=IP_OPTIONS_NOPS))),
    ("xdp_fw-tcp22-ipopts", "xdp_fw",
     ethernet(ETH_P_IP, tcp4("10.0.0.1", "10.0.0.2", 40003, 22, options=IP_OPTIONS_NOPS))),
    ("xdp_fw-qinq-tcp23", "xdp_fw",
     ethernet(ETH_P_IP, tcp4("10.0.0.1", "10.0.0.2", 40004, 23),
              vlans=((ETH_P_8021AD, 100), (ETH_P_8021Q, 200)))),
    ("xdp_fw-vlan-udp", "xdp_fw",
     ethernet(ETH_P_IP, udp4("10.0.0.1", "10.0.0.2", 40005, 5000, b"hello"),
              vlans=((ETH_P_8021Q, 7),))),
    ("xdp_fw-ipv6-tcp23", "xdp_fw",
     ethernet(ETH_P_IPV6, tcp6("2001:db8::1", "2001:db8::2", 40006, 23))),
    ("xdp_fw-ipv6-udp", "xdp_fw",
     ethernet(ETH_P_IPV6, udp6("2001:db8::1", "2001:db8::2", 40007, 443, b"quic"))),
    ("xdp_fw-arp", "xdp_fw", ethernet(ETH_P_ARP, arp_request())),
    ("xdp_fw-truncated-ipv4", "xdp_fw",
     ethernet(ETH_P_IP, tcp4("10.0.0.1", "10.0.0.2", 40008, 23))[:14 + 12]),
    ("xdp_fw-blocked-src", "xdp_fw",
     ethernet(ETH_P_IP, udp4("192.0.2.66", "10.0.0.2", 40009, 53, DNS_QUERY))),
    ("xdp_fw-blocked-prefix", "xdp_fw",
     ethernet(ETH_P_IP, udp4("198.51.100.7", "10.0.0.2", 40010, 53, DNS_QUERY))),
    # tc_rewrite
    ("tc_rewrite-udp5353", "tc_rewrite",
     ethernet(ETH_P_IP, udp4("10.0.0.1", "224.0.0.251", 5353, 5353, MDNS_QUERY))),
    ("tc_rewrite-udp5353-nocsum", "tc_rewrite",
     ethernet(ETH_P_IP, udp4("10.0.0.1", "224.0.0.251", 5353, 5353, MDNS_QUERY,
                             with_checksum=False))),
    ("tc_rewrite-udp53", "tc_rewrite",
     ethernet(ETH_P_IP, udp4("10.0.0.1", "10.0.0.2", 40000, 53, DNS_QUERY, tos=0x01))),
    ("tc_rewrite-tcp80", "tc_rewrite",
     ethernet(ETH_P_IP, tcp4("10.0.0.1", "10.0.0.2", 40001, 80))),
    ("tc_rewrite-ipv6-udp5353", "tc_rewrite",
     ethernet(ETH_P_IPV6, udp6("fe80::1", "ff02::fb", 5353, 5353, MDNS_QUERY))),
    # sock_filter
    ("sock_filter-udp5000", "sock_filter",
     ethernet(ETH_P_IP, udp4("10.0.0.1", "10.0.0.2", 40000, 5000, b"first port"))),
    ("sock_filter-udp5004", "sock_filter",
     ethernet(ETH_P_IP, udp4("10.0.0.1", "10.0.0.2", 40000, 5004, b"middle"))),
    ("sock_filter-udp5009", "sock_filter",
     ethernet(ETH_P_IP, udp4("10.0.0.1", "10.0.0.2", 40000, 5009, b"last port"))),
    ("sock_filter-udp5010", "sock_filter",
     ethernet(ETH_P_IP, udp4("10.0.0.1", "10.0.0.2", 40000, 5010, b"out of range"))),
    ("sock_filter-udp4999", "sock_filter",
     ethernet(ETH_P_IP, udp4("10.0.0.1", "10.0.0.2", 40000, 4999, b"out of range"))),
    ("sock_filter-tcp5000", "sock_filter",
     ethernet(ETH_P_IP, tcp4("10.0.0.1", "10.0.0.2", 40000, 5000))),
    ("sock_filter-ipv6-udp5009", "sock_filter",
     ethernet(ETH_P_IPV6, udp6("2001:db8::1", "2001:db8::2", 40000, 5009, b"last port v6"))),
    ("sock_filter-ipv6-udp5001", "sock_filter",
     ethernet(ETH_P_IPV6, udp6("2001:db8::1", "2001:db8::2", 40000, 5001, b"v6"))),
    # cgroup_skb
    ("cgroup_skb-udp", "cgroup_skb",
     ethernet(ETH_P_IP, udp4("10.0.0.1", "10.0.0.2", 40000, 53, DNS_QUERY))),
    ("cgroup_skb-icmp-echo", "cgroup_skb",
     ethernet(ETH_P_IP, ipv4("10.0.0.1", "10.0.0.2", IPPROTO_ICMP,
                             icmp_echo(8, b"ping-payload")))),
    ("cgroup_skb-icmp-reply", "cgroup_skb",
     ethernet(ETH_P_IP, ipv4("10.0.0.1", "10.0.0.2", IPPROTO_ICMP,
                             icmp_echo(0, b"ping-payload")))),
    ("cgroup_skb-ipv6-udp", "cgroup_skb",
     ethernet(ETH_P_IPV6, udp6("2001:db8::1", "2001:db8::2", 40000, 53, DNS_QUERY))),
    ("cgroup_skb-ipv6-ping", "cgroup_skb",
     ethernet(ETH_P_IPV6, ipv6("fd00::1", "fd00::2", IPPROTO_ICMPV6,
                               icmp_echo(128, b"ping6-payload",
                                         lambda n: pseudo_v6("fd00::1", "fd00::2",
                                                             IPPROTO_ICMPV6, n))))),
]


def pcap(frames) -> bytes:
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)  # LINKTYPE_ETHERNET
    for i, frame in enumerate(frames):
        out += struct.pack("<IIII", i + 1, 0, len(frame), len(frame)) + frame
    return out


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: make_inputs.py OUTPUT_DIR", file=sys.stderr)
        return 2
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    by_program = {}
    for name, program, frame in CASES:
        with open(os.path.join(out_dir, name + ".hex"), "w") as f:
            f.write(frame.hex() + "\n")
        by_program.setdefault(program, []).append(frame)
    for program, frames in by_program.items():
        with open(os.path.join(out_dir, program + ".pcap"), "wb") as f:
            f.write(pcap(frames))
    print(f"wrote {len(CASES)} .hex files and {len(by_program)} .pcap files to {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
