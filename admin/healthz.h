/* SPDX-License-Identifier: BSD-2-Clause */
/* healthz.h — the admin process's verdict on the node for /healthz, from a
 * statistics snapshot. Pure: reads the snapshot, writes only the line it is
 * given. */
#ifndef SLUICE_HEALTHZ_H
#define SLUICE_HEALTHZ_H

#include <stddef.h>

struct stats_snapshot;

/*
 * 1 (serve: HTTP 200) when the node is SERVING, at least one worker of the
 * current generation runs, and every listener of the current generation has
 * a usable server in its upstream: one of the current generation that health
 * checks do not have DOWN, whose operator state is READY and whose weight in
 * use is above 0. Else 0 (HTTP 503). Either way one line without a newline in
 * why ("ok: ...", "draining", "no worker running", "listener A: no usable
 * server in upstream U"), truncated to len.
 */
int healthz_judge(const struct stats_snapshot *sn, char *why, size_t len);

#endif
