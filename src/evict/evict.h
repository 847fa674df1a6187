/*
 * evict.h -- the eviction policy of one store shard: W-TinyLFU (default),
 * approximate LRU (CLOCK), or noeviction.
 *
 * Model. The store owns the items; the policy keeps, per segment, a FIFO
 * queue of 32-bit refs (evict/queue.h: 1 KiB blocks of refs, about 4 bytes
 * per entry) and 5 bits in each item. Ref r names the item whose first byte
 * is at base + r * EVICT_REF_UNIT (params.base, fixed for the policy's
 * life); ref 0 is "none", so no item may start at base itself. The low 5
 * bits of that first byte (EVICT_META_MASK) are the policy's: segment,
 * CLOCK frequency (2 bits), dead mark. The top 3 bits are the owner's and
 * are never changed by the policy. An item enters (on_insert) with its low 5
 * bits zero. The policy never frees an item: it tells the owner WHO to evict
 * (evict_one), and WHEN a removed item may be freed (ops.release); the store
 * decides when to evict (its watermarks).
 *
 * Removal is lazy. A queue cannot unlink from its middle, so on_remove (and
 * the old copy of on_move) only marks the item dead and takes its weight off
 * its segment at once; its queue entry stays until the queue's head reaches
 * it or compaction drops it, and only then is ops.release(ref) called: until
 * that call the owner must not reuse the item's memory (the policy still
 * reads its meta byte). Compaction runs when a queue's dead entries pass
 * 1/8 of it: a few blocks per removal and evict_maintain from the store's
 * cron, block by block, FIFO order kept.
 *
 * Weights. Every item has a weight (item bytes in the server, 1 in the
 * simulator) and `capacity` is in the same unit. The policy stores neither
 * the weight nor the key hash: it asks the store through `struct evict_ops`
 * (weight() must return the weight last reported through on_insert or
 * on_update's new_weight, and stay valid until release; hash() the key hash
 * given at insert). The segment totals are exact: sum over live items.
 *
 * W-TinyLFU (kind EVICT_TINYLFU): a new item enters the tail of the WINDOW
 * (window_ratio of capacity, adapted by a hill climber). A hit only counts
 * in the sketch and bumps the item's 2-bit CLOCK frequency: nothing moves on
 * a hit. Eviction works at the queue heads: a window head with a non-zero
 * frequency gets a second chance (frequency cleared, back to the tail);
 * otherwise it is the candidate (the window's overflow first drains into a
 * main area that has room, without a duel) and duels with the PROBATION
 * head (the victim) on sketch frequency: it is admitted to probation's tail
 * if its frequency exceeds the victim's times admission_multiplier; the loser is evicted (a losing victim stays at
 * probation's head). A probation head that was hit since it entered is
 * promoted to the tail of PROTECTED (protected_ratio of the main area)
 * instead of being a victim; protected overflow leaves by its head to
 * probation's tail, with the same second chance. Every request counts in
 * the sketch: hits (on_access), inserts (on_insert) and misses of absent
 * keys (on_miss).
 *
 * LRU (EVICT_LRU): one CLOCK queue (an approximate LRU, as Redis's is): a
 * hit sets the item's bit, the head is evicted unless its bit is set, in
 * which case the bit is cleared and the item goes to the tail.
 * NOEVICTION: items are kept in the same queue (so switching later works)
 * but evict_one always returns 0; the store must refuse writes itself.
 *
 * Switching kind (evict_set_kind) keeps every item: to LRU, the three
 * W-TinyLFU queues are chained into one (probation, then protected, then
 * window, oldest first); to W-TinyLFU, all items stay in probation and earn
 * promotion again. It is O(n) in the number of items (a CONFIG SET, not a
 * hot path).
 *
 * Thread-safety: none inside. Every call on one policy must be serialised by
 * the caller (the shard lock). Distinct policies are independent.
 *
 * Memory per key: 4 bytes of queue entry (plus the dead entries not yet
 * compacted away, at most about 1/8 more) and 5 bits of the item's first
 * byte, plus the sketch (about sketch_counters / 2 bytes per expected entry).
 */
#ifndef CRAB_EVICT_EVICT_H
#define CRAB_EVICT_EVICT_H

#include "evict/queue.h"
#include "evict/sketch.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum evict_kind {
    EVICT_TINYLFU = 0,
    EVICT_LRU = 1,
    EVICT_NOEVICTION = 2,
};

