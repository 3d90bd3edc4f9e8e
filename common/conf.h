/* conf.h — the configuration model: a libconfig file turned into a validated
 * struct conf. Loaded by the master (start, -t, SIGHUP); workers read the copy
 * they inherit. No side effects: nothing is opened, bound, logged or exited. */
#ifndef SLUICE_CONF_H
#define SLUICE_CONF_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "log.h"

#define CONF_NAME_MAX 64
#define CONF_WORKERS_MAX 128

struct conf_server {
	char *address; /* as written in the file, for logs */
	struct sockaddr_storage addr;
	socklen_t addrlen;
	unsigned weight; /* 1..256, default 1 */
};

struct conf_upstream {
	char name[CONF_NAME_MAX];
	struct conf_server *servers;
	unsigned nservers; /* >= 1 */
};

struct conf_listener {
	char *address; /* as written, e.g. "127.0.0.1:8080" */
	struct sockaddr_storage addr;
	socklen_t addrlen;
	unsigned backlog;  /* 1..65535, default 511 */
	unsigned upstream; /* index into conf.upstreams */
};

struct conf {
	char *path; /* the file this was loaded from */

	unsigned workers; /* resolved: "auto" became the number of online CPUs */
	int workers_auto; /* 1 when the file said "auto" (or nothing) */
	char *pid_file;   /* default "/run/sluice/sluiced.pid" */
	char *stats_file; /* default "/run/sluice/stats" */

	enum log_target log_target; /* default syslog */
	char *log_file;             /* set when log_target is LOG_TARGET_FILE */
	int log_facility;           /* syslog LOG_*; default LOG_DAEMON */
	enum log_level log_level;   /* default info */

	size_t buffer_size;      /* pool.buffer_size, 512..1M, default 4096 */
	size_t max_memory;       /* pool.max_memory per worker, default 256M */
	int splice;              /* pool.splice: zero-copy relaying of bulk
	                          * transfers through pooled pipes; default 1 */
	unsigned max_connections; /* limits.max_connections, whole daemon, default 10000 */
	unsigned max_connections_per_worker; /* limits.max_connections_per_worker;
	                                      * 0 (default): what a worker's
	                                      * descriptors can hold */

	unsigned connect_timeout_ms; /* timeouts.connect, default 5s */
	unsigned idle_timeout_ms;    /* timeouts.idle, default 10m */
	unsigned drain_timeout_ms;   /* timeouts.drain, default 30s */

	struct conf_upstream *upstreams;
	unsigned nupstreams; /* >= 1 */
	struct conf_listener *listeners;
	unsigned nlisteners; /* >= 1 */
};

/* Relayed connections one process with nofile descriptors can hold: two per
 * connection, after a reserve for listeners, the log, the stats segment and
 * idle splice pipes. */
unsigned conf_fd_capacity(const struct conf *, unsigned long nofile);

/* Read and validate path. Returns a new conf owned by the caller (free with
 * conf_free), or NULL with the first problem in err as
 * "FILE:LINE: SETTING: reason" (FILE alone when no line applies). */
struct conf *conf_load(const char *path, char *err, size_t errlen);

/* Free a conf from conf_load. NULL is harmless. */
void conf_free(struct conf *);

/* "4096", "4K", "256M", "1G" (powers of 1024; K/M/G case-insensitive, an
 * optional trailing B). Returns 0 with *out, or -1 (EINVAL, ERANGE). */
int conf_parse_size(const char *text, uint64_t *out);

/* "500ms", "5s", "10m", "1h", "2d"; a bare number is seconds. Returns 0 with
 * *ms, or -1 (EINVAL, ERANGE when over ~49 days). */
int conf_parse_duration(const char *text, uint64_t *ms);

#endif
