/* SPDX-License-Identifier: BSD-2-Clause */
/* checker.c — the health-check process: active health checks of every server of
 * every upstream group that has a health group (a TCP connect, optionally a
 * string sent and a reply prefix expected; a PROXY header first for servers
 * that require one), a server going DOWN after `fall`
 * failed checks in a row and UP after `rise` good ones, each change logged and
 * published in the stats segment's health area, of which it is the only
 * writer; and live DNS for servers with resolve = true (dns.c), published in
 * the resolved area, which it alone writes too. Forked by the master like a
 * worker, one per generation; it never touches client traffic, never writes
 * a worker's slot, and never blocks. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>

#include "conf.h"
#include "dns.h"
#include "heritage.h"
#include "log.h"
#include "net.h"
#include "proctitle.h"
#include "proxy.h"
#include "stats.h"

enum check_phase { CHECK_IDLE, CHECK_CONNECTING, CHECK_SENDING, CHECK_RECEIVING };

/* One server of one group, checked every interval. */
struct check {
	const struct conf_upstream *u;
	const struct conf_server *srv;
	unsigned row;            /* its health entry in the segment, or STATS_NO_ROW */
	struct stats_health pub; /* what we last published there */
	ev_timer interval;       /* starts a check */
	ev_timer deadline;       /* ends a check that takes longer than the timeout */
	ev_io io;                /* the check's connection; fd -1 when idle */
	double started;          /* check_now() when the check began */
	size_t sent, got;        /* bytes of the PROXY header and health.send written, of
	                          * health.expect matched */
	enum check_phase phase;
};

/* CLOCK_MONOTONIC in seconds: a check's duration must not take in a step of
 * the wall clock (ev_time follows it). */
static double
check_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static struct check *checks;
static unsigned nchecks;
static struct stats_seg *seg;

/* The end of one check, good (STATS_CHECK_OK) or bad: count it, change
 * state at rise or fall results in a row, log the change where it is decided,
 * and publish. err is the errno behind a failure, or 0. */
static void
check_done(
    struct ev_loop *loop, struct check *c, enum stats_check_result result, int err, const char *why)
{
	const struct conf_health *h = &c->u->health;
	struct stats_health *p = &c->pub;
	uint64_t now_ms = stats_now_ms();

	ev_timer_stop(loop, &c->deadline);
	if (c->io.fd != -1) {
		ev_io_stop(loop, &c->io);
		close(c->io.fd);
		ev_io_set(&c->io, -1, 0);
	}
	c->phase = CHECK_IDLE;
	p->checks++;
	p->last_result = result;
	p->last_errno = err;
	p->last_check_ms = now_ms;
	p->last_duration_ms = (uint32_t)((check_now() - c->started) * 1000.0);
	/* Until a verdict, a server counts as up (as workers take it). */
	if (p->state == STATS_HEALTH_UNKNOWN) {
		p->state = STATS_HEALTH_UP;
		p->last_change_ms = now_ms;
	}
	if (result == STATS_CHECK_OK) {
		p->successes++;
		p->failures = 0;
		if (p->state == STATS_HEALTH_DOWN && p->successes >= h->rise) {
			p->state = STATS_HEALTH_UP;
			p->last_change_ms = now_ms;
			log_notice("server %s/%s is UP: %s (%u successes)", c->u->name,
			    c->srv->address, why, p->successes);
		}
	} else {
		p->checks_failed++;
		p->failures++;
		p->successes = 0;
		if (p->state == STATS_HEALTH_UP && p->failures >= h->fall) {
			p->state = STATS_HEALTH_DOWN;
			p->last_change_ms = now_ms;
			log_warnx("server %s/%s is DOWN: %s (%u failures)", c->u->name,
			    c->srv->address, why, p->failures);
		} else if (p->state == STATS_HEALTH_UP) {
			log_debug("check of %s/%s failed: %s (%u of %u)", c->u->name,
			    c->srv->address, why, p->failures, h->fall);
		}
	}
	stats_health_publish(seg, c->row, p);
}

static void
check_fail_errno(struct ev_loop *loop, struct check *c, const char *what, int err)
{
	char why[128];

	snprintf(why, sizeof(why), "%s: %s", what, strerror(err));
	check_done(loop, c,
	    err == ECONNREFUSED || err == ECONNRESET ? STATS_CHECK_REFUSED
	    : err == ETIMEDOUT                       ? STATS_CHECK_TIMEOUT
	                                             : STATS_CHECK_ERROR,
	    err, why);
}

