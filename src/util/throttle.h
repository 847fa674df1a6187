/*
 * throttle.h -- at most N log lines per second for events an attacker can
 * trigger at will (failed AUTH, refused connections, dropped clients).
 *
 * Each event asks log_throttle_allow(); within one wall-clock second the
 * first `per_sec` callers get true, the rest are counted, and the next line
 * logged reports how many were skipped ("suppressed"), so the log shows the
 * scale of a flood without being flooded itself. Counters stay exact: only
 * the log is thinned.
 *
 * Thread-safety: lock-free, any thread. Under a race a second may log a
 * line or two more than per_sec; never fewer than one.
 */
#ifndef CRAB_UTIL_THROTTLE_H
#define CRAB_UTIL_THROTTLE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/clock.h"

struct log_throttle {
    _Atomic int64_t sec;
    _Atomic unsigned n;
    _Atomic uint64_t suppressed;
};

/* True when this event may be logged; *suppressed is then the number of
 * events skipped since the last line that was logged. */
static inline bool
log_throttle_allow(struct log_throttle *t, unsigned per_sec, uint64_t *suppressed)
{
    int64_t now = clock_ms() / 1000;
    int64_t old = atomic_load_explicit(&t->sec, memory_order_relaxed);
    if (old != now &&
        atomic_compare_exchange_strong(&t->sec, &old, now)) {
        atomic_store(&t->n, 0);
    }
    if (atomic_fetch_add(&t->n, 1) < per_sec) {
        *suppressed = atomic_exchange(&t->suppressed, 0);
        return true;
    }
    atomic_fetch_add(&t->suppressed, 1);
    return false;
}

#endif
