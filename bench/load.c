/* SPDX-License-Identifier: BSD-2-Clause */
/* load.c — the benchmark load generator: `load MODE -a HOST:PORT ...` opens
 * TCP connections to a proxy (or straight to bench/backend) and measures one
 * workload: hold (many idle connections, each verified by an echo when opened
 * and again at the end), rr (request/response latency and rate), cps (new
 * connections per second) or bulk (streams of verified bytes). Each process is
 * one epoll loop with no threads; the run splits across processes when one
 * process has too few descriptors. It only ever connects to the addresses it
 * is given, and every phase is bounded by a deadline. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
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

#include "pattern.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define LOAD_MAX_TARGETS 64
#define LOAD_MAX_PROCS 128
#define LOAD_EVENTS 512
#define LOAD_FD_RESERVE 64      /* descriptors a process keeps for itself */
#define LOAD_HOLD_PER_PROC 9000 /* default cap of hold connections per process */
#define LOAD_WINDOW 128         /* connects or round trips in flight per process (hold) */
#define LOAD_GRACE_NS (5 * NS)  /* replies still awaited after a run's end */
#define LOAD_BULK_CHUNK (256 * 1024)
#define LOAD_REPORT 64 /* room for the sink's report line */
#define NS 1000000000ULL

/* Latency histogram, log-linear like HdrHistogram: values below 128 ns are
 * exact, above that each power of two is split into 64 buckets (1.6%
 * resolution), up to 2^40 ns. A fixed array: recording is an index and an
 * increment, nothing is allocated per request. */
#define HIST_SUB 64
#define HIST_MAX_SHIFT 34
#define HIST_BUCKETS ((HIST_MAX_SHIFT + 2) * HIST_SUB)
#define HIST_MAX_VALUE ((1ULL << 40) - 1)

enum mode { MODE_HOLD, MODE_RR, MODE_CPS, MODE_BULK };
static const char *const mode_names[] = {"hold", "rr", "cps", "bulk"};

struct opts {
	enum mode mode;
	struct sockaddr_in targets[LOAD_MAX_TARGETS];
	int ntargets;
	struct in_addr src_first; /* first source address, host order in .s_addr */
	int nsrc;                 /* 0: let the kernel choose */
	int procs;                /* 0: as few as the descriptors allow */
	long conns;               /* hold: N; rr, cps: in flight; bulk: streams */
	double secs;              /* rr, cps: run time; hold: time held without -w */
	long mib;                 /* bulk: MiB per stream */
	int msglen;               /* rr, cps, hold: bytes per message */
	int wait_stdin;           /* hold: wait for a line on stdin before the end check */
	double timeout;           /* seconds for the whole run */
	int sink;                 /* bulk: 1 = the backend checks and reports, 0 = echo */
	int per_proc;             /* hold: connections per process at most */
	int window;               /* hold: connects/round trips in flight per process */
	int quiet;
};

/* One per process, in memory shared with the parent, which sums them. */
struct result {
	uint64_t conns;         /* connections (or slots) given to this process */
	uint64_t opened;        /* connects that succeeded */
	uint64_t verified_open; /* hold: first echo right */
	uint64_t verified_end;  /* hold: final echo right; bulk: streams verified */
	uint64_t ops;           /* rr: round trips; cps: connections completed */
	uint64_t bytes;         /* bulk: payload bytes verified */
	uint64_t errors;        /* failed connects, resets, timeouts */
	uint64_t bad;           /* bytes that came back wrong */
	uint64_t t_setup_ns, t_ready_ns, t_go_ns, t_end_ns;
	char first_error[160];
	uint32_t hist[HIST_BUCKETS];
};

enum cstate { ST_NONE, ST_CONNECTING, ST_SEND, ST_RECV, ST_IDLE, ST_BULK, ST_DONE };

struct conn {
	int fd;
	uint8_t state;   /* enum cstate */
	uint8_t inwin;   /* counted in proc.active */
	uint8_t shut;    /* bulk: our FIN is sent */
	uint32_t id;     /* global: picks the source address, target and content */
	uint32_t txoff;  /* bytes of this request sent */
	uint32_t rxoff;  /* bytes of this reply (or sink report) received */
	uint64_t seq;    /* request number on this connection */
	uint64_t t0;     /* ns: request sent (rr) or connect started (cps) */
	uint64_t tx, rx; /* bulk: stream bytes sent, received (header included) */
};

enum phase { PH_SETUP, PH_WAIT, PH_RUN, PH_OVER };

struct proc {
	const struct opts *o;
	struct result *r;
	struct conn *c;
	uint32_t n;      /* connections of this process */
	uint32_t first;  /* global id of c[0] */
	uint32_t idstep; /* cps: ids of new connections advance by this */
	uint8_t *rx;     /* n slots of rxlen bytes: replies being assembled */
	uint32_t rxlen;
	uint8_t *msg; /* scratch: the expected message */
	uint8_t *big; /* bulk: receive buffer */
	int ep, ctl, ready_fd;
	enum phase phase;
	uint32_t next;   /* next connection a phase starts */
	uint32_t active; /* connections counted against the window */
	uint32_t live;   /* run phase: connections not finished */
	uint64_t now, end, phase_deadline, deadline;
	uint64_t payload; /* bulk: bytes per stream */
};

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS + (uint64_t)ts.tv_nsec;
}

