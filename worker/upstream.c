/* upstream.c — choice of an upstream server and the non-blocking connect to
 * it, in a worker. Round robin per worker over the listener's upstream group.
 * Never blocks: names were resolved by the master at config load. */
#include "conf.h"
#include "net.h"
#include "worker.h"

int
upstream_connect(struct worker *w, unsigned li, int failed, unsigned *server)
{
	unsigned ui = w->conf->listeners[li].upstream;
	const struct conf_upstream *u = &w->conf->upstreams[ui];
	unsigned i = failed < 0 ? w->rr[ui]++ % u->nservers : ((unsigned)failed + 1) % u->nservers;

	*server = i;
	return net_connect((const struct sockaddr *)&u->servers[i].addr, u->servers[i].addrlen);
}

const char *
upstream_name(const struct worker *w, unsigned li, unsigned server)
{
	return w->conf->upstreams[w->conf->listeners[li].upstream].servers[server].address;
}
