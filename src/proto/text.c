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
 * argv grows geometrically and is reused, so steady-state parsing allocates
 * nothing; storage grown past TEXT_KEEP_ARGS by a line with very many tokens
 * is released when the next line starts.
 */
#include "proto/text.h"

#include "util/mem.h"

#include <stdlib.h>
#include <string.h>

#define TEXT_KEEP_ARGS 4096

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
    p->scan = 0;
    p->failed = 0;
}

static void
text_release_big(struct text_parser *p)
{
    if (p->argv_cap > TEXT_KEEP_ARGS) {
        free(p->argv);
        p->argv = NULL;
        p->argv_cap = 0;
    }
}

void
text_parser_reset(struct text_parser *p)
{
    p->scan = 0;
    p->failed = 0;
    text_release_big(p);
}

const char *
text_parser_error(const struct text_parser *p)
{
    return p->failed ? text_err_too_long : "";
}

static inline int
text_is_sep(char c)
{
    return c == ' ' || c == '\t';
}

/* Split line[0 .. len) at runs of spaces and tabs into p->argv. */
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
        start = i;
        while (i < len && !text_is_sep(line[i])) {
            i++;
        }
        if ((size_t)argc == p->argv_cap) {
            size_t cap = p->argv_cap ? p->argv_cap * 2 : 8;
            p->argv = xrealloc(p->argv, cap * sizeof(*p->argv));
            p->argv_cap = cap;
        }
        p->argv[argc].ptr = line + start;
        p->argv[argc].len = i - start;
        argc++;
    }
}

int
text_parse(struct text_parser *p, const char *buf, size_t len, struct proto_req *req,
           size_t *consumed)
{
    const char *nl;
    size_t at, end;

    *consumed = 0;
    if (p->failed) {
        return PROTO_EPROTO;
    }
    if (p->scan == 0) {
        text_release_big(p);
    } else if (p->scan > len) {
        p->scan = 0; /* fewer bytes than last time: a caller bug, rescan */
    }
    nl = p->scan < len ? memchr(buf + p->scan, '\n', len - p->scan) : NULL;
    if (nl == NULL) {
        p->scan = len;
        /* Content so far: every byte, but a final '\r' may be the start of
         * the terminator. */
        if (len > 0 && (len - 1 > p->max_line ||
                        (len - 1 == p->max_line && buf[len - 1] != '\r'))) {
            p->failed = 1;
            return PROTO_EPROTO;
        }
        return PROTO_EAGAIN;
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
    req->argc = text_split(p, buf, end);
    req->argv = p->argv;
    *consumed = at + 1;
    p->scan = 0;
    return PROTO_OK;
}
