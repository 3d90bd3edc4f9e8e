/* SPDX-License-Identifier: BSD-2-Clause */
/* logsink.h — a descriptor that never blocks, for log lines a process
 * writes in volume (a worker's connection log): a datagram socket to the
 * syslog daemon, or a byte stream to the log file or stderr. One per
 * process, opened in the child before it drops privileges or chroots, so
 * the syslog socket and /proc are still reachable. Never logs; no write
 * here ever blocks: EAGAIN is the caller's to handle (queue or drop). */
#ifndef SLUICE_LOGSINK_H
#define SLUICE_LOGSINK_H

#include <stddef.h>
#include <sys/types.h>

#include "log.h"

/* Open the sink for target: LOG_TARGET_SYSLOG connects a non-blocking
 * AF_UNIX datagram socket to syslog_socket; LOG_TARGET_FILE opens file
 * O_APPEND|O_NONBLOCK (a FIFO without a reader fails with ENXIO);
 * LOG_TARGET_STDERR takes a description of fd 2 of its own, non-blocking
 * (a regular file shares fd 2's, where nothing blocks anyway). Replaces an
 * earlier sink. Returns 0, or -1 with errno: the sink is then closed and
 * logsink_write fails with ENOTCONN until a reopen succeeds (syslog: a
 * later write retries the connect, at most once a second). */
int logsink_open(enum log_target target, const char *file, const char *syslog_socket);

/* SIGUSR1: reopen the file by name (rotation) or reconnect the syslog
 * socket; stderr stays. Returns 0, or -1 with errno, the old descriptor
 * then staying in use. */
int logsink_reopen(void);

/* 1 when each write is one datagram (syslog): a line per write, no
 * partial writes. 0 for a byte stream. */
int logsink_is_datagram(void);

/* The most bytes one write may carry and still land whole and unmixed
 * with other writers' lines: PIPE_BUF for pipes, FIFOs and terminals,
 * else (size_t)-1. */
size_t logsink_atomic_max(void);

/* The descriptor, for a write watcher; -1 when there is none. */
int logsink_fd(void);

/* Write without blocking. Returns the bytes taken (a stream may take part
 * of it; a datagram all or nothing), or -1 with errno: EAGAIN or ENOBUFS
 * when the log cannot take it now, ENOTCONN without a descriptor, another
 * errno for a failure. */
ssize_t logsink_write(const void *buf, size_t len);

/* errno of the last failed open, reopen or connect; 0 after a success. */
int logsink_error(void);

void logsink_close(void);

#endif
