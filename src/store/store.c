/*
 * store.c -- see store.h.
 *
 * Memory accounting: see shard__mem_changed() in store_int.h (the step is
 * at most 64 KiB, smaller for small limits).
 */
#include "store/store.h"
#include "store/store_int.h"

#include <stdlib.h>
#include <sys/types.h>
#include <string.h>

#include "util/clock.h"
#include "util/log.h"
#include "util/mem.h"

/* How far a shard's memory may drift before it is published to st->used:
 * small against the limit (1/64 of a shard's share), at most 64 KiB. */
void
store__mem_step_update(struct store *st)
{
    size_t max = atomic_load(&st->max_memory);
    size_t step = 64 * 1024;
    if (max) {
        size_t share = max / st->nshards / 64;
        if (share < step) {
            step = share < 256 ? 256 : share;
        }
    }
    st->mem_step = step;
}


struct store *
store_create(unsigned nshards, size_t max_memory, enum store_policy policy)
{
    unsigned n = 1;
    while (n < nshards) {
        n <<= 1;
    }
    struct store *st = xcalloc(1, sizeof(*st));
    st->nshards = n;
    st->mask = n - 1;
    st->max_memory = max_memory;
    st->policy = policy;
    st->slot_keys = xcalloc(SLOT_COUNT, sizeof(*st->slot_keys));
    st->slot_bytes = xcalloc(SLOT_COUNT, sizeof(*st->slot_bytes));
    st->slot_drop = xcalloc(SLOT_COUNT, sizeof(*st->slot_drop));
    st->drop_work = STORE_DROP_WORK;
    while ((1u << st->shard_bits) < n) {
        st->shard_bits++;
    }
    st->ev = (struct store_eviction){0.85, 0.70, false, 64, 0, true, 1.0, 0.005};
    store__mem_step_update(st);
    if (posix_memalign((void **)&st->shards, 64, sizeof(struct shard) * n) != 0) {
        abort();
    }
    for (unsigned i = 0; i < n; i++) {
        struct shard *sh = &st->shards[i];
        memset(sh, 0, sizeof(*sh));
        pthread_mutex_init(&sh->lock, NULL);
        if (slab_init(&sh->slab, 0) != 0) {
            log_error("cannot reserve address space for a shard's items",
                      "\"bytes\":%zu", (size_t)SLAB_REGION_MAX);
            abort();
        }
        ht_init(&sh->ht, &sh->slab);
        sh->store = st;
        sh->rng = 0x9e3779b97f4a7c15ull * (i + 1);
        store__policy_init(st, sh);
    }
    return st;
}

/* Before a whole slab goes (flush, destroy): the bodies of large items are
 * their own allocations. */
static void
free_large_body(struct item *it, void *ctx)
{
    (void)ctx;
    if (ITEM_FLAGS(it) & ITEM_LARGE) {
        free(item_body(it));
    }
}

void
store_destroy(struct store **pst)
{
    struct store *st = *pst;
    if (st == NULL) {
        return;
    }
    for (unsigned i = 0; i < st->nshards; i++) {
        ht_clear(&st->shards[i].ht, free_large_body, NULL);
        evict_deinit(&st->shards[i].policy);
        slab_deinit(&st->shards[i].slab);
        pthread_mutex_destroy(&st->shards[i].lock);
    }
    free(st->shards);
    free(st->slot_keys);
    free(st->slot_bytes);
    free(st->slot_drop);
    free(st);
    *pst = NULL;
}

static int
cmp_unsigned(const void *a, const void *b)
{
    unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;
    return x < y ? -1 : x > y;
}

unsigned
store_lock_many(struct store *st, const unsigned *shards, unsigned n, unsigned *idx)
{
    memcpy(idx, shards, n * sizeof(*idx));
    qsort(idx, n, sizeof(*idx), cmp_unsigned);
    unsigned m = 0;
    for (unsigned i = 0; i < n; i++) {
        if (m == 0 || idx[m - 1] != idx[i]) {
            idx[m++] = idx[i];
        }
    }
    for (unsigned i = 0; i < m; i++) {
        pthread_mutex_lock(&st->shards[idx[i]].lock);
    }
    return m;
}

void
store_unlock_many(struct store *st, const unsigned *idx, unsigned n)
{
    for (unsigned i = n; i-- > 0;) {
        pthread_mutex_unlock(&st->shards[idx[i]].lock);
    }
}

