/* SPDX-License-Identifier: BSD-2-Clause */
/* i_admin.c — integration test of the admin endpoint (admin = { listen };)
 * through the real daemon: /metrics parses with prometheus_client and shows
 * what was relayed, with the same families as sluicestat --prometheus;
 * /healthz says 200, then 503 once health checks take the only server down,
 * or while no worker can start; wrong methods, paths and requests get 405,
 * 404, 400 and 431; a 17th concurrent connection gets 503 and the endpoint
 * serves again once the others close; clients that send nothing or half a
 * request are cut at the deadline without holding others up; the process
 * runs as the configured user with the segment read-only, is respawned when
 * killed, survives a reload, moves with admin.listen, keeps its socket when
 * a reload fails on a busy address, stops exporting removed servers, and
 * exits with the master, which waits for it when it stops. A bad address is
 * refused by -t and a busy one fails the start. */
#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "tap.h"

#define WAIT_MS 15000
#define ADMIN_CONNS 16 /* admin/admin.h: ADMIN_MAX_CONNS */

static pid_t master;
static int lp, e0, e1;

/* A config: the listener on lp for upstream app with the given servers
 * text, admin on admin_port (0: no admin section), and extra text. */
static const char *
conf(const char *name, const char *servers, int admin_port, const char *extra)
{
	char admin[128] = "";
	const char *path = h_path(name);

	if (admin_port != 0)
		snprintf(
		    admin, sizeof(admin), "admin = { listen = \"127.0.0.1:%d\"; };\n", admin_port);
	h_write_file(path,
	    "workers = 2;\npid_file = \"%s\";\nstats_file = \"%s\";\nuser = \"nobody\";\n"
	    "log = { target = \"stderr\"; level = \"debug\"; };\n"
	    "upstreams = ( { name = \"app\"; servers = ( %s ); %s } );\n"
	    "listeners = ( { listen = \"127.0.0.1:%d\"; upstream = \"app\"; } );\n%s",
	    h_pidfile(), h_statsfile(), servers, extra ? extra : "", lp, admin);
	return path;
}

/* HTTP to the admin port: the harness's. */
#define http_raw(port, req, len, body) h_http(port, req, len, body)
#define http(port, req, body) h_http(port, req, strlen(req), body)
#define get(port, path, body) h_http_get(port, path, body)
#define wait_get(port, path, status, prefix) h_wait_http(port, path, status, prefix, WAIT_MS)
#define resp h_http_last()

/* The live admin process: the pid of the last "admin process started" log
 * line, 0 if none or it is gone. */
static pid_t
admin_pid(void)
{
	char *log = h_read_file(h_path("sluiced.log")), *p, *last = NULL;
	long pid = 0;

	if (log == NULL)
		return 0;
	for (p = log; (p = strstr(p, "admin process started (pid ")) != NULL; p++)
		last = p;
	if (last != NULL)
		pid = strtol(last + strlen("admin process started (pid "), NULL, 10);
	free(log);
	return pid > 0 && h_alive((pid_t)pid) ? (pid_t)pid : 0;
}

/* Poll for an admin process other than `not`. */
static pid_t
wait_admin(pid_t not )
{
	uint64_t end = h_now_ms() + WAIT_MS;
	pid_t p;

	while (h_now_ms() < end) {
		if ((p = admin_pid()) != 0 && p != not )
			return p;
		h_nap(50);
	}
	return 0;
}

static int
wait_generation(uint64_t g)
{
	uint64_t end = h_now_ms() + WAIT_MS;

	while (h_now_ms() < end) {
		if (h_stats_generation() == g)
			return 1;
		h_nap(50);
	}
	return 0;
}

/* The Uid: line of /proc/PID/status, blanks collapsed. */
static const char *
uid_of(pid_t pid)
{
	static char out[128];
	char path[64], *text, *p;
	size_t k = 0;

	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	out[0] = '\0';
	if ((text = h_read_file(path)) == NULL || (p = strstr(text, "\nUid:")) == NULL) {
		free(text);
		return out;
	}
	for (p += 5; *p != '\n' && *p != '\0' && k + 1 < sizeof(out); p++)
		if (*p != ' ' && *p != '\t')
			out[k++] = *p;
		else if (k > 0 && out[k - 1] != ' ')
			out[k++] = ' ';
	while (k > 0 && out[k - 1] == ' ')
		k--;
	out[k] = '\0';
	free(text);
	return out;
}

