/* SPDX-License-Identifier: BSD-2-Clause */
/* edge.c — what a worker decides about a client before any upstream work:
 * the per-listener rate limit (a token bucket per worker), allow and deny
 * lists, the trusted list of accept_proxy listeners, the per-source
 * connection limit (counted over all workers in the master's shared table,
 * common/srclimit.h, else per worker) and the sni rule a ClientHello routes
 * by. Runs in every worker's loop. Never allocates after edge_init, never
 * blocks, never logs a refusal itself (the caller logs where it decides). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "cidr.h"
#include "conf.h"
#include "edge.h"
#include "log.h"
#include "heritage.h"
#include "session.h"
#include "srclimit.h"
#include "stats.h"
#include "tls_hello.h"
#include "worker.h"

/* One listener's share of its rate_limit: tokens refill at rate per second
 * up to burst (one second's worth, at least one connection). */
struct edge_bucket {
	double tokens, rate, burst;
	double last;
};

/*
 * One source's connections on one listener, counted by this worker alone:
 * the fallback for a source the shared table has no slot for (it is full
 * where the source hashes) and for a worker without the table. The table is
 * open addressing
 * with linear probing, sized once at start to a power of two at least twice
 * the worker's share of limits.max_connections: an entry exists only while
 * the source holds a counted connection here, so the table is never more than
 * half full and a probe is short. Deletion shifts the following entries back
 * (no tombstones), and the hash is seeded per worker so that clients cannot
 * choose addresses that pile up in one run. 24 bytes an entry: 10,000
 * connections on 2 workers cost 16,384 * 24 = 384 KiB per worker, untouched
 * pages of it costing nothing.
 */
struct edge_src {
	uint8_t key[16]; /* cidr_key form: IPv4 mapped into IPv6 */
	uint16_t li;
	uint16_t pad;
	uint32_t count; /* 0: empty slot */
};

struct edge {
	struct edge_bucket *buckets; /* per listener; rate 0 = unlimited */
	struct edge_src *src;        /* NULL when no listener limits sources */
	uint32_t mask;               /* slots - 1 */
	uint32_t used;
	uint64_t seed;
};

/* A session carries relay.c's struct session_tail past struct session when
 * per-source limits need the client address at close, connections are
 * logged (address, start time, byte counts) or listed on the control socket
 * (the same, and an id); otherwise nothing. */
size_t
edge_session_extra(const struct conf *c)
{
	/* timeouts.max_lifetime reads the start time and id from the tail. */
	if (c->log_connections || c->control_socket != NULL || c->max_lifetime_ms != 0)
		return sizeof(struct session_tail);
	for (unsigned i = 0; i < c->nlisteners; i++) {
		const struct conf_listener *l = &c->listeners[i];

		if (l->max_per_source > 0)
			return sizeof(struct session_tail);
		/* The upstream an sni rule chose. */
		if (l->nsni > 0)
			return sizeof(struct session_tail);
		/* A session that waits for a descriptor connects later and
		 * must still hash the client its PROXY header named. */
		if (l->proxy_accept && c->upstreams[l->upstream].balance == CONF_BALANCE_SOURCE)
			return sizeof(struct session_tail);
	}
	return 0;
}

int
edge_init(struct worker *w)
{
	const struct conf *c = w->conf;
	struct edge *e;
	int per_source = 0;

	w->session_tail = edge_session_extra(c);
	if ((e = calloc(1, sizeof(*e))) == NULL)
		return -1;
	if ((e->buckets = calloc(c->nlisteners, sizeof(*e->buckets))) == NULL) {
		free(e);
		return -1;
	}
	for (unsigned i = 0; i < c->nlisteners; i++) {
		struct edge_bucket *b = &e->buckets[i];

		if (c->listeners[i].max_per_source > 0)
			per_source = 1;
		if (c->listeners[i].rate_limit == 0)
			continue;
		b->rate = (double)c->listeners[i].rate_limit / c->workers;
		b->burst = b->rate < 1.0 ? 1.0 : b->rate;
		b->tokens = b->burst;
		b->last = w->now;
	}
	if (per_source) {
		uint64_t slots = 16;

		while (slots < 2 * (uint64_t)w->max_active)
			slots *= 2;
		if ((e->src = calloc(slots, sizeof(*e->src))) == NULL) {
			free(e->buckets);
			free(e);
			return -1;
		}
		e->mask = (uint32_t)(slots - 1);
		if (getrandom(&e->seed, sizeof(e->seed), GRND_NONBLOCK) != sizeof(e->seed))
			e->seed = (uint64_t)time(NULL) * 0x9E3779B97F4A7C15ULL ^ (uint64_t)getpid();
	}
	w->edge = e;
	return 0;
}

/* --- rate ----------------------------------------------------------------- */

