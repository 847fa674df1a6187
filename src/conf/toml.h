/*
 * toml.h -- a small, strict TOML reader: text in, a tree of values out.
 *
 * Supported (TOML 1.0 subset): comments; [table] and [a.b."c"] headers;
 * bare, quoted and dotted keys; basic and literal strings, single- and
 * multi-line, with every TOML 1.0 escape; integers (decimal with _ separators,
 * 0x / 0o / 0b); floats (fraction, exponent, inf, nan); booleans; arrays
 * (multi-line, nested, mixed); inline tables. LF or CRLF line ends.
 *
 * Rejected with "name:line: message": dates and times, arrays of tables
 * ([[x]]), duplicate keys, tables defined twice, extending inline tables or
 * tables defined by dotted keys, invalid UTF-8, control characters, integers
 * out of the int64 range, nesting deeper than TOML_MAX_DEPTH, and anything
 * else that is not TOML.
 *
 * The tree is plain data: walk it through the structs below. Every value
 * carries the line it starts on (for tables: the header line, or the line of
 * the first key that created them). Strings are NUL-terminated and also carry
 * their length (a "\u0000" escape may put a NUL inside). Keys never contain
 * NUL (rejected). Parsing never crashes or reads out of bounds on any input;
 * it is fuzzed (tests/fuzz/fuzz_toml.c).
 *
 * Thread-safety: no global state; a tree may be read by several threads.
 */
#ifndef CRAB_CONF_TOML_H
#define CRAB_CONF_TOML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TOML_MAX_DEPTH 32     /* nesting of arrays / inline tables */
#define TOML_MAX_KEY_PARTS 32 /* parts of one dotted key or header */
#define TOML_MAX_SIZE (16u << 20) /* largest document accepted, bytes */

enum toml_type {
    TOML_TABLE = 1,
    TOML_ARRAY,
    TOML_STRING,
    TOML_INTEGER,
    TOML_FLOAT,
    TOML_BOOLEAN,
};

struct toml_value;

/* One key = value pair of a table. */
struct toml_pair {
    char *key;                /* one key part (not dotted), NUL-terminated */
    int line;                 /* line of the key */
    struct toml_value *value; /* owned by the tree */
};

struct toml_value {
    enum toml_type type;
    int line;       /* line where this value starts (1-based) */
    unsigned flags; /* parser bookkeeping; not for callers */
    union {
        struct {
            char *ptr; /* NUL-terminated */
            size_t len;
        } str;
        int64_t i;
        double f;
        bool b;
        struct {
            struct toml_pair *pairs; /* in document order */
            size_t n, cap;
        } table;
        struct {
            struct toml_value **items;
            size_t n, cap;
        } array;
    } u;
};

/*
 * Parse len bytes of data (need not be NUL-terminated). name is used in
 * messages ("name:line: ..."; NULL means "<input>"). Returns the root table,
 * owned by the caller (free with toml_free), or NULL with a one-line message
 * in err (errlen bytes, always NUL-terminated when errlen > 0).
 */
struct toml_value *toml_parse(const char *data, size_t len, const char *name,
                              char *err, size_t errlen);

/*
 * Read and parse the file at path. Same contract as toml_parse; a file that
 * cannot be read gives "path: cannot read: <strerror>".
 */
struct toml_value *toml_parse_file(const char *path, char *err, size_t errlen);

/* Free a tree returned by toml_parse*; NULL is fine. */
void toml_free(struct toml_value *v);

/* The value of key in table t (one key part, exact), or NULL when t is not a
 * table or has no such key. */
const struct toml_value *toml_get(const struct toml_value *t, const char *key);

/* Follow a dotted path of bare key parts ("wal.sync_policy") from t; NULL when
 * any part is missing or not a table. */
const struct toml_value *toml_get_path(const struct toml_value *t, const char *path);

/* "table", "array", "string", "integer", "float", "boolean". */
const char *toml_type_name(enum toml_type type);

#endif
