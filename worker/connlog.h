/* SPDX-License-Identifier: BSD-2-Clause */
/* connlog.h — the connection log (log.connections = true): one line per
 * closed connection, refused ones too, at info level to the configured log,
 * as log.format says (else the classic line), formatted on the stack. Runs
 * in a worker; never allocates, never blocks: a line the log cannot take
 * now is dropped and counted in the slot's log_dropped. */
#ifndef SLUICE_CONNLOG_H
#define SLUICE_CONNLOG_H

#include <stdint.h>

#include "session.h"

struct sockaddr;
struct worker;

/* The line for a session that ended for why, err being errno as the
 * teardown found it (a reset reads as such). Needs the session tail. */
void connlog_session(struct worker *, struct session *, enum close_reason why, int err);

/* One line: client (NULL or AF_UNSPEC shows "-"), listener li, upstream ui
 * (the listener's, or its sni rule's) and the rule's name (NULL: none),
 * server index of ui or -1, how long it lasted, bytes each way, how it ended
 * and why. */
void connlog_write(struct worker *, unsigned li, unsigned ui, const char *sni,
    const struct sockaddr *client, int server, uint32_t duration_ms, uint64_t bytes_in, uint64_t bytes_out, const char *end,
    const char *reason);

/* At worker start, once the loop exists: the flush watcher, on the sink
 * the fork path opened (a failure to open it is logged once). Nothing
 * unless log.connections is on. */
void connlog_init(struct worker *);

/* SIGUSR1: reopen the file or reconnect the syslog socket; what is queued
 * goes to the new descriptor. */
void connlog_reopen(struct worker *);

/* At exit: one last write that does not wait; lines left are counted as
 * dropped. */
void connlog_fini(struct worker *);

#endif
