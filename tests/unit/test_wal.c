/*
 * test_wal.c -- the WAL format, reader, writer and recovery from the log.
 *
 *  - CRC32C: known vector, hardware == table;
 *  - one round trip per record type (encode -> decode -> equal), and every
 *    single-byte change of an encoded record is rejected;
 *  - a log written by the real writer, truncated at EVERY byte offset:
 *    recovery never fails, applies exactly the complete groups before the
 *    cut (never half a group), reports a torn tail iff the cut is not on a
 *    group boundary, truncates the file so a second recovery is clean;
 *  - the same log with a byte flipped at EVERY offset: recovery never
 *    applies a damaged or out-of-order record; damage in the last group is a
 *    torn tail, anywhere else it stops with "file ... offset N" naming the
 *    damaged record, and with skip_damaged it skips exactly that group;
 *  - rotation at max_segment_size on group boundaries.
 * Threads, group commit and disk-full are in test_wal_writer.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "tmpdir.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "persist/crc32c.h"
#include "persist/persist.h"
#include "persist/wal.h"
#include "persist/wal_format.h"
#include "util/log.h"
#include "util/mem.h"

/* ---- helpers ------------------------------------------------------------ */

static uint8_t *
read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = xmalloc((size_t)n + 1);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

static void
write_file(const char *path, const uint8_t *b, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, len, f), len);
    fclose(f);
}

static off_t
file_size(const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        return -1;
    }
    return st.st_size;
}

/* Records as recovery applied them. */
struct applied {
    struct wal_rec rec;
    char key[64];
    char val[256];
};

struct sink {
    struct applied *a;
    size_t n, cap;
};

static int
sink_apply(void *ctx, const struct wal_rec *r)
{
    struct sink *s = ctx;
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 64;
        s->a = xrealloc(s->a, s->cap * sizeof(*s->a));
    }
    struct applied *x = &s->a[s->n++];
    memset(x, 0, sizeof(*x));
    x->rec = *r;
    assert_true(r->klen < sizeof(x->key) && r->vlen < sizeof(x->val));
    if (r->klen > 0) {
        memcpy(x->key, r->key, r->klen);
    }
    if (r->vlen > 0) {
        memcpy(x->val, r->val, r->vlen);
    }
    x->rec.key = NULL;
    x->rec.val = NULL;
    return 0;
}

static int
count_apply(void *ctx, const struct wal_rec *r)
{
    (void)r;
    (*(uint64_t *)ctx)++;
    return 0;
}

/* ---- crc, codec ---------------------------------------------------------- */

