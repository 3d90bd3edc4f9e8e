/* SPDX-License-Identifier: BSD-2-Clause */
/* check.h — invariant checks for debug builds (--enable-debug, implied by
 * --enable-sanitizers): CHECK(x) stops the process at a broken invariant, at
 * its cause, instead of letting it corrupt state that fails later. Costs
 * nothing in a normal build, so it may sit on hot paths. */
#ifndef SLUICE_CHECK_H
#define SLUICE_CHECK_H

#ifdef SLUICE_DEBUG
#include <assert.h>
#define CHECK(x) assert(x)
#define CHECKING 1
#else
#define CHECK(x) ((void)0)
#define CHECKING 0
#endif

#endif
