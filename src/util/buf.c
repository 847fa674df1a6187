/* buf.c -- see buf.h. */
#include "util/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/mem.h"

void
buf_init(struct buf *b)
{
    memset(b, 0, sizeof(*b));
}

void
buf_deinit(struct buf *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

char *
buf__grow(struct buf *b, size_t n)
{
    if (b->rpos > 0 && b->rpos >= b->len / 2) {
        buf_compact(b);
        if (b->cap - b->len >= n) {
            return b->data + b->len;
        }
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < n) {
        cap = cap < (64u << 20) ? cap * 2 : cap + (64u << 20);
    }
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
    return b->data + b->len;
}

void
buf_append(struct buf *b, const void *p, size_t n)
{
    if (n == 0) {
        return;
    }
    char *w = buf_reserve(b, n);
    memcpy(w, p, n);
    b->len += n;
}

void
buf_appendc(struct buf *b, char c)
{
    char *w = buf_reserve(b, 1);
    *w = c;
    b->len++;
}

void
buf_appendstr(struct buf *b, const char *s)
{
    buf_append(b, s, strlen(s));
}

void
buf_appendf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    char small[256];

    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) {
        return;
    }
    if ((size_t)n < sizeof(small)) {
        buf_append(b, small, (size_t)n);
        return;
    }
    char *w = buf_reserve(b, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(w, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void
buf_append_i64(struct buf *b, int64_t v)
{
    char tmp[24];
    char *p = tmp + sizeof(tmp);
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) {
        *--p = '-';
    }
    buf_append(b, p, (size_t)(tmp + sizeof(tmp) - p));
}

void
buf_consume(struct buf *b, size_t n)
{
    b->rpos += n;
    if (b->rpos >= b->len) {
        b->rpos = 0;
        b->len = 0;
    }
}

void
buf_compact(struct buf *b)
{
    if (b->rpos == 0) {
        return;
    }
    size_t n = b->len - b->rpos;
    if (n) {
        memmove(b->data, b->data + b->rpos, n);
    }
    b->len = n;
    b->rpos = 0;
}

void
buf_reset(struct buf *b, size_t keep)
{
    b->len = 0;
    b->rpos = 0;
    if (b->cap > keep) {
        free(b->data);
        b->data = NULL;
        b->cap = 0;
    }
}
