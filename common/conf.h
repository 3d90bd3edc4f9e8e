/* SPDX-License-Identifier: BSD-2-Clause */
/* conf.h — the configuration model: a libconfig file turned into a validated
 * struct conf. Loaded by the master (start, -t, SIGHUP); workers read the copy
 * they inherit. No side effects: nothing is opened, bound, logged or exited. */
#ifndef SLUICE_CONF_H
#define SLUICE_CONF_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "log.h"

struct cidr;
struct logfmt;

#define CONF_NAME_MAX 64
#define CONF_WORKERS_MAX 128
/* A worker's relay buffers come from a pool (pool.h) in chunks of this many
 * buffers; pool.max_memory is checked against that pool's bounds. */
#define CONF_BUFFERS_PER_CHUNK 16
/* Bulk buffers (pool.bulk_buffer_size) come in chunks of this many, and have
 * a quarter of pool.max_memory when it holds CONF_BULK_MIN_CHUNKS such chunks
 * (so at least 8M with the default 32K): a small budget is all small
 * buffers, which is what back-pressure counts on. */
#define CONF_BULK_PER_CHUNK 4
#define CONF_BULK_MIN_CHUNKS 64
/* The weights of one upstream's servers add up to at most this. A worker's
 * source-hash ring has BALANCE_VNODES (100) points per unit of weight and
 * refuses more than UINT32_MAX of them; this keeps it well below (800 MB at
 * the very most) and the round-robin sums within int32. */
#define CONF_UPSTREAM_WEIGHT_MAX (1 << 20)

/* Where connections to a server come from (source, transparent): none
 * (n == 0 and transparent 0) leaves it to the kernel. */
struct conf_source {
	struct sockaddr_storage *addr; /* n addresses, port 0, used in turn */
	unsigned n;
	int transparent; /* 1: from the client's own address (IP_TRANSPARENT) */
};

struct conf_server {
	char *address; /* as written in the file, for logs; "unix:/path" for an
	                * AF_UNIX server */
	struct sockaddr_storage addr;
	socklen_t addrlen;
	unsigned weight;          /* 1..256, default 1 */
	unsigned max_connections; /* across all workers; 0 (default) = no limit */
	int backup;               /* 1: used only when no other server can be */
	struct conf_source source; /* the server's own; else its upstream's */
	/* resolve = true: this entry is slot host_slot of the host_slots
	 * (max_addresses) that the name `host` became, consecutive in its
	 * upstream's list. The checker resolves the name (dns) and publishes
	 * each slot's address in the stats segment; workers read it there.
	 * addr/addrlen hold libc's answer at load (dns.init_addr "libc"), or
	 * addrlen is 0. host is NULL for an address fixed at load. */
	char *host;
	unsigned host_slot, host_slots;
	uint16_t port; /* host byte order */
};

/* The most addresses one resolved name may take (its slots). */
#define CONF_DNS_ADDRESSES_MAX 64
/* The longest "name:port" of a resolved server: with "#64" it stays a
 * unique row name in the stats segment (STATS_ADDR_MAX). */
#define CONF_DNS_ADDRESS_MAX 120
#define CONF_DNS_NAMESERVERS_MAX 8

/* dns = { ... }: the resolver of servers with resolve = true, run by the
 * checker (checker/dns.c). */
struct conf_dns {
	int enabled;                  /* 1 when the group is there */
	struct sockaddr_storage *ns;  /* nameservers (numeric, port default 53) */
	unsigned nns;                 /* >= 1; tried in turn after a failure */
	unsigned timeout_ms;          /* one query's wait for its answer, default 2s */
	unsigned min_ttl_ms;          /* answers are kept at least this, default 1s */
	unsigned max_ttl_ms;          /* and asked again after at most this, default 5m */
	unsigned retry_ms;            /* after a failed or empty answer, default 5s */
	int family;                   /* AF_UNSPEC (A and AAAA, default), AF_INET, AF_INET6 */
	int init_libc;                /* init_addr "libc" (default): getaddrinfo at load
	                               * gives the first addresses; "none": no address
	                               * until the first answer */
};

