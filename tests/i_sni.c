/* SPDX-License-Identifier: BSD-2-Clause */
/* i_sni.c — integration test of routing by TLS server name (SNI) and ALPN
 * through the real daemon, with real TLS on both sides: openssl s_server
 * upstreams (each its own self-signed certificate, made in the test's
 * directory, so the client sees which one it reached; -rev sends each line
 * back reversed, so the bytes are checked both ways), openssl s_client and
 * curl --resolve as clients. Exact names, case, wildcards, the longest
 * wildcard, ALPN rules, no SNI, the default; with no default a hello no rule
 * takes is refused; a reload changes the rules for new clients. The test
 * plays upstreams itself to see the relayed bytes exactly: a hello
 * fragmented over records and writes, behind a PROXY header, with sluice's
 * own PROXY header in front of it upstream. Failure paths: nothing sent, half a hello, garbage, an oversized
 * hello, a client leaving early; each closed and counted (sluicestat, the
 * connection log). Config errors through sluiced -t. Loopback only; every
 * process it starts is killed by pid. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "tap.h"
#include "tls_hellos.h"

#define WAIT 15000 /* ms: generous bound for anything that should be quick */

static int port_a, port_b, port_d, port_w;     /* s_server upstreams */
static int port_l0, port_l1, port_l2, port_l3; /* sluice listeners */
static int be_pa, be_pd, port_pa, port_pd;     /* upstreams the test plays */

static int
have(const char *prog)
{
	char *argv[] = {(char *)"sh", (char *)"-c", NULL, NULL};
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null", prog);
	argv[2] = cmd;
	return h_run(argv, NULL, WAIT) == 0;
}

static void
make_cert(const char *name)
{
	char key[256], crt[256], subj[128];
	char *argv[] = {(char *)"openssl", (char *)"req", (char *)"-x509", (char *)"-newkey",
	    (char *)"rsa:2048", (char *)"-nodes", (char *)"-keyout", key, (char *)"-out", crt,
	    (char *)"-days", (char *)"2", (char *)"-subj", subj, NULL};
	char *out = NULL;

	snprintf(key, sizeof(key), "%s", h_path(name));
	strncat(key, ".key", sizeof(key) - strlen(key) - 1);
	snprintf(crt, sizeof(crt), "%s", h_path(name));
	strncat(crt, ".crt", sizeof(crt) - strlen(crt) - 1);
	snprintf(subj, sizeof(subj), "/CN=%s.example.com", name);
	if (h_run(argv, &out, 60000) != 0)
		bail("openssl req for %s failed: %s", name, out ? out : "");
	free(out);
}

static void
start_server(const char *name, int port, const char *mode)
{
	char key[256], crt[256], p[16];
	char *argv[] = {(char *)"openssl", (char *)"s_server", (char *)"-accept", p,
	    (char *)"-cert", crt, (char *)"-key", key, (char *)mode, (char *)"-quiet", NULL};

	snprintf(p, sizeof(p), "%d", port);
	snprintf(key, sizeof(key), "%s.key", h_path(name));
	snprintf(crt, sizeof(crt), "%s.crt", h_path(name));
	h_spawn(argv, h_path("servers.log"));
	if (h_wait_listening(port, WAIT) == -1)
		bail("s_server %s on %d did not start", name, port);
}

/* A line of n pseudo-random letters and digits (seeded), newline-ended. */
static void
make_line(char *buf, size_t n, unsigned seed)
{
	static const char set[] = "abcdefghijklmnopqrstuvwxyz0123456789";

	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		buf[i] = set[(seed >> 16) % (sizeof(set) - 1)];
	}
	buf[n] = '\n';
	buf[n + 1] = '\0';
}

/*
 * openssl s_client to listener port with server name sni (NULL: none) and
 * alpn (NULL: none): send a line, wait for it to come back reversed (an
 * s_server -rev upstream), then close. subject gets the CN of the server's
 * certificate. Returns 0 when the line came back reversed, -1 otherwise.
 */
