/* SPDX-License-Identifier: BSD-2-Clause */
/* upstream.c — choice of an upstream server and the non-blocking connect to
 * it, in a worker: smooth weighted round robin, least connections over all
 * workers, or source hashing (balance.c), skipping servers that are down
 * (the checker's verdict, or this worker's passive marks after failures) or
 * full, and falling back to backup servers. Never blocks (names were resolved
 * by the master at load) and never allocates per connection. */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

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
	unsigned fails;       /* connect failures in a row */
	unsigned active;      /* this worker's sessions holding it */
	double down_until; /* passive mark: skipped until then (w->now) */
	int marked;           /* marked down since its last success */
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
	int need_load = u->balance == CONF_BALANCE_LEASTCONN;
	double now = w->now;
	unsigned primaries = 0, backups = 0;

	for (unsigned i = 0; i < u->nservers; i++) {
		const struct conf_server *srv = &u->servers[i];
		int ok = server_admitted(w, g, i) && g->s[i].down_until <= now &&
		    !server_checked_down(w, g, i);

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

int
upstream_connect(struct worker *w, unsigned ui, unsigned server)
{
	struct up_group *g = group_of(w, ui);
	const struct conf_server *srv = &g->u->servers[server];
	int fd = net_connect((const struct sockaddr *)&srv->addr, srv->addrlen);

	if (fd != -1) {
		g->s[server].active++;
		server_publish(w, g, server);
	}
	return fd;
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
	}
	return 0;
}