void
store_lock_all(struct store *st)
{
    for (unsigned i = 0; i < st->nshards; i++) {
        pthread_mutex_lock(&st->shards[i].lock);
    }
}

void
store_unlock_all(struct store *st)
{
    for (unsigned i = st->nshards; i-- > 0;) {
        pthread_mutex_unlock(&st->shards[i].lock);
    }
}

void
store_totals(struct store *st, struct store_totals *t)
{
    memset(t, 0, sizeof(*t));
    for (unsigned i = 0; i < st->nshards; i++) {
        struct shard *sh = shard_lock(st, i);
        t->keys += ht_count(&sh->ht);
        t->expires += sh->nexpires;
        t->mem += sh->mem;
        shard_unlock(sh);
    }
}

void
store_shard_stats(struct store *st, unsigned idx, struct store_shard_stats *s)
{
    struct shard *sh = shard_lock(st, idx);
    s->keys = ht_count(&sh->ht);
    s->expires = sh->nexpires;
    s->mem = sh->mem;
    s->slots = ht_slots(&sh->ht);
    s->expired = sh->expired;
    s->evicted = sh->evicted;
    s->dropped = sh->dropped;
    shard_unlock(sh);
}

size_t
store_count(struct store *st)
{
    struct store_totals t;
    store_totals(st, &t);
    return t.keys;
}

size_t
store_expires_count(struct store *st)
{
    struct store_totals t;
    store_totals(st, &t);
    return t.expires;
}

size_t
store_memory_exact(struct store *st)
{
    struct store_totals t;
    store_totals(st, &t);
    return t.mem;
}

void
store_flush(struct store *st)
{
    /* Every lock is held at once so the flush is one point in time for all
     * keys (and for the write-ahead log's FLUSHALL record). */
    store_lock_all(st);
    if (st->on_flush) {
        st->on_flush(st->on_flush_ctx);
    }
    for (unsigned i = 0; i < st->nshards; i++) {
        struct shard *sh = &st->shards[i];
        size_t freed = sh->mem;
        ht_clear(&sh->ht, free_large_body, NULL);
        slab_reset(&sh->slab);
        evict_deinit(&sh->policy);
        store__policy_init(st, sh);
        atomic_fetch_sub_explicit(&st->used, freed - (size_t)sh->mem_pending,
                                  memory_order_relaxed);
        sh->mem = 0;
        sh->mem_pending = 0;
        sh->policy_mem = 0; /* the new policy's is counted by the next cron */
        sh->nexpires = 0;
        sh->expire_cursor = 0;
        /* no key left to drop */
        sh->dropping = false;
        sh->drop_restart = false;
        sh->drop_pos = 0;
    }
    for (unsigned s = 0; s < SLOT_COUNT; s++) {
        atomic_store_explicit(&st->slot_keys[s], 0, memory_order_relaxed);
        atomic_store_explicit(&st->slot_bytes[s], 0, memory_order_relaxed);
        atomic_store_explicit(&st->slot_drop[s], 0, memory_order_relaxed);
    }
    atomic_store(&st->drops_active, 0);
    store_unlock_all(st);
}

void
store_prefetch(struct store *st, unsigned shard, uint64_t hash, int stage)
{
    ht_prefetch(&st->shards[shard].ht, hash, stage);
    if (stage == 0) {
        evict_prefetch(&st->shards[shard].policy, hash);
    }
}

void
store_prefetch_keys(struct store *st, const unsigned *shard, const struct key_hint *hint, int n,
                    int stage)
{
    uint32_t done = 0; /* n <= HINT_MAX == 32 */
    for (int i = 0; i < n && i < HINT_MAX; i++) {
        if (done & (1u << i)) {
            continue;
        }
        struct shard *sh = shard_lock(st, shard[i]);
        for (int j = i; j < n && j < HINT_MAX; j++) {
            if (shard[j] == shard[i]) {
                store_prefetch(st, shard[j], hint[j].hash, stage);
                done |= 1u << j;
            }
        }
        shard_unlock(sh);
    }
}

void
store_reserve(struct store *st, size_t keys)
{
    size_t per = keys / st->nshards + keys / st->nshards / 8 + 16;
    for (unsigned i = 0; i < st->nshards; i++) {
        struct shard *sh = shard_lock(st, i);
        size_t tm = ht_mem(&sh->ht);
        ht_reserve(&sh->ht, per);
        shard__table_mem_sync(sh, tm);
        shard_unlock(sh);
    }
}
