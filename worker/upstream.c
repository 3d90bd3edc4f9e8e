/* SPDX-License-Identifier: BSD-2-Clause */
/* upstream.c — choice of an upstream server and the non-blocking connect to
 * it, in a worker: smooth weighted round robin, least connections over all
 * workers, random with two choices over the same loads, or source hashing
 * (balance.c), skipping servers that are down (the checker's verdict, or this
 * worker's passive marks after failures) or full, and falling back to backup
 * servers; the connect carries the group's socket options and source address
 * (or the client's, transparent). Never blocks and never resolves: names
 * were resolved by the master at load, or, for servers with resolve = true,
 * by the checker, which publishes each slot's address in the segment
 * (stats_resolved). Never allocates per connection. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "balance.h"
#include "check.h"
#include "conf.h"
#include "heritage.h"
#include "log.h"
#include "net.h"
#include "stats.h"
#include "upstream.h"
#include "worker.h"

/* What this worker knows of one server of one group. */
struct up_server {
	unsigned fails;     /* connect failures in a row */
	unsigned active;    /* this worker's sessions holding it */
	double down_until;  /* passive mark: skipped until then (w->now) */
	int marked;         /* marked down since its last success */
	unsigned src_next;  /* source: the address to use next */
};

struct up_group {
	const struct conf_upstream *u;
	struct up_server *s;
	const uint16_t *rows; /* the servers' stats rows (heritage), or NULL */
	int32_t *cw;          /* smooth round robin weights */
	uint32_t *weight;     /* in force: the config's, or the operator's (segment) */
	uint32_t *ring_weight; /* source hashing: the weights the ring was built with */
	uint8_t *usable;      /* scratch for one pick */
	uint64_t *load;       /* scratch for one pick: active over all workers */
	struct balance_ring ring;
	unsigned next; /* least connections: where ties start */
	uint64_t rng;  /* random: this worker's generator state */
};

/* --- shared memory --------------------------------------------------------
 * Other workers' loads come from their server rows in the stats segment (one
 * relaxed load per worker slot in use, see worker_slots), health from the
 * checker's area. */

/* Sessions on server i of g in every worker: ours counted here from the
 * moment a connect starts (so a burst of picks sees each other), the others'
 * from their rows (their relayed sessions). */
static uint64_t
server_load(struct worker *w, const struct up_group *g, unsigned i)
{
	const struct stats_seg *seg = w->h->stats;
	uint64_t sum = g->s[i].active;
	unsigned row = g->rows != NULL ? g->rows[i] : STATS_NO_ROW, hi;

	if (row >= seg->nservers)
		return sum;
	hi = worker_slots(w);
	for (unsigned k = 0; k < hi; k++)
		if (k != w->h->slot)
			sum += __atomic_load_n(
			    &stats_slot_server(seg, k, row)->active, __ATOMIC_RELAXED);
	return sum;
}

/* The checker's verdict, for groups that have active checks: 1 when DOWN.
 * Never checked (yet) counts as up. */
static int
server_checked_down(const struct worker *w, const struct up_group *g, unsigned i)
{
	if (!g->u->health.enabled || g->rows == NULL)
		return 0;
	return stats_health_state(w->h->stats, g->rows[i]) == STATS_HEALTH_DOWN;
}

static void
server_publish(struct worker *w, struct up_group *g, unsigned i)
{
	unsigned u = (unsigned)(g - w->groups), k = i;

	/* The worker's server rows run in config order, group after group.
	 * Only on a mark or its end, so the walk costs nothing per event. */
	for (unsigned j = 0; j < u; j++)
		k += w->conf->upstreams[j].nservers;
	STATS_ROW_SET(w->sstats[k], marked_down, g->s[i].marked ? 1 : 0);
}

/* Where server i of g is now: its fixed address, or for a slot of a
 * resolved name the checker's last word (the address libc gave at load
 * until the first answer). Returns 0 with *sa and *len, or -1 when the
 * slot has no address (it takes no new connection; sessions on it drain). */
static int
server_address(const struct worker *w, const struct up_group *g, unsigned i,
    struct sockaddr_storage *tmp, const struct sockaddr **sa, socklen_t *len)
{
	const struct conf_server *srv = &g->u->servers[i];
	uint32_t state;

	if (srv->host == NULL) {
		*sa = (const struct sockaddr *)&srv->addr;
		*len = srv->addrlen;
		return 0;
	}
	state = stats_resolved_try(w->h->stats, g->rows != NULL ? g->rows[i] : STATS_NO_ROW, tmp,
	    len);
	if (state == STATS_ADDR_PRESENT) {
		*sa = (const struct sockaddr *)tmp;
		return 0;
	}
	if (state == STATS_ADDR_NONE && srv->addrlen > 0) {
		*sa = (const struct sockaddr *)&srv->addr;
		*len = srv->addrlen;
		return 0;
	}
	return -1;
}

