/*
 * toml.c -- the TOML reader (see toml.h for the subset).
 *
 * Design: a single-pass recursive-descent parser over a bounds-checked
 * cursor (p < end is tested before every read; the input need not be
 * NUL-terminated). The whole document is first checked to be valid UTF-8, so
 * later stages only have to care about ASCII structure. Values are built
 * straight into the tree; tables remember how they came to exist
 * (header, implied by a header, dotted keys, inline) so the TOML rules
 * against redefinition can be enforced with a flag test. The first error
 * wins: it is formatted once as "name:line: message" and every caller just
 * unwinds with -1, freeing what it owned. Recursion is bounded by
 * TOML_MAX_DEPTH and TOML_MAX_KEY_PARTS.
 */
#include "conf/toml.h"

#include "util/mem.h"
#include "util/hex.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How a table came to exist (toml_value.flags). */
#define TF_EXPLICIT 0x1u /* [header] */
#define TF_IMPLICIT 0x2u /* parent of a [header], not yet defined itself */
#define TF_DOTTED 0x4u   /* created by a dotted key a.b = v */
#define TF_INLINE 0x8u   /* inline table { ... }: sealed */

struct parser {
    const char *p, *end;
    const char *name;
    int line;
    int depth;
    char *err;
    size_t errlen;
    bool failed;
    struct toml_value *root, *cur;
};

struct keypath {
    char *part[TOML_MAX_KEY_PARTS];
    int n;
};

static int parse_value(struct parser *ps, struct toml_value **out);

/* ----- errors and small helpers ----------------------------------------- */

