/* SPDX-License-Identifier: BSD-2-Clause */
/* prom.c — Prometheus text for a statistics snapshot, shared by sluicestat
 * and the admin process. Pure: it formats what the snapshot holds and never
 * reads the segment, logs or exits. */
#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "addr.h"
#include "prom.h"
#include "stats.h"

static const char *const prom_close_names[] = {
#define STATS_X_NAME(up, name, help) #name,
    STATS_CLOSE_REASONS(STATS_X_NAME)
#undef STATS_X_NAME
};

static const char *const prom_refuse_names[] = {
#define STATS_X_NAME(up, name, help) #name,
    STATS_REFUSE_REASONS(STATS_X_NAME)
#undef STATS_X_NAME
};

int
prom_entry_live(const struct stats_snapshot *sn, unsigned generation)
{
	return generation >= sn->generation;
}

/* sluice_<prefix><name>: counters end in _total; a gauge whose name ends in
 * _total (pool_buffers_total: blocks carved) drops it, so that no gauge
 * looks like a counter; "bytes_mapped" becomes "mapped_bytes" so that the
 * unit comes last. */
static void
prom_name(char *buf, size_t len, const char *prefix, const struct stats_field *f)
{
	char base[96];
	size_t n;
	char *p;

	snprintf(base, sizeof(base), "%s", f->name);
	if ((p = strstr(base, "bytes_mapped")) != NULL && p[12] == '\0')
		memcpy(p, "mapped_bytes", 12);
	n = strlen(base);
	if (f->kind == STATS_COUNTER)
		snprintf(buf, len, "sluice_%s%s_total", prefix, base);
	else if (n > 6 && strcmp(base + n - 6, "_total") == 0)
		snprintf(buf, len, "sluice_%s%.*s", prefix, (int)(n - 6), base);
	else
		snprintf(buf, len, "sluice_%s%s", prefix, base);
}

/* HELP text: backslash and newline escaped. */
static void
prom_family(FILE *fp, const char *name, const char *type, const char *help)
{
	fprintf(fp, "# HELP %s ", name);
	for (; *help != '\0'; help++) {
		if (*help == '\\')
			fputs("\\\\", fp);
		else if (*help == '\n')
			fputs("\\n", fp);
		else
			fputc(*help, fp);
	}
	fprintf(fp, "\n# TYPE %s %s\n", name, type);
}

/* A label value: backslash, quote and newline escaped. */
static void
prom_label(FILE *fp, const char *key, const char *value, int first)
{
	fprintf(fp, "%s%s=\"", first ? "" : ",", key);
	for (; *value != '\0'; value++) {
		if (*value == '\\' || *value == '"')
			fprintf(fp, "\\%c", *value);
		else if (*value == '\n')
			fputs("\\n", fp);
		else
			fputc(*value, fp);
	}
	fputc('"', fp);
}

/* {listener=..,upstream=..[,key=value]} */
static void
prom_listener_labels(FILE *fp, const struct stats_listener_view *l)
{
	fputc('{', fp);
	prom_label(fp, "listener", l->entry.address, 1);
	prom_label(fp, "upstream", l->entry.upstream, 0);
	fputc('}', fp);
}

static void
prom_server_labels(FILE *fp, const struct stats_server_view *s, const char *key, const char *value)
{
	fputc('{', fp);
	prom_label(fp, "upstream", s->entry.upstream, 1);
	prom_label(fp, "server", s->entry.address, 0);
	if (key != NULL)
		prom_label(fp, key, value, 0);
	fputc('}', fp);
}

/* One health figure of every exported server, as a family. */
static void
prom_health(FILE *fp, const struct stats_snapshot *sn, const char *name, const char *type,
    const char *help, size_t offset, size_t size, double scale)
{
	prom_family(fp, name, type, help);
	for (unsigned i = 0; i < sn->nservers; i++) {
		const char *p = (const char *)&sn->servers[i].health + offset;
		uint64_t v;

		if (!prom_entry_live(sn, sn->servers[i].entry.generation))
			continue;
		if (size == sizeof(uint32_t)) {
			uint32_t v32;

			memcpy(&v32, p, sizeof(v32));
			v = v32;
		} else {
			memcpy(&v, p, sizeof(v));
		}
		fputs(name, fp);
		prom_server_labels(fp, &sn->servers[i], NULL, NULL);
		if (scale != 1)
			fprintf(fp, " %.3f\n", (double)v * scale);
		else
			fprintf(fp, " %" PRIu64 "\n", v);
	}
}

