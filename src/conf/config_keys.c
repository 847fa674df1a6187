/*
 * config_keys.c -- the key table made concrete, and everything about one
 * value: parsing it from text or TOML, range checks, storing it into struct
 * config, formatting it back, finding a key by any of its names.
 *
 * Design: config_keys.def is expanded once into conf__keys[]; every value
 * passes through conf__parse_* into a struct conf_val, is range-checked
 * there, then stored with conf__store. Defaults go through the same text
 * parser as environment variables, so a default can never be a value users
 * could not type. Messages name no key: callers prefix "where: key: ".
 */
#include "conf/config_int.h"

#include "util/mem.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ----- enums ------------------------------------------------------------ */

/* Values follow enum log_level (util/log.h). */
const struct conf_enum conf__enum_log_level = {
    "debug|info|warn|error",
    {"debug", "info", "warn", "error", NULL},
    {"warning", "warn", "trace", "debug", "verbose", "debug", "notice", "info", NULL},
};
const struct conf_enum conf__enum_log_format = {"json|text", {"json", "text", NULL}, {"pretty", "text", NULL}};
const struct conf_enum conf__enum_policy = {
    "tinylfu|lru|noeviction",
    {"tinylfu", "lru", "noeviction", NULL},
    {"w-tinylfu", "tinylfu", "allkeys-lfu", "tinylfu", "volatile-lfu", "tinylfu", "allkeys-lru", "lru",
     "volatile-lru", "lru", NULL},
};
const struct conf_enum conf__enum_strategy = {"gradual|batch", {"gradual", "batch", NULL}, {NULL}};
const struct conf_enum conf__enum_sync = {
    "none|async|sync",
    {"none", "async", "sync", NULL},
    {"no", "none", "everysec", "async", "always", "sync", NULL},
};
const struct conf_enum conf__enum_read = {
    "round_robin|weighted|resource_based|adaptive",
    {"round_robin", "weighted", "resource_based", "adaptive", NULL},
    {"round-robin", "round_robin", "resource-based", "resource_based", NULL},
};

/* ----- the table -------------------------------------------------------- */

const struct conf_key conf__keys[CONFIG_KEY_COUNT] = {
#define CONF_KEY(id, field, name, type, choices, min, max, flags, def, redis, aliases, env, check, \
                 help)                                                                           \
    [CONFIG_KEY_##id] = {name, type, choices, min, max, flags, def, redis, aliases, env, check,    \
                         help, offsetof(struct config, field)},
#include "conf/config_keys.def"
#undef CONF_KEY
};

/* ----- names ------------------------------------------------------------ */

static int
fold(int c)
{
    c = tolower((unsigned char)c);
    return c == '-' ? '_' : c;
}

bool
conf__name_eq(const char *a, const char *b)
{
    while (*a && *b && fold(*a) == fold(*b)) {
        a++, b++;
    }
    return *a == '\0' && *b == '\0';
}

bool
conf__list_has(const char *list, const char *name)
{
    char item[128];
    while (list != NULL && *list) {
        size_t n = strcspn(list, "|");
        if (n < sizeof(item)) {
            memcpy(item, list, n);
            item[n] = '\0';
            if (conf__name_eq(item, name)) {
                return true;
            }
        }
        list += n;
        if (*list == '|') {
            list++;
        }
    }
    return false;
}

int
conf__find_exact(const char *name)
{
    for (int i = 0; i < CONFIG_KEY_COUNT; i++) {
        if (conf__name_eq(conf__keys[i].name, name) || conf__list_has(conf__keys[i].aliases, name)) {
            return i;
        }
    }
    return -1;
}

/* canonical name with '.' read as '_' ("wal_sync_policy") */
static bool
flat_eq(const char *canon, const char *name)
{
    while (*canon && *name) {
        int a = *canon == '.' ? '_' : fold(*canon);
        if (a != fold(*name)) {
            return false;
        }
        canon++, name++;
    }
    return *canon == '\0' && *name == '\0';
}

