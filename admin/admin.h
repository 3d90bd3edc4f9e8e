/* SPDX-License-Identifier: BSD-2-Clause */
/* admin.h — the admin process's bounds (admin/admin.c; entry point
 * admin_main in heritage.h): an HTTP endpoint serving /metrics and /healthz
 * from the stats segment, run by an unprivileged child of the master. */
#ifndef SLUICE_ADMIN_H
#define SLUICE_ADMIN_H

/* Connections served at once; one more is accepted, answered 503 and
 * closed at once, so a flood cannot queue behind a slow client. */
#define ADMIN_MAX_CONNS 16
/* The request line and headers together, bytes: past this, 431. */
#define ADMIN_HEAD_MAX 4096
/* Seconds a connection may live from accept to the end of its response: a
 * client that sends nothing, or reads nothing, is cut then. */
#define ADMIN_DEADLINE 5.0
/* Seconds between checks that the master still runs; also how long
 * accepting pauses when out of descriptors. */
#define ADMIN_TICK 1.0

#endif
