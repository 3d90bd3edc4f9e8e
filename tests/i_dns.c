/* SPDX-License-Identifier: BSD-2-Clause */
/* i_dns.c — integration test of live DNS (issue #12) through the real daemon
 * (2 workers and the checker): a server name with resolve = true, answered
 * by tests/fakedns.py on 127.0.0.1 from a zone file this test rewrites, with
 * echo backends on 127.0.0.2, .3 and .4 at one port. Two addresses take
 * traffic; a third joins without a reload; one that vanishes takes no new
 * client while a session already on it goes on byte for byte (drain);
 * SERVFAIL, an empty answer, a truncated one and silence keep the last good
 * set, each logged once; TTLs are clamped to min_ttl..max_ttl; sluicestat
 * (table, JSON, Prometheus, the admin endpoint) shows the addresses; a
 * reload keeps the set without asking anew; every query the nameserver saw
 * came from the checker (workers never resolve); init_addr "libc" serves
 * before the first answer; health checks probe each slot's address; and
 * sluiced -t refuses bad dns settings with FILE:LINE. Every wait polls
 * against a deadline; processes are killed by pid. */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "harness.h"
#include "tap.h"
#include "uphelp.h"

#define WAIT_MS 20000
#define WORKERS 2
#define NB 3 /* backends: 127.0.0.2, .3, .4 */

static int bport, lport, dport, aport;
static char zone[512], dnslog[512];
static pid_t master;

/* --- the fake nameserver --------------------------------------------------- */

static pid_t
fakedns_start(void)
{
	const char *top = getenv("TOP_SRCDIR");
	char script[1024], portfile[512], *argv[6];
	uint64_t deadline = h_now_ms() + WAIT_MS;
	pid_t pid;

	snprintf(script, sizeof(script), "%s/tests/fakedns.py", top ? top : ".");
	snprintf(portfile, sizeof(portfile), "%s", h_path("fakedns.port"));
	snprintf(zone, sizeof(zone), "%s", h_path("zone"));
	snprintf(dnslog, sizeof(dnslog), "%s", h_path("fakedns.log"));
	argv[0] = access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
	argv[1] = script;
	argv[2] = portfile;
	argv[3] = zone;
	argv[4] = dnslog;
	argv[5] = NULL;
	pid = h_spawn(argv, h_path("fakedns.err"));
	while (h_now_ms() < deadline) {
		char *text = h_read_file(portfile);

		if (text != NULL) {
			dport = atoi(text);
			free(text);
			if (dport > 0)
				return pid;
		}
		h_nap(20);
	}
	bail("fakedns did not start (see %s)", h_path("fakedns.err"));
}

/* The zone: mode, then A records of the backends in mask (bit i: 127.0.0.(2+i)). */
static void
zone_set(const char *mode, unsigned mask, unsigned ttl)
{
	char body[1024];
	size_t n = (size_t)snprintf(body, sizeof(body), "mode %s\n", mode);

	for (int i = 0; i < NB; i++)
		if (mask & (1u << i))
			n += (size_t)snprintf(body + n, sizeof(body) - n, "app.test A 127.0.0.%d %u\n",
			    2 + i, ttl);
	h_write_file(zone, "%s", body);
}

/* Questions the nameserver logged with mode. */
static int
queries(const char *mode)
{
	char needle[64];

	snprintf(needle, sizeof(needle), "mode %s", mode);
	return h_count_lines(dnslog, needle);
}

/* Wait until at least n more questions in mode than `from`. */
static int
wait_queries(const char *mode, int from, int n)
{
	uint64_t deadline = h_now_ms() + WAIT_MS;

	while (h_now_ms() < deadline) {
		if (queries(mode) >= from + n)
			return 1;
		h_nap(20);
	}
	diag("fakedns saw %d questions in mode %s, wanted %d", queries(mode), mode, from + n);
	return 0;
}

/* --- backends ---------------------------------------------------------------- */

