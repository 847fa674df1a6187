/*
 * resp.c -- incremental RESP / inline request parser (see resp.h).
 *
 * Design
 * ------
 * The parser is a small state machine whose whole progress is a handful of
 * offsets counted from the first byte of the current request:
 *
 *   IDLE    nothing of the request seen; its first byte picks the kind.
 *   COUNT   `*<n>\r\n`: looking for the '\r' of the count line.
 *   ARGS    reading the n elements; bulklen < 0 while the next `$<len>`
 *           line is still being looked for, else the pending bulk's length.
 *   INLINE  looking for the '\n' that ends an inline command.
 *   ERROR   a protocol error was reported; sticky until reset.
 *
 * `scan` remembers how far a terminator was already searched for, so a count
 * line or an inline request trickling in byte by byte is searched once, and
 * a pending bulk only compares lengths: the cost of a request is linear in
 * its size however it is cut into reads. Offsets rather than pointers are
 * kept because the caller may move its buffer between calls (realloc,
 * compaction); element pointers are made from the offsets when the request
 * completes. A request that is whole in the buffer when it starts (the
 * usual case) takes a fast path that fills argv in one pass
 * (resp_parse_whole); else a `*<n>` or `$<n>` line that is complete when
 * first seen has its digits read directly, without memchr() or the general
 * integer parser.
 *
 * Redis compatibility (7.0 networking.c, sds.c). Count lines end at the first
 * '\r', and the byte after it is skipped unchecked, as are the two bytes after
 * a bulk's data; counts are parsed as strictly as string2ll() (no sign '+',
 * no leading zeros, no spaces, at most 20 characters). Redis searches with
 * strchr() and so stalls on a NUL byte in a count line or an inline command;
 * here NUL is an ordinary byte (a count containing one is invalid, an inline
 * token may contain one). Inline splitting follows sdssplitargs(): blanks
 * are isspace() between tokens but only space, tab, CR and LF end an
 * unquoted token; quotes may open mid-token and a closing quote must be
 * followed by a blank or the end of the line.
 *
 * Storage: argv/off grow geometrically and are reused, so steady-state
 * parsing allocates nothing; unquoted inline tokens and every bulk point
 * into the caller's bytes, only unescaped quoted tokens are copied (into
 * `scratch`, reserved once per line at the line's length, which bounds
 * them). Storage grown past RESP_KEEP_* by a huge request is given back
 * when the next request starts.
 */
#include "proto/resp.h"

#include "util/mem.h"
#include "util/hex.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    RESP_ST_IDLE = 0,
    RESP_ST_COUNT,
    RESP_ST_ARGS,
    RESP_ST_INLINE,
    RESP_ST_ERROR,
};

/* Internal result besides the PROTO_* codes: an empty request was consumed. */
#define RESP_EMPTY 1

/* Storage kept between requests; more is released when the next one starts. */
#define RESP_KEEP_ARGS 4096
#define RESP_KEEP_SCRATCH ((size_t)64 * 1024)
/* string2ll() refuses strings of LONG_STR_SIZE (21) characters or more. */
#define RESP_MAX_NUMLEN 20

static int
resp_fail(struct resp_parser *p, const char *msg)
{
    snprintf(p->err, sizeof(p->err), "Protocol error: %s", msg);
    p->state = RESP_ST_ERROR;
    return PROTO_EPROTO;
}

/* The strict integer syntax of Redis's string2ll(). Returns 0 on success. */
static int
resp_parse_ll(const char *s, size_t n, long long *out)
{
    size_t i = 0;
    int neg = 0;
    unsigned long long v;
    unsigned long long limit;

    if (n == 0 || n > RESP_MAX_NUMLEN) {
        return -1;
    }
    if (n == 1 && s[0] == '0') {
        *out = 0;
        return 0;
    }
    if (s[0] == '-') {
        neg = 1;
        i = 1;
        if (n == 1) {
            return -1;
        }
    }
    if (s[i] < '1' || s[i] > '9') {
        return -1;
    }
    v = (unsigned long long)(s[i] - '0');
    for (i++; i < n; i++) {
        unsigned d = (unsigned char)s[i] - (unsigned)'0';
        if (d > 9) {
            return -1;
        }
        if (v > (ULLONG_MAX - d) / 10) {
            return -1;
        }
        v = v * 10 + d;
    }
    limit = neg ? (unsigned long long)LLONG_MAX + 1 : (unsigned long long)LLONG_MAX;
    if (v > limit) {
        return -1;
    }
    *out = neg ? (long long)(0 - v) : (long long)v;
    return 0;
}

