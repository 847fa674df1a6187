/*
 * keys.c -- see keys.h.
 *
 * prop_* is the single point every mutation a command makes passes through.
 * It counts the change (the "dirty" figure of INFO persistence) and, when a
 * consumer of the mutation stream takes client records, builds the record
 * and publishes it (persist/mstream.h).
 */
#include "cmd/keys.h"

#include <string.h>

#include "cmd/args.h"
#include "cmd/tstats.h"
#include "persist/mstream.h"
#include "util/buf.h"
#include "util/mem.h"

/* The change counter is per thread (tstats.changes, summed on read); a reset
 * (SAVE) records the sum as the new base. */
static _Atomic uint64_t dirty_base;

struct item *
key_set(struct shard *sh, const struct proto_arg *k, const void *v, size_t vlen,
        int64_t expire)
{
    struct item *it = shard_upsert(sh, k->ptr, k->len, vlen, expire);
    if (vlen) {
        memcpy(item_val(it), v, vlen);
    }
    return it;
}

static inline void
changed(void)
{
    struct tstats *ts = tstats_self(); /* once: STAT_INC names it twice */
    STAT_INC(ts->changes);
}

/* Whether the stream wants a command's records: the one branch a write
 * pays when nobody listens. */
static inline bool
wanted(void)
{
    return mstream_wants(&server.stream, MSTREAM_CLIENT);
}

/* A group of records (RENAME, MSET) is collected here, copied (an item of
 * the group may be replaced and freed before the group ends, e.g. MSET k a
 * k b), and published as one all-or-nothing group at prop_group_end(). */
struct group {
    bool on;
    struct buf data;           /* keys and values, copied */
    struct mstream_rec *recs;  /* key/val hold offsets into data until the end */
    size_t n, cap;
};
static _Thread_local struct group grp;

/* What the consumers answered: an error makes the command fail (-MISCONF),
 * an LSN is what a sync-policy reply waits for. */
static void
note_ack(struct client *c, int64_t r)
{
    if (c == NULL) {
        return;
    }
    if (r < 0) {
        c->wal_err = (int)r;
    } else if ((uint64_t)r > c->wal_lsn) {
        c->wal_lsn = (uint64_t)r;
    }
}

/* Publish one record of the client's current command, or add it to the
 * open group. */
static void
publish(struct client *c, const struct wal_rec *rec)
{
    if (!grp.on) {
        struct mstream_rec m = {.rec = *rec, .cause = MSTREAM_CLIENT};
        note_ack(c, mstream_publish(&server.stream, &m, 1));
        return;
    }
    if (grp.n == grp.cap) {
        grp.cap = grp.cap ? grp.cap * 2 : 8;
        grp.recs = xrealloc(grp.recs, grp.cap * sizeof(*grp.recs));
    }
    struct mstream_rec *m = &grp.recs[grp.n++];
    memset(m, 0, sizeof(*m));
    m->rec = *rec;
    m->cause = MSTREAM_CLIENT;
    m->rec.key = (const void *)(uintptr_t)grp.data.len;
    buf_append(&grp.data, rec->key, rec->klen);
    m->rec.val = (const void *)(uintptr_t)grp.data.len;
    buf_append(&grp.data, rec->val, rec->vlen);
}

void
prop_group_begin(struct client *c)
{
    (void)c;
    grp.on = true;
    grp.n = 0;
    buf_reset(&grp.data, 1 << 20);
}

void
prop_group_end(struct client *c)
{
    grp.on = false;
    if (grp.n == 0) {
        return;
    }
    for (size_t i = 0; i < grp.n; i++) {
        grp.recs[i].rec.key = grp.data.data + (uintptr_t)grp.recs[i].rec.key;
        grp.recs[i].rec.val = grp.data.data + (uintptr_t)grp.recs[i].rec.val;
    }
    note_ack(c, mstream_publish(&server.stream, grp.recs, grp.n));
    grp.n = 0;
    buf_reset(&grp.data, 1 << 20);
}

/*
 * Each prop_* counts the change, tests the stream and leaves the record's
 * making to an out-of-line function, so the path with nobody listening has
 * no stack frame to set up: callgrind, redis-benchmark SET P16, prop_set
 * costs 13 instructions a call (19 with the durable_enabled() gate it
 * replaces; 18 with the record built in prop_set's own frame).
 */
static __attribute__((noinline)) void
publish_set(struct client *c, const struct item *it)
{
    struct wal_rec rec = {.type = WAL_REC_SET,
                          .key = item_key(it),
                          .klen = item_klen(it),
                          .val = item_cval(it),
                          .vlen = item_vlen(it),
                          .expire_at_ms = item_expire(it)};
    publish(c, &rec);
}

static __attribute__((noinline)) void
publish_del(struct client *c, const char *key, size_t klen)
{
    struct wal_rec rec = {.type = WAL_REC_DEL, .key = key, .klen = klen};
    publish(c, &rec);
}

static __attribute__((noinline)) void
publish_expire(struct client *c, const struct item *it)
{
    struct wal_rec rec = {.type = WAL_REC_EXPIRE,
                          .key = item_key(it),
                          .klen = item_klen(it),
                          .expire_at_ms = item_expire(it)};
    publish(c, &rec);
}

void
prop_set(struct client *c, const struct item *it)
{
    changed();
    if (wanted()) {
        publish_set(c, it);
    }
}

void
prop_del(struct client *c, const char *key, size_t klen)
{
    changed();
    if (wanted()) {
        publish_del(c, key, klen);
    }
}

void
prop_expire(struct client *c, const struct item *it)
{
    changed();
    if (wanted()) {
        publish_expire(c, it);
    }
}

/* The client whose command runs on this thread (for the flush hook). */
_Thread_local struct client *prop_current;

/* FLUSHALL's record must be published with every shard lock held, so the
 * store calls this from inside store_flush(). Also reached from recovery's
 * FLUSHALL (no consumer then) and from any other caller of store_flush. */
static void
flush_hook(void *ctx)
{
    (void)ctx;
    changed();
    if (!wanted()) {
        return;
    }
    struct mstream_rec m = {.rec = {.type = WAL_REC_FLUSHALL}, .cause = MSTREAM_CLIENT};
    note_ack(prop_current, mstream_publish(&server.stream, &m, 1));
}

void
prop_setup(void)
{
    server.store->on_flush = flush_hook;
}

void
prop_flush(struct client *c)
{
    (void)c; /* counted and published by flush_hook */
}

static uint64_t
changes_total(void)
{
    struct tstats sum;
    tstats_sum(&sum);
    return sum.changes;
}

uint64_t
prop_dirty(void)
{
    uint64_t total = changes_total(), base = atomic_load(&dirty_base);
    return total > base ? total - base : 0;
}

void
prop_dirty_reset(void)
{
    atomic_store(&dirty_base, changes_total());
}
