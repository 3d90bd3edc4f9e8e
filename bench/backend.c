/* SPDX-License-Identifier: BSD-2-Clause */
/* backend.c — the benchmark backend: `backend -p PORT [-n NPORTS] [-P PROCS]
 * [-m echo|sink]` serves echo (every byte sent back) or sink (a bulk stream
 * checked against bench/pattern and answered with one report line) on several
 * loopback ports from several processes, because one process has only
 * RLIMIT_NOFILE descriptors and a proxy needs distinct 4-tuples to hold 100k
 * upstream connections. An idle connection costs a descriptor and a small
 * slot, never a buffer: every process reads into one buffer and keeps bytes
 * only when a peer is slow to take them. It never connects anywhere. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pattern.h"

#define BACKEND_BUF (256 * 1024)
#define BACKEND_EVENTS 512
#define BACKEND_ACCEPTS 64   /* per readiness event of a listener */
#define BACKEND_READS 4      /* per readiness event of a connection */
#define BACKEND_PAUSE_MS 100 /* accepting pauses this long on EMFILE */
#define BACKEND_MAX_PROCS 64
#define BACKEND_MAX_PORTS 64
#define BACKEND_STOP_MS 3000 /* children get this long after SIGTERM */

enum backend_mode { MODE_ECHO, MODE_SINK };

/* One per descriptor number, in a table that is calloc'ed for the whole fd
 * range: pages of it are touched only as descriptors are used. */
struct bconn {
	uint8_t *pend;   /* bytes not yet written back; malloc'ed only then */
	uint32_t plen;   /* how many */
	uint32_t poff;   /* written so far */
	uint8_t eof;     /* close once pend is written */
	uint8_t hdr_got; /* sink: header bytes received */
	uint8_t bad;     /* sink: a byte differed (at bad_off) */
	uint8_t open;
	uint32_t seed; /* sink: from the header */
	uint64_t want; /* sink: payload length from the header */
	uint64_t off;  /* sink: payload bytes received */
	uint64_t bad_off;
	uint8_t hdr[PATTERN_HDR];
};

struct backend {
	enum backend_mode mode;
	struct sockaddr_in addr;
	int port, nports, nprocs, backlog, verbose;
	unsigned lifetime; /* seconds; 0 = until signalled */
};

static struct bconn *conns;
static size_t nconns_max;
static uint8_t buf[BACKEND_BUF];
static int ep;
static unsigned long long n_accepted, n_closed, n_bad, n_ok;
static unsigned long long bytes_in;

static void
usage(int status)
{
	fprintf(status ? stderr : stdout,
	    "usage: backend -p PORT [-a ADDR] [-n NPORTS] [-P PROCS] [-m echo|sink]\n"
	    "               [-b BACKLOG] [-T SECONDS] [-v]\n"
	    "  Listens on ADDR (default 127.0.0.1) ports PORT..PORT+NPORTS-1 with PROCS\n"
	    "  processes. echo: send back every byte. sink: read a bench bulk stream,\n"
	    "  check it, answer \"ok BYTES\" or \"bad OFFSET\" at EOF. -T: exit after\n"
	    "  SECONDS. Prints \"ready\" on stdout once every port listens; SIGTERM stops.\n");
	exit(status);
}

static long
parse_long(const char *s, long lo, long hi, const char *what)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *s == '\0' || *end != '\0' || v < lo || v > hi) {
		fprintf(stderr, "backend: %s must be %ld..%ld, not \"%s\"\n", what, lo, hi, s);
		exit(2);
	}
	return v;
}

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void
conn_close(int fd)
{
	struct bconn *c = &conns[fd];

	free(c->pend);
	memset(c, 0, sizeof(*c));
	close(fd);
	n_closed++;
}

static void
conn_watch(int fd, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.fd = fd};

	if (epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev) == -1) {
		fprintf(stderr, "backend: epoll_ctl: %s\n", strerror(errno));
		exit(1);
	}
}

/* Send p[0..n) and keep what the socket does not take. Returns 0, or -1
 * when the connection is dead (the caller closes it). */
