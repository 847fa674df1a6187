/*
 * hist.c -- log-linear histogram, see hist.h.
 *
 * Index of v: with e = msb(v | 127) - 6 (0 for v < 128), idx = (e << 6) +
 * (v >> e). For v < 128 that is v itself; for v in [2^k, 2^(k+1)) with k >= 7
 * the shift leaves a sub-bucket number in [64, 128), so consecutive
 * power-of-two ranges occupy consecutive blocks of 64 indexes. The mapping
 * is monotonic, which makes the percentile walk a simple prefix sum.
 */
#include "hist.h"

#include <string.h>

#define SUB_COUNT (1u << BENCH_HIST_SUB_BITS)      /* 64 */
#define LINEAR_MAX (2u * SUB_COUNT)                /* values below this are exact */

void
bench_hist_init(struct bench_hist *h)
{
    memset(h, 0, sizeof(*h));
    h->min = UINT64_MAX;
}

unsigned
bench_hist_index(uint64_t v)
{
    if (v > (uint64_t)INT64_MAX) {
        v = (uint64_t)INT64_MAX;
    }
    unsigned msb = 63u - (unsigned)__builtin_clzll(v | (LINEAR_MAX - 1));
    unsigned e = msb - BENCH_HIST_SUB_BITS;
    return (e << BENCH_HIST_SUB_BITS) + (unsigned)(v >> e);
}

uint64_t
bench_hist_bucket_low(unsigned idx)
{
    if (idx < LINEAR_MAX) {
        return idx;
    }
    unsigned e = (idx >> BENCH_HIST_SUB_BITS) - 1;
    uint64_t sub = idx - (e << BENCH_HIST_SUB_BITS);
    return sub << e;
}

uint64_t
bench_hist_bucket_high(unsigned idx)
{
    if (idx < LINEAR_MAX) {
        return idx;
    }
    unsigned e = (idx >> BENCH_HIST_SUB_BITS) - 1;
    return bench_hist_bucket_low(idx) + ((uint64_t)1 << e) - 1;
}

void
bench_hist_record_n(struct bench_hist *h, uint64_t v, uint64_t n)
{
    if (n == 0) {
        return;
    }
    if (v > (uint64_t)INT64_MAX) {
        v = (uint64_t)INT64_MAX;
    }
    h->bucket[bench_hist_index(v)] += n;
    h->count += n;
    h->sum += (double)v * (double)n;
    if (v < h->min) {
        h->min = v;
    }
    if (v > h->max) {
        h->max = v;
    }
}

void
bench_hist_record(struct bench_hist *h, uint64_t v)
{
    bench_hist_record_n(h, v, 1);
}

void
bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src)
{
    if (src->count == 0) {
        return;
    }
    for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++) {
        dst->bucket[i] += src->bucket[i];
    }
    dst->count += src->count;
    dst->sum += src->sum;
    if (src->min < dst->min) {
        dst->min = src->min;
    }
    if (src->max > dst->max) {
        dst->max = src->max;
    }
}

uint64_t
bench_hist_percentile(const struct bench_hist *h, double p)
{
    if (h->count == 0) {
        return 0;
    }
    if (p <= 0.0) {
        return h->min;
    }
    if (p >= 100.0) {
        return h->max;
    }
    /* rank = ceil(p/100 * count), at least 1; the tolerance keeps 99.9 % of
     * 10000 at rank 9990 despite binary rounding */
    double want = p * (double)h->count / 100.0;
    uint64_t rank = (uint64_t)want;
    if (want - (double)rank > 1e-9 * want) {
        rank++;
    }
    if (rank == 0) {
        rank = 1;
    }
    uint64_t seen = 0;
    for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++) {
        seen += h->bucket[i];
        if (seen >= rank) {
            uint64_t lo = bench_hist_bucket_low(i);
            uint64_t hi = bench_hist_bucket_high(i);
            uint64_t mid = lo + (hi - lo) / 2;
            if (mid < h->min) {
                mid = h->min;
            }
            if (mid > h->max) {
                mid = h->max;
            }
            return mid;
        }
    }
    return h->max;
}

double
bench_hist_mean(const struct bench_hist *h)
{
    return h->count ? h->sum / (double)h->count : 0.0;
}
