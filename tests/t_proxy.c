/* SPDX-License-Identifier: BSD-2-Clause */
/* t_proxy.c — unit test for common/proxy.c: the specification's example
 * headers and a list of malformed ones, each fed whole, split in two at every
 * point, and one byte at a time; headers built by proxy_build parse back to
 * the same addresses; v2 TLVs kept from a header in place, read after read,
 * and headers built with passed, added and CRC32c TLVs (the checksum
 * recomputed here independently); configured TLVs judged. Runs alone, no
 * network. */
#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "proxy.h"
#include "crc32c.h"
#include "tap.h"

#define PAYLOAD "GET / HTTP/1.1\r\nHost: example\r\n\r\n"
#define MAXH 2200

struct good {
	const char *name;
	const uint8_t *bytes;
	size_t len;     /* header only */
	int versions;   /* parser setting */
	int version;    /* expected */
	int local;
	const char *src, *dst; /* "addr port" when not local */
};

/* A v2 header: fixed part, then body (addresses and TLVs) of blen bytes. */
static size_t
v2(uint8_t *out, uint8_t ver_cmd, uint8_t fam, const uint8_t *body, size_t blen)
{
	static const uint8_t sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49,
	    0x54, 0x0A};

	memcpy(out, sig, 12);
	out[12] = ver_cmd;
	out[13] = fam;
	out[14] = (uint8_t)(blen >> 8);
	out[15] = (uint8_t)blen;
	if (blen > 0)
		memcpy(out + 16, body, blen);
	return 16 + blen;
}

/* TCP4 192.0.2.1:56324 -> 198.51.100.11:443 */
static const uint8_t ip4_block[12] = {192, 0, 2, 1, 198, 51, 100, 11, 0xDC, 0x04, 0x01, 0xBB};

static size_t
v2_ip6_block(uint8_t *b)
{
	struct in6_addr s, d;

	inet_pton(AF_INET6, "2001:db8::1", &s);
	inet_pton(AF_INET6, "2001:db8:ffff::2", &d);
	memcpy(b, &s, 16);
	memcpy(b + 16, &d, 16);
	b[32] = 0x30; /* 12345 */
	b[33] = 0x39;
	b[34] = 0x00; /* 80 */
	b[35] = 0x50;
	return 36;
}

static const char *
fmt_addr(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)ss;

		inet_ntop(AF_INET, &s->sin_addr, a, sizeof(a));
		port = ntohs(s->sin_port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)ss;

		inet_ntop(AF_INET6, &s->sin6_addr, a, sizeof(a));
		port = ntohs(s->sin6_port);
	} else {
		snprintf(buf, len, "unspec");
		return buf;
	}
	snprintf(buf, len, "%s %u", a, port);
	return buf;
}

/*
 * Feed bytes[0..len) in pieces cut at the given points (sorted, may repeat),
 * stopping at the first non-zero result. Returns that result (0 if none) with
 * *consumed = header bytes taken in all (pieces before the last plus *used),
 * and *earlier = 1 when a piece other than the last returned non-zero.
 */
static int
feed(const uint8_t *bytes, size_t len, int versions, const size_t *cuts, int ncuts,
    struct proxy_info *info, size_t *consumed, const char **why)
{
	struct proxy_parser p;
	size_t start = 0, used = 0;

	proxy_parser_init(&p, versions);
	*why = NULL;
	for (int i = 0; i <= ncuts; i++) {
		size_t end = i < ncuts ? cuts[i] : len;
		int rc = proxy_parse(&p, bytes + start, end - start, &used, info);

		if (rc == 1) {
			*consumed = start + used;
			/* Finished: more bytes are refused. */
			if (proxy_parse(&p, "x", 1, &used, info) != -1 || errno != EINVAL)
				return 99;
			return 1;
		}
		if (rc == -1) {
			*why = proxy_parse_error(&p);
			*consumed = start;
			return -1;
		}
		start = end;
	}
	*consumed = len;
	return 0;
}

static int
check_info(const struct good *g, const struct proxy_info *info, char *why, size_t wlen)
{
	char a[80], b[80];

	if (info->version != g->version) {
		snprintf(why, wlen, "version %d, want %d", info->version, g->version);
		return 0;
	}
	if (info->local != g->local) {
		snprintf(why, wlen, "local %d, want %d", info->local, g->local);
		return 0;
	}
	if (g->local)
		return info->src.ss_family == AF_UNSPEC && info->dst.ss_family == AF_UNSPEC;
	fmt_addr(&info->src, a, sizeof(a));
	fmt_addr(&info->dst, b, sizeof(b));
	if (strcmp(a, g->src) != 0 || strcmp(b, g->dst) != 0) {
		snprintf(why, wlen, "src \"%s\" dst \"%s\", want \"%s\" \"%s\"", a, b, g->src, g->dst);
		return 0;
	}
	return 1;
}

/* A good header followed by a payload: whole, at every split point, byte by
 * byte; the header must end exactly where it does and every prefix of it
 * must ask for more. */
static void
test_good(const struct good *g)
{
	uint8_t buf[MAXH + sizeof(PAYLOAD)];
	size_t total = g->len + strlen(PAYLOAD), consumed, cuts[MAXH + sizeof(PAYLOAD)];
	struct proxy_info info;
	char why[256] = "";
	const char *err;
	int bad = 0, rc;

	memcpy(buf, g->bytes, g->len);
	memcpy(buf + g->len, PAYLOAD, strlen(PAYLOAD));

	rc = feed(buf, total, g->versions, NULL, 0, &info, &consumed, &err);
	ok(rc == 1 && consumed == g->len && check_info(g, &info, why, sizeof(why)),
	    "%s: parsed whole, header length %zu", g->name, g->len);
	if (rc != 1)
		diag("  rc %d (%s)", rc, err ? err : "-");
	else if (why[0])
		diag("  %s", why);

	for (size_t k = 0; k <= total && !bad; k++) {
		cuts[0] = k;
		rc = feed(buf, total, g->versions, cuts, 1, &info, &consumed, &err);
		if (rc != 1 || consumed != g->len || !check_info(g, &info, why, sizeof(why))) {
			diag("  split at %zu: rc %d consumed %zu %s", k, rc, consumed,
			    err ? err : why);
			bad = 1;
		}
	}
	ok(!bad, "%s: split in two at each of %zu points", g->name, total + 1);

	/* Every proper prefix of the header is "more, please". */
	bad = 0;
	for (size_t k = 0; k < g->len && !bad; k++) {
		rc = feed(buf, k, g->versions, NULL, 0, &info, &consumed, &err);
		if (rc != 0) {
			diag("  prefix of %zu bytes: rc %d (%s)", k, rc, err ? err : "-");
			bad = 1;
		}
	}
	ok(!bad, "%s: each truncated prefix waits for more", g->name);

	for (size_t k = 0; k < total; k++)
		cuts[k] = k + 1;
	rc = feed(buf, total, g->versions, cuts, (int)total - 1, &info, &consumed, &err);
	ok(rc == 1 && consumed == g->len && check_info(g, &info, why, sizeof(why)),
	    "%s: fed one byte at a time", g->name);
}

