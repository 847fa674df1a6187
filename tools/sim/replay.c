/*
 * replay.c -- one replay of a decoded trace: through the evict module (the
 * very code the server runs), through an exact LRU of its own (the
 * reference the README's LRU figures come from), or through Belady's OPT.
 *
 * Replay model (traces README): every record is a GET; a hit is reported
 * with evict_on_access; a miss with evict_on_miss, then the key is inserted
 * (weight 1) and evict_one is called while more than `size` entries are
 * resident. All requests are counted, warm-up included. With `shards` > 1
 * in the params (--shards) the keys are split over that many policies of
 * size / shards entries each, as the server splits them over its shards.
 *
 * The key -> entry map is the dense id: key id i is the 4-byte entry i + 1
 * of an array that is the policy's base (entry 0 is unused, so no item has
 * ref 0), so its ref is i + 1. The entry's first byte is the item's meta
 * byte: the policy owns its low 5 bits, and the simulator keeps its own
 * "resident" flag in the top bit, as the store keeps its item flags there.
 */
#include "sim.h"

#include "util/mem.h"

#include <stdlib.h>
#include <string.h>

#define SIM_RESIDENT 0x80u
_Static_assert((SIM_RESIDENT & EVICT_META_MASK) == 0,
               "the resident flag is one of the owner's bits");

struct sim_entry {
    uint8_t meta;       /* policy bits + SIM_RESIDENT */
    uint8_t pad[3];
};
_Static_assert(sizeof(struct sim_entry) == EVICT_REF_UNIT,
               "an entry is one ref unit");

static uint64_t
sim_hash(evict_ref ref, void *ctx)
{
    const uint64_t *hashes = ctx;

    return hashes[ref - 1];
}

static uint64_t
sim_weight(evict_ref ref, void *ctx)
{
    (void)ref;
    (void)ctx;
    return 1;
}

/* The shard of a key when the replay splits the keys over n policies, as
 * the server does (it uses the key's cluster slot; any even split serves). */
static unsigned
shard_of(uint64_t hash, unsigned n)
{
    return (unsigned)((hash >> 32) % n);
}

int
replay_policy(const struct trace *t, const struct replay_config *cfg,
              struct replay_result *out)
{
    unsigned n = cfg->base->shards > 1 ? cfg->base->shards : 1;
    struct sim_entry *entries = xcalloc((size_t)t->nkeys + 1, sizeof(*entries));
    struct evict_ops ops = {sim_hash, sim_weight, NULL, (void *)t->hashes};
    struct evict_policy *policy = xcalloc(n, sizeof(*policy));
    uint64_t *resident = xcalloc(n, sizeof(*resident));
    uint64_t *cap = xcalloc(n, sizeof(*cap));
    struct evict_stats st;
    uint64_t hits = 0;
    unsigned ready = 0;
    int rc = 0;

    /* n policies of size / n entries each, or one of size */
    for (unsigned s = 0; s < n; s++) {
        struct evict_params params = *cfg->base;

        cap[s] = cfg->size / n + (s < cfg->size % n ? 1 : 0);
        if (cap[s] == 0) {
            cap[s] = 1;
        }
        params.kind = cfg->kind;
        params.capacity = cap[s];
        params.expected_entries = (size_t)cap[s];
        params.shards = n;
        params.seed ^= (uint64_t)s * 0x9e3779b97f4a7c15ull;
        params.base = (char *)entries;
        if (evict_init(&policy[s], &params, &ops) != 0) {
            rc = -1;
            goto out;
        }
        ready++;
    }
    for (size_t i = 0; i < t->nreq; i++) {
        uint32_t id = t->ids[i];
        evict_ref ref = id + 1;
        uint64_t h = t->hashes[id];
        unsigned s = n > 1 ? shard_of(h, n) : 0;
        struct evict_policy *p = &policy[s];

        if (entries[ref].meta & SIM_RESIDENT) {
            hits++;
            evict_on_access(p, ref, h);
            continue;
        }
        evict_on_miss(p, h);
        entries[ref].meta |= SIM_RESIDENT;
        evict_on_insert(p, ref, h, 1);
        resident[s]++;
        while (resident[s] > cap[s]) {
            evict_ref victim = evict_one(p);
            if (victim == 0) {
                break;
            }
            entries[victim].meta &= (uint8_t)~SIM_RESIDENT;
            resident[s]--;
        }
    }
    memset(out, 0, sizeof(*out));
    out->hits = hits;
    out->requests = t->nreq;
    for (unsigned s = 0; s < n; s++) {
        evict_stats(&policy[s], &st);
        out->window_ratio += st.window_ratio / n; /* the shards' mean */
        out->admissions += st.admissions;
        out->rejections += st.rejections;
    }
out:
    for (unsigned s = 0; s < ready; s++) {
        evict_deinit(&policy[s]);
    }
    free(cap);
    free(resident);
    free(policy);
    free(entries);
    return rc;
}

