/*
 * keys.c -- see keys.h.
 *
 * prop_* is the single point every mutation passes through. It counts the
 * change (the "dirty" figure of INFO persistence) and hands the record to
 * the persistence hook when one is installed.
 */
#include "cmd/keys.h"

#include <string.h>

#include "cmd/args.h"
#include "core/durable.h"
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
    STAT_INC(tstats_self()->changes);
}

/* A group of records (RENAME, MSET) is collected here, copied (an item of
 * the group may be replaced and freed before the group ends, e.g. MSET k a
 * k b), and appended as one all-or-nothing group at prop_group_end(). */
struct group {
    bool on;
    struct buf data;        /* keys and values, copied */
    struct wal_rec *recs;   /* key/val hold offsets into data until the end */
    size_t n, cap;
};
static _Thread_local struct group grp;

static void
note_lsn(struct client *c, int64_t lsn)
{
    if (lsn < 0) {
        c->wal_err = (int)lsn;
    } else if ((uint64_t)lsn > c->wal_lsn) {
        c->wal_lsn = (uint64_t)lsn;
    }
}

/* Log one record for the client's current command. */
static void
logrec(struct client *c, const struct wal_rec *rec)
{
    changed();
    if (!durable_enabled()) {
        return;
    }
    if (!grp.on) {
        note_lsn(c, durable_log(rec, 1));
        return;
    }
    if (grp.n == grp.cap) {
        grp.cap = grp.cap ? grp.cap * 2 : 8;
        grp.recs = xrealloc(grp.recs, grp.cap * sizeof(*grp.recs));
    }
    struct wal_rec *r = &grp.recs[grp.n++];
    *r = *rec;
    r->key = (const void *)(uintptr_t)grp.data.len;
    buf_append(&grp.data, rec->key, rec->klen);
    r->val = (const void *)(uintptr_t)grp.data.len;
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
        grp.recs[i].key = grp.data.data + (uintptr_t)grp.recs[i].key;
        grp.recs[i].val = grp.data.data + (uintptr_t)grp.recs[i].val;
    }
    note_lsn(c, durable_log(grp.recs, grp.n));
    grp.n = 0;
    buf_reset(&grp.data, 1 << 20);
}

void
prop_set(struct client *c, const struct item *it)
{
    if (!durable_enabled()) {
        changed(); /* what logrec would do: no record to build */
        return;
    }
    struct wal_rec rec = {.type = WAL_REC_SET,
                          .key = item_key(it),
                          .klen = item_klen(it),
                          .val = item_cval(it),
                          .vlen = item_vlen(it),
                          .expire_at_ms = item_expire(it)};
    logrec(c, &rec);
}

void
prop_del(struct client *c, const char *key, size_t klen)
{
    struct wal_rec rec = {.type = WAL_REC_DEL, .key = key, .klen = klen};
    logrec(c, &rec);
}

void
prop_expire(struct client *c, const struct item *it)
{
    struct wal_rec rec = {.type = WAL_REC_EXPIRE,
                          .key = item_key(it),
                          .klen = item_klen(it),
                          .expire_at_ms = item_expire(it)};
    logrec(c, &rec);
}

/* The client whose command runs on this thread (for the flush hook). */
_Thread_local struct client *prop_current;

/* FLUSHALL's record must be appended with every shard lock held, so the
 * store calls this from inside store_flush(). */
static void
flush_hook(void *ctx)
{
    (void)ctx;
    struct wal_rec rec = {.type = WAL_REC_FLUSHALL};
    if (prop_current) {
        logrec(prop_current, &rec);
    } else {
        changed();
        durable_log(&rec, 1);
    }
}

void
prop_setup(void)
{
    server.store->on_flush = flush_hook;
}

void
prop_flush(struct client *c)
{
    /* counted and logged by flush_hook */
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
