/* SPDX-License-Identifier: BSD-2-Clause */
/* t_healthz.c — unit test of /healthz's verdict (admin/healthz.c) and of the
 * Prometheus renderer (common/prom.c) on a real segment made with
 * stats_create, where the test plays the master and a worker: node state,
 * running workers, health, operator states and weights, removed entries,
 * and the connect histogram. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "healthz.h"
#include "prom.h"
#include "stats.h"
#include "tap.h"

static char dir[] = "/tmp/t_healthz.XXXXXX";
static char path[64];
static struct stats_seg seg;

static socklen_t
sa(struct sockaddr_storage *ss, int port)
{
	struct sockaddr_in *in = (struct sockaddr_in *)ss;

	memset(ss, 0, sizeof(*ss));
	in->sin_family = AF_INET;
	in->sin_port = htons((uint16_t)port);
	in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return sizeof(*in);
}

/* The verdict now, with its line in why. */
static int
judge(char *why, size_t len)
{
	struct stats_snapshot *sn = stats_snapshot_create(&seg);
	int v;

	if (sn == NULL)
		bail("stats_snapshot_create: %s", strerror(errno));
	v = healthz_judge(sn, why, len);
	stats_snapshot_destroy(sn);
	return v;
}

/* prom_render's text now (malloc'ed). */
static char *
render(void)
{
	struct stats_snapshot *sn = stats_snapshot_create(&seg);
	char *text = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&text, &len);

	if (sn == NULL || fp == NULL)
		bail("snapshot or memstream: %s", strerror(errno));
	prom_render(sn, 1, fp);
	fclose(fp);
	stats_snapshot_destroy(sn);
	return text;
}

static void
set_generation(uint64_t g)
{
	__atomic_store_n(&seg.hdr->generation, g, __ATOMIC_RELEASE);
}

static void
slot_run(unsigned slot, uint32_t generation, uint32_t state)
{
	seg.slots[slot].generation = generation;
	seg.slots[slot].pid = 4000 + (int)slot;
	__atomic_store_n(&seg.slots[slot].state, state, __ATOMIC_RELEASE);
}

static void
health(unsigned row, uint32_t state)
{
	struct stats_health h;

	memset(&h, 0, sizeof(h));
	h.state = state;
	stats_health_publish(&seg, row, &h);
}

