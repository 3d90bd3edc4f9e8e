/* SPDX-License-Identifier: BSD-2-Clause */
/* proxy.c — the PROXY protocol v1 and v2: header building for the upstream
 * side and a strict incremental parser for the client side, following
 * HAProxy's specification. Used by workers (one parser per connection that
 * owes us a header), tests and the fuzzer. Never allocates, logs or blocks:
 * every byte is judged as it arrives, in state the caller owns. */
#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "proxy.h"

enum { PP_READING, PP_DONE, PP_FAILED };

/* flags */
#define PPF_LOCAL 0x01 /* v2 LOCAL command: the address block is ignored */
#define PPF_SKIP 0x02  /* v2 bytes after the fixed part are skipped unread */
#define PPF_KEEP 0x04  /* v2 TCP over IPv4/IPv6: addresses are kept in buf */
#define PPF_CRC 0x08   /* v2 checksum TLV seen */
#define PPF_CR 0x10    /* v1: the last byte was CR */

#define PP2_CMD_LOCAL 0x0
#define PP2_CMD_PROXY 0x1
#define PP2_TYPE_ALPN 0x01
#define PP2_TYPE_AUTHORITY 0x02
#define PP2_TYPE_CRC32C 0x03
#define PP2_TYPE_NOOP 0x04
#define PP2_TYPE_UNIQUE_ID 0x05
#define PP2_TYPE_SSL 0x20
#define PP2_SUBTYPE_SSL_VERSION 0x21
#define PP2_SUBTYPE_SSL_CN 0x22
#define PP2_SUBTYPE_SSL_CIPHER 0x23
#define PP2_SUBTYPE_SSL_SIG_ALG 0x24
#define PP2_SUBTYPE_SSL_KEY_ALG 0x25
#define PP2_TYPE_NETNS 0x30
#define PP2_TLV_HDR 3         /* type and two length bytes */
#define PP2_UNIQUE_ID_MAX 128 /* "up to 128 bytes" */
#define PP2_SSL_FIXED 5       /* the SSL TLV's client (u8) and verify (u32) fields */

/* What a TLV's value must be made of, where the spec names an encoding. */
enum { TEXT_ANY, TEXT_ASCII, TEXT_UTF8 };

static const uint8_t v2_signature[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55,
    0x49, 0x54, 0x0A};
static const char v1_signature[] = "PROXY ";

/* CRC32c (Castagnoli, reflected polynomial 0x82F63B78) one byte at a time:
 * headers are short, so a table would cost more cache than it saves. */
static uint32_t
crc32c_byte(uint32_t crc, uint8_t b)
{
	crc ^= b;
	for (int k = 0; k < 8; k++)
		crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
	return crc;
}

void
proxy_parser_init(struct proxy_parser *p, int versions)
{
	memset(p, 0, sizeof(*p));
	p->versions = (uint8_t)(versions & PROXY_ANY);
	p->state = PP_READING;
	p->crc = 0xFFFFFFFFu;
}

void
proxy_parser_keep(struct proxy_parser *p, const uint8_t *set)
{
	p->keep = set;
}

size_t
proxy_parser_kept(const struct proxy_parser *p)
{
	return p->kept;
}

const char *
proxy_parse_error(const struct proxy_parser *p)
{
	return p->state == PP_FAILED ? p->error : NULL;
}

static int
pp_fail(struct proxy_parser *p, const char *why)
{
	p->state = PP_FAILED;
	p->error = why;
	errno = EPROTO;
	return -1;
}

/* --- v1 -------------------------------------------------------------------- */

/* Decimal 0..max with no sign and no leading zero ("0" itself is fine). */
static int
v1_number(const uint8_t *s, size_t n, unsigned max, unsigned *out)
{
	unsigned v = 0;

	if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > max)
		return -1;
	*out = v;
	return 0;
}

/* Exactly four dot-separated numbers 0..255, no leading zeros: the spec
 * forbids them so that nobody reads octal. */
