/* SPDX-License-Identifier: BSD-2-Clause */
/* resolve.c — DNS queries for A and AAAA records and the reading of their
 * answers (RFC 1035, RFC 2181's TTL rule, RFC 6891's OPT record). Pure code
 * for the checker's resolver (checker/dns.c), the unit test and the fuzz
 * target: it never does I/O, never allocates and never reads outside the
 * message it is given. Workers never call it: they never resolve. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "resolve.h"

#define HDR_LEN 12
#define CLASS_IN 1
#define PTR_MAX 64 /* compression pointers followed in one name */

const char *
resolve_status_name(enum resolve_status s)
{
	static const char *const names[] = {
		[RESOLVE_OK] = "ok",
		[RESOLVE_EMPTY] = "empty",
		[RESOLVE_NXDOMAIN] = "nxdomain",
		[RESOLVE_SERVFAIL] = "servfail",
		[RESOLVE_TRUNCATED] = "truncated",
		[RESOLVE_MALFORMED] = "malformed",
		[RESOLVE_FOREIGN] = "foreign",
	};

	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}

static int
label_char(int ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       ch == '-' || ch == '_';
}

int
resolve_name_valid(const char *name)
{
	size_t len = strlen(name), label = 0;

	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0 || len > RESOLVE_NAME_MAX - 1)
		return 0;
	for (size_t i = 0; i < len; i++) {
		if (name[i] == '.') {
			if (label == 0)
				return 0;
			label = 0;
			continue;
		}
		if (!label_char((unsigned char)name[i]) || ++label > 63)
			return 0;
	}
	return label > 0;
}

static void
put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint16_t
get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t
get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

ssize_t
resolve_query(uint8_t *buf, size_t len, uint16_t id, const char *name, uint16_t qtype)
{
	size_t nlen = strlen(name), o = HDR_LEN;
	const char *p = name, *end;

	if (!resolve_name_valid(name) || (qtype != RESOLVE_TYPE_A && qtype != RESOLVE_TYPE_AAAA)) {
		errno = EINVAL;
		return -1;
	}
	if (name[nlen - 1] == '.')
		nlen--;
	/* Header, labels (one length byte more than the text), root, type and
	 * class, then the 11 bytes of the OPT record. */
	if (len < HDR_LEN + nlen + 2 + 4 + 11) {
		errno = ENOSPC;
		return -1;
	}
	memset(buf, 0, HDR_LEN);
	put16(buf, id);
	buf[2] = 0x01; /* RD */
	put16(buf + 4, 1); /* QDCOUNT */
	put16(buf + 10, 1); /* ARCOUNT: the OPT record */
	end = name + nlen;
	while (p < end) {
		const char *dot = memchr(p, '.', (size_t)(end - p));
		size_t l = (size_t)((dot != NULL ? dot : end) - p);

		buf[o++] = (uint8_t)l;
		memcpy(buf + o, p, l);
		o += l;
		p += l + 1;
	}
	buf[o++] = 0;
	put16(buf + o, qtype);
	put16(buf + o + 2, CLASS_IN);
	o += 4;
	/* OPT: root owner, type 41, "class" our UDP size, no flags, no data. */
	buf[o++] = 0;
	put16(buf + o, RESOLVE_TYPE_OPT);
	put16(buf + o + 2, RESOLVE_UDP_MAX);
	memset(buf + o + 4, 0, 6);
	o += 10;
	return (ssize_t)o;
}

static int
lower(int ch)
{
	return ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch;
}

/*
 * Decode the name at *off into out (RESOLVE_NAME_MAX bytes: lower case,
 * dotted, no trailing dot, "" for the root) and move *off past it in the
 * message. A compression pointer must point before itself, so that no
 * name can loop; PTR_MAX bounds them anyway. A label byte that a host name
 * never has (a dot, a control or non-ASCII byte) becomes '?', so that no
 * such name can equal one we asked for. Returns 0, or -1 when malformed.
 */
static int
read_name(const uint8_t *msg, size_t len, size_t *off, char *out)
{
	size_t o = *off, w = 0, limit = len;
	unsigned ptrs = 0;
	int jumped = 0;

	for (;;) {
		uint8_t l;

		if (o >= limit)
			return -1;
		l = msg[o];
		if ((l & 0xc0) == 0xc0) {
			size_t to;

			if (o + 1 >= limit || ++ptrs > PTR_MAX)
				return -1;
			to = (size_t)(l & 0x3f) << 8 | msg[o + 1];
			if (!jumped)
				*off = o + 2;
			jumped = 1;
			if (to >= o)
				return -1;
			limit = o; /* and what it points to cannot reach back here */
			o = to;
			continue;
		}
		if ((l & 0xc0) != 0)
			return -1; /* the extended label types of RFC 6891 are gone */
		if (l == 0) {
			if (!jumped)
				*off = o + 1;
			out[w] = '\0';
			return 0;
		}
		if (o + 1 + l > limit || w + l + (w > 0) >= RESOLVE_NAME_MAX)
			return -1;
		if (w > 0)
			out[w++] = '.';
		for (unsigned i = 0; i < l; i++) {
			int ch = msg[o + 1 + i];

			out[w++] = label_char(ch) ? (char)lower(ch) : '?';
		}
		o += 1u + l;
	}
}

