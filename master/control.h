/* SPDX-License-Identifier: BSD-2-Clause */
/* control.h — the master's UNIX control socket (sluicectl): runtime server
 * states and weights (kept in a state file), session listing and shutdown
 * through the workers' command socketpairs, synchronous reloads, node drain,
 * log level. Runs in the master only; never blocks it. */
#ifndef SLUICE_CONTROL_H
#define SLUICE_CONTROL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct conf;
struct ev_loop;
struct stats_seg;

/* At start, before daemonizing: bind the socket conf names (if any), replacing
 * a stale one, with its mode and group. Returns 0, or -1 with a reason. */
int control_open(const struct conf *, char *err, size_t errlen);

/* In the master loop: start serving the socket, and apply the state file to
 * the rows of the running config (call after its rows are assigned). */
void control_start(struct ev_loop *, struct stats_seg *);

/* At exit: close everything and (remove_socket) remove the socket file,
 * which after a hot upgrade is the new master's. */
void control_close(int remove_socket);

/* In a new child, right after fork: close every descriptor of the control
 * socket and every worker's command socket but keep (-1: none). */
void control_child_forget(int keep);

/* Command socketpair of the worker in stats slot `slot`: make one before
 * forking it (returns 0 and the child's end in *child_fd, or -1), and
 * after the fork keep our end (control_worker_forked) or drop both
 * (control_worker_failed, fork failed). control_worker_gone when it is
 * reaped: a request waiting for it is answered without it. */
int control_worker_pair(unsigned slot, int *child_fd);
void control_worker_forked(unsigned slot, int child_fd);
void control_worker_failed(unsigned slot, int child_fd);
void control_worker_gone(unsigned slot);

/* A reload numbered seq (see master_reload_request) ended. */
void control_reload_done(uint64_t seq, int ok, const char *why);

/* A node drain ended its grace period (the listeners are closing), or an
 * undrain's new generation ended (ok, or failed with why). */
void control_undrain_done(int ok, const char *why);
/* A hot upgrade asked for through the control socket ended: ok 1, the new
 * master runs (text: the answer), or 0 and text says why it failed. */
void control_upgrade_done(int ok, const char *why);

#endif
