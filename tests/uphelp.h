/* SPDX-License-Identifier: BSD-2-Clause */
/* uphelp.h — helpers for the upstream integration tests (i_balance, i_health,
 * i_retry) on top of harness.h: which echo backend took a connection, clients
 * from chosen 127.0.0.x source addresses, a server's health and counters in
 * the stats segment, and waiting for a client to be closed. Every wait polls
 * against a deadline. */
#ifndef SLUICE_UPHELP_H
#define SLUICE_UPHELP_H

#include <stdint.h>
#include <sys/types.h>

#include "stats.h"

/* Write a sluiced config h_path(name): workers, pid and stats files in
 * h_dir(), log to stderr at debug level, then the body (upstreams, listeners,
 * anything else) from fmt. Returns the path (valid for the next 7 calls). */
const char *up_conf(const char *name, int workers, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Connections echod on port has logged accepting ("echod: accepted"), probes
 * included: compare two readings. */
int up_accepted(int port);

/* Send one byte and read it back within timeout_ms. Returns 0, or -1 after a
 * diag saying what happened instead. */
int up_echo(int fd, int timeout_ms);

/*
 * One client through sluiced on lport (from src unless NULL): connect, echo
 * a byte, and find which of the n echo backends in ports took it (the one
 * whose accept count went up). The connection stays open in *fd when fd is
 * not NULL, else it is closed. Returns the index in ports, or -1 (after a
 * diag) when the client was not served or no single backend took it. Only
 * meaningful while nothing else connects to those backends.
 */
int up_client(int lport, const char *src, const int *ports, int n, int *fd);

/* The stats segment's view of server 127.0.0.1:port of upstream group:
 * counters summed over every worker (and retired) and its health. Returns 0,
 * or -1 when the segment or the server is not there. */
int up_server(
    const char *group, int port, struct stats_server_counters *c, struct stats_health *health);

/* Poll until the checker publishes state (STATS_HEALTH_UP or _DOWN) for that
 * server. Returns 1, or 0 on timeout (after a diag with the last state). */
int up_wait_health(const char *group, int port, uint32_t state, int timeout_ms);

/* Poll until the server's `active` (relayed connections, all workers) is
 * want. Returns 1, or 0 on timeout (after a diag). */
int up_wait_server_active(const char *group, int port, uint64_t want, int timeout_ms);

/* Active connections of that server in each worker slot: fills per[slot] for
 * slots < max. Returns the number of slots filled, or -1. */
int up_server_active_by_slot(const char *group, int port, uint64_t *per, int max);

/*
 * A port whose connects hang: a listener with backlog 0 that never accepts,
 * its queue filled by our own connections (kept until up_blackhole_close).
 * Returns 0, or -1 when this kernel still completes connects to it (the
 * caller skips).
 */
struct up_hole {
	int lfd;
	int fds[64];
	int nfds;
};
int up_blackhole(int port, struct up_hole *);
void up_blackhole_close(struct up_hole *);

/* SIGTERM sluiced and wait for it to exit 0 (bails out otherwise), so that
 * another one can start with the same pid and stats files. */
void up_stop(pid_t pid);

/* A copy (pidfd_getfd) of the socket of process pid whose peer port is
 * rport (IPv4), to read its options; -1 when there is none. */
int up_grab_peer(pid_t pid, int rport);

/* The int option level/name of fd, or -1 (fd -1 included). */
int up_sockopt(int fd, int level, int name);
#endif
