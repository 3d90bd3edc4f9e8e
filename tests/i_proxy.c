/* SPDX-License-Identifier: BSD-2-Clause */
/* i_proxy.c — integration test of the PROXY protocol through the real daemon.
 * The test plays the upstream server itself and parses what sluice sends it:
 * v1 and v2 headers written before any client byte; headers accepted from a
 * trusted front (v1, v2, LOCAL, split across many writes) and stripped, the
 * bytes after them relayed; malformed, untrusted, slow and truncated headers
 * refused and counted; v2 TLVs checked (a malformed one refused while other
 * clients are served); the PROXY address judged by deny lists and forwarded.
 * Then interop with real peers when installed: nginx behind sluice logging
 * $proxy_protocol_addr, HAProxy with send-proxy-v2 in front of sluice. Only
 * loopback traffic; every process it starts is killed by pid. */
#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "proxy.h"
#include "tap.h"

#define WAIT 10000 /* ms: generous bound for anything that should be quick */

static int backend; /* the test's own upstream listener */

/* What the backend saw on one connection: the header's raw bytes and what
 * it said, then the payload. */
struct seen {
	int fd;
	uint8_t header[PROXY_V2_FIXED + PROXY_V2_LEN_MAX];
	size_t hlen;
	struct proxy_info info;
	char payload[256];
	size_t plen;
};

/* Accept the next connection sluice makes to the backend; parse a header of
 * `versions` first unless versions is 0; then read want payload bytes. */
static int
backend_take(int versions, size_t want, struct seen *sn)
{
	memset(sn, 0, sizeof(*sn));
	sn->fd = h_accept(backend, WAIT);
	if (sn->fd == -1) {
		diag("backend: no connection from sluice: %s", strerror(errno));
		return -1;
	}
	if (versions) {
		int n = h_read_proxy(sn->fd, versions, sn->header, sizeof(sn->header), &sn->info,
		    WAIT);

		if (n == -1)
			return -1;
		sn->hlen = (size_t)n;
	}
	if (want > 0) {
		ssize_t n = h_read_n(sn->fd, sn->payload, want, WAIT);

		sn->plen = n > 0 ? (size_t)n : 0;
	}
	return 0;
}

static const char *
fmt(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (ss->ss_family == AF_INET) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, a, sizeof(a));
		port = ntohs(((const struct sockaddr_in *)ss)->sin_port);
	} else if (ss->ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, a, sizeof(a));
		port = ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	}
	snprintf(buf, len, "%s:%u", a, port);
	return buf;
}