/* Segment ids, as returned by evict_segment(). */
enum evict_seg {
    EVICT_SEG_NONE = 0,      /* not in the policy (or dead) */
    EVICT_SEG_WINDOW = 1,    /* W-TinyLFU window */
    EVICT_SEG_PROBATION = 2, /* W-TinyLFU probation; the one queue of LRU */
    EVICT_SEG_PROTECTED = 3, /* W-TinyLFU protected */
};

/* A ref r names the item at base + r * EVICT_REF_UNIT; 0 names none. */
#define EVICT_REF_UNIT 4
typedef uint32_t evict_ref;

/* The policy's bits of an item's first byte; the others are the owner's. */
#define EVICT_META_MASK 0x1fu
#define EVICT_META_SEG 0x03u     /* enum evict_seg */
#define EVICT_META_FREQ 0x0cu    /* CLOCK frequency, 0..3 */
#define EVICT_META_FREQ_SHIFT 2
#define EVICT_META_DEAD 0x10u    /* removed; its entry awaits release */

/* What the policy asks the store about an item (see the model above). */
struct evict_ops {
    uint64_t (*hash)(evict_ref ref, void *ctx);
    uint64_t (*weight)(evict_ref ref, void *ctx);   /* valid until release */
    /* A removed (or moved-from) item's last queue entry is gone: the owner
     * frees it now. Called exactly once for every ref given to on_remove or
     * as on_move's `from`, never for a ref evict_one returns, never from
     * evict_deinit. May be NULL only if the owner never removes nor moves. */
    void (*release)(evict_ref ref, void *ctx);
    void *ctx;
};

struct evict_params {
    enum evict_kind kind;        /* default EVICT_TINYLFU */
    uint64_t capacity;           /* in weight units; > 0 */
    double window_ratio;         /* initial window share of capacity, 0.005 */
    double protected_ratio;      /* protected share of the main area, 0.80 */
    double admission_multiplier; /* admit if f(cand) > f(victim) x this; 1.0 */
    size_t expected_entries;     /* sketch sizing hint (entries, not weight);
                                    0 = min(capacity, 65536). The sketch also
                                    grows when the resident count exceeds
                                    twice what it was sized for. */
    unsigned sketch_counters;    /* counters per expected entry, default 8 */
    bool doorkeeper;             /* Bloom filter in front of the sketch */
    bool adaptive;               /* hill-climb the window size; default on */
    unsigned shards;             /* policies the cache's keys are split over
                                    (the server's shards), 1 = this one is the
                                    cache; the climber picks its law by the
                                    whole cache's entries (climb.c). 0 = 1 */
    uint64_t seed;               /* seed of the admission jitter PRNG */
    char *base;                  /* base of the refs (see the model); not
                                    NULL, fixed for the policy's life */
};

/* The window climber's state (evict/climb.c). */
struct evict_climber {
    uint64_t hits;               /* in the current sample */
    uint64_t misses;
    uint64_t window_hits;
    double prev_hit_rate;
    double step;                 /* signed step, weight units (reactive) */
    double gain;                 /* density law: share of capacity moved per
                                    unit of log density ratio */
    int last_sign;               /* density law: sign of the last ratio */
    bool reactive;               /* the current sample's law */
    uint64_t period;             /* its length in requests; 0 = not chosen
                                    yet (the policy held nothing) */
    uint64_t samples;            /* samples completed */
    uint64_t adjustments;        /* window size changes applied */
};

struct evict_policy {
    enum evict_kind kind;
    struct evict_ops ops;
    char *base;                  /* refs' base */
    struct queue seg[3];         /* window, probation, protected */
    uint64_t capacity;
    uint64_t window_max;         /* budgets, in weight units */
    uint64_t protected_max;
    double protected_ratio;
    double admission_multiplier;
    bool adaptive;
    unsigned shards;
    unsigned sketch_counters;
    bool doorkeeper;
    struct sketch sketch;
    size_t mem_floor;            /* evict_mem_floor() */
    struct evict_climber climb;
    uint64_t rng;
    uint64_t last_miss_hash;     /* de-duplicates on_miss + on_insert */
    bool last_miss_valid;
    uint64_t compact_credit;     /* entries compaction may examine inline */
    /* The main victim of the last admission duel, its hash and sketch
     * estimate: a rejected candidate leaves the victim at probation's head,
     * and the next duel (the store evicts several items a step, with no
     * request counted in between) reuses them instead of hashing its key
     * again. duel_ref 0 = none; reset by every change of the sketch
     * (count_request) and when that ref leaves the policy (take_w, release). */
    evict_ref duel_ref;
    unsigned duel_est;
    uint64_t duel_hash;
    /* counters for figures */
    uint64_t admissions;
    uint64_t rejections;
    uint64_t evictions;
    uint64_t releases;
};

