/*
 * load.c -- see load.h.
 *
 * The bulk loader: the feeding thread copies each record into a batch for
 * the applier that owns its shard (shard index mod appliers); a full batch
 * goes on that applier's queue. An applier prefetches each key's index
 * group 32 records ahead and its first item 16 ahead, so the memory misses
 * of consecutive records overlap, and applies them in order under the
 * shard's lock. FLUSHALL is a barrier: every queue is drained first.
 */
#include "persist/load.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "persist/mstream.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/mem.h"

enum { OP_SET = 1, OP_DEL, OP_EXPIRE };

#define BATCH 512
#define MAX_QUEUED 16 /* batches per applier before the feeder waits */

struct batch_rec {
    uint8_t op;
    uint32_t shard;
    uint32_t klen, vlen;
    int64_t expire;
    size_t off; /* of the key in data, the value right after it */
};

struct batch {
    struct batch *next;
    unsigned n;
    struct batch_rec r[BATCH];
    struct buf data;
};

struct applier {
    struct loader *l;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;      /* work arrived, or stop */
    pthread_cond_t idle_cv; /* queue drained */
    struct batch *head, *tail;
    unsigned queued;
    bool busy, stop;
    struct batch *cur;      /* being filled by the feeder */
};

struct loader {
    struct store *st;
    struct applier *a;
    unsigned n;
};

static void
batch_free(struct batch *b)
{
    buf_deinit(&b->data);
    free(b);
}

/* Apply r (key at key, its value right after it); with a stream, publish
 * rec to it before the shard lock goes. */
static int64_t
apply_op(struct store *st, const struct batch_rec *r, const char *key, struct mstream *s,
         const struct wal_rec *rec)
{
    int64_t published = 0;
    struct shard *sh = shard_lock(st, r->shard);
    switch (r->op) {
    case OP_SET: {
        struct item *it = shard_new_item(sh, key, r->klen, r->vlen, r->expire);
        memcpy(item_val(it), key + r->klen, r->vlen);
        shard_put(sh, it);
        break;
    }
    case OP_DEL:
        /* now = 0: nothing counts as expired while loading */
        shard_delete(sh, key, r->klen, 0);
        break;
    case OP_EXPIRE: {
        struct item *cur = shard_find(sh, key, r->klen, 0);
        if (cur) {
            shard_set_expire(sh, cur, r->expire);
        }
        break;
    }
    default:
        break;
    }
    if (s != NULL && mstream_wants(s, MSTREAM_MOVED)) {
        struct mstream_rec m = {.rec = *rec, .cause = MSTREAM_MOVED};
        published = mstream_publish(s, &m, 1);
    }
    shard_unlock(sh);
    return published;
}

/* The batch record of rec (its op, shard, lengths), or false for a type
 * that is not applied key by key (FLUSHALL, unknown). A SET first makes
 * room: loaded data obeys max_memory too. */
static bool
to_op(struct store *st, const struct wal_rec *rec, struct batch_rec *r)
{
    uint8_t op;
    switch (rec->type) {
    case WAL_REC_SET:
        op = OP_SET;
        store_make_room(st);
        break;
    case WAL_REC_DEL:
        op = OP_DEL;
        break;
    case WAL_REC_EXPIRE:
        op = OP_EXPIRE;
        break;
    default:
        return false;
    }
    size_t vlen = op == OP_SET ? rec->vlen : 0;
    *r = (struct batch_rec){op, store_shard_of(st, rec->key, rec->klen), (uint32_t)rec->klen,
                            (uint32_t)vlen, rec->expire_at_ms, 0};
    return true;
}

static int64_t
apply_one(struct store *st, const struct wal_rec *rec, struct mstream *s)
{
    struct batch_rec r;
    if (!to_op(st, rec, &r)) {
        return 0;
    }
    const char *key = rec->key;
    if (r.vlen == 0 || (const char *)rec->val == key + rec->klen) {
        return apply_op(st, &r, key, s, rec);
    }
    /* apply_op takes the value right after the key */
    char *kv = xmalloc(rec->klen + r.vlen);
    memcpy(kv, rec->key, rec->klen);
    memcpy(kv + rec->klen, rec->val, r.vlen);
    int64_t published = apply_op(st, &r, kv, s, rec);
    free(kv);
    return published;
}

void
load_apply(struct store *st, const struct wal_rec *rec)
{
    if (rec->type == WAL_REC_FLUSHALL) {
        store_flush(st);
        return;
    }
    apply_one(st, rec, NULL);
}

int64_t
load_apply_publish(struct store *st, struct mstream *s, const struct wal_rec *rec)
{
    return rec->type != WAL_REC_FLUSHALL ? apply_one(st, rec, s) : 0;
}

