/* SPDX-License-Identifier: BSD-2-Clause */
/* connlog.h — the connection log (log.connections = true): one line per
 * closed connection, refused ones too, at info level to the configured log,
 * formatted on the stack. Runs in a worker; never allocates. */
#ifndef SLUICE_CONNLOG_H
#define SLUICE_CONNLOG_H

#include <stdint.h>

#include "session.h"

struct sockaddr;
struct worker;

/* The line for a session that ended for why, err being errno as the
 * teardown found it (a reset reads as such). Needs the session tail. */
void connlog_session(const struct worker *, struct session *, enum close_reason why, int err);

/* One line: client (NULL or AF_UNSPEC shows "-"), listener li, server index
 * of li's upstream or -1, how long it lasted, bytes each way, how it ended
 * and why. */
void connlog_write(const struct worker *, unsigned li, const struct sockaddr *client, int server,
    uint32_t duration_ms, uint64_t bytes_in, uint64_t bytes_out, const char *end,
    const char *reason);

#endif