static int
v1_ipv4(const uint8_t *s, size_t n, struct in_addr *out)
{
	uint8_t b[4];
	size_t i = 0;

	for (int part = 0; part < 4; part++) {
		size_t start = i;
		unsigned v;

		while (i < n && s[i] != '.')
			i++;
		if (v1_number(s + start, i - start, 255, &v) == -1 || i - start > 3)
			return -1;
		b[part] = (uint8_t)v;
		if (part < 3) {
			if (i == n)
				return -1;
			i++; /* the dot */
		}
	}
	if (i != n)
		return -1;
	memcpy(&out->s_addr, b, 4);
	return 0;
}

/* Hex groups and colons (and the dotted tail inet_pton allows); anything
 * else, or more than the longest form, is refused before inet_pton sees it. */
static int
v1_ipv6(const uint8_t *s, size_t n, struct in6_addr *out)
{
	char text[46];

	if (n == 0 || n >= sizeof(text))
		return -1;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = s[i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
		        c == ':' || c == '.'))
			return -1;
		text[i] = (char)c;
	}
	text[n] = '\0';
	return inet_pton(AF_INET6, text, out) == 1 ? 0 : -1;
}

static void
set_in4(struct sockaddr_storage *ss, const struct in_addr *a, uint16_t port_net)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;

	memset(ss, 0, sizeof(*ss));
	sin->sin_family = AF_INET;
	sin->sin_addr = *a;
	sin->sin_port = port_net;
}

static void
set_in6(struct sockaddr_storage *ss, const struct in6_addr *a, uint16_t port_net)
{
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	sin6->sin6_family = AF_INET6;
	sin6->sin6_addr = *a;
	sin6->sin6_port = port_net;
}

/* The complete line, CRLF excluded: "PROXY TCP4 src dst sport dport" with
 * exactly one space between fields, or "PROXY UNKNOWN" and anything. */
static int
v1_decode(struct proxy_parser *p, size_t len, struct proxy_info *out)
{
	const uint8_t *s = p->buf + sizeof(v1_signature) - 1;
	size_t n = len - (sizeof(v1_signature) - 1);
	const uint8_t *field[5];
	size_t flen[5], i = 0;
	unsigned sport, dport;
	int nf = 0, v6;

	memset(out, 0, sizeof(*out));
	out->version = PROXY_V1;
	if (n >= 7 && memcmp(s, "UNKNOWN", 7) == 0 && (n == 7 || s[7] == ' ')) {
		/* The rest of the line is the sender's business. */
		out->local = 1;
		return 1;
	}
	for (;;) {
		size_t start = i;

		while (i < n && s[i] != ' ')
			i++;
		if (nf == 5)
			return pp_fail(p, "v1 line needs exactly: protocol, 2 addresses, 2 ports");
		field[nf] = s + start;
		flen[nf] = i - start;
		if (flen[nf] == 0)
			return pp_fail(p, "v1 fields must be separated by exactly one space");
		nf++;
		if (i == n)
			break;
		i++; /* the space */
	}
	if (flen[0] == 4 && memcmp(field[0], "TCP4", 4) == 0)
		v6 = 0;
	else if (flen[0] == 4 && memcmp(field[0], "TCP6", 4) == 0)
		v6 = 1;
	else
		return pp_fail(p, "v1 protocol is not TCP4, TCP6 or UNKNOWN");
	if (nf < 5)
		return pp_fail(p, "v1 line needs exactly: protocol, 2 addresses, 2 ports");
	if (v1_number(field[3], flen[3], 65535, &sport) == -1 ||
	    v1_number(field[4], flen[4], 65535, &dport) == -1)
		return pp_fail(p, "v1 port is not a number 0..65535 without leading zeros");
	if (v6) {
		struct in6_addr a, b;

		if (v1_ipv6(field[1], flen[1], &a) == -1 || v1_ipv6(field[2], flen[2], &b) == -1)
			return pp_fail(p, "v1 TCP6 address is not a valid IPv6 address");
		set_in6(&out->src, &a, htons((uint16_t)sport));
		set_in6(&out->dst, &b, htons((uint16_t)dport));
	} else {
		struct in_addr a, b;

		if (v1_ipv4(field[1], flen[1], &a) == -1 || v1_ipv4(field[2], flen[2], &b) == -1)
			return pp_fail(p, "v1 TCP4 address is not a dotted quad without leading zeros");
		set_in4(&out->src, &a, htons((uint16_t)sport));
		set_in4(&out->dst, &b, htons((uint16_t)dport));
	}
	return 1;
}

