// SPDX-License-Identifier: GPL-2.0
/*
 * Rejected on purpose: writes below the 512-byte stack frame.
 * Expected: invalid write to stack R10 off=-520 size=8
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
__attribute__((naked)) int stack_out_of_bounds(void)
{
	asm volatile(
		"r1 = 0;"
		"*(u64 *)(r10 - 520) = r1;"
		"r0 = 2;"
		"exit;"
		::: "memory");
}

char LICENSE[] SEC("license") = "GPL";
