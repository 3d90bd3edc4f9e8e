/* SPDX-License-Identifier: BSD-2-Clause */
/* soak.c — the fault soak (issue #9, section 3): the real sluiced with small
 * budgets (a tiny pool, a low descriptor limit, a per-worker limit, 3 workers)
 * under a seeded mix of verified echo streams, misbehaving clients and
 * backends, reload storms, worker kills and a stopped backend, all at once;
 * then it checks that the daemon is whole again and never changed or lost a
 * byte. The test process drives every client from one epoll loop; two forked
 * backends play the servers. It signals only the processes it started and the
 * workers of its own sluiced, and stops all of them, even on failure.
 *
 *   tests/soak [--seed N] [--seconds N | --minutes N]   (default 60 s)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <dirent.h>

#include "harness.h"
#include "stats.h"
#include "tap.h"

#define SOAK_WORKERS 3
/* Variant B takes new connections in 2 of the 3 workers at once
 * (accept_workers), so turns change hands under the overload; A in all. */
#define SOAK_ACCEPTING_B 2
#define SOAK_NOFILE 160       /* the daemon's RLIMIT_NOFILE */
#define SOAK_MAX_CLIENTS 1024 /* client slots of the driver */
#define SOAK_MAX_KILLS 4096
#define SOAK_IO 65536
#define SOAK_OWED_MAX (256 * 1024) /* backend: echo owed before it stops reading */
#define SOAK_KILL_MARGIN_MS 200    /* a stream this close after a kill may be cut by it */
#define SOAK_IDLE_PIPES 32         /* worker/worker.h RELAY_IDLE_PIPES: pipes kept idle */

/* ---- seeded randomness --------------------------------------------------- */

static uint64_t soak_seed, rng_state;

static uint64_t
mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static uint64_t
rnd(void)
{
	rng_state += 0x9e3779b97f4a7c15ULL;
	return mix64(rng_state);
}

/* Uniform in [lo, hi]. */
static uint64_t
rnd_in(uint64_t lo, uint64_t hi)
{
	return lo + rnd() % (hi - lo + 1);
}

/* Stream id's payload is a pure function of (seed, id, offset): the backend
 * checks what arrives and echoes by regenerating it, and the client checks
 * what comes back the same way. Nobody keeps a copy. */
static void
payload(uint32_t id, uint64_t off, unsigned char *buf, size_t len)
{
	uint64_t key = mix64(soak_seed ^ ((uint64_t)id << 20));
	size_t i = 0;

	while (i < len) {
		uint64_t w = mix64(key ^ ((off + i) / 8));

		for (unsigned b = (unsigned)((off + i) % 8); b < 8 && i < len; b++, i++)
			buf[i] = (unsigned char)(w >> (8 * b));
	}
}

/* ---- the command a client sends its backend first ------------------------ */

#define CMD_MAGIC 0x4b414f53u /* "SOAK" */

enum mode {
	M_ECHO = 1,  /* echo everything; after the client's EOF, close */
	M_SHUTFIRST, /* echo arg bytes, shut the write side, read (and check) the rest */
	M_RESET,     /* read up to arg bytes, echo them, then reset */
	M_STALL,     /* never read past the command, never answer */
	M_STOPREAD   /* read and echo up to arg bytes, then stop reading */
};

struct cmd {
	uint32_t magic, mode, id, arg;
	uint64_t n; /* payload bytes the client will send */
};

/* What the backends saw, in memory shared with the test process. */
struct shared {
	uint64_t rx, tx; /* bytes read from / written to sluiced, every connection */
	uint64_t conns, corrupt, badhdr, shortn;
	uint32_t short_ids[256];
	uint64_t short_ms[256]; /* when the backend saw that EOF (h_now_ms) */
	char corrupt_why[4][160];
};

static struct shared *sh;

static void
sh_add(uint64_t *p, uint64_t v)
{
	__atomic_fetch_add(p, v, __ATOMIC_RELAXED);
}

/* ---- backends (forked children) ------------------------------------------ */

enum { BL_CMD = -1, BL_CLOSE = -2 };

struct bconn {
	int fd, mode; /* mode: enum mode once the command is in, 0 before, BL_* listeners */
	unsigned char hdr[sizeof(struct cmd)];
	size_t hdrlen;
	struct cmd cmd;
	uint64_t rx, tx; /* payload bytes read, echoed */
	int eof, shut, stopped;
	uint64_t stopped_ms; /* when the sweep first saw it stopped */
	uint32_t events;
	struct bconn *next, **pprev; /* every open connection, for the sweep */
};

static struct bconn *b_all;

static void
b_close(struct bconn *c, int reset)
{
	if (c->pprev != NULL) {
		if (c->next != NULL)
			c->next->pprev = c->pprev;
		*c->pprev = c->next;
	}
	if (reset) {
		struct linger lg = {1, 0};

		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	close(c->fd);
	free(c);
}

/* Bytes this connection may echo in all. */
static uint64_t
b_echo_limit(const struct bconn *c)
{
	if (c->mode == M_SHUTFIRST && c->rx > c->cmd.arg)
		return c->cmd.arg;
	return c->rx;
}

static void
b_interest(int ep, struct bconn *c)
{
	uint64_t owed = b_echo_limit(c) - c->tx;
	uint32_t ev = 0;
	struct epoll_event e;

	if (!c->eof && !c->stopped && owed < SOAK_OWED_MAX)
		ev |= EPOLLIN;
	if (owed > 0)
		ev |= EPOLLOUT;
	/* A connection that will never read again learns of the peer's close
	 * from RDHUP alone. (Level-triggered RDHUP on one that only paused
	 * reading would spin.) */
	if (c->stopped)
		ev |= EPOLLRDHUP;
	if (ev == c->events)
		return;
	c->events = ev;
	e.events = ev;
	e.data.ptr = c;
	epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
}

static void
b_corrupt(struct bconn *c, uint64_t at)
{
	uint64_t k = __atomic_fetch_add(&sh->corrupt, 1, __ATOMIC_RELAXED);

	if (k < 4)
		snprintf(sh->corrupt_why[k], sizeof(sh->corrupt_why[k]),
		    "backend: stream %u (mode %u) wrong byte at offset %llu", c->cmd.id,
		    c->cmd.mode, (unsigned long long)at);
}

/* Returns 0, or -1 when c is gone. */
static int
b_read(struct bconn *c)
{
	static unsigned char buf[SOAK_IO], want[SOAK_IO];

	for (int round = 0; round < 4; round++) {
		size_t room = sizeof(buf);
		ssize_t n;

		if (c->mode != 0 && c->mode != M_ECHO && c->mode != M_SHUTFIRST &&
		    c->cmd.arg - c->rx < room)
			room = (size_t)(c->cmd.arg - c->rx);
		if (c->mode == 0)
			room = sizeof(c->hdr) - c->hdrlen;
		if (room == 0)
			return 0;
		n = recv(c->fd, c->mode == 0 ? c->hdr + c->hdrlen : buf, room, 0);
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			return 0;
		if (n <= 0) {
			if (n == -1) {
				b_close(c, 0);
				return -1;
			}
			c->eof = 1;
			if (c->mode == M_SHUTFIRST && c->rx != c->cmd.n) {
				uint64_t k = __atomic_fetch_add(&sh->shortn, 1, __ATOMIC_RELAXED);

				if (k < 256) {
					sh->short_ids[k] = c->cmd.id;
					sh->short_ms[k] = h_now_ms();
				}
			}
			if (c->tx == b_echo_limit(c) || c->mode == 0) {
				b_close(c, 0);
				return -1;
			}
			return 0;
		}
		sh_add(&sh->rx, (uint64_t)n);
		if (c->mode == 0) {
			c->hdrlen += (size_t)n;
			if (c->hdrlen < sizeof(c->hdr))
				continue;
			memcpy(&c->cmd, c->hdr, sizeof(c->cmd));
			if (c->cmd.magic != CMD_MAGIC || c->cmd.mode < M_ECHO ||
			    c->cmd.mode > M_STOPREAD) {
				sh_add(&sh->badhdr, 1);
				b_close(c, 1);
				return -1;
			}
			c->mode = (int)c->cmd.mode;
			if (c->mode == M_STALL || (c->mode == M_STOPREAD && c->cmd.arg == 0))
				c->stopped = 1;
			if (c->mode == M_RESET && c->cmd.arg == 0) {
				b_close(c, 1);
				return -1;
			}
			return 0;
		}
		payload(c->cmd.id, c->rx, want, (size_t)n);
		if (memcmp(buf, want, (size_t)n) != 0) {
			size_t k = 0;

			while (buf[k] == want[k])
				k++;
			b_corrupt(c, c->rx + k);
			b_close(c, 1);
			return -1;
		}
		c->rx += (uint64_t)n;
		if (c->mode == M_RESET && c->rx >= c->cmd.arg) {
			b_close(c, 1);
			return -1;
		}
		if (c->mode == M_STOPREAD && c->rx >= c->cmd.arg) {
			c->stopped = 1;
			return 0;
		}
		if (b_echo_limit(c) - c->tx >= SOAK_OWED_MAX)
			return 0;
	}
	return 0;
}

static int
b_write(struct bconn *c)
{
	static unsigned char buf[SOAK_IO];

	while (b_echo_limit(c) > c->tx) {
		uint64_t owed = b_echo_limit(c) - c->tx;
		size_t len = owed < sizeof(buf) ? (size_t)owed : sizeof(buf);
		ssize_t n;

		payload(c->cmd.id, c->tx, buf, len);
		n = send(c->fd, buf, len, MSG_NOSIGNAL);
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			return 0;
		if (n == -1) {
			b_close(c, 0);
			return -1;
		}
		sh_add(&sh->tx, (uint64_t)n);
		c->tx += (uint64_t)n;
	}
	if (c->mode == M_SHUTFIRST && !c->shut && c->tx == c->cmd.arg) {
		shutdown(c->fd, SHUT_WR);
		c->shut = 1;
	}
	if (c->eof) {
		b_close(c, 0);
		return -1;
	}
	return 0;
}

static void
b_accept(int ep, struct bconn *l)
{
	for (int i = 0; i < 64; i++) {
		int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct bconn *c;
		struct epoll_event e;

		if (fd == -1)
			return;
		sh_add(&sh->conns, 1);
		if (l->mode == BL_CLOSE) {
			close(fd);
			continue;
		}
		if ((c = calloc(1, sizeof(*c))) == NULL) {
			close(fd);
			continue;
		}
		c->fd = fd;
		c->events = EPOLLIN;
		c->next = b_all;
		if (b_all != NULL)
			b_all->pprev = &c->next;
		b_all = c;
		c->pprev = &b_all;
		e.events = EPOLLIN;
		e.data.ptr = c;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e) == -1)
			b_close(c, 0);
	}
}

