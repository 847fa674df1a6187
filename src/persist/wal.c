/*
 * wal.c -- the WAL writer: many appenders, one writer thread, group commit.
 *
 * Appenders encode records straight into the ACTIVE buffer under w->lock
 * (a memcpy and a counter bump: the only cost on a worker thread) and take
 * consecutive LSNs, so the order of bytes in the log is the order of LSNs.
 * The WAL thread swaps ACTIVE with its PENDING buffer, writes PENDING to the
 * current segment with pwrite at an offset it tracks itself, and then, per
 * policy:
 *   sync   fdatasync after every batch: everything appended while the
 *          previous fdatasync ran is covered by the next one (group commit).
 *          When fewer bytes wait than half the last batch, the thread gives
 *          the clients that batch released up to half the last fdatasync's
 *          time (at most 2 ms) to send their next writes, so the clients do
 *          not split into a small and a large batch taking turns;
 *   async  fdatasync when a second has passed since the last one;
 *   none   no fdatasync, except at segment rotation and close.
 * After an fdatasync it publishes durable_lsn and calls the notify callback.
 *
 * The thread waits on a condition variable. Appenders signal it only when it
 * is asleep and needs waking: for sync when the batch is big enough (above);
 * for none/async only when it
 * sleeps with nothing buffered, or the buffer passed WAKE_BYTES. Under load
 * the thread never sleeps, so appenders make no syscall at all.
 *
 * Rotation happens between groups: a batch is cut at the last group boundary
 * that keeps the segment under max_segment_size (a group larger than that
 * gets a segment of its own). The old segment is fdatasync'd before the new
 * one is created, and the directory fsync'd after, so only the newest
 * segment can ever have a torn tail.
 *
 * Errors (ENOSPC, EIO, ...): the thread records the error (wal_error), and
 * appends fail fast from then on. A partially written batch is cut back with
 * ftruncate to the last complete group written before it, so bytes already
 * written, let alone acknowledged, are never rewritten. Every
 * retry_interval_ms the thread tries again from where it stopped; on success
 * it clears the error and appends are accepted again.
 */
#include "persist/wal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "persist/pfile.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/mem.h"

#define WAKE_BYTES (1u << 20)      /* none/async: wake the thread past this */
#define KEEP_BYTES (4u << 20)      /* buffer capacity kept between batches */

struct wal_seg {
    uint64_t first_lsn;
    uint64_t size;
};

struct wal {
    char *dir;
    struct wal_opts opts;
    pthread_t thread;

    pthread_mutex_t lock;    /* protects the block below */
    pthread_cond_t wake;     /* the WAL thread sleeps here */
    pthread_cond_t done;     /* wal_flush() callers sleep here */
    struct buf active;       /* encoded records not yet taken by the thread */
    uint64_t next_lsn;       /* next LSN to assign */
    bool thread_waiting;     /* the thread sleeps on wake */
    bool idle;               /* ... and has nothing buffered */
    bool stop;
    uint64_t want_written;   /* wal_flush() requests */
    uint64_t want_durable;
    int64_t flush_due_us;    /* none/async: write ACTIVE by then (0 = unset) */
    size_t last_batch;       /* sync: bytes of the batch last taken */
    size_t gather_bytes;     /* sync: wake the thread at this much (0: at once) */
    int64_t gather_until_us; /* sync: ... or at this time (0 = no window) */
    char errmsg[200];
    uint64_t appends, append_bytes;

    _Atomic int err;
    _Atomic uint64_t written_lsn, durable_lsn, pending_bytes;
    _Atomic uint64_t write_bytes, writes, fsyncs, fsync_us_total, fsync_us_max,
        fsync_us_last, write_errors;

    /* WAL thread only (and wal_open/wal_close) */
    struct buf pend;
    size_t pend_off;
    int fd;
    uint64_t seg_first;
    uint64_t seg_size;
    bool tail_dirty;         /* bytes past seg_size may hold a failed write */
    bool sync_failed;
    int64_t last_fsync_us;
    int64_t retry_at_us;
    char failed_op[96];      /* what failed, for errmsg */

    pthread_mutex_t seg_lock; /* protects segs */
    struct wal_seg *segs;
    size_t nsegs, segcap;
};

