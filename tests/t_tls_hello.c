/* SPDX-License-Identifier: BSD-2-Clause */
/* t_tls_hello.c — unit test for common/tls_hello.c: real ClientHellos from
 * openssl and curl (tests/tls_hellos.h) whole, at every prefix, followed by
 * payload, and re-cut into handshake records of 1 to 1000 bytes; hellos built
 * here and then broken one way at a time; the size bound; name rules and
 * wildcard matching. Runs alone, no network. */
#include <stdio.h>
#include <string.h>

#include "tap.h"
#include "tls_hello.h"
#include "tls_hellos.h"

#define BIG 65536

static uint8_t frag[BIG];

/* Re-cut the handshake bytes of a one-record hello into records of at most
 * k payload bytes each, as a client fragmenting its handshake would. */
static size_t
refragment(const uint8_t *h, size_t n, size_t k)
{
	const uint8_t *hs = h + 5;
	size_t hl = n - 5, o = 0;

	for (size_t i = 0; i < hl; i += k) {
		size_t m = hl - i < k ? hl - i : k;

		frag[o++] = 0x16;
		frag[o++] = 0x03;
		frag[o++] = 0x01;
		frag[o++] = (uint8_t)(m >> 8);
		frag[o++] = (uint8_t)m;
		memcpy(frag + o, hs + i, m);
		o += m;
	}
	return o;
}

/* Every proper prefix wants more; the whole says name and alpn. */
static int
check_stream(const uint8_t *d, size_t n, const char *name, size_t alpn_len)
{
	struct tls_hello h;
	const char *why;
	int good = 1;

	for (size_t k = 0; k < n; k++)
		if (tls_hello_parse(d, k, BIG, &h, &why) != 0) {
			diag("prefix of %zu bytes: %s", k, why ? why : "complete too early");
			good = 0;
			break;
		}
	if (tls_hello_parse(d, n, BIG, &h, &why) != 1) {
		diag("whole: %s", why);
		return 0;
	}
	if (strcmp(h.name, name) != 0 || h.alpn_len != alpn_len || h.hello_len != n) {
		diag("name %s alpn_len %zu hello_len %zu", h.name, h.alpn_len, h.hello_len);
		return 0;
	}
	return good;
}

struct real {
	const char *what;
	const uint8_t *d;
	size_t n;
	const char *name;
	size_t alpn_len;
};

static void
test_real(void)
{
	const struct real r[] = {
	    {"openssl s_client -servername -alpn h2,http/1.1", hello_openssl, hello_openssl_len,
	        "a.example.com", 12},
	    {"curl --resolve", hello_curl, hello_curl_len, "www.example.com", 12},
	    {"openssl s_client -noservername", hello_nosni, hello_nosni_len, "", 0},
	    {"openssl s_client -tls1_2 (upper case name)", hello_tls12, hello_tls12_len,
	        "b.example.com", 0},
	};
	const size_t cuts[] = {1, 2, 3, 7, 64, 100, 1000};
	static uint8_t more[BIG];
	struct tls_hello h;
	const char *why;

	for (size_t i = 0; i < sizeof(r) / sizeof(r[0]); i++) {
		int all = 1;

		ok(check_stream(r[i].d, r[i].n, r[i].name, r[i].alpn_len),
		    "%s: parsed, prefixes want more", r[i].what);
		memcpy(more, r[i].d, r[i].n);
		memcpy(more + r[i].n, "\x17\x03\x03\x00\x05hello", 10);
		ok(tls_hello_parse(more, r[i].n + 10, BIG, &h, &why) == 1 && h.hello_len == r[i].n,
		    "%s: bytes after the hello are left alone", r[i].what);
		for (size_t c = 0; c < sizeof(cuts) / sizeof(cuts[0]); c++) {
			size_t n = refragment(r[i].d, r[i].n, cuts[c]);

			if (!check_stream(frag, n, r[i].name, r[i].alpn_len)) {
				diag("records of %zu bytes", cuts[c]);
				all = 0;
			}
		}
		ok(all, "%s: fragmented over records of 1..1000 bytes", r[i].what);
		ok(tls_hello_parse(r[i].d, r[i].n, r[i].n, &h, &why) == 1,
		    "%s: fits max = its size", r[i].what);
		ok(tls_hello_parse(r[i].d, r[i].n - 1, r[i].n - 1, &h, &why) == -1 && why != NULL &&
		        strstr(why, "too large") != NULL,
		    "%s: max one byte short: too large (%s)", r[i].what, why ? why : "-");
	}
	tls_hello_parse(hello_openssl, hello_openssl_len, BIG, &h, &why);
	ok(tls_hello_has_alpn(&h, "h2") && tls_hello_has_alpn(&h, "http/1.1") &&
	        !tls_hello_has_alpn(&h, "h") && !tls_hello_has_alpn(&h, "http/1.0"),
	    "openssl: ALPN list holds h2 and http/1.1 only");
}

