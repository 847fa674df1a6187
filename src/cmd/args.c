/* args.c -- see args.h. */
#include "cmd/args.h"
#include "core/server.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

long long
arg_max_bulk(void)
{
    size_t max = atomic_load_explicit(&server.max_value_size, memory_order_relaxed);
    if (max == 0 || max > (size_t)ARG_MAX_BULK) {
        return ARG_MAX_BULK;
    }
    return (long long)max;
}

bool
arg_ll(const char *p, size_t n, long long *out)
{
    if (n == 0 || n > 20) {
        return false;
    }
    if (n == 1 && p[0] == '0') {
        *out = 0;
        return true;
    }
    size_t i = 0;
    bool neg = false;
    if (p[0] == '-') {
        neg = true;
        i = 1;
        if (n == 1) {
            return false;
        }
    }
    if (p[i] < '1' || p[i] > '9') {
        return false;
    }
    unsigned long long v = 0;
    for (; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return false;
        }
        unsigned d = (unsigned)(p[i] - '0');
        if (v > (ULLONG_MAX - d) / 10) {
            return false;
        }
        v = v * 10 + d;
    }
    if (neg) {
        if (v > (unsigned long long)LLONG_MAX + 1) {
            return false;
        }
        *out = (long long)(0 - v);
    } else {
        if (v > (unsigned long long)LLONG_MAX) {
            return false;
        }
        *out = (long long)v;
    }
    return true;
}

bool
arg_to_ld(const struct proto_arg *a, long double *out)
{
    char buf[5200];
    if (a->len == 0 || a->len >= sizeof(buf)) {
        return false;
    }
    memcpy(buf, a->ptr, a->len);
    buf[a->len] = '\0';
    if (isspace((unsigned char)buf[0])) {
        return false;
    }
    char *end;
    errno = 0;
    long double v = strtold(buf, &end);
    if ((size_t)(end - buf) != a->len || isnan(v)) {
        return false;
    }
    if (errno == ERANGE && (v == HUGE_VALL || v == -HUGE_VALL || fpclassify(v) == FP_ZERO)) {
        return false;
    }
    *out = v;
    return true;
}

int
fmt_ld_human(char *buf, size_t len, long double v)
{
    if (isinf(v)) {
        return snprintf(buf, len, "%s", v > 0 ? "inf" : "-inf");
    }
    /* Redis: "%.17Lf" then strip trailing zeros and a trailing dot. */
    int n = snprintf(buf, len, "%.17Lf", v);
    if (n < 0 || (size_t)n >= len) {
        return -1;
    }
    if (strchr(buf, '.')) {
        char *p = buf + n - 1;
        while (*p == '0') {
            p--;
            n--;
        }
        if (*p == '.') {
            n--;
        }
        buf[n] = '\0';
    }
    if (n == 2 && strcmp(buf, "-0") == 0) {
        buf[0] = '0';
        buf[1] = '\0';
        n = 1;
    }
    return n;
}