int
wal_sync_policy_parse(const char *name)
{
    if (strcmp(name, "none") == 0 || strcmp(name, "no") == 0) {
        return WAL_SYNC_NONE;
    }
    if (strcmp(name, "async") == 0 || strcmp(name, "everysec") == 0) {
        return WAL_SYNC_ASYNC;
    }
    if (strcmp(name, "sync") == 0 || strcmp(name, "always") == 0) {
        return WAL_SYNC_ALWAYS;
    }
    return -1;
}

const char *
wal_sync_policy_name(enum wal_sync_policy p)
{
    switch (p) {
    case WAL_SYNC_NONE: return "none";
    case WAL_SYNC_ASYNC: return "async";
    case WAL_SYNC_ALWAYS: return "sync";
    }
    return "?";
}

void
wal_opts_init(struct wal_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->sync = WAL_SYNC_ASYNC;
    o->max_segment_size = 64u << 20;
    o->start_lsn = 1;
    o->flush_interval_ms = 10;
    o->fsync_interval_ms = 1000;
    o->retry_interval_ms = 500;
    o->max_pending = 256u << 20;
}

/* ---- I/O through the injectable table ------------------------------------ */

static int
io_pwrite_all(struct wal *w, const void *buf, size_t n, off_t off)
{
    const struct wal_io *io = w->opts.io;
    if (io == NULL || io->pwrite == NULL) {
        return pfile_pwrite_all(w->fd, buf, n, off);
    }
    const char *p = buf;
    while (n > 0) {
        ssize_t r = io->pwrite(io->ctx, w->fd, p, n, off);
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        if (r == 0) {
            return -EIO;
        }
        p += r;
        n -= (size_t)r;
        off += r;
    }
    return 0;
}

static int
io_fdatasync(struct wal *w)
{
    const struct wal_io *io = w->opts.io;
    int64_t t0 = clock_mono_us();
    int rc;
    if (io != NULL && io->fdatasync != NULL) {
        rc = io->fdatasync(io->ctx, w->fd) < 0 ? -errno : 0;
    } else {
        rc = fdatasync(w->fd) < 0 ? -errno : 0;
    }
    int64_t now = clock_mono_us();
    uint64_t us = (uint64_t)(now - t0);
    w->last_fsync_us = now;
    if (rc == 0) {
        atomic_fetch_add(&w->fsyncs, 1);
        atomic_fetch_add(&w->fsync_us_total, us);
        atomic_store(&w->fsync_us_last, us);
        if (us > atomic_load(&w->fsync_us_max)) {
            atomic_store(&w->fsync_us_max, us);
        }
    }
    return rc;
}

/* ---- segments ------------------------------------------------------------ */

static void
seg_push(struct wal *w, uint64_t first_lsn, uint64_t size)
{
    pthread_mutex_lock(&w->seg_lock);
    if (w->nsegs == w->segcap) {
        w->segcap = w->segcap ? w->segcap * 2 : 16;
        w->segs = xrealloc(w->segs, w->segcap * sizeof(*w->segs));
    }
    w->segs[w->nsegs].first_lsn = first_lsn;
    w->segs[w->nsegs].size = size;
    w->nsegs++;
    pthread_mutex_unlock(&w->seg_lock);
}

static void
seg_set_size(struct wal *w, uint64_t size)
{
    pthread_mutex_lock(&w->seg_lock);
    if (w->nsegs > 0) {
        w->segs[w->nsegs - 1].size = size;
    }
    pthread_mutex_unlock(&w->seg_lock);
}

/* Create the segment for first_lsn and write its header. A leftover file of
 * that name holding no record (a header at most) is replaced. */
static int
seg_create(struct wal *w, uint64_t first_lsn, int *fd_out)
{
    char name[40], path[4096];
    wal_seg_name(first_lsn, name, sizeof(name));
    int rc = pfile_join(path, sizeof(path), w->dir, name);
    if (rc < 0) {
        return rc;
    }
    snprintf(w->failed_op, sizeof(w->failed_op), "create %s", name);
    int fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0 && errno == EEXIST) {
        struct stat st;
        if (stat(path, &st) == 0 && st.st_size <= (off_t)WAL_SEG_HDR_SIZE) {
            fd = open(path, O_TRUNC | O_WRONLY | O_CLOEXEC);
        } else {
            errno = EEXIST;
        }
    }
    if (fd < 0) {
        return -errno;
    }
    uint8_t hdr[WAL_SEG_HDR_SIZE];
    wal_seg_hdr_encode(first_lsn, hdr);
    int saved = w->fd;
    w->fd = fd;
    rc = io_pwrite_all(w, hdr, sizeof(hdr), 0);
    w->fd = saved;
    if (rc == 0) {
        rc = pfile_fsync_dir(w->dir);
    }
    if (rc < 0) {
        close(fd);
        unlink(path);
        return rc;
    }
    *fd_out = fd;
    return 0;
}

