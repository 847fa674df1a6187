/*
 * ratelimit.c -- sharded table of per-address token buckets.
 *
 * Buckets hold a fractional token count and the time of their last refill;
 * a take refills by elapsed time x rate (capped at burst) and then takes a
 * whole token if there is one. Time is monotonic microseconds. The rate and
 * burst are read on every take, so CONFIG SET applies at once.
 *
 * An address's entry is found by hashing its 16-byte key (XXH3): the low 6
 * bits pick the shard, the rest the chain. Shards grow by doubling when the
 * chains average more than two entries. Unreferenced entries are counted
 * per shard (`idle`); past the per-shard cap, release evicts unreferenced
 * entries in table order until a quarter of the room is free again, so a
 * flood of one-shot addresses cannot grow the table without bound.
 */
#include "net/ratelimit.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "util/mem.h"

#define SHARD_IDLE_CAP (RATELIMIT_MAX_IDLE / RATELIMIT_SHARDS)

struct ratelimit_entry {
    struct ratelimit_entry *next; /* hash chain */
    uint8_t key[16];
    unsigned shard;
    unsigned refs;
    double tokens;
    int64_t last_us;
};

struct shard {
    pthread_mutex_t lock;
    struct ratelimit_entry **tab;
    size_t size;  /* power of two, 0 before the first entry */
    size_t count; /* entries */
    size_t idle;  /* entries with refs == 0 */
    size_t sweep_pos; /* where the next cap eviction scan starts */
} __attribute__((aligned(64)));

static struct {
    struct shard shards[RATELIMIT_SHARDS];
    _Atomic bool enabled;
    _Atomic double rate;
    _Atomic double burst;
    _Atomic size_t total;
} RL = {
    .rate = 1000.0,
    .burst = 100.0,
};

static pthread_once_t rl_once = PTHREAD_ONCE_INIT;

static void
rl_init(void)
{
    for (unsigned i = 0; i < RATELIMIT_SHARDS; i++) {
        pthread_mutex_init(&RL.shards[i].lock, NULL);
    }
}

void
ratelimit_configure(bool enabled, double rate, double burst)
{
    pthread_once(&rl_once, rl_init);
    atomic_store(&RL.rate, rate > 0 ? rate : 1.0);
    atomic_store(&RL.burst, burst >= 1 ? burst : 1.0);
    atomic_store(&RL.enabled, enabled);
}

bool
ratelimit_enabled(void)
{
    return atomic_load_explicit(&RL.enabled, memory_order_relaxed);
}

static void
refill(struct ratelimit_entry *e, int64_t now_us, double rate, double burst)
{
    if (now_us > e->last_us) {
        e->tokens += (double)(now_us - e->last_us) * rate / 1e6;
        e->last_us = now_us;
    }
    if (e->tokens > burst) {
        e->tokens = burst;
    }
}

static void
grow(struct shard *s)
{
    size_t nsize = s->size ? s->size * 2 : 16;
    struct ratelimit_entry **nt = xcalloc(nsize, sizeof(*nt));
    for (size_t i = 0; i < s->size; i++) {
        struct ratelimit_entry *e = s->tab[i];
        while (e) {
            struct ratelimit_entry *next = e->next;
            size_t b = (size_t)(XXH3_64bits(e->key, 16) >> 6) & (nsize - 1);
            e->next = nt[b];
            nt[b] = e;
            e = next;
        }
    }
    free(s->tab);
    s->tab = nt;
    s->size = nsize;
}

/* Unlink and free every unreferenced entry for which `drop` holds, scanning
 * from the shard's sweep position, until `want` were freed. Lock held. */
static size_t
evict(struct shard *s, size_t want, int64_t now_us, bool only_full)
{
    size_t freed = 0;
    double rate = atomic_load(&RL.rate), burst = atomic_load(&RL.burst);
    for (size_t n = 0; n < s->size && freed < want; n++) {
        size_t b = (s->sweep_pos + n) & (s->size - 1);
        struct ratelimit_entry **pp = &s->tab[b];
        while (*pp && freed < want) {
            struct ratelimit_entry *e = *pp;
            bool drop = e->refs == 0;
            if (drop && only_full) {
                refill(e, now_us, rate, burst);
                drop = e->tokens >= burst;
            }
            if (drop) {
                *pp = e->next;
                free(e);
                s->count--;
                s->idle--;
                freed++;
                atomic_fetch_sub(&RL.total, 1);
            } else {
                pp = &e->next;
            }
        }
        if (freed >= want) {
            s->sweep_pos = b + 1;
        }
    }
    return freed;
}

