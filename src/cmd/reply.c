/*
 * reply.c -- see reply.h. The native protocol renders every reply as one
 * line: simple strings as themselves, errors as "ERROR: <message>" (the RESP
 * error code, e.g. "ERR ", is dropped), integers in decimal, bulk strings raw
 * unless text_needs_quote() (then double-quoted by text_quote(), so that a
 * GET reply can be sent back as a token), nulls as NULL. Aggregates only occur natively for commands the native
 * protocol does not expose, so there they render as nothing.
 */
#include "cmd/reply.h"

#include "cmd/tstats.h"
#include "proto/text.h"

#include <math.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "core/server.h"

static void
crlf(struct buf *b)
{
    buf_append(b, "\r\n", 2);
}

static void
header(struct reply *r, char type, int64_t n)
{
    buf_appendc(r->out, type);
    buf_append_i64(r->out, n);
    crlf(r->out);
}

void
reply_ok(struct reply *r)
{
    struct buf *b = r->out;
    /* the reply of every SET / PUT: a store or two, no call */
    const char *ok = r->proto == REPLY_NATIVE ? "OK\r\n" : "+OK\r\n";
    size_t n = r->proto == REPLY_NATIVE ? 4 : 5;
    if (b->cap - b->len >= 5) {
        memcpy(b->data + b->len, ok, 5); /* the 5th byte of "OK\r\n" is its NUL */
        b->len += n;
        return;
    }
    buf_append(b, ok, n);
}

void
reply_simple(struct reply *r, const char *s)
{
    if (r->proto != REPLY_NATIVE) {
        buf_appendc(r->out, '+');
    }
    buf_appendstr(r->out, s);
    crlf(r->out);
}

void
reply_error(struct reply *r, const char *err)
{
    size_t n = strlen(err);
    tstats_count_error(err, n); /* INFO errorstats, total_error_replies */
    if (r->proto == REPLY_NATIVE) {
        buf_append(r->out, "ERROR: ", 7);
        /* Drop the RESP error code when it is the generic ERR. */
        if (n >= 4 && memcmp(err, "ERR ", 4) == 0) {
            err += 4;
            n -= 4;
        }
    } else {
        buf_appendc(r->out, '-');
    }
    char *w = buf_reserve(r->out, n);
    for (size_t i = 0; i < n; i++) {
        w[i] = (err[i] == '\r' || err[i] == '\n') ? ' ' : err[i];
    }
    r->out->len += n;
    crlf(r->out);
}

void
reply_errorf(struct reply *r, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    reply_error(r, msg);
}

void
reply_int(struct reply *r, int64_t v)
{
    if (r->proto != REPLY_NATIVE) {
        buf_appendc(r->out, ':');
    }
    buf_append_i64(r->out, v);
    crlf(r->out);
}

/* Decimal digits of v into the end of tmp (no sign); returns the start. */
static char *
u64_digits(char *end, uint64_t v)
{
    char *p = end;
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return p;
}

/* reply_bulk's general case: native, or a value of 17 bytes or more, or a
 * buffer to grow. Under 1000 bytes in RESP, the length's digits without a
 * division loop. */
