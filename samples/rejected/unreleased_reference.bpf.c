// SPDX-License-Identifier: GPL-2.0
/*
 * Rejected on purpose: reserves a ring buffer record and returns without
 * submitting or discarding it on one path.
 * Expected: Unreleased reference id=N alloc_insn=M
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} events SEC(".maps");

SEC("xdp")
int unreleased_reference(struct xdp_md *ctx)
{
	__u32 *rec = bpf_ringbuf_reserve(&events, sizeof(*rec), 0);

	if (!rec)
		return XDP_PASS;
	*rec = ctx->ingress_ifindex;
	if (*rec == 1)
		return XDP_DROP; /* leaks the reservation */
	bpf_ringbuf_submit(rec, 0);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