/* A hello built from parts, so that each can be broken alone. */
struct parts {
	const char *name;    /* NULL: no server_name */
	const char *alpn[4]; /* NULL-terminated */
	size_t sid;          /* session id length */
	size_t ciphers;      /* cipher suites bytes */
	int dup_sni, bad_ext_len, trailing;
};

static size_t
put16(uint8_t *p, size_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
	return 2;
}

static size_t
build(const struct parts *pt, uint8_t *out)
{
	uint8_t ext[2048], *e = ext, *hs = out + 9, *p = hs;
	size_t n;

	for (int k = 0; k < 1 + pt->dup_sni && pt->name != NULL; k++) {
		size_t nl = strlen(pt->name);

		e += put16(e, 0);
		e += put16(e, nl + 5);
		e += put16(e, nl + 3);
		*e++ = 0;
		e += put16(e, nl);
		memcpy(e, pt->name, nl);
		e += nl;
	}
	if (pt->alpn[0] != NULL) {
		uint8_t *len = e + 2;
		size_t tot = 0;

		e += put16(e, 16);
		e += 4;
		for (int k = 0; pt->alpn[k] != NULL; k++) {
			size_t l = strlen(pt->alpn[k]);

			*e++ = (uint8_t)l;
			memcpy(e, pt->alpn[k], l);
			e += l;
			tot += 1 + l;
		}
		put16(len, tot + 2);
		put16(len + 2, tot);
	}
	e += put16(e, 0x2b); /* supported_versions: TLS 1.3, 1.2 */
	e += put16(e, 5);
	memcpy(e, "\x04\x03\x04\x03\x03", 5);
	e += 5;
	*p++ = 3;
	*p++ = 3;
	memset(p, 0xab, 32);
	p += 32;
	*p++ = (uint8_t)pt->sid;
	memset(p, 0xcd, pt->sid);
	p += pt->sid;
	p += put16(p, pt->ciphers);
	memset(p, 0x13, pt->ciphers);
	p += pt->ciphers;
	*p++ = 1;
	*p++ = 0;
	p += put16(p, (size_t)(e - ext) + (size_t)pt->bad_ext_len);
	memcpy(p, ext, (size_t)(e - ext));
	p += e - ext;
	if (pt->trailing)
		*p++ = 0;
	n = (size_t)(p - hs);
	out[0] = 0x16;
	out[1] = 3;
	out[2] = 1;
	put16(out + 3, n + 4);
	out[5] = 1;
	out[6] = 0;
	put16(out + 7, n);
	return n + 9;
}

static int
parse(const uint8_t *d, size_t n, struct tls_hello *h, const char **why)
{
	return tls_hello_parse(d, n, BIG, h, why);
}

