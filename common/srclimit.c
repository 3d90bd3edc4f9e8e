/* SPDX-License-Identifier: BSD-2-Clause */
/* srclimit.c — per-source connection counts shared by the workers of one
 * master (see srclimit.h for the scheme and its invariant). Created by the
 * master before the first fork; workers count with compare-and-swap only;
 * the master takes back a dead worker's counts from its ledger. Never
 * blocks, never logs, allocates only at create. */
#include <errno.h>
#include <sched.h>
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
#define PEND_BIT (UINT64_C(1) << COUNT_BITS)
#define TAG_SHIFT (COUNT_BITS + 1)
#define TAG_OF(w) ((w) >> TAG_SHIFT)
#define COUNT_OF(w) ((unsigned)((w)&COUNT_MASK))
#define PENDING(w) (((w)&PEND_BIT) != 0)
/* The tag no source has: a claim taken back leaves it. */
#define WORD_TOMB ((uint64_t)1 << TAG_SHIFT)
/* A slot a source may take: never used (0: the end of every probe through
 * it), or settled at count 0 (a tag whose source left, or WORD_TOMB). */
#define FREE(w) ((w) == 0 || (COUNT_OF(w) == 0 && !PENDING(w)))

/* How long a worker waits for another's claim of the same source to end
 * (a few dozen instructions, unless that worker lost its CPU): spins, then
 * yields; past that the source is "not counted here" for this connection. */
#define SPINS 256
#define YIELDS 64
/* Looks along a probe before the same answer: each retry means another
 * worker changed a slot of this source's probe. */
#define TRIES 64

/* The first page of the mapping; the words follow on the next. Every field
 * is written with atomics: any worker may change the counters. */
