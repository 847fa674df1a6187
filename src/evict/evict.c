/*
 * evict.c -- W-TinyLFU / approximate LRU / noeviction policy of one shard
 * (see evict.h).
 *
 * Queues. Each segment (window, probation, protected) is a FIFO of refs
 * (queue.c); LRU and noeviction use the probation queue alone. An item's
 * segment, CLOCK frequency and dead mark live in the low 5 bits of its
 * first byte, so a hit touches that byte and the sketch and nothing else,
 * and removal is a mark: the entry leaves its queue when it reaches the
 * head, or when compaction drops it, and only then is release() called.
 *
 * W-TinyLFU flow:
 *   insert -> window tail.  hit -> sketch + frequency (saturating at 3).
 *   evict_one -> (1) while the window is over budget and the main area has
 *   room, its head moves to probation's tail without a duel; (2) the
 *   window's head (after second chances: a head with a frequency goes back
 *   to the tail with it cleared) is the candidate, and duels with the main
 *   victim: probation's head, where items hit since they entered are
 *   promoted to protected's tail instead (protected overflow demoted from
 *   its head to probation's tail, with the same second chance); the loser
 *   is returned; (3) with the window empty, the main victim is returned
 *   (probation first, then protected), and with main empty, the window's
 *   head.
 *   Step (2) runs whether or not the window is over its budget. In the
 *   simulator, which evicts when the count passes the capacity, it always
 *   is (the insert just made it so). In the server the store evicts when
 *   memory passes its watermark, and the capacity it gives the policy is
 *   an estimate of the item bytes that memory holds, a few percent off
 *   either way (index, slab pages). Below its estimate a policy found its
 *   window within budget and took main victims unjudged: with 32-byte
 *   values (items about 2/3 of a shard's memory) 65 % of zipf-drift-scan's
 *   evictions, 54.98 % hit where the simulator gives 56.44 at the same
 *   keys; with the duel, 56.34-56.47.
 * The window budget is moved by the climber (climb.c) through
 * evict__resize_window, which transfers items between window and main so
 * the regions follow their budgets at once.
 *
 * Admission: admit when f(candidate) > f(victim) x multiplier; a warm
 * candidate (f >= 6) that loses is still admitted with probability 1/128, so
 * an attacker cannot pin the main area with hash-flooded hot victims. A
 * rejected candidate leaves the victim at probation's head: its hash and
 * estimate are kept (duel_ref) until the sketch counts a request or the
 * victim leaves, so the store's batch of evictions hashes and estimates it
 * once (measured, SETs evicting 0.7 items each: 78 % of duels reuse it).
 * evict_take hands the loser's hash and weight back to the owner, which
 * then neither hashes its key for its index nor weighs it again.
 *
 * Compaction: a queue whose dead entries pass 1/8 of its length gets a
 * compaction pass (queue_compact_step, block by block); each removal buys
 * COMPACT_CREDIT entries of inline work, evict_maintain does the rest.
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
/* Saturation of the CLOCK frequency (at most 3: two bits). */
#define FREQ_MAX 3u
/* What a second chance leaves of a frequency: 0 = cleared, 1 = minus one;
 * in the window and in protected (the LRU kind follows the window). */
#define WINDOW_DECREMENT 1
#define PROTECTED_DECREMENT 1
/* Inline compaction bought by each removal, in entries examined. */
#define COMPACT_CREDIT 16u
/* A queue is compacted when dead * DEAD_RATIO > its length. */
#define DEAD_RATIO 8u

/* ---- meta bits ------------------------------------------------------------ */

static inline uint8_t *
meta(const struct evict_policy *p, evict_ref r)
{
    return evict_meta(p, r);
}

static inline unsigned
meta_seg(uint8_t m)
{
    return m & EVICT_META_SEG;
}

static inline unsigned
meta_freq(uint8_t m)
{
    return (m & EVICT_META_FREQ) >> EVICT_META_FREQ_SHIFT;
}

static inline void
set_freq(struct evict_policy *p, evict_ref r, unsigned f)
{
    uint8_t *m = meta(p, r);

    *m = (uint8_t)((*m & ~EVICT_META_FREQ) | (f << EVICT_META_FREQ_SHIFT));
}

static inline unsigned
freq_after_chance(const struct queue *q, unsigned f)
{
    bool dec = q->seg == EVICT_SEG_PROTECTED ? PROTECTED_DECREMENT
                                              : WINDOW_DECREMENT;

    return dec ? f - 1 : 0;
}

