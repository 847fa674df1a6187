/*
 * text.h -- incremental parser for the native CrabCache text protocol
 * (SPEC 2a, docs/protocol.md): one request per line, the line ending in
 * "\r\n" or a bare "\n", tokens separated by runs of spaces or tabs. A token
 * that starts with '"' is quoted: it runs to the next unescaped '"' and may
 * hold spaces and, through escapes, any byte (text_unquote below; a '"'
 * inside an unquoted token is an ordinary byte). `PUT key value 60\r\n`
 * gives argc 4, `PUT k "a b" 60\n` too, its value `a b`.
 *
 * Thread-safety: a parser is used by one thread at a time (one per
 * connection); distinct parsers share nothing.
 */
#ifndef CRAB_PROTO_TEXT_H
#define CRAB_PROTO_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "proto/proto.h"

/* Default maximum line length, terminator excluded. */
#define TEXT_DEFAULT_MAX_LINE ((size_t)1024 * 1024)

struct text_parser {
    /* ---- option: set after text_parser_init(), change between requests ---- */
    size_t max_line;          /* longest accepted line, "\r\n" excluded */

    /* ---- private ---- */
    size_t scan;              /* bytes of the current line searched for '\n' */
    struct proto_arg *argv;   /* reused from line to line */
    size_t argv_cap;
    int failed;               /* a PROTO_EPROTO was returned; sticky */
    int big;                  /* argv or store grew past what is kept */
    char *store;              /* the unescaped bytes of quoted tokens */
    size_t store_cap;
    char err[192];            /* the error of the last PROTO_EREQ */
};

/* Initialise p with the default option. Allocates nothing until it parses.
 * Never fails. */
void text_parser_init(struct text_parser *p);

/* Free p's storage. p may be initialised again afterwards. */
void text_parser_deinit(struct text_parser *p);

/* Forget the progress of a partial line and any error, and release storage
 * grown large by a line with very many tokens. Keeps the option. */
void text_parser_reset(struct text_parser *p);

/*
 * Parse the next line of buf[0 .. len). buf starts at the first byte not yet
 * consumed; after PROTO_EAGAIN the next call must get the same bytes (they
 * may have moved) followed by any new ones.
 *
 * Always sets *consumed (0 unless PROTO_OK).
 *   PROTO_OK:     req holds the line's tokens; argc is 0 for an empty or
 *                 all-blank line (the caller replies an error). Unquoted
 *                 tokens point into buf, quoted ones into p's storage (""
 *                 is an empty token); req->argv and what it points at are
 *                 valid until the next call on p. *consumed is the line's
 *                 length with its terminator.
 *   PROTO_EREQ:   the line is complete but its quoting is bad (a quote
 *                 that does not close, or a closing quote followed by
 *                 something else than a space, a tab or the end of the
 *                 line); text_parser_error(p) says what and where. The
 *                 caller replies it and goes on with the next line;
 *                 *consumed is the line's length as for PROTO_OK.
 *   PROTO_EAGAIN: no complete line yet. Bytes already searched for the end
 *                 of line are not searched again.
 *   PROTO_EPROTO: the line is longer than p->max_line (whether or not its
 *                 end has arrived); text_parser_error(p) is "line too long";
 *                 the caller replies `ERROR: line too long` and closes.
 * req is only written on PROTO_OK.
 */
static inline int text_parse(struct text_parser *p, const char *buf, size_t len,
                             struct proto_req *req, size_t *consumed);

/* ---- text_parse's parts (text.c): inline below, so that a request pays no
 * call before the path that parses it ---- */

/* argv storage grown past this many entries, and quoted-token storage grown
 * past TEXT_KEEP_STORE bytes, are released when a line starts */
#define TEXT_KEEP_ARGS 4096
#define TEXT_KEEP_STORE ((size_t)64 * 1024)

/* The one-pass SSE2 path: a line that starts this call, with
 * 16 <= lim = min(len, max_line + 2) bytes in view. */
int text__parse_fast(struct text_parser *p, const char *buf, size_t len, size_t lim,
                     struct proto_req *req, size_t *consumed);
/* The general path: memchr() for the end of line from p->scan, then a split. */
int text__parse_general(struct text_parser *p, const char *buf, size_t len,
                        struct proto_req *req, size_t *consumed);
/* Free argv and store if they grew past what is kept. */
void text__release_big(struct text_parser *p);

