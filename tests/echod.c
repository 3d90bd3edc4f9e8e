/* SPDX-License-Identifier: BSD-2-Clause */
/* echod.c — the echo backend for tests and benchmarks: `echod [-v] [-P] -l
 * ADDR:PORT` (or a bare port on 127.0.0.1, or unix:/path for a UNIX socket,
 * which must not exist yet) sends back every byte each connection sends,
 * with back-pressure and half-close. With -P it is a server that requires the
 * PROXY protocol: each connection must begin with a valid v1 or v2 header
 * (not echoed) or is closed. One epoll loop in one
 * process; it never blocks on a peer and never holds more than one 64 KB
 * buffer per connection, and only while an echo is pending. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "proxy.h"

#define ECHO_BUF 65536
#define ECHO_EVENTS 256
#define ECHO_PAUSE_MS 100 /* accepting pauses this long on EMFILE */

struct echo_conn {
	struct echo_conn *next, **pprev; /* every open connection, to free at exit */
	int fd;
	uint32_t events; /* what epoll watches now */
	int rd_eof;      /* the peer sent FIN */
	int wr_shut;     /* we sent ours */
	char *buf;       /* only while bytes are pending */
	size_t off, len;
	struct proxy_parser *pp; /* -P: until the header is complete */
};

/* Tags for epoll data that are not connections. */
static char tag_listen, tag_signal;

static struct echo_conn *conns;
static int ep, lfd, verbose, require_proxy;
static unsigned long long naccepted;
static int nconns;

static void
usage(void)
{
	fprintf(stderr, "usage: echod [-v] [-P] -l [HOST:]PORT|unix:/PATH | echod [-v] [-P] PORT\n");
	exit(2);
}

/* "PORT", "HOST:PORT" or "[V6]:PORT" with a numeric host. */
static int
parse_addr(const char *text, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[128];
	const char *colon = strrchr(text, ':'), *p;
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	char *end;
	long port;
	size_t hl;

	memset(ss, 0, sizeof(*ss));
	if (strncmp(text, "unix:/", 6) == 0) {
		struct sockaddr_un *sun = (struct sockaddr_un *)ss;

		if (strlen(text + 5) >= sizeof(sun->sun_path))
			return -1;
		sun->sun_family = AF_UNIX;
		strcpy(sun->sun_path, text + 5);
		*len = sizeof(*sun);
		return 0;
	}
	p = colon ? colon + 1 : text;
	port = strtol(p, &end, 10);
	if (*p == '\0' || *end != '\0' || port < 1 || port > 65535)
		return -1;
	if (!colon) {
		snprintf(host, sizeof(host), "127.0.0.1");
	} else {
		hl = (size_t)(colon - text);
		if (hl >= 2 && text[0] == '[' && text[hl - 1] == ']') {
			text++;
			hl -= 2;
		}
		if (hl == 0 || hl >= sizeof(host))
			return -1;
		memcpy(host, text, hl);
		host[hl] = '\0';
	}
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		*len = sizeof(*sin);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*sin6);
		return 0;
	}
	return -1;
}

static void
conn_close(struct echo_conn *c)
{
	*c->pprev = c->next;
	if (c->next)
		c->next->pprev = c->pprev;
	close(c->fd);
	free(c->buf);
	free(c->pp);
	free(c);
	nconns--;
}

/* Read only while nothing is pending (back-pressure); write only while
 * something is. */
static void
conn_watch(struct echo_conn *c)
{
	struct epoll_event ev = {.data.ptr = c};

	ev.events = 0;
	if (c->len > 0)
		ev.events |= EPOLLOUT;
	else if (!c->rd_eof)
		ev.events |= EPOLLIN;
	if (ev.events == c->events)
		return;
	c->events = ev.events;
	if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) == -1) {
		fprintf(stderr, "echod: epoll_ctl: %s\n", strerror(errno));
		exit(1);
	}
}

/* Returns -1 when the connection is finished (closed). */
static int
conn_write(struct echo_conn *c)
{
	while (c->len > 0) {
		ssize_t n = send(c->fd, c->buf + c->off, c->len, MSG_NOSIGNAL);

		if (n == -1) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return -1;
		}
		c->off += (size_t)n;
		c->len -= (size_t)n;
	}
	/* An idle connection holds no buffer. */
	free(c->buf);
	c->buf = NULL;
	c->off = 0;
	if (c->rd_eof && !c->wr_shut) {
		if (shutdown(c->fd, SHUT_WR) == -1)
			return -1;
		c->wr_shut = 1;
	}
	return c->rd_eof && c->wr_shut ? -1 : 0;
}

/* -P: the bytes just read go to the header parser first; what follows a
 * complete header is echoed. Returns -1 to close the connection. */
