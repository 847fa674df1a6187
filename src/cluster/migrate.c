/*
 * migrate.c -- moving a vbucket's data to its new primary, and dropping what
 * a node no longer serves.
 *
 * The leader starts a copy by committing MIGRATE_BEGIN(vb, target, copy_id)
 * (leader.c). Then, on the vbucket's primary (the source):
 *
 *  1. A mutation-stream consumer for the vbucket's slots is registered
 *     (persist/mstream.h: registration is one exact point of the store's
 *     history), then the vbucket is walked slot by slot (store_slot_visit,
 *     under each slot's shard lock). Walked items go out as SET records and
 *     the consumer's records (writes, deletes, expiries, evictions) as they
 *     come, into one queue, each appended under the shard lock of its key:
 *     so for any key the queue holds its states in the order they happened,
 *     and the last one is the key's state now. The target applies the queue
 *     in order (persist/load.h); intermediate states may go back and forth,
 *     the last one is right, and nobody reads the target's copy before the
 *     commit (routing sends clients to the source).
 *  2. The queue goes over the bus as a byte stream of WAL-format records
 *     (checksummed) cut in frames of at most COPY_FRAME bytes: a large value
 *     crosses several frames.
 *  3. Walk done and every queued record on the stream: a first MARK, with
 *     the gate still open; the target answers a MARK once it has applied
 *     everything before it on the stream. When that answer comes the
 *     vbucket's write gate is paused (gate.h), so the pause covers only the
 *     records written since; once no write is inside it, they go out, then
 *     the last MARK (at once when no write is inside, most often). The
 *     source then asks the leader to commit MIGRATE_COMMIT (target first in
 *     the list). Writes that meet the paused gate wait and are run again
 *     after the commit is applied here -- and get MOVED.
 *  4. Commit applied: the gate opens, the consumer goes, and the source drops
 *     its copy in the background. Abort applied (a stream error, a timeout):
 *     the gate opens and the source keeps serving; the target drops its
 *     partial copy.
 *
 * The source never reopens the gate before it has applied the commit or
 * the abort, so no write is acknowledged by the old primary after the
 * target took over.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/ctl.h"
#include "cluster/gate.h"
#include "cluster/wire.h"
#include "persist/load.h"
#include "persist/mstream.h"
#include "persist/wal_format.h"
#include "store/store.h"
#include "store/store_slot.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/mem.h"

struct gate cluster_gates[TOPO_MAX_VB];

#define COPY_FRAME (1u << 20)        /* bytes of records per MIG_DATA frame */
#define COPY_WINDOW (8u << 20)       /* bytes handed to the socket and not yet sent */
#define COPY_QUEUE_MAX (256u << 20)  /* queued and not sent: past it the copy aborts */
#define COPY_TIMEOUT_MS 120000       /* a copy that has not committed by then aborts */
#define DROP_KEYS_PER_TICK 20000 /* a few ms of deletes per 50 ms tick */

enum copy_state {
    CP_BEGIN,    /* MIG_BEGIN sent: the target must have applied MIGRATE_BEGIN */
    CP_WALK,     /* walking the slots, streaming */
    CP_CATCHUP,  /* walked: a MARK sent with the gate open, waiting for its ACK */
    CP_PAUSING,  /* gate paused: waiting until no write is inside */
    CP_MARKED,   /* MARK sent, waiting for the target's ACK */
    CP_DONE,     /* the leader asked to commit: waiting for the topology */
    CP_FAILED,   /* the leader asked to abort: waiting for the topology */
};

struct copy {
    uint32_t vb;
    uint64_t copy_id;
    uint32_t target;
    unsigned first, last;        /* slot range */
    bool in_lap;                 /* the node's walk is visiting its slots now */
    bool walked;
    enum copy_state st;
    struct bus_stream *s;
    int consumer;                /* mstream id */
    pthread_mutex_t lock;        /* queue: appended by workers and the walk */
    struct buf queue;
    bool overflow;               /* the queue passed COPY_QUEUE_MAX */
    uint64_t mark, acked;        /* the last MARK sent, the last one confirmed */
    uint64_t marks;              /* MARKs sent */
    uint64_t started_ms, paused_ms, retry_ms;
    uint64_t keys, bytes;        /* walked */
    uint64_t total;              /* keys in the vbucket when the copy started */
    struct copy *next_copy;
};

