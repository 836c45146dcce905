// SPDX-License-Identifier: GPL-2.0
/*
 * cgroup_skb: egress accounting and a "no ping" policy for a cgroup.
 *
 * Counts packets and bytes per IP protocol number (IPv4 protocol or IPv6
 * next header) in the per-CPU array `proto_stats` (256 slots), and denies
 * ICMP echo requests (IPv4 ICMP type 8, ICMPv6 type 128) leaving the
 * cgroup. Returns 1 to allow a packet, 0 to deny it.
 *
 * What the program sees: the packet from the IP header on (cgroup skb
 * programs run above the link layer), read by direct packet access.
 * BPF_PROG_TEST_RUN takes an Ethernet frame and strips its 14 bytes, setting
 * skb->protocol from the ethertype.
 *
 * Planted bug: see samples/README.md ("cgroup_skb").
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/* linux/icmp.h drags in libc socket headers: declare what is used. */
#define ICMP_ECHO 8
#define ICMPV6_ECHO_REQUEST 128

struct icmp_common {
	__u8 type;
	__u8 code;
	__sum16 checksum;
};

#define ALLOW 1
#define DENY 0
#define IP_FRAG_OFFSET_MASK 0x1fff

struct proto_counter {
	__u64 packets;
	__u64 bytes;
	__u64 denied;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, struct proto_counter);
} proto_stats SEC(".maps");

struct l4_view {
	__u8 proto;
	__u8 is_echo_request;
};

static __always_inline void classify_ipv4(void *data, void *data_end, struct l4_view *v)
{
	struct iphdr *ip = data;
	struct icmp_common *icmp;

	if ((void *)(ip + 1) > data_end)
		return;
	v->proto = ip->protocol;
	if (ip->protocol != IPPROTO_ICMP || (ip->frag_off & bpf_htons(IP_FRAG_OFFSET_MASK)))
		return;
	icmp = data + ip->ihl * 4;
	if ((void *)(icmp + 1) > data_end)
		return;
	v->is_echo_request = icmp->type == ICMP_ECHO;
}

static __always_inline void classify_ipv6(void *data, void *data_end, struct l4_view *v)
{
	struct ipv6hdr *ip6 = data;
	struct icmp_common *icmp6 = (void *)(ip6 + 1);

	if ((void *)(ip6 + 1) > data_end)
		return;
	v->proto = ip6->nexthdr;
	if (ip6->nexthdr != IPPROTO_ICMPV6 || (void *)(icmp6 + 1) > data_end)
		return;
	v->is_echo_request = icmp6->type == ICMPV6_ECHO_REQUEST;
}

SEC("cgroup_skb/egress")
int egress_accounting(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct l4_view view = {};
	struct proto_counter *c;
	__u32 key;
	int verdict;

	/* PLANTED BUG (samples/README.md): skb->protocol is in network byte
	 * order; ETH_P_IPV6 is not. */
	if (skb->protocol == ETH_P_IPV6)
		classify_ipv6(data, data_end, &view);
	else
		classify_ipv4(data, data_end, &view);

	verdict = view.is_echo_request ? DENY : ALLOW;

	key = view.proto;
	c = bpf_map_lookup_elem(&proto_stats, &key);
	if (c) {
		c->packets++;
		c->bytes += skb->len;
		if (verdict == DENY)
			c->denied++;
	}
	return verdict;
}

char LICENSE[] SEC("license") = "GPL";
