/* SPDX-License-Identifier: BSD-2-Clause */
/* fuzz_proxy.c — libFuzzer target for the PROXY protocol parser in
 * common/proxy.c. Built by fuzz/run.sh with clang -fsanitize=fuzzer; never
 * part of sluiced. Beyond "no crash, no sanitizer report" it checks the
 * parser's promises: the result does not depend on how the bytes were split,
 * *used stays within the bytes given, and a header it accepts with addresses
 * builds back (proxy_build) into one that parses to the same addresses. With
 * a set of TLV types to keep (drawn from the input), the TLVs gathered in
 * place, read after read as a worker does, are exactly those of the header
 * found by walking it here, whatever the split; and a v2 header built from
 * them (proxy_build_v2, with a checksum when one came) parses back to the
 * same TLVs. */
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

/* The TLVs of an accepted v2 header of the kept types, found by walking it
 * here; returns their length in want. */
static size_t
expected_kept(const uint8_t *h, size_t hlen, const uint8_t *set, uint8_t *want)
{
	size_t len = (size_t)h[14] << 8 | h[15], i, n = 0;
	int local = (h[12] & 0xF) == 0, alen;

	switch (h[13]) {
	case 0x00:
		alen = 0;
		break;
	case 0x11:
	case 0x12:
		alen = 12;
		break;
	case 0x21:
	case 0x22:
		alen = 36;
		break;
	case 0x31:
	case 0x32:
		alen = 216;
		break;
	default:
		alen = -1;
		break;
	}
	if (alen == -1 || (local && len == 0)) /* skipped unread, or nothing */
		return 0;
	if (hlen != PROXY_V2_FIXED + len)
		abort();
	for (i = PROXY_V2_FIXED + (size_t)alen; i < hlen;) {
		size_t vl = (size_t)h[i + 1] << 8 | h[i + 2];

		if (i + 3 + vl > hlen)
			abort(); /* accepted, so the TLVs tile it */
		if (h[i] != PROXY_TLV_CRC32C && PROXY_TLV_IN(set, h[i])) {
			memcpy(want + n, h + i, 3 + vl);
			n += 3 + vl;
		}
		i += 3 + vl;
	}
	return n;
}

/* Like parse_split, keeping TLVs in place in area as a worker does: each
 * piece lands right after the TLVs kept so far. */
static int
keep_split(const uint8_t *d, size_t n, int versions, const uint8_t *set, uint32_t seed,
    uint8_t *area, size_t *consumed, struct proxy_info *info)
{
	struct proxy_parser p;
	size_t off = 0, used = 0;

	proxy_parser_init(&p, versions);
	proxy_parser_keep(&p, set);
	while (off < n) {
		size_t chunk, k = proxy_parser_kept(&p);
		int rc;

		seed = seed * 1103515245u + 12345u;
		chunk = 1 + (seed >> 16) % 64;
		if (chunk > n - off)
			chunk = n - off;
		memcpy(area + k, d + off, chunk);
		rc = proxy_parse_keep(&p, area + k, chunk, &used, info, area);
		if (rc == 1) {
			*consumed = off + used;
			return 1;
		}
		if (rc == -1)
			return -1;
		off += chunk;
	}
	return 0;
}

static void
check_keep(const uint8_t *data, size_t size, int versions, int rc, size_t used)
{
	static uint8_t area[4096 + 64], want[PROXY_V2_MAX], out[PROXY_V2_MAX];
	uint8_t set[PROXY_TLV_SET_BYTES];
	struct proxy_info info, back;
	struct proxy_parser p;
	size_t consumed = 0, wl, u2 = 0;
	uint32_t seed = data[size - 1] * 2246822519u + (uint32_t)size;
	int n;

	for (unsigned b = 0; b < sizeof(set); b++) {
		seed = seed * 1103515245u + 12345u;
		set[b] = (uint8_t)(seed >> 16);
	}
	if (size > 4096)
		return;
	if (keep_split(data, size, versions, set, seed, area, &consumed, &info) != rc)
		abort();
	if (rc != 1)
		return;
	if (consumed != used)
		abort();
	if (info.version == PROXY_V1) {
		if (info.tlv_kept != 0)
			abort();
		return;
	}
	wl = expected_kept(data, used, set, want);
	if (info.tlv_kept != wl || memcmp(area, want, wl) != 0)
		abort();

	/* Built back with what was kept, and a checksum if one came. */
	n = proxy_build_v2(info.local ? NULL : (struct sockaddr *)&info.src,
	    info.local ? NULL : (struct sockaddr *)&info.dst, area, wl, NULL, 0, info.crc, out,
	    sizeof(out));
	if (n <= 0)
		abort();
	memset(set, 0xFF, sizeof(set));
	proxy_parser_init(&p, PROXY_V2);
	proxy_parser_keep(&p, set);
	memcpy(area, out, (size_t)n);
	if (proxy_parse_keep(&p, area, (size_t)n, &u2, &back, area) != 1 || u2 != (size_t)n ||
	    back.crc != info.crc || back.tlv_kept != wl || memcmp(area, want, wl) != 0)
		abort();
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
	check_keep(data, size, versions, rc, used);
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
