// SPDX-License-Identifier: GPL-2.0
/*
 * uprobe_target: the userspace program the uprobe_args sample attaches to.
 *
 *   uprobe_target [COUNT [ITEM [QTY [PRICE [CUSTOMER_ID]]]]]
 *
 * calls process_order(ITEM, QTY, PRICE, &customer) COUNT times (defaults:
 * 5 "widget" 2 1999 42) and prints the total. PRICE is a long, in cents.
 * Built with gcc -O0 -g so process_order stays a real function whose
 * arguments are in rdi, rsi, rdx, rcx when the uprobe fires.
 */
#include <stdio.h>
#include <stdlib.h>

struct customer {
	unsigned int id;
	char country[4];
};

/* noinline and used: the uprobe needs a symbol and a real call. */
__attribute__((noinline, used)) long process_order(const char *item, int qty, long price,
						    const struct customer *customer)
{
	return (long)qty * price + (customer->id & 0);
}

int main(int argc, char **argv)
{
	long count = argc > 1 ? strtol(argv[1], NULL, 0) : 5;
	const char *item = argc > 2 ? argv[2] : "widget";
	int qty = argc > 3 ? (int)strtol(argv[3], NULL, 0) : 2;
	long price = argc > 4 ? strtol(argv[4], NULL, 0) : 1999;
	struct customer customer = { .id = argc > 5 ? (unsigned int)strtoul(argv[5], NULL, 0) : 42,
				     .country = "FR" };
	long total = 0;

	for (long i = 0; i < count; i++)
		total += process_order(item, qty, price, &customer);
	printf("%ld orders of %d x %s at %ld: total %ld\n", count, qty, item, price, total);
	return 0;
}