/* Live member of queue q now: segment bits set, frequency kept. */
static inline void
set_seg(struct evict_policy *p, evict_ref r, const struct queue *q)
{
    uint8_t *m = meta(p, r);

    *m = (uint8_t)((*m & ~(EVICT_META_SEG | EVICT_META_DEAD)) | q->seg);
}

static inline void
clear_meta(struct evict_policy *p, evict_ref r)
{
    *meta(p, r) &= (uint8_t)~EVICT_META_MASK;
}

static inline uint64_t
item_weight(const struct evict_policy *p, evict_ref r)
{
    return p->ops.weight(r, p->ops.ctx);
}

static inline uint64_t
item_hash(const struct evict_policy *p, evict_ref r)
{
    return p->ops.hash(r, p->ops.ctx);
}

static inline struct queue *
seg_queue(struct evict_policy *p, enum evict_seg seg)
{
    return &p->seg[SEG_INDEX(seg)];
}

/* A request counted in the sketch: every estimate may change, so the duel
 * memo (evict.h, duel_ref) goes. */
static inline void
count_request(struct evict_policy *p, uint64_t key_hash)
{
    p->duel_ref = 0;
    sketch_increment(&p->sketch, key_hash);
}

/* Ref r leaves the policy (its chunk may be reused for another key). */
static inline void
forget_duel(struct evict_policy *p, evict_ref r)
{
    if (r == p->duel_ref) {
        p->duel_ref = 0;
    }
}

/* ---- queue moves ---------------------------------------------------------- */

/* A dead entry has left its queue: its bits are cleared and the owner may
 * free it. */
static void
release(struct evict_policy *p, evict_ref r)
{
    clear_meta(p, r);
    forget_duel(p, r);
    p->releases++;
    if (p->ops.release != NULL) {
        p->ops.release(r, p->ops.ctx);
    }
}

/* The head's first live entry (not popped), releasing the dead ones before
 * it; 0 if there is none. */
static inline __attribute__((always_inline)) evict_ref
head_live(struct evict_policy *p, struct queue *q)
{
    evict_ref r;

    while ((r = queue_peek(q)) != 0) {
        if (!(*meta(p, r) & EVICT_META_DEAD)) {
            return r;
        }
        queue_pop(q);
        q->dead--;
        release(p, r);
    }
    return 0;
}

/* Pop the live head r of q (weight w) and append it to `to` (maybe q). */
static void
head_to_tail(struct evict_policy *p, struct queue *q, evict_ref r, uint64_t w,
             struct queue *to)
{
    queue_pop(q);
    q->count--;
    q->weight -= w;
    set_seg(p, r, to);
    queue_push_tail(to, r);
    to->count++;
    to->weight += w;
}

/* Second chance at q's head: a head with a frequency goes back to the tail
 * with less of it; returns the first head without one (0 if none). */
static inline __attribute__((always_inline)) evict_ref
clock_head(struct evict_policy *p, struct queue *q)
{
    evict_ref r;

    while ((r = head_live(p, q)) != 0) {
        unsigned f = meta_freq(*meta(p, r));
        if (f == 0) {
            return r;
        }
        queue_pop(q);
        set_freq(p, r, freq_after_chance(q, f));
        queue_push_tail(q, r);
    }
    return 0;
}

/* Demote protected's heads to probation's tail until protected fits, with
 * a second chance for the ones hit since their last chance. */
static void
demote_protected(struct evict_policy *p)
{
    struct queue *prot = seg_queue(p, EVICT_SEG_PROTECTED);
    struct queue *prob = seg_queue(p, EVICT_SEG_PROBATION);
    evict_ref r;

    while (prot->weight > p->protected_max && (r = clock_head(p, prot)) != 0) {
        head_to_tail(p, prot, r, item_weight(p, r), prob);
    }
}

/* The main area's victim, not popped: probation's head once the ones hit
 * since they entered are promoted, else protected's (second chance); *qp
 * gets its queue. 0 if the main area is empty. */
static __attribute__((noinline)) evict_ref
main_victim_walk(struct evict_policy *p, struct queue **qp)
{
    struct queue *prob = seg_queue(p, EVICT_SEG_PROBATION);
    struct queue *prot = seg_queue(p, EVICT_SEG_PROTECTED);
    evict_ref r;

    while ((r = head_live(p, prob)) != 0) {
        if (meta_freq(*meta(p, r)) == 0) {
            *qp = prob;
            return r;
        }
        set_freq(p, r, 0);
        head_to_tail(p, prob, r, item_weight(p, r), prot);
        demote_protected(p);
    }
    *qp = prot;
    return clock_head(p, prot);
}

