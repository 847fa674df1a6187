/*
 * store_evict.c -- when the store evicts and from which shard: writers make
 * room above the high watermark (store_make_room), the cron carries on down
 * to the low one (store_evict_step, paced by store_pace.c); the policy of
 * each shard (store_policy.c, evict/) decides which item goes.
 */
#include "store/store.h"
#include "store/store_int.h"

#include <stdatomic.h>

/* Evict up to n items from one shard (lock held), leaving it at least
 * `floor` keys. Returns how many. */
static size_t
shard_evict(struct shard *sh, size_t n, size_t floor)
{
    size_t done = 0, before = sh->mem;
    size_t tm = ht_mem(&sh->ht);
    while (done < n && ht_count(&sh->ht) > floor) {
        /* dead items met on the way are released (node_release) */
        struct evict_taken t;
        evict_ref ref = evict_take(&sh->policy, &t);
        if (ref == 0) {
            break;
        }
        /* the victim has left the policy: unlink it and free it here, with
         * the hash of its duel if it lost one and the policy's weight */
        struct item *it = item_at(&sh->slab, ref);
        if (sh->store->on_evict) {
            sh->store->on_evict(sh->store->on_remove_ctx, it);
        }
        uint64_t h = t.hashed ? t.hash : ht_hash(item_key(it), item_klen(it));
        if (!ht_remove_ref(&sh->ht, ref, h)) {
            /* not reached while the policy's hash is right; cheap insurance */
            ht_remove_ref(&sh->ht, ref, ht_hash(item_key(it), item_klen(it)));
        }
        if (item_expire(it)) {
            sh->nexpires--;
        }
        shard__slot_add(sh, it, -1);
        shard__mem_changed(sh, -(ssize_t)item_free_weighed(&sh->slab, it, t.weight));
        sh->evicted++;
        done++;
    }
    shard__table_mem_sync(sh, tm);
    size_t freed = before > sh->mem ? before - sh->mem : 0;
    if (freed) {
        atomic_fetch_add_explicit(&sh->store->purge_pending, freed, memory_order_relaxed);
    }
    return done;
}

/* Pick the shard to evict from: the fullest of four probed round-robin
 * (reads of sh->mem are racy on purpose: a hint). With equal capacities,
 * the fullest shard is the one whose policy is furthest over its own, so
 * that its eviction is a duel rather than a main victim taken early:
 * lirs-loop through the server (1 MiB) hit 35.3 % with four probes, 30.9 %
 * with two, 35.7 % with all eight (whose cost grows with the shards). */
static unsigned
pick_shard(struct store *st)
{
    static _Thread_local unsigned cursor; /* no shared line written */
    unsigned start = cursor++;
    unsigned probes = st->nshards < 4 ? st->nshards : 4;
    unsigned stride = st->nshards / probes;
    unsigned best = start & st->mask;
    size_t best_mem = 0;
    for (unsigned i = 0; i < probes; i++) {
        unsigned idx = (start + i * stride) & st->mask;
        size_t m = __atomic_load_n(&st->shards[idx].mem, __ATOMIC_RELAXED);
        if (m > best_mem) {
            best_mem = m;
            best = idx;
        }
    }
    return best;
}

/*
 * Items a writer's step evicts from shard sh (lock held). A W-TinyLFU
 * evicts once per insert, the window's candidate dueling the main area's
 * victim; a step of several makes room ahead of the inserts, taking main
 * victims undueled. In a small shard that shows: through the server,
 * lirs-loop at 1 MiB (48 keys a shard) hit 28.3 % with 8 a step and 35.3 %
 * with 1 (the simulator gives 36.8 % at that many keys), while replays of
 * 3,000-12,000 keys (zipf-drift-scan, web07, multi2, gli) moved by 0.1 at
 * most. In a large one a lock round per item costs throughput: 400k keys
 * in 40 MiB, SETs evicting at 1 item a step ran at 0.82 of the speed of
 * overwrites, against 0.98 at 8 (bench/eviction, same run, medians of 3).
 */
#define SMALL_SHARD_KEYS 1024u

/* eviction.min_items_threshold: the keys a shard keeps while memory is
 * between the watermarks and max_memory. Above max_memory itself the floor
 * gives way, so that a write under tinylfu or lru never fails for room
 * (10 keys in each of 8 shards is 8 MB at 100 KB values). */