static void __attribute__((noreturn))
backend_main(const int *lfds, const int *kinds, int n, pid_t parent)
{
	struct epoll_event evs[256];
	uint64_t next_sweep = 0;
	int ep;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(1);
	signal(SIGPIPE, SIG_IGN);
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) == -1)
		_exit(1);
	for (int i = 0; i < n; i++) {
		struct bconn *l = calloc(1, sizeof(*l));
		struct epoll_event e = {.events = EPOLLIN};

		if (l == NULL)
			_exit(1);
		l->fd = lfds[i];
		l->mode = kinds[i];
		e.data.ptr = l;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, l->fd, &e) == -1)
			_exit(1);
	}
	for (;;) {
		int k = epoll_wait(ep, evs, 256, 1000);
		uint64_t now = h_now_ms();

		if (getppid() != parent)
			_exit(0);
		for (int i = 0; i < k; i++) {
			struct bconn *c = evs[i].data.ptr;
			uint32_t re = evs[i].events;

			if (c->mode < 0) {
				b_accept(ep, c);
				continue;
			}
			if (c->stopped && (re & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
				b_close(c, 0);
				continue;
			}
			if ((re & (EPOLLIN | EPOLLHUP | EPOLLERR)) && !c->stopped &&
			    b_read(c) == -1)
				continue;
			if ((re & EPOLLOUT || b_echo_limit(c) > c->tx || c->eof ||
			        (c->mode == M_SHUTFIRST && !c->shut && c->tx == c->cmd.arg)) &&
			    b_write(c) == -1)
				continue;
			b_interest(ep, c);
		}
		/*
		 * After the events, which may name a connection: a stalled
		 * connection never reads, so the daemon's FIN queues behind
		 * bytes that never go, and both ends would hold their
		 * buffers for minutes. Like a real server giving up, reset
		 * it after a while (the daemon's idle timeout has closed its
		 * side by then).
		 */
		if (now >= next_sweep) {
			struct bconn *c = b_all, *next;

			for (; c != NULL; c = next) {
				next = c->next;
				if (c->stopped && c->stopped_ms == 0)
					c->stopped_ms = now;
				else if (c->stopped && now - c->stopped_ms > 15000)
					b_close(c, 1);
			}
			next_sweep = now + 1000;
		}
	}
}

/* rcvbuf > 0: small receive and send buffers, which accepted sockets
 * inherit, so that a backend that stops reading makes the daemon hold bytes
 * soon, and the kernel holds little for it. */
static int
listen_on(int port, int rcvbuf)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd != -1 && rcvbuf > 0) {
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &rcvbuf, sizeof(rcvbuf));
	}
	if (fd == -1 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    bind(fd, (struct sockaddr *)&a, sizeof(a)) == -1 || listen(fd, 1024) == -1)
		bail("listen on 127.0.0.1:%d: %s", port, strerror(errno));
	return fd;
}

/* Processes of ours that the harness does not know (it tracks only what it
 * exec's): stopped and reaped by soak_cleanup, even on a bail-out. */
static volatile pid_t backends[2];
static volatile pid_t master_pid;

static pid_t
backend_start(const int *ports, const int *kinds, int n, int rcvbuf)
{
	int lfds[4];
	pid_t pid, parent = getpid();

	for (int i = 0; i < n; i++)
		lfds[i] = listen_on(ports[i], rcvbuf);
	fflush(stdout);
	if ((pid = fork()) == -1)
		bail("fork: %s", strerror(errno));
	if (pid == 0)
		backend_main(lfds, kinds, n, parent);
	for (int i = 0; i < n; i++)
		close(lfds[i]);
	return pid;
}

static void
soak_cleanup(void)
{
	for (int i = 0; i < 2; i++) {
		pid_t p = backends[i];

		if (p > 0) {
			kill(p, SIGCONT);
			kill(p, SIGKILL);
			waitpid(p, NULL, 0);
			backends[i] = 0;
		}
	}
}

/* SIGINT/SIGTERM to the test: stop what it started (async-signal-safe). */
static void
soak_signal_cb(int sig)
{
	for (int i = 0; i < 2; i++)
		if (backends[i] > 0) {
			kill(backends[i], SIGCONT);
			kill(backends[i], SIGKILL);
		}
	if (master_pid > 0)
		kill(master_pid, SIGTERM);
	_exit(128 + sig);
}

/* ---- the daemon's configuration ------------------------------------------ */

static int lport_echo, lport_proxy, lport_bad, bport1, bport2, bport_close, bport_closed;
static const char *conf_path;

/* Two valid variants, alternated by the reload storms: the buffer path with
 * 64 buffers of 512 bytes (the least the config allows) and 75 sessions a
 * worker, about what a worker's descriptors hold; and splice with 64 buffers
 * of 1 KB and 90 sessions a worker, which they do not (pipes cost
 * descriptors too), so that workers run into EMFILE. Either way more
 * sessions than buffers: a session in the middle of a PROXY header holds
 * one. The echo servers have a max_connections far above what the soak
 * opens, so that a worker's count of a server that went wrong (it never
 * goes below 0 or above the truth) makes it refuse clients; one variant
 * balances by least connections, which reads the same counts. Listeners
 * and servers are the same in both, so every generation inherits the same
 * sockets. */
static void
conf_write(int variant)
{
	h_write_file(conf_path,
	    "# written by tests/soak, variant %c\n"
	    "workers = %d;\n"
	    "accept_workers = %d;\n"
	    "pid_file = \"%s\";\n"
	    "stats_file = \"%s\";\n"
	    "log = { target = \"stderr\"; level = \"info\"; connections = true; };\n"
	    "pool = { buffer_size = %s; max_memory = \"%s\"; splice = %s; };\n"
	    "limits = { max_connections_per_worker = %d; };\n"
	    "timeouts = { connect = \"2s\"; idle = \"%s\"; drain = \"60s\"; "
	    "proxy_header = \"%s\"; };\n"
	    "upstreams = (\n"
	    "  { name = \"good\"; retries = 2; balance = \"%s\"; servers = (\n"
	    "    { address = \"127.0.0.1:%d\"; max_connections = 1000; },\n"
	    "    { address = \"127.0.0.1:%d\"; max_connections = 1000; },\n"
	    "    { address = \"127.0.0.1:%d\"; max_connections = 1000; } ); },\n"
	    "  { name = \"bad\"; retries = 1; servers = ( \"127.0.0.1:%d\", "
	    "\"127.0.0.1:%d\" ); }\n"
	    ");\n"
	    "listeners = (\n"
	    "  { listen = \"127.0.0.1:%d\"; upstream = \"good\"; },\n"
	    "  { listen = \"127.0.0.1:%d\"; upstream = \"good\"; accept_proxy = \"any\"; "
	    "trusted = ( \"127.0.0.0/8\" ); },\n"
	    "  { listen = \"127.0.0.1:%d\"; upstream = \"bad\"; }\n"
	    ");\n",
	    variant ? 'B' : 'A', SOAK_WORKERS, variant ? SOAK_ACCEPTING_B : SOAK_WORKERS,
	    h_pidfile(), h_statsfile(),
	    variant ? "\"1K\"" : "512", variant ? "64K" : "32K", variant ? "true" : "false",
	    variant ? 90 : 75, variant ? "10s" : "8s", variant ? "3s" : "2s",
	    variant ? "leastconn" : "roundrobin", bport1, bport_closed, bport2, bport_close,
	    bport_closed, lport_echo, lport_proxy, lport_bad);
}

/* ---- clients ------------------------------------------------------------- */

enum kind {
	K_VERIFY,   /* every byte checked, must complete unless a kill cut it */
	K_NOREAD,   /* sends, never reads, leaves after a while (FIN or RST) */
	K_RESET,    /* resets mid-transfer */
	K_FAULT,    /* asks its backend to reset, stall or stop reading */
	K_PROXYBAD, /* malformed or never-finished PROXY header */
	K_BADUP,    /* on the listener whose servers refuse or close at once */
	K_HOLD,     /* idle, held open: descriptor exhaustion */
	K_NKINDS
};

static const char *const kind_names[K_NKINDS] = {
    "verify", "noread", "reset", "fault", "proxybad", "badup", "hold"};

enum outcome { O_RUNNING, O_GOOD, O_CUT, O_TIMEOUT, O_BADBYTES, O_DONE };

struct client {
	int used, fd, kind, connected, shut, eof, rst_on_close;
	uint32_t id, events;
	struct cmd cmd;
	unsigned char pre[192]; /* PROXY header and command, or the malformed header */
	size_t prelen, presnt;
	uint64_t sent, got, expect;      /* payload */
	uint64_t rst_after;              /* K_RESET: reset once this much payload is sent */
	unsigned send_chunk, read_chunk; /* 0: as fast as possible */
	unsigned send_every, read_every; /* ms between paced steps */
	uint64_t next_send, next_read, start_ms, deadline, end_ms;
	int noread, outcome;
	int port;         /* the listener it connects to */
	char local[32];   /* our address, as the daemon logs it */
	char said[32];    /* the address a PROXY header declared (logged once parsed) */
	int slow_pre;     /* the pacing is for the PROXY header only */
	int small_window; /* SO_RCVBUF 4 KB */
	char why[160];
};

static struct client clients[SOAK_MAX_CLIENTS];
static int ep_clients;
static uint32_t next_id = 1;
static int header_flood; /* K_HOLD clients now all stop mid-header */
static int proxy_wave;   /* K_VERIFY clients now all send a slow PROXY header */

