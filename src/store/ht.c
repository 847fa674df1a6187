/*
 * ht.c -- see ht.h.
 *
 * Probing. The home group of a hash is (hash * ngroups) >> 64 (multiply-
 * shift, so any number of groups works and the home is monotonic in the
 * hash); the tag is 0x80 | the hash's low 7 bits. A lookup compares the
 * tags of a group with SWAR on a uint64, checks the keys of the matching
 * slots, and moves to the next group (wrapping) until it finds the key or
 * a group with an EMPTY slot. An insert takes the first EMPTY or DELETED
 * slot on the way. A removal leaves EMPTY if the group still has an EMPTY
 * slot (no probe ever went past it), DELETED otherwise. Invariant: an item
 * displaced from its home group g to group k implies that groups g..k-1
 * have no EMPTY slot.
 *
 * Sizes. Max load 7/8 counting tombstones; growth by 1.5 (load 7/12 right
 * after); when the table is full mostly of tombstones it is rebuilt at the
 * same size instead. The cron shrinks below 1/4 to load 1/2 and rebuilds
 * when an eighth of the slots are tombstones (they lengthen misses).
 *
 * Migration. t[0] is moved into t[1] group by group, starting just after a
 * group that has an EMPTY slot (mig_start), so no probe chain of t[0] runs
 * from the unmoved part into the moved part. Moved groups are cleared. A
 * probe in t[0] whose home group was moved starts at the first unmoved
 * group instead: every item still in t[0] with such a home sits in the run
 * of full groups that starts there.
 *
 * Scan. The cursor is a position in hash space. A call covers the hash
 * interval from it to the end of its group in the larger table (rounded to
 * the cursor's resolution), and in each table visits the items with a hash
 * in the interval: they sit in the groups from the home of the interval's
 * start to the home of its end, or in the full groups that follow. Each
 * candidate's key is hashed to decide. Intervals are consecutive, so an
 * item present for the whole scan is visited exactly once whatever
 * happens to the tables between calls.
 */
#include "store/ht.h"

#include <string.h>
/* XXH3 compiled in here (the same function as the library's): a short key
 * is hashed without the call through the PLT and the length dispatch of
 * the shared library. */
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "util/mem.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "ht.c: the SWAR tag match assumes a little-endian target"
#endif

#define TAG_EMPTY 0x00u
#define TAG_DELETED 0x01u
#define LSB 0x0101010101010101ull
#define MSB 0x8080808080808080ull
#define LOW7 0x7f7f7f7f7f7f7f7full

#define MIN_GROUPS 2
#define STEPS_PER_OP 2 /* groups moved by every find/insert/remove */
#define CURSOR_SHIFT 6 /* hash-space resolution of a scan cursor */

#define AT(h, ref) item_at((h)->slab, (ref))

/* Where a key was found. */
struct pos {
    int t;
    size_t g;
    unsigned i;
};

uint64_t
ht_hash(const char *key, size_t klen)
{
    return XXH3_64bits(key, klen);
}

static inline size_t
home(uint64_t hash, size_t ngroups)
{
    return (size_t)(((unsigned __int128)hash * ngroups) >> 64);
}

static inline uint8_t
tag_of(uint64_t hash)
{
    return (uint8_t)(0x80u | (hash & 0x7fu));
}

static inline uint64_t
tags_load(const struct ht_group *gr)
{
    uint64_t v;
    memcpy(&v, gr->tag, 8);
    return v;
}

/* 0x80 in every byte of x that is zero (exact: no false positives). */
static inline uint64_t
zero_bytes(uint64_t x)
{
    return ~(((x & LOW7) + LOW7) | x | LOW7);
}

static inline uint64_t
match(uint64_t tags, uint8_t tag)
{
    return zero_bytes(tags ^ (LSB * tag));
}

static inline uint64_t
empties(uint64_t tags)
{
    return zero_bytes(tags);
}

static inline uint64_t
occupied(uint64_t tags)
{
    return tags & MSB;
}

/* EMPTY or DELETED. */
static inline uint64_t
frees(uint64_t tags)
{
    return ~tags & MSB;
}

static inline unsigned
first_slot(uint64_t mask)
{
    return (unsigned)__builtin_ctzll(mask) >> 3;
}

