/* SPDX-License-Identifier: BSD-2-Clause */
/* resolve.h — the DNS wire format, as far as live server names need it: an
 * A or AAAA query (with EDNS0, so answers up to RESOLVE_UDP_MAX bytes come
 * over UDP) and the reading of its answer (addresses, CNAME chains,
 * compressed names, the smallest TTL on the way). Pure functions, used by the
 * checker (checker/dns.c) and by the unit test and fuzz target; no I/O, no
 * allocation, never logs. There is no TCP fallback: a truncated answer is a
 * failed one (RESOLVE_TRUNCATED). */
#ifndef SLUICE_RESOLVE_H
#define SLUICE_RESOLVE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define RESOLVE_TYPE_A 1
#define RESOLVE_TYPE_CNAME 5
#define RESOLVE_TYPE_AAAA 28
#define RESOLVE_TYPE_OPT 41
#define RESOLVE_UDP_MAX 1232 /* the EDNS0 size we announce (DNS flag day 2020) */
#define RESOLVE_NAME_MAX 254 /* a name's text with its NUL, trailing dot dropped */
#define RESOLVE_CHAIN_MAX 8  /* CNAMEs followed at most */

/* What an answer said. */
enum resolve_status {
	RESOLVE_OK = 0,    /* NOERROR with at least one address of the type asked */
	RESOLVE_EMPTY,     /* NOERROR without one (NODATA, or a CNAME leading nowhere) */
	RESOLVE_NXDOMAIN,  /* the name does not exist */
	RESOLVE_SERVFAIL,  /* any other RCODE (SERVFAIL, REFUSED, ...) */
	RESOLVE_TRUNCATED, /* TC set: the answer did not fit (no TCP fallback) */
	RESOLVE_MALFORMED, /* cannot be read: lengths, names or records broken */
	RESOLVE_FOREIGN    /* not the answer to this query (id, flags, question):
	                    * ignore it and keep waiting */
};

/* One address from an answer: family AF_INET (4 bytes of addr) or AF_INET6. */
struct resolve_addr {
	int family;
	uint8_t addr[16];
};

/* "ok", "empty", "nxdomain", "servfail", "truncated", "malformed", "foreign". */
const char *resolve_status_name(enum resolve_status);

/* 1 when name (without or with one trailing dot) can be asked: labels of 1
 * to 63 letters, digits, '-' or '_', at most 253 characters; else 0. */
int resolve_name_valid(const char *name);

/* Write a query for name (resolve_name_valid) and qtype (A or AAAA) with id,
 * recursion desired and an EDNS0 OPT record, into buf of len bytes. Returns
 * the query's length, or -1 with errno EINVAL (bad name or type) or ENOSPC. */
ssize_t resolve_query(uint8_t *buf, size_t len, uint16_t id, const char *name, uint16_t qtype);

/*
 * Read msg (len bytes) as the answer to the query (id, name, qtype). With
 * RESOLVE_OK, out[0..*n) are the addresses of the type asked that belong to
 * the name or to the end of its CNAME chain (at most max, duplicates left
 * out, in the answer's order) and *ttl the smallest TTL of those records and
 * of the CNAMEs followed. Otherwise *n and *ttl are 0 (the caller's retry
 * interval applies: negative caching TTLs are not read). Reads no byte
 * outside msg, whatever msg holds.
 */
enum resolve_status resolve_parse(const uint8_t *msg, size_t len, uint16_t id, const char *name,
    uint16_t qtype, struct resolve_addr *out, unsigned max, unsigned *n, uint32_t *ttl);

#endif
