/*
 * slab.c -- a shard's item memory (see slab.h for the contract).
 *
 * Region. slab_init reserves the whole region with one PROT_NONE,
 * MAP_NORESERVE mapping: address space only. Pages are made accessible
 * (mprotect READ|WRITE) ahead of the frontier in growing steps (1 MiB,
 * doubling up to 64 MiB) so that opening a span is not a syscall; untouched
 * committed pages cost no RSS. Page 0 is never handed out, so reference 0
 * (and page index 0, the "none" of every list) stays free.
 *
 * Spans. A class carves spans of contiguous pages: one page for a small
 * class, 1..16 for a medium one (span_pages below). Every page below the
 * frontier has a 16-byte entry in s->pages. The entry of a span's first
 * page (its head) holds the class, how many chunks are in use, the head of
 * the free list and a bump offset for chunks never handed out (so opening
 * a span is O(pages), no carving loop); the other pages of the span are
 * marked SLAB_TAIL and name the head, so slab_free finds the span of any
 * reference in O(1) although medium chunks straddle pages. Offsets are in
 * SLAB_UNITs from the head (below 16 * 1024); the reference of a chunk is
 * head * 1024 + offset, so neither alloc nor free divides. A free chunk
 * holds the offset of the next free chunk in its first two bytes.
 *
 * Lists. Per class, a doubly linked list of the spans that have a free
 * chunk; allocation takes from its head, and a span that regains a free
 * chunk goes to the head, so holes are refilled before a span is opened.
 * A span whose last chunk is freed goes to the warm pool (resident, LIFO,
 * one list per span length). When the warm pool reaches SLAB_POOL_KEEP +
 * SLAB_POOL_BATCH pages, at least SLAB_POOL_BATCH pages of it (longest
 * spans first) are returned to the kernel with one madvise(MADV_DONTNEED)
 * per run of adjacent pages, then kept on the cold pool (still committed,
 * reused before the frontier moves). A span of n pages comes from, in
 * order: warm n, a longer warm span split (the rest stays warm), cold n, a
 * longer cold span split, the frontier. Bitmaps of the non-empty lists make
 * each step one mask and count-trailing-zeros. Pooled spans are not merged
 * with their neighbours: a long span wanted when the pool holds only
 * shorter pieces comes from the frontier (address space, no RSS).
 */
#include "store/slab.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "util/mem.h"

#define SLAB_UNITS_PER_PAGE (SLAB_PAGE / SLAB_UNIT) /* 1024 */
#define SLAB_PAGE_SHIFT 10                        /* log2(units per page) */
#define SLAB_NONE 0xFFFFu                         /* empty free list */
#define SLAB_NO_CLASS 0xFFFFu                     /* span head, pooled */
#define SLAB_TAIL 0xFFFEu                         /* not the head of its span */
#define SLAB_COMMIT_MIN ((size_t)1 << 20)
#define SLAB_COMMIT_MAX ((size_t)64 << 20)
#define SLAB_POOL_KEEP 16u
#define SLAB_POOL_BATCH 32u

struct slab_page {
    uint32_t next;      /* partial or pool list (0 = none); head, if a tail */
    uint32_t prev;      /* partial list only */
    uint16_t cls;       /* class index, SLAB_NO_CLASS if pooled, SLAB_TAIL */
    uint16_t used;      /* chunks handed out; span length if pooled */
    uint16_t free_head; /* offset of the first free chunk, SLAB_NONE */
    uint16_t bump;      /* offset of the first never-used chunk */
};

_Static_assert(sizeof(struct slab_page) == 16, "page entry is 16 bytes");
_Static_assert(SLAB_UNITS_PER_PAGE == 1u << SLAB_PAGE_SHIFT, "page shift");
_Static_assert(SLAB_SPAN_MAX * SLAB_UNITS_PER_PAGE < SLAB_NONE, "offsets fit");
_Static_assert(SLAB_SPAN_MAX < 32, "pool bitmaps");

/* Pages per span of each medium class (1152, 1280, ..., 16384): the
 * fewest pages that hold 4 chunks or more with a tail under 3% of the span
 * (tails: 1152 1.6%, 1408 2.6%, 1664 2.5%, 1792 1.6%, 1920 0.4%, 2304 1.6%,
 * 2816 1.8%, 3328 2.5%, 4608 1.6%, 5632 1.8%, 6656 2.5%, the others 0). */
