/* SPDX-License-Identifier: BSD-2-Clause */
/* log.c — the logger for master and workers: stderr, syslog or an appended
 * file, one line per call, written with a single write(2) so lines from
 * several processes sharing a file never interleave. Must never be called from
 * a signal handler; never allocates. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define LOG_LINE_MAX 2048

static enum log_target log_target = LOG_TARGET_STDERR;
static enum log_level log_max = LOG_LEVEL_INFO;
static int log_fd = -1; /* LOG_TARGET_FILE */
static char log_path[4096];
static char log_role[32] = "sluiced";

static const char *const level_names[] = { "error", "warning", "notice", "info", "debug" };
static const int level_syslog[] = { LOG_ERR, LOG_WARNING, LOG_NOTICE, LOG_INFO, LOG_DEBUG };

static int
open_file(const char *path)
{
	return open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
}

int
log_open(enum log_target target, const char *file, int facility, enum log_level level)
{
	int fd = -1;

	if (target == LOG_TARGET_FILE) {
		if ((fd = open_file(file)) == -1)
			return -1;
		snprintf(log_path, sizeof(log_path), "%s", file);
	}
	if (log_fd != -1)
		close(log_fd);
	log_fd = fd;
	if (log_target == LOG_TARGET_SYSLOG && target != LOG_TARGET_SYSLOG)
		closelog();
	if (target == LOG_TARGET_SYSLOG)
		openlog("sluiced", LOG_PID | LOG_NDELAY, facility);
	log_target = target;
	log_max = level;
	return 0;
}

int
log_reopen(void)
{
	int fd;

	if (log_target != LOG_TARGET_FILE)
		return 0;
	if ((fd = open_file(log_path)) == -1)
		return -1;
	/* dup2 keeps the descriptor number, so nothing holding it goes stale. */
	if (dup2(fd, log_fd) == -1) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	close(fd);
	return 0;
}

void
log_set_role(const char *role)
{
	snprintf(log_role, sizeof(log_role), "%s", role);
}

void
log_set_level(enum log_level level)
{
	log_max = level;
}

enum log_level
log_get_level(void)
{
	return log_max;
}

const char *
log_level_name(enum log_level level)
{
	return (unsigned)level < sizeof(level_names) / sizeof(level_names[0]) ? level_names[level]
	                                                                      : "?";
}

int
log_level_parse(const char *name)
{
	for (unsigned i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
		if (strcmp(name, level_names[i]) == 0)
			return (int)i;
	return -1;
}

static void
log_emit(enum log_level level, int with_errno, const char *fmt, va_list ap)
{
	char line[LOG_LINE_MAX];
	int saved = errno;
	size_t n = 0;

	if (level > log_max) {
		errno = saved;
		return;
	}
	if (log_target != LOG_TARGET_SYSLOG) {
		struct timespec ts;
		struct tm tm;

		clock_gettime(CLOCK_REALTIME, &ts);
		localtime_r(&ts.tv_sec, &tm);
		n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
		n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03ld [%d] ",
		    ts.tv_nsec / 1000000, (int)getpid());
	}
	n += (size_t)snprintf(line + n, sizeof(line) - n, "%s: %s: ", log_role,
	    level_names[level]);
	if (n < sizeof(line))
		n += (size_t)vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	if (with_errno && n < sizeof(line))
		n += (size_t)snprintf(line + n, sizeof(line) - n, ": %s", strerror(saved));
	if (n >= sizeof(line) - 1)
		n = sizeof(line) - 2;

	if (log_target == LOG_TARGET_SYSLOG) {
		syslog(level_syslog[level], "%s", line);
	} else {
		line[n++] = '\n';
		if (write(log_target == LOG_TARGET_FILE ? log_fd : STDERR_FILENO, line, n) < 0) {
			/* Nowhere left to report it. */
		}
	}
	errno = saved;
}

#define LOG_FN(name, level, with_errno)             \
	void name(const char *fmt, ...)             \
	{                                           \
		va_list ap;                         \
		va_start(ap, fmt);                  \
		log_emit(level, with_errno, fmt, ap); \
		va_end(ap);                         \
	}

LOG_FN(log_err, LOG_LEVEL_ERROR, 1)
LOG_FN(log_errx, LOG_LEVEL_ERROR, 0)
LOG_FN(log_warn, LOG_LEVEL_WARNING, 1)
LOG_FN(log_warnx, LOG_LEVEL_WARNING, 0)
LOG_FN(log_notice, LOG_LEVEL_NOTICE, 0)
LOG_FN(log_info, LOG_LEVEL_INFO, 0)
LOG_FN(log_debug, LOG_LEVEL_DEBUG, 0)

void
fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(LOG_LEVEL_ERROR, 1, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(LOG_LEVEL_ERROR, 0, fmt, ap);
	va_end(ap);
	exit(1);
}