/* Connected (and health.send written): wait for the reply, or pass. */
static void
check_after_send(struct ev_loop *loop, struct check *c)
{
	if (c->u->health.expect == NULL) {
		check_done(loop, c, STATS_CHECK_OK, 0,
		    c->u->health.send         ? "connected, request sent"
		    : c->u->health.send_proxy ? "connected, PROXY header sent"
		                              : "connected");
		return;
	}
	c->phase = CHECK_RECEIVING;
	ev_io_stop(loop, &c->io);
	ev_io_set(&c->io, c->io.fd, EV_READ);
	ev_io_start(loop, &c->io);
}

/*
 * The PROXY header a check sends first (health.send_proxy), into buf: the
 * v2 LOCAL command or v1 "PROXY UNKNOWN", which the spec defines for
 * connections the proxy makes itself, health checks named: the server
 * keeps the connection's own endpoints. Naming the checker's addresses
 * instead would make the check pass for a client it is not. Returns its
 * length, 0 when the group sends none.
 */
static size_t
check_proxy_header(const struct check *c, char *buf)
{
	int n;

	if (!c->u->health.send_proxy)
		return 0;
	n = proxy_build((int)c->u->health.send_proxy, NULL, NULL, buf, PROXY_HEADER_MAX);
	return n > 0 ? (size_t)n : 0;
}

/* The header, then health.send, as one stream: c->sent counts both. */
static void
check_send(struct ev_loop *loop, struct check *c)
{
	const char *text = c->u->health.send != NULL ? c->u->health.send : "";
	char hdr[PROXY_HEADER_MAX];
	size_t hl = check_proxy_header(c, hdr), len = hl + strlen(text);

	while (c->sent < len) {
		ssize_t n;

		if (c->sent < hl)
			n = send(c->io.fd, hdr + c->sent, hl - c->sent,
			    MSG_NOSIGNAL | (len > hl ? MSG_MORE : 0));
		else
			n = send(c->io.fd, text + (c->sent - hl), len - c->sent, MSG_NOSIGNAL);
		if (n == -1) {
			if (errno != EAGAIN && errno != EINTR)
				check_fail_errno(loop, c, "send", errno);
			return;
		}
		c->sent += (size_t)n;
	}
	check_after_send(loop, c);
}

/* Match the reply against health.expect as it arrives: the first byte that
 * differs fails the check without waiting for the rest. */
static void
check_receive(struct ev_loop *loop, struct check *c)
{
	const char *expect = c->u->health.expect;
	size_t len = strlen(expect);
	char buf[512];
	ssize_t n;

	n = recv(c->io.fd, buf, len - c->got < sizeof(buf) ? len - c->got : sizeof(buf), 0);
	if (n == -1) {
		if (errno != EAGAIN && errno != EINTR)
			check_fail_errno(loop, c, "receive", errno);
		return;
	}
	if (n == 0) {
		check_done(loop, c, STATS_CHECK_BAD_REPLY, 0, "closed before the expected reply");
		return;
	}
	if (memcmp(buf, expect + c->got, (size_t)n) != 0) {
		check_done(loop, c, STATS_CHECK_BAD_REPLY, 0, "unexpected reply");
		return;
	}
	c->got += (size_t)n;
	if (c->got == len)
		check_done(loop, c, STATS_CHECK_OK, 0, "expected reply");
}

static void
check_io_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct check *c = io->data;

	switch (c->phase) {
	case CHECK_CONNECTING:
		if (net_connect_result(io->fd) == -1) {
			check_fail_errno(loop, c, "connect", errno);
			return;
		}
		if (c->u->health.send == NULL && !c->u->health.send_proxy) {
			check_after_send(loop, c);
			return;
		}
		c->phase = CHECK_SENDING;
		check_send(loop, c);
		return;
	case CHECK_SENDING:
		check_send(loop, c);
		return;
	case CHECK_RECEIVING:
		check_receive(loop, c);
		return;
	case CHECK_IDLE:
		return;
	}
}

static void
check_deadline_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct check *c = t->data;
	static const char *const what[] = {
	    [CHECK_IDLE] = "timeout",
	    [CHECK_CONNECTING] = "connect timeout",
	    [CHECK_SENDING] = "timeout sending the request",
	    [CHECK_RECEIVING] = "timeout waiting for the reply",
	};

	check_done(loop, c, STATS_CHECK_TIMEOUT, 0, what[c->phase]);
}