static pid_t
backend_start(int i)
{
	const char *echod = getenv("ECHOD");
	char addr[64], log[64];
	uint64_t deadline = h_now_ms() + WAIT_MS;
	pid_t pid;

	snprintf(addr, sizeof(addr), "127.0.0.%d:%d", 2 + i, bport);
	snprintf(log, sizeof(log), "echod-b%d.log", i);
	{
		char *argv[] = { (char *)echod, "-v", "-l", addr, NULL };

		pid = h_spawn(argv, h_path(log));
	}
	while (h_now_ms() < deadline) {
		if (h_file_contains(h_path(log), "echod: listening"))
			return pid;
		h_nap(20);
	}
	bail("echod on %s did not start", addr);
}

static int
accepts(int i)
{
	char log[64];

	snprintf(log, sizeof(log), "echod-b%d.log", i);
	return h_count_lines(h_path(log), "echod: accepted");
}

/* One client through sluiced: which backend took it (-1: not served or not
 * told apart). Its connection stays open in *keep when keep is not NULL. */
static int
client(int *keep)
{
	int before[NB], fd, got = -1;

	for (int i = 0; i < NB; i++)
		before[i] = accepts(i);
	fd = h_connect_from(NULL, lport, 5000);
	if (fd == -1)
		return -1;
	if (up_echo(fd, 5000) == -1) {
		close(fd);
		return -1;
	}
	for (int i = 0; i < NB; i++)
		if (accepts(i) != before[i])
			got = got == -1 ? i : -2;
	if (keep != NULL && got >= 0)
		*keep = fd;
	else
		close(fd);
	return got < 0 ? -1 : got;
}

/* n clients; per[i] counts those backend i took. Returns how many were served. */
static int
clients(int n, int *per)
{
	int served = 0;

	memset(per, 0, NB * sizeof(*per));
	for (int k = 0; k < n; k++) {
		int b = client(NULL);

		if (b >= 0) {
			per[b]++;
			served++;
		}
	}
	return served;
}

/* --- the segment ------------------------------------------------------------- */

/* The backends the name's slots point at now (bit i: 127.0.0.(2+i)), -1
 * when the segment cannot be read; *ttl_s: the TTL of a present slot. */
static int
slots_mask(unsigned *ttl_s, unsigned *absent)
{
	struct stats_seg seg;
	struct stats_snapshot *sn;
	char err[256], prefix[64];
	int mask = 0;

	if (stats_attach(&seg, h_statsfile(), err, sizeof(err)) == -1)
		return -1;
	sn = stats_snapshot_create(&seg);
	if (sn == NULL) {
		stats_detach(&seg);
		return -1;
	}
	snprintf(prefix, sizeof(prefix), "app.test:%d#", bport);
	if (absent != NULL)
		*absent = 0;
	for (unsigned r = 0; r < sn->nservers; r++) {
		const struct stats_server_view *v = &sn->servers[r];

		if (strncmp(v->entry.address, prefix, strlen(prefix)) != 0 ||
		    v->entry.generation != sn->generation)
			continue;
		if (v->resolved.state == STATS_ADDR_ABSENT && absent != NULL)
			(*absent)++;
		if (v->resolved.state != STATS_ADDR_PRESENT || v->resolved.family != AF_INET ||
		    v->resolved.port != htons((uint16_t)bport))
			continue;
		if (v->resolved.addr[0] == 127 && v->resolved.addr[3] >= 2 &&
		    v->resolved.addr[3] < 2 + NB)
			mask |= 1 << (v->resolved.addr[3] - 2);
		else
			mask |= 1 << 8; /* something else: never expected */
		if (ttl_s != NULL)
			*ttl_s = v->resolved.ttl_s;
	}
	stats_snapshot_destroy(sn);
	stats_detach(&seg);
	return mask;
}

