// SPDX-License-Identifier: GPL-2.0
/*
 * Rejected on purpose: reads the Ethernet type without checking the packet
 * is long enough (no `data + N > data_end` test before the access).
 * Expected: invalid access to packet, off=12 size=2, R1(id=0,off=12,r=0)
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int pkt_no_bounds_check(struct xdp_md *ctx)
{
	unsigned char *data = (void *)(long)ctx->data;

	return *(__u16 *)(data + 12) == 8 ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
