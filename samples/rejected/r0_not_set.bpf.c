// SPDX-License-Identifier: GPL-2.0
/*
 * Rejected on purpose: exits without setting the return value in r0.
 * Expected: R0 !read_ok
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
__attribute__((naked)) int r0_not_set(void)
{
	asm volatile("exit;" ::: "memory");
}

char LICENSE[] SEC("license") = "GPL";
