/*
 * hex.h -- the value of one hexadecimal digit, for the parsers that read
 * \xHH escapes (RESP inline commands, the native protocol's quoted tokens)
 * and hex numbers (TOML).
 */
#ifndef CRAB_UTIL_HEX_H
#define CRAB_UTIL_HEX_H

/* 0..15 for '0'-'9', 'a'-'f', 'A'-'F'; -1 for anything else. */
static inline int
hex_digit(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c |= 0x20;
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

#endif
