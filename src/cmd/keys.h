/*
 * keys.h -- helpers every data command uses: lock a key's shard, look keys
 * up with Redis's hit/miss accounting, and report mutations (prop_*) to the
 * change counter and the mutation stream (server.stream, persist/mstream.h),
 * whose consumers (the write-ahead log, later replication) see every write.
 *
 * Handlers run on worker threads. A handler locks the shard(s) it needs,
 * reads/mutates with the shard_* calls of store.h, reports each mutation
 * with prop_* while still holding the lock (so the stream has per-key apply
 * order), unlocks, then writes its reply. A handler always reports: whether
 * anybody listens is the stream's business (one branch when nobody does).
 */
#ifndef CRAB_CMD_KEYS_H
#define CRAB_CMD_KEYS_H

#include <stdbool.h>
#include <stdint.h>

#include "cmd/args.h"
#include "cmd/client.h"
#include "cmd/tstats.h"
#include "core/server.h"
#include "proto/proto.h"
#include "store/store.h"

static inline unsigned
key_shard(const struct proto_arg *k)
{
    return store_shard_of(server.store, k->ptr, k->len);
}

static inline struct shard *
key_lock(const struct proto_arg *k)
{
    return shard_lock(server.store, key_shard(k));
}

/* Look a key up for reading, counting a keyspace hit or miss (inline: the
 * lookup of every read command). */
static inline struct item *
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
/* Look a key up for writing (no hit/miss accounting). */
static inline struct item *
key_write(struct shard *sh, const struct proto_arg *k, int64_t now)
{
    return shard_find(sh, k->ptr, k->len, now);
}

/* Set key k in shard sh (locked) to value v (copied) with this expiry,
 * replacing any old value (rewritten in place when it fits: shard_upsert);
 * returns the key's item. v must not point into the key's own old value. */
struct item *key_set(struct shard *sh, const struct proto_arg *k, const void *v, size_t vlen,
                     int64_t expire);

/* Mutation reports (shard lock held): the key's resulting state (SET: its
 * value and absolute expiry; EXPIRE: its new expiry, 0 = none), or its
 * deletion. A consumer's LSN lands in c->wal_lsn and its error in
 * c->wal_err (call.h turns that into -MISCONF). */
void prop_set(struct client *c, const struct item *it);
void prop_del(struct client *c, const char *key, size_t klen);
void prop_expire(struct client *c, const struct item *it);
/* FLUSHALL: reported from inside store_flush (every shard lock held) by the
 * hook prop_setup installs; this call is the handler's marker. */
void prop_flush(struct client *c);
/* Records reported between these two calls (all with the locks held) are
 * published as one group, applied all-or-nothing by recovery: RENAME, MSET,
 * MSETNX. */
void prop_group_begin(struct client *c);
void prop_group_end(struct client *c);

/* Start of a command on this thread (cmd_call_inline; NULL after it), and
 * the store's FLUSHALL hook, installed once at start-up (the stream has no
 * consumer during recovery, so replay is not reported). prop_begin is
 * inline: one thread-local store. */
extern _Thread_local struct client *prop_current;
static inline void
prop_begin(struct client *c)
{
    prop_current = c;
}
void prop_setup(void);

/* Writes since the last save (INFO rdb_changes_since_last_save). */
uint64_t prop_dirty(void);
void prop_dirty_reset(void);

#endif