/* One byte of a v1 line. Returns 0 for more, 1 when the line is complete
 * and valid, -1 when it cannot be. */
static int
v1_byte(struct proxy_parser *p, uint8_t c, struct proxy_info *out)
{
	if (p->pos < sizeof(v1_signature) - 1) {
		if (c != (uint8_t)v1_signature[p->pos])
			return pp_fail(p, "bad v1 signature (expected \"PROXY \")");
	} else if (p->flags & PPF_CR) {
		if (c != '\n')
			return pp_fail(p, "v1 line has a CR without LF");
		p->buf[p->pos++] = c;
		return v1_decode(p, (size_t)p->pos - 2, out);
	} else if (c == '\n') {
		return pp_fail(p, "v1 line ends with LF without CR");
	} else if (c == '\r') {
		p->flags |= PPF_CR;
	}
	/* The LF must be byte 107 at the latest; this one is not an LF. */
	if (p->pos + 1 >= PROXY_V1_MAX)
		return pp_fail(p, "v1 line longer than 107 bytes");
	p->buf[p->pos++] = c;
	return 0;
}

/* --- v2 -------------------------------------------------------------------- */

/* Bytes of the address block for a family/transport byte that a PROXY
 * command may carry, or -1 for one the spec does not define. */
static int
v2_addr_len(uint8_t fam)
{
	switch (fam) {
	case 0x00:
		return 0;
	case 0x11: /* TCP over IPv4 */
	case 0x12: /* UDP over IPv4 */
		return 12;
	case 0x21: /* TCP over IPv6 */
	case 0x22:
		return 36;
	case 0x31: /* UNIX stream */
	case 0x32:
		return 216;
	default:
		return -1;
	}
}

static int
v2_decode(struct proxy_parser *p, struct proxy_info *out)
{
	memset(out, 0, sizeof(*out));
	out->version = PROXY_V2;
	if ((p->flags & PPF_CRC) && ~p->crc != p->crc_want)
		return pp_fail(p, "v2 header checksum (CRC32c TLV) does not match");
	out->crc = (p->flags & PPF_CRC) != 0;
	out->tlv_kept = p->kept;
	if (!(p->flags & PPF_KEEP)) {
		out->local = 1;
		return 1;
	}
	if (p->buf[13] == 0x11) {
		struct in_addr a, b;
		uint16_t sp, dp;

		memcpy(&a, p->buf + 16, 4);
		memcpy(&b, p->buf + 20, 4);
		memcpy(&sp, p->buf + 24, 2);
		memcpy(&dp, p->buf + 26, 2);
		set_in4(&out->src, &a, sp);
		set_in4(&out->dst, &b, dp);
	} else {
		struct in6_addr a, b;
		uint16_t sp, dp;

		memcpy(&a, p->buf + 16, 16);
		memcpy(&b, p->buf + 32, 16);
		memcpy(&sp, p->buf + 48, 2);
		memcpy(&dp, p->buf + 50, 2);
		set_in6(&out->src, &a, sp);
		set_in6(&out->dst, &b, dp);
	}
	return 1;
}

/*
 * What the specification constrains in a TLV, and so what is checked here:
 * every TLV (and every SSL sub-TLV) lies wholly within its container, so
 * that the vectors tile the header exactly; CRC32C is exactly 4 bytes (and
 * one of them: two would leave the checksum ambiguous) and matches;
 * UNIQUE_ID is at most 128 bytes; SSL holds at least its 5-byte client and
 * verify fields and then nothing but sub-TLVs; AUTHORITY and the SSL CN are
 * UTF-8, NETNS and the SSL version, cipher, signature and key algorithm
 * US-ASCII (the spec names those encodings). Not checked, because the spec
 * does not constrain them: emptiness (no type is said to be non-empty: an
 * empty ALPN, AUTHORITY or NETNS is refused by nobody's rule), ALPN's bytes
 * (a "byte sequence", a copy of TLS's extension only in the common case),
 * the SSL client field's undefined bits and the verify value, which TLS
 * version string accompanies PP2_CLIENT_SSL, repeated TLVs of other types,
 * and types the spec does not define (a receiver may skip them).
 */

