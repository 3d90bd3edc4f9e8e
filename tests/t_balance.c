/* SPDX-License-Identifier: BSD-2-Clause */
/* t_balance.c — unit test for worker/balance.c (smooth weighted round robin,
 * weighted least connections, random with two choices, the consistent-hash
 * ring and the client address hash) and for the upstream settings conf.c reads for them (balance, weight,
 * max_connections, backup, retries, max_fails, fail_timeout, health). No
 * network; writes only inside its own mkdtemp directory. */
#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "balance.h"
#include "conf.h"
#include "tap.h"

#define MAXS 8

static struct conf_server servers[MAXS];
static uint32_t wts[MAXS]; /* their weights, as the picks take them */
static char addrs[MAXS][32];

/* n servers "10.0.0.i:80" with the given weights. */
static void
set_servers(unsigned n, const unsigned *weights)
{
	memset(servers, 0, sizeof(servers));
	for (unsigned i = 0; i < n; i++) {
		snprintf(addrs[i], sizeof(addrs[i]), "10.0.0.%u:80", i + 1);
		servers[i].address = addrs[i];
		servers[i].weight = weights[i];
		wts[i] = weights[i];
	}
}

static void
test_rr(void)
{
	static const unsigned w13[] = {1, 3}, w511[] = {5, 1, 1}, w111[] = {1, 1, 1};
	uint8_t all[MAXS] = {1, 1, 1, 1, 1, 1, 1, 1}, some[MAXS] = {1, 0, 1}, none[MAXS] = {0};
	int32_t cw[MAXS] = {0};
	unsigned count[MAXS] = {0};
	char seq[8] = "";
	int bunched = 0, prev = -1;

	set_servers(2, w13);
	for (int i = 0; i < 40; i++) {
		int s = balance_rr_pick(cw, wts, all, 2);

		count[s]++;
		if (s == prev && s == 0)
			bunched = 1;
		prev = s;
	}
	is(count[0], 10, "weights 1 and 3: the first server gets 10 of 40");
	is(count[1], 30, "weights 1 and 3: the second server gets 30 of 40");
	ok(!bunched, "the light server never goes twice in a row");

	/* nginx documents the sequence for weights 5, 1, 1: a a b a c a a. */
	set_servers(3, w511);
	memset(cw, 0, sizeof(cw));
	for (int i = 0; i < 7; i++)
		seq[i] = (char)('a' + balance_rr_pick(cw, wts, all, 3));
	is_str(seq, "aabacaa", "weights 5, 1, 1 interleave smoothly");

	set_servers(3, w111);
	memset(cw, 0, sizeof(cw));
	memset(count, 0, sizeof(count));
	for (int i = 0; i < 30; i++)
		count[balance_rr_pick(cw, wts, some, 3)]++;
	ok(count[0] == 15 && count[1] == 0 && count[2] == 15,
	    "an unusable server is skipped and the rest share evenly (%u/%u/%u)", count[0],
	    count[1], count[2]);
	is(balance_rr_pick(cw, wts, none, 3), -1, "no usable server: -1");
}

static void
test_leastconn(void)
{
	static const unsigned w111[] = {1, 1, 1}, w13[] = {1, 3};
	uint8_t all[MAXS] = {1, 1, 1, 1}, no1[MAXS] = {1, 0, 1}, none[MAXS] = {0};
	uint64_t load[MAXS] = {3, 1, 2};
	unsigned count[MAXS] = {0};

	set_servers(3, w111);
	is(balance_leastconn_pick(wts, all, load, 3, 0), 1, "the least loaded server wins");
	is(balance_leastconn_pick(wts, no1, load, 3, 0), 2,
	    "an unusable server is skipped even when least loaded");
	is(balance_leastconn_pick(wts, none, load, 3, 0), -1, "no usable server: -1");
	load[0] = load[1] = load[2] = 4;
	is(balance_leastconn_pick(wts, all, load, 3, 0), 0, "a tie goes to start (0)");
	is(balance_leastconn_pick(wts, all, load, 3, 2), 2, "a tie goes to start (2)");
	is(balance_leastconn_pick(wts, all, load, 3, 4), 1, "start wraps around");

	/* Filling as it picks, weights 1 and 3 end 1:3. */
	set_servers(2, w13);
	load[0] = load[1] = 0;
	for (unsigned i = 0; i < 40; i++) {
		int s = balance_leastconn_pick(wts, all, load, 2, i);

		load[s]++;
		count[s]++;
	}
	ok(count[0] == 10 && count[1] == 30, "weights 1 and 3 fill 10 and 30 of 40 (%u/%u)",
	    count[0], count[1]);
}

