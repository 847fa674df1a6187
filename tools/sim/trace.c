/*
 * trace.c -- decoders for the public cache traces (docs/eviction.md, "The
 * traces", says where each is published and its format) and the dense-id
 * remapping.
 *
 * Compressed files are read through a pipe from the system decompressor
 * (gzip -dc, xz -dc, zstd -dc), chosen by extension. Keys are decoded into a
 * growable array of int64 values, then remapped to dense ids with an
 * open-addressing table; each id also gets the XXH3 hash of its 8-byte key,
 * which is what the policy's sketch sees (as the server hashes key bytes).
 */
#include "sim.h"

#include "util/mem.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

struct keyvec {
    uint64_t *v;
    size_t n;
    size_t cap;
};

static void
keyvec_push(struct keyvec *kv, uint64_t key)
{
    if (kv->n == kv->cap) {
        kv->cap = kv->cap ? kv->cap * 2 : 1 << 16;
        kv->v = xrealloc(kv->v, kv->cap * sizeof(uint64_t));
    }
    kv->v[kv->n++] = key;
}

static bool
ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s);
    size_t b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

int
trace_format_parse(const char *name)
{
    static const char *names[] = {"lirs", "arc", "scarab", "cache2k"};

    for (int i = 0; i < 4; i++) {
        if (strcmp(name, names[i]) == 0) {
            return i;
        }
    }
    return -1;
}

int
trace_format_guess(const char *path)
{
    const char *base = strrchr(path, '/');
    static const char *prefix[] = {"lirs", "arc", "scarab", "cache2k"};

    base = base ? base + 1 : path;
    for (int i = 0; i < 4; i++) {
        if (strncmp(base, prefix[i], strlen(prefix[i])) == 0) {
            return i;
        }
    }
    return -1;
}

/* Open the file, through a decompressor when compressed. *piped tells how
 * to close it. */
static FILE *
open_trace(const char *path, bool *piped)
{
    const char *tool = NULL;
    char cmd[4200];

    if (ends_with(path, ".gz")) {
        tool = "gzip";
    } else if (ends_with(path, ".xz")) {
        tool = "xz";
    } else if (ends_with(path, ".zst")) {
        tool = "zstd";
    }
    *piped = tool != NULL;
    if (tool == NULL) {
        return fopen(path, "rb");
    }
    if (strchr(path, '\'') != NULL || strlen(path) > 4000) {
        errno = EINVAL;
        return NULL;
    }
    snprintf(cmd, sizeof(cmd), "%s -dc '%s'", tool, path);
    return popen(cmd, "r");
}

/* Strip trailing whitespace (CRLF line endings) in place; return length. */
static size_t
rstrip(char *s, size_t n)
{
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' ||
                     s[n - 1] == '\t')) {
        s[--n] = '\0';
    }
    return n;
}

static int
decode_text(FILE *f, enum trace_format fmt, struct keyvec *kv)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int rc = 0;

    while ((len = getline(&line, &cap, f)) >= 0) {
        char *end;
        size_t n = rstrip(line, (size_t)len);
        unsigned long long start;
        unsigned long long count = 1;

        if (n == 0 || (fmt == TRACE_LIRS && strcmp(line, "*") == 0)) {
            continue;
        }
        errno = 0;
        start = strtoull(line, &end, 10);
        if (end == line || errno != 0) {
            rc = -EINVAL;
            break;
        }
        if (fmt == TRACE_ARC) {
            char *p = end;
            count = strtoull(p, &end, 10);
            if (end == p) {
                rc = -EINVAL;
                break;
            }
        }
        for (unsigned long long i = 0; i < count; i++) {
            keyvec_push(kv, (uint64_t)(start + i));
        }
    }
    free(line);
    return rc;
}

static int
decode_binary(FILE *f, unsigned width, struct keyvec *kv)
{
    unsigned char buf[8 * 4096];
    size_t got;
    size_t carry = 0;

    while ((got = fread(buf + carry, 1, sizeof(buf) - carry, f)) > 0) {
        size_t total = carry + got;
        size_t whole = total - total % width;
        for (size_t off = 0; off < whole; off += width) {
            uint64_t v = 0;
            for (unsigned b = 0; b < width; b++) {
                v = v << 8 | buf[off + b];
            }
            if (width == 4) {
                v = (uint64_t)(int64_t)(int32_t)(uint32_t)v;
            }
            keyvec_push(kv, v);
        }
        carry = total - whole;
        memmove(buf, buf + whole, carry);
    }
    return carry == 0 ? 0 : -EINVAL;
}