static inline size_t
max_load(size_t ngroups)
{
    return ngroups * 7; /* 7/8 of 8 slots */
}

static size_t
table_bytes(size_t ngroups)
{
    return ngroups * sizeof(struct ht_group);
}

static void
table_alloc(struct ht *h, struct ht_table *tb, size_t ngroups)
{
    tb->g = big_alloc(table_bytes(ngroups)); /* zeroed: all EMPTY */
    tb->ngroups = ngroups;
    tb->used = 0;
    tb->deleted = 0;
    h->mem += big_size(tb->g, table_bytes(ngroups));
}

static void
table_free(struct ht *h, struct ht_table *tb)
{
    if (tb->g) {
        h->mem -= big_size(tb->g, table_bytes(tb->ngroups));
        big_free(tb->g, table_bytes(tb->ngroups));
    }
    memset(tb, 0, sizeof(*tb));
}

void
ht_init(struct ht *h, const struct slab *slab)
{
    memset(h, 0, sizeof(*h));
    h->slab = slab;
}

void
ht_deinit(struct ht *h)
{
    table_free(h, &h->t[0]);
    table_free(h, &h->t[1]);
    ht_init(h, h->slab);
}


/* ---- migration bookkeeping ---- */

/* Has group g of t[0] been moved already? */
static inline bool
moved(const struct ht *h, size_t g)
{
    size_t n = h->t[0].ngroups;
    size_t d = g >= h->mig_start ? g - h->mig_start : g + n - h->mig_start;
    return d < h->mig_done;
}

/* First group to probe in table t for a home group. */
static inline size_t
probe_start(const struct ht *h, int t, size_t g)
{
    if (t == 0 && h->migrating && moved(h, g)) {
        g = h->mig_start + h->mig_done;
        if (g >= h->t[0].ngroups) {
            g -= h->t[0].ngroups;
        }
    }
    return g;
}

/* ---- one table ---- */

/* The memcmp of key_eq, out of line: the lookup loop then makes no call
 * for the common key lengths and keeps its values in registers. */
static __attribute__((noinline)) bool
key_eq_call(const struct item *it, const char *key, size_t klen)
{
    return memcmp(item_key(it), key, klen) == 0;
}

/* item_key_eq with the common key lengths 8..16 compared by two
 * overlapping word loads each side (no call); other lengths by memcmp. */
static inline __attribute__((always_inline)) bool
key_eq(const struct item *it, const char *key, size_t klen)
{
    if (item_klen(it) != klen) {
        return false;
    }
    const char *k = item_key(it);
    if (klen >= 8 && klen <= 16) {
        uint64_t a0, a1, b0, b1;
        memcpy(&a0, k, 8);
        memcpy(&b0, key, 8);
        memcpy(&a1, k + klen - 8, 8);
        memcpy(&b1, key + klen - 8, 8);
        return ((a0 ^ b0) | (a1 ^ b1)) == 0;
    }
    return key_eq_call(it, key, klen);
}

/* The probe of table t for hash, matching by key, or by reference when
 * key is NULL (ref is then the item's; key comparisons are not counted).
 * Inlined into each caller with its constant arguments. */
static inline __attribute__((always_inline)) bool
table_probe(struct ht *h, int t, const char *key, size_t klen, uint32_t ref,
            uint64_t hash, struct pos *p)
{
    const struct ht_table *tb = &h->t[t];
    if (tb->used == 0) {
        return false;
    }
    size_t n = tb->ngroups;
    size_t g = probe_start(h, t, home(hash, n));
    uint8_t tag = tag_of(hash);
    for (size_t k = 0; k < n; k++) {
        const struct ht_group *gr = &tb->g[g];
        uint64_t tags = tags_load(gr);
        for (uint64_t m = match(tags, tag); m; m &= m - 1) {
            unsigned i = first_slot(m);
            bool hit;
            if (key == NULL) {
                hit = gr->ref[i] == ref;
            } else {
                h->key_cmps++;
                hit = key_eq(AT(h, gr->ref[i]), key, klen);
            }
            if (hit) {
                p->t = t;
                p->g = g;
                p->i = i;
                return true;
            }
        }
        if (empties(tags)) {
            return false;
        }
        if (++g == n) {
            g = 0;
        }
    }
    return false;
}