static void
test_random2(void)
{
	static const unsigned w111[] = {1, 1, 1, 1}, w13[] = {1, 3};
	uint8_t all[MAXS] = {1, 1, 1, 1}, only2[MAXS] = {0, 0, 1, 0}, no0[MAXS] = {0, 1, 1, 1},
		none[MAXS] = {0};
	uint64_t load[MAXS] = {0}, rng = 12345;
	unsigned count[MAXS] = {0};
	int wrong = 0, spread = 1, firsts = 0, maxed = 0;

	set_servers(4, w111);
	is(balance_random2_pick(wts, none, load, 4, &rng), -1, "random2: no usable server: -1");
	for (int i = 0; i < 50; i++)
		wrong += balance_random2_pick(wts, only2, load, 4, &rng) != 2;
	is(wrong, 0, "random2: a single usable server takes every pick");
	wrong = 0;
	for (int i = 0; i < 200; i++)
		wrong += balance_random2_pick(wts, no0, load, 4, &rng) == 0;
	is(wrong, 0, "random2: an unusable server is never picked");

	/* With loads that stay put, the most loaded of four never wins a
	 * pair, and the least loaded wins every pair it is in (3 of 6 pairs,
	 * drawn in either order): about half the picks. */
	load[0] = 9;
	load[1] = 5;
	load[2] = 5;
	load[3] = 1;
	wrong = 0;
	for (int i = 0; i < 4000; i++) {
		int s = balance_random2_pick(wts, all, load, 4, &rng);

		wrong += s == 0;
		firsts += s == 3;
	}
	is(wrong, 0, "random2: the most loaded server never wins a pair");
	ok(firsts > 1700 && firsts < 2300,
	    "random2: the least loaded server wins the pairs it is drawn in (%d of 4000)", firsts);

	/* Filling as it picks, equal servers stay in a narrow band (plain
	 * random drifts about sqrt(100) = 10 apart over as many picks). */
	memset(load, 0, sizeof(load));
	for (int i = 0; i < 400; i++) {
		int s = balance_random2_pick(wts, all, load, 4, &rng);
		uint64_t lo = UINT64_MAX, hi = 0;

		load[s]++;
		for (int k = 0; k < 4; k++) {
			lo = load[k] < lo ? load[k] : lo;
			hi = load[k] > hi ? load[k] : hi;
		}
		if (hi - lo > 5)
			spread = 0;
		maxed = (int)(hi - lo) > maxed ? (int)(hi - lo) : maxed;
	}
	ok(spread, "random2: four equal servers filled by 400 picks never drift more than 5 "
		   "apart (at most %d)", maxed);

	/* Weights 1 and 3, filling: shares end 1:3 like least connections. */
	set_servers(2, w13);
	memset(load, 0, sizeof(load));
	for (int i = 0; i < 400; i++) {
		int s = balance_random2_pick(wts, all, load, 2, &rng);

		load[s]++;
		count[s]++;
	}
	ok(count[0] >= 95 && count[0] <= 105 && count[1] >= 295 && count[1] <= 305,
	    "random2: weights 1 and 3 fill about 100 and 300 of 400 (%u/%u)", count[0], count[1]);

	/* Loads are compared per unit of weight. */
	{
		static const uint32_t w19[] = {1, 9};
		uint64_t eq[2] = {10, 80}; /* (10+1)/1 > (80+1)/9: server 1 always wins */

		memset(count, 0, sizeof(count));
		for (int i = 0; i < 200; i++)
			count[balance_random2_pick(w19, all, eq, 2, &rng)]++;
		is(count[1], 200, "random2: load is judged per weight ((80+1)/9 < (10+1)/1)");
	}
}

static uint32_t
rng(uint64_t *state)
{
	*state ^= *state << 13;
	*state ^= *state >> 7;
	*state ^= *state << 17;
	return (uint32_t)(*state >> 32);
}

#define NHASH 30000

