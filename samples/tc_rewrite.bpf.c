// SPDX-License-Identifier: GPL-2.0
/*
 * tc_rewrite: a TC classifier (sched_cls) that rewrites headers.
 *
 * tc_mark_dscp (entry point): on every IPv4 packet, sets the DSCP field to
 * `mark_dscp` (keeping the two ECN bits) and fixes the IPv4 header checksum
 * with bpf_l3_csum_replace. UDP packets to port `redirect_from` are then
 * handed over with a tail call, through the program array `jump_table`, to
 *
 * tc_redirect_port: rewrites the UDP destination port to `redirect_to` and
 * fixes the UDP checksum with bpf_l4_csum_replace.
 *
 * Both always return TC_ACT_OK: this program edits packets, never drops.
 *
 * Loading: `jump_table` slot JUMP_REDIRECT_PORT (0) must hold the fd of
 * tc_redirect_port; the loader fills it (see samples/README.md). An empty
 * slot makes the tail call fall through, counted in `tail_call_misses`.
 *
 * Planted bug: see samples/README.md ("tc_rewrite").
 */
#include <stddef.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define JUMP_REDIRECT_PORT 0
#define IP_FRAG_OFFSET_MASK 0x1fff
#define IP_OFF ETH_HLEN
#define IP_CSUM_OFF (IP_OFF + offsetof(struct iphdr, check))
#define IP_TOS_OFF (IP_OFF + offsetof(struct iphdr, tos))

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} jump_table SEC(".maps");

/* Configuration, fixed at load time. */
const volatile __u8 mark_dscp = 46;        /* EF, expedited forwarding */
const volatile __u16 redirect_from = 5353;
const volatile __u16 redirect_to = 15353;

/* Statistics (.bss). */
__u64 packets_marked;
__u64 ports_rewritten;
__u64 tail_call_misses;

/* Returns the IPv4 header if the packet is IPv4 with a complete header. */
static __always_inline struct iphdr *ipv4_header(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);

	if ((void *)(ip + 1) > data_end)
		return NULL;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || ip->version != 4 || ip->ihl < 5)
		return NULL;
	return ip;
}

SEC("classifier")
int tc_redirect_port(struct __sk_buff *skb)
{
	void *data_end = (void *)(long)skb->data_end;
	struct iphdr *ip = ipv4_header(skb);
	struct udphdr *udp;
	__u32 l4_off;
	__be16 old_port, new_port;

	if (!ip || ip->protocol != IPPROTO_UDP)
		return TC_ACT_OK;
	l4_off = IP_OFF + ip->ihl * 4;
	udp = (void *)ip + ip->ihl * 4;
	if ((void *)(udp + 1) > data_end)
		return TC_ACT_OK;
	old_port = udp->dest;
	if (old_port != bpf_htons(redirect_from))
		return TC_ACT_OK;
	new_port = bpf_htons(redirect_to);

	/* PLANTED BUG (samples/README.md): UDP needs BPF_F_MARK_MANGLED_0 in
	 * the flags; a checksum of 0 means "no checksum" and must stay 0. */
	bpf_l4_csum_replace(skb, l4_off + offsetof(struct udphdr, check), old_port,
			    new_port, sizeof(new_port));
	bpf_skb_store_bytes(skb, l4_off + offsetof(struct udphdr, dest), &new_port,
			    sizeof(new_port), 0);
	__sync_fetch_and_add(&ports_rewritten, 1);
	return TC_ACT_OK;
}

SEC("classifier")
int tc_mark_dscp(struct __sk_buff *skb)
{
	void *data_end;
	struct iphdr *ip = ipv4_header(skb);
	struct udphdr *udp;
	__u8 old_tos, new_tos;
	__u32 l4_off;
	int is_udp;

	if (!ip)
		return TC_ACT_OK;
	old_tos = ip->tos;
	new_tos = (mark_dscp << 2) | (old_tos & 0x03);
	is_udp = ip->protocol == IPPROTO_UDP && !(ip->frag_off & bpf_htons(IP_FRAG_OFFSET_MASK));
	l4_off = IP_OFF + ip->ihl * 4;

	if (new_tos != old_tos) {
		/* The checksum covers 16-bit words: tos is the low byte of the
		 * first word, so the word value is htons(tos). */
		bpf_l3_csum_replace(skb, IP_CSUM_OFF, bpf_htons(old_tos), bpf_htons(new_tos),
				    sizeof(__u16));
		bpf_skb_store_bytes(skb, IP_TOS_OFF, &new_tos, sizeof(new_tos), 0);
		__sync_fetch_and_add(&packets_marked, 1);
	}
	if (!is_udp)
		return TC_ACT_OK;

	/* The helpers above may have moved the packet: re-derive pointers. */
	data_end = (void *)(long)skb->data_end;
	udp = (void *)(long)skb->data + l4_off;
	if ((void *)(udp + 1) > data_end)
		return TC_ACT_OK;
	if (udp->dest == bpf_htons(redirect_from)) {
		bpf_tail_call(skb, &jump_table, JUMP_REDIRECT_PORT);
		/* Only reached when the slot is empty. */
		__sync_fetch_and_add(&tail_call_misses, 1);
	}
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
