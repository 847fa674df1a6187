/*
 * tclock.h -- chained clock readings for back-to-back work on one thread.
 *
 * A worker executing a batch of pipelined commands needs a start and an end
 * time for each (durations, latency histogram, the command's "now"); with a
 * chain, the end of one command is the start of the next, so a batch of n
 * commands costs n + 1 clock reads instead of 2n. Whoever runs the batch
 * calls tclock_begin() and tclock_break() around it, so that time spent
 * elsewhere (waiting in epoll, other connections) is never counted, and work
 * outside any batch always reads the clock twice. The cost
 * of the chain: a command's duration also covers the parsing and dispatch of
 * its request since the previous command ended (well under a microsecond).
 *
 * Thread-safety: the chain is per thread (thread-local); nothing is shared.
 */
#ifndef CRAB_UTIL_TCLOCK_H
#define CRAB_UTIL_TCLOCK_H

#include <stdint.h>

#include "util/clock.h"

/* This thread's chain: 0 = none (outside a batch nothing is chained),
 * TCLOCK_OPEN = a batch started and nothing ended yet, else the last end. */
extern _Thread_local int64_t tclock_chain_us;
#define TCLOCK_OPEN ((int64_t)-1)

/* A batch starts: the next tclock_start() reads the clock, and tclock_end()
 * links from now on. */
static inline void
tclock_begin(void)
{
    tclock_chain_us = TCLOCK_OPEN;
}

/* The batch ended: nothing is chained until the next tclock_begin(). */
static inline void
tclock_break(void)
{
    tclock_chain_us = 0;
}

/* The start time of the next piece of work: the end of the previous one in
 * the same batch, else the wall clock (clock_us()). */
static inline int64_t
tclock_start(void)
{
    int64_t t = tclock_chain_us;
    return t > 0 ? t : clock_us();
}

/* The end time of the current piece of work, read from the wall clock; in a
 * batch it is also the start of the next piece. */
static inline int64_t
tclock_end(void)
{
    int64_t t = clock_us();
    if (tclock_chain_us != 0) {
        tclock_chain_us = t;
    }
    return t;
}

#endif
