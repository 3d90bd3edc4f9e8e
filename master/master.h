/* SPDX-License-Identifier: BSD-2-Clause */
/* master.h — the master's life after start-up: the process table, spawning,
 * reaping and respawning workers, signals and reload. Never touches client
 * traffic. */
#ifndef SLUICE_MASTER_H
#define SLUICE_MASTER_H

struct conf;
struct priv;
struct stats_seg;

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
};

/* Fork the workers and run the master loop until a stop completes. Returns the
 * exit status for the process: 0, or 1 when the first generation could not
 * start (a worker refused the config, or they did not all run in time). */
int master_run(struct master_start *);

/* Warn (log) when limits.max_connections cannot fit in the descriptors the
 * workers have. Returns 1 when it fits, 0 when it warned. */
int master_check_fd_budget(const struct conf *);

#endif