/* Close the current segment durably and start one at first_lsn. */
static int
seg_rotate(struct wal *w, uint64_t first_lsn)
{
    char name[40];
    wal_seg_name(w->seg_first, name, sizeof(name));
    snprintf(w->failed_op, sizeof(w->failed_op), "fdatasync %s", name);
    int rc = io_fdatasync(w);
    if (rc < 0) {
        w->sync_failed = true;
        return rc;
    }
    w->sync_failed = false;
    atomic_store(&w->durable_lsn, atomic_load(&w->written_lsn));
    int fd;
    rc = seg_create(w, first_lsn, &fd);
    if (rc < 0) {
        return rc;
    }
    close(w->fd);
    w->fd = fd;
    w->seg_first = first_lsn;
    w->seg_size = WAL_SEG_HDR_SIZE;
    seg_push(w, first_lsn, WAL_SEG_HDR_SIZE);
    log_debug("wal segment rotated", "\"first_lsn\":%" PRIu64, first_lsn);
    return 0;
}

/* ---- the WAL thread ------------------------------------------------------ */

/* Write PENDING from pend_off on, cutting at group boundaries to rotate. */
static int
write_pending(struct wal *w)
{
    const uint8_t *data = (const uint8_t *)w->pend.data;
    size_t len = w->pend.len;
    while (w->pend_off < len) {
        size_t start = w->pend_off, end = start, p = start;
        uint64_t last_lsn = 0, chunk_last = 0;
        while (p < len) {
            uint32_t plen = wal_get_u32(data + p + 4);
            uint8_t flags = data[p + 17];
            last_lsn = wal_get_u64(data + p + 8);
            p += WAL_REC_HDR_SIZE + plen;
            if (flags & WAL_F_MORE) {
                continue;
            }
            bool empty_seg = w->seg_size <= WAL_SEG_HDR_SIZE && end == start;
            if (w->seg_size + (p - start) > w->opts.max_segment_size && !empty_seg) {
                break;
            }
            end = p;
            chunk_last = last_lsn;
        }
        if (end > start) {
            char name[40];
            wal_seg_name(w->seg_first, name, sizeof(name));
            snprintf(w->failed_op, sizeof(w->failed_op), "write %s", name);
            int rc = io_pwrite_all(w, data + start, end - start, (off_t)w->seg_size);
            if (rc < 0) {
                w->tail_dirty = true;
                return rc;
            }
            w->seg_size += end - start;
            seg_set_size(w, w->seg_size);
            w->pend_off = end;
            atomic_fetch_add(&w->write_bytes, end - start);
            atomic_fetch_add(&w->writes, 1);
            atomic_fetch_sub(&w->pending_bytes, end - start);
            atomic_store(&w->written_lsn, chunk_last);
        }
        if (w->pend_off < len) {
            int rc = seg_rotate(w, wal_get_u64(data + w->pend_off + 8));
            if (rc < 0) {
                return rc;
            }
        }
    }
    return 0;
}

/* Cut a failed write back to the last good boundary. */
static int
repair_tail(struct wal *w)
{
    char name[40];
    wal_seg_name(w->seg_first, name, sizeof(name));
    snprintf(w->failed_op, sizeof(w->failed_op), "truncate %s", name);
    if (ftruncate(w->fd, (off_t)w->seg_size) < 0) {
        return -errno;
    }
    w->tail_dirty = false;
    return 0;
}

static void
cond_wait_until(pthread_cond_t *c, pthread_mutex_t *m, int64_t deadline_us)
{
    if (deadline_us == INT64_MAX) {
        pthread_cond_wait(c, m);
        return;
    }
    struct timespec ts = { .tv_sec = deadline_us / 1000000,
                           .tv_nsec = (deadline_us % 1000000) * 1000 };
    pthread_cond_timedwait(c, m, &ts);
}

static inline int64_t
min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/* Decide, with w->lock held, whether the thread has work now; if not,
 * returns the monotonic deadline to sleep until (INT64_MAX: until woken). */
