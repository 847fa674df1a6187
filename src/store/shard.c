/*
 * shard.c -- the operations on one locked shard (shard_* in store.h): find,
 * insert, overwrite, delete, expiry changes, and the bookkeeping of an item
 * that leaves the index, and the shard's lock. These are the request path: everything they call
 * in the store is inline (store_int.h) or in this file.
 */
#include "store/store.h"
#include "store/store_int.h"

#include <stdlib.h>
#include <sys/types.h>

struct shard *
shard_lock(struct store *st, unsigned idx)
{
    struct shard *sh = &st->shards[idx];
    pthread_mutex_lock(&sh->lock);
    return sh;
}

void
shard_unlock(struct shard *sh)
{
    pthread_mutex_unlock(&sh->lock);
}

struct shard *
store_shard(struct store *st, unsigned idx)
{
    return &st->shards[idx];
}

size_t
shard_scan(struct shard *sh, size_t cursor, ht_visit_fn fn, void *ctx)
{
    return ht_scan(&sh->ht, cursor, fn, ctx);
}

/*
 * Bookkeeping for an item that has left the index (deleted, expired,
 * replaced). The policy's queues may still name it: it stays as a dead
 * chunk until the policy releases it (node_release), which may happen at
 * once, inside evict_on_remove, or later. A large item's body is freed now
 * either way, so a dead item holds no more than its chunk.
 * count_slot is false when the same key stays (replaced by a new item).
 */
static void
forget_slot(struct shard *sh, struct item *it, bool count_slot)
{
    if (item_expire(it)) {
        sh->nexpires--;
    }
    if (count_slot) {
        shard__slot_add(sh, it, -1);
    }
    evict_ref ref = shard__ref(sh, it);
    sh->removing = ref;
    evict_on_remove(&sh->policy, ref);
    if (sh->removing == ref) {
        /* not released yet: drop what the dead chunk does not need */
        sh->removing = 0;
        shard__mem_changed(sh, -(ssize_t)item_drop_body(it));
    }
}

static void
forget(struct shard *sh, struct item *it)
{
    forget_slot(sh, it, true);
}

void
shard__forget(struct shard *sh, struct item *it)
{
    forget(sh, it);
}

/* A lookup met an item while a slot of its shard is being dropped: one of
 * that slot is not served, and is reclaimed now, as an expired one is. Out
 * of line: the lookup pays one test of sh->dropping. */
static __attribute__((noinline)) struct item *
drop_on_read(struct shard *sh, struct item *it, uint64_t h)
{
    if (!shard__item_dropping(sh, it)) {
        return it;
    }
    ht_remove(&sh->ht, item_key(it), item_klen(it), h);
    forget(sh, it);
    sh->dropped++;
    return NULL;
}

__attribute__((noinline)) void
shard__expired_hook(struct shard *sh, const struct item *it)
{
    if (sh->store->on_expire) {
        sh->store->on_expire(sh->store->on_remove_ctx, it);
    }
}

struct item *
shard_find(struct shard *sh, const char *key, size_t klen, int64_t now)
{
    uint64_t h = hint_hash(key, klen);
    size_t tm = ht_mem(&sh->ht);
    struct item *it = ht_find(&sh->ht, key, klen, h);
    if (it && item_expired(it, now)) {
        ht_remove(&sh->ht, key, klen, h);
        shard__expired_hook(sh, it);
        forget(sh, it);
        sh->expired++;
        it = NULL;
    }
    if (__builtin_expect(sh->dropping, 0) && it) {
        it = drop_on_read(sh, it, h);
    }
    if (it) {
        evict_on_access(&sh->policy, shard__ref(sh, it), h);
    }
    shard__table_mem_sync(sh, tm);
    return it;
}

static void
put_hashed(struct shard *sh, struct item *it, uint64_t h, bool absent)
{
    size_t tm = ht_mem(&sh->ht);
    struct item *old = NULL;
    if (absent) {
        ht_insert(&sh->ht, it, h); /* the caller has just looked: no second search */
    } else {
        old = ht_replace(&sh->ht, it, h);
    }
    if (old) {
        /* same key, same slot: the slot's count does not change, its bytes
         * may (read before forget_slot, which may free old's chunk) */
        shard__slot_replace(sh, it, old);
        forget_slot(sh, old, false);
    } else {
        shard__slot_add(sh, it, 1);
    }
    if (item_expire(it)) {
        sh->nexpires++;
    }
    size_t m = item_mem(it);
    shard__mem_changed(sh, (ssize_t)m);
    evict_on_insert(&sh->policy, shard__ref(sh, it), h, m);
    shard__table_mem_sync(sh, tm);
}