/* Totals over every client. */
static uint64_t client_tx, client_rx;
static unsigned n_started[K_NKINDS], n_verified_good, n_verified_cut, n_proxybad_closed;
static unsigned n_fail, n_verified_refused, n_verified_fdwait, n_verified_starved;
static uint64_t verified_sent, verified_got;

static uint64_t kill_ms[SOAK_MAX_KILLS];
static pid_t kill_pid[SOAK_MAX_KILLS];
static int nkills;

/* The daemon's connection log line for a client address ("IP:PORT") into
 * line, waiting up to wait_ms for it to be written: how sluiced saw a
 * stream. Returns 1, or 0 when it wrote none. */
static int
daemon_line(const char *client, char *line, size_t len, int wait_ms)
{
	char needle[96], *log, *p, *eol;
	uint64_t t0 = h_now_ms();

	if (client[0] == '\0')
		return 0;
	snprintf(needle, sizeof(needle), "client=%s ", client);
	for (;;) {
		if ((log = h_read_file(h_path("sluiced.log"))) != NULL &&
		    (p = strstr(log, needle)) != NULL) {
			while (p > log && p[-1] != '\n')
				p--;
			if ((eol = strchr(p, '\n')) != NULL)
				*eol = '\0';
			snprintf(line, len, "%s", p);
			free(log);
			return 1;
		}
		free(log);
		if (h_now_ms() - t0 >= (uint64_t)wait_ms)
			return 0;
		h_nap(50);
	}
}

static void
daemon_line_diag(const char *client)
{
	char line[512];

	if (daemon_line(client, line, sizeof(line), 1000))
		diag("  sluiced logged: %s", line);
}

/* What sluiced says it closed the client's session for, when that is an
 * overload the config makes on purpose (see conf_write): OVER_FDWAIT, the
 * connect deadline passed before any server was tried (it waited for a
 * descriptor the whole time); OVER_STARVED, the idle deadline passed while it
 * waited for a relay buffer. 0 otherwise. */
enum { OVER_FDWAIT = 1, OVER_STARVED };
static int
daemon_says_overload(const char *client)
{
	char line[512];

	if (!daemon_line(client, line, sizeof(line), 2000))
		return 0;
	if (strstr(line, " server=- ") && strstr(line, " reason=connect_timeout"))
		return OVER_FDWAIT;
	if (strstr(line, " reason=starved"))
		return OVER_STARVED;
	return 0;
}

static void
fail_diag(struct client *c)
{
	if (n_fail++ < 30) {
		diag("FAIL %s stream %u (%s, client=%s%s%s, listener port %d, %llu ms): %s",
		    kind_names[c->kind], c->id, c->cmd.mode == M_SHUTFIRST ? "shut-first" : "echo",
		    c->local[0] ? c->local : "-", c->said[0] ? " declaring " : "", c->said, c->port,
		    (unsigned long long)(c->end_ms - c->start_ms), c->why);
		daemon_line_diag(c->said[0] ? c->said : c->local);
	}
}

/* Start and end of every stream by id, for the backends' reports. */
static uint64_t (*spans)[2];
static uint32_t nspans;

static void
span_set(uint32_t id, int which, uint64_t ms)
{
	if (id >= nspans) {
		uint32_t n = nspans ? nspans * 2 : 4096;
		uint64_t(*p)[2];

		while (n <= id)
			n *= 2;
		if ((p = realloc(spans, n * sizeof(*spans))) == NULL)
			bail("out of memory");
		memset(p + nspans, 0, (n - nspans) * sizeof(*spans));
		spans = p;
		nspans = n;
	}
	spans[id][which] = ms;
}

/* Did a worker kill fall within the life of a stream (end 0: still open)? */
static int
kill_overlaps(uint64_t start, uint64_t end)
{
	if (end == 0)
		end = h_now_ms();
	for (int i = 0; i < nkills; i++)
		if (kill_ms[i] + SOAK_KILL_MARGIN_MS >= start && kill_ms[i] <= end)
			return 1;
	return 0;
}

static void c_finish(struct client *c, int outcome, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
c_finish(struct client *c, int outcome, const char *fmt, ...)
{
	va_list ap;
	int over;

	if (fmt != NULL) {
		va_start(ap, fmt);
		vsnprintf(c->why, sizeof(c->why), fmt, ap);
		va_end(ap);
	}
	c->end_ms = h_now_ms();
	span_set(c->id, 1, c->end_ms);
	if (c->fd != -1) {
		if (c->rst_on_close || outcome == O_BADBYTES) {
			struct linger lg = {1, 0};

			setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		}
		close(c->fd);
		c->fd = -1;
	}
	if (c->kind == K_VERIFY) {
		if (outcome == O_GOOD) {
			n_verified_good++;
			verified_sent += c->sent;
			verified_got += c->got;
		} else if (outcome == O_BADBYTES) {
			fail_diag(c);
		} else if (kill_overlaps(c->start_ms, c->end_ms)) {
			outcome = O_CUT;
			n_verified_cut++;
		} else if (outcome == O_CUT && c->got == 0 && c->port == lport_proxy) {
			/* Closed before a byte came back: what a refusal
			 * looks like (a PROXY session refused for want of
			 * a header buffer). Checked against the daemon's
			 * refusal count at the end. */
			if (n_verified_refused++ < 5)
				diag("verify stream %u (client=%s declaring %s) closed before any "
				     "byte: %s",
				    c->id, c->local[0] ? c->local : "-", c->said, c->why);
		} else if (outcome == O_CUT && (over = daemon_says_overload(
		                                    c->said[0] ? c->said : c->local)) != 0) {
			/* The overloads the config makes on purpose: accepted
			 * while the worker's descriptors were short and none
			 * came free by the connect deadline (no byte back), or
			 * starved of relay buffers, held by clients that do not
			 * read, for a whole idle timeout. Told apart by the
			 * daemon's own log line, and checked against its counts
			 * at the end; bytes were cut, never changed. */
			if (over == OVER_FDWAIT && c->got == 0) {
				if (n_verified_fdwait++ < 5)
					diag("verify stream %u (client=%s) closed before any byte: "
					     "no descriptor came free by the connect deadline",
					    c->id, c->local[0] ? c->local : "-");
			} else if (over == OVER_STARVED) {
				if (n_verified_starved++ < 5)
					diag("verify stream %u (client=%s) closed after %llu of %llu "
					     "bytes back: starved of buffers for an idle timeout",
					    c->id, c->local[0] ? c->local : "-",
					    (unsigned long long)c->got,
					    (unsigned long long)c->expect);
			} else {
				fail_diag(c);
			}
		} else {
			fail_diag(c);
		}
	} else if (outcome == O_BADBYTES) {
		fail_diag(c);
	} else if (c->kind == K_PROXYBAD && outcome == O_CUT) {
		n_proxybad_closed++;
	}
	c->outcome = outcome;
	c->used = 0;
}

static void
c_interest(struct client *c, uint64_t now)
{
	uint32_t ev = 0;
	struct epoll_event e;
	int want_send = !c->shut && (c->presnt < c->prelen || c->sent < c->cmd.n) &&
	                (c->kind != K_PROXYBAD || c->presnt < c->prelen);

	if (!c->connected) {
		ev = EPOLLOUT;
	} else {
		if (want_send && now >= c->next_send)
			ev |= EPOLLOUT;
		if (c->noread)
			ev |= EPOLLRDHUP;
		else if (!c->eof && now >= c->next_read)
			ev |= EPOLLIN;
	}
	if (ev == c->events)
		return;
	c->events = ev;
	e.events = ev;
	e.data.u32 = (uint32_t)(c - clients);
	epoll_ctl(ep_clients, EPOLL_CTL_MOD, c->fd, &e);
}

static void
c_check_done(struct client *c)
{
	if (c->kind != K_VERIFY || !c->eof || !c->shut)
		return;
	if (c->got == c->expect)
		c_finish(c, O_GOOD, NULL);
}

static void
c_send(struct client *c, uint64_t now)
{
	static unsigned char buf[SOAK_IO];
	size_t budget = c->send_chunk ? c->send_chunk : 4 * SOAK_IO;

	while (budget > 0 && c->used) {
		const unsigned char *p;
		size_t len;
		ssize_t n;

		if (c->presnt < c->prelen) {
			p = c->pre + c->presnt;
			len = c->prelen - c->presnt;
		} else if (c->kind != K_PROXYBAD && c->sent < c->cmd.n) {
			uint64_t left = c->cmd.n - c->sent;

			if (c->rst_after && c->rst_after - c->sent < left)
				left = c->rst_after - c->sent;
			len = left < sizeof(buf) ? (size_t)left : sizeof(buf);
			payload(c->id, c->sent, buf, len);
			p = buf;
		} else {
			break;
		}
		if (len > budget)
			len = budget;
		if (len == 0)
			break;
		n = send(c->fd, p, len, MSG_NOSIGNAL);
		if (n == -1) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			c_finish(c, O_CUT, "send: %s after %llu of %llu bytes (got %llu of %llu)",
			    strerror(errno), (unsigned long long)c->sent,
			    (unsigned long long)c->cmd.n, (unsigned long long)c->got,
			    (unsigned long long)c->expect);
			return;
		}
		client_tx += (uint64_t)n;
		budget -= (size_t)n;
		if (c->presnt < c->prelen) {
			c->presnt += (size_t)n;
			if (c->presnt == c->prelen && c->slow_pre)
				c->send_chunk = 0;
		} else {
			c->sent += (uint64_t)n;
		}
		if (c->rst_after && c->sent >= c->rst_after) {
			c->rst_on_close = 1;
			c_finish(c, O_DONE, NULL);
			return;
		}
	}
	if (c->send_chunk)
		c->next_send = now + c->send_every;
	if (c->kind != K_PROXYBAD && c->kind != K_HOLD && c->kind != K_NOREAD &&
	    c->presnt == c->prelen && c->sent == c->cmd.n && !c->shut) {
		if (shutdown(c->fd, SHUT_WR) == -1) {
			c_finish(c, O_CUT, "shutdown: %s (got %llu of %llu)", strerror(errno),
			    (unsigned long long)c->got, (unsigned long long)c->expect);
			return;
		}
		c->shut = 1;
		c_check_done(c);
	}
}