/* Start a value of the given encoding. */
static void
text_begin(struct proxy_parser *p, uint8_t kind)
{
	p->text = kind;
	p->utf8_need = 0;
}

/* One byte of a value: 0, or -1 when it breaks the value's encoding. UTF-8
 * is RFC 3629's: no overlong forms, no surrogates, nothing past U+10FFFF. */
static int
text_byte(struct proxy_parser *p, uint8_t c)
{
	if (p->text == TEXT_ANY)
		return 0;
	if (p->text == TEXT_ASCII)
		return c < 0x80 ? 0 : -1;
	if (p->utf8_need > 0) {
		if (c < p->utf8_lo || c > p->utf8_hi)
			return -1;
		p->utf8_need--;
		p->utf8_lo = 0x80;
		p->utf8_hi = 0xBF;
		return 0;
	}
	p->utf8_lo = 0x80;
	p->utf8_hi = 0xBF;
	if (c < 0x80)
		return 0;
	if (c >= 0xC2 && c <= 0xDF)
		p->utf8_need = 1;
	else if (c >= 0xE0 && c <= 0xEF)
		p->utf8_need = 2;
	else if (c >= 0xF0 && c <= 0xF4)
		p->utf8_need = 3;
	else
		return -1;
	if (c == 0xE0)
		p->utf8_lo = 0xA0; /* overlong below U+0800 */
	else if (c == 0xED)
		p->utf8_hi = 0x9F; /* surrogates U+D800..U+DFFF */
	else if (c == 0xF0)
		p->utf8_lo = 0x90; /* overlong below U+10000 */
	else if (c == 0xF4)
		p->utf8_hi = 0x8F; /* past U+10FFFF */
	return 0;
}

/* The value ended: 0, or -1 when it stopped inside a UTF-8 character. */
static int
text_end(const struct proxy_parser *p)
{
	return p->text == TEXT_UTF8 && p->utf8_need > 0 ? -1 : 0;
}

static const char *
text_error(uint8_t type)
{
	switch (type) {
	case PP2_TYPE_AUTHORITY:
		return "v2 AUTHORITY TLV is not valid UTF-8";
	case PP2_TYPE_NETNS:
		return "v2 NETNS TLV is not US-ASCII";
	case PP2_SUBTYPE_SSL_CN:
		return "v2 SSL CN sub-TLV is not valid UTF-8";
	default:
		return "v2 SSL version, cipher or algorithm sub-TLV is not US-ASCII";
	}
}

/* One byte of an SSL TLV's value; p->tlv_left counts it and what follows
 * in the TLV. The sub-TLVs after the fixed fields must tile the rest. */
static int
v2_ssl_byte(struct proxy_parser *p, uint8_t c)
{
	if (p->ssl_fixed < PP2_SSL_FIXED) {
		p->ssl_fixed++;
		return 0;
	}
	switch (p->sub_hdr) {
	case 0:
		if (p->tlv_left < PP2_TLV_HDR)
			return pp_fail(p, "v2 SSL sub-TLV header runs past the SSL TLV");
		p->sub_type = c;
		p->sub_hdr = 1;
		return 0;
	case 1:
		p->sub_left = (uint16_t)(c << 8);
		p->sub_hdr = 2;
		return 0;
	case 2:
		p->sub_left |= c;
		if (p->sub_left > p->tlv_left - 1)
			return pp_fail(p, "v2 SSL sub-TLV value runs past the SSL TLV");
		switch (p->sub_type) {
		case PP2_SUBTYPE_SSL_CN:
			text_begin(p, TEXT_UTF8);
			break;
		case PP2_SUBTYPE_SSL_VERSION:
		case PP2_SUBTYPE_SSL_CIPHER:
		case PP2_SUBTYPE_SSL_SIG_ALG:
		case PP2_SUBTYPE_SSL_KEY_ALG:
			text_begin(p, TEXT_ASCII);
			break;
		default:
			text_begin(p, TEXT_ANY);
			break;
		}
		p->sub_hdr = p->sub_left > 0 ? 3 : 0;
		return 0;
	default:
		if (text_byte(p, c) == -1)
			return pp_fail(p, text_error(p->sub_type));
		if (--p->sub_left == 0) {
			if (text_end(p) == -1)
				return pp_fail(p, text_error(p->sub_type));
			p->sub_hdr = 0;
		}
		return 0;
	}
}