static size_t
key_floor(const struct store *st, size_t used, size_t max)
{
    return used > max ? 0 : st->ev.min_items;
}

static size_t
step_size(struct store *st, struct shard *sh, size_t used, size_t max)
{
    if (st->ev.batch) {
        return st->ev.batch_size ? st->ev.batch_size : 64;
    }
    if (st->ev.adaptive && used > max) {
        return 64; /* over the hard limit: catch up faster */
    }
    return ht_count(&sh->ht) <= SMALL_SHARD_KEYS ? 1 : 8;
}

/* store_make_room above the high watermark: out of line, so that the
 * common call (no limit, or under it) pays no frame for the loop. */
static __attribute__((noinline)) bool
make_room_evict(struct store *st, size_t max, size_t used, size_t high)
{
    if (atomic_load(&st->policy) == STORE_NOEVICTION) {
        return used <= max;
    }
    atomic_store(&st->evicting, true);
    /* Foreground: get back under the high watermark, in bounded steps. */
    for (int rounds = 0; used > high && rounds < 10000; rounds++) {
        unsigned idx = pick_shard(st);
        struct shard *sh = shard_lock(st, idx);
        size_t n = shard_evict(sh, step_size(st, sh, used, max), key_floor(st, used, max));
        shard_unlock(sh);
        if (n == 0) {
            /* this shard is empty; try the others before giving up */
            bool any = false;
            for (unsigned i = 0; i < st->nshards && !any; i++) {
                sh = shard_lock(st, i);
                any = shard_evict(sh, 1, key_floor(st, used, max)) > 0;
                shard_unlock(sh);
            }
            if (!any) {
                break;
            }
        }
        used = store_used_memory(st);
    }
    store__maybe_purge(st);
    return used <= max;
}

bool
store_make_room(struct store *st)
{
    size_t max = atomic_load_explicit(&st->max_memory, memory_order_relaxed);
    if (max == 0) {
        return true;
    }
    size_t used = store_used_memory(st);
    size_t high = (size_t)((double)max * st->ev.high_watermark);
    if (used <= high) {
        return true;
    }
    return make_room_evict(st, max, used, high);
}

size_t
store_evict_step(struct store *st)
{
    store__maybe_purge(st);
    size_t max = atomic_load(&st->max_memory);
    size_t used = store_used_memory(st);
    size_t high = (size_t)((double)max * st->ev.high_watermark);
    if (!atomic_load(&st->evicting)) {
        /* Normally a writer crossing the high watermark starts it; a lowered
         * maxmemory with no writes after it starts it here. */
        if (max == 0 || used <= high || atomic_load(&st->policy) == STORE_NOEVICTION) {
            return 0;
        }
        atomic_store(&st->evicting, true);
    }
    size_t low = (size_t)((double)max * st->ev.low_watermark);
    if (max == 0 || used <= low || atomic_load(&st->policy) == STORE_NOEVICTION) {
        atomic_store(&st->evicting, false);
        return 0;
    }
    /* Above max_memory itself (a lowered maxmemory with no write to make
     * room, writers outrunning the foreground) the cron evicts unpaced. Just
     * above the high watermark is the normal state between a writer's make
     * room and its write: paced, or the band would be back (measured: gli
     * 38.8-41.0 % instead of 41.5 % when this was `used <= high`). */
    bool paced = !st->ev.batch && used <= max;
    if (paced && !store__background_may_evict(st, max)) {
        return 0;
    }
    struct shard *sh = shard_lock(st, pick_shard(st));
    size_t k = step_size(st, sh, used, max);
    if (!paced) {
        k = k * 4 < 32 ? 32 : k * 4; /* over max_memory, or batch: catch up */
    }
    size_t before = sh->mem;
    size_t n = shard_evict(sh, k, key_floor(st, used, max));
    size_t freed = before > sh->mem ? before - sh->mem : 0;
    shard_unlock(sh);
    if (paced) {
        atomic_fetch_sub(&st->bg_tokens, (int64_t)freed);
    }
    return n;
}

uint64_t
store_evicted_total(struct store *st)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < st->nshards; i++) {
        n += __atomic_load_n(&st->shards[i].evicted, __ATOMIC_RELAXED);
    }
    return n;
}