static int
rate_take(struct worker *w, unsigned li)
{
	struct edge_bucket *b = &w->edge->buckets[li];
	double now = w->now;

	if (b->rate == 0)
		return 1;
	if (now > b->last) {
		b->tokens += (now - b->last) * b->rate;
		if (b->tokens > b->burst)
			b->tokens = b->burst;
		b->last = now;
	}
	if (b->tokens < 1.0)
		return 0;
	b->tokens -= 1.0;
	return 1;
}

/* --- per source ------------------------------------------------------------ */

/* The limit group of listener li in the shared table: its stats row, the
 * same in every generation for the same address, so that a reload keeps
 * counting into the same entries. */
static uint32_t
src_group(const struct worker *w, unsigned li)
{
	unsigned row = w->h->listener_rows != NULL ? w->h->listener_rows[li] : STATS_NO_ROW;

	return row != STATS_NO_ROW ? row : 0x10000u + li;
}

static int
src_shared(const struct worker *w)
{
	return w->h->srclimit != NULL && w->h->srcledger != NULL;
}

static uint32_t
src_hash(const struct edge *e, const uint8_t key[16], unsigned li)
{
	uint64_t a, b, h = e->seed ^ li;

	memcpy(&a, key, 8);
	memcpy(&b, key + 8, 8);
	h = (h ^ a) * 0x9E3779B97F4A7C15ULL;
	h ^= h >> 29;
	h = (h ^ b) * 0xBF58476D1CE4E5B9ULL;
	h ^= h >> 32;
	return (uint32_t)h;
}

/* The slot holding (key, li), or the empty slot where it would go. */
static uint32_t
src_find(const struct edge *e, const uint8_t key[16], unsigned li)
{
	uint32_t i = src_hash(e, key, li) & e->mask;

	/* Bounded: the table always has empty slots (see struct edge_src). */
	for (uint32_t n = 0; n <= e->mask; n++, i = (i + 1) & e->mask) {
		const struct edge_src *s = &e->src[i];

		if (s->count == 0 || (s->li == li && memcmp(s->key, key, 16) == 0))
			return i;
	}
	return UINT32_MAX;
}

/* Count one more connection of the client on li, unless it is at the limit
 * (and force: a session that exists already is counted whatever the limit).
 * Returns 0, or -1 when refused. */
static int
src_get(struct worker *w, unsigned li, const struct sockaddr *client, int force)
{
	struct edge *e = w->edge;
	unsigned limit = w->conf->listeners[li].max_per_source;
	uint8_t key[16];
	uint32_t i;

	if (limit == 0 || e->src == NULL || cidr_key(client, key) == -1)
		return 0;
	if (src_shared(w)) {
		int rc = srclimit_get(w->h->srclimit, w->h->srcledger, key, src_group(w, li),
		    limit, force);

		if (rc != -1)
			return rc == 1 ? 0 : -1;
		/* No slot for this source in the shared table: count it here,
		 * against the limit per worker (counted as source_table_full). */
	}
	i = src_find(e, key, li);
	if (i == UINT32_MAX)
		return -1;
	if (e->src[i].count == 0) {
		if (e->used >= e->mask)
			return -1; /* cannot happen: the table is twice the worker's limit */
		memcpy(e->src[i].key, key, 16);
		e->src[i].li = (uint16_t)li;
		e->src[i].count = 1;
		e->used++;
		return 0;
	}
	if (e->src[i].count >= limit && !force)
		return -1;
	e->src[i].count++;
	return 0;
}

void
edge_adopt(struct worker *w, unsigned li, const struct sockaddr *client, uint32_t table)
{
	uint8_t key[16];

	if (table != 0 && table == edge_table_id(w) && cidr_key(client, key) == 0) {
		/* Ours now; a listener that no longer limits sources drops it
		 * (relay_close will not release it). */
		if (srclimit_move_in(w->h->srclimit, w->h->srcledger, key, src_group(w, li))) {
			if (w->conf->listeners[li].max_per_source == 0 || w->edge->src == NULL)
				(void)srclimit_put(w->h->srclimit, w->h->srcledger, key,
				    src_group(w, li));
			return;
		}
	}
	(void)src_get(w, li, client, 1);
}

/* Release the source's count in this worker's own table. */
static void
src_put_local(struct worker *w, unsigned li, const uint8_t key[16])
{
	struct edge *e = w->edge;
	uint32_t i, j;

	i = src_find(e, key, li);
	if (i == UINT32_MAX || e->src[i].count == 0)
		return;
	if (--e->src[i].count > 0)
		return;
	/* Shift back the entries after i that would no longer be found across
	 * the hole: those whose home slot is not cyclically in (i, j]. */
	for (j = (i + 1) & e->mask; e->src[j].count != 0; j = (j + 1) & e->mask) {
		uint32_t home = src_hash(e, e->src[j].key, e->src[j].li) & e->mask;
		int keep = i <= j ? (home > i && home <= j) : (home > i || home <= j);

		if (!keep) {
			e->src[i] = e->src[j];
			i = j;
		}
	}
	e->src[i].count = 0;
	e->used--;
}

