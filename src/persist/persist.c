/*
 * persist.c -- the persistence manager: recovery + WAL + snapshot thread.
 *
 * One background thread takes snapshots, either when asked (BGSAVE, SAVE) or
 * when the policy says so: snapshot_wal_bytes of WAL appended since the last
 * snapshot began, or snapshot_interval_s elapsed with at least one change.
 * It wakes every 100 ms to check the policy (a few counter reads).
 *
 * A snapshot:
 *   1. lsn = wal_last_lsn(): every record <= lsn was appended inside its
 *      shard's critical section, so its effect is in the store before the
 *      iterator can lock that shard; later records may or may not be seen;
 *   2. snap_write(dir, lsn, server iterator): temp file, fsync, rename,
 *      directory fsync;
 *   3. snap_prune(): keep the newest snapshot_keep snapshots (2 by default,
 *      so a damaged newest one has a fallback), delete older ones;
 *   4. wal_remove_below(oldest kept snapshot's LSN): delete the segments no
 *      kept snapshot needs. Disk use is bounded by the kept snapshots plus
 *      the WAL written since the oldest of them, whatever the write load.
 *
 * SAVE/BGSAVE ordering uses tickets: a request gets the next ticket number;
 * a snapshot run serves every ticket issued before it started; persist_save
 * waits until its ticket is served.
 */
#include "persist/persist.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "persist/pfile.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/mem.h"

#define FAIL_BACKOFF_US (5 * 1000000LL) /* policy retry after a failed snapshot */

struct persist {
    struct persist_cfg cfg;
    char *dir;
    struct wal *wal;
    pthread_t thread;

    pthread_mutex_t lock; /* protects everything below */
    pthread_cond_t cond;  /* snapshot thread and SAVE waiters */
    bool stop;
    bool in_progress;
    uint64_t ticket_issued, ticket_served;
    int ticket_status;                 /* result of the run that served last */
    int64_t last_start_us;             /* monotonic start of the last run */
    int64_t last_fail_us;
    uint64_t appends_at_start, bytes_at_start;
    int64_t last_save_ms;
    int last_status;
    char last_error[128];
    struct snap_info last;
    uint64_t ok, failed, segments_removed;
};

static bool
policy_due(struct persist *p, int64_t now_us)
{
    struct wal_stats st;
    wal_stats(p->wal, &st);
    if (p->last_fail_us != 0 && now_us - p->last_fail_us < FAIL_BACKOFF_US) {
        return false;
    }
    if (p->cfg.snapshot_wal_bytes > 0 &&
        st.append_bytes - p->bytes_at_start >= p->cfg.snapshot_wal_bytes) {
        return true;
    }
    if (p->cfg.snapshot_interval_s > 0 && st.appends > p->appends_at_start &&
        now_us - p->last_start_us >= (int64_t)p->cfg.snapshot_interval_s * 1000000) {
        return true;
    }
    return false;
}

static int
take_snapshot(struct persist *p, struct snap_info *info, uint64_t *removed)
{
    uint64_t lsn = wal_last_lsn(p->wal);
    *removed = 0;
    int rc = snap_write(p->dir, lsn, p->cfg.iter, p->cfg.iter_ctx, info);
    if (rc != 0) {
        return rc;
    }
    uint64_t oldest = 0, freed = 0;
    int r = snap_prune(p->dir, p->cfg.snapshot_keep, &oldest);
    if (r < 0) {
        log_warn("snapshot prune failed", "\"error\":\"%s\"", strerror(-r));
    }
    if (oldest > 0) {
        r = wal_remove_below(p->wal, oldest, &freed);
        if (r < 0) {
            log_warn("wal segment removal failed", "\"error\":\"%s\"", strerror(-r));
        } else {
            *removed = (uint64_t)r;
        }
    }
    log_info("snapshot saved",
             "\"lsn\":%" PRIu64 ",\"keys\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"ms\":%" PRId64
             ",\"segments_removed\":%" PRIu64 ",\"bytes_freed\":%" PRIu64,
             info->lsn, info->keys, info->bytes, info->duration_us / 1000, *removed, freed);
    return 0;
}

static void *
snap_thread(void *arg)
{
    struct persist *p = arg;
    pthread_mutex_lock(&p->lock);
    while (!p->stop) {
        int64_t now = clock_mono_us();
        bool asked = p->ticket_issued > p->ticket_served;
        if (!asked && !policy_due(p, now)) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_nsec += 100 * 1000000L; /* policy checked 10 times a second */
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&p->cond, &p->lock, &ts);
            continue;
        }
        uint64_t serving = p->ticket_issued;
        struct wal_stats st;
        wal_stats(p->wal, &st);
        p->in_progress = true;
        p->last_start_us = now;
        uint64_t appends0 = p->appends_at_start, bytes0 = p->bytes_at_start;
        p->appends_at_start = st.appends;
        p->bytes_at_start = st.append_bytes;
        pthread_mutex_unlock(&p->lock);

        struct snap_info info = { 0 };
        uint64_t removed = 0;
        int rc = take_snapshot(p, &info, &removed);

        pthread_mutex_lock(&p->lock);
        p->in_progress = false;
        p->ticket_served = serving;
        p->ticket_status = rc;
        p->last_status = rc;
        if (rc == 0) {
            p->ok++;
            p->last = info;
            p->last_save_ms = clock_ms();
            p->last_error[0] = '\0';
            p->last_fail_us = 0;
            p->segments_removed += removed;
        } else {
            p->failed++;
            p->last_fail_us = clock_mono_us();
            /* The changes were not saved: count them again. */
            p->appends_at_start = appends0;
            p->bytes_at_start = bytes0;
            snprintf(p->last_error, sizeof(p->last_error), "%s", snap_strerror(rc));
            log_error("snapshot failed", "\"error\":\"%s\"", p->last_error);
        }
        pthread_cond_broadcast(&p->cond);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

