/* pool.c — fixed-size block pools for one worker process: relay buffers and
 * session objects. Blocks are carved lazily from mmap'ed chunks (untouched
 * memory costs no RSS) and recycled through a LIFO free list, so the most
 * recently used, cache-warm block goes out first. Not thread-safe by design:
 * a worker is one thread. Never logs, never aborts when the budget is spent. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pool.h"

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/asan_interface.h>
#define POOL_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define POOL_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POOL_POISON(p, n) ((void)(p), (void)(n))
#define POOL_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

struct pool_free {
	struct pool_free *next;
};

struct pool {
	size_t block_size;
	size_t chunk_bytes;     /* mapped per chunk, a multiple of the page size */
	size_t blocks_per_chunk;
	size_t max_chunks;      /* budget */
	size_t nchunks;
	void **chunks;          /* every mapping, for pool_destroy */
	struct pool_free *free; /* LIFO */
	char *carve;            /* next uncarved block in the newest chunk */
	size_t carve_left;      /* blocks left to carve there */
	struct pool_stats st;
};

struct pool *
pool_create(size_t block_size, size_t chunk_bytes, size_t max_bytes)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	struct pool *p;

	if (block_size == 0) {
		errno = EINVAL;
		return NULL;
	}
	block_size = (block_size + 15) & ~(size_t)15;
	if (chunk_bytes < block_size)
		chunk_bytes = block_size;
	chunk_bytes = (chunk_bytes + page - 1) / page * page;
	if (max_bytes < chunk_bytes) {
		errno = EINVAL;
		return NULL;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	p->block_size = block_size;
	p->chunk_bytes = chunk_bytes;
	p->blocks_per_chunk = chunk_bytes / block_size;
	p->max_chunks = max_bytes / chunk_bytes;
	/* The chunk table is small (a pointer per chunk of the budget) and is
	 * allocated once here, never on the get/put path. */
	if ((p->chunks = calloc(p->max_chunks, sizeof(void *))) == NULL) {
		free(p);
		return NULL;
	}
	return p;
}

void
pool_destroy(struct pool *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->nchunks; i++)
		munmap(p->chunks[i], p->chunk_bytes);
	free(p->chunks);
	free(p);
}

static int
pool_grow(struct pool *p)
{
	void *c;

	if (p->nchunks == p->max_chunks) {
		errno = ENOMEM;
		return -1;
	}
	c = mmap(NULL, p->chunk_bytes, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (c == MAP_FAILED) {
		errno = ENOMEM;
		return -1;
	}
	POOL_POISON(c, p->chunk_bytes);
	p->chunks[p->nchunks++] = c;
	p->carve = c;
	p->carve_left = p->blocks_per_chunk;
	p->st.bytes_mapped += p->chunk_bytes;
	return 0;
}

void *
pool_get(struct pool *p)
{
	void *b;

	if (p->free != NULL) {
		b = p->free;
		POOL_UNPOISON(b, p->block_size);
		p->free = p->free->next;
	} else {
		if (p->carve_left == 0 && pool_grow(p) == -1) {
			p->st.failed++;
			return NULL;
		}
		b = p->carve;
		POOL_UNPOISON(b, p->block_size);
		p->carve += p->block_size;
		p->carve_left--;
		p->st.total++;
	}
	if (++p->st.used > p->st.high_water)
		p->st.high_water = p->st.used;
	return b;
}

void
pool_put(struct pool *p, void *block)
{
	struct pool_free *f = block;

#ifdef SLUICE_DEBUG
	/* A released block must never carry one connection's bytes into
	 * another: make any read of stale data obvious in debug builds. */
	memset(block, 0xdb, p->block_size);
#endif
	f->next = p->free;
	p->free = f;
	POOL_POISON((char *)block + sizeof(*f), p->block_size - sizeof(*f));
	p->st.used--;
}

size_t
pool_block_size(const struct pool *p)
{
	return p->block_size;
}

void
pool_get_stats(const struct pool *p, struct pool_stats *out)
{
	*out = p->st;
}
