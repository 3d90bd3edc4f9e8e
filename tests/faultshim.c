/* SPDX-License-Identifier: BSD-2-Clause */
/* faultshim.c — a fault injector preloaded (LD_PRELOAD) into sluiced by the
 * start-up and reload tests, to produce on demand the failures a real
 * machine produces rarely: a worker whose set-up fails, a master that dies
 * just as it forks. Inert unless its environment variables are set; never
 * built into sluiced itself. Processes are told apart by fork depth: the
 * process that loaded the shim is depth 0 and a fork child is one deeper
 * than its parent (workers of "sluiced -f" are depth 1, of a daemonized
 * sluiced depth 2).
 *
 *   FAULTSHIM_DEPTH=N        the depth the faults below apply to (default 1)
 *   FAULTSHIM_EPOLL_FILE=F   while file F exists and holds an errno number,
 *                            the first epoll_create1 of a process at depth N
 *                            fails with that errno (a worker's accept set is
 *                            its first)
 *   FAULTSHIM_KILL_PARENT=K  the child of the K-th fork of a process at depth
 *                            N-1 SIGKILLs its parent and waits until it is
 *                            reparented, before fork returns in it
 *   FAULTSHIM_ACCEPT_FILE=F  while file F exists and holds an errno number,
 *                            every accept4 of a process at depth N fails with
 *                            that errno (EMFILE: a process out of descriptors) */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int depth;        /* forks between the loading process and us */
static int forks;        /* forks this process made */
static int epoll_calls;  /* epoll_create1 calls of this process */

static int
env_int(const char *name, int dflt)
{
	const char *v = getenv(name);

	return v != NULL && *v != '\0' ? atoi(v) : dflt;
}

/* The errno number file path holds (a fault to inject while it exists), or
 * 0 when it is missing or holds none. */
static int
errno_in(const char *path)
{
	FILE *f = fopen(path, "r");
	int e = 0;

	if (f != NULL) {
		if (fscanf(f, "%d", &e) != 1)
			e = 0;
		fclose(f);
	}
	return e;
}

pid_t
fork(void)
{
	static pid_t (*real_fork)(void);
	int n = ++forks, kill_at = env_int("FAULTSHIM_KILL_PARENT", 0);
	pid_t pid, parent = getpid();

	if (real_fork == NULL)
		real_fork = (pid_t(*)(void))dlsym(RTLD_NEXT, "fork");
	pid = real_fork();
	if (pid != 0)
		return pid;
	depth++;
	forks = 0;
	epoll_calls = 0;
	if (kill_at > 0 && n == kill_at && depth == env_int("FAULTSHIM_DEPTH", 1)) {
		struct timespec ts = { 0, 1000000L };

		kill(parent, SIGKILL);
		for (int i = 0; i < 10000 && getppid() == parent; i++)
			nanosleep(&ts, NULL);
	}
	return 0;
}

int
epoll_create1(int flags)
{
	static int (*real_epoll)(int);
	const char *path = getenv("FAULTSHIM_EPOLL_FILE");
	int e = 0;

	if (real_epoll == NULL)
		real_epoll = (int (*)(int))dlsym(RTLD_NEXT, "epoll_create1");
	if (path != NULL && ++epoll_calls == 1 && depth == env_int("FAULTSHIM_DEPTH", 1))
		e = errno_in(path);
	if (e > 0) {
		errno = e;
		return -1;
	}
	return real_epoll(flags);
}

int
accept4(int fd, struct sockaddr *sa, socklen_t *len, int flags)
{
	static int (*real_accept4)(int, struct sockaddr *, socklen_t *, int);
	const char *path = getenv("FAULTSHIM_ACCEPT_FILE");
	int e = 0;

	if (real_accept4 == NULL)
		real_accept4 =
		    (int (*)(int, struct sockaddr *, socklen_t *, int))dlsym(RTLD_NEXT, "accept4");
	if (path != NULL && depth == env_int("FAULTSHIM_DEPTH", 1))
		e = errno_in(path);
	if (e > 0) {
		errno = e;
		return -1;
	}
	return real_accept4(fd, sa, len, flags);
}