/* ---- exact LRU: a doubly linked list of key ids --------------------------- */

#define LRU_NONE UINT32_MAX

int
replay_lru_exact(const struct trace *t, uint64_t size,
                 struct replay_result *out)
{
    /* prev/next per id; the head is the MRU end. */
    uint32_t *prev = xmalloc((size_t)t->nkeys * sizeof(uint32_t));
    uint32_t *next = xmalloc((size_t)t->nkeys * sizeof(uint32_t));
    uint8_t *in = xcalloc((size_t)t->nkeys, 1);
    uint32_t head = LRU_NONE;
    uint32_t tail = LRU_NONE;
    uint64_t n = 0;
    uint64_t hits = 0;

    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < t->nreq; i++) {
        uint32_t id = t->ids[i];

        if (in[id]) {
            hits++;
            if (head == id) {
                continue;
            }
            /* unlink (not the head, so prev exists) */
            next[prev[id]] = next[id];
            if (next[id] != LRU_NONE) {
                prev[next[id]] = prev[id];
            } else {
                tail = prev[id];
            }
        } else {
            in[id] = 1;
            n++;
        }
        prev[id] = LRU_NONE;
        next[id] = head;
        if (head != LRU_NONE) {
            prev[head] = id;
        } else {
            tail = id;
        }
        head = id;
        if (n > size) {
            uint32_t victim = tail;
            tail = prev[victim];
            if (tail != LRU_NONE) {
                next[tail] = LRU_NONE;
            } else {
                head = LRU_NONE;
            }
            in[victim] = 0;
            n--;
        }
    }
    out->hits = hits;
    out->requests = t->nreq;
    free(prev);
    free(next);
    free(in);
    return 0;
}

/* ---- OPT: a max-heap of resident keys by next use, indexed by key id ----- */

struct opt_heap {
    uint32_t *key;      /* heap of ids */
    uint32_t *pos;      /* per id: position in the heap, UINT32_MAX if out */
    uint32_t *prio;     /* per id: its next use, the heap order */
    size_t n;
};

static void
heap_swap(struct opt_heap *h, size_t a, size_t b)
{
    uint32_t ka = h->key[a];
    uint32_t kb = h->key[b];

    h->key[a] = kb;
    h->key[b] = ka;
    h->pos[kb] = (uint32_t)a;
    h->pos[ka] = (uint32_t)b;
}

static void
heap_up(struct opt_heap *h, size_t i)
{
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (h->prio[h->key[parent]] >= h->prio[h->key[i]]) {
            break;
        }
        heap_swap(h, i, parent);
        i = parent;
    }
}

static void
heap_down(struct opt_heap *h, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1;
        size_t r = l + 1;
        size_t big = i;
        if (l < h->n && h->prio[h->key[l]] > h->prio[h->key[big]]) {
            big = l;
        }
        if (r < h->n && h->prio[h->key[r]] > h->prio[h->key[big]]) {
            big = r;
        }
        if (big == i) {
            return;
        }
        heap_swap(h, i, big);
        i = big;
    }
}

int
replay_opt(const struct trace *t, uint64_t size, struct replay_result *out)
{
    struct opt_heap h;
    uint64_t hits = 0;

    memset(out, 0, sizeof(*out));
    h.key = xmalloc((size + 1) * sizeof(uint32_t));
    h.pos = xmalloc((size_t)t->nkeys * sizeof(uint32_t));
    h.prio = xmalloc((size_t)t->nkeys * sizeof(uint32_t));
    h.n = 0;
    memset(h.pos, 0xff, (size_t)t->nkeys * sizeof(uint32_t));
    for (size_t i = 0; i < t->nreq; i++) {
        uint32_t id = t->ids[i];
        uint32_t next = t->next_use[i];

        if (h.pos[id] != UINT32_MAX) {
            hits++;
            h.prio[id] = next; /* later than before: moves up */
            heap_up(&h, h.pos[id]);
            continue;
        }
        if (next == UINT32_MAX) {
            continue; /* never used again: bypass */
        }
        if (h.n == size) {
            uint32_t top = h.key[0];
            if (h.prio[top] <= next) {
                continue; /* the incoming key is the farthest: bypass */
            }
            h.pos[top] = UINT32_MAX;
            if (--h.n > 0) {
                h.key[0] = h.key[h.n];
                h.pos[h.key[0]] = 0;
                heap_down(&h, 0);
            }
        }
        h.prio[id] = next;
        h.key[h.n] = id;
        h.pos[id] = (uint32_t)h.n;
        heap_up(&h, h.n++);
    }
    out->hits = hits;
    out->requests = t->nreq;
    free(h.key);
    free(h.pos);
    free(h.prio);
    return 0;
}
