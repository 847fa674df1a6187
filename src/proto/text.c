/*
 * text.c -- incremental parser of the native text protocol (see text.h).
 *
 * Design
 * ------
 * A request is one line, so the only progress to keep between calls is how
 * far the end of line was already searched for (`scan`, an offset from the
 * line's first byte: the caller may move its buffer). memchr() finds the
 * '\n'; one tight loop then cuts the line at spaces and tabs, pointing the
 * tokens into the caller's bytes. A '\r' just before the '\n' belongs to the
 * terminator; a '\r' anywhere else is an ordinary byte of a token.
 *
 * The length limit is decided the same way whatever the reads look like:
 * a line is refused when its content (terminator excluded) is longer than
 * max_line, and that is known as soon as max_line + 2 bytes without a '\n'
 * have arrived, or max_line + 1 of them not ending in '\r'. A peer can thus
 * never make the caller buffer more than max_line + 2 bytes of one request.
 *
 * A line that starts a call (nothing searched yet, the usual case) and has
 * at least 16 bytes in view takes a one-pass fast path (text__parse_fast,
 * SSE2): each 16-byte block gives one bit mask of its spaces, tabs and
 * '\n'; tokens are the runs between set bits, so the cost is per block and
 * per separator, not per byte, and the end of line is found by the same
 * pass instead of a memchr() before the split; a line that ends within the
 * first 32 bytes (with 32 in view) is cut from one 32-bit mask without the
 * block loop or its register frame. It decides everything from
 * buf[0 .. len) exactly as the general path does (same tokens, same
 * consumed, same limit), so the result never depends on which path ran. A
 * line whose end arrives in a later call finishes on the general path
 * (memchr() from `scan`, then text_split), as do short inputs and builds
 * without SSE2. Both paths and the rare work (argv growth, release) are
 * out of line, so text_parse() itself (inline in text.h) is a few tests and
 * a call, and the fast path keeps argv in registers while it fills it.
 *
 * Quoted tokens are the rare case and cost the common one a byte compare
 * per token: wherever a token would start with '"', the fast path hands
 * the whole line to the general path, and text_split hands it to
 * text_split_quoted (out of line), which cuts it again understanding
 * quotes and writes the unescaped tokens into p->store (reserved at the
 * line's length first, since unescaping never lengthens, so argv pointers
 * into it stay put). The line's end is found before any of this, so a
 * quote never makes a line span a '\n'; a bad quote makes the line a
 * PROTO_EREQ, which the connection answers and survives.
 *
 * argv grows geometrically and is reused, so steady-state parsing allocates
 * nothing; storage grown past TEXT_KEEP_ARGS by a line with very many tokens
 * (or past TEXT_KEEP_STORE by a long quoted one) is released when the next
 * line starts.
 */
#include "proto/text.h"

#include "util/mem.h"
#include "util/hex.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#define TEXT_FAST 1
#endif

static const char text_err_too_long[] = "line too long";

void
text_parser_init(struct text_parser *p)
{
    memset(p, 0, sizeof(*p));
    p->max_line = TEXT_DEFAULT_MAX_LINE;
}

void
text_parser_deinit(struct text_parser *p)
{
    free(p->argv);
    p->argv = NULL;
    p->argv_cap = 0;
    free(p->store);
    p->store = NULL;
    p->store_cap = 0;
    p->big = 0;
    p->scan = 0;
    p->failed = 0;
}

void
text__release_big(struct text_parser *p)
{
    if (p->argv_cap > TEXT_KEEP_ARGS) {
        free(p->argv);
        p->argv = NULL;
        p->argv_cap = 0;
    }
    if (p->store_cap > TEXT_KEEP_STORE) {
        free(p->store);
        p->store = NULL;
        p->store_cap = 0;
    }
    p->big = 0;
}

void
text_parser_reset(struct text_parser *p)
{
    p->scan = 0;
    p->failed = 0;
    text__release_big(p);
}

const char *
text_parser_error(const struct text_parser *p)
{
    return p->failed ? text_err_too_long : p->err;
}

static inline int
text_is_sep(char c)
{
    return c == ' ' || c == '\t';
}