static int
send_all(int fd, const void *buf, size_t len)
{
	return send(fd, buf, len, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -1;
}

/* The backend answers and the client reads it: the relay works both ways. */
static int
round_trip(int client, struct seen *sn)
{
	char buf[8];

	if (send_all(sn->fd, "pong", 4) == -1 || h_read_n(client, buf, 4, WAIT) != 4)
		return 0;
	return memcmp(buf, "pong", 4) == 0;
}

static void
done(int client, struct seen *sn)
{
	close(client);
	if (sn->fd > 0)
		close(sn->fd);
	sn->fd = -1;
}

static void
test_send(int l1, int l2)
{
	struct seen sn;
	char want[128], a[80], b[80];
	int c;

	/* v1 */
	c = h_connect_from("127.0.0.2", l1, WAIT);
	if (c == -1)
		bail("connect from 127.0.0.2: %s", strerror(errno));
	send_all(c, "hello", 5);
	ok(backend_take(PROXY_V1, 5, &sn) == 0 && sn.plen == 5 && memcmp(sn.payload, "hello", 5) == 0,
	    "proxy_protocol v1: the backend gets a header, then the client's bytes");
	snprintf(want, sizeof(want), "PROXY TCP4 127.0.0.2 127.0.0.1 %u %d\r\n", h_local_port(c), l1);
	ok(sn.hlen == strlen(want) && memcmp(sn.header, want, sn.hlen) == 0,
	    "  the v1 line names the client and the listener: %.*s", (int)strcspn(want, "\r"), want);
	ok(round_trip(c, &sn), "  and the relay works both ways after it");
	done(c, &sn);

	/* v2 */
	c = h_connect_from("127.0.0.3", l2, WAIT);
	if (c == -1)
		bail("connect from 127.0.0.3: %s", strerror(errno));
	send_all(c, "hello", 5);
	ok(backend_take(PROXY_V2, 5, &sn) == 0 && sn.plen == 5 && memcmp(sn.payload, "hello", 5) == 0,
	    "proxy_protocol v2: the backend gets a header, then the client's bytes");
	snprintf(want, sizeof(want), "127.0.0.3:%u", h_local_port(c));
	snprintf(want + 64, sizeof(want) - 64, "127.0.0.1:%d", l2);
	ok(sn.hlen == 28 && sn.header[12] == 0x21 && sn.header[13] == 0x11 && !sn.info.local &&
	       strcmp(fmt(&sn.info.src, a, sizeof(a)), want) == 0 &&
	       strcmp(fmt(&sn.info.dst, b, sizeof(b)), want + 64) == 0,
	    "  the 28-byte v2 header (PROXY, TCP4) says %s -> %s", a, b);
	ok(round_trip(c, &sn), "  and the relay works both ways after it");
	done(c, &sn);

	/* The header is written even when the client says nothing first. */
	c = h_connect_from("127.0.0.2", l1, WAIT);
	ok(c != -1 && backend_take(PROXY_V1, 0, &sn) == 0 && sn.hlen > 0,
	    "proxy_protocol v1 is sent at connect, before the client sends anything");
	ok(round_trip(c, &sn), "  (a server-speaks-first protocol works)");
	done(c, &sn);
}

static void
test_accept(int l3, int l4)
{
	static const char v1[] = "PROXY TCP4 198.51.100.7 192.0.2.1 4242 443\r\n";
	uint8_t v2[64];
	struct sockaddr_in src = {.sin_family = AF_INET}, dst = {.sin_family = AF_INET};
	struct seen sn;
	char msg[256], a[80], b[80], want[80];
	size_t n;
	int c, hl;

	/* v1 from a trusted front, the payload in the same write. */
	c = h_connect_from("127.0.0.5", l3, WAIT);
	n = (size_t)snprintf(msg, sizeof(msg), "%spayload-after-header", v1);
	send_all(c, msg, n);
	ok(backend_take(0, 20, &sn) == 0 && sn.plen == 20 &&
	       memcmp(sn.payload, "payload-after-header", 20) == 0,
	    "accept_proxy v1: the header is stripped, the bytes after it relayed");
	ok(round_trip(c, &sn), "  and the relay works both ways");
	done(c, &sn);

	/* The same header a byte per write, then the payload. */
	c = h_connect_from("127.0.0.5", l3, WAIT);
	for (size_t i = 0; i < strlen(v1); i++) {
		send_all(c, v1 + i, 1);
		poll(NULL, 0, 2); /* pacing, so that sluice sees many reads */
	}
	send_all(c, "after", 5);
	ok(backend_take(0, 5, &sn) == 0 && sn.plen == 5 && memcmp(sn.payload, "after", 5) == 0,
	    "accept_proxy v1 split into %zu writes", strlen(v1));
	done(c, &sn);

	/* v2 naming 198.51.100.7:4242 -> 192.0.2.1:443, forwarded as v2. */
	inet_pton(AF_INET, "198.51.100.7", &src.sin_addr);
	src.sin_port = htons(4242);
	inet_pton(AF_INET, "192.0.2.1", &dst.sin_addr);
	dst.sin_port = htons(443);
	hl = proxy_build(PROXY_V2, (struct sockaddr *)&src, (struct sockaddr *)&dst, v2, sizeof(v2));
	c = h_connect_from("127.0.0.1", l4, WAIT);
	send_all(c, v2, (size_t)hl);
	send_all(c, "abc", 3);
	ok(backend_take(PROXY_V2, 3, &sn) == 0 && sn.plen == 3 && memcmp(sn.payload, "abc", 3) == 0,
	    "accept_proxy any + proxy_protocol v2: a v2 client header is replaced by ours");
	ok(strcmp(fmt(&sn.info.src, a, sizeof(a)), "198.51.100.7:4242") == 0 &&
	       strcmp(fmt(&sn.info.dst, b, sizeof(b)), "192.0.2.1:443") == 0,
	    "  which carries the original client and destination (%s -> %s)", a, b);
	ok(round_trip(c, &sn), "  and the relay works both ways");
	done(c, &sn);

	/* v2 LOCAL (a health check by the front): the real endpoints. */
	hl = proxy_build(PROXY_V2, NULL, NULL, v2, sizeof(v2));
	c = h_connect_from("127.0.0.1", l4, WAIT);
	send_all(c, v2, (size_t)hl);
	send_all(c, "xyz", 3);
	snprintf(want, sizeof(want), "127.0.0.1:%u", h_local_port(c));
	ok(backend_take(PROXY_V2, 3, &sn) == 0 && sn.plen == 3 &&
	       strcmp(fmt(&sn.info.src, a, sizeof(a)), want) == 0,
	    "a v2 LOCAL header is accepted and the real client (%s) forwarded", a);
	done(c, &sn);

	/* v1 on the "any" listener too. */
	c = h_connect_from("127.0.0.1", l4, WAIT);
	send_all(c, v1, strlen(v1));
	ok(backend_take(PROXY_V2, 0, &sn) == 0 &&
	       strcmp(fmt(&sn.info.src, a, sizeof(a)), "198.51.100.7:4242") == 0,
	    "accept_proxy any takes v1 as well (%s)", a);
	done(c, &sn);
}

/* Connections that must be refused: closed by sluice, counted, and never
 * reaching the backend. */
static void
test_refuse(int l3, int l4)
{
	uint64_t rej = h_stat("refused_proxy_rejected"), acl = h_stat("refused_acl_denied");
	static const char bad[] = "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n";
	int c;

	c = h_connect_from("127.0.0.5", l3, WAIT);
	send_all(c, bad, strlen(bad));
	ok(h_wait_closed(c, WAIT), "a malformed header (LF without CR) is refused");
	close(c);
	ok(h_wait_stat("refused_proxy_rejected", rej + 1, WAIT), "  and counted as proxy_rejected");

	c = h_connect_from("127.0.0.5", l3, WAIT);
	send_all(c, "GET / HTTP/1.0\r\n\r\n", 18);
	ok(h_wait_closed(c, WAIT), "plain HTTP where a header is required is refused");
	close(c);
	ok(h_wait_stat("refused_proxy_rejected", rej + 2, WAIT), "  and counted");

	c = h_connect_from("127.0.0.2", l4, WAIT);
	ok(c != -1 && h_wait_closed(c, WAIT),
	    "a client outside trusted (127.0.0.2 on a listener trusting 127.0.0.1) is refused");
	close(c);
	ok(h_wait_stat("refused_proxy_rejected", rej + 3, WAIT), "  and counted");

	c = h_connect_from("127.0.0.5", l3, WAIT);
	send_all(c, "PROXY TCP4 ", 11);
	ok(h_wait_closed(c, WAIT),
	    "a header that stops half way is refused at timeouts.proxy_header (1 s)");
	close(c);
	ok(h_wait_stat("refused_proxy_rejected", rej + 4, WAIT), "  and counted");

	c = h_connect_from("127.0.0.5", l3, WAIT);
	send_all(c, "PROXY TCP4 1.2", 14);
	shutdown(c, SHUT_WR);
	ok(h_wait_closed(c, WAIT), "a header cut short by the client's FIN is refused");
	close(c);
	ok(h_wait_stat("refused_proxy_rejected", rej + 5, WAIT), "  and counted");

	c = h_connect_from("127.0.0.1", l4, WAIT);
	send_all(c, "PROXY TCP4 203.0.113.9 192.0.2.1 1000 443\r\nsecret", 48);
	ok(h_wait_closed(c, WAIT),
	    "deny applies to the address the header names (203.0.113.9 in 203.0.113.0/24)");
	close(c);
	ok(h_wait_stat("refused_acl_denied", acl + 1, WAIT), "  and is counted as acl_denied");
}

/* A v2 header: the fixed part for ver_cmd and fam, then body (addresses and
 * TLVs) of blen bytes. Returns its length. */
static size_t
v2_header(uint8_t *out, uint8_t ver_cmd, uint8_t fam, const void *body, size_t blen)
{
	static const uint8_t sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49,
	    0x54, 0x0A};

	memcpy(out, sig, 12);
	out[12] = ver_cmd;
	out[13] = fam;
	out[14] = (uint8_t)(blen >> 8);
	out[15] = (uint8_t)blen;
	memcpy(out + 16, body, blen);
	return 16 + blen;
}