enum conf_balance {
	CONF_BALANCE_ROUNDROBIN, /* smooth weighted round robin, per worker */
	CONF_BALANCE_LEASTCONN,  /* fewest active connections (all workers) per weight */
	CONF_BALANCE_SOURCE,     /* consistent hash of the client address */
	CONF_BALANCE_RANDOM      /* two random servers (by weight), the less loaded (all workers) */
};

/* Active health checks of one group (health = { ... }), run by the checker. */
struct conf_health {
	int enabled;          /* 1 when the group has a health group */
	unsigned interval_ms; /* default 2s */
	unsigned timeout_ms;  /* default 1s, at most interval */
	unsigned rise;        /* successes in a row that bring a server UP, default 2 */
	unsigned fall;        /* failures in a row that take it DOWN, default 3 */
	unsigned send_proxy;  /* health.send_proxy: PROXY_V1 or PROXY_V2, a header
	                       * (v2 LOCAL, v1 UNKNOWN) sent first; 0: none */
	char *send;           /* NULL, or sent once connected */
	char *expect;         /* NULL, or the prefix the reply must start with */
};

/* keepalive = { idle; interval; count; }: TCP keepalive on one side's
 * sockets. A member left out keeps the kernel's value (0 here). */
struct conf_keepalive {
	int enabled;       /* 1 when the group is there */
	unsigned idle_s;   /* TCP_KEEPIDLE, seconds of silence before probing */
	unsigned interval_s; /* TCP_KEEPINTVL, seconds between probes */
	unsigned count;    /* TCP_KEEPCNT, unanswered probes that end it */
};

struct conf_upstream {
	char name[CONF_NAME_MAX];
	struct conf_server *servers;
	unsigned nservers; /* >= 1 */
	enum conf_balance balance; /* default roundrobin */
	unsigned retries;          /* other servers tried after a failed connect, default 1 */
	unsigned max_fails;        /* passive: failures in a row that mark a server down; 0 = never */
	unsigned fail_timeout_ms;  /* passive: how long such a mark lasts, default 10s */
	struct conf_health health;
	/* Options of the sockets connecting to the servers (upstream.c);
	 * all off by default, and then no system call is spent on them. */
	struct conf_keepalive keepalive;
	uint32_t mark; /* SO_MARK; 0: none */
	struct conf_source source; /* for servers without their own */
};

/* One rule of a listener's sni list: the hellos it takes, and where they go. */
struct conf_sni_rule {
	char *name;        /* lower case: a host name, or "*.suffix"; NULL: any (or none) */
	char *alpn;        /* a protocol the client's ALPN list must hold; NULL: any */
	unsigned upstream; /* index into conf.upstreams */
};

struct conf_listener {
	char *address; /* as written, e.g. "127.0.0.1:8080" or "unix:/run/x.sock" */
	struct sockaddr_storage addr;
	socklen_t addrlen;
	unsigned backlog;  /* 1..65535, default 511 */
	unsigned upstream; /* index into conf.upstreams */

	/* The edge (see worker/edge.c). Versions are proxy.h's PROXY_V1,
	 * PROXY_V2 and PROXY_ANY; 0 = off. */
	unsigned proxy_send;   /* proxy_protocol: header written to the upstream */
	unsigned proxy_accept; /* accept_proxy: header every client must send */
	struct cidr *trusted;  /* who may send it; required with accept_proxy */
	/* v2 TLVs in the header sent (proxy_protocol = "v2" only). */
	uint8_t *tlv_pass;     /* proxy_tlv_pass: PROXY_TLV_SET_BYTES, the types
	                        * passed on from the front's header (less those
	                        * proxy_tlv sets); NULL: none */
	uint8_t *tlv_add;      /* proxy_tlv: TLVs sent after the passed ones, encoded */
	unsigned tlv_add_len;
	int tlv_crc;           /* proxy_tlv has crc32c: always send a CRC32c TLV
	                        * (with crc32c in tlv_pass: when the front sent one) */
	unsigned ntrusted;
	struct cidr *allow;    /* when nallow > 0, only these sources */
	unsigned nallow;
	struct cidr *deny;     /* never these sources (deny wins over allow) */
	unsigned ndeny;
	unsigned max_per_source; /* max_connections_per_source, over all workers; 0 = none */
	unsigned rate_limit;     /* new connections per second, whole daemon; 0 = none */