static void
test_crc32c(void **state)
{
    (void)state;
    assert_int_equal(crc32c(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(crc32c_sw(0, "123456789", 9), 0xE3069283u);
    uint8_t b[4096];
    for (size_t i = 0; i < sizeof(b); i++) {
        b[i] = (uint8_t)(i * 131 + 7);
    }
    for (size_t off = 0; off < 9; off++) {
        for (size_t len = 0; len + off < sizeof(b); len += 97) {
            assert_int_equal(crc32c(0, b + off, len), crc32c_sw(0, b + off, len));
        }
    }
    assert_int_equal(crc32c(crc32c(0, b, 1000), b + 1000, 3000), crc32c(0, b, 4000));
    print_message("crc32c hardware: %s\n", crc32c_hw_available() ? "sse4.2" : "no (table)");
}

static void
roundtrip(const struct wal_rec *in, uint8_t flags)
{
    size_t sz = wal_rec_size(in);
    assert_true(sz >= WAL_REC_HDR_SIZE);
    uint8_t *b = xmalloc(sz + 8);
    assert_int_equal(wal_rec_encode(in, 12345, flags, b), sz);
    struct wal_rec out;
    size_t used = 0;
    assert_int_equal(wal_rec_decode(b, sz + 0, &out, &used), 0);
    assert_int_equal(used, sz);
    assert_int_equal(out.type, in->type);
    assert_int_equal(out.flags, flags);
    assert_int_equal(out.lsn, 12345);
    if (in->type != WAL_REC_FLUSHALL) {
        assert_int_equal(out.klen, in->klen);
        assert_memory_equal(out.key, in->key, in->klen);
    } else {
        assert_int_equal(out.klen, 0);
    }
    if (in->type == WAL_REC_SET) {
        assert_int_equal(out.vlen, in->vlen);
        if (in->vlen > 0) {
            assert_memory_equal(out.val, in->val, in->vlen);
        }
    } else {
        assert_int_equal(out.vlen, 0);
    }
    if (in->type == WAL_REC_SET || in->type == WAL_REC_EXPIRE) {
        assert_int_equal(out.expire_at_ms, in->expire_at_ms);
    } else {
        assert_int_equal(out.expire_at_ms, 0);
    }
    /* Every shorter prefix is "incomplete", never a record. */
    for (size_t n = 0; n < sz; n++) {
        int r = wal_rec_decode(b, n, &out, &used);
        assert_true(r == WAL_EAGAIN);
    }
    /* Every single-byte change is detected. */
    for (size_t i = 0; i < sz; i++) {
        for (int bit = 0; bit < 8; bit += 3) {
            b[i] ^= (uint8_t)(1u << bit);
            assert_int_not_equal(wal_rec_decode(b, sz, &out, &used), 0);
            b[i] ^= (uint8_t)(1u << bit);
        }
    }
    free(b);
}

static void
test_roundtrip_set(void **state)
{
    (void)state;
    static const char key[] = "user:\0\xff:1";
    static const char val[] = "binary\0value\r\n with bytes \x01\x02";
    struct wal_rec r = { .type = WAL_REC_SET, .key = key, .klen = sizeof(key) - 1,
                         .val = val, .vlen = sizeof(val) - 1,
                         .expire_at_ms = 1790000000123LL };
    roundtrip(&r, 0);
    roundtrip(&r, WAL_F_MORE);
    roundtrip(&r, WAL_F_MORE | WAL_F_CONT);
    r.expire_at_ms = 0;
    r.vlen = 0; /* empty value */
    roundtrip(&r, 0);
    r.klen = 0; /* empty key (Redis allows "") */
    roundtrip(&r, 0);
}

static void
test_roundtrip_del(void **state)
{
    (void)state;
    struct wal_rec r = { .type = WAL_REC_DEL, .key = "some-key", .klen = 8 };
    roundtrip(&r, 0);
    roundtrip(&r, WAL_F_CONT);
}

static void
test_roundtrip_expire(void **state)
{
    (void)state;
    struct wal_rec r = { .type = WAL_REC_EXPIRE, .key = "k", .klen = 1,
                         .expire_at_ms = 1700000000000LL };
    roundtrip(&r, 0);
    r.expire_at_ms = 0; /* PERSIST */
    roundtrip(&r, 0);
}

static void
test_roundtrip_flushall(void **state)
{
    (void)state;
    struct wal_rec r = { .type = WAL_REC_FLUSHALL };
    roundtrip(&r, 0);
}

static void
test_encode_rejects(void **state)
{
    (void)state;
    struct wal_rec r = { .type = (enum wal_rec_type)9, .key = "k", .klen = 1 };
    assert_int_equal(wal_rec_size(&r), 0);
    r.type = WAL_REC_SET;
    r.vlen = (size_t)WAL_MAX_PAYLOAD; /* too big with the header */
    assert_int_equal(wal_rec_size(&r), 0);
    uint8_t hdr[WAL_SEG_HDR_SIZE];
    uint64_t lsn = 0;
    wal_seg_hdr_encode(77, hdr);
    assert_int_equal(wal_seg_hdr_decode(hdr, sizeof(hdr), &lsn), 0);
    assert_int_equal(lsn, 77);
    hdr[3] ^= 1;
    assert_int_equal(wal_seg_hdr_decode(hdr, sizeof(hdr), &lsn), WAL_ESEGHDR);
    char name[40];
    wal_seg_name(0x1234, name, sizeof(name));
    assert_string_equal(name, "wal-0000000000001234.log");
    assert_true(wal_seg_name_parse(name, &lsn));
    assert_int_equal(lsn, 0x1234);
    assert_false(wal_seg_name_parse("wal-000000000000123.log", &lsn));
    assert_false(wal_seg_name_parse("wal-000000000000123G.log", &lsn));
}

/* ---- a reference log written by the real writer -------------------------- */

#define NGROUPS 24

struct reflog {
    char dir[64];
    char seg[128];
    uint8_t *img;
    size_t len;
    size_t group_end[NGROUPS + 1]; /* byte offset after group g (index 0 = header) */
    size_t rec_off[128];           /* start offset of record with LSN i+1 */
    int rec_group[128];            /* group of record with LSN i+1 */
    size_t nrec;
    struct sink orig;              /* the records, as decoded from the full log */
};

static void
reflog_build(struct reflog *L)
{
    make_tmpdir(L->dir, sizeof(L->dir), "wal");
    struct wal_opts o;
    wal_opts_init(&o);
    o.dir = L->dir;
    o.sync = WAL_SYNC_NONE;
    struct wal *w;
    assert_int_equal(wal_open(&o, &w), 0);
    for (int g = 0; g < NGROUPS; g++) {
        char k1[32], k2[32], v[64];
        snprintf(k1, sizeof(k1), "key%d", g % 7);
        snprintf(k2, sizeof(k2), "key%d", (g + 3) % 7);
        snprintf(v, sizeof(v), "value-%d-%.*s", g, g, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
        struct wal_rec recs[3];
        size_t n = 1;
        memset(recs, 0, sizeof(recs));
        switch (g % 6) {
        case 0: case 3:
            recs[0] = (struct wal_rec){ .type = WAL_REC_SET, .key = k1, .klen = strlen(k1),
                                        .val = v, .vlen = strlen(v) };
            break;
        case 1: /* RENAME k1 -> k2 */
            recs[0] = (struct wal_rec){ .type = WAL_REC_DEL, .key = k1, .klen = strlen(k1) };
            recs[1] = (struct wal_rec){ .type = WAL_REC_SET, .key = k2, .klen = strlen(k2),
                                        .val = v, .vlen = strlen(v) };
            n = 2;
            break;
        case 2:
            recs[0] = (struct wal_rec){ .type = WAL_REC_EXPIRE, .key = k1, .klen = strlen(k1),
                                        .expire_at_ms = 4102444800000LL };
            break;
        case 4: /* MULTI: three records */
            recs[0] = (struct wal_rec){ .type = WAL_REC_SET, .key = k1, .klen = strlen(k1),
                                        .val = v, .vlen = strlen(v),
                                        .expire_at_ms = 4102444800000LL };
            recs[1] = (struct wal_rec){ .type = WAL_REC_DEL, .key = k2, .klen = strlen(k2) };
            recs[2] = (struct wal_rec){ .type = WAL_REC_EXPIRE, .key = k1, .klen = strlen(k1) };
            n = 3;
            break;
        case 5:
            recs[0] = (struct wal_rec){ .type = g == 11 ? WAL_REC_FLUSHALL : WAL_REC_DEL,
                                        .key = k1, .klen = strlen(k1) };
            break;
        }
        assert_true(wal_append_group(w, recs, n) > 0);
    }
    wal_close(&w);
    wal_seg_name(1, L->seg, sizeof(L->seg));
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", L->dir, L->seg);
    L->img = read_file(path, &L->len);

    /* Group and record offsets, by walking the headers. */
    size_t off = WAL_SEG_HDR_SIZE;
    int g = 0;
    L->group_end[0] = off;
    L->nrec = 0;
    while (off < L->len) {
        L->rec_off[L->nrec] = off;
        L->rec_group[L->nrec] = g;
        L->nrec++;
        uint8_t flags = L->img[off + 17];
        off += WAL_REC_HDR_SIZE + wal_get_u32(L->img + off + 4);
        if (!(flags & WAL_F_MORE)) {
            L->group_end[++g] = off;
        }
    }
    assert_int_equal(g, NGROUPS);
    assert_int_equal(off, L->len);
    memset(&L->orig, 0, sizeof(L->orig));
    struct persist_recover_opts ro = { .now_ms = 1 };
    struct persist_report rep;
    assert_int_equal(persist_recover(L->dir, sink_apply, &L->orig, &ro, &rep), 0);
    assert_int_equal(L->orig.n, L->nrec);
    assert_false(rep.torn);
    assert_int_equal(rep.next_lsn, L->nrec + 1);
}

static void
reflog_free(struct reflog *L)
{
    rm_rf(L->dir);
    free(L->img);
    free(L->orig.a);
}

/* Each applied record must be the original with the same LSN. */
static void
check_prefix(const struct reflog *L, const struct sink *s)
{
    for (size_t i = 0; i < s->n; i++) {
        const struct applied *a = &s->a[i], *o = &L->orig.a[a->rec.lsn - 1];
        assert_int_equal(a->rec.lsn, o->rec.lsn);
        assert_int_equal(a->rec.type, o->rec.type);
        assert_string_equal(a->key, o->key);
        assert_string_equal(a->val, o->val);
        assert_int_equal(a->rec.expire_at_ms, o->rec.expire_at_ms);
        if (i > 0) {
            assert_true(a->rec.lsn > s->a[i - 1].rec.lsn);
        }
    }
}

static size_t
records_in_groups(const struct reflog *L, int ngroups)
{
    size_t n = 0;
    while (n < L->nrec && L->rec_group[n] < ngroups) {
        n++;
    }
    return n;
}

static void
test_truncate_every_offset(void **state)
{
    (void)state;
    struct reflog L;
    reflog_build(&L);
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", L.dir, L.seg);
    log_set_level(LOG_ERROR);
    for (size_t cut = 0; cut <= L.len; cut++) {
        write_file(path, L.img, cut);
        int complete = 0;
        while (complete < NGROUPS && L.group_end[complete + 1] <= cut) {
            complete++;
        }
        bool boundary = cut == L.group_end[complete];
        struct sink s = { 0 };
        struct persist_report rep;
        struct persist_recover_opts ro = { .now_ms = 1 };
        int rc = persist_recover(L.dir, sink_apply, &s, &ro, &rep);
        assert_int_equal(rc, 0);
        /* Exactly the complete groups, never a partial one. */
        assert_int_equal(s.n, records_in_groups(&L, complete));
        check_prefix(&L, &s);
        assert_int_equal(rep.next_lsn, s.n + 1);
        if (cut < WAL_SEG_HDR_SIZE) {
            /* torn segment header: the file is removed (unless it was empty of
             * all but nothing, cut 0, which is torn as well) */
            assert_true(rep.torn);
            assert_int_equal(file_size(path), -1);
        } else {
            assert_int_equal(rep.torn, !boundary);
            if (!boundary) {
                assert_int_equal(rep.torn_offset, L.group_end[complete]);
                assert_int_equal(rep.torn_bytes, cut - L.group_end[complete]);
            }
            assert_int_equal(file_size(path), (off_t)L.group_end[complete]);
            /* A second recovery finds a clean log. */
            struct sink s2 = { 0 };
            assert_int_equal(persist_recover(L.dir, sink_apply, &s2, &ro, &rep), 0);
            assert_false(rep.torn);
            assert_int_equal(s2.n, s.n);
            free(s2.a);
        }
        free(s.a);
    }
    log_set_level(LOG_INFO);
    reflog_free(&L);
}

static void
test_flip_every_offset(void **state)
{
    (void)state;
    struct reflog L;
    reflog_build(&L);
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", L.dir, L.seg);
    uint8_t *img = xmalloc(L.len);
    int last_group = NGROUPS - 1;
    unsigned torn = 0, damaged = 0, skipped = 0;
    log_set_level(LOG_ERROR + 1);
    for (size_t off = 0; off < L.len; off++) {
        uint8_t x = (uint8_t)(1u + (off * 37) % 255); /* never 0: always a change */
        memcpy(img, L.img, L.len);
        img[off] ^= x;
        /* which record/group holds off */
        int rec = -1;
        for (size_t i = 0; i < L.nrec; i++) {
            if (L.rec_off[i] <= off) {
                rec = (int)i;
            }
        }
        int group = rec < 0 ? -1 : L.rec_group[rec];

        /* strict */
        write_file(path, img, L.len);
        struct sink s = { 0 };
        struct persist_report rep;
        struct persist_recover_opts ro = { .now_ms = 1 };
        int rc = persist_recover(L.dir, sink_apply, &s, &ro, &rep);
        check_prefix(&L, &s);
        if (group == last_group) {
            assert_int_equal(rc, 0);
            assert_true(rep.torn);
            assert_int_equal(rep.torn_offset, L.group_end[last_group]);
            assert_int_equal(s.n, records_in_groups(&L, last_group));
            torn++;
        } else {
            assert_true(rc < 0);
            char want[64];
            snprintf(want, sizeof(want), "offset %zu:", rec < 0 ? (size_t)0 : L.rec_off[rec]);
            if (strstr(rep.error, want) == NULL || strstr(rep.error, L.seg) == NULL) {
                fail_msg("offset %zu: error \"%s\" does not name %s %s", off, rep.error,
                         L.seg, want);
            }
            /* Nothing at or after the damaged group was applied. */
            assert_int_equal(s.n, group < 0 ? 0 : records_in_groups(&L, group));
            damaged++;
        }
        free(s.a);

        /* skip_damaged: exactly the damaged group is lost */
        write_file(path, img, L.len);
        struct sink s3 = { 0 };
        ro.skip_damaged = true;
        rc = persist_recover(L.dir, sink_apply, &s3, &ro, &rep);
        assert_int_equal(rc, 0);
        check_prefix(&L, &s3);
        if (group >= 0 && group != last_group) {
            size_t lost = records_in_groups(&L, group + 1) - records_in_groups(&L, group);
            assert_int_equal(s3.n, L.nrec - lost);
            assert_true(rep.skipped_regions >= 1);
            skipped++;
        } else if (group < 0) {
            assert_int_equal(s3.n, 0); /* whole segment skipped */
            assert_int_equal(rep.skipped_regions, 1);
        }
        free(s3.a);
    }
    log_set_level(LOG_INFO);
    print_message("flips: %u torn tail, %u damage stops, %u skipped\n", torn, damaged, skipped);
    assert_true(torn > 0 && damaged > 0 && skipped > 0);
    free(img);
    reflog_free(&L);
}

/* The scanner on its own, on a non-last segment: a bad tail is damage. */
static void
test_scan_not_last(void **state)
{
    (void)state;
    struct reflog L;
    reflog_build(&L);
    struct wal_scan_opts so = { .is_last = false };
    struct wal_scan_result res;
    assert_int_equal(wal_scan(L.img, L.len, &so, NULL, NULL, &res), 0);
    assert_int_equal(res.records, L.nrec);
    assert_int_equal(res.good_end, L.len);
    size_t cut = L.len - 5;
    assert_int_equal(wal_scan(L.img, cut, &so, NULL, NULL, &res), WAL_EAGAIN);
    assert_int_equal(res.damage_off, L.rec_off[L.nrec - 1]);
    so.is_last = true;
    assert_int_equal(wal_scan(L.img, cut, &so, NULL, NULL, &res), 0);
    assert_true(res.torn);
    reflog_free(&L);
}

/* Rotation: segments never exceed max_segment_size, cut between groups. */
static void
test_rotation(void **state)
{
    (void)state;
    char dir[64];
    make_tmpdir(dir, sizeof(dir), "walrot");
    struct wal_opts o;
    wal_opts_init(&o);
    o.dir = dir;
    o.sync = WAL_SYNC_NONE;
    o.max_segment_size = 4096;
    struct wal *w;
    assert_int_equal(wal_open(&o, &w), 0);
    char val[300];
    memset(val, 'v', sizeof(val));
    const int N = 500;
    for (int i = 0; i < N; i++) {
        char k[32];
        snprintf(k, sizeof(k), "rot%d", i);
        struct wal_rec recs[2] = {
            { .type = WAL_REC_SET, .key = k, .klen = strlen(k), .val = val,
              .vlen = (size_t)(i % 290) },
            { .type = WAL_REC_EXPIRE, .key = k, .klen = strlen(k), .expire_at_ms = 0 },
        };
        assert_true(wal_append_group(w, recs, 2) > 0);
    }
    /* one group bigger than a segment gets a segment of its own */
    char *big = xcalloc(1, 10000);
    struct wal_rec br = { .type = WAL_REC_SET, .key = "big", .klen = 3, .val = big, .vlen = 10000 };
    assert_true(wal_append(w, &br) > 0);
    assert_int_equal(wal_flush(w, wal_last_lsn(w), true, 5000), 0);
    struct wal_stats st;
    wal_stats(w, &st);
    assert_true(st.segments > 10);
    assert_int_equal(st.durable_lsn, 2 * N + 1);
    wal_close(&w);
    free(big);

    DIR *d = opendir(dir);
    struct dirent *de;
    int nseg = 0;
    while ((de = readdir(d)) != NULL) {
        uint64_t first;
        if (!wal_seg_name_parse(de->d_name, &first)) {
            continue;
        }
        char p[512];
        snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
        off_t sz = file_size(p);
        off_t big_seg = WAL_SEG_HDR_SIZE + WAL_REC_HDR_SIZE + 16 + 3 + 10000;
        assert_true(sz <= 4096 || sz == big_seg);
        nseg++;
    }
    closedir(d);
    assert_int_equal((uint64_t)nseg, st.segments);

    uint64_t count = 0;
    struct persist_report rep;
    assert_int_equal(persist_recover(dir, count_apply, &count, NULL, &rep), 0);
    assert_int_equal(count, 2 * N + 1);
    assert_int_equal(rep.records, 2 * N + 1);
    assert_int_equal(rep.next_lsn, 2 * N + 2);
    assert_int_equal(rep.segments, (uint64_t)nseg);

    /* removing below an LSN keeps the segment being written and all later */
    o.start_lsn = rep.next_lsn;
    assert_int_equal(wal_open(&o, &w), 0);
    uint64_t freed = 0;
    int removed = wal_remove_below(w, 600, &freed);
    assert_true(removed > 0 && freed > 0);
    wal_stats(w, &st);
    assert_int_equal(st.segments, (uint64_t)(nseg + 1 - removed));
    wal_close(&w);
    rm_rf(dir);
}

int
main(void)
{
    log_setup(LOG_INFO, true, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c),
        cmocka_unit_test(test_roundtrip_set),
        cmocka_unit_test(test_roundtrip_del),
        cmocka_unit_test(test_roundtrip_expire),
        cmocka_unit_test(test_roundtrip_flushall),
        cmocka_unit_test(test_encode_rejects),
        cmocka_unit_test(test_truncate_every_offset),
        cmocka_unit_test(test_flip_every_offset),
        cmocka_unit_test(test_scan_not_last),
        cmocka_unit_test(test_rotation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
