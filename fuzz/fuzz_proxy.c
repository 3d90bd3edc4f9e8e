/* SPDX-License-Identifier: BSD-2-Clause */
/* fuzz_proxy.c — libFuzzer target for the PROXY protocol parser in
 * common/proxy.c. Built by fuzz/run.sh with clang -fsanitize=fuzzer; never
 * part of sluiced. Beyond "no crash, no sanitizer report" it checks the
 * parser's promises: the result does not depend on how the bytes were split,
 * *used stays within the bytes given, and a header it accepts with addresses
 * builds back (proxy_build) into one that parses to the same addresses. */
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Feed in pieces whose lengths come from a small PRNG seeded by the input,
 * so every input is also tried with many different read boundaries. */
static int
parse_split(const uint8_t *d, size_t n, int versions, uint32_t seed, size_t *consumed,
    struct proxy_info *info)
{
	struct proxy_parser p;
	size_t off = 0, used = 0;

	proxy_parser_init(&p, versions);
	while (off < n) {
		size_t chunk;
		int rc;

		seed = seed * 1103515245u + 12345u;
		chunk = 1 + (seed >> 16) % 64;
		if (chunk > n - off)
			chunk = n - off;
		rc = proxy_parse(&p, d + off, chunk, &used, info);
		if (rc == 1) {
			if (used == 0 || used > chunk)
				abort();
			*consumed = off + used;
			return 1;
		}
		if (rc == -1) {
			if (proxy_parse_error(&p) == NULL)
				abort();
			return -1;
		}
		if (rc != 0)
			abort();
		off += chunk;
	}
	return 0;
}

static int
same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return 0;
	if (a->ss_family == AF_INET)
		return memcmp(a, b, sizeof(struct sockaddr_in)) == 0;
	return memcmp(a, b, sizeof(struct sockaddr_in6)) == 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proxy_parser p;
	struct proxy_info whole, split, back;
	size_t used = 0, consumed = 0;
	uint8_t out[PROXY_HEADER_MAX];
	int versions, rc, rc2, n;

	if (size < 2)
		return 0;
	/* The first byte picks the listener's setting and the split pattern. */
	versions = 1 + data[0] % 3;
	data++;
	size--;

	proxy_parser_init(&p, versions);
	rc = proxy_parse(&p, data, size, &used, &whole);
	if (rc == 1 && (used == 0 || used > size))
		abort();
	if (rc == -1 && proxy_parse_error(&p) == NULL)
		abort();

	rc2 = parse_split(data, size, versions, data[0] * 2654435761u, &consumed, &split);
	if (rc2 != rc)
		abort();
	if (rc != 1)
		return 0;
	if (consumed != used || split.version != whole.version || split.local != whole.local ||
	    !same_addr(&split.src, &whole.src) || !same_addr(&split.dst, &whole.dst))
		abort();
	if (whole.local) {
		if (whole.src.ss_family != AF_UNSPEC || whole.dst.ss_family != AF_UNSPEC)
			abort();
		return 0;
	}
	if ((whole.src.ss_family != AF_INET && whole.src.ss_family != AF_INET6) ||
	    whole.src.ss_family != whole.dst.ss_family)
		abort();

	/* What was accepted builds back into a header with the same addresses. */
	n = proxy_build(whole.version, (struct sockaddr *)&whole.src,
	    (struct sockaddr *)&whole.dst, out, sizeof(out));
	if (n <= 0)
		abort();
	proxy_parser_init(&p, whole.version);
	if (proxy_parse(&p, out, (size_t)n, &used, &back) != 1 || used != (size_t)n ||
	    !same_addr(&back.src, &whole.src) || !same_addr(&back.dst, &whole.dst))
		abort();
	return 0;
}
