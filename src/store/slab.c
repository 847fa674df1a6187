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
 * reused before the frontier moves). A span entering the cold pool is
 * merged with the cold spans on either side (boundary tags: a cold span's
 * last page names its head), so pieces cut off for short spans grow back
 * into long ones; cold spans of SLAB_SPAN_MAX pages or more share the last
 * list. A span of n pages comes from, in order: the shortest warm list of
 * n pages or more (the rest stays warm), the shortest such cold list (the
 * rest stays cold), the frontier. Bitmaps of the non-empty lists make each
 * step one mask and count-trailing-zeros. Warm spans are not merged (there
 * are few of them), so their pieces wait to be released.
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
#define SLAB_COLD 0xFFFDu                         /* span head, cold pool */
#define SLAB_COLD_END 0xFFFCu                     /* last page of a cold span */
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

/* Pages per span of each medium class (1088, 1152, ..., 16384): the
 * fewest pages that hold 4 chunks or more with a tail under 3% of the span,
 * or, for the six classes where no span of up to 16 pages does (3968 3.1%,
 * 7936 3.1%, 11776 4.2%, 13824 3.6%, 14848 3.3%, 15872 3.1%), the one with
 * the smallest tail. */
static const uint8_t span_pages_medium[SLAB_MEDIUM_CLASSES] = {
    3, 2, 3, 5, 2, 6, 4, 3, 2, 5, 3, 4, 5, 8, 16, 2,          /* 1088 .. 2048 */
    6, 4, 3, 5, 4, 7, 8, 3, 4, 5, 6, 7, 10, 15, 4, 4,         /* 2176 .. 4096 */
    12, 8, 6, 5, 8, 7, 13, 6, 8, 10, 12, 7, 11, 15, 8, 8,     /* 4352 .. 8192 */
    13, 9, 12, 10, 16, 11, 12, 12, 16, 13, 14, 14, 15, 15, 16, 16, /* 8704 .. 16384 */
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
    unsigned shift = lg - 4;
    unsigned k = (unsigned)(n >> shift); /* 16..31 */
    *units = ((k + 1) << shift) / SLAB_UNIT;
    return SLAB_SMALL_CLASSES + (lg - 10) * 16 + (k - 16);
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

/* A pooled span's length in pages (cold spans can exceed SLAB_SPAN_MAX
 * once merged), kept in used (low half) and bump (high half). */
static inline uint32_t
pool_len(const struct slab_page *pg)
{
    return pg->used | (uint32_t)pg->bump << 16;
}

static inline unsigned
pool_index(uint32_t len)
{
    return len < SLAB_SPAN_MAX ? len : SLAB_SPAN_MAX;
}

/* Push span pi of len pages on a pool list; mark is SLAB_NO_CLASS (warm)
 * or SLAB_COLD. */
static void
pool_put(struct slab *s, uint32_t *lists, uint32_t *mask, uint32_t pi,
         uint32_t len, uint16_t mark)
{
    struct slab_page *pg = &s->pages[pi];
    unsigned i = pool_index(len);
    pg->cls = mark;
    pg->used = (uint16_t)len;
    pg->bump = (uint16_t)(len >> 16);
    pg->prev = 0;
    pg->next = lists[i];
    if (pg->next != 0) {
        s->pages[pg->next].prev = pi;
    }
    lists[i] = pi;
    *mask |= 1u << i;
}

static void
pool_unlink(struct slab *s, uint32_t *lists, uint32_t *mask, uint32_t pi)
{
    struct slab_page *pg = &s->pages[pi];
    unsigned i = pool_index(pool_len(pg));
    if (pg->prev != 0) {
        s->pages[pg->prev].next = pg->next;
    } else {
        lists[i] = pg->next;
        if (lists[i] == 0) {
            *mask &= ~(1u << i);
        }
    }
    if (pg->next != 0) {
        s->pages[pg->next].prev = pg->prev;
    }
}

/* A cold span: head marked SLAB_COLD, last page SLAB_COLD_END naming the
 * head, so that a span freed next to it on either side finds it. */
static void
cold_put(struct slab *s, uint32_t pi, uint32_t len)
{
    pool_put(s, s->pool_cold, &s->cold_mask, pi, len, SLAB_COLD);
    if (len > 1) {
        s->pages[pi + len - 1].cls = SLAB_COLD_END;
        s->pages[pi + len - 1].next = pi;
    }
}

/* Add a span just returned to the kernel to the cold pool, merged with the
 * cold spans around it. Spans tile the pages below the frontier, so the
 * page before pi ends a span and the page after the span starts one. */
static void
cold_insert(struct slab *s, uint32_t pi, uint32_t len)
{
    uint32_t right = pi + len;
    if ((size_t)right * SLAB_PAGE < s->frontier && s->pages[right].cls == SLAB_COLD) {
        len += pool_len(&s->pages[right]);
        pool_unlink(s, s->pool_cold, &s->cold_mask, right);
    }
    const struct slab_page *lp = &s->pages[pi - 1];
    if (pi > 1 && (lp->cls == SLAB_COLD || lp->cls == SLAB_COLD_END)) {
        uint32_t left = lp->cls == SLAB_COLD ? pi - 1 : lp->next;
        len += pool_len(&s->pages[left]);
        pool_unlink(s, s->pool_cold, &s->cold_mask, left);
        pi = left;
    }
    cold_put(s, pi, len);
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
        uint32_t pi = s->pool_warm[l];
        pool_unlink(s, s->pool_warm, &s->warm_mask, pi);
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
    for (i = 0; i < n; i++) {
        cold_insert(s, head[i], len[i]);
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
 * cold one split (the first fit of its length list), the frontier. 0 when
 * there is none. */
static uint32_t
span_take(struct slab *s, unsigned n)
{
    uint32_t fit = ~((1u << n) - 1); /* lists of n pages or more */
    uint32_t pi, len;
    unsigned i;
    if (s->warm_mask & fit) {
        i = (unsigned)__builtin_ctz(s->warm_mask & fit);
        pi = s->pool_warm[i];
        pool_unlink(s, s->pool_warm, &s->warm_mask, pi);
        if (i > n) {
            pool_put(s, s->pool_warm, &s->warm_mask, pi + n, i - n, SLAB_NO_CLASS);
        }
        s->pooled -= n;
        return pi;
    }
    if (s->cold_mask & fit) {
        i = (unsigned)__builtin_ctz(s->cold_mask & fit);
        pi = s->pool_cold[i];
        len = pool_len(&s->pages[pi]);
        pool_unlink(s, s->pool_cold, &s->cold_mask, pi);
        if (len > n) {
            cold_put(s, pi + n, len - n);
        }
        return pi;
    }
    return frontier_take(s, n);
}

/* Give class `cls` a fresh empty span at the head of its partial list
 * (out of line: slab_alloc's common case takes a chunk of a listed span). */
static __attribute__((noinline)) uint32_t
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
    pool_put(s, s->pool_warm, &s->warm_mask, pi, n, SLAB_NO_CLASS);
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

/* The rare ends of slab_free, out of line so that the common free (a span
 * that had and keeps free chunks) pays no frame for them: the span was full
 * (back on its class's list) or is now empty (to the pool). */
static __attribute__((noinline)) void
free_relist(struct slab *s, unsigned cls, uint32_t pi, int was_full)
{
    if (s->pages[pi].used == 0) {
        if (!was_full) {
            partial_unlink(s, cls, pi);
        }
        span_close(s, cls, pi);
    } else {
        partial_push(s, cls, pi);
    }
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
    if (pg->used == 0 || was_full) {
        free_relist(s, cls, pi, was_full);
    }
}
