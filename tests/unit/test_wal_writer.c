/*
 * test_wal_writer.c -- the WAL writer thread: concurrency, group commit,
 * policies, and write errors.
 *
 *  - many threads append with policy sync and wait for durability the way
 *    the server will (notify callback -> condition variable): LSNs increase
 *    per thread, durable_lsn only moves forward, there are fewer fsyncs than
 *    appends (group commit), and recovery gets every record in order;
 *  - async: durable within ~1 s with nobody asking; none: written soon,
 *    never fsync'd until close;
 *  - ENOSPC through the injectable write function: a half-done write then
 *    failures; the WAL enters the error state, appends fail fast, the
 *    segment is cut back to the last good record (acknowledged bytes
 *    unchanged), and writing resumes once "space is freed";
 *  - a real full disk: a 512 KiB tmpfs (skipped with a message if mount is
 *    not permitted), freed by deleting a filler file.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "tmpdir.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "persist/persist.h"
#include "persist/wal.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/mem.h"

static void
sleep_ms(int ms)
{
    usleep((useconds_t)ms * 1000);
}

/* ---- what the server does: wait for durable_lsn via the notify callback -- */

struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t durable;
    int err;
    _Atomic uint64_t notifies;
    bool went_backwards;
};

static void
on_notify(void *ctx, uint64_t durable, int err)
{
    struct waiter *wt = ctx;
    pthread_mutex_lock(&wt->mu);
    if (durable < wt->durable) {
        wt->went_backwards = true;
    }
    wt->durable = durable;
    wt->err = err;
    atomic_fetch_add(&wt->notifies, 1);
    pthread_cond_broadcast(&wt->cv);
    pthread_mutex_unlock(&wt->mu);
}

static void
waiter_init(struct waiter *wt)
{
    memset(wt, 0, sizeof(*wt));
    pthread_mutex_init(&wt->mu, NULL);
    pthread_cond_init(&wt->cv, NULL);
}

static void
waiter_wait(struct waiter *wt, uint64_t lsn)
{
    pthread_mutex_lock(&wt->mu);
    while (wt->durable < lsn) {
        pthread_cond_wait(&wt->cv, &wt->mu);
    }
    pthread_mutex_unlock(&wt->mu);
}

/* ---- many threads, policy sync ------------------------------------------- */

#define NTHREADS 4
#define PER_THREAD 1500

struct appender {
    struct wal *w;
    struct waiter *wt;
    int id;
    bool ok;
};

static void *
appender_main(void *arg)
{
    struct appender *a = arg;
    int64_t prev = 0;
    a->ok = true;
    for (int i = 0; i < PER_THREAD;) {
        /* a pipelined client: 1..4 writes, then wait for the last */
        int batch = 1 + (i + a->id) % 4;
        int64_t last = 0;
        for (int j = 0; j < batch && i < PER_THREAD; j++, i++) {
            char k[32], v[32];
            snprintf(k, sizeof(k), "t%d", a->id);
            snprintf(v, sizeof(v), "%d", i);
            struct wal_rec r = { .type = WAL_REC_SET, .key = k, .klen = strlen(k), .val = v,
                                 .vlen = strlen(v) };
            last = wal_append(a->w, &r);
            if (last <= prev) {
                a->ok = false;
            }
            prev = last;
        }
        waiter_wait(a->wt, (uint64_t)last);
        if (wal_durable_lsn(a->w) < (uint64_t)last) {
            a->ok = false;
        }
    }
    return NULL;
}

struct order_check {
    int next[NTHREADS];
    bool ok;
    uint64_t n;
};

static int
order_apply(void *ctx, const struct wal_rec *r)
{
    struct order_check *c = ctx;
    int t = ((const char *)r->key)[1] - '0';
    char v[32];
    snprintf(v, sizeof(v), "%.*s", (int)r->vlen, (const char *)r->val);
    if (r->type != WAL_REC_SET || t < 0 || t >= NTHREADS || atoi(v) != c->next[t]) {
        c->ok = false;
    } else {
        c->next[t]++;
    }
    c->n++;
    return 0;
}

