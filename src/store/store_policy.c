/*
 * store_policy.c -- the store's side of the eviction policy (evict/): the
 * callbacks through which a shard's policy reads its items (hash, weight)
 * and hands back the chunks of removed items, each shard's policy capacity
 * (its share of the level memory is held at), and the settings that change
 * them at run time (CONFIG SET).
 */
#include "store/store.h"
#include "store/store_int.h"

#include <stdlib.h>
#include <string.h>

/* The policy hashes the two items of an admission duel; it hands the
 * loser's hash back with it (evict_take), and shard_evict does not hash
 * that key again. */
static uint64_t
node_hash(evict_ref ref, void *ctx)
{
    const struct shard *sh = ctx;
    const struct item *it = item_at(&sh->slab, ref);
    return ht_hash(item_key(it), item_klen(it));
}

static uint64_t
node_weight(evict_ref ref, void *ctx)
{
    const struct shard *sh = ctx;
    return item_mem(item_at(&sh->slab, ref));
}

/* The policy is done with a removed item (its queue entry is gone): its
 * chunk goes back to the slab. */
static void
node_release(evict_ref ref, void *ctx)
{
    struct shard *sh = ctx;
    struct item *it = item_at(&sh->slab, ref);
    if (ref == sh->removing) {
        sh->removing = 0; /* released inside evict_on_remove: see forget_slot */
    }
    shard__mem_changed(sh, -(ssize_t)item_free_mem(&sh->slab, it));
}

static enum evict_kind
kind_of(enum store_policy p)
{
    return p == STORE_NOEVICTION ? EVICT_NOEVICTION : p == STORE_LRU ? EVICT_LRU : EVICT_TINYLFU;
}

/*
 * A shard's policy capacity, in bytes of items: its share of the level the
 * store holds memory at while it evicts, times the part of the shard's
 * memory that is items (the rest is the index, the policy's queues and
 * sketch, and dead chunks: they count in used memory but are no policy
 * weight; 15/16 until the shard holds 64 KiB or a quarter of its share of
 * the level, then measured). The cron follows that part as it changes
 * (policy_sync): with 29-byte items it is about 2/3. That level is the high
 * watermark with the gradual strategy (writers evict to stay below it, the
 * background only trickles down, see store_evict_step) and the low
 * watermark with batch (the background drops memory to it at once).
 *
 * Measured why: with the whole max_memory as capacity the policy was never
 * full, every window item moved to probation without a duel, and W-TinyLFU
 * ran as a plain segmented LRU (0 admissions and 0 rejections over 29,200
 * evictions on cache2k-web07). Any memory held above the capacity sits in
 * the window unjudged, and any held below it is admitted without a duel, so
 * the capacity has to match the level memory actually stays at. Too high
 * is the costly side: with 32-byte values in 256 KiB (shards of 28 KiB,
 * when the measured part started at 64 KiB) the fixed 15/16 against a real
 * 2/3 left every shard's policy below capacity, and lirs-multi2 made no
 * duel in 2,813 evictions (74.09 % against 78.37 % for lru).
 */
static uint64_t
shard_capacity(const struct store *st, const struct shard *sh)
{
    size_t max = atomic_load(&st->max_memory);
    if (max == 0) {
        return (uint64_t)1 << 40;
    }
    double level = st->ev.batch ? st->ev.low_watermark : st->ev.high_watermark;
    if (!(level > 0 && level <= 1)) {
        level = 1;
    }
    double held = (double)max * level / st->nshards; /* the shard's share */
    double share = 15.0 / 16.0;
    uint64_t w = evict_weight(&sh->policy);
    double measured_from = held / 4 < 64 * 1024 ? held / 4 : 64 * 1024;
    if ((double)sh->mem >= measured_from && w > 0) {
        share = (double)w / (double)sh->mem;
        share = share < 0.5 ? 0.5 : share > 15.0 / 16.0 ? 15.0 / 16.0 : share;
    }
    double cap = held * share;
    return cap >= 1 ? (uint64_t)cap : 1;
}

/*
 * Count the policy's own memory (queues, sketch) in the shard's, beyond
 * what an empty shard's policy holds (its first sketch and one block per
 * queue: a fixed cost per shard, like the empty server's own memory, which
 * does not count against max_memory either), and keep its capacity on the
 * items' part of the shard (see shard_capacity in store_policy.c). Measured why the fixed part
 * stays out: counted whole, it took 8-16 % of a 1-2 MiB limit over 8 shards,
 * and lirs-gli / lirs-loop lost 6 / 13 points of hit ratio to Redis.
 */
