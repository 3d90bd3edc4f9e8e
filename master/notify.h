/* SPDX-License-Identifier: BSD-2-Clause */
/* notify.h — the systemd readiness protocol (sd_notify) spoken without
 * libsystemd: datagrams of "KEY=value" lines to the socket named by
 * $NOTIFY_SOCKET. Master only; children must never speak for it. A failure to
 * send is never an error of the daemon: nothing here blocks or exits. */
#ifndef SLUICE_NOTIFY_H
#define SLUICE_NOTIFY_H

/* Read $NOTIFY_SOCKET (a path, or "@name" for the abstract namespace), open a
 * non-blocking datagram socket for it and unset the variable, so that no
 * child (or anything it runs) inherits it. Without the variable, or with one
 * that names no usable address (logged), every later call does nothing.
 * Call once, in the process that systemd started, before any fork. */
void notify_init(void);

/* $NOTIFY_SOCKET as it was, for the new master of a hot upgrade (which
 * systemd follows once told MAINPID), or NULL. */
const char *notify_name(void);
/* 1 when notify_init found a socket to talk to. */
int notify_enabled(void);

/* Send one datagram made from fmt (newline-separated assignments, e.g.
 * "READY=1\nSTATUS=serving"). Never blocks; a failed send is logged once
 * (until one succeeds again) and otherwise ignored. */
void notify_send(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Close the socket: in a child right after fork. */
void notify_close(void);

#endif