static void
test_threads_group_commit(void **state)
{
    (void)state;
    char dir[64];
    make_tmpdir(dir, sizeof(dir), "walmt");
    struct waiter wt;
    waiter_init(&wt);
    struct wal_opts o;
    wal_opts_init(&o);
    o.dir = dir;
    o.sync = WAL_SYNC_ALWAYS;
    o.notify = on_notify;
    o.notify_ctx = &wt;
    struct wal *w;
    assert_int_equal(wal_open(&o, &w), 0);
    pthread_t th[NTHREADS];
    struct appender ap[NTHREADS];
    int64_t t0 = clock_mono_us();
    for (int i = 0; i < NTHREADS; i++) {
        ap[i] = (struct appender){ .w = w, .wt = &wt, .id = i };
        assert_int_equal(pthread_create(&th[i], NULL, appender_main, &ap[i]), 0);
    }
    for (int i = 0; i < NTHREADS; i++) {
        pthread_join(th[i], NULL);
        assert_true(ap[i].ok);
    }
    int64_t us = clock_mono_us() - t0;
    struct wal_stats st;
    wal_stats(w, &st);
    print_message("%d appends, %" PRIu64 " fsyncs (%.1f appends/fsync), %.0f ms, "
                  "fsync avg %.0f us max %" PRIu64 " us\n",
                  NTHREADS * PER_THREAD, st.fsyncs,
                  (double)(NTHREADS * PER_THREAD) / (double)st.fsyncs, us / 1000.0,
                  (double)st.fsync_us_total / (double)st.fsyncs, st.fsync_us_max);
    assert_int_equal(st.appends, NTHREADS * PER_THREAD);
    assert_int_equal(st.durable_lsn, NTHREADS * PER_THREAD);
    assert_true(st.fsyncs < st.appends);
    assert_false(wt.went_backwards);
    wal_close(&w);

    struct order_check c = { .ok = true };
    struct persist_report rep;
    assert_int_equal(persist_recover(dir, order_apply, &c, NULL, &rep), 0);
    assert_true(c.ok);
    assert_int_equal(c.n, NTHREADS * PER_THREAD);
    for (int i = 0; i < NTHREADS; i++) {
        assert_int_equal(c.next[i], PER_THREAD);
    }
    rm_rf(dir);
}

/* ---- policies async and none --------------------------------------------- */

static void
test_policy_async_and_none(void **state)
{
    (void)state;
    for (int pol = WAL_SYNC_NONE; pol <= WAL_SYNC_ASYNC; pol++) {
        char dir[64], nested[128];
        make_tmpdir(dir, sizeof(dir), "walpol");
        snprintf(nested, sizeof(nested), "%s/data/wal", dir); /* created with parents */
        struct wal_opts o;
        wal_opts_init(&o);
        o.dir = nested;
        o.sync = (enum wal_sync_policy)pol;
        struct wal *w;
        assert_int_equal(wal_open(&o, &w), 0);
        int64_t last = 0;
        for (int i = 0; i < 100; i++) {
            struct wal_rec r = { .type = WAL_REC_DEL, .key = "k", .klen = 1 };
            last = wal_append(w, &r);
            assert_true(last > 0);
        }
        /* written within a few flush intervals, with nobody asking */
        int64_t t0 = clock_mono_us();
        while (wal_written_lsn(w) < (uint64_t)last && clock_mono_us() - t0 < 2000000) {
            sleep_ms(5);
        }
        assert_int_equal(wal_written_lsn(w), last);
        if (pol == WAL_SYNC_ASYNC) {
            while (wal_durable_lsn(w) < (uint64_t)last && clock_mono_us() - t0 < 3000000) {
                sleep_ms(20);
            }
            int64_t ms = (clock_mono_us() - t0) / 1000;
            print_message("async: durable after %" PRId64 " ms\n", ms);
            assert_int_equal(wal_durable_lsn(w), last);
            assert_true(ms <= 1500);
        } else {
            sleep_ms(300);
            assert_int_equal(wal_durable_lsn(w), 0); /* none: no fsync */
            struct wal_stats st;
            wal_stats(w, &st);
            assert_int_equal(st.fsyncs, 0);
        }
        /* an explicit flush makes it durable whatever the policy */
        assert_int_equal(wal_flush(w, (uint64_t)last, true, 5000), 0);
        assert_int_equal(wal_durable_lsn(w), last);
        wal_close(&w);
        rm_rf(dir);
    }
}

/* ---- ENOSPC through the injectable write --------------------------------- */

struct fault {
    _Atomic bool full;
    _Atomic bool partial_done;
    _Atomic uint64_t failures;
};

