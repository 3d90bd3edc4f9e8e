/* SPDX-License-Identifier: BSD-2-Clause */
/* balance.h — the server-choice algorithms of an upstream group: smooth
 * weighted round robin, weighted least connections, random with two choices
 * and a consistent-hash ring for source hashing. Pure functions over arrays
 * the caller owns; used by upstream.c in a worker and by the unit tests.
 * Nothing here allocates per pick, logs, or does I/O: only
 * balance_ring_build allocates, once. */
#ifndef SLUICE_BALANCE_H
#define SLUICE_BALANCE_H

#include <stdint.h>
#include <sys/socket.h>

struct conf_server;

/* Ring points per unit of weight: about 5% spread between equal servers
 * (40 left 30%), and 8 bytes each: 800 bytes for a server of weight 1. */
#define BALANCE_VNODES 100

/*
 * Smooth weighted round robin (the nginx scheme): every usable server gains
 * its weight, the one with the most goes and pays back the sum. Over any
 * window of sum(weights) picks each server gets exactly its share, and the
 * picks are interleaved rather than bunched. cw holds n current weights,
 * zeroed by the caller once; weight the n servers' weights in force (the
 * config's, or an operator's). usable[i] != 0 marks the servers that may be
 * chosen (never one of weight 0). Returns the index, or -1 when none is
 * usable (cw unchanged).
 */
int balance_rr_pick(
    int32_t *cw, const uint32_t *weight, const uint8_t *usable, unsigned n);

/*
 * Weighted least connections: the usable server with the smallest
 * (load[i] + 1) / weight, so that a new connection goes where it raises the
 * relative load least. Ties go to the first in cyclic order from start, so a
 * caller that moves start on every pick spreads equal servers. Returns the
 * index, or -1 when none is usable.
 */
int balance_leastconn_pick(const uint32_t *weight, const uint8_t *usable,
    const uint64_t *load, unsigned n, unsigned start);

/*
 * Random with two choices (the "power of two choices"): draw two distinct
 * usable servers at random, each with a chance proportional to its weight,
 * and take the one with the smaller (load + 1) / weight (the first drawn on
 * a tie). Unlike least connections it does not send a burst of picks made
 * from the same stale loads all to one server, and unlike plain random it
 * keeps loads within a narrow band. A single usable server is taken alone.
 * rng is the caller's generator state (any value but 0), advanced by each
 * pick. Returns the index, or -1 when none is usable.
 */
int balance_random2_pick(const uint32_t *weight, const uint8_t *usable, const uint64_t *load,
    unsigned n, uint64_t *rng);

/* One point of the ring: a hash and the server it belongs to. */
struct balance_vnode {
	uint32_t point;
	uint32_t server;
};

/* A consistent-hash ring: weight * BALANCE_VNODES points per server, placed
 * by a hash of the server's address text (not its position in the list), so
 * that adding, removing or losing a server moves only that server's clients. */
struct balance_ring {
	struct balance_vnode *v; /* sorted by point */
	unsigned n;
};

/* Build the ring of n servers into *ring (malloc'ed; free with
 * balance_ring_free), weight[i] points per server (NULL: the config's
 * weights). Returns 0, or -1 with errno ENOMEM. */
int balance_ring_build(struct balance_ring *ring, const struct conf_server *servers,
    const uint32_t *weight, unsigned n);

/* Free what balance_ring_build allocated; the ring is then empty. */
void balance_ring_free(struct balance_ring *ring);

/* The server owning hash on the ring: the first usable one clockwise from
 * it. Returns the index, or -1 when none is usable or the ring is empty. */
int balance_ring_pick(const struct balance_ring *ring, uint32_t hash, const uint8_t *usable);

/* Hash of a client's address, port excluded (IPv4-mapped IPv6 hashes as the
 * IPv4 address): stable for one client across its connections. */
uint32_t balance_hash_addr(const struct sockaddr *sa);

#endif
