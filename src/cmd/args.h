/*
 * args.h -- argument parsing shared by command handlers, with Redis's rules
 * and Redis's error texts.
 */
#ifndef CRAB_CMD_ARGS_H
#define CRAB_CMD_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "proto/proto.h"

#define ERR_SYNTAX "ERR syntax error"
#define ERR_NOT_INT "ERR value is not an integer or out of range"
#define ERR_NOT_FLOAT "ERR value is not a valid float"
#define ERR_OVERFLOW "ERR increment or decrement would overflow"
#define ERR_NO_KEY "ERR no such key"
#define ERR_OOM "OOM command not allowed when used memory > 'maxmemory'."
#define ERR_TOO_BIG "ERR string exceeds maximum allowed size (proto-max-bulk-len)"

/* Redis's proto-max-bulk-len: the longest string a command may build,
 * max_value_size capped at 512 MiB. */
#define ARG_MAX_BULK (512ll * 1024 * 1024)
long long arg_max_bulk(void);

/* An argument as a C string: Redis compares option words on the
 * NUL-terminated buffer, so bytes after a NUL are ignored ("nx\0junk" is NX). */
static inline size_t
arg_cstr_len(const struct proto_arg *a)
{
    const char *nul = a->len ? memchr(a->ptr, '\0', a->len) : NULL;
    return nul ? (size_t)(nul - a->ptr) : a->len;
}

/* An option word (case-insensitive), compared as Redis does. */
static inline bool
arg_opt_is(const struct proto_arg *a, const char *word)
{
    struct proto_arg t = {a->ptr, arg_cstr_len(a)};
    return proto_arg_is(&t, word);
}

/* Strict decimal int64 as Redis's string2ll: optional '-', no '+', no
 * spaces, no leading zeros, must fit. */
bool arg_ll(const char *p, size_t n, long long *out);
static inline bool
arg_to_ll(const struct proto_arg *a, long long *out)
{
    return arg_ll(a->ptr, a->len, out);
}
/* Long double as Redis's string2ld: strtold on the whole string, no
 * leading/trailing space, not NaN. */
bool arg_to_ld(const struct proto_arg *a, long double *out);
/* Format a long double as Redis's ld2string in humanfriendly mode (INCRBYFLOAT). */
int fmt_ld_human(char *buf, size_t len, long double v);
/* Static upper-cased copy for messages; truncated at cap. */
#define STAT_INC(x) __atomic_store_n(&(x), __atomic_load_n(&(x), __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED)
#define STAT_ADD(x, v) __atomic_store_n(&(x), __atomic_load_n(&(x), __ATOMIC_RELAXED) + (v), __ATOMIC_RELAXED)

#endif