static int
conn_send(int fd, const uint8_t *p, size_t n)
{
	struct bconn *c = &conns[fd];
	ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

	if (w == -1) {
		if (errno != EAGAIN)
			return -1;
		w = 0;
	}
	if ((size_t)w == n)
		return 0;
	/* Slow peer: the one case where a connection holds memory; reading
	 * stops until it is written, which back-pressures the sender. */
	c->pend = malloc(n - (size_t)w);
	if (!c->pend) {
		fprintf(stderr, "backend: out of memory\n");
		exit(1);
	}
	memcpy(c->pend, p + w, n - (size_t)w);
	c->plen = (uint32_t)(n - (size_t)w);
	c->poff = 0;
	conn_watch(fd, EPOLLOUT);
	return 0;
}

/* Check received sink bytes; remember only the first difference. */
static void
sink_take(struct bconn *c, const uint8_t *p, size_t n)
{
	if (c->hdr_got < PATTERN_HDR) {
		size_t h = PATTERN_HDR - c->hdr_got;

		if (h > n)
			h = n;
		memcpy(c->hdr + c->hdr_got, p, h);
		c->hdr_got = (uint8_t)(c->hdr_got + h);
		p += h;
		n -= h;
		if (c->hdr_got == PATTERN_HDR &&
		    pattern_header_parse(c->hdr, &c->seed, &c->want) == -1) {
			c->bad = 1;
			c->bad_off = 0;
		}
	}
	if (n == 0)
		return;
	if (!c->bad) {
		size_t at;

		if (c->off + n > c->want) {
			c->bad = 1;
			c->bad_off = c->want;
		} else if ((at = pattern_check(c->seed, c->off, p, n)) != 0) {
			c->bad = 1;
			c->bad_off = c->off + at - 1;
		}
	}
	c->off += n;
}

/* At EOF of a sink stream: one line with the verdict, then close. */
static void
sink_report(int fd)
{
	struct bconn *c = &conns[fd];
	char line[80];
	int n;

	if (c->hdr_got < PATTERN_HDR) {
		n = snprintf(line, sizeof(line), "bad header\n");
		c->bad = 1;
	} else if (c->bad) {
		n = snprintf(line, sizeof(line), "bad %llu\n", (unsigned long long)c->bad_off);
	} else if (c->off != c->want) {
		n = snprintf(line, sizeof(line), "short %llu\n", (unsigned long long)c->off);
		c->bad = 1;
	} else {
		n = snprintf(line, sizeof(line), "ok %llu\n", (unsigned long long)c->off);
	}
	if (c->bad)
		n_bad++;
	else
		n_ok++;
	c->eof = 1;
	if (conn_send(fd, (const uint8_t *)line, (size_t)n) == -1 || !c->pend)
		conn_close(fd);
}

static void
conn_readable(int fd, enum backend_mode mode)
{
	struct bconn *c = &conns[fd];

	for (int i = 0; i < BACKEND_READS; i++) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);

		if (n == -1) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			conn_close(fd);
			return;
		}
		if (n == 0) {
			if (mode == MODE_SINK)
				sink_report(fd);
			else
				conn_close(fd);
			return;
		}
		bytes_in += (unsigned long long)n;
		if (mode == MODE_SINK) {
			sink_take(c, buf, (size_t)n);
		} else {
			if (conn_send(fd, buf, (size_t)n) == -1) {
				conn_close(fd);
				return;
			}
			if (c->pend)
				return;
		}
		if ((size_t)n < sizeof(buf))
			return;
	}
}

static void
conn_writable(int fd)
{
	struct bconn *c = &conns[fd];
	ssize_t w = send(fd, c->pend + c->poff, c->plen - c->poff, MSG_NOSIGNAL);

	if (w == -1) {
		if (errno == EAGAIN)
			return;
		conn_close(fd);
		return;
	}
	c->poff += (uint32_t)w;
	if (c->poff < c->plen)
		return;
	free(c->pend);
	c->pend = NULL;
	c->plen = c->poff = 0;
	if (c->eof)
		conn_close(fd);
	else
		conn_watch(fd, EPOLLIN);
}

/* Returns 1 when accepting must pause (out of descriptors). */
static int
listener_readable(int lfd)
{
	for (int i = 0; i < BACKEND_ACCEPTS; i++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct epoll_event ev = {.events = EPOLLIN};

		if (fd == -1) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM)
				return 1;
			return 0;
		}
		if ((size_t)fd >= nconns_max) {
			close(fd);
			return 1;
		}
		ev.data.fd = fd;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == -1) {
			close(fd);
			return 1;
		}
		conns[fd].open = 1;
		n_accepted++;
	}
	return 0;
}