static inline __attribute__((always_inline)) bool
table_find(struct ht *h, int t, const char *key, size_t klen, uint64_t hash, struct pos *p)
{
    return table_probe(h, t, key, klen, 0, hash, p);
}

/* The second table only while migrating (rare): out of line. */
static __attribute__((noinline)) bool
find_pos_new(struct ht *h, const char *key, size_t klen, uint64_t hash, struct pos *p)
{
    return table_find(h, 1, key, klen, hash, p);
}

static inline __attribute__((always_inline)) bool
find_pos(struct ht *h, const char *key, size_t klen, uint64_t hash, struct pos *p)
{
    if (table_find(h, 0, key, klen, hash, p)) {
        return true;
    }
    return h->migrating && find_pos_new(h, key, klen, hash, p);
}

/* Put ref in the first free slot of its probe sequence (the key is known
 * to be absent). The table has a free slot (load < 1). */
static void
table_put(struct ht_table *tb, uint32_t ref, uint64_t hash)
{
    size_t n = tb->ngroups;
    size_t g = home(hash, n);
    for (;;) {
        struct ht_group *gr = &tb->g[g];
        uint64_t f = frees(tags_load(gr));
        if (f) {
            unsigned i = first_slot(f);
            if (gr->tag[i] == TAG_DELETED) {
                tb->deleted--;
            }
            gr->tag[i] = tag_of(hash);
            gr->ref[i] = ref;
            tb->used++;
            return;
        }
        if (++g == n) {
            g = 0;
        }
    }
}

static void
slot_clear(struct ht *h, const struct pos *p)
{
    struct ht_table *tb = &h->t[p->t];
    struct ht_group *gr = &tb->g[p->g];
    if (empties(tags_load(gr))) {
        gr->tag[p->i] = TAG_EMPTY;
    } else {
        gr->tag[p->i] = TAG_DELETED;
        tb->deleted++;
    }
    tb->used--;
}

/* ---- resizing ---- */

static void
finish_migration(struct ht *h)
{
    table_free(h, &h->t[0]);
    h->t[0] = h->t[1];
    memset(&h->t[1], 0, sizeof(h->t[1]));
    h->migrating = false;
    h->mig_start = h->mig_done = 0;
}

static void
start_resize(struct ht *h, size_t ngroups)
{
    if (ngroups < MIN_GROUPS) {
        ngroups = MIN_GROUPS;
    }
    table_alloc(h, &h->t[1], ngroups);
    h->migrating = true;
    h->mig_done = 0;
    /* Start after a group with an EMPTY slot: max load < 1 keeps one. */
    const struct ht_table *o = &h->t[0];
    size_t g = 0;
    while (g < o->ngroups && !empties(tags_load(&o->g[g]))) {
        g++;
    }
    h->mig_start = g + 1 >= o->ngroups ? 0 : g + 1;
    if (o->used == 0) {
        finish_migration(h);
    }
}

/* Move the next group of t[0] into t[1]. */
static void
migrate_group(struct ht *h)
{
    struct ht_table *o = &h->t[0];
    size_t g = h->mig_start + h->mig_done;
    if (g >= o->ngroups) {
        g -= o->ngroups;
    }
    struct ht_group *gr = &o->g[g];
    uint64_t tags = tags_load(gr);
    /* The keys must be hashed again: fetch the items in parallel. */
    for (uint64_t m = occupied(tags); m; m &= m - 1) {
        __builtin_prefetch(AT(h, gr->ref[first_slot(m)]));
    }
    for (uint64_t m = occupied(tags); m; m &= m - 1) {
        unsigned i = first_slot(m);
        const struct item *it = AT(h, gr->ref[i]);
        table_put(&h->t[1], gr->ref[i], ht_hash(item_key(it), item_klen(it)));
        o->used--;
    }
    for (unsigned i = 0; i < HT_GROUP; i++) {
        if (gr->tag[i] == TAG_DELETED) {
            o->deleted--;
        }
    }
    memset(gr->tag, TAG_EMPTY, HT_GROUP);
    if (++h->mig_done == o->ngroups) {
        finish_migration(h);
    }
}

bool
ht_rehash(struct ht *h, size_t n)
{
    while (n-- && h->migrating) {
        migrate_group(h);
    }
    return h->migrating;
}

