/* SPDX-License-Identifier: BSD-2-Clause */
/* t_dns.c — unit test for checker/resolve.c, the DNS codec of live server
 * names: the queries it writes byte for byte, and answers built here read
 * back (addresses, TTLs, CNAME chains in any order, compression), then
 * broken one way at a time (foreign ids and questions, RCODEs, truncation,
 * bad lengths, pointer loops, every prefix). Runs alone, no network. */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "resolve.h"
#include "tap.h"

static uint8_t msg[4096];
static size_t len;

static void
put8(unsigned v)
{
	msg[len++] = (uint8_t)v;
}

static void
put16(unsigned v)
{
	put8(v >> 8);
	put8(v & 0xff);
}

static void
put32(uint32_t v)
{
	put16(v >> 16);
	put16(v & 0xffff);
}

/* A name in labels ("" is the root). */
static void
put_name(const char *name)
{
	while (*name) {
		const char *dot = strchr(name, '.');
		size_t l = dot ? (size_t)(dot - name) : strlen(name);

		put8((unsigned)l);
		memcpy(msg + len, name, l);
		len += l;
		name += l + (dot != NULL);
	}
	put8(0);
}

/* Header and question: flags (QR etc.), rcode, ancount. */
static void
start(uint16_t id, unsigned flags, unsigned ancount, const char *qname, uint16_t qtype)
{
	len = 0;
	put16(id);
	put16(flags);
	put16(1);
	put16(ancount);
	put16(0);
	put16(0);
	put_name(qname);
	put16(qtype);
	put16(1);
}

/* Owner as a pointer to the question (offset 12). */
static void
rr_a(int ptr, const char *owner, uint32_t ttl, const char *ip)
{
	struct in_addr a;

	if (ptr)
		put16(0xc00c);
	else
		put_name(owner);
	put16(RESOLVE_TYPE_A);
	put16(1);
	put32(ttl);
	put16(4);
	inet_pton(AF_INET, ip, &a);
	memcpy(msg + len, &a, 4);
	len += 4;
}

static void
rr_aaaa(const char *owner, uint32_t ttl, const char *ip)
{
	struct in6_addr a;

	put_name(owner);
	put16(RESOLVE_TYPE_AAAA);
	put16(1);
	put32(ttl);
	put16(16);
	inet_pton(AF_INET6, ip, &a);
	memcpy(msg + len, &a, 16);
	len += 16;
}

static void
rr_cname(const char *owner, uint32_t ttl, const char *target)
{
	size_t at;

	put_name(owner);
	put16(RESOLVE_TYPE_CNAME);
	put16(1);
	put32(ttl);
	at = len;
	put16(0);
	put_name(target);
	msg[at] = (uint8_t)((len - at - 2) >> 8);
	msg[at + 1] = (uint8_t)(len - at - 2);
}

static struct resolve_addr out[16];
static unsigned n;
static uint32_t ttl;

static enum resolve_status
parse(uint16_t id, const char *name, uint16_t qtype)
{
	return resolve_parse(msg, len, id, name, qtype, out, 16, &n, &ttl);
}

static int
is_v4(unsigned i, const char *ip)
{
	struct in_addr a;

	inet_pton(AF_INET, ip, &a);
	return i < n && out[i].family == AF_INET && memcmp(out[i].addr, &a, 4) == 0;
}

