/*
 * glob.h -- Redis-style glob matching, for KEYS, SCAN MATCH and CONFIG GET.
 *
 * Supports * ? [abc] [^abc] [a-z] and backslash escapes, on binary-safe
 * strings, like Redis's stringmatchlen(). Matching is bounded: a pattern
 * with many stars cannot make it take exponential time.
 */
#ifndef CRAB_UTIL_GLOB_H
#define CRAB_UTIL_GLOB_H

#include <stdbool.h>
#include <stddef.h>

bool glob_match(const char *pat, size_t plen, const char *str, size_t slen, bool nocase);

#endif
