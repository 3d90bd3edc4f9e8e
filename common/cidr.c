/* SPDX-License-Identifier: BSD-2-Clause */
/* cidr.c — parse, match and format network prefixes for listeners' allow,
 * deny and trusted lists. Parsed by conf in the master, matched by workers on
 * every accept, so matching is a few byte compares and never allocates, logs
 * or exits. */
#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cidr.h"

static const uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static int __attribute__((format(printf, 3, 4)))
cidr_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	errno = EINVAL;
	return -1;
}

int
cidr_key(const struct sockaddr *sa, uint8_t key[16])
{
	if (sa->sa_family == AF_INET) {
		memcpy(key, v4_mapped, 12);
		memcpy(key + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		memcpy(key, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
		return 0;
	}
	errno = EAFNOSUPPORT;
	return -1;
}

/* 1 when the first bits of a and b agree. */
static int
prefix_equal(const uint8_t *a, const uint8_t *b, unsigned bits)
{
	unsigned whole = bits / 8, rest = bits % 8;

	if (memcmp(a, b, whole) != 0)
		return 0;
	if (rest == 0)
		return 1;
	return ((a[whole] ^ b[whole]) & (uint8_t)(0xff00u >> rest)) == 0;
}

int
cidr_parse(const char *text, struct cidr *out, char *err, size_t errlen)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *slash;
	size_t hlen;
	unsigned len, max;
	uint8_t masked[16];

	if (text == NULL || *text == '\0')
		return cidr_fail(err, errlen, "empty network");
	slash = strchr(text, '/');
	hlen = slash != NULL ? (size_t)(slash - text) : strlen(text);
	if (hlen == 0)
		return cidr_fail(err, errlen, "missing address before \"/\"");
	if (hlen >= sizeof(host))
		return cidr_fail(err, errlen, "invalid address \"%.*s\"", (int)hlen, text);
	memcpy(host, text, hlen);
	host[hlen] = '\0';

	memset(out, 0, sizeof(*out));
	if (strchr(host, ':') != NULL) {
		if (inet_pton(AF_INET6, host, out->addr) != 1)
			return cidr_fail(err, errlen, "invalid IPv6 address \"%s\"", host);
		out->family = AF_INET6;
		max = 128;
	} else {
		/* inet_pton, unlike inet_aton, refuses "10.1" and octal forms. */
		if (inet_pton(AF_INET, host, out->addr + 12) != 1)
			return cidr_fail(err, errlen, "invalid IPv4 address \"%s\"", host);
		memcpy(out->addr, v4_mapped, 12);
		out->family = AF_INET;
		max = 32;
	}

	len = max;
	if (slash != NULL) {
		const char *p = slash + 1;
		size_t nd = strspn(p, "0123456789");

		if (nd == 0 || nd > 3 || p[nd] != '\0')
			return cidr_fail(err, errlen, "invalid prefix length \"%s\"", p);
		for (len = 0; *p != '\0'; p++)
			len = len * 10 + (unsigned)(*p - '0');
		if (len > max)
			return cidr_fail(err, errlen, "prefix length %s is out of range 0..%u",
			    slash + 1, max);
	}
	out->bits = (uint8_t)(out->family == AF_INET ? len + 96 : len);

	memset(masked, 0, sizeof(masked));
	memcpy(masked, out->addr, out->bits / 8);
	if (out->bits % 8)
		masked[out->bits / 8] = out->addr[out->bits / 8] & (uint8_t)(0xff00u >> (out->bits % 8));
	if (memcmp(masked, out->addr, 16) != 0) {
		char net[INET6_ADDRSTRLEN];

		if (out->family == AF_INET)
			inet_ntop(AF_INET, masked + 12, net, sizeof(net));
		else
			inet_ntop(AF_INET6, masked, net, sizeof(net));
		return cidr_fail(err, errlen, "host bits set past /%u (did you mean %s/%u?)", len,
		    net, len);
	}
	return 0;
}

int
cidr_match(const struct cidr *c, const struct sockaddr *sa)
{
	uint8_t key[16];

	if (cidr_key(sa, key) == -1)
		return 0;
	return prefix_equal(key, c->addr, c->bits);
}

int
cidr_match_any(const struct cidr *list, unsigned n, const struct sockaddr *sa)
{
	uint8_t key[16];

	if (n == 0 || cidr_key(sa, key) == -1)
		return 0;
	for (unsigned i = 0; i < n; i++)
		if (prefix_equal(key, list[i].addr, list[i].bits))
			return 1;
	return 0;
}

char *
cidr_format(const struct cidr *c, char *buf, size_t buflen)
{
	char a[INET6_ADDRSTRLEN];

	if (c->family == AF_INET) {
		inet_ntop(AF_INET, c->addr + 12, a, sizeof(a));
		snprintf(buf, buflen, "%s/%u", a, (unsigned)c->bits - 96);
	} else {
		inet_ntop(AF_INET6, c->addr, a, sizeof(a));
		snprintf(buf, buflen, "%s/%u", a, (unsigned)c->bits);
	}
	return buf;
}