static const uint8_t span_pages_medium[SLAB_MEDIUM_CLASSES] = {
    2, 5, 6, 3, 5, 4, 8, 2,         /* 1152 .. 2048 */
    4, 5, 7, 3, 5, 7, 15, 4,        /* 2304 .. 4096 */
    8, 5, 7, 6, 10, 7, 15, 8,       /* 4608 .. 8192 */
    9, 10, 11, 12, 13, 14, 15, 16,  /* 9216 .. 16384 */
};

/* Class index and chunk size in units of a request of 1..SLAB_MAX_CHUNK. */
static inline unsigned
size_class(size_t size, unsigned *units)
{
    if (size <= SLAB_SMALL_MAX) {
        *units = (unsigned)((size + SLAB_UNIT - 1) / SLAB_UNIT);
        return *units - 1;
    }
    size_t n = size - 1;
    unsigned lg = (unsigned)(63 - __builtin_clzll((unsigned long long)n)); /* 10..13 */
    unsigned shift = lg - 3;
    unsigned k = (unsigned)(n >> shift); /* 8..15 */
    *units = ((k + 1) << shift) / SLAB_UNIT;
    return SLAB_SMALL_CLASSES + (lg - 10) * 8 + (k - 8);
}

static inline unsigned
class_pages(unsigned cls)
{
    return cls < SLAB_SMALL_CLASSES ? 1 : span_pages_medium[cls - SLAB_SMALL_CLASSES];
}

size_t
slab_span_pages(size_t size)
{
    unsigned units;
    if (size == 0 || size > SLAB_MAX_CHUNK) {
        return 0;
    }
    return class_pages(size_class(size, &units));
}

static void
slab_clear_lists(struct slab *s)
{
    s->frontier = SLAB_PAGE; /* page 0 stays unused */
    memset(s->partial, 0, sizeof(s->partial));
    memset(s->pool_warm, 0, sizeof(s->pool_warm));
    memset(s->pool_cold, 0, sizeof(s->pool_cold));
    s->warm_mask = 0;
    s->cold_mask = 0;
    s->pooled = 0;
    s->pages_used = 0;
    s->chunk_bytes = 0;
}

int
slab_init(struct slab *s, size_t bytes)
{
    memset(s, 0, sizeof(*s));
    if (bytes == 0 || bytes > SLAB_REGION_MAX) {
        bytes = SLAB_REGION_MAX;
    }
    bytes = (bytes + SLAB_PAGE - 1) & ~(size_t)(SLAB_PAGE - 1);
    void *p = mmap(NULL, bytes, PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        return -ENOMEM;
    }
    s->base = p;
    s->reserved = bytes;
    slab_clear_lists(s);
    return 0;
}

void
slab_deinit(struct slab *s)
{
    if (s->base != NULL) {
        munmap(s->base, s->reserved);
    }
    free(s->pages);
    memset(s, 0, sizeof(*s));
}

void
slab_reset(struct slab *s)
{
    if (s->frontier > SLAB_PAGE) {
        madvise(s->base + SLAB_PAGE, s->frontier - SLAB_PAGE, MADV_DONTNEED);
    }
    free(s->pages);
    s->pages = NULL;
    s->pages_cap = 0;
    slab_clear_lists(s);
}

size_t
slab_resident(const struct slab *s)
{
    return (s->pages_used + s->pooled) * SLAB_PAGE;
}

/* ---- page lists ---- */

static void
partial_push(struct slab *s, unsigned cls, uint32_t pi)
{
    struct slab_page *pg = &s->pages[pi];
    pg->prev = 0;
    pg->next = s->partial[cls];
    if (pg->next != 0) {
        s->pages[pg->next].prev = pi;
    }
    s->partial[cls] = pi;
}

static void
partial_unlink(struct slab *s, unsigned cls, uint32_t pi)
{
    struct slab_page *pg = &s->pages[pi];
    if (pg->prev != 0) {
        s->pages[pg->prev].next = pg->next;
    } else {
        s->partial[cls] = pg->next;
    }
    if (pg->next != 0) {
        s->pages[pg->next].prev = pg->prev;
    }
}


/* ---- the pool of empty spans ---- */

