// SPDX-License-Identifier: GPL-2.0
/*
 * xdp_fw: a small XDP firewall.
 *
 * Parses Ethernet, up to two VLAN tags (802.1Q and 802.1ad), IPv4, IPv6,
 * TCP and UDP in one bpf-to-bpf subprogram (parse_packet), then drops a
 * packet when
 *   - its IPv4 source address is in the hash map `blocked_src`, or
 *   - its IPv4 source address falls in a prefix of the LPM trie
 *     `blocked_prefixes`, or
 *   - it is TCP to the port `blocked_tcp_port` (a .rodata constant, 23 =
 *     telnet, set by the loader before loading).
 * Every verdict is counted per rule in the per-CPU array `rule_stats`.
 *
 * Planted bug: see samples/README.md ("xdp_fw").
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define MAX_VLAN_DEPTH 2
#define IP_FRAG_OFFSET_MASK 0x1fff

/* linux/if_vlan.h's struct vlan_hdr is kernel-internal: declare our own. */
struct vlan_hdr {
	__be16 tci;
	__be16 encap_proto;
};

/* What parse_packet found. Ports are in host byte order, addresses in
 * network byte order (as on the wire). */
struct pkt_info {
	__u16 l3_proto;   /* ETH_P_IP, ETH_P_IPV6 or another ethertype */
	__u8 l4_proto;    /* IPPROTO_TCP, IPPROTO_UDP, ... */
	__u8 vlan_depth;  /* number of VLAN tags seen */
	__u16 vlan_id;    /* outermost VLAN id, 0 when untagged */
	__u16 sport;
	__u16 dport;
	__u16 has_ports;  /* 1 when sport/dport were read */
	__be32 saddr4;    /* IPv4 only */
	__be32 daddr4;
};

enum fw_rule {
	RULE_PASS = 0,         /* nothing matched */
	RULE_BLOCKED_SRC,      /* source in blocked_src */
	RULE_BLOCKED_PREFIX,   /* source in blocked_prefixes */
	RULE_BLOCKED_PORT,     /* TCP to blocked_tcp_port */
	RULE_MALFORMED,        /* truncated headers: dropped */
	RULE_NON_IP,           /* ARP etc.: passed */
	NR_RULES,
};

struct rule_counter {
	__u64 packets;
	__u64 bytes;
};

struct lpm_v4_key {
	__u32 prefixlen;  /* in bits, 0..32 */
	__be32 addr;
};

/* Blocked IPv4 source addresses (network byte order) -> packets dropped. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __be32);
	__type(value, __u64);
} blocked_src SEC(".maps");

/* Blocked IPv4 prefixes; the value is a rule tag for the operator. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 256);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lpm_v4_key);
	__type(value, __u32);
} blocked_prefixes SEC(".maps");

/* One counter per enum fw_rule, per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, NR_RULES);
	__type(key, __u32);
	__type(value, struct rule_counter);
} rule_stats SEC(".maps");

/* Configuration, fixed at load time. */
const volatile __u16 blocked_tcp_port = 23;

/* Reads the L4 ports at `l4` if they are inside the packet. */
static __always_inline int parse_ports(void *l4, void *data_end, __u8 proto,
				       struct pkt_info *info)
{
	if (proto == IPPROTO_TCP) {
		struct tcphdr *tcp = l4;

		if ((void *)(tcp + 1) > data_end)
			return -1;
		info->sport = bpf_ntohs(tcp->source);
		info->dport = bpf_ntohs(tcp->dest);
		info->has_ports = 1;
	} else if (proto == IPPROTO_UDP) {
		struct udphdr *udp = l4;

		if ((void *)(udp + 1) > data_end)
			return -1;
		info->sport = bpf_ntohs(udp->source);
		info->dport = bpf_ntohs(udp->dest);
		info->has_ports = 1;
	}
	return 0;
}