static ssize_t
fault_pwrite(void *ctx, int fd, const void *buf, size_t n, off_t off)
{
    struct fault *f = ctx;
    if (atomic_load(&f->full)) {
        if (!atomic_exchange(&f->partial_done, true) && n > 1) {
            return pwrite(fd, buf, n / 2, off); /* the disk fills mid-write */
        }
        atomic_fetch_add(&f->failures, 1);
        errno = ENOSPC;
        return -1;
    }
    return pwrite(fd, buf, n, off);
}

static uint8_t *
slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = xmalloc(*len + 1);
    assert_int_equal(fread(b, 1, *len, f), *len);
    fclose(f);
    return b;
}

static int
counter(void *ctx, const struct wal_rec *r)
{
    (void)r;
    (*(uint64_t *)ctx)++;
    return 0;
}

static uint64_t
count_set(const char *dir, uint64_t *next_lsn)
{
    uint64_t n = 0;
    struct persist_report rep;
    assert_int_equal(persist_recover(dir, counter, &n, NULL, &rep), 0);
    assert_false(rep.torn);
    *next_lsn = rep.next_lsn;
    return n;
}

static void
test_enospc_injected(void **state)
{
    (void)state;
    char dir[64], seg[128];
    make_tmpdir(dir, sizeof(dir), "walfull");
    snprintf(seg, sizeof(seg), "%s/wal-0000000000000001.log", dir);
    struct fault f = { 0 };
    struct wal_io io = { .pwrite = fault_pwrite, .ctx = &f };
    struct waiter wt;
    waiter_init(&wt);
    struct wal_opts o;
    wal_opts_init(&o);
    o.dir = dir;
    o.sync = WAL_SYNC_ALWAYS;
    o.retry_interval_ms = 30;
    o.io = &io;
    o.notify = on_notify;
    o.notify_ctx = &wt;
    struct wal *w;
    assert_int_equal(wal_open(&o, &w), 0);
    char val[200];
    memset(val, 'a', sizeof(val));
    struct wal_rec r = { .type = WAL_REC_SET, .key = "key", .klen = 3, .val = val, .vlen = 200 };
    int64_t lsn = 0;
    for (int i = 0; i < 50; i++) {
        lsn = wal_append(w, &r);
    }
    waiter_wait(&wt, (uint64_t)lsn);
    size_t acked_len;
    uint8_t *acked = slurp(seg, &acked_len);

    atomic_store(&f.full, true);
    int64_t pending = wal_append(w, &r); /* accepted, cannot be written */
    assert_true(pending == lsn + 1);
    int64_t t0 = clock_mono_us();
    while (wal_error(w, NULL, 0) == 0 && clock_mono_us() - t0 < 5000000) {
        sleep_ms(2);
    }
    char msg[200];
    assert_int_equal(wal_error(w, msg, sizeof(msg)), -ENOSPC);
    print_message("error state: %s\n", msg);
    assert_non_null(strstr(msg, "No space left on device"));
    assert_non_null(strstr(msg, "wal-0000000000000001.log"));
    /* appends fail fast, with the error */
    assert_int_equal(wal_append(w, &r), -ENOSPC);
    assert_true(wal_durable_lsn(w) < (uint64_t)pending);
    /* the notify callback told the server about the error */
    pthread_mutex_lock(&wt.mu);
    assert_int_equal(wt.err, -ENOSPC);
    pthread_mutex_unlock(&wt.mu);
    /* after a retry, the half-written record is cut back: acknowledged bytes
     * are intact and nothing follows them */
    uint64_t fails = atomic_load(&f.failures);
    while (atomic_load(&f.failures) < fails + 2) {
        sleep_ms(5);
    }
    size_t now_len;
    uint8_t *now = slurp(seg, &now_len);
    assert_int_equal(now_len, acked_len);
    assert_memory_equal(now, acked, acked_len);
    free(now);
    /* recovery would see exactly the acknowledged records (read-only look) */
    uint64_t n = 0, next = 0;
    struct persist_report rep;
    struct persist_recover_opts ro = { .read_only = true };
    assert_int_equal(persist_recover(dir, counter, &n, &ro, &rep), 0);
    assert_int_equal(n, 50);

    /* space is freed: the thread's retry succeeds and clears the state */
    atomic_store(&f.full, false);
    waiter_wait(&wt, (uint64_t)pending);
    t0 = clock_mono_us();
    while (wal_error(w, NULL, 0) != 0 && clock_mono_us() - t0 < 5000000) {
        sleep_ms(2);
    }
    assert_int_equal(wal_error(w, NULL, 0), 0);
    for (int i = 0; i < 10; i++) {
        lsn = wal_append(w, &r);
        assert_true(lsn > 0);
    }
    waiter_wait(&wt, (uint64_t)lsn);
    struct wal_stats st;
    wal_stats(w, &st);
    assert_true(st.write_errors >= 2);
    wal_close(&w);
    n = count_set(dir, &next);
    assert_int_equal(n, 61);
    assert_int_equal(next, 62);
    now = slurp(seg, &now_len);
    assert_memory_equal(now, acked, acked_len); /* the old bytes never moved */
    free(now);
    free(acked);
    rm_rf(dir);
}