static unsigned
hist_index(uint64_t v)
{
	unsigned msb, shift;

	if (v > HIST_MAX_VALUE)
		v = HIST_MAX_VALUE;
	if (v < 2 * HIST_SUB)
		return (unsigned)v;
	msb = 63u - (unsigned)__builtin_clzll(v);
	shift = msb - 6;
	return (shift + 1) * HIST_SUB + (unsigned)(v >> shift) - HIST_SUB;
}

/* The middle of the values bucket i holds. */
static uint64_t
hist_value(unsigned i)
{
	unsigned shift;

	if (i < 2 * HIST_SUB)
		return i;
	shift = i / HIST_SUB - 1;
	return ((uint64_t)(i % HIST_SUB + HIST_SUB) << shift) + ((1ULL << shift) >> 1);
}

/* The value at quantile q (0..1) of n recorded values. */
static uint64_t
hist_quantile(const uint64_t *h, uint64_t n, double q)
{
	uint64_t want = (uint64_t)(q * (double)n + 0.999999), seen = 0;

	if (n == 0)
		return 0;
	if (want < 1)
		want = 1;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += h[i];
		if (seen >= want)
			return hist_value(i);
	}
	return hist_value(HIST_BUCKETS - 1);
}

/* The message of request seq on connection id: every byte depends on both,
 * so a reply that belongs to another connection or request is caught. */
static void
msg_fill(uint8_t *p, int len, uint32_t id, uint64_t seq)
{
	uint64_t x = ((uint64_t)id << 32 | 0x9e37u) ^ (seq * 0x2545f4914f6cdd1dULL);

	for (int i = 0; i < len; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(p + i, &x, (size_t)(len - i < 8 ? len - i : 8));
	}
}

static void
note_error(struct proc *p, const char *what, int err)
{
	struct result *r = p->r;

	if (r->first_error[0] == '\0')
		snprintf(r->first_error, sizeof(r->first_error), "%s: %s", what,
		    err ? strerror(err) : "failed");
}

static void
conn_close(struct proc *p, struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->state = ST_DONE;
	if (c->inwin) {
		c->inwin = 0;
		p->active--;
	}
}

/* Counted in proc.live: a run-phase connection of rr, cps or bulk that has
 * not finished yet. */
static int
conn_is_live(const struct proc *p, const struct conn *c)
{
	return p->phase == PH_RUN && p->o->mode != MODE_HOLD && c->state != ST_DONE &&
	       c->state != ST_IDLE && c->state != ST_NONE;
}

static void
conn_fail(struct proc *p, struct conn *c, const char *what, int err)
{
	p->r->errors++;
	note_error(p, what, err);
	if (conn_is_live(p, c))
		p->live--;
	conn_close(p, c);
}

static void
conn_bad(struct proc *p, struct conn *c, const char *what)
{
	p->r->bad++;
	if (p->r->first_error[0] == '\0')
		snprintf(p->r->first_error, sizeof(p->r->first_error), "%s", what);
	if (conn_is_live(p, c))
		p->live--;
	conn_close(p, c);
}

/* Start a non-blocking connect for c (socket, source address, connect,
 * epoll). Returns 0, or -1 after counting the failure. */
static int
conn_open(struct proc *p, struct conn *c)
{
	const struct opts *o = p->o;
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET};
	const struct sockaddr_in *to = &o->targets[c->id % (uint32_t)o->ntargets];
	int one = 1, fd;

	c->state = ST_CONNECTING;
	c->txoff = c->rxoff = 0;
	c->tx = c->rx = 0;
	c->seq = 0;
	c->shut = 0;
	c->fd = fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		conn_fail(p, c, "socket", errno);
		return -1;
	}
	if (o->nsrc > 0) {
		struct sockaddr_in from = {.sin_family = AF_INET};

		/* The port is chosen at connect, by the whole 4-tuple: that is
		 * what lets each source address reach the full port range. */
		from.sin_addr.s_addr = htonl(o->src_first.s_addr + c->id % (uint32_t)o->nsrc);
		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		if (bind(fd, (struct sockaddr *)&from, sizeof(from)) == -1) {
			conn_fail(p, c, "bind", errno);
			return -1;
		}
	}
	if (o->mode == MODE_RR)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (const struct sockaddr *)to, sizeof(*to)) == -1 && errno != EINPROGRESS) {
		conn_fail(p, c, "connect", errno);
		return -1;
	}
	ev.data.u64 = (uint64_t)(c - p->c);
	if (epoll_ctl(p->ep, EPOLL_CTL_ADD, fd, &ev) == -1) {
		conn_fail(p, c, "epoll_ctl", errno);
		return -1;
	}
	return 0;
}

static void req_send(struct proc *p, struct conn *c);

static void
req_start(struct proc *p, struct conn *c)
{
	c->state = ST_SEND;
	c->txoff = c->rxoff = 0;
	c->t0 = p->now;
	req_send(p, c);
}

static void
req_send(struct proc *p, struct conn *c)
{
	int len = p->o->msglen;
	ssize_t n;

	msg_fill(p->msg, len, c->id, c->seq);
	n = send(c->fd, p->msg + c->txoff, (size_t)len - c->txoff, MSG_NOSIGNAL);
	if (n == -1) {
		if (errno != EAGAIN)
			conn_fail(p, c, "send", errno);
		return;
	}
	c->txoff += (uint32_t)n;
	if (c->txoff == (uint32_t)len)
		c->state = ST_RECV;
}

/* Read what there is of the reply. Returns 1 when the whole reply is in and
 * right, 0 when more must come, -1 after the connection was failed. */