/*
 * Parses the headers of the packet into *info. Returns 0 on success, -1 when
 * a header is truncated. Kept out of line on purpose: a bpf-to-bpf call.
 */
static __noinline int parse_packet(struct xdp_md *ctx, struct pkt_info *info)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	void *cursor;
	__u16 proto;
	int i;

	if ((void *)(eth + 1) > data_end)
		return -1;
	proto = bpf_ntohs(eth->h_proto);
	cursor = eth + 1;

#pragma unroll
	for (i = 0; i < MAX_VLAN_DEPTH; i++) {
		struct vlan_hdr *vlan = cursor;

		if (proto != ETH_P_8021Q && proto != ETH_P_8021AD)
			break;
		if ((void *)(vlan + 1) > data_end)
			return -1;
		if (info->vlan_depth == 0)
			info->vlan_id = bpf_ntohs(vlan->tci) & 0x0fff;
		info->vlan_depth++;
		proto = bpf_ntohs(vlan->encap_proto);
		cursor = vlan + 1;
	}
	info->l3_proto = proto;

	if (proto == ETH_P_IP) {
		struct iphdr *ip = cursor;

		if ((void *)(ip + 1) > data_end)
			return -1;
		info->saddr4 = ip->saddr;
		info->daddr4 = ip->daddr;
		info->l4_proto = ip->protocol;
		/* Non-first fragments carry no L4 header. */
		if (ip->frag_off & bpf_htons(IP_FRAG_OFFSET_MASK))
			return 0;
		/* PLANTED BUG (samples/README.md): the L4 header is assumed to
		 * follow a 20-byte IPv4 header; ip->ihl is ignored. */
		return parse_ports(ip + 1, data_end, ip->protocol, info);
	}
	if (proto == ETH_P_IPV6) {
		struct ipv6hdr *ip6 = cursor;

		if ((void *)(ip6 + 1) > data_end)
			return -1;
		info->l4_proto = ip6->nexthdr;
		/* Extension headers are not followed: ports stay unread. */
		return parse_ports(ip6 + 1, data_end, ip6->nexthdr, info);
	}
	return 0;
}

static __always_inline int verdict(struct xdp_md *ctx, enum fw_rule rule, int action)
{
	__u32 key = rule;
	struct rule_counter *c = bpf_map_lookup_elem(&rule_stats, &key);

	if (c) {
		/* Per-CPU value: no atomics needed. */
		c->packets++;
		c->bytes += ctx->data_end - ctx->data;
	}
	return action;
}

SEC("xdp")
int xdp_firewall(struct xdp_md *ctx)
{
	struct pkt_info info = {};
	struct lpm_v4_key lpm_key;
	__u64 *hits;

	if (parse_packet(ctx, &info) < 0)
		return verdict(ctx, RULE_MALFORMED, XDP_DROP);

	if (info.l3_proto != ETH_P_IP && info.l3_proto != ETH_P_IPV6)
		return verdict(ctx, RULE_NON_IP, XDP_PASS);

	if (info.l3_proto == ETH_P_IP) {
		hits = bpf_map_lookup_elem(&blocked_src, &info.saddr4);
		if (hits) {
			__sync_fetch_and_add(hits, 1);
			return verdict(ctx, RULE_BLOCKED_SRC, XDP_DROP);
		}
		lpm_key.prefixlen = 32;
		lpm_key.addr = info.saddr4;
		if (bpf_map_lookup_elem(&blocked_prefixes, &lpm_key))
			return verdict(ctx, RULE_BLOCKED_PREFIX, XDP_DROP);
	}

	if (info.l4_proto == IPPROTO_TCP && info.has_ports &&
	    info.dport == blocked_tcp_port)
		return verdict(ctx, RULE_BLOCKED_PORT, XDP_DROP);

	return verdict(ctx, RULE_PASS, XDP_PASS);
}

char LICENSE[] SEC("license") = "GPL";
