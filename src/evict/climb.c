/*
 * climb.c -- the adaptive window of W-TinyLFU: hill climbing on the window
 * share of capacity.
 *
 * Requests are cut into samples; at the end of each sample the climber
 * decides a window change, applied at once by evict__resize_window (the
 * window may take 0 % to 99 % of capacity; protected keeps protected_ratio
 * of what is left). Two laws, picked by the number of entries of the whole
 * cache (cache_entries below):
 *
 *  - small caches (<= 4096 entries), "reactive", samples of 10 x entries
 *    requests: keep moving the window in the same direction while the
 *    sample hit ratio improves, reverse when it drops. The step starts at
 *    3 % of capacity (the first move grows the window), decays by 2 % each
 *    sample, and restarts at full size when the hit ratio jumps by 5 points.
 *
 *  - larger caches, "density", samples of 1 x entries requests: compare what
 *    each region earns per unit of capacity within the same sample (window
 *    hits / window budget against main hits / main budget) and move capacity
 *    toward the denser region by `gain` x capacity per unit of log ratio (at
 *    most 30 %), the window kept at 2 % of capacity or more. Both densities
 *    come from the same sample, so a change of workload phase cancels out of
 *    the ratio, where the reactive law would chase it; so the samples can be
 *    short and a large cache still adapts within a trace.
 *    Two corrections to the plain law:
 *    . Bias. The law rests where capacity share = hit share, not where the
 *      marginal hit rates are equal; the window, an LRU serving tight reuse,
 *      has the larger gap between average and marginal value, so the plain
 *      law over-allocates it. Window density is discounted by e^0.3 (x0.74).
 *    . Gain that follows the signal's consistency (as in Rprop): it starts
 *      at 2 %, grows x1.03 while the log ratio keeps its sign from sample to
 *      sample and halves when the sign flips, within [0.3 %, 10 %]. A
 *      workload that really wants a large window (scarab-recs) still gets
 *      there; a phasey one (P12: scans, then new working sets that the
 *      window serves first) stops being dragged back and forth, each move
 *      costing hits.
 *      The gain is damped for the CLOCK window: a move costs more hits on
 *      queues than on lists (a shrink sends the window's FIFO-oldest items
 *      to probation, hit or not, with their frequency cleared; a growth
 *      puts main's coldest items at the window's head, the next
 *      candidates), and a window item keeps up to 3 second chances, so the
 *      window's hits lag a resize and a fast-compounding gain overshoots.
 *      With the lists' 3 % / x1.25 the climber moved about 2 x as much
 *      capacity on arc-OLTP 5606 / 8192 as with 2 % / x1.03, and lost
 *      0.2-1.0 points there (docs/eviction.md).
 *
 * The whole cache, not the policy. The server splits its keys over shards,
 * each with a policy of its own that sees 1/shards of the requests. A
 * reactive sample of 10 x entries requests takes a shard as many of the
 * cache's requests as the whole cache's sample would take it, so picking
 * the law by the shard's own entries made a 12,700-key cache of 8 shards
 * climb like one of 1,600 keys on an 8 times shorter trace: arc-OLTP's
 * shards ended with windows of 4-15 % where the whole cache's density law
 * reaches 80 %, and the server hit 63.5 % where the simulator gives 64.4 %
 * for the same keys. The law therefore follows the whole cache's entries
 * (the policy's capacity in entries at its items' mean weight, times the
 * shards), and a density sample counts at least DENSITY_MIN_REQUESTS of the
 * shard's requests: a shard of 1,600 entries sees a few window hits in
 * 1,600 requests, too few for a ratio. Alone (the simulator's default), a
 * policy's law and samples are what they were, since a density cache has
 * more than 4,096 entries.
 *
 * The constants were chosen on the public traces crabcache-sim replays
 * (docs/eviction.md, "The traces") as one
 * configuration for all (docs/eviction.md has the measurements).
 */
#include "evict/evict.h"

#include <math.h>

#define REACTIVE_MAX_ENTRIES 4096u
#define STEP_PERCENT 0.03
#define STEP_DECAY 0.98
#define RESTART_THRESHOLD 0.05
#define DENSITY_GAIN 0.02
#define DENSITY_GAIN_MIN 0.003
#define DENSITY_GAIN_MAX 0.10
#define DENSITY_GAIN_UP 1.03
#define DENSITY_GAIN_DOWN 0.5
#define DENSITY_BIAS 0.3
#define DENSITY_MAX_STEP 0.30
#define DENSITY_MIN_WINDOW 0.02
#define REACTIVE_SAMPLE 10u
#define DENSITY_SAMPLE 1u
#define DENSITY_MIN_REQUESTS 4096u

