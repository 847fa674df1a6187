/*
 * resp_reply.c -- where one RESP2/RESP3 reply ends (resp_reply.h).
 *
 * One pass over the bytes with a stack of the replies still owed by each
 * open aggregate: no recursion, no allocation.
 */
#include "proto/resp_reply.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* A line from p + at: returns the index just after its CRLF, 0 when the
 * line is not whole, -1 when a bare CR or LF is found inside it. */
static long long
line_end(const char *p, size_t n, size_t at)
{
    const char *cr = memchr(p + at, '\r', n - at);
    const char *lf = memchr(p + at, '\n', n - at);
    if (lf != NULL && (cr == NULL || lf < cr)) {
        return -1; /* a LF before any CR */
    }
    if (cr == NULL) {
        return 0;
    }
    size_t i = (size_t)(cr - p);
    if (i + 1 >= n) {
        return 0;
    }
    return p[i + 1] == '\n' ? (long long)(i + 2) : -1;
}

/* The signed decimal p[from .. to) (to excludes the CRLF): false when it is
 * not one (empty, a stray byte, more than 18 digits). */
static bool
parse_count(const char *p, size_t from, size_t to, long long *out)
{
    bool neg = from < to && p[from] == '-';
    size_t i = from + (neg ? 1 : 0);
    if (i >= to || to - i > 18) {
        return false;
    }
    long long v = 0;
    for (; i < to; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return false;
        }
        v = v * 10 + (p[i] - '0');
    }
    *out = neg ? -v : v;
    return true;
}

long long
resp_reply_len(const char *p, size_t n)
{
    /* owed[d]: replies still to read at depth d (depth 0: the one asked) */
    long long owed[RESP_REPLY_MAX_DEPTH + 1];
    int depth = 0;
    owed[0] = 1;
    size_t at = 0;
    while (depth >= 0) {
        if (owed[depth] == 0) {
            depth--;
            continue;
        }
        if (at >= n) {
            return 0;
        }
        char type = p[at];
        long long end = line_end(p, n, at + 1);
        if (end <= 0) {
            return end;
        }
        size_t body = at + 1, eol = (size_t)end - 2;
        long long count;
        owed[depth]--;
        switch (type) {
        case '+':
        case '-':
        case ':':
        case ',':
        case '#':
        case '(':
        case '_':
            at = (size_t)end;
            break;
        case '$':
        case '=':
        case '!':
            if (!parse_count(p, body, eol, &count) || count < -1 ||
                (count == -1 && type != '$')) {
                return -1;
            }
            at = (size_t)end;
            if (count >= 0) {
                if ((unsigned long long)count + 2 > n - at) {
                    return 0;
                }
                if (p[at + (size_t)count] != '\r' || p[at + (size_t)count + 1] != '\n') {
                    return -1;
                }
                at += (size_t)count + 2;
            }
            break;
        case '*':
        case '~':
        case '>':
        case '%':
        case '|':
            if (!parse_count(p, body, eol, &count) || count < -1 ||
                (count == -1 && type != '*')) {
                return -1;
            }
            at = (size_t)end;
            if (type == '%' || type == '|') {
                count *= 2;
            }
            if (type == '|') {
                /* an attribute annotates the reply after it */
                count += 1;
            }
            if (count > 0) {
                if (depth == RESP_REPLY_MAX_DEPTH) {
                    return -1;
                }
                owed[++depth] = count;
            }
            break;
        default:
            return -1;
        }
    }
    return (long long)at;
}

long long
resp_reply_array_count(const char *p, size_t n, size_t *hdr)
{
    if (n == 0 || p[0] != '*') {
        return -1;
    }
    long long end = line_end(p, n, 1);
    long long count;
    if (end <= 0 || !parse_count(p, 1, (size_t)end - 2, &count) || count < 0) {
        return -1;
    }
    *hdr = (size_t)end;
    return count;
}
