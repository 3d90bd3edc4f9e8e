/* heritage.h — everything a worker inherits from the master across fork, in
 * one struct, and the worker's entry point. The only header shared by master/
 * and worker/. */
#ifndef SLUICE_HERITAGE_H
#define SLUICE_HERITAGE_H

#include <stdint.h>
#include <sys/types.h>

struct conf;
struct stats_seg;

/* Worker exit statuses the master understands. */
#define WORKER_EXIT_OK 0
#define WORKER_EXIT_FAILURE 1
#define WORKER_EXIT_CONFIG 78 /* EX_CONFIG: cannot run with this config; do not respawn */

struct heritage {
	const struct conf *conf;  /* the generation's config (master's copy) */
	const int *listen_fds;    /* parallel to conf->listeners */
	struct stats_seg *stats;  /* mapped shared, read-write */
	unsigned slot;            /* this worker's stats slot */
	unsigned index;           /* worker number within its generation */
	uint32_t generation;
	pid_t master_pid;
};

/* Run a worker until it is told to stop; never returns. Called in the child
 * right after fork, once the master has stopped its own watchers, called
 * ev_loop_fork on the default loop and closed what the worker must not hold. */
void worker_main(const struct heritage *) __attribute__((noreturn));

#endif
