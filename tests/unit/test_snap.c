/*
 * test_snap.c -- snapshots and the persistence manager, end to end.
 *
 *  - snapshot round trip, and every kind of damage caught by verification
 *    before a single entry is delivered;
 *  - recovery falls back to the older snapshot when the newest is damaged;
 *  - writer threads mutate a model store (SET, DEL, EXPIRE, APPEND-as-SET,
 *    RENAME as a group, FLUSHALL) while background snapshots run: snapshot
 *    + WAL replay equals the final state;
 *  - expired keys are not resurrected, neither from the snapshot nor by an
 *    older record of the same key;
 *  - disk use stays bounded under an endless overwrite load (snapshots by
 *    policy delete the segments they cover).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "tmpdir.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "persist/persist.h"
#include "persist/snap.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/mem.h"

static uint64_t
dir_bytes(const char *dir, int *nfiles)
{
    DIR *d = opendir(dir);
    uint64_t total = 0;
    struct dirent *de;
    *nfiles = 0;
    while (d != NULL && (de = readdir(d)) != NULL) {
        char p[512];
        struct stat st;
        snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
        if (stat(p, &st) == 0 && S_ISREG(st.st_mode)) {
            total += (uint64_t)st.st_size;
            (*nfiles)++;
        }
    }
    if (d != NULL) {
        closedir(d);
    }
    return total;
}

/* ---- a model store: NKEYS keys "k0000".., one lock ------------------------ */

#define NKEYS 300

struct item {
    bool present;
    int64_t exp;
    size_t vlen;
    char val[400];
};

struct model {
    pthread_mutex_t mu;
    struct item it[NKEYS];
    struct wal *wal; /* set when live */
    uint64_t applied;
};

static void
model_init(struct model *m)
{
    memset(m, 0, sizeof(*m));
    pthread_mutex_init(&m->mu, NULL);
}

static int
key_index(const void *key, size_t klen)
{
    char buf[16];
    if (klen < 2 || klen > 10) {
        return -1;
    }
    memcpy(buf, key, klen);
    buf[klen] = '\0';
    int i = atoi(buf + 1);
    return i >= 0 && i < NKEYS ? i : -1;
}

/* apply for recovery (and for the live path, under m->mu) */
static int
model_apply(void *ctx, const struct wal_rec *r)
{
    struct model *m = ctx;
    m->applied++;
    if (r->type == WAL_REC_FLUSHALL) {
        for (int i = 0; i < NKEYS; i++) {
            m->it[i].present = false;
        }
        return 0;
    }
    int i = key_index(r->key, r->klen);
    if (i < 0) {
        return -1;
    }
    struct item *it = &m->it[i];
    switch (r->type) {
    case WAL_REC_SET:
        if (r->vlen > sizeof(it->val)) {
            return -1;
        }
        it->present = true;
        it->exp = r->expire_at_ms;
        it->vlen = r->vlen;
        if (r->vlen > 0) {
            memcpy(it->val, r->val, r->vlen);
        }
        break;
    case WAL_REC_DEL:
        it->present = false;
        break;
    case WAL_REC_EXPIRE:
        if (it->present) {
            it->exp = r->expire_at_ms;
        }
        break;
    default:
        return -1;
    }
    return 0;
}

/* The server's iterator: copy a chunk under the lock, add it outside. */
static int
model_iter(void *ctx, struct snap_sink *sink)
{
    struct model *m = ctx;
    enum { CHUNK = 32 };
    static __thread struct item copy[CHUNK];
    int idx[CHUNK];
    for (int base = 0; base < NKEYS; base += CHUNK) {
        int n = 0;
        pthread_mutex_lock(&m->mu);
        int64_t now = clock_ms();
        for (int i = base; i < base + CHUNK && i < NKEYS; i++) {
            if (m->it[i].present && (m->it[i].exp == 0 || m->it[i].exp > now)) {
                copy[n] = m->it[i];
                idx[n++] = i;
            }
        }
        pthread_mutex_unlock(&m->mu);
        for (int j = 0; j < n; j++) {
            char k[16];
            snprintf(k, sizeof(k), "k%04d", idx[j]);
            int rc = snap_sink_add(sink, k, strlen(k), copy[j].val, copy[j].vlen, copy[j].exp);
            if (rc != 0) {
                return rc;
            }
        }
    }
    return 0;
}