static int
req_recv(struct proc *p, struct conn *c)
{
	int len = p->o->msglen;
	uint8_t *rx = p->rx + (size_t)(c - p->c) * p->rxlen;

	while (c->rxoff < (uint32_t)len) {
		ssize_t n = recv(c->fd, rx + c->rxoff, (size_t)len - c->rxoff, 0);

		if (n == 0) {
			conn_fail(p, c, "reply", ECONNRESET);
			return -1;
		}
		if (n == -1) {
			if (errno == EAGAIN)
				return 0;
			conn_fail(p, c, "recv", errno);
			return -1;
		}
		c->rxoff += (uint32_t)n;
	}
	msg_fill(p->msg, len, c->id, c->seq);
	if (memcmp(rx, p->msg, (size_t)len) != 0) {
		conn_bad(p, c, "an echo came back different");
		return -1;
	}
	return 1;
}

static void
hist_add(struct proc *p, uint64_t ns)
{
	p->r->hist[hist_index(ns)]++;
}

/* Hold and setup: start connects (hold: and round trips) up to the window. */
static void
launch_more(struct proc *p)
{
	while (p->active < (uint32_t)p->o->window && p->next < p->n) {
		struct conn *c = &p->c[p->next++];

		if (p->phase == PH_SETUP) {
			c->inwin = 1;
			p->active++;
			conn_open(p, c);
		} else if (c->state == ST_IDLE) {
			/* Hold, at the end: the second round trip. */
			c->inwin = 1;
			p->active++;
			c->seq = 1;
			req_start(p, c);
		}
	}
}

static void
bulk_send(struct proc *p, struct conn *c)
{
	uint64_t total = PATTERN_HDR + p->payload;
	uint8_t hdr[PATTERN_HDR];

	while (c->tx < total) {
		const uint8_t *src;
		size_t len;
		ssize_t n;

		if (c->tx < PATTERN_HDR) {
			pattern_header(hdr, c->id, p->payload);
			src = hdr + c->tx;
			len = PATTERN_HDR - (size_t)c->tx;
		} else {
			src = pattern_at(c->id, c->tx - PATTERN_HDR, &len);
			if (len > total - c->tx)
				len = (size_t)(total - c->tx);
			if (len > LOAD_BULK_CHUNK)
				len = LOAD_BULK_CHUNK;
		}
		n = send(c->fd, src, len, MSG_NOSIGNAL);
		if (n == -1) {
			if (errno != EAGAIN)
				conn_fail(p, c, "send", errno);
			return;
		}
		c->tx += (uint64_t)n;
	}
	if (!c->shut) {
		c->shut = 1;
		shutdown(c->fd, SHUT_WR);
	}
}

static void
bulk_done(struct proc *p, struct conn *c)
{
	uint8_t *rx = p->rx + (size_t)(c - p->c) * p->rxlen;
	char want[LOAD_REPORT];

	if (p->o->sink) {
		rx[c->rxoff] = '\0';
		snprintf(want, sizeof(want), "ok %llu\n", (unsigned long long)p->payload);
		if (strcmp((char *)rx, want) != 0) {
			char why[LOAD_REPORT + 32];

			snprintf(why, sizeof(why), "sink reported %.*s",
			    (int)strcspn((char *)rx, "\n"), (char *)rx);
			conn_bad(p, c, why);
			return;
		}
	} else if (c->rx != PATTERN_HDR + p->payload) {
		conn_bad(p, c, "echo stream came back short");
		return;
	}
	if (c->tx != PATTERN_HDR + p->payload) {
		conn_fail(p, c, "stream", EPIPE);
		return;
	}
	p->r->verified_end++;
	p->r->bytes += p->payload;
	p->live--;
	conn_close(p, c);
}

static void
bulk_recv(struct proc *p, struct conn *c)
{
	uint8_t *rx = p->rx + (size_t)(c - p->c) * p->rxlen;
	uint8_t hdr[PATTERN_HDR];

	for (;;) {
		ssize_t n;

		if (p->o->sink) {
			if (c->rxoff >= LOAD_REPORT - 1) {
				conn_bad(p, c, "sink report too long");
				return;
			}
			n = recv(c->fd, rx + c->rxoff, LOAD_REPORT - 1 - c->rxoff, 0);
		} else {
			n = recv(c->fd, p->big, LOAD_BULK_CHUNK, 0);
		}
		if (n == -1) {
			if (errno != EAGAIN)
				conn_fail(p, c, "recv", errno);
			return;
		}
		if (n == 0) {
			bulk_done(p, c);
			return;
		}
		if (p->o->sink) {
			c->rxoff += (uint32_t)n;
			continue;
		}
		/* Echo: what comes back must be exactly what went out. */
		{
			const uint8_t *q = p->big;
			size_t left = (size_t)n;

			if (c->rx + left > PATTERN_HDR + p->payload) {
				conn_bad(p, c, "echo stream came back too long");
				return;
			}
			if (c->rx < PATTERN_HDR) {
				size_t h = PATTERN_HDR - (size_t)c->rx;

				if (h > left)
					h = left;
				pattern_header(hdr, c->id, p->payload);
				if (memcmp(q, hdr + c->rx, h) != 0) {
					conn_bad(p, c, "echo stream header came back different");
					return;
				}
				c->rx += h;
				q += h;
				left -= h;
			}
			if (left > 0 && pattern_check(c->id, c->rx - PATTERN_HDR, q, left) != 0) {
				conn_bad(p, c, "echo stream came back different");
				return;
			}
			c->rx += left;
		}
	}
}

