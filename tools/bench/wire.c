/*
 * wire.c -- see wire.h.
 *
 * The RESP parser counts elements instead of recursing: a reply starts with
 * one element missing; every header line completes one element once its body
 * is skipped, and an aggregate header (*, ~, >, %) adds its children to the
 * count. When the count reaches zero the reply is complete. Its class is
 * decided by its first header. Header lines are copied (at most the first 39
 * bytes) into head[]; bulk bodies are skipped by length without copying. The
 * native parser only looks for line ends and keeps the first bytes of each
 * line to tell NULL and ERROR from values.
 */
#include "wire.h"

#include <stdio.h>
#include <string.h>

enum { ST_LINE = 0, ST_SKIP = 1 };

size_t
bench_key_format(char *out, const char *prefix, size_t plen, uint64_t idx)
{
    memcpy(out, prefix, plen);
    if (idx >= 1000000000000ULL) {
        return plen + (size_t)snprintf(out + plen, BENCH_KEY_MAX + 1 - plen, "%llu",
                                       (unsigned long long)idx);
    }
    for (size_t i = plen + 12; i-- > plen;) {
        out[i] = (char)('0' + idx % 10);
        idx /= 10;
    }
    return plen + 12;
}

size_t
bench_trace_key_format(char *out, int64_t n)
{
    return (size_t)snprintf(out, BENCH_KEY_MAX + 1, "k:%lld", (long long)n);
}

/* Append the decimal form of v; returns the new end. */
static char *
put_uint(char *w, size_t v)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n) {
        *w++ = tmp[--n];
    }
    return w;
}

static char *
put_bulk(char *w, const char *s, size_t n)
{
    *w++ = '$';
    w = put_uint(w, n);
    *w++ = '\r';
    *w++ = '\n';
    memcpy(w, s, n);
    w += n;
    *w++ = '\r';
    *w++ = '\n';
    return w;
}

size_t
bench_wire_get(enum bench_proto proto, char *out, const char *key, size_t klen)
{
    char *w = out;
    if (proto == BENCH_PROTO_NATIVE) {
        memcpy(w, "GET ", 4);
        w += 4;
        memcpy(w, key, klen);
        w += klen;
    } else {
        memcpy(w, "*2\r\n$3\r\nGET\r\n", 13);
        w = put_bulk(w + 13, key, klen) - 2;
    }
    *w++ = '\r';
    *w++ = '\n';
    return (size_t)(w - out);
}

size_t
bench_wire_set(enum bench_proto proto, char *out, const char *key, size_t klen,
               const char *val, size_t vlen)
{
    char *w = out;
    if (proto == BENCH_PROTO_NATIVE) {
        memcpy(w, "PUT ", 4);
        w += 4;
        memcpy(w, key, klen);
        w += klen;
        *w++ = ' ';
        memcpy(w, val, vlen);
        w += vlen;
        *w++ = '\r';
        *w++ = '\n';
    } else {
        memcpy(w, "*3\r\n$3\r\nSET\r\n", 13);
        w = put_bulk(w + 13, key, klen);
        w = put_bulk(w, val, vlen);
    }
    return (size_t)(w - out);
}

void
bench_parser_init(struct bench_parser *ps, enum bench_proto proto)
{
    memset(ps, 0, sizeof(*ps));
    ps->proto = proto;
    ps->state = ST_LINE;
    ps->remaining = 1;
}

/* Parse the signed decimal after the type byte of head[]; -2 when invalid. */
static int64_t
head_number(const struct bench_parser *ps)
{
    size_t n = ps->line_len < sizeof(ps->head) ? ps->line_len : sizeof(ps->head);
    size_t i = 1;
    int neg = 0;
    int64_t v = 0;
    if (i < n && ps->head[i] == '-') {
        neg = 1;
        i++;
    }
    size_t digits = 0;
    for (; i < n && ps->head[i] >= '0' && ps->head[i] <= '9'; i++) {
        if (v > (INT64_MAX - 9) / 10) {
            return -2;
        }
        v = v * 10 + (ps->head[i] - '0');
        digits++;
    }
    if (digits == 0) {
        return -2;
    }
    return neg ? -v : v;
}

