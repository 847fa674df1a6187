/*
 * ht.h -- chained hash table of items with incremental rehashing.
 *
 * Like Redis's dict: two bucket arrays while growing or shrinking; every
 * operation moves a few buckets from the old array to the new one, so no
 * single call pays for a full rehash. Items are chained through item->hnext
 * by their 32-bit slab references, so the table costs 4 bytes per bucket
 * and 4 per item.
 *
 * Not thread-safe: the owning shard's lock protects it.
 */
#ifndef CRAB_STORE_HT_H
#define CRAB_STORE_HT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/item.h"

struct ht {
    const struct slab *slab; /* where the refs point */
    uint32_t *tab[2];
    size_t size[2]; /* buckets, a power of two, or 0 */
    size_t used[2];
    size_t rehash_idx; /* next bucket of tab[0] to move; (size_t)-1 if not rehashing */
    size_t mem;        /* allocator bytes of both bucket arrays */
};

uint64_t ht_hash(const char *key, size_t klen);

void ht_init(struct ht *h, const struct slab *slab);
/* Free the bucket arrays (not the items). */
void ht_deinit(struct ht *h);

static inline size_t
ht_count(const struct ht *h)
{
    return h->used[0] + h->used[1];
}

static inline bool
ht_rehashing(const struct ht *h)
{
    return h->rehash_idx != (size_t)-1;
}

/* Size an empty table for about n items at once (bulk loading), so that
 * it does not grow by rehashing while they arrive. No-op otherwise. */
void ht_reserve(struct ht *h, size_t n);

/* Bytes of bucket arrays. */
size_t ht_mem(const struct ht *h);

struct item *ht_find(struct ht *h, const char *key, size_t klen, uint64_t hash);
/* Insert an item whose key is not in the table. */
void ht_insert(struct ht *h, struct item *it, uint64_t hash);
/* Put nit where the item with the same key is; returns the old item, or
 * NULL (then nit was inserted). */
struct item *ht_replace(struct ht *h, struct item *nit, uint64_t hash);
/* Remove and return the item with this key, or NULL. */
struct item *ht_remove(struct ht *h, const char *key, size_t klen, uint64_t hash);

/* Move up to n buckets (visiting at most 10n empty ones). Returns true while
 * rehashing is still in progress. */
bool ht_rehash(struct ht *h, size_t n);
/* Start shrinking when the table is much larger than its contents. */
void ht_maybe_shrink(struct ht *h);

/* Visit the items of the bucket(s) at cursor and return the next cursor (0
 * when the whole table has been covered). Uses Redis's reverse-binary cursor,
 * so every item present for the whole scan is visited at least once even if
 * the table is resized in between. fn may not modify the table. */
typedef void (*ht_visit_fn)(struct item *it, void *ctx);
size_t ht_scan(struct ht *h, size_t cursor, ht_visit_fn fn, void *ctx);

/* Return a random item, or NULL when empty. rnd is a random 64-bit value. */
struct item *ht_random(struct ht *h, uint64_t (*rnd)(void *), void *rctx);

/* Remove every item, calling fn on each (which must free it). */
void ht_clear(struct ht *h, void (*fn)(struct item *it, void *ctx), void *ctx);

#endif