	/* Options of the listening socket (master/listen.c), which accepted
	 * sockets inherit from it: nothing is set per connection. */
	int v6only;              /* IPV6_V6ONLY for an IPv6 address, default 1 */
	unsigned fastopen;       /* TCP_FASTOPEN queue length; 0 = off */
	unsigned defer_accept_s; /* TCP_DEFER_ACCEPT seconds; 0 = off */
	unsigned rcvbuf, sndbuf; /* SO_RCVBUF, SO_SNDBUF bytes; 0 = the kernel's */
	struct conf_keepalive keepalive; /* toward clients */
	/* reuseport = true: one SO_REUSEPORT socket per worker, worker i
	 * accepting socket i (and the sockets k left over from a larger
	 * worker count, k mod workers == i), instead of one shared socket;
	 * TCP only. */
	int reuseport;
	/* Routing by the TLS ClientHello (sni = ( ... )); nsni = 0: off.
	 * Without a default (no `upstream` setting), upstream is the first
	 * rule's, for bookkeeping only, and a hello no rule takes is refused. */
	struct conf_sni_rule *sni;
	unsigned nsni;
	int sni_default; /* 1: upstream takes the hellos no rule takes */
	/* A UNIX listener ("unix:/path"): what the master sets on its socket
	 * file after bind (master/listen.c). mode -1: 0666 less the master's
	 * umask; uid, gid -1: left as created (also under conf_peek). */
	int unix_mode;
	uid_t unix_uid;
	gid_t unix_gid;
};

struct conf {
	char *path; /* the file this was loaded from */

	unsigned workers; /* resolved: "auto" became the number of online CPUs */
	unsigned accept_workers; /* resolved: how many workers take new
	                          * connections at once ("auto": online CPUs);
	                          * >= workers: all of them */
	int workers_auto; /* 1 when the file said "auto" (or nothing) */
	char *pid_file;   /* default "/run/sluice/sluiced.pid" */
	char *stats_file; /* default "/run/sluice/stats" */

	enum log_target log_target; /* default syslog */
	char *log_file;             /* set when log_target is LOG_TARGET_FILE */
	int log_facility;           /* syslog LOG_*; default LOG_DAEMON */
	enum log_level log_level;   /* default info */
	int log_connections;        /* log.connections: a line per closed connection */
	struct logfmt *log_format;  /* log.format compiled; NULL: the classic line */
	char *log_syslog_socket;    /* log.syslog_socket, where workers send the
	                             * connection log; default "/dev/log" */

	/* Who the workers run as (see master/priv.c for a master started as
	 * root without `user`). Names are looked up here, at load. */
	char *user;   /* user; NULL when not set */
	uid_t uid;    /* user's uid, valid when user is set */
	gid_t gid;    /* group's gid, else the user's primary one (valid when either is set) */
	char *group;  /* group; NULL when not set (then the user's primary group) */
	char *chroot; /* absolute directory workers chroot into; NULL: none */

	size_t buffer_size;      /* pool.buffer_size, 512..1M, default 4096 */
	size_t max_memory;       /* pool.max_memory per worker, default 256M */
	size_t bulk_buffer_size; /* pool.bulk_buffer_size, default 32K; 0: none */
	size_t bulk_memory;      /* of max_memory, the bulk buffers' share: a
	                          * quarter, or 0 (no bulk buffers) when that
	                          * is under CONF_BULK_MIN_CHUNKS chunks; the
	                          * small buffers have the rest */
	int splice;              /* pool.splice: zero-copy relaying of bulk
	                          * transfers through pooled pipes; default 1 */
	int batch_writes;        /* pool.batch_writes: a message read is written
	                          * after the wake-up's other reads; default 0 */
	unsigned max_connections; /* limits.max_connections, whole daemon, default 10000 */
	unsigned max_connections_per_worker; /* limits.max_connections_per_worker;
	                                      * 0 (default): what a worker's
	                                      * descriptors can hold */
	unsigned source_table;   /* limits.source_table: slots of the shared
	                          * per-source table, 0 (default): four per
	                          * max_connections; used at start only */