/* A range of slots to empty, a bounded number of keys per tick. */
struct drop {
    unsigned first, last;
    uint64_t cursor;
    bool done;
    struct drop *next_drop;
};

static struct copy *copies;

/*
 * The walk. A vbucket's 64 slots are spread over every shard, so walking one
 * vbucket means visiting every key of the node; each copy walking on its own
 * made a join visit every key once per outgoing vbucket (about 21 times on a
 * 3-node source), on the control thread that also commits the handovers. So
 * the node walks its whole keyspace in laps, and every copy that was waiting
 * when a lap started takes its own keys from it. A copy that starts during a
 * lap waits for the next one (its mutation consumer runs meanwhile).
 */
static struct {
    bool running;
    uint64_t cursor;                   /* store_slot_scan's over every slot */
    struct copy *vb[TOPO_MAX_VB];      /* copies walking in this lap, by vbucket */
    unsigned n;                        /* how many */
} lap;
static struct drop *drops;
static bool held[TOPO_MAX_VB]; /* vbuckets whose data this node keeps */

/* ---- the record queue --------------------------------------------------------- */

static void
queue_rec(struct copy *k, const struct wal_rec *rec)
{
    size_t n = wal_rec_size(rec);
    if (n == 0) {
        return;
    }
    pthread_mutex_lock(&k->lock);
    if (k->queue.len - k->queue.rpos + n > COPY_QUEUE_MAX) {
        k->overflow = true;
    } else {
        char *p = buf_reserve(&k->queue, n);
        k->queue.len += wal_rec_encode(rec, 0, 0, (uint8_t *)p);
    }
    pthread_mutex_unlock(&k->lock);
}

/* The mutation stream's callback: on a worker, under a shard lock. */
static int64_t
on_mutation(void *ctx, const struct mstream_rec *recs, size_t n)
{
    struct copy *k = ctx;
    for (size_t i = 0; i < n; i++) {
        const struct mstream_rec *m = &recs[i];
        if (m->slot == MSTREAM_NO_SLOT || (m->slot >= k->first && m->slot <= k->last)) {
            queue_rec(k, &m->rec);
        }
    }
    return 0;
}

/* A walked item, under its shard's lock (store_slot_scan). */
static void
on_entry(const struct store_slot_entry *e, void *arg)
{
    struct copy *k = arg;
    struct wal_rec r = {
        .type = WAL_REC_SET,
        .key = e->key,
        .klen = e->klen,
        .val = e->val,
        .vlen = e->vlen,
        .expire_at_ms = e->expire,
    };
    queue_rec(k, &r);
    k->keys++;
    k->bytes += r.klen + r.vlen;
}

/* ---- the source --------------------------------------------------------------- */

static void copy_fail(struct copy *k, const char *why);
static void copy_step(struct copy *k, uint64_t now);

static void
on_stream(void *arg, int status, uint8_t type, const uint8_t *p, size_t n)
{
    struct copy *k = arg;
    if (status != 0) {
        copy_fail(k, uv_strerror(status));
        return;
    }
    if (type == (BUS_MIG_MARK | BUS_REPLY) && n >= 8) {
        struct wire_rd r = {p, p + n, false};
        k->acked = wire_get_u64(&r);
        /* The vbucket is paused: ask for the commit now, not at the next tick. */
        copy_step(k, (uint64_t)clock_ms());
    } else if (type == (BUS_MIG_BEGIN | BUS_REPLY) && k->st == CP_BEGIN) {
        struct wire_rd r = {p, p + n, false};
        uint8_t code = wire_get_u8(&r);
        if (code == RC_OK) {
            k->st = CP_WALK; /* records queued meanwhile go first: they are older */
        } else if (code == RC_BUSY) {
            k->retry_ms = (uint64_t)clock_ms() + 50; /* it has not applied the BEGIN yet */
        } else {
            copy_fail(k, "the target refused the copy");
        }
    }
}

static const struct topo_node *
node_by_num(uint32_t num)
{
    return topo_node_by_num(&ctl.topo, num);
}

