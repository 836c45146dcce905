// SPDX-License-Identifier: GPL-2.0
/*
 * Rejected on purpose: turns a number read from the context into a pointer
 * and dereferences it.
 * Expected: invalid mem access 'scalar'
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int scalar_deref(struct xdp_md *ctx)
{
	__u32 *p = (__u32 *)(long)ctx->rx_queue_index;

	return *p;
}

char LICENSE[] SEC("license") = "GPL";