struct ratelimit_entry *
ratelimit_acquire(const uint8_t key[16])
{
    pthread_once(&rl_once, rl_init);
    uint64_t h = XXH3_64bits(key, 16);
    unsigned si = (unsigned)(h & (RATELIMIT_SHARDS - 1));
    struct shard *s = &RL.shards[si];
    pthread_mutex_lock(&s->lock);
    struct ratelimit_entry *e = NULL;
    if (s->size) {
        for (e = s->tab[(size_t)(h >> 6) & (s->size - 1)]; e; e = e->next) {
            if (memcmp(e->key, key, 16) == 0) {
                break;
            }
        }
    }
    if (e == NULL) {
        if (s->count >= s->size * 2) {
            grow(s);
        }
        e = xcalloc(1, sizeof(*e));
        memcpy(e->key, key, 16);
        e->shard = si;
        e->tokens = atomic_load(&RL.burst);
        e->last_us = 0; /* refilled to full on first take anyway */
        size_t b = (size_t)(h >> 6) & (s->size - 1);
        e->next = s->tab[b];
        s->tab[b] = e;
        s->count++;
        atomic_fetch_add(&RL.total, 1);
    } else if (e->refs == 0) {
        s->idle--;
    }
    e->refs++;
    pthread_mutex_unlock(&s->lock);
    return e;
}

void
ratelimit_release(struct ratelimit_entry *e)
{
    if (e == NULL) {
        return;
    }
    struct shard *s = &RL.shards[e->shard];
    pthread_mutex_lock(&s->lock);
    if (--e->refs == 0) {
        s->idle++;
        if (s->idle > SHARD_IDLE_CAP) {
            /* e itself may go: the caller no longer holds it */
            evict(s, SHARD_IDLE_CAP / 4, 0, false);
        }
    }
    pthread_mutex_unlock(&s->lock);
}

bool
ratelimit_take(struct ratelimit_entry *e, int64_t now_us)
{
    double rate = atomic_load_explicit(&RL.rate, memory_order_relaxed);
    double burst = atomic_load_explicit(&RL.burst, memory_order_relaxed);
    struct shard *s = &RL.shards[e->shard];
    pthread_mutex_lock(&s->lock);
    if (e->last_us == 0) {
        e->last_us = now_us;
    }
    refill(e, now_us, rate, burst);
    bool ok = e->tokens >= 1.0;
    if (ok) {
        e->tokens -= 1.0;
    }
    pthread_mutex_unlock(&s->lock);
    return ok;
}

size_t
ratelimit_sweep(unsigned part, unsigned nparts, int64_t now_us)
{
    pthread_once(&rl_once, rl_init);
    size_t freed = 0;
    if (nparts == 0) {
        nparts = 1;
    }
    for (unsigned i = part; i < RATELIMIT_SHARDS; i += nparts) {
        struct shard *s = &RL.shards[i];
        pthread_mutex_lock(&s->lock);
        if (s->idle > 0) {
            freed += evict(s, s->idle, now_us, true);
        }
        pthread_mutex_unlock(&s->lock);
    }
    return freed;
}

size_t
ratelimit_entries(void)
{
    return atomic_load(&RL.total);
}

void
ratelimit_clear(void)
{
    pthread_once(&rl_once, rl_init);
    for (unsigned i = 0; i < RATELIMIT_SHARDS; i++) {
        struct shard *s = &RL.shards[i];
        pthread_mutex_lock(&s->lock);
        if (s->idle > 0) {
            evict(s, s->idle, 0, false);
        }
        if (s->count == 0) {
            free(s->tab);
            s->tab = NULL;
            s->size = 0;
            s->sweep_pos = 0;
        }
        pthread_mutex_unlock(&s->lock);
    }
}