/* Make room for at least want elements in argv/off. */
static void
resp_reserve_args(struct resp_parser *p, size_t want)
{
    size_t cap;

    if (want <= p->argv_cap) {
        return;
    }
    cap = p->argv_cap ? p->argv_cap * 2 : 8;
    if (cap < want) {
        cap = want;
    }
    p->argv = xrealloc(p->argv, cap * sizeof(*p->argv));
    p->off = xrealloc(p->off, cap * sizeof(*p->off));
    p->argv_cap = cap;
}

static void
resp_release_big(struct resp_parser *p)
{
    if (p->argv_cap > RESP_KEEP_ARGS) {
        free(p->argv);
        free(p->off);
        p->argv = NULL;
        p->off = NULL;
        p->argv_cap = 0;
    }
    if (p->scratch_cap > RESP_KEEP_SCRATCH) {
        free(p->scratch);
        p->scratch = NULL;
        p->scratch_cap = 0;
    }
}

/* Forget the current request's progress (not the options or storage). */
static void
resp_clear_progress(struct resp_parser *p)
{
    p->state = RESP_ST_IDLE;
    p->pos = 0;
    p->scan = 0;
    p->nargs = 0;
    p->bulklen = -1;
    p->argc = 0;
}

void
resp_parser_init(struct resp_parser *p)
{
    memset(p, 0, sizeof(*p));
    p->max_bulk_len = RESP_DEFAULT_MAX_BULK_LEN;
    p->max_multibulk = RESP_DEFAULT_MAX_MULTIBULK;
    p->max_inline = RESP_DEFAULT_MAX_INLINE;
    resp_clear_progress(p);
}

void
resp_parser_deinit(struct resp_parser *p)
{
    free(p->argv);
    free(p->off);
    free(p->scratch);
    p->argv = NULL;
    p->off = NULL;
    p->scratch = NULL;
    p->argv_cap = 0;
    p->scratch_cap = 0;
    resp_clear_progress(p);
}

void
resp_parser_reset(struct resp_parser *p)
{
    resp_clear_progress(p);
    resp_release_big(p);
    p->err[0] = '\0';
}

size_t
resp_parser_need(const struct resp_parser *p)
{
    if (p->state == RESP_ST_ARGS && p->bulklen >= 0) {
        return p->pos + (size_t)p->bulklen + 2;
    }
    return 0;
}

const char *
resp_parser_error(const struct resp_parser *p)
{
    return p->state == RESP_ST_ERROR ? p->err : "";
}

/* ---- multibulk ------------------------------------------------------------ */

/* Find the '\r' ending the line that starts at `start`, resuming the search
 * where the last call stopped. Returns its offset, or (size_t)-1 when the
 * line is incomplete (not found, or the byte after it has not arrived). */
static size_t
resp_find_cr(struct resp_parser *p, const char *b, size_t n, size_t start)
{
    size_t from = p->scan > start ? p->scan : start;
    const char *cr = from < n ? memchr(b + from, '\r', n - from) : NULL;
    size_t at;

    if (cr == NULL) {
        p->scan = n;
        return (size_t)-1;
    }
    at = (size_t)(cr - b);
    if (at + 2 > n) {
        p->scan = at;
        return (size_t)-1;
    }
    return at;
}

/*
 * Fast path for the usual `*<n>` / `$<n>` line, on the first look at it:
 * line[start] is the type byte, then 1 to 18 digits not starting with 0,
 * then '\r' and one more byte, all present. Returns the offset of the '\r'
 * and the value in *out, or (size_t)-1 to take the general path, which gives
 * the same result for every input; this only saves a memchr() call and the
 * general integer parser on the hot path.
 */
static inline size_t
resp_fast_number(const struct resp_parser *p, const char *b, size_t n, size_t start,
                 long long *out)
{
    size_t i = start + 1, lim;
    unsigned d;
    long long v;

    if (p->scan > start || n < start + 4) {
        return (size_t)-1;
    }
    d = (unsigned char)b[i] - (unsigned)'0';
    if (d - 1 > 8) {
        return (size_t)-1; /* not 1-9 */
    }
    v = d;
    /* At most 18 digits (no overflow), and the '\r' must leave a byte after. */
    lim = n - 2 < start + 19 ? n - 2 : start + 19;
    for (i++; i < lim; i++) {
        d = (unsigned char)b[i] - (unsigned)'0';
        if (d > 9) {
            break;
        }
        v = v * 10 + d;
    }
    if (i > n - 2 || b[i] != '\r') {
        return (size_t)-1;
    }
    *out = v;
    return i;
}

