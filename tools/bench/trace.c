/*
 * trace.c -- see trace.h.
 *
 * All formats read through one buffer of TRACE_BUF bytes refilled with
 * fread(); text lines are parsed in place (a line never spans a refill
 * because the unread tail is moved to the front first). Decompression is a
 * child process started with popen() on a shell-quoted path.
 */
#include "trace.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/mem.h"

#define TRACE_BUF (1u << 20)

int
bench_trace_fmt_parse(const char *name)
{
    if (strcmp(name, "auto") == 0) {
        return BENCH_TRACE_AUTO;
    }
    if (strcmp(name, "lirs") == 0) {
        return BENCH_TRACE_LIRS;
    }
    if (strcmp(name, "arc") == 0) {
        return BENCH_TRACE_ARC;
    }
    if (strcmp(name, "scarab") == 0 || strcmp(name, "int64be") == 0) {
        return BENCH_TRACE_SCARAB;
    }
    if (strcmp(name, "cache2k") == 0 || strcmp(name, "int32be") == 0) {
        return BENCH_TRACE_CACHE2K;
    }
    return -1;
}

const char *
bench_trace_fmt_name(enum bench_trace_fmt fmt)
{
    switch (fmt) {
    case BENCH_TRACE_LIRS: return "lirs";
    case BENCH_TRACE_ARC: return "arc";
    case BENCH_TRACE_SCARAB: return "scarab";
    case BENCH_TRACE_CACHE2K: return "cache2k";
    default: return "auto";
    }
}

static int
ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* The decompressor for path, or NULL for a plain file. */
static const char *
decompressor(const char *path)
{
    if (ends_with(path, ".gz")) {
        return "gzip -dc";
    }
    if (ends_with(path, ".xz")) {
        return "xz -dc";
    }
    if (ends_with(path, ".zst") || ends_with(path, ".zstd")) {
        return "zstd -dc";
    }
    if (ends_with(path, ".bz2")) {
        return "bzip2 -dc";
    }
    return NULL;
}

static enum bench_trace_fmt
fmt_from_name(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (strstr(base, "scarab")) {
        return BENCH_TRACE_SCARAB;
    }
    if (strstr(base, "cache2k")) {
        return BENCH_TRACE_CACHE2K;
    }
    if (strstr(base, ".lis") || strncmp(base, "arc-", 4) == 0) {
        return BENCH_TRACE_ARC;
    }
    if (strstr(base, "lirs")) {
        return BENCH_TRACE_LIRS;
    }
    return BENCH_TRACE_AUTO;
}

/* Move the unread tail to the front and read more. Returns bytes added. */
static size_t
refill(struct bench_trace *t)
{
    if (t->eof) {
        return 0;
    }
    if (t->pos > 0) {
        memmove(t->buf, t->buf + t->pos, t->len - t->pos);
        t->len -= t->pos;
        t->pos = 0;
    }
    size_t got = fread(t->buf + t->len, 1, TRACE_BUF - t->len, t->f);
    if (got == 0) {
        t->eof = 1;
    }
    t->len += got;
    return got;
}

/* Guess lirs/arc from the first text line of the buffer; AUTO if binary. */
static enum bench_trace_fmt
sniff(struct bench_trace *t)
{
    size_t n = t->len < 4096 ? t->len : 4096;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)t->buf[i];
        if (!(isdigit(c) || c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '*' ||
              c == '-')) {
            return BENCH_TRACE_AUTO;
        }
    }
    /* first line with a digit: count its fields */
    size_t i = 0;
    while (i < n) {
        size_t e = i;
        while (e < n && t->buf[e] != '\n') {
            e++;
        }
        int fields = 0, in = 0, digit = 0;
        for (size_t j = i; j < e; j++) {
            int sp = t->buf[j] == ' ' || t->buf[j] == '\t' || t->buf[j] == '\r';
            if (!sp && !in) {
                fields++;
            }
            in = !sp;
            digit |= isdigit((unsigned char)t->buf[j]);
        }
        if (digit) {
            return fields == 1 ? BENCH_TRACE_LIRS
                   : fields == 4 ? BENCH_TRACE_ARC : BENCH_TRACE_AUTO;
        }
        i = e + 1;
    }
    return BENCH_TRACE_AUTO;
}

