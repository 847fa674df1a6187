/*
 * store.c -- see store.h.
 *
 * Memory accounting: every shard counts the allocator's real sizes of its
 * items and bucket arrays (malloc_usable_size), under its lock. The global
 * figure is the sum; to keep writes from bouncing one cache line between
 * cores, a shard publishes its delta to the global counter only once it has
 * drifted by more than a small step, so the global figure is never off by
 * more than nshards * step (step <= 64 KiB, smaller for small limits).
 *
 * Active expiry: store_cron() walks the shard's table with a SCAN cursor,
 * a bounded number of buckets per call, deleting expired items; the server
 * calls it ten times a second per shard with a budget that covers the whole
 * table about once a second. Shards with no expiring keys are skipped.
 */
#include "store/store.h"

#include <stdlib.h>
#include <sys/types.h>
#include <string.h>

#include "util/mem.h"

static void
mem_changed(struct shard *sh, ssize_t delta)
{
    sh->mem += (size_t)delta;
    atomic_fetch_add_explicit(&sh->store->used, (size_t)delta, memory_order_relaxed);
}

static void
slot_add(struct store *st, const struct item *it, int d)
{
    unsigned slot = slot_of(item_key(it), it->klen);
    uint32_t v = atomic_load_explicit(&st->slot_keys[slot], memory_order_relaxed);
    atomic_store_explicit(&st->slot_keys[slot], v + (uint32_t)d, memory_order_relaxed);
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
    if (posix_memalign((void **)&st->shards, 64, sizeof(struct shard) * n) != 0) {
        abort();
    }
    for (unsigned i = 0; i < n; i++) {
        struct shard *sh = &st->shards[i];
        memset(sh, 0, sizeof(*sh));
        pthread_mutex_init(&sh->lock, NULL);
        ht_init(&sh->ht);
        sh->store = st;
        sh->rng = 0x9e3779b97f4a7c15ull * (i + 1);
    }
    return st;
}

static void
free_item(struct item *it, void *ctx)
{
    (void)ctx;
    item_free(it);
}