/* TCP4 198.51.100.7:4242 -> 192.0.2.1:443 */
#define ADDR4 "\xC6\x33\x64\x07\xC0\x00\x02\x01\x10\x92\x01\xBB"

/* One client with a malformed v2 TLV: closed by sluice, counted, logged with
 * the parser's reason. */
static void
refuse_tlv(int l4, const char *what, const uint8_t *h, size_t n, const char *reason,
    uint64_t *rej)
{
	int c = h_connect_from("127.0.0.1", l4, WAIT);

	ok(c != -1 && send_all(c, h, n) == 0 && send_all(c, "secret", 6) == 0 &&
	       h_wait_closed(c, WAIT),
	    "v2 with %s is refused", what);
	if (c != -1)
		close(c);
	ok(h_wait_stat("refused_proxy_rejected", ++*rej, WAIT), "  and counted as proxy_rejected");
	ok(h_wait_file_contains(h_path("sluiced.log"), reason, WAIT), "  and logged: \"%s\"",
	    reason);
}

/* The v2 TLVs checked through the daemon: a client with valid TLVs is served
 * while malformed ones (including LOCAL and UNSPEC headers, whose TLVs were
 * once skipped) are refused around it, and it keeps being served. */
static void
test_tlv(int l4)
{
	static const char good_tlvs[] = ADDR4
	    "\x02\x00\x0b" "example.com"
	    "\x05\x00\x04" "id-1"
	    "\x20\x00\x0f\x01\x00\x00\x00\x00" "\x21\x00\x07" "TLSv1.3";
	uint8_t h[512], body[400];
	uint64_t rej = h_stat("refused_proxy_rejected");
	struct seen held, sn;
	char a[80];
	size_t n;
	int c, held_fd;

	n = v2_header(h, 0x21, 0x11, good_tlvs, sizeof(good_tlvs) - 1);
	held_fd = h_connect_from("127.0.0.1", l4, WAIT);
	send_all(held_fd, h, n);
	send_all(held_fd, "tlv", 3);
	ok(backend_take(PROXY_V2, 3, &held) == 0 && held.plen == 3 &&
	       memcmp(held.payload, "tlv", 3) == 0 &&
	       strcmp(fmt(&held.info.src, a, sizeof(a)), "198.51.100.7:4242") == 0,
	    "v2 with AUTHORITY, UNIQUE_ID and SSL TLVs is accepted (client %s)", a);

	memcpy(body, ADDR4 "\x05\x00\x81", 15);
	memset(body + 15, 'i', 129);
	n = v2_header(h, 0x21, 0x11, body, 15 + 129);
	refuse_tlv(l4, "a 129-byte UNIQUE_ID", h, n, "v2 UNIQUE_ID TLV is longer than 128 bytes",
	    &rej);
	n = v2_header(h, 0x20, 0x00, "\x03\x00\x04\x00\x00\x00\x00", 7);
	refuse_tlv(l4, "LOCAL and a CRC32c that does not match", h, n,
	    "v2 header checksum (CRC32c TLV) does not match", &rej);
	n = v2_header(h, 0x21, 0x00, "\x20\x00\x0a\x01\x00\x00\x00\x00\x21\x00\x09TLS", 13);
	refuse_tlv(l4, "UNSPEC and an SSL sub-TLV past its SSL TLV", h, n,
	    "v2 SSL sub-TLV value runs past the SSL TLV", &rej);
	n = v2_header(h, 0x21, 0x11, ADDR4 "\x02\x00\x02\xc0\xaf", 17);
	refuse_tlv(l4, "an AUTHORITY that is not UTF-8", h, n,
	    "v2 AUTHORITY TLV is not valid UTF-8", &rej);

	ok(round_trip(held_fd, &held), "the client accepted before them is still relayed");
	done(held_fd, &held);
	n = v2_header(h, 0x20, 0x00, "\x30\x00\x04" "blue", 7);
	c = h_connect_from("127.0.0.1", l4, WAIT);
	send_all(c, h, n);
	send_all(c, "new", 3);
	ok(backend_take(PROXY_V2, 3, &sn) == 0 && sn.plen == 3 && memcmp(sn.payload, "new", 3) == 0,
	    "and a new client (v2 LOCAL with a NETNS TLV) is served after them");
	ok(round_trip(c, &sn), "  both ways");
	done(c, &sn);
}

