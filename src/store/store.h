/*
 * store.h -- the sharded keyspace.
 *
 * The keyspace is split into S shards (a power of two). A key's shard is its
 * cluster slot (slot.h) modulo S, so every slot lives in exactly one shard and
 * the per-slot key counts are protected by that shard's lock. Each shard owns
 * its hash table, memory counter and expiry cursor behind its own mutex.
 *
 * Locking: functions named shard_* must be called with the shard lock held
 * (shard_lock/shard_unlock); functions named store_* take the locks they need
 * themselves and must be called with no shard lock held. Commands that touch
 * several keys lock every involved shard with store_lock_many(), which orders
 * the locks by shard index so two such commands cannot deadlock.
 *
 * Items returned by shard_* functions stay valid only while the lock is held.
 */
#ifndef CRAB_STORE_STORE_H
#define CRAB_STORE_STORE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "evict/evict.h"
#include "store/hint.h"
#include "store/ht.h"
#include "store/item.h"
#include "store/slot.h"

/* A shard: its definition is private to src/store/ (store_int.h). Outside
 * the store a struct shard * is a handle that shard_lock() returns and the
 * shard_* calls take; its figures are read with store_shard_stats(). */
struct shard;

enum store_policy { STORE_NOEVICTION = 0, STORE_LRU, STORE_TINYLFU };

/* Eviction settings (SPEC 4); see store_set_eviction(). */
struct store_eviction {
    double high_watermark;   /* start evicting above high * max_memory (0.85) */
    double low_watermark;    /* ... and go on down to low * max_memory (0.70) */
    bool batch;              /* strategy: batch (true) or gradual (false) */
    unsigned batch_size;     /* items per step for batch */
    uint64_t min_items;      /* never evict a shard below this many keys */
    bool adaptive;           /* grow the step with the pressure */
    double admission_multiplier;
    double window_ratio;
};

struct store {
    unsigned nshards;
    unsigned mask;
    struct shard *shards;
    _Atomic size_t used;     /* sum of shard mem, less their mem_pending */
    size_t mem_step;         /* see shard__mem_changed() (store_int.h) */
    _Atomic size_t max_memory; /* 0 = unlimited */
    _Atomic int policy;
    _Atomic uint32_t *slot_keys; /* SLOT_COUNT counters */
    _Atomic size_t *slot_bytes;  /* SLOT_COUNT item bytes, kept with slot_keys */
    _Atomic uint8_t *slot_drop;  /* SLOT_COUNT marks: 1 = being dropped; set and
                                  * cleared under the slot's shard lock */
    _Atomic unsigned drops_active; /* shards with a drop sweep going on */
    size_t drop_work;            /* items a cron tick's drop step examines */
    unsigned shard_bits;         /* log2(nshards) */
    struct store_eviction ev;    /* read without lock; changed by CONFIG SET */
    _Atomic bool evicting;       /* between crossing high and reaching low */
    _Atomic size_t purge_pending; /* bytes evicted since the allocator's last
                                   * purge (store_purge.c) */
    _Atomic uint64_t purges;     /* purges asked for (statistics, tests) */
    _Atomic int64_t bg_last_us;  /* background eviction's pacing (store_pace.c) */
    _Atomic int64_t bg_tokens;
    /* Called by store_flush with every shard lock held (the WAL logs
     * FLUSHALL there). NULL = none. */
    void (*on_flush)(void *ctx);
    void *on_flush_ctx;
    /* Called for each item eviction removes, and for each item whose time
     * was up that a lookup, a delete or the cron removes; shard lock held,
     * item still readable (the mutation stream reports them as deletes).
     * Both get on_remove_ctx. NULL = none. */
    void (*on_evict)(void *ctx, const struct item *it);
    void (*on_expire)(void *ctx, const struct item *it);
    void *on_remove_ctx;
};

/* nshards is rounded up to a power of two (at least 1). */
struct store *store_create(unsigned nshards, size_t max_memory, enum store_policy policy);
void store_destroy(struct store **st);

static inline unsigned
store_shard_of_slot(const struct store *st, unsigned slot)
{
    return slot & st->mask;
}

/* The key's shard. Its slot comes from the thread's hints (hint.h) when the
 * key is one of a pipeline's prefetched keys, so it is not computed twice. */
static inline unsigned
store_shard_of(const struct store *st, const char *key, size_t klen)
{
    return hint_slot(key, klen) & st->mask;
}

/* Lock shard idx and return it. */
struct shard *shard_lock(struct store *st, unsigned idx);
void shard_unlock(struct shard *sh);
/* Shard idx, not locked here: for a caller that holds its lock through
 * store_lock_many() or store_lock_all(). */
struct shard *store_shard(struct store *st, unsigned idx);

/* Lock the shards of n keys (deduplicated, in index order). idx[] receives
 * the sorted distinct shard indexes; returns how many were locked. */
unsigned store_lock_many(struct store *st, const unsigned *shards, unsigned n, unsigned *idx);
void store_unlock_many(struct store *st, const unsigned *idx, unsigned n);
void store_lock_all(struct store *st);
void store_unlock_all(struct store *st);

/* The live item for key, or NULL. An expired item found here is deleted. */
struct item *shard_find(struct shard *sh, const char *key, size_t klen, int64_t now);
/* A new item in this shard's memory (item_new): key copied, vlen bytes of
 * value for the caller to fill, expiry (0 = none). Not in the table yet:
 * shard_put it. */