static void
c_recv(struct client *c, uint64_t now)
{
	static unsigned char buf[SOAK_IO], want[SOAK_IO];
	size_t budget = c->read_chunk ? c->read_chunk : 4 * SOAK_IO;

	while (budget > 0 && c->used) {
		size_t len = budget < sizeof(buf) ? budget : sizeof(buf);
		ssize_t n = recv(c->fd, buf, len, 0);

		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			break;
		if (n == -1) {
			c_finish(c, O_CUT, "%s after %llu of %llu bytes back (sent %llu of %llu)",
			    strerror(errno), (unsigned long long)c->got,
			    (unsigned long long)c->expect, (unsigned long long)c->sent,
			    (unsigned long long)c->cmd.n);
			return;
		}
		if (n == 0) {
			c->eof = 1;
			if (c->kind != K_VERIFY) {
				c_finish(c, O_CUT, "closed by the daemon");
				return;
			}
			if (c->got != c->expect) {
				c_finish(c, O_CUT,
				    "EOF after %llu of %llu bytes back (sent %llu of %llu)",
				    (unsigned long long)c->got, (unsigned long long)c->expect,
				    (unsigned long long)c->sent, (unsigned long long)c->cmd.n);
				return;
			}
			c_check_done(c);
			return;
		}
		client_rx += (uint64_t)n;
		if (c->got + (uint64_t)n > c->expect) {
			c_finish(c, O_BADBYTES, "%llu bytes back, more than the %llu expected",
			    (unsigned long long)(c->got + (uint64_t)n),
			    (unsigned long long)c->expect);
			return;
		}
		payload(c->id, c->got, want, (size_t)n);
		if (memcmp(buf, want, (size_t)n) != 0) {
			size_t k = 0;

			while (buf[k] == want[k])
				k++;
			c_finish(c, O_BADBYTES, "wrong byte at offset %llu: 0x%02x, want 0x%02x",
			    (unsigned long long)(c->got + k), buf[k], want[k]);
			return;
		}
		c->got += (uint64_t)n;
		budget -= (size_t)n;
	}
	if (c->read_chunk)
		c->next_read = now + c->read_every;
}

/* Malformed, or well-formed but never finished, PROXY headers. */
static size_t
bad_proxy_header(unsigned char *p, size_t cap)
{
	static const unsigned char sig[12] = {
	    0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};
	size_t n = 0;

	switch (rnd() % 9) {
	case 0:
		return (size_t)snprintf((char *)p, cap, "PROXY TCP4 1.2.3.4\r\n");
	case 1:
		n = (size_t)snprintf((char *)p, cap, "PROXY UNKNOWN ");
		while (n < 150)
			p[n++] = 'x';
		return n;
	case 2:
		return (size_t)snprintf((char *)p, cap, "GET / HTTP/1.0\r\n\r\n");
	case 3:
		return (size_t)snprintf((char *)p, cap, "PROXY TCP4 999.1.1.1 1.1.1.1 1 2\r\n");
	case 4: /* v2, version 3 */
		memcpy(p, sig, 12);
		p[12] = 0x31;
		p[13] = 0x11;
		p[14] = 0;
		p[15] = 12;
		memset(p + 16, 7, 12);
		return 28;
	case 5: /* v2, a length past anything sane, then silence */
		memcpy(p, sig, 12);
		p[12] = 0x21;
		p[13] = 0x11;
		p[14] = 0xff;
		p[15] = 0xff;
		memset(p + 16, 1, 20);
		return 36;
	case 6: /* v2 signature cut short, then silence (the header timeout) */
		memcpy(p, sig, 12);
		return 1 + rnd() % 11;
	case 7: /* v1 never ended */
		return (size_t)snprintf((char *)p, cap, "PROXY TCP4 127.0.0.5 127.0.0.1 4");
	default:
		n = 1 + rnd() % 100;
		for (size_t i = 0; i < n && i < cap; i++)
			p[i] = (unsigned char)rnd();
		p[0] = 'P' + (unsigned char)(1 + rnd() % 10); /* never "P" of PROXY */
		return n;
	}
}

/* A valid v1 or v2 header; the address it declares goes to said (the
 * daemon's connection log names the client by it). */
static size_t
good_proxy_header(unsigned char *p, size_t cap, int port, char *said, size_t saidlen)
{
	static const unsigned char sig[12] = {
	    0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};
	unsigned a = (unsigned)rnd_in(2, 250), sport = (unsigned)rnd_in(1024, 65535);

	snprintf(said, saidlen, "127.0.0.%u:%u", a, sport);
	if (rnd() % 2)
		return (size_t)snprintf(
		    (char *)p, cap, "PROXY TCP4 127.0.0.%u 127.0.0.1 %u %d\r\n", a, sport, port);
	memcpy(p, sig, 12);
	p[12] = 0x21;
	p[13] = 0x11;
	p[14] = 0;
	p[15] = 12;
	p[16] = 127;
	p[17] = 0;
	p[18] = 0;
	p[19] = (unsigned char)a;
	p[20] = 127;
	p[21] = 0;
	p[22] = 0;
	p[23] = 1;
	p[24] = (unsigned char)(sport >> 8);
	p[25] = (unsigned char)sport;
	p[26] = (unsigned char)(port >> 8);
	p[27] = (unsigned char)port;
	return 28;
}

static uint64_t
verify_size(void)
{
	uint64_t r = rnd() % 100;

	if (r < 50)
		return rnd_in(0, 4096);
	if (r < 80)
		return rnd_in(4097, 256 * 1024);
	return rnd_in(256 * 1024, 2 * 1024 * 1024);
}

static struct client *
c_alloc(void)
{
	for (int i = 0; i < SOAK_MAX_CLIENTS; i++)
		if (!clients[i].used && clients[i].fd == -1) {
			memset(&clients[i], 0, sizeof(clients[i]));
			clients[i].fd = -1;
			return &clients[i];
		}
	return NULL;
}

/* Start one client of kind k. All choices come from the seeded generator,
 * in creation order. */
static void
c_start(int k, uint64_t now)
{
	struct client *c = c_alloc();
	struct sockaddr_in sin = {.sin_family = AF_INET}, from = {.sin_family = AF_INET};
	int port = lport_echo, proxy = 0, cut = 0;
	struct epoll_event e;
	uint64_t r;

	if (c == NULL)
		return;
	c->used = 1;
	c->kind = k;
	c->id = next_id++;
	c->start_ms = now;
	span_set(c->id, 0, now);
	c->outcome = O_RUNNING;
	c->cmd.magic = CMD_MAGIC;
	c->cmd.id = c->id;
	c->cmd.mode = M_ECHO;
	n_started[k]++;
	switch (k) {
	case K_VERIFY:
		c->cmd.n = verify_size();
		c->expect = c->cmd.n;
		if (rnd() % 4 == 0) {
			c->cmd.mode = M_SHUTFIRST;
			c->cmd.arg = (uint32_t)rnd_in(0, c->cmd.n);
			c->expect = c->cmd.arg;
		}
		if (rnd() % 4 == 0 || proxy_wave) {
			port = lport_proxy;
			proxy = 1;
		}
		r = proxy_wave ? 9 : rnd() % 10;
		if (r < 2) { /* slow sender: a few seconds at most */
			c->cmd.n = c->cmd.n % 65536;
			if (c->cmd.mode == M_SHUTFIRST)
				c->cmd.arg = (uint32_t)(c->cmd.arg % (c->cmd.n + 1));
			c->expect = c->cmd.mode == M_SHUTFIRST ? c->cmd.arg : c->cmd.n;
			c->send_every = (unsigned)rnd_in(5, 100);
			c->send_chunk = (unsigned)rnd_in(1, 2048);
			if (c->cmd.n / c->send_chunk * c->send_every > 4000)
				c->send_chunk = (unsigned)(c->cmd.n * c->send_every / 4000 + 1);
		} else if (r < 4) { /* slow reader */
			c->cmd.n = c->cmd.n % (512 * 1024);
			if (c->cmd.mode == M_SHUTFIRST)
				c->cmd.arg = (uint32_t)(c->cmd.arg % (c->cmd.n + 1));
			c->expect = c->cmd.mode == M_SHUTFIRST ? c->cmd.arg : c->cmd.n;
			c->read_every = (unsigned)rnd_in(5, 100);
			c->read_chunk = (unsigned)rnd_in(512, 8192);
			if (c->expect / c->read_chunk * c->read_every > 4000)
				c->read_chunk = (unsigned)(c->expect * c->read_every / 4000 + 1);
		}
		c->deadline = now + 120000;
		break;
	case K_NOREAD:
		/* The kernel's buffers on the way fill (back-pressure); with a
		 * few MB the daemon ends up holding a buffer or a pipe toward
		 * this client, and, when the backend stops reading too, one
		 * toward the backend. Mostly less: loopback send buffers grow
		 * to a few MB each, and the machine's TCP memory is shared
		 * (under pressure the kernel resets closed sockets' queues,
		 * which would look like the daemon losing bytes). */
		c->cmd.n = rnd() % 8 == 0 ? rnd_in(1024 * 1024, 4 * 1024 * 1024)
		                          : rnd_in(64 * 1024, 1024 * 1024);
		if (rnd() % 2) {
			c->cmd.mode = M_STOPREAD;
			c->cmd.arg = (uint32_t)rnd_in(0, c->cmd.n / 2);
		}
		c->noread = 1;
		c->small_window = 1;
		c->rst_on_close = rnd() % 2;
		c->deadline = now + rnd_in(500, 6000);
		break;
	case K_RESET:
		c->cmd.n = rnd_in(1024, 1024 * 1024);
		c->expect = c->cmd.n;
		c->rst_after = rnd_in(1, c->cmd.n);
		if (rnd() % 3 == 0) {
			port = lport_proxy;
			proxy = 1;
		}
		c->deadline = now + 30000;
		break;
	case K_FAULT:
		r = rnd() % 3;
		c->cmd.mode = r == 0 ? M_RESET : r == 1 ? M_STALL : M_STOPREAD;
		c->cmd.n = rnd() % 8 == 0 ? rnd_in(1024 * 1024, 4 * 1024 * 1024)
		                          : rnd_in(1024, 1024 * 1024);
		c->cmd.arg = (uint32_t)rnd_in(0, c->cmd.n / 2);
		c->expect = c->cmd.mode == M_STALL ? 0 : c->cmd.arg;
		c->rst_on_close = rnd() % 2;
		c->deadline = now + rnd_in(2000, 12000);
		break;
	case K_PROXYBAD:
		port = lport_proxy;
		c->prelen = bad_proxy_header(c->pre, sizeof(c->pre));
		if (rnd() % 2) {
			c->send_chunk = (unsigned)rnd_in(1, 10);
			c->send_every = (unsigned)rnd_in(50, 400);
		}
		c->rst_on_close = rnd() % 2;
		c->deadline = now + 6000;
		break;
	case K_BADUP:
		port = lport_bad;
		c->cmd.n = rnd_in(0, 8192);
		c->deadline = now + 5000;
		break;
	case K_HOLD:
		/* Half of them in the middle of a PROXY header: each holds a
		 * buffer of the daemon's until the header timeout. */
		if (header_flood || rnd() % 2) {
			port = lport_proxy;
			proxy = cut = 1;
		}
		c->rst_on_close = rnd() % 2;
		c->deadline = now + rnd_in(1000, 5000);
		break;
	}
	if (proxy) {
		c->prelen =
		    good_proxy_header(c->pre, sizeof(c->pre), port, c->said, sizeof(c->said));
		if (cut)
			c->prelen = rnd_in(1, c->prelen - 1);
		/* A slow but complete header: well inside the 2 s timeout. */
		if (k == K_VERIFY && c->send_chunk == 0 && (rnd() % 3 == 0 || proxy_wave)) {
			c->send_chunk = (unsigned)rnd_in(8, 16);
			c->send_every = (unsigned)rnd_in(20, 60);
			c->slow_pre = 1;
		}
	}
	if (k != K_PROXYBAD && !cut) {
		memcpy(c->pre + c->prelen, &c->cmd, sizeof(c->cmd));
		c->prelen += sizeof(c->cmd);
	}
	c->port = port;
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd == -1)
		bail("socket: %s", strerror(errno));
	{
		/* Small kernel buffers on our side: see K_NOREAD. */
		int sndbuf = 65536, small = 4096;

		setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
		if (c->small_window)
			setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	}
	from.sin_addr.s_addr = htonl(0x7f000001u + (uint32_t)(c->id % 8));
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(c->fd, (struct sockaddr *)&from, sizeof(from)) == -1 ||
	    (connect(c->fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 && errno != EINPROGRESS)) {
		/* sluiced keeps its listeners across reloads and kills: a
		 * refused connect is a failure for every kind. */
		c->kind = K_VERIFY;
		c_finish(c, O_BADBYTES, "connect to port %d: %s", port, strerror(errno));
		return;
	}
	c->events = EPOLLOUT;
	e.events = EPOLLOUT;
	e.data.u32 = (uint32_t)(c - clients);
	if (epoll_ctl(ep_clients, EPOLL_CTL_ADD, c->fd, &e) == -1)
		bail("epoll_ctl: %s", strerror(errno));
}

