/* SPDX-License-Identifier: BSD-2-Clause */
/* t_pool.c — unit tests of the fixed-size block pool: get/put, LIFO reuse of
 * the warmest block, the budget (exhaustion is a NULL, never an abort), memory
 * going back to the OS once a chunk is empty, and the figures it publishes. */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pool.h"
#include "tap.h"

/* Pages of [p, p+len) resident in memory, by mincore. */
static size_t
resident_pages(void *p, size_t len)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE), n = (len + page - 1) / page, r = 0;
	unsigned char vec[256];

	if (n > sizeof(vec) || mincore(p, len, vec) == -1)
		return (size_t)-1;
	for (size_t i = 0; i < n; i++)
		r += vec[i] & 1;
	return r;
}

int
main(void)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	struct pool_stats st;
	struct pool *p;
	void *blocks[64], *a, *b, *c;
	int distinct = 1, aligned = 1;

	errno = 0;
	ok(pool_create(0, 4096, 1 << 20) == NULL && errno == EINVAL, "zero block size refused");
	errno = 0;
	ok(pool_create(4096, 65536, 4096) == NULL && errno == EINVAL,
	    "budget below one chunk refused");

	/* 4 KB blocks, one page per chunk, a budget of 16 chunks. */
	p = pool_create(4096, page, 16 * page);
	if (p == NULL)
		bail("pool_create: %s", strerror(errno));
	is(pool_block_size(p), 4096, "block size kept");
	pool_get_stats(p, &st);
	ok(st.total == 0 && st.used == 0 && st.bytes_mapped == 0, "nothing committed before the first get");

	for (int i = 0; i < 16; i++) {
		blocks[i] = pool_get(p);
		if (blocks[i] == NULL)
			bail("pool_get %d failed early", i);
		memset(blocks[i], 0xa5, 4096); /* the whole block is ours to write */
		if ((uintptr_t)blocks[i] % 16)
			aligned = 0;
		for (int j = 0; j < i; j++)
			if (blocks[j] == blocks[i])
				distinct = 0;
	}
	ok(distinct, "16 gets return 16 distinct blocks");
	ok(aligned, "blocks are 16-byte aligned");
	pool_get_stats(p, &st);
	is(st.used, 16, "16 in use");
	is(st.high_water, 16, "high-water mark 16");
	is(st.bytes_mapped, 16 * page, "16 chunks hold memory");

	errno = 0;
	a = pool_get(p);
	ok(a == NULL && errno == ENOMEM, "get past the budget is NULL with ENOMEM");
	pool_get_stats(p, &st);
	is(st.failed, 1, "the refusal is counted");

	/* Give everything back: all but one spare chunk go back to the OS. */
	for (int i = 0; i < 16; i++)
		pool_put(p, blocks[i]);
	pool_get_stats(p, &st);
	is(st.used, 0, "all returned");
	is(st.high_water, 16, "high-water mark stays");
	is(st.bytes_mapped, page, "only one spare chunk keeps memory");
	is(st.released, 15, "15 chunks given back to the OS");
	{
		size_t res = 0;

		/* The first chunk to empty stays as the spare. */
		for (int i = 1; i < 16; i++)
			res += resident_pages(blocks[i], 4096);
		is(res, 0, "their pages are no longer resident (mincore)");
	}
	a = pool_get(p);
	ok(a == blocks[0], "the spare chunk serves the next get");
	b = pool_get(p);
	ok(b != NULL, "a released chunk is committed again on demand");
	ok(((unsigned char *)b)[0] == 0 && ((unsigned char *)b)[4095] == 0,
	    "a block from a released chunk holds no old bytes");
	pool_put(p, a);
	pool_put(p, b);
	pool_destroy(p);

	/* Small objects: many per chunk, carved lazily, LIFO within a chunk. */
	p = pool_create(200, page, 4 * page);
	if (p == NULL)
		bail("pool_create: %s", strerror(errno));
	is(pool_block_size(p), 208, "block size rounded up to 16");
	a = pool_get(p);
	pool_get_stats(p, &st);
	ok(st.total == 1 && st.bytes_mapped == page, "one get carves one block from one chunk");
	b = pool_get(p);
	c = pool_get(p);
	pool_put(p, b);
	pool_put(p, c);
	ok(pool_get(p) == c && pool_get(p) == b, "free blocks are reused LIFO: the warmest first");
	{
		size_t n = 3, cap = 4 * (page / 208);
		void *v[1024];

		v[0] = a;
		v[1] = b;
		v[2] = c;
		while (n < cap && n < 1024 && (v[n] = pool_get(p)) != NULL)
			n++;
		is(n, cap, "the budget holds exactly chunks * blocks per chunk");
		ok(pool_get(p) == NULL, "and not one more");
		/* A block given back in some chunk is what the next get takes:
		 * allocation concentrates where blocks come back, so other
		 * chunks can drain empty. */
		a = v[cap / 2];
		pool_put(p, a);
		ok(pool_get(p) == a, "the chunk a block came back to serves the next get");
		while (n > 0)
			pool_put(p, v[--n]);
	}
	pool_get_stats(p, &st);
	ok(st.used == 0 && st.bytes_mapped == page, "small pool drains to one spare chunk");
	pool_destroy(p);
	pool_destroy(NULL);
	ok(1, "pool_destroy(NULL) is harmless");

	done_testing();
	return tap_exit();
}
