// SPDX-License-Identifier: GPL-2.0
/*
 * Rejected on purpose: does arithmetic on data_end; only data (pkt) may be
 * moved, data_end may only be compared against.
 * Expected: R? pointer arithmetic on pkt_end prohibited
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
__attribute__((naked)) int pkt_end_arithmetic(void)
{
	asm volatile(
		"r2 = *(u32 *)(r1 + 4);"
		"r2 += -4;"
		"r0 = 2;"
		"exit;"
		::: "memory");
}

char LICENSE[] SEC("license") = "GPL";