static void
c_event(struct client *c, uint32_t re, uint64_t now)
{
	if (!c->connected) {
		int err = 0;
		socklen_t len = sizeof(err);

		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err != 0) {
			int k = c->kind;

			c->kind = K_VERIFY;
			c_finish(c, O_BADBYTES, "connect (%s): %s", kind_names[k], strerror(err));
			return;
		}
		c->connected = 1;
		{
			struct sockaddr_in me;
			socklen_t mlen = sizeof(me);

			if (getsockname(c->fd, (struct sockaddr *)&me, &mlen) == 0)
				snprintf(c->local, sizeof(c->local), "127.0.0.%u:%u",
				    (unsigned)(ntohl(me.sin_addr.s_addr) & 0xff),
				    (unsigned)ntohs(me.sin_port));
		}
		c_send(c, now);
		return;
	}
	if (c->noread && (re & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
		c_finish(c, O_CUT, "closed by the daemon");
		return;
	}
	if (!c->noread && (re & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		c_recv(c, now);
	if (c->used && (re & EPOLLOUT))
		c_send(c, now);
}

/* Timers of every client: pacing, hold times, deadlines. */
static void
c_tick(uint64_t now)
{
	for (int i = 0; i < SOAK_MAX_CLIENTS; i++) {
		struct client *c = &clients[i];

		if (!c->used)
			continue;
		if (now >= c->deadline) {
			if (c->kind == K_VERIFY)
				c_finish(c, O_TIMEOUT,
				    "timeout: sent %llu of %llu%s, got %llu of %llu back%s",
				    (unsigned long long)c->sent, (unsigned long long)c->cmd.n,
				    c->shut ? " and SHUT_WR" : "", (unsigned long long)c->got,
				    (unsigned long long)c->expect, c->eof ? ", EOF" : "");
			else
				c_finish(c, O_DONE, NULL);
			continue;
		}
		c_interest(c, now);
	}
}

static int
c_count(int kind)
{
	int n = 0;

	for (int i = 0; i < SOAK_MAX_CLIENTS; i++)
		n += clients[i].used && (kind < 0 || clients[i].kind == kind);
	return n;
}

static void
c_poll(int ms)
{
	struct epoll_event evs[256];
	uint64_t now;
	int k = epoll_wait(ep_clients, evs, 256, ms);

	now = h_now_ms();
	for (int i = 0; i < k; i++) {
		struct client *c = &clients[evs[i].data.u32];

		if (c->used)
			c_event(c, evs[i].events, now);
	}
	c_tick(h_now_ms());
}

/* ---- the daemon, seen from outside --------------------------------------- */

struct wview {
	pid_t pid;
	uint32_t state, generation;
	uint64_t accepted, refused, active, bufs_used, sess_used;
};

/* Non-free slots of the segment. Returns how many (up to max), or -1. */
static int
slots_read(struct wview *v, int max)
{
	struct stats_seg seg;
	char err[256];
	int n = 0;

	if (stats_attach(&seg, h_statsfile(), err, sizeof(err)) == -1)
		return -1;
	for (uint32_t i = 0; i < seg.nslots && n < max; i++) {
		const struct stats_slot *s = &seg.slots[i];
		uint32_t st = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);

		if (st != STATS_SLOT_RUNNING && st != STATS_SLOT_DRAINING)
			continue;
		v[n].pid = s->pid;
		v[n].state = st;
		v[n].generation = s->generation;
		v[n].accepted = __atomic_load_n(&s->c.accepted, __ATOMIC_RELAXED);
		v[n].refused = __atomic_load_n(&s->c.refused, __ATOMIC_RELAXED);
		v[n].active = __atomic_load_n(&s->c.active, __ATOMIC_RELAXED);
		v[n].bufs_used = __atomic_load_n(&s->c.pool_buffers_used, __ATOMIC_RELAXED);
		v[n].sess_used = __atomic_load_n(&s->c.pool_sessions_used, __ATOMIC_RELAXED);
		n++;
	}
	stats_detach(&seg);
	return n;
}

/* Descriptors of pid: pipes (the worker's idle pipe cache, RELAY_IDLE_PIPES
 * pairs at most, may legitimately stay) and everything else. -1 if gone. */
static int
fd_census(pid_t pid, int *pipes, int *others)
{
	char path[64], link[PATH_MAX], target[128];
	struct dirent *e;
	DIR *d;

	*pipes = *others = 0;
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	if ((d = opendir(path)) == NULL)
		return -1;
	while ((e = readdir(d)) != NULL) {
		ssize_t n;

		if (e->d_name[0] == '.')
			continue;
		snprintf(link, sizeof(link), "%s/%s", path, e->d_name);
		n = readlink(link, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = '\0';
		if (strncmp(target, "pipe:", 5) == 0)
			(*pipes)++;
		else
			(*others)++;
	}
	closedir(d);
	return 0;
}

static int
is_child_of(pid_t pid, pid_t parent)
{
	pid_t kids[256];
	int n = h_children(parent, kids, 256);

	for (int i = 0; i < n && i < 256; i++)
		if (kids[i] == pid)
			return 1;
	return 0;
}

/* State letter of pid from /proc/PID/stat, or 0 when it is gone. */
static char
proc_state(pid_t pid)
{
	char path[64], *text, *p, st = 0;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((text = h_read_file(path)) == NULL)
		return 0;
	if ((p = strrchr(text, ')')) != NULL && p[1] == ' ')
		st = p[2];
	free(text);
	return st;
}

/* Sessions a killed worker leaves open are never closed by it: the master
 * counts them as closed_lost when it folds the slot. Each kill stops the
 * worker first and reads its slot, so that the end can require closed_lost
 * to be exactly what the kills cut. */
static uint64_t killed_open;
static int killed_inexact;

static void
kill_random_worker(void)
{
	struct wview v[64];
	int n = slots_read(v, 64), running = 0, pick;
	uint64_t end;
	pid_t pid = 0;

	if (n <= 0 || nkills >= SOAK_MAX_KILLS)
		return;
	/* Running or draining after a reload: a worker killed mid-drain
	 * must cost only its own sessions too. */
	for (int i = 0; i < n; i++)
		running += v[i].state == STATS_SLOT_RUNNING || v[i].state == STATS_SLOT_DRAINING;
	if (running == 0)
		return;
	pick = (int)(rnd() % (uint64_t)running);
	for (int i = 0; i < n && pid == 0; i++)
		if ((v[i].state == STATS_SLOT_RUNNING || v[i].state == STATS_SLOT_DRAINING) &&
		    pick-- == 0)
			pid = v[i].pid;
	if (pid <= 0 || !is_child_of(pid, master_pid))
		return;
	kill_ms[nkills] = h_now_ms();
	kill_pid[nkills++] = pid;
	kill(pid, SIGSTOP);
	end = h_now_ms() + 1000;
	while (proc_state(pid) != 'T' && h_now_ms() < end)
		h_nap(1);
	if (proc_state(pid) != 'T')
		killed_inexact = 1;
	{
		struct stats_seg seg;
		char err[256];
		int found = 0;

		if (stats_attach(&seg, h_statsfile(), err, sizeof(err)) == 0) {
			for (uint32_t i = 0; i < seg.nslots; i++) {
				const struct stats_slot *sl = &seg.slots[i];

				if (sl->pid != pid || sl->state == STATS_SLOT_FREE)
					continue;
				/* Came by accept or hand-off, left by close or
				 * hand-off: the rest the master counts lost. */
				killed_open += sl->c.accepted + sl->c.handed_in - sl->c.closed -
				               sl->c.handed_out;
				found = 1;
				break;
			}
			stats_detach(&seg);
		}
		if (!found)
			killed_inexact = 1;
	}
	kill(pid, SIGKILL);
}

/* Lines of the master's log that say a worker died, whose pid is not one we
 * killed. Prints them; returns how many. */
static int
unexpected_deaths(const char *log)
{
	static const char *const marks[] = {
	    "killed by signal", "exited with status", "is stuck", "health checker"};
	char *text = h_read_file(log), *line, *save = NULL;
	int bad = 0;

	if (text == NULL)
		return 1;
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		const char *p;
		int mine = 0, hit = 0;
		long pid;

		for (unsigned m = 0; m < sizeof(marks) / sizeof(marks[0]); m++)
			hit |= strstr(line, marks[m]) != NULL;
		if (!hit)
			continue;
		if ((p = strstr(line, "(pid ")) != NULL && strstr(line, "signal 9") != NULL) {
			pid = strtol(p + 5, NULL, 10);
			for (int i = 0; i < nkills; i++)
				mine |= kill_pid[i] == (pid_t)pid;
		}
		if (!mine && bad++ < 10)
			diag("  %s", line);
	}
	free(text);
	return bad;
}

static int
sanitizer_report(const char *log)
{
	static const char *const marks[] = {
	    "AddressSanitizer", "LeakSanitizer", "UndefinedBehaviorSanitizer", "runtime error:"};
	char *text = h_read_file(log);
	int found = 0;

	for (unsigned i = 0; text && i < sizeof(marks) / sizeof(marks[0]); i++)
		if (strstr(text, marks[i]) != NULL) {
			diag("  %s in %s", marks[i], log);
			found = 1;
		}
	free(text);
	return found;
}

/* A fresh client through the echo listener: connected, 64 verified bytes
 * back, then EOF, all within 1 s. Returns 0, or -1. */
static int
fresh_client(uint32_t id)
{
	struct cmd cmd = {CMD_MAGIC, M_ECHO, id, 0, 64};
	unsigned char out[sizeof(cmd) + 64], in[128], want[64];
	uint64_t end = h_now_ms() + 1000;
	size_t got = 0;
	int fd = h_connect(lport_echo, 1000), r = -1;

	if (fd == -1)
		return -1;
	memcpy(out, &cmd, sizeof(cmd));
	payload(id, 0, out + sizeof(cmd), 64);
	payload(id, 0, want, 64);
	if (send(fd, out, sizeof(out), MSG_NOSIGNAL) != (ssize_t)sizeof(out) ||
	    shutdown(fd, SHUT_WR) == -1)
		goto out;
	while (h_now_ms() < end) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t n;

		if (poll(&p, 1, (int)(end - h_now_ms())) <= 0)
			continue;
		n = recv(fd, in + got, sizeof(in) - got, MSG_DONTWAIT);
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0) {
			r = n == 0 && got == 64 && memcmp(in, want, 64) == 0 ? 0 : -1;
			break;
		}
		got += (size_t)n;
		if (got > 64)
			break;
	}
