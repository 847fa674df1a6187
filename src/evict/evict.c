/*
 * evict.c -- W-TinyLFU / LRU / noeviction policy of one shard (see evict.h).
 *
 * Lists. Three circular doubly linked lists with sentinels (window,
 * probation, protected); the MRU end is head.next, the LRU end head's prev.
 * A node's segment id lives in the two low bits of its prev pointer, so a
 * node costs two words and unlinking needs no search. LRU and noeviction use
 * the probation list alone.
 *
 * W-TinyLFU flow:
 *   insert -> window MRU.
 *   evict_one -> (1) while the window is over budget and the main area has
 *   room, its LRU node moves to probation without a duel; (2) if the window
 *   is still over budget, its LRU node (candidate) duels with the probation
 *   LRU node (victim) on sketch frequency, the loser is returned; (3) else
 *   the main area's LRU node (probation first, then protected) is returned.
 *   hit -> window: to window MRU; probation: promoted to protected MRU, the
 *   protected LRU overflow demoted to probation MRU; protected: to its MRU.
 * The window budget is moved by the climber (climb.c) through
 * evict__resize_window, which transfers nodes between window and main so
 * the regions follow their budgets at once.
 *
 * Admission: admit when f(candidate) > f(victim) x multiplier; a warm
 * candidate (f >= 6) that loses is still admitted with probability 1/128, so
 * an attacker cannot pin the main area with hash-flooded hot victims.
 */
#include "evict/evict.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#define SEG_INDEX(seg) ((seg) - 1)
#define WARM_CANDIDATE 6u
#define JITTER_MASK 127u
#define WINDOW_MAX_SHARE 0.99
#define DEFAULT_ENTRIES 65536u

/* ---- list primitives ------------------------------------------------------ */

static inline struct evict_node *
node_prev(const struct evict_node *n)
{
    return (struct evict_node *)(n->prev_seg & ~(uintptr_t)3);
}

static inline void
node_set_prev(struct evict_node *n, struct evict_node *prev)
{
    n->prev_seg = (uintptr_t)prev | (n->prev_seg & 3u);
}

static void
list_init(struct evict_list *l, unsigned seg)
{
    l->head.next = &l->head;
    l->head.prev_seg = (uintptr_t)&l->head | seg;
    l->weight = 0;
    l->count = 0;
}

static inline uint64_t
node_weight(const struct evict_policy *p, const struct evict_node *n)
{
    return p->ops.weight(n, p->ops.ctx);
}

static inline uint64_t
node_hash(const struct evict_policy *p, const struct evict_node *n)
{
    return p->ops.hash(n, p->ops.ctx);
}

static inline struct evict_list *
node_list(struct evict_policy *p, const struct evict_node *n)
{
    return &p->seg[SEG_INDEX(evict_node_segment(n))];
}

static void
list_unlink(struct evict_list *l, struct evict_node *n, uint64_t w)
{
    struct evict_node *prev = node_prev(n);
    struct evict_node *next = n->next;

    prev->next = next;
    node_set_prev(next, prev);
    n->prev_seg = 0;
    n->next = NULL;
    l->weight -= w;
    l->count--;
}

static void
list_push_mru(struct evict_list *l, struct evict_node *n, uint64_t w)
{
    struct evict_node *first = l->head.next;
    unsigned seg = (unsigned)(l->head.prev_seg & 3u);

    n->next = first;
    n->prev_seg = (uintptr_t)&l->head | seg;
    node_set_prev(first, n);
    l->head.next = n;
    l->weight += w;
    l->count++;
}

static void
list_push_lru(struct evict_list *l, struct evict_node *n, uint64_t w)
{
    struct evict_node *last = node_prev(&l->head);
    unsigned seg = (unsigned)(l->head.prev_seg & 3u);

    n->next = &l->head;
    n->prev_seg = (uintptr_t)last | seg;
    last->next = n;
    node_set_prev(&l->head, n);
    l->weight += w;
    l->count++;
}

static inline struct evict_node *
list_lru(const struct evict_list *l)
{
    struct evict_node *n = node_prev(&l->head);
    return n == &l->head ? NULL : n;
}

/* Move a linked node to the MRU end of list `to` (possibly its own). */
static void
move_mru(struct evict_policy *p, struct evict_node *n, struct evict_list *to)
{
    uint64_t w = node_weight(p, n);

    list_unlink(node_list(p, n), n, w);
    list_push_mru(to, n, w);
}

static struct evict_list *
seg_list(struct evict_policy *p, enum evict_seg seg)
{
    return &p->seg[SEG_INDEX(seg)];
}

static void demote_protected(struct evict_policy *p);

/* ---- parameters ---------------------------------------------------------- */