static void
test_query(void)
{
	uint8_t q[600];
	static const uint8_t want[] = {
		0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1,
		3, 'a', 'p', 'p', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0,
		0, 1, 0, 1,
		0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0,
	};
	char big[300];
	ssize_t r;

	r = resolve_query(q, sizeof(q), 0x1234, "app.example", RESOLVE_TYPE_A);
	ok(r == (ssize_t)sizeof(want) && memcmp(q, want, sizeof(want)) == 0,
	    "an A query is header, question and an EDNS0 OPT record of 1232 bytes");
	r = resolve_query(q, sizeof(q), 0x1234, "app.example.", RESOLVE_TYPE_A);
	ok(r == (ssize_t)sizeof(want) && memcmp(q, want, sizeof(want)) == 0,
	    "a trailing dot asks the same");
	r = resolve_query(q, sizeof(q), 7, "app.example", RESOLVE_TYPE_AAAA);
	ok(r == (ssize_t)sizeof(want) && q[26] == 28, "an AAAA query has type 28");
	errno = 0;
	ok(resolve_query(q, sizeof(q), 7, "app.example", RESOLVE_TYPE_CNAME) == -1 &&
	        errno == EINVAL, "only A and AAAA are asked");
	ok(resolve_query(q, 20, 7, "app.example", RESOLVE_TYPE_A) == -1 && errno == ENOSPC,
	    "a short buffer is refused (ENOSPC)");

	ok(resolve_name_valid("a") && resolve_name_valid("x-1.y_2.example."),
	    "host names are valid, trailing dot or not");
	ok(!resolve_name_valid("") && !resolve_name_valid(".") && !resolve_name_valid("a..b") &&
	        !resolve_name_valid(".a") && !resolve_name_valid("a b") &&
	        !resolve_name_valid("a\\.b") && !resolve_name_valid("a..") ,
	    "empty labels and odd characters are not");
	memset(big, 'a', 63);
	big[63] = '\0';
	ok(resolve_name_valid(big), "a 63-byte label is valid");
	big[63] = 'a';
	big[64] = '\0';
	ok(!resolve_name_valid(big), "a 64-byte label is not");
	for (int i = 0; i < 254; i++)
		big[i] = i % 2 ? '.' : 'a';
	big[253] = '\0'; /* 127 labels "a", 253 characters */
	ok(resolve_name_valid(big), "253 characters are valid");
	big[253] = 'a';
	big[254] = '\0';
	ok(!resolve_name_valid(big), "254 are not");
}

