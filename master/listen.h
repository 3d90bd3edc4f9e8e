/* SPDX-License-Identifier: BSD-2-Clause */
/* listen.h — the master's listening sockets across reloads: an address (or
 * UNIX path) kept from one config to the next keeps its socket, so a reload
 * refuses nothing. */
#ifndef SLUICE_LISTEN_H
#define SLUICE_LISTEN_H

#include <stddef.h>

struct conf;

/* Listening fds for every listener of next, parallel to next->listeners:
 * an address also in prev (with fds prev_fds, may be NULL/NULL) reuses that
 * fd (its backlog updated); others are opened. Returns a malloc'ed array, or
 * NULL with the reason in err ("cannot listen on A: reason"); on failure
 * nothing opened here stays open and prev's fds are untouched. */
int *listen_open(const struct conf *next, const struct conf *prev, const int *prev_fds,
    char *err, size_t errlen);

/* Close the fds of prev that next does not reuse, then free prev_fds.
 * next/next_fds may be NULL/NULL (close them all). A closed UNIX listener's
 * socket file is removed when this master created it (or owns it, see
 * listen_own_inherited) and listen_keep_files was not called. */
void listen_close(const struct conf *prev, int *prev_fds, const struct conf *next,
    const int *next_fds);

/* Generation c (fds) runs: the reuseport sockets a reload or an upgrade
 * added are its for good, and new clients are steered to the sockets of
 * its c->workers workers only. Before this, a group steers as it did. */
void listen_commit(const struct conf *c, const int *fds);

/* Every listening socket of c (fds) in order, a reuseport listener's
 * sockets in their group's order, into out (NULL: only count them).
 * Returns how many. */
unsigned listen_all(const struct conf *c, const int *fds, int *out);

/* In a child right after fork: what worker index (-1: a helper, which
 * accepts nothing) of the generation c (fds) accepts, and close every
 * other reuseport socket of this master. *own, parallel to c->listeners:
 * the shared socket, or the worker's own reuseport socket (-1 in a helper);
 * *extra: the reuseport sockets it also accepts (k >= workers, k mod
 * workers == index; of a generation still starting (starting), the ones a
 * reload under way added too), *extra_li their listeners. Returns 0, or -1
 * when out of memory. */
int listen_child(const struct conf *c, const int *fds, int index, int starting, int **own,
    int **extra, unsigned **extra_li, unsigned *nextra);

/* A hot upgrade's new master runs: from now on the socket files of the UNIX
 * listeners it inherited are its to remove. Until then a failed start
 * leaves them to the old master, which still serves on them. */
void listen_own_inherited(void);

/* The old master of a hot upgrade: the new one serves on our UNIX
 * listeners' files, so closing ours must leave them. */
void listen_keep_files(void);

#endif