/* --- choice --------------------------------------------------------------- */

static struct up_group *
group_of(struct worker *w, unsigned ui)
{
	return &w->groups[ui];
}

/* The operator's word on server i of g (sluicectl, through the segment):
 * its weight in force into g->weight[i], and 1 when it may take new
 * connections (ready, and a weight above 0). */
static int
server_admitted(struct worker *w, struct up_group *g, unsigned i)
{
	struct stats_server_admin a = { STATS_ADMIN_READY, STATS_WEIGHT_CONFIG };

	if (g->rows != NULL)
		a = stats_admin_get(w->h->stats, g->rows[i]);
	g->weight[i] = a.weight == STATS_WEIGHT_CONFIG ? g->u->servers[i].weight : a.weight;
	return a.state == STATS_ADMIN_READY && g->weight[i] > 0;
}

/* Source hashing places servers on its ring by weight: when an operator's
 * weights differ from the ring's, build it again (not per pick: only after a
 * change). Should that fail for memory, the old ring serves on. */
static void
ring_follow_weights(struct up_group *g)
{
	struct balance_ring r;
	unsigned n = g->u->nservers;

	if (memcmp(g->weight, g->ring_weight, n * sizeof(*g->weight)) == 0)
		return;
	if (balance_ring_build(&r, g->u->servers, g->weight, n) == -1) {
		log_warn("upstream %s: rebuilding the hash ring for new weights", g->u->name);
		return;
	}
	balance_ring_free(&g->ring);
	g->ring = r;
	memcpy(g->ring_weight, g->weight, n * sizeof(*g->weight));
}

/* Fill g->usable: servers admitted by the operator, neither down nor full,
 * and only backups when no other server qualifies. Returns how many are
 * usable. */
static unsigned
group_usable(struct worker *w, struct up_group *g)
{
	const struct conf_upstream *u = g->u;
	int need_load = u->balance == CONF_BALANCE_LEASTCONN || u->balance == CONF_BALANCE_RANDOM;
	double now = w->now;
	unsigned primaries = 0, backups = 0;

	for (unsigned i = 0; i < u->nservers; i++) {
		const struct conf_server *srv = &u->servers[i];
		int ok = server_admitted(w, g, i) && g->s[i].down_until <= now &&
		    !server_checked_down(w, g, i);

		if (ok && srv->host != NULL) {
			struct sockaddr_storage ss;
			const struct sockaddr *sa;
			socklen_t len;

			ok = server_address(w, g, i, &ss, &sa, &len) == 0;
		}

		if (ok && (need_load || srv->max_connections != 0)) {
			g->load[i] = server_load(w, g, i);
			if (srv->max_connections != 0 && g->load[i] >= srv->max_connections)
				ok = 0;
		}
		/* Backups stand in only when no other server can: mark them 2 for
		 * the second pass below. */
		g->usable[i] = ok ? (srv->backup ? 2 : 1) : 0;
		if (ok && srv->backup)
			backups++;
		else if (ok)
			primaries++;
	}
	for (unsigned i = 0; i < u->nservers; i++)
		g->usable[i] = primaries ? g->usable[i] == 1 : g->usable[i] == 2;
	if (u->balance == CONF_BALANCE_SOURCE)
		ring_follow_weights(g);
	return primaries ? primaries : backups;
}

int
upstream_pick(struct worker *w, unsigned ui, const struct sockaddr *client, int failed)
{
	struct up_group *g = group_of(w, ui);
	unsigned n = g->u->nservers;
	int i;

	if (group_usable(w, g) == 0)
		return -1;
	if (failed >= 0) {
		/* A retry walks on from the server that failed, so that retries
		 * visit distinct servers; the failed one comes last, for a group
		 * with nothing else to offer. */
		for (unsigned k = 1; k <= n; k++) {
			unsigned j = ((unsigned)failed + k) % n;

			if (g->usable[j])
				return (int)j;
		}
		return -1;
	}
	switch (g->u->balance) {
	case CONF_BALANCE_LEASTCONN:
		i = balance_leastconn_pick(g->weight, g->usable, g->load, n, g->next++);
		break;
	case CONF_BALANCE_RANDOM:
		i = balance_random2_pick(g->weight, g->usable, g->load, n, &g->rng);
		break;
	case CONF_BALANCE_SOURCE:
		i = balance_ring_pick(
		    &g->ring, client != NULL ? balance_hash_addr(client) : 0, g->usable);
		break;
	default:
		i = balance_rr_pick(g->cw, g->weight, g->usable, n);
		break;
	}
	return i;
}

static int
sockopt_int(int fd, int level, int opt, int v)
{
	return setsockopt(fd, level, opt, &v, sizeof(v));
}