/* Double argv (at least 8 entries); returns the new p->argv. Out of line:
 * steady-state lines never grow it. */
static __attribute__((noinline, cold)) struct proto_arg *
text_grow(struct text_parser *p)
{
    size_t cap = p->argv_cap ? p->argv_cap * 2 : 8;
    p->argv = xrealloc(p->argv, cap * sizeof(*p->argv));
    p->argv_cap = cap;
    if (cap > TEXT_KEEP_ARGS) {
        p->big = 1;
    }
    return p->argv;
}

/* No '\n' in buf[0 .. len): remember how far was searched, and refuse the
 * line if it is already longer than max_line. */
static int
text_no_eol(struct text_parser *p, const char *buf, size_t len)
{
    p->scan = len;
    /* Content so far: every byte, but a final '\r' may be the start of the
     * terminator. */
    if (len > 0 && (len - 1 > p->max_line ||
                    (len - 1 == p->max_line && buf[len - 1] != '\r'))) {
        p->failed = 1;
        return PROTO_EPROTO;
    }
    return PROTO_EAGAIN;
}

static int text_split_quoted(struct text_parser *p, const char *line, size_t len);

/* Split line[0 .. len) at runs of spaces and tabs into p->argv; a line with
 * a quoted token goes to text_split_quoted. Returns argc, or -1 (bad
 * quoting, p->err says why). */
static int
text_split(struct text_parser *p, const char *line, size_t len)
{
    size_t i = 0;
    int argc = 0;

    for (;;) {
        size_t start;
        while (i < len && text_is_sep(line[i])) {
            i++;
        }
        if (i == len) {
            return argc;
        }
        if (__builtin_expect(line[i] == '"', 0)) {
            return text_split_quoted(p, line, len);
        }
        start = i;
        while (i < len && !text_is_sep(line[i])) {
            i++;
        }
        if ((size_t)argc == p->argv_cap) {
            (void)text_grow(p);
        }
        p->argv[argc].ptr = line + start;
        p->argv[argc].len = i - start;
        argc++;
    }
}

/*
 * text_split for a line with a quoted token: a token that starts with '"'
 * runs to the next '"' not escaped by a backslash, and must be followed by
 * a separator or the end of the line. Escapes, as in Redis's inline
 * commands: \n \r \t \b \a, \xHH (two hex digits, either case), and a
 * backslash before any other byte is that byte (\" \\; \x without two hex
 * digits is x). The unescaped bytes go to p->store, reserved at len first
 * so that it never moves while argv points into it. Returns argc or -1.
 */
static __attribute__((noinline, cold)) int
text_split_quoted(struct text_parser *p, const char *line, size_t len)
{
    static const char hint[] = "; send a value with spaces as one double-quoted token";
    size_t i = 0, w = 0;
    int argc = 0;

    if (p->store_cap < len) {
        size_t cap = p->store_cap ? p->store_cap : 64;
        while (cap < len) {
            cap *= 2;
        }
        p->store = xrealloc(p->store, cap);
        p->store_cap = cap;
        if (cap > TEXT_KEEP_STORE) {
            p->big = 1;
        }
    }
    for (;;) {
        while (i < len && text_is_sep(line[i])) {
            i++;
        }
        if (i == len) {
            return argc;
        }
        if ((size_t)argc == p->argv_cap) {
            (void)text_grow(p);
        }
        if (line[i] != '"') {
            size_t start = i;
            while (i < len && !text_is_sep(line[i])) {
                i++;
            }
            p->argv[argc].ptr = line + start;
            p->argv[argc].len = i - start;
            argc++;
            continue;
        }
        size_t open = i++;
        size_t ws = w;
        for (;;) {
            if (i == len) {
                snprintf(p->err, sizeof(p->err),
                         "unbalanced quotes: the quote at byte %zu is not closed%s", open + 1,
                         hint);
                return -1;
            }
            char c = line[i++];
            if (c == '"') {
                break;
            }
            if (c == '\\' && i < len) {
                c = line[i++];
                switch (c) {
                case 'n': c = '\n'; break;
                case 'r': c = '\r'; break;
                case 't': c = '\t'; break;
                case 'b': c = '\b'; break;
                case 'a': c = '\a'; break;
                case 'x':
                    if (i + 1 < len && hex_digit(line[i]) >= 0 && hex_digit(line[i + 1]) >= 0) {
                        c = (char)(hex_digit(line[i]) << 4 | hex_digit(line[i + 1]));
                        i += 2;
                    }
                    break;
                default: break;
                }
            }
            p->store[w++] = c;
        }
        if (i < len && !text_is_sep(line[i])) {
            unsigned char c = (unsigned char)line[i];
            if (c > 0x20 && c < 0x7f) {
                snprintf(p->err, sizeof(p->err),
                         "unbalanced quotes: the closing quote at byte %zu is followed by '%c', "
                         "not a space or the end of the line%s", i, (char)c, hint);
            } else {
                snprintf(p->err, sizeof(p->err),
                         "unbalanced quotes: the closing quote at byte %zu is followed by byte "
                         "0x%02x, not a space or the end of the line%s", i, c, hint);
            }
            return -1;
        }
        p->argv[argc].ptr = p->store + ws;
        p->argv[argc].len = w - ws;
        argc++;
    }
}