/* A byte past the address block: the TLV vectors, each checked to fit the
 * length exactly and against the constraints above, and a checksum TLV
 * verified. With keep_to, a TLV of a type the caller keeps is decided on at
 * its type byte (p->keeping), and v2_byte copies its bytes. */
static int
v2_tlv_byte(struct proxy_parser *p, uint8_t c, uint8_t *crc_in, const uint8_t *keep_to)
{
	switch (p->tlv_hdr) {
	case 0:
		if ((unsigned)p->pos + PP2_TLV_HDR > p->total)
			return pp_fail(p, "v2 TLV header runs past the header length");
		p->tlv_type = c;
		p->tlv_hdr = 1;
		p->keeping = keep_to != NULL && p->keep != NULL && c != PP2_TYPE_CRC32C &&
		             PROXY_TLV_IN(p->keep, c);
		return 0;
	case 1:
		p->tlv_left = (uint16_t)(c << 8);
		p->tlv_hdr = 2;
		return 0;
	case 2:
		p->tlv_left |= c;
		if ((unsigned)p->pos + 1 + p->tlv_left > p->total)
			return pp_fail(p, "v2 TLV value runs past the header length");
		text_begin(p, TEXT_ANY);
		switch (p->tlv_type) {
		case PP2_TYPE_CRC32C:
			if (p->tlv_left != 4)
				return pp_fail(p, "v2 checksum TLV is not 4 bytes");
			if (p->flags & PPF_CRC)
				return pp_fail(p, "v2 header has two checksum TLVs");
			p->flags |= PPF_CRC;
			break;
		case PP2_TYPE_UNIQUE_ID:
			if (p->tlv_left > PP2_UNIQUE_ID_MAX)
				return pp_fail(p, "v2 UNIQUE_ID TLV is longer than 128 bytes");
			break;
		case PP2_TYPE_SSL:
			if (p->tlv_left < PP2_SSL_FIXED)
				return pp_fail(p, "v2 SSL TLV is shorter than its 5 fixed bytes");
			p->ssl_fixed = 0;
			p->sub_hdr = 0;
			break;
		case PP2_TYPE_AUTHORITY:
			text_begin(p, TEXT_UTF8);
			break;
		case PP2_TYPE_NETNS:
			text_begin(p, TEXT_ASCII);
			break;
		}
		p->tlv_hdr = p->tlv_left > 0 ? 3 : 0;
		return 0;
	default:
		if (p->tlv_type == PP2_TYPE_CRC32C) {
			/* The checksum is computed with its own field zeroed. */
			p->crc_want = (p->crc_want << 8) | c;
			*crc_in = 0;
		} else if (p->tlv_type == PP2_TYPE_SSL) {
			if (v2_ssl_byte(p, c) == -1)
				return -1;
		} else if (text_byte(p, c) == -1) {
			return pp_fail(p, text_error(p->tlv_type));
		}
		if (--p->tlv_left == 0) {
			if (text_end(p) == -1)
				return pp_fail(p, text_error(p->tlv_type));
			p->tlv_hdr = 0;
		}
		return 0;
	}
}