/* main_victim_walk, with its usual first step inline: probation's head is
 * live and has not been hit since it entered. */
static inline evict_ref
main_victim(struct evict_policy *p, struct queue **qp)
{
    struct queue *prob = seg_queue(p, EVICT_SEG_PROBATION);
    evict_ref r = queue_peek(prob);

    if (r != 0 && (*meta(p, r) & (EVICT_META_DEAD | EVICT_META_FREQ)) == 0) {
        *qp = prob;
        return r;
    }
    return main_victim_walk(p, qp);
}

/* Out of the policy: pop the live head r of q (weight w, given to the
 * owner in *out), return it. */
static evict_ref
take_w(struct evict_policy *p, struct queue *q, evict_ref r, uint64_t w,
       struct evict_taken *out)
{
    queue_pop(q);
    q->count--;
    q->weight -= w;
    clear_meta(p, r);
    forget_duel(p, r);
    p->evictions++;
    out->weight = w;
    return r;
}

static evict_ref
take(struct evict_policy *p, struct queue *q, evict_ref r, struct evict_taken *out)
{
    return take_w(p, q, r, item_weight(p, r), out);
}

/* ---- compaction ----------------------------------------------------------- */

static bool
drop_dead(uint32_t r, void *ctx)
{
    struct evict_policy *p = ctx;

    if (!(*meta(p, r) & EVICT_META_DEAD)) {
        return false;
    }
    release(p, r);
    return true;
}

static bool
needs_compaction(const struct queue *q)
{
    return q->cursor != NULL || q->dead * DEAD_RATIO > q->len;
}

/* A removal in q buys some inline compaction of q. */
static void
compact_inline(struct evict_policy *p, struct queue *q)
{
    if (!needs_compaction(q)) {
        return;
    }
    p->compact_credit += COMPACT_CREDIT;
    if (p->compact_credit >= QUEUE_BLOCK_REFS) {
        size_t n = queue_compact_step(q, drop_dead, p);
        p->compact_credit -= n < p->compact_credit ? n : p->compact_credit;
    }
}

size_t
evict_maintain(struct evict_policy *p, size_t budget)
{
    size_t done = 0;

    for (int i = 0; i < 3; i++) {
        struct queue *q = &p->seg[i];
        while (done < budget && needs_compaction(q)) {
            size_t n = queue_compact_step(q, drop_dead, p);
            if (n == 0) {
                q->cursor = NULL;
                break;
            }
            done += n;
        }
    }
    return done;
}

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
    p->shards = 1;
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
    queue_init(&p->seg[0], EVICT_SEG_WINDOW);
    queue_init(&p->seg[1], EVICT_SEG_PROBATION);
    queue_init(&p->seg[2], EVICT_SEG_PROTECTED);
    p->capacity = params->capacity;
    p->protected_ratio = params->protected_ratio;
    p->admission_multiplier = params->admission_multiplier;
    p->adaptive = params->adaptive;
    p->shards = params->shards ? params->shards : 1;
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
    p->mem_floor = sketch_bytes(&p->sketch) + 3 * QUEUE_BLOCK_BYTES;
    evict__climb_reset(p);
    return 0;
}

void
evict_deinit(struct evict_policy *p)
{
    for (int i = 0; i < 3; i++) {
        queue_free(&p->seg[i]);
    }
    sketch_deinit(&p->sketch);
    memset(p, 0, sizeof(*p));
}

void
evict_adjust_capacity(struct evict_policy *p, uint64_t capacity)
{
    if (capacity == 0) {
        return;
    }
    double ratio = (double)p->window_max / (double)p->capacity;
    p->capacity = capacity;
    set_budgets(p, ratio);
}

int
evict_set_capacity(struct evict_policy *p, uint64_t capacity)
{
    if (capacity == 0) {
        return -EINVAL;
    }
    evict_adjust_capacity(p, capacity);
    if (p->kind == EVICT_TINYLFU) {
        demote_protected(p);
    }
    evict__climb_reset(p);
    return 0;
}

