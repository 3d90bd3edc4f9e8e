/* SPDX-License-Identifier: BSD-2-Clause */
/* pool.c — fixed-size block pools for one worker process: relay buffers and
 * session objects. Not thread-safe by design: a worker is one thread. Never
 * logs, never aborts when the budget is spent.
 *
 * The whole budget is reserved up front as one address range (no memory is
 * committed until touched) and cut into chunks. Blocks are carved lazily and
 * recycled LIFO within their chunk, so the most recently used, cache-warm
 * block goes out first. Allocation prefers the chunk most recently given a
 * block back, and a chunk whose blocks have all come back is returned to the
 * OS with MADV_DONTNEED once one spare empty chunk is already kept: after a
 * burst, memory drains back instead of pinning RSS forever. A block's chunk is
 * found by arithmetic on its address, so get and put are O(1) and touch no
 * other chunk. */
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

/* Empty chunks kept committed, so a pool breathing around a chunk boundary
 * does not pay a page fault storm per breath. */
#define POOL_SPARE_CHUNKS 1

struct pool_free {
	struct pool_free *next;
};

struct chunk {
	struct chunk *next, *prev; /* in the pool's list of chunks with room */
	struct pool_free *free;    /* blocks given back, LIFO */
	unsigned used;             /* blocks handed out */
	unsigned carved;           /* blocks ever carved since committed */
	unsigned char live;        /* holds memory (carved from, not released) */
	unsigned char listed;      /* on the room list */
};

struct pool {
	char *base;               /* the reserved range */
	size_t block_size;
	size_t chunk_bytes;       /* a multiple of the page size */
	unsigned per_chunk;       /* blocks per chunk */
	unsigned nchunks;         /* chunks in the budget */
	unsigned fresh;           /* chunks [fresh, nchunks) never used */
	unsigned empty;           /* live chunks with no block out */
	struct chunk *room;       /* live chunks with a free or uncarved block */
	unsigned *released;       /* stack of chunks given back to the OS */
	unsigned nreleased;
	struct chunk *chunks;     /* headers, one per chunk of the budget */
	struct pool_stats st;
};

/* Block and chunk sizes as the pool uses them: a block rounded up to 16
 * bytes, a chunk holding at least one block and rounded up to pages. 0 when
 * either is beyond POOL_MAX_RESERVE (or block_size is 0). */
static size_t
pool_geometry(size_t block_size, size_t chunk_bytes, size_t *block)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	if (block_size == 0 || block_size > POOL_MAX_RESERVE || chunk_bytes > POOL_MAX_RESERVE)
		return 0;
	block_size = (block_size + 15) & ~(size_t)15;
	if (chunk_bytes < block_size)
		chunk_bytes = block_size;
	chunk_bytes = (chunk_bytes + page - 1) / page * page;
	if (block != NULL)
		*block = block_size;
	return chunk_bytes > POOL_MAX_RESERVE ? 0 : chunk_bytes;
}

size_t
pool_min_bytes(size_t block_size, size_t chunk_bytes)
{
	return pool_geometry(block_size, chunk_bytes, NULL);
}

size_t
pool_max_bytes(size_t block_size, size_t chunk_bytes)
{
	size_t chunk = pool_geometry(block_size, chunk_bytes, NULL);
	size_t n = chunk ? POOL_MAX_RESERVE / chunk : 0;

	return (n > POOL_MAX_CHUNKS ? POOL_MAX_CHUNKS : n) * chunk;
}