static int
resp_parse_count(struct resp_parser *p, const char *b, size_t n)
{
    long long ll;
    size_t cr = resp_fast_number(p, b, n, 0, &ll);

    if (cr == (size_t)-1) {
        cr = resp_find_cr(p, b, n, 1);
        if (cr == (size_t)-1) {
            if (p->scan == n && n > p->max_inline) {
                return resp_fail(p, "too big mbulk count string");
            }
            return PROTO_EAGAIN;
        }
        if (resp_parse_ll(b + 1, cr - 1, &ll) != 0) {
            return resp_fail(p, "invalid multibulk length");
        }
    }
    if (ll > p->max_multibulk) {
        return resp_fail(p, "invalid multibulk length");
    }
    if (p->unauthenticated && ll > RESP_UNAUTH_MAX_MULTIBULK) {
        return resp_fail(p, "unauthenticated multibulk length");
    }
    p->pos = cr + 2;
    if (ll <= 0) {
        return RESP_EMPTY;
    }
    p->nargs = ll;
    p->argc = 0;
    p->bulklen = -1;
    p->scan = p->pos;
    /* Never trust the count for more than a modest first reservation. */
    resp_reserve_args(p, ll < 1024 ? (size_t)ll : 1024);
    p->state = RESP_ST_ARGS;
    return PROTO_OK;
}

/* Parse the `$<len>\r\n` line at p->pos into p->bulklen. */
static int
resp_parse_bulk_header(struct resp_parser *p, const char *b, size_t n)
{
    long long ll;
    size_t cr = (size_t)-1;

    if (p->pos < n && b[p->pos] == '$') {
        cr = resp_fast_number(p, b, n, p->pos, &ll);
    }
    if (cr == (size_t)-1) {
        cr = resp_find_cr(p, b, n, p->pos);
        if (cr == (size_t)-1) {
            if (p->scan == n && n - p->pos > p->max_inline) {
                return resp_fail(p, "too big bulk count string");
            }
            return PROTO_EAGAIN;
        }
        if (b[p->pos] != '$') {
            char got = b[p->pos];
            /* Redis maps CR/LF in error texts to spaces; NUL too, to keep
             * the text a C string (Redis never gets there: it stalls). */
            if (got == '\r' || got == '\n' || got == '\0') {
                got = ' ';
            }
            snprintf(p->err, sizeof(p->err), "Protocol error: expected '$', got '%c'", got);
            p->state = RESP_ST_ERROR;
            return PROTO_EPROTO;
        }
        if (resp_parse_ll(b + p->pos + 1, cr - p->pos - 1, &ll) != 0 || ll < 0) {
            return resp_fail(p, "invalid bulk length");
        }
    }
    if (ll > p->max_bulk_len) {
        return resp_fail(p, "invalid bulk length");
    }
    if (p->unauthenticated && ll > RESP_UNAUTH_MAX_BULK) {
        return resp_fail(p, "unauthenticated bulk length");
    }
    p->pos = cr + 2;
    p->scan = p->pos;
    p->bulklen = ll;
    return PROTO_OK;
}

static int
resp_parse_multibulk(struct resp_parser *p, const char *b, size_t n)
{
    int rc;

    if (p->state == RESP_ST_COUNT) {
        rc = resp_parse_count(p, b, n);
        if (rc != PROTO_OK) {
            return rc;
        }
    }
    while (p->argc < p->nargs) {
        size_t need;
        if (p->bulklen < 0) {
            rc = resp_parse_bulk_header(p, b, n);
            if (rc != PROTO_OK) {
                return rc;
            }
        }
        need = (size_t)p->bulklen + 2;
        if (n - p->pos < need) {
            return PROTO_EAGAIN;
        }
        if ((size_t)p->argc == p->argv_cap) {
            size_t left = (size_t)(p->nargs - p->argc);
            size_t want = p->argv_cap * 2;
            /* Grow geometrically, but not past what the count announced. */
            if (want > p->argv_cap + left) {
                want = p->argv_cap + left;
            }
            resp_reserve_args(p, want);
        }
        p->off[p->argc] = p->pos;
        p->argv[p->argc].len = (size_t)p->bulklen;
        p->argc++;
        p->pos += need;
        p->scan = p->pos;
        p->bulklen = -1;
    }
    return PROTO_OK;
}