static int
v2_byte(struct proxy_parser *p, uint8_t c, struct proxy_info *out, uint8_t *keep_to)
{
	uint8_t crc_in = c;
	int alen;

	if (p->pos < sizeof(v2_signature)) {
		if (c != v2_signature[p->pos])
			return pp_fail(p, "bad v2 signature");
		p->buf[p->pos] = c;
	} else if (p->pos == 12) {
		if ((c >> 4) != 2)
			return pp_fail(p, "v2 version is not 2");
		if ((c & 0xF) == PP2_CMD_LOCAL)
			p->flags |= PPF_LOCAL;
		else if ((c & 0xF) != PP2_CMD_PROXY)
			return pp_fail(p, "v2 command is neither LOCAL nor PROXY");
		p->buf[p->pos] = c;
	} else if (p->pos == 13) {
		/* LOCAL: the spec says the family is ignored and the connection
		 * accepted, so an undefined one is not refused (see below). */
		if (!(p->flags & PPF_LOCAL) && v2_addr_len(c) == -1)
			return pp_fail(p, "v2 address family or transport is not defined");
		p->buf[p->pos] = c;
	} else if (p->pos == 14) {
		p->buf[p->pos] = c;
	} else if (p->pos == 15) {
		unsigned len = (unsigned)p->buf[14] << 8 | c;

		p->buf[p->pos] = c;
		if (len > PROXY_V2_LEN_MAX)
			return pp_fail(p, "v2 header is oversized");
		p->total = (uint16_t)(PROXY_V2_FIXED + len);
		alen = v2_addr_len(p->buf[13]);
		/*
		 * LOCAL and UNSPEC are checked like the rest: what follows the
		 * address block are TLVs (a checksum among them must match).
		 * UNSPEC's address block is empty, so everything after the
		 * fixed part is TLVs. LOCAL's addresses are unused, but a
		 * defined family still says how long they are: the block is
		 * absent (length 0, which the spec asks LOCAL senders for) or
		 * whole. Only a LOCAL with an undefined family is skipped
		 * unread: the spec says to accept it, and nothing tells where
		 * its addresses would end and TLVs begin.
		 */
		if ((p->flags & PPF_LOCAL) && alen == -1) {
			p->flags |= PPF_SKIP;
		} else if (len < (unsigned)alen && !((p->flags & PPF_LOCAL) && len == 0)) {
			return pp_fail(p, "v2 length is shorter than its address block");
		} else if (!(p->flags & PPF_LOCAL) && (p->buf[13] == 0x11 || p->buf[13] == 0x21)) {
			p->flags |= PPF_KEEP;
		}
	} else {
		alen = v2_addr_len(p->buf[13]);
		if (p->flags & PPF_SKIP) {
			/* skipped */
		} else if (p->pos < PROXY_V2_FIXED + alen) {
			if (p->flags & PPF_KEEP)
				p->buf[p->pos] = c;
		} else if (v2_tlv_byte(p, c, &crc_in, keep_to) == -1) {
			return -1;
		} else if (p->keeping) {
			/* kept <= pos - PROXY_V2_FIXED: never past the byte read. */
			keep_to[p->kept++] = c;
		}
	}
	p->crc = crc32c_byte(p->crc, crc_in);
	p->pos++;
	if (p->pos >= PROXY_V2_FIXED && p->pos == p->total)
		return v2_decode(p, out);
	return 0;
}

/* --- the driver ------------------------------------------------------------ */

int
proxy_parse(struct proxy_parser *p, const void *data, size_t n, size_t *used,
    struct proxy_info *out)
{
	return proxy_parse_keep(p, data, n, used, out, NULL);
}

int
proxy_parse_keep(struct proxy_parser *p, const void *data, size_t n, size_t *used,
    struct proxy_info *out, uint8_t *keep_to)
{
	const uint8_t *d = data;

	if (p->state != PP_READING) {
		errno = EINVAL;
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		int rc;

		if (p->version == 0) {
			/* The first byte tells the versions apart: 'P' or CR. */
			if (d[i] == (uint8_t)v1_signature[0] && (p->versions & PROXY_V1))
				p->version = PROXY_V1;
			else if (d[i] == v2_signature[0] && (p->versions & PROXY_V2))
				p->version = PROXY_V2;
			else if (p->versions == PROXY_V1)
				return pp_fail(p, "bad v1 signature (expected \"PROXY \")");
			else if (p->versions == PROXY_V2)
				return pp_fail(p, "bad v2 signature");
			else
				return pp_fail(p, "not a PROXY protocol header");
		}
		rc =
		    p->version == PROXY_V1 ? v1_byte(p, d[i], out) : v2_byte(p, d[i], out, keep_to);
		if (rc == -1)
			return -1;
		if (rc == 1) {
			p->state = PP_DONE;
			*used = i + 1;
			return 1;
		}
	}
	return 0;
}

/* --- building -------------------------------------------------------------- */

