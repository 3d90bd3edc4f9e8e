/* SPDX-License-Identifier: BSD-2-Clause */
/* dns.c — live DNS in the checker: every server name with resolve = true is
 * asked (A and/or AAAA, over UDP, a new socket and a random id per query) of
 * the configured nameservers, again when the answer's TTL clamped to
 * dns.min_ttl..dns.max_ttl runs out, or dns.retry after a failure. Its
 * addresses go to the name's slots in the stats segment: an address that
 * stays keeps its slot, a new one takes a free slot (joins), a vanished one
 * leaves its slot absent (no new connections; its sessions drain). An empty,
 * failed, truncated or unanswered query keeps the last good set, logged once
 * per change of reason. Runs in the checker only (unprivileged); workers
 * never resolve. Never blocks. */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ev.h>

#include "addr.h"
#include "conf.h"
#include "dns.h"
#include "heritage.h"
#include "log.h"
#include "resolve.h"
#include "stats.h"

/* The most addresses an answer pair can bring: both families, every slot. */
#define DNS_GOT_MAX (2 * CONF_DNS_ADDRESSES_MAX)

struct dns_name;

/* One question in flight (A or AAAA). */
struct dns_query {
	struct dns_name *n;
	ev_io io;   /* its socket; fd -1 when none */
	uint16_t id, qtype;
	int done;
	enum resolve_status status;
	int err;    /* the errno that ended it without an answer, else 0 */
	uint32_t ttl;
};

/* One resolved name: its slots, its timers, its last outcome. */
struct dns_name {
	const struct conf_upstream *u;
	const struct conf_server *slot; /* nslots consecutive entries */
	const uint16_t *rows;           /* their stats rows, or NULL */
	unsigned nslots;
	struct stats_resolved pub[CONF_DNS_ADDRESSES_MAX]; /* what we published */
	ev_timer next;     /* the next question */
	ev_timer deadline; /* the wait for its answers */
	struct dns_query q[2];
	unsigned nq;
	unsigned ns;       /* the nameserver asked */
	struct resolve_addr got[DNS_GOT_MAX];
	unsigned ngot;
	char failing[128]; /* why the last resolution failed, "" when it did not */
	int overflow;      /* the last answer had more addresses than slots (logged) */
};

static struct dns_name *names;
static unsigned nnames;
static const struct conf *conf;
static struct stats_seg *seg;
static uint8_t packet[65536];

static uint16_t
dns_random16(void)
{
	uint16_t v;

	if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != (ssize_t)sizeof(v))
		v = (uint16_t)random();
	return v;
}

static const char *
dns_type_name(uint16_t qtype)
{
	return qtype == RESOLVE_TYPE_A ? "A" : "AAAA";
}

static socklen_t
dns_sockaddr_len(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET ? sizeof(struct sockaddr_in)
	                                : sizeof(struct sockaddr_in6);
}

/* The address slot k holds now, for matching: the checker's, or libc's
 * from load while the slot was never written. 0 when it has none. */
static int
dns_slot_addr(const struct dns_name *n, unsigned k, struct resolve_addr *out)
{
	const struct stats_resolved *p = &n->pub[k];
	const struct conf_server *srv = &n->slot[k];

	memset(out, 0, sizeof(*out));
	if (p->state == STATS_ADDR_PRESENT) {
		out->family = p->family;
		memcpy(out->addr, p->addr, p->family == AF_INET ? 4 : 16);
		return 1;
	}
	if (p->state == STATS_ADDR_NONE && srv->addrlen > 0) {
		out->family = srv->addr.ss_family;
		if (out->family == AF_INET)
			memcpy(out->addr, &((const struct sockaddr_in *)&srv->addr)->sin_addr, 4);
		else
			memcpy(out->addr, &((const struct sockaddr_in6 *)&srv->addr)->sin6_addr, 16);
		return 1;
	}
	return 0;
}

static int
dns_same(const struct resolve_addr *a, const struct resolve_addr *b)
{
	return a->family == b->family && memcmp(a->addr, b->addr, sizeof(a->addr)) == 0;
}

/* "a.b.c.d:port" or "[v6]:port" of address a on the name's port. */
static const char *
dns_format(const struct dns_name *n, const struct resolve_addr *a, char *buf, size_t len)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (a->family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(n->slot[0].port);
		memcpy(&sin->sin_addr, a->addr, 4);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(n->slot[0].port);
		memcpy(&sin6->sin6_addr, a->addr, 16);
	}
	return addr_format((const struct sockaddr *)&ss, buf, len);
}