static int
wait_mask(int want)
{
	uint64_t deadline = h_now_ms() + WAIT_MS;
	int m = -1;

	while (h_now_ms() < deadline) {
		if ((m = slots_mask(NULL, NULL)) == want)
			return 1;
		h_nap(20);
	}
	diag("slots point at mask %#x, wanted %#x", m, want);
	return 0;
}

static int
wait_ttl(unsigned want)
{
	uint64_t deadline = h_now_ms() + WAIT_MS;
	unsigned ttl = 0;

	while (h_now_ms() < deadline) {
		if (slots_mask(&ttl, NULL) > 0 && ttl == want)
			return 1;
		h_nap(20);
	}
	diag("slots have TTL %u, wanted %u", ttl, want);
	return 0;
}

static int
log_count(const char *needle)
{
	return h_count_lines(h_path("sluiced.log"), needle);
}

static int
log_wait(const char *needle)
{
	return h_wait_file_contains(h_path("sluiced.log"), needle, WAIT_MS);
}

/* --- parts ---------------------------------------------------------------- */

static const char *
write_conf(const char *name, const char *dns_extra)
{
	return up_conf(name, WORKERS,
	    "dns = { nameservers = ( \"127.0.0.1:%d\" ); min_ttl = 1; max_ttl = 2; "
	    "retry = \"200ms\"; timeout = \"1s\"; init_addr = \"none\"; %s };\n"
	    "upstreams = ( { name = \"app\"; retries = 0; max_fails = 0;\n"
	    "  servers = ( { address = \"app.test:%d\"; resolve = true; max_addresses = 3; } ); } );\n"
	    "listeners = ( { listen = \"127.0.0.1:%d\"; upstream = \"app\"; } );\n"
	    "admin = { listen = \"127.0.0.1:%d\"; };\n",
	    dport, dns_extra, bport, lport, aport);
}

static void
test_follow(void)
{
	int per[NB], held = -1, b = -1, served;
	char msg[8192], back[8192];

	zone_set("ok", 3, 1);
	master = h_sluiced_start(write_conf("sluiced.conf", ""), lport, WORKERS);
	ok(wait_mask(3), "the name's two addresses fill two slots");
	served = clients(20, per);
	ok(served == 20 && per[0] > 0 && per[1] > 0 && per[2] == 0,
	    "20 clients reach both addresses and nothing else (%d, %d, %d)", per[0], per[1],
	    per[2]);

	zone_set("ok", 7, 1);
	ok(wait_mask(7), "a third address in the answer takes the third slot, no reload");
	ok(log_wait("127.0.0.4") && log_count("joins") == 3,
	    "each address that joined is logged once (%d lines)", log_count("joins"));
	served = clients(30, per);
	ok(served == 30 && per[0] > 0 && per[1] > 0 && per[2] > 0,
	    "30 clients reach all three (%d, %d, %d)", per[0], per[1], per[2]);

	/* A session on 127.0.0.4, then .4 leaves the answer. */
	for (int k = 0; k < 30 && b != 2; k++) {
		if (held != -1)
			close(held);
		held = -1;
		b = client(&held);
	}
	ok(b == 2 && held != -1, "a client is held on 127.0.0.4");
	zone_set("ok", 3, 1);
	ok(wait_mask(3), "127.0.0.4 leaves its slot once the answer drops it");
	served = clients(30, per);
	ok(served == 30 && per[2] == 0 && per[0] > 0 && per[1] > 0,
	    "new clients avoid it (%d, %d, %d)", per[0], per[1], per[2]);
	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = (char)(i * 31 + 7);
	{
		int good = held != -1 && write(held, msg, sizeof(msg)) == (ssize_t)sizeof(msg) &&
		           h_read_n(held, back, sizeof(back), 5000) == (ssize_t)sizeof(back) &&
		           memcmp(msg, back, sizeof(msg)) == 0;

		ok(good, "the session held on 127.0.0.4 still relays 8 KB byte for byte (drain)");
	}
	if (held != -1)
		close(held);
}

