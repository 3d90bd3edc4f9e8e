/* SPDX-License-Identifier: BSD-2-Clause */
/* uphelp.c — helpers for the upstream integration tests: which echo backend
 * took a connection, clients bound to chosen loopback source addresses, a
 * server's row and health in the stats segment, and a client's closing.
 * Runs in the test process only; every wait is bounded by a deadline. */
#include <arpa/inet.h>
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "tap.h"
#include "uphelp.h"

#define UP_MAX_CONFS 8

const char *
up_conf(const char *name, int workers, const char *fmt, ...)
{
	static char paths[UP_MAX_CONFS][512];
	static unsigned next;
	char *path = paths[next++ % UP_MAX_CONFS], body[8192];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(body, sizeof(body), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(body))
		bail("up_conf: config too long");
	snprintf(path, sizeof(paths[0]), "%s", h_path(name));
	h_write_file(path,
	    "workers = %d;\n"
	    "pid_file = \"%s\";\n"
	    "stats_file = \"%s\";\n"
	    "log = { target = \"stderr\"; level = \"debug\"; };\n"
	    "%s",
	    workers, h_pidfile(), h_statsfile(), body);
	return path;
}

int
up_accepted(int port)
{
	char name[64];

	snprintf(name, sizeof(name), "echod-%d.log", port);
	return h_count_lines(h_path(name), "echod: accepted");
}

int
up_echo(int fd, int timeout_ms)
{
	uint64_t deadline = h_now_ms() + (uint64_t)timeout_ms;
	char c = 'x', back;

	if (send(fd, &c, 1, MSG_NOSIGNAL) != 1) {
		diag("echo: send: %s", strerror(errno));
		return -1;
	}
	while (h_now_ms() < deadline) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		ssize_t n;

		if (poll(&pfd, 1, 50) <= 0)
			continue;
		n = recv(fd, &back, 1, MSG_DONTWAIT);
		if (n == 1)
			return back == c ? 0 : -1;
		if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
			diag("echo: %s instead of the byte", n == 0 ? "EOF" : strerror(errno));
			return -1;
		}
	}
	diag("echo: nothing came back within %d ms", timeout_ms);
	return -1;
}

#define UP_MAX_PORTS 16

int
up_client(int lport, const char *src, const int *ports, int n, int *fdp)
{
	int before[UP_MAX_PORTS], fd, which = -1;

	if (n > UP_MAX_PORTS)
		bail("up_client: too many ports");
	for (int i = 0; i < n; i++)
		before[i] = up_accepted(ports[i]);
	fd = h_connect_from(src, lport, 5000);
	if (fd == -1) {
		diag("client%s%s: connect: %s", src ? " from " : "", src ? src : "",
		    strerror(errno));
		return -1;
	}
	if (up_echo(fd, 5000) == -1) {
		close(fd);
		return -1;
	}
	for (int i = 0; i < n; i++) {
		int d = up_accepted(ports[i]) - before[i];

		if (d == 0)
			continue;
		if (d != 1 || which != -1) {
			diag("client: backends' accept counts moved by more than one connection");
			which = -2;
			continue;
		}
		if (which == -1)
			which = i;
	}
	if (which < 0) {
		diag("client: %s", which == -1 ? "no backend logged the connection" : "ambiguous");
		which = -1;
	}
	if (fdp != NULL)
		*fdp = fd;
	else
		close(fd);
	return which;
}

/* The directory row of group's 127.0.0.1:port in an attached segment. */
static int
up_row(const struct stats_seg *seg, const char *group, int port)
{
	char want[32];
	unsigned used = __atomic_load_n(&seg->hdr->servers_used, __ATOMIC_ACQUIRE);

	snprintf(want, sizeof(want), "127.0.0.1:%d", port);
	for (unsigned r = 0; r < used && r < seg->nservers; r++)
		if (strcmp(seg->servers[r].upstream, group) == 0 &&
		    strcmp(seg->servers[r].address, want) == 0)
			return (int)r;
	return -1;
}

int
up_server(const char *group, int port, struct stats_server_counters *c, struct stats_health *health)
{
	struct stats_seg seg;
	struct stats_snapshot *sn;
	char err[256];
	int row, rc = -1;

	if (c != NULL)
		memset(c, 0, sizeof(*c));
	if (health != NULL)
		memset(health, 0, sizeof(*health));
	if (stats_attach(&seg, h_statsfile(), err, sizeof(err)) == -1)
		return -1;
	row = up_row(&seg, group, port);
	if (row >= 0 && (sn = stats_snapshot_create(&seg)) != NULL) {
		for (unsigned i = 0; i < sn->nservers; i++) {
			if (sn->servers[i].row != (unsigned)row)
				continue;
			if (c != NULL)
				*c = sn->servers[i].c;
			if (health != NULL)
				*health = sn->servers[i].health;
			rc = 0;
		}
		stats_snapshot_destroy(sn);
	}
	stats_detach(&seg);
	return rc;
}