static void
send_begin(struct copy *k)
{
    struct buf b;
    buf_init(&b);
    wire_u64(&b, k->copy_id);
    wire_u64(&b, k->vb);
    wire_u64(&b, k->first);
    wire_u64(&b, k->last);
    bus_stream_send(k->s, BUS_MIG_BEGIN, b.data, b.len);
    buf_deinit(&b);
    k->retry_ms = UINT64_MAX; /* until the answer */
}

static void
copy_start(uint32_t vb, uint64_t copy_id, uint32_t target)
{
    const struct topo_node *t = node_by_num(target);
    if (t == NULL) {
        return;
    }
    struct copy *k = xcalloc(1, sizeof(*k));
    k->vb = vb;
    k->copy_id = copy_id;
    k->target = target;
    unsigned per = TOPO_SLOTS / ctl.topo.nvb;
    k->first = vb * per;
    k->last = vb * per + per - 1;
    k->started_ms = (uint64_t)clock_ms();
    k->total = store_slot_range_count(ctl.store, k->first, k->last);
    pthread_mutex_init(&k->lock, NULL);
    buf_init(&k->queue);
    char addr[80];
    snprintf(addr, sizeof(addr), "%s:%u", t->ip, t->bus_port);
    k->s = bus_stream_open(&ctl.loop, addr, on_stream, k);
    k->next_copy = copies;
    copies = k;
    if (k->s == NULL) {
        copy_fail(k, "cannot open a stream to the target");
        return;
    }
    send_begin(k);
    struct mstream_consumer c = {
        .name = "vbucket copy", .accept = MSTREAM_ALL, .flags = MSTREAM_UNORDERED,
        .fn = on_mutation, .ctx = k,
    };
    k->consumer = mstream_register(ctl.stream, &c, NULL);
    log_info("cluster: copying a vbucket", "\"vb\":%u,\"to\":\"%s\",\"copy_id\":%llu", vb, t->id,
             (unsigned long long)copy_id);
}

static void
copy_free(struct copy *k)
{
    for (struct copy **p = &copies; *p; p = &(*p)->next_copy) {
        if (*p == k) {
            *p = k->next_copy;
            break;
        }
    }
    if (k->consumer > 0) {
        mstream_unregister(ctl.stream, k->consumer);
    }
    if (k->s) {
        bus_stream_close(k->s);
    }
    if (k->in_lap) {
        lap.vb[k->vb] = NULL;
        lap.n--;
    }
    pthread_mutex_destroy(&k->lock);
    buf_deinit(&k->queue);
    free(k);
}

/* Ask the leader for an entry (ours, or forwarded over the bus). */
static void
on_asked(void *arg, int status, uint8_t type, const uint8_t *p, size_t n)
{
    (void)arg, (void)status, (void)type, (void)p, (void)n;
}

static void
on_asked_local(void *arg, int status, int result)
{
    (void)arg, (void)status, (void)result;
}

static void
ask_leader(uint8_t bus_type, const struct buf *payload)
{
    if (ctl_is_leader()) {
        if (bus_type == BUS_PROPOSE) {
            craft_propose(ctl.raft, payload->data, payload->len, on_asked_local, NULL);
        } else {
            ctl_migrate_done_request(payload->data, payload->len);
        }
        return;
    }
    char lb[64];
    ctl_leader_bus_addr(lb, sizeof(lb));
    if (lb[0]) {
        bus_call(&ctl.loop, lb, bus_type, payload->data, payload->len, 1000, on_asked, NULL);
    }
}

static void
copy_fail(struct copy *k, const char *why)
{
    if (k->st == CP_FAILED) {
        return;
    }
    log_warn("cluster: a vbucket copy failed; asking to abort it",
             "\"vb\":%u,\"copy_id\":%llu,\"why\":\"%s\"", k->vb, (unsigned long long)k->copy_id,
             why);
    k->st = CP_FAILED;
    k->retry_ms = 0;
}

