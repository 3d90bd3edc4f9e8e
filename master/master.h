/* SPDX-License-Identifier: BSD-2-Clause */
/* master.h — the master's life after start-up: the process table, spawning,
 * reaping and respawning workers, signals and reload. Never touches client
 * traffic. */
#ifndef SLUICE_MASTER_H
#define SLUICE_MASTER_H

#include "stats.h"

struct conf;
struct priv;

struct master_start {
	struct conf *conf;       /* owned by the master from here on */
	int *listen_fds;         /* parallel to conf->listeners, owned likewise */
	struct stats_seg *stats; /* created, mapped shared */
	int pid_fd;              /* locked lock file (PID_FILE.lock): closed in every child */
	int ready_fd;            /* -1, or a pipe: "1" once every worker of the first
	                          * generation runs, or "0" and the reason when they
	                          * cannot; closed then, and in every child */
	int foreground;          /* logging stays on stderr across reloads */
	const struct priv *priv; /* what the workers run as (priv_plan of conf); copied */
	/* Started by an old master for a hot upgrade: our socketpair with it
	 * (-1: a plain start), and its segment, whose totals ours continue
	 * (NULL when it could not be read), as they were when we created ours. */
	int upgrade_fd;
	struct stats_seg *old_seg;
	struct stats_counters seeded;
	struct stats_listener_counters *seeded_rows_l; /* per row, sized for both segments */
	struct stats_server_counters *seeded_rows_s;
	uint32_t first_generation; /* 0: 1; after an upgrade the old one's next */
};

/* Fork the workers and run the master loop until a stop completes. Returns the
 * exit status for the process: 0, or 1 when the first generation could not
 * start (a worker refused the config, or they did not all run in time). */
int master_run(struct master_start *);

/* For the control socket (control.c), in the master loop. */
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "log.h"

/* The serving generation's config, and its servers' stats rows (every
 * server of every upstream in config order; NULL when there are none). */
const struct conf *master_conf(void);
const uint16_t *master_server_rows(void);
/* The worker in stats slot `slot`: 0, or -1 when the slot has none. */
int master_child_info(unsigned slot, pid_t *pid, uint32_t *generation, unsigned *index);
/* Reloads started so far; a reload asked for now is numbered above it, and
 * its outcome reaches control_reload_done. */
uint64_t master_reload_seq(void);
/* Ask for a reload (as SIGHUP does). Returns 0, or -1 with a reason. */
int master_reload_request(char *err, size_t errlen);
void master_set_log_level(enum log_level);
/* Node drain: /healthz turns 503 now and the listeners close after grace_ms.
 * Returns 0, or -1 with a reason. */
int master_drain(unsigned grace_ms, char *err, size_t errlen);
/* Back to serving: 0 when done at once (before the listeners closed), 1 when
 * a generation is starting (control_undrain_done tells the outcome), -1 with
 * a reason. */
int master_undrain(char *err, size_t errlen);

/* Hot binary upgrade (SIGUSR2, sluicectl upgrade): start checking and
 * starting the binary at our path. Returns 0 (control_upgrade_done tells
 * the outcome), or -1 with a reason. */
int master_upgrade_request(char *err, size_t errlen);
/* 1 once a new master took over: the pid file, the segment and the control
 * socket are its own, not ours to remove at exit. */
int master_upgraded(void);
/* Write our pid to path (main.c). Returns 0, or -1 with errno. */
int master_pidfile_write(const char *path);
/* Warn (log) when limits.max_connections cannot fit in the descriptors the
 * workers have. Returns 1 when it fits, 0 when it warned. */
int master_check_fd_budget(const struct conf *);

#endif