/* ---- a real full disk ----------------------------------------------------- */

static void
test_enospc_tmpfs(void **state)
{
    (void)state;
    char mnt[64];
    make_tmpdir(mnt, sizeof(mnt), "tmpfs");
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=512k") != 0) {
        print_message("SKIP: cannot mount a tmpfs (%s); disk-full is covered by the "
                      "injected-ENOSPC test\n", strerror(errno));
        rmdir(mnt);
        skip();
    }
    char filler[128], dir[128];
    snprintf(filler, sizeof(filler), "%s/filler", mnt);
    snprintf(dir, sizeof(dir), "%s/wal", mnt);
    FILE *ff = fopen(filler, "wb");
    assert_non_null(ff);
    static char chunk[4096];
    for (int i = 0; i < 64; i++) { /* 256 KiB */
        assert_int_equal(fwrite(chunk, 1, sizeof(chunk), ff), sizeof(chunk));
    }
    fclose(ff);

    struct waiter wt;
    waiter_init(&wt);
    struct wal_opts o;
    wal_opts_init(&o);
    o.dir = dir;
    o.sync = WAL_SYNC_ALWAYS;
    o.max_segment_size = 64 * 1024;
    o.retry_interval_ms = 20;
    o.notify = on_notify;
    o.notify_ctx = &wt;
    struct wal *w;
    assert_int_equal(wal_open(&o, &w), 0);
    char val[1000];
    memset(val, 'z', sizeof(val));
    uint64_t acked = 0;
    int64_t lsn, first_refused = 0;
    for (int i = 0; i < 10000; i++) {
        char k[32];
        snprintf(k, sizeof(k), "k%d", i);
        struct wal_rec r = { .type = WAL_REC_SET, .key = k, .klen = strlen(k), .val = val,
                             .vlen = sizeof(val) };
        lsn = wal_append(w, &r);
        if (lsn < 0) {
            first_refused = lsn;
            break;
        }
        /* wait for durable or error */
        pthread_mutex_lock(&wt.mu);
        while (wt.durable < (uint64_t)lsn && wt.err == 0) {
            pthread_cond_wait(&wt.cv, &wt.mu);
        }
        bool ok = wt.durable >= (uint64_t)lsn;
        pthread_mutex_unlock(&wt.mu);
        if (ok) {
            acked = (uint64_t)lsn;
        }
    }
    char msg[200];
    int err = wal_error(w, msg, sizeof(msg));
    print_message("disk full after %" PRIu64 " acknowledged records: %s\n", acked, msg);
    assert_int_equal(err, -ENOSPC);
    assert_int_equal(first_refused, -ENOSPC);
    assert_true(acked > 100);

    assert_int_equal(unlink(filler), 0); /* free space */
    int64_t t0 = clock_mono_us();
    while (wal_error(w, NULL, 0) != 0 && clock_mono_us() - t0 < 5000000) {
        sleep_ms(5);
    }
    assert_int_equal(wal_error(w, NULL, 0), 0);
    struct wal_rec r = { .type = WAL_REC_SET, .key = "after", .klen = 5, .val = "x", .vlen = 1 };
    lsn = wal_append(w, &r);
    assert_true(lsn > 0);
    waiter_wait(&wt, (uint64_t)lsn);
    wal_close(&w);

    uint64_t n = 0, next = 0;
    n = count_set(dir, &next);
    /* every acknowledged record, the one pending at the error, the one after */
    assert_int_equal(n, acked + 2);
    assert_int_equal(next, (uint64_t)lsn + 1);
    assert_int_equal(umount(mnt), 0);
    rmdir(mnt);
}

int
main(void)
{
    log_setup(LOG_WARN, true, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threads_group_commit),
        cmocka_unit_test(test_policy_async_and_none),
        cmocka_unit_test(test_enospc_injected),
        cmocka_unit_test(test_enospc_tmpfs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
