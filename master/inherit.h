/* SPDX-License-Identifier: BSD-2-Clause */
/* inherit.h — the listening sockets a new master inherits from the old one
 * in a hot binary upgrade (inherit.c). */
#ifndef SLUICE_INHERIT_H
#define SLUICE_INHERIT_H

#include <sys/socket.h>

/* Take the descriptors listed in text ("3,4,7"), each a listening socket the
 * old master passed. Returns 0, or -1 when the list cannot be read. */
int inherit_init(const char *text);

/* The inherited socket bound to addr (which is then the caller's), or -1.
 * Several bound to addr (a reuseport listener's) come in the order passed. */
int inherit_take(const struct sockaddr *addr);

/* Close what nobody took (addresses the new config no longer has). */
void inherit_close_rest(void);

#endif
