// SPDX-License-Identifier: GPL-2.0
/*
 * Rejected on purpose: reads r2, which nothing has written (at entry only
 * r1, the context, and r10, the frame pointer, are set).
 * Expected: R2 !read_ok
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
__attribute__((naked)) int reg_not_init(void)
{
	asm volatile(
		"r0 = r2;"
		"exit;"
		::: "memory");
}

char LICENSE[] SEC("license") = "GPL";