static void
test_ring(void)
{
	static const unsigned w111[] = {1, 1, 1, 1}, w13[] = {1, 3};
	static uint8_t before[NHASH];
	uint8_t all[MAXS] = {1, 1, 1, 1}, no2[MAXS] = {1, 1, 0, 1}, none[MAXS] = {0};
	struct balance_ring ring, small;
	struct conf_server kept[3];
	unsigned count[MAXS] = {0};
	uint64_t seed = 0x9e3779b97f4a7c15ULL;
	int moved_wrong = 0, moved = 0, rebuilt_wrong = 0, even = 1;

	set_servers(4, w111);
	if (balance_ring_build(&ring, servers, NULL, 4) == -1)
		bail("balance_ring_build failed");
	is(ring.n, 4 * BALANCE_VNODES, "the ring has weight * %d points per server",
	    BALANCE_VNODES);
	for (int i = 0; i < NHASH; i++) {
		int s = balance_ring_pick(&ring, rng(&seed), all);

		before[i] = (uint8_t)s;
		count[s]++;
	}
	for (int i = 0; i < 4; i++)
		if (count[i] < NHASH / 4 * 8 / 10 || count[i] > NHASH / 4 * 12 / 10)
			even = 0;
	ok(even, "four equal servers share the hash space within 20%% (%u/%u/%u/%u)", count[0],
	    count[1], count[2], count[3]);

	/* Server 2 down: only its clients move, and never to server 2. */
	seed = 0x9e3779b97f4a7c15ULL;
	for (int i = 0; i < NHASH; i++) {
		int s = balance_ring_pick(&ring, rng(&seed), no2);

		if (s == 2 || (before[i] != 2 && s != before[i]))
			moved_wrong++;
		if (before[i] == 2)
			moved++;
	}
	is(moved_wrong, 0, "with a server down, clients of the others keep their server");
	ok(moved > 0, "clients of the down server moved (%d)", moved);
	is(balance_ring_pick(&ring, 12345, none), -1, "no usable server: -1");

	/* Server 2 removed from the list: the ring is keyed by address, so the
	 * others keep their clients though their indices shift. */
	kept[0] = servers[0];
	kept[1] = servers[1];
	kept[2] = servers[3];
	if (balance_ring_build(&small, kept, NULL, 3) == -1)
		bail("balance_ring_build failed");
	seed = 0x9e3779b97f4a7c15ULL;
	for (int i = 0; i < NHASH; i++) {
		int s = balance_ring_pick(&small, rng(&seed), all);
		int was = before[i] == 3 ? 2 : before[i];

		if (before[i] != 2 && s != was)
			rebuilt_wrong++;
	}
	is(rebuilt_wrong, 0, "with a server removed from the list, the others keep their clients");
	balance_ring_free(&small);
	balance_ring_free(&ring);
	ok(ring.v == NULL && ring.n == 0, "balance_ring_free empties the ring");

	set_servers(2, w13);
	if (balance_ring_build(&ring, servers, NULL, 2) == -1)
		bail("balance_ring_build failed");
	memset(count, 0, sizeof(count));
	for (int i = 0; i < NHASH; i++)
		count[balance_ring_pick(&ring, rng(&seed), all)]++;
	ok(count[1] > NHASH * 6 / 10 && count[1] < NHASH * 9 / 10,
	    "weights 1 and 3 take about a quarter and three quarters (%u/%u)", count[0], count[1]);
	balance_ring_free(&ring);

	/* An operator's weights replace the config's: 3 and 1 turn the
	 * shares round, and weight 0 leaves a server no point at all. */
	{
		static const uint32_t w31[] = {3, 1}, w01[] = {0, 1};

		if (balance_ring_build(&ring, servers, w31, 2) == -1)
			bail("balance_ring_build failed");
		memset(count, 0, sizeof(count));
		for (int i = 0; i < NHASH; i++)
			count[balance_ring_pick(&ring, rng(&seed), all)]++;
		ok(count[0] > NHASH * 6 / 10 && count[0] < NHASH * 9 / 10,
		    "run-time weights 3 and 1 take the larger share first (%u/%u)", count[0],
		    count[1]);
		balance_ring_free(&ring);
		if (balance_ring_build(&ring, servers, w01, 2) == -1)
			bail("balance_ring_build failed");
		memset(count, 0, sizeof(count));
		for (int i = 0; i < NHASH; i++)
			count[balance_ring_pick(&ring, rng(&seed), all)]++;
		ok(count[0] == 0 && count[1] == NHASH && ring.n == BALANCE_VNODES,
		    "weight 0 has no point on the ring (%u/%u)", count[0], count[1]);
		balance_ring_free(&ring);
	}
}

