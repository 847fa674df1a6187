/*
 * proto.h -- what the request parsers hand to the command layer.
 *
 * Two parsers produce the same request type: resp.h (RESP multibulk and
 * Redis inline commands) and text.h (the native CrabCache line protocol).
 * Both are pure functions of the bytes they are given: they never touch a
 * socket, the store or a global, which is what makes them fuzzable.
 *
 * The calling pattern is the same for both (shown for RESP):
 *
 *     for (;;) {
 *         rc = resp_parse(&p, buf_rptr(in), buf_unread(in), &req, &used);
 *         buf_consume(in, used);          (always, whatever rc is)
 *         if (rc == PROTO_OK)     { dispatch(&req); continue; }
 *         if (rc == PROTO_EAGAIN) { break; }   (read more, call again)
 *         reply(resp_parser_error(&p)); close after the reply;
 *     }
 *
 * Arguments (argv) point into the caller's input bytes whenever they can, so
 * the caller must not move, free or overwrite the consumed bytes until it has
 * finished with the request (i.e. before its next call on that parser).
 */
#ifndef CRAB_PROTO_PROTO_H
#define CRAB_PROTO_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <strings.h>

/* One argument: len bytes at ptr, binary-safe, NOT NUL-terminated. */
struct proto_arg {
    const char *ptr;
    size_t len;
};

/*
 * One parsed request. argv is parser-owned storage (reused and grown from
 * request to request); it and the bytes it points at stay valid until the
 * next call on the same parser, or its reset/deinit.
 */
struct proto_req {
    int argc;
    struct proto_arg *argv;
};

/* Return codes of resp_parse() and text_parse(). */
enum {
    PROTO_OK = 0,      /* one complete request in req */
    PROTO_EPROTO = -1, /* protocol error: reply the parser's error text, close */
    PROTO_EAGAIN = -2, /* incomplete: call again with the same bytes plus more */
    PROTO_EREQ = -3,   /* a malformed request (native: bad quoting): *consumed is
                          its length; reply the parser's error text and go on */
};

/* True when arg equals the NUL-terminated ASCII word s, ignoring case
 * (command names are case-insensitive in both protocols). */
static inline bool
proto_arg_is(const struct proto_arg *arg, const char *s)
{
    size_t n = 0;
    while (s[n] != '\0') {
        n++;
    }
    return arg->len == n && strncasecmp(arg->ptr, s, n) == 0;
}

#endif
