/* SPDX-License-Identifier: BSD-2-Clause */
/* notify.c — sd_notify by hand (see notify.h): one non-blocking SOCK_DGRAM
 * socket, one sendto per message, the address taken from $NOTIFY_SOCKET at
 * start. Runs in the master only; never blocks, never fails the daemon. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "notify.h"

static int notify_fd = -1;
static struct sockaddr_un notify_addr;
static socklen_t notify_len;
static int notify_failed; /* the last send failed: said once until one works */
static char notify_name_saved[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];

void
notify_init(void)
{
	const char *name = getenv("NOTIFY_SOCKET");
	size_t len;

	if (name == NULL)
		return;
	len = strlen(name);
	memset(&notify_addr, 0, sizeof(notify_addr));
	notify_addr.sun_family = AF_UNIX;
	/* A path must be absolute; "@" stands for the leading NUL of an
	 * abstract address, whose length is exact (no terminating NUL). */
	if ((name[0] != '/' && name[0] != '@') || len < 2 ||
	    len >= sizeof(notify_addr.sun_path)) {
		log_warnx("NOTIFY_SOCKET=%s is no socket address; not notifying systemd", name);
		unsetenv("NOTIFY_SOCKET");
		return;
	}
	memcpy(notify_addr.sun_path, name, len);
	memcpy(notify_name_saved, name, len + 1);
	if (name[0] == '@')
		notify_addr.sun_path[0] = '\0';
	notify_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len +
	    (name[0] == '@' ? 0 : 1));
	unsetenv("NOTIFY_SOCKET");
	notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (notify_fd == -1)
		log_warn("cannot open a socket to notify systemd");
}

const char *
notify_name(void)
{
	return notify_fd != -1 ? notify_name_saved : NULL;
}

int
notify_enabled(void)
{
	return notify_fd != -1;
}

void
notify_send(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	int saved = errno, n;

	if (notify_fd == -1)
		return;
	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(msg))
		n = sizeof(msg) - 1;
	/* MSG_NOSIGNAL: a datagram socket raises no SIGPIPE, but be sure. */
	if (sendto(notify_fd, msg, (size_t)n, MSG_NOSIGNAL, (struct sockaddr *)&notify_addr,
	        notify_len) == -1) {
		if (!notify_failed)
			log_warn("cannot notify systemd (NOTIFY_SOCKET); going on without");
		notify_failed = 1;
	} else {
		notify_failed = 0;
	}
	errno = saved;
}

void
notify_close(void)
{
	if (notify_fd != -1)
		close(notify_fd);
	notify_fd = -1;
}
