// SPDX-License-Identifier: GPL-2.0
/*
 * Rejected on purpose: uses the result of bpf_map_lookup_elem without
 * checking it for NULL.
 * Expected: invalid mem access 'map_value_or_null'
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

SEC("xdp")
int map_value_null(struct xdp_md *ctx)
{
	__u32 key = ctx->ingress_ifindex;
	__u64 *count = bpf_map_lookup_elem(&counters, &key);

	*count += 1; /* count may be NULL */
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