int
evict_set_kind(struct evict_policy *p, enum evict_kind kind)
{
    struct queue *main = seg_queue(p, EVICT_SEG_PROBATION);

    if ((unsigned)kind > EVICT_NOEVICTION) {
        return -EINVAL;
    }
    if (p->kind == EVICT_TINYLFU && kind != EVICT_TINYLFU) {
        /* One queue, oldest first: probation, protected, window. */
        queue_splice(main, seg_queue(p, EVICT_SEG_PROTECTED));
        queue_splice(main, seg_queue(p, EVICT_SEG_WINDOW));
        for (struct queue_block *b = main->head; b != NULL; b = b->next) {
            for (uint32_t i = b->lo; i < b->hi; i++) {
                if (!(*meta(p, b->refs[i]) & EVICT_META_DEAD)) {
                    set_seg(p, b->refs[i], main);
                }
            }
        }
    }
    p->kind = kind;
    return 0;
}

/* ---- the hot path -------------------------------------------------------- */

/*
 * The sketch grows with the resident count, but only once the policy is
 * half full (its items weigh half its capacity), the point from which
 * admission duels are near (Caffeine sizes its sketch lazily at the same
 * point). A cache far below its limit keeps its first, small sketch: 1M keys
 * under the default 1 GiB limit paid 4.2 bytes per key for a sketch no duel
 * would read.
 */
static void
maybe_grow_sketch(struct evict_policy *p)
{
    uint64_t count = evict_count(p);

    if (count > 2 * (uint64_t)p->sketch.entries && evict_weight(p) >= p->capacity / 2) {
        sketch_init(&p->sketch, (size_t)count, p->sketch_counters,
                    p->doorkeeper);
        p->duel_ref = 0;
        evict__climb_reset(p);
    }
}

/* Window overflow flows into a main area that still has room, without a
 * duel (the cache is not full yet, or the window just shrank). Large caches
 * (the density climber's) give the window's heads their second chance
 * first, so the items hit in the window stay there: otherwise the first
 * drain fills main with them, the climber reads main as dense and shrinks
 * the window on recency traces (scarab-recs 100000: 75.51 instead of
 * 76.01). Small ones drain in FIFO order: on loops, the window keeping its
 * hit items costs main the frequency it needs (lirs-cs 563: 30.60 instead
 * of 33.43).
 * Returns the window's head it stopped at when main had no room for it, if
 * that head has had its second chances (clock_head), with its weight in
 * *wp: the window is still over budget, so it is the very candidate a new
 * clock_head would return, and evict_tinylfu takes it from here instead of
 * walking to it and weighing it again. 0 otherwise. */
static evict_ref
drain_window(struct evict_policy *p, uint64_t *wp)
{
    struct queue *win = seg_queue(p, EVICT_SEG_WINDOW);
    struct queue *prob = seg_queue(p, EVICT_SEG_PROBATION);
    uint64_t main_max = p->capacity - p->window_max;
    evict_ref r;

    bool chance = p->sketch.entries > SKETCH_LARGE_ENTRIES;

    while (win->weight > p->window_max &&
           (r = chance ? clock_head(p, win) : head_live(p, win)) != 0) {
        uint64_t w = item_weight(p, r);
        if (prob->weight + seg_queue(p, EVICT_SEG_PROTECTED)->weight + w >
            main_max) {
            *wp = w;
            return chance ? r : 0;
        }
        set_freq(p, r, 0);
        head_to_tail(p, win, r, w, prob);
    }
    return 0;
}

static void
push_new(struct evict_policy *p, struct queue *q, evict_ref r, uint64_t w)
{
    clear_meta(p, r);
    set_seg(p, r, q);
    queue_push_tail(q, r);
    q->count++;
    q->weight += w;
}

void
evict_on_insert(struct evict_policy *p, evict_ref ref, uint64_t key_hash,
                uint64_t weight)
{
    bool counted = p->last_miss_valid && p->last_miss_hash == key_hash;

    p->last_miss_valid = false;
    if (p->kind != EVICT_TINYLFU) {
        push_new(p, seg_queue(p, EVICT_SEG_PROBATION), ref, weight);
        return;
    }
    push_new(p, seg_queue(p, EVICT_SEG_WINDOW), ref, weight);
    /* also after a miss that counted this key: a cache filled by
     * GET-miss-then-SET grows its sketch too */
    maybe_grow_sketch(p);
    if (!counted) {
        count_request(p, key_hash);
        evict__climb_record(p, false, false);
    }
}

/* A use of a live item: W-TinyLFU counts up to FREQ_MAX (a second chance
 * per use, up to three); lru is classic CLOCK, one reference bit, so a scan
 * longer than the cache evicts what it passes, as an LRU does. */