static int
tls_talk(int port, const char *sni, const char *alpn, unsigned seed, char *subject, size_t slen)
{
	int in[2], out[2], rc = -1;
	char line[1100], rev[1100], conn[64], *acc = NULL;
	size_t n = 1000, have_n = 0, cap = 0;
	uint64_t deadline = h_now_ms() + WAIT;
	pid_t pid;

	make_line(line, n, seed);
	for (size_t i = 0; i < n; i++)
		rev[i] = line[n - 1 - i];
	rev[n] = '\0';
	snprintf(subject, slen, "-");
	snprintf(conn, sizeof(conn), "127.0.0.1:%d", port);
	if (pipe(in) == -1 || pipe(out) == -1)
		bail("pipe: %s", strerror(errno));
	pid = fork();
	if (pid == -1)
		bail("fork: %s", strerror(errno));
	if (pid == 0) {
		const char *argv[16];
		int k = 0, null = open("/dev/null", O_WRONLY);

		dup2(in[0], 0);
		dup2(out[1], 1);
		dup2(null, 2);
		close(in[1]);
		close(out[0]);
		argv[k++] = "openssl";
		argv[k++] = "s_client";
		argv[k++] = "-connect";
		argv[k++] = conn;
		if (sni != NULL) {
			argv[k++] = "-servername";
			argv[k++] = sni;
		} else {
			argv[k++] = "-noservername";
		}
		if (alpn != NULL) {
			argv[k++] = "-alpn";
			argv[k++] = alpn;
		}
		argv[k] = NULL;
		execvp("openssl", (char *const *)argv);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	if (write(in[1], line, n + 1) != (ssize_t)(n + 1))
		diag("s_client: short write");
	while (h_now_ms() < deadline) {
		struct pollfd p = {.fd = out[0], .events = POLLIN};
		ssize_t r;

		if (poll(&p, 1, 100) <= 0)
			continue;
		if (have_n + 4096 + 1 > cap) {
			cap = cap ? cap * 2 : 16384;
			if ((acc = realloc(acc, cap)) == NULL)
				bail("out of memory");
		}
		r = read(out[0], acc + have_n, 4096);
		if (r <= 0)
			break;
		have_n += (size_t)r;
		acc[have_n] = '\0';
		if (strstr(acc, rev) != NULL) {
			rc = 0;
			break;
		}
	}
	if (acc != NULL) {
		char *s = strstr(acc, "subject=CN = ");

		if (s != NULL) {
			s += strlen("subject=CN = ");
			snprintf(subject, slen, "%.*s", (int)strcspn(s, "\r\n"), s);
		}
	}
	close(in[1]);
	close(out[0]);
	if (h_wait_exit(pid, WAIT, NULL) == -1)
		h_kill(pid);
	free(acc);
	return rc;
}

/* One s_client exchange: the server it reached (by certificate) and the
 * bytes both ways. */
static void
route_is(int port, const char *sni, const char *alpn, const char *want, const char *what)
{
	static unsigned seed = 1;
	char subject[128];
	int rc = tls_talk(port, sni, alpn, seed++, subject, sizeof(subject));

	ok(rc == 0 && strcmp(subject, want) == 0, "%s: reached %s, 1000 bytes intact both ways",
	    what, want);
	if (rc != 0 || strcmp(subject, want) != 0)
		diag("  rc %d, certificate CN \"%s\"", rc, subject);
}

static void
write_all(int fd, const void *d, size_t n)
{
	if (write(fd, d, n) != (ssize_t)n)
		diag("short write to sluice: %s", strerror(errno));
}

/* curl --resolve NAME:PORT:127.0.0.1 https://NAME:PORT/: the output
 * (verbose, with the certificate) into *out. Returns curl's status. */
static int
curl_get(const char *name, int port, char **out)
{
	char resolve[256], url[256];
	char *argv[] = {(char *)"curl", (char *)"-sS", (char *)"-k", (char *)"-v",
	    (char *)"--max-time", (char *)"10", (char *)"--resolve", resolve, (char *)"-w",
	    (char *)"\nstatus=%{http_code}\n", url, NULL};

	snprintf(resolve, sizeof(resolve), "%s:%d:127.0.0.1", name, port);
	snprintf(url, sizeof(url), "https://%s:%d/", name, port);
	return h_run(argv, out, WAIT);
}

static void
test_real_clients(void)
{
	char *out = NULL;
	int rc;

	route_is(port_l1, "a.example.com", NULL, "a.example.com",
	    "exact name (beats a wildcard listed before it)");
	route_is(port_l1, "A.EXAMPLE.Com", NULL, "a.example.com", "exact name, other case");
	route_is(port_l1, "a.example.com", "acme-tls/1", "b.example.com",
	    "exact name with the alpn of a rule before it");
	route_is(port_l1, "a.example.com", "h2,http/1.1", "a.example.com",
	    "exact name, an alpn no rule names");
	route_is(port_l1, "x.example.com", NULL, "b.example.com", "wildcard, one label");
	route_is(port_l1, "deep.x.example.com", NULL, "b.example.com", "wildcard, two labels");
	route_is(port_l1, "example.com", NULL, "d.example.com", "bare suffix: the default");
	route_is(port_l1, "other.org", NULL, "d.example.com", "unknown name: the default");
	route_is(port_l1, NULL, NULL, "d.example.com", "no SNI: the default");
	route_is(port_l1, NULL, "x-only", "a.example.com", "no SNI, alpn of a nameless rule");
	route_is(port_l1, "other.org", "x-only,h2", "a.example.com",
	    "unknown name, alpn of a nameless rule");
	{
		/* The web server (-www) does not send lines back: its certificate
		 * alone says it was reached. */
		char subject[128];

		tls_talk(port_l1, "q.web.example.com", "x-only", 99, subject, sizeof(subject));
		is_str(subject, "web.example.com", "longest wildcard beats a nameless rule");
	}

	rc = curl_get("www.web.example.com", port_l1, &out);
	ok(rc == 0 && out != NULL && strstr(out, "subject: CN=web.example.com") != NULL &&
	        strstr(out, "status=200") != NULL && strstr(out, "s_server") != NULL,
	    "curl --resolve: longest wildcard reaches the web server, HTTP 200 with its page");
	if (rc != 0 || out == NULL || strstr(out, "status=200") == NULL)
		diag("  curl status %d: %.600s", rc, out ? out : "");
	free(out);
	out = NULL;
	curl_get("a.example.com", port_l1, &out);
	ok(out != NULL && strstr(out, "subject: CN=a.example.com") != NULL &&
	        strstr(out, "SSL connection using") != NULL,
	    "curl --resolve a.example.com: TLS completed with server a");
	free(out);
}

/* The PROXY v1 line sluice sends first (up to CRLF), into line: 1 when it
 * starts with prefix. */
static int
proxy_line(int b, const char *prefix, char *line, size_t len)
{
	size_t n = 0;

	line[0] = '\0';
	while (n + 1 < len && h_read_n(b, line + n, 1, WAIT) == 1) {
		line[++n] = '\0';
		if (n >= 2 && line[n - 2] == '\r' && line[n - 1] == '\n')
			return strncmp(line, prefix, strlen(prefix)) == 0;
	}
	return 0;
}

/* A fragmented hello behind a PROXY header, sent over several writes, to a
 * backend the test plays: the backend gets our PROXY header, then exactly
 * the hello and what followed, and its answer comes back. */
static void
test_exact_bytes(void)
{
	static uint8_t frag[4096], got[4096];
	const uint8_t *hs = hello_openssl + 5;
	size_t hl = hello_openssl_len - 5, n = 0;
	const char *tail = "after-the-hello";
	char hdr[64], line[128];
	int c, b;

	/* re-cut into records of 40 bytes */
	for (size_t i = 0; i < hl; i += 40) {
		size_t m = hl - i < 40 ? hl - i : 40;

		frag[n++] = 0x16;
		frag[n++] = 0x03;
		frag[n++] = 0x01;
		frag[n++] = 0;
		frag[n++] = (uint8_t)m;
		memcpy(frag + n, hs + i, m);
		n += m;
	}
	memcpy(frag + n, tail, strlen(tail));
	n += strlen(tail);

	c = h_connect(port_l3, WAIT);
	snprintf(hdr, sizeof(hdr), "PROXY TCP4 192.0.2.9 127.0.0.1 4242 %d\r\n", port_l3);
	write_all(c, hdr, strlen(hdr));
	/* the hello in three writes, the first holding part of a record header */
	write_all(c, frag, 3);
	h_nap(50);
	write_all(c, frag + 3, 200);
	h_nap(50);
	write_all(c, frag + 203, n - 203);
	b = h_accept(be_pa, WAIT);
	ok(b != -1,
	    "PROXY header + fragmented hello for a.example.com: routed to its rule's server");
	if (b == -1) {
		close(c);
		return;
	}
	ok(proxy_line(b, "PROXY TCP4 192.0.2.9 127.0.0.1 4242 ", line, sizeof(line)),
	    "  the server got sluice's PROXY header first, for the client the front named");
	ok(h_read_n(b, got, n, WAIT) == (ssize_t)n && memcmp(got, frag, n) == 0,
	    "  then the %zu bytes (hello in 40-byte records, then more) unchanged", n);
	write_all(b, "server-says-hi", 14);
	ok(h_read_n(c, got, 14, WAIT) == 14 && memcmp(got, "server-says-hi", 14) == 0,
	    "  and its answer reached the client");
	close(b);
	close(c);

	c = h_connect(port_l3, WAIT);
	write_all(c, hdr, strlen(hdr));
	write_all(c, hello_nosni, hello_nosni_len);
	b = h_accept(be_pd, WAIT);
	ok(b != -1 && proxy_line(b, "PROXY TCP4 192.0.2.9 ", line, sizeof(line)) &&
	        h_read_n(b, got, hello_nosni_len, WAIT) == (ssize_t)hello_nosni_len &&
	        memcmp(got, hello_nosni, hello_nosni_len) == 0,
	    "PROXY header + hello without SNI: the default, hello unchanged");
	if (b != -1)
		close(b);
	close(c);

	/* No default on listener 2: a.example.com goes to its rule. */
	c = h_connect(port_l2, WAIT);
	write_all(c, hello_curl, hello_curl_len);
	h_nap(20);
	write_all(c, "GET", 3);
	b = h_accept(be_pa, WAIT);
	ok(b != -1 && proxy_line(b, "PROXY TCP4 127.0.0.1 127.0.0.1 ", line, sizeof(line)) &&
	        h_read_n(b, got, hello_curl_len + 3, WAIT) == (ssize_t)hello_curl_len + 3 &&
	        memcmp(got, hello_curl, hello_curl_len) == 0 &&
	        memcmp(got + hello_curl_len, "GET", 3) == 0,
	    "no-default listener: curl's hello (www.example.com) routed by its rule, "
	    "after sluice's PROXY header, unchanged");
	if (b != -1)
		close(b);
	close(c);
}

/* A client whose hello is refused: closed by sluice, counted. */
static void
refused(int port, const void *d, size_t n, const char *counter, uint64_t *count, const char *what)
{
	int c = h_connect(port, WAIT);

	if (n > 0)
		write_all(c, d, n);
	ok(h_wait_closed(c, WAIT), "%s: closed by sluice", what);
	ok(h_wait_stat(counter, ++*count, WAIT), "  and counted as %s", counter);
	close(c);
}

static void
test_refusals(void)
{
	static uint8_t big[6000];
	uint64_t tls = h_stat("refused_tls_rejected"), route = h_stat("refused_no_route");
	int c;

	refused(port_l1, NULL, 0, "refused_tls_rejected", &tls, "nothing sent (timeouts.preread)");
	refused(port_l1, hello_openssl, 100, "refused_tls_rejected", &tls,
	    "half a hello, then nothing");
	refused(port_l1, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27, "refused_tls_rejected", &tls,
	    "garbage (HTTP)");
	refused(
	    port_l1, "\x80\x2e\x01\x03\x01", 5, "refused_tls_rejected", &tls, "an SSL 2.0 hello");
	/* A hello larger than pool.buffer_size (2K here): its length says so. */
	memcpy(big, "\x16\x03\x01\x10\x00\x01\x00\x0f\xfc\x03\x03", 11);
	refused(port_l1, big, 4101, "refused_tls_rejected", &tls, "a 4 KiB hello (buffer 2K)");
	/* A 2004-byte hello whose 41 record headers take it past the buffer. */
	{
		static uint8_t hs[2004];
		size_t n = 0;

		memset(hs, 0, sizeof(hs));
		memcpy(hs, "\x01\x00\x07\xd0\x03\x03", 6); /* ClientHello, 2000 bytes */
		memcpy(hs + 4 + 35, "\x07\xa0", 2);        /* cipher suites: 1952 bytes */
		for (size_t i = 0; i < sizeof(hs); i += 50) {
			size_t m = sizeof(hs) - i < 50 ? sizeof(hs) - i : 50;

			memcpy(big + n, "\x16\x03\x01\x00", 4);
			big[n + 4] = (uint8_t)m;
			memcpy(big + n + 5, hs + i, m);
			n += 5 + m;
		}
		refused(port_l1, big, n, "refused_tls_rejected", &tls,
		    "a 2004-byte hello in 41 records (2209 bytes, buffer 2K)");
	}
	/* Half a hello, then the client leaves. */
	c = h_connect(port_l1, WAIT);
	write_all(c, hello_curl, 50);
	h_nap(50);
	close(c);
	ok(h_wait_stat("refused_tls_rejected", ++tls, WAIT), "half a hello, client gone: counted");

	refused(port_l2, hello_nosni, hello_nosni_len, "refused_no_route", &route,
	    "no SNI, no default");
	refused(port_l2, hello_tls12, hello_tls12_len, "refused_no_route", &route,
	    "name no rule takes, no default");

	/* What sluicestat shows. */
	{
		char *argv[] = {(char *)h_sluicestat(), (char *)"-s", (char *)h_statsfile(), NULL};
		char *out = NULL, want[64];

		h_run(argv, &out, WAIT);
		snprintf(want, sizeof(want), "%llu", (unsigned long long)tls);
		ok(out != NULL && strstr(out, "refused_tls_rejected") != NULL &&
		        strstr(out, "refused_no_route") != NULL,
		    "sluicestat shows refused_tls_rejected and refused_no_route");
		free(out);
	}
}

static void
test_log(void)
{
	const char *log = h_path("sluiced.log");
	char want[128];

	snprintf(
	    want, sizeof(want), "server=127.0.0.1:%d upstream=a sni=a.example.com end=", port_a);
	ok(h_file_contains(log, want), "connection log: upstream a by rule a.example.com ($sni)");
	snprintf(
	    want, sizeof(want), "server=127.0.0.1:%d upstream=b sni=*.example.com end=", port_b);
	ok(h_file_contains(log, want), "connection log: upstream b by rule *.example.com");
	snprintf(want, sizeof(want), "server=127.0.0.1:%d upstream=d sni=- end=", port_d);
	ok(h_file_contains(log, want), "connection log: the default, sni=-");
	snprintf(want, sizeof(want),
	    "server=127.0.0.1:%d upstream=web sni=*.web.example.com end=", port_w);
	ok(h_file_contains(log, want), "connection log: upstream web by rule *.web.example.com");
	ok(h_file_contains(log, "reason=tls_rejected"), "connection log: reason=tls_rejected");
	ok(h_file_contains(log, "reason=preread_timeout"),
	    "connection log: reason=preread_timeout");
	ok(h_file_contains(log, "reason=no_route"), "connection log: reason=no_route");
	ok(h_file_contains(log, "refused: not TLS (no handshake record)"),
	    "the log says why a hello was refused");
	ok(h_file_contains(log, "refused: ClientHello too large"), "  and when it was too large");
	ok(h_file_contains(log, "server name \"a.example.com\" goes to a (sni rule)"),
	    "debug log: the name and the upstream chosen");
}

/* sluiced -t refuses what a worker would, naming the file, line and
 * setting. */
static void
conf_error(const char *listener_extra, const char *needle, const char *what)
{
	const char *path = h_path("bad.conf");
	char *argv[] = {(char *)h_sluiced(), (char *)"-t", (char *)"-c", (char *)path, NULL};
	char *out = NULL;
	int rc;

	h_write_file(path,
	    "pid_file = \"%s\";\nstats_file = \"%s\";\n"
	    "upstreams = ( { name = \"a\"; servers = ( \"127.0.0.1:1\" ); } );\n"
	    "listeners = ( { listen = \"127.0.0.1:1\";\n%s\n} );\n",
	    h_pidfile(), h_statsfile(), listener_extra);
	rc = h_run(argv, &out, WAIT);
	ok(rc != 0 && out != NULL && strstr(out, needle) != NULL, "sluiced -t: %s", what);
	if (rc == 0 || out == NULL || strstr(out, needle) == NULL)
		diag("  status %d: %s", rc, out ? out : "");
	free(out);
}

static void
test_conf(void)
{
	conf_error("upstream = \"a\"; sni = ( { name = \"a.*.com\"; upstream = \"a\"; } );",
	    "bad.conf:5: listeners[0].sni[0].name: \"a.*.com\" is not a host name",
	    "wildcard not in front");
	conf_error("upstream = \"a\"; sni = ( { name = \"*\"; upstream = \"a\"; } );",
	    "is not a host name", "a bare *");
	conf_error("upstream = \"a\"; sni = ( { name = \"a b\"; upstream = \"a\"; } );",
	    "is not a host name", "a space in a name");
	conf_error("upstream = \"a\"; sni = ( { name = \"x.org\"; upstream = \"nope\"; } );",
	    "upstream \"nope\" is not defined", "unknown upstream in a rule");
	conf_error("upstream = \"a\"; sni = ( { upstream = \"a\"; } );",
	    "a rule needs a name, an alpn or both", "a rule with neither name nor alpn");
	conf_error("upstream = \"a\"; sni = ( { name = \"x.org\"; } );", "a rule needs an upstream",
	    "a rule without upstream");
	conf_error("upstream = \"a\"; sni = ( { name = \"X.org\"; upstream = \"a\"; },\n"
	           "{ name = \"x.org\"; upstream = \"a\"; } );",
	    "the same name and alpn as sni[0]", "a duplicate rule");
	conf_error(
	    "upstream = \"a\"; sni = ( { name = \"x.org\"; alpn = \"\"; upstream = \"a\"; } );",
	    "an ALPN protocol is 1 to 255 bytes", "an empty alpn");
	conf_error("upstream = \"a\"; sni = ( { name = \"x.org\"; upstream = \"a\"; port = 1; } );",
	    "unknown setting \"port\"", "an unknown setting in a rule");
	conf_error("upstream = \"a\"; sni = ();", "expected a list", "an empty sni list");
	conf_error("", "a listener needs an upstream", "no upstream and no sni rules");
}

static char conf[8192];

/* The config, with the upstream of the a.example.com rule. */
static void
write_conf(const char *path, const char *a_rule)
{
	snprintf(conf, sizeof(conf),
	    "workers = 2;\n"
	    "pid_file = \"%s\";\nstats_file = \"%s\";\n"
	    "log = { target = \"stderr\"; level = \"debug\"; connections = true;\n"
	    "  format = \"connection client=$client server=$server upstream=$upstream sni=$sni "
	    "end=$end reason=$close_reason\"; };\n"
	    "pool = { buffer_size = \"2K\"; };\n"
	    "timeouts = { preread = \"1s\"; };\n"
	    "upstreams = (\n"
	    " { name = \"a\"; servers = ( \"127.0.0.1:%d\" ); },\n"
	    " { name = \"b\"; servers = ( \"127.0.0.1:%d\" ); },\n"
	    " { name = \"d\"; servers = ( \"127.0.0.1:%d\" ); },\n"
	    " { name = \"web\"; servers = ( \"127.0.0.1:%d\" ); },\n"
	    " { name = \"pa\"; servers = ( \"127.0.0.1:%d\" ); },\n"
	    " { name = \"pd\"; servers = ( \"127.0.0.1:%d\" ); } );\n"
	    "listeners = (\n"
	    " { listen = \"127.0.0.1:%d\"; upstream = \"d\"; },\n"
	    " { listen = \"127.0.0.1:%d\"; upstream = \"d\";\n"
	    "   sni = ( { name = \"*.example.com\"; upstream = \"b\"; },\n"
	    "           { name = \"a.example.com\"; alpn = \"acme-tls/1\"; upstream = \"b\"; },\n"
	    "           { name = \"A.example.com\"; upstream = \"%s\"; },\n"
	    "           { alpn = \"x-only\"; upstream = \"a\"; },\n"
	    "           { name = \"*.web.example.com\"; upstream = \"web\"; } ); },\n"
	    " { listen = \"127.0.0.1:%d\"; proxy_protocol = \"v1\";\n"
	    "   sni = ( { name = \"www.example.com\"; upstream = \"pa\"; } ); },\n"
	    " { listen = \"127.0.0.1:%d\"; upstream = \"pd\"; proxy_protocol = \"v1\";\n"
	    "   accept_proxy = \"v1\"; trusted = ( \"127.0.0.0/8\" );\n"
	    "   sni = ( { name = \"a.example.com\"; upstream = \"pa\"; } ); } );\n",
	    h_pidfile(), h_statsfile(), port_a, port_b, port_d, port_w, port_pa, port_pd, port_l0,
	    port_l1, a_rule, port_l2, port_l3);
	h_write_file(path, "%s", conf);
}

/* SIGHUP with the a.example.com rule pointing at b: new clients follow. */
static void
test_reload(pid_t pid, const char *path)
{
	uint64_t deadline = h_now_ms() + WAIT;
	pid_t pids[8];

	write_conf(path, "b");
	ok(kill(pid, SIGHUP) == 0, "reload with a.example.com routed to b");
	while (h_now_ms() < deadline &&
	       !(h_stats_generation() == 2 && h_stats_running(pids, 8, 2) == 2))
		h_nap(20);
	ok(h_stats_generation() == 2 && h_stats_running(pids, 8, 2) == 2, "  generation 2 runs");
	route_is(port_l1, "a.example.com", NULL, "b.example.com", "after the reload, exact name");
	route_is(port_l1, "x.example.com", NULL, "b.example.com", "after the reload, wildcard");
	route_is(port_l1, "other.org", NULL, "d.example.com", "after the reload, the default");
}

int
main(void)
{
	char path[512];
	pid_t pid;

	signal(SIGPIPE, SIG_IGN);
	if (!have("openssl") || !have("curl")) {
		printf("1..0 # SKIP openssl and curl are needed for real TLS peers\n");
		return 0;
	}
	test_conf();
	for (int i = 0; i < 4; i++)
		make_cert((const char *[]){"a", "b", "d", "web"}[i]);
	port_a = h_free_port();
	port_b = h_free_port();
	port_d = h_free_port();
	port_w = h_free_port();
	port_pa = h_free_port();
	port_pd = h_free_port();
	port_l0 = h_free_port();
	port_l1 = h_free_port();
	port_l2 = h_free_port();
	port_l3 = h_free_port();
	start_server("a", port_a, "-rev");
	start_server("b", port_b, "-rev");
	start_server("d", port_d, "-rev");
	start_server("web", port_w, "-www");
	be_pa = h_listen(port_pa);
	be_pd = h_listen(port_pd);
	/* h_path's buffers rotate: the reload needs the path later. */
	snprintf(path, sizeof(path), "%s", h_path("sni.conf"));
	write_conf(path, "a");

	/* Started on the plain listener: a probe of an sni one would count. */
	pid = h_sluiced_start(path, port_l0, 2);

	test_real_clients();
	test_exact_bytes();
	test_refusals();
	test_log();
	test_reload(pid, path);

	h_kill(pid);
	done_testing();
	return tap_exit();
}