/* ---- inline ---------------------------------------------------------------- */

/* isspace() in the C locale: what sdssplitargs skips between tokens. */
static inline int
resp_is_blank(unsigned char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

/* What ends an unquoted token. */
static inline int
resp_is_tokend(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Map the character after a backslash inside double quotes. */
static inline char
resp_unescape(char c)
{
    switch (c) {
    case 'n': return '\n';
    case 'r': return '\r';
    case 't': return '\t';
    case 'b': return '\b';
    case 'a': return '\a';
    default: return c;
    }
}

/*
 * Decode one token with quotes, starting at line[*ip] in the middle of it
 * (the unquoted prefix was already copied to *dstp). Writes the bytes to
 * *dstp and advances it; returns 0, or -1 for unbalanced quotes.
 */
static int
resp_quoted_token(const char *line, size_t len, size_t *ip, char **dstp)
{
    size_t i = *ip;
    char *dst = *dstp;
    int inq = 0, insq = 0;

    for (;;) {
        unsigned char c;
        if (i == len) {
            if (inq || insq) {
                return -1;
            }
            break;
        }
        c = (unsigned char)line[i];
        if (inq) {
            int hi, lo;
            if (c == '\\' && i + 3 < len && line[i + 1] == 'x' &&
                (hi = hex_digit((unsigned char)line[i + 2])) >= 0 &&
                (lo = hex_digit((unsigned char)line[i + 3])) >= 0) {
                *dst++ = (char)(hi * 16 + lo);
                i += 4;
            } else if (c == '\\' && i + 1 < len) {
                *dst++ = resp_unescape(line[i + 1]);
                i += 2;
            } else if (c == '"') {
                if (i + 1 < len && !resp_is_blank((unsigned char)line[i + 1])) {
                    return -1;
                }
                i++;
                break;
            } else {
                *dst++ = (char)c;
                i++;
            }
        } else if (insq) {
            if (c == '\\' && i + 1 < len && line[i + 1] == '\'') {
                *dst++ = '\'';
                i += 2;
            } else if (c == '\'') {
                if (i + 1 < len && !resp_is_blank((unsigned char)line[i + 1])) {
                    return -1;
                }
                i++;
                break;
            } else {
                *dst++ = (char)c;
                i++;
            }
        } else if (resp_is_tokend(c)) {
            break;
        } else {
            if (c == '"') {
                inq = 1;
            } else if (c == '\'') {
                insq = 1;
            } else {
                *dst++ = (char)c;
            }
            i++;
        }
    }
    *ip = i;
    *dstp = dst;
    return 0;
}

/* Split line[0 .. len) into p->argv like sdssplitargs(). Returns the number
 * of tokens, or -1 for unbalanced quotes. */
static int
resp_split_inline(struct resp_parser *p, const char *line, size_t len)
{
    size_t i = 0;
    int argc = 0;
    char *dst = NULL; /* write position in scratch, once a quote was seen */

    for (;;) {
        size_t start;
        while (i < len && resp_is_blank((unsigned char)line[i])) {
            i++;
        }
        if (i == len) {
            return argc;
        }
        start = i;
        while (i < len && !resp_is_tokend((unsigned char)line[i]) && line[i] != '"' &&
               line[i] != '\'') {
            i++;
        }
        if ((size_t)argc == p->argv_cap) {
            resp_reserve_args(p, (size_t)argc + 1);
        }
        if (i == len || resp_is_tokend((unsigned char)line[i])) {
            /* The common case: a plain token, pointed at in place. */
            p->argv[argc].ptr = line + start;
            p->argv[argc].len = i - start;
        } else {
            char *tok;
            if (dst == NULL) {
                /* Unescaping only shrinks: the line's length bounds all the
                 * quoted tokens of the line together. */
                if (p->scratch_cap < len) {
                    free(p->scratch);
                    p->scratch = xmalloc(len);
                    p->scratch_cap = len;
                }
                dst = p->scratch;
            }
            tok = dst;
            memcpy(dst, line + start, i - start);
            dst += i - start;
            if (resp_quoted_token(line, len, &i, &dst) != 0) {
                return -1;
            }
            p->argv[argc].ptr = tok;
            p->argv[argc].len = (size_t)(dst - tok);
        }
        argc++;
    }
}

static int
resp_parse_inline(struct resp_parser *p, const char *b, size_t n)
{
    const char *nl = p->scan < n ? memchr(b + p->scan, '\n', n - p->scan) : NULL;
    size_t end, at;
    int argc;

    if (nl == NULL) {
        p->scan = n;
        if (n > p->max_inline) {
            return resp_fail(p, "too big inline request");
        }
        return PROTO_EAGAIN;
    }
    at = (size_t)(nl - b);
    end = at;
    if (end > 0 && b[end - 1] == '\r') {
        end--;
    }
    argc = resp_split_inline(p, b, end);
    if (argc < 0) {
        return resp_fail(p, "unbalanced quotes in request");
    }
    p->pos = at + 1;
    if (argc == 0) {
        return RESP_EMPTY;
    }
    p->argc = argc;
    return PROTO_OK;
}

/* ---- whole-request fast path ------------------------------------------------ */

/*
 * The usual request: a multibulk whose every byte is already in buf, with a
 * count of 1 to RESP_FAST_MAX_ARGS and `$<len>` lines of plain digits. Parsed
 * in one forward pass straight into argv (no offsets, no state), returning
 * the request's size, or 0 to let the general path handle the bytes from the
 * start: anything unusual (incomplete, empty, over a limit, a malformed or
 * long number) is left to it, so the two give the same result for every
 * input, and the fast path is tried only when a request starts (a request
 * the general path is waiting on is never rescanned here).
 */
#define RESP_FAST_MAX_ARGS 1024
#define RESP_FAST_MAX_DIGITS 18 /* below 10^18: no overflow */

/* Digits at *qp up to a '\r' with one byte after it, before end. Returns
 * the value and moves *qp past the '\r' and that byte, or -1 (*qp unknown)
 * when the line is not 1 to RESP_FAST_MAX_DIGITS digits without a leading
 * zero (a lone "0" is fine). */
static inline long long
resp_fast_digits(const char **qp, const char *end)
{
    const char *q = *qp;
    const char *lim;
    unsigned d;
    long long v;

    if (end - q < 3) {
        return -1;
    }
    d = (unsigned char)*q - (unsigned)'0';
    if (d > 9) {
        return -1;
    }
    /* One or two digits, by far the most common, without the loop. */
    if (q[1] == '\r') {
        *qp = q + 3;
        return d;
    }
    if (end - q >= 4 && q[2] == '\r' && d != 0) {
        unsigned d1 = (unsigned char)q[1] - (unsigned)'0';
        if (d1 <= 9) {
            *qp = q + 4;
            return d * 10 + d1;
        }
    }
    v = d;
    q++;
    if (d == 0) {
        /* "0" alone; "0<digit>" has a leading zero, left to the general path */
        if (*q != '\r') {
            return -1;
        }
    } else {
        lim = end - q > RESP_FAST_MAX_DIGITS ? q + RESP_FAST_MAX_DIGITS - 1 : end - 2;
        while (q < lim && (d = (unsigned char)*q - (unsigned)'0') <= 9) {
            v = v * 10 + d;
            q++;
        }
        if (q > end - 2 || *q != '\r') {
            return -1;
        }
    }
    *qp = q + 2;
    return v;
}

static inline __attribute__((always_inline)) size_t
resp_parse_whole(struct resp_parser *p, const char *buf, size_t len, struct proto_req *req)
{
    const char *end = buf + len;
    const char *q = buf + 1;
    long long count = resp_fast_digits(&q, end);
    long long max_bulk = p->max_bulk_len;

    if (count <= 0 || count > RESP_FAST_MAX_ARGS || count > p->max_multibulk) {
        return 0;
    }
    if (p->unauthenticated) {
        if (count > RESP_UNAUTH_MAX_MULTIBULK) {
            return 0;
        }
        if (max_bulk > RESP_UNAUTH_MAX_BULK) {
            max_bulk = RESP_UNAUTH_MAX_BULK;
        }
    }
    if ((size_t)count > p->argv_cap) {
        return 0; /* the general path grows argv (no call here: no frame) */
    }
    struct proto_arg *argv = p->argv;
    for (int i = 0; i < (int)count; i++) {
        long long blen;
        unsigned d;
        /* The shortest whole bulk, "$0\r\n\r\n", has 6 bytes: with fewer
         * left the request is incomplete either way. With 6, the length
         * line of 1 or 2 digits (nearly all) is read without more bounds
         * checks; longer ones go through resp_fast_digits. */
        if (end - q < 6 || q[0] != '$') {
            return 0;
        }
        d = (unsigned char)q[1] - (unsigned)'0';
        if (d > 9) {
            return 0;
        }
        if (q[2] == '\r') {
            blen = d;
            q += 4;
        } else {
            unsigned d1 = (unsigned char)q[2] - (unsigned)'0';
            if (d1 <= 9 && d != 0 && q[3] == '\r') {
                blen = d * 10 + d1;
                q += 5;
            } else {
                q++;
                blen = resp_fast_digits(&q, end);
                if (blen < 0) {
                    return 0;
                }
            }
        }
        if (blen > max_bulk || (size_t)(end - q) < (size_t)blen + 2) {
            return 0;
        }
        argv[i].ptr = q;
        argv[i].len = (size_t)blen;
        q += blen + 2;
    }
    req->argc = (int)count;
    req->argv = argv;
    return (size_t)(q - buf);
}

/* ---- entry point ----------------------------------------------------------- */

/* Everything but the fast path; `tried`: resp_parse_whole already failed on
 * these bytes (it is not tried again). Out of line, so that resp_parse's
 * fast path needs no stack frame. */
static __attribute__((noinline)) int
resp_parse_general(struct resp_parser *p, const char *buf, size_t len, struct proto_req *req,
                   size_t *consumed, bool tried)
{
    size_t base = 0; /* start of the current request in buf */

    *consumed = 0;
    if (p->state == RESP_ST_ERROR) {
        return PROTO_EPROTO;
    }
    if (p->state == RESP_ST_IDLE) {
        resp_release_big(p);
        if (!tried && len >= 4 && buf[0] == '*') {
            size_t used = resp_parse_whole(p, buf, len, req);
            if (used != 0) {
                *consumed = used;
                return PROTO_OK;
            }
        }
    } else if (p->pos > len || p->scan > len) {
        /* The caller broke the contract (fewer bytes than last time): start
         * the request over rather than read out of bounds. */
        resp_clear_progress(p);
    }
    for (;;) {
        const char *b = buf + base;
        size_t n = len - base;
        int rc;

        if (p->state == RESP_ST_IDLE) {
            if (n == 0) {
                *consumed = base;
                return PROTO_EAGAIN;
            }
            p->state = b[0] == '*' ? RESP_ST_COUNT : RESP_ST_INLINE;
        }
        if (p->state == RESP_ST_INLINE) {
            rc = resp_parse_inline(p, b, n);
        } else {
            rc = resp_parse_multibulk(p, b, n);
            if (rc == PROTO_OK) {
                for (int i = 0; i < p->argc; i++) {
                    p->argv[i].ptr = b + p->off[i];
                }
            }
        }
        if (rc == RESP_EMPTY) {
            base += p->pos;
            resp_clear_progress(p);
            continue;
        }
        *consumed = base;
        if (rc == PROTO_OK) {
            req->argc = p->argc;
            req->argv = p->argv;
            *consumed = base + p->pos;
            resp_clear_progress(p);
        }
        return rc;
    }
}

int
resp_parse(struct resp_parser *p, const char *buf, size_t len, struct proto_req *req,
           size_t *consumed)
{
    /* A request that starts here and is whole in buf, with no storage to
     * give back first (resp_release_big would do nothing): one forward pass,
     * a leaf without a stack frame. Anything else, and whatever the fast
     * path turns down, is the general path's (a tail call). */
    if (p->state == RESP_ST_IDLE && len >= 4 && buf[0] == '*' &&
        p->argv_cap <= RESP_KEEP_ARGS && p->scratch_cap <= RESP_KEEP_SCRATCH) {
        size_t used = resp_parse_whole(p, buf, len, req);
        if (used != 0) {
            *consumed = used;
            return PROTO_OK;
        }
        return resp_parse_general(p, buf, len, req, consumed, true);
    }
    return resp_parse_general(p, buf, len, req, consumed, false);
}

int
resp_peek_keys(const char *buf, size_t len, const char **key, size_t *klen, int max)
{
    const char *b = buf;
    const char *end = buf + len;
    int n = 0;

    while (n < max && end - b > 4 && *b == '*') {
        const char *q = b + 1;
        long long cnt = resp_fast_digits(&q, end);
        if (cnt < 2) {
            break;
        }
        for (long long i = 0; i < cnt; i++) {
            long long bl;
            if (q == end || *q != '$') {
                return n;
            }
            q++;
            bl = resp_fast_digits(&q, end);
            if (bl < 0 || end - q < bl + 2) {
                return n;
            }
            if (i == 1) {
                key[n] = q;
                klen[n] = (size_t)bl;
            }
            q += bl + 2;
        }
        n++;
        b = q;
    }
    return n;
}