out:
	close(fd);
	return r;
}

/* ---- the machine's TCP memory ------------------------------------------------ */

/* Pages of TCP memory in use on the machine (/proc/net/sockstat), or 0. */
static long
tcp_mem_pages(void)
{
	char *text = h_read_file("/proc/net/sockstat"), *p;
	long pages = 0;

	if (text != NULL && (p = strstr(text, "TCP: ")) != NULL && (p = strstr(p, " mem ")) != NULL)
		pages = strtol(p + 5, NULL, 10);
	free(text);
	return pages;
}

/* The kernel's "memory pressure" threshold (tcp_mem's first figure), or 0. */
static long
tcp_mem_low(void)
{
	char *text = h_read_file("/proc/sys/net/ipv4/tcp_mem");
	long low = text ? strtol(text, NULL, 10) : 0;

	free(text);
	return low;
}

/* Connections the kernel reset for want of memory (TcpExt
 * TCPAbortOnMemory), machine-wide, or -1. */
static long
tcp_aborts_on_memory(void)
{
	char *text = h_read_file("/proc/net/netstat"), *names, *values, *save1, *save2, *n, *v;
	long found = -1;

	if (text == NULL || (names = strstr(text, "TcpExt: ")) == NULL ||
	    (values = strstr(names + 1, "TcpExt: ")) == NULL) {
		free(text);
		return -1;
	}
	*strchr(names, '\n') = '\0';
	if (strchr(values, '\n') != NULL)
		*strchr(values, '\n') = '\0';
	for (n = strtok_r(names + 8, " ", &save1), v = strtok_r(values + 8, " ", &save2);
	     n != NULL && v != NULL;
	     n = strtok_r(NULL, " ", &save1), v = strtok_r(NULL, " ", &save2))
		if (strcmp(n, "TCPAbortOnMemory") == 0)
			found = strtol(v, NULL, 10);
	free(text);
	return found;
}

/* ---- main ------------------------------------------------------------------ */

/*
 * sluiced with a descriptor limit of SOAK_NOFILE, soft and hard (it raises
 * its soft limit to the hard one), which the master and every worker it ever
 * forks inherit. Through sh's ulimit, so that the test's own limit stays
 * high for its clients. Started through the harness, which stops it at exit.
 */
static pid_t
sluiced_start(void)
{
	char script[64];
	char *argv[] = {
	    "/bin/sh", "-c", script, (char *)h_sluiced(), "-f", "-c", (char *)conf_path, NULL};
	uint64_t end = h_now_ms() + 20000;
	pid_t pid;

	snprintf(script, sizeof(script), "ulimit -n %d && exec \"$0\" \"$@\"", SOAK_NOFILE);
	pid = h_spawn(argv, h_path("sluiced.log"));
	while (h_now_ms() < end) {
		if (!h_alive(pid))
			break;
		if (h_stats_running(NULL, 0, 0) >= SOAK_WORKERS &&
		    h_wait_listening(lport_echo, 100) == 0 &&
		    h_wait_listening(lport_proxy, 100) == 0 &&
		    h_wait_listening(lport_bad, 100) == 0)
			return pid;
		h_nap(50);
	}
	bail("sluiced did not start (see %s)", h_path("sluiced.log"));
}

