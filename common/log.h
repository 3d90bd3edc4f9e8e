/* SPDX-License-Identifier: BSD-2-Clause */
/* log.h — the logger shared by master and workers: stderr, syslog or a file.
 * Runs in every sluiced process. Never call it from a signal handler (signals
 * reach our code through ev_signal only). Every function preserves errno. */
#ifndef SLUICE_LOG_H
#define SLUICE_LOG_H

enum log_level { LOG_LEVEL_ERROR, LOG_LEVEL_WARNING, LOG_LEVEL_NOTICE, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };
enum log_target { LOG_TARGET_STDERR, LOG_TARGET_SYSLOG, LOG_TARGET_FILE };

/* Send messages to target (file is the path for LOG_TARGET_FILE; facility a
 * syslog LOG_* facility for LOG_TARGET_SYSLOG), dropping those above level.
 * Replaces any previous setting. Returns 0, or -1 with errno when the file
 * cannot be opened (the previous target then stays in use). */
int log_open(enum log_target target, const char *file, int facility, enum log_level level);

/* Reopen the log file (SIGUSR1 after rotation). No-op for other targets.
 * Returns 0, or -1 with errno; the old descriptor stays in use on failure. */
int log_reopen(void);

/* Tag every line with this process role, e.g. "master" or "worker 3". */
void log_set_role(const char *role);

/* The level in force: set at run time (sluicectl set log level) and read;
 * and its name. */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
const char *log_level_name(enum log_level level);

/* Parse "error", "warning", "notice", "info", "debug"; -1 if unknown. */
int log_level_parse(const char *name);

/* log_warn appends ": strerror(errno)", log_warnx does not. */
void log_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_errx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_notice(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Start-up and master only: log at error level and exit(1). fatal appends
 * strerror(errno), fatalx does not. */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
