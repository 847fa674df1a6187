/*
 * persist.h -- persistence as the server sees it: recovery at start-up, the
 * WAL, background snapshots with their policy, and the INFO figures.
 *
 * Start-up:   persist_open() = persist_recover() + wal_open() + the snapshot
 *             thread. Or call persist_recover() alone (tools, tests).
 * Writes:     wal_append()/wal_append_group() on persist_wal(p) (see wal.h).
 * Snapshots:  automatic per policy (WAL bytes or seconds since the last one),
 *             persist_bgsave() for BGSAVE, persist_save() for SAVE.
 * Shutdown:   persist_close() (waits for a running snapshot, flushes the WAL).
 *
 * Recovery algorithm (docs/wal-format.md, "Recovery"):
 *   1. newest valid snapshot (verified end to end before any key is applied;
 *      a damaged one is logged and the next older one tried);
 *   2. segments in LSN order, records with LSN > snapshot LSN applied in
 *      order, whole groups only; a SET or EXPIRE whose time is already past
 *      is applied as a DEL (so an older value is not resurrected either);
 *   3. a torn tail of the newest segment is truncated away and logged; any
 *      other damage stops recovery with "file F offset N: reason", unless
 *      skip_damaged, which skips it and logs how much was skipped;
 *   4. progress is logged every progress_ms for long recoveries.
 */
#ifndef CRAB_PERSIST_PERSIST_H
#define CRAB_PERSIST_PERSIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "persist/snap.h"
#include "persist/wal.h"
#include "persist/wal_format.h"

/* Apply one recovered record to the store (single-threaded, at start-up).
 * type is SET (snapshot entries come as SET with lsn 0), DEL, EXPIRE or
 * FLUSHALL; key/val are valid only during the call. Return 0, or non-zero
 * to abort recovery (persist_recover returns it). */
typedef int (*persist_apply_fn)(void *ctx, const struct wal_rec *rec);

/* Called once before anything is applied, with the number of entries in the
 * snapshot chosen and the bytes of log to replay (about 60-100 bytes per
 * small record), so the store can size its tables once instead of growing
 * them key by key. */
typedef void (*persist_hint_fn)(void *ctx, uint64_t snapshot_keys, uint64_t wal_bytes);

struct persist_recover_opts {
    bool skip_damaged;      /* skip damaged records instead of failing */
    persist_hint_fn hint;   /* optional; gets the apply ctx */
    unsigned progress_ms;   /* log progress this often (0 = 1000) */
    int64_t now_ms;         /* "now" for expiry decisions (0 = clock_ms()) */
    bool read_only;         /* do not truncate or delete anything */
};

struct persist_report {
    char snapshot[48];          /* snapshot file used, "" if none */
    uint64_t snapshot_lsn;
    uint64_t snapshot_keys;     /* entries applied from it */
    uint64_t snapshot_expired;  /* entries dropped as expired */
    unsigned snapshots_damaged; /* newer snapshots passed over */
    uint64_t segments;          /* segment files read */
    uint64_t records;           /* log records applied */
    uint64_t expired;           /* log records applied as DEL (time past) */
    uint64_t skipped_regions;   /* skip_damaged: damaged regions skipped */
    uint64_t skipped_bytes;
    uint64_t skipped_records;   /* valid records dropped with a broken group */
    uint64_t missing_lsns;      /* skip_damaged: LSNs absent from the log */
    bool torn;                  /* a torn tail was dropped */
    char torn_file[48];
    uint64_t torn_offset;       /* file truncated to this size */
    uint64_t torn_bytes;        /* bytes dropped */
    uint64_t bytes_read;        /* snapshot + segment bytes */
    uint64_t last_lsn;          /* last LSN applied or covered by the snapshot */
    uint64_t next_lsn;          /* give this to wal_open() as start_lsn */
    int64_t elapsed_us;
    char error[320];            /* why recovery failed */
};

/*
 * Recover the state in dir (a missing or empty dir is a fresh start) by
 * calling apply for every record, in order. Returns 0 with *rep filled, or a
 * negative code (WAL_E*, SNAP_E*, -errno, or apply's value) with rep->error
 * saying "file F offset N: reason". Modifies dir only to drop a torn tail
 * (truncate) or a torn empty segment (unlink), never otherwise.
 */
int persist_recover(const char *dir, persist_apply_fn apply, void *ctx,
                    const struct persist_recover_opts *opts, struct persist_report *rep);

struct persist_cfg {
    const char *dir;
    enum wal_sync_policy sync;
    uint64_t max_segment_size;     /* 0 = 64 MiB */
    uint64_t snapshot_wal_bytes;   /* snapshot after this much WAL (0 = off) */
    unsigned snapshot_interval_s;  /* snapshot this often if anything changed (0 = off) */
    unsigned snapshot_keep;        /* snapshots kept on disk (0 = 2) */
    bool skip_damaged;
    persist_hint_fn hint;          /* optional size hint before recovery */
    snap_iter_fn iter;             /* the server's key iterator (required) */
    void *iter_ctx;
    wal_notify_fn notify;          /* see wal.h */
    void *notify_ctx;
    const struct wal_io *io;       /* fault injection for tests (NULL) */
    unsigned wal_retry_ms;         /* 0 = WAL default */
};

struct persist;

/*
 * Recover (calling apply on this thread), then open the WAL after the last
 * recovered LSN and start the snapshot thread. Returns 0 and *out, or a
 * negative code with rep->error set; *rep is filled either way.
 */
int persist_open(const struct persist_cfg *cfg, persist_apply_fn apply, void *apply_ctx,
                 struct persist_report *rep, struct persist **out);

/* Stop the snapshot thread (after a running snapshot ends), close the WAL
 * (everything appended is written and fsync'd) and free *p. */
void persist_close(struct persist **p);

/* The WAL to append to (valid until persist_close). */
struct wal *persist_wal(struct persist *p);

/* Start a background snapshot now. 0 if started, -EINPROGRESS if one runs.
 * Any thread; does not block. */
int persist_bgsave(struct persist *p);

/* Take a snapshot and wait for it (SAVE). 0 or the snapshot's error. Blocks
 * the caller (not the store: clients go on). Any thread but a worker loop. */
int persist_save(struct persist *p);

struct persist_info {
    bool in_progress;
    int64_t last_save_ms;       /* Unix ms of the last successful snapshot (0 never) */
    int last_status;            /* 0 ok, else the last snapshot's error */
    char last_error[128];
    uint64_t last_lsn;          /* its LSN */
    uint64_t last_keys;
    uint64_t last_bytes;
    int64_t last_duration_us;
    uint64_t snapshots_ok, snapshots_failed;
    uint64_t changes_since_save; /* records appended since the last snapshot began */
    uint64_t wal_bytes_since_save;
    uint64_t segments_removed;
    struct wal_stats wal;
};

/* The figures for INFO persistence and /metrics. Any thread. */
void persist_info(struct persist *p, struct persist_info *info);

#endif
