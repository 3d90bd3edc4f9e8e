/* SPDX-License-Identifier: BSD-2-Clause */
/* segread.h — sluicestat's one way to read the segment: attach, snapshot,
 * detach, surviving a file that another process truncates under the
 * mapping. Runs in sluicestat only (it owns SIGBUS while it reads). */
#ifndef SLUICE_SEGREAD_H
#define SLUICE_SEGREAD_H

#include <stddef.h>

struct stats_snapshot;

/* A reading of the segment at path. Returns a new snapshot (the caller
 * frees it with stats_snapshot_destroy), or NULL with a one-line reason in
 * err: stats_attach's, "out of memory", or "P: changed size while being
 * read" when the file shrank under the reading (nothing is kept of it). */
struct stats_snapshot *segread_snapshot(const char *path, char *err, size_t errlen);

#endif