void
evict_params_default(struct evict_params *p)
{
    memset(p, 0, sizeof(*p));
    p->kind = EVICT_TINYLFU;
    p->window_ratio = 0.005;
    p->protected_ratio = 0.80;
    p->admission_multiplier = 1.0;
    p->sketch_counters = 8;
    p->doorkeeper = false;
    p->adaptive = true;
    p->seed = 0x5eed5eed5eedULL;
}

int
evict_kind_parse(const char *name)
{
    if (strcmp(name, "tinylfu") == 0 || strcmp(name, "w-tinylfu") == 0) {
        return EVICT_TINYLFU;
    }
    if (strcmp(name, "lru") == 0 || strcmp(name, "allkeys-lru") == 0) {
        return EVICT_LRU;
    }
    if (strcmp(name, "noeviction") == 0) {
        return EVICT_NOEVICTION;
    }
    return -1;
}

const char *
evict_kind_name(enum evict_kind kind)
{
    switch (kind) {
    case EVICT_TINYLFU:
        return "tinylfu";
    case EVICT_LRU:
        return "lru";
    case EVICT_NOEVICTION:
        return "noeviction";
    }
    return "unknown";
}

static uint64_t
protected_budget(const struct evict_policy *p)
{
    return (uint64_t)((double)(p->capacity - p->window_max) * p->protected_ratio);
}

static void
set_budgets(struct evict_policy *p, double window_ratio)
{
    p->window_max = (uint64_t)((double)p->capacity * window_ratio);
    p->protected_max = protected_budget(p);
}

int
evict_init(struct evict_policy *p, const struct evict_params *params,
           const struct evict_ops *ops)
{
    size_t entries;

    if (params->capacity == 0 || (unsigned)params->kind > EVICT_NOEVICTION ||
        !(params->window_ratio >= 0 && params->window_ratio < 1) ||
        !(params->protected_ratio >= 0 && params->protected_ratio < 1) ||
        ops == NULL || ops->hash == NULL || ops->weight == NULL) {
        return -EINVAL;
    }
    memset(p, 0, sizeof(*p));
    p->kind = params->kind;
    p->ops = *ops;
    list_init(&p->seg[0], EVICT_SEG_WINDOW);
    list_init(&p->seg[1], EVICT_SEG_PROBATION);
    list_init(&p->seg[2], EVICT_SEG_PROTECTED);
    p->capacity = params->capacity;
    p->protected_ratio = params->protected_ratio;
    p->admission_multiplier = params->admission_multiplier;
    p->adaptive = params->adaptive;
    p->sketch_counters = params->sketch_counters;
    p->doorkeeper = params->doorkeeper;
    p->rng = params->seed | 1;
    set_budgets(p, params->window_ratio);
    entries = params->expected_entries;
    if (entries == 0) {
        /* No hint: capacity may be bytes, so do not size for it; start
         * small, the sketch grows with the resident count. */
        entries = params->capacity < DEFAULT_ENTRIES ? (size_t)params->capacity
                                                     : DEFAULT_ENTRIES;
    }
    sketch_init(&p->sketch, entries, p->sketch_counters, p->doorkeeper);
    evict__climb_reset(p);
    return 0;
}

void
evict_deinit(struct evict_policy *p)
{
    sketch_deinit(&p->sketch);
    memset(p, 0, sizeof(*p));
}

int
evict_set_capacity(struct evict_policy *p, uint64_t capacity)
{
    double ratio;

    if (capacity == 0) {
        return -EINVAL;
    }
    ratio = (double)p->window_max / (double)p->capacity;
    p->capacity = capacity;
    set_budgets(p, ratio);
    demote_protected(p);
    evict__climb_reset(p);
    return 0;
}

/* Move every node of `from` to the LRU end of `to`, keeping their order. */
static void
splice_lru(struct evict_policy *p, struct evict_list *from,
           struct evict_list *to)
{
    struct evict_node *n;

    if (from == to) {
        return;
    }
    while ((n = from->head.next) != &from->head) {
        uint64_t w = node_weight(p, n);
        list_unlink(from, n, w);
        list_push_lru(to, n, w);
    }
}

int
evict_set_kind(struct evict_policy *p, enum evict_kind kind)
{
    struct evict_list *main = seg_list(p, EVICT_SEG_PROBATION);
    struct evict_list tmp;

    if ((unsigned)kind > EVICT_NOEVICTION) {
        return -EINVAL;
    }
    if (p->kind == EVICT_TINYLFU && kind != EVICT_TINYLFU) {
        /* One LRU list: window, then protected, then probation. */
        list_init(&tmp, EVICT_SEG_PROBATION);
        splice_lru(p, seg_list(p, EVICT_SEG_WINDOW), &tmp);
        splice_lru(p, seg_list(p, EVICT_SEG_PROTECTED), &tmp);
        splice_lru(p, main, &tmp);
        /* tmp's sentinel lives on the stack: move back into main. */
        splice_lru(p, &tmp, main);
    }
    p->kind = kind;
    return 0;
}