/* IPv4 as ::ffff:a.b.c.d, for a header whose two ends differ in family. */
static void
to_in6(const struct sockaddr *sa, struct in6_addr *a, uint16_t *port)
{
	if (sa->sa_family == AF_INET6) {
		*a = ((const struct sockaddr_in6 *)sa)->sin6_addr;
		*port = ((const struct sockaddr_in6 *)sa)->sin6_port;
		return;
	}
	memset(a, 0, sizeof(*a));
	a->s6_addr[10] = 0xff;
	a->s6_addr[11] = 0xff;
	memcpy(&a->s6_addr[12], &((const struct sockaddr_in *)sa)->sin_addr, 4);
	*port = ((const struct sockaddr_in *)sa)->sin_port;
}

static int
is_inet(const struct sockaddr *sa)
{
	return sa != NULL && (sa->sa_family == AF_INET || sa->sa_family == AF_INET6);
}

static int
build_v1(const struct sockaddr *src, const struct sockaddr *dst, char *out)
{
	char a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN];
	uint16_t sp, dp;

	if (!is_inet(src) || !is_inet(dst))
		return snprintf(out, PROXY_HEADER_MAX, "PROXY UNKNOWN\r\n");
	if (src->sa_family == AF_INET && dst->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)src;
		const struct sockaddr_in *d4 = (const struct sockaddr_in *)dst;

		inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
		inet_ntop(AF_INET, &d4->sin_addr, b, sizeof(b));
		return snprintf(out, PROXY_HEADER_MAX, "PROXY TCP4 %s %s %u %u\r\n", a, b,
		    ntohs(s4->sin_port), ntohs(d4->sin_port));
	} else {
		struct in6_addr s6, d6;

		to_in6(src, &s6, &sp);
		to_in6(dst, &d6, &dp);
		inet_ntop(AF_INET6, &s6, a, sizeof(a));
		inet_ntop(AF_INET6, &d6, b, sizeof(b));
		return snprintf(out, PROXY_HEADER_MAX, "PROXY TCP6 %s %s %u %u\r\n", a, b,
		    ntohs(sp), ntohs(dp));
	}
}

static int
build_v2(const struct sockaddr *src, const struct sockaddr *dst, uint8_t *out)
{
	size_t len = 0;

	memcpy(out, v2_signature, sizeof(v2_signature));
	out[12] = src == NULL ? 0x20 | PP2_CMD_LOCAL : 0x20 | PP2_CMD_PROXY;
	if (!is_inet(src) || !is_inet(dst)) {
		out[13] = 0x00;
	} else if (src->sa_family == AF_INET && dst->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)src;
		const struct sockaddr_in *d4 = (const struct sockaddr_in *)dst;

		out[13] = 0x11;
		memcpy(out + 16, &s4->sin_addr, 4);
		memcpy(out + 20, &d4->sin_addr, 4);
		memcpy(out + 24, &s4->sin_port, 2);
		memcpy(out + 26, &d4->sin_port, 2);
		len = 12;
	} else {
		struct in6_addr s6, d6;
		uint16_t sp, dp;

		to_in6(src, &s6, &sp);
		to_in6(dst, &d6, &dp);
		out[13] = 0x21;
		memcpy(out + 16, &s6, 16);
		memcpy(out + 32, &d6, 16);
		memcpy(out + 48, &sp, 2);
		memcpy(out + 50, &dp, 2);
		len = 36;
	}
	out[14] = (uint8_t)(len >> 8);
	out[15] = (uint8_t)len;
	return (int)(PROXY_V2_FIXED + len);
}

