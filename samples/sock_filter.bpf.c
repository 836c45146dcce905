// SPDX-License-Identifier: GPL-2.0
/*
 * sock_filter: a socket filter that accepts only UDP datagrams whose
 * destination port is in PORT_FIRST..PORT_LAST (both inclusive), over IPv4
 * or IPv6 (no extension headers). Everything else is cut to 0 bytes, which
 * drops it.
 *
 * What the program sees: the packet starting at the network (IP) header,
 * as on an AF_PACKET SOCK_DGRAM socket. BPF_PROG_TEST_RUN takes an Ethernet
 * frame as input, sets skb->protocol from its ethertype and strips the 14
 * Ethernet bytes before running a socket filter, so offset 0 below is the
 * first byte of the IP header and skb->len is the frame length minus 14.
 *
 * Headers are read with bpf_skb_load_bytes (socket filters have no direct
 * packet access).
 *
 * Planted bug: see samples/README.md ("sock_filter").
 */
#include <stddef.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define PORT_FIRST 5000
#define PORT_LAST 5009
#define IP_FRAG_OFFSET_MASK 0x1fff

/* Accepted and rejected packets, indexed by enum verdict_slot. */
enum verdict_slot { SLOT_ACCEPTED = 0, SLOT_REJECTED, NR_SLOTS };

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NR_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} verdicts SEC(".maps");

/* Offset of the UDP header, or -1 when the packet is not UDP. */
static __always_inline int udp_offset(struct __sk_buff *skb)
{
	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr ip;

		if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)) < 0)
			return -1;
		if (ip.protocol != IPPROTO_UDP || (ip.frag_off & bpf_htons(IP_FRAG_OFFSET_MASK)))
			return -1;
		return ip.ihl * 4;
	}
	if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		__u8 nexthdr;

		if (bpf_skb_load_bytes(skb, offsetof(struct ipv6hdr, nexthdr), &nexthdr, 1) < 0)
			return -1;
		if (nexthdr != IPPROTO_UDP)
			return -1;
		return sizeof(struct ipv6hdr);
	}
	return -1;
}

static __always_inline int count(enum verdict_slot slot, int keep)
{
	__u32 key = slot;
	__u64 *n = bpf_map_lookup_elem(&verdicts, &key);

	if (n)
		__sync_fetch_and_add(n, 1);
	return keep;
}

SEC("socket")
int udp_port_filter(struct __sk_buff *skb)
{
	struct udphdr udp;
	__u16 dport;
	int off = udp_offset(skb);

	if (off < 0)
		return count(SLOT_REJECTED, 0);
	if (bpf_skb_load_bytes(skb, off, &udp, sizeof(udp)) < 0)
		return count(SLOT_REJECTED, 0);
	dport = bpf_ntohs(udp.dest);

	/* PLANTED BUG (samples/README.md): PORT_LAST is inclusive. */
	if (dport >= PORT_FIRST && dport < PORT_LAST)
		return count(SLOT_ACCEPTED, skb->len);
	return count(SLOT_REJECTED, 0);
}

char LICENSE[] SEC("license") = "GPL";
