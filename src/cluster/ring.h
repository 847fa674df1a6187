/*
 * ring.h -- placement on the consistent hash ring with virtual nodes.
 *
 * Every member puts `vnodes` points on a 64-bit ring (XXH3 of its id and the
 * point's number); vbucket vb sits at the point vb * 2^64 / nvb. A vbucket's
 * replica list is the first `rf` distinct members met walking clockwise from
 * its point (fewer when there are fewer members). Adding or removing one
 * member of N changes about 1/N of the primaries and nothing else. Pure.
 */
#ifndef CRAB_CLUSTER_RING_H
#define CRAB_CLUSTER_RING_H

#include <stddef.h>
#include <stdint.h>

struct ring_member {
    uint32_t num;      /* what goes into the lists */
    const char *id;    /* what is hashed */
};

/*
 * For each of nvb vbuckets, out_n[vb] = min(rf, n) and
 * out[vb * rf + i] (i < out_n[vb]) = the members' nums, primary first.
 * n = 0 gives out_n all 0. Returns 0, or -1 on allocation failure.
 */
int ring_place(const struct ring_member *m, size_t n, unsigned vnodes, unsigned nvb,
               unsigned rf, uint32_t *out, uint8_t *out_n);

#endif