/* A failure of kind mode (with the records of mask): the last good set
 * stays, logged once. */
static void
test_keep(const char *mode, unsigned mask, const char *logged, const char *what)
{
	int before = queries(mode), lines, again = log_count("app.test resolves again");
	uint64_t deadline;

	zone_set(mode, mask, 1);
	ok(wait_queries(mode, before, 6) && slots_mask(NULL, NULL) == 3,
	    "%s: after 6 questions both addresses still stand", what);
	lines = log_count(logged);
	ok(lines == 1, "%s: logged once, not per try (%d lines with \"%s\")", what, lines, logged);
	zone_set("ok", 3, 1);
	deadline = h_now_ms() + WAIT_MS;
	while (h_now_ms() < deadline && log_count("app.test resolves again") == again)
		h_nap(20);
	ok(log_count("app.test resolves again") == again + 1 && wait_mask(3),
	    "%s: the recovery is logged", what);
}

static void
test_ttl(void)
{
	int before;

	zone_set("ok", 3, 3600);
	ok(wait_ttl(2), "a TTL of an hour is cut to max_ttl (2 s)");
	before = queries("ok");
	zone_set("ok", 1, 3600);
	ok(wait_mask(1) && queries("ok") > before,
	    "so a change under a TTL of an hour is still seen, asked again within max_ttl");
	zone_set("ok", 3, 0);
	ok(wait_mask(3) && wait_ttl(1), "a TTL of 0 is raised to min_ttl (1 s)");
	zone_set("ok", 3, 1);
}

static void
test_show(const char *conf)
{
	char *argv[] = { (char *)h_sluicestat(), "-c", (char *)conf, NULL };
	char *json[] = { (char *)h_sluicestat(), "-c", (char *)conf, "--json", NULL };
	char *prom[] = { (char *)h_sluicestat(), "-c", (char *)conf, "--prometheus", NULL };
	char want[160], want2[160], *out = NULL;
	int r;

	snprintf(want, sizeof(want), "= 127.0.0.2:%d", bport);
	snprintf(want2, sizeof(want2), "(no address)");
	r = h_run(argv, &out, 10000);
	ok(r == 0 && out && strstr(out, want) && strstr(out, want2),
	    "sluicestat shows each slot's address, or none");
	free(out);
	out = NULL;
	snprintf(want, sizeof(want), "\"resolved\": {\"state\": \"present\", \"address\": "
	                             "\"127.0.0.3:%d\"", bport);
	r = h_run(json, &out, 10000);
	ok(r == 0 && out && strstr(out, want) && strstr(out, "\"state\": \"absent\""),
	    "sluicestat --json has a resolved object per slot");
	free(out);
	out = NULL;
	snprintf(want, sizeof(want),
	    "sluice_server_resolved{upstream=\"app\",server=\"app.test:%d#", bport);
	snprintf(want2, sizeof(want2), ",address=\"127.0.0.2:%d\"} 1", bport);
	r = h_run(prom, &out, 10000);
	ok(r == 0 && out && strstr(out, want) && strstr(out, want2) &&
	        strstr(out, ",address=\"\"} 0"),
	    "Prometheus: sluice_server_resolved 1 with the address, 0 without");
	free(out);
	{
		const char *body = NULL;
		int status = h_http_get(aport, "/metrics", &body);

		ok(status == 200 && body && strstr(body, want) && strstr(body, want2),
		    "the admin endpoint's /metrics has them too (status %d)", status);
	}
}

/* Every question the nameserver saw came from a port the checker logged
 * asking from; and no worker holds a UDP socket. */