struct pool *
pool_create(size_t block_size, size_t chunk_bytes, size_t max_bytes)
{
	size_t max = pool_max_bytes(block_size, chunk_bytes);
	struct pool *p;

	chunk_bytes = pool_geometry(block_size, chunk_bytes, &block_size);
	if (chunk_bytes == 0 || max_bytes < chunk_bytes || max_bytes > max) {
		errno = EINVAL;
		return NULL;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	p->block_size = block_size;
	p->chunk_bytes = chunk_bytes;
	p->per_chunk = (unsigned)(chunk_bytes / block_size);
	p->nchunks = (unsigned)(max_bytes / chunk_bytes);
	/* Headers and the release stack are small (tens of bytes per chunk of
	 * the budget) and allocated once, never on the get/put path. */
	p->chunks = calloc(p->nchunks, sizeof(*p->chunks));
	p->released = calloc(p->nchunks, sizeof(*p->released));
	/* Address space only: MAP_NORESERVE pages cost nothing until touched. */
	p->base = mmap(NULL, (size_t)p->nchunks * chunk_bytes, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p->chunks == NULL || p->released == NULL || p->base == MAP_FAILED) {
		if (p->base != MAP_FAILED && p->base != NULL)
			munmap(p->base, (size_t)p->nchunks * chunk_bytes);
		free(p->chunks);
		free(p->released);
		free(p);
		errno = ENOMEM;
		return NULL;
	}
	/* Not poisoned here: ASan's shadow for the whole range would cost an
	 * eighth of the budget in RSS. Blocks are poisoned as they come back. */
	return p;
}

void
pool_destroy(struct pool *p)
{
	if (p == NULL)
		return;
	POOL_UNPOISON(p->base, (size_t)p->nchunks * p->chunk_bytes);
	munmap(p->base, (size_t)p->nchunks * p->chunk_bytes);
	free(p->chunks);
	free(p->released);
	free(p);
}

static char *
chunk_base(const struct pool *p, const struct chunk *c)
{
	return p->base + (size_t)(c - p->chunks) * p->chunk_bytes;
}

static void
room_push(struct pool *p, struct chunk *c)
{
	c->prev = NULL;
	c->next = p->room;
	if (p->room != NULL)
		p->room->prev = c;
	p->room = c;
	c->listed = 1;
}

static void
room_unlink(struct pool *p, struct chunk *c)
{
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		p->room = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	c->next = c->prev = NULL;
	c->listed = 0;
}

/* Commit a chunk: one given back to the OS earlier, or a never-used one. */
static struct chunk *
chunk_take(struct pool *p)
{
	struct chunk *c;

	if (p->nreleased > 0)
		c = &p->chunks[p->released[--p->nreleased]];
	else if (p->fresh < p->nchunks)
		c = &p->chunks[p->fresh++];
	else
		return NULL;
	c->live = 1;
	c->used = c->carved = 0;
	c->free = NULL;
	p->empty++;
	p->st.bytes_mapped += p->chunk_bytes;
	room_push(p, c);
	return c;
}

/* Give an empty chunk's pages back to the OS; its addresses stay reserved. */
static void
chunk_release(struct pool *p, struct chunk *c)
{
	char *b = chunk_base(p, c);

	room_unlink(p, c);
	POOL_UNPOISON(b, p->chunk_bytes);
	madvise(b, p->chunk_bytes, MADV_DONTNEED);
	POOL_POISON(b, p->chunk_bytes);
	c->live = 0;
	p->empty--;
	p->st.total -= c->carved;
	p->st.bytes_mapped -= p->chunk_bytes;
	p->st.released++;
	p->released[p->nreleased++] = (unsigned)(c - p->chunks);
}

void *
pool_get(struct pool *p)
{
	struct chunk *c = p->room;
	void *b;

	if (c == NULL && (c = chunk_take(p)) == NULL) {
		p->st.failed++;
		errno = ENOMEM;
		return NULL;
	}
	if (c->free != NULL) {
		b = c->free;
		POOL_UNPOISON(b, p->block_size);
		c->free = c->free->next;
	} else {
		b = chunk_base(p, c) + (size_t)c->carved * p->block_size;
		POOL_UNPOISON(b, p->block_size);
		c->carved++;
		p->st.total++;
	}
	if (c->used++ == 0)
		p->empty--;
	if (c->free == NULL && c->carved == p->per_chunk)
		room_unlink(p, c);
	if (++p->st.used > p->st.high_water)
		p->st.high_water = p->st.used;
	return b;
}

void
pool_put(struct pool *p, void *block)
{
	struct chunk *c = &p->chunks[((char *)block - p->base) / p->chunk_bytes];
	struct pool_free *f = block;

#ifdef SLUICE_DEBUG
	/* A released block must never carry one connection's bytes into
	 * another: make any read of stale data obvious in debug builds. */
	memset(block, 0xdb, p->block_size);
#endif
	f->next = c->free;
	c->free = f;
	POOL_POISON((char *)block + sizeof(*f), p->block_size - sizeof(*f));
	p->st.used--;
	/* The chunk just given a block back is the warmest: allocate from it
	 * next. */
	if (c->listed)
		room_unlink(p, c);
	room_push(p, c);
	if (--c->used == 0 && ++p->empty > POOL_SPARE_CHUNKS)
		chunk_release(p, c);
}

int
pool_owns(const struct pool *p, const void *block)
{
	const char *b = block;

	return p != NULL && b >= p->base && b < p->base + (size_t)p->nchunks * p->chunk_bytes;
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