#ifdef TEXT_FAST
/* Bit i set when q[i] is a space, a tab or a '\n'; *nl gets the '\n' bits. */
static inline unsigned
text_mask16(const char *q, unsigned *nl)
{
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)q);
    __m128i n = _mm_cmpeq_epi8(v, _mm_set1_epi8('\n'));
    __m128i s = _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8(' ')),
                             _mm_cmpeq_epi8(v, _mm_set1_epi8('\t')));
    *nl = (unsigned)_mm_movemask_epi8(n);
    return (unsigned)_mm_movemask_epi8(_mm_or_si128(s, n));
}

/* text_mask16 of the 32 bytes at q (all readable). */
static inline uint32_t
text_mask32(const char *q, uint32_t *nl)
{
    unsigned n0, n1;
    uint32_t m = text_mask16(q, &n0) | (uint32_t)text_mask16(q + 16, &n1) << 16;
    *nl = n0 | (uint32_t)n1 << 16;
    return m;
}

/*
 * One pass over a line that starts at buf (p->scan == 0): the result of the
 * general path for the same bytes. Only the first lim = min(len,
 * max_line + 2) >= 16 bytes are looked at: a line with no '\n' among them is too
 * long whatever follows, as the general path also concludes. The block past
 * the last whole one is the 16 bytes ending at `lim`, its bits for bytes
 * already seen shifted out, so nothing outside buf[0 .. lim) is read.
 */
/* Append the token buf[tok .. end) to argv (kept in locals of the caller,
 * as p->argv and p->argv_cap would be reloaded after every store); a token
 * that starts with a quote sends the line to the general path (p->scan is
 * still 0 there), which understands quotes. */
#define TEXT_EMIT(tok, end)                                                      \
    do {                                                                         \
        if (__builtin_expect(buf[(tok)] == '"', 0)) {                            \
            return text__parse_general(p, buf, len, req, consumed);              \
        }                                                                        \
        if (argc == cap) {                                                       \
            argv = text_grow(p);                                                 \
            cap = p->argv_cap;                                                   \
        }                                                                        \
        argv[argc].ptr = buf + (tok);                                            \
        argv[argc].len = (end) - (tok);                                          \
        argc++;                                                                  \
    } while (0)

/* The general case of text__parse_fast: 16-byte blocks up to lim. */
static __attribute__((noinline)) int
text_parse_blocks(struct text_parser *p, const char *buf, size_t len, size_t lim,
                  struct proto_req *req, size_t *consumed)
{
    struct proto_arg *argv = p->argv;
    size_t cap = p->argv_cap;
    size_t argc = 0;
    size_t base = 0; /* offset of the block */
    size_t tok = 0;  /* where a token would start: just past the last separator */

