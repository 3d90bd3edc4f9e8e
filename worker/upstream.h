/* SPDX-License-Identifier: BSD-2-Clause */
/* upstream.h — choosing a server of an upstream group and connecting to it,
 * with passive health marks (upstream.c, balancing in balance.c). Runs in a
 * worker; reads health and load that other processes publish in the stats
 * segment, writes only this worker's rows. */
#ifndef SLUICE_UPSTREAM_H
#define SLUICE_UPSTREAM_H

struct sockaddr;
struct worker;

/* Set up w->groups (balancing state, source-hash rings) from w->conf once,
 * before accepting. Returns 0, or -1 with errno ENOMEM. */
int upstream_init(struct worker *);

/* Upstream groups are named by their index ui in conf->upstreams: a
 * session's is session_upstream() (its listener's, or its sni rule's). */

/* Choose a server of upstream ui for a new session (failed < 0;
 * client, its address, is read only for source hashing), or for a retry after server
 * `failed` (the next usable one after it, so that retries visit distinct
 * servers whatever other sessions did meanwhile). Servers down (health
 * checks or passive marks) or full (max_connections) are skipped; backups
 * stand in only when no other server can. Returns the index, or -1 when no
 * server can take the session. */
int upstream_pick(struct worker *, unsigned ui, const struct sockaddr *client, int failed);

/* Start a non-blocking connect to server `server` of upstream ui, from its
 * source address (in turn) or, transparent, from client (the client's
 * address, which upstream_wants_client says is needed). On success the
 * server counts the session as active until upstream_release. Returns the
 * fd, or -1 with errno when the attempt failed at once; EADDRNOTAVAIL when
 * the cause is ours (no source port, a source that cannot be bound), not
 * the server's. */
int upstream_connect(struct worker *, unsigned ui, unsigned server, const struct sockaddr *client);

/* 1 when a connect to that server goes out from the client's address. */
int upstream_wants_client(const struct worker *, unsigned ui, unsigned server);

/* Count a session taken over from an older generation (connected there) on
 * server, as upstream_connect would have; upstream_release gives it back. */
void upstream_adopt(struct worker *, unsigned ui, unsigned server);
/* The session that upstream_connect counted on server let it go (its connect
 * failed, or it closed). */
void upstream_release(struct worker *, unsigned ui, unsigned server);

/* Outcome of a connect attempt, for passive health: a success clears the
 * server's failures; max_fails failures in a row (refused, unreachable,
 * timed out; why says which) mark it down for fail_timeout in this worker. */
void upstream_connected(struct worker *, unsigned ui, unsigned server);
void upstream_failed(struct worker *, unsigned ui, unsigned server, const char *why);

/* Connect attempts a session of upstream ui may make: 1 + retries. */
unsigned upstream_tries(const struct worker *, unsigned ui);

/* Text of an upstream server address for logs. */
const char *upstream_name(const struct worker *, unsigned ui, unsigned server);

#endif
