/*
 * evict.c -- W-TinyLFU / LRU / noeviction policy of one shard (see evict.h).
 *
 * Lists. Three doubly linked lists of 32-bit refs (window, probation,
 * protected), not circular: a ref cannot name a sentinel, so each list keeps
 * its head (MRU end) and tail (LRU end) refs and 0 ends it. A node carries
 * its segment id, so unlinking needs no search, and costs 9 bytes of the
 * 12 (the other 3 are the owner's, never touched here). LRU and noeviction
 * use the probation list alone.
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
node_at(const struct evict_policy *p, evict_ref r)
{
    return evict_node_at(p, r);
}

static void
list_init(struct evict_list *l, enum evict_seg seg)
{
    l->head = 0;
    l->tail = 0;
    l->seg = seg;
    l->weight = 0;
    l->count = 0;
}

static inline uint64_t
node_weight(const struct evict_policy *p, evict_ref r)
{
    return p->ops.weight(r, p->ops.ctx);
}

static inline uint64_t
node_hash(const struct evict_policy *p, evict_ref r)
{
    return p->ops.hash(r, p->ops.ctx);
}

static inline struct evict_list *
node_list(struct evict_policy *p, evict_ref r)
{
    return &p->seg[SEG_INDEX(evict_node_segment(node_at(p, r)))];
}

static void
list_unlink(struct evict_policy *p, struct evict_list *l, evict_ref r,
            uint64_t w)
{
    struct evict_node *n = node_at(p, r);

    if (n->prev != 0) {
        node_at(p, n->prev)->next = n->next;
    } else {
        l->head = n->next;
    }
    if (n->next != 0) {
        node_at(p, n->next)->prev = n->prev;
    } else {
        l->tail = n->prev;
    }
    n->prev = 0;
    n->next = 0;
    n->seg = EVICT_SEG_NONE;
    l->weight -= w;
    l->count--;
}

static void
list_push_mru(struct evict_policy *p, struct evict_list *l, evict_ref r,
              uint64_t w)
{
    struct evict_node *n = node_at(p, r);

    n->prev = 0;
    n->next = l->head;
    n->seg = (uint8_t)l->seg;
    if (l->head != 0) {
        node_at(p, l->head)->prev = r;
    } else {
        l->tail = r;
    }
    l->head = r;
    l->weight += w;
    l->count++;
}

static void
list_push_lru(struct evict_policy *p, struct evict_list *l, evict_ref r,
              uint64_t w)
{
    struct evict_node *n = node_at(p, r);

    n->prev = l->tail;
    n->next = 0;
    n->seg = (uint8_t)l->seg;
    if (l->tail != 0) {
        node_at(p, l->tail)->next = r;
    } else {
        l->head = r;
    }
    l->tail = r;
    l->weight += w;
    l->count++;
}

/* The LRU end, 0 if empty. */
static inline evict_ref
list_lru(const struct evict_list *l)
{
    return l->tail;
}

/* Move a linked node to the MRU end of list `to` (possibly its own). */
static void
move_mru(struct evict_policy *p, evict_ref r, struct evict_list *to)
{
    uint64_t w = node_weight(p, r);

    list_unlink(p, node_list(p, r), r, w);
    list_push_mru(p, to, r, w);
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
        ops == NULL || ops->hash == NULL || ops->weight == NULL ||
        params->base == NULL) {
        return -EINVAL;
    }
    memset(p, 0, sizeof(*p));
    p->kind = params->kind;
    p->ops = *ops;
    p->base = params->base;
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
    evict_ref r;

    if (from == to) {
        return;
    }
    while ((r = from->head) != 0) {
        uint64_t w = node_weight(p, r);
        list_unlink(p, from, r, w);
        list_push_lru(p, to, r, w);
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
        /* main is empty now; tmp's nodes already carry its segment. */
        *main = tmp;
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
    evict_ref r;

    while (win->weight > p->window_max && (r = list_lru(win)) != 0) {
        uint64_t w = node_weight(p, r);
        if (prob->weight + seg_list(p, EVICT_SEG_PROTECTED)->weight + w >
            main_max) {
            break;
        }
        move_mru(p, r, prob);
    }
}

void
evict_on_insert(struct evict_policy *p, evict_ref ref, uint64_t key_hash,
                uint64_t weight)
{
    bool counted = p->last_miss_valid && p->last_miss_hash == key_hash;

    p->last_miss_valid = false;
    if (p->kind != EVICT_TINYLFU) {
        list_push_mru(p, seg_list(p, EVICT_SEG_PROBATION), ref, weight);
        return;
    }
    list_push_mru(p, seg_list(p, EVICT_SEG_WINDOW), ref, weight);
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
    evict_ref r;

    while (prot->weight > p->protected_max && (r = list_lru(prot)) != 0) {
        move_mru(p, r, prob);
    }
}