    for (; base < lim; base += 16) {
        unsigned m, nl, eol;
        if (lim - base >= 16) {
            m = text_mask16(buf + base, &nl);
        } else {
            unsigned skip = (unsigned)(base - (lim - 16));
            m = text_mask16(buf + lim - 16, &nl) >> skip;
            nl >>= skip;
        }
        eol = nl & -nl; /* the block's first '\n', or 0 */
        m &= eol - 1;   /* the separators before it (all when eol is 0) */
        for (; m != 0; m &= m - 1) {
            size_t at = base + (unsigned)__builtin_ctz(m);
            if (at > tok) {
                TEXT_EMIT(tok, at);
            }
            tok = at + 1;
        }
        if (eol != 0) {
            size_t at = base + (unsigned)__builtin_ctz(eol);
            size_t end = at > 0 && buf[at - 1] == '\r' ? at - 1 : at;
            if (end > p->max_line) {
                p->failed = 1;
                return PROTO_EPROTO;
            }
            if (end > tok) {
                TEXT_EMIT(tok, end);
            }
            req->argc = (int)argc;
            req->argv = argv;
            *consumed = at + 1;
            return PROTO_OK;
        }
    }
    if (lim < len) {
        p->failed = 1;
        return PROTO_EPROTO;
    }
    return text_no_eol(p, buf, len);
}

int
text__parse_fast(struct text_parser *p, const char *buf, size_t len, size_t lim,
                 struct proto_req *req, size_t *consumed)
{
    if (lim >= 32) {
        /* A line that ends within the first 32 bytes (GET, PUT of a short
         * value): one 32-bit mask, its tokens the runs of clear bits before
         * the end; few registers, so no frame to speak of. */
        struct proto_arg *argv = p->argv;
        size_t cap = p->argv_cap;
        size_t argc = 0;
        uint32_t nl;
        uint32_t m = text_mask32(buf, &nl);
        if (nl != 0) {
            unsigned at = (unsigned)__builtin_ctz(nl);
            unsigned end = at > 0 && buf[at - 1] == '\r' ? at - 1 : at;
            if (end > p->max_line) {
                p->failed = 1;
                return PROTO_EPROTO;
            }
            /* token bytes: not separators, before end (<= 31: bit 31 stays clear) */
            uint32_t t = ~m & ((1u << end) - 1);
            while (t != 0) {
                unsigned s0 = (unsigned)__builtin_ctz(t);
                unsigned e0 = s0 + (unsigned)__builtin_ctz(~(t >> s0));
                TEXT_EMIT(s0, e0);
                t &= ~0u << e0; /* e0 <= 31 */
            }
            req->argc = (int)argc;
            req->argv = argv;
            *consumed = at + 1;
            return PROTO_OK;
        }
    }
    return text_parse_blocks(p, buf, len, lim, req, consumed);
}
#undef TEXT_EMIT
#endif

/* The general path: memchr() for the end of line from `scan`, then
 * text_split(). Out of line so that text_parse() itself needs no frame
 * before the fast path. */
int
text__parse_general(struct text_parser *p, const char *buf, size_t len, struct proto_req *req,
                   size_t *consumed)
{
    const char *nl;
    size_t at, end;

    if (p->scan > len) {
        p->scan = 0; /* fewer bytes than last time: a caller bug, rescan */
    }
    nl = p->scan < len ? memchr(buf + p->scan, '\n', len - p->scan) : NULL;
    if (nl == NULL) {
        return text_no_eol(p, buf, len);
    }
    at = (size_t)(nl - buf);
    end = at;
    if (end > 0 && buf[end - 1] == '\r') {
        end--;
    }
    if (end > p->max_line) {
        p->failed = 1;
        return PROTO_EPROTO;
    }
    int argc = text_split(p, buf, end);
    *consumed = at + 1;
    p->scan = 0;
    if (__builtin_expect(argc < 0, 0)) {
        return PROTO_EREQ;
    }
    req->argc = argc;
    req->argv = p->argv;
    return PROTO_OK;
}

/* The key of the line [b, eol), or false when it has fewer than two
 * tokens: byte by byte. */
