/*
 * slab.c -- a shard's item memory (see slab.h for the contract).
 *
 * Region. slab_init reserves the whole region with one PROT_NONE,
 * MAP_NORESERVE mapping: address space only. Pages are made accessible
 * (mprotect READ|WRITE) ahead of the frontier in growing steps (1 MiB,
 * doubling up to 64 MiB) so that opening a page is not a syscall; untouched
 * committed pages cost no RSS. Page 0 is never handed out, so reference 0
 * (and page index 0, the "none" of every list) stays free.
 *
 * Pages. Every page below the frontier has a 16-byte entry in s->pages:
 * its class, how many chunks are in use, the head of its free list and a
 * bump offset for chunks never handed out (so opening a page is O(1), no
 * carving loop). Offsets are in SLAB_UNITs within the page (0..1023); the
 * reference of a chunk is page * 1024 + offset, so neither alloc nor free
 * divides. A free chunk holds the offset of the next free chunk in its
 * first two bytes.
 *
 * Lists. Per class, a doubly linked list of the pages that have a free
 * chunk; allocation takes from its head, and a page that regains a free
 * chunk goes to the head, so holes are refilled before a new page is
 * opened. A page whose last chunk is freed leaves its class for the warm
 * pool (resident, LIFO, reused first by any class). When the warm pool
 * reaches SLAB_POOL_KEEP + SLAB_POOL_BATCH pages, SLAB_POOL_BATCH of them
 * are sorted and returned to the kernel with one madvise(MADV_DONTNEED)
 * per contiguous run, then kept on the cold pool (still committed, reused
 * before the frontier moves). New pages come from warm, then cold, then the
 * frontier.
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
#define SLAB_NO_CLASS 0xFFFFu                     /* page is pooled */
#define SLAB_COMMIT_MIN ((size_t)1 << 20)
#define SLAB_COMMIT_MAX ((size_t)64 << 20)
#define SLAB_POOL_KEEP 16u
#define SLAB_POOL_BATCH 32u

struct slab_page {
    uint32_t next;      /* partial or pool list, page index (0 = none) */
    uint32_t prev;      /* partial list only */
    uint16_t cls;       /* class index (units - 1), SLAB_NO_CLASS if pooled */
    uint16_t used;      /* chunks handed out */
    uint16_t free_head; /* offset of the first free chunk, SLAB_NONE */
    uint16_t bump;      /* offset of the first never-used chunk */
};

_Static_assert(sizeof(struct slab_page) == 16, "page entry is 16 bytes");
_Static_assert(SLAB_UNITS_PER_PAGE == 1u << SLAB_PAGE_SHIFT, "page shift");

