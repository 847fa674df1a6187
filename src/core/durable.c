/*
 * durable.c -- see durable.h.
 *
 * Recovery applies records straight into the shards (one thread, before any
 * worker starts). Snapshots iterate the store one hash bucket at a time: the
 * bucket's items are copied out under the shard lock, then written to the
 * snapshot with no lock held, so clients never wait for snapshot I/O. The
 * snapshot is fuzzy; it records the LSN taken before iteration began, and
 * recovery replays every record after it. Records are state-based and
 * idempotent, so a key changed during the iteration ends with its last
 * logged state either way.
 *
 * Evicted keys are logged as deletions (from the store's eviction hook), so
 * a restart does not bring back what memory pressure threw out; expired
 * keys need no record (replay drops records whose time has passed).
 */
#include "core/durable.h"

#include <errno.h>
#include <pthread.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/config.h"
#include "core/server.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/mem.h"

static struct {
    struct persist *p;
    struct wal *wal;
    bool sync;
    durable_wake_fn wake;
} D;

bool durable__on;

bool
durable_sync(void)
{
    return D.sync;
}

uint64_t
durable_lsn(void)
{
    return D.wal ? wal_durable_lsn(D.wal) : 0;
}

int
durable_error(char *msg, size_t len)
{
    return D.wal ? wal_error(D.wal, msg, len) : 0;
}

int64_t
durable_log(const struct wal_rec *recs, size_t n)
{
    if (D.wal == NULL) {
        return 0;
    }
    return n == 1 ? wal_append(D.wal, recs) : wal_append_group(D.wal, recs, n);
}

/* ---- recovery --------------------------------------------------------- */

/*
 * Recovery reads the snapshot and the log on one thread, in order. Applying a
 * record is mostly waiting for memory (the hash-table lookup that replaces an
 * older value), so the records are handed to APPLIERS, one thread per core:
 * the reader copies each record into a batch for the applier that owns its
 * shard (shard index mod appliers), which builds the item in the shard's
 * memory under its lock and keeps every key's records in log order.
 * FLUSHALL is a barrier: every queue is drained first.
 */

enum { OP_SET = 1, OP_DEL, OP_EXPIRE };

#define BATCH 512
#define MAX_QUEUED 16 /* batches per applier before the reader waits */

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

static void
batch_free(struct batch *b)
{
    buf_deinit(&b->data);
    free(b);
}

struct applier {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;      /* work arrived, or stop */
    pthread_cond_t idle_cv; /* queue drained */
    struct batch *head, *tail;
    unsigned queued;
    bool busy, stop;
    struct batch *cur;      /* being filled by the reader */
};

static struct {
    struct applier *a;
    unsigned n;
} R;