/* A connect completed. */
static void
on_connected(struct proc *p, struct conn *c)
{
	p->r->opened++;
	switch (p->o->mode) {
	case MODE_HOLD:
	case MODE_CPS:
		req_start(p, c);
		break;
	case MODE_RR:
	case MODE_BULK:
		/* Connected is all a setup wants; the run starts at "go". */
		c->state = ST_IDLE;
		c->inwin = 0;
		p->active--;
		break;
	}
}

/* A reply came back right. */
static void
on_reply(struct proc *p, struct conn *c)
{
	struct result *r = p->r;

	switch (p->o->mode) {
	case MODE_HOLD:
		if (c->seq == 0) {
			r->verified_open++;
			c->state = ST_IDLE;
			c->inwin = 0;
			p->active--;
		} else {
			r->verified_end++;
			conn_close(p, c);
		}
		break;
	case MODE_RR:
		r->ops++;
		hist_add(p, p->now - c->t0);
		if (p->now < p->end) {
			c->seq++;
			req_start(p, c);
		} else {
			p->live--;
			conn_close(p, c);
		}
		break;
	case MODE_CPS:
		r->ops++;
		hist_add(p, p->now - c->t0);
		conn_close(p, c);
		if (p->now < p->end) {
			c->id += p->idstep;
			c->t0 = p->now;
			conn_open(p, c);
		} else {
			p->live--;
		}
		break;
	case MODE_BULK:
		break;
	}
}

static int
sock_error(int fd)
{
	int err = 0;
	socklen_t len = sizeof(err);

	getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
	return err ? err : ECONNREFUSED;
}