static void
listeners_watch(const int *lfds, int n, int on)
{
	for (int i = 0; i < n; i++) {
		struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfds[i]};

		epoll_ctl(ep, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, lfds[i], &ev);
	}
}

static int
is_listener(int fd, const int *lfds, int n)
{
	for (int i = 0; i < n; i++)
		if (lfds[i] == fd)
			return 1;
	return 0;
}

/* One process's loop over its own listeners, until SIGTERM/SIGINT. */
static void
child_run(const struct backend *b, int idx, const int *lfds, int nl)
{
	struct epoll_event evs[BACKEND_EVENTS];
	struct rlimit rl;
	sigset_t mask;
	uint64_t paused_until = 0;
	int sfd;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() == 1)
		exit(1);
	getrlimit(RLIMIT_NOFILE, &rl);
	nconns_max = rl.rlim_cur;
	conns = calloc(nconns_max, sizeof(*conns));
	if (!conns || (b->mode == MODE_SINK && pattern_init() == -1)) {
		fprintf(stderr, "backend: out of memory\n");
		exit(1);
	}
	ep = epoll_create1(EPOLL_CLOEXEC);
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (ep == -1 || sfd == -1) {
		fprintf(stderr, "backend: epoll/signalfd: %s\n", strerror(errno));
		exit(1);
	}
	{
		struct epoll_event ev = {.events = EPOLLIN, .data.fd = sfd};

		epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);
	}
	listeners_watch(lfds, nl, 1);

	for (;;) {
		int timeout = -1, n;

		if (paused_until) {
			uint64_t now = now_ms();

			if (now >= paused_until) {
				paused_until = 0;
				listeners_watch(lfds, nl, 1);
			} else {
				timeout = (int)(paused_until - now);
			}
		}
		n = epoll_wait(ep, evs, BACKEND_EVENTS, timeout);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "backend: epoll_wait: %s\n", strerror(errno));
			exit(1);
		}
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;

			if (fd == sfd) {
				if (b->verbose)
					fprintf(stderr,
					    "backend[%d]: accepted %llu closed %llu open %llu "
					    "bytes %llu sink ok %llu bad %llu\n",
					    idx, n_accepted, n_closed, n_accepted - n_closed,
					    bytes_in, n_ok, n_bad);
				exit(0);
			}
			if (is_listener(fd, lfds, nl)) {
				if (!paused_until && listener_readable(fd)) {
					listeners_watch(lfds, nl, 0);
					paused_until = now_ms() + BACKEND_PAUSE_MS;
				}
				continue;
			}
			if (!conns[fd].open)
				continue; /* closed earlier in this batch */
			if (conns[fd].pend) {
				if (evs[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
					conn_writable(fd);
			} else {
				conn_readable(fd, b->mode);
			}
		}
	}
}