/* ---- the hot path -------------------------------------------------------- */

static void
maybe_grow_sketch(struct evict_policy *p)
{
    uint64_t count = evict_count(p);

    if (count > 2 * (uint64_t)p->sketch.entries) {
        sketch_init(&p->sketch, (size_t)count, p->sketch_counters,
                    p->doorkeeper);
        evict__climb_reset(p);
    }
}

/* Window overflow flows into a main area that still has room, without a
 * duel (the cache is not full yet, or the window just shrank). */
static void
drain_window(struct evict_policy *p)
{
    struct evict_list *win = seg_list(p, EVICT_SEG_WINDOW);
    struct evict_list *prob = seg_list(p, EVICT_SEG_PROBATION);
    uint64_t main_max = p->capacity - p->window_max;
    struct evict_node *n;

    while (win->weight > p->window_max && (n = list_lru(win)) != NULL) {
        uint64_t w = node_weight(p, n);
        if (prob->weight + seg_list(p, EVICT_SEG_PROTECTED)->weight + w >
            main_max) {
            break;
        }
        move_mru(p, n, prob);
    }
}

void
evict_on_insert(struct evict_policy *p, struct evict_node *node,
                uint64_t key_hash, uint64_t weight)
{
    bool counted = p->last_miss_valid && p->last_miss_hash == key_hash;

    p->last_miss_valid = false;
    if (p->kind != EVICT_TINYLFU) {
        list_push_mru(seg_list(p, EVICT_SEG_PROBATION), node, weight);
        return;
    }
    list_push_mru(seg_list(p, EVICT_SEG_WINDOW), node, weight);
    if (!counted) {
        sketch_increment(&p->sketch, key_hash);
        maybe_grow_sketch(p);
        evict__climb_record(p, false, false);
    }
}

void
evict_on_miss(struct evict_policy *p, uint64_t key_hash)
{
    if (p->kind != EVICT_TINYLFU) {
        return;
    }
    sketch_increment(&p->sketch, key_hash);
    p->last_miss_hash = key_hash;
    p->last_miss_valid = true;
    evict__climb_record(p, false, false);
}

/* Demote protected LRU nodes to probation until protected fits. */
static void
demote_protected(struct evict_policy *p)
{
    struct evict_list *prot = seg_list(p, EVICT_SEG_PROTECTED);
    struct evict_list *prob = seg_list(p, EVICT_SEG_PROBATION);
    struct evict_node *n;

    while (prot->weight > p->protected_max && (n = list_lru(prot)) != NULL) {
        move_mru(p, n, prob);
    }
}

void
evict_on_access(struct evict_policy *p, struct evict_node *node,
                uint64_t key_hash)
{
    enum evict_seg seg = evict_node_segment(node);

    if (seg == EVICT_SEG_NONE) {
        return;
    }
    if (p->kind != EVICT_TINYLFU) {
        move_mru(p, node, node_list(p, node));
        return;
    }
    p->last_miss_valid = false;
    sketch_increment(&p->sketch, key_hash);
    if (seg == EVICT_SEG_PROBATION) {
        move_mru(p, node, seg_list(p, EVICT_SEG_PROTECTED));
        demote_protected(p);
    } else {
        move_mru(p, node, node_list(p, node));
    }
    evict__climb_record(p, true, seg == EVICT_SEG_WINDOW);
}

void
evict_on_update(struct evict_policy *p, struct evict_node *node,
                uint64_t old_weight, uint64_t new_weight)
{
    struct evict_list *l;

    if (evict_node_segment(node) == EVICT_SEG_NONE) {
        return;
    }
    l = node_list(p, node);
    l->weight = l->weight - old_weight + new_weight;
    if (evict_node_segment(node) == EVICT_SEG_PROTECTED) {
        demote_protected(p);
    }
}

void
evict_on_remove(struct evict_policy *p, struct evict_node *node)
{
    if (evict_node_segment(node) == EVICT_SEG_NONE) {
        return;
    }
    list_unlink(node_list(p, node), node, node_weight(p, node));
}

/* ---- eviction ------------------------------------------------------------ */

static uint64_t
next_random(struct evict_policy *p)
{
    uint64_t x = p->rng;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    p->rng = x;
    return x;
}

static bool
admit(struct evict_policy *p, const struct evict_node *cand,
      const struct evict_node *victim)
{
    unsigned fc = sketch_estimate(&p->sketch, node_hash(p, cand));
    unsigned fv = sketch_estimate(&p->sketch, node_hash(p, victim));

    if ((double)fc > (double)fv * p->admission_multiplier) {
        return true;
    }
    if (fc >= WARM_CANDIDATE && (next_random(p) & JITTER_MASK) == 0) {
        return true;
    }
    return false;
}