static bool
has_work(struct wal *w, int64_t now, int64_t *deadline)
{
    uint64_t written = atomic_load(&w->written_lsn);
    uint64_t durable = atomic_load(&w->durable_lsn);
    bool active = w->active.len > 0;
    bool unsynced = written > durable;
    enum wal_sync_policy pol = w->opts.sync;

    *deadline = INT64_MAX;
    if (atomic_load(&w->err) != 0) {
        if (w->stop || now >= w->retry_at_us) {
            return true;
        }
        *deadline = w->retry_at_us;
        return false;
    }
    if (w->stop || w->pend_off < w->pend.len) {
        return true;
    }
    if (active) {
        if (w->flush_due_us == 0) {
            w->flush_due_us = now + (int64_t)w->opts.flush_interval_ms * 1000;
        }
        if (pol == WAL_SYNC_ALWAYS && !(w->want_written > written || w->want_durable > durable)) {
            /* gather: while fewer bytes wait than half the last batch, give
             * the clients that batch released up to half an fdatasync to
             * come back */
            if (w->gather_until_us == 0) {
                int64_t win = (int64_t)atomic_load(&w->fsync_us_last) / 2;
                w->gather_until_us = now + (win < 2000 ? win : 2000);
                w->gather_bytes = w->last_batch / 2;
            }
            if (w->active.len >= w->gather_bytes || now >= w->gather_until_us) {
                return true;
            }
            *deadline = w->gather_until_us;
            return false;
        }
        if (pol == WAL_SYNC_ALWAYS || w->active.len >= WAKE_BYTES ||
            w->want_written > written || w->want_durable > durable || now >= w->flush_due_us) {
            return true;
        }
        *deadline = w->flush_due_us;
    }
    if (unsynced) {
        int64_t due = w->last_fsync_us + (int64_t)w->opts.fsync_interval_ms * 1000;
        if (w->want_durable > durable || (pol == WAL_SYNC_ASYNC && now >= due)) {
            return true;
        }
        if (pol == WAL_SYNC_ASYNC) {
            *deadline = min64(*deadline, due);
        }
    }
    return false;
}

