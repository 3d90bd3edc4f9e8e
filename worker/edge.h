/* SPDX-License-Identifier: BSD-2-Clause */
/* edge.h — admission at the edge: rate limits, trusted fronts, allow and
 * deny lists, per-source limits (edge.c). Runs in a worker, right after
 * accept and before any upstream work; never allocates per connection. */
#ifndef SLUICE_EDGE_H
#define SLUICE_EDGE_H

#include <stddef.h>
#include <stdint.h>

struct conf;
struct sockaddr;
struct tls_hello;
struct worker;

/* Bytes each session object needs past struct session for the edge under
 * config c: 0 unless per-source limits, the connection log, the control
 * socket or source balancing behind a PROXY-header listener need the client
 * kept per connection, or sni rules the upstream they chose. */
size_t edge_session_extra(const struct conf *c);

/* Set up w->edge (rate buckets; the per-source table when a listener limits
 * sources) and w->session_tail, once before accepting. Returns 0, or -1 with
 * errno ENOMEM. */
int edge_init(struct worker *);

/* Admission right after accept: listener li's rate limit, then, for an
 * accept_proxy listener, the trusted list (the client is judged when its
 * header names it), else edge_admit_client. Returns -1 when admitted, else
 * the enum stats_refuse reason, with *why its name for the connection log. */
int edge_admit(struct worker *, unsigned li, const struct sockaddr *peer, const char **why);

/* Deny and allow lists, then the per-source limit for the client address.
 * Returns -1 when admitted (the client then counts against its source until
 * edge_release), else the enum stats_refuse reason and *why. */
int edge_admit_client(struct worker *, unsigned li, const struct sockaddr *client,
    const char **why);

/* Count a session taken over from an older generation against its source
 * (client) on li, whatever the limit: it is established already. table:
 * the sender's edge_table_id; when it is ours, the count the sender left in
 * the shared table becomes ours (nothing is added), else it is counted
 * afresh. */
void edge_adopt(struct worker *, unsigned li, const struct sockaddr *client, uint32_t table);

/* A session counted by edge_admit_client leaves this worker for another
 * (hand-off): its count leaves our books; in the shared table it stays,
 * for the receiver to take over (edge_adopt). */
void edge_detach(struct worker *, unsigned li, const struct sockaddr *client);

/* A session taken over whose listener (stats row `row`) this config lacks:
 * drop the count its sender left in our shared table (table: its id). */
void edge_forget(struct worker *, unsigned row, const struct sockaddr *client, uint32_t table);

/* The id of the shared per-source table this worker counts in, 0: none. */
uint32_t edge_table_id(const struct worker *);

/* For the hand-off record of a session of listener li from client: our
 * table's id when this worker holds a count of that source there (the
 * count stays for the receiver, edge_detach), else 0. */
uint32_t edge_handoff_table(const struct worker *, unsigned li, const struct sockaddr *client);
/* The sni rule of listener li that takes the ClientHello h: of the rules
 * whose alpn (when they name one) the client offers, one naming the host
 * exactly, else the matching wildcard with the longest suffix, else one
 * without a name; the first in the file among equals. Returns the rule's
 * index, or -1 when none takes it (the listener's default, if any). */
int edge_sni_route(const struct worker *, unsigned li, const struct tls_hello *h);

/* A connection edge_admit_client counted has closed. */
void edge_release(struct worker *, unsigned li, const struct sockaddr *client);

#endif