int
up_wait_health(const char *group, int port, uint32_t state, int timeout_ms)
{
	uint64_t deadline = h_now_ms() + (uint64_t)timeout_ms;
	struct stats_health h;
	int seen = -1;

	while (h_now_ms() < deadline) {
		if (up_server(group, port, NULL, &h) == 0) {
			seen = (int)h.state;
			if (h.state == state)
				return 1;
		}
		poll(NULL, 0, 20);
	}
	diag("server %s/127.0.0.1:%d is %s after %d ms, not %s", group, port,
	    seen < 0 ? "not in the segment" : stats_health_name((uint32_t)seen), timeout_ms,
	    stats_health_name(state));
	return 0;
}

int
up_wait_server_active(const char *group, int port, uint64_t want, int timeout_ms)
{
	uint64_t deadline = h_now_ms() + (uint64_t)timeout_ms;
	struct stats_server_counters c;
	long long seen = -1;

	while (h_now_ms() < deadline) {
		if (up_server(group, port, &c, NULL) == 0) {
			seen = (long long)c.active;
			if (c.active == want)
				return 1;
		}
		poll(NULL, 0, 20);
	}
	diag("server %s/127.0.0.1:%d has %lld active after %d ms, not %llu", group, port, seen,
	    timeout_ms, (unsigned long long)want);
	return 0;
}

int
up_server_active_by_slot(const char *group, int port, uint64_t *per, int max)
{
	struct stats_seg seg;
	char err[256];
	int row, n = 0;

	if (stats_attach(&seg, h_statsfile(), err, sizeof(err)) == -1)
		return -1;
	row = up_row(&seg, group, port);
	if (row < 0) {
		stats_detach(&seg);
		return -1;
	}
	for (unsigned s = 0; s < seg.nslots && n < max; s++, n++)
		per[s] = __atomic_load_n(
		    &stats_slot_server(&seg, s, (unsigned)row)->active, __ATOMIC_RELAXED);
	stats_detach(&seg);
	return n;
}

void
up_stop(pid_t pid)
{
	int status;

	kill(pid, SIGTERM);
	if (h_wait_exit(pid, 15000, &status) == -1) {
		h_kill(pid);
		bail("sluiced did not stop within 15 s of SIGTERM");
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		bail("sluiced stopped with status %d", status);
}

int
up_blackhole(int port, struct up_hole *hole)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	int one = 1;

	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	hole->nfds = 0;
	hole->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (hole->lfd == -1 ||
	    setsockopt(hole->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    bind(hole->lfd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    listen(hole->lfd, 0) == -1)
		bail("blackhole on port %d: %s", port, strerror(errno));
	/* Once the queue is full the kernel drops SYNs: the next connect that
	 * does not complete within 200 ms shows it. */
	while (hole->nfds < (int)(sizeof(hole->fds) / sizeof(hole->fds[0]))) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		struct pollfd pfd = {.fd = fd, .events = POLLOUT};

		if (fd == -1)
			bail("socket: %s", strerror(errno));
		hole->fds[hole->nfds++] = fd;
		if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0)
			continue;
		if (errno != EINPROGRESS)
			bail("connect to the blackhole: %s", strerror(errno));
		if (poll(&pfd, 1, 200) == 0)
			return 0;
	}
	up_blackhole_close(hole);
	return -1;
}

void
up_blackhole_close(struct up_hole *hole)
{
	for (int i = 0; i < hole->nfds; i++)
		close(hole->fds[i]);
	hole->nfds = 0;
	if (hole->lfd != -1)
		close(hole->lfd);
	hole->lfd = -1;
}

/* A copy of the socket of pid whose peer port is rport (IPv4), or -1. */
int
up_grab_peer(pid_t pid, int rport)
{
	char dir[64];
	struct dirent *e;
	DIR *d;
	int pfd, found = -1;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	pfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pfd == -1 || (d = opendir(dir)) == NULL) {
		if (pfd != -1)
			close(pfd);
		return -1;
	}
	while (found == -1 && (e = readdir(d)) != NULL) {
		struct sockaddr_in a;
		socklen_t al = sizeof(a);
		int fd;

		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		fd = (int)syscall(SYS_pidfd_getfd, pfd, atoi(e->d_name), 0);
		if (fd == -1)
			continue;
		if (getpeername(fd, (struct sockaddr *)&a, &al) == 0 && a.sin_family == AF_INET &&
		    ntohs(a.sin_port) == rport)
			found = fd;
		else
			close(fd);
	}
	closedir(d);
	close(pfd);
	return found;
}

int
up_sockopt(int fd, int level, int name)
{
	int v = -1;
	socklen_t l = sizeof(v);

	if (fd == -1 || getsockopt(fd, level, name, &v, &l) == -1)
		return -1;
	return v;
}
