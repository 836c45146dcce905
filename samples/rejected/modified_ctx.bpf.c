// SPDX-License-Identifier: GPL-2.0
/*
 * Rejected on purpose: loads a context field through a context pointer
 * that was moved first (the kernel rewrites context accesses by their
 * offset from the unmodified pointer only).
 * Expected: dereference of modified ctx ptr R1 off=4 disallowed
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
__attribute__((naked)) int modified_ctx(void)
{
	asm volatile(
		"r1 += 4;"
		"r0 = *(u32 *)(r1 + 0);"
		"exit;"
		::: "memory");
}

char LICENSE[] SEC("license") = "GPL";
