/*
 * store_slot.c -- the keyspace seen by cluster slots: per-slot counts, the
 * cursor over a slot range, and the background drop of a slot range (see
 * store_slot.h for the contracts).
 *
 * A slot lives in exactly one shard (shard = slot mod S), so a range of n
 * slots is found in min(n, S) shards: (first + k) mod S for k < min(n, S).
 * There is no per-slot index (it would cost every key a link): a slot's keys
 * are found by walking its shard's index and testing each key's slot, the
 * way the snapshot walk does, a bounded part at a time under the lock.
 *
 * The cursor. A walk goes through the range's shards in order, and through
 * each shard's hash space with ht_scan_at, whose steps are consecutive
 * intervals of hash space: a key present for the whole walk is in exactly
 * one of them whatever the index does between steps. A step whose keys
 * exceed what is left of the caller's budget is cut: its keys sorted by
 * hash, the first ones visited, and the walk resumes at the hash of the
 * first key left. The cursor packs the shard's rank k in its top log2(S)
 * bits and the position in hash space, less its low log2(S) bits, in the
 * rest; positions are kept at that resolution (steps end on it, cuts are
 * made on it), so nothing is lost by the packing. Keys whose hashes share
 * one position (2^log2(S) hashes out of 2^64) cannot be cut apart: a cut
 * leaves them all for the next step, or, if they are where the step began,
 * takes them all at once.
 *
 * The drop. store_slot_drop_begin marks the slots (slot_drop[], under each
 * shard's lock) and starts a sweep of each shard concerned: a walk of its
 * hash space (drop_pos) by the cron, a bounded amount per tick, that
 * removes every key of a marked slot as DEL would (shard__forget: memory,
 * policy, slot counts). When a sweep has gone once round hash space it
 * clears its shard's marks. A slot marked while its shard's sweep is under
 * way makes the sweep go round once more (drop_restart), since the part
 * already swept may hold keys of that slot.
 */
#include "store/store_slot.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "store/store.h"
#include "store/store_int.h"
#include "util/mem.h"

/* ---- counts ---- */

static void
count_slot(struct item *it, void *ctx)
{
    struct shard *sh = ctx;
    shard__slot_count(sh, slot_of(item_key(it), item_klen(it)), 1, (ssize_t)item_mem(it));
}

/* The shard of this slot keeps per-slot counts from now on. */
static void
counts_start(struct store *st, unsigned slot)
{
    struct shard *sh = &st->shards[store_shard_of_slot(st, slot)];
    if (atomic_load_explicit(&sh->slots_counted, memory_order_acquire)) {
        return;
    }
    /* first question about this shard's slots: count its keys (all of its
     * slots, no other shard's) and keep the counts from now on */
    shard_lock(st, store_shard_of_slot(st, slot));
    if (!atomic_load_explicit(&sh->slots_counted, memory_order_relaxed)) {
        for (unsigned s = slot & st->mask; s < SLOT_COUNT; s += st->nshards) {
            atomic_store_explicit(&st->slot_keys[s], 0, memory_order_relaxed);
            atomic_store_explicit(&st->slot_bytes[s], 0, memory_order_relaxed);
        }
        size_t c = 0;
        do {
            c = ht_scan(&sh->ht, c, count_slot, sh);
        } while (c != 0);
        atomic_store_explicit(&sh->slots_counted, true, memory_order_release);
    }
    shard_unlock(sh);
}

size_t
store_slot_count(struct store *st, unsigned slot)
{
    slot &= SLOT_COUNT - 1;
    counts_start(st, slot);
    return atomic_load_explicit(&st->slot_keys[slot], memory_order_relaxed);
}

size_t
store_slot_bytes(struct store *st, unsigned slot)
{
    slot &= SLOT_COUNT - 1;
    counts_start(st, slot);
    return atomic_load_explicit(&st->slot_bytes[slot], memory_order_relaxed);
}

size_t
store_slot_range_count(struct store *st, unsigned first, unsigned last)
{
    size_t n = 0;
    for (unsigned s = first; s <= last && s < SLOT_COUNT; s++) {
        n += store_slot_count(st, s);
    }
    return n;
}

