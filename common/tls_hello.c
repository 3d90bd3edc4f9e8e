/* SPDX-License-Identifier: BSD-2-Clause */
/* tls_hello.c — a strict reader of the TLS ClientHello (RFC 8446 4.1.2, RFC
 * 5246 7.4.1.2) for the server_name (RFC 6066 3) and ALPN (RFC 7301)
 * extensions, across any number of handshake records. Stateless: each call
 * walks the bytes from the start through a cursor that steps over record
 * headers, so nothing is copied or kept between reads. Used by workers (SNI
 * routing), tests and the fuzzer; never allocates, logs or writes its input. */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "tls_hello.h"

#define REC_HEADER 5
#define REC_HANDSHAKE 0x16
#define REC_MAX 16384 /* TLSPlaintext.length: at most 2^14 */
#define HS_CLIENT_HELLO 1
#define EXT_SERVER_NAME 0
#define EXT_ALPN 16

/* Reads the handshake bytes of the stream in order, over record headers.
 * rc is sticky: 1 while all is well, 0 once the bytes ran out (need more),
 * -1 once they were refused (why). Readers return 0 after rc left 1. */
struct cur {
	const uint8_t *d;
	size_t len, max;
	size_t pos;     /* stream offset of the next byte */
	size_t rec_end; /* stream offset where the current record's payload ends */
	size_t hs;      /* handshake bytes consumed */
	int rc;
	const char *why;
};

static size_t
fail(struct cur *c, const char *why)
{
	if (c->rc == 1) {
		c->rc = -1;
		c->why = why;
	}
	return 0;
}

static size_t
need(struct cur *c)
{
	if (c->rc == 1)
		c->rc = 0;
	return 0;
}

/* Payload bytes readable at c->pos without crossing a record boundary or the
 * end of the data (> 0), stepping into the next record when this one is
 * spent; 0 once rc left 1. A byte needed at or past max refuses the hello
 * as oversized even before it arrives, so a full buffer never waits. */
static size_t
avail(struct cur *c)
{
	size_t end;

	if (c->rc != 1)
		return 0;
	if (c->pos == c->rec_end) {
		const uint8_t *h = c->d + c->pos;
		size_t rl;

		for (size_t i = 0; i < REC_HEADER; i++) {
			if (c->pos + i >= c->max)
				return fail(c, "ClientHello too large");
			if (c->pos + i >= c->len)
				return need(c);
			if (i == 0 && h[0] != REC_HANDSHAKE)
				return fail(c, c->pos == 0
				                   ? "not TLS (no handshake record)"
				                   : "non-handshake record inside the ClientHello");
			if (i == 1 && h[1] != 3)
				return fail(c, "bad record version");
			if (i == 2 && h[2] > 4)
				return fail(c, "bad record version");
		}
		rl = (size_t)h[3] << 8 | h[4];
		if (rl == 0 || rl > REC_MAX)
			return fail(c, "bad record length");
		c->pos += REC_HEADER;
		c->rec_end = c->pos + rl;
	}
	if (c->pos >= c->max)
		return fail(c, "ClientHello too large");
	if (c->pos >= c->len)
		return need(c);
	end = c->rec_end;
	if (end > c->len)
		end = c->len;
	if (end > c->max)
		end = c->max;
	return end - c->pos;
}

/* Copy (dst != NULL) or skip n handshake bytes. */
static void
take(struct cur *c, uint8_t *dst, size_t n)
{
	while (n > 0) {
		size_t k = avail(c);

		if (k == 0)
			return;
		if (k > n)
			k = n;
		if (dst != NULL) {
			memcpy(dst, c->d + c->pos, k);
			dst += k;
		}
		c->pos += k;
		c->hs += k;
		n -= k;
	}
}

static size_t
num(struct cur *c, size_t bytes)
{
	uint8_t b[3] = {0, 0, 0};
	size_t v = 0;

	take(c, b, bytes);
	for (size_t i = 0; i < bytes; i++)
		v = v << 8 | b[i];
	return v;
}

/* A vector of n bytes must end within the message (at end). */
static int
fits(struct cur *c, size_t n, size_t end, const char *why)
{
	if (c->rc == 1 && c->hs + n > end) {
		fail(c, why);
		return 0;
	}
	return c->rc == 1;
}

int
tls_hello_name_valid(const char *text, size_t len, int wildcard)
{
	size_t label = 0;

	if (wildcard && len > 2 && text[0] == '*' && text[1] == '.') {
		text += 2;
		len -= 2;
	}
	if (len == 0 || len > 253)
		return -1;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)text[i];

		if (ch == '.') {
			if (label == 0)
				return -1;
			label = 0;
			continue;
		}
		if (!isalnum(ch) && ch != '-' && ch != '_')
			return -1;
		if (++label > 63)
			return -1;
	}
	return label == 0 ? -1 : 0;
}