int
config_key_find(const char *name)
{
    int id = conf__find_exact(name);
    if (id >= 0) {
        return id;
    }
    for (int i = 0; i < CONFIG_KEY_COUNT; i++) {
        if ((conf__keys[i].redis && conf__name_eq(conf__keys[i].redis, name)) ||
            flat_eq(conf__keys[i].name, name)) {
            return i;
        }
    }
    if (strchr(name, '.') != NULL) {
        return -1;
    }
    int found = -1;
    for (int i = 0; i < CONFIG_KEY_COUNT; i++) {
        const char *dot = strrchr(conf__keys[i].name, '.');
        if (dot != NULL && conf__name_eq(dot + 1, name)) {
            if (found >= 0) {
                return -2;
            }
            found = i;
        }
    }
    return found;
}

/* a: lower case, '_' and '.' as '-' (into out, at most 63 bytes) */
static size_t
sugg_norm(const char *a, char *out)
{
    size_t n = 0;
    for (; *a && n < 63; a++) {
        out[n++] = *a == '_' || *a == '.' ? '-' : (char)fold(*a);
    }
    out[n] = '\0';
    return n;
}

/* Optimal string alignment distance (edits: insert, delete, substitute,
 * swap two neighbours) of a[0..n) and b[0..m), both at most 63. The
 * classic dynamic programme; names are short and this runs only on an
 * error. */
static unsigned
sugg_distance(const char *a, size_t n, const char *b, size_t m)
{
    unsigned d[64][64];
    for (size_t i = 0; i <= n; i++) {
        d[i][0] = (unsigned)i;
    }
    for (size_t j = 0; j <= m; j++) {
        d[0][j] = (unsigned)j;
    }
    for (size_t i = 1; i <= n; i++) {
        for (size_t j = 1; j <= m; j++) {
            unsigned cost = a[i - 1] != b[j - 1];
            unsigned v = d[i - 1][j] + 1;
            v = d[i][j - 1] + 1 < v ? d[i][j - 1] + 1 : v;
            v = d[i - 1][j - 1] + cost < v ? d[i - 1][j - 1] + cost : v;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < v) {
                v = d[i - 2][j - 2] + 1;
            }
            d[i][j] = v;
        }
    }
    return d[n][m];
}

bool
config_key_suggest(const char *name, char *buf, size_t len)
{
    char want[64], cand[64], best[64] = "";
    size_t wn = sugg_norm(name, want);
    unsigned best_d = ~0u;
    for (int i = 0; i < CONFIG_KEY_COUNT; i++) {
        /* the full name, and the leaf when it names this key alone */
        const char *forms[2] = {conf__keys[i].name, strrchr(conf__keys[i].name, '.')};
        for (int f = 0; f < 2; f++) {
            const char *form = forms[f];
            if (form == NULL) {
                continue;
            }
            if (f == 1 && config_key_find(++form) != i) {
                continue;
            }
            size_t cn = sugg_norm(form, cand);
            unsigned dist = sugg_distance(want, wn, cand, cn);
            if (dist < best_d || (dist == best_d && strlen(cand) < strlen(best))) {
                best_d = dist;
                snprintf(best, sizeof(best), "%s", form);
            }
        }
    }
    unsigned limit = wn / 3 > 2 ? (unsigned)(wn / 3) : 2;
    if (best_d == 0 || best_d > limit || len == 0) {
        return false;
    }
    /* as a flag: '_' becomes '-', and so does the section's '.' when the
     * flat form names the same key (--wal-dir), else it stays */
    int id = config_key_find(best);
    char flat[64];
    size_t k = 0;
    for (const char *p = best; *p && k + 1 < sizeof(flat); p++) {
        flat[k++] = *p == '_' || *p == '.' ? '-' : *p;
    }
    flat[k] = '\0';
    bool flat_ok = config_key_find(flat) == id;
    k = 0;
    for (const char *p = best; *p && k + 1 < len; p++) {
        buf[k++] = *p == '_' || (*p == '.' && flat_ok) ? '-' : *p;
    }
    buf[k] = '\0';
    return true;
}

void
config_key_env_name(int id, char *buf, size_t len)
{
    size_t n = 0;
    const char *p = "CRABCACHE_";
    if (len == 0) {
        return;
    }
    if (id < 0 || id >= CONFIG_KEY_COUNT) {
        buf[0] = '\0';
        return;
    }
    for (; *p && n + 1 < len; p++) {
        buf[n++] = *p;
    }
    for (p = conf__keys[id].name; *p && n + 1 < len; p++) {
        buf[n++] = *p == '.' ? '_' : (char)toupper((unsigned char)*p);
    }
    buf[n] = '\0';
}

/* ----- sizes and durations ---------------------------------------------- */

