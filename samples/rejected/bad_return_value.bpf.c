// SPDX-License-Identifier: GPL-2.0
/*
 * Rejected on purpose: a cgroup skb program must return 0 (drop) or
 * 1 (allow) (and may set bit 1, congestion); this one can return 5.
 * Expected: At program exit the register R0 has smin=5 smax=5 should have been in [0, 3]
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("cgroup_skb/egress")
int bad_return_value(struct __sk_buff *skb)
{
	return skb->len > 100 ? 5 : 1;
}

char LICENSE[] SEC("license") = "GPL";
