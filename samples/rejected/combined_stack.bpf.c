// SPDX-License-Identifier: GPL-2.0
/*
 * Rejected on purpose: the main program and the subprogram it calls each
 * use 320 bytes of stack; together they exceed the 512-byte limit.
 * Expected: combined stack size of 2 calls is 640. Too large
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

static __noinline int fill(struct xdp_md *ctx)
{
	volatile __u64 buf[40];
	int i;

	for (i = 0; i < 40; i++)
		buf[i] = ctx->rx_queue_index + i;
	return buf[ctx->rx_queue_index & 31] & 1;
}

SEC("xdp")
int combined_stack(struct xdp_md *ctx)
{
	volatile __u64 buf[40];
	int i;

	for (i = 0; i < 40; i++)
		buf[i] = i;
	return fill(ctx) + (buf[ctx->ingress_ifindex & 31] & 1);
}

char LICENSE[] SEC("license") = "GPL";
