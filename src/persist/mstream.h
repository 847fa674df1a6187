/*
 * mstream.h -- the mutation stream: every change of a store, in order, to
 * every consumer registered at the time.
 *
 * Handlers report their mutations (cmd/keys.h prop_*), and the store reports
 * the keys it removes on its own (evicted to make room, expired lazily on a
 * lookup or actively by the cron); the stream hands each record to the
 * consumers whose `accept` mask takes its cause. The write-ahead log is one
 * consumer (core/durable.c); replication and vbucket copies will be others.
 *
 * Records are state-based, as the WAL's (persist/wal.h): a SET carries the
 * resulting value and absolute expiry, DEL a deletion, EXPIRE a new absolute
 * expiry (0 = PERSIST), FLUSHALL everything. Applying them in offset order
 * to a copy of the store as it was at registration (persist/load.h) gives
 * the store as it is; applying one twice changes nothing.
 *
 * Offsets: the stream numbers every record it delivers, 1, 2, 3, ... over
 * its life, across all consumers; a consumer sees its records in strictly
 * increasing offset order (with gaps where a record went only to others).
 * Records of one group (RENAME, MSET) take consecutive offsets and are
 * delivered in one call. Offsets are not the WAL's LSNs: the WAL numbers
 * only what it takes, and keeps its LSNs across restarts. (A consumer that
 * registered MSTREAM_UNORDERED may see offsets of different shards out of
 * order while no other consumer needs the order; the records of one key
 * still come in apply order, since they are published under its shard's
 * lock.)
 *
 * Slots: every record carries its key's cluster slot (store/slot.h), so a
 * per-vbucket consumer filters with a table lookup; FLUSHALL carries
 * MSTREAM_NO_SLOT and concerns every slot. (Unless every consumer
 * registered said it needs no slots, MSTREAM_NO_SLOTS: then no record
 * has one.)
 *
 * Threads and locks:
 *  - mstream_publish runs on the mutating thread with at least one shard
 *    lock of the stream's store held (every mutation is made under one), and
 *    calls the consumers, under the stream's own mutex when one of them
 *    needs offset order. So a consumer's callback runs on a worker with a
 *    shard lock (and maybe the stream lock) held: it must be quick and must
 *    never block on I/O or on another thread, take a shard lock, call
 *    store_* functions, publish, or (un)register. It may take a lock of its
 *    own (the WAL takes its append lock and copies the record into its
 *    buffer), and is then called from several workers at once unless some
 *    consumer needs the order. Whatever it keeps of a record it copies: key
 *    and value point into the store or into the caller's buffers.
 *  - mstream_register / mstream_unregister may be called from any thread
 *    that holds no shard lock and is not inside a callback. They take every
 *    shard lock of the store (then the stream's), so a registration is one
 *    point in the store's history: a consumer sees exactly the mutations
 *    applied after mstream_register returned, and none after
 *    mstream_unregister returned (no callback of it is running then).
 *  - With no consumer taking a cause, reporting a mutation of that cause
 *    costs one relaxed load and one predictable branch (mstream_wants).
 *
 * Why no RCU array and no enable flags: every publisher holds a shard lock
 * and registration takes them all, so the table is already read-stable
 * where it is read; swapping arrays would add a grace period to solve a
 * problem the shard locks do not have. Registration taking every shard lock
 * is also what gives it its exact cut; it is rare (start-up, a vbucket copy
 * starting or ending). Offsets in delivery order need a lock around the
 * numbering and the calls: the stream's mutex, taken only while a consumer
 * asks for that order. The WAL does not (it numbers records under its own
 * lock), so with the WAL alone a record costs an atomic increment, not a
 * second mutex (callgrind, SET with the WAL on: docs/design.md).
 */
#ifndef CRAB_PERSIST_MSTREAM_H
#define CRAB_PERSIST_MSTREAM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "persist/wal_format.h"

struct store;
struct item;

/* Why a record was made; a consumer's accept mask is an OR of these. */
enum mstream_cause {
    MSTREAM_CLIENT = 1u << 0,  /* a command (SET, DEL, FLUSHALL, ...) */
    MSTREAM_EVICTED = 1u << 1, /* a DEL: removed to make room */
    MSTREAM_EXPIRED = 1u << 2, /* a DEL: its time was up (lazily or by the cron) */
    MSTREAM_MOVED = 1u << 3,   /* cluster: a vbucket copy applied here (SET, DEL,
                                  EXPIRE), or a key dropped (DEL) after its
                                  vbucket was handed over (load_apply_publish) */
};
#define MSTREAM_ALL (MSTREAM_CLIENT | MSTREAM_EVICTED | MSTREAM_EXPIRED | MSTREAM_MOVED)