/* "12", "1.5": integer part and up to 9 fraction digits; returns chars used. */
static size_t
parse_decimal(const char *s, unsigned __int128 *ip, uint64_t *frac, uint64_t *scale)
{
    size_t i = 0;
    *ip = 0, *frac = 0, *scale = 1;
    while (isdigit((unsigned char)s[i])) {
        *ip = *ip * 10 + (unsigned)(s[i] - '0');
        if (*ip > ((unsigned __int128)1 << 80)) {
            return 0;
        }
        i++;
    }
    if (i == 0) {
        return 0;
    }
    if (s[i] == '.') {
        size_t j = i + 1;
        while (isdigit((unsigned char)s[j])) {
            if (*scale < 1000000000ull) {
                *frac = *frac * 10 + (uint64_t)(s[j] - '0');
                *scale *= 10;
            }
            j++;
        }
        if (j == i + 1) {
            return 0;
        }
        i = j;
    }
    return i;
}

int
conf__parse_size(const char *s, uint64_t *out)
{
    unsigned __int128 ip, v;
    uint64_t frac, scale, mult = 1;
    size_t n = parse_decimal(s, &ip, &frac, &scale);
    if (n == 0) {
        return -1;
    }
    const char *u = s + n;
    while (*u == ' ') {
        u++;
    }
    static const struct {
        const char *suffix;
        int shift;
    } units[] = {
        {"", 0}, {"b", 0}, {"k", 10}, {"kb", 10}, {"kib", 10}, {"m", 20}, {"mb", 20}, {"mib", 20},
        {"g", 30}, {"gb", 30}, {"gib", 30}, {"t", 40}, {"tb", 40}, {"tib", 40},
    };
    size_t i;
    for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcasecmp(u, units[i].suffix) == 0) {
            mult = 1ull << units[i].shift;
            break;
        }
    }
    if (i == sizeof(units) / sizeof(units[0])) {
        return -1;
    }
    v = ip * mult + ((unsigned __int128)frac * mult) / scale;
    if (v > UINT64_MAX) {
        return -1;
    }
    *out = (uint64_t)v;
    return 0;
}

int
conf__parse_duration(const char *s, int64_t unit_ms, int64_t *out)
{
    unsigned __int128 ip, ms;
    uint64_t frac, scale, mult;
    size_t n = parse_decimal(s, &ip, &frac, &scale);
    if (n == 0) {
        return -1;
    }
    const char *u = s + n;
    while (*u == ' ') {
        u++;
    }
    if (*u == '\0') {
        mult = (uint64_t)unit_ms;
    } else if (strcasecmp(u, "ms") == 0) {
        mult = 1;
    } else if (strcasecmp(u, "s") == 0 || strcasecmp(u, "sec") == 0) {
        mult = 1000;
    } else if (strcasecmp(u, "m") == 0 || strcasecmp(u, "min") == 0) {
        mult = 60000;
    } else if (strcasecmp(u, "h") == 0) {
        mult = 3600000;
    } else if (strcasecmp(u, "d") == 0) {
        mult = 86400000;
    } else {
        return -1;
    }
    ms = ip * mult + ((unsigned __int128)frac * mult) / scale;
    if (ms % (unsigned __int128)unit_ms != 0 || ms / (unsigned __int128)unit_ms > INT64_MAX) {
        return -1;
    }
    *out = (int64_t)(ms / (unsigned __int128)unit_ms);
    return 0;
}

/* "512mb" when exact, else plain bytes. */
static void
fmt_size(uint64_t v, char *buf, size_t len)
{
    static const char *const sfx[] = {"tb", "gb", "mb", "kb"};
    for (int i = 0; i < 4; i++) {
        uint64_t m = 1ull << (10 * (4 - i));
        if (v >= m && v % m == 0) {
            snprintf(buf, len, "%llu%s", (unsigned long long)(v / m), sfx[i]);
            return;
        }
    }
    snprintf(buf, len, "%llu", (unsigned long long)v);
}

/* Shortest %g form that reads back as the same double. */
static void
fmt_double(double d, char *buf, size_t len)
{
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(buf, len, "%.*g", prec, d);
        if (strtod(buf, NULL) == d) {
            return;
        }
    }
}

/* ----- parsing values --------------------------------------------------- */