static void
dns_publish(struct dns_name *n, unsigned k)
{
	if (n->rows != NULL)
		stats_resolved_publish(seg, n->rows[k], &n->pub[k]);
}

/* Slot k takes address a (NULL: none, absent) from now on. */
static void
dns_slot_set(struct dns_name *n, unsigned k, const struct resolve_addr *a, uint64_t now_ms)
{
	struct stats_resolved *p = &n->pub[k];

	p->changes++;
	p->since_ms = now_ms;
	if (a == NULL) {
		p->state = STATS_ADDR_ABSENT;
		p->family = 0;
		memset(p->addr, 0, sizeof(p->addr));
		return;
	}
	p->state = STATS_ADDR_PRESENT;
	p->family = (uint16_t)a->family;
	p->port = htons(n->slot[0].port);
	memset(p->addr, 0, sizeof(p->addr));
	memcpy(p->addr, a->addr, a->family == AF_INET ? 4 : 16);
}

/* A good answer with addresses: the slots follow it. */
static void
dns_apply(struct dns_name *n, uint32_t ttl_s)
{
	uint64_t now_ms = stats_now_ms();
	struct resolve_addr cur;
	char buf[ADDR_STRLEN];
	uint8_t placed[DNS_GOT_MAX] = { 0 };
	unsigned dropped = 0;

	/* Addresses that stay keep their slots; the others' slots empty. */
	for (unsigned k = 0; k < n->nslots; k++) {
		unsigned j;

		if (!dns_slot_addr(n, k, &cur)) {
			if (n->pub[k].state == STATS_ADDR_NONE)
				dns_slot_set(n, k, NULL, now_ms);
			continue;
		}
		for (j = 0; j < n->ngot; j++)
			if (!placed[j] && dns_same(&cur, &n->got[j]))
				break;
		if (j < n->ngot) {
			placed[j] = 1;
			if (n->pub[k].state == STATS_ADDR_NONE)
				dns_slot_set(n, k, &cur, now_ms); /* libc's, now confirmed */
			continue;
		}
		log_notice("dns: %s/%s: %s left the answer: slot %u takes no new connections "
		           "(its sessions drain)", n->u->name, n->slot[k].address,
		    dns_format(n, &cur, buf, sizeof(buf)), k + 1);
		dns_slot_set(n, k, NULL, now_ms);
	}
	/* New addresses join, each in the free slot empty the longest. */
	for (unsigned j = 0; j < n->ngot; j++) {
		int best = -1;

		if (placed[j])
			continue;
		for (unsigned k = 0; k < n->nslots; k++)
			if (n->pub[k].state != STATS_ADDR_PRESENT &&
			    (best == -1 || n->pub[k].since_ms < n->pub[best].since_ms))
				best = (int)k;
		if (best == -1) {
			dropped++;
			continue;
		}
		dns_slot_set(n, (unsigned)best, &n->got[j], now_ms);
		log_notice("dns: %s/%s: %s joins", n->u->name, n->slot[best].address,
		    dns_format(n, &n->got[j], buf, sizeof(buf)));
	}
	if (dropped > 0 && !n->overflow)
		log_warnx("dns: %s/%s: the answer has %u addresses more than max_addresses (%u); "
		          "they are left out", n->u->name, n->slot[0].host, dropped, n->nslots);
	n->overflow = dropped > 0;
	for (unsigned k = 0; k < n->nslots; k++) {
		n->pub[k].ttl_s = ttl_s;
		n->pub[k].answer_ms = now_ms;
		dns_publish(n, k);
	}
}

static void
dns_query_close(struct ev_loop *loop, struct dns_query *q)
{
	if (q->io.fd != -1) {
		ev_io_stop(loop, &q->io);
		close(q->io.fd);
		ev_io_set(&q->io, -1, 0);
	}
}

static void
dns_schedule(struct ev_loop *loop, struct dns_name *n, unsigned ms)
{
	ev_timer_stop(loop, &n->next);
	ev_timer_set(&n->next, ms / 1000.0, 0.);
	ev_timer_start(loop, &n->next);
}

