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

/*
 * Bookkeeping for an item that has left the index (deleted, expired,
 * replaced). The policy's queues may still name it: it stays as a dead
 * chunk until the policy releases it (node_release), which may happen at
 * once, inside evict_on_remove, or later. A large item's body is freed now
 * either way, so a dead item holds no more than its chunk.
 * count_slot is false when the same key stays (replaced by a new item).
 */
static void
forget_slot(struct shard *sh, struct item *it, bool count_slot)
{
    if (item_expire(it)) {
        sh->nexpires--;
    }
    if (count_slot) {
        shard__slot_add(sh, it, -1);
    }
    evict_ref ref = shard__ref(sh, it);
    sh->removing = ref;
    evict_on_remove(&sh->policy, ref);
    if (sh->removing == ref) {
        /* not released yet: drop what the dead chunk does not need */
        sh->removing = 0;
        shard__mem_changed(sh, -(ssize_t)item_drop_body(it));
    }
}

static void
forget(struct shard *sh, struct item *it)
{
    forget_slot(sh, it, true);
}

void
shard__forget(struct shard *sh, struct item *it)
{
    forget(sh, it);
}

/* A lookup met an item while a slot of its shard is being dropped: one of
 * that slot is not served, and is reclaimed now, as an expired one is. Out
 * of line: the lookup pays one test of sh->dropping. */
static __attribute__((noinline)) struct item *
drop_on_read(struct shard *sh, struct item *it, uint64_t h)
{
    if (!shard__item_dropping(sh, it)) {
        return it;
    }
    ht_remove(&sh->ht, item_key(it), item_klen(it), h);
    forget(sh, it);
    sh->dropped++;
    return NULL;
}

struct item *
shard_find(struct shard *sh, const char *key, size_t klen, int64_t now)
{
    uint64_t h = hint_hash(key, klen);
    size_t tm = ht_mem(&sh->ht);
    struct item *it = ht_find(&sh->ht, key, klen, h);
    if (it && item_expired(it, now)) {
        ht_remove(&sh->ht, key, klen, h);
        forget(sh, it);
        sh->expired++;
        it = NULL;
    }
    if (__builtin_expect(sh->dropping, 0) && it) {
        it = drop_on_read(sh, it, h);
    }
    if (it) {
        evict_on_access(&sh->policy, shard__ref(sh, it), h);
    }
    shard__table_mem_sync(sh, tm);
    return it;
}

static void
put_hashed(struct shard *sh, struct item *it, uint64_t h, bool absent)
{
    size_t tm = ht_mem(&sh->ht);
    struct item *old = NULL;
    if (absent) {
        ht_insert(&sh->ht, it, h); /* the caller has just looked: no second search */
    } else {
        old = ht_replace(&sh->ht, it, h);
    }
    if (old) {
        /* same key, same slot: the slot's count does not change, its bytes
         * may (read before forget_slot, which may free old's chunk) */
        shard__slot_bytes(sh, it, (ssize_t)item_mem(it) - (ssize_t)item_mem(old));
        forget_slot(sh, old, false);
    } else {
        shard__slot_add(sh, it, 1);
    }
    if (item_expire(it)) {
        sh->nexpires++;
    }
    size_t m = item_mem(it);
    shard__mem_changed(sh, (ssize_t)m);
    evict_on_insert(&sh->policy, shard__ref(sh, it), h, m);
    shard__table_mem_sync(sh, tm);
}

void
shard_put(struct shard *sh, struct item *it)
{
    put_hashed(sh, it, ht_hash(item_key(it), item_klen(it)), false);
}

/*
 * Overwriting a key whose chunk can take the new value (same class: same
 * size give or take the 4-byte rounding) rewrites it in place: no new chunk,
 * no dead one for the policy to release, the policy's place kept. Measured on
 * redis-benchmark's SET under callgrind (P16, -r 100000: most SETs overwrite
 * a 3-byte value with another): 2,247 -> 1,990 instructions per request.
 */
struct item *
shard_upsert(struct shard *sh, const char *key, size_t klen, size_t vlen, int64_t expire)
{
    uint64_t h = hint_hash(key, klen);
    size_t tm = ht_mem(&sh->ht);
    struct item *old = ht_find(&sh->ht, key, klen, h);
    if (old && item_fits_in_place(old, vlen, expire)) {
        int64_t oe = item_expire(old);
        if (oe && !expire) {
            sh->nexpires--;
        } else if (!oe && expire) {
            sh->nexpires++;
        }
        if (item_has_expire_field(old)) {
            item_store_expire(old, expire);
        }
        item_set_vlen(old, vlen);
        evict_on_overwrite(&sh->policy, shard__ref(sh, old), h);
        shard__table_mem_sync(sh, tm);
        return old;
    }
    shard__table_mem_sync(sh, tm);
    struct item *it = item_new(&sh->slab, key, klen, vlen, expire, false);
    put_hashed(sh, it, h, old == NULL);
    return it;
}

bool
shard_delete(struct shard *sh, const char *key, size_t klen, int64_t now)
{
    size_t tm = ht_mem(&sh->ht);
    struct item *it = ht_remove(&sh->ht, key, klen, hint_hash(key, klen));
    bool live = false;
    if (it) {
        live = !item_expired(it, now);
        if (!live) {
            sh->expired++;
        } else if (__builtin_expect(sh->dropping, 0) && shard__item_dropping(sh, it)) {
            live = false; /* not served: see store_slot_drop_begin */
            sh->dropped++;
        }
        forget(sh, it);
    }
    shard__table_mem_sync(sh, tm);
    return live;
}

struct item *
shard_new_item(struct shard *sh, const char *key, size_t klen, size_t vlen, int64_t expire)
{
    return item_new(&sh->slab, key, klen, vlen, expire, false);
}

struct item *
shard_set_expire(struct shard *sh, struct item *it, int64_t ms)
{
    int64_t old = item_expire(it);
    if (old && !ms) {
        sh->nexpires--;
    } else if (!old && ms) {
        sh->nexpires++;
    }
    if (!item_has_expire_field(it)) {
        if (ms == 0) {
            return it;
        }
        /* the item needs 8 more bytes: move it to a larger chunk, keeping
         * its place in the hash chain and in the policy's lists */
        size_t before = item_mem(it);
        size_t tm = ht_mem(&sh->ht);
        struct item *nit = item_grow_expire(&sh->slab, it);
        ht_replace(&sh->ht, nit, ht_hash(item_key(nit), item_klen(nit)));
        item_disown_body(it);
        size_t after = item_mem(nit);
        shard__slot_bytes(sh, nit, (ssize_t)after - (ssize_t)before);
        /* the old chunk (its body moved to nit, if large) is dead until the
         * policy releases it; nit takes its place */
        shard__mem_changed(sh, (ssize_t)after - (ssize_t)(before - item_mem(it)));
        evict_on_move(&sh->policy, shard__ref(sh, it), shard__ref(sh, nit));
        evict_on_update(&sh->policy, shard__ref(sh, nit), before, after);
        shard__table_mem_sync(sh, tm);
        it = nit;
    }
    item_store_expire(it, ms);
    return it;
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