static struct evict_node *
take(struct evict_policy *p, struct evict_node *n)
{
    list_unlink(node_list(p, n), n, node_weight(p, n));
    p->evictions++;
    return n;
}

static struct evict_node *
main_victim(struct evict_policy *p)
{
    struct evict_node *n = list_lru(seg_list(p, EVICT_SEG_PROBATION));

    if (n == NULL) {
        n = list_lru(seg_list(p, EVICT_SEG_PROTECTED));
    }
    return n;
}

static struct evict_node *
evict_tinylfu(struct evict_policy *p)
{
    struct evict_list *win = seg_list(p, EVICT_SEG_WINDOW);
    struct evict_list *prob = seg_list(p, EVICT_SEG_PROBATION);
    struct evict_node *cand;
    struct evict_node *victim;

    drain_window(p);
    if (win->weight > p->window_max && (cand = list_lru(win)) != NULL) {
        victim = main_victim(p);
        if (victim == NULL) {
            return take(p, cand);
        }
        if (admit(p, cand, victim)) {
            p->admissions++;
            move_mru(p, cand, prob);
            return take(p, victim);
        }
        p->rejections++;
        return take(p, cand);
    }
    victim = main_victim(p);
    if (victim == NULL) {
        victim = list_lru(win);
    }
    return victim == NULL ? NULL : take(p, victim);
}

struct evict_node *
evict_one(struct evict_policy *p)
{
    struct evict_node *n;

    switch (p->kind) {
    case EVICT_TINYLFU:
        return evict_tinylfu(p);
    case EVICT_LRU:
        n = list_lru(seg_list(p, EVICT_SEG_PROBATION));
        return n == NULL ? NULL : take(p, n);
    case EVICT_NOEVICTION:
        return NULL;
    }
    return NULL;
}

/* Grow (delta > 0) or shrink the window budget and move nodes so that the
 * regions follow: growth takes the coldest main nodes into the window's LRU
 * end, shrinking sends the window's LRU nodes to probation. */
void
evict__resize_window(struct evict_policy *p, int64_t delta)
{
    struct evict_list *win = seg_list(p, EVICT_SEG_WINDOW);
    struct evict_node *n;

    if (delta > 0) {
        uint64_t limit = (uint64_t)((double)p->capacity * WINDOW_MAX_SHARE);
        uint64_t quota = (uint64_t)delta;
        if (p->window_max + quota > limit) {
            quota = limit > p->window_max ? limit - p->window_max : 0;
        }
        p->window_max += quota;
        p->protected_max = protected_budget(p);
        demote_protected(p);
        while ((n = main_victim(p)) != NULL) {
            uint64_t w = node_weight(p, n);
            if (win->weight + w > p->window_max) {
                break;
            }
            list_unlink(node_list(p, n), n, w);
            list_push_lru(win, n, w);
        }
    } else if (delta < 0) {
        uint64_t quota = (uint64_t)-delta;
        if (quota > p->window_max) {
            quota = p->window_max;
        }
        p->window_max -= quota;
        p->protected_max = protected_budget(p);
        while (win->weight > p->window_max && (n = list_lru(win)) != NULL) {
            move_mru(p, n, seg_list(p, EVICT_SEG_PROBATION));
        }
    }
}

/* ---- figures ------------------------------------------------------------- */

uint64_t
evict_weight(const struct evict_policy *p)
{
    return p->seg[0].weight + p->seg[1].weight + p->seg[2].weight;
}

uint64_t
evict_count(const struct evict_policy *p)
{
    return p->seg[0].count + p->seg[1].count + p->seg[2].count;
}

void
evict_stats(const struct evict_policy *p, struct evict_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->kind = p->kind;
    out->capacity = p->capacity;
    out->count = evict_count(p);
    out->weight = evict_weight(p);
    out->window_count = p->seg[0].count;
    out->window_weight = p->seg[0].weight;
    out->window_max = p->window_max;
    out->probation_count = p->seg[1].count;
    out->probation_weight = p->seg[1].weight;
    out->protected_count = p->seg[2].count;
    out->protected_weight = p->seg[2].weight;
    out->protected_max = p->protected_max;
    out->window_ratio = (double)p->window_max / (double)p->capacity;
    out->admissions = p->admissions;
    out->rejections = p->rejections;
    out->evictions = p->evictions;
    out->climber_samples = p->climb.samples;
    out->climber_adjustments = p->climb.adjustments;
    out->sketch_bytes = sketch_bytes(&p->sketch);
    out->sketch_resets = p->sketch.resets;
}