/* Remap keys to dense ids in first-seen order; fill ids and hashes. */
static void
densify(struct trace *t, const struct keyvec *kv)
{
    size_t cap = 1 << 16;
    uint64_t *keys = xmalloc(cap * sizeof(uint64_t));
    uint32_t *slot = xmalloc(cap * sizeof(uint32_t));
    size_t hcap = 1 << 12;

    memset(slot, 0xff, cap * sizeof(uint32_t));
    t->ids = xmalloc((kv->n ? kv->n : 1) * sizeof(uint32_t));
    t->hashes = xmalloc(hcap * sizeof(uint64_t));
    t->nkeys = 0;
    for (size_t i = 0; i < kv->n; i++) {
        uint64_t key = kv->v[i];
        uint64_t h = XXH3_64bits(&key, sizeof(key));
        size_t j = h & (cap - 1);

        while (slot[j] != UINT32_MAX && keys[j] != key) {
            j = (j + 1) & (cap - 1);
        }
        if (slot[j] == UINT32_MAX) {
            if (t->nkeys == hcap) {
                hcap *= 2;
                t->hashes = xrealloc(t->hashes, hcap * sizeof(uint64_t));
            }
            keys[j] = key;
            slot[j] = t->nkeys;
            t->hashes[t->nkeys++] = h;
            if ((size_t)t->nkeys * 2 > cap) {
                /* Rehash into a table twice as large. */
                size_t ncap = cap * 2;
                uint64_t *nk = xmalloc(ncap * sizeof(uint64_t));
                uint32_t *ns = xmalloc(ncap * sizeof(uint32_t));
                memset(ns, 0xff, ncap * sizeof(uint32_t));
                for (size_t k = 0; k < cap; k++) {
                    if (slot[k] != UINT32_MAX) {
                        size_t m = t->hashes[slot[k]] & (ncap - 1);
                        while (ns[m] != UINT32_MAX) {
                            m = (m + 1) & (ncap - 1);
                        }
                        nk[m] = keys[k];
                        ns[m] = slot[k];
                    }
                }
                free(keys);
                free(slot);
                keys = nk;
                slot = ns;
                cap = ncap;
                t->ids[i] = t->nkeys - 1;
                continue;
            }
        }
        t->ids[i] = slot[j];
    }
    t->nreq = kv->n;
    free(keys);
    free(slot);
}

int
trace_load(struct trace *t, const char *path, enum trace_format fmt)
{
    struct keyvec kv = {0};
    bool piped;
    FILE *f;
    int rc;
    int status;

    memset(t, 0, sizeof(*t));
    f = open_trace(path, &piped);
    if (f == NULL) {
        fprintf(stderr, "crabcache-sim: cannot open %s: %s\n", path,
                strerror(errno));
        return -errno;
    }
    if (fmt == TRACE_LIRS || fmt == TRACE_ARC) {
        rc = decode_text(f, fmt, &kv);
    } else {
        rc = decode_binary(f, fmt == TRACE_SCARAB ? 8 : 4, &kv);
    }
    status = piped ? pclose(f) : fclose(f);
    if (rc == 0 && status != 0) {
        rc = -EIO;
    }
    if (rc == 0 && kv.n == 0) {
        rc = -ENODATA;
    }
    if (rc != 0) {
        fprintf(stderr, "crabcache-sim: %s: bad or unreadable trace (%d)\n",
                path, rc);
        free(kv.v);
        return rc;
    }
    densify(t, &kv);
    free(kv.v);
    return 0;
}

void
trace_build_next_use(struct trace *t)
{
    uint32_t *last;

    if (t->next_use != NULL) {
        return;
    }
    t->next_use = xmalloc(t->nreq * sizeof(uint32_t));
    last = xmalloc((size_t)t->nkeys * sizeof(uint32_t));
    memset(last, 0xff, (size_t)t->nkeys * sizeof(uint32_t));
    for (size_t i = t->nreq; i-- > 0;) {
        t->next_use[i] = last[t->ids[i]];
        last[t->ids[i]] = (uint32_t)i;
    }
    free(last);
}

void
trace_free(struct trace *t)
{
    free(t->name);
    free(t->ids);
    free(t->hashes);
    free(t->next_use);
    memset(t, 0, sizeof(*t));
}
