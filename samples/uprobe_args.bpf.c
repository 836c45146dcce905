// SPDX-License-Identifier: GPL-2.0
/*
 * uprobe_args: a uprobe on process_order() of samples/uprobe_target.c:
 *
 *   long process_order(const char *item, int qty, long price,
 *                      const struct customer *customer);
 *
 * Reads the arguments at function entry (PT_REGS_PARM1..4 from
 * bpf_tracing.h, built with -D__TARGET_ARCH_x86): the item name with
 * bpf_probe_read_user_str, the customer record with bpf_probe_read_user.
 * Keeps per-item totals in the hash map `order_stats` (key: item name,
 * 16 bytes, NUL-padded) and per-customer order counts in
 * `orders_per_customer`.
 *
 * Attach (the section names no target): binary samples/uprobe_target,
 * function process_order, e.g. with samples/tools/trace_attach.
 *
 * Planted bug: see samples/README.md ("uprobe_args").
 */
#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#define ITEM_LEN 16

/* Mirror of struct customer in uprobe_target.c. */
struct customer {
	__u32 id;
	char country[4];
};

struct item_key {
	char name[ITEM_LEN];
};

struct item_totals {
	__u64 orders;
	__u64 units;
	__s64 revenue;    /* sum of qty * price, in cents */
	__s64 max_price;  /* in cents */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct item_key);
	__type(value, struct item_totals);
} order_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} orders_per_customer SEC(".maps");

SEC("uprobe")
int on_process_order(struct pt_regs *ctx)
{
	const char *item = (const char *)PT_REGS_PARM1(ctx);
	int qty = PT_REGS_PARM2(ctx);
	const struct customer *customer = (const struct customer *)PT_REGS_PARM4(ctx);
	struct item_key key = {};
	struct item_totals zero = {}, *totals;
	struct customer cust = {};
	__u64 one = 1, *orders;

	/* PLANTED BUG (samples/README.md): price is a long in
	 * uprobe_target.c. */
	int price = PT_REGS_PARM3(ctx);

	if (bpf_probe_read_user_str(key.name, sizeof(key.name), item) < 0)
		return 0;

	totals = bpf_map_lookup_elem(&order_stats, &key);
	if (!totals) {
		bpf_map_update_elem(&order_stats, &key, &zero, BPF_NOEXIST);
		totals = bpf_map_lookup_elem(&order_stats, &key);
		if (!totals)
			return 0;
	}
	__sync_fetch_and_add(&totals->orders, 1);
	__sync_fetch_and_add(&totals->units, qty);
	__sync_fetch_and_add(&totals->revenue, (__s64)qty * price);
	if (price > totals->max_price)
		totals->max_price = price;

	if (bpf_probe_read_user(&cust, sizeof(cust), customer) < 0)
		return 0;
	orders = bpf_map_lookup_elem(&orders_per_customer, &cust.id);
	if (orders)
		__sync_fetch_and_add(orders, 1);
	else
		bpf_map_update_elem(&orders_per_customer, &cust.id, &one, BPF_NOEXIST);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