void
shard_put(struct shard *sh, struct item *it)
{
    put_hashed(sh, it, ht_hash(item_key(it), item_klen(it)), false);
}

/*
 * Overwriting a key whose chunk can take the new value (same class: same
 * size give or take the 4-byte rounding) rewrites it in place: no new chunk,
 * no dead one for the policy to release, the policy's place kept. Measured on
 * redis-benchmark's SET under callgrind (P16, -r 100000: most SETs overwrite
 * a 3-byte value with another): 2,247 -> 1,990 instructions per request.
 */
struct item *
shard_upsert(struct shard *sh, const char *key, size_t klen, size_t vlen, int64_t expire)
{
    uint64_t h = hint_hash(key, klen);
    size_t tm = ht_mem(&sh->ht);
    struct item *old = ht_find(&sh->ht, key, klen, h);
    if (old && item_fits_in_place(old, vlen, expire)) {
        int64_t oe = item_expire(old);
        if (oe && !expire) {
            sh->nexpires--;
        } else if (!oe && expire) {
            sh->nexpires++;
        }
        if (item_has_expire_field(old)) {
            item_store_expire(old, expire);
        }
        item_set_vlen(old, vlen);
        evict_on_overwrite(&sh->policy, shard__ref(sh, old), h);
        shard__table_mem_sync(sh, tm);
        return old;
    }
    shard__table_mem_sync(sh, tm);
    struct item *it = item_new(&sh->slab, key, klen, vlen, expire, false);
    put_hashed(sh, it, h, old == NULL);
    return it;
}

bool
shard_delete(struct shard *sh, const char *key, size_t klen, int64_t now)
{
    size_t tm = ht_mem(&sh->ht);
    struct item *it = ht_remove(&sh->ht, key, klen, hint_hash(key, klen));
    bool live = false;
    if (it) {
        live = !item_expired(it, now);
        if (!live) {
            shard__expired_hook(sh, it);
            sh->expired++;
        } else if (__builtin_expect(sh->dropping, 0) && shard__item_dropping(sh, it)) {
            live = false; /* not served: see store_slot_drop_begin */
            sh->dropped++;
        }
        forget(sh, it);
    }
    shard__table_mem_sync(sh, tm);
    return live;
}

struct item *
shard_new_item(struct shard *sh, const char *key, size_t klen, size_t vlen, int64_t expire)
{
    return item_new(&sh->slab, key, klen, vlen, expire, false);
}

struct item *
shard_set_expire(struct shard *sh, struct item *it, int64_t ms)
{
    int64_t old = item_expire(it);
    if (old && !ms) {
        sh->nexpires--;
    } else if (!old && ms) {
        sh->nexpires++;
    }
    if (!item_has_expire_field(it)) {
        if (ms == 0) {
            return it;
        }
        /* the item needs 8 more bytes: move it to a larger chunk, keeping
         * its place in the hash chain and in the policy's lists */
        size_t before = item_mem(it);
        size_t tm = ht_mem(&sh->ht);
        struct item *nit = item_grow_expire(&sh->slab, it);
        ht_replace(&sh->ht, nit, ht_hash(item_key(nit), item_klen(nit)));
        item_disown_body(it);
        size_t after = item_mem(nit);
        shard__slot_bytes(sh, nit, (ssize_t)after - (ssize_t)before);
        /* the old chunk (its body moved to nit, if large) is dead until the
         * policy releases it; nit takes its place */
        shard__mem_changed(sh, (ssize_t)after - (ssize_t)(before - item_mem(it)));
        evict_on_move(&sh->policy, shard__ref(sh, it), shard__ref(sh, nit));
        evict_on_update(&sh->policy, shard__ref(sh, nit), before, after);
        shard__table_mem_sync(sh, tm);
        it = nit;
    }
    item_store_expire(it, ms);
    return it;
}