struct item *shard_new_item(struct shard *sh, const char *key, size_t klen, size_t vlen,
                            int64_t expire);
/* Store it (made by shard_new_item on this shard), replacing and freeing any
 * item with the same key. The caller must not use a replaced item afterwards. */
void shard_put(struct shard *sh, struct item *it);
/* Set key to a value of vlen bytes and this expiry (0 = none), for the
 * caller to fill at item_val() (lock held): the key's item rewritten in place
 * when its chunk can take the value, else a new item put in its place. Any
 * old value is gone: copy it out first if it is needed. */
struct item *shard_upsert(struct shard *sh, const char *key, size_t klen, size_t vlen,
                          int64_t expire);
/* Delete the key; true if a live item was removed. */
bool shard_delete(struct shard *sh, const char *key, size_t klen, int64_t now);
/* Set (ms > 0) or clear (ms == 0) the expiry of an item in this shard.
 * Returns the item, which may have moved (an item without an expiry field
 * grows by one): the caller must use the returned pointer. */
struct item *shard_set_expire(struct shard *sh, struct item *it, int64_t ms);

/* Keys, keys with an expiry, and exact memory, over all shards (each shard
 * locked in turn). */
struct store_totals {
    size_t keys, expires, mem;
};
void store_totals(struct store *st, struct store_totals *t);

/* One shard's figures, read under its lock (INFO, metrics, dashboard):
 * what callers outside the store read instead of struct shard's fields. */
struct store_shard_stats {
    size_t keys, expires, mem;
    size_t slots;          /* index slots (load = keys / slots) */
    uint64_t expired, evicted, dropped;
};
void store_shard_stats(struct store *st, unsigned idx, struct store_shard_stats *s);

/* Keys in all shards, expired-but-not-yet-reclaimed included (as Redis). */
size_t store_count(struct store *st);
size_t store_expires_count(struct store *st);
static inline size_t
store_used_memory(const struct store *st)
{
    return atomic_load_explicit(&st->used, memory_order_relaxed);
}
/* Exact figure: the sum of every shard's memory, read under the locks
 * (store_used_memory may lag it by at most nshards * mem_step). */
size_t store_memory_exact(struct store *st);
/* Remove every key. */
void store_flush(struct store *st);

/* Start loading the cache lines a coming operation on this key will touch
 * (stage 0: its hash bucket and its eviction-sketch counters; stage 1, a
 * little later: the first item in that bucket). A hint only, no effect on
 * the data; it reads the shard's table, so the caller holds the shard's lock
 * or owns the shard (recovery's appliers, the pipeline look-ahead). */
void store_prefetch(struct store *st, unsigned shard, uint64_t hash, int stage);
/* The same for the n keys of a pipeline's look-ahead (n <= HINT_MAX): key i
 * is in shard[i] with hash hint[i].hash. Takes each shard's lock once for
 * all of its keys (no shard lock held by the caller). */
void store_prefetch_keys(struct store *st, const unsigned *shard, const struct key_hint *hint,
                         int n, int stage);

/* Bulk loading (recovery): size the empty shards' tables for about `keys`
 * keys in total. */
void store_reserve(struct store *st, size_t keys);

/* Settings changed at run time (CONFIG SET). */
void store_set_eviction(struct store *st, const struct store_eviction *ev);
void store_set_max_memory(struct store *st, size_t max_memory);
void store_set_policy(struct store *st, enum store_policy policy);
/* Make room before a write that may add memory (no shard lock held). Above
 * the high watermark, evicts (per the policy) until below it in the
 * foreground; the cron carries on to the low watermark. Returns false when
 * the write must be refused: noeviction (or nothing left to evict) and
 * used memory above max_memory. */
bool store_make_room(struct store *st);
/* Background part of eviction, called by the cron: evicts one step per call
 * while between the watermarks. Returns the keys evicted. */
size_t store_evict_step(struct store *st);
/* A read missed this key (counted by the policy's frequency sketch). */
void shard_note_miss(struct shard *sh, const char *key, size_t klen);
/* Policy figures summed over the shards (INFO, metrics). */
void store_evict_stats(struct store *st, struct evict_stats *sum);

/* One step of a scan of one locked shard's keys (ht_scan on its table):
 * fn is called for the items of a few buckets; returns the next cursor, 0
 * at the end. Start at 0. */
size_t shard_scan(struct shard *sh, size_t cursor, ht_visit_fn fn, void *ctx);

/* SCAN over all shards. The cursor packs the shard index in its low bits.
 * fn is called with the shard lock held. Returns the next cursor, 0 at the end. */
uint64_t store_scan(struct store *st, uint64_t cursor, ht_visit_fn fn, void *ctx);
/* A random live key copied into key and klen (malloc'd; caller frees), or false. */
bool store_random_key(struct store *st, char **key, size_t *klen, int64_t now);

/* Background work for one shard, bounded: up to `buckets` buckets scanned for
 * expired items, a few rehash steps, the policy's upkeep, and a step of a
 * slot drop's sweep (store_slot.h) if one is going on. Returns the number of
 * keys expired. */
size_t store_cron(struct store *st, unsigned idx, size_t buckets, int64_t now);

uint64_t store_expired_total(struct store *st);
uint64_t store_evicted_total(struct store *st);

/* Slot counts, the slot-range cursor and slot drops. */
#include "store/store_slot.h"

#endif
