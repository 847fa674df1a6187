/*
 * zipf.c -- xoshiro256** and rejection-inversion Zipf sampling, see zipf.h.
 *
 * Rejection-inversion: let h(x) = x^-s and H its antiderivative
 * H(x) = (x^(1-s) - 1) / (1 - s) (log x when s = 1). Draw u uniformly in
 * [H(n + 0.5), H(1.5) - 1), invert to x = H^-1(u), round to the integer k.
 * Accept k when it falls in the squeeze region (k - x <= sv) or when
 * u >= H(k + 0.5) - h(k); otherwise retry. The expected number of tries is
 * close to 1 for every s. The two helpers below evaluate
 * (e^t - 1) / t and log(1 + t) / t stably near t = 0, which is what makes
 * one formula serve s = 1 as well.
 */
#include "zipf.h"

#include <math.h>

static uint64_t
splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void
bench_rng_seed(struct bench_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) {
        r->s[i] = splitmix64(&x);
    }
}

static inline uint64_t
rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t
bench_rng_next(struct bench_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double
bench_rng_double(struct bench_rng *r)
{
    return (double)(bench_rng_next(r) >> 11) * 0x1.0p-53;
}

uint64_t
bench_rng_below(struct bench_rng *r, uint64_t n)
{
    return (uint64_t)(((unsigned __int128)bench_rng_next(r) * n) >> 64);
}

/* (e^t - 1) / t, accurate near 0 */
static double
expm1_over(double t)
{
    if (fabs(t) > 1e-8) {
        return expm1(t) / t;
    }
    return 1.0 + t * 0.5 * (1.0 + t / 3.0 * (1.0 + t * 0.25));
}

/* log(1 + t) / t, accurate near 0 */
static double
log1p_over(double t)
{
    if (fabs(t) > 1e-8) {
        return log1p(t) / t;
    }
    return 1.0 - t * (0.5 - t * (1.0 / 3.0 - t * 0.25));
}

static double
zipf_h(double s, double x)
{
    return exp(-s * log(x));
}

static double
zipf_big_h(double s, double x)
{
    double lx = log(x);
    return expm1_over((1.0 - s) * lx) * lx;
}

static double
zipf_big_h_inv(double s, double x)
{
    double t = x * (1.0 - s);
    if (t < -1.0) {
        t = -1.0;   /* rounding guard: the true value is never below -1 */
    }
    return exp(log1p_over(t) * x);
}

int
bench_zipf_init(struct bench_zipf *z, uint64_t n, double s)
{
    if (n < 1 || !(s > 0.0) || !isfinite(s)) {
        return -1;
    }
    z->n = n;
    z->s = s;
    z->h_x1 = zipf_big_h(s, 1.5) - 1.0;
    z->h_n = zipf_big_h(s, (double)n + 0.5);
    z->sv = 2.0 - zipf_big_h_inv(s, zipf_big_h(s, 2.5) - zipf_h(s, 2.0));
    return 0;
}

uint64_t
bench_zipf_next(const struct bench_zipf *z, struct bench_rng *r)
{
    for (;;) {
        double u = z->h_n + bench_rng_double(r) * (z->h_x1 - z->h_n);
        double x = zipf_big_h_inv(z->s, u);
        double kd = floor(x + 0.5);
        if (kd < 1.0) {
            kd = 1.0;
        } else if (kd > (double)z->n) {
            kd = (double)z->n;
        }
        if (kd - x <= z->sv || u >= zipf_big_h(z->s, kd + 0.5) - zipf_h(z->s, kd)) {
            return (uint64_t)kd;
        }
    }
}
