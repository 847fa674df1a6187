/*
 * resp.h -- incremental parser for Redis requests: RESP multibulk
 * (`*<n>\r\n$<len>\r\n<bytes>\r\n...`) and Redis inline commands
 * (`SET k "v w"\r\n`), with the limits and the exact protocol error texts of
 * Redis 7.0 (networking.c: processMultibulkBuffer, processInlineBuffer;
 * sds.c: sdssplitargs). docs/protocol.md lists the rules and the few
 * deliberate differences.
 *
 * A request whose first byte is '*' is multibulk, anything else is inline;
 * the choice is made per request, as Redis does. Empty requests (`*0\r\n`,
 * `*-1\r\n`, any `*<n>` with n <= 0, inline lines with no token) produce no
 * request: they are consumed and parsing goes on with the next bytes.
 *
 * Thread-safety: a parser is used by one thread at a time (one per
 * connection); distinct parsers share nothing.
 */
#ifndef CRAB_PROTO_RESP_H
#define CRAB_PROTO_RESP_H

#include <stdbool.h>
#include <stddef.h>

#include "proto/proto.h"

/* Redis's proto-max-bulk-len default. */
#define RESP_DEFAULT_MAX_BULK_LEN ((long long)512 * 1024 * 1024)
/* Redis 7.0 accepts a multibulk count up to INT_MAX (6.x: 1024*1024). */
#define RESP_DEFAULT_MAX_MULTIBULK 2147483647LL
/* PROTO_INLINE_MAX_SIZE: an inline request, or a `*`/`$` count line, may not
 * go on for more than this many bytes without its terminator. */
#define RESP_DEFAULT_MAX_INLINE ((size_t)64 * 1024)
/* Limits while the client is not authenticated (Redis: authRequired()). */
#define RESP_UNAUTH_MAX_MULTIBULK 10
#define RESP_UNAUTH_MAX_BULK 16384

struct resp_parser {
    /* ---- options: set after resp_parser_init(), change between requests ---- */
    long long max_bulk_len;      /* bulk length above this: invalid bulk length */
    long long max_multibulk;     /* count above this: invalid multibulk length */
    size_t max_inline;           /* see RESP_DEFAULT_MAX_INLINE */
    bool unauthenticated;        /* caller sets it until the client has AUTHed */

    /* ---- private: progress of the current request, as offsets from its
     * first byte, so the input may move between calls ---- */
    int state;                   /* RESP_ST_* in resp.c */
    size_t pos;                  /* next byte to parse */
    size_t scan;                 /* bytes before this were searched for '\r'/'\n' */
    long long nargs;             /* elements announced by the multibulk count */
    long long bulklen;           /* length of the pending bulk, -1 if none */
    int argc;                    /* elements complete so far */

    /* ---- private: storage reused from request to request ---- */
    struct proto_arg *argv;      /* what requests point at */
    size_t *off;                 /* offsets of the elements of a partial request */
    size_t argv_cap;
    char *scratch;               /* unescaped quoted inline arguments */
    size_t scratch_cap;
    char err[80];                /* text of the last PROTO_EPROTO */
};

/* Initialise p with the default options. Allocates nothing until it parses.
 * Never fails. */
void resp_parser_init(struct resp_parser *p);

/* Free p's storage. p may be initialised again afterwards. */
void resp_parser_deinit(struct resp_parser *p);

/* Forget the progress of any partial request (e.g. after the caller threw its
 * input away) and release storage grown large by big requests. Options are
 * kept. Invalidates the argv of the last request. */
void resp_parser_reset(struct resp_parser *p);

/*
 * Parse the next request from buf[0 .. len). buf starts at the first byte
 * not yet consumed; when the previous call returned PROTO_EAGAIN it must hold
 * the same bytes as then (they may have moved to another address) followed by
 * any new ones.
 *
 * Always sets *consumed: the number of bytes at the front of buf that are done
 * with and that the caller drops before the next call.
 *   PROTO_OK:     req holds one request, argc >= 1; *consumed covers it and
 *                 any empty requests before it. req->argv and the argument
 *                 bytes (in buf, or for unescaped inline quotes in p's
 *                 storage) stay valid until the next call on p.
 *   PROTO_EAGAIN: the request is incomplete; *consumed covers only empty
 *                 requests skipped before it (often 0). Bytes already parsed
 *                 are never scanned again: feeding a 100 MB bulk in 64 KB
 *                 reads costs linear time.
 *   PROTO_EPROTO: the input is not valid; resp_parser_error(p) is the text
 *                 Redis replies (without "-ERR "/CRLF), the connection must be
 *                 closed after replying. p must be reset before further use.
 * req is only written on PROTO_OK.
 */
int resp_parse(struct resp_parser *p, const char *buf, size_t len,
               struct proto_req *req, size_t *consumed);

/* After PROTO_EAGAIN: the total size in bytes (counted from the request's
 * first byte) that the current request needs at least, when a pending bulk
 * makes it known, so the caller can reserve its input buffer once; 0 when
 * unknown. */
size_t resp_parser_need(const struct resp_parser *p);

/*
 * A look ahead, for prefetching: the keys (argv[1]) of the whole multibulk
 * requests at the start of buf[0..len), at most max of them. Stops at the
 * first thing that is not a whole "*N\r\n" + N x "$L\r\n<L bytes>\r\n"
 * request with 2 <= N (an inline request, a partial one, a length the fast
 * parser leaves to the general one: a leading zero, more than 18 digits). Fills key[i] (pointing into buf) and klen[i]; returns how
 * many. A hint only: resp_parse decides what the requests are; wherever it
 * accepts one of them, its argv[1] is the key found here (fuzz_resp checks
 * that). Reads nothing outside buf[0..len).
 */
int resp_peek_keys(const char *buf, size_t len, const char **key, size_t *klen, int max);

/* After PROTO_EPROTO: the error text, e.g. "Protocol error: invalid bulk
 * length". Owned by p; valid until the next call on p. "" otherwise. */
const char *resp_parser_error(const struct resp_parser *p);

#endif
