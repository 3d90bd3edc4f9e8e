/* SPDX-License-Identifier: BSD-2-Clause */
/* i_rows.c — integration test: the statistics directory bounds the listeners
 * and servers in use at once, not in the master's life. A config with 40
 * listeners and 200 servers is replaced by one with 40 and 200 others: while
 * the old generation still runs the directory is short (logged, counted in the
 * totals), and once it has gone the next reload recycles its rows, so every
 * listener and server of the running config has a row again. The old rows'
 * totals move to the recycled rows: sums never go backwards. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "tap.h"
#include "uphelp.h"

#define WAIT_MS 20000
#define NL 40
#define NS 200

static int backend, lports[2][NL];
static char conf[512];

/* Config `which` (0 or 1): its own listeners and filler servers. */
static void
write_conf(int which)
{
	char *text = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&text, &len);

	if (fp == NULL)
		bail("open_memstream");
	fprintf(fp, "workers = 1;\npid_file = \"%s\";\nstats_file = \"%s\";\n"
	            "log = { target = \"stderr\"; level = \"info\"; };\n"
	            "timeouts = { drain = \"20s\"; };\n"
	            "upstreams = ( { name = \"live\"; servers = ( \"127.0.0.1:%d\" ); },\n"
	            "  { name = \"filler\"; servers = (",
	    h_pidfile(), h_statsfile(), backend);
	for (int i = 0; i < NS; i++)
		fprintf(fp, "%s\"127.0.%d.%d:%d\"", i ? ", " : " ", 10 + which, 1 + i / 100,
		    2000 + i);
	fprintf(fp, " ); } );\nlisteners = (");
	for (int i = 0; i < NL; i++)
		fprintf(fp, "%s{ listen = \"127.0.0.1:%d\"; upstream = \"%s\"; }", i ? ",\n  " : " ",
		    lports[which][i], i == NL - 1 ? "filler" : "live");
	fprintf(fp, " );\n");
	fclose(fp);
	h_write_file(conf, "%s", text);
	free(text);
}

/* Reload and wait for generation gen to be the running one. */
static int
reload_to(pid_t master, uint64_t gen)
{
	kill(master, SIGHUP);
	for (uint64_t t0 = h_now_ms(); h_now_ms() - t0 < WAIT_MS; h_nap(50)) {
		pid_t p[2];

		if (h_stats_generation() == gen && h_stats_running(p, 2, (uint32_t)gen) == 1)
			return 1;
	}
	return 0;
}

/* Rows whose entry belongs to generation gen: listeners and servers. */
static void
rows_of(uint64_t gen, unsigned *nl, unsigned *ns, struct stats_snapshot **out)
{
	struct stats_seg seg;
	struct stats_snapshot *sn;
	char err[256];

	*nl = *ns = 0;
	*out = NULL;
	if (stats_attach(&seg, h_statsfile(), err, sizeof(err)) == -1)
		return;
	if ((sn = stats_snapshot_create(&seg)) != NULL) {
		for (unsigned i = 0; i < sn->nlisteners; i++)
			*nl += sn->listeners[i].entry.generation == gen;
		for (unsigned i = 0; i < sn->nservers; i++)
			*ns += sn->servers[i].entry.generation == gen;
	}
	*out = sn;
	stats_detach(&seg);
}

static uint64_t
listener_bytes(const struct stats_snapshot *sn)
{
	uint64_t sum = sn->listeners_recycled.bytes_in;

	for (unsigned i = 0; i < sn->nlisteners; i++)
		sum += sn->listeners[i].c.bytes_in;
	return sum;
}

int
main(void)
{
	struct stats_snapshot *sn;
	unsigned nl, ns;
	uint64_t before;
	pid_t master;
	int fd, warned;

	backend = h_free_port();
	h_echod_start(backend);
	for (int w = 0; w < 2; w++)
		for (int i = 0; i < NL; i++)
			lports[w][i] = h_free_port();
	snprintf(conf, sizeof(conf), "%s", h_path("sluice.conf"));
	write_conf(0);
	master = h_sluiced_start(conf, lports[0][0], 1);

	fd = h_connect(lports[0][0], 5000);
	ok(fd != -1 && up_echo(fd, 5000) == 0, "a client through the first config");
	if (fd != -1)
		close(fd);
	rows_of(1, &nl, &ns, &sn);
	ok(nl == NL && ns == NS + 1, "generation 1: every listener and server has a row (%u, %u)",
	    nl, ns);
	before = sn ? listener_bytes(sn) : 0;
	ok(before >= 1, "its listener counted the byte");
	stats_snapshot_destroy(sn);

	/* The second config while the first generation still runs. */
	write_conf(1);
	fd = h_connect(lports[0][0], 5000);
	ok(fd != -1 && up_echo(fd, 5000) == 0, "a client holds the first generation open");
	ok(reload_to(master, 2), "reloaded to generation 2");
	warned = h_count_lines(h_path("sluiced.log"), "no row left");
	ok(warned > 0, "the directory is short while generation 1 lives (%d warnings)", warned);
	if (fd != -1)
		close(fd);
	ok(h_wait_file_contains(h_path("sluiced.log"), "generation 1) exited", WAIT_MS),
	    "generation 1 has drained and left");

	/* The same config again: generation 1's rows are nobody's now. */
	ok(reload_to(master, 3), "reloaded to generation 3");
	ok(h_count_lines(h_path("sluiced.log"), "no row left") == warned,
	    "no listener or server went without a row this time");
	rows_of(3, &nl, &ns, &sn);
	ok(nl == NL && ns == NS + 1, "generation 3: every listener and server has a row (%u, %u)",
	    nl, ns);
	ok(sn != NULL && listener_bytes(sn) >= before,
	    "the listeners' sums did not go backwards (%llu >= %llu)",
	    sn ? (unsigned long long)listener_bytes(sn) : 0ULL, (unsigned long long)before);
	stats_snapshot_destroy(sn);
	fd = h_connect(lports[1][0], 5000);
	ok(fd != -1 && up_echo(fd, 5000) == 0, "and the new listeners serve");
	if (fd != -1)
		close(fd);
	{
		char *argv[] = { (char *)h_sluicestat(), "-c", conf, NULL };
		char *out = NULL;

		ok(h_run(argv, &out, 10000) == 0 && out != NULL, "sluicestat reads the segment");
		free(out);
	}
	kill(master, SIGTERM);
	ok(h_wait_exit(master, WAIT_MS, NULL) == 0, "sluiced stops");
	done_testing();
}
