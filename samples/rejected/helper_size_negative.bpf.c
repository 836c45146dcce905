// SPDX-License-Identifier: GPL-2.0
/*
 * Rejected on purpose: the size given to bpf_probe_read_kernel comes from
 * the packet unchecked as a 64-bit value: it may be negative.
 * Expected: R2 min value is negative, either use unsigned or 'var &= const'
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int helper_size_negative(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	char buf[64];
	__u64 n;

	if (data + 8 > data_end)
		return XDP_PASS;
	n = *(__u64 *)data;
	bpf_probe_read_kernel(buf, n, data);
	return buf[0] ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