/* Move queued records to the socket, within the window. */
static void
copy_flush(struct copy *k)
{
    while (k->s && bus_stream_queued(k->s) < COPY_WINDOW) {
        pthread_mutex_lock(&k->lock);
        size_t n = buf_unread(&k->queue);
        if (n > COPY_FRAME) {
            n = COPY_FRAME;
        }
        if (n == 0) {
            pthread_mutex_unlock(&k->lock);
            return;
        }
        bus_stream_send(k->s, BUS_MIG_DATA, buf_rptr(&k->queue), n);
        buf_consume(&k->queue, n);
        pthread_mutex_unlock(&k->lock);
    }
}

/* Every queued record has been handed to the stream (which keeps order). */
static bool
copy_sent_all(struct copy *k)
{
    pthread_mutex_lock(&k->lock);
    bool empty = buf_unread(&k->queue) == 0;
    pthread_mutex_unlock(&k->lock);
    return empty && k->s;
}

static void
send_mark(struct copy *k)
{
    k->mark = ++k->marks;
    struct buf b;
    buf_init(&b);
    wire_u64(&b, k->mark);
    bus_stream_send(k->s, BUS_MIG_MARK, b.data, b.len);
    buf_deinit(&b);
}

static void
copy_step(struct copy *k, uint64_t now)
{
    if (k->overflow) {
        copy_fail(k, "the copy fell too far behind the writes");
    }
    if (k->st != CP_FAILED && now - k->started_ms > COPY_TIMEOUT_MS) {
        copy_fail(k, "timed out");
    }
    switch (k->st) {
    case CP_BEGIN:
        if (now >= k->retry_ms) {
            send_begin(k);
        }
        break;
    case CP_WALK: {
        /* the node's walk (lap_step) feeds the queue */
        copy_flush(k);
        if (k->walked && copy_sent_all(k)) {
            /* Everything walked is on the stream: a first MARK, gate open,
             * tells when the target has applied it. Only what is written
             * after that is left to send once the gate is paused. */
            send_mark(k);
            k->st = CP_CATCHUP;
        }
        break;
    }
    case CP_CATCHUP:
        copy_flush(k);
        if (k->acked != k->mark) {
            break;
        }
        gate_pause(k->vb, (int64_t)now);
        k->paused_ms = now;
        k->st = CP_PAUSING;
        /* Most often no write is inside, and the last MARK goes now. */
        /* fall through */
    case CP_PAUSING:
        if (!gate_idle(k->vb)) {
            break;
        }
        copy_flush(k);
        if (!copy_sent_all(k)) {
            break;
        }
        /* The stream keeps order: the target answers this MARK once it has
         * applied every record before it. */
        send_mark(k);
        k->st = CP_MARKED;
        break;
    case CP_MARKED:
        if (k->acked != k->mark) {
            if (now - k->paused_ms > 5000) {
                copy_fail(k, "the target did not confirm the last records");
            }
            break;
        }
        k->st = CP_DONE;
        k->retry_ms = 0;
        /* fall through */
    case CP_DONE:
        /* Ask for the commit, and again now and then until it is applied
         * here (a leader change loses the request). */
        if (now >= k->retry_ms) {
            struct buf b;
            buf_init(&b);
            wire_u64(&b, k->vb);
            wire_u64(&b, k->copy_id);
            ask_leader(BUS_MIG_DONE, &b);
            buf_deinit(&b);
            k->retry_ms = now + 1000;
        }
        break;
    case CP_FAILED:
        if (now >= k->retry_ms) {
            struct buf e;
            buf_init(&e);
            topo_entry_migrate_abort(&e, k->vb, k->copy_id);
            ask_leader(BUS_PROPOSE, &e);
            buf_deinit(&e);
            k->retry_ms = now + 500;
        }
        break;
    }
}

/* ---- dropping a range --------------------------------------------------------------- */

static void
drop_add(unsigned first, unsigned last)
{
    struct drop *d = xcalloc(1, sizeof(*d));
    d->first = first;
    d->last = last;
    d->next_drop = drops;
    drops = d;
}

static void
drop_cancel(unsigned first, unsigned last)
{
    for (struct drop **p = &drops; *p;) {
        struct drop *d = *p;
        if (d->first >= first && d->last <= last) {
            *p = d->next_drop;
            free(d);
        } else {
            p = &d->next_drop;
        }
    }
}