/* Every query of the round answered, failed or timed out: decide. */
static void
dns_finish(struct ev_loop *loop, struct dns_name *n)
{
	const struct conf_dns *d = &conf->dns;
	uint32_t ttl = UINT32_MAX;
	char why[128] = "";
	int good = 1;

	ev_timer_stop(loop, &n->deadline);
	for (unsigned i = 0; i < n->nq; i++) {
		struct dns_query *q = &n->q[i];

		dns_query_close(loop, q);
		if (!q->done) {
			good = 0;
			q->done = 1; /* given up: the next round may start */
			snprintf(why, sizeof(why), "no answer to %s within %u ms",
			    dns_type_name(q->qtype), d->timeout_ms);
		} else if (q->err != 0) {
			good = 0;
			snprintf(why, sizeof(why), "%s question: %s", dns_type_name(q->qtype),
			    strerror(q->err));
		} else if (q->status == RESOLVE_OK) {
			if (q->ttl < ttl)
				ttl = q->ttl;
		} else if (q->status != RESOLVE_EMPTY && q->status != RESOLVE_NXDOMAIN) {
			good = 0;
			snprintf(why, sizeof(why), "%s answer to %s%s", resolve_status_name(q->status),
			    dns_type_name(q->qtype),
			    q->status == RESOLVE_TRUNCATED ? " (no TCP fallback)" : "");
		}
	}
	if (good && n->ngot == 0) {
		good = 0;
		snprintf(why, sizeof(why), "%s", n->q[0].status == RESOLVE_NXDOMAIN
		                                     ? "no such name (NXDOMAIN)"
		                                     : "no address in the answer");
	}
	if (!good) {
		/* Keep the last good set; say so once per reason. */
		if (strcmp(why, n->failing) != 0)
			log_warnx("dns: %s: %s from %s; keeping the last good addresses, asking "
			          "again every %u ms", n->slot[0].host, why,
			    addr_format((const struct sockaddr *)&d->ns[n->ns], (char[ADDR_STRLEN]){ 0 },
			        ADDR_STRLEN),
			    d->retry_ms);
		snprintf(n->failing, sizeof(n->failing), "%s", why);
		/* The next nameserver may do better. */
		n->ns = (n->ns + 1) % d->nns;
		dns_schedule(loop, n, d->retry_ms);
		return;
	}
	if (n->failing[0] != '\0')
		log_notice("dns: %s resolves again", n->slot[0].host);
	n->failing[0] = '\0';
	/* TTLs in seconds, bounds in ms: clamp in ms. */
	{
		uint64_t ms = (uint64_t)ttl * 1000;

		if (ms < d->min_ttl_ms)
			ms = d->min_ttl_ms;
		if (ms > d->max_ttl_ms)
			ms = d->max_ttl_ms;
		dns_apply(n, (uint32_t)(ms / 1000));
		log_debug("dns: %s: %u addresses, asking again in %llu ms", n->slot[0].host, n->ngot,
		    (unsigned long long)ms);
		dns_schedule(loop, n, (unsigned)ms);
	}
}

static int
dns_pending(const struct dns_name *n)
{
	for (unsigned i = 0; i < n->nq; i++)
		if (!n->q[i].done)
			return 1;
	return 0;
}

static void
dns_io_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct dns_query *q = io->data;
	struct dns_name *n = q->n;
	struct resolve_addr got[CONF_DNS_ADDRESSES_MAX];
	unsigned cnt = 0;
	uint32_t ttl = 0;
	enum resolve_status st;
	ssize_t len;

	(void)revents;
	len = recv(io->fd, packet, sizeof(packet), 0);
	if (len == -1) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		/* ECONNREFUSED: nothing listens there (an ICMP port unreachable). */
		q->err = errno;
		st = RESOLVE_SERVFAIL;
	} else {
		st = resolve_parse(packet, (size_t)len, q->id, n->slot[0].host, q->qtype, got,
		    n->nslots, &cnt, &ttl);
		if (st == RESOLVE_FOREIGN) {
			log_debug("dns: %s: ignoring a reply that does not answer our query",
			    n->slot[0].host);
			return;
		}
	}
	q->done = 1;
	q->status = st;
	q->ttl = ttl;
	dns_query_close(loop, q);
	for (unsigned i = 0; i < cnt && n->ngot < DNS_GOT_MAX; i++)
		n->got[n->ngot++] = got[i];
	if (!dns_pending(n))
		dns_finish(loop, n);
}

static void
dns_deadline_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)revents;
	dns_finish(loop, t->data);
}