int
persist_open(const struct persist_cfg *cfg, persist_apply_fn apply, void *apply_ctx,
             struct persist_report *rep, struct persist **out)
{
    *out = NULL;
    if (cfg->dir == NULL || cfg->iter == NULL) {
        memset(rep, 0, sizeof(*rep));
        snprintf(rep->error, sizeof(rep->error), "persistence needs a directory and an iterator");
        return -EINVAL;
    }
    struct persist_recover_opts ro = { .skip_damaged = cfg->skip_damaged, .hint = cfg->hint };
    int rc = persist_recover(cfg->dir, apply, apply_ctx, &ro, rep);
    if (rc != 0) {
        return rc;
    }
    struct persist *p = xcalloc(1, sizeof(*p));
    p->cfg = *cfg;
    p->dir = xstrdup(cfg->dir);
    p->cfg.dir = p->dir;
    if (p->cfg.snapshot_keep == 0) {
        p->cfg.snapshot_keep = 2;
    }
    struct wal_opts wo;
    wal_opts_init(&wo);
    wo.dir = p->dir;
    wo.sync = cfg->sync;
    if (cfg->max_segment_size != 0) {
        wo.max_segment_size = cfg->max_segment_size;
    }
    wo.start_lsn = rep->next_lsn;
    wo.notify = cfg->notify;
    wo.notify_ctx = cfg->notify_ctx;
    wo.io = cfg->io;
    if (cfg->wal_retry_ms != 0) {
        wo.retry_interval_ms = cfg->wal_retry_ms;
    }
    rc = wal_open(&wo, &p->wal);
    if (rc != 0) {
        snprintf(rep->error, sizeof(rep->error), "open wal in %s: %s", p->dir, wal_strerror(rc));
        free(p->dir);
        free(p);
        return rc;
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cond, &ca);
    pthread_condattr_destroy(&ca);
    p->last_start_us = clock_mono_us();
    rc = -pthread_create(&p->thread, NULL, snap_thread, p);
    if (rc != 0) {
        wal_close(&p->wal);
        pthread_cond_destroy(&p->cond);
        pthread_mutex_destroy(&p->lock);
        free(p->dir);
        free(p);
        return rc;
    }
    *out = p;
    return 0;
}

void
persist_close(struct persist **pp)
{
    struct persist *p = *pp;
    if (p == NULL) {
        return;
    }
    pthread_mutex_lock(&p->lock);
    p->stop = true;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    pthread_join(p->thread, NULL);
    wal_close(&p->wal);
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->lock);
    free(p->dir);
    free(p);
    *pp = NULL;
}

struct wal *
persist_wal(struct persist *p)
{
    return p->wal;
}

int
persist_bgsave(struct persist *p)
{
    int rc = 0;
    pthread_mutex_lock(&p->lock);
    if (p->in_progress || p->ticket_issued > p->ticket_served) {
        rc = -EINPROGRESS;
    } else {
        p->ticket_issued++;
        pthread_cond_broadcast(&p->cond);
    }
    pthread_mutex_unlock(&p->lock);
    return rc;
}

int
persist_save(struct persist *p)
{
    pthread_mutex_lock(&p->lock);
    uint64_t ticket = ++p->ticket_issued;
    pthread_cond_broadcast(&p->cond);
    while (p->ticket_served < ticket && !p->stop) {
        pthread_cond_wait(&p->cond, &p->lock);
    }
    int rc = p->ticket_served >= ticket ? p->ticket_status : -ESHUTDOWN;
    pthread_mutex_unlock(&p->lock);
    return rc;
}

void
persist_info(struct persist *p, struct persist_info *info)
{
    memset(info, 0, sizeof(*info));
    wal_stats(p->wal, &info->wal);
    pthread_mutex_lock(&p->lock);
    info->in_progress = p->in_progress;
    info->last_save_ms = p->last_save_ms;
    info->last_status = p->last_status;
    snprintf(info->last_error, sizeof(info->last_error), "%s", p->last_error);
    info->last_lsn = p->last.lsn;
    info->last_keys = p->last.keys;
    info->last_bytes = p->last.bytes;
    info->last_duration_us = p->last.duration_us;
    info->snapshots_ok = p->ok;
    info->snapshots_failed = p->failed;
    info->segments_removed = p->segments_removed;
    info->changes_since_save = info->wal.appends - p->appends_at_start;
    info->wal_bytes_since_save = info->wal.append_bytes - p->bytes_at_start;
    pthread_mutex_unlock(&p->lock);
}