struct keylist {
    struct buf keys; /* size_t length, bytes; ... */
    size_t n;
};

static void
collect_key(const struct store_slot_entry *e, void *arg)
{
    struct keylist *kl = arg;
    buf_append(&kl->keys, &e->klen, sizeof(e->klen));
    buf_append(&kl->keys, e->key, e->klen);
    kl->n++;
}

/* One bounded step of emptying slots first..last: delete what one cursor
 * step finds. Returns the next cursor (0: nothing left); *n gets how many. */
static uint64_t
drop_step(unsigned first, unsigned last, uint64_t cursor, size_t max, size_t *n)
{
    struct keylist kl = {.n = 0};
    buf_init(&kl.keys);
    cursor = store_slot_scan(ctl.store, first, last, cursor, max, 0, collect_key, &kl);
    for (size_t off = 0; off < kl.keys.len;) {
        size_t len;
        memcpy(&len, kl.keys.data + off, sizeof(len));
        struct wal_rec r = {.type = WAL_REC_DEL, .key = kl.keys.data + off + sizeof(len), .klen = len};
        load_apply_publish(ctl.store, ctl.stream, &r);
        off += sizeof(len) + len;
    }
    buf_deinit(&kl.keys);
    *n = kl.n;
    return cursor;
}

/* Empty slots first..last now (a copy's target, before the copy: normally
 * nothing is there). */
static void
drop_now(unsigned first, unsigned last)
{
    if (store_slot_range_count(ctl.store, first, last) == 0) {
        return;
    }
    uint64_t c = 0;
    size_t n;
    do {
        c = drop_step(first, last, c, 4096, &n);
    } while (c != 0);
}

static void
drops_step(void)
{
    /* Not while committed entries wait to be applied here (a restart
     * replaying its log): a vbucket the replay takes away at one entry may
     * come back with its data at a later one -- a handover to this node whose
     * source has dropped its copy since -- and dropping it meanwhile would
     * lose those keys. */
    struct craft_status st;
    craft_status(ctl.raft, &st);
    if (st.applied_index < st.commit_index) {
        return;
    }
    size_t budget = DROP_KEYS_PER_TICK;
    for (struct drop **p = &drops; *p;) {
        struct drop *d = *p;
        while (!d->done && budget > 0) {
            size_t n;
            d->cursor = drop_step(d->first, d->last, d->cursor, budget < 4096 ? budget : 4096, &n);
            d->done = d->cursor == 0;
            budget -= n < budget ? n : budget;
            budget = budget > 64 ? budget - 64 : 0; /* a step costs even when it finds nothing */
        }
        if (d->done) {
            *p = d->next_drop;
            free(d);
        } else {
            p = &d->next_drop;
        }
        if (budget == 0) {
            break;
        }
    }
}

/* ---- the target ------------------------------------------------------------------ */

struct incoming {
    uint64_t copy_id;
    uint32_t vb;
    unsigned first, last;
    struct buf pending; /* record bytes not yet whole */
    uint64_t records;
    uint64_t lsn;       /* the WAL's LSN of the last record applied (sync WAL) */
    /* a MARK whose answer waits until the WAL has made lsn durable */
    struct bus_conn *conn;
    bool mark_waits;
    uint32_t mark_reqid;
    uint64_t mark;
    struct incoming *next_waiting;
};

/* Incoming copies with a MARK waiting for the write-ahead log. */
static struct incoming *waiting_marks;

static void
unwait(struct incoming *in)
{
    for (struct incoming **p = &waiting_marks; *p; p = &(*p)->next_waiting) {
        if (*p == in) {
            *p = in->next_waiting;
            break;
        }
    }
    in->mark_waits = false;
}

static void
incoming_free(void *p)
{
    struct incoming *in = p;
    if (in->mark_waits) {
        unwait(in);
    }
    buf_deinit(&in->pending);
    free(in);
}

/* Confirm a MARK: everything before it is applied here (and durable). */
static void
answer_mark(struct bus_conn *from, uint32_t reqid, uint64_t mark)
{
    struct buf b;
    buf_init(&b);
    wire_u64(&b, mark);
    bus_reply(from, reqid, BUS_MIG_MARK | BUS_REPLY, b.data, b.len);
    buf_deinit(&b);
}