static void
step(struct ht *h)
{
    for (int i = 0; i < STEPS_PER_OP && h->migrating; i++) {
        migrate_group(h);
    }
}

/* Make room for one more item in the table inserts go to. */
static void
make_room(struct ht *h)
{
    if (h->migrating) {
        const struct ht_table *nt = &h->t[1];
        if (nt->used + nt->deleted < max_load(nt->ngroups)) {
            return;
        }
        /* The new table filled before the old one emptied (a shrink
         * followed by many inserts): finish now and resize again. */
        while (h->migrating) {
            migrate_group(h);
        }
    }
    struct ht_table *tb = &h->t[0];
    if (tb->ngroups == 0) {
        table_alloc(h, tb, MIN_GROUPS);
        return;
    }
    if (tb->used + tb->deleted < max_load(tb->ngroups)) {
        return;
    }
    size_t n = tb->ngroups;
    if (tb->used * 4 >= max_load(n) * 3) {
        n += n / 2 > 0 ? n / 2 : 1; /* mostly items: grow */
    }
    start_resize(h, n); /* else mostly tombstones: rebuild */
}

void
ht_reserve(struct ht *h, size_t n)
{
    if (ht_count(h) != 0 || h->migrating) {
        return;
    }
    size_t groups = (n + 6) / 7;
    if (groups < MIN_GROUPS) {
        groups = MIN_GROUPS;
    }
    if (groups <= h->t[0].ngroups) {
        return;
    }
    table_free(h, &h->t[0]);
    table_alloc(h, &h->t[0], groups);
}

void
ht_maybe_shrink(struct ht *h)
{
    const struct ht_table *tb = &h->t[0];
    if (h->migrating || tb->ngroups == 0) {
        return;
    }
    size_t slots = tb->ngroups * HT_GROUP;
    if (tb->ngroups > MIN_GROUPS && tb->used * 4 < slots) {
        size_t groups = (tb->used * 2 + HT_GROUP - 1) / HT_GROUP; /* load 1/2 */
        if (groups < tb->ngroups) {
            start_resize(h, groups);
        }
    } else if (tb->deleted * 8 >= slots) {
        start_resize(h, tb->ngroups);
    }
}

/* ---- public operations ---- */

void
ht_prefetch(const struct ht *h, uint64_t hash, int stage)
{
    for (int t = 0; t < (h->migrating ? 2 : 1); t++) {
        const struct ht_table *tb = &h->t[t];
        if (tb->ngroups == 0) {
            continue;
        }
        const struct ht_group *gr = &tb->g[probe_start(h, t, home(hash, tb->ngroups))];
        if (stage == 0) {
            __builtin_prefetch(gr);
            __builtin_prefetch((const char *)gr + sizeof(*gr) - 1);
        } else {
            uint64_t m = match(tags_load(gr), tag_of(hash));
            if (m) {
                __builtin_prefetch(AT(h, gr->ref[first_slot(m)]));
            }
        }
    }
}

/* table_find of t[0] when no migration is going on, returning the item
 * itself (probe_start is then the home group). */
static inline __attribute__((always_inline)) struct item *
find_item(struct ht *h, const char *key, size_t klen, uint64_t hash)
{
    struct pos p;
    if (!table_find(h, 0, key, klen, hash, &p)) {
        return NULL;
    }
    return AT(h, h->t[0].g[p.g].ref[p.i]);
}

/* ht_find while a migration is going on: it moves a group or two first
 * (which may end it), then probes both tables. */
static __attribute__((noinline)) struct item *
find_migrating(struct ht *h, const char *key, size_t klen, uint64_t hash)
{
    step(h);
    if (!h->migrating) {
        return find_item(h, key, klen, hash);
    }
    struct pos p;
    if (!find_pos(h, key, klen, hash, &p)) {
        return NULL;
    }
    return AT(h, h->t[p.t].g[p.g].ref[p.i]);
}

struct item *
ht_find(struct ht *h, const char *key, size_t klen, uint64_t hash)
{
    if (__builtin_expect(h->migrating, 0)) {
        return find_migrating(h, key, klen, hash);
    }
    return find_item(h, key, klen, hash); /* step() would do nothing */
}

void
ht_insert(struct ht *h, struct item *it, uint64_t hash)
{
    step(h);
    make_room(h);
    table_put(&h->t[h->migrating ? 1 : 0], item_ref(h->slab, it), hash);
}

