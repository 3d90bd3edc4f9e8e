/* SPDX-License-Identifier: BSD-2-Clause */
/* pattern.h — the byte pattern of bench bulk streams, shared by the load
 * generator (which sends it) and the backend in sink mode (which checks it).
 * A stream is a 16-byte header (magic, seed, payload length) and then the
 * payload; payload bytes are slices of one pseudo-random table, rotated
 * differently for every MiB block and every seed, so a lost, repeated or
 * reordered block is caught. Sending and checking cost a memcmp, no more. */
#ifndef SLUICE_BENCH_PATTERN_H
#define SLUICE_BENCH_PATTERN_H

#include <stddef.h>
#include <stdint.h>

#define PATTERN_HDR 16
#define PATTERN_BLOCK ((size_t)1 << 20)

/* Build the table (2 MiB, once per process). Returns 0, or -1 with errno =
 * ENOMEM. Every other function needs it first. */
int pattern_init(void);

/* The expected payload bytes at offset off of the stream with this seed:
 * returns a pointer into the table and sets *len to how many bytes from there
 * are contiguous (up to the end of the MiB block, at least 1). */
const uint8_t *pattern_at(uint32_t seed, uint64_t off, size_t *len);

/* Compare n received payload bytes at offset off with the pattern. Returns
 * 0 when they match, else the index (1-based) of the first bad byte. */
size_t pattern_check(uint32_t seed, uint64_t off, const uint8_t *p, size_t n);

/* Encode a stream header into hdr. */
void pattern_header(uint8_t hdr[PATTERN_HDR], uint32_t seed, uint64_t len);

/* Decode a stream header: 0 with *seed and *len set, or -1 when the magic is
 * wrong. */
int pattern_header_parse(const uint8_t hdr[PATTERN_HDR], uint32_t *seed, uint64_t *len);

#endif
