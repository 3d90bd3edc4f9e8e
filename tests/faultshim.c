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
 *                            that errno (EMFILE: a process out of descriptors)
 *   FAULTSHIM_WATCH_FILE=F   while file F exists and holds "ERRNO PORT NEW",
 *                            every epoll_ctl(EPOLL_CTL_ADD) of a process at
 *                            depth N on a connected or connecting TCP socket
 *                            fails with ERRNO (ENOSPC: the kernel's
 *                            max_user_watches; ENOMEM): when PORT > 0 only
 *                            sockets whose local port is PORT (a listener's
 *                            clients), when PORT < 0 only those whose local
 *                            port is not -PORT (upstream connections); when
 *                            NEW is 1 only in processes forked after F was
 *                            last written (a reload's new workers) */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int depth;            /* forks between the loading process and us */
static int forks;            /* forks this process made */
static int epoll_calls;      /* epoll_create1 calls of this process */
static struct timespec born; /* CLOCK_REALTIME of our fork, 0: the loader */

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
	clock_gettime(CLOCK_REALTIME, &born);
	if (kill_at > 0 && n == kill_at && depth == env_int("FAULTSHIM_DEPTH", 1)) {
		struct timespec ts = {0, 1000000L};

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

/* The fault FAULTSHIM_WATCH_FILE's path asks for on fd, or 0. */
static int
watch_fault(const char *path, int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int e = 0, port = 0, fresh = 0, v = 0, lport;
	socklen_t vlen = sizeof(v);
	struct stat st;
	FILE *f;

	if (depth != env_int("FAULTSHIM_DEPTH", 1) || (f = fopen(path, "r")) == NULL)
		return 0;
	if (fscanf(f, "%d %d %d", &e, &port, &fresh) < 1 || fstat(fileno(f), &st) == -1)
		e = 0;
	fclose(f);
	if (e <= 0 || getsockname(fd, (struct sockaddr *)&ss, &len) == -1 ||
	    (ss.ss_family != AF_INET && ss.ss_family != AF_INET6) ||
	    getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &vlen) == -1 || v != SOCK_STREAM ||
	    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &vlen) == -1 || v != 0)
		return 0;
	lport = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
	                                      : ((struct sockaddr_in6 *)&ss)->sin6_port);
	if ((port > 0 && lport != port) || (port < 0 && lport == -port))
		return 0;
	if (fresh && (born.tv_sec < st.st_mtim.tv_sec ||
	                 (born.tv_sec == st.st_mtim.tv_sec && born.tv_nsec < st.st_mtim.tv_nsec)))
		return 0;
	return e;
}

int
epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
	static int (*real_ctl)(int, int, int, struct epoll_event *);
	const char *path = getenv("FAULTSHIM_WATCH_FILE");
	int e;

	if (real_ctl == NULL)
		real_ctl =
		    (int (*)(int, int, int, struct epoll_event *))dlsym(RTLD_NEXT, "epoll_ctl");
	if (path != NULL && op == EPOLL_CTL_ADD && (e = watch_fault(path, fd)) > 0) {
		errno = e;
		return -1;
	}
	return real_ctl(epfd, op, fd, ev);
}
