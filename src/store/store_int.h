/*
 * store_int.h -- what the files of src/store/ share with each other and
 * nothing outside src/store/ may use: struct shard itself (outside the store
 * it is an incomplete type, so a file that reads its fields does not
 * compile), and the shard's bookkeeping helpers (memory accounting, per-slot
 * counts, the removal of an item from the shard).
 *
 * Every function here needs the shard's lock (they are shard__*), and the
 * ones on the request path are inline so that splitting the store into files
 * costs the request path no call (they were file statics of one store.c).
 */
#ifndef CRAB_STORE_STORE_INT_H
#define CRAB_STORE_STORE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "evict/evict.h"
#include "store/ht.h"
#include "store/slab.h"
#include "store/store.h"

/* A shard of the keyspace (store.h): its table, its memory and its expiry
 * and eviction state, all behind its lock. */
struct shard {
    pthread_mutex_t lock;
    struct slab slab;     /* where the items live */
    struct ht ht;
    bool dropping;        /* a slot of this shard is being dropped: lookups
                           * check the key's slot (store_slot.h) */
    bool drop_restart;    /* a slot was marked during the sweep: sweep again */
    uint64_t drop_pos;    /* the sweep's position in hash space */
    uint64_t dropped;     /* keys removed by slot drops */
    struct store *store;
    size_t mem;           /* bytes of items and buckets in this shard */
    ssize_t mem_pending;  /* part of mem not yet added to store->used */
    size_t nexpires;      /* items with an expiry */
    size_t expire_cursor; /* ht_scan cursor of active expiry */
    uint64_t rng;         /* xorshift state for random keys */
    uint64_t expired;     /* keys removed because their time was up */
    uint64_t evicted;     /* keys removed to make room */
    uint32_t removing;    /* ref being removed, until released (forget_slot) */
    _Atomic bool slots_counted; /* store->slot_keys kept for this shard's
                                 * slots (from the first store_slot_count) */
    size_t policy_mem;    /* the policy's queues and sketch, counted in mem */
    size_t policy_base;   /* ... beyond this much (an empty shard's) */
    struct evict_policy policy; /* who goes when memory is short */
} __attribute__((aligned(64)));

/*
 * Memory accounting: every shard counts the allocator's real sizes of its
 * items and index tables, under its lock. The global figure (st->used) is
 * the sum; to keep writes from bouncing one cache line between cores, a
 * shard publishes its delta to it only once it has drifted by more than
 * st->mem_step, so the global figure is never off by more than
 * nshards * mem_step.
 */
static inline void
shard__mem_changed(struct shard *sh, ssize_t delta)
{
    sh->mem += (size_t)delta;
    sh->mem_pending += delta;
    ssize_t step = (ssize_t)sh->store->mem_step;
    if (sh->mem_pending >= step || sh->mem_pending <= -step) {
        atomic_fetch_add_explicit(&sh->store->used, (size_t)sh->mem_pending,
                                  memory_order_relaxed);
        sh->mem_pending = 0;
    }
}

/* The index's tables changed size during an operation (growth, shrink,
 * migration): count the difference. `before` is ht_mem() before it. */
static inline void
shard__table_mem_sync(struct shard *sh, size_t before)
{
    size_t after = ht_mem(&sh->ht);
    if (after != before) {
        shard__mem_changed(sh, (ssize_t)after - (ssize_t)before);
    }
}

/* Per-slot key counts and item bytes, once someone has asked for them
 * (store_slot_count): until then a write or an eviction computes no slot
 * for them (the CRC16 of the key was ~140 instructions of every insert and
 * of every eviction). Only the shard's lock holder writes them; readers
 * without it get a recent figure. */
static inline void
shard__slot_count(struct shard *sh, unsigned slot, int d, ssize_t bytes)
{
    struct store *st = sh->store;
    uint32_t v = atomic_load_explicit(&st->slot_keys[slot], memory_order_relaxed);
    atomic_store_explicit(&st->slot_keys[slot], v + (uint32_t)d, memory_order_relaxed);
    size_t b = atomic_load_explicit(&st->slot_bytes[slot], memory_order_relaxed);
    atomic_store_explicit(&st->slot_bytes[slot], b + (size_t)bytes, memory_order_relaxed);
}

/* A key of item `it` arrives (d = 1) or leaves (d = -1). */
static inline void
shard__slot_add(struct shard *sh, const struct item *it, int d)
{
    if (!atomic_load_explicit(&sh->slots_counted, memory_order_relaxed)) {
        return;
    }
    unsigned slot = slot_of(item_key(it), item_klen(it));
    shard__slot_count(sh, slot, d, d * (ssize_t)item_mem(it));
}

/* The key of `it` stays but its item memory changes by `bytes` (moved to a
 * larger chunk). */
static inline void
shard__slot_bytes(struct shard *sh, const struct item *it, ssize_t bytes)
{
    if (!atomic_load_explicit(&sh->slots_counted, memory_order_relaxed) || bytes == 0) {
        return;
    }
    shard__slot_count(sh, slot_of(item_key(it), item_klen(it)), 0, bytes);
}

/* Item `it` replaces `old` (same key): the slot's bytes follow. The sizes
 * are read only when the slot figures are kept. */
static inline void
shard__slot_replace(struct shard *sh, const struct item *it, const struct item *old)
{
    if (atomic_load_explicit(&sh->slots_counted, memory_order_relaxed)) {
        shard__slot_bytes(sh, it, (ssize_t)item_mem(it) - (ssize_t)item_mem(old));
    }
}

/* Whether this item's slot is being dropped (sh->dropping is set). */
static inline bool
shard__item_dropping(const struct shard *sh, const struct item *it)
{
    unsigned slot = slot_of(item_key(it), item_klen(it));
    return atomic_load_explicit(&sh->store->slot_drop[slot], memory_order_relaxed) != 0;
}

/* The reference by which the index and the policy name an item. */
static inline evict_ref
shard__ref(const struct shard *sh, const struct item *it)
{
    return item_ref(&sh->slab, it);
}

/* Bookkeeping for an item that has just left the index (ht_remove'd):
 * expiry count, slot count, the policy, memory. The caller counts why it
 * went (expired, dropped...). Out of line: for the background paths (active
 * expiry, slot drops); the request path has its own inlined copy. */
void shard__forget(struct shard *sh, struct item *it);

/* An item whose time was up is leaving the index: tell the store's hook
 * (the mutation stream's DEL) while it can still be read (shard.c). Out of
 * line: only the expired branches call it. */
void shard__expired_hook(struct shard *sh, const struct item *it);

/* store.c: how far a shard's memory may drift before it is published to
 * st->used, from max_memory (call after changing it). */
void store__mem_step_update(struct store *st);

/* store_policy.c: a new policy for shard sh (store_create, store_flush);
 * the policy's memory and capacity brought up to date (store_cron). */
void store__policy_init(struct store *st, struct shard *sh);
void shard__policy_sync(struct shard *sh);

/* store_purge.c: once eviction has freed enough since the last time
 * (st->purge_pending), ask the allocator to return its dirty pages. */
void store__maybe_purge(struct store *st);

/* store_pace.c: whether the background eviction (gradual strategy, memory
 * between the watermarks) may evict now; what it frees is then taken from
 * st->bg_tokens by the caller. */
bool store__background_may_evict(struct store *st, size_t max);

#endif
