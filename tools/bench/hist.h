/*
 * hist.h -- log-linear latency histogram for crabcache-bench (HdrHistogram-like).
 *
 * Values are non-negative 64-bit integers (the bench records nanoseconds).
 * Values below 128 get a bucket each; above that, every power-of-two range
 * [2^k, 2^(k+1)) is split into 64 equal sub-buckets, so a bucket is never
 * wider than 1/64 of its lower bound. Percentiles report the middle of the
 * bucket (clamped to the exact min/max), so their relative error is below
 * 0.8 %. Recording is O(1) with no allocation; merging is a vector add.
 *
 * A histogram is plain memory (about 30 KiB) owned by the caller. It is not
 * thread-safe: each thread records into its own and the main thread merges
 * them after joining.
 */
#ifndef CRAB_BENCH_HIST_H
#define CRAB_BENCH_HIST_H

#include <stdint.h>

#define BENCH_HIST_SUB_BITS 6                            /* 64 sub-buckets */
#define BENCH_HIST_BUCKETS ((64 - BENCH_HIST_SUB_BITS) << BENCH_HIST_SUB_BITS)

struct bench_hist {
    uint64_t count;  /* values recorded */
    uint64_t min;    /* exact smallest value (UINT64_MAX when empty) */
    uint64_t max;    /* exact largest value (0 when empty) */
    double sum;      /* sum of values, for the mean */
    uint64_t bucket[BENCH_HIST_BUCKETS];
};

/* Empty the histogram. */
void bench_hist_init(struct bench_hist *h);

/* Record one value. Values of 2^63 and above are clamped to 2^63 - 1. */
void bench_hist_record(struct bench_hist *h, uint64_t v);

/* Record n occurrences of the same value (n may be 0: no-op). */
void bench_hist_record_n(struct bench_hist *h, uint64_t v, uint64_t n);

/* Add every count of src into dst. src is unchanged. */
void bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src);

/*
 * The value at percentile p (0..100): the smallest recorded value v such
 * that at least p % of the values are <= v, reported as the middle of v's
 * bucket clamped to [min, max]. p <= 0 gives min, p >= 100 gives max.
 * Returns 0 for an empty histogram.
 */
uint64_t bench_hist_percentile(const struct bench_hist *h, double p);

/* Mean of the recorded values (exact), 0 when empty. */
double bench_hist_mean(const struct bench_hist *h);

/* Bucket index of v, and the [low, high] range of values a bucket holds.
 * Exposed for the unit test. */
unsigned bench_hist_index(uint64_t v);
uint64_t bench_hist_bucket_low(unsigned idx);
uint64_t bench_hist_bucket_high(unsigned idx);

#endif