/* server_name: a list of (type, name); the host_name (type 0) is kept. */
static void
ext_server_name(struct cur *c, size_t elen, struct tls_hello *out)
{
	size_t end = c->hs + elen, list;

	if (elen < 2)
		return (void)fail(c, "server_name extension too short");
	list = num(c, 2);
	if (c->rc == 1 && (list + 2 != elen || list == 0))
		return (void)fail(c, "bad server_name list length");
	while (c->rc == 1 && c->hs < end) {
		size_t type = num(c, 1), n = num(c, 2);

		if (!fits(c, n, end, "server_name entry overruns its list"))
			return;
		if (type != 0) {
			take(c, NULL, n);
			continue;
		}
		if (out->name_len != 0)
			return (void)fail(c, "two host names in server_name");
		if (n == 0 || n > TLS_HELLO_NAME_MAX)
			return (void)fail(c, "bad host_name length");
		take(c, (uint8_t *)out->name, n);
		if (c->rc != 1)
			return;
		if (tls_hello_name_valid(out->name, n, 0) == -1)
			return (void)fail(c, "host_name is not a DNS name");
		for (size_t i = 0; i < n; i++)
			out->name[i] = (char)tolower((unsigned char)out->name[i]);
		out->name[n] = '\0';
		out->name_len = n;
	}
}

/* ALPN: a list of (length, protocol name), each name 1..255 bytes. */
static void
ext_alpn(struct cur *c, size_t elen, struct tls_hello *out)
{
	size_t end = c->hs + elen, list;

	if (elen < 2)
		return (void)fail(c, "ALPN extension too short");
	list = num(c, 2);
	if (c->rc == 1 && (list + 2 != elen || list < 2))
		return (void)fail(c, "bad ALPN list length");
	while (c->rc == 1 && c->hs < end) {
		size_t n = num(c, 1);

		if (c->rc == 1 && n == 0)
			return (void)fail(c, "empty ALPN protocol name");
		if (!fits(c, n, end, "ALPN protocol overruns its list"))
			return;
		if (out->alpn_len + 1 + n <= sizeof(out->alpn)) {
			out->alpn[out->alpn_len] = (uint8_t)n;
			take(c, out->alpn + out->alpn_len + 1, n);
			if (c->rc == 1)
				out->alpn_len += 1 + n;
		} else {
			take(c, NULL, n);
		}
	}
}

int
tls_hello_parse(const void *data, size_t len, size_t max, struct tls_hello *out, const char **why)
{
	struct cur c = {.d = data, .len = len, .max = max, .rc = 1};
	size_t end, n, ext_end;
	int seen_sni = 0, seen_alpn = 0;

	memset(out, 0, sizeof(*out));
	*why = NULL;
	if (num(&c, 1) != HS_CLIENT_HELLO && c.rc == 1)
		fail(&c, "first handshake message is not a ClientHello");
	n = num(&c, 3);
	/* version, random, session id, cipher suites, compression at least */
	if (c.rc == 1 && n < 2 + 32 + 1 + 4 + 2)
		fail(&c, "ClientHello too short");
	if (c.rc == 1 && n + 4 > max)
		fail(&c, "ClientHello too large");
	end = 4 + n;
	if (num(&c, 1) != 3 && c.rc == 1)
		fail(&c, "bad ClientHello version");
	take(&c, NULL, 1 + 32); /* minor version, random */
	n = num(&c, 1);
	if (c.rc == 1 && n > 32)
		fail(&c, "session id longer than 32 bytes");
	if (fits(&c, n, end, "session id overruns the ClientHello"))
		take(&c, NULL, n);
	n = num(&c, 2);
	if (c.rc == 1 && (n < 2 || n % 2 != 0))
		fail(&c, "bad cipher suites length");
	if (fits(&c, n, end, "cipher suites overrun the ClientHello"))
		take(&c, NULL, n);
	n = num(&c, 1);
	if (c.rc == 1 && n < 1)
		fail(&c, "no compression method");
	if (fits(&c, n, end, "compression methods overrun the ClientHello"))
		take(&c, NULL, n);
	if (c.rc == 1 && c.hs < end) {
		n = num(&c, 2);
		if (c.rc == 1 && c.hs + n != end)
			fail(&c, "extensions do not fill the ClientHello");
		ext_end = end;
		while (c.rc == 1 && c.hs < ext_end) {
			size_t type = num(&c, 2), elen = num(&c, 2);

			if (!fits(&c, elen, ext_end, "extension overruns the ClientHello"))
				break;
			if (type == EXT_SERVER_NAME) {
				if (seen_sni++)
					fail(&c, "two server_name extensions");
				ext_server_name(&c, elen, out);
			} else if (type == EXT_ALPN) {
				if (seen_alpn++)
					fail(&c, "two ALPN extensions");
				ext_alpn(&c, elen, out);
			} else {
				take(&c, NULL, elen);
			}
		}
	}
	if (c.rc != 1) {
		*why = c.why;
		return c.rc;
	}
	out->hello_len = c.pos;
	return 1;
}

int
tls_hello_has_alpn(const struct tls_hello *h, const char *proto)
{
	size_t pl = strlen(proto);

	for (size_t i = 0; i < h->alpn_len; i += 1 + (size_t)h->alpn[i])
		if (h->alpn[i] == pl && memcmp(h->alpn + i + 1, proto, pl) == 0)
			return 1;
	return 0;
}

int
tls_hello_name_match(const char *pattern, const char *name)
{
	size_t nl, sl;

	if (pattern[0] != '*')
		return strcasecmp(pattern, name) == 0;
	sl = strlen(pattern + 1); /* ".suffix" */
	nl = strlen(name);
	return nl > sl && strcasecmp(name + nl - sl, pattern + 1) == 0;
}