static void
slab_clear_lists(struct slab *s)
{
    s->frontier = SLAB_PAGE; /* page 0 stays unused */
    memset(s->partial, 0, sizeof(s->partial));
    s->pool_warm = 0;
    s->pool_cold = 0;
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

/* Return SLAB_POOL_BATCH warm pages to the kernel, one madvise per run of
 * adjacent pages, and move them to the cold pool. */
static void
pool_release_batch(struct slab *s)
{
    uint32_t idx[SLAB_POOL_BATCH];
    unsigned n = 0;
    while (n < SLAB_POOL_BATCH && s->pool_warm != 0) {
        uint32_t pi = s->pool_warm;
        s->pool_warm = s->pages[pi].next;
        /* insertion sort, descending */
        unsigned j = n++;
        while (j > 0 && idx[j - 1] < pi) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = pi;
    }
    s->pooled -= n;
    unsigned i = 0;
    while (i < n) {
        unsigned j = i + 1;
        while (j < n && idx[j] + 1 == idx[j - 1]) {
            j++;
        }
        /* idx[j - 1] .. idx[i] is a run of adjacent pages */
        madvise(s->base + (size_t)idx[j - 1] * SLAB_PAGE,
                (size_t)(j - i) * SLAB_PAGE, MADV_DONTNEED);
        i = j;
    }
    /* Pushed highest first, so the cold pool hands out low pages first. */
    for (i = 0; i < n; i++) {
        s->pages[idx[i]].next = s->pool_cold;
        s->pool_cold = idx[i];
    }
}

static void
pool_push(struct slab *s, uint32_t pi)
{
    struct slab_page *pg = &s->pages[pi];
    pg->cls = SLAB_NO_CLASS;
    pg->next = s->pool_warm;
    s->pool_warm = pi;
    s->pooled++;
    s->pages_used--;
    if (s->pooled >= SLAB_POOL_KEEP + SLAB_POOL_BATCH) {
        pool_release_batch(s);
    }
}

/* A never-used page from the frontier (committing the next step if
 * needed), or 0 when the region is full or the kernel says no. */
static uint32_t
frontier_take(struct slab *s)
{
    if (s->frontier + SLAB_PAGE > s->reserved) {
        return 0;
    }
    if (s->frontier + SLAB_PAGE > s->committed) {
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
    if (pi >= s->pages_cap) {
        size_t cap = s->pages_cap ? s->pages_cap * 2 : 256;
        size_t max = s->reserved / SLAB_PAGE;
        if (cap > max) {
            cap = max;
        }
        s->pages = xrealloc(s->pages, cap * sizeof(*s->pages));
        s->pages_cap = cap;
    }
    s->frontier += SLAB_PAGE;
    return pi;
}

/* Give class `cls` a fresh empty page at the head of its partial list. */
static uint32_t
page_open(struct slab *s, unsigned cls)
{
    uint32_t pi = s->pool_warm;
    if (pi != 0) {
        s->pool_warm = s->pages[pi].next;
        s->pooled--;
    } else if ((pi = s->pool_cold) != 0) {
        s->pool_cold = s->pages[pi].next;
    } else if ((pi = frontier_take(s)) == 0) {
        return 0;
    }
    struct slab_page *pg = &s->pages[pi];
    pg->cls = (uint16_t)cls;
    pg->used = 0;
    pg->free_head = SLAB_NONE;
    pg->bump = 0;
    s->pages_used++;
    partial_push(s, cls, pi);
    return pi;
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
    unsigned units = (unsigned)((size + SLAB_UNIT - 1) / SLAB_UNIT);
    unsigned cls = units - 1;
    uint32_t pi = s->partial[cls];
    if (pi == 0 && (pi = page_open(s, cls)) == 0) {
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
    if (pg->free_head == SLAB_NONE && pg->bump + units > SLAB_UNITS_PER_PAGE) {
        /* full: it is the head of the list, so this is a pop */
        s->partial[cls] = pg->next;
        if (pg->next != 0) {
            s->pages[pg->next].prev = 0;
        }
    }
    s->chunk_bytes += (size_t)units * SLAB_UNIT;
    return (pi << SLAB_PAGE_SHIFT) | off;
}

void
slab_free(struct slab *s, uint32_t ref, size_t size)
{
    unsigned units = (unsigned)((size + SLAB_UNIT - 1) / SLAB_UNIT);
    unsigned cls = units - 1;
    uint32_t pi = ref >> SLAB_PAGE_SHIFT;
    unsigned off = ref & (SLAB_UNITS_PER_PAGE - 1);
    assert(pi != 0 && (size_t)pi * SLAB_PAGE < s->frontier);
    struct slab_page *pg = &s->pages[pi];
    assert(pg->cls == cls && pg->used > 0 && off + units <= pg->bump);
    int was_full = pg->free_head == SLAB_NONE &&
                   pg->bump + units > SLAB_UNITS_PER_PAGE;
    *chunk_link(s, pi, off) = pg->free_head;
    pg->free_head = (uint16_t)off;
    pg->used--;
    s->chunk_bytes -= (size_t)units * SLAB_UNIT;
    if (pg->used == 0) {
        if (!was_full) {
            partial_unlink(s, cls, pi);
        }
        pool_push(s, pi);
    } else if (was_full) {
        partial_push(s, cls, pi);
    }
}
