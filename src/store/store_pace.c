/*
 * store_pace.c -- how fast the background eviction may go (gradual
 * strategy): a token bucket in bytes per store.
 */
#include "store/store.h"
#include "store/store_int.h"

#include <stdatomic.h>

#include "util/clock.h"

/*
 * Pacing of the background eviction (gradual strategy). The cron evicts at
 * most at a rate that would take memory from the high watermark to the low
 * one in BAND_DRAIN_US: under a steady write load the writers' own evictions
 * keep memory just below the high watermark and the policy judges every new
 * key as it reaches its capacity; when writes stop, memory goes on down to
 * the low watermark. Unpaced, the cron dropped memory to the low watermark
 * at every crossing of the high one; the 15 % of memory between them was
 * refilled by new keys that sat in the window unjudged, and the main area
 * held only 70 % of max_memory. Measured on the replays of bench/eviction
 * (1 MiB, 256 B values): lirs-multi2 71.9 % -> 74.5 % and lirs-gli 33.5 %
 * -> 38.8 % with the band narrowed to 0.85..0.80, the bulk of it from that
 * effect. Token bucket in bytes, per store (st->bg_last_us, st->bg_tokens;
 * they were process-wide statics, which a second store in the process,
 * such as a staging keyspace, would have drained).
 */
#define BAND_DRAIN_US 2000000

bool
store__background_may_evict(struct store *st, size_t max)
{
    if (st->ev.batch) {
        return true;
    }
    double band = (st->ev.high_watermark - st->ev.low_watermark) * (double)max;
    double rate = band > 0 ? band / BAND_DRAIN_US : 1e-3; /* bytes per us */
    int64_t now = clock_mono_us();
    int64_t last = atomic_exchange(&st->bg_last_us, now);
    int64_t add = last ? (int64_t)((double)(now - last) * rate) : 0;
    int64_t cap = (int64_t)(rate * 200000) + 4096; /* 0.2 s worth at most */
    int64_t t = atomic_load(&st->bg_tokens) + (add > 0 ? add : 0);
    if (t > cap) {
        t = cap;
    }
    atomic_store(&st->bg_tokens, t);
    return t > 0;
}
