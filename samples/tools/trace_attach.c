// SPDX-License-Identifier: GPL-2.0
/*
 * trace_attach: runs a command under the tracing samples and prints what
 * they recorded. A small libbpf loader, because bpftool cannot attach
 * tracepoint or uprobe programs.
 *
 *   trace_attach [-u BINARY:FUNCTION] [-p VARIABLE] OBJECT -- COMMAND [ARG...]
 *
 *   -u  attach the uprobe programs of OBJECT at FUNCTION of BINARY
 *       (every process); other programs attach by their section name
 *   -p  before loading, set the 4-byte .rodata variable VARIABLE to the pid
 *       of COMMAND (e.g. -p target_pid for tp_syscalls)
 *
 * COMMAND is started first and held on a pipe until every program is
 * attached, so it runs entirely under them; its stdout goes to stderr, so
 * that stdout holds only the lines below. When it exits, trace_attach
 * prints, one per line:
 *   child PID STATUS
 *   ringbuf MAP HEX            one line per ring buffer record
 *   map MAP KEY_HEX VALUE_HEX  one line per map entry (per-CPU maps: the
 *                              values of every possible CPU, concatenated)
 *   var SECTION NAME HEX       one line per global variable (.bss, .data,
 *                              .rodata), found through BTF
 * then detaches everything. Run as root. Built by `make -C samples tools`.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#define MAX_LINKS 16

static void print_hex(const void *data, size_t len)
{
	const unsigned char *p = data;

	for (size_t i = 0; i < len; i++)
		printf("%02x", p[i]);
}

static int on_record(void *ctx, void *data, size_t len)
{
	printf("ringbuf %s ", (const char *)ctx);
	print_hex(data, len);
	printf("\n");
	return 0;
}

/* Sets the 4-byte variable `name` of the .rodata section to `value`. */
static int set_rodata_u32(struct bpf_object *obj, const char *name, __u32 value)
{
	struct btf *btf = bpf_object__btf(obj);
	struct bpf_map *map;
	const struct btf_var_secinfo *vs;
	const struct btf_type *sec;
	size_t size;
	char *data;
	int id, i;

	bpf_object__for_each_map(map, obj)
		if (strstr(bpf_map__name(map), ".rodata"))
			break;
	if (!map || !btf) {
		fprintf(stderr, "trace_attach: the object has no .rodata section or no BTF\n");
		return -1;
	}
	id = btf__find_by_name_kind(btf, ".rodata", BTF_KIND_DATASEC);
	if (id < 0) {
		fprintf(stderr, "trace_attach: no BTF for .rodata\n");
		return -1;
	}
	sec = btf__type_by_id(btf, id);
	/* Writable until load: libbpf keeps the section image in memory. */
	data = (char *)bpf_map__initial_value(map, &size);
	vs = btf_var_secinfos(sec);
	for (i = 0; i < btf_vlen(sec); i++, vs++) {
		const struct btf_type *var = btf__type_by_id(btf, vs->type);

		if (strcmp(btf__name_by_offset(btf, var->name_off), name) != 0)
			continue;
		if (vs->size != sizeof(value) || vs->offset + vs->size > size) {
			fprintf(stderr, "trace_attach: %s is not a 4-byte variable\n", name);
			return -1;
		}
		memcpy(data + vs->offset, &value, sizeof(value));
		return 0;
	}
	fprintf(stderr, "trace_attach: no variable %s in .rodata\n", name);
	return -1;
}

/* Prints each variable of a global data map, `value` being its contents. */
static void dump_globals(struct bpf_object *obj, struct bpf_map *map, const char *value,
			 size_t size)
{
	struct btf *btf = bpf_object__btf(obj);
	const char *section = strchr(bpf_map__name(map), '.');
	const struct btf_var_secinfo *vs;
	const struct btf_type *sec;
	int id, i;

	if (!btf || !section)
		return;
	id = btf__find_by_name_kind(btf, section, BTF_KIND_DATASEC);
	if (id < 0)
		return;
	sec = btf__type_by_id(btf, id);
	vs = btf_var_secinfos(sec);
	for (i = 0; i < btf_vlen(sec); i++, vs++) {
		const struct btf_type *var = btf__type_by_id(btf, vs->type);

		if (vs->offset + vs->size > size)
			continue;
		printf("var %s %s ", section, btf__name_by_offset(btf, var->name_off));
		print_hex(value + vs->offset, vs->size);
		printf("\n");
	}
}

static void dump_map(struct bpf_object *obj, struct bpf_map *map)
{
	enum bpf_map_type type = bpf_map__type(map);
	__u32 key_size = bpf_map__key_size(map);
	__u32 value_size = bpf_map__value_size(map);
	int fd = bpf_map__fd(map);
	int percpu = type == BPF_MAP_TYPE_PERCPU_ARRAY || type == BPF_MAP_TYPE_PERCPU_HASH ||
		     type == BPF_MAP_TYPE_LRU_PERCPU_HASH;
	size_t stored = percpu ? ((value_size + 7) / 8 * 8) * libbpf_num_possible_cpus() : value_size;
	char *key = calloc(1, key_size), *next = calloc(1, key_size), *value = calloc(1, stored);
	int err;

	if (type == BPF_MAP_TYPE_RINGBUF || type == BPF_MAP_TYPE_PROG_ARRAY)
		goto out;
	err = bpf_map_get_next_key(fd, NULL, next);
	while (!err) {
		memcpy(key, next, key_size);
		if (bpf_map_lookup_elem(fd, key, value) == 0) {
			printf("map %s ", bpf_map__name(map));
			print_hex(key, key_size);
			printf(" ");
			print_hex(value, stored);
			printf("\n");
			if (type == BPF_MAP_TYPE_ARRAY && strchr(bpf_map__name(map), '.'))
				dump_globals(obj, map, value, stored);
		}
		err = bpf_map_get_next_key(fd, key, next);
	}
out:
	free(key);
	free(next);
	free(value);
}