static void
bump_freq(struct evict_policy *p, evict_ref ref, unsigned f)
{
    if (f < (p->kind == EVICT_TINYLFU ? FREQ_MAX : 1u)) {
        set_freq(p, ref, f + 1);
    }
}

void
evict_on_overwrite(struct evict_policy *p, evict_ref ref, uint64_t key_hash)
{
    uint8_t *m = meta(p, ref);
    unsigned f = meta_freq(*m);
    bool counted = p->last_miss_valid && p->last_miss_hash == key_hash;

    if (meta_seg(*m) == EVICT_SEG_NONE || (*m & EVICT_META_DEAD)) {
        return;
    }
    p->last_miss_valid = false;
    bump_freq(p, ref, f);
    if (p->kind != EVICT_TINYLFU || counted) {
        return;
    }
    /* counted as the insert it replaces: in the sketch, a miss for the climber */
    count_request(p, key_hash);
    evict__climb_record(p, false, false);
}

void
evict_on_miss(struct evict_policy *p, uint64_t key_hash)
{
    if (p->kind != EVICT_TINYLFU) {
        return;
    }
    count_request(p, key_hash);
    p->last_miss_hash = key_hash;
    p->last_miss_valid = true;
    evict__climb_record(p, false, false);
}

void
evict_on_access(struct evict_policy *p, evict_ref ref, uint64_t key_hash)
{
    uint8_t *m = meta(p, ref);
    unsigned seg = meta_seg(*m);
    unsigned f = meta_freq(*m);

    if (seg == EVICT_SEG_NONE || (*m & EVICT_META_DEAD)) {
        return;
    }
    bump_freq(p, ref, f);
    if (p->kind != EVICT_TINYLFU) {
        return;
    }
    p->last_miss_valid = false;
    count_request(p, key_hash);
    evict__climb_record(p, true, seg == EVICT_SEG_WINDOW);
}

void
evict_on_update(struct evict_policy *p, evict_ref ref, uint64_t old_weight,
                uint64_t new_weight)
{
    uint8_t m = *meta(p, ref);
    struct queue *q;

    if (meta_seg(m) == EVICT_SEG_NONE || (m & EVICT_META_DEAD)) {
        return;
    }
    q = seg_queue(p, (enum evict_seg)meta_seg(m));
    q->weight = q->weight - old_weight + new_weight;
    if (meta_seg(m) == EVICT_SEG_PROTECTED && p->kind == EVICT_TINYLFU) {
        demote_protected(p);
    }
}

/* Mark a live item of q dead: its entry stays until released. */
static void
mark_dead(struct evict_policy *p, struct queue *q, evict_ref ref)
{
    *meta(p, ref) |= EVICT_META_DEAD;
    q->dead++;
    compact_inline(p, q);
}

void
evict_on_remove(struct evict_policy *p, evict_ref ref)
{
    uint8_t m = *meta(p, ref);
    struct queue *q;

    if (m & EVICT_META_DEAD) {
        return; /* removed already: its release is pending */
    }
    if (meta_seg(m) == EVICT_SEG_NONE) {
        release(p, ref);
        return;
    }
    q = seg_queue(p, (enum evict_seg)meta_seg(m));
    q->count--;
    q->weight -= item_weight(p, ref);
    mark_dead(p, q, ref);
}