static void
pool_put(struct slab *s, uint32_t *lists, uint32_t *mask, uint32_t pi, unsigned n)
{
    struct slab_page *pg = &s->pages[pi];
    pg->cls = SLAB_NO_CLASS;
    pg->used = (uint16_t)n;
    pg->next = lists[n];
    lists[n] = pi;
    *mask |= 1u << n;
}

static uint32_t
pool_get(struct slab *s, uint32_t *lists, uint32_t *mask, unsigned n)
{
    uint32_t pi = lists[n];
    lists[n] = s->pages[pi].next;
    if (lists[n] == 0) {
        *mask &= ~(1u << n);
    }
    return pi;
}

/* Return at least SLAB_POOL_BATCH warm pages (longest spans first) to the
 * kernel, one madvise per run of adjacent pages, and move them to the cold
 * pool. */
static void
pool_release_batch(struct slab *s)
{
    uint32_t head[SLAB_POOL_BATCH];
    unsigned len[SLAB_POOL_BATCH];
    unsigned n = 0, pages = 0;
    while (pages < SLAB_POOL_BATCH && s->warm_mask != 0) {
        unsigned l = 31u - (unsigned)__builtin_clz(s->warm_mask);
        uint32_t pi = pool_get(s, s->pool_warm, &s->warm_mask, l);
        /* insertion sort, ascending */
        unsigned j = n++;
        while (j > 0 && head[j - 1] > pi) {
            head[j] = head[j - 1];
            len[j] = len[j - 1];
            j--;
        }
        head[j] = pi;
        len[j] = l;
        pages += l;
    }
    s->pooled -= pages;
    unsigned i = 0;
    while (i < n) {
        unsigned j = i + 1;
        while (j < n && head[j - 1] + len[j - 1] == head[j]) {
            j++;
        }
        /* head[i] .. head[j - 1] + len[j - 1] is a run of adjacent pages */
        madvise(s->base + (size_t)head[i] * SLAB_PAGE,
                (size_t)(head[j - 1] + len[j - 1] - head[i]) * SLAB_PAGE,
                MADV_DONTNEED);
        i = j;
    }
    /* Pushed highest first, so the cold pool hands out low pages first. */
    while (n > 0) {
        n--;
        pool_put(s, s->pool_cold, &s->cold_mask, head[n], len[n]);
    }
}

/* A never-used span of n pages from the frontier (committing further
 * steps if needed), or 0 when the region is full or the kernel says no. */
static uint32_t
frontier_take(struct slab *s, unsigned n)
{
    size_t need = (size_t)n * SLAB_PAGE;
    if (s->frontier + need > s->reserved) {
        return 0;
    }
    while (s->frontier + need > s->committed) {
        size_t step = s->committed;
        if (step < SLAB_COMMIT_MIN) {
            step = SLAB_COMMIT_MIN;
        } else if (step > SLAB_COMMIT_MAX) {
            step = SLAB_COMMIT_MAX;
        }
        if (step > s->reserved - s->committed) {
            step = s->reserved - s->committed;
        }
        if (mprotect(s->base + s->committed, step, PROT_READ | PROT_WRITE) != 0) {
            return 0;
        }
        s->committed += step;
    }
    uint32_t pi = (uint32_t)(s->frontier / SLAB_PAGE);
    if (pi + n > s->pages_cap) {
        size_t cap = s->pages_cap ? s->pages_cap : 256;
        size_t max = s->reserved / SLAB_PAGE;
        while (cap < pi + n) {
            cap *= 2;
        }
        if (cap > max) {
            cap = max;
        }
        s->pages = xrealloc(s->pages, cap * sizeof(*s->pages));
        s->pages_cap = cap;
    }
    s->frontier += need;
    return pi;
}

/* An empty span of n pages: warm, a longer warm one split, cold, a longer
 * cold one split, the frontier. 0 when there is none. */
static uint32_t
span_take(struct slab *s, unsigned n)
{
    uint32_t longer = ~((2u << n) - 1);
    uint32_t pi;
    unsigned l;
    if (s->warm_mask & (1u << n)) {
        s->pooled -= n;
        return pool_get(s, s->pool_warm, &s->warm_mask, n);
    }
    if (s->warm_mask & longer) {
        l = (unsigned)__builtin_ctz(s->warm_mask & longer);
        pi = pool_get(s, s->pool_warm, &s->warm_mask, l);
        pool_put(s, s->pool_warm, &s->warm_mask, pi + n, l - n);
        s->pooled -= n;
        return pi;
    }
    if (s->cold_mask & (1u << n)) {
        return pool_get(s, s->pool_cold, &s->cold_mask, n);
    }
    if (s->cold_mask & longer) {
        l = (unsigned)__builtin_ctz(s->cold_mask & longer);
        pi = pool_get(s, s->pool_cold, &s->cold_mask, l);
        pool_put(s, s->pool_cold, &s->cold_mask, pi + n, l - n);
        return pi;
    }
    return frontier_take(s, n);
}

