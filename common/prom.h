/* SPDX-License-Identifier: BSD-2-Clause */
/* prom.h — a statistics snapshot as Prometheus text (exposition format
 * 0.0.4), the one renderer behind `sluicestat --prometheus` and the admin
 * process's /metrics. Reads the snapshot only; writes only to the stream it
 * is given. */
#ifndef SLUICE_PROM_H
#define SLUICE_PROM_H

#include <stdio.h>

struct stats_snapshot;

/* Every family with HELP and TYPE, names unique, base units (seconds, bytes),
 * counters ending in _total, reasons and states as labels, label values
 * escaped. Listeners and servers whose directory entry is not of the
 * current generation or a starting one (entry generation < sn->generation:
 * removed by a reload) are left out. master_running: the value of sluice_up. */
void prom_render(const struct stats_snapshot *sn, int master_running, FILE *fp);

/* 1 when entry generation `generation` is exported from sn: the current
 * generation's, or a newer one a reload is starting. */
int prom_entry_live(const struct stats_snapshot *sn, unsigned generation);

#endif