static inline int
text_parse(struct text_parser *p, const char *buf, size_t len, struct proto_req *req,
           size_t *consumed)
{
    *consumed = 0;
    if (p->failed) {
        return PROTO_EPROTO;
    }
    if (p->scan == 0) {
        if (__builtin_expect(p->big, 0)) {
            text__release_big(p);
        }
#if defined(__SSE2__)
        size_t lim = len - 2 < p->max_line ? len : p->max_line + 2;
        if (len >= 16 && lim >= 16) {
            return text__parse_fast(p, buf, len, lim, req, consumed);
        }
#endif
    }
    return text__parse_general(p, buf, len, req, consumed);
}

/*
 * A look ahead, for prefetching: the second token (the key) of each whole
 * line at the start of buf[0..len), at most max of them. Stops at the first
 * line that is not complete, has fewer than two tokens, or whose first or
 * second token is quoted (its key is then not its bytes in buf). Fills key[i]
 * (pointing into buf) and klen[i]; returns how many. A hint only:
 * text_parse decides what the requests are; wherever it accepts one of
 * these lines, its argv[1] is the key found here (fuzz_text checks that).
 * Reads nothing outside buf[0..len).
 */
int text_peek_keys(const char *buf, size_t len, const char **key, size_t *klen, int max);

/* After PROTO_EPROTO: the error text ("line too long"); after PROTO_EREQ:
 * what is wrong with the line's quoting (valid until the next PROTO_EREQ);
 * "" before any error. */
const char *text_parser_error(const struct text_parser *p);

/*
 * Quoting, the inverse of the parser's, for replies (docs/protocol.md 1.2):
 * a value is sent as is unless text_needs_quote(); then text_quote()
 * writes it double-quoted, so that the reply, sent back as a token, parses
 * to the same bytes.
 *
 * text_needs_quote: true when v[0 .. n) is empty, starts with '"', holds a
 * byte <= 0x20 (space, tab, CR, LF, other control bytes) or 0x7f, or is
 * NULL or starts with ERROR: (which a reply could not tell from a miss or
 * an error).
 */
static inline bool text_needs_quote(const char *v, size_t n);
/* Bytes text_quote() writes for v[0 .. n): at most 4 n + 2. */
size_t text_quoted_len(const char *v, size_t n);
/* Write v quoted into out (text_quoted_len(v, n) bytes): '"', the bytes
 * with '"' and '\\' escaped by a backslash, CR, LF and tab as \r \n \t,
 * other bytes < 0x20 and 0x7f as \xHH, then '"'. Returns the bytes written. */
size_t text_quote(const char *v, size_t n, char *out);

/* ---- text_needs_quote: inline, as every native GET reply asks it ---- */

/* Bytes of x (8 of them) that are <= 0x20 or 0x7f: non-zero when any. The
 * first term is the exact "some byte < 0x21" test (valid for bounds up to
 * 0x80), the second the "some byte is zero" test of x ^ 0x7f...7f. */
static inline uint64_t
text__bad8(uint64_t x)
{
    const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
    uint64_t y = x ^ (0x7f * ones);
    return ((x - 0x21 * ones) & ~x & high) | ((y - ones) & ~y & high);
}

static inline bool
text_needs_quote(const char *v, size_t n)
{
    uint64_t x;
    if (n == 0 || v[0] == '"') {
        return true;
    }
    if (n >= 8) {
        size_t i = 0;
        for (; i + 8 <= n; i += 8) {
            memcpy(&x, v + i, 8);
            if (text__bad8(x)) {
                return true;
            }
        }
        memcpy(&x, v + n - 8, 8); /* the tail, overlapping */
        if (text__bad8(x)) {
            return true;
        }
        return n >= 6 && memcmp(v, "ERROR:", 6) == 0;
    }
    if (n >= 4) {
        uint32_t a, b;
        memcpy(&a, v, 4);
        memcpy(&b, v + n - 4, 4);
        x = (uint64_t)a | (uint64_t)b << 32;
        if (text__bad8(x)) {
            return true;
        }
        return (n == 4 && memcmp(v, "NULL", 4) == 0) || (n >= 6 && memcmp(v, "ERROR:", 6) == 0);
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c <= 0x20 || c == 0x7f) {
            return true;
        }
    }
    return false;
}

#endif
