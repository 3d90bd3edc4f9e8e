/* SPDX-License-Identifier: BSD-2-Clause */
/* healthz.c — /healthz's verdict (see healthz.h). Runs in the admin
 * process and in tests; never reads the segment itself. */
#include <stdio.h>
#include <string.h>

#include "healthz.h"
#include "prom.h"
#include "stats.h"

/* A server that would take a new connection, as far as the segment says
 * (passive marks are per worker and not judged here). */
static int
healthz_usable(const struct stats_server_view *s)
{
	uint32_t weight =
	    s->admin.weight == STATS_WEIGHT_CONFIG ? s->entry.weight : s->admin.weight;

	return s->health.state != STATS_HEALTH_DOWN && s->admin.state == STATS_ADMIN_READY &&
	       weight > 0;
}

int
healthz_judge(const struct stats_snapshot *sn, char *why, size_t len)
{
	unsigned running = 0, listeners = 0;

	if (sn->node_state != STATS_NODE_SERVING) {
		snprintf(why, len, "%s", stats_node_name(sn->node_state));
		return 0;
	}
	for (unsigned i = 0; i < sn->nworkers; i++)
		running += sn->workers[i].generation == sn->generation &&
		           sn->workers[i].state == STATS_SLOT_RUNNING;
	if (running == 0) {
		snprintf(why, len, "no worker running");
		return 0;
	}
	for (unsigned i = 0; i < sn->nlisteners; i++) {
		const struct stats_listener_entry *l = &sn->listeners[i].entry;
		unsigned k;

		if (!prom_entry_live(sn, l->generation))
			continue;
		listeners++;
		for (k = 0; k < sn->nservers; k++) {
			const struct stats_server_view *s = &sn->servers[k];

			if (prom_entry_live(sn, s->entry.generation) &&
			    strcmp(s->entry.upstream, l->upstream) == 0 && healthz_usable(s))
				break;
		}
		if (k == sn->nservers) {
			snprintf(why, len, "listener %s: no usable server in upstream %s",
			    l->address, l->upstream);
			return 0;
		}
	}
	snprintf(why, len, "ok: %u workers running, %u listeners served", running, listeners);
	return 1;
}
