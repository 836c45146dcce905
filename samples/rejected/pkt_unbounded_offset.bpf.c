// SPDX-License-Identifier: GPL-2.0
/*
 * Rejected on purpose: adds a 64-bit value read from the packet, with no
 * bounds check, to a packet pointer.
 * Expected: math between pkt pointer and register with unbounded min value is not allowed
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int pkt_unbounded_offset(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u64 off;
	unsigned char *p;

	if (data + 8 > data_end)
		return XDP_PASS;
	off = *(volatile __u64 *)data;
	p = data + off;
	if ((void *)(p + 1) > data_end)
		return XDP_PASS;
	return *p;
}

char LICENSE[] SEC("license") = "GPL";
