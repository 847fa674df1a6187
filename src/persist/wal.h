/*
 * wal.h -- the write-ahead log writer: append from many threads, one WAL
 * thread that writes, rotates segments, fsyncs per policy and reports.
 *
 * Usage by the server (see docs/wal-format.md, "Using the WAL"):
 *   - at start-up, run persist_recover() (persist.h), then wal_open() with
 *     opts.start_lsn = report.next_lsn;
 *   - in a write command, under the shard lock(s): build the record(s) of the
 *     resulting state, call wal_append()/wal_append_group() FIRST; if it
 *     fails (< 0) reply an error and leave the store unchanged, else apply
 *     the change, still under the same lock, so that per-key order in the log
 *     equals apply order;
 *   - with policy sync, hold the reply until wal_durable_lsn() >= the LSN
 *     returned; the notify callback says when durable_lsn moved (or the error
 *     state changed), from the WAL thread, e.g. to uv_async_send() a worker.
 *
 * Records are state-based: SET carries the resulting value and absolute
 * expiry (INCR/APPEND/... log a SET), DEL a deletion, EXPIRE a new absolute
 * expiry (0 = PERSIST), FLUSHALL everything. An EXPIRE whose time is already
 * past must be logged as DEL. FLUSHALL must be appended while the server holds
 * every shard lock (so its place in the log is consistent with every key).
 * RENAME = wal_append_group({DEL src, SET dst}) with both shard locks held.
 *
 * Thread-safety: wal_append*, wal_*_lsn, wal_error, wal_stats, wal_flush and
 * wal_remove_below may be called from any thread at the same time; wal_open
 * and wal_close from one thread, with no call in flight.
 */
#ifndef CRAB_PERSIST_WAL_H
#define CRAB_PERSIST_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "persist/wal_format.h"

enum wal_sync_policy {
    WAL_SYNC_NONE = 0, /* write(2) only; the OS decides when it hits the disk */
    WAL_SYNC_ASYNC,    /* fdatasync in the background at least every second */
    WAL_SYNC_ALWAYS,   /* durable before acknowledged; group commit */
};

/* "none"/"no", "async"/"everysec", "sync"/"always" -> policy, or -1. */
int wal_sync_policy_parse(const char *name);
/* "none", "async" or "sync". */
const char *wal_sync_policy_name(enum wal_sync_policy p);

/* Injectable I/O for fault tests (NULL members mean the real syscalls). */
struct wal_io {
    ssize_t (*pwrite)(void *ctx, int fd, const void *buf, size_t n, off_t off);
    int (*fdatasync)(void *ctx, int fd);
    void *ctx;
};

/* Called on the WAL thread, with no WAL lock held, whenever durable_lsn
 * advances or the error state changes (err: 0 or the new -errno). Must be
 * quick and must not call wal_close(). */
typedef void (*wal_notify_fn)(void *ctx, uint64_t durable_lsn, int err);

struct wal_opts {
    const char *dir;                /* copied */
    enum wal_sync_policy sync;
    uint64_t max_segment_size;      /* bytes, default 64 MiB, min 4 KiB */
    uint64_t start_lsn;             /* first LSN to assign (>= 1) */
    unsigned flush_interval_ms;     /* none/async: max time data waits in memory (10) */
    unsigned fsync_interval_ms;     /* async: fsync period (1000) */
    unsigned retry_interval_ms;     /* error state: retry period (500) */
    size_t max_pending;             /* appends fail -ENOBUFS beyond this (256 MiB) */
    wal_notify_fn notify;
    void *notify_ctx;
    const struct wal_io *io;        /* NULL = real I/O; must outlive the WAL */
};

/* Fill opts with the defaults above (dir NULL, start_lsn 1, policy async). */
void wal_opts_init(struct wal_opts *opts);

struct wal;

/*
 * Open the log in opts->dir (created if missing): list the segments already
 * there (recovery has verified them), create a new segment starting at
 * opts->start_lsn and start the WAL thread. Returns 0 and sets *out, or
 * -errno (-EINVAL for bad options, -EEXIST if a segment for start_lsn
 * already holds records). Blocks on file I/O.
 */
int wal_open(const struct wal_opts *opts, struct wal **out);

/*
 * Write and fsync everything appended so far (whatever the policy), stop the
 * thread, close files and free *w (set to NULL). If the WAL is in an error
 * state it tries once more and logs how many records could not be written.
 */
void wal_close(struct wal **w);

/*
 * Append one record; returns its LSN (> 0) or a negative code: the current
 * error (wal_error) while the WAL is in the error state, -ENOBUFS when more
 * than max_pending bytes wait for the disk, -EINVAL for a record that cannot
 * be encoded, -ESHUTDOWN after close began. Copies the record; never makes a
 * syscall except a futex wake when the WAL thread sleeps. rec->lsn and
 * rec->flags are ignored.
 */
int64_t wal_append(struct wal *w, const struct wal_rec *rec);

/*
 * Append n >= 1 records as one group (consecutive LSNs, one segment, applied
 * all-or-nothing at recovery). Returns the LSN of the LAST record, or a
 * negative code as wal_append (then nothing was appended).
 */
int64_t wal_append_group(struct wal *w, const struct wal_rec *recs, size_t n);

/* Last LSN assigned (0 if none yet this run and start_lsn was 1). */
uint64_t wal_last_lsn(struct wal *w);
/* Every record with LSN <= this has been written to the segment files. */
uint64_t wal_written_lsn(struct wal *w);
/* Every record with LSN <= this is on disk (fdatasync'd). */
uint64_t wal_durable_lsn(struct wal *w);

/* 0 if healthy, else the -errno of the write error in progress; msg (if not
 * NULL) gets a one-line description such as
 * "write wal-0000000000000001.log: No space left on device". */
int wal_error(struct wal *w, char *msg, size_t msglen);

/*
 * Ask the WAL thread to write (and, if durable, fdatasync) at least up to
 * lsn now, and wait up to timeout_ms (< 0: forever). Returns 0, -ETIMEDOUT,
 * or the error state. Blocks: not for worker event loops (SAVE, shutdown,
 * snapshots and tests).
 */
int wal_flush(struct wal *w, uint64_t lsn, bool durable, int timeout_ms);

/*
 * Delete closed segments every record of which has LSN <= lsn (after a
 * snapshot covering lsn is durable). Never deletes the segment being written.
 * Returns the number of files removed (>= 0) or -errno; *freed gets their
 * total size if not NULL. Blocks on unlink and a directory fsync.
 */
int wal_remove_below(struct wal *w, uint64_t lsn, uint64_t *freed);

struct wal_stats {
    uint64_t last_lsn, written_lsn, durable_lsn;
    uint64_t appends;        /* records appended */
    uint64_t append_bytes;   /* encoded bytes appended */
    uint64_t write_bytes;    /* bytes written to segment files */
    uint64_t writes;         /* write batches */
    uint64_t fsyncs;
    uint64_t fsync_us_total, fsync_us_max, fsync_us_last;
    uint64_t segments;       /* segment files on disk */
    uint64_t disk_bytes;     /* their total size */
    uint64_t pending_bytes;  /* appended, not yet written */
    uint64_t write_errors;   /* failed write/fsync attempts */
    int err;                 /* current error state (0 = healthy) */
    enum wal_sync_policy sync;
};

/* Snapshot of the counters (consistent enough for INFO). */
void wal_stats(struct wal *w, struct wal_stats *st);

#endif