/* name (valid) in the form read_name gives. */
static void
canon(const char *name, char *out)
{
	size_t n = strlen(name);

	if (n > 0 && name[n - 1] == '.')
		n--;
	for (size_t i = 0; i < n; i++)
		out[i] = (char)lower((unsigned char)name[i]);
	out[n] = '\0';
}

/* One resource record, its name decoded. */
struct rr {
	char owner[RESOLVE_NAME_MAX];
	uint16_t type, class;
	uint32_t ttl;
	size_t rdata, rdlen; /* offset in the message */
};

/* Read the record at *off; -1 when malformed. */
static int
read_rr(const uint8_t *msg, size_t len, size_t *off, struct rr *rr)
{
	if (read_name(msg, len, off, rr->owner) == -1 || len - *off < 10)
		return -1;
	rr->type = get16(msg + *off);
	rr->class = get16(msg + *off + 2);
	rr->ttl = get32(msg + *off + 4);
	/* RFC 2181 8: a TTL with the top bit set is read as zero. */
	if (rr->ttl & 0x80000000u)
		rr->ttl = 0;
	rr->rdlen = get16(msg + *off + 8);
	rr->rdata = *off + 10;
	if (rr->rdlen > len - rr->rdata)
		return -1;
	*off = rr->rdata + rr->rdlen;
	return 0;
}

enum resolve_status
resolve_parse(const uint8_t *msg, size_t len, uint16_t id, const char *name, uint16_t qtype,
    struct resolve_addr *out, unsigned max, unsigned *n, uint32_t *ttl)
{
	char want[RESOLVE_NAME_MAX], next[RESOLVE_NAME_MAX], qname[RESOLVE_NAME_MAX];
	unsigned ancount, rcode, found = 0;
	uint32_t least = UINT32_MAX;
	size_t off = HDR_LEN, answers;
	struct rr rr;

	*n = 0;
	*ttl = 0;
	if (!resolve_name_valid(name) || (qtype != RESOLVE_TYPE_A && qtype != RESOLVE_TYPE_AAAA))
		return RESOLVE_FOREIGN;
	/* Not ours unless it answers (QR), a standard query (opcode 0), with
	 * our id and our question: anything else may be spoofed or stale. */
	if (len < HDR_LEN)
		return RESOLVE_MALFORMED;
	if (get16(msg) != id || !(msg[2] & 0x80) || (msg[2] & 0x78) != 0 || get16(msg + 4) != 1)
		return RESOLVE_FOREIGN;
	canon(name, want);
	if (read_name(msg, len, &off, qname) == -1 || len - off < 4)
		return RESOLVE_MALFORMED;
	if (strcmp(qname, want) != 0 || get16(msg + off) != qtype ||
	    get16(msg + off + 2) != CLASS_IN)
		return RESOLVE_FOREIGN;
	off += 4;
	if (msg[2] & 0x02)
		return RESOLVE_TRUNCATED;
	rcode = msg[3] & 0x0f;
	if (rcode == 3)
		return RESOLVE_NXDOMAIN;
	if (rcode != 0)
		return RESOLVE_SERVFAIL;
	ancount = get16(msg + 6);
	answers = off;

	/* Check the whole answer section once, so that what follows may read
	 * it without a failure halfway. */
	for (unsigned i = 0; i < ancount; i++) {
		if (read_rr(msg, len, &off, &rr) == -1)
			return RESOLVE_MALFORMED;
		if (rr.class == CLASS_IN &&
		    ((rr.type == RESOLVE_TYPE_A && rr.rdlen != 4) ||
		        (rr.type == RESOLVE_TYPE_AAAA && rr.rdlen != 16)))
			return RESOLVE_MALFORMED;
		if (rr.class == CLASS_IN && rr.type == RESOLVE_TYPE_CNAME) {
			size_t r = rr.rdata;

			if (read_name(msg, len, &r, next) == -1 || r != rr.rdata + rr.rdlen)
				return RESOLVE_MALFORMED;
		}
	}

	/* The name, then where its CNAME leads, in as many passes. The
	 * records may come in any order. */
	for (unsigned depth = 0; depth <= RESOLVE_CHAIN_MAX; depth++) {
		uint32_t cname_ttl = 0;
		int have_next = 0;

		off = answers;
		for (unsigned i = 0; i < ancount; i++) {
			read_rr(msg, len, &off, &rr);
			if (rr.class != CLASS_IN || strcmp(rr.owner, want) != 0)
				continue;
			if (rr.type == qtype) {
				struct resolve_addr a = { 0 };
				unsigned k;

				found++;
				if (rr.ttl < least)
					least = rr.ttl;
				a.family = qtype == RESOLVE_TYPE_A ? AF_INET : AF_INET6;
				memcpy(a.addr, msg + rr.rdata, rr.rdlen);
				for (k = 0; k < *n; k++)
					if (memcmp(out[k].addr, a.addr, sizeof(a.addr)) == 0)
						break;
				if (k == *n && *n < max)
					out[(*n)++] = a;
			} else if (rr.type == RESOLVE_TYPE_CNAME && !have_next) {
				size_t r = rr.rdata;

				read_name(msg, len, &r, next);
				have_next = 1;
				cname_ttl = rr.ttl;
			}
		}
		if (found > 0) {
			*ttl = least;
			return RESOLVE_OK;
		}
		if (!have_next)
			break;
		if (cname_ttl < least)
			least = cname_ttl;
		memcpy(want, next, sizeof(want));
	}
	*n = 0;
	return RESOLVE_EMPTY;
}