static void
test_answers(void)
{
	start(9, 0x8180, 3, "App.Example", RESOLVE_TYPE_A);
	rr_a(1, NULL, 300, "10.0.0.1");
	rr_a(0, "app.example", 60, "10.0.0.2");
	rr_a(1, NULL, 120, "10.0.0.1");
	ok(parse(9, "app.example", RESOLVE_TYPE_A) == RESOLVE_OK && n == 2 &&
	        is_v4(0, "10.0.0.1") && is_v4(1, "10.0.0.2") && ttl == 60,
	    "two addresses, a duplicate left out, names compared case-blind, the least TTL "
	    "(%u addresses, ttl %u)", n, ttl);
	ok(resolve_parse(msg, len, 9, "app.example", RESOLVE_TYPE_A, out, 1, &n, &ttl) ==
	            RESOLVE_OK && n == 1 && is_v4(0, "10.0.0.1"),
	    "max bounds the addresses returned");

	start(9, 0x8180, 4, "www.example", RESOLVE_TYPE_A);
	rr_a(0, "edge.cdn.example", 30, "192.0.2.7");
	rr_cname("mid.example", 20, "edge.cdn.example");
	rr_a(0, "other.example", 1, "192.0.2.99");
	rr_cname("www.example", 3600, "mid.example");
	ok(parse(9, "www.example", RESOLVE_TYPE_A) == RESOLVE_OK && n == 1 &&
	        is_v4(0, "192.0.2.7") && ttl == 20,
	    "a CNAME chain in any order leads to its end's addresses; TTL is the chain's least "
	    "(ttl %u)", ttl);

	start(9, 0x8180, 2, "a.example", RESOLVE_TYPE_A);
	rr_cname("a.example", 5, "b.example");
	rr_cname("b.example", 5, "a.example");
	ok(parse(9, "a.example", RESOLVE_TYPE_A) == RESOLVE_EMPTY && n == 0,
	    "a CNAME loop ends, empty");

	start(9, 0x8180, RESOLVE_CHAIN_MAX + 2, "c0.example", RESOLVE_TYPE_A);
	for (int i = 0; i <= RESOLVE_CHAIN_MAX; i++) {
		char from[32], to[32];

		snprintf(from, sizeof(from), "c%d.example", i);
		snprintf(to, sizeof(to), "c%d.example", i + 1);
		rr_cname(from, 5, to);
	}
	{
		char last[32];

		snprintf(last, sizeof(last), "c%d.example", RESOLVE_CHAIN_MAX + 1);
		rr_a(0, last, 5, "10.9.9.9");
	}
	ok(parse(9, "c0.example", RESOLVE_TYPE_A) == RESOLVE_EMPTY,
	    "a chain longer than %d CNAMEs is not followed to its end", RESOLVE_CHAIN_MAX);

	start(9, 0x8180, 3, "six.example", RESOLVE_TYPE_AAAA);
	rr_a(0, "six.example", 5, "10.0.0.1");
	rr_aaaa("six.example", 0x80000010u, "2001:db8::1");
	rr_aaaa("six.example", 50, "2001:db8::2");
	ok(parse(9, "six.example", RESOLVE_TYPE_AAAA) == RESOLVE_OK && n == 2 &&
	        out[0].family == AF_INET6 && out[0].addr[15] == 1 && ttl == 0,
	    "AAAA answers; an A record is ignored; a TTL with the top bit set reads 0");

	start(9, 0x8180, 1, "none.example", RESOLVE_TYPE_A);
	rr_aaaa("none.example", 5, "2001:db8::1");
	ok(parse(9, "none.example", RESOLVE_TYPE_A) == RESOLVE_EMPTY && n == 0 && ttl == 0,
	    "no record of the type asked: empty");
	start(9, 0x8180, 0, "none.example", RESOLVE_TYPE_A);
	ok(parse(9, "none.example", RESOLVE_TYPE_A) == RESOLVE_EMPTY, "no answer at all: empty");

	start(9, 0x8183, 0, "none.example", RESOLVE_TYPE_A);
	ok(parse(9, "none.example", RESOLVE_TYPE_A) == RESOLVE_NXDOMAIN, "RCODE 3 is NXDOMAIN");
	start(9, 0x8182, 0, "none.example", RESOLVE_TYPE_A);
	ok(parse(9, "none.example", RESOLVE_TYPE_A) == RESOLVE_SERVFAIL, "RCODE 2 is SERVFAIL");
	start(9, 0x8185, 0, "none.example", RESOLVE_TYPE_A);
	ok(parse(9, "none.example", RESOLVE_TYPE_A) == RESOLVE_SERVFAIL,
	    "RCODE 5 (REFUSED) fails as well");
	start(9, 0x8380, 1, "t.example", RESOLVE_TYPE_A);
	rr_a(1, NULL, 5, "10.0.0.1");
	ok(parse(9, "t.example", RESOLVE_TYPE_A) == RESOLVE_TRUNCATED && n == 0,
	    "TC is a failure, even with addresses (no TCP fallback)");
}