static void
usage(void)
{
	fprintf(stderr, "usage: soak [--seed N] [--seconds N | --minutes N]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	long seconds = 60;
	int have_seed = 0, base_others = -1, variant = 0, stopped = -1, profile = 0, storm;
	uint64_t t0, end_load, next_reload, next_kill, next_stop, cont_at = 0, next_hold, now;
	uint64_t next_target, target = 40, last_report, next_mem = 0;
	long mem_low = tcp_mem_low(), mem_max = 0, aborts0 = tcp_aborts_on_memory(), aborts;
	int tcp_heavy = 0;
	struct stats_counters tot;
	struct wview v[64];
	int bports[2], bkinds[2];
	const char *log;
	pid_t master;
	int st, nv;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
			soak_seed = strtoull(argv[++i], NULL, 10);
			have_seed = 1;
		} else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
			seconds = strtol(argv[++i], NULL, 10);
		} else if (strcmp(argv[i], "--minutes") == 0 && i + 1 < argc) {
			seconds = 60 * strtol(argv[++i], NULL, 10);
		} else {
			usage();
		}
	}
	if (seconds < 5)
		seconds = 5;
	if (!have_seed) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		soak_seed =
		    (mix64((uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32)) % 1000000000ULL);
	}
	rng_state = soak_seed;
	printf("# seed %llu (reproduce the mix: tests/soak --seed %llu --seconds %ld)\n",
	    (unsigned long long)soak_seed, (unsigned long long)soak_seed, seconds);
	fflush(stdout);
	/* The harness's watchdog (150 s) is for short tests: this one runs
	 * `seconds` plus at most about four minutes of checks. */
	alarm((unsigned)seconds + 300);

	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		bail("mmap: %s", strerror(errno));
	atexit(soak_cleanup);
	signal(SIGINT, soak_signal_cb);
	signal(SIGTERM, soak_signal_cb);
	for (int i = 0; i < SOAK_MAX_CLIENTS; i++)
		clients[i].fd = -1;

	lport_echo = h_free_port();
	lport_proxy = h_free_port();
	lport_bad = h_free_port();
	bport1 = h_free_port();
	bport2 = h_free_port();
	bport_close = h_free_port();
	bport_closed = h_free_port(); /* nothing ever listens there */
	bports[0] = bport1;
	bports[1] = bport_close;
	bkinds[0] = BL_CMD;
	bkinds[1] = BL_CLOSE;
	backends[0] = backend_start(bports, bkinds, 2, 16384);
	backends[1] = backend_start(&bport2, bkinds, 1, 16384);

	conf_path = h_path("soak.conf");
	conf_write(0);
	master = sluiced_start();
	master_pid = master;
	log = h_path("sluiced.log");

	/* Baseline: descriptors of an idle worker (pipes aside). */
	nv = slots_read(v, 64);
	for (int i = 0; i < nv; i++) {
		int pipes, others;

		if (fd_census(v[i].pid, &pipes, &others) == 0 &&
		    (base_others == -1 || others > base_others))
			base_others = others;
	}
	diag("baseline: %d descriptors (pipes aside) per idle worker; ports echo %d proxy %d "
	     "bad %d; backends %d %d close %d closed %d",
	    base_others, lport_echo, lport_proxy, lport_bad, bport1, bport2, bport_close,
	    bport_closed);

	if ((ep_clients = epoll_create1(EPOLL_CLOEXEC)) == -1)
		bail("epoll_create1: %s", strerror(errno));

	/* ---- the load: everything at once until end_load ---- */
	t0 = h_now_ms();
	end_load = t0 + (uint64_t)seconds * 1000;
	next_reload = t0 + rnd_in(1000, 4000);
	next_kill = t0 + rnd_in(2000, 6000);
	next_stop = t0 + rnd_in(1000, 5000);
	next_hold = t0 + rnd_in(500, 3000);
	next_target = t0;
	last_report = t0;
	while ((now = h_now_ms()) < end_load) {
		int spawned = 0;

		if (now >= next_mem) {
			long pages = tcp_mem_pages();

			tcp_heavy = mem_low > 0 && pages > mem_low / 3;
			if (pages > mem_max)
				mem_max = pages;
			next_mem = now + 250;
		}
		if (now >= next_target) {
			/* The weather changes every few seconds: a mix and a
			 * number of clients to keep open. */
			profile = (int)(rnd() % 3);
			target = profile == 1 ? rnd_in(60, 140) : rnd_in(20, 120);
			next_target = now + rnd_in(2000, 8000);
		}
		while (spawned < 8 && (uint64_t)(c_count(-1) - c_count(K_HOLD)) < target) {
			static const int mixes[3][K_HOLD] = {
			    /* verify noread reset fault proxybad badup (percent) */
			    {50, 10, 8, 12, 12, 8}, /* balanced */
			    {25, 55, 0, 20, 0, 0},  /* starve the pools */
			    {40, 0, 25, 0, 20, 15}, /* churn */
			};
			int r = (int)(rnd() % 100), k = 0;

			while (k < K_HOLD - 1 && r >= mixes[profile][k])
				r -= mixes[profile][k++];
			/* A good neighbour: past a third of the kernel's
			 * pressure mark, no new client that parks bytes in
			 * it. */
			if (tcp_heavy && (k == K_NOREAD || k == K_FAULT))
				k = K_VERIFY;
			c_start(k, now);
			spawned++;
		}
		if (now >= next_hold) {
			/* Enough idle clients to run the workers out of
			 * descriptors and into their connection limit; or a
			 * flood of unfinished PROXY headers, more than the
			 * workers have buffers. */
			int n = (int)rnd_in(100, 250);

			header_flood = rnd() % 2;
			if (header_flood)
				n = (int)rnd_in(120, 260);
			for (int i = 0; i < n; i++)
				c_start(K_HOLD, now);
			/* With the idle flood, verified clients whose PROXY
			 * headers end a few hundred ms later, when the
			 * workers' descriptors may have run out: each then
			 * waits for one to connect upstream, all at once. */
			if (!header_flood) {
				proxy_wave = 1;
				for (int i = (int)rnd_in(10, 40); i > 0; i--)
					c_start(K_VERIFY, now);
				proxy_wave = 0;
			}
			next_hold = now + rnd_in(2000, 6000);
		}
		/*
		 * Reload storms and kills come in 15 s spells with 15 s of calm
		 * between, and the last 15 s are calm: both replace workers,
		 * and a worker that lives through the load is what shows a
		 * pause never lifted or a session never closed.
		 */
		storm = ((now - t0) / 15000) % 2 == 0 && now + 15000 < end_load;
		if (storm && now >= next_reload) {
			int burst = (int)rnd_in(1, 5);

			for (int i = 0; i < burst; i++) {
				variant = !variant;
				conf_write(variant);
				kill(master, SIGHUP);
				if (i + 1 < burst)
					h_nap((int)rnd_in(1, 30));
			}
			next_reload = now + rnd_in(2000, 8000);
		}
		if (storm && now >= next_kill) {
			kill_random_worker();
			next_kill = now + rnd_in(3000, 9000);
		}
		if (stopped == -1 && now >= next_stop) {
			stopped = (int)(rnd() % 2);
			kill(backends[stopped], SIGSTOP);
			cont_at = now + rnd_in(200, 1500);
		}
		if (stopped != -1 && now >= cont_at) {
			kill(backends[stopped], SIGCONT);
			stopped = -1;
			next_stop = now + rnd_in(1000, 6000);
		}
		if (now - last_report >= 10000) {
			diag("t=%llus: %d clients open, %u verified good, %u cut by kills, %d "
			     "kills, "
			     "%u failures",
			    (unsigned long long)(now - t0) / 1000, c_count(-1), n_verified_good,
			    n_verified_cut, nkills, n_fail);
			last_report = now;
		}
		if (!h_alive(master))
			break;
		c_poll(20);
	}

	/* ---- the end of the load: faults stop, clients finish ---- */
	if (stopped != -1)
		kill(backends[stopped], SIGCONT);
	ok(h_alive(master), "sluiced's master survived the load");
	now = h_now_ms();
	for (int i = 0; i < SOAK_MAX_CLIENTS; i++) {
		struct client *c = &clients[i];

		if (!c->used)
			continue;
		if (c->kind != K_VERIFY)
			c_finish(c, O_DONE, NULL);
		else if (c->deadline > now + 60000)
			c->deadline = now + 60000;
	}
	while (c_count(K_VERIFY) > 0 && h_now_ms() < now + 61000)
		c_poll(50);
	for (int i = 0; i < K_NKINDS; i++)
		diag("%-8s clients: %u", kind_names[i], n_started[i]);
	aborts = tcp_aborts_on_memory();
	diag("machine TCP memory: at most %ld pages (pressure from %ld)", mem_max, mem_low);
	if (aborts > aborts0 && aborts0 >= 0)
		diag("the kernel reset %ld connections for want of TCP memory meanwhile (machine-"
		     "wide): streams it cut look like the daemon's doing",
		    aborts - aborts0);
	diag("verified streams: %u intact, %u cut by a worker kill, %u closed before a byte, "
	     "%u past the connect deadline waiting for a descriptor, %u starved of buffers; "
	     "%llu bytes checked; %d kills; %u malformed PROXY clients closed by the daemon",
	    n_verified_good, n_verified_cut, n_verified_refused, n_verified_fdwait,
	    n_verified_starved,
	    (unsigned long long)(verified_sent + verified_got), nkills, n_proxybad_closed);
	ok(n_fail == 0,
	    "no client got a wrong byte, and every verified stream not cut by a "
	    "kill completed intact (%u failures)",
	    n_fail);
	ok(n_verified_good > 0, "verified streams ran (%u)", n_verified_good);

	/* ---- the daemon comes back whole ---- */
	{
		uint64_t end = h_now_ms() + 90000;
		int draining;

		do {
			draining = 0;
			nv = slots_read(v, 64);
			for (int i = 0; i < nv; i++)
				draining += v[i].state == STATS_SLOT_DRAINING;
			if (draining == 0 && nv >= 0)
				break;
			h_nap(100);
		} while (h_now_ms() < end);
		ok(draining == 0, "old generations finished draining (%d left)", draining);
	}
	{
		uint64_t end = h_now_ms() + 30000;
		uint64_t gen;
		int running;

		do {
			gen = h_stats_generation();
			running = h_stats_running(NULL, 0, (uint32_t)gen);
			if (running == SOAK_WORKERS)
				break;
			h_nap(100);
		} while (h_now_ms() < end);
		is(running, SOAK_WORKERS,
		    "every worker of the current generation (%llu) is running",
		    (unsigned long long)gen);
	}
	{
		uint64_t end = h_now_ms() + 30000, active = UINT64_MAX;

		do {
			if (h_stats_total(&tot) == 0 && (active = tot.active) == 0)
				break;
			h_nap(100);
		} while (h_now_ms() < end);
		ok(active == 0, "every session closed: active total 0 (%llu)",
		    (unsigned long long)active);
	}
	{
		/* Per listener and per server: a count released without being
		 * taken, or taken and never released, shows here. */
		uint64_t end = h_now_ms() + 10000;
		int bad;

		do {
			struct stats_seg seg;
			struct stats_snapshot *snap = NULL;
			char err[256];

			int verbose = h_now_ms() + 250 >= end;

			bad = -1;
			if (stats_attach(&seg, h_statsfile(), err, sizeof(err)) == 0) {
				snap = stats_snapshot_create(&seg);
				stats_detach(&seg);
			}
			if (snap != NULL) {
				bad = 0;
				for (unsigned i = 0; i < snap->nlisteners; i++)
					if (snap->listeners[i].c.active != 0 && bad++ < 8 &&
					    verbose)
						diag("  listener %s: active %lld",
						    snap->listeners[i].entry.address,
						    (long long)snap->listeners[i].c.active);
				for (unsigned i = 0; i < snap->nservers; i++)
					if (snap->servers[i].c.active != 0 && bad++ < 8 && verbose)
						diag("  server %s/%s: active %lld",
						    snap->servers[i].entry.upstream,
						    snap->servers[i].entry.address,
						    (long long)snap->servers[i].c.active);
				stats_snapshot_destroy(snap);
			}
			if (bad == 0)
				break;
			h_nap(200);
		} while (h_now_ms() < end);
		ok(bad == 0, "every listener's and server's active count back to 0");
	}
	{
		/* Pool figures are published once a second. */
		uint64_t end = h_now_ms() + 15000;
		int busy;

		do {
			busy = 0;
			nv = slots_read(v, 64);
			for (int i = 0; i < nv; i++)
				busy += v[i].bufs_used != 0 || v[i].sess_used != 0;
			if (busy == 0 && nv > 0)
				break;
			h_nap(200);
		} while (h_now_ms() < end);
		for (int i = 0; busy && i < nv; i++)
			diag("  worker %d: %llu buffers, %llu sessions in use, %llu active",
			    (int)v[i].pid, (unsigned long long)v[i].bufs_used,
			    (unsigned long long)v[i].sess_used, (unsigned long long)v[i].active);
		ok(busy == 0 && nv > 0,
		    "every worker's pools back to 0 buffers and 0 sessions used");
	}
	{
		uint64_t end = h_now_ms() + 15000;
		int bad;

		do {
			bad = 0;
			nv = slots_read(v, 64);
			for (int i = 0; i < nv; i++) {
				int pipes, others;

				if (fd_census(v[i].pid, &pipes, &others) == -1)
					continue;
				if (others != base_others || pipes > 2 * SOAK_IDLE_PIPES)
					bad++;
			}
			if (bad == 0)
				break;
			h_nap(200);
		} while (h_now_ms() < end);
		for (int i = 0; bad && i < nv; i++) {
			int pipes, others;

			if (fd_census(v[i].pid, &pipes, &others) == 0)
				diag("  worker %d: %d descriptors besides %d pipe ends (baseline "
				     "%d)",
				    (int)v[i].pid, others, pipes, base_others);
		}
		ok(bad == 0,
		    "every worker's descriptors back to its baseline of %d (idle pipes "
		    "aside)",
		    base_others);
	}
	if (h_stats_total(&tot) == 0) {
		char line[2048];
		size_t len = 0;

		for (unsigned f = 0; f < stats_nfields; f++) {
			uint64_t val = stats_field_get(&tot, &stats_fields[f]);

			if (stats_fields[f].kind != STATS_COUNTER || val == 0 ||
			    len + 64 > sizeof(line))
				continue;
			len += (size_t)snprintf(line + len, sizeof(line) - len, " %s=%llu",
			    stats_fields[f].name, (unsigned long long)val);
		}
		diag("counters:%s", line);
	}
	if (h_stats_total(&tot) == 0) {
		/* Exact: every kind of client is counted by the daemon. A
		 * killed worker's open sessions are counted closed as lost
		 * when the master folds its slot; the kills read how many
		 * (kill_random_worker). */
		/* Sessions a reload handed from one worker to another count
		 * out of the one and into the other: a sender killed with some
		 * in flight has them counted lost although the receiver took
		 * them, so the balance holds with the hand-off counts in it. */
		if (!ok(tot.accepted + tot.handed_in == tot.closed + tot.handed_out + tot.active,
		        "totals consistent: accepted + handed_in = closed + handed_out + active"))
			diag("  accepted %llu, handed_in %llu, closed %llu, handed_out %llu, "
			     "active %llu",
			    (unsigned long long)tot.accepted, (unsigned long long)tot.handed_in,
			    (unsigned long long)tot.closed, (unsigned long long)tot.handed_out,
			    (unsigned long long)tot.active);
		if (killed_inexact)
			diag("a killed worker could not be read while stopped: the count of "
			     "sessions it left open may be off");
		if (!ok(killed_inexact ? tot.closed_by[STATS_CLOSE_LOST] >= killed_open
		                       : tot.closed_by[STATS_CLOSE_LOST] == killed_open,
		        "closed_lost counts the sessions the %d kills left open", nkills))
			diag("  closed_lost %llu, left open by the kills %llu",
			    (unsigned long long)tot.closed_by[STATS_CLOSE_LOST],
			    (unsigned long long)killed_open);
		/*
		 * Bytes: exact equality with what the clients sent and got is
		 * impossible (resets drop bytes in socket buffers, kills drop
		 * what a worker held), so bound the daemon's counts from both
		 * sides by what the clients and the backends saw. What sluiced
		 * relayed to servers it read from clients (PROXY headers are
		 * consumed, not relayed) and the backends read no more than
		 * that; what it relayed to clients it read from the backends,
		 * and the clients got no more than that.
		 */
		if (!ok(sh->rx <= tot.bytes_in && tot.bytes_in <= client_tx,
		        "bytes_in between what backends read and what clients sent"))
			diag("  backends read %llu, bytes_in %llu, clients sent %llu",
			    (unsigned long long)sh->rx, (unsigned long long)tot.bytes_in,
			    (unsigned long long)client_tx);
		if (!ok(client_rx <= tot.bytes_out && tot.bytes_out <= sh->tx,
		        "bytes_out between what clients got and what backends sent"))
			diag("  clients got %llu, bytes_out %llu, backends sent %llu",
			    (unsigned long long)client_rx, (unsigned long long)tot.bytes_out,
			    (unsigned long long)sh->tx);
		if (!ok(n_verified_refused <= tot.refused_by[STATS_REFUSE_NO_MEMORY],
		        "verified streams closed before any byte were refused for want of "
		        "memory (%u of them)",
		        n_verified_refused))
			diag("  but the daemon counts %llu such refusals",
			    (unsigned long long)tot.refused_by[STATS_REFUSE_NO_MEMORY]);
		if (!ok(n_verified_starved <= tot.closed_by[STATS_CLOSE_STARVED],
		        "verified streams starved past the idle deadline were closed as starved "
		        "(%u of them)",
		        n_verified_starved))
			diag("  but the daemon counts %llu",
			    (unsigned long long)tot.closed_by[STATS_CLOSE_STARVED]);
		if (!ok(n_verified_fdwait <= tot.closed_by[STATS_CLOSE_CONNECT_TIMEOUT],
		        "verified streams that waited for a descriptor past the connect deadline "
		        "were closed by it (%u of them)",
		        n_verified_fdwait))
			diag("  but the daemon counts %llu connect timeouts",
			    (unsigned long long)tot.closed_by[STATS_CLOSE_CONNECT_TIMEOUT]);
		ok(tot.bytes_in >= verified_sent && tot.bytes_out >= verified_got,
		    "bytes relayed cover the intact verified streams (%llu in >= %llu, %llu out "
		    ">= %llu)",
		    (unsigned long long)tot.bytes_in, (unsigned long long)verified_sent,
		    (unsigned long long)tot.bytes_out, (unsigned long long)verified_got);
	} else {
		ok(0, "stats segment readable");
	}
	{
		/* A fresh client is served within 1 s, on every worker: clients
		 * one at a time until each running worker's accepted moved
		 * for one that was served. */
		struct wview before[64], after[64];
		pid_t served[64], failed_pid[64];
		int nserved = 0, tries = 0, slow = 0, running, nfailed = 0, failed_n[64] = {0},
		    failed_refused[64] = {0};
		uint64_t end = h_now_ms() + 30000;

		running = h_stats_running(NULL, 0, (uint32_t)h_stats_generation());
		/* With accept_workers below the workers, only that many take
		 * fresh clients while none is full: each of them must. */
		if (variant && running > SOAK_ACCEPTING_B)
			running = SOAK_ACCEPTING_B;
		while (nserved < running && tries < 300 && h_now_ms() < end) {
			int nb = slots_read(before, 64), na, good;

			tries++;
			good = fresh_client(0x40000000u + (uint32_t)tries) == 0;
			slow += !good;
			h_nap(10);
			na = slots_read(after, 64);
			for (int i = 0; i < na; i++)
				for (int j = 0; j < nb; j++) {
					int k;

					if (after[i].pid != before[j].pid ||
					    after[i].accepted == before[j].accepted)
						continue;
					if (!good) {
						/* Which worker took it, and did it refuse? */
						for (k = 0;
						     k < nfailed && failed_pid[k] != after[i].pid;
						     k++)
							;
						if (k == nfailed && nfailed < 64)
							failed_pid[nfailed++] = after[i].pid;
						if (k < 64) {
							failed_n[k]++;
							failed_refused[k] +=
							    after[i].refused != before[j].refused;
						}
						continue;
					}
					for (k = 0; k < nserved && served[k] != after[i].pid; k++)
						;
					if (k == nserved && nserved < 64)
						served[nserved++] = after[i].pid;
				}
		}
		for (int k = 0; k < nfailed; k++)
			diag("  worker %d took %d fresh clients that were not served, and refused "
			     "%d "
			     "of them (its connection log says why)",
			    (int)failed_pid[k], failed_n[k], failed_refused[k]);
		ok(slow == 0, "every fresh client served within 1 s (%d of %d were not)", slow,
		    tries);
		ok(running > 0 && nserved >= running,
		    "fresh clients reached every running worker whose turn it is (%d of %d, %d "
		    "clients)", nserved,
		    running, tries);
	}
	{
		int bad = unexpected_deaths(log);

		ok(bad == 0, "no worker died but the %d the soak killed (%d other deaths)", nkills,
		    bad);
	}
	ok(sh->corrupt == 0 && sh->badhdr == 0,
	    "backends got every byte as sent (%llu wrong, %llu bad commands)",
	    (unsigned long long)sh->corrupt, (unsigned long long)sh->badhdr);
	for (int i = 0; i < 4 && i < (int)sh->corrupt; i++)
		diag("  %s", sh->corrupt_why[i]);
	{
		/* A shut-first stream whose backend saw a clean EOF before all
		 * the payload lost bytes, unless a kill cut it. Its session can
		 * outlive its client: the client leaves once it has sent all
		 * and read the server's part, while the worker may still be
		 * relaying the rest to the backend. So a kill up to the
		 * backend's EOF counts, not only one up to the client's end. */
		int lost = 0;

		for (uint64_t i = 0; i < sh->shortn && i < 256; i++) {
			uint32_t id = sh->short_ids[i];
			uint64_t end = id < nspans ? spans[id][1] : 0;

			if (end != 0 && sh->short_ms[i] > end)
				end = sh->short_ms[i];
			if (id >= nspans || spans[id][0] == 0 || !kill_overlaps(spans[id][0], end)) {
				if (lost++ < 10) {
					uint64_t from = id < nspans ? spans[id][0] : 0, near = 0;

					for (int k = 0; k < nkills; k++)
						if (near == 0 || (kill_ms[k] > sh->short_ms[i]
						                         ? kill_ms[k] - sh->short_ms[i]
						                         : sh->short_ms[i] - kill_ms[k]) <
						                     (near > sh->short_ms[i]
						                         ? near - sh->short_ms[i]
						                         : sh->short_ms[i] - near))
							near = kill_ms[k];
					diag("  shut-first stream %u: backend saw EOF before all the "
					     "payload (client from %+lld to %+lld ms, backend EOF at "
					     "%+lld ms, nearest kill at %+lld ms)",
					    id, 0LL,
					    id < nspans && spans[id][1] ? (long long)(spans[id][1] - from)
					                                : -1LL,
					    (long long)(sh->short_ms[i] - from),
					    near ? (long long)near - (long long)from : 0LL);
				}
			}
		}
		ok(lost == 0, "backends of shut-first streams got all the payload (%d short)",
		    lost);
	}
	ok(!sanitizer_report(log), "no sanitizer report in sluiced's log");

	kill(master, SIGTERM);
	st = -1;
	if (h_wait_exit(master, 30000, &st) == 0)
		master_pid = 0;
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "sluiced stopped cleanly (status %d)", st);
	soak_cleanup();
	done_testing();
	return tap_exit();
}
