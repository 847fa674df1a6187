/*
 * load.h -- apply state-based records to a store: recovery's snapshot
 * entries and WAL records, and (next) a vbucket copy's snapshot and stream
 * tail into a staging store.
 *
 * A record is a struct wal_rec (persist/wal_format.h): SET puts the key with
 * that value and absolute expiry (replacing it), DEL removes it, EXPIRE sets
 * a live key's expiry (0 = none), FLUSHALL empties the store. They are
 * applied as they are: deciding that a record is too old (recovery's expiry
 * rules, persist/recover.c) is the caller's business. Applying the records
 * of a stream in order to the store it started from gives the store it ended
 * with; applying one twice changes nothing.
 *
 * The store is passed in, never the server's global, so a store that
 * clients cannot see can be loaded. A SET first makes room in that store
 * (store_make_room: loaded data obeys its max_memory); an eviction there
 * is reported to that store's hooks like any other.
 */
#ifndef CRAB_PERSIST_LOAD_H
#define CRAB_PERSIST_LOAD_H

#include <stdbool.h>
#include <stddef.h>

#include "persist/wal_format.h"

struct store;

/* Apply one record to st now, on this thread, taking the key's shard lock
 * (FLUSHALL: store_flush). No shard lock of st may be held. Unknown record
 * types are ignored. */
void load_apply(struct store *st, const struct wal_rec *rec);

/* The same, and the record is published to stream s (cause MSTREAM_MOVED)
 * under the shard lock that applied it, so the write-ahead log keeps it in
 * its place among the key's other writes: a vbucket copy arriving on a node,
 * and the keys a node drops after handing a vbucket over. Not FLUSHALL. */
struct mstream;
/* Returns what the stream's consumers returned (mstream_publish: the WAL's
 * LSN for this record, 0 when none took it, < 0 when one failed). */
int64_t load_apply_publish(struct store *st, struct mstream *s, const struct wal_rec *rec);

/*
 * A bulk loader. Applying a record is mostly waiting for memory (the index
 * probe that replaces an older value), so the records are spread over
 * `threads` applier threads by shard (shard index mod threads); each builds
 * its items under the shard's lock and keeps every key's records in the
 * order given. threads = 0 applies each record on the caller's thread.
 * One thread feeds a loader; no shard lock of st may be held while it does.
 */
struct loader;

struct loader *loader_create(struct store *st, unsigned threads);
/* Copy the record (key and value) and queue it, or apply it (threads 0).
 * FLUSHALL waits until everything queued before it is applied, then
 * flushes. May block while the appliers are behind. */
void loader_add(struct loader *l, const struct wal_rec *rec);
/* Wait until every record added so far is in the store. */
void loader_drain(struct loader *l);
/* Drain, stop the threads, free *l and set it to NULL (NULL is fine). */
void loader_destroy(struct loader **l);

/* Appliers for this machine: one per core, 0 on one core, at most 8. */
unsigned loader_default_threads(void);

#endif
