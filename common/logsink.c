/* SPDX-License-Identifier: BSD-2-Clause */
/* logsink.c — the non-blocking log descriptor of one process (see
 * logsink.h). Runs in workers (opened by the master's fork path for them);
 * must never block, log or allocate. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "logsink.h"

enum logsink_mode {
	LOGSINK_WRITE, /* write(2) on a non-blocking or regular-file descriptor */
	LOGSINK_SEND,  /* send(MSG_DONTWAIT): a socket (datagram or stream) */
	LOGSINK_POLL,  /* fd 2 shared and blocking (no /proc): write only what
	                * poll says fits, PIPE_BUF at most */
};

static struct {
	enum log_target target;
	int fd;
	enum logsink_mode mode;
	int datagram;
	int connected;  /* syslog: connect succeeded */
	int pipe_like;  /* writes above PIPE_BUF may be split or mixed */
	time_t retry_s; /* syslog: monotonic second of the last connect try */
	int err;        /* errno of the last failed open or connect */
	char file[PATH_MAX];
	struct sockaddr_un sun;
} sink = {.fd = -1};

static time_t
logsink_now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static void
logsink_set_fd(int fd)
{
	if (sink.fd != -1 && sink.fd != fd)
		close(sink.fd);
	sink.fd = fd;
}

/* A new datagram socket connected to the syslog socket; -1 with errno. */
static int
logsink_connect(void)
{
	int fd, e;

	sink.retry_s = logsink_now_s();
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		sink.err = errno;
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&sink.sun, sizeof(sink.sun)) == -1) {
		e = errno;
		close(fd);
		sink.err = errno = e;
		return -1;
	}
	logsink_set_fd(fd);
	sink.connected = 1;
	sink.err = 0;
	return 0;
}

static int
logsink_open_file(void)
{
	struct stat st;
	int fd = open(sink.file, O_WRONLY | O_CREAT | O_APPEND | O_NONBLOCK | O_CLOEXEC, 0640);

	if (fd == -1) {
		sink.err = errno;
		return -1;
	}
	sink.pipe_like = fstat(fd, &st) == 0 && !S_ISREG(st.st_mode);
	sink.mode = LOGSINK_WRITE;
	logsink_set_fd(fd);
	sink.err = 0;
	return 0;
}

/* A description of fd 2 that is ours to make non-blocking: setting
 * O_NONBLOCK on fd 2 itself would change it for the master and for the
 * shell that started us. */
static int
logsink_open_stderr(void)
{
	struct stat st;
	int fd;

	if (fstat(STDERR_FILENO, &st) == -1) {
		sink.err = errno;
		return -1;
	}
	sink.pipe_like = !S_ISREG(st.st_mode) && !S_ISSOCK(st.st_mode);
	if (S_ISREG(st.st_mode) || S_ISSOCK(st.st_mode)) {
		/* A regular file never blocks; a socket takes MSG_DONTWAIT. */
		if ((fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3)) == -1) {
			sink.err = errno;
			return -1;
		}
		sink.mode = S_ISSOCK(st.st_mode) ? LOGSINK_SEND : LOGSINK_WRITE;
	} else if ((fd = open("/proc/self/fd/2", O_WRONLY | O_NONBLOCK | O_CLOEXEC)) != -1) {
		sink.mode = LOGSINK_WRITE;
	} else {
		if ((fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3)) == -1) {
			sink.err = errno;
			return -1;
		}
		sink.mode = LOGSINK_POLL;
	}
	logsink_set_fd(fd);
	sink.err = 0;
	return 0;
}

int
logsink_open(enum log_target target, const char *file, const char *syslog_socket)
{
	logsink_close();
	sink.target = target;
	sink.datagram = 0;
	sink.connected = 0;
	sink.pipe_like = 0;
	switch (target) {
	case LOG_TARGET_SYSLOG:
		memset(&sink.sun, 0, sizeof(sink.sun));
		sink.sun.sun_family = AF_UNIX;
		if (strlen(syslog_socket) >= sizeof(sink.sun.sun_path)) {
			sink.err = errno = ENAMETOOLONG;
			return -1;
		}
		strcpy(sink.sun.sun_path, syslog_socket);
		sink.datagram = 1;
		sink.mode = LOGSINK_SEND;
		return logsink_connect();
	case LOG_TARGET_FILE:
		if (strlen(file) >= sizeof(sink.file)) {
			sink.err = errno = ENAMETOOLONG;
			return -1;
		}
		strcpy(sink.file, file);
		return logsink_open_file();
	default:
		return logsink_open_stderr();
	}
}

int
logsink_reopen(void)
{
	switch (sink.target) {
	case LOG_TARGET_SYSLOG:
		return logsink_connect();
	case LOG_TARGET_FILE:
		return logsink_open_file();
	default:
		return 0;
	}
}

int
logsink_is_datagram(void)
{
	return sink.datagram;
}

size_t
logsink_atomic_max(void)
{
	return sink.pipe_like || sink.mode == LOGSINK_POLL ? PIPE_BUF : (size_t)-1;
}

int
logsink_fd(void)
{
	return sink.fd;
}

ssize_t
logsink_write(const void *buf, size_t len)
{
	ssize_t n;

	if (sink.datagram && !sink.connected && sink.retry_s != logsink_now_s() &&
	    logsink_connect() == -1)
		return -1;
	if (sink.fd == -1 || (sink.datagram && !sink.connected)) {
		errno = ENOTCONN;
		return -1;
	}
	switch (sink.mode) {
	case LOGSINK_SEND:
		n = send(sink.fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		/* The syslog daemon went away (restart): connect again later. */
		if (n == -1 && sink.datagram && (errno == ECONNREFUSED || errno == ENOTCONN)) {
			sink.connected = 0;
			errno = ENOTCONN;
		}
		return n;
	case LOGSINK_POLL: {
		struct pollfd p = {.fd = sink.fd, .events = POLLOUT};

		if (len > PIPE_BUF)
			len = PIPE_BUF;
		if (poll(&p, 1, 0) != 1 || !(p.revents & POLLOUT)) {
			errno = EAGAIN;
			return -1;
		}
		return write(sink.fd, buf, len);
	}
	default:
		return write(sink.fd, buf, len);
	}
}

int
logsink_error(void)
{
	return sink.err;
}

void
logsink_close(void)
{
	if (sink.fd != -1)
		close(sink.fd);
	sink.fd = -1;
	sink.connected = 0;
}
