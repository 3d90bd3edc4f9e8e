/* SPDX-License-Identifier: BSD-2-Clause */
/* segread.c — sluicestat's reading of the segment. A mapped file that some
 * other process truncates makes every access past its new end raise SIGBUS;
 * sluicestat must then say so and carry on (-w) or exit 1, never die. The
 * handler is installed only around the reading and jumps back out of it.
 * Runs in sluicestat only; never writes the segment. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "segread.h"
#include "stats.h"

static sigjmp_buf bus_jump;

static void
bus_cb(int sig)
{
	(void)sig;
	siglongjmp(bus_jump, 1);
}

struct stats_snapshot *
segread_snapshot(const char *path, char *err, size_t errlen)
{
	/* Static: kept across the jump without volatile games. */
	static struct stats_seg seg;
	static struct stats_snapshot *sn;
	struct sigaction sa, old;

	/* Attaching reads the header with pread, not through the mapping:
	 * nothing there can fault. */
	if (stats_attach(&seg, path, err, errlen) == -1)
		return NULL;
	sn = stats_snapshot_alloc(&seg);
	if (sn == NULL) {
		stats_detach(&seg);
		snprintf(err, errlen, "out of memory");
		errno = ENOMEM;
		return NULL;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = bus_cb;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, &old);
	/* The mask is saved and restored by the jump: SIGBUS is unblocked
	 * again for the next reading. */
	if (sigsetjmp(bus_jump, 1) != 0) {
		sigaction(SIGBUS, &old, NULL);
		stats_snapshot_destroy(sn);
		sn = NULL;
		stats_detach(&seg);
		snprintf(err, errlen, "%s: changed size while being read", path);
		errno = EIO;
		return NULL;
	}
	stats_snapshot_fill(&seg, sn);
	sigaction(SIGBUS, &old, NULL);
	stats_detach(&seg);
	return sn;
}
