/* SPDX-License-Identifier: BSD-2-Clause */
/* harness.h — helpers for integration tests: a temporary directory, free
 * loopback ports, starting sluiced and the echo backend and stopping them by
 * pid, sockets with deadlines, and reading the stats segment. Every wait here
 * polls a condition against a deadline; nothing sleeps "long enough".
 * Processes started through h_spawn are killed (SIGKILL) and reaped at exit. */
#ifndef SLUICE_HARNESS_H
#define SLUICE_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "stats.h"

/* Per-test temporary directory (created on first call, removed at exit unless
 * the environment has H_KEEP=1). */
const char *h_dir(void);

/* h_dir() + "/" + name, in a static rotating buffer (8 slots). */
const char *h_path(const char *name);

/* A TCP port on 127.0.0.1 that was free a moment ago. */
int h_free_port(void);

/* Milliseconds on CLOCK_MONOTONIC. */
uint64_t h_now_ms(void);

/* Write a file from a format. Bails out on error. */
void h_write_file(const char *path, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Whole file as a NUL-terminated malloc'ed string (caller frees), or NULL. */
char *h_read_file(const char *path);

/* 1 when the file exists and contains needle. */
int h_file_contains(const char *path, const char *needle);

/* Poll h_file_contains until true or timeout_ms; returns 1 or 0. */
int h_wait_file_contains(const char *path, const char *needle, int timeout_ms);

/* fork+exec argv[0] (a path) with stdout and stderr appended to logfile
 * (or inherited when NULL). Registers the pid for clean-up. */
pid_t h_spawn(char *const argv[], const char *logfile);

/* Wait for pid to exit within timeout_ms; returns 0 with *status (may be
 * NULL), or -1 on timeout. Unregisters the pid once reaped. */
int h_wait_exit(pid_t pid, int timeout_ms, int *status);

/* SIGKILL pid if still running and reap it. */
void h_kill(pid_t pid);

/* 1 while the process exists (kill(pid, 0) succeeds and it is not a zombie). */
int h_alive(pid_t pid);

/* Poll until a TCP connect to 127.0.0.1:port succeeds (then close it), up to
 * timeout_ms. Returns 0, or -1 on timeout. */
int h_wait_port(int port, int timeout_ms);

/* Blocking connect to 127.0.0.1:port within timeout_ms. Returns the fd
 * (blocking mode), or -1. */
int h_connect(int port, int timeout_ms);

/* Start the test echo backend on 127.0.0.1:port and wait until it accepts.
 * Bails out on failure. */
pid_t h_echod_start(int port);

/* Write a sluiced config to h_path(name) with pid_file and stats_file in
 * h_dir(), log to stderr at debug level, the given workers, one listener on
 * 127.0.0.1:listen_port for one upstream "app" whose servers are 127.0.0.1 at
 * the given ports, and extra text appended verbatim inside the file (e.g.
 * "timeouts = { idle = \"1s\"; };"). Returns the path. */
const char *h_conf(const char *name, int workers, int listen_port,
    const int *server_ports, int nservers, const char *extra);

/* Start "sluiced -f -c conf" with output to h_path("sluiced.log") and wait
 * until listen_port accepts and the stats segment shows `workers` running
 * workers. Bails out on failure. */
pid_t h_sluiced_start(const char *conf, int listen_port, int workers);

/* Paths h_conf used. */
const char *h_pidfile(void);
const char *h_statsfile(void);

/* Read the stats segment at h_statsfile(): totals (stats_total) into *out.
 * Returns 0, or -1 when it cannot be attached. */
int h_stats_total(struct stats_counters *out);

/* Pids of slots in state RUNNING (up to max), optionally only generation gen
 * (0 = any). Returns how many. */
int h_stats_running(pid_t *pids, int max, uint32_t gen);

/* Slots of generation gen that are not free, whatever their state (a
 * draining worker is not RUNNING but still holds connections, and the master
 * frees a slot only after reaping it); with holding, only those whose worker
 * has sessions open. -1 when the segment cannot be attached. */
int h_gen_slots(uint32_t gen, int holding);

/* Header generation, or 0 when the segment cannot be attached. */
uint64_t h_stats_generation(void);

/* Poll until the total of counter `field` (a stats_fields name) reaches at
 * least want. Returns 1, or 0 on timeout (diag shows the last value). */
int h_wait_stat(const char *field, uint64_t want, int timeout_ms);

/* Value of the total of counter `field`, or UINT64_MAX when unreadable. */
uint64_t h_stat(const char *field);

/* Run argv (stdout+stderr captured into *out, malloc'ed, may be NULL) and
 * return its exit status (0..255), or -1 if it did not exit in timeout_ms. */
int h_run(char *const argv[], char **out, int timeout_ms);

/*
 * Echo transfers: n connections to 127.0.0.1:port at once; connection i sends
 * sizes[i] pseudo-random bytes (seeded by i), half-closes after the last byte,
 * and reads back what the echo backend returns until EOF, all multiplexed with
 * poll(). A transfer is good when it got back exactly what it sent, then EOF.
 * chunk > 0 paces the transfers: at most chunk bytes per connection per round
 * and at least 1 ms per round, so they stay in flight long enough for a test
 * to act (signal, kill) while they run. chunk = 0: as fast as possible.
 */
struct h_xfer;
struct h_xfer *h_xfer_start(int port, int n, const size_t *sizes, size_t chunk);
/* Drive the transfers for about ms milliseconds. Returns how many are still
 * unfinished. */
int h_xfer_run(struct h_xfer *, int ms);
/* Bytes sent so far, over all connections. */
uint64_t h_xfer_sent(const struct h_xfer *);
/* Drive until every transfer ends or timeout_ms passes; free the handle.
 * Returns how many transfers were good (diag explains each bad one). */
int h_xfer_finish(struct h_xfer *, int timeout_ms);
/* h_xfer_start + h_xfer_finish. */
int h_echo_many(int port, int n, const size_t *sizes, size_t chunk, int timeout_ms);

/* Paths of the programs under test (environment SLUICED, SLUICESTAT, ECHOD,
 * set by make check). Bails out when unset. */
const char *h_sluiced(void);
const char *h_sluicestat(void);

/* ---- processes, descriptors and logs (operations tests) ---- */

/* Pids of the live (not zombie) processes whose parent is `parent`, read
 * from /proc, up to max (pids may be NULL to count only). Returns how many. */
int h_children(pid_t parent, pid_t *pids, int max);

/* Open descriptors of pid (entries of /proc/PID/fd), or -1 when unreadable. */
int h_fd_count(pid_t pid);

/* Lines of the file at path that contain needle; 0 when it is unreadable. */
int h_count_lines(const char *path, const char *needle);

/* Send a short line on fd and read its echo back within timeout_ms (fd may be
 * blocking or not; its flags are left as they were). Returns 0 when the same
 * bytes came back, -1 otherwise. */
int h_round_trip(int fd, int timeout_ms);

/* Milliseconds until fd reads EOF or a reset, or -1 (after a diag) when a
 * byte arrives instead or nothing happens within timeout_ms. */
long h_ms_until_closed(int fd, int timeout_ms);

/* Sleep ms milliseconds (across EINTR): the pause between polls of a
 * condition, never a wait for one. */
void h_nap(int ms);

/* 1 when a connect to 127.0.0.1:port is refused now, 0 when it is accepted
 * (and closed at once), -1 otherwise (bounded at 1 s). */
int h_port_refuses(int port);

/* ---- the edge: client source addresses, a backend played by the test ---- */

/* Like h_connect, from local address src (e.g. "127.0.0.2": any of
 * 127.0.0.0/8 works on Linux loopback) bound before connecting, or from any
 * address when src is NULL. Returns a blocking fd, or -1 with errno. */
int h_connect_from(const char *src, int port, int timeout_ms);

/* A blocking listening socket on 127.0.0.1:port, for a test that plays the
 * upstream server itself. Bails out on failure. */
int h_listen(int port);

/* Accept one connection on lfd within timeout_ms: a blocking fd, or -1
 * (errno ETIMEDOUT when none came). */
int h_accept(int lfd, int timeout_ms);

/* Read until want bytes, EOF or timeout_ms. Returns the bytes read (fewer
 * on EOF or timeout), or -1 on an error before any byte. */
ssize_t h_read_n(int fd, void *buf, size_t want, int timeout_ms);

/* Read a PROXY header of `versions` (proxy.h's PROXY_V1/PROXY_V2 bits) from
 * fd a byte at a time, so that it must end exactly where the parser says and
 * nothing after it is read: raw bytes into hdr (at most max), what it names
 * into *info (a struct proxy_info). Returns the header's length, or -1 (diag
 * says why) for a bad header, one longer than max, or one not complete within
 * timeout_ms. */
struct proxy_info;
int h_read_proxy(int fd, int versions, uint8_t *hdr, size_t max, struct proxy_info *info,
    int timeout_ms);

/* 1 when fd reads EOF or a reset within timeout_ms, 0 when a byte arrives
 * first or time runs out. */
int h_wait_closed(int fd, int timeout_ms);

/* Preload the shared object tests/NAME of the build tree (built by make
 * check: fakeclock.so, faultshim.so) into every process spawned from now on,
 * and let a sanitizer build accept it (ASAN_OPTIONS gains
 * verify_asan_link_order=0, the rest kept). h_preload(NULL) ends it and
 * puts ASAN_OPTIONS back. Bails out when the file is missing. */
void h_preload(const char *name);

/* HTTP to 127.0.0.1:port: send req (len bytes), read the answer to EOF.
 * Returns the status (0: no status line, -1: no connection); *body points
 * past the head, into a buffer the next call reuses. */
int h_http(int port, const char *req, size_t len, const char **body);

/* The whole answer (head and body) of the last h_http. */
const char *h_http_last(void);

/* GET path, HTTP/1.1, as h_http. */
int h_http_get(int port, const char *path, const char **body);

/* Poll GET path until it answers status (and, if given, a body starting
 * with prefix). Returns 1, or 0 at timeout_ms (diag shows the last answer). */
int h_wait_http(int port, const char *path, int status, const char *prefix, int timeout_ms);

/* 1 when pid runs the sluiced under test (/proc/PID/exe is h_sluiced()): a
 * pid read from a file is checked before it is signalled. */
int h_is_sluiced(pid_t pid);

/* The pid in h_pidfile() (a daemonized sluiced's), or 0. */
pid_t h_pidfile_pid(void);

/* Stop a sluiced whose pid came from a file (checked with h_is_sluiced
 * first): send sig, wait up to wait_ms for it to go, then SIGKILL. */
void h_stop_sluiced(pid_t pid, int sig, int wait_ms);

/* The local port of a TCP socket (IPv4), or 0. */
unsigned h_local_port(int fd);

/* Poll /proc until something listens on TCP port (any address), without
 * connecting to it (a connect would count in the peer's logs and counters).
 * Returns 0, or -1 on timeout. Falls back to h_wait_port without /proc. */
int h_wait_listening(int port, int timeout_ms);

#endif