/* One element finished; returns the reply class when the reply is complete. */
static int
element_done(struct bench_parser *ps)
{
    if (--ps->remaining > 0) {
        return BENCH_REPLY_MORE;
    }
    int cls = ps->cls;
    ps->remaining = 1;
    ps->cls = 0;
    return cls;
}

/* A full RESP header line is in head[] (line_len bytes incl. CRLF). */
static int
resp_header(struct bench_parser *ps)
{
    char type = ps->head[0];
    int64_t n;
    int first = ps->cls == 0;
    switch (type) {
    case '+': case ':': case ',': case '#': case '(':
        if (first) {
            ps->cls = BENCH_REPLY_VALUE;
        }
        return element_done(ps);
    case '-':
        if (first) {
            ps->cls = BENCH_REPLY_ERROR;
        }
        return element_done(ps);
    case '_':
        if (first) {
            ps->cls = BENCH_REPLY_NULL;
        }
        return element_done(ps);
    case '$': case '!': case '=':
        n = head_number(ps);
        if (n == -2 || n < -1) {
            return BENCH_REPLY_BAD;
        }
        if (first) {
            ps->cls = n < 0 ? BENCH_REPLY_NULL
                      : type == '!' ? BENCH_REPLY_ERROR : BENCH_REPLY_VALUE;
        }
        if (n < 0) {
            return element_done(ps);
        }
        ps->skip = (uint64_t)n + 2;
        ps->state = ST_SKIP;
        return BENCH_REPLY_MORE;
    case '*': case '~': case '>': case '%': case '|':
        n = head_number(ps);
        if (n == -2 || n < -1) {
            return BENCH_REPLY_BAD;
        }
        if (first) {
            ps->cls = n < 0 ? BENCH_REPLY_NULL : BENCH_REPLY_VALUE;
        }
        if (n > 0) {
            ps->remaining += (type == '%' || type == '|') ? 2 * n : n;
        }
        if (type == '|') {
            ps->remaining++;   /* attributes precede the real reply */
        }
        return element_done(ps);
    default:
        return BENCH_REPLY_BAD;
    }
}

/* A full native reply line is in head[]. */
static int
native_line(struct bench_parser *ps)
{
    size_t n = ps->line_len;
    /* strip the line end */
    size_t body = n;
    if (body > 0 && body <= sizeof(ps->head) && ps->head[body - 1] == '\n') {
        body--;
        if (body > 0 && ps->head[body - 1] == '\r') {
            body--;
        }
    }
    if (body == 4 && memcmp(ps->head, "NULL", 4) == 0) {
        return BENCH_REPLY_NULL;
    }
    if (n >= 6 && memcmp(ps->head, "ERROR:", 6) == 0) {
        return BENCH_REPLY_ERROR;
    }
    return BENCH_REPLY_VALUE;
}

int
bench_parser_next(struct bench_parser *ps, const char **pp, const char *end)
{
    const char *p = *pp;
    while (p < end) {
        if (ps->state == ST_SKIP) {
            size_t avail = (size_t)(end - p);
            size_t take = ps->skip < avail ? (size_t)ps->skip : avail;
            p += take;
            ps->skip -= take;
            if (ps->skip > 0) {
                break;
            }
            ps->state = ST_LINE;
            ps->line_len = 0;
            int r = element_done(ps);
            if (r != BENCH_REPLY_MORE) {
                *pp = p;
                return r;
            }
            continue;
        }
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t take = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
        if (ps->line_len < sizeof(ps->head)) {
            size_t room = sizeof(ps->head) - ps->line_len;
            memcpy(ps->head + ps->line_len, p, take < room ? take : room);
        }
        ps->line_len += take;
        p += take;
        if (!nl) {
            break;
        }
        int r;
        if (ps->proto == BENCH_PROTO_NATIVE) {
            r = native_line(ps);
        } else {
            r = resp_header(ps);
        }
        if (ps->state == ST_LINE) {
            ps->line_len = 0;
        }
        if (r != BENCH_REPLY_MORE) {
            *pp = p;
            return r;
        }
    }
    *pp = p;
    return BENCH_REPLY_MORE;
}