void
evict_on_access(struct evict_policy *p, evict_ref ref, uint64_t key_hash)
{
    enum evict_seg seg = evict_node_segment(node_at(p, ref));

    if (seg == EVICT_SEG_NONE) {
        return;
    }
    if (p->kind != EVICT_TINYLFU) {
        move_mru(p, ref, seg_list(p, seg));
        return;
    }
    p->last_miss_valid = false;
    sketch_increment(&p->sketch, key_hash);
    if (seg == EVICT_SEG_PROBATION) {
        move_mru(p, ref, seg_list(p, EVICT_SEG_PROTECTED));
        demote_protected(p);
    } else {
        move_mru(p, ref, seg_list(p, seg));
    }
    evict__climb_record(p, true, seg == EVICT_SEG_WINDOW);
}

void
evict_on_update(struct evict_policy *p, evict_ref ref, uint64_t old_weight,
                uint64_t new_weight)
{
    enum evict_seg seg = evict_node_segment(node_at(p, ref));
    struct evict_list *l;

    if (seg == EVICT_SEG_NONE) {
        return;
    }
    l = seg_list(p, seg);
    l->weight = l->weight - old_weight + new_weight;
    if (seg == EVICT_SEG_PROTECTED) {
        demote_protected(p);
    }
}

void
evict_on_remove(struct evict_policy *p, evict_ref ref)
{
    enum evict_seg seg = evict_node_segment(node_at(p, ref));

    if (seg == EVICT_SEG_NONE) {
        return;
    }
    list_unlink(p, seg_list(p, seg), ref, node_weight(p, ref));
}

void
evict_on_move(struct evict_policy *p, evict_ref from, evict_ref to)
{
    struct evict_node *a = node_at(p, from);
    struct evict_node *b = node_at(p, to);
    enum evict_seg seg = evict_node_segment(a);
    struct evict_list *l;

    if (from == to) {
        return;
    }
    b->prev = a->prev;
    b->next = a->next;
    b->seg = a->seg;
    a->prev = 0;
    a->next = 0;
    a->seg = EVICT_SEG_NONE;
    if (seg == EVICT_SEG_NONE) {
        return;
    }
    l = seg_list(p, seg);
    if (b->prev != 0) {
        node_at(p, b->prev)->next = to;
    } else {
        l->head = to;
    }
    if (b->next != 0) {
        node_at(p, b->next)->prev = to;
    } else {
        l->tail = to;
    }
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
admit(struct evict_policy *p, evict_ref cand, evict_ref victim)
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

static evict_ref
take(struct evict_policy *p, evict_ref r)
{
    list_unlink(p, node_list(p, r), r, node_weight(p, r));
    p->evictions++;
    return r;
}

static evict_ref
main_victim(struct evict_policy *p)
{
    evict_ref r = list_lru(seg_list(p, EVICT_SEG_PROBATION));

    if (r == 0) {
        r = list_lru(seg_list(p, EVICT_SEG_PROTECTED));
    }
    return r;
}

static evict_ref
evict_tinylfu(struct evict_policy *p)
{
    struct evict_list *win = seg_list(p, EVICT_SEG_WINDOW);
    struct evict_list *prob = seg_list(p, EVICT_SEG_PROBATION);
    evict_ref cand;
    evict_ref victim;

    drain_window(p);
    if (win->weight > p->window_max && (cand = list_lru(win)) != 0) {
        victim = main_victim(p);
        if (victim == 0) {
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
    if (victim == 0) {
        victim = list_lru(win);
    }
    return victim == 0 ? 0 : take(p, victim);
}

evict_ref
evict_one(struct evict_policy *p)
{
    evict_ref r;

    switch (p->kind) {
    case EVICT_TINYLFU:
        return evict_tinylfu(p);
    case EVICT_LRU:
        r = list_lru(seg_list(p, EVICT_SEG_PROBATION));
        return r == 0 ? 0 : take(p, r);
    case EVICT_NOEVICTION:
        return 0;
    }
    return 0;
}

/* Grow (delta > 0) or shrink the window budget and move nodes so that the
 * regions follow: growth takes the coldest main nodes into the window's LRU
 * end, shrinking sends the window's LRU nodes to probation. */
void
evict__resize_window(struct evict_policy *p, int64_t delta)
{
    struct evict_list *win = seg_list(p, EVICT_SEG_WINDOW);
    evict_ref r;

    if (delta > 0) {
        uint64_t limit = (uint64_t)((double)p->capacity * WINDOW_MAX_SHARE);
        uint64_t quota = (uint64_t)delta;
        if (p->window_max + quota > limit) {
            quota = limit > p->window_max ? limit - p->window_max : 0;
        }
        p->window_max += quota;
        p->protected_max = protected_budget(p);
        demote_protected(p);
        while ((r = main_victim(p)) != 0) {
            uint64_t w = node_weight(p, r);
            if (win->weight + w > p->window_max) {
                break;
            }
            list_unlink(p, node_list(p, r), r, w);
            list_push_lru(p, win, r, w);
        }
    } else if (delta < 0) {
        uint64_t quota = (uint64_t)-delta;
        if (quota > p->window_max) {
            quota = p->window_max;
        }
        p->window_max -= quota;
        p->protected_max = protected_budget(p);
        while (win->weight > p->window_max && (r = list_lru(win)) != 0) {
            move_mru(p, r, seg_list(p, EVICT_SEG_PROBATION));
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