#define PROM_HEALTH(fp, sn, name, type, help, field, scale)                         \
	prom_health(fp, sn, name, type, help, offsetof(struct stats_health, field), \
	    sizeof(((struct stats_health *)0)->field), scale)

static void
prom_node(const struct stats_snapshot *sn, int master_running, FILE *fp)
{
	static const uint32_t states[] = {
	    STATS_SLOT_STARTING, STATS_SLOT_RUNNING, STATS_SLOT_DRAINING, STATS_SLOT_EXITED};
	static const uint32_t nodes[] = {
	    STATS_NODE_SERVING, STATS_NODE_DRAINING, STATS_NODE_DRAINED};

	prom_family(fp, "sluice_build_info", "gauge", "always 1; the version of sluice");
	fputs("sluice_build_info{", fp);
	prom_label(fp, "version", PACKAGE_VERSION, 1);
	fputs("} 1\n", fp);
	prom_family(
	    fp, "sluice_up", "gauge", "1 while the sluiced master that writes the segment runs");
	fprintf(fp, "sluice_up %d\n", master_running ? 1 : 0);
	prom_family(fp, "sluice_start_time_seconds", "gauge", "when the sluiced master started");
	fprintf(fp, "sluice_start_time_seconds %.3f\n", (double)sn->start_ms / 1000);
	prom_family(fp, "sluice_generation", "gauge", "configuration generation serving");
	fprintf(fp, "sluice_generation %" PRIu64 "\n", sn->generation);
	prom_family(fp, "sluice_node_state", "gauge",
	    "1 for the node's state: serving, draining (sluicectl drain), drained");
	for (unsigned k = 0; k < sizeof(nodes) / sizeof(nodes[0]); k++)
		fprintf(fp, "sluice_node_state{state=\"%s\"} %d\n", stats_node_name(nodes[k]),
		    sn->node_state == nodes[k]);
	prom_family(fp, "sluice_reloads_total", "counter", "reloads by outcome");
	fprintf(fp, "sluice_reloads_total{result=\"ok\"} %" PRIu64 "\n", sn->reloads_ok);
	fprintf(fp, "sluice_reloads_total{result=\"failed\"} %" PRIu64 "\n", sn->reloads_failed);
	prom_family(fp, "sluice_last_reload_timestamp_seconds", "gauge",
	    "when the last reload ended (0: none yet)");
	fprintf(
	    fp, "sluice_last_reload_timestamp_seconds %.3f\n", (double)sn->last_reload_ms / 1000);
	prom_family(fp, "sluice_source_table_slots", "gauge",
	    "slots of the shared per-source table (limits.source_table)");
	fprintf(fp, "sluice_source_table_slots %" PRIu64 "\n", sn->source_slots);
	prom_family(fp, "sluice_source_table_slots_used", "gauge",
	    "slots of the per-source table a source claimed (they stay claimed)");
	fprintf(fp, "sluice_source_table_slots_used %" PRIu64 "\n", sn->source_slots_used);
	prom_family(fp, "sluice_source_table_full_total", "counter",
	    "connections whose source found no slot in the per-source table "
	    "(limited per worker instead)");
	fprintf(fp, "sluice_source_table_full_total %" PRIu64 "\n", sn->source_table_full);
	prom_family(fp, "sluice_source_reconciled_total", "counter",
	    "per-source counts taken back from workers that died");
	fprintf(fp, "sluice_source_reconciled_total %" PRIu64 "\n", sn->source_reconciled);
	prom_family(fp, "sluice_last_reload_success", "gauge",
	    "1 when the last reload succeeded (or there was none), 0 when it failed");
	fprintf(fp, "sluice_last_reload_success %d\n",
	    sn->last_reload_ms == 0 || sn->last_reload_ok ? 1 : 0);
	prom_family(fp, "sluice_workers", "gauge", "worker processes by state");
	for (unsigned k = 0; k < sizeof(states) / sizeof(states[0]); k++) {
		unsigned n = 0;

		for (unsigned i = 0; i < sn->nworkers; i++)
			n += sn->workers[i].state == states[k];
		fprintf(fp, "sluice_workers{state=\"%s\"} %u\n", stats_state_name(states[k]), n);
	}
}

