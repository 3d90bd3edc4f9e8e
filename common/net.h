/* SPDX-License-Identifier: BSD-2-Clause */
/* net.h — socket helpers for listeners and relayed connections. Used by the
 * master (listen) and workers (connect); never logs. */
#ifndef SLUICE_NET_H
#define SLUICE_NET_H

#include <sys/socket.h>

/* A non-blocking, close-on-exec listening TCP socket bound to sa with
 * SO_REUSEADDR (and IPV6_V6ONLY for IPv6). Returns the fd, or -1 with errno. */
int net_listen(const struct sockaddr *sa, socklen_t len, int backlog);

/* net_listen with IPV6_V6ONLY as v6only says for an IPv6 address (0: the
 * socket takes IPv4 clients too, as ::ffff:a.b.c.d). */
int net_listen_v6only(const struct sockaddr *sa, socklen_t len, int backlog, int v6only);

/* Start a non-blocking connect to sa. Returns the fd (connecting or, rarely,
 * already connected), or -1 with errno when the attempt failed at once (e.g.
 * ECONNREFUSED on loopback). */
int net_connect(const struct sockaddr *sa, socklen_t len);

/* net_connect, with prep(fd, arg) called on the new socket before the
 * connect (options that the SYN must carry, a source address to bind);
 * prep returns 0, or -1 with errno to give the attempt up. */
int net_connect_prep(const struct sockaddr *sa, socklen_t len, int (*prep)(int, void *), void *arg);

/* After a connecting fd becomes writable: 0 if connected, else -1 with errno
 * set to the connect error. */
int net_connect_result(int fd);

/* TCP_NODELAY on: relays forward what they get at once. */
void net_nodelay(int fd);

#endif