static void
test_only_checker(void)
{
	char *text = h_read_file(dnslog), *slog = h_read_file(h_path("sluiced.log"));
	char *line, *save = NULL;
	int seen = 0, foreign = 0;
	pid_t w[64];
	int nw, udp = 0, looked = 0;

	for (line = text ? strtok_r(text, "\n", &save) : NULL; line;
	     line = strtok_r(NULL, "\n", &save)) {
		const char *p = strstr(line, "from port ");
		char needle[64], *hit;
		int found = 0;

		if (p == NULL)
			continue;
		seen++;
		snprintf(needle, sizeof(needle), "from port %d)", atoi(p + 10));
		for (hit = slog ? strstr(slog, needle) : NULL; hit && !found;
		     hit = strstr(hit + 1, needle)) {
			char *bol = hit;

			while (bol > slog && bol[-1] != '\n')
				bol--;
			found = strncmp(strstr(bol, "] ") ? strstr(bol, "] ") + 2 : bol,
			            "checker: debug: dns: asking", 27) == 0;
		}
		foreign += !found;
	}
	ok(seen > 10 && foreign == 0,
	    "all %d questions the nameserver saw were sent by the checker (%d others)", seen,
	    foreign);
	free(text);
	free(slog);

	/* Workers: no UDP socket among their descriptors. */
	nw = h_stats_running(w, 64, 0);
	for (int i = 0; i < nw; i++) {
		char path[64], link[320], buf[128];
		DIR *d;
		struct dirent *e;

		snprintf(path, sizeof(path), "/proc/%d/fd", (int)w[i]);
		if ((d = opendir(path)) == NULL)
			continue;
		looked++;
		while ((e = readdir(d)) != NULL) {
			ssize_t n;
			char *udpt;

			snprintf(link, sizeof(link), "%s/%s", path, e->d_name);
			n = readlink(link, buf, sizeof(buf) - 1);
			if (n <= 0)
				continue;
			buf[n] = '\0';
			if (strncmp(buf, "socket:[", 8) != 0)
				continue;
			for (int v6 = 0; v6 < 2; v6++) {
				udpt = h_read_file(v6 ? "/proc/net/udp6" : "/proc/net/udp");
				if (udpt != NULL) {
					char ino[32];

					snprintf(ino, sizeof(ino), " %.*s ", (int)(strlen(buf) - 9),
					    buf + 8);
					udp += strstr(udpt, ino) != NULL;
					free(udpt);
				}
			}
		}
		closedir(d);
	}
	if (looked == 0)
		skip(1, "cannot read the workers' descriptors");
	else
		ok(udp == 0, "no worker holds a UDP socket (%d workers looked at)", looked);
}

static void
test_reload(void)
{
	int joins = log_count("joins"), per[NB], served;
	uint64_t gen = h_stats_generation();

	kill(master, SIGHUP);
	{
		uint64_t deadline = h_now_ms() + WAIT_MS;
		pid_t w[64];

		while (h_now_ms() < deadline &&
		       (h_stats_generation() != gen + 1 ||
		           h_stats_running(w, 64, (uint32_t)gen + 1) < WORKERS))
			h_nap(20);
	}
	ok(h_stats_generation() == gen + 1 && wait_mask(3),
	    "after a reload with the same name both addresses stand");
	served = clients(10, per);
	ok(served == 10 && per[0] > 0 && per[1] > 0,
	    "and serve (%d, %d)", per[0], per[1]);
	ok(log_count("joins") == joins,
	    "the new generation started from the last good set: nothing joined anew");
}

static void
test_libc(void)
{
	int lp = h_free_port(), ep = h_free_port(), fd, good;
	const char *conf;
	pid_t m;

	up_stop(master);
	/* No answer will ever come: what serves is libc's at load. */
	zone_set("drop", 0, 1);
	h_echod_start(ep);
	conf = up_conf("libc.conf", 1,
	    "dns = { nameservers = \"127.0.0.1:%d\"; family = \"ipv4\"; timeout = \"200ms\"; "
	    "retry = \"200ms\"; };\n"
	    "upstreams = ( { name = \"app\"; servers = ( { address = \"localhost:%d\"; "
	    "resolve = true; max_addresses = 2; } ); } );\n"
	    "listeners = ( { listen = \"127.0.0.1:%d\"; upstream = \"app\"; } );\n",
	    dport, ep, lp);
	m = h_sluiced_start(conf, lp, 1);
	fd = h_connect_from(NULL, lp, 5000);
	good = fd != -1 && up_echo(fd, 5000) == 0;
	ok(good, "init_addr libc: localhost serves from libc's answer while DNS is silent");
	if (fd != -1)
		close(fd);
	ok(log_wait("no answer to A within 200 ms"), "and the silence is logged");
	up_stop(m);
}