void
edge_release(struct worker *w, unsigned li, const struct sockaddr *client)
{
	uint8_t key[16];

	if (w->conf->listeners[li].max_per_source == 0 || w->edge->src == NULL ||
	    cidr_key(client, key) == -1)
		return;
	if (src_shared(w) && srclimit_put(w->h->srclimit, w->h->srcledger, key, src_group(w, li)))
		return;
	src_put_local(w, li, key);
}

void
edge_forget(struct worker *w, unsigned row, const struct sockaddr *client, uint32_t table)
{
	uint8_t key[16];

	/* A session of a listener this config lacks is never released here
	 * (relay_close skips the edge for it): the count its sender left in
	 * the table goes now, as it would have had the listener stayed and
	 * the session closed; no connection can come on that listener. */
	if (table == 0 || table != edge_table_id(w) || cidr_key(client, key) == -1)
		return;
	if (srclimit_move_in(w->h->srclimit, w->h->srcledger, key, row))
		(void)srclimit_put(w->h->srclimit, w->h->srcledger, key, row);
}

uint32_t
edge_table_id(const struct worker *w)
{
	return src_shared(w) ? srclimit_id(w->h->srclimit) : 0;
}

uint32_t
edge_handoff_table(const struct worker *w, unsigned li, const struct sockaddr *client)
{
	uint8_t key[16];

	/* Only a count we hold travels: a session of a listener without a
	 * limit (or counted per worker) has none in the table to take over. */
	if (!src_shared(w) || w->conf->listeners[li].max_per_source == 0 || w->edge->src == NULL ||
	    cidr_key(client, key) == -1 ||
	    !srclimit_holds(w->h->srclimit, w->h->srcledger, key, src_group(w, li)))
		return 0;
	return srclimit_id(w->h->srclimit);
}

void
edge_detach(struct worker *w, unsigned li, const struct sockaddr *client)
{
	uint8_t key[16];

	if (w->conf->listeners[li].max_per_source == 0 || w->edge->src == NULL ||
	    cidr_key(client, key) == -1)
		return;
	/* The count stays in the shared table while the session moves, so
	 * that no new connection takes its place meanwhile: the receiver
	 * takes it over (edge_adopt with our table's id). */
	if (src_shared(w) &&
	    srclimit_move_out(w->h->srclimit, w->h->srcledger, key, src_group(w, li)))
		return;
	src_put_local(w, li, key);
}

/* --- admission -------------------------------------------------------------- */

int
edge_admit_client(struct worker *w, unsigned li, const struct sockaddr *client, const char **why)
{
	const struct conf_listener *l = &w->conf->listeners[li];

	/* Deny wins: "allow 10/8, deny 10.1.2.3" means what it says. */
	if (cidr_match_any(l->deny, l->ndeny, client) ||
	    (l->nallow > 0 && !cidr_match_any(l->allow, l->nallow, client))) {
		*why = "acl_denied";
		return STATS_REFUSE_ACL_DENIED;
	}
	if (src_get(w, li, client, 0) == -1) {
		*why = "per_source_limit";
		return STATS_REFUSE_PER_SOURCE_LIMIT;
	}
	return -1;
}

int
edge_sni_route(const struct worker *w, unsigned li, const struct tls_hello *h)
{
	const struct conf_listener *l = &w->conf->listeners[li];
	int best = -1;
	size_t best_score = 0;

	for (unsigned i = 0; i < l->nsni; i++) {
		const struct conf_sni_rule *r = &l->sni[i];
		size_t score;

		if (r->alpn != NULL && !tls_hello_has_alpn(h, r->alpn))
			continue;
		if (r->name == NULL)
			score = 1;
		else if (h->name_len == 0 || !tls_hello_name_match(r->name, h->name))
			continue;
		else if (r->name[0] == '*')
			score = 2 + strlen(r->name); /* the longer suffix is the closer */
		else
			score = SIZE_MAX;
		if (score > best_score) {
			best = (int)i;
			best_score = score;
		}
	}
	return best;
}

int
edge_admit(struct worker *w, unsigned li, const struct sockaddr *peer, const char **why)
{
	const struct conf_listener *l = &w->conf->listeners[li];

	if (!rate_take(w, li)) {
		*why = "rate_limited";
		return STATS_REFUSE_RATE_LIMITED;
	}
	if (l->proxy_accept) {
		/* The client's own address is judged once its header names it.
		 * A UNIX listener's socket file says who may send one. */
		if (peer->sa_family != AF_UNIX && !cidr_match_any(l->trusted, l->ntrusted, peer)) {
			*why = "untrusted";
			return STATS_REFUSE_PROXY_REJECTED;
		}
		return -1;
	}
	return edge_admit_client(w, li, peer, why);
}