int
main(void)
{
	struct sockaddr_storage ss;
	char err[512], why[256];
	unsigned l0, s0, s1, s2, l1;
	socklen_t len;
	char *text;

	if (mkdtemp(dir) == NULL)
		bail("mkdtemp: %s", strerror(errno));
	snprintf(path, sizeof(path), "%s/stats", dir);
	if (stats_create(&seg, path, 8, err, sizeof(err)) == -1)
		bail("stats_create: %s", err);

	/* Generation 1: listener :8080 -> app (two servers), :8081 -> other. */
	len = sa(&ss, 8080);
	l0 = stats_listener_row(&seg, (struct sockaddr *)&ss, len, "127.0.0.1:8080", "app", 1);
	len = sa(&ss, 9000);
	s0 = stats_server_row(&seg, "app", (struct sockaddr *)&ss, len, "127.0.0.1:9000", 1, 0, 1);
	len = sa(&ss, 9001);
	s1 = stats_server_row(&seg, "app", (struct sockaddr *)&ss, len, "127.0.0.1:9001", 2, 0, 1);
	len = sa(&ss, 8081);
	l1 = stats_listener_row(&seg, (struct sockaddr *)&ss, len, "127.0.0.1:8081", "other", 1);
	len = sa(&ss, 9002);
	s2 =
	    stats_server_row(&seg, "other", (struct sockaddr *)&ss, len, "127.0.0.1:9002", 1, 0, 1);
	if (l0 == STATS_NO_ROW || l1 == STATS_NO_ROW || s0 == STATS_NO_ROW || s1 == STATS_NO_ROW ||
	    s2 == STATS_NO_ROW)
		bail("no rows");

	is(judge(why, sizeof(why)), 0, "no worker at all: unhealthy");
	is_str(why, "no worker running", "  and says so");
	slot_run(0, 1, STATS_SLOT_STARTING);
	is(judge(why, sizeof(why)), 0, "a starting worker is not a running one");
	slot_run(0, 1, STATS_SLOT_RUNNING);
	ok(judge(why, sizeof(why)) == 1 && strncmp(why, "ok", 2) == 0,
	    "a running worker, servers unchecked and ready: healthy (%s)", why);

	seg.hdr->node_state = STATS_NODE_DRAINING;
	is(judge(why, sizeof(why)), 0, "a draining node is unhealthy");
	is_str(why, "draining", "  and says draining");
	seg.hdr->node_state = STATS_NODE_DRAINED;
	is(judge(why, sizeof(why)), 0, "a drained node is unhealthy");
	is_str(why, "drained", "  and says drained");
	seg.hdr->node_state = STATS_NODE_SERVING;

	health(s0, STATS_HEALTH_DOWN);
	is(judge(why, sizeof(why)), 1, "one of two servers down: still healthy");
	health(s1, STATS_HEALTH_DOWN);
	is(judge(why, sizeof(why)), 0, "every server of a listener's upstream down: unhealthy");
	is_str(why, "listener 127.0.0.1:8080: no usable server in upstream app",
	    "  naming the listener and the upstream");
	health(s1, STATS_HEALTH_UP);
	is(judge(why, sizeof(why)), 1, "one back up: healthy");

	stats_admin_set(&seg, s1, STATS_ADMIN_DRAIN, STATS_WEIGHT_CONFIG);
	is(judge(why, sizeof(why)), 0, "the only up server set to drain: unhealthy");
	stats_admin_set(&seg, s1, STATS_ADMIN_MAINT, STATS_WEIGHT_CONFIG);
	is(judge(why, sizeof(why)), 0, "... or to maint: unhealthy");
	stats_admin_set(&seg, s1, STATS_ADMIN_READY, 0);
	is(judge(why, sizeof(why)), 0, "ready with weight 0: unhealthy");
	stats_admin_set(&seg, s1, STATS_ADMIN_READY, 3);
	is(judge(why, sizeof(why)), 1, "ready with weight 3: healthy");

	stats_admin_set(&seg, s2, STATS_ADMIN_DRAIN, STATS_WEIGHT_CONFIG);
	is(judge(why, sizeof(why)), 0, "the second listener's only server drained: unhealthy");
	is_str(why, "listener 127.0.0.1:8081: no usable server in upstream other",
	    "  naming the second listener");

	/* Generation 2 drops listener :8081 and server :9001. */
	len = sa(&ss, 8080);
	stats_listener_row(&seg, (struct sockaddr *)&ss, len, "127.0.0.1:8080", "app", 2);
	len = sa(&ss, 9000);
	stats_server_row(&seg, "app", (struct sockaddr *)&ss, len, "127.0.0.1:9000", 1, 0, 2);
	set_generation(2);
	is(judge(why, sizeof(why)), 0, "generation 2 has no running worker yet: unhealthy");
	is_str(why, "no worker running", "  old generation's workers do not count");
	slot_run(1, 2, STATS_SLOT_RUNNING);
	is(judge(why, sizeof(why)), 0, "a removed server that is up does not serve the listener");
	health(s0, STATS_HEALTH_UNKNOWN);
	ok(judge(why, sizeof(why)) == 1,
	    "the removed listener is not judged; the kept server serves (%s)", why);

	/* The renderer: removed entries gone, states and the histogram. */
	stats_admin_set(&seg, s0, STATS_ADMIN_DRAIN, 7);
	{
		struct stats_server_counters *c = stats_slot_server(&seg, 1, s0);

		stats_connect_observe(c, 0.0005);
		stats_connect_observe(c, 0.0005);
		stats_connect_observe(c, 0.003);
		stats_connect_observe(c, 2.0);
		stats_connect_observe(c, 60.0);
	}
	text = render();
	ok(strstr(text, "sluice_build_info{version=\"" PACKAGE_VERSION "\"} 1\n") != NULL,
	    "build info with the version");
	ok(strstr(text, "server=\"127.0.0.1:9001\"") == NULL &&
	        strstr(text, "listener=\"127.0.0.1:8081\"") == NULL &&
	        strstr(text, "server=\"127.0.0.1:9002\"") == NULL,
	    "removed servers and listeners are not exported");
	ok(strstr(text, "sluice_server_admin_state{upstream=\"app\",server=\"127.0.0.1:9000\","
	                "state=\"drain\"} 1\n") != NULL &&
	        strstr(text, "sluice_server_admin_state{upstream=\"app\",server=\"127.0.0.1:9000\","
	                     "state=\"ready\"} 0\n") != NULL,
	    "admin state as a state set");
	ok(strstr(text, "sluice_server_weight{upstream=\"app\",server=\"127.0.0.1:9000\"} 7\n") !=
	        NULL,
	    "the operator's weight is the weight in use");
	ok(strstr(text, "# TYPE sluice_server_connect_duration_seconds histogram\n") != NULL &&
	        strstr(
	            text, "_bucket{upstream=\"app\",server=\"127.0.0.1:9000\",le=\"0.001\"} 2\n") &&
	        strstr(
	            text, "_bucket{upstream=\"app\",server=\"127.0.0.1:9000\",le=\"0.005\"} 3\n") &&
	        strstr(text, "_bucket{upstream=\"app\",server=\"127.0.0.1:9000\",le=\"1\"} 3\n") &&
	        strstr(text, "_bucket{upstream=\"app\",server=\"127.0.0.1:9000\",le=\"5\"} 4\n") &&
	        strstr(
	            text, "_bucket{upstream=\"app\",server=\"127.0.0.1:9000\",le=\"+Inf\"} 5\n") &&
	        strstr(text, "seconds_count{upstream=\"app\",server=\"127.0.0.1:9000\"} 5\n") &&
	        strstr(text, "seconds_sum{upstream=\"app\",server=\"127.0.0.1:9000\"} 62.004000\n"),
	    "connect histogram: cumulative buckets, +Inf, count and sum in seconds");
	ok(strstr(text, "sluice_server_connected_total") == NULL &&
	        strstr(text, "connect_le_") == NULL,
	    "the histogram's fields are not exported as counters of their own");
	seg.hdr->node_state = STATS_NODE_DRAINING;
	seg.hdr->reloads_ok = 3;
	seg.hdr->reloads_failed = 1;
	seg.hdr->last_reload_ms = 1500;
	seg.hdr->last_reload_ok = 0;
	free(text);
	text = render();
	ok(strstr(text, "sluice_node_state{state=\"draining\"} 1\n") != NULL &&
	        strstr(text, "sluice_node_state{state=\"serving\"} 0\n") != NULL,
	    "node state as a state set");
	ok(strstr(text, "sluice_reloads_total{result=\"ok\"} 3\n") != NULL &&
	        strstr(text, "sluice_reloads_total{result=\"failed\"} 1\n") != NULL &&
	        strstr(text, "sluice_last_reload_timestamp_seconds 1.500\n") != NULL &&
	        strstr(text, "sluice_last_reload_success 0\n") != NULL,
	    "reload outcomes, time and success");
	free(text);

	stats_detach(&seg);
	unlink(path);
	ok(rmdir(dir) == 0, "temporary directory removed");
	done_testing();
	return tap_exit();
}
