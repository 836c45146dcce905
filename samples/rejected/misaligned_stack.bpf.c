// SPDX-License-Identifier: GPL-2.0
/*
 * Rejected on purpose: a 4-byte store to the stack at an offset that is not
 * a multiple of 4 (stack accesses are always checked for alignment).
 * Expected: misaligned stack access off 0+0+-6 size 4
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
__attribute__((naked)) int misaligned_stack(void)
{
	asm volatile(
		"r1 = 0;"
		"*(u32 *)(r10 - 6) = r1;"
		"r0 = 2;"
		"exit;"
		::: "memory");
}

char LICENSE[] SEC("license") = "GPL";
