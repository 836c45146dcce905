// SPDX-License-Identifier: GPL-2.0
/*
 * Rejected on purpose: XDP programs cannot call bpf_skb_load_bytes (it
 * takes a socket buffer, which XDP does not have).
 * Expected: program of this type cannot use helper bpf_skb_load_bytes#26
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int helper_not_allowed(struct xdp_md *ctx)
{
	__u8 byte = 0;

	bpf_skb_load_bytes(ctx, 0, &byte, 1);
	return byte ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