struct srclimit_hdr {
	uint64_t seed[2]; /* the hash key: never leaves this mapping */
	uint32_t nslots;  /* a power of two */
	uint32_t id;      /* srclimit_id */
	uint64_t full;
	uint64_t reconciled;
	uint64_t uncertain;
	uint32_t owners; /* the last ledger owner number given */
	uint32_t pad;
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
 * owner marks the worker's claims in the table, claim says where its claim
 * in progress is (slot + 1), so that the master can take back the claim of
 * a worker that died in it.
 */
struct srclimit_ledger {
	uint64_t *seq;
	uint32_t *count; /* per slot */
	size_t size;
	uint32_t nslots;
	uint32_t owner; /* 1..COUNT_MASK */
	uint32_t claim; /* slot + 1 of a claim in progress, or 0 */
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

/* The source's tag (never 0 or 1: 0 is an empty slot, 1 WORD_TOMB's) and
 * its home slot, from independent bits of one hash. */
static uint64_t
src_tag(const struct srclimit *t, const uint8_t key[16], uint32_t group, uint32_t *home)
{
	uint8_t in[20];
	uint64_t h;

	memcpy(in, key, 16);
	memcpy(in + 16, &group, 4);
	h = siphash24(t->hdr->seed, in, sizeof(in));
	*home = (uint32_t)h & t->mask;
	h >>= TAG_SHIFT;
	return h > 1 ? h : h + 2;
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
	/* Unique among the ledgers that exist at once: it would take 16M
	 * workers forked while one lives to meet its own number again. */
	l->owner = __atomic_add_fetch(&t->hdr->owners, 1, __ATOMIC_RELAXED) % COUNT_MASK + 1;
	return l;
}

void
srclimit_ledger_destroy(struct srclimit_ledger *l)
{
	if (l != NULL)
		munmap(l, l->size);
}

/* Take c from the count of slot i (the master's: reconcile, audit), unless
 * the word is no longer w. Returns 1 when taken. */
static int
take_back(struct srclimit *t, uint32_t i, uint64_t w, unsigned c)
{
	return __atomic_compare_exchange_n(
	    &t->words[i], &w, w - c, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
}

uint64_t
srclimit_reconcile(struct srclimit *t, struct srclimit_ledger *l)
{
	size_t page = 4096, per = page / sizeof(uint32_t);
	unsigned char resident;
	uint64_t back = 0;
	uint32_t claim;

	if (t == NULL || l == NULL)
		return 0;
	if (__atomic_load_n(l->seq, __ATOMIC_ACQUIRE) & 1)
		__atomic_add_fetch(&t->hdr->uncertain, 1, __ATOMIC_RELAXED);
	/* A claim it died in: the connection it was for died with it. */
	if ((claim = __atomic_load_n(&l->claim, __ATOMIC_RELAXED)) != 0 && claim <= l->nslots) {
		uint64_t w = __atomic_load_n(&t->words[claim - 1], __ATOMIC_ACQUIRE);

		if (PENDING(w) && COUNT_OF(w) == l->owner &&
		    __atomic_compare_exchange_n(
		        &t->words[claim - 1], &w, WORD_TOMB, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
			back++;
	}
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
			do {
				w = __atomic_load_n(&t->words[i], __ATOMIC_RELAXED);
				/* The ledger never holds more than the table:
				 * each count went into the table first, and a
				 * slot with a count is nobody's to claim. */
				CHECK(!PENDING(w) && COUNT_OF(w) >= c);
				if (PENDING(w) || COUNT_OF(w) < c)
					break;
			} while (!take_back(t, i, w, c));
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

			/* A claim in progress is its worker's to settle, or
			 * the master's to take back when that worker died. */
			if (COUNT_OF(w) == 0 || PENDING(w))
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
			if (busy || PENDING(w) || COUNT_OF(w) <= sum)
				continue;
			/* Held by no ledger: nobody will ever release it. */
			if (take_back(t, i, w, COUNT_OF(w) - (unsigned)sum))
				fixed += COUNT_OF(w) - sum;
		}
	}
	__atomic_add_fetch(&t->hdr->reconciled, fixed, __ATOMIC_RELAXED);
	return fixed;
}

/* Counted by looking, not kept on the workers' path: a counter every
 * worker changed would be one more shared line per connection, and one a
 * worker killed between its two writes would leave wrong for good. */
uint64_t
srclimit_used(const struct srclimit *t)
{
	const uint32_t per = 4096 / sizeof(uint64_t);
	uint32_t pages = (t->mask + 1) / per;
	unsigned char *vec = malloc(pages);
	uint64_t used = 0;

	if (t == NULL) {
		free(vec);
		return 0;
	}
	if (vec != NULL && mincore(t->words, (size_t)pages * 4096, vec) != 0) {
		free(vec);
		vec = NULL;
	}
	for (uint32_t p = 0; p < pages; p++) {
		if (vec != NULL && !(vec[p] & 1))
			continue;
		for (uint32_t i = p * per; i < (p + 1) * per; i++) {
			uint64_t w = __atomic_load_n(&t->words[i], __ATOMIC_RELAXED);

			used += COUNT_OF(w) != 0 && !PENDING(w);
		}
	}
	free(vec);
	return used;
}

void
srclimit_usage(const struct srclimit *t, struct srclimit_usage *out)
{
	memset(out, 0, sizeof(*out));
	if (t == NULL)
		return;
	out->slots = t->mask + 1;
	out->full = __atomic_load_n(&t->hdr->full, __ATOMIC_RELAXED);
	out->reconciled = __atomic_load_n(&t->hdr->reconciled, __ATOMIC_RELAXED);
	out->uncertain = __atomic_load_n(&t->hdr->uncertain, __ATOMIC_RELAXED);
}

/* --- workers ---------------------------------------------------------------- */

void (*srclimit_test_pause)(int stage);

uint32_t
srclimit_home(const struct srclimit *t, const uint8_t key[16], uint32_t group)
{
	uint32_t home;

	(void)src_tag(t, key, group, &home);
	return home;
}

static void
cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#else
	__asm__ __volatile__("" ::: "memory");
#endif
}

/* Wait, boundedly, for slot i to hold something else than w: a claim in
 * progress ending. 0 when it did not (its worker stopped, or died and the
 * master has not reaped it yet). */
static int
wait_change(const struct srclimit *t, uint32_t i, uint64_t w)
{
	for (unsigned n = 0; n < SPINS + YIELDS; n++) {
		if (__atomic_load_n(&t->words[i], __ATOMIC_ACQUIRE) != w)
			return 1;
		if (n < SPINS)
			cpu_relax();
		else
			sched_yield();
	}
	return 0;
}

/*
 * Along the source's probe (from home to the first never-used slot, at
 * most SRCLIMIT_PROBE slots), what a lookup needs: its settled slot, else
 * a slot where a claim of it is in progress, and the first free slot.
 */
struct look {
	uint32_t settled, pending, free;
	uint64_t sw, pw, fw; /* what each held */
};

static void
look(const struct srclimit *t, uint64_t tag, uint32_t home, struct look *k)
{
	k->settled = k->pending = k->free = UINT32_MAX;
	for (uint32_t n = 0, i = home; n < SRCLIMIT_PROBE; n++, i = (i + 1) & t->mask) {
		uint64_t w = __atomic_load_n(&t->words[i], __ATOMIC_ACQUIRE);

		if (FREE(w) && k->free == UINT32_MAX) {
			k->free = i;
			k->fw = w;
		}
		if (w == 0)
			return;
		if (TAG_OF(w) != tag)
			continue;
		if (!PENDING(w)) {
			k->settled = i;
			k->sw = w;
			return;
		}
		if (k->pending == UINT32_MAX) {
			k->pending = i;
			k->pw = w;
		}
	}
}

/* Debug builds: no other slot of the probe is the source's settled slot
 * (the invariant). */
static void
check_unique(const struct srclimit *t, uint64_t tag, uint32_t home, uint32_t at)
{
	if (!CHECKING)
		return;
	for (uint32_t n = 0, i = home; n < SRCLIMIT_PROBE; n++, i = (i + 1) & t->mask) {
		uint64_t w = __atomic_load_n(&t->words[i], __ATOMIC_ACQUIRE);

		if (w == 0)
			return;
		CHECK(i == at || PENDING(w) || TAG_OF(w) != tag);
	}
}

/*
 * Claim free slot i (which held w) for the source, to be its slot with a
 * count of 1: 1 when it is, 0 when this claim lost (the slot was taken, or
 * another claim of the source wins: look again), -1 when a claim this one
 * had to wait for did not end.
 *
 * Why this keeps one slot per source without a lock: a claim marks the
 * slot pending first, then looks along the whole probe again for another
 * slot of the source. Of two claims of one source, at least one sees the
 * other (each writes before it reads, and the two writes and reads are in
 * one total order). Seeing a settled slot, or a claim earlier on the probe,
 * a claim withdraws; seeing a claim later on the probe, it waits for that
 * one to settle (then withdraws) or withdraw (then looks again). The later
 * of two claims never waits, so waits end. A slot never goes back to
 * never-used, so a probe never ends sooner than it did.
 */
static int
claim(struct srclimit *t, struct srclimit_ledger *l, uint64_t tag, uint32_t home, uint32_t i,
    uint64_t w)
{
	uint64_t mine = (tag << TAG_SHIFT) | PEND_BIT | l->owner;
	int rc = 0;

	__atomic_store_n(&l->claim, i + 1, __ATOMIC_RELAXED);
	if (!__atomic_compare_exchange_n(
	        &t->words[i], &w, mine, 0, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED)) {
		__atomic_store_n(&l->claim, 0, __ATOMIC_RELAXED);
		return 0;
	}
	if (srclimit_test_pause != NULL)
		srclimit_test_pause(1);
	for (;;) {
		uint32_t later = UINT32_MAX, n, j;
		uint64_t lw = 0;
		int withdraw = 0;

		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		for (n = 0, j = home; n < SRCLIMIT_PROBE && !withdraw; n++, j = (j + 1) & t->mask) {
			uint64_t v = __atomic_load_n(&t->words[j], __ATOMIC_SEQ_CST);

			if (v == 0)
				break;
			if (j == i || TAG_OF(v) != tag)
				continue;
			if (!PENDING(v) || ((j - home) & t->mask) < ((i - home) & t->mask))
				withdraw = 1;
			else if (later == UINT32_MAX) {
				later = j;
				lw = v;
			}
		}
		if (!withdraw && later == UINT32_MAX) {
			/* Only this worker writes a pending word it owns. */
			__atomic_store_n(&t->words[i], (tag << TAG_SHIFT) | 1, __ATOMIC_RELEASE);
			rc = 1;
			break;
		}
		if (withdraw || !wait_change(t, later, lw)) {
			__atomic_store_n(&t->words[i], WORD_TOMB, __ATOMIC_RELEASE);
			rc = withdraw ? 0 : -1;
			break;
		}
	}
	__atomic_store_n(&l->claim, 0, __ATOMIC_RELAXED);
	return rc;
}

int
srclimit_get(struct srclimit *t, struct srclimit_ledger *l, const uint8_t key[16], uint32_t group,
    unsigned limit, int force)
{
	uint32_t home, at = UINT32_MAX;
	uint64_t tag = src_tag(t, key, group, &home);
	int rc = -1;

	upd_begin(l);
	for (unsigned tries = 0; tries < TRIES; tries++) {
		struct look k;
		uint64_t w;

		look(t, tag, home, &k);
		if (k.settled != UINT32_MAX) {
			w = k.sw;
			if ((COUNT_OF(w) >= limit && !force) || COUNT_OF(w) == SRCLIMIT_COUNT_MAX) {
				rc = 0;
				break;
			}
			/* A failed swap: the count changed, or the slot went
			 * to another source after this one's left. */
			if (!__atomic_compare_exchange_n(&t->words[k.settled], &w, w + 1, 0,
			        __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
				continue;
			at = k.settled;
			rc = 1;
			break;
		}
		if (k.pending != UINT32_MAX) {
			/* Another worker is claiming a slot for the source. */
			if (!wait_change(t, k.pending, k.pw))
				break;
			continue;
		}
		if (k.free == UINT32_MAX)
			break;
		if (srclimit_test_pause != NULL)
			srclimit_test_pause(0);
		if ((rc = claim(t, l, tag, home, k.free, k.fw)) != 0) {
			at = k.free;
			break;
		}
		rc = -1;
	}
	if (rc == 1) {
		check_unique(t, tag, home, at);
		/* Counted in the table: now in our ledger (see struct
		 * srclimit_ledger). */
		ledger_add(l, at, 1);
	}
	upd_end(l);
	if (rc == -1)
		__atomic_add_fetch(&t->hdr->full, 1, __ATOMIC_RELAXED);
	return rc;
}

/* The source's settled slot, or UINT32_MAX. */
static uint32_t
src_find(const struct srclimit *t, const uint8_t key[16], uint32_t group, uint64_t *tagp)
{
	uint32_t home;
	uint64_t tag = src_tag(t, key, group, &home);
	struct look k;

	look(t, tag, home, &k);
	if (tagp != NULL)
		*tagp = tag;
	return k.settled;
}

int
srclimit_put(struct srclimit *t, struct srclimit_ledger *l, const uint8_t key[16], uint32_t group)
{
	uint64_t tag, w;
	uint32_t i;

	if ((i = src_find(t, key, group, &tag)) == UINT32_MAX || ledger_get(l, i) == 0)
		return 0;
	upd_begin(l);
	ledger_add(l, i, -1);
	w = __atomic_load_n(&t->words[i], __ATOMIC_RELAXED);
	do {
		/* Our ledger had one: the table has at least that one, and
		 * a slot with a count is nobody's to claim. */
		CHECK(TAG_OF(w) == tag && !PENDING(w) && COUNT_OF(w) > 0);
		if (COUNT_OF(w) == 0 || PENDING(w))
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
	uint32_t i;

	if ((i = src_find(t, key, group, NULL)) == UINT32_MAX || ledger_get(l, i) == 0)
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
	uint32_t i;

	/* The count the sender left keeps the slot the source's until this
	 * takes it over. */
	if ((i = src_find(t, key, group, NULL)) == UINT32_MAX ||
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
	uint32_t i;

	return (i = src_find(t, key, group, NULL)) != UINT32_MAX && ledger_get(l, i) > 0;
}

unsigned
srclimit_count(const struct srclimit *t, const uint8_t key[16], uint32_t group)
{
	uint32_t i;

	if ((i = src_find(t, key, group, NULL)) == UINT32_MAX)
		return 0;
	return COUNT_OF(__atomic_load_n(&t->words[i], __ATOMIC_RELAXED));
}
