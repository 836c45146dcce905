// SPDX-License-Identifier: GPL-2.0
/*
 * Rejected on purpose: reads past the end of an 8-byte map value.
 * Expected: invalid access to map value, value_size=8 off=8 size=4
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} slots SEC(".maps");

SEC("xdp")
int map_value_out_of_bounds(struct xdp_md *ctx)
{
	__u32 key = 0;
	__u32 *v = bpf_map_lookup_elem(&slots, &key);

	if (!v)
		return XDP_PASS;
	return v[2]; /* bytes 8..11 of an 8-byte value */
}

char LICENSE[] SEC("license") = "GPL";
