// SPDX-License-Identifier: GPL-2.0
/*
 * Rejected on purpose: a loop whose trip count the verifier cannot bound
 * (it comes from the packet and is only capped at 2^32), so it walks every
 * iteration until it gives up.
 * Expected: BPF program is too large. Processed 1000001 insn
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int too_large(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 n, i, sum = 0;

	if (data + 4 > data_end)
		return XDP_PASS;
	n = *(__u32 *)data;
	for (i = 0; i < n; i++)
		sum = sum * 31 + i;
	return sum & 1 ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
