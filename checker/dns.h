/* SPDX-License-Identifier: BSD-2-Clause */
/* dns.h — live DNS for servers with resolve = true, run by the checker:
 * each name is asked again when its answer's TTL (clamped to dns.min_ttl ..
 * dns.max_ttl) runs out, and its addresses go to its slots in the stats
 * segment (stats_resolved), where workers read them. Checker only. */
#ifndef SLUICE_CHECKER_DNS_H
#define SLUICE_CHECKER_DNS_H

struct ev_loop;
struct heritage;

/* Set up one resolution per resolved name of h->conf and start them (the
 * first at once). The slots start from what the segment holds (an earlier
 * generation's answers). Returns the number of names, or -1 with errno
 * ENOMEM. */
int dns_start(struct ev_loop *, const struct heritage *h);

/* Close every query in flight and free what dns_start took. */
void dns_stop(struct ev_loop *);

#endif