static void
test_hash_addr(void)
{
	struct sockaddr_in a, b, c;
	struct sockaddr_in6 m, v6;

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	inet_pton(AF_INET, "127.0.0.5", &a.sin_addr);
	a.sin_port = htons(40000);
	b = a;
	b.sin_port = htons(40001);
	c = a;
	inet_pton(AF_INET, "127.0.0.6", &c.sin_addr);
	memset(&m, 0, sizeof(m));
	m.sin6_family = AF_INET6;
	inet_pton(AF_INET6, "::ffff:127.0.0.5", &m.sin6_addr);
	memset(&v6, 0, sizeof(v6));
	v6.sin6_family = AF_INET6;
	inet_pton(AF_INET6, "::1", &v6.sin6_addr);

	is(balance_hash_addr((struct sockaddr *)&a), balance_hash_addr((struct sockaddr *)&b),
	    "the client port does not change the hash");
	ok(balance_hash_addr((struct sockaddr *)&a) != balance_hash_addr((struct sockaddr *)&c),
	    "neighbouring addresses hash differently");
	is(balance_hash_addr((struct sockaddr *)&a), balance_hash_addr((struct sockaddr *)&m),
	    "an IPv4-mapped IPv6 address hashes as the IPv4 address");
	ok(balance_hash_addr((struct sockaddr *)&v6) != balance_hash_addr((struct sockaddr *)&a),
	    "IPv6 addresses hash");
}

/* --- the settings, through conf_load ------------------------------------ */

static char tmpdir[PATH_MAX];
static char conf_path[PATH_MAX + 32];

#define LS "listeners = ({ listen = \"127.0.0.1:8080\"; upstream = \"app\"; });\n"

static struct conf *
load(const char *text, char *err, size_t errlen)
{
	FILE *f = fopen(conf_path, "w");

	if (f == NULL || fputs(text, f) == EOF || fclose(f) == EOF)
		bail("cannot write %s", conf_path);
	err[0] = '\0';
	return conf_load(conf_path, err, errlen);
}

static void
bad(const char *text, const char *want, const char *what)
{
	char err[1024], full[PATH_MAX + 1200];
	struct conf *c = load(text, err, sizeof(err));

	snprintf(full, sizeof(full), "%s%s", conf_path, want);
	if (!ok(c == NULL, "rejected: %s", what))
		conf_free(c);
	is_str(err, full, "  message for: %s", what);
}