/* Live models hold expired keys until touched; compare what is visible at t. */
static void
assert_models_equal(const struct model *live, const struct model *rec, int64_t t)
{
    for (int i = 0; i < NKEYS; i++) {
        const struct item *a = &live->it[i], *b = &rec->it[i];
        bool va = a->present && (a->exp == 0 || a->exp > t);
        bool vb = b->present && (b->exp == 0 || b->exp > t);
        if (va != vb) {
            fail_msg("key k%04d: live %s, recovered %s", i, va ? "present" : "absent",
                     vb ? "present" : "absent");
        }
        if (va) {
            assert_int_equal(a->exp, b->exp);
            assert_int_equal(a->vlen, b->vlen);
            assert_memory_equal(a->val, b->val, a->vlen);
        }
    }
}

static int
cb(void *ctx, const void *key, size_t klen, const void *val, size_t vlen, int64_t exp)
{
    struct wal_rec r = { .type = WAL_REC_SET, .key = key, .klen = klen, .val = val,
                         .vlen = vlen, .expire_at_ms = exp };
    return model_apply(ctx, &r);
}

/* ---- snapshot file ------------------------------------------------------- */

static void
fill_model(struct model *m, int n, int64_t exp)
{
    for (int i = 0; i < n; i++) {
        struct item *it = &m->it[i];
        it->present = true;
        it->exp = i % 3 == 0 ? exp : 0;
        it->vlen = (size_t)snprintf(it->val, sizeof(it->val), "value-%d-%0*d", i, i % 50, 7);
    }
}

static void
test_snapshot_roundtrip(void **state)
{
    (void)state;
    char dir[64];
    make_tmpdir(dir, sizeof(dir), "snap");
    struct model m;
    model_init(&m);
    int64_t far = clock_ms() + 3600 * 1000;
    fill_model(&m, NKEYS, far);
    struct snap_info info;
    assert_int_equal(snap_write(dir, 42, model_iter, &m, &info), 0);
    assert_int_equal(info.lsn, 42);
    assert_int_equal(info.keys, NKEYS);

    char path[256], name[40];
    snap_name(42, name, sizeof(name));
    assert_string_equal(name, "snap-000000000000002a.snap");
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    struct model back;
    model_init(&back);
    struct snap_info li;
    size_t bad;
    assert_int_equal(snap_load(path, cb, &back, &li, &bad), 0);
    assert_int_equal(li.keys, NKEYS);
    assert_int_equal(li.lsn, 42);
    assert_models_equal(&m, &back, 0);

    /* damage anywhere: detected before any entry is delivered */
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    size_t len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *img = xmalloc(len);
    assert_int_equal(fread(img, 1, len, f), len);
    fclose(f);
    for (size_t off = 0; off < len; off += 7) {
        img[off] ^= 0x5a;
        struct model none;
        model_init(&none);
        int rc = snap_load_mem(img, len, cb, &none, NULL, &bad);
        assert_true(rc < 0);
        assert_int_equal(none.applied, 0);
        img[off] ^= 0x5a;
    }
    for (size_t cut = 0; cut < len; cut += 5) {
        assert_true(snap_verify(img, cut, NULL, &bad) < 0);
    }
    assert_int_equal(snap_verify(img, len, NULL, &bad), 0);
    free(img);
    rm_rf(dir);
}

/* ---- live writers + background snapshots --------------------------------- */

struct writer {
    struct model *m;
    struct persist *p;
    unsigned seed;
    int ops;
    _Atomic int done_ops;
    bool ok;
};

static int64_t
log_and_apply(struct model *m, const struct wal_rec *recs, size_t n)
{
    /* caller holds m->mu: append first, apply only if the log took it */
    int64_t lsn = wal_append_group(m->wal, recs, n);
    if (lsn > 0) {
        for (size_t i = 0; i < n; i++) {
            model_apply(m, &recs[i]);
        }
    }
    return lsn;
}