int
bench_trace_open(struct bench_trace *t, const char *path, enum bench_trace_fmt fmt)
{
    memset(t, 0, sizeof(*t));
    const char *dc = decompressor(path);
    if (dc) {
        /* single-quote the path for the shell: ' becomes '\'' */
        struct buf cmd;
        buf_init(&cmd);
        buf_appendf(&cmd, "%s -- '", dc);
        for (const char *s = path; *s; s++) {
            if (*s == '\'') {
                buf_appendstr(&cmd, "'\\''");
            } else {
                buf_appendc(&cmd, *s);
            }
        }
        /* its complaint about a closed pipe when we stop early is noise; a
         * real failure shows as a non-zero status after a full read */
        buf_appendstr(&cmd, "' 2>/dev/null");
        buf_appendc(&cmd, '\0');
        FILE *probe = fopen(path, "rb");
        if (!probe) {
            snprintf(t->err, sizeof(t->err), "cannot open %s: %s", path, strerror(errno));
            buf_deinit(&cmd);
            return -1;
        }
        fclose(probe);
        t->f = popen(cmd.data, "r");
        t->is_pipe = 1;
        buf_deinit(&cmd);
    } else {
        t->f = fopen(path, "rb");
    }
    if (!t->f) {
        snprintf(t->err, sizeof(t->err), "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    t->buf = xmalloc(TRACE_BUF);
    refill(t);
    if (fmt == BENCH_TRACE_AUTO) {
        fmt = fmt_from_name(path);
    }
    if (fmt == BENCH_TRACE_AUTO) {
        fmt = sniff(t);
    }
    if (fmt == BENCH_TRACE_AUTO) {
        bench_trace_close(t);
        snprintf(t->err, sizeof(t->err),
                 "cannot tell the format of %s; give --trace-format lirs|arc|scarab|cache2k",
                 path);
        return -1;
    }
    t->fmt = fmt;
    return 0;
}

/* Next text line as [*s, *e) without its line end; 0 at the end. */
static int
next_line(struct bench_trace *t, const char **s, const char **e)
{
    for (;;) {
        char *start = t->buf + t->pos;
        char *nl = memchr(start, '\n', t->len - t->pos);
        if (nl) {
            t->pos = (size_t)(nl - t->buf) + 1;
            *s = start;
            *e = nl;
            t->line++;
            return 1;
        }
        if (t->eof || refill(t) == 0) {
            if (t->pos < t->len) {      /* last line without a line end */
                *s = t->buf + t->pos;
                *e = t->buf + t->len;
                t->pos = t->len;
                t->line++;
                return 1;
            }
            return 0;
        }
    }
}

/* Parse a decimal integer at *p (leading blanks skipped); -1 if none. */
static int
parse_i64(const char **p, const char *e, int64_t *out)
{
    const char *s = *p;
    while (s < e && (*s == ' ' || *s == '\t')) {
        s++;
    }
    int neg = 0;
    if (s < e && *s == '-') {
        neg = 1;
        s++;
    }
    if (s >= e || !isdigit((unsigned char)*s)) {
        return -1;
    }
    int64_t v = 0;
    while (s < e && isdigit((unsigned char)*s)) {
        v = v * 10 + (*s - '0');
        s++;
    }
    *out = neg ? -v : v;
    *p = s;
    return 0;
}

static int
next_text(struct bench_trace *t, int64_t *key)
{
    if (t->arc_left > 0) {
        *key = t->arc_next++;
        t->arc_left--;
        return 1;
    }
    const char *s, *e;
    while (next_line(t, &s, &e)) {
        while (e > s && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t')) {
            e--;
        }
        const char *p = s;
        while (p < e && (*p == ' ' || *p == '\t')) {
            p++;
        }
        if (p == e || (e - p == 1 && *p == '*')) {
            continue;   /* empty line or LIRS checkpoint marker */
        }
        int64_t a, n = 1;
        if (parse_i64(&p, e, &a) < 0 ||
            (t->fmt == BENCH_TRACE_ARC && parse_i64(&p, e, &n) < 0)) {
            snprintf(t->err, sizeof(t->err), "trace line %llu is not a %s record",
                     (unsigned long long)t->line, bench_trace_fmt_name(t->fmt));
            return -1;
        }
        if (n <= 0) {
            continue;
        }
        *key = a;
        t->arc_next = a + 1;
        t->arc_left = n - 1;
        return 1;
    }
    return 0;
}

static int
next_binary(struct bench_trace *t, int64_t *key)
{
    size_t w = t->fmt == BENCH_TRACE_SCARAB ? 8 : 4;
    if (t->len - t->pos < w) {
        refill(t);
        if (t->len - t->pos < w) {
            if (t->len != t->pos) {
                snprintf(t->err, sizeof(t->err), "trace ends in a partial %zu-byte record", w);
                return -1;
            }
            return 0;
        }
    }
    const unsigned char *b = (const unsigned char *)t->buf + t->pos;
    uint64_t v = 0;
    for (size_t i = 0; i < w; i++) {
        v = (v << 8) | b[i];
    }
    t->pos += w;
    *key = w == 8 ? (int64_t)v : (int64_t)(int32_t)(uint32_t)v;
    return 1;
}

int
bench_trace_next(struct bench_trace *t, int64_t *key)
{
    if (!t->f) {
        return 0;
    }
    int r = (t->fmt == BENCH_TRACE_LIRS || t->fmt == BENCH_TRACE_ARC) ? next_text(t, key)
                                                                       : next_binary(t, key);
    if (r == 1) {
        t->records++;
    } else if (r == 0 && ferror(t->f)) {
        snprintf(t->err, sizeof(t->err), "read error on the trace");
        return -1;
    }
    return r;
}

int
bench_trace_close(struct bench_trace *t)
{
    int rc = 0;
    if (t->f) {
        if (t->is_pipe) {
            int st = pclose(t->f);
            /* a decompressor killed by SIGPIPE (we stopped early) is fine */
            if (st != 0 && t->eof) {
                snprintf(t->err, sizeof(t->err), "decompressor failed (status %d)", st);
                rc = -1;
            }
        } else {
            fclose(t->f);
        }
        t->f = NULL;
    }
    free(t->buf);
    t->buf = NULL;
    return rc;
}
