/*
 * store_expire.c -- the cron's work on one shard: active expiry, the index's
 * migration and shrink steps, the policy's upkeep, and a step of a slot
 * drop's sweep (store_slot.c).
 *
 * Active expiry: store_cron() walks the shard's table with a SCAN cursor,
 * a bounded number of buckets per call, deleting expired items; the server
 * calls it ten times a second per shard with a budget that covers the whole
 * table about once a second. Shards with no expiring keys are skipped.
 */
#include "store/store.h"
#include "store/store_int.h"

#include <stdlib.h>

#include "util/mem.h"

struct expire_ctx {
    int64_t now;
    struct item **dead;
    size_t n, cap;
};

static void
collect_expired(struct item *it, void *ctx)
{
    struct expire_ctx *e = ctx;
    if (item_expired(it, e->now)) {
        if (e->n == e->cap) {
            e->cap = e->cap ? e->cap * 2 : 16;
            e->dead = xrealloc(e->dead, e->cap * sizeof(*e->dead));
        }
        e->dead[e->n++] = it;
    }
}

size_t
store_cron(struct store *st, unsigned idx, size_t buckets, int64_t now)
{
    struct shard *sh = shard_lock(st, idx);
    size_t tm = ht_mem(&sh->ht);
    size_t removed = 0;
    if (ht_rehashing(&sh->ht)) {
        ht_rehash(&sh->ht, 100);
    } else {
        ht_maybe_shrink(&sh->ht);
    }
    /* the policy's queues drop the entries of removed items a bounded
     * number at a time, releasing their chunks */
    evict_maintain(&sh->policy, 4096);
    shard__policy_sync(sh);
    if (sh->nexpires > 0) {
        struct expire_ctx e = {now, NULL, 0, 0};
        size_t steps = 0;
        do {
            /* ht_scan's callback may not change the table: collect the
             * expired items of one cursor step, then unlink them. */
            e.n = 0;
            sh->expire_cursor = ht_scan(&sh->ht, sh->expire_cursor, collect_expired, &e);
            for (size_t i = 0; i < e.n; i++) {
                struct item *it = e.dead[i];
                ht_remove(&sh->ht, item_key(it), item_klen(it),
                          ht_hash(item_key(it), item_klen(it)));
                shard__expired_hook(sh, it);
                shard__forget(sh, it);
                sh->expired++;
                removed++;
            }
        } while (sh->expire_cursor != 0 && ++steps < buckets && sh->nexpires > 0);
        free(e.dead);
    }
    shard__table_mem_sync(sh, tm);
    bool drop = sh->dropping;
    shard_unlock(sh);
    if (drop) {
        store_slot_drop_step(st, idx, st->drop_work);
    }
    return removed;
}

uint64_t
store_expired_total(struct store *st)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < st->nshards; i++) {
        n += __atomic_load_n(&st->shards[i].expired, __ATOMIC_RELAXED);
    }
    return n;
}
