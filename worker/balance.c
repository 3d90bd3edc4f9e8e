/* SPDX-License-Identifier: BSD-2-Clause */
/* balance.c — server-choice algorithms (smooth weighted round robin, weighted
 * least connections, random with two choices, consistent-hash ring). Runs in
 * workers and unit tests; never logs, never does I/O, and allocates only when
 * a ring is built at worker start, never per pick. */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "balance.h"
#include "conf.h"

int
balance_rr_pick(int32_t *cw, const uint32_t *weight, const uint8_t *usable, unsigned n)
{
	int32_t total = 0;
	int best = -1;

	for (unsigned i = 0; i < n; i++) {
		if (!usable[i])
			continue;
		cw[i] += (int32_t)weight[i];
		total += (int32_t)weight[i];
		if (best == -1 || cw[i] > cw[best])
			best = (int)i;
	}
	if (best != -1)
		cw[best] -= total;
	return best;
}

int
balance_leastconn_pick(const uint32_t *weight, const uint8_t *usable,
    const uint64_t *load, unsigned n, unsigned start)
{
	int best = -1;

	if (n == 0)
		return -1;
	start %= n;
	for (unsigned k = 0; k < n; k++) {
		unsigned i = (start + k) % n;

		if (!usable[i] || weight[i] == 0)
			continue;
		/* (load_i + 1) / w_i < (load_b + 1) / w_b, without division:
		 * loads are bounded by max_connections (1e7) and weights by
		 * 256, far from overflowing 64 bits. */
		if (best == -1 ||
		    (load[i] + 1) * weight[best] < (load[best] + 1) * weight[i])
			best = (int)i;
	}
	return best;
}

/* xorshift64: fast, and plenty for spreading picks (never 0 from non-0). */
static uint64_t
balance_next(uint64_t *rng)
{
	uint64_t x = *rng ? *rng : 0x9e3779b97f4a7c15ULL;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*rng = x;
	return x;
}

/* A usable server other than `not` (-1: any), drawn with a chance
 * proportional to its weight; total is the sum of the candidates' weights. */
static int
balance_draw(const uint32_t *weight, const uint8_t *usable, unsigned n, int not,
    uint64_t total, uint64_t *rng)
{
	uint64_t r = (balance_next(rng) >> 11) % total;

	for (unsigned i = 0; i < n; i++) {
		if (!usable[i] || weight[i] == 0 || (int)i == not)
			continue;
		if (r < weight[i])
			return (int)i;
		r -= weight[i];
	}
	return -1; /* not reached while total is the candidates' sum */
}

int
balance_random2_pick(const uint32_t *weight, const uint8_t *usable, const uint64_t *load,
    unsigned n, uint64_t *rng)
{
	uint64_t total = 0;
	int a, b;

	for (unsigned i = 0; i < n; i++)
		if (usable[i])
			total += weight[i];
	if (total == 0)
		return -1;
	a = balance_draw(weight, usable, n, -1, total, rng);
	if (a == -1 || total == weight[a])
		return a; /* the only candidate */
	b = balance_draw(weight, usable, n, a, total - weight[a], rng);
	if (b == -1)
		return a;
	/* (load_b + 1) / w_b < (load_a + 1) / w_a, as in leastconn. */
	return (load[b] + 1) * weight[a] < (load[a] + 1) * weight[b] ? b : a;
}

/* splitmix64's finalizer: every input bit affects every output bit. */
static uint64_t
balance_mix(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

/* FNV-1a over bytes, then mixed: FNV alone spreads short keys poorly. */
static uint64_t
balance_hash_bytes(const void *data, size_t len, uint64_t seed)
{
	const unsigned char *p = data;
	uint64_t h = 0xcbf29ce484222325ULL ^ seed;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return balance_mix(h);
}

static int
balance_vnode_cmp(const void *a, const void *b)
{
	const struct balance_vnode *x = a, *y = b;

	if (x->point != y->point)
		return x->point < y->point ? -1 : 1;
	/* Equal points are vanishingly rare; order them by server so that the
	 * ring is the same in every worker. */
	return x->server < y->server ? -1 : x->server > y->server;
}

int
balance_ring_build(struct balance_ring *ring, const struct conf_server *servers,
    const uint32_t *weight, unsigned n)
{
	size_t total = 0, k = 0;

	ring->v = NULL;
	ring->n = 0;
	for (unsigned i = 0; i < n; i++)
		total += (size_t)(weight ? weight[i] : servers[i].weight) * BALANCE_VNODES;
	if (total == 0)
		return 0;
	if (total > UINT32_MAX) {
		errno = ENOMEM;
		return -1;
	}
	ring->v = calloc(total, sizeof(*ring->v));
	if (ring->v == NULL)
		return -1;
	for (unsigned i = 0; i < n; i++) {
		/* Keyed by the address text: a server keeps its points when
		 * others are added or removed around it in the list. */
		uint64_t key =
		    balance_hash_bytes(servers[i].address, strlen(servers[i].address), 0);

		unsigned points = (weight ? weight[i] : servers[i].weight) * BALANCE_VNODES;

		for (unsigned j = 0; j < points; j++) {
			ring->v[k].point = (uint32_t)(balance_mix(key + j) >> 32);
			ring->v[k].server = i;
			k++;
		}
	}
	qsort(ring->v, total, sizeof(*ring->v), balance_vnode_cmp);
	ring->n = (unsigned)total;
	return 0;
}

void
balance_ring_free(struct balance_ring *ring)
{
	free(ring->v);
	ring->v = NULL;
	ring->n = 0;
}

int
balance_ring_pick(const struct balance_ring *ring, uint32_t hash, const uint8_t *usable)
{
	unsigned lo = 0, hi = ring->n;

	/* The first point at or after hash; past the last, wrap to the start. */
	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;

		if (ring->v[mid].point < hash)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (unsigned k = 0; k < ring->n; k++) {
		const struct balance_vnode *v = &ring->v[(lo + k) % ring->n];

		if (usable[v->server])
			return (int)v->server;
	}
	return -1;
}

uint32_t
balance_hash_addr(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;

		return (uint32_t)(balance_hash_bytes(&sin->sin_addr, 4, 4) >> 32);
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;

		/* A dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d. */
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr))
			return (
			    uint32_t)(balance_hash_bytes(&sin6->sin6_addr.s6_addr[12], 4, 4) >> 32);
		return (uint32_t)(balance_hash_bytes(&sin6->sin6_addr, 16, 16) >> 32);
	}
	return 0;
}
