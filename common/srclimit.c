/* SPDX-License-Identifier: BSD-2-Clause */
/* srclimit.c — per-source connection counts shared by the workers of one
 * master (see srclimit.h for the scheme and its invariant). Created by the
 * master before the first fork; workers count with compare-and-swap only;
 * the master takes back a dead worker's counts from its ledger. Never
 * blocks, never logs, allocates only at create. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "srclimit.h"

#define COUNT_BITS 24
#define COUNT_MASK ((UINT64_C(1) << COUNT_BITS) - 1)
#define TAG_OF(w) ((w) >> COUNT_BITS)
#define COUNT_OF(w) ((unsigned)((w)&COUNT_MASK))

/* The first page of the mapping; the words follow on the next. Every field
 * is written with atomics: any worker may change the counters. */
struct srclimit_hdr {
	uint64_t seed[2]; /* the hash key: never leaves this mapping */
	uint32_t nslots;  /* a power of two */
	uint32_t id;      /* srclimit_id */
	uint64_t used;
	uint64_t full;
	uint64_t reconciled;
	uint64_t uncertain;
};

struct srclimit {
	struct srclimit_hdr *hdr;
	uint64_t *words;
	uint32_t mask;
	size_t size;
};

/*
 * A worker's ledger: its own count per slot, and a sequence number that is
 * odd while it changes the table or its ledger (a seqlock's, one writer:
 * the worker). The master reads ledgers to take a dead worker's counts back
 * (srclimit_reconcile) and, with the sequence numbers, to find counts the
 * table holds that no ledger does (srclimit_audit): a worker killed between
 * its two writes, or a session lost between two workers in a hand-off.
 */
struct srclimit_ledger {
	uint64_t *seq;
	uint32_t *count; /* per slot */
	size_t size;
	uint32_t nslots;
};

/* The worker's updates: begin makes seq odd before any write of the
 * update can be seen, end makes it even after the last. */
