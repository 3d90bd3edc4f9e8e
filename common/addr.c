/* SPDX-License-Identifier: BSD-2-Clause */
/* addr.c — "host:port" and "unix:/path" text to socket addresses and back. Runs in the master
 * (config, listeners), the workers (formatting for logs) and the CLI. Pure:
 * never logs, never exits; only addr_parse of a host name may block (DNS), so
 * it must never be called with such a name from a worker. */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stddef.h>
#include <string.h>
#include <sys/un.h>

#include "addr.h"

/* NI_MAXHOST is not in <netdb.h> under strict feature macros everywhere. */
#define ADDR_HOSTMAX 1025

static int __attribute__((format(printf, 3, 4)))
addr_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* Digits only: service names ("http") would need a lookup we do not want,
 * and strtoul would accept signs and blanks. */
static int
addr_port(const char *text, unsigned *port, char *err, size_t errlen)
{
	unsigned long v = 0;
	const char *p;

	if (*text == '\0')
		return addr_fail(err, errlen, "missing port");
	for (p = text; *p != '\0'; p++) {
		if (*p < '0' || *p > '9')
			return addr_fail(
			    err, errlen, "invalid port \"%s\" (use a number 1..65535)", text);
		/* Saturate so a 30-digit port is reported, not wrapped. */
		if (v <= 65535)
			v = v * 10 + (unsigned long)(*p - '0');
	}
	if (v < 1 || v > 65535)
		return addr_fail(err, errlen, "port %s is out of range 1..65535", text);
	*port = (unsigned)v;
	return 0;
}

static int
addr_is_unspecified(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ((const struct sockaddr_in *)ss)->sin_addr.s_addr == htonl(INADDR_ANY);
	if (ss->ss_family == AF_INET6)
		return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)ss)->sin6_addr);
	return 0;
}

/* Fill ss from the first getaddrinfo answer for host. */
static int
addr_lookup(const char *host, int family, int aiflags, struct sockaddr_storage *ss, socklen_t *len,
    char *err, size_t errlen)
{
	struct addrinfo hints, *res;
	int rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = family;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = aiflags;
	rc = getaddrinfo(host, NULL, &hints, &res);
	if (rc != 0) {
		if (aiflags & AI_NUMERICHOST)
			return addr_fail(err, errlen, "invalid IPv6 address \"%s\"", host);
		return addr_fail(err, errlen, "cannot resolve \"%s\": %s", host, gai_strerror(rc));
	}
	if (res == NULL || res->ai_addrlen > sizeof(*ss) ||
	    (res->ai_family != AF_INET && res->ai_family != AF_INET6)) {
		if (res != NULL)
			freeaddrinfo(res);
		return addr_fail(
		    err, errlen, "cannot resolve \"%s\": no IPv4 or IPv6 address", host);
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

/* "unix:/path": absolute, so that it means the same after the master's
 * chdir("/"), and short enough for sun_path. */
static int
addr_parse_unix(const char *path, struct sockaddr_storage *ss, socklen_t *len, char *err,
    size_t errlen)
{
	struct sockaddr_un *sun = (struct sockaddr_un *)ss;
	size_t n = strlen(path);

	if (n == 0)
		return addr_fail(err, errlen, "missing path after \"unix:\"");
	if (path[0] != '/')
		return addr_fail(
		    err, errlen, "a UNIX socket path must be absolute (\"unix:/run/app.sock\")");
	if (n > ADDR_UNIX_PATH_MAX)
		return addr_fail(err, errlen, "a UNIX socket path has at most %d bytes (this one %zu)",
		    ADDR_UNIX_PATH_MAX, n);
	if (path[n - 1] == '/')
		return addr_fail(err, errlen, "a UNIX socket path must name a file, not a directory");
	_Static_assert(sizeof(struct sockaddr_un) <= sizeof(struct sockaddr_storage),
	    "sockaddr_storage holds a sockaddr_un");
	memset(ss, 0, sizeof(*ss));
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, path, n + 1);
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	return 0;
}

int
addr_parse(const char *text, int flags, struct sockaddr_storage *ss, socklen_t *len, char *err,
    size_t errlen)
{
	char host[ADDR_HOSTMAX];
	const char *colon, *hend, *hstart;
	struct sockaddr_in *sin;
	unsigned port;
	int bracketed = 0;
	size_t hlen;

	if (text == NULL || *text == '\0')
		return addr_fail(err, errlen, "empty address");
	if (strncmp(text, ADDR_UNIX_PREFIX, sizeof(ADDR_UNIX_PREFIX) - 1) == 0) {
		if (!(flags & ADDR_UNIX))
			return addr_fail(err, errlen, "a UNIX socket is not allowed here");
		return addr_parse_unix(text + sizeof(ADDR_UNIX_PREFIX) - 1, ss, len, err, errlen);
	}

	if (text[0] == '[') {
		hstart = text + 1;
		hend = strchr(hstart, ']');
		if (hend == NULL)
			return addr_fail(err, errlen, "missing \"]\" after IPv6 address");
		if (hend[1] == '\0')
			return addr_fail(err, errlen, "missing port");
		if (hend[1] != ':')
			return addr_fail(err, errlen, "expected \":port\" after \"]\"");
		colon = hend + 1;
		bracketed = 1;
	} else {
		hstart = text;
		colon = strrchr(text, ':');
		if (colon == NULL)
			return addr_fail(err, errlen, "missing port");
		/* A second colon means an IPv6 literal; without brackets its
		 * last group would silently become the port. */
		if (memchr(text, ':', (size_t)(colon - text)) != NULL)
			return addr_fail(
			    err, errlen, "IPv6 addresses need brackets, e.g. \"[::1]:80\"");
		hend = colon;
	}

	hlen = (size_t)(hend - hstart);
	if (hlen == 0)
		return addr_fail(err, errlen, "missing host");
	if (hlen >= sizeof(host))
		return addr_fail(err, errlen, "host name is too long");
	memcpy(host, hstart, hlen);
	host[hlen] = '\0';

	if (addr_port(colon + 1, &port, err, errlen) == -1)
		return -1;

	memset(ss, 0, sizeof(*ss));
	if (bracketed) {
		/* Brackets always hold a numeric IPv6 address, scope included. */
		if (addr_lookup(host, AF_INET6, AI_NUMERICHOST, ss, len, err, errlen) == -1)
			return -1;
	} else if (strcmp(host, "*") == 0) {
		if (!(flags & ADDR_WILDCARD))
			return addr_fail(err, errlen, "wildcard \"*\" is not allowed here");
		sin = (struct sockaddr_in *)ss;
		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = htonl(INADDR_ANY);
		*len = sizeof(*sin);
	} else {
		sin = (struct sockaddr_in *)ss;
		/* inet_pton, not getaddrinfo, so "127.1" or "0x7f.1" are not
		 * taken for numeric hosts. */
		if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
			sin->sin_family = AF_INET;
			*len = sizeof(*sin);
		} else if (flags & ADDR_NUMERIC) {
			return addr_fail(err, errlen,
			    "\"%s\" is not a numeric address (use an IPv4 address, \"[IPv6]\" or "
			    "\"*\")",
			    host);
		} else if (addr_lookup(host, AF_UNSPEC, 0, ss, len, err, errlen) == -1) {
			return -1;
		}
	}

	if (!(flags & ADDR_WILDCARD) && addr_is_unspecified(ss))
		return addr_fail(err, errlen, "wildcard address \"%s\" is not allowed here", host);

	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons((unsigned short)port);
	else
		((struct sockaddr_in6 *)ss)->sin6_port = htons((unsigned short)port);
	return 0;
}

