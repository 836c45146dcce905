// SPDX-License-Identifier: GPL-2.0
/*
 * Rejected on purpose: the size given to bpf_probe_read_kernel comes from
 * the packet unchecked (0..2^32-1), so it may exceed the 64-byte stack
 * buffer.
 * Expected: R2 unbounded memory access, use 'var &= const' or 'if (var < const)'
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int unbounded_mem_access(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	char buf[64];
	__u32 n;

	if (data + 4 > data_end)
		return XDP_PASS;
	n = *(__u32 *)data;
	bpf_probe_read_kernel(buf, n, data);
	return buf[0] ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