static int
fail(int code, char *detail, size_t len, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int
fail(int code, char *detail, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, len, fmt, ap);
    va_end(ap);
    return code;
}

static void
enum_list(const struct conf_enum *e, char *buf, size_t len)
{
    size_t n = 0;
    buf[0] = '\0';
    for (int i = 0; e->names[i] != NULL && n < len; i++) {
        n += (size_t)snprintf(buf + n, len - n, "%s%s", i ? ", " : "", e->names[i]);
    }
}

static int
range_check(int id, const struct conf_val *val, char *detail, size_t len)
{
    const struct conf_key *k = &conf__keys[id];
    char lo[32], hi[32], got[32];
    bool bad;
    switch (k->type) {
    case CT_INT:
    case CT_SECONDS:
    case CT_MILLIS:
        bad = val->v.i < (int64_t)k->min || val->v.i > (int64_t)k->max;
        snprintf(lo, sizeof(lo), "%lld", (long long)k->min);
        snprintf(hi, sizeof(hi), "%lld", (long long)k->max);
        snprintf(got, sizeof(got), "%lld", (long long)val->v.i);
        break;
    case CT_SIZE:
        bad = val->v.u < (uint64_t)k->min || val->v.u > (uint64_t)k->max;
        fmt_size((uint64_t)k->min, lo, sizeof(lo));
        fmt_size((uint64_t)k->max, hi, sizeof(hi));
        snprintf(got, sizeof(got), "%llu", (unsigned long long)val->v.u);
        break;
    case CT_FLOAT:
        bad = !isfinite(val->v.f) || val->v.f > k->max ||
              ((k->flags & CF_MINX) ? val->v.f <= k->min : val->v.f < k->min);
        fmt_double(k->min, lo, sizeof(lo));
        fmt_double(k->max, hi, sizeof(hi));
        fmt_double(val->v.f, got, sizeof(got));
        if (bad) {
            return fail(CONFIG_ERANGE, detail, len, "%s is out of range %s%s, %s]", got,
                        (k->flags & CF_MINX) ? "(" : "[", lo, hi);
        }
        return 0;
    default:
        return 0;
    }
    if (bad) {
        return fail(CONFIG_ERANGE, detail, len, "%s is out of range %s..%s", got, lo, hi);
    }
    return 0;
}