static int
run_quiet(char *const argv[])
{
	char *out = NULL;
	int rc = h_run(argv, &out, 10000);

	free(out);
	return rc;
}

static int
have(const char *path)
{
	return access(path, X_OK) == 0;
}

/* nginx (http module) listening with proxy_protocol behind a sluice listener
 * that sends v1: its access log must show the original client. */
static void
test_nginx(int l5, int nport)
{
	const char *conf = h_path("nginx.conf"), *log = h_path("nginx-access.log");
	char *argv[] = {"/usr/sbin/nginx", "-p", (char *)h_dir(), "-c", (char *)conf, "-e",
	    (char *)h_path("nginx-error.log"), "-g", "daemon off; master_process off;", NULL};
	char want[64], buf[512];
	pid_t pid;
	ssize_t n;
	int c;

	if (!have("/usr/sbin/nginx")) {
		skip(2, "nginx is not installed (apt-get install nginx)");
		return;
	}
	h_write_file(conf,
	    "pid %s/nginx.pid;\n"
	    "events { worker_connections 64; }\n"
	    "http {\n"
	    "  client_body_temp_path %s; proxy_temp_path %s; fastcgi_temp_path %s;\n"
	    "  uwsgi_temp_path %s; scgi_temp_path %s;\n"
	    "  log_format pp 'pp=$proxy_protocol_addr:$proxy_protocol_port peer=$remote_addr';\n"
	    "  server {\n"
	    "    listen 127.0.0.1:%d proxy_protocol;\n"
	    "    access_log %s pp;\n"
	    "    location / { return 200 \"hello from nginx\\n\"; }\n"
	    "  }\n"
	    "}\n",
	    h_dir(), h_dir(), h_dir(), h_dir(), h_dir(), h_dir(), nport, log);
	pid = h_spawn(argv, h_path("nginx.out"));
	if (h_wait_listening(nport, WAIT) == -1) {
		ok(0, "nginx listens on %d", nport);
		skip(1, "nginx did not start");
		h_kill(pid);
		return;
	}
	c = h_connect_from("127.0.0.7", l5, WAIT);
	snprintf(buf, sizeof(buf), "GET / HTTP/1.0\r\nHost: test\r\n\r\n");
	send_all(c, buf, strlen(buf));
	n = h_read_n(c, buf, sizeof(buf) - 1, WAIT);
	buf[n > 0 ? n : 0] = '\0';
	ok(strstr(buf, "200") != NULL && strstr(buf, "hello from nginx") != NULL,
	    "nginx behind sluice (proxy_protocol v1) answers through it");
	snprintf(want, sizeof(want), "pp=127.0.0.7:%u ", h_local_port(c));
	close(c);
	ok(h_wait_file_contains(log, want, WAIT),
	    "nginx logs $proxy_protocol_addr = the original client (%s)", want);
	h_kill(pid);
}