static void
conn_event(struct proc *p, struct conn *c, uint32_t ev)
{
	switch (c->state) {
	case ST_CONNECTING:
		if (ev & (EPOLLERR | EPOLLHUP)) {
			conn_fail(p, c, "connect", sock_error(c->fd));
			return;
		}
		if (!(ev & EPOLLOUT))
			return;
		on_connected(p, c);
		if (c->state != ST_RECV || !(ev & EPOLLIN))
			return;
		break;
	case ST_SEND:
		req_send(p, c);
		if (c->state != ST_RECV || !(ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
			return;
		break;
	case ST_RECV:
		break;
	case ST_IDLE:
		/* Nothing may arrive on a connection at rest. */
		if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
			conn_fail(p, c, "idle connection",
			    ev & EPOLLERR ? sock_error(c->fd) : ECONNRESET);
		return;
	case ST_BULK:
		if (ev & EPOLLOUT)
			bulk_send(p, c);
		if (c->state == ST_BULK && (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
			bulk_recv(p, c);
		return;
	default:
		return;
	}
	if (req_recv(p, c) == 1)
		on_reply(p, c);
}

/* "go" from the parent: the measured part starts. */
static void
run_start(struct proc *p)
{
	const struct opts *o = p->o;

	p->phase = PH_RUN;
	p->r->t_go_ns = p->now;
	p->end = p->now + (uint64_t)(o->secs * (double)NS);
	p->phase_deadline =
	    o->mode == MODE_RR || o->mode == MODE_CPS ? p->end + LOAD_GRACE_NS : p->deadline;
	if (p->phase_deadline > p->deadline)
		p->phase_deadline = p->deadline;
	p->live = 0;
	p->next = 0;
	for (uint32_t i = 0; i < p->n; i++) {
		struct conn *c = &p->c[i];

		switch (o->mode) {
		case MODE_HOLD:
			break;
		case MODE_RR:
			if (c->state == ST_IDLE) {
				p->live++;
				req_start(p, c);
			}
			break;
		case MODE_CPS:
			p->live++;
			c->t0 = p->now;
			conn_open(p, c);
			break;
		case MODE_BULK:
			if (c->state == ST_IDLE) {
				p->live++;
				c->state = ST_BULK;
				bulk_send(p, c);
			}
			break;
		}
	}
	if (o->mode == MODE_HOLD)
		launch_more(p);
}

/* Is the current phase over? */
static int
phase_done(struct proc *p)
{
	if (p->phase == PH_SETUP)
		return p->next == p->n && p->active == 0;
	if (p->phase != PH_RUN)
		return 0;
	if (p->o->mode == MODE_HOLD)
		return p->next == p->n && p->active == 0;
	return p->live == 0;
}

/* The phase ran out of time: whatever is still in progress failed. */
static void
phase_expire(struct proc *p)
{
	for (uint32_t i = 0; i < p->n; i++) {
		struct conn *c = &p->c[i];

		if (c->state == ST_NONE || c->state == ST_DONE)
			continue;
		if (c->state == ST_IDLE && !(p->phase == PH_RUN && p->o->mode == MODE_HOLD))
			continue;
		conn_fail(p, c, "timed out", ETIMEDOUT);
	}
	if (p->phase == PH_SETUP) {
		p->r->errors += p->n - p->next;
		p->next = p->n;
	} else {
		p->live = 0;
	}
}

static void
child_main(const struct opts *o, int idx, struct result *r, uint32_t first, uint32_t n, int ctl,
    int ready_fd, uint64_t deadline)
{
	struct epoll_event evs[LOAD_EVENTS];
	struct proc p = {.o = o, .r = r, .n = n, .first = first, .ctl = ctl, .ready_fd = ready_fd};
	struct epoll_event cev = {.events = EPOLLIN, .data.u64 = UINT64_MAX};

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() == 1)
		_exit(1);
	p.deadline = deadline;
	p.payload = (uint64_t)o->mib << 20;
	p.idstep = (uint32_t)o->conns;
	p.rxlen = (uint32_t)(o->msglen > LOAD_REPORT ? o->msglen : LOAD_REPORT);
	p.c = calloc(n ? n : 1, sizeof(*p.c));
	p.rx = malloc((size_t)(n ? n : 1) * p.rxlen);
	p.msg = malloc((size_t)o->msglen + 8);
	if (o->mode == MODE_BULK)
		p.big = malloc(LOAD_BULK_CHUNK);
	if (!p.c || !p.rx || !p.msg || (o->mode == MODE_BULK && (!p.big || pattern_init() == -1))) {
		fprintf(stderr, "load: out of memory\n");
		_exit(1);
	}
	for (uint32_t i = 0; i < n; i++) {
		p.c[i].fd = -1;
		p.c[i].id = first + i;
	}
	p.ep = epoll_create1(EPOLL_CLOEXEC);
	if (p.ep == -1 || epoll_ctl(p.ep, EPOLL_CTL_ADD, ctl, &cev) == -1) {
		fprintf(stderr, "load: epoll: %s\n", strerror(errno));
		_exit(1);
	}

	p.now = now_ns();
	r->t_setup_ns = p.now;
	p.phase = PH_SETUP;
	p.phase_deadline = deadline;
	/* cps connects only when the run starts; the others connect now. */
	if (o->mode == MODE_CPS)
		p.next = p.n;
	launch_more(&p);

	while (p.phase != PH_OVER) {
		int timeout, nev;

		if (phase_done(&p)) {
			if (p.phase == PH_SETUP) {
				char one = 1;

				r->t_ready_ns = p.now;
				p.phase = PH_WAIT;
				p.phase_deadline = deadline;
				if (write(ready_fd, &one, 1) != 1)
					_exit(1);
			} else {
				r->t_end_ns = p.now;
				p.phase = PH_OVER;
				break;
			}
		}
		if (p.now >= p.phase_deadline) {
			if (p.phase == PH_WAIT)
				break; /* the parent never said go */
			phase_expire(&p);
			continue;
		}
		timeout = (int)((p.phase_deadline - p.now) / 1000000) + 1;
		if (p.phase == PH_RUN && p.now < p.end &&
		    timeout > (int)((p.end - p.now) / 1000000) + 1)
			timeout = (int)((p.end - p.now) / 1000000) + 1;
		nev = epoll_wait(p.ep, evs, LOAD_EVENTS, timeout);
		p.now = now_ns();
		if (nev == -1) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "load: epoll_wait: %s\n", strerror(errno));
			_exit(1);
		}
		for (int i = 0; i < nev; i++) {
			if (evs[i].data.u64 == UINT64_MAX) {
				/* The parent closed the go pipe. */
				epoll_ctl(p.ep, EPOLL_CTL_DEL, ctl, NULL);
				if (p.phase == PH_WAIT)
					run_start(&p);
				continue;
			}
			conn_event(&p, &p.c[evs[i].data.u64], evs[i].events);
		}
		if (p.phase == PH_SETUP || (p.phase == PH_RUN && o->mode == MODE_HOLD))
			launch_more(&p);
	}
	_exit(0);
}

static void
usage(int status)
{
	fprintf(status ? stderr : stdout,
	    "usage: load hold|rr|cps|bulk -a HOST:PORT[,HOST:PORT...] [options]\n"
	    "  -c N        hold: connections (default 1000); rr: connections (100);\n"
	    "              cps: connections in flight (50); bulk: streams (1)\n"
	    "  -d SECONDS  rr, cps: run time (default 5); hold: time held (0)\n"
	    "  -l BYTES    rr, cps, hold: message size (default 64; hold 16)\n"
	    "  -m MIB      bulk: MiB per stream (default 256)\n"
	    "  -k sink|echo bulk: the backend checks and reports (sink, default), or\n"
	    "              echoes and this program checks\n"
	    "  -s ADDR[,N] source addresses ADDR and the N-1 after it (hold > 64k needs\n"
	    "              several), bound with IP_BIND_ADDRESS_NO_PORT\n"
	    "  -P PROCS    processes (hold default: enough for -M each; others 1)\n"
	    "  -M N        hold: connections per process at most (default %d)\n"
	    "  -W N        hold: connects/round trips in flight per process (%d)\n"
	    "  -w          hold: print \"ready ...\" when all are open, wait for a line\n"
	    "              (or EOF) on stdin, then check them all again\n"
	    "  -t SECONDS  limit for the whole run (default: hold 600, else run + 60)\n"
	    "  -q          no human summary on stderr\n"
	    "Prints one line \"result mode=... ok=1 ...\" on stdout; exits 0 when every\n"
	    "connection and byte was verified, 1 otherwise, 2 on a usage error.\n",
	    LOAD_HOLD_PER_PROC, LOAD_WINDOW);
	exit(status);
}

static double
parse_num(const char *s, double lo, double hi, const char *what)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || *s == '\0' || *end != '\0' || v < lo || v > hi) {
		fprintf(stderr, "load: %s must be %g..%g, not \"%s\"\n", what, lo, hi, s);
		exit(2);
	}
	return v;
}