char *
addr_format(const struct sockaddr *sa, char *buf, size_t buflen)
{
	char host[ADDR_HOSTMAX];
	socklen_t salen;
	unsigned port;

	if (buflen == 0)
		return buf;
	if (sa == NULL) {
		snprintf(buf, buflen, "(none)");
		return buf;
	}
	switch (sa->sa_family) {
	case AF_INET:
		salen = sizeof(struct sockaddr_in);
		port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
		break;
	case AF_INET6:
		salen = sizeof(struct sockaddr_in6);
		port = ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
		break;
	case AF_UNIX: {
		const struct sockaddr_un *sun = (const struct sockaddr_un *)sa;

		snprintf(buf, buflen, ADDR_UNIX_PREFIX "%.*s", (int)sizeof(sun->sun_path),
		    sun->sun_path);
		return buf;
	}
	default:
		snprintf(buf, buflen, "(family %d)", sa->sa_family);
		return buf;
	}
	/* getnameinfo, unlike inet_ntop, appends the IPv6 scope ("%lo"), so
	 * link-local addresses survive a format/parse round trip. */
	if (getnameinfo(sa, salen, host, sizeof(host), NULL, 0, NI_NUMERICHOST) != 0)
		snprintf(host, sizeof(host), "?");
	if (sa->sa_family == AF_INET6)
		snprintf(buf, buflen, "[%s]:%u", host, port);
	else
		snprintf(buf, buflen, "%s:%u", host, port);
	return buf;
}

int
addr_equal(const struct sockaddr *a, const struct sockaddr *b)
{
	const struct sockaddr_in *a4, *b4;
	const struct sockaddr_in6 *a6, *b6;

	if (a == NULL || b == NULL || a->sa_family != b->sa_family)
		return 0;
	switch (a->sa_family) {
	case AF_INET:
		a4 = (const struct sockaddr_in *)a;
		b4 = (const struct sockaddr_in *)b;
		return a4->sin_port == b4->sin_port && a4->sin_addr.s_addr == b4->sin_addr.s_addr;
	case AF_INET6:
		a6 = (const struct sockaddr_in6 *)a;
		b6 = (const struct sockaddr_in6 *)b;
		/* fe80::1%eth0 and fe80::1%eth1 are different hosts. */
		return a6->sin6_port == b6->sin6_port && a6->sin6_scope_id == b6->sin6_scope_id &&
		       memcmp(&a6->sin6_addr, &b6->sin6_addr, sizeof(a6->sin6_addr)) == 0;
	case AF_UNIX:
		/* Unnamed sockets have no identity to share. */
		return ((const struct sockaddr_un *)a)->sun_path[0] != '\0' &&
		       strncmp(((const struct sockaddr_un *)a)->sun_path,
		           ((const struct sockaddr_un *)b)->sun_path,
		           sizeof(((const struct sockaddr_un *)a)->sun_path)) == 0;
	default:
		return 0;
	}
}

void
addr_unix_terminate(struct sockaddr_storage *ss, socklen_t len)
{
	struct sockaddr_un *sun = (struct sockaddr_un *)ss;
	size_t off = offsetof(struct sockaddr_un, sun_path), n;

	if (ss->ss_family != AF_UNIX)
		return;
	/* len may exceed what was passed in (a truncated address). */
	n = len > off ? (size_t)len - off : 0;
	if (n >= sizeof(sun->sun_path))
		n = sizeof(sun->sun_path) - 1;
	sun->sun_path[n] = '\0';
}
