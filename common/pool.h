/* SPDX-License-Identifier: BSD-2-Clause */
/* pool.h — fixed-size blocks for one process: relay buffers and session
 * objects. Not shared, not thread-safe: a worker is one thread. Blocks are
 * carved from chunks of one reserved address range and reused LIFO so the
 * warmest memory goes out first; chunks whose blocks have all come back are
 * returned to the OS. Never logs, never aborts on exhaustion. */
#ifndef SLUICE_POOL_H
#define SLUICE_POOL_H

#include <stddef.h>
#include <stdint.h>

struct pool;

struct pool_stats {
	uint64_t total;        /* blocks carved in chunks holding memory */
	uint64_t used;         /* blocks handed out now */
	uint64_t high_water;   /* most blocks handed out at once */
	uint64_t failed;       /* pool_get calls refused by the budget or mmap */
	uint64_t bytes_mapped; /* bytes of chunks holding memory now */
	uint64_t released;     /* chunks given back to the OS so far */
};

/* What one pool may reserve: headers for at most POOL_MAX_CHUNKS chunks
 * (44 bytes each, allocated at once but touched only as chunks are used) and
 * POOL_MAX_RESERVE bytes of address space. Bounds a budget from the config
 * so that setting it up fails only for want of memory, never because of the
 * numbers (beyond UINT32_MAX chunks it could not even be counted). */
#define POOL_MAX_CHUNKS (1u << 24)
#define POOL_MAX_RESERVE ((size_t)1 << 40)

/* The smallest and the largest max_bytes pool_create accepts for blocks of
 * block_size in chunks of chunk_bytes: one chunk, and POOL_MAX_CHUNKS chunks
 * within POOL_MAX_RESERVE. The config is checked against them (conf.c), so
 * that a worker never refuses a budget that sluiced -t accepted. pool_max_bytes
 * is 0 when no budget fits (a block larger than POOL_MAX_RESERVE). */
size_t pool_min_bytes(size_t block_size, size_t chunk_bytes);
size_t pool_max_bytes(size_t block_size, size_t chunk_bytes);

/* A pool of blocks of block_size bytes (rounded up to 16), holding at most
 * max_bytes in chunks of about chunk_bytes (rounded up to pages). Reserves
 * max_bytes of address space, commits nothing. Returns NULL with errno:
 * EINVAL for a zero size or a budget outside [pool_min_bytes,
 * pool_max_bytes]; ENOMEM when the headers or the address space cannot be
 * had, which is the machine's state, not the sizes'. */
struct pool *pool_create(size_t block_size, size_t chunk_bytes, size_t max_bytes);

/* Unmap every chunk. Blocks still out become invalid. NULL is harmless. */
void pool_destroy(struct pool *);

/* Borrow a block (contents undefined). NULL with errno = ENOMEM when the
 * budget is spent: the caller applies back-pressure and retries after a
 * pool_put; this is not an error. */
void *pool_get(struct pool *);

/* Give back a block from pool_get of this pool. */
void pool_put(struct pool *, void *block);

size_t pool_block_size(const struct pool *);

/* Whether block lies in this pool's reserved range: which of a worker's
 * pools a block came from, by one comparison. NULL pool: no. */
int pool_owns(const struct pool *, const void *block);
void pool_get_stats(const struct pool *, struct pool_stats *out);

#endif