/* Figures for INFO / metrics. Weights in weight units. */
struct evict_stats {
    enum evict_kind kind;
    uint64_t capacity;
    uint64_t count;              /* live items */
    uint64_t weight;             /* their total weight */
    uint64_t window_count, window_weight, window_max;
    uint64_t probation_count, probation_weight;
    uint64_t protected_count, protected_weight, protected_max;
    double window_ratio;         /* window_max / capacity */
    uint64_t admissions;         /* candidates that won their duel */
    uint64_t rejections;         /* candidates that lost it */
    uint64_t evictions;          /* items returned by evict_one */
    uint64_t climber_samples;
    uint64_t climber_adjustments;
    size_t sketch_bytes;
    uint64_t sketch_resets;
    uint64_t queue_entries;      /* queue entries, dead ones included */
    uint64_t dead_entries;       /* removed items awaiting release */
    uint64_t releases;           /* release() calls made */
    size_t queue_bytes;          /* memory of the queues' blocks */
};

/* Fill p with the shipped defaults (capacity 0: set it). */
void evict_params_default(struct evict_params *p);

/* "tinylfu" | "lru" | "noeviction" (also Redis's "allkeys-lru"); returns the
 * kind or -1 if unknown. */
int evict_kind_parse(const char *name);
const char *evict_kind_name(enum evict_kind kind);

/*
 * Initialise a policy (zeroed or deinitialised memory) with these params and
 * ops (copied). Allocates the sketch (xmalloc: aborts on OOM). Returns 0, or
 * -EINVAL for a zero capacity, an unknown kind, ratios outside [0,1), a
 * missing hash or weight callback or a NULL base.
 */
int evict_init(struct evict_policy *p, const struct evict_params *params,
               const struct evict_ops *ops);

/* Free the sketch and the queues, WITHOUT release() calls (the owner frees
 * all its items at once, e.g. FLUSHALL): the items' meta bits are left as
 * they are. The policy must be initialised again before any other use. */
void evict_deinit(struct evict_policy *p);

/* Change the capacity (CONFIG SET maxmemory): the budgets scale with it,
 * nothing is evicted here (the store calls evict_one as it needs). Returns 0
 * or -EINVAL for 0. */
int evict_set_capacity(struct evict_policy *p, uint64_t capacity);

/* A small correction of the capacity (the store's periodic estimate of
 * how much of its memory is items): the budgets follow, and nothing else
 * (no climber restart, no demotion now: protected overflow leaves at the
 * next eviction). 0 is ignored. */
void evict_adjust_capacity(struct evict_policy *p, uint64_t capacity);

/* Change the kind, keeping every item (see the header comment). Returns 0 or
 * -EINVAL. */
int evict_set_kind(struct evict_policy *p, enum evict_kind kind);

/* The meta byte of the item a ref names (r != 0); the policy's bits are
 * EVICT_META_MASK, the owner may use the others freely. */
static inline uint8_t *
evict_meta(const struct evict_policy *p, evict_ref r)
{
    return (uint8_t *)(p->base + (size_t)r * EVICT_REF_UNIT);
}

/* The segment of a live item in the policy; EVICT_SEG_NONE if it was never
 * inserted, or was evicted, removed or moved away. */
static inline enum evict_seg
evict_segment(const struct evict_policy *p, evict_ref r)
{
    uint8_t m = *evict_meta(p, r);

    return (m & EVICT_META_DEAD) ? EVICT_SEG_NONE
                                 : (enum evict_seg)(m & EVICT_META_SEG);
}

/* A new item (its meta bits zero): counted in the sketch (unless the
 * previous call was on_miss for the same hash), pushed at the window's tail
 * (at the one queue's tail for LRU / noeviction). */
void evict_on_insert(struct evict_policy *p, evict_ref ref,
                     uint64_t key_hash, uint64_t weight);