static int
parse_bool_text(const char *t, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(t, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(t, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

static int
parse_enum_text(const struct conf_enum *e, const char *t, int *out)
{
    for (int i = 0; e->names[i] != NULL; i++) {
        if (strcasecmp(e->names[i], t) == 0) {
            *out = i;
            return 0;
        }
    }
    for (int i = 0; e->aliases[i] != NULL && e->aliases[i + 1] != NULL; i += 2) {
        if (strcasecmp(e->aliases[i], t) == 0) {
            return parse_enum_text(e, e->aliases[i + 1], out);
        }
    }
    return -1;
}

static void
list_push(struct config_strlist *l, const char *s, size_t n)
{
    l->items = xrealloc(l->items, (l->n + 1) * sizeof(char *));
    l->items[l->n++] = xstrndup(s, n);
}

/* Split on commas and whitespace. */
static void
list_split(struct config_strlist *l, const char *t)
{
    while (*t) {
        size_t skip = strspn(t, ", \t\r\n");
        t += skip;
        size_t n = strcspn(t, ", \t\r\n");
        if (n > 0) {
            list_push(l, t, n);
        }
        t += n;
    }
}

static void
quote_for_msg(const char *t, char *buf, size_t len)
{
    size_t n = 0;
    if (len < 8) {
        buf[0] = '\0';
        return;
    }
    buf[n++] = '"';
    for (; *t && n + 5 < len; t++) {
        unsigned char c = (unsigned char)*t;
        buf[n++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    if (*t) {
        buf[n++] = '.', buf[n++] = '.', buf[n++] = '.';
    }
    buf[n++] = '"';
    buf[n] = '\0';
}

int
conf__parse_text(int id, const char *text, struct conf_val *out, char *detail, size_t len)
{
    const struct conf_key *k = &conf__keys[id];
    char q[96], *end;
    memset(out, 0, sizeof(*out));
    quote_for_msg(text, q, sizeof(q));
    switch (k->type) {
    case CT_BOOL:
        if (parse_bool_text(text, &out->v.b) < 0) {
            return fail(CONFIG_ETYPE, detail, len, "expected true or false (or yes/no), got %s", q);
        }
        return 0;
    case CT_INT:
        errno = 0;
        out->v.i = strtoll(text, &end, 10);
        if (end == text || *end != '\0' || errno == ERANGE || isspace((unsigned char)*text)) {
            return fail(CONFIG_ETYPE, detail, len, "expected an integer, got %s", q);
        }
        return range_check(id, out, detail, len);
    case CT_SIZE:
        if (conf__parse_size(text, &out->v.u) < 0) {
            return fail(CONFIG_ETYPE, detail, len,
                        "expected a size (bytes, or like \"64mb\", \"1.5gb\"), got %s", q);
        }
        return range_check(id, out, detail, len);
    case CT_SECONDS:
    case CT_MILLIS:
        if (conf__parse_duration(text, k->type == CT_SECONDS ? 1000 : 1, &out->v.i) < 0) {
            errno = 0;
            out->v.i = strtoll(text, &end, 10);
            if (end != text && *end == '\0' && errno == 0 && !isspace((unsigned char)*text)) {
                return range_check(id, out, detail, len); /* a negative number */
            }
            return fail(CONFIG_ETYPE, detail, len, "expected a duration in %s (or like \"%s\"), got %s",
                        k->type == CT_SECONDS ? "whole seconds" : "milliseconds",
                        k->type == CT_SECONDS ? "5m" : "1.5s", q);
        }
        return range_check(id, out, detail, len);
    case CT_FLOAT:
        errno = 0;
        out->v.f = strtod(text, &end);
        if (end == text || *end != '\0' || isspace((unsigned char)*text)) {
            return fail(CONFIG_ETYPE, detail, len, "expected a number, got %s", q);
        }
        return range_check(id, out, detail, len);
    case CT_STRING:
        out->v.s = xstrdup(text);
        return 0;
    case CT_ENUM:
        if (parse_enum_text(k->choices, text, &out->v.e) < 0) {
            char choices[160];
            enum_list(k->choices, choices, sizeof(choices));
            return fail(CONFIG_ERANGE, detail, len, "expected one of %s, got %s", choices, q);
        }
        return 0;
    case CT_LIST:
        list_split(&out->v.l, text);
        return 0;
    }
    return fail(CONFIG_ETYPE, detail, len, "unsupported type");
}

static const char *
toml_what(const struct toml_value *tv, char *buf, size_t len)
{
    if (tv->type == TOML_STRING) {
        char q[80];
        quote_for_msg(tv->u.str.ptr, q, sizeof(q));
        snprintf(buf, len, "string %s", q);
    } else if (tv->type == TOML_INTEGER) {
        snprintf(buf, len, "integer %lld", (long long)tv->u.i);
    } else if (tv->type == TOML_BOOLEAN) {
        snprintf(buf, len, "boolean %s", tv->u.b ? "true" : "false");
    } else {
        snprintf(buf, len, "%s", toml_type_name(tv->type));
    }
    return buf;
}

int
conf__parse_toml(int id, const struct toml_value *tv, struct conf_val *out, char *detail, size_t len)
{
    const struct conf_key *k = &conf__keys[id];
    char what[112];
    const char *want = NULL;
    memset(out, 0, sizeof(*out));
    if (tv->type == TOML_STRING && strlen(tv->u.str.ptr) != tv->u.str.len) {
        return fail(CONFIG_ETYPE, detail, len, "string contains a NUL character");
    }
    switch (k->type) {
    case CT_BOOL:
        if (tv->type == TOML_BOOLEAN) {
            out->v.b = tv->u.b;
            return 0;
        }
        want = "a boolean (true or false)";
        break;
    case CT_INT:
        if (tv->type == TOML_INTEGER) {
            out->v.i = tv->u.i;
            return range_check(id, out, detail, len);
        }
        want = "an integer";
        break;
    case CT_SIZE:
        if (tv->type == TOML_INTEGER && tv->u.i >= 0) {
            out->v.u = (uint64_t)tv->u.i;
            return range_check(id, out, detail, len);
        }
        if (tv->type == TOML_STRING) {
            return conf__parse_text(id, tv->u.str.ptr, out, detail, len);
        }
        want = "a size (bytes, or a string like \"64mb\")";
        break;
    case CT_SECONDS:
    case CT_MILLIS:
        if (tv->type == TOML_INTEGER) {
            out->v.i = tv->u.i;
            return range_check(id, out, detail, len);
        }
        if (tv->type == TOML_STRING) {
            return conf__parse_text(id, tv->u.str.ptr, out, detail, len);
        }
        want = k->type == CT_SECONDS ? "seconds (or a string like \"5m\")"
                                     : "milliseconds (or a string like \"1.5s\")";
        break;
    case CT_FLOAT:
        if (tv->type == TOML_FLOAT || tv->type == TOML_INTEGER) {
            out->v.f = tv->type == TOML_FLOAT ? tv->u.f : (double)tv->u.i;
            return range_check(id, out, detail, len);
        }
        want = "a number";
        break;
    case CT_STRING:
        if (tv->type == TOML_STRING) {
            out->v.s = xstrdup(tv->u.str.ptr);
            return 0;
        }
        want = "a string";
        break;
    case CT_ENUM:
        if (tv->type == TOML_STRING) {
            return conf__parse_text(id, tv->u.str.ptr, out, detail, len);
        }
        want = "a string";
        break;
    case CT_LIST:
        if (tv->type == TOML_STRING) {
            return conf__parse_text(id, tv->u.str.ptr, out, detail, len);
        }
        if (tv->type == TOML_ARRAY) {
            for (size_t i = 0; i < tv->u.array.n; i++) {
                const struct toml_value *it = tv->u.array.items[i];
                if (it->type != TOML_STRING || strlen(it->u.str.ptr) != it->u.str.len) {
                    conf__val_free(id, out);
                    return fail(CONFIG_ETYPE, detail, len,
                                "expected an array of strings, item %zu is %s", i + 1,
                                toml_what(it, what, sizeof(what)));
                }
                list_push(&out->v.l, it->u.str.ptr, it->u.str.len);
            }
            return 0;
        }
        want = "an array of strings";
        break;
    }
    return fail(CONFIG_ETYPE, detail, len, "expected %s, got %s", want, toml_what(tv, what, sizeof(what)));
}

/* ----- storing and formatting ------------------------------------------- */

void
conf__strlist_free(struct config_strlist *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->items[i]);
    }
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

void
conf__val_free(int id, struct conf_val *val)
{
    if (conf__keys[id].type == CT_STRING) {
        free(val->v.s);
        val->v.s = NULL;
    } else if (conf__keys[id].type == CT_LIST) {
        conf__strlist_free(&val->v.l);
    }
}

void
conf__store(struct config *cfg, int id, struct conf_val *val, bool atomic)
{
    void *f = (char *)cfg + conf__keys[id].offset;
    switch (conf__keys[id].type) {
    case CT_BOOL:
        if (atomic) {
            __atomic_store_n((bool *)f, val->v.b, __ATOMIC_RELEASE);
        } else {
            *(bool *)f = val->v.b;
        }
        break;
    case CT_INT:
    case CT_SECONDS:
    case CT_MILLIS:
        if (atomic) {
            __atomic_store_n((int64_t *)f, val->v.i, __ATOMIC_RELEASE);
        } else {
            *(int64_t *)f = val->v.i;
        }
        break;
    case CT_SIZE:
        if (atomic) {
            __atomic_store_n((uint64_t *)f, val->v.u, __ATOMIC_RELEASE);
        } else {
            *(uint64_t *)f = val->v.u;
        }
        break;
    case CT_FLOAT:
        if (atomic) {
            __atomic_store((double *)f, &val->v.f, __ATOMIC_RELEASE);
        } else {
            *(double *)f = val->v.f;
        }
        break;
    case CT_ENUM:
        if (atomic) {
            __atomic_store_n((int *)f, val->v.e, __ATOMIC_RELEASE);
        } else {
            *(int *)f = val->v.e;
        }
        break;
    case CT_STRING:
        free(*(char **)f);
        *(char **)f = val->v.s;
        val->v.s = NULL;
        break;
    case CT_LIST:
        conf__strlist_free((struct config_strlist *)f);
        *(struct config_strlist *)f = val->v.l;
        memset(&val->v.l, 0, sizeof(val->v.l));
        break;
    }
}

int
conf__set_text(struct config *cfg, int id, const char *text, char *detail, size_t len)
{
    struct conf_val val;
    int rc = conf__parse_text(id, text, &val, detail, len);
    if (rc < 0) {
        conf__val_free(id, &val);
        return rc;
    }
    conf__store(cfg, id, &val, false);
    if (conf__keys[id].check != NULL && conf__keys[id].check(cfg, id, detail, len) < 0) {
        return CONFIG_ERANGE;
    }
    return 0;
}

int
config_format_value(const struct config *cfg, int id, char *buf, size_t len)
{
    if (id < 0 || id >= CONFIG_KEY_COUNT) {
        return -1;
    }
    const void *f = (const char *)cfg + conf__keys[id].offset;
    char tmp[40];
    switch (conf__keys[id].type) {
    case CT_BOOL:
        return snprintf(buf, len, "%s", __atomic_load_n((const bool *)f, __ATOMIC_ACQUIRE) ? "yes" : "no");
    case CT_INT:
    case CT_SECONDS:
    case CT_MILLIS:
        return snprintf(buf, len, "%lld", (long long)__atomic_load_n((const int64_t *)f, __ATOMIC_ACQUIRE));
    case CT_SIZE:
        return snprintf(buf, len, "%llu",
                        (unsigned long long)__atomic_load_n((const uint64_t *)f, __ATOMIC_ACQUIRE));
    case CT_FLOAT: {
        double d;
        __atomic_load((const double *)f, &d, __ATOMIC_ACQUIRE);
        fmt_double(d, tmp, sizeof(tmp));
        return snprintf(buf, len, "%s", tmp);
    }
    case CT_ENUM:
        return snprintf(buf, len, "%s", conf__keys[id].choices->names[__atomic_load_n((const int *)f,
                                                                                     __ATOMIC_ACQUIRE)]);
    case CT_STRING: {
        const char *s = *(char *const *)f;
        return snprintf(buf, len, "%s", s ? s : "");
    }
    case CT_LIST: {
        const struct config_strlist *l = f;
        size_t need = 0;
        if (len > 0) {
            buf[0] = '\0';
        }
        for (size_t i = 0; i < l->n; i++) {
            int n = snprintf(need < len ? buf + need : NULL, need < len ? len - need : 0, "%s%s",
                             i ? " " : "", l->items[i]);
            need += (size_t)n;
        }
        return (int)need;
    }
    }
    return -1;
}

int
config_key_info(int id, struct config_key_info *out)
{
    static const char *const types[] = {
        [CT_BOOL] = "bool", [CT_INT] = "integer", [CT_SIZE] = "size", [CT_FLOAT] = "float",
        [CT_STRING] = "string", [CT_ENUM] = "enum", [CT_LIST] = "list",
        [CT_SECONDS] = "seconds", [CT_MILLIS] = "milliseconds",
    };
    if (id < 0 || id >= CONFIG_KEY_COUNT) {
        return -1;
    }
    const struct conf_key *k = &conf__keys[id];
    memset(out, 0, sizeof(*out));
    out->name = k->name;
    out->redis_name = k->redis;
    out->aliases = k->aliases;
    out->env = k->env;
    out->default_value = k->def;
    out->type = types[k->type];
    out->help = k->help;
    out->min = k->min;
    out->max = k->max;
    out->min_exclusive = (k->flags & CF_MINX) != 0;
    out->live = (k->flags & CF_LIVE) != 0;
    if (k->type == CT_ENUM) {
        out->choices = k->choices->list;
    }
    return 0;
}

/* ----- address checks --------------------------------------------------- */

static bool
is_ip(const char *s, int *family)
{
    unsigned char b[16];
    if (inet_pton(AF_INET, s, b) == 1) {
        *family = AF_INET;
        return true;
    }
    if (inet_pton(AF_INET6, s, b) == 1) {
        *family = AF_INET6;
        return true;
    }
    return false;
}

int
config_notify_canonical(const char *in, char *out)
{
    static const char classes[] = "g$lshzxetd"; /* what 'A' stands for */
    static const char order[] = "g$lshzxetdn";
    bool have[256] = {false};
    for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
        if (*p == 'A') {
            for (const char *q = classes; *q; q++) {
                have[(unsigned char)*q] = true;
            }
        } else if (strchr("g$lshzxeKEtmdn", *p) != NULL) {
            have[*p] = true;
        } else {
            return -1;
        }
    }
    char *o = out;
    bool all = true;
    for (const char *q = classes; *q; q++) {
        all = all && have[(unsigned char)*q];
    }
    if (all) {
        *o++ = 'A'; /* and nothing for 'n', as Redis */
    } else {
        for (const char *q = order; *q; q++) {
            if (have[(unsigned char)*q]) {
                *o++ = *q;
            }
        }
    }
    for (const char *q = "KEm"; *q; q++) {
        if (have[(unsigned char)*q]) {
            *o++ = *q;
        }
    }
    *o = '\0';
    return 0;
}

int
conf__check_notify(const struct config *cfg, int id, char *detail, size_t len)
{
    char canon[32];
    if (config_notify_canonical(cfg->pubsub.notify_keyspace_events, canon) < 0) {
        return fail(-1, detail, len, "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.");
    }
    return 0;
}

int
conf__check_bind(const struct config *cfg, int id, char *detail, size_t len)
{
    const char *s = cfg->bind;
    char tok[64];
    int count = 0, fam;
    while (*s) {
        s += strspn(s, " \t");
        size_t n = strcspn(s, " \t");
        if (n == 0) {
            break;
        }
        if (n >= sizeof(tok)) {
            return fail(-1, detail, len, "address \"%.*s...\" is too long", 20, s);
        }
        memcpy(tok, s, n);
        tok[n] = '\0';
        const char *a = tok[0] == '-' ? tok + 1 : tok; /* Redis: '-' = optional */
        if (strcmp(a, "*") != 0 && strcmp(a, "::*") != 0 && strcmp(a, "localhost") != 0 &&
            !is_ip(a, &fam)) {
            return fail(-1, detail, len, "\"%s\" is not an IPv4 or IPv6 address", tok);
        }
        count++;
        s += n;
    }
    if (count == 0) {
        return fail(-1, detail, len, "needs at least one address");
    }
    return 0;
}

int
conf__check_ips(const struct config *cfg, int id, char *detail, size_t len)
{
    const struct config_strlist *l = &cfg->security.allowed_ips;
    for (size_t i = 0; i < l->n; i++) {
        char a[64];
        int fam;
        const char *slash = strchr(l->items[i], '/');
        size_t n = slash ? (size_t)(slash - l->items[i]) : strlen(l->items[i]);
        bool ok = n < sizeof(a);
        if (ok) {
            memcpy(a, l->items[i], n);
            a[n] = '\0';
            ok = is_ip(a, &fam);
        }
        if (ok && slash != NULL) {
            char *end;
            long bits = strtol(slash + 1, &end, 10);
            ok = slash[1] != '\0' && isdigit((unsigned char)slash[1]) && *end == '\0' && bits >= 0 &&
                 bits <= (fam == AF_INET ? 32 : 128);
        }
        if (!ok) {
            return fail(-1, detail, len, "\"%s\" is not an IP address or CIDR (like 10.0.0.0/8)",
                        l->items[i]);
        }
    }
    return 0;
}

int
conf__check_seeds(const struct config *cfg, int id, char *detail, size_t len)
{
    const struct config_strlist *l = &cfg->cluster.seeds;
    for (size_t i = 0; i < l->n; i++) {
        const char *s = l->items[i];
        const char *colon = strrchr(s, ':');
        bool ok = colon != NULL && colon != s;
        if (ok && s[0] == '[') {
            ok = colon[-1] == ']' && colon - s > 2;
        } else if (ok) {
            for (const char *p = s; p < colon && ok; p++) {
                ok = isalnum((unsigned char)*p) || *p == '.' || *p == '-' || *p == '_';
            }
        }
        if (ok) {
            char *end;
            long port = strtol(colon + 1, &end, 10);
            ok = isdigit((unsigned char)colon[1]) && *end == '\0' && port >= 1 && port <= 65535;
        }
        if (!ok) {
            return fail(-1, detail, len, "\"%s\" is not host:port (IPv6 as [addr]:port)", s);
        }
    }
    return 0;
}

int
conf__check_node_id(const struct config *cfg, int id, char *detail, size_t len)
{
    const char *s = cfg->cluster.node_id;
    size_t n = strlen(s);
    if (n > 40) {
        return fail(-1, detail, len, "longer than 40 characters (Redis Cluster node ids are 40)");
    }
    for (size_t i = 0; i < n; i++) {
        if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.') {
            return fail(-1, detail, len, "only letters, digits, '-', '_' and '.' are allowed");
        }
    }
    return 0;
}
