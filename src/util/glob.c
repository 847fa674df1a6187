/*
 * glob.c -- see glob.h.
 *
 * Iterative matcher with single-star backtracking: when a later '*' is met,
 * earlier stars never need to be revisited, so the cost is O(plen * slen)
 * in the worst case instead of exponential.
 */
#include "util/glob.h"

#include <ctype.h>

static int
fold(int c, bool nocase)
{
    return nocase ? tolower(c) : c;
}

/* Match one [...] class at pat[*pi] (pointing just past '['); on return *pi is
 * past the closing ']' (or at the end if the class is unterminated). */
static bool
match_class(const char *pat, size_t plen, size_t *pi, int c, bool nocase)
{
    size_t i = *pi;
    bool negate = false, hit = false;
    if (i < plen && pat[i] == '^') {
        negate = true;
        i++;
    }
    while (i < plen && pat[i] != ']') {
        if (pat[i] == '\\' && i + 1 < plen) {
            i++;
            if (fold((unsigned char)pat[i], nocase) == c) {
                hit = true;
            }
            i++;
        } else if (i + 2 < plen && pat[i + 1] == '-') {
            int lo = fold((unsigned char)pat[i], nocase);
            int hi = fold((unsigned char)pat[i + 2], nocase);
            if (lo > hi) {
                int t = lo;
                lo = hi;
                hi = t;
            }
            if (c >= lo && c <= hi) {
                hit = true;
            }
            i += 3;
        } else {
            if (fold((unsigned char)pat[i], nocase) == c) {
                hit = true;
            }
            i++;
        }
    }
    if (i < plen) {
        i++; /* the ']' */
    }
    *pi = i;
    return negate ? !hit : hit;
}

bool
glob_match(const char *pat, size_t plen, const char *str, size_t slen, bool nocase)
{
    size_t p = 0, s = 0;
    size_t star_p = (size_t)-1, star_s = 0;

    while (s < slen) {
        if (p < plen) {
            char pc = pat[p];
            int c = fold((unsigned char)str[s], nocase);
            if (pc == '*') {
                while (p < plen && pat[p] == '*') {
                    p++;
                }
                if (p == plen) {
                    return true;
                }
                star_p = p;
                star_s = s;
                continue;
            }
            if (pc == '?') {
                p++;
                s++;
                continue;
            }
            if (pc == '[') {
                size_t np = p + 1;
                if (match_class(pat, plen, &np, c, nocase)) {
                    p = np;
                    s++;
                    continue;
                }
            } else {
                size_t np = p;
                if (pc == '\\' && p + 1 < plen) {
                    np++;
                }
                if (fold((unsigned char)pat[np], nocase) == c) {
                    p = np + 1;
                    s++;
                    continue;
                }
            }
        }
        if (star_p == (size_t)-1) {
            return false;
        }
        p = star_p;
        s = ++star_s;
    }
    while (p < plen && pat[p] == '*') {
        p++;
    }
    return p == plen;
}