#define MSTREAM_NO_SLOT 0xffffu /* FLUSHALL: every slot */

/*
 * One record. The publisher fills rec (type, key, val, expire_at_ms: the
 * WAL's record, its lsn and flags unused) and cause; the stream fills slot
 * and offset before any consumer sees it.
 */
struct mstream_rec {
    struct wal_rec rec;
    uint64_t offset;
    uint16_t slot;
    uint8_t cause;
};

/*
 * A consumer's callback: n >= 1 records of one cause, consecutive offsets,
 * n > 1 for a group that must be applied all or nothing. Returns < 0 when
 * the records could not be taken (the command that made them must then not
 * be acknowledged: the WAL's error), else a position the client's reply
 * may have to wait for (the WAL's LSN, for the sync policy), or 0.
 */
typedef int64_t (*mstream_fn)(void *ctx, const struct mstream_rec *recs, size_t n);

/* What a consumer does not need: each saves work on every record, as long
 * as no other registered consumer needs it. */
enum mstream_flag {
    /* It does not need its records in offset order: it orders what it takes
     * itself, under its own lock (the WAL: its LSNs). Without a consumer
     * that needs the order, records are numbered by an atomic increment
     * and no stream lock is taken. */
    MSTREAM_UNORDERED = 1u << 0,
    /* It does not look at slots: the records' slot may be MSTREAM_NO_SLOT
     * (a CRC16 of the key saved). */
    MSTREAM_NO_SLOTS = 1u << 1,
};

struct mstream_consumer {
    const char *name;  /* for logs; not copied */
    unsigned accept;   /* enum mstream_cause bits it wants */
    unsigned flags;    /* enum mstream_flag */
    mstream_fn fn;
    void *ctx;
};

struct mstream_entry {
    struct mstream_consumer c;
    int id;
};

struct mstream {
    /* OR of the registered consumers' accept masks: read without a lock on
     * every mutation. It and the table below change only with every shard
     * lock (and `lock`) held, so a publisher, which holds a shard lock,
     * reads them stable without taking `lock`. */
    _Atomic unsigned accept;
    bool ordered;                 /* a consumer needs offset order: publish under lock */
    bool slots;                   /* a consumer needs slots */
    struct mstream_entry *cons;   /* registered consumers, in order of registration */
    unsigned n, cap;
    int next_id;
    struct store *store;          /* whose shard locks registration takes */
    pthread_mutex_t lock;         /* numbering and delivery when ordered; registration */
    _Atomic uint64_t offset;      /* of the last record numbered: records delivered */
};

/* Set up an embedded stream for st, with no consumer, and install st's
 * eviction and expiry hooks (store.h on_evict, on_expire) to report removed
 * keys as DEL records. st may be NULL (a stream fed by hand): registration
 * then takes no shard lock, and must not overlap a publish. */
void mstream_init(struct mstream *s, struct store *st);
/* Remove the hooks and free the table; no consumer may be registered. */
void mstream_deinit(struct mstream *s);

/* Whether any consumer takes records of this cause (inline: on the path of
 * every write). */
static inline bool
mstream_wants(const struct mstream *s, unsigned cause)
{
    return (atomic_load_explicit(&s->accept, memory_order_relaxed) & cause) != 0;
}

/*
 * Hand n >= 1 records of one cause (a group when n > 1) to the consumers
 * that take it: fills each record's slot and offset, then calls them in
 * order of registration. Returns the first negative value a consumer
 * returned, else the largest value returned (0 if none took it). Caller:
 * a shard lock of s->store held (see the top of this file).
 */
int64_t mstream_publish(struct mstream *s, struct mstream_rec *recs, size_t n);

/*
 * Register a consumer (copied; its name and ctx must outlive the
 * registration). *start (if not NULL) gets the offset of the last record
 * delivered before it: it sees the records after that offset, from the
 * mutations applied after this returns. Returns an id > 0, or -EINVAL
 * (no callback, or an accept mask with no known cause).
 */
int mstream_register(struct mstream *s, const struct mstream_consumer *c, uint64_t *start);
/* Remove a consumer; when this returns no callback of it runs or will run.
 * Returns 0, or -ENOENT for an unknown id. */
int mstream_unregister(struct mstream *s, int id);

struct mstream_stats {
    uint64_t offset;    /* last offset handed out: records delivered so far */
    unsigned consumers; /* registered now */
};
void mstream_stats(struct mstream *s, struct mstream_stats *out);

#endif
