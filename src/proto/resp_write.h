/*
 * resp_write.h -- writing a RESP request (an array of bulk strings), as a
 * node forwarding a command to another does (cmd/t_proxy.c, net/fwd.c).
 */
#ifndef CRAB_PROTO_RESP_WRITE_H
#define CRAB_PROTO_RESP_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

/* `*n` CRLF: an array of n elements follows. */
static inline void
resp_write_array(struct buf *b, int64_t n)
{
    buf_appendc(b, '*');
    buf_append_i64(b, n);
    buf_append(b, "\r\n", 2);
}

/* `$len` CRLF bytes CRLF. */
static inline void
resp_write_bulk(struct buf *b, const char *s, size_t n)
{
    buf_appendc(b, '$');
    buf_append_i64(b, (int64_t)n);
    buf_append(b, "\r\n", 2);
    buf_append(b, s, n);
    buf_append(b, "\r\n", 2);
}

#endif