static void
test_conf(void)
{
	char err[1024];
	struct conf *c;
	const struct conf_upstream *u;

	c = load("upstreams = ({ name = \"app\"; servers = (\"127.0.0.1:9000\"); });\n" LS, err,
	    sizeof(err));
	if (!ok(c != NULL, "a minimal upstream loads"))
		bail("%s", err);
	u = &c->upstreams[0];
	ok(u->balance == CONF_BALANCE_ROUNDROBIN && u->retries == 1 && u->max_fails == 3 &&
	        u->fail_timeout_ms == 10000 && !u->health.enabled,
	    "defaults: roundrobin, retries 1, max_fails 3, fail_timeout 10s, no active checks");
	ok(u->servers[0].weight == 1 && u->servers[0].max_connections == 0 && !u->servers[0].backup,
	    "server defaults: weight 1, no max_connections, not a backup");
	conf_free(c);

	c = load(
	    "upstreams = (\n"
	    " { name = \"app\"; balance = \"leastconn\"; retries = 3; max_fails = 0;\n"
	    "   fail_timeout = \"30s\";\n"
	    "   servers = ( { address = \"127.0.0.1:9000\"; weight = 3; max_connections = 100; },\n"
	    "               { address = \"[::1]:9001\"; backup = true; } );\n"
	    "   health = { interval = \"500ms\"; timeout = \"200ms\"; rise = 1; fall = 5;\n"
	    "              send = \"PING\\r\\n\"; expect = \"+PONG\"; }; },\n"
	    " { name = \"b\"; balance = \"source\"; servers = ( \"127.0.0.1:9002\" );\n"
	    "   health = { }; },\n"
	    " { name = \"r\"; balance = \"random\"; servers = ( \"127.0.0.1:9003\" ); } );\n" LS,
	    err, sizeof(err));
	if (!ok(c != NULL, "every upstream setting loads"))
		bail("%s", err);
	u = &c->upstreams[0];
	is(u->balance, CONF_BALANCE_LEASTCONN, "balance leastconn");
	is(u->retries, 3, "retries");
	is(u->max_fails, 0, "max_fails 0 turns passive marking off");
	is(u->fail_timeout_ms, 30000, "fail_timeout");
	is(u->servers[0].weight, 3, "weight");
	is(u->servers[0].max_connections, 100, "max_connections");
	ok(!u->servers[0].backup && u->servers[1].backup, "backup");
	ok(u->health.enabled && u->health.interval_ms == 500 && u->health.timeout_ms == 200 &&
	        u->health.rise == 1 && u->health.fall == 5,
	    "health interval, timeout, rise, fall");
	is_str(u->health.send, "PING\r\n", "health.send with escapes");
	is_str(u->health.expect, "+PONG", "health.expect");
	u = &c->upstreams[1];
	is(u->balance, CONF_BALANCE_SOURCE, "balance source");
	ok(u->health.enabled && u->health.interval_ms == 2000 && u->health.timeout_ms == 1000 &&
	        u->health.rise == 2 && u->health.fall == 3 && u->health.send == NULL &&
	        u->health.expect == NULL,
	    "an empty health group turns checks on with defaults 2s, 1s, rise 2, fall 3");
	is(c->upstreams[2].balance, CONF_BALANCE_RANDOM, "balance random");
	conf_free(c);
	bad("upstreams = ({ name = \"app\"; balance = \"random2\";\n"
	    "  servers = (\"127.0.0.1:9000\"); });\n" LS,
	    ":1: upstreams[0].balance: unknown balance \"random2\" (use roundrobin, leastconn, "
	    "source or random)",
	    "unknown balance");

	bad("upstreams = ({ name = \"app\"; retries = 33; servers = (\"127.0.0.1:9000\"); });\n" LS,
	    ":1: upstreams[0].retries: must be between 0 and 32", "retries over 32");
	bad("upstreams = ({ name = \"app\"; servers = (\n"
	    "  { address = \"127.0.0.1:9000\"; backup = 1; } ); });\n" LS,
	    ":2: upstreams[0].servers[0].backup: expected true or false", "backup not a boolean");
	bad("upstreams = ({ name = \"app\"; servers = (\n"
	    "  { address = \"127.0.0.1:9000\"; max_connections = -1; } ); });\n" LS,
	    ":2: upstreams[0].servers[0].max_connections: must be between 0 and 10000000",
	    "negative max_connections");
	bad("upstreams = ({ name = \"app\"; servers = (\"127.0.0.1:9000\");\n"
	    "  fail_timeout = 0; });\n" LS,
	    ":2: upstreams[0].fail_timeout: must be greater than 0", "fail_timeout 0");
	bad("upstreams = ({ name = \"app\"; servers = (\"127.0.0.1:9000\");\n"
	    "  health = { interval = \"1s\";\n  timeout = \"2s\"; }; });\n" LS,
	    ":3: upstreams[0].health.timeout: must not be longer than health.interval (1000 ms)",
	    "check timeout longer than the interval");
	bad("upstreams = ({ name = \"app\"; servers = (\"127.0.0.1:9000\");\n"
	    "  health = { port = 80; }; });\n" LS,
	    ":2: upstreams[0].health.port: unknown setting \"port\" (expected interval, timeout, "
	    "rise, fall, send, expect or send_proxy)",
	    "unknown health setting");
	bad("upstreams = ({ name = \"app\"; servers = (\"127.0.0.1:9000\");\n"
	    "  health = { rise = 0; }; });\n" LS,
	    ":2: upstreams[0].health.rise: must be between 1 and 1000", "rise 0");
	bad("upstreams = ({ name = \"app\"; servers = (\"127.0.0.1:9000\");\n"
	    "  health = { expect = \"\"; }; });\n" LS,
	    ":2: upstreams[0].health.expect: must not be empty", "empty expect");
	bad("upstreams = ({ name = \"app\"; servers = (\"127.0.0.1:9000\");\n"
	    "  health = true; });\n" LS,
	    ":2: upstreams[0].health: expected a group { ... }", "health not a group");
}

int
main(void)
{
	const char *tmp = getenv("TMPDIR");

	test_rr();
	test_leastconn();
	test_random2();
	test_ring();
	test_hash_addr();

	snprintf(tmpdir, sizeof(tmpdir), "%s/t_balance.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (mkdtemp(tmpdir) == NULL)
		bail("mkdtemp %s failed", tmpdir);
	snprintf(conf_path, sizeof(conf_path), "%s/sluice.conf", tmpdir);
	test_conf();
	unlink(conf_path);
	rmdir(tmpdir);

	done_testing();
	return tap_exit();
}