struct bad {
	const char *name;
	const uint8_t *bytes;
	size_t len;
	int versions;
};

/* A malformed header is refused whole, at every split point and byte by
 * byte, and never accepted; when reason is not NULL, for that reason. */
static void
test_bad_why(const struct bad *b, const char *reason)
{
	size_t consumed, cuts[MAXH];
	struct proxy_info info;
	const char *err = NULL, *first;
	int bad = 0, rc;

	rc = feed(b->bytes, b->len, b->versions, NULL, 0, &info, &consumed, &first);
	ok(rc == -1 && errno == EPROTO && first != NULL &&
	       (reason == NULL || strcmp(first, reason) == 0),
	    "refused: %s (%s)", b->name, first ? first : "no reason");
	if (reason != NULL && (first == NULL || strcmp(first, reason) != 0))
		diag("  want \"%s\"", reason);
	for (size_t k = 0; k <= b->len && !bad; k++) {
		cuts[0] = k;
		rc = feed(b->bytes, b->len, b->versions, cuts, 1, &info, &consumed, &err);
		if (rc != -1) {
			diag("  split at %zu: rc %d", k, rc);
			bad = 1;
		}
	}
	for (size_t k = 0; k < b->len; k++)
		cuts[k] = k + 1;
	rc = feed(b->bytes, b->len, b->versions, cuts, (int)b->len - 1, &info, &consumed, &err);
	if (rc != -1 || (first && err && strcmp(first, err) != 0)) {
		diag("  byte by byte: rc %d (%s)", rc, err ? err : "-");
		bad = 1;
	}
	ok(!bad, "refused at every split point and byte by byte: %s", b->name);
}

static void
test_bad(const struct bad *b)
{
	test_bad_why(b, NULL);
}

#define S(x) (const uint8_t *)(x), sizeof(x) - 1