/* Health checks of a resolved name's slots probe each slot's address: the
 * slot whose backend is gone goes DOWN and no client is sent there. */
static void
test_health(pid_t gone, pid_t dns)
{
	int lp = h_free_port(), served, per[NB];
	const char *conf;
	pid_t m;
	uint64_t deadline;
	int down = 0, up = 0;

	zone_set("ok", 3, 1);
	conf = up_conf("health.conf", WORKERS,
	    "dns = { nameservers = \"127.0.0.1:%d\"; family = \"ipv4\"; init_addr = \"none\"; "
	    "min_ttl = 1; max_ttl = 2; retry = \"200ms\"; timeout = \"1s\"; };\n"
	    "upstreams = ( { name = \"hc\"; retries = 0; max_fails = 0;\n"
	    "  health = { interval = \"200ms\"; timeout = \"200ms\"; rise = 1; fall = 1; };\n"
	    "  servers = ( { address = \"app.test:%d\"; resolve = true; max_addresses = 2; } ); } );\n"
	    "listeners = ( { listen = \"127.0.0.1:%d\"; upstream = \"hc\"; } );\n",
	    dport, bport, lp);
	h_kill(gone); /* 127.0.0.3's backend */
	m = h_sluiced_start(conf, lp, WORKERS);
	deadline = h_now_ms() + WAIT_MS;
	while (h_now_ms() < deadline && !(down == 1 && up == 1)) {
		struct stats_seg seg;
		struct stats_snapshot *sn;
		char err[256];

		down = up = 0;
		if (stats_attach(&seg, h_statsfile(), err, sizeof(err)) == 0) {
			if ((sn = stats_snapshot_create(&seg)) != NULL) {
				for (unsigned r = 0; r < sn->nservers; r++) {
					const struct stats_server_view *v = &sn->servers[r];

					if (strcmp(v->entry.upstream, "hc") != 0 ||
					    v->resolved.state != STATS_ADDR_PRESENT)
						continue;
					down += v->resolved.addr[3] == 3 &&
					        v->health.state == STATS_HEALTH_DOWN;
					up += v->resolved.addr[3] == 2 &&
					      v->health.state == STATS_HEALTH_UP;
				}
				stats_snapshot_destroy(sn);
			}
			stats_detach(&seg);
		}
		if (!(down == 1 && up == 1))
			h_nap(50);
	}
	ok(down == 1 && up == 1,
	    "the slot at 127.0.0.3 (backend gone) is checked DOWN, the one at 127.0.0.2 UP");
	lport = lp;
	served = clients(10, per);
	ok(served == 10 && per[0] == 10, "every client goes to 127.0.0.2 (%d served)", served);

	/* The nameserver gone: its port refuses (ICMP), the set stays. */
	{
		int asked = log_count("checker: debug: dns: asking"), refusals;

		h_kill(dns);
		deadline = h_now_ms() + WAIT_MS;
		while (h_now_ms() < deadline && log_count("checker: debug: dns: asking") < asked + 6)
			h_nap(20);
		refusals = log_count("A question: Connection refused");
		ok(log_count("checker: debug: dns: asking") >= asked + 6 && refusals == 1 &&
		        slots_mask(NULL, NULL) == 3,
		    "a nameserver that is gone keeps the set, logged once (%d lines)", refusals);
	}
	up_stop(m);
}