/* MARKs whose records the write-ahead log has made durable by now. */
static void
answer_waiting_marks(void)
{
    if (waiting_marks == NULL) {
        return;
    }
    uint64_t synced = ctl.synced_lsn();
    for (struct incoming *in = waiting_marks, *next; in; in = next) {
        next = in->next_waiting;
        if (synced >= in->lsn) {
            unwait(in);
            answer_mark(in->conn, in->mark_reqid, in->mark);
        }
    }
}

static void
apply_pending(struct incoming *in)
{
    for (;;) {
        struct wal_rec rec;
        size_t used = 0;
        int rc = wal_rec_decode((const uint8_t *)buf_rptr(&in->pending), buf_unread(&in->pending),
                                &rec, &used);
        if (rc != 0) {
            break; /* incomplete (a damaged stream is caught by the MARK never matching) */
        }
        if (rec.type == WAL_REC_FLUSHALL) {
            /* FLUSHALL on the source empties this vbucket here, not the store. */
            drop_now(in->first, in->last);
        } else {
            int64_t lsn = load_apply_publish(ctl.store, ctl.stream, &rec);
            if (lsn > 0 && (uint64_t)lsn > in->lsn) {
                in->lsn = (uint64_t)lsn;
            }
        }
        in->records++;
        buf_consume(&in->pending, used);
    }
}

void
ctl_migrate_frame(struct bus_conn *from, uint32_t reqid, uint8_t type, const uint8_t *p, size_t n)
{
    struct incoming *in = bus_conn_data(from);
    struct wire_rd r = {p, p + n, false};
    switch (type) {
    case BUS_MIG_BEGIN: {
        uint64_t copy_id = wire_get_u64(&r), vb = wire_get_u64(&r);
        uint64_t first = wire_get_u64(&r), last = wire_get_u64(&r);
        if (r.bad || in != NULL || vb >= TOPO_MAX_VB || first > last || last >= TOPO_SLOTS) {
            ctl_reply_code(from, reqid, BUS_MIG_BEGIN, RC_REFUSED, "malformed copy");
            return;
        }
        if (vb >= ctl.topo.nvb || ctl.topo.vb[vb].copy_id != copy_id) {
            /* Not applied here yet (we lag the leader): ask again. Taking
             * data first could leave it behind if the copy then aborted. */
            ctl_reply_code(from, reqid, BUS_MIG_BEGIN, RC_BUSY, "not applied yet");
            return;
        }
        in = xcalloc(1, sizeof(*in));
        in->copy_id = copy_id;
        in->vb = (uint32_t)vb;
        in->first = (unsigned)first;
        in->last = (unsigned)last;
        buf_init(&in->pending);
        bus_conn_set_data(from, in, incoming_free);
        /* Whatever an earlier owner or copy left here goes first. */
        drop_now(in->first, in->last);
        ctl_reply_code(from, reqid, BUS_MIG_BEGIN, RC_OK, "");
        return;
    }
    case BUS_MIG_DATA:
        if (in == NULL) {
            return;
        }
        buf_append(&in->pending, p, n);
        apply_pending(in);
        return;
    case BUS_MIG_MARK: {
        uint64_t mark = wire_get_u64(&r);
        if (in == NULL || r.bad || buf_unread(&in->pending) != 0) {
            return; /* never acknowledged: the source aborts */
        }
        if (ctl.synced_lsn != NULL && in->lsn > ctl.synced_lsn()) {
            /* With the sync WAL the copy is confirmed once it is on disk
             * here: after the handover the source drops its data. */
            if (in->mark_waits) {
                unwait(in);
            }
            in->conn = from;
            in->mark_reqid = reqid;
            in->mark = mark;
            in->mark_waits = true;
            in->next_waiting = waiting_marks;
            waiting_marks = in;
            return;
        }
        answer_mark(from, reqid, mark);
        return;
    }
    }
}

/* ---- the leader's side: commit a finished copy ------------------------------------ */

static void
on_commit_proposed(void *arg, int status, int result)
{
    (void)arg, (void)status, (void)result;
}

