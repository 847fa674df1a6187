/*
 * ht.h -- the shard's index: an open-addressing hash table of item refs,
 * resized incrementally.
 *
 * Slots hold 32-bit slab references (item.h) and a one-byte tag (7 bits of
 * the hash, or EMPTY / DELETED), in groups of 8: 8 tags then 8 refs, 40
 * bytes. A lookup compares the 8 tags of its home group at once and reads
 * the key only of items whose tag matches, so a hit usually touches one
 * group and one item, and a miss no item at all. Nothing is stored in the
 * items: the table costs 5 bytes per slot, at a load between 7/12 and 7/8
 * (about 7 bytes per key averaged over growth).
 *
 * Like Redis's dict, two tables exist while the table grows, shrinks or is
 * rebuilt to drop tombstones: every find/insert/remove moves a group or
 * two, ht_rehash() more from the cron, so no single call pays for a whole
 * table. Lookups check both tables; inserts go into the new one.
 *
 * The table reads an item's key only through item_key()/item_klen() of the
 * item at item_at(slab, ref); it never writes to items.
 *
 * Not thread-safe: the owning shard's lock protects it.
 */
#ifndef CRAB_STORE_HT_H
#define CRAB_STORE_HT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/item.h"

#define HT_GROUP 8

/* 8 tags (0 = EMPTY, 1 = DELETED, 0x80 | 7 hash bits = occupied) and the
 * refs of the occupied slots. */
struct ht_group {
    uint8_t tag[HT_GROUP];
    uint32_t ref[HT_GROUP];
};

struct ht_table {
    struct ht_group *g; /* ngroups groups, or NULL */
    size_t ngroups;     /* any number >= 1 (not a power of two) */
    size_t used;        /* occupied slots */
    size_t deleted;     /* DELETED slots */
};

struct ht {
    const struct slab *slab; /* where the refs point */
    /* t[0]: the table; while migrating, t[0] is the old one and t[1] the
     * new one. */
    struct ht_table t[2];
    bool migrating;
    size_t mig_start; /* first group of t[0] moved (follows a group with an EMPTY slot) */
    size_t mig_done;  /* groups of t[0] moved so far, from mig_start on */
    size_t mem;       /* bytes of both tables (big_size) */
    uint64_t key_cmps; /* keys compared by lookups so far (statistics, tests) */
};

/* The hash every caller passes in (XXH3-64 of the key). */
uint64_t ht_hash(const char *key, size_t klen);

void ht_init(struct ht *h, const struct slab *slab);
/* Free the tables (not the items). */
void ht_deinit(struct ht *h);

static inline size_t
ht_count(const struct ht *h)
{
    return h->t[0].used + h->t[1].used;
}

static inline bool
ht_rehashing(const struct ht *h)
{
    return h->migrating;
}

/* Slots of both tables (for INFO: load = ht_count / ht_slots). */
static inline size_t
ht_slots(const struct ht *h)
{
    return (h->t[0].ngroups + h->t[1].ngroups) * HT_GROUP;
}

/* Size an empty table for about n items at once (bulk loading), so that
 * it does not grow while they arrive. No-op if the table holds items or is
 * already large enough. */
void ht_reserve(struct ht *h, size_t n);

/* Bytes of the tables (pages really held). */
static inline size_t
ht_mem(const struct ht *h)
{
    return h->mem;
}

/* Prefetch for a lookup of `hash` that follows soon: stage 0 the home
 * group(s), stage 1 (after stage 0 had time to land) the item of the
 * first slot whose tag matches, if any. Reads the table only. */
void ht_prefetch(const struct ht *h, uint64_t hash, int stage);

/* The item with this key, or NULL. */
struct item *ht_find(struct ht *h, const char *key, size_t klen, uint64_t hash);
/* Insert an item whose key is not in the table. */
void ht_insert(struct ht *h, struct item *it, uint64_t hash);
/* Put nit where the item with the same key is; returns the old item, or
 * NULL (then nit was inserted). */
struct item *ht_replace(struct ht *h, struct item *nit, uint64_t hash);
/* Remove and return the item with this key, or NULL. */
struct item *ht_remove(struct ht *h, const char *key, size_t klen, uint64_t hash);
/* Remove the entry of the item `ref` (a slab reference) whose key hashes to
 * `hash`: the probe compares references, not keys, so the item's key is not
 * read. Returns false (nothing removed) if no entry of the table names ref
 * on that hash's probe sequence. For an owner that holds the item already
 * (an eviction victim) and knows its hash. */
bool ht_remove_ref(struct ht *h, uint32_t ref, uint64_t hash);

/* Move up to n groups to the new table. Returns true while migrating. */
bool ht_rehash(struct ht *h, size_t n);
/* From the cron: start shrinking when the table is much larger than its
 * contents, or rebuilding when tombstones pile up. */
void ht_maybe_shrink(struct ht *h);

/*
 * Visit the items whose hash lies in the interval that starts at cursor
 * and return the next cursor (0 when the whole hash space has been
 * covered; start with 0). A cursor is a position in hash space (the top 58
 * bits; higher bits of the argument are ignored, so the caller may pack 6
 * bits of its own below them). Every item present for the whole scan is
 * visited exactly once even if the table grows, shrinks or migrates
 * between calls. One call covers about one group's worth of hash space.
 * fn may not modify the table.
 */
typedef void (*ht_visit_fn)(struct item *it, void *ctx);
size_t ht_scan(struct ht *h, size_t cursor, ht_visit_fn fn, void *ctx);

/*
 * ht_scan at the full resolution of hash space, for callers that resume
 * between any two hashes (store_slot.c stops a step midway when its caller's
 * item budget runs out, and resumes at the hash of the first item it did not
 * take). Visits the items whose hash lies in [pos, end) and returns end, or
 * 0 when the interval reached the end of hash space (start with 0). end is
 * where the next group of the larger table starts, rounded up to a multiple
 * of 2^res_bits (so that a cursor that drops its low res_bits bits names it
 * exactly); pos need not be aligned. fn gets each item's hash; it may not
 * modify the table. Same guarantee as ht_scan: an item present for the
 * whole walk is visited once, across growth, shrink and migration.
 */
typedef void (*ht_visit_hash_fn)(struct item *it, uint64_t hash, void *ctx);
uint64_t ht_scan_at(struct ht *h, uint64_t pos, unsigned res_bits, ht_visit_hash_fn fn, void *ctx);

/* Return a random item (uniform), or NULL when empty. rnd returns a
 * random 64-bit value. */
struct item *ht_random(struct ht *h, uint64_t (*rnd)(void *), void *rctx);

/* Remove every item, calling fn on each (which may free it), then free
 * the tables. */
void ht_clear(struct ht *h, void (*fn)(struct item *it, void *ctx), void *ctx);

#endif
