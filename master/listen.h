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

/* A hot upgrade's new master runs: from now on the socket files of the UNIX
 * listeners it inherited are its to remove. Until then a failed start
 * leaves them to the old master, which still serves on them. */
void listen_own_inherited(void);

/* The old master of a hot upgrade: the new one serves on our UNIX
 * listeners' files, so closing ours must leave them. */
void listen_keep_files(void);

#endif
