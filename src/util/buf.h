/*
 * buf.h -- a growable byte buffer with a read cursor.
 *
 * Used for connection input (bytes read, not yet parsed) and output (replies
 * built, not yet written). Data lives in [data + rpos, data + len); appends go
 * at data + len. buf_compact() moves unread bytes to the front.
 */
#ifndef CRAB_UTIL_BUF_H
#define CRAB_UTIL_BUF_H

#include <stddef.h>
#include <stdint.h>

struct buf {
    char *data;
    size_t len;  /* bytes written so far */
    size_t rpos; /* bytes consumed from the front */
    size_t cap;
};

void buf_init(struct buf *b);
void buf_deinit(struct buf *b);

/* Make room for at least n more bytes at the end; returns the write pointer.
 * The fast path (room already there) is inline; buf__grow does the rest. */
char *buf__grow(struct buf *b, size_t n);
static inline char *
buf_reserve(struct buf *b, size_t n)
{
    if (b->cap - b->len >= n) {
        return b->data + b->len;
    }
    return buf__grow(b, n);
}
void buf_append(struct buf *b, const void *p, size_t n);
void buf_appendc(struct buf *b, char c);
void buf_appendstr(struct buf *b, const char *s);
/* printf-style append. */
void buf_appendf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append the decimal form of v. */
void buf_append_i64(struct buf *b, int64_t v);

static inline size_t
buf_unread(const struct buf *b)
{
    return b->len - b->rpos;
}

static inline const char *
buf_rptr(const struct buf *b)
{
    return b->data + b->rpos;
}

/* Drop n bytes from the front; when all is consumed the buffer resets to empty. */
void buf_consume(struct buf *b, size_t n);
/* Move unread bytes to the start of the buffer. */
void buf_compact(struct buf *b);
/* Forget everything; keep at most keep bytes of capacity. */
void buf_reset(struct buf *b, size_t keep);

#endif