static void *
writer_main(void *arg)
{
    struct writer *w = arg;
    struct model *m = w->m;
    w->ok = true;
    for (int op = 0; op < w->ops; op++) {
        atomic_store(&w->done_ops, op);
        int r = (int)(rand_r(&w->seed) % 1000);
        int i = (int)(rand_r(&w->seed) % NKEYS), j = (int)(rand_r(&w->seed) % NKEYS);
        char k[16], k2[16], v[400];
        snprintf(k, sizeof(k), "k%04d", i);
        snprintf(k2, sizeof(k2), "k%04d", j);
        int64_t now = clock_ms();
        int64_t lsn = 1;
        pthread_mutex_lock(&m->mu);
        struct item *it = &m->it[i];
        bool live = it->present && (it->exp == 0 || it->exp > now);
        if (r < 450) { /* SET, sometimes with a short or long TTL */
            int vlen = snprintf(v, sizeof(v), "v%d-%d", op, r);
            int64_t exp = r < 60 ? now + 30 : r < 120 ? now + 600000 : 0;
            struct wal_rec rec = { .type = WAL_REC_SET, .key = k, .klen = 5, .val = v,
                                   .vlen = (size_t)vlen, .expire_at_ms = exp };
            lsn = log_and_apply(m, &rec, 1);
        } else if (r < 600 && live) { /* APPEND: logged as SET of the result */
            memcpy(v, it->val, it->vlen);
            size_t vlen = it->vlen;
            if (vlen + 3 < sizeof(v)) {
                memcpy(v + vlen, "+ap", 3);
                vlen += 3;
            }
            struct wal_rec rec = { .type = WAL_REC_SET, .key = k, .klen = 5, .val = v,
                                   .vlen = vlen, .expire_at_ms = it->exp };
            lsn = log_and_apply(m, &rec, 1);
        } else if (r < 750 && live) {
            struct wal_rec rec = { .type = WAL_REC_DEL, .key = k, .klen = 5 };
            lsn = log_and_apply(m, &rec, 1);
        } else if (r < 850 && live) { /* EXPIRE / PERSIST; a past time is a DEL */
            int64_t exp = r < 780 ? 0 : r < 800 ? now - 10 : now + 20 + r;
            struct wal_rec rec = { .type = exp != 0 && exp <= now ? WAL_REC_DEL : WAL_REC_EXPIRE,
                                   .key = k, .klen = 5, .expire_at_ms = exp };
            lsn = log_and_apply(m, &rec, 1);
        } else if (r < 998 && live && i != j) { /* RENAME k -> k2: one group */
            memcpy(v, it->val, it->vlen);
            struct wal_rec recs[2] = {
                { .type = WAL_REC_DEL, .key = k, .klen = 5 },
                { .type = WAL_REC_SET, .key = k2, .klen = 5, .val = v, .vlen = it->vlen,
                  .expire_at_ms = it->exp },
            };
            lsn = log_and_apply(m, recs, 2);
        } else if (r >= 998 && op % 7 == 0) {
            struct wal_rec rec = { .type = WAL_REC_FLUSHALL };
            lsn = log_and_apply(m, &rec, 1);
        }
        pthread_mutex_unlock(&m->mu);
        if (lsn <= 0) {
            w->ok = false;
        }
    }
    return NULL;
}