void
evict_on_move(struct evict_policy *p, evict_ref from, evict_ref to)
{
    uint8_t m = *meta(p, from);
    uint8_t *mt = meta(p, to);
    struct queue *q;

    if (from == to || (m & EVICT_META_DEAD)) {
        return;
    }
    if (meta_seg(m) == EVICT_SEG_NONE) {
        *mt &= (uint8_t)~EVICT_META_MASK;
        release(p, from);
        return;
    }
    q = seg_queue(p, (enum evict_seg)meta_seg(m));
    *mt = (uint8_t)((*mt & ~EVICT_META_MASK) | (m & EVICT_META_MASK));
    queue_push_tail(q, to);
    mark_dead(p, q, from);
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

/* The duel: whether the candidate (its hash left in *hc) beats the victim
 * (whose hash and estimate stay in the duel memo). */
static bool
admit(struct evict_policy *p, evict_ref cand, evict_ref victim, uint64_t *hc)
{
    uint64_t h = item_hash(p, cand);
    unsigned fc = sketch_estimate(&p->sketch, h);
    unsigned fv;

    *hc = h;
    if (victim != p->duel_ref) {
        p->duel_hash = item_hash(p, victim);
        p->duel_est = sketch_estimate(&p->sketch, p->duel_hash);
        p->duel_ref = victim;
    }
    fv = p->duel_est;

    if ((double)fc > (double)fv * p->admission_multiplier) {
        return true;
    }
    if (fc >= WARM_CANDIDATE && (next_random(p) & JITTER_MASK) == 0) {
        return true;
    }
    return false;
}

static evict_ref
evict_tinylfu(struct evict_policy *p, struct evict_taken *out)
{
    struct queue *win = seg_queue(p, EVICT_SEG_WINDOW);
    struct queue *prob = seg_queue(p, EVICT_SEG_PROBATION);
    struct queue *vq = NULL;
    evict_ref cand;
    evict_ref victim;
    uint64_t cw = 0;
    uint64_t hc;

    cand = drain_window(p, &cw);
    if (cand == 0 && (cand = clock_head(p, win)) != 0) {
        cw = item_weight(p, cand);
    }
    if (cand != 0) {
        victim = main_victim(p, &vq);
        if (victim == 0) {
            return take_w(p, win, cand, cw, out);
        }
        if (admit(p, cand, victim, &hc)) {
            p->admissions++;
            out->hash = p->duel_hash;
            out->hashed = true;
            take(p, vq, victim, out);
            set_freq(p, cand, 0);
            head_to_tail(p, win, cand, cw, prob);
            return victim;
        }
        p->rejections++;
        out->hash = hc;
        out->hashed = true;
        return take_w(p, win, cand, cw, out);
    }
    victim = main_victim(p, &vq);
    if (victim == 0) {
        vq = win;
        victim = clock_head(p, win);
    }
    return victim == 0 ? 0 : take(p, vq, victim, out);
}

evict_ref
evict_take(struct evict_policy *p, struct evict_taken *out)
{
    struct queue *q = seg_queue(p, EVICT_SEG_PROBATION);
    evict_ref r;

    out->hashed = false;
    switch (p->kind) {
    case EVICT_TINYLFU:
        return evict_tinylfu(p, out);
    case EVICT_LRU:
        r = clock_head(p, q);
        return r == 0 ? 0 : take(p, q, r, out);
    case EVICT_NOEVICTION:
        return 0;
    }
    return 0;
}

evict_ref
evict_one(struct evict_policy *p)
{
    struct evict_taken t;

    return evict_take(p, &t);
}

/* Grow (delta > 0) or shrink the window budget and move items so that the
 * regions follow: growth takes the coldest main items into the window's
 * head, shrinking sends the window's heads to probation's tail. */
void
evict__resize_window(struct evict_policy *p, int64_t delta)
{
    struct queue *win = seg_queue(p, EVICT_SEG_WINDOW);
    struct queue *prob = seg_queue(p, EVICT_SEG_PROBATION);
    struct queue *prot = seg_queue(p, EVICT_SEG_PROTECTED);
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
        for (;;) {
            struct queue *q = prob;
            uint64_t w;
            if ((r = head_live(p, prob)) == 0) {
                q = prot;
                r = head_live(p, prot);
            }
            if (r == 0) {
                break;
            }
            w = item_weight(p, r);
            if (win->weight + w > p->window_max) {
                break;
            }
            queue_pop(q);
            q->count--;
            q->weight -= w;
            set_seg(p, r, win);
            queue_push_head(win, r);
            win->count++;
            win->weight += w;
        }
    } else if (delta < 0) {
        uint64_t quota = (uint64_t)-delta;
        if (quota > p->window_max) {
            quota = p->window_max;
        }
        p->window_max -= quota;
        p->protected_max = protected_budget(p);
        while (win->weight > p->window_max && (r = head_live(p, win)) != 0) {
            set_freq(p, r, 0);
            head_to_tail(p, win, r, item_weight(p, r), prob);
        }
    }
}

/* ---- figures ------------------------------------------------------------- */

size_t
evict_mem_floor(const struct evict_policy *p)
{
    return p->mem_floor;
}

size_t
evict_mem(const struct evict_policy *p)
{
    size_t n = sketch_bytes(&p->sketch);
    for (int i = 0; i < 3; i++) {
        n += queue_bytes(&p->seg[i]);
    }
    return n;
}

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
    out->releases = p->releases;
    for (int i = 0; i < 3; i++) {
        out->queue_entries += p->seg[i].len;
        out->dead_entries += p->seg[i].dead;
        out->queue_bytes += queue_bytes(&p->seg[i]);
    }
}