static void *
applier_main(void *arg)
{
    struct applier *a = arg;
    struct store *st = a->l->st;
    pthread_mutex_lock(&a->mu);
    for (;;) {
        while (a->head == NULL && !a->stop) {
            pthread_cond_wait(&a->cv, &a->mu);
        }
        if (a->head == NULL) {
            break;
        }
        struct batch *b = a->head;
        a->head = b->next;
        if (a->head == NULL) {
            a->tail = NULL;
        }
        a->queued--;
        a->busy = true;
        pthread_cond_broadcast(&a->idle_cv);
        pthread_mutex_unlock(&a->mu);
        uint64_t hash[BATCH];
        const char *data = b->data.data;
        for (unsigned i = 0; i < b->n; i++) {
            hash[i] = ht_hash(data + b->r[i].off, b->r[i].klen);
        }
        for (unsigned i = 0; i < b->n; i++) {
            if (i + 32 < b->n) {
                store_prefetch(st, b->r[i + 32].shard, hash[i + 32], 0);
            }
            if (i + 16 < b->n) {
                store_prefetch(st, b->r[i + 16].shard, hash[i + 16], 1);
            }
            apply_op(st, &b->r[i], data + b->r[i].off, NULL, NULL);
        }
        batch_free(b);
        pthread_mutex_lock(&a->mu);
        a->busy = false;
        pthread_cond_broadcast(&a->idle_cv);
    }
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

static void
push_batch(struct applier *a)
{
    struct batch *b = a->cur;
    a->cur = NULL;
    if (b == NULL || b->n == 0) {
        if (b) {
            batch_free(b);
        }
        return;
    }
    pthread_mutex_lock(&a->mu);
    while (a->queued >= MAX_QUEUED) {
        pthread_cond_wait(&a->idle_cv, &a->mu);
    }
    b->next = NULL;
    if (a->tail) {
        a->tail->next = b;
    } else {
        a->head = b;
    }
    a->tail = b;
    a->queued++;
    pthread_cond_signal(&a->cv);
    pthread_mutex_unlock(&a->mu);
}

void
loader_drain(struct loader *l)
{
    for (unsigned i = 0; i < l->n; i++) {
        push_batch(&l->a[i]);
    }
    for (unsigned i = 0; i < l->n; i++) {
        struct applier *a = &l->a[i];
        pthread_mutex_lock(&a->mu);
        while (a->head != NULL || a->busy) {
            pthread_cond_wait(&a->idle_cv, &a->mu);
        }
        pthread_mutex_unlock(&a->mu);
    }
}

unsigned
loader_default_threads(void)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    return cpus > 1 ? (unsigned)(cpus > 8 ? 8 : cpus) : 0;
}

struct loader *
loader_create(struct store *st, unsigned threads)
{
    struct loader *l = xcalloc(1, sizeof(*l));
    l->st = st;
    l->n = threads;
    if (threads == 0) {
        return l;
    }
    l->a = xcalloc(threads, sizeof(*l->a));
    for (unsigned i = 0; i < threads; i++) {
        struct applier *a = &l->a[i];
        a->l = l;
        pthread_mutex_init(&a->mu, NULL);
        pthread_cond_init(&a->cv, NULL);
        pthread_cond_init(&a->idle_cv, NULL);
        if (pthread_create(&a->thread, NULL, applier_main, a) != 0) {
            abort();
        }
    }
    return l;
}

void
loader_add(struct loader *l, const struct wal_rec *rec)
{
    if (l->n == 0) {
        load_apply(l->st, rec);
        return;
    }
    if (rec->type == WAL_REC_FLUSHALL) {
        loader_drain(l);
        store_flush(l->st);
        return;
    }
    struct batch_rec r;
    if (!to_op(l->st, rec, &r)) {
        return;
    }
    struct applier *a = &l->a[r.shard % l->n];
    if (a->cur == NULL) {
        a->cur = xmalloc(sizeof(*a->cur));
        a->cur->n = 0;
        buf_init(&a->cur->data);
    }
    struct batch *b = a->cur;
    r.off = b->data.len;
    buf_append(&b->data, rec->key, rec->klen);
    buf_append(&b->data, rec->val, r.vlen);
    b->r[b->n] = r;
    if (++b->n == BATCH) {
        push_batch(a);
    }
}

void
loader_destroy(struct loader **pl)
{
    struct loader *l = *pl;
    if (l == NULL) {
        return;
    }
    if (l->n > 0) {
        loader_drain(l);
    }
    for (unsigned i = 0; i < l->n; i++) {
        struct applier *a = &l->a[i];
        pthread_mutex_lock(&a->mu);
        a->stop = true;
        pthread_cond_signal(&a->cv);
        pthread_mutex_unlock(&a->mu);
        pthread_join(a->thread, NULL);
        pthread_mutex_destroy(&a->mu);
        pthread_cond_destroy(&a->cv);
        pthread_cond_destroy(&a->idle_cv);
    }
    free(l->a);
    free(l);
    *pl = NULL;
}