static void
apply_op(const struct batch_rec *r, const char *key)
{
    struct store *st = server.store;
    struct shard *sh = shard_lock(st, r->shard);
    switch (r->op) {
    case OP_SET: {
        struct item *it = shard_new_item(sh, key, r->klen, r->vlen, r->expire);
        memcpy(item_val(it), key + r->klen, r->vlen);
        shard_put(sh, it);
        break;
    }
    case OP_DEL:
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
    shard_unlock(sh);
}

static void *
applier_main(void *arg)
{
    struct applier *a = arg;
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
        /* The lookups wait on memory: prefetch each key's bucket 32
         * records ahead and its first item 16 ahead, so the misses overlap. */
        uint64_t hash[BATCH];
        struct store *st = server.store;
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
            apply_op(&b->r[i], data + b->r[i].off);
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

/* Push every partial batch and wait until every applier is idle. */
static void
drain_all(void)
{
    for (unsigned i = 0; i < R.n; i++) {
        push_batch(&R.a[i]);
    }
    for (unsigned i = 0; i < R.n; i++) {
        struct applier *a = &R.a[i];
        pthread_mutex_lock(&a->mu);
        while (a->head != NULL || a->busy) {
            pthread_cond_wait(&a->idle_cv, &a->mu);
        }
        pthread_mutex_unlock(&a->mu);
    }
}

static void
appliers_start(void)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    R.n = cpus > 1 ? (unsigned)(cpus > 8 ? 8 : cpus) : 0;
    if (R.n == 0) {
        return;
    }
    R.a = xcalloc(R.n, sizeof(*R.a));
    for (unsigned i = 0; i < R.n; i++) {
        struct applier *a = &R.a[i];
        pthread_mutex_init(&a->mu, NULL);
        pthread_cond_init(&a->cv, NULL);
        pthread_cond_init(&a->idle_cv, NULL);
        if (pthread_create(&a->thread, NULL, applier_main, a) != 0) {
            abort();
        }
    }
}

static void
appliers_stop(void)
{
    if (R.n == 0) {
        return;
    }
    drain_all();
    for (unsigned i = 0; i < R.n; i++) {
        struct applier *a = &R.a[i];
        pthread_mutex_lock(&a->mu);
        a->stop = true;
        pthread_cond_signal(&a->cv);
        pthread_mutex_unlock(&a->mu);
        pthread_join(a->thread, NULL);
        pthread_mutex_destroy(&a->mu);
        pthread_cond_destroy(&a->cv);
        pthread_cond_destroy(&a->idle_cv);
    }
    free(R.a);
    R.a = NULL;
    R.n = 0;
}

static int
apply(void *ctx, const struct wal_rec *rec)
{
    (void)ctx;
    struct store *st = server.store;
    uint8_t op;
    switch (rec->type) {
    case WAL_REC_FLUSHALL:
        drain_all();
        store_flush(st);
        return 0;
    case WAL_REC_SET:
        op = OP_SET;
        store_make_room(st); /* recovered data obeys max_memory too */
        break;
    case WAL_REC_DEL:
        op = OP_DEL;
        break;
    case WAL_REC_EXPIRE:
        op = OP_EXPIRE;
        break;
    default:
        return 0;
    }
    size_t vlen = op == OP_SET ? rec->vlen : 0;
    struct batch_rec r = {op, store_shard_of(st, rec->key, rec->klen), (uint32_t)rec->klen,
                          (uint32_t)vlen, rec->expire_at_ms, 0};
    if (R.n == 0) {
        const char *key = rec->key;
        if (vlen == 0 || (const char *)rec->val == key + rec->klen) {
            apply_op(&r, key);
        } else {
            char *kv = xmalloc(rec->klen + vlen);
            memcpy(kv, rec->key, rec->klen);
            memcpy(kv + rec->klen, rec->val, vlen);
            apply_op(&r, kv);
            free(kv);
        }
        return 0;
    }
    struct applier *a = &R.a[r.shard % R.n];
    if (a->cur == NULL) {
        a->cur = xmalloc(sizeof(*a->cur));
        a->cur->n = 0;
        buf_init(&a->cur->data);
    }
    struct batch *b = a->cur;
    r.off = b->data.len;
    buf_append(&b->data, rec->key, rec->klen);
    buf_append(&b->data, rec->val, vlen);
    b->r[b->n] = r;
    if (++b->n == BATCH) {
        push_batch(a);
    }
    return 0;
}

/* ---- snapshots -------------------------------------------------------- */

struct snap_chunk {
    struct buf b; /* klen(8) vlen(8) expire(8) key value, repeated */
};

static void
copy_item(struct item *it, void *ctx)
{
    struct snap_chunk *ch = ctx;
    uint64_t hdr[3] = {item_klen(it), item_vlen(it), (uint64_t)item_expire(it)};
    buf_append(&ch->b, hdr, sizeof(hdr));
    buf_append(&ch->b, item_key(it), item_klen(it));
    buf_append(&ch->b, item_cval(it), item_vlen(it));
}

static int
snap_iter(void *ctx, struct snap_sink *sink)
{
    (void)ctx;
    struct store *st = server.store;
    struct snap_chunk ch;
    buf_init(&ch.b);
    int rc = 0;
    for (unsigned i = 0; i < st->nshards && rc == 0; i++) {
        size_t cursor = 0;
        do {
            struct shard *sh = shard_lock(st, i);
            int64_t now = clock_ms();
            (void)now;
            /* a few buckets per lock hold */
            for (int k = 0; k < 64; k++) {
                cursor = ht_scan(&sh->ht, cursor, copy_item, &ch);
                if (cursor == 0) {
                    break;
                }
            }
            shard_unlock(sh);
            const char *p = ch.b.data;
            const char *end = ch.b.data + ch.b.len;
            int64_t t = clock_ms();
            while (p < end && rc == 0) {
                uint64_t hdr[3];
                memcpy(hdr, p, sizeof(hdr));
                p += sizeof(hdr);
                int64_t exp = (int64_t)hdr[2];
                if (exp == 0 || exp > t) {
                    rc = snap_sink_add(sink, p, hdr[0], p + hdr[0], hdr[1], exp);
                }
                p += hdr[0] + hdr[1];
            }
            buf_reset(&ch.b, 1 << 20);
        } while (cursor != 0 && rc == 0);
    }
    buf_deinit(&ch.b);
    return rc;
}

/* Before recovery applies anything: size the tables once (a snapshot entry
 * or a log record is at least ~40 bytes, so this over-estimates a little). */
static void
on_hint(void *ctx, uint64_t snapshot_keys, uint64_t wal_bytes)
{
    (void)ctx;
    store_reserve(server.store, (size_t)(snapshot_keys + wal_bytes / 64));
}

static void
on_notify(void *ctx, uint64_t lsn, int err)
{
    (void)ctx;
    (void)lsn;
    (void)err;
    if (D.wake) {
        D.wake();
    }
}

static void
on_evict(void *ctx, const struct item *it)
{
    (void)ctx;
    struct wal_rec rec = {.type = WAL_REC_DEL, .key = item_key(it), .klen = item_klen(it)};
    durable_log(&rec, 1);
}

int
durable_open(const struct config *cfg, durable_wake_fn wake, char *err, size_t errlen)
{
    if (!cfg->wal.enabled) {
        return 0;
    }
    D.wake = wake;
    struct persist_cfg pc = {
        .dir = cfg->wal.dir,
        .sync = cfg->wal.sync_policy == CONFIG_SYNC_SYNC    ? WAL_SYNC_ALWAYS
                : cfg->wal.sync_policy == CONFIG_SYNC_ASYNC ? WAL_SYNC_ASYNC
                                                            : WAL_SYNC_NONE,
        .max_segment_size = cfg->wal.max_segment_size,
        .snapshot_wal_bytes = cfg->wal.snapshot_after_bytes,
        .snapshot_interval_s = (unsigned)cfg->wal.snapshot_interval_seconds,
        .skip_damaged = cfg->wal.skip_damaged_records,
        .iter = snap_iter,
        .notify = on_notify,
        .hint = on_hint,
    };
    struct persist_report rep;
    memset(&rep, 0, sizeof(rep));
    int64_t t0 = clock_mono_us();
    /* Load under plain LRU: W-TinyLFU would count every loaded key in its
     * frequency sketch, which costs time and says nothing about demand. The
     * configured policy takes over the loaded keys afterwards. */
    int policy = atomic_load(&server.store->policy);
    if (policy == STORE_TINYLFU) {
        store_set_policy(server.store, STORE_LRU);
    }
    appliers_start();
    int rc = persist_open(&pc, apply, NULL, &rep, &D.p);
    appliers_stop();
    if (policy == STORE_TINYLFU) {
        store_set_policy(server.store, STORE_TINYLFU);
    }
    if (rc != 0) {
        snprintf(err, errlen, "recovery of %s failed: %s", cfg->wal.dir, rep.error);
        return -1;
    }
    D.wal = persist_wal(D.p);
    durable__on = D.wal != NULL;
    D.sync = pc.sync == WAL_SYNC_ALWAYS;
    server.store->on_evict = on_evict;
    log_info("recovered",
             "\"dir\":\"%s\",\"snapshot\":\"%s\",\"snapshot_keys\":%llu,\"records\":%llu,"
             "\"expired\":%llu,\"torn_tail\":%s,\"skipped_regions\":%llu,\"keys\":%zu,"
             "\"ms\":%.1f,\"sync_policy\":\"%s\"",
             cfg->wal.dir, rep.snapshot, (unsigned long long)rep.snapshot_keys,
             (unsigned long long)rep.records, (unsigned long long)rep.expired,
             rep.torn ? "true" : "false", (unsigned long long)rep.skipped_regions,
             store_count(server.store), (double)(clock_mono_us() - t0) / 1000.0,
             wal_sync_policy_name(pc.sync));
    return 0;
}

void
durable_close(void)
{
    if (D.p) {
        server.store->on_flush = NULL;
        server.store->on_evict = NULL;
        persist_close(&D.p);
        D.wal = NULL;
        durable__on = false;
    }
}

int
durable_bgsave(void)
{
    return D.p ? persist_bgsave(D.p) : -ENOTSUP;
}

int
durable_save(void)
{
    return D.p ? persist_save(D.p) : -ENOTSUP;
}

bool
durable_info(struct persist_info *info)
{
    if (D.p == NULL) {
        return false;
    }
    persist_info(D.p, info);
    return true;
}