struct item *
ht_replace(struct ht *h, struct item *nit, uint64_t hash)
{
    step(h);
    struct pos p;
    if (!find_pos(h, item_key(nit), item_klen(nit), hash, &p)) {
        make_room(h);
        table_put(&h->t[h->migrating ? 1 : 0], item_ref(h->slab, nit), hash);
        return NULL;
    }
    uint32_t *ref = &h->t[p.t].g[p.g].ref[p.i];
    struct item *old = AT(h, *ref);
    *ref = item_ref(h->slab, nit);
    return old;
}

struct item *
ht_remove(struct ht *h, const char *key, size_t klen, uint64_t hash)
{
    step(h);
    struct pos p;
    if (!find_pos(h, key, klen, hash, &p)) {
        return NULL;
    }
    struct item *it = AT(h, h->t[p.t].g[p.g].ref[p.i]);
    slot_clear(h, &p);
    return it;
}

/* table_find by reference: the tag narrows the slots, the ref decides. */
static bool
table_find_ref(struct ht *h, int t, uint32_t ref, uint64_t hash, struct pos *p)
{
    return table_probe(h, t, NULL, 0, ref, hash, p);
}

bool
ht_remove_ref(struct ht *h, uint32_t ref, uint64_t hash)
{
    step(h);
    struct pos p;
    if (!table_find_ref(h, 0, ref, hash, &p) &&
        !(h->migrating && table_find_ref(h, 1, ref, hash, &p))) {
        return false;
    }
    slot_clear(h, &p);
    return true;
}

/* ---- scan ---- */

/* The first hash whose home is group g (g < n). */
static uint64_t
group_start(size_t g, size_t n)
{
    return (uint64_t)((((unsigned __int128)g << 64) + n - 1) / n);
}

struct span {
    uint64_t lo, hi; /* hashes lo..hi-1, or lo..2^64-1 when to_end */
    bool to_end;
    ht_visit_fn fn;       /* one of these two */
    ht_visit_hash_fn hfn;
    void *ctx;
};

static void
visit_group(const struct ht *h, const struct ht_group *gr, const struct span *s)
{
    for (uint64_t m = occupied(tags_load(gr)); m; m &= m - 1) {
        struct item *it = AT(h, gr->ref[first_slot(m)]);
        uint64_t hash = ht_hash(item_key(it), item_klen(it));
        if (hash >= s->lo && (s->to_end || hash < s->hi)) {
            if (s->hfn) {
                s->hfn(it, hash, s->ctx);
            } else {
                s->fn(it, s->ctx);
            }
        }
    }
}

/* Visit groups from ga on: all of them up to `min` groups, then on until
 * one with an EMPTY slot; groups in the `done` groups from done_start were
 * visited already in this call and are skipped (walked through, not
 * visited again). Returns how many groups it walked. */
static size_t
walk(const struct ht *h, int t, size_t ga, size_t min, const struct span *s,
     size_t done_start, size_t done)
{
    const struct ht_table *tb = &h->t[t];
    size_t n = tb->ngroups, g = ga;
    for (size_t k = 0; k < n; k++) {
        const struct ht_group *gr = &tb->g[g];
        if ((g + n - done_start) % n >= done) {
            visit_group(h, gr, s);
        }
        if (k >= min && empties(tags_load(gr))) {
            return k + 1;
        }
        if (++g == n) {
            g = 0;
        }
    }
    return n;
}

static void
scan_table(const struct ht *h, int t, const struct span *s)
{
    const struct ht_table *tb = &h->t[t];
    if (tb->used == 0) {
        return;
    }
    size_t n = tb->ngroups;
    size_t ga = home(s->lo, n);
    size_t gb = s->to_end ? n - 1 : home(s->hi - 1, n);
    size_t len = gb - ga + 1;
    size_t walked = walk(h, t, ga, len - 1, s, 0, 0);
    if (t == 0 && h->migrating) {
        /* Items of t[0] whose home group was moved sit in the run that
         * starts at the first unmoved group. */
        size_t e = h->mig_start + h->mig_done;
        if (e >= n) {
            e -= n;
        }
        size_t s_ga = (h->mig_start + n - ga) % n;
        bool meets = s_ga < len || moved(h, ga);
        bool covered = (e + n - ga) % n < len;
        if (meets && !covered) {
            /* this run may overlap the groups just walked (past len, in
             * their overflow run): those are not visited twice */
            walk(h, t, e, 0, s, ga, walked);
        }
    }
}