/* Send one question; on failure it counts as answered SERVFAIL. */
static void
dns_ask(struct ev_loop *loop, struct dns_name *n, struct dns_query *q, uint16_t qtype)
{
	const struct sockaddr_storage *ns = &conf->dns.ns[n->ns];
	struct sockaddr_storage me;
	socklen_t melen = sizeof(me);
	ssize_t qlen;
	char nsbuf[ADDR_STRLEN];
	int fd;

	q->n = n;
	q->qtype = qtype;
	q->done = 0;
	q->status = RESOLVE_SERVFAIL;
	q->err = 0;
	q->ttl = 0;
	q->id = dns_random16();
	qlen = resolve_query(packet, sizeof(packet), q->id, n->slot[0].host, qtype);
	/* A new socket per question: a random source port as well as a
	 * random id against spoofed answers; connected, so that only the
	 * nameserver's datagrams reach it. */
	fd = socket(ns->ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (qlen == -1 || fd == -1 ||
	    connect(fd, (const struct sockaddr *)ns, dns_sockaddr_len(ns)) == -1 ||
	    send(fd, packet, (size_t)qlen, 0) != qlen) {
		q->err = qlen == -1 ? EINVAL : errno;
		log_debug("dns: %s: cannot ask %s: %s", n->slot[0].host,
		    addr_format((const struct sockaddr *)ns, nsbuf, sizeof(nsbuf)), strerror(q->err));
		if (fd != -1)
			close(fd);
		q->done = 1;
		return;
	}
	getsockname(fd, (struct sockaddr *)&me, &melen);
	log_debug("dns: asking %s for %s %s (id %u, from port %u)",
	    addr_format((const struct sockaddr *)ns, nsbuf, sizeof(nsbuf)), n->slot[0].host,
	    dns_type_name(qtype), q->id,
	    ntohs(me.ss_family == AF_INET ? ((struct sockaddr_in *)&me)->sin_port
	                                  : ((struct sockaddr_in6 *)&me)->sin6_port));
	ev_io_set(&q->io, fd, EV_READ);
	ev_io_start(loop, &q->io);
}

static void
dns_next_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct dns_name *n = t->data;
	int fam = conf->dns.family;

	(void)revents;
	child_follow_log_level(seg);
	if (dns_pending(n))
		return; /* a round still runs (cannot happen: the timer is one-shot) */
	n->ngot = 0;
	n->nq = 0;
	if (fam != AF_INET6)
		dns_ask(loop, n, &n->q[n->nq++], RESOLVE_TYPE_A);
	if (fam != AF_INET)
		dns_ask(loop, n, &n->q[n->nq++], RESOLVE_TYPE_AAAA);
	if (!dns_pending(n)) {
		dns_finish(loop, n);
		return;
	}
	ev_timer_set(&n->deadline, conf->dns.timeout_ms / 1000.0, 0.);
	ev_timer_start(loop, &n->deadline);
}

int
dns_start(struct ev_loop *loop, const struct heritage *h)
{
	unsigned base = 0, k = 0;

	conf = h->conf;
	seg = h->stats;
	nnames = 0;
	for (unsigned g = 0; g < conf->nupstreams; g++)
		for (unsigned i = 0; i < conf->upstreams[g].nservers; i++)
			if (conf->upstreams[g].servers[i].host != NULL &&
			    conf->upstreams[g].servers[i].host_slot == 0)
				nnames++;
	if (nnames == 0)
		return 0;
	names = calloc(nnames, sizeof(*names));
	if (names == NULL)
		return -1;
	for (unsigned g = 0; g < conf->nupstreams; g++) {
		const struct conf_upstream *u = &conf->upstreams[g];

		for (unsigned i = 0; i < u->nservers; i++) {
			const struct conf_server *srv = &u->servers[i];
			struct dns_name *n;

			if (srv->host == NULL || srv->host_slot != 0)
				continue;
			n = &names[k++];
			n->u = u;
			n->slot = srv;
			n->nslots = srv->host_slots;
			n->rows = h->server_rows != NULL ? h->server_rows + base + i : NULL;
			/* "last": an earlier generation's answers stand until ours. */
			for (unsigned s = 0; s < n->nslots; s++)
				if (n->rows != NULL)
					stats_resolved_read(seg, n->rows[s], &n->pub[s]);
			for (unsigned q = 0; q < 2; q++) {
				ev_io_init(&n->q[q].io, dns_io_cb, -1, 0);
				n->q[q].io.data = &n->q[q];
				n->q[q].done = 1;
			}
			ev_init(&n->deadline, dns_deadline_cb);
			n->deadline.data = n;
			ev_timer_init(&n->next, dns_next_cb, 0.001 * k, 0.);
			n->next.data = n;
			ev_timer_start(loop, &n->next);
		}
		base += u->nservers;
	}
	return (int)nnames;
}

void
dns_stop(struct ev_loop *loop)
{
	for (unsigned k = 0; k < nnames; k++) {
		ev_timer_stop(loop, &names[k].next);
		ev_timer_stop(loop, &names[k].deadline);
		for (unsigned q = 0; q < 2; q++)
			dns_query_close(loop, &names[k].q[q]);
	}
	free(names);
	names = NULL;
	nnames = 0;
}
