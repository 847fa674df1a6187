/*
 * mstream.c -- see mstream.h.
 *
 * The table of consumers and the summary mask `accept` change only with
 * every shard lock of the store held, and every publisher holds one, so a
 * publisher reads them without a lock and sees the same table for the whole
 * of its mutation. The stream's mutex orders the numbering and the calls
 * when a consumer needs the order; otherwise the offset is an atomic
 * counter.
 */
#include "persist/mstream.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store/slot.h"
#include "store/store.h"
#include "util/log.h"
#include "util/mem.h"

/* The store removed an item on its own: report it as a DEL. */
static void
report_removed(struct mstream *s, const struct item *it, unsigned cause)
{
    if (!mstream_wants(s, cause)) {
        return;
    }
    struct mstream_rec m = {
        .rec = {.type = WAL_REC_DEL, .key = item_key(it), .klen = item_klen(it)},
        .cause = (uint8_t)cause,
    };
    /* Nobody waits for it: a consumer's error shows on the next command. */
    (void)mstream_publish(s, &m, 1);
}

static void
on_evict(void *ctx, const struct item *it)
{
    report_removed(ctx, it, MSTREAM_EVICTED);
}

static void
on_expire(void *ctx, const struct item *it)
{
    report_removed(ctx, it, MSTREAM_EXPIRED);
}

void
mstream_init(struct mstream *s, struct store *st)
{
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->lock, NULL);
    s->store = st;
    s->next_id = 1;
    if (st) {
        st->on_remove_ctx = s;
        st->on_evict = on_evict;
        st->on_expire = on_expire;
    }
}

void
mstream_deinit(struct mstream *s)
{
    if (s->store) {
        s->store->on_evict = NULL;
        s->store->on_expire = NULL;
        s->store->on_remove_ctx = NULL;
    }
    free(s->cons);
    pthread_mutex_destroy(&s->lock);
    memset(s, 0, sizeof(*s));
}

int64_t
mstream_publish(struct mstream *s, struct mstream_rec *recs, size_t n)
{
    unsigned cause = recs[0].cause;
    /* the slot (a CRC16) is computed before any lock is taken */
    for (size_t i = 0; i < n; i++) {
        const struct wal_rec *r = &recs[i].rec;
        recs[i].slot = !s->slots || r->type == WAL_REC_FLUSHALL
                           ? (uint16_t)MSTREAM_NO_SLOT
                           : (uint16_t)slot_of((const char *)r->key, r->klen);
    }
    bool ordered = s->ordered;
    if (ordered) {
        pthread_mutex_lock(&s->lock);
    }
    /* the caller saw a consumer take this cause, under the shard lock that
     * keeps the table as it is: the records are delivered */
    uint64_t first = atomic_fetch_add_explicit(&s->offset, n, memory_order_relaxed) + 1;
    for (size_t i = 0; i < n; i++) {
        recs[i].offset = first + i;
    }
    int64_t res = 0;
    for (unsigned c = 0; c < s->n; c++) {
        const struct mstream_consumer *con = &s->cons[c].c;
        if (!(con->accept & cause)) {
            continue;
        }
        int64_t r = con->fn(con->ctx, recs, n);
        if (r < 0) {
            if (res >= 0) {
                res = r;
            }
        } else if (res >= 0 && r > res) {
            res = r;
        }
    }
    if (ordered) {
        pthread_mutex_unlock(&s->lock);
    }
    return res;
}

/* Every shard lock (when the stream belongs to a store), then the stream's:
 * the order publishers take them in. */
static void
lock_world(struct mstream *s)
{
    if (s->store) {
        store_lock_all(s->store);
    }
    pthread_mutex_lock(&s->lock);
}

static void
unlock_world(struct mstream *s)
{
    pthread_mutex_unlock(&s->lock);
    if (s->store) {
        store_unlock_all(s->store);
    }
}

static void
resum(struct mstream *s)
{
    unsigned acc = 0;
    bool ordered = false, slots = false;
    for (unsigned c = 0; c < s->n; c++) {
        acc |= s->cons[c].c.accept;
        ordered |= !(s->cons[c].c.flags & MSTREAM_UNORDERED);
        slots |= !(s->cons[c].c.flags & MSTREAM_NO_SLOTS);
    }
    s->ordered = ordered;
    s->slots = slots;
    atomic_store_explicit(&s->accept, acc, memory_order_relaxed);
}

int
mstream_register(struct mstream *s, const struct mstream_consumer *c, uint64_t *start)
{
    if (c->fn == NULL || (c->accept & MSTREAM_ALL) == 0) {
        return -EINVAL;
    }
    lock_world(s);
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 4;
        s->cons = xrealloc(s->cons, s->cap * sizeof(*s->cons));
    }
    int id = s->next_id++;
    s->cons[s->n].c = *c;
    s->cons[s->n].c.accept &= MSTREAM_ALL;
    s->cons[s->n].id = id;
    s->n++;
    resum(s);
    uint64_t off = atomic_load(&s->offset);
    if (start) {
        *start = off;
    }
    unlock_world(s);
    log_info("stream consumer registered", "\"name\":\"%s\",\"id\":%d,\"accept\":%u,\"offset\":%llu",
             c->name ? c->name : "", id, c->accept & MSTREAM_ALL, (unsigned long long)off);
    return id;
}

int
mstream_unregister(struct mstream *s, int id)
{
    lock_world(s);
    unsigned c = 0;
    while (c < s->n && s->cons[c].id != id) {
        c++;
    }
    if (c == s->n) {
        unlock_world(s);
        return -ENOENT;
    }
    memmove(&s->cons[c], &s->cons[c + 1], (s->n - c - 1) * sizeof(*s->cons));
    s->n--;
    resum(s);
    uint64_t off = atomic_load(&s->offset);
    unlock_world(s);
    log_info("stream consumer unregistered", "\"id\":%d,\"offset\":%llu", id,
             (unsigned long long)off);
    return 0;
}

void
mstream_stats(struct mstream *s, struct mstream_stats *out)
{
    out->offset = atomic_load(&s->offset);
    out->consumers = __atomic_load_n(&s->n, __ATOMIC_RELAXED); /* a figure, not a guard */
}