	unsigned connect_timeout_ms; /* timeouts.connect, default 5s */
	unsigned idle_timeout_ms;    /* timeouts.idle, default 10m */
	unsigned drain_timeout_ms;   /* timeouts.drain, default 30s */
	unsigned proxy_header_timeout_ms; /* timeouts.proxy_header, default 5s */
	unsigned client_fin_timeout_ms; /* timeouts.client_fin: after the client's FIN,
	                                 * the idle timeout; 0 (default): idle's */
	unsigned server_fin_timeout_ms; /* timeouts.server_fin, after the server's FIN */
	unsigned max_lifetime_ms;       /* timeouts.max_lifetime from accept; 0: none */
	unsigned max_lifetime_jitter_ms; /* up to this much more, per session; 0: none */
	unsigned preread_timeout_ms;      /* timeouts.preread: the ClientHello of an
	                                   * sni listener, default 5s */

	struct conf_upstream *upstreams;
	unsigned nupstreams; /* >= 1 */
	struct conf_listener *listeners;
	unsigned nlisteners; /* >= 1 */

	/* control = { ... }: the master's UNIX control socket (sluicectl). */
	char *control_socket;     /* absolute path; NULL: no control socket */
	unsigned control_mode;    /* permission bits of the socket, default 0660 */
	char *control_group;      /* group owning it; NULL: the master's */
	gid_t control_gid;        /* control_group's, when set and not peeking */
	char *state_file;         /* runtime server states and weights; default
	                           * "server-state" beside the socket */

	/* admin = { listen = "ADDR:PORT"; }: the HTTP endpoint for /metrics
	 * and /healthz, served by the admin process (admin/admin.c). */
	struct conf_dns dns;

	char *admin_address; /* as written; NULL: no admin endpoint */
	struct sockaddr_storage admin_addr;
	socklen_t admin_addrlen;
};

/* Relayed connections one process with nofile descriptors can hold: two per
 * connection, after a reserve for listeners, the log, the stats segment and
 * idle splice pipes. */
unsigned conf_fd_capacity(const struct conf *, unsigned long nofile, unsigned extra_listen);

/* Read and validate path. Returns a new conf owned by the caller (free with
 * conf_free), or NULL with the first problem in err as
 * "FILE:LINE: SETTING: reason" (FILE alone when no line applies). */
struct conf *conf_load(const char *path, char *err, size_t errlen);

/* Like conf_load for tools that need only the settings naming files and the
 * log (pid_file, stats_file, log.*): sluiced -s, sluicestat, the logrotate
 * hook. Looks up no name, so a DNS or NSS outage cannot block them: servers
 * keep their address text with addrlen 0, user and group their names with
 * uid and gid unset. Every other check is the same; never give the result to
 * workers. */
struct conf *conf_peek(const char *path, char *err, size_t errlen);

/* Free a conf from conf_load or conf_peek. NULL is harmless. */
void conf_free(struct conf *);

/* "4096", "4K", "256M", "1G" (powers of 1024; K/M/G case-insensitive, an
 * optional trailing B). Returns 0 with *out, or -1 (EINVAL, ERANGE). */
int conf_parse_size(const char *text, uint64_t *out);

/* "500ms", "5s", "10m", "1h", "2d"; a bare number is seconds. Returns 0 with
 * *ms, or -1 (EINVAL, ERANGE when over ~49 days). */
int conf_parse_duration(const char *text, uint64_t *ms);

#endif
