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

/* The change counter is per thread (tstats.changes, summed on read); a reset
 * (SAVE) records the sum as the new base. */
static _Atomic uint64_t dirty_base;

struct item *
key_read(struct shard *sh, const struct proto_arg *k, int64_t now)
{
    struct item *it = shard_find(sh, k->ptr, k->len, now);
    struct tstats *ts = tstats_self();
    if (it) {
        STAT_INC(ts->hits);
    } else {
        STAT_INC(ts->misses);
        shard_note_miss(sh, k->ptr, k->len);
    }
    return it;
}

struct item *
key_item(const struct proto_arg *k, const void *v, size_t vlen, int64_t expire)
{
    struct item *it = item_create(k->ptr, k->len, vlen);
    if (vlen) {
        memcpy(item_val(it), v, vlen);
    }
    it->expire = expire;
    return it;
}

static void
changed(void)
{
    STAT_INC(tstats_self()->changes);
}

/* Log one record for the client's current command. */
static void
logrec(struct client *c, const struct wal_rec *rec)
{
    changed();
    if (!durable_enabled()) {
        return;
    }
    int64_t lsn = durable_log(rec, 1);
    if (lsn < 0) {
        c->wal_err = (int)lsn;
    } else if ((uint64_t)lsn > c->wal_lsn) {
        c->wal_lsn = (uint64_t)lsn;
    }
}

void
prop_set(struct client *c, const struct item *it)
{
    struct wal_rec rec = {.type = WAL_REC_SET,
                          .key = item_key(it),
                          .klen = it->klen,
                          .val = item_cval(it),
                          .vlen = it->vlen,
                          .expire_at_ms = it->expire};
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
                          .klen = it->klen,
                          .expire_at_ms = it->expire};
    logrec(c, &rec);
}

/* The client whose command runs on this thread (for the flush hook). */
static _Thread_local struct client *current;

void
prop_begin(struct client *c)
{
    current = c;
}

/* FLUSHALL's record must be appended with every shard lock held, so the
 * store calls this from inside store_flush(). */
static void
flush_hook(void *ctx)
{
    (void)ctx;
    struct wal_rec rec = {.type = WAL_REC_FLUSHALL};
    if (current) {
        logrec(current, &rec);
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
