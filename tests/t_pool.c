/* t_pool.c — unit tests of the fixed-size block pool: get/put, LIFO reuse,
 * the budget (exhaustion is a NULL, never an abort), and its figures. */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "pool.h"
#include "tap.h"

int
main(void)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	struct pool_stats st;
	struct pool *p;
	void *blocks[64], *a, *b;
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
	ok(st.total == 0 && st.used == 0 && st.bytes_mapped == 0, "nothing mapped before the first get");

	for (int i = 0; i < 16; i++) {
		blocks[i] = pool_get(p);
		if (blocks[i] == NULL)
			bail("pool_get %d failed early", i);
		memset(blocks[i], i, 4096); /* the whole block is ours to write */
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
	is(st.bytes_mapped, 16 * page, "16 chunks mapped");

	errno = 0;
	a = pool_get(p);
	ok(a == NULL && errno == ENOMEM, "get past the budget is NULL with ENOMEM");
	pool_get_stats(p, &st);
	is(st.failed, 1, "the refusal is counted");

	pool_put(p, blocks[3]);
	pool_put(p, blocks[7]);
	a = pool_get(p);
	b = pool_get(p);
	ok(a == blocks[7] && b == blocks[3], "free list is LIFO: the warmest block comes back first");
	pool_get_stats(p, &st);
	is(st.used, 16, "used back to 16");
	is(st.total, 16, "reuse carves nothing new");

	for (int i = 0; i < 16; i++)
		pool_put(p, blocks[i]);
	pool_get_stats(p, &st);
	is(st.used, 0, "all returned");
	is(st.high_water, 16, "high-water mark stays");
	pool_destroy(p);

	/* Small objects: many per chunk, carved lazily. */
	p = pool_create(200, page, 4 * page);
	if (p == NULL)
		bail("pool_create: %s", strerror(errno));
	is(pool_block_size(p), 208, "block size rounded up to 16");
	a = pool_get(p);
	pool_get_stats(p, &st);
	ok(st.total == 1 && st.bytes_mapped == page, "one get carves one block from one chunk");
	{
		size_t n = 1, cap = 4 * (page / 208);
		void *v[1024];

		v[0] = a;
		while (n < cap && n < 1024 && (v[n] = pool_get(p)) != NULL)
			n++;
		is(n, cap, "the budget holds exactly chunks * blocks per chunk");
		ok(pool_get(p) == NULL, "and not one more");
		while (n > 0)
			pool_put(p, v[--n]);
	}
	pool_destroy(p);
	pool_destroy(NULL);
	ok(1, "pool_destroy(NULL) is harmless");

	done_testing();
	return tap_exit();
}