size_t
store_slot_range_bytes(struct store *st, unsigned first, unsigned last)
{
    size_t n = 0;
    for (unsigned s = first; s <= last && s < SLOT_COUNT; s++) {
        n += store_slot_bytes(st, s);
    }
    return n;
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
    if (slot_of(item_key(it), item_klen(it)) == v->slot) {
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

/* ---- gathering the keys of one scan step ---- */

struct cand {
    struct item *it;
    uint64_t hash;
    unsigned slot;
};

struct gather {
    const struct store *st;
    unsigned first, last; /* the range (scan) */
    int64_t now;
    bool drop;            /* the drop's sweep: keys of marked slots, expired or not */
    struct cand *c;
    size_t n, cap;
    size_t seen;          /* items examined */
};

static bool
marked(const struct store *st, unsigned slot)
{
    return atomic_load_explicit(&st->slot_drop[slot], memory_order_relaxed) != 0;
}

static void
gather(struct item *it, uint64_t hash, void *ctx)
{
    struct gather *g = ctx;
    g->seen++;
    unsigned slot;
    if (g->drop) {
        slot = slot_of(item_key(it), item_klen(it));
        if (!marked(g->st, slot)) {
            return;
        }
    } else {
        if (item_expired(it, g->now)) {
            return;
        }
        slot = slot_of(item_key(it), item_klen(it));
        if (slot < g->first || slot > g->last || marked(g->st, slot)) {
            return;
        }
    }
    if (g->n == g->cap) {
        g->cap = g->cap ? g->cap * 2 : 32;
        g->c = xrealloc(g->c, g->cap * sizeof(*g->c));
    }
    g->c[g->n++] = (struct cand){it, hash, slot};
}

static int
cmp_hash(const void *a, const void *b)
{
    uint64_t x = ((const struct cand *)a)->hash, y = ((const struct cand *)b)->hash;
    return x < y ? -1 : x > y;
}

/* ---- the cursor ---- */

static unsigned
range_shards(const struct store *st, unsigned first, unsigned last)
{
    unsigned n = last - first + 1;
    return n < st->nshards ? n : st->nshards;
}

/*
 * A step gathered more keys (g->n, sorted by hash) than the budget: which to
 * visit now (*take) and where to resume. `pos` is where the step began and
 * `end` where it ended; res the low bits a position drops.
 */
static uint64_t
cut(const struct gather *g, size_t budget, uint64_t pos, uint64_t end, uint64_t res,
    size_t *take)
{
    uint64_t r = g->c[budget].hash & ~res;
    size_t t = budget;
    if (r > pos) {
        /* keys sharing r's position with the first one left go next time */
        while (t > 0 && (g->c[t - 1].hash & ~res) == r) {
            t--;
        }
        *take = t;
        return r;
    }
    /* every key up to the budget shares pos's position: take all of those */
    while (t < g->n && (g->c[t].hash & ~res) == pos) {
        t++;
    }
    *take = t;
    return t < g->n ? g->c[t].hash & ~res : end;
}

uint64_t
store_slot_scan(struct store *st, unsigned first, unsigned last, uint64_t cursor,
                size_t max_items, int64_t now, store_slot_fn fn, void *ctx)
{
    if (first > last || last >= SLOT_COUNT) {
        return 0;
    }
    unsigned b = st->shard_bits;
    unsigned nvisit = range_shards(st, first, last);
    unsigned k = b ? (unsigned)(cursor >> (64 - b)) : 0;
    uint64_t pos = b ? cursor << b : cursor;
    uint64_t res = b ? (UINT64_C(1) << b) - 1 : 0;
    size_t budget = max_items ? max_items : 1;
    size_t groups = 0;
    struct gather g = {.st = st, .first = first, .last = last, .now = now};
    while (k < nvisit && budget > 0 && groups < STORE_SLOT_SCAN_GROUPS) {
        struct shard *sh = shard_lock(st, (first + k) & st->mask);
        bool shard_done = false;
        for (unsigned i = 0; i < STORE_SLOT_LOCK_GROUPS && budget > 0 &&
                             groups < STORE_SLOT_SCAN_GROUPS;
             i++, groups++) {
            g.n = 0;
            uint64_t end = ht_scan_at(&sh->ht, pos, b, gather, &g);
            size_t take = g.n;
            if (g.n > budget) {
                qsort(g.c, g.n, sizeof(*g.c), cmp_hash);
                end = cut(&g, budget, pos, end, res, &take);
            }
            for (size_t j = 0; j < take; j++) {
                const struct item *it = g.c[j].it;
                struct store_slot_entry e = {
                    item_key(it), item_klen(it), item_cval(it), item_vlen(it),
                    item_expire(it), g.c[j].slot, item_mem(it),
                };
                fn(&e, ctx);
            }
            budget = take >= budget ? 0 : budget - take;
            pos = end;
            if (end == 0) {
                shard_done = true;
                break;
            }
        }
        shard_unlock(sh);
        if (shard_done) {
            k++;
            pos = 0;
        }
    }
    free(g.c);
    if (k >= nvisit) {
        return 0;
    }
    /* not 0: every step moves pos forward or finishes a shard */
    return b ? ((uint64_t)k << (64 - b)) | (pos >> b) : pos;
}

/* ---- the drop ---- */

int
store_slot_drop_begin(struct store *st, unsigned first, unsigned last)
{
    if (first > last || last >= SLOT_COUNT) {
        return -EINVAL;
    }
    unsigned nvisit = range_shards(st, first, last);
    for (unsigned k = 0; k < nvisit; k++) {
        struct shard *sh = shard_lock(st, (first + k) & st->mask);
        for (unsigned s = first + k; s <= last; s += st->nshards) {
            atomic_store_explicit(&st->slot_drop[s], 1, memory_order_relaxed);
        }
        if (!sh->dropping) {
            sh->dropping = true;
            sh->drop_pos = 0;
            sh->drop_restart = false;
            atomic_fetch_add(&st->drops_active, 1);
        } else if (sh->drop_pos != 0) {
            sh->drop_restart = true; /* the part swept may hold these slots' keys */
        }
        shard_unlock(sh);
    }
    return 0;
}

bool
store_slot_dropping(const struct store *st, unsigned slot)
{
    return marked(st, slot & (SLOT_COUNT - 1));
}

bool
store_slot_drop_pending(const struct store *st, unsigned first, unsigned last)
{
    for (unsigned s = first; s <= last && s < SLOT_COUNT; s++) {
        if (marked(st, s)) {
            return true;
        }
    }
    return false;
}

unsigned
store_slot_drops_active(const struct store *st)
{
    return atomic_load(&st->drops_active);
}

/* A sweep has gone round: its shard's slots are empty of the marked ones. */
static void
drop_finish(struct store *st, struct shard *sh, unsigned idx)
{
    for (unsigned s = idx; s < SLOT_COUNT; s += st->nshards) {
        atomic_store_explicit(&st->slot_drop[s], 0, memory_order_relaxed);
    }
    sh->dropping = false;
    sh->drop_pos = 0;
    atomic_fetch_sub(&st->drops_active, 1);
}

size_t
store_slot_drop_step(struct store *st, unsigned idx, size_t work)
{
    struct shard *sh = &st->shards[idx];
    struct gather g = {.st = st, .drop = true};
    size_t removed = 0;
    bool more = true;
    while (more) {
        shard_lock(st, idx);
        if (!sh->dropping) {
            shard_unlock(sh);
            break;
        }
        size_t tm = ht_mem(&sh->ht);
        for (unsigned i = 0; i < STORE_SLOT_LOCK_GROUPS; i++) {
            g.n = 0;
            g.seen++; /* a step counts even where the index is empty */
            uint64_t end = ht_scan_at(&sh->ht, sh->drop_pos, 0, gather, &g);
            /* the visitor may not change the table: unlink after the step */
            for (size_t j = 0; j < g.n; j++) {
                struct item *it = g.c[j].it;
                ht_remove(&sh->ht, item_key(it), item_klen(it), g.c[j].hash);
                shard__forget(sh, it);
                sh->dropped++;
                removed++;
            }
            sh->drop_pos = end;
            if (end == 0) {
                if (sh->drop_restart) {
                    sh->drop_restart = false;
                } else {
                    drop_finish(st, sh, idx);
                    more = false;
                    break;
                }
            }
            if (g.seen >= work) {
                more = false;
                break;
            }
        }
        shard__table_mem_sync(sh, tm);
        shard_unlock(sh);
    }
    free(g.c);
    return removed;
}

uint64_t
store_dropped_total(struct store *st)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < st->nshards; i++) {
        n += __atomic_load_n(&st->shards[i].dropped, __ATOMIC_RELAXED);
    }
    return n;
}
