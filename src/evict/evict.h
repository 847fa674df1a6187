/*
 * evict.h -- the eviction policy of one store shard: W-TinyLFU (default),
 * exact LRU, or noeviction.
 *
 * Model. The store owns the items; every item embeds a `struct evict_node`
 * (12 bytes, 4-aligned) and the policy links those nodes into its lists.
 * Nodes are named by 32-bit references: ref r is the node at
 * base + r * EVICT_REF_UNIT (params.base, fixed for the policy's life), and
 * ref 0 is "none", so no node may sit at base itself. The lists hold refs,
 * not pointers, and the store maps a ref back to its item (the node's
 * offset in the item is the store's business). Three bytes of the node,
 * user[], belong to the store: the policy never reads nor writes them. The
 * policy never allocates per item, and never frees anything: it only tells
 * the store WHO to evict (evict_one); the store decides WHEN (its
 * watermarks).
 *
 * Weights. Every node has a weight (item bytes in the server, 1 in the
 * simulator) and `capacity` is in the same unit. The policy does not store
 * the weight nor the key hash in the node: it asks the store through
 * `struct evict_ops` (weight() must return the weight last reported through
 * on_insert or on_update's new_weight; hash() the key hash given at insert).
 *
 * W-TinyLFU (kind EVICT_TINYLFU): a new item enters the WINDOW, a small LRU
 * (window_ratio of capacity, adapted by a hill climber). When the window is
 * over its budget and memory must be freed, its LRU item (the candidate)
 * duels with the LRU item of the PROBATION segment (the victim) using a
 * count-min sketch of recent access frequencies: the candidate is admitted
 * to probation only if its frequency exceeds the victim's times
 * admission_multiplier; the loser is evicted. A hit in probation promotes
 * the item to PROTECTED (protected_ratio of the main area); protected
 * overflow is demoted back to probation. Every request counts in the sketch:
 * hits (on_access), inserts (on_insert) and misses of absent keys (on_miss).
 *
 * LRU (EVICT_LRU): one list, the victim is the least recently used item.
 * NOEVICTION: nodes are kept in LRU order (so switching later works) but
 * evict_one always returns 0; the store must refuse writes itself.
 *
 * Switching kind (evict_set_kind) keeps every node: to LRU, the three
 * W-TinyLFU lists are merged into one list, most recently used first by
 * segment (window, then protected, then probation); to W-TinyLFU, all nodes
 * go to probation in their LRU order and earn promotion again. It is O(n)
 * in the number of nodes (a CONFIG SET, not a hot path).
 *
 * Thread-safety: none inside. Every call on one policy must be serialised by
 * the caller (the shard lock). Distinct policies are independent.
 *
 * Memory per key: 12 bytes of node, of which 3 (user[]) are the owner's,
 * plus the sketch (about sketch_counters / 2 bytes per expected entry, 4
 * bytes by default).
 */
#ifndef CRAB_EVICT_EVICT_H
#define CRAB_EVICT_EVICT_H

#include "evict/sketch.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum evict_kind {
    EVICT_TINYLFU = 0,
    EVICT_LRU = 1,
    EVICT_NOEVICTION = 2,
};

/* Segment ids, as returned by evict_node_segment(). */
enum evict_seg {
    EVICT_SEG_NONE = 0,      /* not linked into the policy */
    EVICT_SEG_WINDOW = 1,    /* W-TinyLFU window */
    EVICT_SEG_PROBATION = 2, /* W-TinyLFU probation; the one list of LRU */
    EVICT_SEG_PROTECTED = 3, /* W-TinyLFU protected */
};

/* A ref r names the node at base + r * EVICT_REF_UNIT; 0 names none. */
#define EVICT_REF_UNIT 4
typedef uint32_t evict_ref;

/*
 * The per-item links: the refs of the previous (towards the MRU end) and
 * next (towards the LRU end) nodes of its list, 0 at either end, and the
 * segment id. Must be EVICT_REF_UNIT-aligned. evict_node_init (or zeroing)
 * before the first insert; the policy leaves every field at 0 again when it
 * unlinks the node, and never touches user[].
 */
struct evict_node {
    uint32_t prev;
    uint32_t next;
    uint8_t seg;                 /* enum evict_seg: the policy's */
    uint8_t user[3];             /* the owner's, never touched by the policy */
};
_Static_assert(sizeof(struct evict_node) == 12, "evict_node is 12 bytes");

/* What the policy asks the store about a node (see the model above). */
struct evict_ops {
    uint64_t (*hash)(evict_ref ref, void *ctx);
    uint64_t (*weight)(evict_ref ref, void *ctx);
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
    uint64_t seed;               /* seed of the admission jitter PRNG */
    char *base;                  /* base of the refs (see the model); not
                                    NULL, fixed for the policy's life */
};

/* One list, not circular: head is the MRU end, tail the LRU end (0 when
 * empty); its nodes carry seg. */
struct evict_list {
    evict_ref head;
    evict_ref tail;
    uint32_t seg;                /* enum evict_seg */
    uint64_t weight;
    uint64_t count;
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
    uint64_t samples;            /* samples completed */
    uint64_t adjustments;        /* window size changes applied */
};