/* The key with this hash is about to be looked up (a pipelined request):
 * prefetch its sketch counters, which every hit, miss or insert counts in.
 * A hint: changes nothing. */
static inline void
evict_prefetch(const struct evict_policy *p, uint64_t key_hash)
{
    if (p->kind == EVICT_TINYLFU) {
        sketch_prefetch(&p->sketch, key_hash);
    }
}

/* A hit on a live item: counted in the sketch, its CLOCK frequency bumped
 * (saturating at 3). Nothing moves. Ignored for an item not in the policy. */
void evict_on_access(struct evict_policy *p, evict_ref ref,
                     uint64_t key_hash);

/* The value of a live item changed size in place. The store's weight()
 * must already return new_weight, or at least do so from now on. */
void evict_on_update(struct evict_policy *p, evict_ref ref,
                     uint64_t old_weight, uint64_t new_weight);

/* The item is going away (deleted, expired, overwritten) and the owner has
 * dropped it from its index: it is marked dead, its weight leaves its
 * segment now, and release(ref) is called when its queue entry is dropped
 * (maybe at once, maybe much later; never by evict_deinit). Until then the
 * owner keeps its memory and never touches it. An item not in the policy is
 * released at once. */
void evict_on_remove(struct evict_policy *p, evict_ref ref);

/* The item was copied to a new chunk `to`, its first byte included (so `to`
 * has the policy's bits of `from`): `to` takes its segment and weight (at
 * its queue's tail: its position may change) and `from` is handled like a
 * removed item: release(from) comes later. If `from` is not in the policy,
 * `to` is not either (its bits are cleared) and `from` is released at
 * once. */
void evict_on_move(struct evict_policy *p, evict_ref from, evict_ref to);

/* The owner rewrote a live item's value in place (same weight): counted
 * like the insert it stands for (sketch, and a miss for the climber), and
 * like a use for its CLOCK frequency; it keeps its place. */
void evict_on_overwrite(struct evict_policy *p, evict_ref ref, uint64_t key_hash);

/* A GET for an absent key: counted in the sketch only. */
void evict_on_miss(struct evict_policy *p, uint64_t key_hash);

/*
 * Choose the item to evict now, take it out of the policy (its meta bits
 * cleared) and return its ref; the owner then frees it (no release() for
 * it, no on_remove). Dead entries met on the way are released. 0 when no
 * live item is left or the kind is NOEVICTION. Always returns an item while
 * any is live, even under capacity; W-TinyLFU duels the window's head with
 * the main victim whenever both are there (over the window's budget or not:
 * the owner asks only when it needs room).
 */
evict_ref evict_one(struct evict_policy *p);

/* What evict_take tells of the item it returns. */
struct evict_taken {
    uint64_t weight;  /* its weight, as ops.weight() gave it */
    uint64_t hash;    /* its key hash (ops.hash()), when `hashed` */
    bool hashed;      /* the policy hashed it for a duel (the loser of one) */
};

/* evict_one, also telling the owner what the policy knows of the item
 * (*out, set whenever the result is not 0), so that it frees the item
 * without weighing it again nor, after a duel, hashing its key. Same
 * choice as evict_one. */
evict_ref evict_take(struct evict_policy *p, struct evict_taken *out);

/* Background work for the store's cron: compact the queues whose dead
 * entries pass 1/8 of them, releasing those entries, examining about
 * `budget` entries at most (at least one block's worth when there is work).
 * Returns the entries examined (0: nothing to do). */
size_t evict_maintain(struct evict_policy *p, size_t budget);

/* Bytes the policy itself holds: its queues' blocks and the sketch. The
 * store counts them in used memory (its cron follows the changes). */
size_t evict_mem(const struct evict_policy *p);
/* What a policy holds with a handful of items: its first sketch and one
 * block per queue (a fixed cost per policy). */
size_t evict_mem_floor(const struct evict_policy *p);

/* Total weight and number of live items. */
uint64_t evict_weight(const struct evict_policy *p);
uint64_t evict_count(const struct evict_policy *p);

void evict_stats(const struct evict_policy *p, struct evict_stats *out);

/* Internal to the evict layer (evict.c <-> climb.c). */
void evict__climb_record(struct evict_policy *p, bool hit, bool window_hit);
void evict__climb_reset(struct evict_policy *p);
void evict__resize_window(struct evict_policy *p, int64_t delta);

#endif