void
shard__policy_sync(struct shard *sh)
{
    size_t m = evict_mem(&sh->policy);
    m = m > sh->policy_base ? m - sh->policy_base : 0;
    if (m != sh->policy_mem) {
        shard__mem_changed(sh, (ssize_t)m - (ssize_t)sh->policy_mem);
        sh->policy_mem = m;
    }
    /* only a real change: every block the queues take or give back moves
     * the estimate a little, and the budgets need not follow each one */
    uint64_t cap = shard_capacity(sh->store, sh);
    uint64_t cur = sh->policy.capacity;
    if (cap > cur + cur / 16 || cap + cur / 16 < cur) {
        evict_adjust_capacity(&sh->policy, cap);
    }
}

void
store__policy_init(struct store *st, struct shard *sh)
{
    struct evict_params p;
    evict_params_default(&p);
    p.kind = kind_of((enum store_policy)atomic_load(&st->policy));
    p.capacity = shard_capacity(st, sh);
    p.expected_entries = 1024; /* grows with the keys once half full */
    p.shards = st->nshards;   /* the climber sizes its law by the whole store */
    if (st->ev.window_ratio > 0 && st->ev.window_ratio < 1) {
        p.window_ratio = st->ev.window_ratio;
    }
    if (st->ev.admission_multiplier > 0) {
        p.admission_multiplier = st->ev.admission_multiplier;
    }
    p.seed ^= (uint64_t)(sh - st->shards) * 0x9e3779b97f4a7c15ull;
    p.base = sh->slab.base;
    struct evict_ops ops = {node_hash, node_weight, node_release, sh};
    if (evict_init(&sh->policy, &p, &ops) != 0) {
        abort();
    }
    sh->policy_base = evict_mem_floor(&sh->policy);
}

void
store_set_eviction(struct store *st, const struct store_eviction *ev)
{
    st->ev = *ev;
    /* the policies' capacity follows the watermarks and strategy */
    for (unsigned i = 0; i < st->nshards; i++) {
        struct shard *sh = shard_lock(st, i);
        evict_set_capacity(&sh->policy, shard_capacity(st, sh));
        shard_unlock(sh);
    }
}

void
store_set_max_memory(struct store *st, size_t max_memory)
{
    atomic_store(&st->max_memory, max_memory);
    store__mem_step_update(st);
    for (unsigned i = 0; i < st->nshards; i++) {
        struct shard *sh = shard_lock(st, i);
        evict_set_capacity(&sh->policy, shard_capacity(st, sh));
        shard_unlock(sh);
    }
}

void
store_set_policy(struct store *st, enum store_policy policy)
{
    atomic_store(&st->policy, policy);
    for (unsigned i = 0; i < st->nshards; i++) {
        struct shard *sh = shard_lock(st, i);
        evict_set_kind(&sh->policy, kind_of(policy));
        shard_unlock(sh);
    }
}

void
store_evict_stats(struct store *st, struct evict_stats *sum)
{
    memset(sum, 0, sizeof(*sum));
    for (unsigned i = 0; i < st->nshards; i++) {
        struct evict_stats s;
        struct shard *sh = shard_lock(st, i);
        evict_stats(&sh->policy, &s);
        shard_unlock(sh);
        sum->kind = s.kind;
        sum->capacity += s.capacity;
        sum->count += s.count;
        sum->weight += s.weight;
        sum->window_count += s.window_count;
        sum->window_weight += s.window_weight;
        sum->window_max += s.window_max;
        sum->probation_count += s.probation_count;
        sum->probation_weight += s.probation_weight;
        sum->protected_count += s.protected_count;
        sum->protected_weight += s.protected_weight;
        sum->protected_max += s.protected_max;
        sum->admissions += s.admissions;
        sum->rejections += s.rejections;
        sum->evictions += s.evictions;
        sum->climber_samples += s.climber_samples;
        sum->climber_adjustments += s.climber_adjustments;
        sum->sketch_bytes += s.sketch_bytes;
        sum->sketch_resets += s.sketch_resets;
        sum->dead_entries += s.dead_entries;
        sum->releases += s.releases;
        sum->queue_entries += s.queue_entries;
        sum->queue_bytes += s.queue_bytes;
    }
    sum->window_ratio = sum->capacity ? (double)sum->window_max / (double)sum->capacity : 0;
}

void
shard_note_miss(struct shard *sh, const char *key, size_t klen)
{
    evict_on_miss(&sh->policy, hint_hash(key, klen));
}
