/*
 * wire.h -- little-endian fields for the cluster's messages: a writer that
 * appends to a buf and a reader that refuses to run past its end.
 */
#ifndef CRAB_CLUSTER_WIRE_H
#define CRAB_CLUSTER_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "util/buf.h"

static inline void
wire_u8(struct buf *b, uint8_t v)
{
    buf_append(b, &v, 1);
}

static inline void
wire_u16(struct buf *b, uint16_t v)
{
    uint8_t p[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    buf_append(b, p, 2);
}

static inline void
wire_u64(struct buf *b, uint64_t v)
{
    uint8_t p[8];
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
    buf_append(b, p, 8);
}

/* A string of at most 255 bytes: u8 length, bytes. */
static inline void
wire_str(struct buf *b, const char *s)
{
    size_t n = strlen(s);
    n = n > 255 ? 255 : n;
    wire_u8(b, (uint8_t)n);
    buf_append(b, s, n);
}

struct wire_rd {
    const uint8_t *p, *end;
    bool bad; /* ran past the end: every later read gives 0 / "" */
};

static inline bool
wire_need(struct wire_rd *r, size_t n)
{
    if (r->bad || (size_t)(r->end - r->p) < n) {
        r->bad = true;
        return false;
    }
    return true;
}

static inline uint8_t
wire_get_u8(struct wire_rd *r)
{
    return wire_need(r, 1) ? *r->p++ : 0;
}

static inline uint16_t
wire_get_u16(struct wire_rd *r)
{
    if (!wire_need(r, 2)) {
        return 0;
    }
    uint16_t v = (uint16_t)(r->p[0] | r->p[1] << 8);
    r->p += 2;
    return v;
}

static inline uint64_t
wire_get_u64(struct wire_rd *r)
{
    if (!wire_need(r, 8)) {
        return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v |= (uint64_t)r->p[i] << (8 * i);
    }
    r->p += 8;
    return v;
}

/* Copy a string into out (cap bytes with its NUL); a longer one is bad. */
static inline void
wire_get_str(struct wire_rd *r, char *out, size_t cap)
{
    size_t n = wire_get_u8(r);
    if (!wire_need(r, n) || n >= cap) {
        r->bad = true;
        out[0] = '\0';
        return;
    }
    memcpy(out, r->p, n);
    out[n] = '\0';
    r->p += n;
}

#endif
