// SPDX-License-Identifier: MIT
/*
 * Rejected on purpose: bpf_probe_read_kernel is GPL-only, and this
 * program's license string is not GPL-compatible.
 * Expected: cannot call GPL-restricted function from non-GPL compatible program
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int gpl_only_helper(struct xdp_md *ctx)
{
	__u64 word = 0;

	bpf_probe_read_kernel(&word, sizeof(word), (void *)(long)ctx->data);
	return word ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "Proprietary";