static void
test_foreign(void)
{
	start(9, 0x8180, 1, "app.example", RESOLVE_TYPE_A);
	rr_a(1, NULL, 5, "10.0.0.1");
	ok(parse(10, "app.example", RESOLVE_TYPE_A) == RESOLVE_FOREIGN, "another id: foreign");
	ok(parse(9, "app.example", RESOLVE_TYPE_AAAA) == RESOLVE_FOREIGN,
	    "another question type: foreign");
	ok(parse(9, "app2.example", RESOLVE_TYPE_A) == RESOLVE_FOREIGN,
	    "another question name: foreign");
	msg[2] &= 0x7f;
	ok(parse(9, "app.example", RESOLVE_TYPE_A) == RESOLVE_FOREIGN, "a query (QR 0): foreign");
	msg[2] |= 0x80 | 0x08;
	ok(parse(9, "app.example", RESOLVE_TYPE_A) == RESOLVE_FOREIGN,
	    "another opcode: foreign");
	start(9, 0x8180, 0, "app.example", RESOLVE_TYPE_A);
	msg[5] = 2;
	ok(parse(9, "app.example", RESOLVE_TYPE_A) == RESOLVE_FOREIGN, "two questions: foreign");

	/* A label holding a dot must not pass for two labels. */
	start(9, 0x8180, 1, "a.b", RESOLVE_TYPE_A);
	put8(3);
	memcpy(msg + len, "a.b", 3);
	len += 3;
	put8(0);
	put16(1);
	put16(1);
	put32(5);
	put16(4);
	put32(0x0a000001);
	ok(parse(9, "a.b", RESOLVE_TYPE_A) == RESOLVE_EMPTY,
	    "a record whose one label is \"a.b\" does not answer for a.b");
}

static void
test_malformed(void)
{
	size_t full;
	int bad = 0;

	len = 0;
	put16(9);
	ok(parse(9, "a.example", RESOLVE_TYPE_A) == RESOLVE_MALFORMED, "2 bytes: malformed");

	start(9, 0x8180, 1, "a.example", RESOLVE_TYPE_A);
	rr_a(1, NULL, 5, "10.0.0.1");
	msg[len - 5] = 5; /* rdlength 5 but 4 bytes left */
	ok(parse(9, "a.example", RESOLVE_TYPE_A) == RESOLVE_MALFORMED,
	    "rdata past the end: malformed");
	msg[len - 5] = 3;
	ok(parse(9, "a.example", RESOLVE_TYPE_A) == RESOLVE_MALFORMED,
	    "an A record of 3 bytes: malformed");

	start(9, 0x8180, 1, "a.example", RESOLVE_TYPE_A);
	put16(0xc000 | (unsigned)len); /* a pointer to itself */
	put16(1);
	put16(1);
	put32(5);
	put16(4);
	put32(0x0a000001);
	ok(parse(9, "a.example", RESOLVE_TYPE_A) == RESOLVE_MALFORMED,
	    "a pointer to itself: malformed");
	msg[len - 14] = 0xc0;
	msg[len - 13] = 0xff; /* forward */
	ok(parse(9, "a.example", RESOLVE_TYPE_A) == RESOLVE_MALFORMED,
	    "a pointer forward: malformed");
	msg[len - 14] = 0x40; /* extended label type */
	ok(parse(9, "a.example", RESOLVE_TYPE_A) == RESOLVE_MALFORMED,
	    "label type 01: malformed");

	start(9, 0x8180, 2, "a.example", RESOLVE_TYPE_A);
	rr_a(1, NULL, 5, "10.0.0.1");
	ok(parse(9, "a.example", RESOLVE_TYPE_A) == RESOLVE_MALFORMED,
	    "fewer records than ancount: malformed");

	/* Every prefix of a good answer reads as malformed or foreign (the
	 * header cut), never as an answer; ASan watches for reads past it. */
	start(9, 0x8180, 3, "www.example", RESOLVE_TYPE_A);
	rr_cname("www.example", 5, "edge.example");
	rr_a(0, "edge.example", 5, "10.0.0.1");
	rr_a(0, "edge.example", 5, "10.0.0.2");
	full = len;
	ok(parse(9, "www.example", RESOLVE_TYPE_A) == RESOLVE_OK && n == 2, "the whole answer reads");
	for (size_t k = 0; k < full; k++) {
		enum resolve_status st;

		len = k;
		st = parse(9, "www.example", RESOLVE_TYPE_A);
		if (st != RESOLVE_MALFORMED || n != 0)
			bad++;
	}
	ok(bad == 0, "each of its %zu prefixes is malformed (%d not)", full, bad);
}

int
main(void)
{
	plan(39);
	test_query();
	test_answers();
	test_foreign();
	test_malformed();
	return 0;
}
