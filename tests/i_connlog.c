/* SPDX-License-Identifier: BSD-2-Clause */
/* i_connlog.c — integration test of the connection log (log.connections):
 * one line per closed connection with the client address (the PROXY one
 * when accepted), listener, server, start, duration, bytes each way and how
 * it ended: client closed, server closed, reset, timeout, refused, error.
 * The test plays the upstream for the server-side endings. Loopback only;
 * processes are killed by pid. */
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
#include "tap.h"

#define WAIT 10000

/* The log line whose client field is exactly `client` ("a.b.c.d:port"),
 * polled for up to WAIT ms; copied into line. Returns 1 when found. */
static int
find_line(const char *client, char *line, size_t len)
{
	char key[96];
	uint64_t deadline = h_now_ms() + WAIT;

	snprintf(key, sizeof(key), "connection client=%s ", client);
	for (;;) {
		char *text = h_read_file(h_path("sluiced.log")), *p;

		if (text != NULL && (p = strstr(text, key)) != NULL) {
			size_t n = strcspn(p, "\n");

			snprintf(line, len, "%.*s", (int)n, p);
			free(text);
			return 1;
		}
		free(text);
		if (h_now_ms() >= deadline) {
			diag("no log line for client %s", client);
			return 0;
		}
		poll(NULL, 0, 20);
	}
}

/* 1 when line has " name=value" (value up to the next space). */
static int
field_is(const char *line, const char *name, const char *value)
{
	char key[64];
	const char *p;
	size_t n;

	snprintf(key, sizeof(key), " %s=", name);
	if ((p = strstr(line, key)) == NULL) {
		diag("  no %s in: %s", name, line);
		return 0;
	}
	p += strlen(key);
	n = strcspn(p, " ");
	if (n != strlen(value) || strncmp(p, value, n) != 0) {
		diag("  %s=%.*s, want %s", name, (int)n, p, value);
		return 0;
	}
	return 1;
}

/* start=YYYY-MM-DDTHH:MM:SS.mmm and duration=S.mmm are there and well formed. */
static int
times_ok(const char *line)
{
	const char *s = strstr(line, " start="), *d = strstr(line, " duration=");
	unsigned y, mo, da, h, mi, se, ms, ds, dms;

	return s != NULL && d != NULL &&
	       sscanf(s, " start=%4u-%2u-%2uT%2u:%2u:%2u.%3u", &y, &mo, &da, &h, &mi, &se, &ms) ==
	           7 &&
	       sscanf(d, " duration=%u.%3u", &ds, &dms) == 2 && y >= 2020;
}