struct evict_policy {
    enum evict_kind kind;
    struct evict_ops ops;
    char *base;                  /* refs' base */
    struct evict_list seg[3];    /* window, probation, protected */
    uint64_t capacity;
    uint64_t window_max;         /* budgets, in weight units */
    uint64_t protected_max;
    double protected_ratio;
    double admission_multiplier;
    bool adaptive;
    unsigned sketch_counters;
    bool doorkeeper;
    struct sketch sketch;
    struct evict_climber climb;
    uint64_t rng;
    uint64_t last_miss_hash;     /* de-duplicates on_miss + on_insert */
    bool last_miss_valid;
    /* counters for figures */
    uint64_t admissions;
    uint64_t rejections;
    uint64_t evictions;
};

/* Figures for INFO / metrics. Weights in weight units. */
struct evict_stats {
    enum evict_kind kind;
    uint64_t capacity;
    uint64_t count;              /* resident nodes */
    uint64_t weight;             /* their total weight */
    uint64_t window_count, window_weight, window_max;
    uint64_t probation_count, probation_weight;
    uint64_t protected_count, protected_weight, protected_max;
    double window_ratio;         /* window_max / capacity */
    uint64_t admissions;         /* candidates that won their duel */
    uint64_t rejections;         /* candidates that lost it */
    uint64_t evictions;          /* nodes returned by evict_one */
    uint64_t climber_samples;
    uint64_t climber_adjustments;
    size_t sketch_bytes;
    uint64_t sketch_resets;
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
 * missing ops callback or a NULL base.
 */
int evict_init(struct evict_policy *p, const struct evict_params *params,
               const struct evict_ops *ops);

/* Free the sketch. The nodes are left as they are (the store owns them);
 * the policy must be initialised again before any other use. */
void evict_deinit(struct evict_policy *p);

/* Change the capacity (CONFIG SET maxmemory): the budgets scale with it,
 * nothing is evicted here (the store calls evict_one as it needs). Returns 0
 * or -EINVAL for 0. */
int evict_set_capacity(struct evict_policy *p, uint64_t capacity);

/* Change the kind, keeping every node (see the header comment). Returns 0 or
 * -EINVAL. */
int evict_set_kind(struct evict_policy *p, enum evict_kind kind);

/* The node a ref names (r != 0). */
static inline struct evict_node *
evict_node_at(const struct evict_policy *p, evict_ref r)
{
    return (struct evict_node *)(void *)(p->base + (size_t)r * EVICT_REF_UNIT);
}

/* Not linked; user[] is left as it is. */
static inline void
evict_node_init(struct evict_node *n)
{
    n->prev = 0;
    n->next = 0;
    n->seg = EVICT_SEG_NONE;
}

/* The segment a node is in, EVICT_SEG_NONE if not linked. */
static inline enum evict_seg
evict_node_segment(const struct evict_node *n)
{
    return (enum evict_seg)n->seg;
}

/* A new item (node not linked): counted in the sketch (unless the previous
 * call was on_miss for the same hash), linked at the MRU end of the window
 * (of the list, for LRU). */
void evict_on_insert(struct evict_policy *p, evict_ref ref,
                     uint64_t key_hash, uint64_t weight);

/* A hit on a linked node: counted, moved/promoted. */
void evict_on_access(struct evict_policy *p, evict_ref ref,
                     uint64_t key_hash);

/* The value of a linked node changed size in place. The store's weight()
 * must already return new_weight, or at least do so from now on. */
void evict_on_update(struct evict_policy *p, evict_ref ref,
                     uint64_t old_weight, uint64_t new_weight);

/* The item is going away (deleted, expired, overwritten): unlink its node.
 * Call it BEFORE freeing the item (weight() is called). A node that is not
 * linked is ignored. */
void evict_on_remove(struct evict_policy *p, evict_ref ref);

/* The item moved to other memory (e.g. a larger chunk): the node at `to`
 * takes the place of the node at `from` in its list (segment and position),
 * and `from` is left unlinked; weights are unchanged (call on_update after,
 * if it changed). Only prev/next/seg of both nodes are written, whatever
 * `to` held before; user[] of neither is touched. If `from` is not linked,
 * `to` is left unlinked. Call it before freeing `from`. */
void evict_on_move(struct evict_policy *p, evict_ref from, evict_ref to);

/* A GET for an absent key: counted in the sketch only. */
void evict_on_miss(struct evict_policy *p, uint64_t key_hash);

/*
 * Choose the node to evict now, unlink it and return its ref; the store must
 * then delete the item (without calling on_remove). 0 when the policy is
 * empty or the kind is NOEVICTION. Always returns a node while any is
 * linked, even under capacity; W-TinyLFU prefers a window candidate's duel
 * while the window is over its budget.
 */
evict_ref evict_one(struct evict_policy *p);

/* Total weight and number of linked nodes. */
uint64_t evict_weight(const struct evict_policy *p);
uint64_t evict_count(const struct evict_policy *p);

void evict_stats(const struct evict_policy *p, struct evict_stats *out);

/* Internal to the evict layer (evict.c <-> climb.c). */
void evict__climb_record(struct evict_policy *p, bool hit, bool window_hit);
void evict__climb_reset(struct evict_policy *p);
void evict__resize_window(struct evict_policy *p, int64_t delta);

#endif