static void
test_snapshot_plus_wal_equals_state(void **state)
{
    (void)state;
    char dir[64];
    make_tmpdir(dir, sizeof(dir), "persist");
    struct model live;
    model_init(&live);
    struct persist_cfg cfg = { .dir = dir, .sync = WAL_SYNC_NONE, .max_segment_size = 32 * 1024,
                               .iter = model_iter, .iter_ctx = &live };
    struct persist_report rep;
    struct persist *p;
    assert_int_equal(persist_open(&cfg, model_apply, &live, &rep, &p), 0);
    assert_int_equal(rep.next_lsn, 1);
    live.wal = persist_wal(p);

    pthread_t th[2];
    struct writer wr[2];
    for (int t = 0; t < 2; t++) {
        wr[t].m = &live;
        wr[t].p = p;
        wr[t].seed = 1234u + (unsigned)t;
        wr[t].ops = 40000;
        atomic_init(&wr[t].done_ops, 0);
        assert_int_equal(pthread_create(&th[t], NULL, writer_main, &wr[t]), 0);
    }
    /* snapshots while they write (SAVE, then BGSAVEs), none in the last
     * 30% of the run, so recovery replays a log tail over a fuzzy snapshot */
    int started = 0;
    for (int i = 0; atomic_load(&wr[0].done_ops) < 28000 && atomic_load(&wr[1].done_ops) < 28000;
         i++) {
        if (i == 3) {
            assert_int_equal(persist_save(p), 0);
        } else if (persist_bgsave(p) == 0) {
            started++;
        }
        usleep(2000);
    }
    for (int t = 0; t < 2; t++) {
        pthread_join(th[t], NULL);
        assert_true(wr[t].ok);
    }
    struct persist_info info;
    persist_info(p, &info);
    print_message("snapshots ok %" PRIu64 " (bgsave started %d), segments removed %" PRIu64
                  ", wal segments %" PRIu64 ", last snapshot lsn %" PRIu64 " of %" PRIu64 "\n",
                  info.snapshots_ok, started, info.segments_removed, info.wal.segments,
                  info.last_lsn, info.wal.last_lsn);
    assert_true(info.snapshots_ok >= 2);
    assert_int_equal(info.snapshots_failed, 0);
    assert_true(info.last_save_ms > 0);
    persist_close(&p);

    int64_t t = clock_ms();
    struct model back;
    model_init(&back);
    struct persist_recover_opts ro = { .now_ms = t };
    assert_int_equal(persist_recover(dir, model_apply, &back, &ro, &rep), 0);
    print_message("recovered: snapshot %s (%" PRIu64 " keys, %" PRIu64 " expired) + %" PRIu64
                  " records (%" PRIu64 " expired) in %" PRId64 " us\n",
                  rep.snapshot, rep.snapshot_keys, rep.snapshot_expired, rep.records,
                  rep.expired, rep.elapsed_us);
    assert_true(rep.snapshot[0] != '\0');
    assert_true(rep.records > 1000);
    assert_false(rep.torn);
    assert_models_equal(&live, &back, t);

    rm_rf(dir);
}

struct hint_seen {
    int calls;
    uint64_t keys, wal_bytes;
};

static struct hint_seen hint_seen;

static void
record_hint(void *ctx, uint64_t snapshot_keys, uint64_t wal_bytes)
{
    struct model *m = ctx;
    assert_int_equal(m->applied, 0); /* before anything is applied */
    hint_seen.calls++;
    hint_seen.keys = snapshot_keys;
    hint_seen.wal_bytes = wal_bytes;
}

/* Newest snapshot damaged: the older one plus the log give the same state. */
static void
test_snapshot_fallback(void **state)
{
    (void)state;
    char dir[64];
    make_tmpdir(dir, sizeof(dir), "snapfb");
    struct model live;
    model_init(&live);
    struct persist_cfg cfg = { .dir = dir, .sync = WAL_SYNC_ALWAYS, .iter = model_iter,
                               .iter_ctx = &live };
    struct persist_report rep;
    struct persist *p;
    assert_int_equal(persist_open(&cfg, model_apply, &live, &rep, &p), 0);
    live.wal = persist_wal(p);
    struct writer wr = { .m = &live, .p = p, .seed = 99, .ops = 3000 };
    writer_main(&wr);
    assert_int_equal(persist_save(p), 0);
    wr.ops = 2000;
    writer_main(&wr);
    assert_int_equal(persist_save(p), 0);
    wr.ops = 1000;
    writer_main(&wr);
    persist_close(&p);

    /* damage the newest snapshot */
    char newest[40] = "";
    DIR *d = opendir(dir);
    struct dirent *de;
    uint64_t best = 0;
    int nsnap = 0;
    while ((de = readdir(d)) != NULL) {
        uint64_t lsn;
        if (snap_name_parse(de->d_name, &lsn)) {
            nsnap++;
            if (lsn > best) {
                best = lsn;
                snap_name(lsn, newest, sizeof(newest));
            }
        }
    }
    closedir(d);
    assert_int_equal(nsnap, 2); /* snapshot_keep defaults to 2 */
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, newest);
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    fseek(f, 100, SEEK_SET);
    fputc(0xee, f);
    fclose(f);

    int64_t t = clock_ms();
    struct model back;
    model_init(&back);
    struct persist_recover_opts ro = { .now_ms = t, .hint = record_hint };
    log_set_level(LOG_ERROR);
    assert_int_equal(persist_recover(dir, model_apply, &back, &ro, &rep), 0);
    log_set_level(LOG_WARN);
    assert_int_equal(hint_seen.calls, 1);
    assert_int_equal(hint_seen.keys, rep.snapshot_keys + rep.snapshot_expired);
    assert_true(hint_seen.wal_bytes > 0);
    assert_int_equal(rep.snapshots_damaged, 1);
    assert_true(rep.snapshot_lsn < best);
    assert_models_equal(&live, &back, t);
    rm_rf(dir);
}