/* One scan step: the interval from lo to the start of the next group of the
 * larger table, that end rounded up to a multiple of res + 1 (res = 2^k - 1)
 * so that a cursor of coarser resolution can name it. */
static void
scan_step(struct ht *h, struct span *s, uint64_t res)
{
    int big = h->migrating && h->t[1].ngroups > h->t[0].ngroups ? 1 : 0;
    size_t n = h->t[big].ngroups;
    size_t g = home(s->lo, n) + 1;
    uint64_t hi = g < n ? group_start(g, n) : 0;
    if (g >= n || hi > UINT64_MAX - res) {
        s->to_end = true;
    } else {
        s->hi = (hi + res) & ~res;
    }
    scan_table(h, 0, s);
    if (h->migrating) {
        scan_table(h, 1, s);
    }
}

size_t
ht_scan(struct ht *h, size_t cursor, ht_visit_fn fn, void *ctx)
{
    if (ht_count(h) == 0) {
        return 0;
    }
    struct span s = {.fn = fn, .ctx = ctx};
    s.lo = ((uint64_t)cursor & ((UINT64_C(1) << (64 - CURSOR_SHIFT)) - 1)) << CURSOR_SHIFT;
    /* The interval ends where the next group of the larger table starts. */
    scan_step(h, &s, (UINT64_C(1) << CURSOR_SHIFT) - 1);
    return s.to_end ? 0 : (size_t)(s.hi >> CURSOR_SHIFT);
}

uint64_t
ht_scan_at(struct ht *h, uint64_t pos, unsigned res_bits, ht_visit_hash_fn fn, void *ctx)
{
    if (ht_count(h) == 0) {
        return 0;
    }
    struct span s = {.hfn = fn, .ctx = ctx, .lo = pos};
    scan_step(h, &s, res_bits >= 64 ? UINT64_MAX : (UINT64_C(1) << res_bits) - 1);
    return s.to_end ? 0 : s.hi;
}

/* ---- random, clear ---- */

struct item *
ht_random(struct ht *h, uint64_t (*rnd)(void *), void *rctx)
{
    if (ht_count(h) == 0) {
        return NULL;
    }
    size_t s0 = h->t[0].ngroups * HT_GROUP;
    size_t total = s0 + (h->migrating ? h->t[1].ngroups * HT_GROUP : 0);
    /* Rejection sampling over all slots: uniform over the items. */
    for (int tries = 0;; tries++) {
        size_t r = (size_t)(rnd(rctx) % total);
        int t = r < s0 ? 0 : 1;
        size_t slot = t == 0 ? r : r - s0;
        const struct ht_group *gr = &h->t[t].g[slot / HT_GROUP];
        unsigned i = (unsigned)(slot % HT_GROUP);
        if (gr->tag[i] & 0x80u) {
            return AT(h, gr->ref[i]);
        }
        if (tries < 64) {
            continue;
        }
        /* Very sparse (or unlucky): the next occupied slot on. */
        for (size_t k = 0; k < total; k++) {
            size_t q = (r + k) % total;
            t = q < s0 ? 0 : 1;
            slot = t == 0 ? q : q - s0;
            gr = &h->t[t].g[slot / HT_GROUP];
            i = (unsigned)(slot % HT_GROUP);
            if (gr->tag[i] & 0x80u) {
                return AT(h, gr->ref[i]);
            }
        }
        return NULL; /* not reached: the count is not 0 */
    }
}

void
ht_clear(struct ht *h, void (*fn)(struct item *it, void *ctx), void *ctx)
{
    for (int t = 0; t < 2; t++) {
        const struct ht_table *tb = &h->t[t];
        for (size_t g = 0; g < tb->ngroups; g++) {
            const struct ht_group *gr = &tb->g[g];
            for (uint64_t m = occupied(tags_load(gr)); m; m &= m - 1) {
                fn(AT(h, gr->ref[first_slot(m)]), ctx);
            }
        }
    }
    ht_deinit(h);
}