static __attribute__((noinline)) void
reply_bulk_slow(struct reply *r, const void *p, size_t n)
{
    char *w;
    if (r->proto != REPLY_NATIVE && n < 1000) {
        size_t nd = n < 10 ? 1 : n < 100 ? 2 : 3;
        size_t total = n + nd + 5;
        unsigned v = (unsigned)n;
        w = buf_reserve(r->out, total);
        w[0] = '$';
        w[nd] = (char)('0' + v % 10);
        if (nd > 1) {
            w[nd - 1] = (char)('0' + v / 10 % 10);
            if (nd > 2) {
                w[1] = (char)('0' + v / 100);
            }
        }
        w[nd + 1] = '\r';
        w[nd + 2] = '\n';
        memcpy(w + nd + 3, p, n);
        w[total - 2] = '\r';
        w[total - 1] = '\n';
        r->out->len += total;
        return;
    }
    if (r->proto == REPLY_NATIVE && text_needs_quote(p, n)) {
        size_t q = text_quoted_len(p, n);
        w = buf_reserve(r->out, q + 2);
        w += text_quote(p, n, w);
        w[0] = '\r';
        w[1] = '\n';
        r->out->len += q + 2;
        return;
    }
    char tmp[24];
    char *digits = u64_digits(tmp + sizeof(tmp), n);
    size_t nd = (size_t)(tmp + sizeof(tmp) - digits);
    size_t total = n + 2 + (r->proto != REPLY_NATIVE ? nd + 3 : 0);
    w = buf_reserve(r->out, total);
    if (r->proto != REPLY_NATIVE) {
        *w++ = '$';
        memcpy(w, digits, nd);
        w += nd;
        *w++ = '\r';
        *w++ = '\n';
    }
    memcpy(w, p, n);
    w += n;
    w[0] = '\r';
    w[1] = '\n';
    r->out->len += total;
}

/* Copy n <= 16 bytes by overlapping loads and stores (no call). */
static inline void
copy_small(char *d, const char *s, size_t n)
{
    if (n >= 8) {
        uint64_t x, y;
        memcpy(&x, s, 8);
        memcpy(&y, s + n - 8, 8);
        memcpy(d, &x, 8);
        memcpy(d + n - 8, &y, 8);
    } else if (n >= 4) {
        uint32_t x, y;
        memcpy(&x, s, 4);
        memcpy(&y, s + n - 4, 4);
        memcpy(d, &x, 4);
        memcpy(d + n - 4, &y, 4);
    } else if (n > 0) {
        d[0] = s[0];
        d[n / 2] = s[n / 2];
        d[n - 1] = s[n - 1];
    }
}

/* The end of a native bulk reply whose value may need quoting: quoted by
 * reply_bulk_slow when it does, else the CRLF after the copy already made.
 * Out of line, so that reply_native_short stays small. */
static __attribute__((noinline)) void
reply_native_check(struct reply *r, const char *p, size_t n)
{
    if (text_needs_quote(p, n)) {
        reply_bulk_slow(r, p, n);
        return;
    }
    struct buf *b = r->out;
    b->data[b->len + n] = '\r';
    b->data[b->len + n + 1] = '\n';
    b->len += n + 2;
}

/* reply_bulk natively, n <= 16 and room for n + 2 bytes: the value is
 * copied first, then its copy is checked for bytes that need quoting with
 * one SSE2 compare of 16 bytes (when the buffer has them); a value with
 * such a byte, or whose first byte might need it (a quote, the N of NULL,
 * the E of ERROR:), goes to reply_native_check. */
static inline void
reply_native_short(struct reply *r, const char *p, size_t n)
{
    struct buf *b = r->out;
    char *w = b->data + b->len;
    copy_small(w, p, n);
#if defined(__SSE2__)
    if (__builtin_expect(b->cap - b->len < 16, 0)) {
        reply_native_check(r, p, n);
        return;
    }
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)w);
    __m128i sp = _mm_set1_epi8(0x20);
    __m128i bad = _mm_or_si128(_mm_cmpeq_epi8(_mm_max_epu8(v, sp), sp),
                               _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f)));
    unsigned m = (unsigned)_mm_movemask_epi8(bad) & ((1u << n) - 1);
    char c0 = w[0];
    if (__builtin_expect(m != 0 || n == 0 || c0 == '"' || c0 == 'N' || c0 == 'E', 0)) {
        reply_native_check(r, p, n);
        return;
    }
    w[n] = '\r';
    w[n + 1] = '\n';
    b->len += n + 2;
#else
    reply_native_check(r, p, n);
#endif
}