/* An expired key stays dead: not from the snapshot, not from an older SET. */
static void
test_expired_not_resurrected(void **state)
{
    (void)state;
    char dir[64];
    make_tmpdir(dir, sizeof(dir), "expire");
    struct model live;
    model_init(&live);
    struct persist_cfg cfg = { .dir = dir, .sync = WAL_SYNC_ALWAYS, .iter = model_iter,
                               .iter_ctx = &live };
    struct persist_report rep;
    struct persist *p;
    assert_int_equal(persist_open(&cfg, model_apply, &live, &rep, &p), 0);
    live.wal = persist_wal(p);
    int64_t now = clock_ms();
    struct wal_rec recs[] = {
        /* k0000: old value without TTL, then a new value that expires */
        { .type = WAL_REC_SET, .key = "k0000", .klen = 5, .val = "old", .vlen = 3 },
        { .type = WAL_REC_SET, .key = "k0000", .klen = 5, .val = "new", .vlen = 3,
          .expire_at_ms = now + 1000 },
        /* k0001: a value, then EXPIRE that has passed by recovery time */
        { .type = WAL_REC_SET, .key = "k0001", .klen = 5, .val = "v1", .vlen = 2 },
        { .type = WAL_REC_EXPIRE, .key = "k0001", .klen = 5, .expire_at_ms = now + 1000 },
        /* k0002: expires later than recovery time: kept, with its TTL */
        { .type = WAL_REC_SET, .key = "k0002", .klen = 5, .val = "v2", .vlen = 2,
          .expire_at_ms = now + 3600000 },
        /* k0004: a short TTL, then PERSIST before it ran out: lives on */
        { .type = WAL_REC_SET, .key = "k0004", .klen = 5, .val = "v4", .vlen = 2,
          .expire_at_ms = now + 1000 },
        { .type = WAL_REC_EXPIRE, .key = "k0004", .klen = 5, .expire_at_ms = 0 },
        /* k0005: a short TTL, then EXPIRE further away: lives until then */
        { .type = WAL_REC_SET, .key = "k0005", .klen = 5, .val = "v5", .vlen = 2,
          .expire_at_ms = now + 1000 },
        { .type = WAL_REC_EXPIRE, .key = "k0005", .klen = 5, .expire_at_ms = now + 1500 },
        { .type = WAL_REC_EXPIRE, .key = "k0005", .klen = 5, .expire_at_ms = now + 5000 },
        /* k0006: in the snapshot with a short TTL (below), PERSIST after it */
        { .type = WAL_REC_EXPIRE, .key = "k0006", .klen = 5, .expire_at_ms = 0 },
    };
    pthread_mutex_lock(&live.mu);
    for (size_t i = 0; i < 2; i++) {
        assert_true(log_and_apply(&live, &recs[i], 1) > 0);
    }
    pthread_mutex_unlock(&live.mu);
    /* k0003 sits in the snapshot with a TTL that will have passed */
    live.it[3] = (struct item){ .present = true, .exp = now + 1000, .vlen = 4, .val = "snap" };
    live.it[6] = (struct item){ .present = true, .exp = now + 1000, .vlen = 2, .val = "v6" };
    assert_int_equal(persist_save(p), 0);
    pthread_mutex_lock(&live.mu);
    for (size_t i = 2; i < sizeof(recs) / sizeof(recs[0]); i++) {
        assert_true(log_and_apply(&live, &recs[i], 1) > 0);
    }
    pthread_mutex_unlock(&live.mu);
    persist_close(&p);

    /* recover as if 2 s later */
    struct model back;
    model_init(&back);
    struct persist_recover_opts ro = { .now_ms = now + 2000 };
    assert_int_equal(persist_recover(dir, model_apply, &back, &ro, &rep), 0);
    assert_false(back.it[0].present); /* not "old", not "new" */
    assert_false(back.it[1].present);
    assert_true(back.it[2].present);
    assert_int_equal(back.it[2].exp, now + 3600000);
    assert_false(back.it[3].present);
    assert_true(back.it[4].present);
    assert_int_equal(back.it[4].exp, 0);
    assert_memory_equal(back.it[4].val, "v4", 2);
    assert_true(back.it[5].present);
    assert_int_equal(back.it[5].exp, now + 5000);
    assert_true(back.it[6].present);
    assert_int_equal(back.it[6].exp, 0);
    assert_memory_equal(back.it[6].val, "v6", 2);
    assert_models_equal(&live, &back, now + 2000);
    assert_true(rep.snapshot_expired >= 1);
    assert_true(rep.expired >= 1);
    /* and recovered right away, everything is there */
    model_init(&back);
    ro.now_ms = now;
    assert_int_equal(persist_recover(dir, model_apply, &back, &ro, &rep), 0);
    assert_true(back.it[0].present && back.it[1].present && back.it[3].present);
    assert_memory_equal(back.it[0].val, "new", 3);
    rm_rf(dir);
}