/* Parse text with tests/promcheck.py. Returns its exit status (77: no
 * prometheus_client) and its output in *out (malloc'ed). */
static int
promparse(const char *text, char **out)
{
	const char *top = getenv("TOP_SRCDIR"), *file = h_path("scrape.txt");
	const char *py = access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
	char cmd[2048];
	char *argv[] = {"/bin/sh", "-c", cmd, NULL};

	h_write_file(file, "%s", text);
	snprintf(cmd, sizeof(cmd), "%s '%s/tests/promcheck.py' < '%s'", py, top ? top : ".", file);
	return h_run(argv, out, 30000);
}

/* Sum of the parsed samples whose line starts with prefix. */
static double
sum_of(const char *parsed, const char *prefix)
{
	double sum = 0;
	const char *p = parsed;
	size_t n = strlen(prefix);

	while (p != NULL && *p != '\0') {
		if (strncmp(p, prefix, n) == 0) {
			const char *eol = strchr(p, '\n'), *sp = eol ? eol : p + strlen(p);

			while (sp > p && sp[-1] != ' ')
				sp--;
			sum += strtod(sp, NULL);
		}
		p = strchr(p, '\n');
		if (p != NULL)
			p++;
	}
	return sum;
}

/* The "# TYPE" lines of text, in order, one string. */
static char *
types_of(const char *text)
{
	size_t cap = strlen(text) + 1, k = 0;
	char *out = malloc(cap);
	const char *p = text;

	if (out == NULL)
		bail("out of memory");
	while ((p = strstr(p, "# TYPE ")) != NULL) {
		const char *eol = strchr(p, '\n');
		size_t n = eol ? (size_t)(eol - p) + 1 : strlen(p);

		memcpy(out + k, p, n);
		k += n;
		p += n;
	}
	out[k] = '\0';
	return out;
}

/* Echo `size` bytes through the listener on a new connection. */
static int
relay_once(size_t size)
{
	char buf[4096];
	int fd = h_connect(lp, 5000);
	ssize_t n;

	if (fd == -1 || size > sizeof(buf))
		return -1;
	memset(buf, 'x', size);
	if (send(fd, buf, size, MSG_NOSIGNAL) != (ssize_t)size) {
		close(fd);
		return -1;
	}
	n = h_read_n(fd, buf, size, 10000);
	close(fd);
	return n == (ssize_t)size ? 0 : -1;
}

static void
test_refusals(void)
{
	char *out = NULL;
	const char *bad = h_path("bad.conf");
	char *argv[] = {(char *)h_sluiced(), "-t", "-c", (char *)bad, NULL};
	int busy, st, rc;
	pid_t pid;

	h_write_file(bad,
	    "workers = 1;\npid_file = \"%s\";\nstats_file = \"%s\";\n"
	    "upstreams = ( { name = \"app\"; servers = ( \"127.0.0.1:9\" ); } );\n"
	    "listeners = ( { listen = \"127.0.0.1:%d\"; upstream = \"app\"; } );\n"
	    "admin = { listen = \"127.0.0.1:http\"; };\n",
	    h_pidfile(), h_statsfile(), lp);
	rc = h_run(argv, &out, 10000);
	ok(rc != 0 && out != NULL &&
	        strstr(out, "bad.conf:6: admin.listen: invalid address") != NULL,
	    "-t refuses a bad admin address, naming file, line and setting");
	free(out);

	/* A busy admin address fails the start, and says why. */
	busy = h_free_port();
	{
		int hold = h_listen(busy);
		char *run[] = {(char *)h_sluiced(), "-f", "-c",
		    (char *)conf("busy.conf", "\"127.0.0.1:9\"", busy, NULL), NULL};

		pid = h_spawn(run, h_path("busy.log"));
		rc = h_wait_exit(pid, WAIT_MS, &st);
		ok(rc == 0 && WIFEXITED(st) && WEXITSTATUS(st) != 0 &&
		        h_file_contains(
		            h_path("busy.log"), "admin.listen: cannot listen on 127.0.0.1:"),
		    "a busy admin address fails the start with the reason");
		close(hold);
	}
}