/* What upstream_prep puts on one new socket. */
struct up_prep {
	const struct conf_upstream *u;
	const struct sockaddr *src; /* NULL: the kernel chooses */
	int transparent;
};

/* Bind the socket to p->src (port 0): with IP_BIND_ADDRESS_NO_PORT the
 * port is chosen at connect, per destination, so each source address
 * gives a whole port range toward each server. A transparent bind may
 * name an address that is not ours (the client's). */
static int
upstream_bind(int fd, const struct up_prep *p)
{
	struct sockaddr_storage a;
	socklen_t len;

	if (p->src->sa_family == AF_INET) {
		len = sizeof(struct sockaddr_in);
		memcpy(&a, p->src, len);
		((struct sockaddr_in *)&a)->sin_port = 0;
	} else {
		len = sizeof(struct sockaddr_in6);
		memcpy(&a, p->src, len);
		((struct sockaddr_in6 *)&a)->sin6_port = 0;
	}
	if (sockopt_int(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1) == -1)
		return -1;
	if (p->transparent &&
	    (a.ss_family == AF_INET ? sockopt_int(fd, IPPROTO_IP, IP_TRANSPARENT, 1)
	                            : sockopt_int(fd, IPPROTO_IPV6, IPV6_TRANSPARENT, 1)) == -1)
		return -1;
	return bind(fd, (struct sockaddr *)&a, len);
}

/* The group's options on a new upstream socket, before its connect: the
 * SYN already carries the mark and the source. Only for groups that set
 * any. A failure here is ours, not the server's: errno becomes
 * EADDRNOTAVAIL, which the caller does not count against the server. */
static int
upstream_prep(int fd, void *arg)
{
	const struct up_prep *p = arg;
	const struct conf_keepalive *k = &p->u->keepalive;
	const char *what = "mark";

	if (p->u->mark && sockopt_int(fd, SOL_SOCKET, SO_MARK, (int)p->u->mark) == -1)
		goto fail;
	what = "source";
	if (p->src != NULL && upstream_bind(fd, p) == -1)
		goto fail;
	if (!k->enabled)
		return 0;
	what = "keepalive";
	if (sockopt_int(fd, SOL_SOCKET, SO_KEEPALIVE, 1) == -1 ||
	    (k->idle_s && sockopt_int(fd, IPPROTO_TCP, TCP_KEEPIDLE, (int)k->idle_s) == -1) ||
	    (k->interval_s &&
	        sockopt_int(fd, IPPROTO_TCP, TCP_KEEPINTVL, (int)k->interval_s) == -1) ||
	    (k->count && sockopt_int(fd, IPPROTO_TCP, TCP_KEEPCNT, (int)k->count) == -1))
		goto fail;
	return 0;
fail:
	log_warn("upstream %s: setting %s on a connection", p->u->name, what);
	errno = EADDRNOTAVAIL;
	return -1;
}

/* The source a connection to srv comes from: its own, else its group's. */
static const struct conf_source *
source_of(const struct up_group *g, const struct conf_server *srv)
{
	if (srv->source.n > 0 || srv->source.transparent)
		return &srv->source;
	return &g->u->source;
}

int
upstream_wants_client(const struct worker *w, unsigned ui, unsigned server)
{
	const struct up_group *g = &w->groups[ui];

	return source_of(g, &g->u->servers[server])->transparent;
}

int
upstream_connect(struct worker *w, unsigned ui, unsigned server, const struct sockaddr *client)
{
	struct up_group *g = group_of(w, ui);
	const struct conf_server *srv = &g->u->servers[server];
	const struct conf_source *src = source_of(g, srv);
	struct up_prep p = {g->u, NULL, src->transparent};
	struct sockaddr_storage resolved;
	const struct sockaddr *to;
	struct sockaddr_in v4;
	socklen_t tolen;
	int fd;

	/* A slot whose address vanished since the pick: ours, not the server's. */
	if (server_address(w, g, server, &resolved, &to, &tolen) == -1) {
		errno = EADDRNOTAVAIL;
		return -1;
	}
	if (src->n > 0) {
		p.src = (const struct sockaddr *)&src->addr[g->s[server].src_next++ % src->n];
	} else if (src->transparent) {
		const struct sockaddr_in6 *c6 = (const struct sockaddr_in6 *)client;

		if (client == NULL) {
			errno = EADDRNOTAVAIL;
			return -1;
		}
		/* A dual-stack listener's IPv4 client, to an IPv4 server. */
		if (client->sa_family == AF_INET6 && to->sa_family == AF_INET &&
		    IN6_IS_ADDR_V4MAPPED(&c6->sin6_addr)) {
			memset(&v4, 0, sizeof(v4));
			v4.sin_family = AF_INET;
			memcpy(&v4.sin_addr, &c6->sin6_addr.s6_addr[12], 4);
			client = (const struct sockaddr *)&v4;
		}
		if (client->sa_family != to->sa_family) {
			log_warnx("upstream %s: a client of another address family cannot be "
			          "sent transparently to %s",
			    g->u->name, srv->address);
			errno = EADDRNOTAVAIL;
			return -1;
		}
		p.src = client;
	}
	fd = net_connect_prep(to, tolen,
	    p.src != NULL || g->u->mark || g->u->keepalive.enabled ? upstream_prep : NULL, &p);

	if (fd != -1) {
		g->s[server].active++;
		server_publish(w, g, server);
	}
	return fd;
}

