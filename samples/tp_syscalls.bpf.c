// SPDX-License-Identifier: GPL-2.0
/*
 * tp_syscalls: watches openat(2) through the syscalls:sys_enter_openat
 * tracepoint.
 *
 * - counts openat calls per process in the hash map `openat_per_process`;
 * - sends one event per call (pid, tid, flags, path, offset of the file's
 *   base name in the path) through the ring buffer `events`; the base name
 *   is found by a bpf_loop callback scanning the path for '/';
 * - global data: `target_pid` (.rodata, 0 = every process) filters by
 *   process, `events_sent` and `events_lost` (.bss) count ring buffer use.
 *
 * Planted bug: see samples/README.md ("tp_syscalls").
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define PATH_MAX_CAPTURED 128

/* Layout of /sys/kernel/tracing/events/syscalls/sys_enter_openat/format
 * (vmlinux.h is not used, so the record is declared by hand). */
struct sys_enter_openat_args {
	__u16 common_type;
	__u8 common_flags;
	__u8 common_preempt_count;
	__s32 common_pid;
	__s32 syscall_nr;
	__u32 pad;
	__u64 dfd;
	__u64 filename;   /* const char __user * */
	__u64 flags;
	__u64 mode;
};

struct openat_event {
	__u32 pid;        /* process (thread group) id */
	__u32 tid;        /* thread id */
	__u32 flags;      /* open flags */
	__u16 path_len;   /* bytes in path, including the final NUL */
	__u16 base_off;   /* offset of the base name in path */
	char comm[16];
	char path[PATH_MAX_CAPTURED];
};

/* Process id -> number of openat calls. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u64);
} openat_per_process SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

/* Configuration (.rodata): only this process when non-zero. */
const volatile __u32 target_pid = 0;

/* Statistics (.bss). */
__u64 events_sent;
__u64 events_lost;

struct basename_scan {
	const char *path;
	__u32 len;
	__u32 base_off;
};

/* bpf_loop callback: remembers the offset just after each '/'. */
static long find_base_name(__u64 index, void *data)
{
	struct basename_scan *scan = data;

	if (index >= scan->len || index >= PATH_MAX_CAPTURED)
		return 1; /* stop */
	if (scan->path[index] == '/')
		scan->base_off = index + 1;
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_openat")
int count_openat(struct sys_enter_openat_args *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 pid = pid_tgid >> 32;
	__u32 tid = (__u32)pid_tgid;
	struct basename_scan scan = {};
	struct openat_event *ev;
	__u64 one = 1, *count;
	__u32 key;
	long len;

	if (target_pid && pid != target_pid)
		return 0;

	/* PLANTED BUG (samples/README.md): counts per thread, not per
	 * process. */
	key = (__u32)pid_tgid;
	count = bpf_map_lookup_elem(&openat_per_process, &key);
	if (count)
		__sync_fetch_and_add(count, 1);
	else
		bpf_map_update_elem(&openat_per_process, &key, &one, BPF_NOEXIST);

	ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
	if (!ev) {
		__sync_fetch_and_add(&events_lost, 1);
		return 0;
	}
	ev->pid = pid;
	ev->tid = tid;
	ev->flags = ctx->flags;
	bpf_get_current_comm(ev->comm, sizeof(ev->comm));
	len = bpf_probe_read_user_str(ev->path, sizeof(ev->path), (const void *)ctx->filename);
	if (len < 0) {
		ev->path[0] = 0;
		len = 0;
	}
	ev->path_len = len;

	scan.path = ev->path;
	scan.len = len;
	bpf_loop(PATH_MAX_CAPTURED, find_base_name, &scan, 0);
	ev->base_off = scan.base_off;

	bpf_ringbuf_submit(ev, 0);
	__sync_fetch_and_add(&events_sent, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
