// SPDX-License-Identifier: GPL-2.0
/*
 * Rejected on purpose: a loop that never changes the state it tests, so
 * the verifier sees the same state twice at the loop head.
 * Expected: infinite loop detected at insn N
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
__attribute__((naked)) int infinite_loop(void)
{
	asm volatile(
		"r0 = 0;"
		"l0_%=: if r0 == 0 goto l0_%=;"
		"exit;"
		::: "memory");
}

char LICENSE[] SEC("license") = "GPL";