/* Entries of the whole cache this policy is part of (see the top). */
static uint64_t
cache_entries(const struct evict_policy *p)
{
    uint64_t n = evict_count(p);
    uint64_t w = evict_weight(p);
    uint64_t per = n > 0 && w > 0 ? (uint64_t)((double)p->capacity * (double)n / (double)w)
                                  : (uint64_t)p->sketch.entries;
    return per * p->shards;
}

/* Choose the next sample's law and length: once per sample, not per
 * request. With nothing resident the size is not known yet: period 0, and
 * the next request chooses again. */
static void
next_sample(struct evict_policy *p)
{
    struct evict_climber *c = &p->climb;

    if (evict_count(p) == 0) {
        c->period = 0;
        return;
    }
    c->reactive = cache_entries(p) <= REACTIVE_MAX_ENTRIES;
    c->period = (uint64_t)p->sketch.entries *
                (c->reactive ? REACTIVE_SAMPLE : DENSITY_SAMPLE);
    if (!c->reactive && c->period < DENSITY_MIN_REQUESTS) {
        c->period = DENSITY_MIN_REQUESTS;
    }
}

void
evict__climb_reset(struct evict_policy *p)
{
    struct evict_climber *c = &p->climb;

    c->hits = 0;
    c->misses = 0;
    c->window_hits = 0;
    c->prev_hit_rate = 0.0;
    c->step = STEP_PERCENT * (double)p->capacity;
    c->gain = DENSITY_GAIN;
    c->last_sign = 0;
    next_sample(p);
}

static int64_t
reactive_adjustment(struct evict_policy *p)
{
    struct evict_climber *c = &p->climb;
    double requests = (double)(c->hits + c->misses);
    double hit_rate = (double)c->hits / requests;
    double change = hit_rate - c->prev_hit_rate;
    double amount = change >= 0 ? c->step : -c->step;

    if (fabs(change) >= RESTART_THRESHOLD) {
        c->step = STEP_PERCENT * (double)p->capacity * (amount >= 0 ? 1 : -1);
    } else {
        c->step = STEP_DECAY * amount;
    }
    c->prev_hit_rate = hit_rate;
    return (int64_t)amount;
}

static int64_t
density_adjustment(struct evict_policy *p)
{
    struct evict_climber *c = &p->climb;
    double cap = (double)p->capacity;
    double wmax = (double)p->window_max;
    double mmax = cap - wmax;
    double floor = DENSITY_MIN_WINDOW * cap;
    double wd, md, err, step;
    int sign;

    if (wmax < 1 || mmax < 1) {
        return wmax < floor ? (int64_t)(floor - wmax) : 0;
    }
    /* Half a hit of prior on each side keeps the log finite. */
    wd = ((double)c->window_hits + 0.5) / wmax;
    md = ((double)(c->hits - c->window_hits) + 0.5) / mmax;
    err = log(wd / md) - DENSITY_BIAS;
    sign = err > 0 ? 1 : err < 0 ? -1 : 0;
    if (sign != 0 && c->last_sign != 0) {
        c->gain *= sign == c->last_sign ? DENSITY_GAIN_UP : DENSITY_GAIN_DOWN;
        c->gain = fmin(fmax(c->gain, DENSITY_GAIN_MIN), DENSITY_GAIN_MAX);
    }
    if (sign != 0) {
        c->last_sign = sign;
    }
    step = fabs(err) * c->gain * cap;
    if (step > DENSITY_MAX_STEP * cap) {
        step = DENSITY_MAX_STEP * cap;
    }
    if (err < 0) {
        step = -step;
    }
    if (wmax + step < floor) {
        step = floor - wmax;
    }
    return (int64_t)step;
}

void
evict__climb_record(struct evict_policy *p, bool hit, bool window_hit)
{
    struct evict_climber *c = &p->climb;
    int64_t delta;

    if (hit) {
        c->hits++;
        c->window_hits += window_hit;
    } else {
        c->misses++;
    }
    if (!p->adaptive || c->hits + c->misses < c->period) {
        return;
    }
    if (c->period == 0) {
        next_sample(p);
        return;
    }
    if (c->reactive) {
        delta = reactive_adjustment(p);
    } else {
        delta = density_adjustment(p);
    }
    c->hits = 0;
    c->misses = 0;
    c->window_hits = 0;
    c->samples++;
    if (delta != 0) {
        c->adjustments++;
        evict__resize_window(p, delta);
    }
    next_sample(p);
}