static int attach_all(struct bpf_object *obj, const char *uprobe, struct bpf_link **links,
		      int *n_links)
{
	struct bpf_program *prog;

	bpf_object__for_each_program(prog, obj) {
		struct bpf_link *link;

		if (*n_links == MAX_LINKS)
			return -1;
		if (strncmp(bpf_program__section_name(prog), "uprobe", 6) == 0) {
			LIBBPF_OPTS(bpf_uprobe_opts, opts);
			char binary[4096];
			const char *colon = uprobe ? strrchr(uprobe, ':') : NULL;

			if (!colon || (size_t)(colon - uprobe) >= sizeof(binary)) {
				fprintf(stderr, "trace_attach: %s is a uprobe: give -u BINARY:FUNCTION\n",
					bpf_program__name(prog));
				return -1;
			}
			memcpy(binary, uprobe, colon - uprobe);
			binary[colon - uprobe] = 0;
			opts.func_name = colon + 1;
			link = bpf_program__attach_uprobe_opts(prog, -1, binary, 0, &opts);
		} else {
			link = bpf_program__attach(prog);
		}
		if (!link) {
			fprintf(stderr, "trace_attach: cannot attach %s: %s\n", bpf_program__name(prog),
				strerror(errno));
			return -1;
		}
		links[(*n_links)++] = link;
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *uprobe = NULL, *pid_var = NULL;
	struct bpf_link *links[MAX_LINKS];
	struct ring_buffer *rb = NULL;
	struct bpf_object *obj;
	struct bpf_map *map;
	int n_links = 0, go[2], opt, status = 0, i, ret = 1;
	pid_t child;

	while ((opt = getopt(argc, argv, "+u:p:")) != -1) {
		if (opt == 'u')
			uprobe = optarg;
		else if (opt == 'p')
			pid_var = optarg;
		else
			goto usage;
	}
	if (optind + 2 > argc || strcmp(argv[optind + 1], "--") != 0 || optind + 2 == argc)
		goto usage;

	if (pipe(go) < 0) {
		perror("trace_attach: pipe");
		return 1;
	}
	child = fork();
	if (child < 0) {
		perror("trace_attach: fork");
		return 1;
	}
	if (child == 0) {
		char c;

		close(go[1]);
		/* Keep our stdout for records only: COMMAND writes to stderr. */
		dup2(STDERR_FILENO, STDOUT_FILENO);
		if (read(go[0], &c, 1) != 1)
			_exit(127); /* the parent gave up */
		execvp(argv[optind + 2], &argv[optind + 2]);
		perror("trace_attach: exec");
		_exit(127);
	}
	close(go[0]);

	obj = bpf_object__open_file(argv[optind], NULL);
	if (!obj) {
		fprintf(stderr, "trace_attach: cannot open %s: %s\n", argv[optind], strerror(errno));
		goto kill_child;
	}
	if (pid_var && set_rodata_u32(obj, pid_var, child) < 0)
		goto close_obj;
	if (bpf_object__load(obj)) {
		fprintf(stderr, "trace_attach: cannot load %s: %s\n", argv[optind], strerror(errno));
		goto close_obj;
	}
	if (attach_all(obj, uprobe, links, &n_links) < 0)
		goto detach;
	bpf_object__for_each_map(map, obj) {
		if (bpf_map__type(map) != BPF_MAP_TYPE_RINGBUF)
			continue;
		if (!rb)
			rb = ring_buffer__new(bpf_map__fd(map), on_record, (void *)bpf_map__name(map),
					      NULL);
		else
			ring_buffer__add(rb, bpf_map__fd(map), on_record, (void *)bpf_map__name(map));
	}

	if (write(go[1], "g", 1) != 1) {
		perror("trace_attach: write");
		goto detach;
	}
	close(go[1]);
	while (waitpid(child, &status, WNOHANG) == 0) {
		if (rb)
			ring_buffer__poll(rb, 100);
		else
			usleep(10000);
	}
	if (rb)
		ring_buffer__consume(rb);
	printf("child %d %d\n", (int)child, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	child = 0; /* reaped */
	bpf_object__for_each_map(map, obj)
		dump_map(obj, map);
	ret = 0;
detach:
	ring_buffer__free(rb);
	for (i = 0; i < n_links; i++)
		bpf_link__destroy(links[i]);
close_obj:
	bpf_object__close(obj);
kill_child:
	if (child > 0) {
		close(go[1]);
		waitpid(child, NULL, 0);
	}
	return ret;
usage:
	fprintf(stderr,
		"usage: trace_attach [-u BINARY:FUNCTION] [-p VARIABLE] OBJECT -- COMMAND [ARG...]\n");
	return 2;
}