static void
upd_begin(struct srclimit_ledger *l)
{
	__atomic_store_n(l->seq, __atomic_load_n(l->seq, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
}

static void
upd_end(struct srclimit_ledger *l)
{
	__atomic_store_n(l->seq, __atomic_load_n(l->seq, __ATOMIC_RELAXED) + 1, __ATOMIC_RELEASE);
}

static uint32_t
ledger_get(const struct srclimit_ledger *l, uint32_t i)
{
	return __atomic_load_n(&l->count[i], __ATOMIC_RELAXED);
}

static void
ledger_add(struct srclimit_ledger *l, uint32_t i, int d)
{
	__atomic_store_n(&l->count[i], ledger_get(l, i) + (uint32_t)d, __ATOMIC_RELAXED);
}

/* --- SipHash-2-4, keyed with the table's seed ------------------------------ */

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                   \
	do {                       \
		v0 += v1;          \
		v1 = ROTL(v1, 13); \
		v1 ^= v0;          \
		v0 = ROTL(v0, 32); \
		v2 += v3;          \
		v3 = ROTL(v3, 16); \
		v3 ^= v2;          \
		v0 += v3;          \
		v3 = ROTL(v3, 21); \
		v3 ^= v0;          \
		v2 += v1;          \
		v1 = ROTL(v1, 17); \
		v1 ^= v2;          \
		v2 = ROTL(v2, 32); \
	} while (0)

static uint64_t
siphash24(const uint64_t k[2], const uint8_t *in, size_t len)
{
	uint64_t v0 = UINT64_C(0x736f6d6570736575) ^ k[0];
	uint64_t v1 = UINT64_C(0x646f72616e646f6d) ^ k[1];
	uint64_t v2 = UINT64_C(0x6c7967656e657261) ^ k[0];
	uint64_t v3 = UINT64_C(0x7465646279746573) ^ k[1];
	uint64_t b = (uint64_t)len << 56, m;
	size_t i, end = len - len % 8;

	for (i = 0; i < end; i += 8) {
		m = 0;
		for (unsigned j = 0; j < 8; j++)
			m |= (uint64_t)in[i + j] << (8 * j);
		v3 ^= m;
		SIPROUND;
		SIPROUND;
		v0 ^= m;
	}
	for (unsigned j = 0; i + j < len; j++)
		b |= (uint64_t)in[i + j] << (8 * j);
	v3 ^= b;
	SIPROUND;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

/* The source's tag (never 0: 0 is an empty slot) and its home slot, from
 * independent bits of one hash. */
static uint64_t
src_tag(const struct srclimit *t, const uint8_t key[16], uint32_t group, uint32_t *home)
{
	uint8_t in[20];
	uint64_t h;

	memcpy(in, key, 16);
	memcpy(in + 16, &group, 4);
	h = siphash24(t->hdr->seed, in, sizeof(in));
	*home = (uint32_t)h & t->mask;
	h >>= COUNT_BITS;
	return h != 0 ? h : 1;
}

/* --- master ----------------------------------------------------------------- */

unsigned
srclimit_auto_slots(unsigned max_connections)
{
	uint64_t want = max_connections ? 4 * (uint64_t)max_connections : (1u << 20);

	return want > SRCLIMIT_MAX_SLOTS ? SRCLIMIT_MAX_SLOTS : (unsigned)want;
}

static uint32_t
round_slots(unsigned nslots)
{
	uint32_t n = SRCLIMIT_MIN_SLOTS;

	while (n < nslots && n < SRCLIMIT_MAX_SLOTS)
		n *= 2;
	return n;
}

struct srclimit *
srclimit_create(unsigned nslots)
{
	struct srclimit *t;
	uint32_t n = round_slots(nslots);
	size_t page = 4096, size = page + (size_t)n * sizeof(uint64_t);
	void *p;

	if ((t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	p = mmap(
	    NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED) {
		free(t);
		return NULL;
	}
	t->hdr = p;
	t->words = (uint64_t *)(void *)((char *)p + page);
	t->mask = n - 1;
	t->size = size;
	if (getrandom(t->hdr->seed, sizeof(t->hdr->seed), GRND_NONBLOCK) !=
	    (ssize_t)sizeof(t->hdr->seed)) {
		t->hdr->seed[0] =
		    (uint64_t)time(NULL) * UINT64_C(0x9E3779B97F4A7C15) ^ (uint64_t)getpid();
		t->hdr->seed[1] = (uint64_t)clock() ^ (uint64_t)(uintptr_t)p;
	}
	t->hdr->nslots = n;
	t->hdr->id = (uint32_t)(t->hdr->seed[0] >> 32) ^ (uint32_t)t->hdr->seed[1];
	if (t->hdr->id == 0)
		t->hdr->id = 1;
	return t;
}

void
srclimit_destroy(struct srclimit *t)
{
	if (t == NULL || t->hdr == NULL)
		return;
	munmap(t->hdr, t->size);
	free(t);
}

uint32_t
srclimit_id(const struct srclimit *t)
{
	return t != NULL ? t->hdr->id : 0;
}

struct srclimit_ledger *
srclimit_ledger_create(const struct srclimit *t)
{
	size_t page = 4096;
	size_t size = page + (size_t)(t->mask + 1) * sizeof(uint32_t);
	struct srclimit_ledger *l;
	void *p;

	p = mmap(
	    NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	/* The descriptor itself sits in the mapping's first page: the worker
	 * and the master reach it through the same pointer. */
	l = p;
	l->seq = (uint64_t *)(void *)((char *)p + 64);
	l->count = (uint32_t *)(void *)((char *)p + page);
	l->size = size;
	l->nslots = t->mask + 1;
	return l;
}

void
srclimit_ledger_destroy(struct srclimit_ledger *l)
{
	if (l != NULL)
		munmap(l, l->size);
}

uint64_t
srclimit_reconcile(struct srclimit *t, struct srclimit_ledger *l)
{
	size_t page = 4096, per = page / sizeof(uint32_t);
	unsigned char resident;
	uint64_t back = 0;

	if (t == NULL || l == NULL)
		return 0;
	if (__atomic_load_n(l->seq, __ATOMIC_ACQUIRE) & 1)
		__atomic_add_fetch(&t->hdr->uncertain, 1, __ATOMIC_RELAXED);
	for (uint32_t base = 0; base < l->nslots; base += (uint32_t)per) {
		/* A page the worker never touched holds only zeros: do not
		 * make the kernel fill it to read them. */
		if (mincore(&l->count[base], page, &resident) == 0 && !(resident & 1))
			continue;
		for (uint32_t i = base; i < base + per && i < l->nslots; i++) {
			uint32_t c = ledger_get(l, i);
			uint64_t w;

			if (c == 0)
				continue;
			w = __atomic_load_n(&t->words[i], __ATOMIC_RELAXED);
			do {
				/* The ledger never holds more than the table:
				 * each count went into the table first. */
				CHECK(COUNT_OF(w) >= c);
				if (COUNT_OF(w) < c)
					break;
			} while (!__atomic_compare_exchange_n(
			    &t->words[i], &w, w - c, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED));
			back += c;
		}
	}
	__atomic_add_fetch(&t->hdr->reconciled, back, __ATOMIC_RELAXED);
	return back;
}

/* 1 when the page holding p is in memory (a page never touched holds
 * zeros, and reading it would make the kernel allocate it). */
static int
resident(const void *p)
{
	unsigned char v;
	void *page = (void *)((uintptr_t)p & ~(uintptr_t)4095);

	return mincore(page, 4096, &v) != 0 || (v & 1);
}

uint64_t
srclimit_audit(struct srclimit *t, struct srclimit_ledger *const *ls, unsigned n)
{
	const uint32_t per = 4096 / sizeof(uint64_t);
	uint64_t s1[SRCLIMIT_AUDIT_MAX], fixed = 0;

	if (t == NULL || n > SRCLIMIT_AUDIT_MAX)
		return 0;
	for (uint32_t base = 0; base <= t->mask; base += per) {
		if (!resident(&t->words[base]))
			continue;
		for (uint32_t i = base; i < base + per; i++) {
			uint64_t w = __atomic_load_n(&t->words[i], __ATOMIC_RELAXED), sum = 0;
			int busy = 0;

			if (COUNT_OF(w) == 0)
				continue;
			/* A seqlock read over every ledger: the figures hold
			 * together only if no worker was in an update. */
			for (unsigned j = 0; j < n && !busy; j++)
				busy = (s1[j] = __atomic_load_n(ls[j]->seq, __ATOMIC_ACQUIRE)) & 1;
			if (busy)
				continue;
			w = __atomic_load_n(&t->words[i], __ATOMIC_ACQUIRE);
			for (unsigned j = 0; j < n; j++)
				sum += ledger_get(ls[j], i);
			__atomic_thread_fence(__ATOMIC_ACQUIRE);
			for (unsigned j = 0; j < n && !busy; j++)
				busy = __atomic_load_n(ls[j]->seq, __ATOMIC_RELAXED) != s1[j];
			if (busy || COUNT_OF(w) <= sum)
				continue;
			/* Held by no ledger: nobody will ever release it. */
			if (__atomic_compare_exchange_n(&t->words[i], &w, w - (COUNT_OF(w) - sum),
			        0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
				fixed += COUNT_OF(w) - sum;
		}
	}
	__atomic_add_fetch(&t->hdr->reconciled, fixed, __ATOMIC_RELAXED);
	return fixed;
}

void
srclimit_usage(const struct srclimit *t, struct srclimit_usage *out)
{
	memset(out, 0, sizeof(*out));
	if (t == NULL)
		return;
	out->slots = t->mask + 1;
	out->used = __atomic_load_n(&t->hdr->used, __ATOMIC_RELAXED);
	out->full = __atomic_load_n(&t->hdr->full, __ATOMIC_RELAXED);
	out->reconciled = __atomic_load_n(&t->hdr->reconciled, __ATOMIC_RELAXED);
	out->uncertain = __atomic_load_n(&t->hdr->uncertain, __ATOMIC_RELAXED);
}

/* --- workers ---------------------------------------------------------------- */

/* Debug builds: no other slot of the probe holds tag (the invariant). */
static void
check_unique(const struct srclimit *t, uint64_t tag, uint32_t home, uint32_t at)
{
	if (!CHECKING)
		return;
	for (uint32_t n = 0, i = home; n < SRCLIMIT_PROBE; n++, i = (i + 1) & t->mask) {
		uint64_t w = __atomic_load_n(&t->words[i], __ATOMIC_ACQUIRE);

		if (w == 0)
			return;
		CHECK(i == at || TAG_OF(w) != tag);
	}
}

/* The slot holding the source's tag, or UINT32_MAX. */
static uint32_t
src_find(const struct srclimit *t, uint64_t tag, uint32_t home)
{
	for (uint32_t n = 0, i = home; n < SRCLIMIT_PROBE; n++, i = (i + 1) & t->mask) {
		uint64_t w = __atomic_load_n(&t->words[i], __ATOMIC_ACQUIRE);

		if (w == 0)
			break;
		if (TAG_OF(w) == tag)
			return i;
	}
	return UINT32_MAX;
}

int
srclimit_get(struct srclimit *t, struct srclimit_ledger *l, const uint8_t key[16], uint32_t group,
    unsigned limit, int force)
{
	uint32_t home, i, n = 0;
	uint64_t tag = src_tag(t, key, group, &home);
	uint64_t w;

	upd_begin(l);
	i = home;
	w = __atomic_load_n(&t->words[i], __ATOMIC_ACQUIRE);
	while (n < SRCLIMIT_PROBE) {
		if (w == 0) {
			/* Every slot before this one holds another tag, for
			 * good: this is where the source goes. Losing the race
			 * for it, look at it again (it may be ours now). */
			if (!__atomic_compare_exchange_n(&t->words[i], &w, (tag << COUNT_BITS) | 1,
			        0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
				continue;
			__atomic_add_fetch(&t->hdr->used, 1, __ATOMIC_RELAXED);
			break;
		}
		if (TAG_OF(w) == tag) {
			if ((COUNT_OF(w) >= limit && !force) || COUNT_OF(w) == SRCLIMIT_COUNT_MAX) {
				upd_end(l);
				return 0;
			}
			if (!__atomic_compare_exchange_n(
			        &t->words[i], &w, w + 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
				continue;
			break;
		}
		n++;
		i = (i + 1) & t->mask;
		w = __atomic_load_n(&t->words[i], __ATOMIC_ACQUIRE);
	}
	if (n == SRCLIMIT_PROBE) {
		upd_end(l);
		__atomic_add_fetch(&t->hdr->full, 1, __ATOMIC_RELAXED);
		return -1;
	}
	check_unique(t, tag, home, i);
	/* Counted in the table: now in our ledger (see struct srclimit_ledger). */
	ledger_add(l, i, 1);
	upd_end(l);
	return 1;
}

int
srclimit_put(struct srclimit *t, struct srclimit_ledger *l, const uint8_t key[16], uint32_t group)
{
	uint32_t home, i;
	uint64_t tag = src_tag(t, key, group, &home);
	uint64_t w;

	if ((i = src_find(t, tag, home)) == UINT32_MAX || ledger_get(l, i) == 0)
		return 0;
	upd_begin(l);
	ledger_add(l, i, -1);
	w = __atomic_load_n(&t->words[i], __ATOMIC_RELAXED);
	do {
		/* Our ledger had one: the table has at least that one. */
		CHECK(TAG_OF(w) == tag && COUNT_OF(w) > 0);
		if (COUNT_OF(w) == 0)
			break; /* never borrow from the tag */
	} while (!__atomic_compare_exchange_n(
	    &t->words[i], &w, w - 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED));
	upd_end(l);
	return 1;
}

int
srclimit_move_out(
    struct srclimit *t, struct srclimit_ledger *l, const uint8_t key[16], uint32_t group)
{
	uint32_t home, i;
	uint64_t tag = src_tag(t, key, group, &home);

	if ((i = src_find(t, tag, home)) == UINT32_MAX || ledger_get(l, i) == 0)
		return 0;
	upd_begin(l);
	ledger_add(l, i, -1);
	upd_end(l);
	return 1;
}

int
srclimit_move_in(
    struct srclimit *t, struct srclimit_ledger *l, const uint8_t key[16], uint32_t group)
{
	uint32_t home, i;
	uint64_t tag = src_tag(t, key, group, &home);

	if ((i = src_find(t, tag, home)) == UINT32_MAX ||
	    COUNT_OF(__atomic_load_n(&t->words[i], __ATOMIC_RELAXED)) == 0)
		return 0;
	upd_begin(l);
	ledger_add(l, i, 1);
	upd_end(l);
	return 1;
}

int
srclimit_holds(const struct srclimit *t, const struct srclimit_ledger *l, const uint8_t key[16],
    uint32_t group)
{
	uint32_t home, i;
	uint64_t tag = src_tag(t, key, group, &home);

	return (i = src_find(t, tag, home)) != UINT32_MAX && ledger_get(l, i) > 0;
}

unsigned
srclimit_count(const struct srclimit *t, const uint8_t key[16], uint32_t group)
{
	uint32_t home, i;
	uint64_t tag = src_tag(t, key, group, &home);

	if ((i = src_find(t, tag, home)) == UINT32_MAX)
		return 0;
	return COUNT_OF(__atomic_load_n(&t->words[i], __ATOMIC_RELAXED));
}
