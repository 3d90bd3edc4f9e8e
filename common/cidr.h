/* SPDX-License-Identifier: BSD-2-Clause */
/* cidr.h — network prefixes ("10.0.0.0/8", "2001:db8::/32", "127.0.0.1")
 * for listeners' allow, deny and trusted lists: parsed by conf in the master,
 * matched by workers right after accept. Pure functions: never allocate, log
 * or exit. */
#ifndef SLUICE_CIDR_H
#define SLUICE_CIDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Longest text cidr_format writes, with its NUL. */
#define CIDR_STRLEN 64

/*
 * One prefix. IPv4 is kept as an IPv4-mapped IPv6 address (::ffff:a.b.c.d)
 * with its length plus 96, so one comparison serves both families and an
 * IPv4 client seen through an IPv6 socket matches the IPv4 prefixes.
 */
struct cidr {
	uint8_t addr[16]; /* network byte order; bits past the prefix are zero */
	uint8_t bits;     /* 0..128 over the 128-bit form */
	uint8_t family;   /* AF_INET or AF_INET6, as written (for cidr_format) */
};

/* Parse "a.b.c.d/len" (len 0..32), "v6/len" (0..128), or an address alone
 * (a single host). Bits set past the prefix are an error: "10.0.0.1/8" is
 * more likely a typo than a wish. Returns 0, or -1 with errno EINVAL and a
 * one-line reason in err (e.g. "prefix length 33 is out of range 0..32",
 * "host bits set past /8 (did you mean 10.0.0.0/8?)"). */
int cidr_parse(const char *text, struct cidr *out, char *err, size_t errlen);

/* 1 when sa (AF_INET or AF_INET6; any other family never matches) lies in
 * the prefix, else 0. */
int cidr_match(const struct cidr *, const struct sockaddr *sa);

/* 1 when sa lies in any of the n prefixes, else 0 (0 for n = 0). */
int cidr_match_any(const struct cidr *list, unsigned n, const struct sockaddr *sa);

/* Key form of an address: IPv4 as IPv4-mapped IPv6, IPv6 as is. Returns 0,
 * or -1 (EAFNOSUPPORT) for other families. */
int cidr_key(const struct sockaddr *sa, uint8_t key[16]);

/* "10.0.0.0/8", "2001:db8::/32" into buf (CIDR_STRLEN bytes suffice).
 * Returns buf. */
char *cidr_format(const struct cidr *, char *buf, size_t buflen);

#endif