/* HAProxy in front of sluice with send-proxy-v2; sluice accepts it and sends
 * v1 on to the test's backend, which must see the original client. */
static void
test_haproxy(int l6, int hport)
{
	const char *conf = h_path("haproxy.cfg");
	char *argv[] = {"/usr/sbin/haproxy", "-db", "-f", (char *)conf, NULL};
	char *check[] = {"/usr/sbin/haproxy", "-c", "-q", "-f", (char *)conf, NULL};
	char want[96];
	struct seen sn;
	pid_t pid;
	int c;

	if (!have("/usr/sbin/haproxy")) {
		skip(3, "haproxy is not installed (apt-get install haproxy)");
		return;
	}
	h_write_file(conf,
	    "global\n"
	    "  maxconn 100\n"
	    "defaults\n"
	    "  mode tcp\n"
	    "  timeout connect 5s\n"
	    "  timeout client 30s\n"
	    "  timeout server 30s\n"
	    "frontend fe\n"
	    "  bind 127.0.0.1:%d\n"
	    "  default_backend be\n"
	    "backend be\n"
	    "  server sluice 127.0.0.1:%d send-proxy-v2\n",
	    hport, l6);
	if (run_quiet(check) != 0) {
		ok(0, "haproxy accepts its config");
		skip(2, "haproxy config refused");
		return;
	}
	pid = h_spawn(argv, h_path("haproxy.out"));
	if (h_wait_listening(hport, WAIT) == -1) {
		ok(0, "haproxy listens on %d", hport);
		skip(2, "haproxy did not start");
		h_kill(pid);
		return;
	}
	c = h_connect_from("127.0.0.8", hport, WAIT);
	send_all(c, "through haproxy", 15);
	ok(c != -1 && backend_take(PROXY_V1, 15, &sn) == 0 && sn.plen == 15 &&
	       memcmp(sn.payload, "through haproxy", 15) == 0,
	    "HAProxy (send-proxy-v2) -> sluice (accept_proxy v2) -> backend relays");
	snprintf(want, sizeof(want), "PROXY TCP4 127.0.0.8 127.0.0.1 %u %d\r\n", h_local_port(c),
	    hport);
	ok(sn.hlen == strlen(want) && memcmp(sn.header, want, sn.hlen) == 0,
	    "  the backend sees the original client and HAProxy's address: %.*s",
	    (int)strcspn(want, "\r"), want);
	ok(round_trip(c, &sn), "  and answers reach the client");
	done(c, &sn);
	h_kill(pid);
}