static int
parse_target(const char *s, struct sockaddr_in *sin)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	char *end;
	long port;

	if (!colon || (size_t)(colon - s) >= sizeof(host))
		return -1;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	port = strtol(colon + 1, &end, 10);
	if (*end != '\0' || port < 1 || port > 65535)
		return -1;
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_port = htons((uint16_t)port);
	return inet_pton(AF_INET, host, &sin->sin_addr) == 1 ? 0 : -1;
}

static void
parse_targets(struct opts *o, const char *arg)
{
	char *copy = strdup(arg), *save = NULL;

	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (o->ntargets == LOAD_MAX_TARGETS ||
		    parse_target(t, &o->targets[o->ntargets]) == -1) {
			fprintf(stderr, "load: bad target \"%s\" (want IPv4:PORT, at most %d)\n", t,
			    LOAD_MAX_TARGETS);
			exit(2);
		}
		o->ntargets++;
	}
	free(copy);
}

static void
parse_sources(struct opts *o, const char *arg)
{
	char host[64];
	const char *comma = strchr(arg, ',');
	size_t hl = comma ? (size_t)(comma - arg) : strlen(arg);
	struct in_addr a;

	if (hl >= sizeof(host))
		usage(2);
	memcpy(host, arg, hl);
	host[hl] = '\0';
	if (inet_pton(AF_INET, host, &a) != 1) {
		fprintf(stderr, "load: -s wants a numeric IPv4 address\n");
		exit(2);
	}
	o->src_first.s_addr = ntohl(a.s_addr);
	o->nsrc = comma ? (int)parse_num(comma + 1, 1, 65536, "-s count") : 1;
}

/* Wait until fd is readable or the deadline passes. Returns 1, or 0. */
static int
wait_readable(int fd, uint64_t deadline)
{
	for (;;) {
		uint64_t now = now_ns();
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int rc;

		if (now >= deadline)
			return 0;
		rc = poll(&pfd, 1, (int)((deadline - now) / 1000000) + 1);
		if (rc > 0)
			return 1;
		if (rc == -1 && errno != EINTR)
			return 0;
	}
}

static void
sum_results(const struct result *rs, int n, struct result *t, uint64_t *hist)
{
	memset(t, 0, sizeof(*t));
	memset(hist, 0, HIST_BUCKETS * sizeof(*hist));
	for (int i = 0; i < n; i++) {
		const struct result *r = &rs[i];

		t->conns += r->conns;
		t->opened += r->opened;
		t->verified_open += r->verified_open;
		t->verified_end += r->verified_end;
		t->ops += r->ops;
		t->bytes += r->bytes;
		t->errors += r->errors;
		t->bad += r->bad;
		if (r->t_setup_ns && (!t->t_setup_ns || r->t_setup_ns < t->t_setup_ns))
			t->t_setup_ns = r->t_setup_ns;
		if (r->t_ready_ns > t->t_ready_ns)
			t->t_ready_ns = r->t_ready_ns;
		if (r->t_go_ns && (!t->t_go_ns || r->t_go_ns < t->t_go_ns))
			t->t_go_ns = r->t_go_ns;
		if (r->t_end_ns > t->t_end_ns)
			t->t_end_ns = r->t_end_ns;
		if (t->first_error[0] == '\0' && r->first_error[0] != '\0')
			memcpy(t->first_error, r->first_error, sizeof(t->first_error));
		for (unsigned b = 0; b < HIST_BUCKETS; b++)
			hist[b] += r->hist[b];
	}
}

static double
secs_between(uint64_t a, uint64_t b)
{
	return b > a ? (double)(b - a) / (double)NS : 0.0;
}