void
ctl_migrate_done_request(const void *p, size_t n)
{
    struct wire_rd r = {p, (const uint8_t *)p + n, false};
    uint64_t vb = wire_get_u64(&r), copy_id = wire_get_u64(&r);
    if (r.bad || vb >= ctl.topo.nvb || !ctl_is_leader()) {
        return;
    }
    const struct topo_vb *v = &ctl.topo.vb[vb];
    if (v->copy_id != copy_id || copy_id == 0) {
        return;
    }
    /* The target first, then the rest of the ring's list for the vbucket
     * as it is now. */
    uint32_t *place = xmalloc((size_t)ctl.topo.nvb * ctl.topo.rf * sizeof(*place));
    uint8_t *place_n = xmalloc(ctl.topo.nvb);
    uint32_t list[TOPO_MAX_RF];
    unsigned k = 0;
    list[k++] = v->target;
    if (topo_place_all(&ctl.topo, place, place_n) == 0) {
        for (unsigned i = 0; i < place_n[vb] && k < ctl.topo.rf; i++) {
            uint32_t num = place[vb * ctl.topo.rf + i];
            if (num != v->target) {
                list[k++] = num;
            }
        }
    }
    free(place);
    free(place_n);
    struct buf e;
    buf_init(&e);
    topo_entry_migrate_commit(&e, (uint32_t)vb, copy_id, k, list);
    craft_propose(ctl.raft, e.data, e.len, on_commit_proposed, NULL);
    buf_deinit(&e);
}

void
ctl_handle_migrate_done(struct bus_conn *from, uint32_t reqid, const uint8_t *p, size_t n)
{
    if (!ctl_is_leader()) {
        char lb[64];
        ctl_leader_bus_addr(lb, sizeof(lb));
        ctl_reply_code(from, reqid, BUS_MIG_DONE, RC_NOT_LEADER, lb);
        return;
    }
    ctl_migrate_done_request(p, n);
    ctl_reply_code(from, reqid, BUS_MIG_DONE, RC_OK, "");
}

/* ---- after each topology change, and each tick --------------------------------------- */

static struct copy *
copy_of(uint32_t vb)
{
    for (struct copy *k = copies; k; k = k->next_copy) {
        if (k->vb == vb) {
            return k;
        }
    }
    return NULL;
}

void
ctl_migrate_on_topology(void)
{
    const struct topo_node *me = topo_node_by_id(&ctl.topo, ctl.node_id);
    uint32_t self = me ? me->num : 0;
    bool woke = false;
    /* Copies that ended: committed (the target is primary) or aborted. */
    for (struct copy *k = copies, *next; k; k = next) {
        next = k->next_copy;
        const struct topo_vb *v = k->vb < ctl.topo.nvb ? &ctl.topo.vb[k->vb] : NULL;
        if (v && v->copy_id == k->copy_id) {
            continue;
        }
        bool committed = v && v->n > 0 && v->nodes[0] == k->target;
        log_info(committed ? "cluster: vbucket handed over" : "cluster: vbucket copy aborted",
                 "\"vb\":%u,\"keys\":%llu,\"bytes\":%llu,\"ms\":%llu,\"paused_ms\":%llu",
                 k->vb, (unsigned long long)k->keys, (unsigned long long)k->bytes,
                 (unsigned long long)((uint64_t)clock_ms() - k->started_ms),
                 (unsigned long long)(k->paused_ms ? (uint64_t)clock_ms() - k->paused_ms : 0));
        if (committed) {
            ctl.migrations_completed++;
            ctl.keys_migrated += k->keys;
            ctl.bytes_migrated += k->bytes;
        }
        gate_resume(k->vb);
        woke = true;
        copy_free(k);
    }
    /* Copies to start: a vbucket we are primary of, with a copy in flight. */
    for (uint32_t vb = 0; vb < ctl.topo.nvb && self; vb++) {
        const struct topo_vb *v = &ctl.topo.vb[vb];
        if (v->copy_id != 0 && v->n > 0 && v->nodes[0] == self && copy_of(vb) == NULL) {
            copy_start(vb, v->copy_id, v->target);
        }
    }
    /* Vbuckets this node holds data of: the ones it is primary of, and the
     * ones a copy is bringing to it. One that leaves the set is dropped in
     * the background; one that comes back is not. */
    unsigned per = ctl.topo.nvb ? TOPO_SLOTS / ctl.topo.nvb : 0;
    for (uint32_t vb = 0; vb < ctl.topo.nvb; vb++) {
        const struct topo_vb *v = &ctl.topo.vb[vb];
        bool hold = self && ((v->n > 0 && v->nodes[0] == self) || v->target == self);
        if (held[vb] && !hold) {
            drop_add(vb * per, vb * per + per - 1);
        } else if (hold && !held[vb]) {
            drop_cancel(vb * per, vb * per + per - 1);
        }
        held[vb] = hold;
    }
    if (woke && ctl.wake_retries) {
        ctl.wake_retries();
    }
}