int
proxy_build_v2(const struct sockaddr *src, const struct sockaddr *dst, const void *pass,
    size_t pass_len, const void *add, size_t add_len, int crc, void *buf, size_t buflen)
{
	uint8_t head[PROXY_V2_TLV_OFF], *out = buf;
	size_t hl, total;
	uint32_t sum = 0xFFFFFFFFu;

	if ((src == NULL) != (dst == NULL)) {
		errno = EINVAL;
		return -1;
	}
	hl = (size_t)build_v2(src, dst, head);
	total = hl + pass_len + add_len + (crc ? PP2_TLV_HDR + 4 : 0);
	if (total - PROXY_V2_FIXED > PROXY_V2_LEN_MAX) {
		errno = EMSGSIZE;
		return -1;
	}
	if (total > buflen) {
		errno = ENOSPC;
		return -1;
	}
	/* pass first: it may be in buf, past where the fixed part goes. */
	if (pass_len > 0)
		memmove(out + hl, pass, pass_len);
	head[14] = (uint8_t)((total - PROXY_V2_FIXED) >> 8);
	head[15] = (uint8_t)(total - PROXY_V2_FIXED);
	memcpy(out, head, hl);
	if (add_len > 0)
		memcpy(out + hl + pass_len, add, add_len);
	if (crc) {
		uint8_t *t = out + total - (PP2_TLV_HDR + 4);

		t[0] = PP2_TYPE_CRC32C;
		t[1] = 0;
		t[2] = 4;
		memset(t + 3, 0, 4);
		for (size_t i = 0; i < total; i++)
			sum = crc32c_byte(sum, out[i]);
		sum = ~sum;
		t[3] = (uint8_t)(sum >> 24);
		t[4] = (uint8_t)(sum >> 16);
		t[5] = (uint8_t)(sum >> 8);
		t[6] = (uint8_t)sum;
	}
	return (int)total;
}

int
proxy_tlv_type(const char *name)
{
	static const struct {
		const char *name;
		int type;
	} names[] = {
	    {"alpn", PP2_TYPE_ALPN},
	    {"authority", PP2_TYPE_AUTHORITY},
	    {"crc32c", PP2_TYPE_CRC32C},
	    {"noop", PP2_TYPE_NOOP},
	    {"unique_id", PP2_TYPE_UNIQUE_ID},
	    {"ssl", PP2_TYPE_SSL},
	    {"netns", PP2_TYPE_NETNS},
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(name, names[i].name) == 0)
			return names[i].type;
	return -1;
}

int
proxy_tlv_check(const void *tlvs, size_t len, const char **why)
{
	const uint8_t *t = tlvs;
	struct proxy_parser p;
	struct proxy_info info;
	uint8_t head[PROXY_V2_FIXED];
	size_t used = 0;
	int rc;

	if (len > PROXY_V2_LEN_MAX) {
		*why = "more than the 2048 bytes a v2 header may carry";
		return -1;
	}
	/* The parser walks TLVs only: a CRC32c among them would be checked
	 * against a header that is not the one sent. */
	for (size_t i = 0; i + PP2_TLV_HDR <= len;) {
		if (t[i] == PP2_TYPE_CRC32C) {
			*why = "a CRC32c TLV is computed, not given";
			return -1;
		}
		i += PP2_TLV_HDR + ((size_t)t[i + 1] << 8 | t[i + 2]);
	}
	/* A LOCAL header with no addresses: everything after it is TLVs. */
	memcpy(head, v2_signature, sizeof(v2_signature));
	head[12] = 0x20 | PP2_CMD_LOCAL;
	head[13] = 0x00;
	head[14] = (uint8_t)(len >> 8);
	head[15] = (uint8_t)len;
	proxy_parser_init(&p, PROXY_V2);
	rc = proxy_parse(&p, head, sizeof(head), &used, &info);
	if (rc == 0 && len > 0)
		rc = proxy_parse(&p, tlvs, len, &used, &info);
	if (rc == 1 && (len == 0 || used == len))
		return 0;
	*why = rc == -1 ? proxy_parse_error(&p) : "the last TLV is incomplete";
	return -1;
}

int
proxy_build(int version, const struct sockaddr *src, const struct sockaddr *dst, void *buf,
    size_t buflen)
{
	uint8_t tmp[PROXY_HEADER_MAX + 1];
	int n;

	if ((src == NULL) != (dst == NULL) || (version != PROXY_V1 && version != PROXY_V2)) {
		errno = EINVAL;
		return -1;
	}
	if (version == PROXY_V1)
		n = build_v1(src, dst, (char *)tmp);
	else
		n = build_v2(src, dst, tmp);
	if ((size_t)n > buflen) {
		errno = ENOSPC;
		return -1;
	}
	memcpy(buf, tmp, (size_t)n);
	return n;
}
