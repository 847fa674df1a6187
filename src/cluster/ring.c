/*
 * ring.c -- consistent hash ring with virtual nodes (see ring.h).
 *
 * All n * vnodes points are built and sorted once, by (hash, num): the order
 * of m[] then cannot change anything, and two members whose points collide
 * (2^-64 per pair, but ids are caller input) still sort the same way on every
 * node. The vbuckets' points increase with vb, so one cursor walks the sorted
 * points once for all of them; each list is then collected by stepping
 * clockwise from that cursor, skipping members already in the list, wrapping
 * past the top of the ring.
 */
#include "cluster/ring.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

struct point {
    uint64_t hash;
    uint32_t num;
};

static int
point_cmp(const void *a, const void *b)
{
    const struct point *x = a, *y = b;
    if (x->hash != y->hash) {
        return x->hash < y->hash ? -1 : 1;
    }
    return x->num < y->num ? -1 : x->num > y->num;
}

static bool
in_list(const uint32_t *list, unsigned k, uint32_t num)
{
    for (unsigned i = 0; i < k; i++) {
        if (list[i] == num) {
            return true;
        }
    }
    return false;
}

static int
num_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Distinct nums among the members: a caller passing the same num twice must
 * not leave the walk looking for a member that does not exist (the walk is
 * bounded anyway; this keeps out_n exact). -1 on allocation failure. */
static long
distinct_nums(const struct ring_member *m, size_t n)
{
    uint32_t *nums = malloc(n * sizeof(*nums));
    if (nums == NULL) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        nums[i] = m[i].num;
    }
    qsort(nums, n, sizeof(*nums), num_cmp);
    long d = 0;
    for (size_t i = 0; i < n; i++) {
        d += i == 0 || nums[i] != nums[i - 1];
    }
    free(nums);
    return d;
}

int
ring_place(const struct ring_member *m, size_t n, unsigned vnodes, unsigned nvb,
           unsigned rf, uint32_t *out, uint8_t *out_n)
{
    memset(out_n, 0, nvb);
    memset(out, 0, (size_t)nvb * rf * sizeof(*out));
    if (n == 0 || vnodes == 0 || rf == 0 || nvb == 0) {
        return 0;
    }
    size_t npts = n * vnodes;
    if (npts / vnodes != n || npts > SIZE_MAX / sizeof(struct point)) {
        return -1;
    }
    struct point *pts = malloc(npts * sizeof(*pts));
    if (pts == NULL) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        size_t idlen = strlen(m[i].id);
        for (unsigned v = 0; v < vnodes; v++) {
            pts[i * vnodes + v].hash = XXH3_64bits_withSeed(m[i].id, idlen, v);
            pts[i * vnodes + v].num = m[i].num;
        }
    }
    qsort(pts, npts, sizeof(*pts), point_cmp);

    long distinct = distinct_nums(m, n);
    if (distinct < 0) {
        free(pts);
        return -1;
    }
    unsigned want = rf < UINT8_MAX ? rf : UINT8_MAX;
    if ((unsigned long)distinct < want) {
        want = (unsigned)distinct;
    }

    /* 2^64 / nvb, without overflow for nvb = 1 (the step is then unused) */
    uint64_t step = nvb > 1 ? UINT64_MAX / nvb + 1 : 0;
    size_t cur = 0;
    for (unsigned vb = 0; vb < nvb; vb++) {
        uint64_t at = (uint64_t)vb * step;
        while (cur < npts && pts[cur].hash < at) {
            cur++;
        }
        uint32_t *list = out + (size_t)vb * rf;
        unsigned k = 0;
        for (size_t s = 0; s < npts && k < want; s++) {
            uint32_t num = pts[(cur + s) % npts].num;
            if (!in_list(list, k, num)) {
                list[k++] = num;
            }
        }
        out_n[vb] = (uint8_t)k;
    }
    free(pts);
    return 0;
}