/* A walked item of some copy's vbucket, under its shard's lock. */
static void
on_lap_entry(const struct store_slot_entry *e, void *arg)
{
    size_t *visited = arg;
    (*visited)++;
    unsigned per = TOPO_SLOTS / ctl.topo.nvb;
    struct copy *k = lap.vb[e->slot / per];
    if (k != NULL) {
        on_entry(e, k);
    }
}

/* One tick of the node's walk: start a lap when copies wait for one, then
 * visit up to migration_batch_size keys per copy in the lap -- while every
 * one of their queues is short, so the walk never outruns the network by
 * more than a few frames. Each scan call is bounded in keys and in index
 * groups, and holds a shard lock briefly. */
static void
lap_step(uint64_t now)
{
    if (!lap.running) {
        for (struct copy *k = copies; k; k = k->next_copy) {
            if (k->st == CP_WALK && !k->walked && !k->in_lap && lap.vb[k->vb] == NULL) {
                lap.vb[k->vb] = k;
                k->in_lap = true;
                lap.n++;
            }
        }
        if (lap.n == 0) {
            return;
        }
        lap.running = true;
        lap.cursor = 0;
    }
    size_t budget = (size_t)ctl.batch * (lap.n ? lap.n : 1);
    while (budget > 0) {
        for (struct copy *k = copies; k; k = k->next_copy) {
            if (k->in_lap) {
                pthread_mutex_lock(&k->lock);
                size_t q = buf_unread(&k->queue);
                pthread_mutex_unlock(&k->lock);
                if (q > 4 * COPY_FRAME) {
                    return;
                }
            }
        }
        size_t visited = 0;
        lap.cursor = store_slot_scan(ctl.store, 0, TOPO_SLOTS - 1, lap.cursor,
                                     budget < 4096 ? budget : 4096, (int64_t)now, on_lap_entry,
                                     &visited);
        if (lap.cursor == 0) {
            /* the lap is over: every copy in it has walked */
            for (struct copy *k = copies; k; k = k->next_copy) {
                if (k->in_lap) {
                    k->in_lap = false;
                    k->walked = true;
                    lap.vb[k->vb] = NULL;
                }
            }
            lap.n = 0;
            lap.running = false;
            return;
        }
        budget -= visited < budget ? visited : budget;
        if (visited == 0) {
            budget = budget > 64 ? budget - 64 : 0; /* an empty step still costs */
        }
    }
}

void
ctl_migrate_tick(void)
{
    uint64_t now = (uint64_t)clock_ms();
    lap_step(now);
    for (struct copy *k = copies; k; k = k->next_copy) {
        copy_step(k, now);
    }
    drops_step();
    answer_waiting_marks();
}

unsigned
ctl_migrate_progress(struct cluster_copy_progress *out, unsigned max)
{
    unsigned n = 0;
    for (struct copy *k = copies; k && n < max; k = k->next_copy) {
        out[n].vb = k->vb;
        out[n].walked = k->keys;
        out[n].total = k->total;
        n++;
    }
    return n;
}

unsigned
ctl_migrations_active(void)
{
    unsigned n = 0;
    for (struct copy *k = copies; k; k = k->next_copy) {
        n++;
    }
    return n;
}

void
ctl_migrate_stop(void)
{
    while (copies) {
        gate_resume(copies->vb);
        copy_free(copies);
    }
    while (drops) {
        struct drop *d = drops;
        drops = d->next_drop;
        free(d);
    }
}
