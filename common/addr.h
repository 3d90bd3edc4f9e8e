/* SPDX-License-Identifier: BSD-2-Clause */
/* addr.h — parse and format socket addresses ("127.0.0.1:80", "[::1]:80",
 * "*:80", "host.example:80", "unix:/run/app.sock"). Pure functions used by conf, the master, the
 * workers and the CLI; never logs, never exits. */
#ifndef SLUICE_ADDR_H
#define SLUICE_ADDR_H

#include <stddef.h>
#include <sys/socket.h>

/* Longest text addr_format writes, with its NUL: "unix:" and a 107-byte
 * path (longer than "[v6%scope]:65535"). */
#define ADDR_STRLEN 120

enum addr_flags {
	ADDR_NUMERIC = 1, /* only numeric hosts (listeners); else resolve names */
	ADDR_WILDCARD = 2, /* accept "*:port" as 0.0.0.0 and "[::]:port" */
	ADDR_UNIX = 4      /* accept "unix:/absolute/path" (AF_UNIX, SOCK_STREAM) */
};

/* What "unix:" text starts with, and the longest path after it: sun_path
 * (108 bytes) with its NUL. */
#define ADDR_UNIX_PREFIX "unix:"
#define ADDR_UNIX_PATH_MAX 107

/* Parse "host:port" or "[v6]:port" into *ss and *len. The port is required and
 * must be 1..65535. Host names are resolved with getaddrinfo (blocking: call
 * it from the master only) unless ADDR_NUMERIC; the first result is used.
 * Returns 0, or -1 with a one-line reason in err (e.g. "port 70000 is out of
 * range 1..65535", "missing port", "cannot resolve \"x\": Name or service
 * not known"). With ADDR_UNIX, "unix:/path" gives an AF_UNIX address whose
 * length covers the path and its NUL; the path must be absolute and at most
 * ADDR_UNIX_PATH_MAX bytes. */
int addr_parse(const char *text, int flags, struct sockaddr_storage *ss,
    socklen_t *len, char *err, size_t errlen);

/* Write "a.b.c.d:port", "[v6]:port" or "unix:/path" into buf (at least
 * ADDR_STRLEN bytes, else cut short). An AF_UNIX address must
 * hold a NUL-terminated sun_path (addr_unix_terminate); an unnamed one
 * (a client's) is written "unix:". Returns buf. */
char *addr_format(const struct sockaddr *sa, char *buf, size_t buflen);

/* 1 when both hold the same family, address and port (or UNIX path), else 0. */
int addr_equal(const struct sockaddr *a, const struct sockaddr *b);

/* After accept, getpeername or getsockname filled len bytes of an AF_UNIX
 * *ss: make its sun_path a C string (empty for an unnamed socket, whose
 * path the kernel does not write). Other families are left alone. */
void addr_unix_terminate(struct sockaddr_storage *ss, socklen_t len);

#endif
