/*
 * resp_reply.h -- where one RESP2/RESP3 reply ends.
 *
 * A node that forwards a request to another (net/fwd.c) reads the owner's
 * replies from a byte stream and must cut it into whole replies without
 * decoding them: simple strings, errors, integers, doubles, booleans, big
 * numbers and nulls are one line (+ - : , # ( _); bulk strings, verbatim
 * strings and bulk errors a length line and that many bytes ($ = !); arrays,
 * sets, pushes, maps and attributes a count line and that many replies (a
 * map's and an attribute's count is of pairs: twice as many replies; an
 * attribute is followed by the reply it annotates). `$-1` and `*-1` are
 * RESP2's nulls.
 */
#ifndef CRAB_PROTO_RESP_REPLY_H
#define CRAB_PROTO_RESP_REPLY_H

#include <stddef.h>

/* Replies nested deeper than this are refused as malformed. */
#define RESP_REPLY_MAX_DEPTH 64

/*
 * The length of the reply at the front of p[0 .. n): > 0 when it is whole,
 * 0 when more bytes are needed, -1 when the bytes are not a reply (an unknown
 * type byte, a bad length or count, a line not ended by CRLF, too deep).
 */
long long resp_reply_len(const char *p, size_t n);

/*
 * The count announced by the aggregate reply at the front of p[0 .. n)
 * (`*3\r\n...` -> 3, with *hdr = 4, the bytes of its count line), or -1 when
 * it is not an array header (or is `*-1`). Only the header must be there.
 */
long long resp_reply_array_count(const char *p, size_t n, size_t *hdr);

#endif
