// SPDX-License-Identifier: GPL-2.0
/*
 * Rejected on purpose: passes a number where bpf_map_lookup_elem expects
 * a map.
 * Expected: R1 type=scalar expected=map_ptr
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int helper_arg_type(struct xdp_md *ctx)
{
	__u32 key = 0;
	void *map = (void *)(long)ctx->ingress_ifindex;

	return bpf_map_lookup_elem(map, &key) ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