static void
check_start_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct check *c = t->data;
	struct sockaddr_storage resolved;
	const struct sockaddr *to;
	socklen_t tolen;
	int fd;

	/* timeout <= interval, so a check is over before the next is due; a
	 * stalled loop could still make them meet: skip rather than overlap. */
	if (c->phase != CHECK_IDLE)
		return;
	child_follow_log_level(seg);
	c->sent = c->got = 0;
	c->started = check_now();
	to = (const struct sockaddr *)&c->srv->addr;
	tolen = c->srv->addrlen;
	if (c->srv->host != NULL) {
		/* A slot of a resolved name: checked at its address of now;
		 * one without an address is not checked (workers skip it). */
		uint32_t st = stats_resolved_try(seg, c->row, &resolved, &tolen);

		if (st == STATS_ADDR_PRESENT)
			to = (const struct sockaddr *)&resolved;
		else if (st != STATS_ADDR_NONE || c->srv->addrlen == 0)
			return;
		else
			tolen = c->srv->addrlen;
	}
	fd = net_connect(to, tolen);
	if (fd == -1) {
		check_fail_errno(loop, c, "connect", errno);
		return;
	}
	c->phase = CHECK_CONNECTING;
	ev_io_set(&c->io, fd, EV_WRITE);
	ev_io_start(loop, &c->io);
	ev_timer_set(&c->deadline, c->u->health.timeout_ms / 1000.0, 0.);
	ev_timer_start(loop, &c->deadline);
}

/* One check per server of every group with a health group; the first round
 * is spread over one interval so that many servers are not probed at once.
 * A server a previous checker judged keeps its state and counts: a reload
 * must not send clients to a server known to be down. */
static int
checks_create(struct ev_loop *loop, const struct heritage *her)
{
	const struct conf *conf = her->conf;
	unsigned k = 0, base = 0;

	nchecks = 0;
	for (unsigned g = 0; g < conf->nupstreams; g++)
		if (conf->upstreams[g].health.enabled)
			nchecks += conf->upstreams[g].nservers;
	checks = calloc(nchecks ? nchecks : 1, sizeof(*checks));
	if (checks == NULL)
		return -1;
	for (unsigned g = 0; g < conf->nupstreams; g++) {
		const struct conf_upstream *u = &conf->upstreams[g];
		ev_tstamp every = u->health.interval_ms / 1000.0;

		base += u->nservers;
		if (!u->health.enabled)
			continue;
		for (unsigned i = 0; i < u->nservers; i++, k++) {
			struct check *c = &checks[k];

			c->u = u;
			c->srv = &u->servers[i];
			c->row = her->server_rows != NULL ? her->server_rows[base - u->nservers + i]
			                                  : STATS_NO_ROW;
			stats_health_read(seg, c->row, &c->pub);
			ev_timer_init(
			    &c->interval, check_start_cb, every * i / u->nservers + 0.001, every);
			c->interval.data = c;
			ev_init(&c->deadline, check_deadline_cb);
			c->deadline.data = c;
			ev_io_init(&c->io, check_io_cb, -1, 0);
			c->io.data = c;
			ev_timer_start(loop, &c->interval);
		}
	}
	return 0;
}

void
checker_main(const struct heritage *h)
{
	struct ev_loop *loop = EV_DEFAULT;
	int names;

	log_set_role("checker");
	proctitle_set("sluiced-checker", "sluiced: checker");
	seg = h->stats;
	helper_begin(h);
	if (checks_create(loop, h) == -1) {
		log_err("cannot set up %u health checks", nchecks);
		exit(heritage_exit_status(errno));
	}
	if ((names = dns_start(loop, h)) == -1) {
		log_err("cannot set up the resolution of server names");
		exit(heritage_exit_status(errno));
	}
	helper_enter(loop, h);
	log_debug("checking %u servers, resolving %d names, generation %u", nchecks, names,
	    h->generation);

	ev_run(loop, 0);

	dns_stop(loop);
	for (unsigned i = 0; i < nchecks; i++)
		if (checks[i].io.fd != -1)
			close(checks[i].io.fd);
	free(checks);
	exit(WORKER_EXIT_OK);
}