/* Worker totals: close and refusal reasons as labels of one family each. */
static void
prom_totals(const struct stats_snapshot *sn, FILE *fp)
{
	char name[128];

	for (unsigned f = 0; f < stats_nfields; f++) {
		const struct stats_field *d = &stats_fields[f];

		if (d->offset >= offsetof(struct stats_counters, closed_by) ||
		    strcmp(d->name, "closed") == 0 || strcmp(d->name, "refused") == 0)
			continue;
		prom_name(name, sizeof(name), "", d);
		prom_family(fp, name, d->kind == STATS_COUNTER ? "counter" : "gauge", d->help);
		fprintf(fp, "%s %" PRIu64 "\n", name, stats_field_get(&sn->total, d));
	}
	prom_family(fp, "sluice_closed_total", "counter",
	    "client connections closed, by reason (refused: refused before relaying)");
	for (unsigned k = 0; k < STATS_CLOSE_COUNT; k++)
		fprintf(fp, "sluice_closed_total{reason=\"%s\"} %" PRIu64 "\n", prom_close_names[k],
		    sn->total.closed_by[k]);
	fprintf(fp, "sluice_closed_total{reason=\"refused\"} %" PRIu64 "\n", sn->total.refused);
	prom_family(fp, "sluice_refused_total", "counter",
	    "client connections refused before relaying a byte, by reason");
	for (unsigned k = 0; k < STATS_REFUSE_COUNT; k++)
		fprintf(fp, "sluice_refused_total{reason=\"%s\"} %" PRIu64 "\n",
		    prom_refuse_names[k], sn->total.refused_by[k]);
}

static void
prom_listeners(const struct stats_snapshot *sn, FILE *fp)
{
	char name[128];

	for (unsigned f = 0; f < stats_listener_nfields; f++) {
		const struct stats_field *d = &stats_listener_fields[f];

		prom_name(name, sizeof(name), "listener_", d);
		prom_family(fp, name, d->kind == STATS_COUNTER ? "counter" : "gauge", d->help);
		for (unsigned i = 0; i < sn->nlisteners; i++) {
			if (!prom_entry_live(sn, sn->listeners[i].entry.generation))
				continue;
			fputs(name, fp);
			prom_listener_labels(fp, &sn->listeners[i]);
			fprintf(fp, " %" PRIu64 "\n", stats_field_get(&sn->listeners[i].c, d));
		}
	}
}

static void
prom_histogram(const struct stats_snapshot *sn, FILE *fp)
{
	static const uint64_t bounds[STATS_CONNECT_BUCKETS] = STATS_CONNECT_BOUNDS_US;
	const char *name = "sluice_server_connect_duration_seconds";
	char le[32];

	prom_family(fp, name, "histogram",
	    "time from a session's first connect attempt to its connect to this server");
	for (unsigned i = 0; i < sn->nservers; i++) {
		const struct stats_server_view *s = &sn->servers[i];
		const uint64_t *bucket = &s->c.connect_le_1ms;
		uint64_t count = s->c.connected, cum = 0;

		if (!prom_entry_live(sn, s->entry.generation))
			continue;
		for (unsigned b = 0; b < STATS_CONNECT_BUCKETS; b++) {
			cum += bucket[b];
			snprintf(le, sizeof(le), "%g", (double)bounds[b] / 1e6);
			fprintf(fp, "%s_bucket", name);
			prom_server_labels(fp, s, "le", le);
			/* Read while a worker counts: never above the count. */
			fprintf(fp, " %" PRIu64 "\n", cum < count ? cum : count);
		}
		fprintf(fp, "%s_bucket", name);
		prom_server_labels(fp, s, "le", "+Inf");
		fprintf(fp, " %" PRIu64 "\n%s_sum", count, name);
		prom_server_labels(fp, s, NULL, NULL);
		fprintf(fp, " %.6f\n%s_count", (double)s->c.connect_us_sum / 1e6, name);
		prom_server_labels(fp, s, NULL, NULL);
		fprintf(fp, " %" PRIu64 "\n", count);
	}
}

