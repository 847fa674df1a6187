/*
 * wire.h -- request encoding and incremental reply parsing for crabcache-bench.
 *
 * Two protocols: RESP (what Redis speaks; requests are arrays of bulk
 * strings) and the native CrabCache text protocol (`PUT key value`,
 * `GET key`, one reply line per request). Encoders write into memory the
 * caller has reserved; parsers consume a byte stream in arbitrary chunks and
 * report each complete reply with its class (value, null, error), never
 * buffering the reply bodies. Nothing here allocates or locks; a parser
 * belongs to one connection.
 */
#ifndef CRAB_BENCH_WIRE_H
#define CRAB_BENCH_WIRE_H

#include <stddef.h>
#include <stdint.h>

enum bench_proto { BENCH_PROTO_RESP = 0, BENCH_PROTO_NATIVE = 1 };

/* Bytes a request needs beyond the key and value lengths (upper bound). */
#define BENCH_WIRE_OVERHEAD 64
/* Longest key prefix (--key-prefix) and longest key bench_key_format()
 * writes, without the NUL. */
#define BENCH_KEY_PREFIX_MAX 32
#define BENCH_KEY_MAX (BENCH_KEY_PREFIX_MAX + 20)

/* Write prefix (plen bytes, at most BENCH_KEY_PREFIX_MAX; "key:" by default)
 * and "%012llu" of idx into out (no NUL) and return its length, plen + 12 for
 * every idx below 10^12. Used for generated keys so that a server holding
 * keys 0..n-1 holds exactly n distinct keys. */
size_t bench_key_format(char *out, const char *prefix, size_t plen, uint64_t idx);

/* Write the trace key "k:<n>" (decimal, may be negative); returns its length. */
size_t bench_trace_key_format(char *out, int64_t n);

/* Encode GET key. out must have klen + BENCH_WIRE_OVERHEAD bytes. Returns
 * the bytes written. */
size_t bench_wire_get(enum bench_proto proto, char *out, const char *key, size_t klen);

/* Encode SET key value (native: PUT key value). out must have klen + vlen +
 * BENCH_WIRE_OVERHEAD bytes. A native value must not hold spaces or line
 * ends (the bench uses letters only). Returns the bytes written. */
size_t bench_wire_set(enum bench_proto proto, char *out, const char *key, size_t klen,
                      const char *val, size_t vlen);

enum bench_reply {
    BENCH_REPLY_BAD = -1,  /* protocol violation: the stream cannot be resynced */
    BENCH_REPLY_MORE = 0,  /* all input consumed, reply not complete yet */
    BENCH_REPLY_VALUE = 1, /* OK, a value, an integer, PONG, an array ... */
    BENCH_REPLY_NULL = 2,  /* RESP $-1 / *-1 / _ ; native NULL */
    BENCH_REPLY_ERROR = 3, /* RESP -ERR... / !blob ; native ERROR: ... */
};

struct bench_parser {
    enum bench_proto proto;
    int state;            /* internal */
    uint64_t skip;        /* bulk bytes (with CRLF) still to skip */
    int64_t remaining;    /* RESP elements still missing in this reply */
    int cls;              /* class of the reply being parsed, 0 at its start */
    size_t line_len;      /* bytes of the current line seen so far */
    char head[40];        /* first bytes of the current line */
};

/* Reset a parser for a new connection. */
void bench_parser_init(struct bench_parser *ps, enum bench_proto proto);

/*
 * Consume bytes from *p (up to end) until one reply completes; advance *p
 * past what was consumed. Returns the class of the completed reply
 * (BENCH_REPLY_VALUE/NULL/ERROR), BENCH_REPLY_MORE when the input ran out
 * first (*p == end then; the partial state is kept), or BENCH_REPLY_BAD on a
 * malformed stream. Call in a loop to drain a read buffer.
 */
int bench_parser_next(struct bench_parser *ps, const char **p, const char *end);

#endif
