/* SPDX-License-Identifier: BSD-2-Clause */
/* fuzz_dns.c — libFuzzer target for the DNS answer reader in
 * checker/resolve.c. Built by fuzz/run.sh with clang -fsanitize=fuzzer;
 * never part of sluiced. The first byte picks the question (one of four
 * names, A or AAAA) and how many addresses may come back, the next two the
 * id, the rest is the answer. Beyond "no crash, no sanitizer report" it
 * checks the reader's promises: a known status; addresses only with OK, at
 * least one then, at most max, of the family asked, without duplicates;
 * TTL 0 unless OK; and our own query never read as an answer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "resolve.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const names[] = { "app.example", "www.example", "a", "x-1.y_2.test." };

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct resolve_addr out[16];
	uint8_t q[RESOLVE_UDP_MAX];
	unsigned n = 99, max;
	uint32_t ttl = 99;
	uint16_t id, qtype;
	const char *name;
	enum resolve_status st;
	ssize_t qlen;

	if (size < 3)
		return 0;
	name = names[data[0] & 3];
	qtype = data[0] & 4 ? RESOLVE_TYPE_AAAA : RESOLVE_TYPE_A;
	max = 1 + (data[0] >> 3) % 16;
	id = (uint16_t)(data[1] << 8 | data[2]);
	st = resolve_parse(data + 3, size - 3, id, name, qtype, out, max, &n, &ttl);
	if (st > RESOLVE_FOREIGN)
		abort();
	if (st == RESOLVE_OK) {
		if (n == 0 || n > max)
			abort();
		for (unsigned i = 0; i < n; i++) {
			if (out[i].family != (qtype == RESOLVE_TYPE_A ? AF_INET : AF_INET6))
				abort();
			for (unsigned j = 0; j < i; j++)
				if (memcmp(out[i].addr, out[j].addr, sizeof(out[i].addr)) == 0)
					abort();
		}
	} else if (n != 0 || ttl != 0) {
		abort();
	}
	if (strcmp(resolve_status_name(st), "?") == 0)
		abort();

	qlen = resolve_query(q, sizeof(q), id, name, qtype);
	if (qlen <= 0 ||
	    resolve_parse(q, (size_t)qlen, id, name, qtype, out, max, &n, &ttl) != RESOLVE_FOREIGN)
		abort();
	return 0;
}