static void
prom_servers(const struct stats_snapshot *sn, FILE *fp)
{
	static const uint32_t health[] = {STATS_HEALTH_UNKNOWN, STATS_HEALTH_UP, STATS_HEALTH_DOWN};
	static const uint32_t admin[] = {STATS_ADMIN_READY, STATS_ADMIN_DRAIN, STATS_ADMIN_MAINT};
	char name[128];
	unsigned i, k;

	/* The rest are the connect histogram, one family of its own. */
	for (unsigned f = 0; f < STATS_SERVER_PLAIN_FIELDS; f++) {
		const struct stats_field *d = &stats_server_fields[f];

		prom_name(name, sizeof(name), "server_", d);
		prom_family(fp, name, d->kind == STATS_COUNTER ? "counter" : "gauge", d->help);
		for (i = 0; i < sn->nservers; i++) {
			if (!prom_entry_live(sn, sn->servers[i].entry.generation))
				continue;
			fputs(name, fp);
			prom_server_labels(fp, &sn->servers[i], NULL, NULL);
			fprintf(fp, " %" PRIu64 "\n", stats_field_get(&sn->servers[i].c, d));
		}
	}
	prom_histogram(sn, fp);
	prom_family(
	    fp, "sluice_server_up", "gauge", "0 while health checks have the server down, else 1");
	for (i = 0; i < sn->nservers; i++) {
		if (!prom_entry_live(sn, sn->servers[i].entry.generation))
			continue;
		fputs("sluice_server_up", fp);
		prom_server_labels(fp, &sn->servers[i], NULL, NULL);
		fprintf(fp, " %d\n", sn->servers[i].health.state != STATS_HEALTH_DOWN);
	}
	prom_family(fp, "sluice_server_state", "gauge",
	    "health of the server: 1 for its current state (unknown: not checked)");
	for (i = 0; i < sn->nservers; i++)
		for (k = 0; k < sizeof(health) / sizeof(health[0]); k++) {
			if (!prom_entry_live(sn, sn->servers[i].entry.generation))
				continue;
			fputs("sluice_server_state", fp);
			prom_server_labels(
			    fp, &sn->servers[i], "state", stats_health_name(health[k]));
			fprintf(fp, " %d\n", sn->servers[i].health.state == health[k]);
		}
	prom_family(fp, "sluice_server_admin_state", "gauge",
	    "the operator's state of the server: 1 for the current one");
	for (i = 0; i < sn->nservers; i++)
		for (k = 0; k < sizeof(admin) / sizeof(admin[0]); k++) {
			if (!prom_entry_live(sn, sn->servers[i].entry.generation))
				continue;
			fputs("sluice_server_admin_state", fp);
			prom_server_labels(
			    fp, &sn->servers[i], "state", stats_admin_name(admin[k]));
			fprintf(fp, " %d\n", sn->servers[i].admin.state == admin[k]);
		}
	prom_family(fp, "sluice_server_resolved", "gauge",
	    "a slot of a resolved server name (resolve = true): 1 with the address it "
	    "has now, 0 (address \"\") while it has none");
	for (i = 0; i < sn->nservers; i++) {
		const struct stats_server_view *s = &sn->servers[i];
		char a[ADDR_STRLEN];

		if (!prom_entry_live(sn, s->entry.generation) || !stats_entry_resolved(&s->entry))
			continue;
		fputs("sluice_server_resolved", fp);
		prom_server_labels(fp, s, "address", stats_resolved_format(&s->resolved, a, sizeof(a)));
		fprintf(fp, " %d\n", s->resolved.state == STATS_ADDR_PRESENT);
	}
	prom_family(fp, "sluice_server_weight", "gauge",
	    "the server's weight in use: the operator's, else the config's");
	for (i = 0; i < sn->nservers; i++) {
		const struct stats_server_view *s = &sn->servers[i];

		if (!prom_entry_live(sn, s->entry.generation))
			continue;
		fputs("sluice_server_weight", fp);
		prom_server_labels(fp, s, NULL, NULL);
		fprintf(fp, " %" PRIu32 "\n",
		    s->admin.weight == STATS_WEIGHT_CONFIG ? s->entry.weight : s->admin.weight);
	}
	PROM_HEALTH(
	    fp, sn, "sluice_server_checks_total", "counter", "health checks done", checks, 1);
	PROM_HEALTH(fp, sn, "sluice_server_check_failures_total", "counter", "health checks failed",
	    checks_failed, 1);
	PROM_HEALTH(fp, sn, "sluice_server_check_successes_in_row", "gauge",
	    "consecutive successful health checks", successes, 1);
	PROM_HEALTH(fp, sn, "sluice_server_check_failures_in_row", "gauge",
	    "consecutive failed health checks", failures, 1);
	PROM_HEALTH(fp, sn, "sluice_server_last_check_timestamp_seconds", "gauge",
	    "when the last health check ended (0: never)", last_check_ms, 0.001);
	PROM_HEALTH(fp, sn, "sluice_server_last_change_timestamp_seconds", "gauge",
	    "when the health state last changed (0: never)", last_change_ms, 0.001);
}

void
prom_render(const struct stats_snapshot *sn, int master_running, FILE *fp)
{
	prom_node(sn, master_running, fp);
	prom_totals(sn, fp);
	prom_listeners(sn, fp);
	prom_servers(sn, fp);
}
