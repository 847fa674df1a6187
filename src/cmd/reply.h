/*
 * reply.h -- replies in RESP2, RESP3 or the native text protocol.
 *
 * Command handlers describe a reply with these calls; the encoding depends on
 * the connection: RESP2, RESP3 (after HELLO 3) or native (SPEC 2a: one line
 * per reply: OK, NULL, the value, an integer, ERROR: message). Everything is
 * appended to the connection's output buffer; nothing is written here.
 */
#ifndef CRAB_CMD_REPLY_H
#define CRAB_CMD_REPLY_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

enum reply_proto { REPLY_RESP2 = 2, REPLY_RESP3 = 3, REPLY_NATIVE = 0 };

struct reply {
    struct buf *out;
    int proto; /* enum reply_proto */
};

void reply_ok(struct reply *r);
void reply_simple(struct reply *r, const char *s);
/* err is the whole error including its code, e.g. "ERR syntax error" or
 * "WRONGPASS invalid ...". \r and \n in it become spaces. */
void reply_error(struct reply *r, const char *err);
void reply_errorf(struct reply *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void reply_int(struct reply *r, int64_t v);
void reply_bulk(struct reply *r, const void *p, size_t n);
void reply_bulkstr(struct reply *r, const char *s);
/* Null bulk: $-1 in RESP2, _ in RESP3, NULL natively. */
void reply_null(struct reply *r);
/* Null array: *-1 in RESP2, _ in RESP3. */
void reply_null_array(struct reply *r);
void reply_array(struct reply *r, size_t n);
/* A map of n pairs: %n in RESP3, an array of 2n in RESP2. */
void reply_map(struct reply *r, size_t n);
/* A set: ~n in RESP3, an array in RESP2. */
void reply_set(struct reply *r, size_t n);
/* A double: ,v in RESP3, a bulk string in RESP2 (Redis's %.17g form). */
void reply_double(struct reply *r, double v);
/* A boolean: #t/#f in RESP3, :1/:0 in RESP2. */
void reply_bool(struct reply *r, int v);
/* Verbatim text (INFO, CLIENT INFO...): =len txt:... in RESP3, bulk in RESP2. */
void reply_verbatim(struct reply *r, const char *p, size_t n);

#endif
