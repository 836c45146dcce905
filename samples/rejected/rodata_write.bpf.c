// SPDX-License-Identifier: GPL-2.0
/*
 * Rejected on purpose: writes to a `const volatile` global, which lives in
 * .rodata, a map the program may only read.
 * Expected: write into map forbidden, value_size=4 off=0 size=4
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

const volatile __u32 threshold = 10;

SEC("xdp")
int rodata_write(struct xdp_md *ctx)
{
	*(volatile __u32 *)&threshold = ctx->rx_queue_index;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
