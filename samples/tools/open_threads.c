// SPDX-License-Identifier: GPL-2.0
/*
 * open_threads: the workload that shows the tp_syscalls bug.
 *
 *   open_threads [THREADS [OPENS]]      (defaults: 4 threads, 10 opens)
 *
 * Starts THREADS threads; each opens (openat) and closes /dev/null OPENS
 * times. All of them belong to one process, so a per-process openat count
 * must include every thread's calls.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static long opens = 10;

static void *worker(void *arg)
{
	/* On the stack, so the page is present: a tracepoint program cannot
	 * fault in a string literal's page that was never touched. */
	char path[] = "/dev/null";

	(void)arg;
	for (long i = 0; i < opens; i++) {
		int fd = openat(AT_FDCWD, path, O_RDONLY);

		if (fd >= 0)
			close(fd);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	long threads = argc > 1 ? strtol(argv[1], NULL, 0) : 4;
	pthread_t tid[64];

	if (argc > 2)
		opens = strtol(argv[2], NULL, 0);
	if (threads < 1 || threads > 64) {
		fprintf(stderr, "open_threads: THREADS must be between 1 and 64\n");
		return 2;
	}
	for (long i = 0; i < threads; i++)
		if (pthread_create(&tid[i], NULL, worker, NULL) != 0) {
			perror("open_threads: pthread_create");
			return 1;
		}
	for (long i = 0; i < threads; i++)
		pthread_join(tid[i], NULL);
	printf("%ld threads x %ld openat of /dev/null\n", threads, opens);
	return 0;
}