/* sluiced -t on a config with the dns or server text given. */
static void
refused(const char *dns, const char *server, const char *want, const char *what)
{
	char *argv[] = { (char *)h_sluiced(), "-t", "-c", NULL, NULL };
	char *out = NULL, *first;
	const char *conf = up_conf("bad.conf", 1,
	    "%s\nupstreams = ( { name = \"app\"; servers = ( %s ); } );\n"
	    "listeners = ( { listen = \"127.0.0.1:1\"; upstream = \"app\"; } );\n",
	    dns, server);
	int r;

	argv[3] = (char *)conf;
	r = h_run(argv, &out, 10000);
	first = out ? strtok(out, "\n") : NULL;
	ok(r == 1 && first && strstr(first, "bad.conf:") && strstr(first, want),
	    "-t refuses %s: %.200s", what, first ? first : "(nothing)");
	free(out);
}

static void
test_refused(void)
{
	const char *dns = "dns = { nameservers = ( \"127.0.0.1:53\" ); };";

	refused("", "{ address = \"a.test:80\"; resolve = true; }", "bad.conf:6: upstreams[0].servers[0].resolve: needs a dns group",
	    "resolve without a dns group");
	refused(dns, "{ address = \"127.0.0.1:80\"; max_addresses = 2; }",
	    "max_addresses: goes only with resolve = true", "max_addresses alone");
	refused(dns, "{ address = \"10.0.0.1:80\"; resolve = true; }", "needs a host name",
	    "a numeric address to resolve");
	refused(dns, "{ address = \"a.test\"; resolve = true; }", "missing port",
	    "a name without a port");
	refused(dns, "{ address = \"a.test:80\"; resolve = true; max_addresses = 65; }",
	    "max_addresses", "65 addresses");
	refused("dns = { nameservers = ( \"ns.example\" ); };",
	    "{ address = \"a.test:80\"; resolve = true; }", "invalid nameserver \"ns.example\"",
	    "a nameserver given by name");
	refused("dns = { nameservers = ( \"127.0.0.1\" ); min_ttl = 10; max_ttl = 5; };",
	    "\"127.0.0.1:80\"", "must not be longer than dns.max_ttl", "min_ttl over max_ttl");
	refused("dns = { nameservers = ( \"::1\" ); ttl = 5; };", "\"127.0.0.1:80\"",
	    "ttl", "an unknown dns setting");
	refused("dns = { timeout = 1; };", "\"127.0.0.1:80\"", "nameservers",
	    "dns without nameservers");
	refused("dns = { nameservers = \"127.0.0.1\"; init_addr = \"last\"; };", "\"127.0.0.1:80\"",
	    "init_addr", "an unknown init_addr");
}

int
main(void)
{
	const char *conf;
	pid_t backends[NB], dns;

	plan(51);
	if (access("/usr/bin/python3", X_OK) != 0 && system("python3 -c '' 2>/dev/null") != 0) {
		skip(51, "python3 is needed for tests/fakedns.py");
		return 0;
	}
	bport = h_free_port();
	lport = h_free_port();
	dns = fakedns_start();
	aport = h_free_port();
	for (int i = 0; i < NB; i++)
		backends[i] = backend_start(i);

	test_follow();
	/* Were these answers applied, only 127.0.0.3 (or nothing) would stay. */
	test_keep("servfail", 2, "servfail answer to A", "SERVFAIL");
	test_keep("drop", 2, "no answer to A", "no answer");
	test_keep("truncate", 2, "(no TCP fallback)", "a truncated answer");
	test_keep("ok", 0, "no address in the answer", "an empty answer");
	test_keep("nxdomain", 2, "no such name (NXDOMAIN)", "NXDOMAIN");
	test_ttl();
	conf = h_path("sluiced.conf");
	test_show(conf);
	test_only_checker();
	test_reload();
	test_libc();
	test_health(backends[1], dns);
	test_refused();
	return 0;
}