static bool
peek_line_key(const char *b, const char *eol, const char **key, size_t *klen)
{
    const char *q = b;
    while (q < eol && text_is_sep(*q)) {
        q++;
    }
    if (q < eol && *q == '"') {
        return false; /* a quoted command name */
    }
    while (q < eol && !text_is_sep(*q)) {
        q++; /* the command name */
    }
    while (q < eol && text_is_sep(*q)) {
        q++;
    }
    if (q == eol || *q == '"') {
        return false; /* no key, or a quoted one */
    }
    const char *k = q;
    while (q < eol && !text_is_sep(*q)) {
        q++;
    }
    *key = k;
    *klen = (size_t)(q - k);
    return true;
}

#ifdef TEXT_FAST
/* The key of a line of n <= 31 bytes at b, from text_mask16's bits of the
 * 32 bytes at b (sep: spaces, tabs, '\n'): bytes from n on count as
 * separators, and the tokens are the runs of clear bits. False when there
 * is no key or the line's first or second token is quoted. */
static inline bool
peek_line_key32(const char *b, uint32_t sep, size_t n, const char **key, size_t *klen)
{
    uint64_t m = sep | ~0ULL << n;
    if (~m == 0) {
        return false;
    }
    unsigned s0 = (unsigned)__builtin_ctzll(~m);            /* command name */
    unsigned e0 = (unsigned)__builtin_ctzll(m & ~0ULL << s0);
    uint64_t rest = ~m & ~0ULL << e0;                        /* e0 < 64 */
    if (rest == 0) {
        return false; /* no key */
    }
    unsigned s1 = (unsigned)__builtin_ctzll(rest);
    if (b[s0] == '"' || b[s1] == '"') {
        return false; /* a quoted token: its bytes are not these */
    }
    unsigned e1 = (unsigned)__builtin_ctzll(m & ~0ULL << s1);
    *key = b + s1;
    *klen = e1 - s1;
    return true;
}
#endif

int
text_peek_keys(const char *buf, size_t len, const char **key, size_t *klen, int max)
{
    const char *b = buf;
    const char *end = buf + len;
    int n = 0;

    while (n < max && b < end) {
#ifdef TEXT_FAST
        /* A line that ends within 32 readable bytes: its '\n' and its
         * separators from the parser's masks, its key by peek_line_key32. */
        uint32_t nlm = 0, sep = 0;
        if (end - b >= 32) {
            sep = text_mask32(b, &nlm);
        }
        if (nlm != 0) {
            const char *nl = b + __builtin_ctz(nlm);
            const char *eol = nl > b && nl[-1] == '\r' ? nl - 1 : nl;
            if (!peek_line_key32(b, sep, (size_t)(eol - b), &key[n], &klen[n])) {
                break;
            }
            n++;
            b = nl + 1;
            continue;
        }
#endif
        const char *nl = memchr(b, '\n', (size_t)(end - b));
        if (nl == NULL) {
            break;
        }
        const char *eol = nl > b && nl[-1] == '\r' ? nl - 1 : nl;
        if (!peek_line_key(b, eol, &key[n], &klen[n])) {
            break;
        }
        n++;
        b = nl + 1;
    }
    return n;
}

/* ---- quoting for replies (text.h) ---- */

/* The escape of c for text_quote: its letter, 'x' for \xHH, 0 for none. */
static inline char
text_escape_of(unsigned char c)
{
    switch (c) {
    case '"': return '"';
    case '\\': return '\\';
    case '\n': return 'n';
    case '\r': return 'r';
    case '\t': return 't';
    default: return c < 0x20 || c == 0x7f ? 'x' : 0;
    }
}

size_t
text_quoted_len(const char *v, size_t n)
{
    size_t len = n + 2;
    for (size_t i = 0; i < n; i++) {
        char e = text_escape_of((unsigned char)v[i]);
        len += e == 0 ? 0 : e == 'x' ? 3 : 1;
    }
    return len;
}

size_t
text_quote(const char *v, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    char *w = out;
    *w++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        char e = text_escape_of(c);
        if (e == 0) {
            *w++ = (char)c;
        } else if (e == 'x') {
            *w++ = '\\';
            *w++ = 'x';
            *w++ = hex[c >> 4];
            *w++ = hex[c & 15];
        } else {
            *w++ = '\\';
            *w++ = e;
        }
    }
    *w++ = '"';
    return (size_t)(w - out);
}
