/*
 * cmdclock.h -- the clock of a worker's batch of commands: chained readings,
 * extrapolated from the CPU's time-stamp counter.
 *
 * A worker runs a pipelined batch of commands back to back and needs, for
 * each, a start and an end in wall-clock microseconds (the command's "now"
 * for expiry, its duration for the statistics, latency histogram and slow
 * log). The readings are chained: the end of one command is the start of the
 * next, so n commands take n + 1 readings. The first is the wall clock
 * itself (clock_us(), read by cmdclock_begin()); the others are the TSC
 * (`rdtsc`, ~25 ns here against ~60 ns for clock_gettime() through the vDSO)
 * converted with a factor measured against CLOCK_MONOTONIC by
 * cmdclock_calibrate(), added to that first reading. Within a batch (about
 * a millisecond at most) the extrapolation is exact to well under a
 * microsecond; a clock step shows at the next batch.
 *
 * The TSC is used only on x86-64 when the kernel itself chose it as its
 * clocksource (it checks that it is invariant and synchronised across CPUs)
 * and once calibrated (about 100 ms after start); until then, elsewhere, and
 * for a gap over ~2^32 ticks, every reading is clock_us(), which gives the
 * same values the chain would without the TSC. Work outside any batch reads
 * the wall clock twice, as before.
 *
 * Thread-safety: the chain is per thread (thread-local). The calibration is
 * one global factor: cmdclock_calibrate() is called from one thread only,
 * readers load it with relaxed atomics.
 */
#ifndef CRAB_CORE_CMDCLOCK_H
#define CRAB_CORE_CMDCLOCK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/clock.h"

#if defined(__x86_64__)
#include <x86intrin.h>
#define CMDCLOCK_HAVE_TSC 1
#else
#define CMDCLOCK_HAVE_TSC 0
#endif

/* Microseconds per TSC tick in 32.32 fixed point; 0 = TSC not in use. */
extern _Atomic uint64_t cmdclock_mult;

struct cmdclock {
    int64_t chain_us;   /* 0 = no batch; else the last end (or the begin) */
    int64_t base_us;    /* wall clock at the batch's begin */
    uint64_t base_tsc;  /* TSC at the same moment; 0 = no TSC this batch */
    uint64_t mult;      /* cmdclock_mult as loaded at the begin */
};
extern _Thread_local struct cmdclock cmdclock_tl;

static inline uint64_t
cmdclock_tsc(void)
{
#if CMDCLOCK_HAVE_TSC
    return __rdtsc();
#else
    return 0;
#endif
}

/* A batch starts: reads the wall clock once and returns it (microseconds);
 * the first command of the batch starts at this time. */
static inline int64_t
cmdclock_begin(void)
{
    struct cmdclock *k = &cmdclock_tl;
    k->mult = atomic_load_explicit(&cmdclock_mult, memory_order_relaxed);
    k->base_tsc = k->mult ? cmdclock_tsc() : 0;
    k->base_us = clock_us();
    k->chain_us = k->base_us;
    return k->base_us;
}

/* The batch ended: nothing is chained until the next cmdclock_begin(). */
static inline void
cmdclock_break(void)
{
    cmdclock_tl.chain_us = 0;
}

/* The last reading of the current batch (its begin, or the end of its last
 * command); 0 outside a batch. Reads no clock. */
static inline int64_t
cmdclock_last(void)
{
    return cmdclock_tl.chain_us;
}

/* Wall-clock microseconds now: extrapolated from the batch's begin by the
 * TSC when it can be, else clock_us(). */
static inline int64_t
cmdclock_read(void)
{
    struct cmdclock *k = &cmdclock_tl;
    if (k->base_tsc != 0) {
        uint64_t d = cmdclock_tsc() - k->base_tsc;
        if (d < ((uint64_t)1 << 32)) {
            return k->base_us + (int64_t)((d * k->mult) >> 32);
        }
    }
    return clock_us();
}

/* The start time of the next command: the end of the previous one in the
 * same batch, else the wall clock. */
static inline int64_t
cmdclock_start(void)
{
    int64_t t = cmdclock_tl.chain_us;
    return t > 0 ? t : clock_us();
}

/* The end time of the current command; in a batch it is also the start of
 * the next one. */
static inline int64_t
cmdclock_end(void)
{
    struct cmdclock *k = &cmdclock_tl;
    if (k->chain_us == 0) {
        return clock_us();
    }
    int64_t t = cmdclock_read();
    k->chain_us = t;
    return t;
}

/*
 * Measure the TSC against CLOCK_MONOTONIC (two readings) and publish the
 * factor once the baseline is long enough (>= 100 ms); later calls lengthen
 * the baseline, so the factor gets more precise. A factor that moves by more
 * than 0.1% restarts the measurement with the TSC off meanwhile. Call it
 * from one thread, periodically (a worker's cron). Cheap.
 */
void cmdclock_calibrate(void);

/* For tests: true when the TSC is in use (calibrated, clocksource tsc). */
bool cmdclock_tsc_active(void);

#endif