void
reply_bulk(struct reply *r, const void *p, size_t n)
{
    /* The hot reply of GET for short values: at most 16 bytes, room in the
     * buffer. Plain stores, the value copied by copy_small, no call (so no
     * stack frame); anything else is reply_bulk_slow, a tail call. RESP
     * writes "$<n>\r\n<value>\r\n", native "<value>\r\n" (a value that
     * needs quoting natively is reply_bulk_slow's too). */
    struct buf *b = r->out;
    bool native = r->proto == REPLY_NATIVE;
    size_t nd = native ? 0 : n < 10 ? 1 : 2;
    size_t head = native ? 0 : nd + 3;
    size_t total = head + n + 2;
    if (n > 16 || b->cap - b->len < total) {
        reply_bulk_slow(r, p, n);
        return;
    }
    if (native) {
        reply_native_short(r, p, n);
        return;
    }
    char *w = b->data + b->len;
    if (!native) {
        w[0] = '$';
        if (nd == 1) {
            w[1] = (char)('0' + n);
        } else { /* 10 to 16 */
            w[1] = '1';
            w[2] = (char)('0' + n - 10);
        }
        w[nd + 1] = '\r';
        w[nd + 2] = '\n';
    }
    copy_small(w + head, p, n);
    w[total - 2] = '\r';
    w[total - 1] = '\n';
    b->len += total;
}

void
reply_bulkstr(struct reply *r, const char *s)
{
    reply_bulk(r, s, strlen(s));
}

void
reply_null(struct reply *r)
{
    if (r->proto == REPLY_NATIVE) {
        buf_append(r->out, "NULL\r\n", 6);
    } else if (r->proto == REPLY_RESP3) {
        buf_append(r->out, "_\r\n", 3);
    } else {
        buf_append(r->out, "$-1\r\n", 5);
    }
}

void
reply_null_array(struct reply *r)
{
    if (r->proto == REPLY_NATIVE) {
        buf_append(r->out, "NULL\r\n", 6);
    } else if (r->proto == REPLY_RESP3) {
        buf_append(r->out, "_\r\n", 3);
    } else {
        buf_append(r->out, "*-1\r\n", 5);
    }
}

void
reply_array(struct reply *r, size_t n)
{
    if (r->proto != REPLY_NATIVE) {
        header(r, '*', (int64_t)n);
    }
}

void
reply_map(struct reply *r, size_t n)
{
    if (r->proto == REPLY_RESP3) {
        header(r, '%', (int64_t)n);
    } else if (r->proto == REPLY_RESP2) {
        header(r, '*', (int64_t)n * 2);
    }
}

void
reply_set(struct reply *r, size_t n)
{
    if (r->proto == REPLY_RESP3) {
        header(r, '~', (int64_t)n);
    } else if (r->proto == REPLY_RESP2) {
        header(r, '*', (int64_t)n);
    }
}

void
reply_double(struct reply *r, double v)
{
    char tmp[64];
    int n;
    if (isinf(v)) {
        n = snprintf(tmp, sizeof(tmp), "%s", v > 0 ? "inf" : "-inf");
    } else {
        n = snprintf(tmp, sizeof(tmp), "%.17g", v);
    }
    if (r->proto == REPLY_RESP3) {
        buf_appendc(r->out, ',');
        buf_append(r->out, tmp, (size_t)n);
        crlf(r->out);
    } else {
        reply_bulk(r, tmp, (size_t)n);
    }
}

void
reply_bool(struct reply *r, int v)
{
    if (r->proto == REPLY_RESP3) {
        buf_append(r->out, v ? "#t\r\n" : "#f\r\n", 4);
    } else {
        reply_int(r, v ? 1 : 0);
    }
}

void
reply_verbatim(struct reply *r, const char *p, size_t n)
{
    if (r->proto == REPLY_RESP3) {
        header(r, '=', (int64_t)n + 4);
        buf_append(r->out, "txt:", 4);
        buf_append(r->out, p, n);
        crlf(r->out);
    } else {
        reply_bulk(r, p, n);
    }
}