int
main(void)
{
	int bport = h_free_port(), l1 = h_free_port(), l2 = h_free_port(), l3 = h_free_port();
	int l4 = h_free_port(), l5 = h_free_port(), l6 = h_free_port(), nport = h_free_port();
	int hport = h_free_port();
	const char *conf = h_path("sluice.conf");

	backend = h_listen(bport);
	h_write_file(conf,
	    "workers = 2;\n"
	    "pid_file = \"%s\";\n"
	    "stats_file = \"%s\";\n"
	    "log = { target = \"stderr\"; level = \"debug\"; };\n"
	    "timeouts = { proxy_header = \"1s\"; };\n"
	    "upstreams = ( { name = \"be\"; servers = ( \"127.0.0.1:%d\" ); },\n"
	    "              { name = \"nginx\"; servers = ( \"127.0.0.1:%d\" ); } );\n"
	    "listeners = (\n"
	    "  { listen = \"127.0.0.1:%d\"; upstream = \"be\"; proxy_protocol = \"v1\"; },\n"
	    "  { listen = \"127.0.0.1:%d\"; upstream = \"be\"; proxy_protocol = \"v2\"; },\n"
	    "  { listen = \"127.0.0.1:%d\"; upstream = \"be\"; accept_proxy = \"v1\";\n"
	    "    trusted = ( \"127.0.0.0/8\" ); },\n"
	    "  { listen = \"127.0.0.1:%d\"; upstream = \"be\"; accept_proxy = \"any\";\n"
	    "    trusted = ( \"127.0.0.1\" ); proxy_protocol = \"v2\";\n"
	    "    deny = ( \"203.0.113.0/24\" ); },\n"
	    "  { listen = \"127.0.0.1:%d\"; upstream = \"nginx\"; proxy_protocol = \"v1\"; },\n"
	    "  { listen = \"127.0.0.1:%d\"; upstream = \"be\"; accept_proxy = \"v2\";\n"
	    "    trusted = ( \"127.0.0.1\" ); proxy_protocol = \"v1\"; } );\n",
	    h_pidfile(), h_statsfile(), bport, nport, l1, l2, l3, l4, l5, l6);
	h_sluiced_start(conf, l1, 2);

	test_send(l1, l2);
	test_accept(l3, l4);
	test_refuse(l3, l4);
	test_tlv(l4);
	{
		int stray = -1;
		struct pollfd pfd = {.fd = backend, .events = POLLIN};

		if (poll(&pfd, 1, 0) == 1)
			stray = accept(backend, NULL, NULL);
		ok(stray == -1, "no refused client ever reached the backend");
		if (stray != -1)
			close(stray);
	}
	test_nginx(l5, nport);
	test_haproxy(l6, hport);

	done_testing();
	return tap_exit();
}
