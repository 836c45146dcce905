// SPDX-License-Identifier: GPL-2.0
/*
 * Rejected on purpose: calls helper number 999, which does not exist.
 * Expected: invalid func unknown#999
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

static long (*const no_such_helper)(void) = (void *)999;

SEC("xdp")
int unknown_helper(struct xdp_md *ctx)
{
	return no_such_helper() ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
