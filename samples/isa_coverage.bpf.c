// SPDX-License-Identifier: GPL-2.0
/*
 * isa_coverage: a socket filter whose only purpose is to make clang-19 emit
 * the newer BPF instructions (ISA v4), so that the disassembler, decoder and
 * interpreter are tested on real compiler output and not only on hand-made
 * encodings. Build with -mcpu=v4 (samples/Makefile does).
 *
 * What it exercises, and where:
 *   jmp32 (`if w1 > 0x5 goto`)       -- 32-bit comparisons everywhere
 *   sdiv / smod                      -- signed_math()
 *   movsx (`r1 = (s8)r2`)            -- signed_math()
 *   sign-extending loads (`*(s8 *)`) -- load_signed()
 *   bswap16/32/64                    -- swap_bytes()
 *   atomic add/or/and/xor, with and without fetch, xchg, cmpxchg (32 and 64 bit)
 *                                    -- update_stats()
 *   LD_ABS legacy packet loads       -- the program body
 *   may_goto                         -- bounded_sum() (the can_loop idiom)
 *   gotol (jump beyond +-32767)      -- long_jump(): a branch over a block of
 *                                       more than 32768 instructions
 *   bpf-to-bpf calls                 -- every __noinline function
 *
 * The program keeps a few statistics about packets in an array map and
 * accepts every packet (returns the packet length).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct stats {
	__u64 packets;
	__u64 bytes;
	__u64 seen_protocols; /* bit set of IPv4 protocol numbers mod 64 */
	__u64 last_len;
	__u32 packets32;
	__u32 flags32;
	__u32 mask32;
	__u32 toggles32;
	__u32 owner32;
	__u32 last_proto32;
	__s64 signed_result;
	__u64 swapped;
	__u64 loop_sum;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct stats);
} isa_stats SEC(".maps");

/* Legacy packet load (LD_ABS), the way old socket filters read headers. */
unsigned long long load_byte(void *skb, unsigned long long off) asm("llvm.bpf.load.byte");
unsigned long long load_half(void *skb, unsigned long long off) asm("llvm.bpf.load.half");
unsigned long long load_word(void *skb, unsigned long long off) asm("llvm.bpf.load.word");

/* The can_loop idiom of the kernel's bpf_experimental.h: may_goto falls
 * through while the verifier-granted loop budget lasts. */
#define can_loop                                                   \
	({                                                         \
		__label__ l_break, l_continue;                     \
		_Bool ret = 1;                                     \
		asm volatile goto("may_goto %l[l_break]" :::: l_break); \
		goto l_continue;                                   \
	l_break:                                                   \
		ret = 0;                                           \
	l_continue:;                                               \
		ret;                                               \
	})

static __noinline __s64 signed_math(__s32 a, __s32 b, __s64 c, __s64 d)
{
	__s64 r = 0;

	/* Quotient and remainder of different operands, so that clang does
	 * not compute the remainder from the quotient. */
	if (b != 0) {
		r += a / b;       /* sdiv32 */
		r += (a + 7) % b; /* smod32 */
	}
	if (d != 0) {
		r += c / d;       /* sdiv64 */
		r += (c - 5) % d; /* smod64 */
	}
	r += (__s8)c;  /* movsx 8 */
	r += (__s16)d; /* movsx 16 */
	r += (__s32)(c >> 3); /* movsx 32 */
	return r;
}

static __noinline __s64 load_signed(const void *buf)
{
	const volatile __s8 *b = buf;
	const volatile __s16 *h = buf;
	const volatile __s32 *w = buf;

	/* Widening a signed narrow load emits a sign-extending load. */
	return (__s64)b[1] + (__s64)h[1] + (__s64)w[1];
}

static __noinline __u64 swap_bytes(__u64 x, __u32 y, __u16 z)
{
	__u64 r = __builtin_bswap64(x);

	r ^= __builtin_bswap32(y);
	r ^= __builtin_bswap16(z);
	return r;
}

static __noinline void update_stats(struct stats *s, __u32 len, __u32 proto)
{
	__u64 old;
	__u32 old32;

	/* Results unused: plain atomic add/or/and/xor. */
	__sync_fetch_and_add(&s->bytes, len);
	__sync_fetch_and_add(&s->packets32, 1);
	__sync_fetch_and_or(&s->seen_protocols, 1ULL << (proto & 63));
	__sync_fetch_and_or(&s->flags32, 1U << (proto & 31));
	__sync_fetch_and_and(&s->mask32, ~(1U << (len & 31)));
	__sync_fetch_and_xor(&s->toggles32, len);

	/* Results used: the fetching forms. */
	old = __sync_fetch_and_add(&s->packets, 1);
	old += __sync_fetch_and_or(&s->seen_protocols, proto);
	old += __sync_fetch_and_and(&s->swapped, ~(__u64)proto);
	old += __sync_fetch_and_xor(&s->last_len, len);
	old32 = __sync_fetch_and_add(&s->packets32, len);
	old32 += __sync_fetch_and_or(&s->flags32, proto);
	old32 += __sync_fetch_and_and(&s->mask32, ~proto);
	old32 += __sync_fetch_and_xor(&s->toggles32, proto);

	/* xchg and cmpxchg, 64 and 32 bit. */
	old += __sync_lock_test_and_set(&s->last_len, len);
	old32 += __sync_lock_test_and_set(&s->last_proto32, proto);
	old += __sync_val_compare_and_swap(&s->signed_result, 0, (__s64)old32);
	__sync_val_compare_and_swap(&s->owner32, 0, old32 + 1);
	if (old == 0)
		__sync_fetch_and_add(&s->swapped, 1);
}

static __noinline __u64 bounded_sum(__u32 n)
{
	__u64 sum = 0;
	__u32 i = 0;

	while (i < n && can_loop) {
		sum += i * i;
		i++;
	}
	return sum;
}

/* 8 * 8 * 8 * 8 * 8 = 32768 copies of one instruction: with the branch
 * around it, the jump is farther than a 16-bit offset reaches, so clang
 * (cpu v4) emits `gotol`. */
#define ADD1(x) asm volatile("%0 += 1" : "+r"(x))
#define REP8(s) s; s; s; s; s; s; s; s
#define REP32768(s) REP8(REP8(REP8(REP8(REP8(s)))))

static __noinline __u64 long_jump(__u64 x)
{
	if (x & 1)
		return x;
	REP32768(ADD1(x));
	ADD1(x);
	return x;
}

SEC("socket")
int isa_coverage(struct __sk_buff *skb)
{
	__u32 key = 0;
	struct stats *s;
	char buf[16] = {};
	__u32 len = skb->len;
	__u32 proto = 0;

	s = bpf_map_lookup_elem(&isa_stats, &key);
	if (!s)
		return 0;

	if (len >= 34) {
		/* Ethernet type, then the IPv4 protocol byte. */
		if (load_half(skb, 12) == 0x0800)
			proto = load_byte(skb, 23);
		s->swapped += load_word(skb, 26);
	}
	if (bpf_skb_load_bytes(skb, 0, buf, sizeof(buf)) == 0)
		s->signed_result += load_signed(buf);

	update_stats(s, len, proto);
	s->signed_result += signed_math((__s32)len - 100, (__s32)proto - 3,
					(__s64)skb->hash - 1000, (__s64)proto - 7);
	s->swapped += swap_bytes(skb->hash, skb->mark, skb->protocol);
	s->loop_sum = bounded_sum(len & 0xff);
	s->swapped += long_jump(len);
	return len;
}
