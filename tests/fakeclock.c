/* SPDX-License-Identifier: BSD-2-Clause */
/* fakeclock.c — an LD_PRELOAD shim for tests: shifts the wall clock
 * (CLOCK_REALTIME, its coarse variant, gettimeofday, time) of every process
 * it is loaded into by an offset that a test changes at run time, so a test
 * can step the clock of a running daemon without touching the machine's.
 * The offset is a native int64 of seconds at the start of the file named by
 * FAKECLOCK_FILE, mapped shared: the test pwrite()s a new value and every
 * process sees it at its next clock read. A second int64 after it, when the
 * file has one, moves CLOCK_MONOTONIC (and its coarse variant) forward the
 * same way, for tests of deadlines that must not wait for real time; a file
 * of one int64 leaves monotonic clocks untouched (the rest of the mapped
 * page reads as zero). libev's own timers read the clock by system call and
 * are never moved.
 * Built for make check only; never installed. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const volatile int64_t *offset; /* [0] wall clock, [1] monotonic */

__attribute__((constructor)) static void
fakeclock_init(void)
{
	const char *path = getenv("FAKECLOCK_FILE");
	void *p;
	int fd;

	if (path == NULL || (fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return;
	p = mmap(NULL, 2 * sizeof(*offset), PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (p != MAP_FAILED)
		offset = p;
}

static int64_t
fakeclock_offset(void)
{
	return offset != NULL ? *offset : 0;
}

int
clock_gettime(clockid_t id, struct timespec *ts)
{
	int rc = (int)syscall(SYS_clock_gettime, id, ts);

	if (rc == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE))
		ts->tv_sec += (time_t)fakeclock_offset();
	if (rc == 0 && offset != NULL && (id == CLOCK_MONOTONIC || id == CLOCK_MONOTONIC_COARSE))
		ts->tv_sec += (time_t)offset[1];
	return rc;
}

int
gettimeofday(struct timeval *restrict tv, void *restrict tz)
{
	struct timespec ts;

	(void)tz;
	if (clock_gettime(CLOCK_REALTIME, &ts) == -1)
		return -1;
	tv->tv_sec = ts.tv_sec;
	tv->tv_usec = ts.tv_nsec / 1000;
	return 0;
}

time_t
time(time_t *t)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	if (t != NULL)
		*t = ts.tv_sec;
	return ts.tv_sec;
}