/* One line for scripts on stdout, a sentence for people on stderr. */
static int
report(const struct opts *o, const struct result *t, const uint64_t *hist, int lost)
{
	double open_s = secs_between(t->t_setup_ns, t->t_ready_ns);
	double run_s = secs_between(t->t_go_ns, t->t_end_ns);
	uint64_t n = 0;
	int good = !lost && t->errors == 0 && t->bad == 0;
	char line[1024];
	int len;

	for (unsigned b = 0; b < HIST_BUCKETS; b++)
		n += hist[b];
	switch (o->mode) {
	case MODE_HOLD:
		good = good && t->verified_open == (uint64_t)o->conns &&
		       t->verified_end == (uint64_t)o->conns;
		break;
	case MODE_RR:
	case MODE_CPS:
		good = good && t->ops > 0;
		break;
	case MODE_BULK:
		good = good && t->verified_end == (uint64_t)o->conns;
		break;
	}

	len = snprintf(line, sizeof(line), "result mode=%s procs=%d conns=%ld", mode_names[o->mode],
	    o->procs, o->conns);
	switch (o->mode) {
	case MODE_HOLD:
		len += snprintf(line + len, sizeof(line) - (size_t)len,
		    " sources=%d opened=%llu verified_open=%llu verified_end=%llu open_secs=%.3f"
		    " open_per_s=%.0f",
		    o->nsrc, (unsigned long long)t->opened, (unsigned long long)t->verified_open,
		    (unsigned long long)t->verified_end, open_s,
		    open_s > 0 ? (double)t->verified_open / open_s : 0.0);
		break;
	case MODE_RR:
	case MODE_CPS:
		len += snprintf(line + len, sizeof(line) - (size_t)len,
		    " msg=%d secs=%.3f ops=%llu %s=%.0f p50_us=%.1f p99_us=%.1f p999_us=%.1f"
		    " max_us=%.1f",
		    o->msglen, run_s, (unsigned long long)t->ops,
		    o->mode == MODE_RR ? "ops_per_s" : "conns_per_s",
		    run_s > 0 ? (double)t->ops / run_s : 0.0,
		    (double)hist_quantile(hist, n, 0.50) / 1e3,
		    (double)hist_quantile(hist, n, 0.99) / 1e3,
		    (double)hist_quantile(hist, n, 0.999) / 1e3,
		    (double)hist_quantile(hist, n, 1.0) / 1e3);
		break;
	case MODE_BULK:
		len += snprintf(line + len, sizeof(line) - (size_t)len,
		    " mib=%ld verify=%s verified=%llu bytes=%llu secs=%.3f mb_per_s=%.1f", o->mib,
		    o->sink ? "sink" : "echo", (unsigned long long)t->verified_end,
		    (unsigned long long)t->bytes, run_s,
		    run_s > 0 ? (double)t->bytes / run_s / 1e6 : 0.0);
		break;
	}
	snprintf(line + len, sizeof(line) - (size_t)len, " errors=%llu bad=%llu ok=%d",
	    (unsigned long long)t->errors + (unsigned long long)lost, (unsigned long long)t->bad,
	    good);
	printf("%s\n", line);
	fflush(stdout);

	if (!o->quiet) {
		switch (o->mode) {
		case MODE_HOLD:
			fprintf(stderr,
			    "hold: %ld connections, %d processes, %d source addresses: %llu opened"
			    " and verified in %.2f s, %llu verified again at the end\n",
			    o->conns, o->procs, o->nsrc ? o->nsrc : 1,
			    (unsigned long long)t->verified_open, open_s,
			    (unsigned long long)t->verified_end);
			break;
		case MODE_RR:
		case MODE_CPS:
			fprintf(stderr,
			    "%s: %ld %s x %d B for %.2f s: %llu %s, %.0f/s; latency p50 %.3f ms,"
			    " p99 %.3f ms, p99.9 %.3f ms, max %.3f ms\n",
			    mode_names[o->mode], o->conns,
			    o->mode == MODE_RR ? "connections" : "in flight", o->msglen, run_s,
			    (unsigned long long)t->ops,
			    o->mode == MODE_RR ? "round trips" : "connections",
			    run_s > 0 ? (double)t->ops / run_s : 0.0,
			    (double)hist_quantile(hist, n, 0.50) / 1e6,
			    (double)hist_quantile(hist, n, 0.99) / 1e6,
			    (double)hist_quantile(hist, n, 0.999) / 1e6,
			    (double)hist_quantile(hist, n, 1.0) / 1e6);
			break;
		case MODE_BULK:
			fprintf(stderr,
			    "bulk: %ld streams x %ld MiB (%s-verified): %llu verified, %.2f s,"
			    " %.1f MB/s\n",
			    o->conns, o->mib, o->sink ? "sink" : "echo",
			    (unsigned long long)t->verified_end, run_s,
			    run_s > 0 ? (double)t->bytes / run_s / 1e6 : 0.0);
			break;
		}
	}
	/* Even with -q: a script that keeps stderr can say why a run failed. */
	if (t->errors || t->bad || lost)
		fprintf(stderr, "load: %s: %llu errors, %llu bad, %d processes lost; first: %s\n",
		    mode_names[o->mode], (unsigned long long)t->errors, (unsigned long long)t->bad,
		    lost, t->first_error[0] ? t->first_error : "-");
	return good ? 0 : 1;
}