static int
conn_header(struct echo_conn *c)
{
	struct proxy_info info;
	size_t used = 0;
	int rc = c->len > 0 ? proxy_parse(c->pp, c->buf, c->len, &used, &info) : -1;

	if (rc == 0) {
		c->len = 0;
		return 0;
	}
	if (verbose)
		printf("echod: PROXY header %s%s\n", rc == 1 ? "accepted" : "refused: ",
		    rc == 1      ? ""
		    : c->len > 0 ? proxy_parse_error(c->pp)
		                 : "connection ended");
	free(c->pp);
	c->pp = NULL;
	if (rc == -1)
		return -1;
	c->off = used;
	c->len -= used;
	return 0;
}

static int
conn_read(struct echo_conn *c)
{
	ssize_t n;

	if (!c->buf && !(c->buf = malloc(ECHO_BUF))) {
		fprintf(stderr, "echod: out of memory\n");
		return -1;
	}
	do
		n = recv(c->fd, c->buf, ECHO_BUF, 0);
	while (n == -1 && errno == EINTR);
	if (n == -1)
		return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
	if (n == 0)
		c->rd_eof = 1;
	c->off = 0;
	c->len = (size_t)n;
	if (c->pp != NULL && conn_header(c) == -1)
		return -1;
	return conn_write(c);
}

static void
conn_event(struct echo_conn *c, uint32_t events)
{
	int r = 0;

	if (c->len > 0 && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
		r = conn_write(c);
	else if (c->len == 0 && !c->rd_eof && (events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
		r = conn_read(c);
	else if (events & EPOLLERR)
		r = -1;
	if (r == -1)
		conn_close(c);
	else
		conn_watch(c);
}

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
listen_pause(int on)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &tag_listen};

	epoll_ctl(ep, on ? EPOLL_CTL_DEL : EPOLL_CTL_ADD, lfd, &ev);
}

/* Returns 1 when accepting must pause (out of descriptors). */
static int
accept_all(void)
{
	for (int i = 0; i < 1024; i++) {
		struct epoll_event ev;
		struct echo_conn *c;
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), one = 1;

		if (fd == -1) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM)
				return 1;
			return 0;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			return 1;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (require_proxy) {
			if ((c->pp = malloc(sizeof(*c->pp))) == NULL) {
				close(fd);
				free(c);
				return 1;
			}
			proxy_parser_init(c->pp, PROXY_ANY);
		}
		c->fd = fd;
		c->events = EPOLLIN;
		ev.events = EPOLLIN;
		ev.data.ptr = c;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == -1) {
			close(fd);
			free(c);
			return 1;
		}
		c->next = conns;
		if (conns)
			conns->pprev = &c->next;
		conns = c;
		c->pprev = &conns;
		nconns++;
		naccepted++;
		if (verbose)
			printf("echod: accepted %llu (%d open)\n", naccepted, nconns);
	}
	return 0;
}

int
main(int argc, char **argv)
{
	struct epoll_event evs[ECHO_EVENTS], ev;
	struct sockaddr_storage ss;
	struct rlimit rl;
	socklen_t sslen;
	const char *addr = NULL;
	sigset_t mask;
	long long paused_until = 0;
	int opt, sfd, one = 1;

	while ((opt = getopt(argc, argv, "vPl:")) != -1) {
		if (opt == 'v')
			verbose = 1;
		else if (opt == 'P')
			require_proxy = 1;
		else if (opt == 'l')
			addr = optarg;
		else
			usage();
	}
	if (!addr && optind < argc)
		addr = argv[optind++];
	if (!addr || optind != argc)
		usage();
	if (parse_addr(addr, &ss, &sslen) == -1) {
		fprintf(stderr, "echod: bad address \"%s\"\n", addr);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}

	/* Signals arrive through a descriptor, so none is lost between two
	 * epoll_wait calls. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);

	lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (lfd == -1 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    bind(lfd, (struct sockaddr *)&ss, sslen) == -1 || listen(lfd, 4096) == -1) {
		fprintf(stderr, "echod: cannot listen on %s: %s\n", addr, strerror(errno));
		return 1;
	}
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep == -1 || sfd == -1) {
		fprintf(stderr, "echod: epoll/signalfd: %s\n", strerror(errno));
		return 1;
	}
	ev.events = EPOLLIN;
	ev.data.ptr = &tag_signal;
	epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);
	listen_pause(0);
	printf("echod: listening on %s\n", addr);

	for (;;) {
		int n = epoll_wait(ep, evs, ECHO_EVENTS, paused_until ? ECHO_PAUSE_MS : -1);

		if (n == -1) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "echod: epoll_wait: %s\n", strerror(errno));
			return 1;
		}
		if (paused_until && now_ms() >= paused_until) {
			paused_until = 0;
			listen_pause(0);
		}
		for (int i = 0; i < n; i++) {
			void *p = evs[i].data.ptr;

			if (p == &tag_signal) {
				printf("echod: stopping, %llu connections accepted\n", naccepted);
				while (conns)
					conn_close(conns);
				return 0;
			}
			if (p == &tag_listen) {
				if (accept_all() && !paused_until) {
					paused_until = now_ms() + ECHO_PAUSE_MS;
					listen_pause(1);
				}
				continue;
			}
			conn_event(p, evs[i].events);
		}
	}
}
