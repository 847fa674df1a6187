/*
 * fuzz_wal.c -- libFuzzer target for the WAL segment reader (and the
 * snapshot verifier, which shares its checksum and length discipline).
 *
 * The input is taken as a whole segment file. For each mode (newest segment
 * or not, skip damaged or not) the scanner must not crash, read out of
 * bounds or leak, and its result must be self-consistent:
 *   - delivered records have consecutive LSNs within a run, groups are
 *     well formed (MORE on all but the last, CONT on all but the first);
 *   - good_end <= len; a torn tail only for the newest segment;
 *   - without skipping, rescanning exactly [0, good_end) as a closed segment
 *     gives the same records and no damage (a torn tail cut off leaves a
 *     clean log, which is what recovery's truncation relies on).
 * The same bytes are then given to snap_verify().
 *
 * The persist sources are #included so that libFuzzer's coverage
 * instrumentation covers them (the crabcore library is built without it);
 * the linker then takes no duplicate object from the library.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/persist/crc32c.c"
#include "../../src/persist/wal_format.c"
#include "../../src/persist/snap.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct check {
    uint64_t records;
    uint64_t next_lsn;
    bool have;
};

static int
check_group(void *ctx, const struct wal_rec *recs, size_t n)
{
    struct check *c = ctx;
    for (size_t i = 0; i < n; i++) {
        const struct wal_rec *r = &recs[i];
        bool more = (r->flags & WAL_F_MORE) != 0, cont = (r->flags & WAL_F_CONT) != 0;
        if (more != (i + 1 < n) || cont != (i > 0)) {
            abort();
        }
        if (i > 0 && r->lsn != recs[i - 1].lsn + 1) {
            abort();
        }
        if (c->have && r->lsn < c->next_lsn) {
            abort(); /* LSNs only move forward, even across skipped damage */
        }
        if (r->type < WAL_REC_SET || r->type > WAL_REC_FLUSHALL || r->expire_at_ms < 0) {
            abort();
        }
        /* touch every byte the record points at (ASan checks the bounds) */
        volatile uint8_t sink = 0;
        for (size_t k = 0; k < r->klen; k++) {
            sink ^= ((const uint8_t *)r->key)[k];
        }
        for (size_t k = 0; k < r->vlen; k++) {
            sink ^= ((const uint8_t *)r->val)[k];
        }
        (void)sink;
        c->have = true;
        c->next_lsn = r->lsn + 1;
        c->records++;
    }
    return 0;
}

static int
count_entry(void *ctx, const void *key, size_t klen, const void *val, size_t vlen, int64_t exp)
{
    (void)key;
    (void)val;
    (void)exp;
    *(uint64_t *)ctx += klen + vlen;
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* an exact-size heap copy, so ASan sees reads past the end */
    uint8_t *buf = malloc(size ? size : 1);
    memcpy(buf, data, size);
    for (int mode = 0; mode < 4; mode++) {
        struct wal_scan_opts so = { .is_last = (mode & 1) != 0, .skip_damaged = (mode & 2) != 0 };
        struct wal_scan_result res;
        struct check c = { 0 };
        int rc = wal_scan(buf, size, &so, check_group, &c, &res);
        if (res.good_end > size || c.records != res.records) {
            abort();
        }
        if (res.torn && !so.is_last) {
            abort();
        }
        if (rc == 0 && !so.skip_damaged && res.good_end >= WAL_SEG_HDR_SIZE) {
            struct wal_scan_opts closed = { 0 };
            struct wal_scan_result again;
            struct check c2 = { 0 };
            if (wal_scan(buf, res.good_end, &closed, check_group, &c2, &again) != 0 ||
                again.records != res.records || again.torn || again.good_end != res.good_end) {
                abort();
            }
        }
    }
    struct snap_info info;
    size_t bad;
    uint64_t total = 0;
    if (snap_load_mem(buf, size, count_entry, &total, &info, &bad) == 0) {
        if (info.bytes != size || total > size) {
            abort();
        }
    } else if (bad > size) {
        abort();
    }
    free(buf);
    return 0;
}