static void *
wal_thread(void *arg)
{
    struct wal *w = arg;
    pthread_mutex_lock(&w->lock);
    for (;;) {
        int64_t deadline;
        while (!has_work(w, clock_mono_us(), &deadline)) {
            w->thread_waiting = true;
            w->idle = w->active.len == 0;
            cond_wait_until(&w->wake, &w->lock, deadline);
            w->thread_waiting = false;
        }
        bool stopping = w->stop;
        if (w->pend_off == w->pend.len && w->active.len > 0) {
            struct buf t = w->pend;
            w->pend = w->active;
            w->active = t;
            buf_reset(&w->active, KEEP_BYTES);
            w->pend_off = 0;
            w->flush_due_us = 0;
            w->last_batch = w->pend.len;
            w->gather_until_us = 0;
            w->gather_bytes = 0;
        }
        uint64_t want_durable = w->want_durable;
        int old_err = atomic_load(&w->err);
        uint64_t old_durable = atomic_load(&w->durable_lsn);
        pthread_mutex_unlock(&w->lock);

        int rc = 0;
        if (w->tail_dirty) {
            rc = repair_tail(w);
        }
        if (rc == 0) {
            rc = write_pending(w);
        }
        if (rc == 0 && w->pend_off == w->pend.len && w->pend.len > 0) {
            buf_reset(&w->pend, KEEP_BYTES);
            w->pend_off = 0;
        }
        uint64_t written = atomic_load(&w->written_lsn);
        if (rc == 0 && (written > atomic_load(&w->durable_lsn) || w->sync_failed)) {
            int64_t due = w->last_fsync_us + (int64_t)w->opts.fsync_interval_ms * 1000;
            if (w->opts.sync == WAL_SYNC_ALWAYS || stopping || w->sync_failed ||
                want_durable > atomic_load(&w->durable_lsn) ||
                (w->opts.sync == WAL_SYNC_ASYNC && clock_mono_us() >= due)) {
                char name[40];
                wal_seg_name(w->seg_first, name, sizeof(name));
                snprintf(w->failed_op, sizeof(w->failed_op), "fdatasync %s", name);
                rc = io_fdatasync(w);
                w->sync_failed = rc < 0;
                if (rc == 0) {
                    atomic_store(&w->durable_lsn, written);
                }
            }
        }

        pthread_mutex_lock(&w->lock);
        int new_err = old_err;
        if (rc < 0) {
            atomic_fetch_add(&w->write_errors, 1);
            w->retry_at_us = clock_mono_us() + (int64_t)w->opts.retry_interval_ms * 1000;
            if (old_err == 0 || old_err != rc) {
                snprintf(w->errmsg, sizeof(w->errmsg), "%s: %s", w->failed_op, strerror(-rc));
                log_error("wal write failed, appends refused until it succeeds",
                          "\"op\":\"%s\",\"errno\":%d,\"error\":\"%s\"", w->failed_op, -rc,
                          strerror(-rc));
            }
            new_err = rc;
            atomic_store(&w->err, rc);
        } else if (old_err != 0) {
            new_err = 0;
            atomic_store(&w->err, 0);
            w->errmsg[0] = '\0';
            log_info("wal writes resumed", "\"written_lsn\":%" PRIu64, written);
        }
        pthread_cond_broadcast(&w->done);
        uint64_t durable = atomic_load(&w->durable_lsn);
        bool all_done = w->active.len == 0 && w->pend_off == w->pend.len &&
                        durable == atomic_load(&w->written_lsn) && !w->tail_dirty;
        if ((durable != old_durable || new_err != old_err) && w->opts.notify != NULL) {
            pthread_mutex_unlock(&w->lock);
            w->opts.notify(w->opts.notify_ctx, durable, new_err);
            pthread_mutex_lock(&w->lock);
        }
        if (stopping && (all_done || rc < 0)) {
            if (rc < 0) {
                log_error("wal closed with records not on disk",
                          "\"last_lsn\":%" PRIu64 ",\"durable_lsn\":%" PRIu64 ",\"error\":\"%s\"",
                          w->next_lsn - 1, durable, w->errmsg);
            }
            break;
        }
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

/* ---- public API ---------------------------------------------------------- */

static int
load_segments(struct wal *w)
{
    struct pfile_entry *list;
    int n = pfile_list(w->dir, wal_seg_name_parse, &list);
    if (n < 0) {
        return n;
    }
    int rc = 0;
    for (int i = 0; i < n; i++) {
        char path[4096];
        struct stat st;
        if (pfile_join(path, sizeof(path), w->dir, list[i].name) < 0 || stat(path, &st) < 0) {
            continue;
        }
        if (list[i].key >= w->opts.start_lsn) {
            if (list[i].key == w->opts.start_lsn && st.st_size <= (off_t)WAL_SEG_HDR_SIZE) {
                continue; /* replaced by seg_create */
            }
            log_error("wal segment ahead of start LSN (run recovery first)",
                      "\"file\":\"%s\",\"start_lsn\":%" PRIu64, list[i].name, w->opts.start_lsn);
            rc = -EEXIST;
            break;
        }
        seg_push(w, list[i].key, (uint64_t)st.st_size);
    }
    pfile_list_free(list, n);
    return rc;
}

int
wal_open(const struct wal_opts *opts, struct wal **out)
{
    *out = NULL;
    if (opts->dir == NULL || opts->start_lsn == 0 || opts->max_segment_size < 4096 ||
        opts->sync > WAL_SYNC_ALWAYS) {
        return -EINVAL;
    }
    int rc = pfile_mkdir(opts->dir);
    if (rc < 0) {
        return rc;
    }
    struct wal *w = xcalloc(1, sizeof(*w));
    w->opts = *opts;
    w->dir = xstrdup(opts->dir);
    w->opts.dir = w->dir;
    if (w->opts.flush_interval_ms == 0) {
        w->opts.flush_interval_ms = 1;
    }
    if (w->opts.fsync_interval_ms == 0 || w->opts.fsync_interval_ms > 1000) {
        w->opts.fsync_interval_ms = 1000;
    }
    if (w->opts.retry_interval_ms == 0) {
        w->opts.retry_interval_ms = 500;
    }
    if (w->opts.max_pending == 0) {
        w->opts.max_pending = 256u << 20;
    }
    pthread_mutex_init(&w->lock, NULL);
    pthread_mutex_init(&w->seg_lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->wake, &ca);
    pthread_cond_init(&w->done, &ca);
    pthread_condattr_destroy(&ca);
    buf_init(&w->active);
    buf_init(&w->pend);
    w->next_lsn = opts->start_lsn;
    atomic_store(&w->written_lsn, opts->start_lsn - 1);
    atomic_store(&w->durable_lsn, opts->start_lsn - 1);
    w->fd = -1;
    w->last_fsync_us = clock_mono_us();

    rc = load_segments(w);
    if (rc == 0) {
        rc = seg_create(w, opts->start_lsn, &w->fd);
    }
    if (rc == 0) {
        w->seg_first = opts->start_lsn;
        w->seg_size = WAL_SEG_HDR_SIZE;
        seg_push(w, opts->start_lsn, WAL_SEG_HDR_SIZE);
        rc = -pthread_create(&w->thread, NULL, wal_thread, w);
    }
    if (rc != 0) {
        if (w->fd >= 0) {
            close(w->fd);
        }
        buf_deinit(&w->active);
        buf_deinit(&w->pend);
        free(w->segs);
        free(w->dir);
        free(w);
        return rc;
    }
    log_info("wal opened", "\"dir\":\"%s\",\"sync\":\"%s\",\"start_lsn\":%" PRIu64
             ",\"max_segment_size\":%" PRIu64,
             w->dir, wal_sync_policy_name(w->opts.sync), opts->start_lsn,
             w->opts.max_segment_size);
    *out = w;
    return 0;
}

void
wal_close(struct wal **wp)
{
    struct wal *w = *wp;
    if (w == NULL) {
        return;
    }
    pthread_mutex_lock(&w->lock);
    w->stop = true;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    if (w->fd >= 0) {
        close(w->fd);
    }
    buf_deinit(&w->active);
    buf_deinit(&w->pend);
    pthread_cond_destroy(&w->wake);
    pthread_cond_destroy(&w->done);
    pthread_mutex_destroy(&w->lock);
    pthread_mutex_destroy(&w->seg_lock);
    free(w->segs);
    free(w->dir);
    free(w);
    *wp = NULL;
}

int64_t
wal_append_group(struct wal *w, const struct wal_rec *recs, size_t n)
{
    size_t total = 0;
    if (n == 0) {
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        size_t sz = wal_rec_size(&recs[i]);
        if (sz == 0) {
            return -EINVAL;
        }
        total += sz;
    }
    int err = atomic_load_explicit(&w->err, memory_order_relaxed);
    if (err != 0) {
        return err;
    }
    pthread_mutex_lock(&w->lock);
    if (w->stop) {
        pthread_mutex_unlock(&w->lock);
        return -ESHUTDOWN;
    }
    err = atomic_load(&w->err);
    if (err != 0) {
        pthread_mutex_unlock(&w->lock);
        return err;
    }
    if (w->active.len > 0 && w->active.len + total + atomic_load(&w->pending_bytes) >
                                 w->opts.max_pending) {
        pthread_mutex_unlock(&w->lock);
        return -ENOBUFS;
    }
    uint8_t *out = (uint8_t *)buf_reserve(&w->active, total);
    for (size_t i = 0; i < n; i++) {
        uint8_t flags = (uint8_t)((i + 1 < n ? WAL_F_MORE : 0) | (i > 0 ? WAL_F_CONT : 0));
        out += wal_rec_encode(&recs[i], w->next_lsn++, flags, out);
    }
    w->active.len += total;
    w->appends += n;
    w->append_bytes += total;
    atomic_fetch_add(&w->pending_bytes, total);
    int64_t lsn = (int64_t)(w->next_lsn - 1);
    if (w->thread_waiting &&
        (w->opts.sync == WAL_SYNC_ALWAYS ? w->active.len >= w->gather_bytes
                                         : w->idle || w->active.len >= WAKE_BYTES)) {
        w->thread_waiting = false;
        pthread_cond_signal(&w->wake);
    }
    pthread_mutex_unlock(&w->lock);
    return lsn;
}

int64_t
wal_append(struct wal *w, const struct wal_rec *rec)
{
    return wal_append_group(w, rec, 1);
}

uint64_t
wal_last_lsn(struct wal *w)
{
    pthread_mutex_lock(&w->lock);
    uint64_t v = w->next_lsn - 1;
    pthread_mutex_unlock(&w->lock);
    return v;
}

uint64_t
wal_written_lsn(struct wal *w)
{
    return atomic_load(&w->written_lsn);
}

uint64_t
wal_durable_lsn(struct wal *w)
{
    return atomic_load(&w->durable_lsn);
}

int
wal_error(struct wal *w, char *msg, size_t msglen)
{
    int err = atomic_load(&w->err);
    if (msg != NULL && msglen > 0) {
        pthread_mutex_lock(&w->lock);
        snprintf(msg, msglen, "%s", err != 0 ? w->errmsg : "");
        pthread_mutex_unlock(&w->lock);
    }
    return err;
}

int
wal_flush(struct wal *w, uint64_t lsn, bool durable, int timeout_ms)
{
    int64_t deadline = timeout_ms < 0 ? INT64_MAX
                                      : clock_mono_us() + (int64_t)timeout_ms * 1000;
    int rc = 0;
    pthread_mutex_lock(&w->lock);
    if (lsn > w->next_lsn - 1) {
        lsn = w->next_lsn - 1;
    }
    if (durable && lsn > w->want_durable) {
        w->want_durable = lsn;
    }
    if (lsn > w->want_written) {
        w->want_written = lsn;
    }
    pthread_cond_signal(&w->wake);
    for (;;) {
        uint64_t have = durable ? atomic_load(&w->durable_lsn) : atomic_load(&w->written_lsn);
        if (have >= lsn) {
            rc = 0;
            break;
        }
        rc = atomic_load(&w->err);
        if (rc != 0) {
            break;
        }
        if (clock_mono_us() >= deadline) {
            rc = -ETIMEDOUT;
            break;
        }
        cond_wait_until(&w->done, &w->lock, deadline);
    }
    pthread_mutex_unlock(&w->lock);
    return rc;
}

int
wal_remove_below(struct wal *w, uint64_t lsn, uint64_t *freed)
{
    uint64_t *victims = NULL;
    size_t nv = 0;
    uint64_t bytes = 0;
    pthread_mutex_lock(&w->seg_lock);
    while (nv + 1 < w->nsegs && w->segs[nv + 1].first_lsn <= lsn + 1) {
        nv++;
    }
    if (nv > 0) {
        victims = xmalloc(nv * sizeof(*victims));
        for (size_t i = 0; i < nv; i++) {
            victims[i] = w->segs[i].first_lsn;
            bytes += w->segs[i].size;
        }
        memmove(w->segs, w->segs + nv, (w->nsegs - nv) * sizeof(*w->segs));
        w->nsegs -= nv;
    }
    pthread_mutex_unlock(&w->seg_lock);
    int rc = 0;
    for (size_t i = 0; i < nv; i++) {
        char name[40], path[4096];
        wal_seg_name(victims[i], name, sizeof(name));
        if (pfile_join(path, sizeof(path), w->dir, name) == 0 && unlink(path) < 0 &&
            errno != ENOENT) {
            rc = -errno;
        }
    }
    free(victims);
    if (nv > 0) {
        int r = pfile_fsync_dir(w->dir);
        if (rc == 0) {
            rc = r;
        }
    }
    if (freed != NULL) {
        *freed = bytes;
    }
    return rc < 0 ? rc : (int)nv;
}

void
wal_stats(struct wal *w, struct wal_stats *st)
{
    memset(st, 0, sizeof(*st));
    pthread_mutex_lock(&w->lock);
    st->last_lsn = w->next_lsn - 1;
    st->appends = w->appends;
    st->append_bytes = w->append_bytes;
    pthread_mutex_unlock(&w->lock);
    st->written_lsn = atomic_load(&w->written_lsn);
    st->durable_lsn = atomic_load(&w->durable_lsn);
    st->write_bytes = atomic_load(&w->write_bytes);
    st->writes = atomic_load(&w->writes);
    st->fsyncs = atomic_load(&w->fsyncs);
    st->fsync_us_total = atomic_load(&w->fsync_us_total);
    st->fsync_us_max = atomic_load(&w->fsync_us_max);
    st->fsync_us_last = atomic_load(&w->fsync_us_last);
    st->pending_bytes = atomic_load(&w->pending_bytes);
    st->write_errors = atomic_load(&w->write_errors);
    st->err = atomic_load(&w->err);
    st->sync = w->opts.sync;
    pthread_mutex_lock(&w->seg_lock);
    st->segments = w->nsegs;
    for (size_t i = 0; i < w->nsegs; i++) {
        st->disk_bytes += w->segs[i].size;
    }
    pthread_mutex_unlock(&w->seg_lock);
}