static void
test_v1(void)
{
	static const struct good goods[] = {
	    {"spec example TCP4", S("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"),
		PROXY_V1, PROXY_V1, 0, "192.168.0.1 56324", "192.168.0.11 443"},
	    {"spec longest TCP4",
		S("PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n"), PROXY_ANY,
		PROXY_V1, 0, "255.255.255.255 65535", "255.255.255.255 65535"},
	    {"spec longest TCP6",
		S("PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
		  "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"),
		PROXY_V1, PROXY_V1, 0, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535",
		"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535"},
	    {"spec short UNKNOWN", S("PROXY UNKNOWN\r\n"), PROXY_ANY, PROXY_V1, 1, NULL, NULL},
	    {"spec worst case UNKNOWN (107 bytes)",
		S("PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
		  "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"),
		PROXY_V1, PROXY_V1, 1, NULL, NULL},
	    {"TCP6 compressed, port 0", S("PROXY TCP6 ::1 2001:DB8::a 0 8080\r\n"), PROXY_V1,
		PROXY_V1, 0, "::1 0", "2001:db8::a 8080"},
	    {"TCP6 IPv4-mapped", S("PROXY TCP6 ::ffff:192.0.2.7 ::ffff:10.0.0.1 1 2\r\n"),
		PROXY_ANY, PROXY_V1, 0, "::ffff:192.0.2.7 1", "::ffff:10.0.0.1 2"},
	    {"TCP4 zeros", S("PROXY TCP4 0.0.0.0 10.0.0.1 0 0\r\n"), PROXY_V1, PROXY_V1, 0,
		"0.0.0.0 0", "10.0.0.1 0"},
	};
	static const struct bad bads[] = {
	    {"LF without CR", S("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\n"), PROXY_V1},
	    {"CR CR LF", S("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\r\n"), PROXY_V1},
	    {"CR then a letter", S("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\rX"), PROXY_V1},
	    {"CR in the middle", S("PROXY TCP4\r 192.168.0.1 192.168.0.11 1 2\r\n"), PROXY_V1},
	    {"two spaces after PROXY", S("PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), PROXY_V1},
	    {"two spaces between addresses", S("PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n"), PROXY_V1},
	    {"trailing space", S("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n"), PROXY_V1},
	    {"tab separator", S("PROXY TCP4\t1.2.3.4 5.6.7.8 1 2\r\n"), PROXY_V1},
	    {"unknown protocol TCP5", S("PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n"), PROXY_V1},
	    {"lower-case signature", S("proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), PROXY_V1},
	    {"lower-case protocol", S("PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n"), PROXY_V1},
	    {"UNKNOWN glued to text", S("PROXY UNKNOWNX\r\n"), PROXY_V1},
	    {"leading zero in address", S("PROXY TCP4 192.168.0.01 1.2.3.4 1 2\r\n"), PROXY_V1},
	    {"octet 256", S("PROXY TCP4 256.1.1.1 1.2.3.4 1 2\r\n"), PROXY_V1},
	    {"three octets", S("PROXY TCP4 1.2.3 1.2.3.4 1 2\r\n"), PROXY_V1},
	    {"five octets", S("PROXY TCP4 1.2.3.4.5 1.2.3.4 1 2\r\n"), PROXY_V1},
	    {"empty octet", S("PROXY TCP4 1..3.4 1.2.3.4 1 2\r\n"), PROXY_V1},
	    {"IPv6 in TCP4", S("PROXY TCP4 ::1 ::1 1 2\r\n"), PROXY_V1},
	    {"IPv4 in TCP6", S("PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n"), PROXY_V1},
	    {"bad hex in IPv6", S("PROXY TCP6 ::1 ::g 1 2\r\n"), PROXY_V1},
	    {"two double colons", S("PROXY TCP6 1::2::3 ::1 1 2\r\n"), PROXY_V1},
	    {"IPv6 zone", S("PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n"), PROXY_V1},
	    {"port 65536", S("PROXY TCP4 1.2.3.4 5.6.7.8 65536 1\r\n"), PROXY_V1},
	    {"port with leading zero", S("PROXY TCP4 1.2.3.4 5.6.7.8 080 1\r\n"), PROXY_V1},
	    {"negative port", S("PROXY TCP4 1.2.3.4 5.6.7.8 -1 1\r\n"), PROXY_V1},
	    {"port with a plus", S("PROXY TCP4 1.2.3.4 5.6.7.8 +1 1\r\n"), PROXY_V1},
	    {"huge port", S("PROXY TCP4 1.2.3.4 5.6.7.8 99999999999 1\r\n"), PROXY_V1},
	    {"missing port", S("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n"), PROXY_V1},
	    {"extra field", S("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n"), PROXY_V1},
	    {"protocol only", S("PROXY TCP4\r\n"), PROXY_V1},
	    {"nothing after PROXY", S("PROXY \r\n"), PROXY_V1},
	    {"NUL inside", S("PROXY TCP4 1.2.3.4\0 5.6.7.8 1 2\r\n"), PROXY_V1},
	    {"108-byte UNKNOWN line",
		S("PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
		  "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 655350\r\n"),
		PROXY_V1},
	    {"no CRLF in 200 bytes",
		S("PROXY UNKNOWN aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
		PROXY_V1},
	    {"an HTTP request", S("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), PROXY_ANY},
	    {"TLS hello", S("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"), PROXY_ANY},
	    {"v2 header on a v1-only listener",
		S("\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c\xc0\x00\x02\x01\xc6\x33\x64\x0b\xdc\x04"
		  "\x01\xbb"),
		PROXY_V1},
	};

	for (size_t i = 0; i < sizeof(goods) / sizeof(goods[0]); i++)
		test_good(&goods[i]);
	for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++)
		test_bad(&bads[i]);
}

static uint8_t store[128][MAXH];
static unsigned nstore;

/* A v2 header in static storage, so that the tables below can point at it. */
static const uint8_t *
keep(const uint8_t *h, size_t len, size_t *out)
{
	if (nstore == sizeof(store) / sizeof(store[0]) || len > MAXH)
		bail("t_proxy: test table too large");
	memcpy(store[nstore], h, len);
	*out = len;
	return store[nstore++];
}

static void
test_v2(void)
{
	uint8_t h[MAXH], body[MAXH], six[36];
	struct good g[16];
	struct bad b[32];
	int ng = 0, nb = 0;
	size_t n;

	v2_ip6_block(six);

#define GOOD(nm, vs, loc, s, d)                                                                    \
	g[ng++] = (struct good){nm, keep(h, n, &n), n, vs, PROXY_V2, loc, s, d}
#define BAD(nm, vs) b[nb++] = (struct bad){nm, keep(h, n, &n), n, vs}

	n = v2(h, 0x21, 0x11, ip4_block, 12);
	GOOD("v2 PROXY TCP4", PROXY_V2, 0, "192.0.2.1 56324", "198.51.100.11 443");
	n = v2(h, 0x21, 0x21, six, 36);
	GOOD("v2 PROXY TCP6", PROXY_ANY, 0, "2001:db8::1 12345", "2001:db8:ffff::2 80");
	n = v2(h, 0x20, 0x00, NULL, 0);
	GOOD("v2 LOCAL, no address", PROXY_V2, 1, NULL, NULL);
	n = v2(h, 0x20, 0x11, ip4_block, 12);
	GOOD("v2 LOCAL with an address block (ignored)", PROXY_ANY, 1, NULL, NULL);
	n = v2(h, 0x20, 0x77, ip4_block, 5);
	GOOD("v2 LOCAL with an undefined family (ignored)", PROXY_V2, 1, NULL, NULL);
	n = v2(h, 0x21, 0x00, (const uint8_t *)"\x04\x00\x02\x00\x00", 5);
	GOOD("v2 PROXY UNSPEC: use the real endpoints", PROXY_V2, 1, NULL, NULL);
	n = v2(h, 0x21, 0x12, ip4_block, 12);
	GOOD("v2 PROXY UDP over IPv4: falls back to UNSPEC", PROXY_V2, 1, NULL, NULL);
	memset(body, 'u', 216);
	n = v2(h, 0x21, 0x31, body, 216);
	GOOD("v2 PROXY UNIX stream: falls back to UNSPEC", PROXY_V2, 1, NULL, NULL);

	/* TCP4 followed by TLVs: ALPN "h2", an empty NOOP, an authority. */
	memcpy(body, ip4_block, 12);
	memcpy(body + 12, "\x01\x00\x02h2\x04\x00\x00\x02\x00\x0b" "example.com", 22);
	n = v2(h, 0x21, 0x11, body, 34);
	GOOD("v2 TCP4 with TLVs", PROXY_V2, 0, "192.0.2.1 56324", "198.51.100.11 443");

	/* A checksum TLV, computed over the header with its field zeroed. */
	memcpy(body, six, 36);
	memcpy(body + 36, "\x03\x00\x04\x00\x00\x00\x00", 7);
	n = v2(h, 0x21, 0x21, body, 43);
	{
		uint32_t c = crc32c(h, n);

		h[n - 4] = (uint8_t)(c >> 24);
		h[n - 3] = (uint8_t)(c >> 16);
		h[n - 2] = (uint8_t)(c >> 8);
		h[n - 1] = (uint8_t)c;
		GOOD("v2 TCP6 with a valid CRC32c TLV", PROXY_V2, 0, "2001:db8::1 12345",
		    "2001:db8:ffff::2 80");
		h[n - 1] ^= 1;
		BAD("v2 CRC32c TLV that does not match", PROXY_V2);
	}

	/* The longest accepted: one NOOP TLV filling up to PROXY_V2_LEN_MAX. */
	memcpy(body, ip4_block, 12);
	body[12] = 0x04;
	body[13] = (uint8_t)((PROXY_V2_LEN_MAX - 15) >> 8);
	body[14] = (uint8_t)(PROXY_V2_LEN_MAX - 15);
	memset(body + 15, 0, PROXY_V2_LEN_MAX - 15);
	n = v2(h, 0x21, 0x11, body, PROXY_V2_LEN_MAX);
	GOOD("v2 of the largest accepted length", PROXY_V2, 0, "192.0.2.1 56324",
	    "198.51.100.11 443");

	/* Malformed. */
	n = v2(h, 0x21, 0x11, ip4_block, 12);
	h[4] = 0x01;
	BAD("v2 signature with a wrong byte", PROXY_V2);
	n = v2(h, 0x11, 0x11, ip4_block, 12);
	BAD("v2 version 1 in the version nibble", PROXY_V2);
	n = v2(h, 0x31, 0x11, ip4_block, 12);
	BAD("v2 version 3", PROXY_ANY);
	n = v2(h, 0x22, 0x11, ip4_block, 12);
	BAD("v2 command 2", PROXY_V2);
	n = v2(h, 0x2F, 0x11, ip4_block, 12);
	BAD("v2 command 15", PROXY_V2);
	n = v2(h, 0x21, 0x41, ip4_block, 12);
	BAD("v2 family 4", PROXY_V2);
	n = v2(h, 0x21, 0x13, ip4_block, 12);
	BAD("v2 transport 3", PROXY_V2);
	n = v2(h, 0x21, 0x10, ip4_block, 12);
	BAD("v2 IPv4 with an UNSPEC transport", PROXY_V2);
	n = v2(h, 0x21, 0x11, ip4_block, 11);
	BAD("v2 TCP4 with an 11-byte block", PROXY_V2);
	n = v2(h, 0x21, 0x21, six, 20);
	BAD("v2 TCP6 with a 20-byte block", PROXY_V2);
	n = v2(h, 0x21, 0x31, body, 100);
	BAD("v2 UNIX with a 100-byte block", PROXY_V2);
	n = v2(h, 0x21, 0x11, body, PROXY_V2_LEN_MAX + 1);
	memcpy(h + 16, ip4_block, 12);
	n = 16 + 12; /* refused on the length alone, before any of the rest */
	BAD("v2 oversized length", PROXY_V2);
	n = v2(h, 0x21, 0x11, NULL, 0);
	h[14] = 0xff;
	h[15] = 0xff;
	BAD("v2 length 65535", PROXY_ANY);
	memcpy(body, ip4_block, 12);
	memcpy(body + 12, "\x01\x00\x05h2", 5);
	n = v2(h, 0x21, 0x11, body, 17);
	BAD("v2 TLV value past the length", PROXY_V2);
	memcpy(body + 12, "\x01\x00", 2);
	n = v2(h, 0x21, 0x11, body, 14);
	BAD("v2 two bytes left: a TLV header does not fit", PROXY_V2);
	memcpy(body + 12, "\x03\x00\x03\x00\x00\x00", 6);
	n = v2(h, 0x21, 0x11, body, 18);
	BAD("v2 checksum TLV of 3 bytes", PROXY_V2);
	memcpy(body + 12, "\x03\x00\x04\x00\x00\x00\x00\x03\x00\x04\x00\x00\x00\x00", 14);
	n = v2(h, 0x21, 0x11, body, 26);
	BAD("v2 two checksum TLVs", PROXY_V2);
	n = v2(h, 0x21, 0x11, ip4_block, 12);
	BAD("v2 header on a v1-only listener", PROXY_V1);
	memcpy(h, "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n", 32);
	n = 32;
	BAD("v1 header on a v2-only listener", PROXY_V2);
	n = v2(h, 0x21, 0x11, ip4_block, 12);
	h[11] = 0x0D;
	BAD("v2 signature truncated into v1 bytes", PROXY_ANY);

	for (int i = 0; i < ng; i++)
		test_good(&g[i]);
	for (int i = 0; i < nb; i++)
		test_bad(&b[i]);
#undef GOOD
#undef BAD
}

/* A v2 header: fixed part, an address block of alen bytes, then tlen bytes
 * of TLVs; the length field covers both. */
static size_t
v2_tlvs(uint8_t *out, uint8_t ver_cmd, uint8_t fam, const uint8_t *addr, size_t alen,
    const void *tlvs, size_t tlen)
{
	uint8_t body[MAXH];

	if (alen > 0)
		memcpy(body, addr, alen);
	memcpy(body + alen, tlvs, tlen);
	return v2(out, ver_cmd, fam, body, alen + tlen);
}

/* Write the CRC32c of h[0..n) into its checksum field at h[at..at+4), which
 * must hold zeros. */
static void
put_crc(uint8_t *h, size_t n, size_t at)
{
	uint32_t c = crc32c(h, n);

	h[at] = (uint8_t)(c >> 24);
	h[at + 1] = (uint8_t)(c >> 16);
	h[at + 2] = (uint8_t)(c >> 8);
	h[at + 3] = (uint8_t)c;
}

#define T(x) x, sizeof(x) - 1

/* The TLVs whose size or content the specification constrains (see the
 * list above v2_tlv_byte in common/proxy.c), and the same checks on LOCAL
 * and UNSPEC headers, whose bytes were once skipped unread. */
static void
test_v2_tlv(void)
{
	uint8_t h[MAXH], t[MAXH], six[36];
	struct good g[24];
	struct bad b[40];
	const char *why[40];
	int ng = 0, nb = 0;
	size_t n;

	v2_ip6_block(six);

#define GOOD4(nm) g[ng++] = (struct good){nm, keep(h, n, &n), n, PROXY_V2, PROXY_V2, 0, \
	    "192.0.2.1 56324", "198.51.100.11 443"}
#define GOODL(nm) g[ng++] = (struct good){nm, keep(h, n, &n), n, PROXY_ANY, PROXY_V2, 1, NULL, NULL}
#define BAD(nm, w) (why[nb] = (w), b[nb++] = (struct bad){nm, keep(h, n, &n), n, PROXY_V2})

	/* UNIQUE_ID: "up to 128 bytes". */
	memcpy(t, "\x05\x00\x80", 3);
	memset(t + 3, 'i', 129);
	n = v2_tlvs(h, 0x21, 0x11, ip4_block, 12, t, 3 + 128);
	GOOD4("v2 UNIQUE_ID of 128 bytes");
	t[2] = 0x81;
	n = v2_tlvs(h, 0x21, 0x11, ip4_block, 12, t, 3 + 129);
	BAD("v2 UNIQUE_ID of 129 bytes", "v2 UNIQUE_ID TLV is longer than 128 bytes");

	/* SSL: client (1) and verify (4), then sub-TLVs within its length. */
	/* 5 + (3 + 7) + (3 + 5) + (3 + 27) = 53 bytes of SSL value. */
	n = v2_tlvs(h, 0x21, 0x11, ip4_block, 12,
	    T("\x20\x00\x35" "\x07\x00\x00\x00\x00" "\x21\x00\x07TLSv1.3" "\x22\x00\x05" "caf\xc3\xa9"
	      "\x23\x00\x1b" "ECDHE-RSA-AES128-GCM-SHA256" "\x04\x00\x00"));
	GOOD4("v2 SSL TLV with version, CN and cipher sub-TLVs");
	n = v2_tlvs(h, 0x21, 0x11, ip4_block, 12, T("\x20\x00\x05\x00\x00\x00\x00\x01"));
	GOOD4("v2 SSL TLV of only its fixed fields");
	n = v2_tlvs(h, 0x21, 0x11, ip4_block, 12,
	    T("\x20\x00\x0a\x03\x00\x00\x00\x00" "\x28\x00\x02\xff\x80"));
	GOOD4("v2 SSL TLV with an undefined binary sub-TLV");
	n = v2_tlvs(h, 0x21, 0x11, ip4_block, 12, T("\x20\x00\x04\x01\x00\x00\x00" "\x04\x00\x00"));
	BAD("v2 SSL TLV of 4 bytes", "v2 SSL TLV is shorter than its 5 fixed bytes");
	n = v2_tlvs(h, 0x21, 0x11, ip4_block, 12,
	    T("\x20\x00\x07\x01\x00\x00\x00\x00\x21\x00" "\x04\x00\x00"));
	BAD("v2 SSL sub-TLV header past the SSL TLV", "v2 SSL sub-TLV header runs past the SSL TLV");
	n = v2_tlvs(h, 0x21, 0x11, ip4_block, 12,
	    T("\x20\x00\x0a\x01\x00\x00\x00\x00\x21\x00\x05TL" "\x04\x00\x00"));
	BAD("v2 SSL sub-TLV value past the SSL TLV", "v2 SSL sub-TLV value runs past the SSL TLV");
	n = v2_tlvs(h, 0x21, 0x11, ip4_block, 12,
	    T("\x20\x00\x0b\x01\x00\x00\x00\x00\x21\x00\x03v\x80x"));
	BAD("v2 SSL version that is not US-ASCII",
	    "v2 SSL version, cipher or algorithm sub-TLV is not US-ASCII");
	n = v2_tlvs(h, 0x21, 0x11, ip4_block, 12,
	    T("\x20\x00\x0a\x01\x00\x00\x00\x00\x22\x00\x02\xc3\x28"));
	BAD("v2 SSL CN that is not UTF-8", "v2 SSL CN sub-TLV is not valid UTF-8");
	n = v2_tlvs(h, 0x21, 0x11, ip4_block, 12,
	    T("\x20\x00\x0a\x01\x00\x00\x00\x00\x22\x00\x02\x61\xe4" "\x04\x00\x00"));
	BAD("v2 SSL CN ending inside a UTF-8 character", "v2 SSL CN sub-TLV is not valid UTF-8");

	/* AUTHORITY is UTF-8, NETNS US-ASCII; neither is said to be non-empty. */
	n = v2_tlvs(h, 0x21, 0x11, ip4_block, 12,
	    T("\x02\x00\x10" "b\xc3\xbc" "cher.\xe4\xbe\x8b.\xf0\x9f\x98\x80"));
	GOOD4("v2 AUTHORITY with 2-, 3- and 4-byte UTF-8 characters");
	n = v2_tlvs(h, 0x21, 0x11, ip4_block, 12, T("\x30\x00\x04" "blue"));
	GOOD4("v2 NETNS in US-ASCII");
	n = v2_tlvs(h, 0x21, 0x11, ip4_block, 12,
	    T("\x01\x00\x00\x02\x00\x00\x30\x00\x00\x05\x00\x00\x04\x00\x00"));
	GOOD4("v2 empty ALPN, AUTHORITY, NETNS, UNIQUE_ID and NOOP");
	n = v2_tlvs(h, 0x21, 0x11, ip4_block, 12, T("\x01\x00\x03\xff\x00\x80"));
	GOOD4("v2 ALPN of any bytes");
	n = v2_tlvs(h, 0x21, 0x11, ip4_block, 12, T("\x02\x00\x02\xc0\xaf"));
	BAD("v2 AUTHORITY with an overlong UTF-8 form", "v2 AUTHORITY TLV is not valid UTF-8");
	n = v2_tlvs(h, 0x21, 0x11, ip4_block, 12, T("\x02\x00\x03\xed\xa0\x80"));
	BAD("v2 AUTHORITY with a UTF-16 surrogate", "v2 AUTHORITY TLV is not valid UTF-8");
	n = v2_tlvs(h, 0x21, 0x11, ip4_block, 12, T("\x02\x00\x04\xf4\x90\x80\x80"));
	BAD("v2 AUTHORITY past U+10FFFF", "v2 AUTHORITY TLV is not valid UTF-8");
	n = v2_tlvs(h, 0x21, 0x11, ip4_block, 12, T("\x02\x00\x02" "a\x80"));
	BAD("v2 AUTHORITY with a stray continuation byte", "v2 AUTHORITY TLV is not valid UTF-8");
	n = v2_tlvs(h, 0x21, 0x11, ip4_block, 12, T("\x02\x00\x03" "a\xe4\xbe" "\x04\x00\x00"));
	BAD("v2 AUTHORITY ending inside a UTF-8 character", "v2 AUTHORITY TLV is not valid UTF-8");
	n = v2_tlvs(h, 0x21, 0x11, ip4_block, 12, T("\x30\x00\x03ns\xff"));
	BAD("v2 NETNS that is not US-ASCII", "v2 NETNS TLV is not US-ASCII");

	/* UNSPEC: no address block, so TLVs from byte 16 on. */
	n = v2_tlvs(h, 0x21, 0x00, NULL, 0, T("\x04\x00\x09" "abc"));
	BAD("v2 PROXY UNSPEC with a TLV past the length", "v2 TLV value runs past the header length");
	n = v2(h, 0x21, 0x00, ip4_block, 12);
	BAD("v2 PROXY UNSPEC carrying bytes that are not TLVs",
	    "v2 TLV value runs past the header length");
	n = v2_tlvs(h, 0x21, 0x00, NULL, 0, T("\x05\x00\x81"));
	memset(h + n, 'i', 129);
	n += 129;
	h[15] += 129;
	BAD("v2 PROXY UNSPEC with a UNIQUE_ID of 129 bytes",
	    "v2 UNIQUE_ID TLV is longer than 128 bytes");

	/* LOCAL: addresses unused, TLVs checked all the same. */
	n = v2_tlvs(h, 0x20, 0x00, NULL, 0, T("\x04\x00\x01" "\x00" "\x03\x00\x04\x00\x00\x00\x00"));
	put_crc(h, n, n - 4);
	GOODL("v2 LOCAL with a NOOP and a valid CRC32c");
	h[n - 2] ^= 0x40;
	BAD("v2 LOCAL with a CRC32c that does not match",
	    "v2 header checksum (CRC32c TLV) does not match");
	n = v2_tlvs(h, 0x20, 0x11, ip4_block, 12, T("\x02\x00\x04host"));
	GOODL("v2 LOCAL TCP4 with addresses and an AUTHORITY");
	n = v2(h, 0x20, 0x21, NULL, 0);
	GOODL("v2 LOCAL TCP6 with length 0 (no addresses)");
	n = v2_tlvs(h, 0x20, 0x00, NULL, 0, T("\x01\x00\x05h2"));
	BAD("v2 LOCAL with a TLV past the length", "v2 TLV value runs past the header length");
	n = v2_tlvs(h, 0x20, 0x00, NULL, 0, T("\x04\x00"));
	BAD("v2 LOCAL with two bytes that cannot be a TLV",
	    "v2 TLV header runs past the header length");
	n = v2_tlvs(h, 0x20, 0x11, ip4_block, 12, T("\x03\x00\x03\x00\x00\x00"));
	BAD("v2 LOCAL TCP4 with a 3-byte checksum TLV", "v2 checksum TLV is not 4 bytes");
	n = v2_tlvs(h, 0x20, 0x00, NULL, 0, T("\x20\x00\x02\x01\x00"));
	BAD("v2 LOCAL with a 2-byte SSL TLV", "v2 SSL TLV is shorter than its 5 fixed bytes");
	n = v2(h, 0x20, 0x21, six, 20);
	BAD("v2 LOCAL TCP6 with a 20-byte block", "v2 length is shorter than its address block");
	n = v2_tlvs(h, 0x20, 0x21, six, 36, T("\x30\x00\x01\xe9"));
	BAD("v2 LOCAL TCP6 with a NETNS that is not US-ASCII", "v2 NETNS TLV is not US-ASCII");

	for (int i = 0; i < ng; i++)
		test_good(&g[i]);
	for (int i = 0; i < nb; i++)
		test_bad_why(&b[i], why[i]);
#undef GOOD4
#undef GOODL
#undef BAD
}

static void
sin4(struct sockaddr_storage *ss, const char *a, unsigned port)
{
	struct sockaddr_in *s = (struct sockaddr_in *)ss;

	memset(ss, 0, sizeof(*ss));
	s->sin_family = AF_INET;
	inet_pton(AF_INET, a, &s->sin_addr);
	s->sin_port = htons((uint16_t)port);
}

static void
sin6(struct sockaddr_storage *ss, const char *a, unsigned port)
{
	struct sockaddr_in6 *s = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	s->sin6_family = AF_INET6;
	inet_pton(AF_INET6, a, &s->sin6_addr);
	s->sin6_port = htons((uint16_t)port);
}

/* proxy_build, then the parser on what it built. */
static void
test_build(void)
{
	struct sockaddr_storage a4, b4, a6, b6, un;
	struct proxy_info info;
	uint8_t out[PROXY_HEADER_MAX];
	char x[80], y[80];
	size_t consumed;
	const char *err;
	int n;

	sin4(&a4, "203.0.113.9", 40000);
	sin4(&b4, "127.0.0.1", 8080);
	sin6(&a6, "2001:db8::42", 1234);
	sin6(&b6, "::1", 443);
	memset(&un, 0, sizeof(un));
	un.ss_family = AF_UNIX;

	n = proxy_build(PROXY_V1, (struct sockaddr *)&a4, (struct sockaddr *)&b4, out, sizeof(out));
	ok(n > 0 && (size_t)n == strlen("PROXY TCP4 203.0.113.9 127.0.0.1 40000 8080\r\n") &&
	       memcmp(out, "PROXY TCP4 203.0.113.9 127.0.0.1 40000 8080\r\n", (size_t)n) == 0,
	    "v1 TCP4 is built as the spec writes it");
	n = proxy_build(PROXY_V1, (struct sockaddr *)&a6, (struct sockaddr *)&b6, out, sizeof(out));
	ok(n > 0 && memcmp(out, "PROXY TCP6 2001:db8::42 ::1 1234 443\r\n", (size_t)n) == 0,
	    "v1 TCP6 is built");
	n = proxy_build(PROXY_V1, (struct sockaddr *)&a4, (struct sockaddr *)&b6, out, sizeof(out));
	ok(n > 0 && feed(out, (size_t)n, PROXY_V1, NULL, 0, &info, &consumed, &err) == 1 &&
	       consumed == (size_t)n && info.src.ss_family == AF_INET6 &&
	       strcmp(fmt_addr(&info.src, x, sizeof(x)), "::ffff:203.0.113.9 40000") == 0,
	    "v1 with mixed families maps IPv4 into IPv6 (%s)", x);
	n = proxy_build(PROXY_V1, (struct sockaddr *)&un, (struct sockaddr *)&b4, out, sizeof(out));
	ok(n == 15 && memcmp(out, "PROXY UNKNOWN\r\n", 15) == 0, "v1 for a UNIX client is UNKNOWN");
	n = proxy_build(PROXY_V1, NULL, NULL, out, sizeof(out));
	ok(n == 15 && memcmp(out, "PROXY UNKNOWN\r\n", 15) == 0, "v1 with no addresses is UNKNOWN");

	n = proxy_build(PROXY_V2, (struct sockaddr *)&a4, (struct sockaddr *)&b4, out, sizeof(out));
	ok(n == 28 && out[12] == 0x21 && out[13] == 0x11 && out[14] == 0 && out[15] == 12 &&
	       feed(out, (size_t)n, PROXY_V2, NULL, 0, &info, &consumed, &err) == 1 &&
	       !info.local && strcmp(fmt_addr(&info.src, x, sizeof(x)), "203.0.113.9 40000") == 0 &&
	       strcmp(fmt_addr(&info.dst, y, sizeof(y)), "127.0.0.1 8080") == 0,
	    "v2 TCP4 is 28 bytes and parses back (%s -> %s)", x, y);
	n = proxy_build(PROXY_V2, (struct sockaddr *)&a6, (struct sockaddr *)&b6, out, sizeof(out));
	ok(n == 52 && out[13] == 0x21 &&
	       feed(out, (size_t)n, PROXY_ANY, NULL, 0, &info, &consumed, &err) == 1 &&
	       strcmp(fmt_addr(&info.src, x, sizeof(x)), "2001:db8::42 1234") == 0 &&
	       strcmp(fmt_addr(&info.dst, y, sizeof(y)), "::1 443") == 0,
	    "v2 TCP6 is 52 bytes and parses back");
	n = proxy_build(PROXY_V2, NULL, NULL, out, sizeof(out));
	ok(n == 16 && out[12] == 0x20 && out[13] == 0 &&
	       feed(out, (size_t)n, PROXY_V2, NULL, 0, &info, &consumed, &err) == 1 && info.local,
	    "v2 LOCAL is 16 bytes and parses as local");
	n = proxy_build(PROXY_V2, (struct sockaddr *)&un, (struct sockaddr *)&un, out, sizeof(out));
	ok(n == 16 && out[12] == 0x21 && out[13] == 0, "v2 for UNIX endpoints is PROXY UNSPEC");

	errno = 0;
	ok(proxy_build(PROXY_V2, (struct sockaddr *)&a4, (struct sockaddr *)&b4, out, 27) == -1 &&
	       errno == ENOSPC,
	    "a buffer one byte short is ENOSPC");
	errno = 0;
	ok(proxy_build(3, (struct sockaddr *)&a4, (struct sockaddr *)&b4, out, sizeof(out)) == -1 &&
	       errno == EINVAL,
	    "version 3 is EINVAL");
	errno = 0;
	ok(proxy_build(PROXY_V1, (struct sockaddr *)&a4, NULL, out, sizeof(out)) == -1 &&
	       errno == EINVAL,
	    "one address missing is EINVAL");
}

/* --- TLVs kept from a front's header and sent on --------------------------- */

static size_t
tlv(uint8_t *out, uint8_t type, const void *value, size_t len)
{
	out[0] = type;
	out[1] = (uint8_t)(len >> 8);
	out[2] = (uint8_t)len;
	memcpy(out + 3, value, len);
	return 3 + len;
}

static void
set_add(uint8_t *set, unsigned type)
{
	set[type >> 3] |= (uint8_t)(1u << (type & 7));
}

/*
 * Feed a header and the payload after it in pieces of `piece` bytes the way
 * a worker does: each read lands right after the TLVs kept so far, and the
 * parser gathers kept TLVs in place at the start of the area. Returns the
 * parse result; on 1 the kept TLVs are in kept (info->tlv_kept bytes), and
 * the payload the last piece brought after the header must be intact right
 * after it (else 98).
 */
static int
keep_feed(const uint8_t *bytes, size_t len, size_t hlen, const uint8_t *set, size_t piece,
    uint8_t *kept, struct proxy_info *info)
{
	static uint8_t area[MAXH + 64];
	struct proxy_parser p;
	size_t off = 0;

	memset(area, 0xAA, sizeof(area));
	proxy_parser_init(&p, PROXY_V2);
	proxy_parser_keep(&p, set);
	while (off < len) {
		size_t n = piece < len - off ? piece : len - off, k = proxy_parser_kept(&p), used = 0;
		int rc;

		memcpy(area + k, bytes + off, n);
		rc = proxy_parse_keep(&p, area + k, n, &used, info, area);
		if (rc == -1)
			return -1;
		if (rc == 1) {
			if (off + used != hlen || info->tlv_kept != proxy_parser_kept(&p))
				return 97;
			if (memcmp(area + k + used, bytes + hlen, n - used) != 0)
				return 98;
			memcpy(kept, area, info->tlv_kept);
			return 1;
		}
		off += n;
	}
	return 0;
}

static void
test_tlv_keep(void)
{
	static const uint8_t ssl[] = {0x01, 0, 0, 0, 0, 0x21, 0x00, 0x07, 'T', 'L', 'S', 'v', '1',
	    '.', '3'};
	uint8_t body[600], hdr[MAXH], want_all[600], want_some[600], kept[MAXH], set[32], all[32];
	size_t b = 0, na = 0, ns = 0, hl, total;
	const size_t pieces[] = {1, 2, 3, 7, 16, 29, 64, 100000};
	struct proxy_info info;
	uint32_t sum;
	int bad_some = 0, bad_all = 0;

	memcpy(body, ip4_block, sizeof(ip4_block));
	b = sizeof(ip4_block);
	/* Each TLV goes into the body, and into what "all" and "some" keep. */
#define ADD(keep_some, type, val, vlen)                                            \
	do {                                                                       \
		size_t t_ = tlv(body + b, type, val, vlen);                        \
		memcpy(want_all + na, body + b, t_);                               \
		na += t_;                                                          \
		if (keep_some) {                                                   \
			memcpy(want_some + ns, body + b, t_);                      \
			ns += t_;                                                  \
		}                                                                  \
		b += t_;                                                           \
	} while (0)
	ADD(1, 0x01, "h2", 2);
	ADD(0, 0x02, "example.com", 11);
	ADD(0, 0x04, "\0\0\0", 3);
	ADD(1, 0x05, "id-0001", 7);
	ADD(0, 0x20, ssl, sizeof(ssl));
	ADD(0, 0x30, "blue", 4);
	ADD(1, 0xE1, "custom", 6);
	ADD(1, 0x01, "", 0); /* empty, and a type seen twice: both kept */
#undef ADD
	/* A CRC32c last, over the whole header with its field zeroed. */
	b += tlv(body + b, PROXY_TLV_CRC32C, "\0\0\0\0", 4);
	hl = v2(hdr, 0x21, 0x11, body, b);
	sum = crc32c(hdr, hl);
	hdr[hl - 4] = (uint8_t)(sum >> 24);
	hdr[hl - 3] = (uint8_t)(sum >> 16);
	hdr[hl - 2] = (uint8_t)(sum >> 8);
	hdr[hl - 1] = (uint8_t)sum;
	memcpy(hdr + hl, PAYLOAD, sizeof(PAYLOAD) - 1);
	total = hl + sizeof(PAYLOAD) - 1;

	memset(set, 0, sizeof(set));
	set_add(set, 0x01);
	set_add(set, 0x05);
	set_add(set, 0xE1);
	set_add(set, PROXY_TLV_CRC32C); /* never kept: its value is per header */
	memset(all, 0xFF, sizeof(all));
	for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
		memset(&info, 0, sizeof(info));
		if (keep_feed(hdr, total, hl, set, pieces[i], kept, &info) != 1 ||
		    info.tlv_kept != ns || memcmp(kept, want_some, ns) != 0 || !info.crc ||
		    info.local || info.src.ss_family != AF_INET) {
			diag("some, pieces of %zu: kept %zu of %zu", pieces[i], info.tlv_kept, ns);
			bad_some++;
		}
		memset(&info, 0, sizeof(info));
		if (keep_feed(hdr, total, hl, all, pieces[i], kept, &info) != 1 ||
		    info.tlv_kept != na || memcmp(kept, want_all, na) != 0 || !info.crc) {
			diag("all, pieces of %zu: kept %zu of %zu", pieces[i], info.tlv_kept, na);
			bad_all++;
		}
	}
	ok(!bad_some, "a subset of TLV types is kept whole and in order, CRC32c never, "
	              "the payload intact, whatever the reads (%zu bytes)", ns);
	ok(!bad_all, "every TLV but the CRC32c is kept with an all-types set (%zu bytes)", na);

	/* Without a set, or through proxy_parse, nothing is kept or counted. */
	{
		struct proxy_parser p;
		size_t used = 0;

		proxy_parser_init(&p, PROXY_V2);
		ok(proxy_parse_keep(&p, hdr, total, &used, &info, kept) == 1 && info.tlv_kept == 0 &&
		       info.crc == 1 && used == hl,
		    "no set: nothing kept, the checksum still reported");
		proxy_parser_init(&p, PROXY_V2);
		proxy_parser_keep(&p, all);
		ok(proxy_parse(&p, hdr, total, &used, &info) == 1 && info.tlv_kept == 0,
		    "proxy_parse copies nothing even with a set");
	}
	/* A malformed TLV after kept ones still fails the header. */
	{
		uint8_t badh[MAXH];
		size_t bl;

		memcpy(body + sizeof(ip4_block), "\x01\x00\x02h2\x02\x00\x02\xC0\xAF", 10);
		bl = v2(badh, 0x21, 0x11, body, sizeof(ip4_block) + 10);
		ok(keep_feed(badh, bl, bl, all, 5, kept, &info) == -1,
		    "a bad AUTHORITY after a kept ALPN fails the header");
	}
}

/* Check a built header the way a receiver must: parse it (our parser
 * verifies a CRC32c) and recompute the checksum here independently. */
static int
crc_ok(const uint8_t *h, size_t len)
{
	uint8_t copy[MAXH];
	size_t i = PROXY_V2_FIXED + (h[13] == 0x11 ? 12 : h[13] == 0x21 ? 36 : 0);
	uint32_t got;

	memcpy(copy, h, len);
	while (i + 3 <= len) {
		size_t vl = (size_t)copy[i + 1] << 8 | copy[i + 2];

		if (copy[i] == PROXY_TLV_CRC32C && vl == 4) {
			got = (uint32_t)copy[i + 3] << 24 | (uint32_t)copy[i + 4] << 16 |
			      (uint32_t)copy[i + 5] << 8 | copy[i + 6];
			memset(copy + i + 3, 0, 4);
			return crc32c(copy, len) == got;
		}
		i += 3 + vl;
	}
	return 0;
}

static void
test_build_v2(void)
{
	struct sockaddr_in a4, b4;
	struct sockaddr_in6 a6;
	static uint8_t buf[MAXH + 100];
	uint8_t pass[64], add[32], tmp[MAXH];
	size_t pl = 0, al = 0;
	struct proxy_parser p;
	struct proxy_info info;
	size_t used;
	int n;

	memset(&a4, 0, sizeof(a4));
	a4.sin_family = AF_INET;
	inet_pton(AF_INET, "203.0.113.9", &a4.sin_addr);
	a4.sin_port = htons(40000);
	b4 = a4;
	inet_pton(AF_INET, "127.0.0.1", &b4.sin_addr);
	b4.sin_port = htons(8080);
	memset(&a6, 0, sizeof(a6));
	a6.sin6_family = AF_INET6;
	inet_pton(AF_INET6, "2001:db8::7", &a6.sin6_addr);
	a6.sin6_port = htons(1234);
	pl += tlv(pass + pl, 0x01, "h2", 2);
	pl += tlv(pass + pl, 0x02, "example.com", 11);
	al += tlv(add + al, 0xE0, "cfg", 3);

	/* pass already in the buffer past PROXY_V2_TLV_OFF, as a worker has it. */
	memcpy(buf + 176, pass, pl);
	n = proxy_build_v2((struct sockaddr *)&a4, (struct sockaddr *)&b4, buf + 176, pl, add, al, 1,
	    buf, sizeof(buf));
	ok(n == 16 + 12 + (int)pl + (int)al + 7 && memcmp(buf + 28, pass, pl) == 0 &&
	       memcmp(buf + 28 + pl, add, al) == 0 && buf[n - 7] == PROXY_TLV_CRC32C,
	    "v2 TCP4 with passed, added and CRC32c TLVs in that order (%d bytes)", n);
	ok(n > 0 && buf[14] == (uint8_t)((n - 16) >> 8) && buf[15] == (uint8_t)(n - 16),
	    "its length field counts the TLVs");
	ok(n > 0 && crc_ok(buf, (size_t)n), "its CRC32c is the spec's, computed independently");
	proxy_parser_init(&p, PROXY_V2);
	ok(n > 0 && proxy_parse(&p, buf, (size_t)n, &used, &info) == 1 && used == (size_t)n &&
	       info.crc && info.src.ss_family == AF_INET &&
	       ((struct sockaddr_in *)&info.src)->sin_port == htons(40000),
	    "it parses back, checksum verified, same addresses");

	/* The pass bytes overlapping where they go (IPv6: offset 52). */
	memcpy(buf + PROXY_V2_TLV_OFF, pass, pl);
	n = proxy_build_v2((struct sockaddr *)&a6, (struct sockaddr *)&a6, buf + PROXY_V2_TLV_OFF,
	    pl, NULL, 0, 0, buf, sizeof(buf));
	proxy_parser_init(&p, PROXY_V2);
	ok(n == 52 + (int)pl && memcmp(buf + 52, pass, pl) == 0 &&
	       proxy_parse(&p, buf, (size_t)n, &used, &info) == 1 && !info.crc,
	    "v2 TCP6 with passed TLVs already in place, no checksum");

	n = proxy_build_v2(NULL, NULL, NULL, 0, add, al, 1, tmp, sizeof(tmp));
	proxy_parser_init(&p, PROXY_V2);
	ok(n == 16 + (int)al + 7 && crc_ok(tmp, (size_t)n) &&
	       proxy_parse(&p, tmp, (size_t)n, &used, &info) == 1 && info.local && info.crc,
	    "v2 LOCAL with an added TLV and a checksum");
	n = proxy_build_v2((struct sockaddr *)&a4, (struct sockaddr *)&b4, NULL, 0, NULL, 0, 0, tmp,
	    sizeof(tmp));
	{
		uint8_t plain[PROXY_HEADER_MAX];
		int m = proxy_build(PROXY_V2, (struct sockaddr *)&a4, (struct sockaddr *)&b4, plain,
		    sizeof(plain));

		ok(n == m && memcmp(tmp, plain, (size_t)m) == 0,
		    "without TLVs it writes what proxy_build writes");
	}

	/* Bounds: the length field, then the buffer. */
	{
		static uint8_t big[PROXY_V2_LEN_MAX];
		size_t fill = PROXY_V2_LEN_MAX - 12 - 7; /* TCP4 and a checksum: exactly full */

		memset(big, 0, sizeof(big));
		big[0] = 0x04; /* one NOOP over the whole area */
		big[1] = (uint8_t)((fill - 3) >> 8);
		big[2] = (uint8_t)(fill - 3);
		n = proxy_build_v2((struct sockaddr *)&a4, (struct sockaddr *)&b4, big, fill, NULL,
		    0, 1, buf, sizeof(buf));
		proxy_parser_init(&p, PROXY_V2);
		ok(n == PROXY_V2_MAX && proxy_parse(&p, buf, (size_t)n, &used, &info) == 1,
		    "a header of exactly PROXY_V2_LEN_MAX is built and parses");
		errno = 0;
		ok(proxy_build_v2((struct sockaddr *)&a4, (struct sockaddr *)&b4, big, fill, "x", 1,
		       1, buf, sizeof(buf)) == -1 && errno == EMSGSIZE,
		    "one byte more is EMSGSIZE");
		errno = 0;
		ok(proxy_build_v2((struct sockaddr *)&a4, (struct sockaddr *)&b4, NULL, 0, add, al,
		       1, tmp, 16 + 12 + al + 6) == -1 && errno == ENOSPC,
		    "a buffer one byte short is ENOSPC");
		errno = 0;
		ok(proxy_build_v2((struct sockaddr *)&a4, NULL, NULL, 0, NULL, 0, 0, tmp,
		       sizeof(tmp)) == -1 && errno == EINVAL,
		    "one address missing is EINVAL");
	}
}

static void
refused(const void *tlvs, size_t len, const char *word, const char *what)
{
	const char *why = NULL;
	int rc = proxy_tlv_check(tlvs, len, &why);

	ok(rc == -1 && why != NULL && strstr(why, word) != NULL, "%s (%s)", what, why ? why : "-");
}

static void
test_tlv_config(void)
{
	static const uint8_t ssl[] = {0x20, 0x00, 0x0F, 0x01, 0, 0, 0, 0, 0x21, 0x00, 0x07, 'T',
	    'L', 'S', 'v', '1', '.', '3'};
	static uint8_t big[PROXY_V2_LEN_MAX + 1];
	const char *why = NULL;

	ok(proxy_tlv_type("alpn") == 0x01 && proxy_tlv_type("authority") == 0x02 &&
	       proxy_tlv_type("crc32c") == 0x03 && proxy_tlv_type("noop") == 0x04 &&
	       proxy_tlv_type("unique_id") == 0x05 && proxy_tlv_type("ssl") == 0x20 &&
	       proxy_tlv_type("netns") == 0x30,
	    "TLV types by the spec's names");
	ok(proxy_tlv_type("ALPN") == -1 && proxy_tlv_type("aws") == -1 && proxy_tlv_type("") == -1,
	    "other names are not types");
	ok(proxy_tlv_check("\xE0\x00\x03" "abc\x01\x00\x02h2", 11, &why) == 0,
	    "configured TLVs that tile exactly are accepted");
	ok(proxy_tlv_check(ssl, sizeof(ssl), &why) == 0, "an SSL TLV with sub-TLVs is accepted");
	ok(proxy_tlv_check("", 0, &why) == 0, "no TLVs at all is fine");
	refused("\x02\x00\x02\xC0\xAF", 5, "UTF-8", "an AUTHORITY that is not UTF-8 is refused");
	refused("\xE0\x00\x05" "ab", 5, "past", "a TLV whose value runs past the end is refused");
	refused("\xE0\x00", 2, "runs past", "a cut TLV header is refused");
	refused("\x03\x00\x04\0\0\0\0", 7, "CRC32c", "a configured CRC32c is refused");
	refused(big, sizeof(big), "2048", "more than PROXY_V2_LEN_MAX bytes is refused");
}

int
main(void)
{
	static const uint8_t check[] = "123456789";

	crc_init();
	is(crc32c(check, 9), 0xE3069283u, "the test's CRC32c matches the standard check value");
	test_v1();
	test_v2();
	test_v2_tlv();
	test_build();
	test_tlv_keep();
	test_build_v2();
	test_tlv_config();
	done_testing();
	return tap_exit();
}
