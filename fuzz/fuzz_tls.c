/* SPDX-License-Identifier: BSD-2-Clause */
/* fuzz_tls.c — libFuzzer target for the ClientHello reader in
 * common/tls_hello.c. Built by fuzz/run.sh with clang -fsanitize=fuzzer;
 * never part of sluiced. Beyond "no crash, no sanitizer report" it checks the
 * reader's promises: a refusal or a complete hello seen in a prefix stands
 * for every longer stream, a complete hello's prefixes want more, what it
 * reports is a valid lower-case name and a well-formed ALPN list, and the
 * same hello cut into other records reads the same. */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tls_hello.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t cut[1 << 17];

static void
same(const struct tls_hello *a, const struct tls_hello *b)
{
	if (a->name_len != b->name_len || strcmp(a->name, b->name) != 0 ||
	    a->alpn_len != b->alpn_len || memcmp(a->alpn, b->alpn, a->alpn_len) != 0)
		abort();
}

static void
check_hello(const struct tls_hello *h, size_t n, size_t max)
{
	if (h->hello_len == 0 || h->hello_len > n || h->hello_len > max)
		abort();
	if (h->name_len != strlen(h->name) || h->name_len > TLS_HELLO_NAME_MAX)
		abort();
	if (h->name_len > 0 && tls_hello_name_valid(h->name, h->name_len, 0) != 0)
		abort();
	for (size_t i = 0; i < h->name_len; i++)
		if (isupper((unsigned char)h->name[i]))
			abort();
	if (h->alpn_len > TLS_HELLO_ALPN_MAX)
		abort();
	for (size_t i = 0; i < h->alpn_len; i += 1 + (size_t)h->alpn[i])
		if (h->alpn[i] == 0 || i + 1 + h->alpn[i] > h->alpn_len)
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tls_hello full, part;
	const char *why;
	size_t max, n;
	uint32_t seed;
	int rc;

	if (size < 3)
		return 0;
	/* Two bytes choose the bound (64 .. 16447), one the record size of
	 * the re-cut; the stream follows. */
	max = 64 + ((size_t)data[0] << 8 | data[1]) % 16384;
	seed = data[2];
	data += 3;
	size -= 3;
	rc = tls_hello_parse(data, size, max, &full, &why);
	if (rc == -1 && why == NULL)
		abort();
	if (rc != -1 && why != NULL)
		abort();
	if (rc == 1)
		check_hello(&full, size, max);
	if (rc == 0 && size >= max)
		abort(); /* a full buffer must get an answer */

	/* Prefixes at PRNG-chosen lengths. */
	for (int k = 0; k < 8 && size > 0; k++) {
		size_t p;
		int r;

		seed = seed * 1103515245u + 12345u;
		p = (seed >> 8) % size;
		r = tls_hello_parse(data, p, max, &part, &why);
		if (r == -1 && rc != -1)
			abort();
		if (r == 1 && (rc != 1 || part.hello_len != full.hello_len))
			abort();
		if (rc == 1 && p < full.hello_len && r != 0)
			abort();
		if (r == 1)
			same(&part, &full);
	}

	/* A complete hello in one record, cut into records of another size,
	 * says the same (with a bound that leaves room for the headers). */
	if (rc == 1 && full.hello_len >= 5 && data[3] << 8 | data[4]) {
		size_t rl = (size_t)data[3] << 8 | data[4], k = 1 + seed % 300, o = 0;

		if (5 + rl != full.hello_len)
			return 0;
		for (size_t i = 0; i < rl; i += k) {
			size_t m = rl - i < k ? rl - i : k;

			cut[o++] = 0x16;
			cut[o++] = 0x03;
			cut[o++] = 0x03;
			cut[o++] = (uint8_t)(m >> 8);
			cut[o++] = (uint8_t)m;
			memcpy(cut + o, data + 5 + i, m);
			o += m;
		}
		n = o;
		if (tls_hello_parse(cut, n, sizeof(cut), &part, &why) != 1 || part.hello_len != n)
			abort();
		same(&part, &full);
	}
	return 0;
}
