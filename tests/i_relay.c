/* SPDX-License-Identifier: BSD-2-Clause */
/* i_relay.c — integration test: many connections at once through sluiced
 * (2 workers) in front of two echo backends, every byte checked both ways;
 * then the daemon's counters (and sluicestat) must account for exactly what
 * was sent, and round robin must have used both servers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "tap.h"

#define NCONN 64

/* Connections echod on this port accepted since it started, not counting the
 * probe h_echod_start made. */
static int
echod_accepted(int port)
{
	char name[64], *log, *p;
	int n = 0;

	snprintf(name, sizeof(name), "echod-%d.log", port);
	log = h_read_file(h_path(name));
	if (!log)
		return -1;
	for (p = log; (p = strstr(p, "echod: accepted ")) != NULL; p++)
		n++;
	free(log);
	return n - 1;
}

/* Trailing white space off, in place. */
static char *
chomp(char *s)
{
	size_t n = s ? strlen(s) : 0;

	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' ' || s[n - 1] == '\r'))
		s[--n] = '\0';
	return s;
}

int
main(void)
{
	static const size_t fixed[] = {
	    0, 1, 100, 4095, 4096, 4097, 65536, 1 << 20, 8 << 20, 8 << 20};
	size_t sizes[NCONN];
	uint64_t total = 0, seed = 88172645463325252ULL;
	struct stats_counters c;
	int e1 = h_free_port(), e2 = h_free_port(), lport = h_free_port();
	int servers[2] = {e1, e2};
	int nfixed = (int)(sizeof(fixed) / sizeof(fixed[0])), good, a1, a2;
	char expect[32], *out = NULL;
	const char *conf;

	/* The rest are a mix, from a fixed seed so every run is the same. */
	for (int i = 0; i < NCONN; i++) {
		if (i < nfixed) {
			sizes[i] = fixed[i];
		} else {
			seed ^= seed << 13;
			seed ^= seed >> 7;
			seed ^= seed << 17;
			sizes[i] = (size_t)(seed % (300 * 1024));
			if (i % 16 == 0)
				sizes[i] = 1 << 20;
		}
		total += sizes[i];
	}

	h_echod_start(e1);
	h_echod_start(e2);
	conf = h_conf("sluice.conf", 2, lport, servers, 2, NULL);
	h_sluiced_start(conf, lport, 2);
	diag("%d connections, %llu bytes each way, through port %d to %d and %d", NCONN,
	    (unsigned long long)total, lport, e1, e2);

	good = h_echo_many(lport, NCONN, sizes, 0, 45000);
	is(good, NCONN, "every connection got back exactly what it sent, then EOF");

	ok(h_wait_stat("closed", NCONN, 10000), "sluiced closed all %d connections", NCONN);
	if (h_stats_total(&c) == -1)
		bail("cannot read the stats segment %s", h_statsfile());
	is(c.accepted, NCONN, "accepted counts every connection");
	is(c.closed, NCONN, "closed counts every connection");
	is(c.active, 0, "no connection is active afterwards");
	is(c.bytes_in, total, "bytes_in is the sum of what clients sent");
	is(c.bytes_out, total, "bytes_out is the sum of what came back");
	is(c.connect_failures, 0, "no upstream connect failed");
	is(c.timeouts, 0, "no timeouts");

	{
		char *argv[] = {
		    (char *)h_sluicestat(), "-s", (char *)h_statsfile(), "-1", "bytes_in", NULL};
		int st = h_run(argv, &out, 10000);

		is(st, 0, "sluicestat -1 bytes_in exits 0");
		snprintf(expect, sizeof(expect), "%llu", (unsigned long long)total);
		is_str(chomp(out), expect, "sluicestat -1 bytes_in prints the total");
		free(out);
	}

	a1 = echod_accepted(e1);
	a2 = echod_accepted(e2);
	diag("server %d got %d connections, server %d got %d", e1, a1, e2, a2);
	ok(a1 > 0 && a2 > 0, "both upstream servers received connections");
	is(a1 + a2, NCONN, "the servers together received one connection per client");
	/* Each worker alternates on its own, so each can tip the split by one. */
	ok(a1 - a2 <= 2 && a2 - a1 <= 2, "round robin splits them evenly (%d/%d)", a1, a2);

	done_testing();
	return tap_exit();
}