void
store_destroy(struct store **pst)
{
    struct store *st = *pst;
    if (st == NULL) {
        return;
    }
    for (unsigned i = 0; i < st->nshards; i++) {
        ht_clear(&st->shards[i].ht, free_item, NULL);
        pthread_mutex_destroy(&st->shards[i].lock);
    }
    free(st->shards);
    free(st->slot_keys);
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

/* Unlink bookkeeping for an item leaving the shard; frees it if asked. */
static void
forget(struct shard *sh, struct item *it, bool do_free)
{
    if (it->expire) {
        sh->nexpires--;
    }
    slot_add(sh->store, it, -1);
    mem_changed(sh, -(ssize_t)item_mem(it));
    if (do_free) {
        item_free(it);
    }
}

static void
table_mem_sync(struct shard *sh, size_t before)
{
    size_t after = ht_mem(&sh->ht);
    if (after != before) {
        mem_changed(sh, (ssize_t)after - (ssize_t)before);
    }
}

struct item *
shard_find(struct shard *sh, const char *key, size_t klen, int64_t now)
{
    uint64_t h = ht_hash(key, klen);
    size_t tm = ht_mem(&sh->ht);
    struct item *it = ht_find(&sh->ht, key, klen, h);
    if (it && item_expired(it, now)) {
        ht_remove(&sh->ht, key, klen, h);
        forget(sh, it, true);
        sh->expired++;
        it = NULL;
    }
    table_mem_sync(sh, tm);
    return it;
}

void
shard_put(struct shard *sh, struct item *it)
{
    uint64_t h = ht_hash(item_key(it), it->klen);
    size_t tm = ht_mem(&sh->ht);
    struct item *old = ht_replace(&sh->ht, it, h);
    if (old) {
        forget(sh, old, true);
    }
    if (it->expire) {
        sh->nexpires++;
    }
    slot_add(sh->store, it, 1);
    mem_changed(sh, (ssize_t)item_mem(it));
    table_mem_sync(sh, tm);
}

struct item *
shard_take(struct shard *sh, const char *key, size_t klen)
{
    size_t tm = ht_mem(&sh->ht);
    struct item *it = ht_remove(&sh->ht, key, klen, ht_hash(key, klen));
    if (it) {
        forget(sh, it, false);
    }
    table_mem_sync(sh, tm);
    return it;
}

bool
shard_delete(struct shard *sh, const char *key, size_t klen, int64_t now)
{
    struct item *it = shard_take(sh, key, klen);
    if (it == NULL) {
        return false;
    }
    bool live = !item_expired(it, now);
    if (!live) {
        sh->expired++;
    }
    item_free(it);
    return live;
}

void
shard_set_expire(struct shard *sh, struct item *it, int64_t ms)
{
    if (it->expire && !ms) {
        sh->nexpires--;
    } else if (!it->expire && ms) {
        sh->nexpires++;
    }
    it->expire = ms;
}

size_t
store_count(struct store *st)
{
    size_t n = 0;
    for (unsigned i = 0; i < st->nshards; i++) {
        struct shard *sh = shard_lock(st, i);
        n += ht_count(&sh->ht);
        shard_unlock(sh);
    }
    return n;
}

size_t
store_expires_count(struct store *st)
{
    size_t n = 0;
    for (unsigned i = 0; i < st->nshards; i++) {
        struct shard *sh = shard_lock(st, i);
        n += sh->nexpires;
        shard_unlock(sh);
    }
    return n;
}

bool
store_over_limit(struct store *st)
{
    size_t max = atomic_load_explicit(&st->max_memory, memory_order_relaxed);
    return max != 0 && store_used_memory(st) > max;
}

void
store_flush(struct store *st)
{
    for (unsigned i = 0; i < st->nshards; i++) {
        struct shard *sh = shard_lock(st, i);
        size_t freed = sh->mem;
        ht_clear(&sh->ht, free_item, NULL);
        sh->mem = 0;
        atomic_fetch_sub_explicit(&st->used, freed, memory_order_relaxed);
        sh->nexpires = 0;
        sh->expire_cursor = 0;
        shard_unlock(sh);
    }
    for (unsigned s = 0; s < SLOT_COUNT; s++) {
        atomic_store_explicit(&st->slot_keys[s], 0, memory_order_relaxed);
    }
}

uint64_t
store_scan(struct store *st, uint64_t cursor, ht_visit_fn fn, void *ctx)
{
    unsigned bits = 0;
    while ((1u << bits) < st->nshards) {
        bits++;
    }
    unsigned idx = (unsigned)(cursor & st->mask);
    uint64_t c = cursor >> bits;
    struct shard *sh = shard_lock(st, idx);
    c = ht_scan(&sh->ht, c, fn, ctx);
    shard_unlock(sh);
    if (c == 0) {
        idx++;
        if (idx >= st->nshards) {
            return 0;
        }
    }
    return (c << bits) | idx;
}

static uint64_t
xorshift(void *ctx)
{
    uint64_t *s = ctx;
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

bool
store_random_key(struct store *st, char **key, size_t *klen, int64_t now)
{
    size_t total = store_count(st);
    if (total == 0) {
        return false;
    }
    uint64_t seed = (uint64_t)now * 0x9e3779b97f4a7c15ull | 1;
    for (int tries = 0; tries < 100; tries++) {
        /* Pick a shard weighted by its size, then a random item in it. */
        uint64_t r = xorshift(&seed) % total;
        for (unsigned i = 0; i < st->nshards; i++) {
            struct shard *sh = shard_lock(st, i);
            size_t n = ht_count(&sh->ht);
            if (r < n) {
                struct item *it = ht_random(&sh->ht, xorshift, &sh->rng);
                if (it && !item_expired(it, now)) {
                    *key = xstrndup(item_key(it), it->klen);
                    *klen = it->klen;
                    shard_unlock(sh);
                    return true;
                }
                shard_unlock(sh);
                break;
            }
            r -= n;
            shard_unlock(sh);
        }
        total = store_count(st);
        if (total == 0) {
            return false;
        }
    }
    return false;
}

size_t
store_slot_count(struct store *st, unsigned slot)
{
    return atomic_load_explicit(&st->slot_keys[slot & (SLOT_COUNT - 1)],
                                memory_order_relaxed);
}

struct slot_visit {
    unsigned slot;
    ht_visit_fn fn;
    void *ctx;
};

static void
slot_filter(struct item *it, void *ctx)
{
    struct slot_visit *v = ctx;
    if (slot_of(item_key(it), it->klen) == v->slot) {
        v->fn(it, v->ctx);
    }
}

void
store_slot_visit(struct store *st, unsigned slot, ht_visit_fn fn, void *ctx)
{
    struct slot_visit v = {slot & (SLOT_COUNT - 1), fn, ctx};
    struct shard *sh = shard_lock(st, store_shard_of_slot(st, v.slot));
    size_t c = 0;
    do {
        c = ht_scan(&sh->ht, c, slot_filter, &v);
    } while (c != 0);
    shard_unlock(sh);
}

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
                ht_remove(&sh->ht, item_key(it), it->klen, ht_hash(item_key(it), it->klen));
                forget(sh, it, true);
                sh->expired++;
                removed++;
            }
        } while (sh->expire_cursor != 0 && ++steps < buckets && sh->nexpires > 0);
        free(e.dead);
    }
    table_mem_sync(sh, tm);
    shard_unlock(sh);
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

uint64_t
store_evicted_total(struct store *st)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < st->nshards; i++) {
        n += __atomic_load_n(&st->shards[i].evicted, __ATOMIC_RELAXED);
    }
    return n;
}
