// SPDX-License-Identifier: GPL-2.0
/*
 * Rejected on purpose: reads a field past the end of struct xdp_md.
 * Expected: invalid bpf_context access off=400 size=4
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int ctx_bad_offset(struct xdp_md *ctx)
{
	return ((volatile __u32 *)ctx)[100];
}

char LICENSE[] SEC("license") = "GPL";