/* Give class `cls` a fresh empty span at the head of its partial list. */
static uint32_t
span_open(struct slab *s, unsigned cls)
{
    unsigned n = class_pages(cls);
    uint32_t pi = span_take(s, n);
    if (pi == 0) {
        return 0;
    }
    struct slab_page *pg = &s->pages[pi];
    pg->cls = (uint16_t)cls;
    pg->used = 0;
    pg->free_head = SLAB_NONE;
    pg->bump = 0;
    for (unsigned i = 1; i < n; i++) {
        s->pages[pi + i].cls = SLAB_TAIL;
        s->pages[pi + i].next = pi;
    }
    s->pages_used += n;
    partial_push(s, cls, pi);
    return pi;
}

/* The last chunk of span pi (class cls) is gone: to the warm pool. */
static void
span_close(struct slab *s, unsigned cls, uint32_t pi)
{
    unsigned n = class_pages(cls);
    pool_put(s, s->pool_warm, &s->warm_mask, pi, n);
    s->pooled += n;
    s->pages_used -= n;
    if (s->pooled >= SLAB_POOL_KEEP + SLAB_POOL_BATCH) {
        pool_release_batch(s);
    }
}

/* ---- chunks ---- */

static inline uint16_t *
chunk_link(const struct slab *s, uint32_t pi, unsigned off)
{
    return (uint16_t *)(s->base + (size_t)pi * SLAB_PAGE + (size_t)off * SLAB_UNIT);
}

uint32_t
slab_alloc(struct slab *s, size_t size)
{
    if (size - 1 >= SLAB_MAX_CHUNK) { /* 0 wraps around */
        return 0;
    }
    unsigned units;
    unsigned cls = size_class(size, &units);
    uint32_t pi = s->partial[cls];
    if (pi == 0 && (pi = span_open(s, cls)) == 0) {
        return 0;
    }
    struct slab_page *pg = &s->pages[pi];
    unsigned off;
    if (pg->free_head != SLAB_NONE) {
        off = pg->free_head;
        pg->free_head = *chunk_link(s, pi, off);
    } else {
        off = pg->bump;
        pg->bump = (uint16_t)(off + units);
    }
    pg->used++;
    if (pg->free_head == SLAB_NONE &&
        pg->bump + units > class_pages(cls) * SLAB_UNITS_PER_PAGE) {
        /* full: it is the head of the list, so this is a pop */
        s->partial[cls] = pg->next;
        if (pg->next != 0) {
            s->pages[pg->next].prev = 0;
        }
    }
    s->chunk_bytes += (size_t)units * SLAB_UNIT;
    return (pi << SLAB_PAGE_SHIFT) + off;
}

void
slab_free(struct slab *s, uint32_t ref, size_t size)
{
    unsigned units;
    unsigned cls = size_class(size, &units);
    uint32_t pi = ref >> SLAB_PAGE_SHIFT;
    assert(pi != 0 && (size_t)pi * SLAB_PAGE < s->frontier);
    if (s->pages[pi].cls == SLAB_TAIL) {
        pi = s->pages[pi].next;
    }
    unsigned off = ref - (pi << SLAB_PAGE_SHIFT);
    struct slab_page *pg = &s->pages[pi];
    assert(pg->cls == cls && pg->used > 0 && off + units <= pg->bump);
    int was_full = pg->free_head == SLAB_NONE &&
                   pg->bump + units > class_pages(cls) * SLAB_UNITS_PER_PAGE;
    *chunk_link(s, pi, off) = pg->free_head;
    pg->free_head = (uint16_t)off;
    pg->used--;
    s->chunk_bytes -= (size_t)units * SLAB_UNIT;
    if (pg->used == 0) {
        if (!was_full) {
            partial_unlink(s, cls, pi);
        }
        span_close(s, cls, pi);
    } else if (was_full) {
        partial_push(s, cls, pi);
    }
}