int
main(void)
{
	int echo = h_free_port(), be = h_free_port(), dead = h_free_port();
	int l_echo = h_free_port(), l_be = h_free_port(), l_dead = h_free_port();
	int l_pp = h_free_port(), l_deny = h_free_port();
	const char *conf = h_path("sluice.conf");
	char client[64], line[1024], buf[256], want[64];
	int backend, c, s;

	h_echod_start(echo);
	backend = h_listen(be);
	h_write_file(conf,
	    "workers = 2;\n"
	    "pid_file = \"%s\";\n"
	    "stats_file = \"%s\";\n"
	    "log = { target = \"stderr\"; level = \"info\"; connections = true; };\n"
	    "timeouts = { idle = \"1s\"; proxy_header = \"1s\"; };\n"
	    "upstreams = ( { name = \"echo\"; servers = ( \"127.0.0.1:%d\" ); },\n"
	    "              { name = \"be\"; servers = ( \"127.0.0.1:%d\" ); },\n"
	    "              { name = \"dead\"; servers = ( \"127.0.0.1:%d\" ); retries = 0; } );\n"
	    "listeners = (\n"
	    "  { listen = \"127.0.0.1:%d\"; upstream = \"echo\"; },\n"
	    "  { listen = \"127.0.0.1:%d\"; upstream = \"be\"; },\n"
	    "  { listen = \"127.0.0.1:%d\"; upstream = \"dead\"; },\n"
	    "  { listen = \"127.0.0.1:%d\"; upstream = \"echo\"; accept_proxy = \"v1\";\n"
	    "    trusted = ( \"127.0.0.0/8\" ); },\n"
	    "  { listen = \"127.0.0.1:%d\"; upstream = \"echo\"; deny = ( \"127.0.0.3\" ); } );\n",
	    h_pidfile(), h_statsfile(), echo, be, dead, l_echo, l_be, l_dead, l_pp, l_deny);
	h_sluiced_start(conf, l_echo, 2);

	/* The client closes first: 100 bytes each way through the echo server. */
	c = h_connect_from("127.0.0.2", l_echo, WAIT);
	memset(buf, 'x', 100);
	send(c, buf, 100, MSG_NOSIGNAL);
	ok(h_read_n(c, buf, 100, WAIT) == 100, "100 bytes echoed");
	snprintf(client, sizeof(client), "127.0.0.2:%u", h_local_port(c));
	shutdown(c, SHUT_WR);
	ok(h_wait_closed(c, WAIT), "the echo server closes after the client's FIN");
	close(c);
	ok(find_line(client, line, sizeof(line)), "a line for the client that closed first");
	snprintf(want, sizeof(want), "127.0.0.1:%d", l_echo);
	ok(field_is(line, "listener", want), "  listener=%s", want);
	snprintf(want, sizeof(want), "127.0.0.1:%d", echo);
	ok(field_is(line, "server", want), "  server=%s", want);
	ok(field_is(line, "bytes_in", "100") && field_is(line, "bytes_out", "100"),
	    "  bytes_in=100 bytes_out=100");
	ok(field_is(line, "end", "client_closed"), "  end=client_closed");
	ok(times_ok(line), "  start= and duration= are well formed");
	diag("%s", line);

	/* The server closes first. */
	c = h_connect_from("127.0.0.2", l_be, WAIT);
	snprintf(client, sizeof(client), "127.0.0.2:%u", h_local_port(c));
	s = h_accept(backend, WAIT);
	send(s, "bye", 3, MSG_NOSIGNAL);
	close(s);
	ok(h_read_n(c, buf, 3, WAIT) == 3 && h_wait_closed(c, WAIT),
	    "the server's bytes and FIN reach the client");
	close(c);
	ok(find_line(client, line, sizeof(line)) && field_is(line, "end", "server_closed") &&
	       field_is(line, "bytes_out", "3") && field_is(line, "bytes_in", "0"),
	    "end=server_closed with bytes_out=3");

	/* The server resets, once the session relays (a byte went through):
	 * a reset during the connect would be a failed connect instead. */
	c = h_connect_from("127.0.0.2", l_be, WAIT);
	snprintf(client, sizeof(client), "127.0.0.2:%u", h_local_port(c));
	send(c, "x", 1, MSG_NOSIGNAL);
	s = h_accept(backend, WAIT);
	ok(h_read_n(s, buf, 1, WAIT) == 1, "a byte reaches the server");
	{
		struct linger lg = {.l_onoff = 1, .l_linger = 0};

		setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		close(s);
	}
	h_wait_closed(c, WAIT);
	close(c);
	ok(find_line(client, line, sizeof(line)) && field_is(line, "end", "reset") &&
	       field_is(line, "reason", "server_reset"),
	    "a server reset: end=reset reason=server_reset");

	/* Idle timeout (timeouts.idle = 1s). */
	c = h_connect_from("127.0.0.2", l_echo, WAIT);
	snprintf(client, sizeof(client), "127.0.0.2:%u", h_local_port(c));
	ok(h_wait_closed(c, WAIT), "an idle client is closed at the idle timeout");
	close(c);
	ok(find_line(client, line, sizeof(line)) && field_is(line, "end", "timeout") &&
	       field_is(line, "reason", "idle_timeout"),
	    "end=timeout reason=idle_timeout");

	/* No upstream: the connect is refused by the kernel. */
	c = h_connect_from("127.0.0.2", l_dead, WAIT);
	snprintf(client, sizeof(client), "127.0.0.2:%u", h_local_port(c));
	ok(h_wait_closed(c, WAIT), "a client whose upstream is down is closed");
	close(c);
	snprintf(want, sizeof(want), "127.0.0.1:%d", dead);
	ok(find_line(client, line, sizeof(line)) && field_is(line, "end", "error") &&
	       field_is(line, "reason", "connect_failed") && field_is(line, "server", want),
	    "end=error reason=connect_failed server=%s", want);

	/* Refused by a deny list: no server. */
	c = h_connect_from("127.0.0.3", l_deny, WAIT);
	snprintf(client, sizeof(client), "127.0.0.3:%u", h_local_port(c));
	ok(h_wait_closed(c, WAIT), "a denied client is closed");
	close(c);
	ok(find_line(client, line, sizeof(line)) && field_is(line, "end", "refused") &&
	       field_is(line, "reason", "acl_denied") && field_is(line, "server", "-") &&
	       field_is(line, "bytes_in", "0"),
	    "end=refused reason=acl_denied server=-");

	/* Accepted PROXY header: the line names the client it carried. */
	c = h_connect_from("127.0.0.2", l_pp, WAIT);
	snprintf(buf, sizeof(buf), "PROXY TCP4 198.51.100.7 192.0.2.1 4242 443\r\nping");
	send(c, buf, strlen(buf), MSG_NOSIGNAL);
	ok(h_read_n(c, buf, 4, WAIT) == 4 && memcmp(buf, "ping", 4) == 0,
	    "a client behind a PROXY header is relayed");
	shutdown(c, SHUT_WR);
	h_wait_closed(c, WAIT);
	close(c);
	ok(find_line("198.51.100.7:4242", line, sizeof(line)) &&
	       field_is(line, "bytes_in", "4") && field_is(line, "end", "client_closed"),
	    "the line names the PROXY client 198.51.100.7:4242, not the front");

	/* A PROXY header that never ends: refused at its deadline. */
	c = h_connect_from("127.0.0.2", l_pp, WAIT);
	snprintf(client, sizeof(client), "127.0.0.2:%u", h_local_port(c));
	send(c, "PROXY ", 6, MSG_NOSIGNAL);
	ok(h_wait_closed(c, WAIT), "a client that never finishes its PROXY header is closed");
	close(c);
	ok(find_line(client, line, sizeof(line)) && field_is(line, "end", "timeout") &&
	       field_is(line, "reason", "proxy_header_timeout") && field_is(line, "server", "-"),
	    "end=timeout reason=proxy_header_timeout, naming the front (no header came)");

	ok(h_wait_stat("closed", 8, WAIT), "eight connections closed");
	is(h_count_lines(h_path("sluiced.log"), "connection client="), 8,
	    "one log line per closed connection");

	close(backend);
	done_testing();
	return tap_exit();
}
