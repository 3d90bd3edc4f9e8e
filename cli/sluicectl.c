/* SPDX-License-Identifier: BSD-2-Clause */
/* sluicectl — send one command to a running sluiced's control socket and
 * print the answer. The socket is named by -S, or by the control.socket
 * setting of the config (-c, default SYSCONFDIR/sluice.conf), read with
 * conf_peek so that no name lookup can hang it. Exit status: 0 the command
 * succeeded, 1 sluiced refused it or it failed (the reason on stderr), 2
 * usage error or no daemon to talk to. */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/usr/local/etc"
#endif
#define DEFAULT_CONF SYSCONFDIR "/sluice.conf"
#define CTL_WAIT_MS 75000 /* reload, undrain and upgrade take up to the daemon's 60 s */

enum { EXIT_DONE = 0, EXIT_REFUSED = 1, EXIT_USAGE = 2 };

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: sluicectl [-c CONFIG | -S SOCKET] [--json] COMMAND [ARGS...]\n"
	    "commands:\n"
	    "  show info | show servers [UPSTREAM] |\n"
	    "  show sessions [server UPSTREAM/ADDRESS] [listener ADDRESS] [worker N] [client IP]\n"
	    "  set server UPSTREAM/ADDRESS state ready|drain|maint\n"
	    "  set server UPSTREAM/ADDRESS weight 0..256\n"
	    "  shutdown session ID | shutdown sessions server UPSTREAM/ADDRESS\n"
	    "  set log level error|warning|notice|info|debug\n"
	    "  reload | drain [--grace DURATION] | undrain | upgrade | help\n"
	    "exit status: 0 done, 1 refused or failed, 2 usage error or no daemon\n");
}

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *conf_path = NULL, *sock_path = NULL;
	struct sockaddr_un sun;
	char line[1024], *answer = NULL, *body;
	size_t len = 0, cap = 0, n = 0;
	long long deadline;
	struct conf *conf = NULL;
	int json = 0, ch, fd, status;

	while ((ch = getopt_long(argc, argv, "+c:S:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			conf_path = optarg;
			break;
		case 'S':
			sock_path = optarg;
			break;
		case 'j':
			json = 1;
			break;
		case 'h':
			usage(stdout);
			return EXIT_DONE;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc || (conf_path != NULL && sock_path != NULL)) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (sock_path == NULL) {
		char err[1024];

		if (conf_path == NULL)
			conf_path = DEFAULT_CONF;
		if ((conf = conf_peek(conf_path, err, sizeof(err))) == NULL) {
			fprintf(stderr, "sluicectl: %s\n", err);
			return EXIT_USAGE;
		}
		if (conf->control_socket == NULL) {
			fprintf(stderr, "sluicectl: %s has no control = { socket = ...; } section\n",
			    conf_path);
			conf_free(conf);
			return EXIT_USAGE;
		}
		sock_path = conf->control_socket;
	}

	/* The command: words joined by spaces, one line, no newline inside. */
	n = (size_t)snprintf(line, sizeof(line), "%s", json ? "json" : "");
	for (int i = optind; i < argc; i++) {
		if (strpbrk(argv[i], "\n\r") != NULL) {
			fprintf(stderr, "sluicectl: an argument holds a newline\n");
			return EXIT_USAGE;
		}
		n += (size_t)snprintf(line + n, n < sizeof(line) ? sizeof(line) - n : 0, "%s%s",
		    n > 0 ? " " : "", argv[i]);
		if (n >= sizeof(line) - 1) {
			fprintf(stderr, "sluicectl: command too long\n");
			return EXIT_USAGE;
		}
	}
	line[n++] = '\n';

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(sock_path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "sluicectl: %s: path too long for a socket\n", sock_path);
		return EXIT_USAGE;
	}
	strcpy(sun.sun_path, sock_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		fprintf(stderr, "sluicectl: cannot reach sluiced at %s: %s (is it running?)\n",
		    sock_path, strerror(errno));
		return EXIT_USAGE;
	}
	conf_free(conf);
	if (send(fd, line, n, MSG_NOSIGNAL) != (ssize_t)n) {
		fprintf(stderr, "sluicectl: sending the command: %s\n", strerror(errno));
		return EXIT_USAGE;
	}
	shutdown(fd, SHUT_WR);

	deadline = now_ms() + CTL_WAIT_MS;
	for (;;) {
		struct pollfd p = { fd, POLLIN, 0 };
		long long left = deadline - now_ms();
		ssize_t got;
		int r;

		if (left <= 0) {
			fprintf(stderr, "sluicectl: no answer from sluiced within %ds\n",
			    CTL_WAIT_MS / 1000);
			return EXIT_REFUSED;
		}
		r = poll(&p, 1, (int)left);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			fprintf(stderr, "sluicectl: poll: %s\n", strerror(errno));
			return EXIT_REFUSED;
		}
		if (r == 0)
			continue;
		if (cap - len < 65536) {
			char *a;

			cap = cap ? cap * 2 : 65536 * 2;
			if ((a = realloc(answer, cap + 1)) == NULL) {
				fprintf(stderr, "sluicectl: out of memory\n");
				return EXIT_REFUSED;
			}
			answer = a;
		}
		got = read(fd, answer + len, cap - len);
		if (got == -1 && errno == EINTR)
			continue;
		if (got == -1) {
			fprintf(stderr, "sluicectl: reading the answer: %s\n", strerror(errno));
			return EXIT_REFUSED;
		}
		if (got == 0)
			break;
		len += (size_t)got;
	}
	close(fd);
	if (answer == NULL || len == 0) {
		fprintf(stderr, "sluicectl: sluiced closed the connection without answering\n");
		return EXIT_REFUSED;
	}
	answer[len] = '\0';
	body = strchr(answer, '\n');
	if (body != NULL)
		*body++ = '\0';
	else
		body = answer + len;
	if (strcmp(answer, "ok") == 0) {
		status = EXIT_DONE;
		if (fwrite(body, 1, strlen(body), stdout) != strlen(body) || fflush(stdout) != 0) {
			fprintf(stderr, "sluicectl: writing the answer: %s\n", strerror(errno));
			status = EXIT_REFUSED;
		}
	} else {
		const char *why = strncmp(answer, "error: ", 7) == 0 ? answer + 7 : answer;

		fprintf(stderr, "sluicectl: %s\n", why);
		status = EXIT_REFUSED;
	}
	free(answer);
	return status;
}