static int perr(struct parser *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
perr(struct parser *ps, const char *fmt, ...)
{
    if (!ps->failed && ps->errlen > 0) {
        int n = snprintf(ps->err, ps->errlen, "%s:%d: ", ps->name, ps->line);
        if (n >= 0 && (size_t)n < ps->errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(ps->err + n, ps->errlen - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    ps->failed = true;
    return -1;
}

static bool
at_eof(const struct parser *ps)
{
    return ps->p >= ps->end;
}

static int
peek(const struct parser *ps, size_t off)
{
    if ((size_t)(ps->end - ps->p) <= off) {
        return -1;
    }
    return (unsigned char)ps->p[off];
}

static void
skip_ws(struct parser *ps)
{
    while (!at_eof(ps) && (*ps->p == ' ' || *ps->p == '\t')) {
        ps->p++;
    }
}

/* True (and consumed) when the cursor is at "\n" or "\r\n". */
static bool
eat_newline(struct parser *ps)
{
    if (peek(ps, 0) == '\n') {
        ps->p++;
        ps->line++;
        return true;
    }
    if (peek(ps, 0) == '\r' && peek(ps, 1) == '\n') {
        ps->p += 2;
        ps->line++;
        return true;
    }
    return false;
}

static bool
is_control(int c)
{
    return (c >= 0 && c < 0x20 && c != '\t') || c == 0x7f;
}

/* Skip a comment starting at '#', up to (not including) the newline. */
static int
skip_comment(struct parser *ps)
{
    while (!at_eof(ps) && *ps->p != '\n') {
        int c = (unsigned char)*ps->p;
        if (c == '\r' && peek(ps, 1) == '\n') {
            break;
        }
        if (is_control(c)) {
            return perr(ps, "control character 0x%02x in comment", c);
        }
        ps->p++;
    }
    return 0;
}

/* Skip whitespace, newlines and comments (inside arrays). */
static int
skip_ws_nl_comments(struct parser *ps)
{
    for (;;) {
        skip_ws(ps);
        if (peek(ps, 0) == '#') {
            if (skip_comment(ps) < 0) {
                return -1;
            }
        }
        if (!eat_newline(ps)) {
            if (peek(ps, 0) == '\r') {
                return perr(ps, "carriage return not followed by a newline");
            }
            return 0;
        }
    }
}

/* Check the whole input is UTF-8 (no overlongs, surrogates or > U+10FFFF). */
static int
check_utf8(struct parser *ps)
{
    const unsigned char *s = (const unsigned char *)ps->p;
    const unsigned char *e = (const unsigned char *)ps->end;
    int line = 1;
    while (s < e) {
        unsigned c = *s;
        size_t n;
        unsigned cp, min;
        if (c == '\n') {
            line++;
        }
        if (c < 0x80) {
            s++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            n = 1, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            n = 2, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            n = 3, cp = c & 0x07, min = 0x10000;
        } else {
            goto bad;
        }
        if ((size_t)(e - s) <= n) {
            goto bad;
        }
        for (size_t i = 1; i <= n; i++) {
            if ((s[i] & 0xc0) != 0x80) {
                goto bad;
            }
            cp = (cp << 6) | (s[i] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            goto bad;
        }
        s += n + 1;
    }
    return 0;
bad:
    ps->line = line;
    return perr(ps, "invalid UTF-8 byte sequence");
}

/* ----- tree building ---------------------------------------------------- */

static struct toml_value *
value_new(enum toml_type type, int line)
{
    struct toml_value *v = xcalloc(1, sizeof(*v));
    v->type = type;
    v->line = line;
    return v;
}

void
toml_free(struct toml_value *v)
{
    if (v == NULL) {
        return;
    }
    switch (v->type) {
    case TOML_STRING:
        free(v->u.str.ptr);
        break;
    case TOML_TABLE:
        for (size_t i = 0; i < v->u.table.n; i++) {
            free(v->u.table.pairs[i].key);
            toml_free(v->u.table.pairs[i].value);
        }
        free(v->u.table.pairs);
        break;
    case TOML_ARRAY:
        for (size_t i = 0; i < v->u.array.n; i++) {
            toml_free(v->u.array.items[i]);
        }
        free(v->u.array.items);
        break;
    default:
        break;
    }
    free(v);
}

static struct toml_pair *
table_find(const struct toml_value *t, const char *key)
{
    for (size_t i = 0; i < t->u.table.n; i++) {
        if (strcmp(t->u.table.pairs[i].key, key) == 0) {
            return &t->u.table.pairs[i];
        }
    }
    return NULL;
}

/* Append key = v to table t (key is copied, v is taken). */
static void
table_add(struct toml_value *t, const char *key, int line, struct toml_value *v)
{
    if (t->u.table.n == t->u.table.cap) {
        t->u.table.cap = t->u.table.cap ? t->u.table.cap * 2 : 8;
        t->u.table.pairs = xrealloc(t->u.table.pairs, t->u.table.cap * sizeof(struct toml_pair));
    }
    struct toml_pair *pr = &t->u.table.pairs[t->u.table.n++];
    pr->key = xstrdup(key);
    pr->line = line;
    pr->value = v;
}

static void
array_add(struct toml_value *a, struct toml_value *v)
{
    if (a->u.array.n == a->u.array.cap) {
        a->u.array.cap = a->u.array.cap ? a->u.array.cap * 2 : 4;
        a->u.array.items = xrealloc(a->u.array.items, a->u.array.cap * sizeof(*a->u.array.items));
    }
    a->u.array.items[a->u.array.n++] = v;
}

/* Mark an inline table and the sub-tables its dotted keys created as sealed. */
static void
seal_inline(struct toml_value *t)
{
    t->flags |= TF_INLINE;
    for (size_t i = 0; i < t->u.table.n; i++) {
        struct toml_value *c = t->u.table.pairs[i].value;
        if (c->type == TOML_TABLE && (c->flags & TF_DOTTED)) {
            seal_inline(c);
        }
    }
}

/* ----- strings ---------------------------------------------------------- */

struct sbuf {
    char *s;
    size_t len, cap;
};

static void
sbuf_put(struct sbuf *b, const char *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 32;
        while (cap < b->len + n + 1) {
            cap *= 2;
        }
        b->s = xrealloc(b->s, cap);
        b->cap = cap;
    }
    memcpy(b->s + b->len, p, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void
sbuf_put_utf8(struct sbuf *b, unsigned cp)
{
    char o[4];
    size_t n;
    if (cp < 0x80) {
        o[0] = (char)cp, n = 1;
    } else if (cp < 0x800) {
        o[0] = (char)(0xc0 | (cp >> 6)), o[1] = (char)(0x80 | (cp & 0x3f)), n = 2;
    } else if (cp < 0x10000) {
        o[0] = (char)(0xe0 | (cp >> 12)), o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f)), n = 3;
    } else {
        o[0] = (char)(0xf0 | (cp >> 18)), o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        o[2] = (char)(0x80 | ((cp >> 6) & 0x3f)), o[3] = (char)(0x80 | (cp & 0x3f)), n = 4;
    }
    sbuf_put(b, o, n);
}

/* An escape after '\' in a basic string (the backslash already consumed). */
static int
parse_escape(struct parser *ps, struct sbuf *b)
{
    int c = peek(ps, 0);
    const char *simple = NULL;
    switch (c) {
    case 'b': simple = "\b"; break;
    case 't': simple = "\t"; break;
    case 'n': simple = "\n"; break;
    case 'f': simple = "\f"; break;
    case 'r': simple = "\r"; break;
    case '"': simple = "\""; break;
    case '\\': simple = "\\"; break;
    case 'u':
    case 'U': {
        int digits = c == 'u' ? 4 : 8;
        unsigned cp = 0;
        for (int i = 1; i <= digits; i++) {
            int h = hex_digit(peek(ps, (size_t)i));
            if (h < 0) {
                return perr(ps, "\\%c escape needs %d hex digits", c, digits);
            }
            cp = (cp << 4) | (unsigned)h;
        }
        if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            return perr(ps, "\\%c escape is not a Unicode scalar value", c);
        }
        ps->p += 1 + digits;
        sbuf_put_utf8(b, cp);
        return 0;
    }
    default:
        if (c < 0x20 || c >= 0x7f) {
            return perr(ps, "invalid escape sequence in string");
        }
        return perr(ps, "invalid escape sequence \\%c in string", c);
    }
    ps->p++;
    sbuf_put(b, simple, 1);
    return 0;
}

/*
 * A string at the cursor (which is at its opening quote). allow_multi is false
 * for keys. On success *out is a NUL-terminated heap string, *outlen its length.
 */
static int
parse_string(struct parser *ps, bool allow_multi, char **out, size_t *outlen)
{
    char q = *ps->p;
    bool literal = q == '\'';
    bool multi = peek(ps, 1) == q && peek(ps, 2) == q;
    struct sbuf b = {0};
    int start_line = ps->line;

    if (multi && !allow_multi) {
        return perr(ps, "multi-line strings cannot be keys");
    }
    sbuf_put(&b, "", 0);
    if (multi) {
        ps->p += 3;
        eat_newline(ps); /* a newline right after the opening quotes is trimmed */
    } else {
        ps->p++;
    }
    for (;;) {
        if (at_eof(ps)) {
            ps->line = start_line;
            free(b.s);
            return perr(ps, "unterminated string");
        }
        int c = (unsigned char)*ps->p;
        if (c == q) {
            if (!multi) {
                ps->p++;
                break;
            }
            size_t nq = 0;
            while (peek(ps, nq) == q) {
                nq++;
            }
            if (nq >= 3) {
                if (nq > 5) {
                    free(b.s);
                    return perr(ps, "too many quotes at the end of a multi-line string");
                }
                sbuf_put(&b, ps->p, nq - 3);
                ps->p += nq;
                break;
            }
            sbuf_put(&b, ps->p, nq);
            ps->p += nq;
            continue;
        }
        if (c == '\n' || c == '\r') {
            if (!multi) {
                free(b.s);
                return perr(ps, "unterminated string (newline before the closing quote)");
            }
            if (!eat_newline(ps)) {
                free(b.s);
                return perr(ps, "carriage return not followed by a newline");
            }
            sbuf_put(&b, "\n", 1);
            continue;
        }
        if (is_control(c)) {
            free(b.s);
            return perr(ps, "control character 0x%02x in string", c);
        }
        if (c == '\\' && !literal) {
            ps->p++;
            if (multi) {
                /* line-ending backslash: trim whitespace and newlines after it */
                const char *save = ps->p;
                skip_ws(ps);
                if (peek(ps, 0) == '\n' || (peek(ps, 0) == '\r' && peek(ps, 1) == '\n')) {
                    while (!at_eof(ps)) {
                        skip_ws(ps);
                        if (!eat_newline(ps)) {
                            break;
                        }
                    }
                    continue;
                }
                ps->p = save;
            }
            if (parse_escape(ps, &b) < 0) {
                free(b.s);
                return -1;
            }
            continue;
        }
        sbuf_put(&b, ps->p, 1);
        ps->p++;
    }
    *out = b.s;
    *outlen = b.len;
    return 0;
}

/* ----- keys ------------------------------------------------------------- */

static bool
is_bare(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-';
}

static void
keypath_free(struct keypath *k)
{
    for (int i = 0; i < k->n; i++) {
        free(k->part[i]);
    }
    k->n = 0;
}

/* A (possibly dotted) key at the cursor. On error k is freed. */
static int
parse_key(struct parser *ps, struct keypath *k)
{
    k->n = 0;
    for (;;) {
        char *part;
        size_t len;
        skip_ws(ps);
        int c = peek(ps, 0);
        if (k->n == TOML_MAX_KEY_PARTS) {
            keypath_free(k);
            return perr(ps, "key has more than %d parts", TOML_MAX_KEY_PARTS);
        }
        if (c == '"' || c == '\'') {
            if (parse_string(ps, false, &part, &len) < 0) {
                keypath_free(k);
                return -1;
            }
            if (strlen(part) != len) {
                free(part);
                keypath_free(k);
                return perr(ps, "key contains a NUL character");
            }
        } else if (c >= 0 && is_bare(c)) {
            const char *s = ps->p;
            while (!at_eof(ps) && is_bare((unsigned char)*ps->p)) {
                ps->p++;
            }
            part = xstrndup(s, (size_t)(ps->p - s));
        } else {
            keypath_free(k);
            if (c < 0 || c == '\n' || c == '\r') {
                return perr(ps, "expected a key");
            }
            if (c == '=') {
                return perr(ps, "missing key before '='");
            }
            if (c < 0x20 || c >= 0x7f) {
                return perr(ps, "invalid character in key");
            }
            return perr(ps, "invalid character '%c' in key (quote keys that are not A-Za-z0-9_-)", c);
        }
        k->part[k->n++] = part;
        skip_ws(ps);
        if (peek(ps, 0) != '.') {
            return 0;
        }
        ps->p++;
    }
}

/* Insert value v under the dotted key k of table t. Takes v. */
static int
insert_keyval(struct parser *ps, struct toml_value *t, struct keypath *k, int line,
              struct toml_value *v)
{
    for (int i = 0; i < k->n - 1; i++) {
        struct toml_pair *pr = table_find(t, k->part[i]);
        if (pr == NULL) {
            struct toml_value *nt = value_new(TOML_TABLE, line);
            nt->flags = TF_DOTTED;
            table_add(t, k->part[i], line, nt);
            t = nt;
            continue;
        }
        struct toml_value *c = pr->value;
        if (c->type != TOML_TABLE) {
            toml_free(v);
            return perr(ps, "key '%s' is already a %s (line %d), not a table", k->part[i],
                        toml_type_name(c->type), pr->line);
        }
        if (c->flags & TF_INLINE) {
            toml_free(v);
            return perr(ps, "cannot add keys to inline table '%s' (line %d)", k->part[i], c->line);
        }
        if (!(c->flags & TF_DOTTED)) {
            toml_free(v);
            return perr(ps, "cannot add keys to table '%s' (line %d) with a dotted key", k->part[i],
                        c->line);
        }
        t = c;
    }
    const char *last = k->part[k->n - 1];
    struct toml_pair *pr = table_find(t, last);
    if (pr != NULL) {
        toml_free(v);
        return perr(ps, "duplicate key '%s' (first defined at line %d)", last, pr->line);
    }
    table_add(t, last, line, v);
    return 0;
}

/* ----- numbers and other scalars ---------------------------------------- */

static bool
is_digit_in(int c, int base)
{
    int h = hex_digit(c);
    return h >= 0 && h < base;
}

/* Check digits-with-underscores s[0..n) in base; returns false if malformed. */
static bool
digits_ok(const char *s, size_t n, int base)
{
    if (n == 0 || !is_digit_in((unsigned char)s[0], base) ||
        !is_digit_in((unsigned char)s[n - 1], base)) {
        return false;
    }
    for (size_t i = 1; i < n; i++) {
        if (s[i] == '_') {
            if (!is_digit_in((unsigned char)s[i + 1], base) ||
                !is_digit_in((unsigned char)s[i - 1], base)) {
                return false;
            }
        } else if (!is_digit_in((unsigned char)s[i], base)) {
            return false;
        }
    }
    return true;
}

static int
parse_number(struct parser *ps, struct toml_value **out)
{
    char tok[128], clean[128];
    size_t n = 0, m = 0;
    while (!at_eof(ps)) {
        int c = (unsigned char)*ps->p;
        if (!(is_bare(c) || c == '.' || c == '+' || c == ':')) {
            break;
        }
        if (n == sizeof(tok) - 1) {
            return perr(ps, "number too long");
        }
        tok[n++] = (char)c;
        ps->p++;
    }
    tok[n] = '\0';
    if (n == 0) {
        return perr(ps, "expected a value");
    }
    if (strchr(tok, ':') != NULL || (n >= 5 && tok[4] == '-' && is_digit_in(tok[0], 10) &&
                                      is_digit_in(tok[1], 10) && is_digit_in(tok[2], 10) &&
                                      is_digit_in(tok[3], 10))) {
        return perr(ps, "dates and times are not supported");
    }
    const char *s = tok;
    bool neg = false;
    if (*s == '+' || *s == '-') {
        neg = *s == '-';
        s++;
    }
    if (strcmp(s, "inf") == 0 || strcmp(s, "nan") == 0) {
        struct toml_value *v = value_new(TOML_FLOAT, ps->line);
        v->u.f = s[0] == 'i' ? (neg ? -HUGE_VAL : HUGE_VAL) : (neg ? -NAN : NAN);
        *out = v;
        return 0;
    }
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'o' || s[1] == 'b')) {
        int base = s[1] == 'x' ? 16 : s[1] == 'o' ? 8 : 2;
        if (s != tok) {
            return perr(ps, "a sign is not allowed on hex, octal or binary integers");
        }
        s += 2;
        if (!digits_ok(s, strlen(s), base)) {
            return perr(ps, "invalid %s integer '%s'",
                        base == 16 ? "hexadecimal" : base == 8 ? "octal" : "binary", tok);
        }
        uint64_t u = 0;
        for (; *s; s++) {
            if (*s == '_') {
                continue;
            }
            if (u > (UINT64_MAX >> 4) || ((u * (uint64_t)base) + (uint64_t)hex_digit(*s)) > INT64_MAX) {
                return perr(ps, "integer '%s' is out of range", tok);
            }
            u = u * (uint64_t)base + (uint64_t)hex_digit(*s);
        }
        struct toml_value *v = value_new(TOML_INTEGER, ps->line);
        v->u.i = (int64_t)u;
        *out = v;
        return 0;
    }
    /* decimal: int [frac] [exp] */
    const char *ip = s;
    size_t il = strcspn(ip, ".eE");
    if (!digits_ok(ip, il, 10)) {
        return perr(ps, "invalid number '%s'", tok);
    }
    if (il > 1 && ip[0] == '0') {
        return perr(ps, "leading zeros are not allowed in '%s'", tok);
    }
    const char *r = ip + il;
    bool is_float = false;
    if (*r == '.') {
        size_t fl = strcspn(r + 1, "eE");
        if (!digits_ok(r + 1, fl, 10)) {
            return perr(ps, "invalid float '%s'", tok);
        }
        r += 1 + fl;
        is_float = true;
    }
    if (*r == 'e' || *r == 'E') {
        const char *e = r + 1;
        if (*e == '+' || *e == '-') {
            e++;
        }
        if (!digits_ok(e, strlen(e), 10)) {
            return perr(ps, "invalid float '%s'", tok);
        }
        r = e + strlen(e);
        is_float = true;
    }
    if (*r != '\0') {
        return perr(ps, "invalid number '%s'", tok);
    }
    for (size_t i = 0; i < n; i++) {
        if (tok[i] != '_') {
            clean[m++] = tok[i];
        }
    }
    clean[m] = '\0';
    struct toml_value *v;
    errno = 0;
    if (is_float) {
        double d = strtod(clean, NULL);
        if (errno == ERANGE && (d == HUGE_VAL || d == -HUGE_VAL)) {
            return perr(ps, "float '%s' is out of range", tok);
        }
        v = value_new(TOML_FLOAT, ps->line);
        v->u.f = d;
    } else {
        long long ll = strtoll(clean, NULL, 10);
        if (errno == ERANGE) {
            return perr(ps, "integer '%s' is out of range", tok);
        }
        v = value_new(TOML_INTEGER, ps->line);
        v->u.i = ll;
    }
    *out = v;
    return 0;
}

/* true / false: the word must end at a delimiter. */
static int
parse_bool(struct parser *ps, struct toml_value **out)
{
    bool val;
    size_t n;
    if ((size_t)(ps->end - ps->p) >= 4 && memcmp(ps->p, "true", 4) == 0) {
        val = true, n = 4;
    } else if ((size_t)(ps->end - ps->p) >= 5 && memcmp(ps->p, "false", 5) == 0) {
        val = false, n = 5;
    } else {
        return perr(ps, "invalid value (strings must be quoted)");
    }
    int c = peek(ps, n);
    if (c >= 0 && (is_bare(c) || c == '.')) {
        return perr(ps, "invalid value (strings must be quoted)");
    }
    ps->p += n;
    struct toml_value *v = value_new(TOML_BOOLEAN, ps->line);
    v->u.b = val;
    *out = v;
    return 0;
}

/* ----- arrays and inline tables ----------------------------------------- */

static int
parse_array(struct parser *ps, struct toml_value **out)
{
    struct toml_value *a = value_new(TOML_ARRAY, ps->line);
    ps->p++; /* [ */
    for (;;) {
        if (skip_ws_nl_comments(ps) < 0) {
            goto fail;
        }
        if (peek(ps, 0) == ']') {
            ps->p++;
            break;
        }
        struct toml_value *item;
        if (parse_value(ps, &item) < 0) {
            goto fail;
        }
        array_add(a, item);
        if (skip_ws_nl_comments(ps) < 0) {
            goto fail;
        }
        int c = peek(ps, 0);
        if (c == ',') {
            ps->p++;
        } else if (c == ']') {
            ps->p++;
            break;
        } else {
            perr(ps, c < 0 ? "unterminated array" : "expected ',' or ']' in array");
            goto fail;
        }
    }
    *out = a;
    return 0;
fail:
    toml_free(a);
    return -1;
}

static int
parse_inline_table(struct parser *ps, struct toml_value **out)
{
    struct toml_value *t = value_new(TOML_TABLE, ps->line);
    ps->p++; /* { */
    skip_ws(ps);
    if (peek(ps, 0) == '}') {
        ps->p++;
        goto done;
    }
    for (;;) {
        struct keypath k;
        struct toml_value *v;
        int line = ps->line;
        if (parse_key(ps, &k) < 0) {
            goto fail;
        }
        if (peek(ps, 0) != '=') {
            keypath_free(&k);
            perr(ps, "expected '=' after key in inline table");
            goto fail;
        }
        ps->p++;
        skip_ws(ps);
        if (parse_value(ps, &v) < 0) {
            keypath_free(&k);
            goto fail;
        }
        int rc = insert_keyval(ps, t, &k, line, v);
        keypath_free(&k);
        if (rc < 0) {
            goto fail;
        }
        skip_ws(ps);
        int c = peek(ps, 0);
        if (c == ',') {
            ps->p++;
            skip_ws(ps);
            if (peek(ps, 0) == '}') {
                perr(ps, "trailing comma in inline table");
                goto fail;
            }
        } else if (c == '}') {
            ps->p++;
            break;
        } else {
            perr(ps, c == '\n' || c == '\r' ? "newline in inline table"
                     : c < 0           ? "unterminated inline table"
                                       : "expected ',' or '}' in inline table");
            goto fail;
        }
    }
done:
    seal_inline(t);
    *out = t;
    return 0;
fail:
    toml_free(t);
    return -1;
}

static int
parse_value(struct parser *ps, struct toml_value **out)
{
    int c = peek(ps, 0);
    int rc;
    if (ps->depth >= TOML_MAX_DEPTH) {
        return perr(ps, "values nested deeper than %d levels", TOML_MAX_DEPTH);
    }
    ps->depth++;
    if (c == '"' || c == '\'') {
        int line = ps->line;
        char *s;
        size_t len;
        rc = parse_string(ps, true, &s, &len);
        if (rc == 0) {
            struct toml_value *v = value_new(TOML_STRING, line);
            v->u.str.ptr = s;
            v->u.str.len = len;
            *out = v;
        }
    } else if (c == 't' || c == 'f') {
        rc = parse_bool(ps, out);
    } else if (c == '[') {
        rc = parse_array(ps, out);
    } else if (c == '{') {
        rc = parse_inline_table(ps, out);
    } else if (c == '+' || c == '-' || c == 'i' || c == 'n' || (c >= '0' && c <= '9')) {
        rc = parse_number(ps, out);
    } else if (c < 0 || c == '\n' || c == '\r' || c == '#') {
        rc = perr(ps, "missing value");
    } else {
        rc = perr(ps, "invalid value (strings must be quoted)");
    }
    ps->depth--;
    return rc;
}

/* ----- top level -------------------------------------------------------- */

static int
parse_header(struct parser *ps)
{
    struct keypath k;
    int line = ps->line;
    if (peek(ps, 1) == '[') {
        return perr(ps, "arrays of tables ([[...]]) are not supported");
    }
    ps->p++;
    if (parse_key(ps, &k) < 0) {
        return -1;
    }
    if (peek(ps, 0) != ']') {
        keypath_free(&k);
        return perr(ps, "expected ']' at the end of the table header");
    }
    ps->p++;
    struct toml_value *t = ps->root;
    for (int i = 0; i < k.n; i++) {
        bool last = i == k.n - 1;
        struct toml_pair *pr = table_find(t, k.part[i]);
        if (pr == NULL) {
            struct toml_value *nt = value_new(TOML_TABLE, line);
            nt->flags = last ? TF_EXPLICIT : TF_IMPLICIT;
            table_add(t, k.part[i], line, nt);
            t = nt;
            continue;
        }
        struct toml_value *c = pr->value;
        if (c->type != TOML_TABLE) {
            int rc = perr(ps, "key '%s' is already a %s (line %d), not a table", k.part[i],
                          toml_type_name(c->type), pr->line);
            keypath_free(&k);
            return rc;
        }
        if (c->flags & TF_INLINE) {
            int rc = perr(ps, "cannot extend inline table '%s' (line %d)", k.part[i], c->line);
            keypath_free(&k);
            return rc;
        }
        if (last) {
            if (c->flags & (TF_EXPLICIT | TF_DOTTED)) {
                int rc = perr(ps, "table '%s' is defined twice (first at line %d)", k.part[i],
                              c->line);
                keypath_free(&k);
                return rc;
            }
            c->flags = TF_EXPLICIT;
            c->line = line;
        }
        t = c;
    }
    keypath_free(&k);
    ps->cur = t;
    return 0;
}

static int
parse_keyval_line(struct parser *ps)
{
    struct keypath k;
    struct toml_value *v;
    int line = ps->line;
    if (parse_key(ps, &k) < 0) {
        return -1;
    }
    if (peek(ps, 0) != '=') {
        int c = peek(ps, 0);
        keypath_free(&k);
        if (c >= 0x80 || (c >= 0 && c < 0x20 && c != '\n' && c != '\r' && c != '\t')) {
            return perr(ps, "invalid character in key");
        }
        return perr(ps, "expected '=' after key");
    }
    ps->p++;
    skip_ws(ps);
    if (parse_value(ps, &v) < 0) {
        keypath_free(&k);
        return -1;
    }
    int rc = insert_keyval(ps, ps->cur, &k, line, v);
    keypath_free(&k);
    return rc;
}

static int
parse_document(struct parser *ps)
{
    if (check_utf8(ps) < 0) {
        return -1;
    }
    if (ps->end - ps->p >= 3 && memcmp(ps->p, "\xEF\xBB\xBF", 3) == 0) {
        ps->p += 3; /* byte order mark */
    }
    while (!at_eof(ps)) {
        skip_ws(ps);
        int c = peek(ps, 0);
        if (c < 0) {
            break;
        }
        if (c == '[') {
            if (parse_header(ps) < 0) {
                return -1;
            }
        } else if (c != '#' && c != '\n' && c != '\r') {
            if (parse_keyval_line(ps) < 0) {
                return -1;
            }
        }
        skip_ws(ps);
        if (peek(ps, 0) == '#' && skip_comment(ps) < 0) {
            return -1;
        }
        if (at_eof(ps)) {
            break;
        }
        if (!eat_newline(ps)) {
            if (peek(ps, 0) == '\r') {
                return perr(ps, "carriage return not followed by a newline");
            }
            return perr(ps, "unexpected text after the value (expected a newline)");
        }
    }
    return 0;
}

struct toml_value *
toml_parse(const char *data, size_t len, const char *name, char *err, size_t errlen)
{
    struct parser ps = {
        .p = data, .end = data + len, .name = name ? name : "<input>", .line = 1,
        .err = err, .errlen = errlen,
    };
    if (errlen > 0) {
        err[0] = '\0';
    }
    if (len > TOML_MAX_SIZE) {
        perr(&ps, "document larger than %u bytes", TOML_MAX_SIZE);
        return NULL;
    }
    ps.root = value_new(TOML_TABLE, 1);
    ps.root->flags = TF_EXPLICIT;
    ps.cur = ps.root;
    if (parse_document(&ps) < 0) {
        toml_free(ps.root);
        return NULL;
    }
    return ps.root;
}

struct toml_value *
toml_parse_file(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    struct sbuf b = {0};
    char chunk[8192];
    size_t n;
    if (f == NULL) {
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        return NULL;
    }
    sbuf_put(&b, "", 0);
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        sbuf_put(&b, chunk, n);
        if (b.len > TOML_MAX_SIZE) {
            break;
        }
    }
    if (ferror(f)) {
        int e = errno;
        fclose(f);
        free(b.s);
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(e ? e : EIO));
        return NULL;
    }
    fclose(f);
    struct toml_value *root = toml_parse(b.s, b.len, path, err, errlen);
    free(b.s);
    return root;
}

/* ----- lookups ---------------------------------------------------------- */

const struct toml_value *
toml_get(const struct toml_value *t, const char *key)
{
    if (t == NULL || t->type != TOML_TABLE) {
        return NULL;
    }
    struct toml_pair *pr = table_find(t, key);
    return pr ? pr->value : NULL;
}

const struct toml_value *
toml_get_path(const struct toml_value *t, const char *path)
{
    char part[256];
    while (t != NULL) {
        size_t n = strcspn(path, ".");
        if (n >= sizeof(part)) {
            return NULL;
        }
        memcpy(part, path, n);
        part[n] = '\0';
        t = toml_get(t, part);
        if (path[n] == '\0') {
            return t;
        }
        path += n + 1;
    }
    return NULL;
}

const char *
toml_type_name(enum toml_type type)
{
    switch (type) {
    case TOML_TABLE: return "table";
    case TOML_ARRAY: return "array";
    case TOML_STRING: return "string";
    case TOML_INTEGER: return "integer";
    case TOML_FLOAT: return "float";
    case TOML_BOOLEAN: return "boolean";
    }
    return "value";
}
