/*
 * durable.c -- see durable.h.
 *
 * Recovery applies records into server.store through persist/load.h, before
 * any worker starts. Snapshots iterate the store one hash bucket at a time: the
 * bucket's items are copied out under the shard lock, then written to the
 * snapshot with no lock held, so clients never wait for snapshot I/O. The
 * snapshot is fuzzy; it records the LSN taken before iteration began, and
 * recovery replays every record after it. Records are state-based and
 * idempotent, so a key changed during the iteration ends with its last
 * logged state either way.
 *
 * The WAL is a consumer of the mutation stream (server.stream,
 * persist/mstream.h), registered once recovery is done and removed before
 * the log closes.
 */
#include "core/durable.h"

#include <errno.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/config.h"
#include "persist/load.h"
#include "persist/mstream.h"
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
    int consumer; /* the WAL's id on server.stream, 0 = none */
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

/*
 * The WAL's consumer of the mutation stream. It takes the commands' records
 * and evictions (a restart must not bring back what memory pressure threw
 * out), not expirations: replay drops records whose time has passed, so a
 * DEL for an expired key only costs log bytes. In cluster mode it takes the
 * vbucket copies a node receives and the keys it drops after handing a
 * vbucket over (MSTREAM_MOVED): the copy is as durable here as the writes
 * that follow it, and a restart does not bring back what was handed over.
 * It runs on the worker (the control thread for MOVED records), under
 * the key's shard lock: wal_append copies the records into the WAL's buffer and never makes
 * a syscall but a futex wake. It needs neither the stream's order (its LSNs
 * are handed out under its own lock, in the order it appends) nor slots.
 */
#define WAL_ACCEPT (MSTREAM_CLIENT | MSTREAM_EVICTED | MSTREAM_MOVED)

static int64_t
wal_consume(void *ctx, const struct mstream_rec *recs, size_t n)
{
    struct wal *w = ctx;
    if (n == 1) {
        return wal_append(w, &recs[0].rec);
    }
    /* a group (RENAME, MSET): the WAL wants the records side by side */
    struct wal_rec *v = xmalloc(n * sizeof(*v));
    for (size_t i = 0; i < n; i++) {
        v[i] = recs[i].rec;
    }
    int64_t lsn = wal_append_group(w, v, n);
    free(v);
    return lsn;
}

/* ---- recovery --------------------------------------------------------- */

/* Recovery hands every snapshot entry and log record, in order, to a bulk
 * loader (persist/load.h) on server.store: one applier thread per core. */
static int
apply(void *ctx, const struct wal_rec *rec)
{
    loader_add(ctx, rec);
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
                cursor = shard_scan(sh, cursor, copy_item, &ch);
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
    struct loader *ld = loader_create(server.store, loader_default_threads());
    int rc = persist_open(&pc, apply, ld, &rep, &D.p);
    loader_destroy(&ld);
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
    if (D.wal) {
        /* after recovery: what it applied is in the log already */
        struct mstream_consumer con = {
            .name = "wal",
            .accept = WAL_ACCEPT,
            .flags = MSTREAM_UNORDERED | MSTREAM_NO_SLOTS,
            .fn = wal_consume,
            .ctx = D.wal};
        D.consumer = mstream_register(&server.stream, &con, NULL);
    }
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
        if (D.consumer > 0) {
            mstream_unregister(&server.stream, D.consumer);
            D.consumer = 0;
        }
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
