/*
 * text.h -- incremental parser for the native CrabCache text protocol
 * (SPEC 2a, docs/protocol.md): one request per line, the line ending in
 * "\r\n" or a bare "\n", tokens separated by runs of spaces or tabs, no
 * quoting. `PUT key value 60\r\n` gives argc 4.
 *
 * Thread-safety: a parser is used by one thread at a time (one per
 * connection); distinct parsers share nothing.
 */
#ifndef CRAB_PROTO_TEXT_H
#define CRAB_PROTO_TEXT_H

#include <stddef.h>

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
 *                 all-blank line (the caller replies an error). Tokens point
 *                 into buf; req->argv is valid until the next call on p.
 *                 *consumed is the line's length with its terminator.
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

/* argv storage grown past this many entries is released when a line starts */
#define TEXT_KEEP_ARGS 4096

/* The one-pass SSE2 path: a line that starts this call, with
 * 16 <= lim = min(len, max_line + 2) bytes in view. */
int text__parse_fast(struct text_parser *p, const char *buf, size_t len, size_t lim,
                     struct proto_req *req, size_t *consumed);
/* The general path: memchr() for the end of line from p->scan, then a split. */
int text__parse_general(struct text_parser *p, const char *buf, size_t len,
                        struct proto_req *req, size_t *consumed);
/* Free argv if it grew past TEXT_KEEP_ARGS. */
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
        if (__builtin_expect(p->argv_cap > TEXT_KEEP_ARGS, 0)) {
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
 * line that is not complete or has fewer than two tokens. Fills key[i]
 * (pointing into buf) and klen[i]; returns how many. A hint only:
 * text_parse decides what the requests are; wherever it accepts one of
 * these lines, its argv[1] is the key found here (fuzz_text checks that).
 * Reads nothing outside buf[0..len).
 */
int text_peek_keys(const char *buf, size_t len, const char **key, size_t *klen, int max);

/* After PROTO_EPROTO: the error text ("line too long"); "" otherwise.
 * A static string. */
const char *text_parser_error(const struct text_parser *p);

#endif