void
upstream_adopt(struct worker *w, unsigned ui, unsigned server)
{
	struct up_group *g = group_of(w, ui);

	g->s[server].active++;
	server_publish(w, g, server);
}

void
upstream_release(struct worker *w, unsigned ui, unsigned server)
{
	struct up_group *g = group_of(w, ui);

	/* Only a count upstream_connect took may be given back: one too many
	 * wraps to "full" and refuses every client of the server. */
	CHECK(g->s[server].active > 0);
	g->s[server].active--;
	server_publish(w, g, server);
}

void
upstream_connected(struct worker *w, unsigned ui, unsigned server)
{
	struct up_group *g = group_of(w, ui);
	struct up_server *s = &g->s[server];

	s->fails = 0;
	if (s->marked) {
		s->marked = 0;
		s->down_until = 0;
		log_notice(
		    "server %s/%s is UP: connected", g->u->name, g->u->servers[server].address);
		server_publish(w, g, server);
	}
}

void
upstream_failed(struct worker *w, unsigned ui, unsigned server, const char *why)
{
	struct up_group *g = group_of(w, ui);
	struct up_server *s = &g->s[server];
	double now = w->now;

	s->fails++;
	if (g->u->max_fails == 0 || s->fails < g->u->max_fails || s->down_until > now)
		return;
	/* Past the mark, one more failure is enough: the server had its
	 * chance when the mark expired. */
	s->down_until = now + g->u->fail_timeout_ms / 1000.0;
	if (!s->marked)
		log_warnx("server %s/%s is DOWN for %gs: %s (%u failures)", g->u->name,
		    g->u->servers[server].address, g->u->fail_timeout_ms / 1000.0, why, s->fails);
	s->marked = 1;
	server_publish(w, g, server);
}

unsigned
upstream_tries(const struct worker *w, unsigned ui)
{
	return w->conf->upstreams[ui].retries + 1;
}

const char *
upstream_name(const struct worker *w, unsigned ui, unsigned server)
{
	return w->conf->upstreams[ui].servers[server].address;
}

int
upstream_init(struct worker *w)
{
	const struct conf *c = w->conf;

	unsigned base = 0;

	w->groups = calloc(c->nupstreams, sizeof(*w->groups));
	if (w->groups == NULL)
		return -1;
	for (unsigned gi = 0; gi < c->nupstreams; gi++) {
		struct up_group *g = &w->groups[gi];
		unsigned n = c->upstreams[gi].nservers, total = 0;

		g->u = &c->upstreams[gi];
		g->rows = w->h->server_rows != NULL ? w->h->server_rows + base : NULL;
		base += n;
		g->s = calloc(n, sizeof(*g->s));
		g->cw = calloc(n, sizeof(*g->cw));
		g->usable = calloc(n, sizeof(*g->usable));
		g->load = calloc(n, sizeof(*g->load));
		g->weight = calloc(n, sizeof(*g->weight));
		g->ring_weight = calloc(n, sizeof(*g->ring_weight));
		if (g->s == NULL || g->cw == NULL || g->usable == NULL || g->load == NULL ||
		    g->weight == NULL || g->ring_weight == NULL)
			return -1;
		for (unsigned k = 0; k < n; k++)
			g->weight[k] = g->ring_weight[k] = g->u->servers[k].weight;
		if (g->u->balance == CONF_BALANCE_SOURCE &&
		    balance_ring_build(&g->ring, g->u->servers, NULL, n) == -1)
			return -1;
		/* Each worker starts at another point of the round so that the
		 * first clients of all workers do not land on one server. */
		memset(g->usable, 1, n);
		for (unsigned k = 0; k < n; k++)
			total += g->u->servers[k].weight;
		for (unsigned k = 0; k < w->h->index % total; k++)
			balance_rr_pick(g->cw, g->weight, g->usable, n);
		g->next = w->h->index;
		/* Workers draw apart: seeded from the pid and the group, so
		 * that two workers' picks made at the same moment differ. */
		g->rng = ((uint64_t)getpid() << 32 ^ (uint64_t)w->h->slot << 16 ^ gi) *
		        0x9e3779b97f4a7c15ULL | 1;
	}
	return 0;
}