static int
listen_on(const struct backend *b, int port, int reuseport)
{
	struct sockaddr_in sin = b->addr;
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	sin.sin_port = htons((uint16_t)port);
	if (fd == -1)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (reuseport)
		setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	/* Accepted sockets inherit it: echoes go out at once. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 || listen(fd, b->backlog) == -1) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* Kill every child still running and reap them all, bounded in time. */
static void
children_stop(const pid_t *pids, int n)
{
	uint64_t deadline = now_ms() + BACKEND_STOP_MS;
	int left = 0;

	for (int i = 0; i < n; i++)
		if (pids[i] > 0 && kill(pids[i], SIGTERM) == 0)
			left++;
	while (left > 0 && now_ms() < deadline) {
		pid_t p = waitpid(-1, NULL, WNOHANG);

		if (p > 0) {
			left--;
		} else if (p == -1) {
			break;
		} else {
			struct timespec ts = {0, 10 * 1000 * 1000};

			nanosleep(&ts, NULL);
		}
	}
	for (int i = 0; i < n; i++)
		if (pids[i] > 0 && kill(pids[i], SIGKILL) == 0)
			waitpid(pids[i], NULL, 0);
}

int
main(int argc, char **argv)
{
	static int lfds[BACKEND_MAX_PROCS][BACKEND_MAX_PORTS];
	static int nl[BACKEND_MAX_PROCS];
	struct backend b = {.mode = MODE_ECHO, .nports = 1, .nprocs = 1, .backlog = 4096};
	pid_t pids[BACKEND_MAX_PROCS] = {0};
	struct rlimit rl;
	sigset_t mask;
	int opt, status = 0, shared;

	b.addr.sin_family = AF_INET;
	b.addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	while ((opt = getopt(argc, argv, "a:b:hm:n:p:P:T:v")) != -1) {
		switch (opt) {
		case 'a':
			if (inet_pton(AF_INET, optarg, &b.addr.sin_addr) != 1) {
				fprintf(stderr, "backend: -a wants a numeric IPv4 address\n");
				return 2;
			}
			break;
		case 'b':
			b.backlog = (int)parse_long(optarg, 1, 65535, "-b");
			break;
		case 'h':
			usage(0);
			break;
		case 'm':
			if (strcmp(optarg, "echo") == 0)
				b.mode = MODE_ECHO;
			else if (strcmp(optarg, "sink") == 0)
				b.mode = MODE_SINK;
			else
				usage(2);
			break;
		case 'n':
			b.nports = (int)parse_long(optarg, 1, BACKEND_MAX_PORTS, "-n");
			break;
		case 'p':
			b.port = (int)parse_long(optarg, 1, 65535, "-p");
			break;
		case 'P':
			b.nprocs = (int)parse_long(optarg, 1, BACKEND_MAX_PROCS, "-P");
			break;
		case 'T':
			b.lifetime = (unsigned)parse_long(optarg, 0, 86400, "-T");
			break;
		case 'v':
			b.verbose = 1;
			break;
		default:
			usage(2);
		}
	}
	if (optind != argc || b.port == 0 || b.port + b.nports - 1 > 65535)
		usage(2);

	/* Every process gets the whole hard limit: that is the point of
	 * having several. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}

	/* With at least as many ports as processes each process owns its own
	 * ports, so a proxy's round robin over them spreads connections
	 * exactly; otherwise all processes share every port (SO_REUSEPORT) and
	 * the kernel spreads them by hash. Binding here, before fork, means
	 * "ready" is true when printed. */
	shared = b.nports < b.nprocs;
	for (int pi = 0; pi < b.nprocs; pi++) {
		for (int j = 0; j < b.nports; j++) {
			int fd;

			if (!shared && j % b.nprocs != pi)
				continue;
			fd = listen_on(&b, b.port + j, shared);
			if (fd == -1) {
				fprintf(stderr, "backend: listen on port %d: %s\n", b.port + j,
				    strerror(errno));
				return 1;
			}
			lfds[pi][nl[pi]++] = fd;
		}
	}

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGALRM);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);

	for (int pi = 0; pi < b.nprocs; pi++) {
		pids[pi] = fork();
		if (pids[pi] == -1) {
			fprintf(stderr, "backend: fork: %s\n", strerror(errno));
			children_stop(pids, pi);
			return 1;
		}
		if (pids[pi] == 0) {
			sigset_t chld;

			/* Only this process's listeners stay open in it. */
			for (int o = 0; o < b.nprocs; o++)
				if (o != pi)
					for (int j = 0; j < nl[o]; j++)
						close(lfds[o][j]);
			sigemptyset(&chld);
			sigaddset(&chld, SIGCHLD);
			sigaddset(&chld, SIGALRM);
			sigprocmask(SIG_UNBLOCK, &chld, NULL);
			child_run(&b, pi, lfds[pi], nl[pi]);
			_exit(0);
		}
	}
	for (int pi = 0; pi < b.nprocs; pi++)
		for (int j = 0; j < nl[pi]; j++)
			close(lfds[pi][j]);

	printf("ready pid=%d mode=%s ports=%d-%d procs=%d\n", (int)getpid(),
	    b.mode == MODE_SINK ? "sink" : "echo", b.port, b.port + b.nports - 1, b.nprocs);
	fflush(stdout);
	if (b.lifetime)
		alarm(b.lifetime);

	for (;;) {
		siginfo_t si;
		int sig = sigwaitinfo(&mask, &si);

		if (sig == -1)
			continue;
		if (sig == SIGCHLD) {
			pid_t p;
			int st;

			while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
				for (int pi = 0; pi < b.nprocs; pi++)
					if (pids[pi] == p)
						pids[pi] = 0;
				fprintf(stderr,
				    "backend: process %d died (status 0x%x); stopping\n", (int)p,
				    st);
				status = 1;
			}
			if (status)
				break;
			continue;
		}
		if (sig == SIGALRM)
			fprintf(
			    stderr, "backend: lifetime of %u s is over; stopping\n", b.lifetime);
		break;
	}
	children_stop(pids, b.nprocs);
	return status;
}