int
main(int argc, char **argv)
{
	struct opts o = {.msglen = 0,
	    .sink = 1,
	    .per_proc = LOAD_HOLD_PER_PROC,
	    .window = LOAD_WINDOW,
	    .secs = -1,
	    .mib = 256,
	    .timeout = -1};
	pid_t pids[LOAD_MAX_PROCS] = {0};
	struct result *rs, total;
	static uint64_t hist[HIST_BUCKETS];
	struct rlimit rl;
	int go[2], ready[2], opt, nready = 0, lost = 0, alive;
	uint64_t start, deadline;
	long cap;

	if (argc < 2 || argv[1][0] == '-') {
		if (argc >= 2 && strcmp(argv[1], "-h") == 0)
			usage(0);
		usage(2);
	}
	if (strcmp(argv[1], "hold") == 0)
		o.mode = MODE_HOLD;
	else if (strcmp(argv[1], "rr") == 0)
		o.mode = MODE_RR;
	else if (strcmp(argv[1], "cps") == 0)
		o.mode = MODE_CPS;
	else if (strcmp(argv[1], "bulk") == 0)
		o.mode = MODE_BULK;
	else
		usage(2);
	optind = 2;
	while ((opt = getopt(argc, argv, "a:c:d:hk:l:m:M:P:qs:t:wW:")) != -1) {
		switch (opt) {
		case 'a':
			parse_targets(&o, optarg);
			break;
		case 'c':
			o.conns = (long)parse_num(optarg, 1, 10000000, "-c");
			break;
		case 'd':
			o.secs = parse_num(optarg, 0, 86400, "-d");
			break;
		case 'h':
			usage(0);
			break;
		case 'k':
			if (strcmp(optarg, "sink") == 0)
				o.sink = 1;
			else if (strcmp(optarg, "echo") == 0)
				o.sink = 0;
			else
				usage(2);
			break;
		case 'l':
			o.msglen = (int)parse_num(optarg, 1, 1 << 20, "-l");
			break;
		case 'm':
			o.mib = (long)parse_num(optarg, 1, 1 << 20, "-m");
			break;
		case 'M':
			o.per_proc = (int)parse_num(optarg, 1, 1000000, "-M");
			break;
		case 'P':
			o.procs = (int)parse_num(optarg, 1, LOAD_MAX_PROCS, "-P");
			break;
		case 'q':
			o.quiet = 1;
			break;
		case 's':
			parse_sources(&o, optarg);
			break;
		case 't':
			o.timeout = parse_num(optarg, 0.1, 86400, "-t");
			break;
		case 'w':
			o.wait_stdin = 1;
			break;
		case 'W':
			o.window = (int)parse_num(optarg, 1, 1000000, "-W");
			break;
		default:
			usage(2);
		}
	}
	if (optind != argc || o.ntargets == 0)
		usage(2);
	if (o.conns == 0)
		o.conns = o.mode == MODE_HOLD  ? 1000
		          : o.mode == MODE_RR  ? 100
		          : o.mode == MODE_CPS ? 50
		                               : 1;
	if (o.msglen == 0)
		o.msglen = o.mode == MODE_HOLD ? 16 : 64;
	if (o.secs < 0)
		o.secs = o.mode == MODE_HOLD ? 0 : 5;
	if (o.timeout < 0)
		o.timeout = o.mode == MODE_HOLD ? 600 : o.mode == MODE_BULK ? 300 : o.secs + 60;

	/* Each process may use the whole hard limit. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	getrlimit(RLIMIT_NOFILE, &rl);
	cap = (long)rl.rlim_cur - LOAD_FD_RESERVE;
	if (o.mode == MODE_HOLD && o.per_proc < cap)
		cap = o.per_proc;
	if (o.procs == 0)
		o.procs = o.mode == MODE_HOLD ? (int)((o.conns + cap - 1) / cap) : 1;
	if (o.procs > LOAD_MAX_PROCS || o.procs > o.conns ||
	    (o.conns + o.procs - 1) / o.procs > cap) {
		fprintf(stderr,
		    "load: %ld connections need more than %d processes of %ld descriptors"
		    " (or fewer processes than connections)\n",
		    o.conns, o.procs, cap);
		return 2;
	}

	rs = mmap(NULL, sizeof(*rs) * (size_t)o.procs, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (rs == MAP_FAILED || pipe2(go, O_CLOEXEC) == -1 || pipe2(ready, O_CLOEXEC) == -1) {
		fprintf(stderr, "load: %s\n", strerror(errno));
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	start = now_ns();
	deadline = start + (uint64_t)(o.timeout * (double)NS);

	for (int i = 0; i < o.procs; i++) {
		uint32_t first = (uint32_t)(o.conns * i / o.procs);
		uint32_t n = (uint32_t)(o.conns * (i + 1) / o.procs) - first;

		rs[i].conns = n;
		fflush(NULL);
		pids[i] = fork();
		if (pids[i] == -1) {
			fprintf(stderr, "load: fork: %s\n", strerror(errno));
			for (int k = 0; k < i; k++) {
				kill(pids[k], SIGKILL);
				waitpid(pids[k], NULL, 0);
			}
			return 1;
		}
		if (pids[i] == 0) {
			close(go[1]);
			close(ready[0]);
			child_main(&o, i, &rs[i], first, n, go[0], ready[1], deadline);
		}
	}
	close(go[0]);
	close(ready[1]);

	/* Every process reports once its connections are set up. */
	while (nready < o.procs && wait_readable(ready[0], deadline)) {
		char b[LOAD_MAX_PROCS];
		ssize_t k = read(ready[0], b, sizeof(b));

		if (k <= 0)
			break; /* every child is gone */
		nready += (int)k;
	}
	if (o.mode == MODE_HOLD) {
		sum_results(rs, o.procs, &total, hist);
		if (o.wait_stdin) {
			printf("ready opened=%llu verified=%llu errors=%llu open_secs=%.3f\n",
			    (unsigned long long)total.opened,
			    (unsigned long long)total.verified_open,
			    (unsigned long long)total.errors,
			    secs_between(total.t_setup_ns, total.t_ready_ns));
			fflush(stdout);
			if (wait_readable(0, deadline)) {
				char b[256];

				if (read(0, b, sizeof(b)) < 0)
					b[0] = '\0';
			}
		} else if (o.secs > 0) {
			uint64_t until = now_ns() + (uint64_t)(o.secs * (double)NS);

			while (now_ns() < until && now_ns() < deadline) {
				struct timespec ts = {0, 50 * 1000 * 1000};

				nanosleep(&ts, NULL);
			}
		}
	}
	close(go[1]); /* go: every child sees EOF at once */

	/* Reap; past the deadline (and a grace) whoever is left is killed. */
	alive = o.procs;
	while (alive > 0) {
		int st;
		pid_t p = waitpid(-1, &st, WNOHANG);

		if (p > 0) {
			alive--;
			if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
				lost++;
			for (int i = 0; i < o.procs; i++)
				if (pids[i] == p)
					pids[i] = 0;
			continue;
		}
		if (p == -1)
			break;
		if (now_ns() > deadline + 2 * NS) {
			for (int i = 0; i < o.procs; i++)
				if (pids[i] > 0) {
					kill(pids[i], SIGKILL);
					waitpid(pids[i], NULL, 0);
					pids[i] = 0;
					lost++;
					alive--;
				}
			break;
		}
		{
			struct timespec ts = {0, 5 * 1000 * 1000};

			nanosleep(&ts, NULL);
		}
	}
	sum_results(rs, o.procs, &total, hist);
	return report(&o, &total, hist, lost);
}
