/* SPDX-License-Identifier: BSD-2-Clause */
/* pattern.c — the bulk stream pattern (see pattern.h). Linked into the load
 * generator and the backend; both build the same table from the same seed, so
 * the two ends agree without exchanging anything but the header. Never does
 * I/O. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pattern.h"

#define PATTERN_MAGIC 0x314b4c53u /* "SLK1" little-endian */
#define PATTERN_MASK (PATTERN_BLOCK - 1)

/* Two copies back to back, so a slice of up to one block that starts
 * anywhere in the first copy is contiguous. */
static uint8_t *table;

int
pattern_init(void)
{
	uint64_t x = 0x9e3779b97f4a7c15ULL;

	if (table)
		return 0;
	table = malloc(2 * PATTERN_BLOCK);
	if (!table) {
		errno = ENOMEM;
		return -1;
	}
	for (size_t i = 0; i < PATTERN_BLOCK; i += 8) {
		/* xorshift64*: fast and with no period inside the table. */
		x ^= x >> 12;
		x ^= x << 25;
		x ^= x >> 27;
		uint64_t v = x * 0x2545f4914f6cdd1dULL;
		memcpy(table + i, &v, 8);
	}
	memcpy(table + PATTERN_BLOCK, table, PATTERN_BLOCK);
	return 0;
}

/* Where block b of stream seed starts in the table. The block step is odd,
 * so 2^20 consecutive blocks of one stream all start at different places. */
static size_t
pattern_rotation(uint32_t seed, uint64_t block)
{
	return (size_t)(((uint64_t)seed * 0x9e3779b1u + block * 0x10ad5u) & PATTERN_MASK);
}

const uint8_t *
pattern_at(uint32_t seed, uint64_t off, size_t *len)
{
	size_t in = (size_t)(off & PATTERN_MASK);
	size_t start = (pattern_rotation(seed, off >> 20) + in) & PATTERN_MASK;

	*len = PATTERN_BLOCK - in;
	return table + start;
}

size_t
pattern_check(uint32_t seed, uint64_t off, const uint8_t *p, size_t n)
{
	size_t done = 0;

	while (done < n) {
		size_t len;
		const uint8_t *want = pattern_at(seed, off + done, &len);

		if (len > n - done)
			len = n - done;
		if (memcmp(p + done, want, len) != 0) {
			for (size_t i = 0; i < len; i++)
				if (p[done + i] != want[i])
					return done + i + 1;
		}
		done += len;
	}
	return 0;
}

static void
put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t
get32(const uint8_t *p)
{
	uint32_t v = 0;

	for (int i = 3; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

void
pattern_header(uint8_t hdr[PATTERN_HDR], uint32_t seed, uint64_t len)
{
	put32(hdr, PATTERN_MAGIC);
	put32(hdr + 4, seed);
	put32(hdr + 8, (uint32_t)len);
	put32(hdr + 12, (uint32_t)(len >> 32));
}

int
pattern_header_parse(const uint8_t hdr[PATTERN_HDR], uint32_t *seed, uint64_t *len)
{
	if (get32(hdr) != PATTERN_MAGIC)
		return -1;
	*seed = get32(hdr + 4);
	*len = (uint64_t)get32(hdr + 8) | (uint64_t)get32(hdr + 12) << 32;
	return 0;
}
