/*
 * zipf.h -- random numbers and key choosers for crabcache-bench.
 *
 * bench_rng is xoshiro256** seeded through splitmix64: fast, 256-bit state,
 * one per connection so no locking. bench_zipf draws ranks 1..n with
 * P(k) proportional to 1/k^s by rejection-inversion (Hörmann and Derflinger,
 * "Rejection-inversion to generate variates from monotone discrete
 * distributions", 1996): O(1) time and memory per draw for any n and any
 * exponent s > 0 (s = 1 included), with no precomputed table.
 *
 * All functions are pure over the structs passed in; a struct must not be
 * shared between threads without external locking.
 */
#ifndef CRAB_BENCH_ZIPF_H
#define CRAB_BENCH_ZIPF_H

#include <stdint.h>

struct bench_rng {
    uint64_t s[4];
};

/* Seed the generator; any seed (0 included) gives a valid state. */
void bench_rng_seed(struct bench_rng *r, uint64_t seed);

/* Next 64 random bits. */
uint64_t bench_rng_next(struct bench_rng *r);

/* Uniform double in [0, 1). */
double bench_rng_double(struct bench_rng *r);

/* Uniform integer in [0, n) for n >= 1 (Lemire's multiply-shift; the bias
 * is below n / 2^64, negligible for key choice). */
uint64_t bench_rng_below(struct bench_rng *r, uint64_t n);

struct bench_zipf {
    uint64_t n;      /* number of ranks */
    double s;        /* exponent */
    double h_x1;     /* H(1.5) - 1 */
    double h_n;      /* H(n + 0.5) */
    double sv;       /* squeeze bound of the rejection test */
};

/*
 * Prepare a generator for ranks 1..n (n >= 1) with exponent s > 0.
 * Returns 0, or -1 when the arguments are out of range.
 */
int bench_zipf_init(struct bench_zipf *z, uint64_t n, double s);

/* Draw a rank in [1, n]; rank 1 is the most frequent. */
uint64_t bench_zipf_next(const struct bench_zipf *z, struct bench_rng *r);

#endif