int
main(void)
{
	char extra[512], servers[128], want[256], nobody[128], *parsed = NULL, *sstat = NULL;
	int ap = h_free_port(), ap2, busy, hold, closed_port, fds[ADMIN_CONNS], rc;
	const char *body, *c;
	struct passwd *pw = getpwnam("nobody");
	pid_t apid, apid2;

	if (pw == NULL)
		bail("no user nobody on this system");
	lp = h_free_port();
	e0 = h_free_port();
	e1 = h_free_port();
	h_echod_start(e0);
	h_echod_start(e1);
	test_refusals();

	snprintf(servers, sizeof(servers), "\"127.0.0.1:%d\", \"127.0.0.1:%d\"", e0, e1);
	c = conf("a.conf", servers, ap, NULL);
	master = h_sluiced_start(c, lp, 2);

	/* Who serves: an unprivileged child, never the master. */
	apid = wait_admin(0);
	ok(apid != 0 && apid != master, "an admin process runs beside the workers");
	/* Once it answers it has dropped its privileges and protected its
	 * mapping: read its credentials and mappings no sooner (the master
	 * logs its pid right after the fork). */
	wait_get(ap, "/healthz", 200, NULL);
	snprintf(nobody, sizeof(nobody), "%lu %lu %lu %lu", (unsigned long)pw->pw_uid,
	    (unsigned long)pw->pw_uid, (unsigned long)pw->pw_uid, (unsigned long)pw->pw_uid);
	is_str(uid_of(apid), nobody, "it runs as the configured user (nobody), not root");
	{
		/* Its mapping of the statistics segment: read-only throughout. */
		char maps[64], *text, *line, *save = NULL;
		int segs = 0, writable = 0;

		snprintf(maps, sizeof(maps), "/proc/%ld/maps", (long)apid);
		text = h_read_file(maps);
		for (line = text ? strtok_r(text, "\n", &save) : NULL; line != NULL;
		     line = strtok_r(NULL, "\n", &save)) {
			const char *perm = strchr(line, ' ');

			if (strstr(line, h_statsfile()) == NULL || perm == NULL)
				continue;
			segs++;
			writable += perm[2] == 'w';
		}
		free(text);
		ok(segs > 0 && writable == 0, "it maps the statistics segment read-only (%d areas)",
		    segs);
	}

	ok(wait_get(ap, "/healthz", 200, "ok"),
	    "/healthz: 200 ok while workers run and servers can");

	/* What was relayed shows in /metrics, as a scraper parses it. */
	for (int i = 0; i < 3; i++)
		if (relay_once(1000) == -1)
			bail("relaying through the listener failed");
	ok(h_wait_stat("closed", 3, WAIT_MS), "three sessions relayed and closed");
	is(get(ap, "/metrics", &body), 200, "GET /metrics: 200");
	ok(strstr(resp, "\r\nContent-Type: text/plain; version=0.0.4") != NULL,
	    "served as Prometheus text format 0.0.4");
	rc = promparse(body, &parsed);
	if (rc == 77) {
		skip(1, "python3-prometheus-client is not installed");
	} else {
		ok(rc == 0, "prometheus_client parses /metrics");
		if (rc != 0)
			diag("%.500s", parsed ? parsed : "");
	}
	if (rc == 0) {
		snprintf(want, sizeof(want),
		    "sluice_listener_bytes_in_total{listener=\"127.0.0.1:%d\",upstream=\"app\"} "
		    "3000\n",
		    lp);
		ok(strstr(parsed, "sluice_build_info{version=\"" PACKAGE_VERSION "\"} 1\n") &&
		        strstr(parsed, "\nsluice_up{} 1\n") &&
		        strstr(parsed, "\nsluice_accepted_total{} 3\n") &&
		        strstr(parsed, "\nsluice_bytes_in_total{} 3000\n") &&
		        strstr(parsed, "\nsluice_bytes_out_total{} 3000\n") && strstr(parsed, want),
		    "build info, and the relayed connections and bytes, in total and per listener");
		ok(sum_of(parsed, "sluice_closed_total{") == 3 &&
		        sum_of(parsed, "sluice_refused_total{") == 0,
		    "sluice_closed_total by reason adds up to the three sessions");
		ok(sum_of(parsed, "sluice_server_connect_duration_seconds_count{") == 3 &&
		        sum_of(parsed,
		            "sluice_server_connect_duration_seconds_bucket{le=\"+Inf\"") == 3 &&
		        sum_of(parsed, "sluice_server_bytes_in_total{") == 3000,
		    "the servers' connect histograms count the three connects");
		snprintf(want, sizeof(want),
		    "sluice_server_up{server=\"127.0.0.1:%d\",upstream=\"app\"} 1", e1);
		ok(strstr(parsed, want) != NULL &&
		        strstr(parsed, "sluice_server_admin_state{server=") != NULL &&
		        strstr(parsed, "\nsluice_reloads_total{result=\"ok\"} 0\n") != NULL,
		    "server health, admin state and reload counts are there");
	} else {
		skip(5, "no parsed /metrics");
	}
	free(parsed);
	parsed = NULL;

	/* sluicestat --prometheus prints the same families. */
	{
		char *argv[] = {
		    (char *)h_sluicestat(), "-s", (char *)h_statsfile(), "--prometheus", NULL};
		char *a, *b;

		rc = h_run(argv, &sstat, 10000);
		get(ap, "/metrics", &body);
		a = types_of(body);
		b = types_of(sstat ? sstat : "");
		ok(rc == 0 && strlen(a) > 100 && strcmp(a, b) == 0,
		    "sluicestat --prometheus has the same families as /metrics");
		free(a);
		free(b);
		free(sstat);
	}

	/* Every tool: curl. */
	{
		char url[128];
		char *argv[] = {"curl", "-sS", "-f", "--max-time", "10", url, NULL};
		char *out = NULL;

		snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", ap);
		if (access("/usr/bin/curl", X_OK) != 0) {
			skip(1, "curl is not installed");
		} else {
			argv[0] = "/usr/bin/curl";
			rc = h_run(argv, &out, 15000);
			ok(rc == 0 && out != NULL &&
			        strstr(out, "# TYPE sluice_build_info gauge") != NULL,
			    "curl scrapes /metrics");
		}
		free(out);
	}

	/* Requests it does not serve. */
	is(http(ap, "HEAD /metrics HTTP/1.0\r\n\r\n", &body), 200, "HEAD /metrics: 200");
	ok(*body == '\0' && strstr(resp, "Content-Length: 0\r\n") == NULL,
	    "HEAD: the length, no body");
	is(get(ap, "/metrics?name=x", &body), 200, "a query string is ignored");
	is(get(ap, "/nope", &body), 404, "unknown path: 404");
	is(http(ap, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", &body), 405,
	    "POST: 405");
	ok(strstr(resp, "\r\nAllow: GET, HEAD\r\n") != NULL, "405 says Allow: GET, HEAD");
	is(http(ap, "DELETE /healthz HTTP/1.0\r\n\r\n", &body), 405, "DELETE: 405");
	is(http(ap, "hello\r\n\r\n", &body), 400, "garbage: 400");
	is(http(ap, "GET /metrics HTTP/2.0\r\n\r\n", &body), 400, "an unknown version: 400");
	is(http(ap, "GET metrics HTTP/1.1\r\n\r\n", &body), 400, "a target without /: 400");
	is(http_raw(ap, "GET /metrics\0 HTTP/1.1\r\n\r\n", 26, &body), 400, "a NUL: 400");
	{
		static char big[6000];
		int n = snprintf(big, sizeof(big), "GET /metrics HTTP/1.1\r\nX-Pad: ");

		memset(big + n, 'a', 5000);
		memcpy(big + n + 5000, "\r\n\r\n", 4);
		is(http_raw(ap, big, (size_t)n + 5004, &body), 431, "a head over 4 KB: 431");
	}
	ok(wait_get(ap, "/healthz", 200, "ok"), "and it still serves");

	/* At most 16 at once: the 17th gets 503; freed slots serve again. A
	 * 17th served while the 16 are still being accepted proves nothing, so
	 * it is asked again until the answer is 503; should the 16 reach the
	 * 5 s deadline meanwhile (a starved machine), the round starts over. */
	{
		int n = 0, round;

		rc = 0;
		for (round = 0; round < 5 && rc != 503; round++) {
			uint64_t end = h_now_ms() + 3000;

			n = 0;
			for (int i = 0; i < ADMIN_CONNS; i++)
				n += (fds[i] = h_connect(ap, 5000)) != -1;
			while ((rc = get(ap, "/healthz", &body)) != 503 && h_now_ms() < end)
				h_nap(20);
			for (int i = 0; i < ADMIN_CONNS; i++)
				if (fds[i] != -1)
					close(fds[i]);
		}
		is(n, ADMIN_CONNS, "16 idle connections open");
		is(rc, 503, "a 17th connection is answered 503 at once");
		ok(strcmp(body, "busy\n") == 0, "  saying busy");
		ok(wait_get(ap, "/healthz", 200, "ok"), "once they close, it serves again");
	}

	/* Slow clients are cut at the deadline and hold nobody up. */
	{
		int idle = h_connect(ap, 5000), half = h_connect(ap, 5000);
		const char *part = "GET /metrics HTTP/1.1\r\nHost: x\r\n";

		if (half != -1 && send(half, part, strlen(part), MSG_NOSIGNAL) < 0)
			diag("send: %s", strerror(errno));
		is(get(ap, "/healthz", &body), 200,
		    "a request beside two stalled clients is served");
		ok(idle != -1 && h_wait_closed(idle, WAIT_MS) == 1,
		    "a client that sends nothing is cut at the deadline");
		ok(half != -1 && h_wait_closed(half, WAIT_MS) == 1,
		    "a client that sends half a request is cut at the deadline");
		if (idle != -1)
			close(idle);
		if (half != -1)
			close(half);
	}

	/* Killed: respawned. */
	kill(apid, SIGKILL);
	apid2 = wait_admin(apid);
	ok(apid2 != 0, "a killed admin process is respawned");
	ok(wait_get(ap, "/healthz", 200, "ok"), "and serves on the same socket");
	apid = apid2;

	/* A reload with the same admin section keeps the process. */
	kill(master, SIGHUP);
	ok(wait_generation(2), "reloaded to generation 2");
	ok(wait_get(ap, "/healthz", 200, "ok") && admin_pid() == apid,
	    "the admin process survives the reload and serves");

	/* A reload that moves admin.listen and drops a server. */
	ap2 = h_free_port();
	snprintf(servers, sizeof(servers), "\"127.0.0.1:%d\"", e0);
	conf("a.conf", servers, ap2, NULL);
	kill(master, SIGHUP);
	ok(wait_generation(3), "reloaded to generation 3");
	ok(wait_get(ap2, "/healthz", 200, "ok"), "the endpoint moved to the new address");
	{
		uint64_t end = h_now_ms() + WAIT_MS;

		while (h_port_refuses(ap) != 1 && h_now_ms() < end)
			h_nap(50);
		ok(h_port_refuses(ap) == 1, "the old address is closed");
	}
	apid2 = admin_pid();
	ok(apid2 != 0 && apid2 != apid && strcmp(uid_of(apid2), nobody) == 0,
	    "a new admin process serves it, as nobody too");
	snprintf(want, sizeof(want), "server=\"127.0.0.1:%d\"", e1);
	is(get(ap2, "/metrics", &body), 200, "GET /metrics after the reload");
	ok(strstr(body, want) == NULL, "the removed server is no longer exported");
	snprintf(want, sizeof(want), "server=\"127.0.0.1:%d\"", e0);
	ok(strstr(body, want) != NULL, "the kept one is");

	/* A reload onto a busy admin address fails and keeps the old socket. */
	busy = h_free_port();
	hold = h_listen(busy);
	conf("a.conf", servers, busy, NULL);
	kill(master, SIGHUP);
	ok(h_wait_file_contains(h_path("sluiced.log"), "admin.listen: cannot listen on", WAIT_MS),
	    "a reload onto a busy admin address fails, saying why");
	/* The failure is logged just before it is counted: poll. */
	{
		uint64_t end = h_now_ms() + WAIT_MS;
		int seen = 0;

		while (!seen && h_now_ms() < end) {
			seen =
			    get(ap2, "/metrics", &body) == 200 &&
			    strstr(body, "sluice_reloads_total{result=\"failed\"} 1\n") != NULL &&
			    strstr(body, "sluice_last_reload_success 0\n") != NULL;
			if (!seen)
				h_nap(50);
		}
		ok(seen, "the old address still serves, counting the failed reload");
	}
	close(hold);

	/* Health checks take the only server down: 503, saying why. */
	closed_port = h_free_port();
	snprintf(servers, sizeof(servers), "\"127.0.0.1:%d\"", closed_port);
	snprintf(extra, sizeof(extra),
	    "health = { interval = \"200ms\"; timeout = \"200ms\"; rise = 1; fall = 1; };");
	conf("a.conf", servers, ap2, extra);
	kill(master, SIGHUP);
	ok(wait_generation(4), "reloaded to generation 4, its only server a closed port");
	snprintf(want, sizeof(want), "listener 127.0.0.1:%d: no usable server in upstream app", lp);
	ok(wait_get(ap2, "/healthz", 503, want), "/healthz: 503 naming the listener and upstream");
	snprintf(want, sizeof(want),
	    "sluice_server_up{upstream=\"app\",server=\"127.0.0.1:%d\"} 0\n", closed_port);
	ok(get(ap2, "/metrics", &body) == 200 && strstr(body, want) != NULL,
	    "/metrics: the server is down");

	/* The master dies: so does the admin process. */
	apid = admin_pid();
	kill(master, SIGKILL);
	h_wait_exit(master, WAIT_MS, NULL);
	{
		uint64_t end = h_now_ms() + WAIT_MS;

		while (apid != 0 && h_alive(apid) && h_now_ms() < end)
			h_nap(50);
		ok(apid != 0 && !h_alive(apid), "the admin process exits with the master");
	}

	/* No worker running: the workers are killed while the fault injector
	 * (tests/faultshim.c) makes their replacements fail to start. The
	 * admin process started before, so it is spared. */
	snprintf(servers, sizeof(servers), "\"127.0.0.1:%d\"", e0);
	/* The injector reads its files in the children, which run as nobody. */
	if (chmod(h_dir(), 0711) == -1)
		bail("chmod %s: %s", h_dir(), strerror(errno));
	h_preload("faultshim.so");
	setenv("FAULTSHIM_DEPTH", "1", 1);
	setenv("FAULTSHIM_EPOLL_FILE", h_path("epoll.errno"), 1);
	setenv("FAULTSHIM_ACCEPT_FILE", h_path("accept.errno"), 1);
	master = h_sluiced_start(conf("b.conf", servers, ap, NULL), lp, 2);
	h_preload(NULL);
	unsetenv("FAULTSHIM_DEPTH");
	unsetenv("FAULTSHIM_EPOLL_FILE");
	unsetenv("FAULTSHIM_ACCEPT_FILE");
	apid = wait_admin(apid);
	ok(apid != 0 && wait_get(ap, "/healthz", 200, "ok"), "a new master serves /healthz");
	{
		pid_t pids[64];
		int n = h_stats_running(pids, 64, 0);

		h_write_file(h_path("epoll.errno"), "%d\n", ENOMEM);
		for (int i = 0; i < n; i++)
			kill(pids[i], SIGKILL);
		ok(n > 0 && wait_get(ap, "/healthz", 503, "no worker running"),
		    "/healthz: 503 no worker running while none can start");
		unlink(h_path("epoll.errno"));
		ok(wait_get(ap, "/healthz", 200, "ok"), "200 again once they run");
	}

	/* Out of descriptors (the injector fails its accepts with EMFILE):
	 * accepting pauses instead of spinning on the readable socket, and
	 * resumes once descriptors are back. */
	{
		const char *req = "GET /healthz HTTP/1.0\r\n\r\n";
		int fd, lines, st = -1;
		char answer[4096];
		ssize_t n;

		h_write_file(h_path("accept.errno"), "%d\n", EMFILE);
		fd = h_connect(ap, 5000);
		if (fd != -1 && send(fd, req, strlen(req), MSG_NOSIGNAL) < 0)
			diag("send: %s", strerror(errno));
		ok(h_wait_file_contains(h_path("sluiced.log"), "admin: accept (paused", WAIT_MS),
		    "out of descriptors, accepting pauses and says so");
		/* Time for a spin to show, were there one. */
		h_nap(300);
		lines = h_count_lines(h_path("sluiced.log"), "admin: accept");
		unlink(h_path("accept.errno"));
		n = fd != -1 ? h_read_n(fd, answer, sizeof(answer) - 1, WAIT_MS) : -1;
		answer[n > 0 ? n : 0] = '\0';
		if (n <= 0 || sscanf(answer, "HTTP/1.1 %d ", &st) != 1)
			st = 0;
		ok(lines <= 3, "  without spinning (%d accept warnings)", lines);
		is(st, 200, "the waiting client is served once descriptors are back");
		if (fd != -1)
			close(fd);
	}

	/* A stop waits for the admin process too. */
	/* Stopped, it cannot obey the TERM: the master must wait for it
	 * (and kill it at the stop deadline) rather than leave it behind. */
	if (apid != 0)
		kill(apid, SIGSTOP);
	kill(master, SIGTERM);
	ok(h_wait_exit(master, WAIT_MS, NULL) == 0 && apid != 0 && !h_alive(apid),
	    "SIGTERM: the master exits only after its admin process");
	if (apid != 0 && h_alive(apid))
		kill(apid, SIGKILL);
	done_testing();
	return tap_exit();
}