static void
test_built(void)
{
	static uint8_t b[BIG];
	struct tls_hello h;
	const char *why;
	size_t n;
	struct parts good = {"Foo.Example.org", {"h2", "acme-tls/1", NULL}, 32, 4, 0, 0, 0};
	struct parts pt;

	n = build(&good, b);
	ok(check_stream(b, n, "foo.example.org", 3 + 11), "built hello parses, name lower-cased");
	ok(parse(b, n, &h, &why) == 1 && tls_hello_has_alpn(&h, "acme-tls/1"), "built hello: ALPN");

	/* Garbage is refused at its first byte, not at the timeout. */
	is(parse((const uint8_t *)"G", 1, &h, &why), -1, "HTTP request: refused at byte 1 (%s)",
	    why);
	is(parse((const uint8_t *)"\x80\x2e\x01\x03\x01", 5, &h, &why), -1,
	    "SSL 2.0 hello refused");
	is(parse((const uint8_t *)"\x16\x02", 2, &h, &why), -1, "record version 2.x refused");
	is(parse((const uint8_t *)"\x16\x03\x01\x00\x00", 5, &h, &why), -1, "empty record refused");
	is(parse((const uint8_t *)"\x16\x03\x01\x40\x01", 5, &h, &why), -1,
	    "record over 2^14 refused");
	is(parse((const uint8_t *)"\x16\x03\x01\x00\x10\x02", 6, &h, &why), -1,
	    "a ServerHello refused (%s)", why);
	is(parse((const uint8_t *)"\x16\x03\x01\x00\x10\x01\x00\x00\x10", 9, &h, &why), -1,
	    "a 16-byte ClientHello is too short");
	is(tls_hello_parse(
	       (const uint8_t *)"\x16\x03\x01\x00\x10\x01\x00\x40\x00", 9, 4096, &h, &why),
	    -1, "a 16 KiB hello with max 4096: refused at its length (%s)", why);

	n = build(&good, b);
	memcpy(frag, b, n);
	n = refragment(b, n, 50);
	frag[55] = 0x17; /* the second record: application data */
	is(parse(frag, n, &h, &why), -1, "application data between fragments refused (%s)", why);

	pt = good, pt.sid = 33;
	n = build(&pt, b);
	is(parse(b, n, &h, &why), -1, "session id of 33 bytes refused");
	pt = good, pt.ciphers = 3;
	n = build(&pt, b);
	is(parse(b, n, &h, &why), -1, "odd cipher suites length refused");
	pt = good, pt.ciphers = 0;
	n = build(&pt, b);
	is(parse(b, n, &h, &why), -1, "no cipher suites refused");
	pt = good, pt.dup_sni = 1;
	n = build(&pt, b);
	is(parse(b, n, &h, &why), -1, "two server_name extensions refused (%s)", why);
	pt = good, pt.bad_ext_len = 1;
	n = build(&pt, b);
	is(parse(b, n, &h, &why), -1, "extensions length past the hello refused (%s)", why);
	pt = good, pt.bad_ext_len = -1;
	n = build(&pt, b);
	is(parse(b, n, &h, &why), -1, "extensions length short of the hello refused");
	pt = good, pt.trailing = 1;
	n = build(&pt, b);
	is(parse(b, n, &h, &why), -1, "a byte after the extensions refused");
	pt = good, pt.name = "a b.example.com";
	n = build(&pt, b);
	is(parse(b, n, &h, &why), -1, "host name with a space refused (%s)", why);
	pt = good, pt.name = "example.com.";
	n = build(&pt, b);
	is(parse(b, n, &h, &why), -1, "host name with a trailing dot refused");
	pt = good, pt.name = "a..b";
	n = build(&pt, b);
	is(parse(b, n, &h, &why), -1, "host name with an empty label refused");
	pt = good, pt.alpn[0] = "", pt.alpn[1] = NULL;
	n = build(&pt, b);
	is(parse(b, n, &h, &why), -1, "empty ALPN protocol refused");
	pt = good, pt.name = NULL, pt.alpn[0] = NULL;
	n = build(&pt, b);
	ok(parse(b, n, &h, &why) == 1 && h.name_len == 0 && h.alpn_len == 0,
	    "no SNI, no ALPN: complete, both empty");

	/* A hello whose server_name length field lies: shorter than its entry. */
	n = build(&good, b);
	for (size_t i = 0; i + 1 < n; i++)
		if (b[i] == 0 && b[i + 1] == 0 && b[i + 3] == strlen(good.name) + 5) {
			b[i + 5] = (uint8_t)(strlen(good.name)); /* list length: 2 short */
			break;
		}
	is(parse(b, n, &h, &why), -1, "server_name list length mismatch refused (%s)", why);

	/* A long ALPN list keeps the protocols that fit whole. */
	{
		static char names[3][128];
		struct parts lp;

		memset(&lp, 0, sizeof(lp));
		lp.ciphers = 2;
		for (int k = 0; k < 3; k++)
			snprintf(names[k], sizeof(names[k]), "p%d-%0100d", k, 0);
		/* three 106-byte names: the first two fit in 256 bytes, the third does not */
		lp.alpn[0] = names[0], lp.alpn[1] = names[1], lp.alpn[2] = names[2];
		n = build(&lp, b);
		ok(parse(b, n, &h, &why) == 1 && tls_hello_has_alpn(&h, names[1]) &&
		        !tls_hello_has_alpn(&h, names[2]),
		    "a long ALPN list keeps what fits whole");
	}
}

static void
test_names(void)
{
	ok(tls_hello_name_valid("a.example.com", 13, 0) == 0, "a.example.com is a name");
	ok(tls_hello_name_valid("*.example.com", 13, 0) == -1, "*.example.com: no wildcard here");
	ok(tls_hello_name_valid("*.example.com", 13, 1) == 0, "*.example.com: a wildcard");
	ok(tls_hello_name_valid("a.*.com", 7, 1) == -1, "a wildcard only as the first label");
	ok(tls_hello_name_valid("*", 1, 1) == -1, "* alone is not a wildcard name");
	ok(tls_hello_name_valid("*.", 2, 1) == -1, "*. is not a wildcard name");
	ok(tls_hello_name_valid("", 0, 0) == -1, "empty name refused");
	ok(tls_hello_name_valid("a-b_c.d", 7, 0) == 0, "hyphen and underscore allowed");
	{
		char l[80];

		memset(l, 'a', 64);
		l[64] = 0;
		ok(tls_hello_name_valid(l, 64, 0) == -1, "a 64-byte label refused");
		ok(tls_hello_name_valid(l, 63, 0) == 0, "a 63-byte label allowed");
	}
	ok(tls_hello_name_match("a.example.com", "A.Example.Com"), "exact match ignores case");
	ok(!tls_hello_name_match("a.example.com", "b.example.com"), "exact: another name");
	ok(tls_hello_name_match("*.example.com", "x.example.com"), "wildcard: one label");
	ok(tls_hello_name_match("*.example.com", "x.y.example.com"), "wildcard: two labels");
	ok(!tls_hello_name_match("*.example.com", "example.com"), "wildcard: not the bare suffix");
	ok(!tls_hello_name_match("*.example.com", "xexample.com"), "wildcard: a label boundary");
	ok(!tls_hello_name_match("*.example.com", "x.example.com.evil"), "wildcard: suffix only");
}

int
main(void)
{
	test_real();
	test_built();
	test_names();
	done_testing();
	return tap_exit();
}