/* Endless overwrites: snapshots by policy keep the directory bounded. */
static void
test_disk_bounded(void **state)
{
    (void)state;
    char dir[64];
    make_tmpdir(dir, sizeof(dir), "bounded");
    struct model live;
    model_init(&live);
    struct persist_cfg cfg = { .dir = dir, .sync = WAL_SYNC_NONE, .max_segment_size = 64 * 1024,
                               .snapshot_wal_bytes = 256 * 1024, .iter = model_iter,
                               .iter_ctx = &live };
    struct persist_report rep;
    struct persist *p;
    assert_int_equal(persist_open(&cfg, model_apply, &live, &rep, &p), 0);
    live.wal = persist_wal(p);
    char v[200];
    memset(v, 'o', sizeof(v));
    uint64_t max_bytes = 0, max_first_half = 0;
    int max_files = 0;
    int64_t t0 = clock_mono_us();
    uint64_t ops = 0;
    while (clock_mono_us() - t0 < 3000000) {
        if (clock_mono_us() - t0 < 1500000) {
            max_first_half = max_bytes;
        }
        for (int b = 0; b < 200; b++, ops++) {
            char k[16];
            snprintf(k, sizeof(k), "k%04d", (int)(ops % NKEYS));
            struct wal_rec r = { .type = WAL_REC_SET, .key = k, .klen = 5, .val = v,
                                 .vlen = sizeof(v) };
            pthread_mutex_lock(&live.mu);
            assert_true(log_and_apply(&live, &r, 1) > 0);
            pthread_mutex_unlock(&live.mu);
        }
        usleep(1000);
        int nf;
        uint64_t bytes = dir_bytes(dir, &nf);
        if (bytes > max_bytes) {
            max_bytes = bytes;
        }
        if (nf > max_files) {
            max_files = nf;
        }
    }
    struct persist_info info;
    persist_info(p, &info);
    print_message("%" PRIu64 " overwrites, %" PRIu64 " KiB of WAL written; directory at most "
                  "%" PRIu64 " KiB (first half of the run %" PRIu64 " KiB) in %d files; %"
                  PRIu64 " snapshots by policy, %" PRIu64 " segments removed\n",
                  ops, info.wal.append_bytes / 1024, max_bytes / 1024, max_first_half / 1024,
                  max_files, info.snapshots_ok, info.segments_removed);
    assert_true(info.snapshots_ok >= 3);
    assert_true(info.segments_removed > 0);
    /* bounded: a small fraction of what was written, and not growing */
    assert_true(info.wal.append_bytes > 6 * max_bytes);
    assert_true(max_bytes <= 2 * max_first_half + 2 * 1024 * 1024);
    persist_close(&p);
    struct model back;
    model_init(&back);
    assert_int_equal(persist_recover(dir, model_apply, &back, NULL, &rep), 0);
    assert_models_equal(&live, &back, clock_ms());
    rm_rf(dir);
}

int
main(void)
{
    log_setup(LOG_WARN, true, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_snapshot_roundtrip),
        cmocka_unit_test(test_snapshot_plus_wal_equals_state),
        cmocka_unit_test(test_snapshot_fallback),
        cmocka_unit_test(test_expired_not_resurrected),
        cmocka_unit_test(test_disk_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
