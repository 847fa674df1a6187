/*
 * slab.h -- a shard's item memory: chunks in one reserved virtual region,
 * named by 32-bit references instead of pointers.
 *
 * Why. A pointer costs 8 bytes and every item is pointed at several times
 * (hash chain, eviction links); a reference into the shard's own region
 * costs 4. The region is reserved once (address space only, nothing
 * committed) so its base never moves: reference r names the byte at
 * base + r * SLAB_UNIT, and turning one into a pointer is one shift and add.
 *
 * Classes. Requests up to SLAB_MAX_CHUNK (16 KiB) bytes are rounded up to
 * a class:
 *   - small, up to 1024 bytes: every multiple of SLAB_UNIT (4 bytes: a
 *     29-byte item takes 32, where jemalloc's classes would give 32 and 48
 *     for 33); 256 classes, each carving single 4 KiB pages;
 *   - medium, 1025..16384 bytes: 16 classes per power of two (1088, 1152,
 *     ..., 2048, 2176, ..., 4096, 4352, ..., 16384), so a class is at most
 *     6.25% above the request. A 1 KiB or 2 KiB value with its header and
 *     key fits the class just above the power of two (1088, 2176) instead
 *     of one 12.5% above it; 64 classes, each carving spans of 1..16
 *     contiguous pages chosen so that a span holds 4 chunks or more and its
 *     tail wastes under 3% (six classes of 3968 bytes or more cannot, and
 *     waste 3.1-4.2%; table in slab.c).
 * A page or span is handed back to the shard's pool when its last chunk is
 * freed, and pooled pages beyond a small reserve are returned to the kernel
 * (madvise, batched), so RSS follows what is stored. Requests above
 * SLAB_MAX_CHUNK are not served here (the store keeps such values in their
 * own allocation).
 *
 * Overhead. Beyond the class rounding: allocation fills the partially used
 * pages/spans of a class before it opens a new one, and chunks are handed
 * out in address order from a fresh span, so the untouched end of a span
 * taken from the frontier or the cold pool costs no RSS. The worst case
 * is every class holding a page or span with a single chunk: 896 KiB over
 * the small classes plus 1,737 KiB over the medium ones (sum of span size
 * minus one chunk), about 2.6 MiB per shard, plus the warm pool (under 48
 * pages, 192 KiB, between frees), plus 16 bytes of bookkeeping per page
 * of the region ever used (0.4%). Fragmentation by scattered frees (many spans of a class each holding a
 * few live chunks) is not bounded by the slab: holes are refilled first.
 *
 * Reference 0 is never returned (it means "none" to the hash table and the
 * eviction lists). Chunks are SLAB_UNIT-aligned; their contents are the
 * caller's.
 *
 * Thread-safety: none; one slab per shard, used under the shard lock.
 */
#ifndef CRAB_STORE_SLAB_H
#define CRAB_STORE_SLAB_H

#include <stddef.h>
#include <stdint.h>

#define SLAB_UNIT 4u
#define SLAB_PAGE 4096u
#define SLAB_SMALL_MAX 1024u    /* largest small class */
#define SLAB_MAX_CHUNK 16384u   /* largest medium class: the store's large threshold */
#define SLAB_SMALL_CLASSES (SLAB_SMALL_MAX / SLAB_UNIT) /* 256 */
#define SLAB_MEDIUM_CLASSES 64u /* 16 per power of two, 1088..16384 */
#define SLAB_CLASSES (SLAB_SMALL_CLASSES + SLAB_MEDIUM_CLASSES)
#define SLAB_SPAN_MAX 16u       /* pages in the largest span */

/* Default reservation per shard: 16 GiB, all a 32-bit reference reaches. */
#define SLAB_REGION_MAX ((size_t)UINT32_MAX * SLAB_UNIT + SLAB_UNIT)

struct slab_page; /* per-page bookkeeping, slab.c */

struct slab {
    char *base;            /* start of the reserved region */
    size_t reserved;       /* bytes of address space reserved */
    size_t committed;      /* bytes made accessible so far (from base) */
    size_t frontier;       /* pages below this offset have been handed out once */
    struct slab_page *pages; /* one entry per page of the region below frontier */
    size_t pages_cap;      /* entries allocated in pages */
    /* Page lists hold page indexes; 0 means none (page 0 is never handed
     * out, which is also what keeps reference 0 free). */
    uint32_t partial[SLAB_CLASSES]; /* per class: spans with a free chunk */
    /* Empty spans by length in pages (index 1..SLAB_SPAN_MAX; a small
     * class's page is a span of 1; merged cold spans of SLAB_SPAN_MAX pages
     * or more share the last list), and bitmaps of the non-empty lists. */
    uint32_t pool_warm[SLAB_SPAN_MAX + 1]; /* still resident (LIFO) */
    uint32_t pool_cold[SLAB_SPAN_MAX + 1]; /* returned to the kernel */
    uint32_t warm_mask;    /* bit n: pool_warm[n] is not empty */
    uint32_t cold_mask;    /* bit n: pool_cold[n] is not empty */
    size_t pooled;         /* pages in the pool_warm lists */
    size_t pages_used;     /* pages of spans holding at least one chunk */
    size_t chunk_bytes;    /* sum of the class sizes of allocated chunks */
};

/* Reserve a region of `bytes` (rounded to pages, at most SLAB_REGION_MAX;
 * 0 = SLAB_REGION_MAX). Nothing is committed yet. Returns 0 or -ENOMEM. */
int slab_init(struct slab *s, size_t bytes);
/* Unmap the region and free the bookkeeping. Every reference dies. */
void slab_deinit(struct slab *s);
/* Free every chunk at once (FLUSHALL): the region is kept, its pages go back
 * to the kernel. */
void slab_reset(struct slab *s);

/* The class size a request of `size` bytes (1..SLAB_MAX_CHUNK) occupies:
 * the next multiple of 4 up to 1024, then the next multiple of 1/16 of the
 * power of two below the request (no table, one clz). */
static inline size_t
slab_class_size(size_t size)
{
    if (size <= SLAB_SMALL_MAX) {
        return (size + SLAB_UNIT - 1) & ~(size_t)(SLAB_UNIT - 1);
    }
    size_t n = size - 1;
    unsigned shift = (unsigned)(63 - __builtin_clzll((unsigned long long)n)) - 4;
    return ((n >> shift) + 1) << shift;
}

/* A chunk of at least `size` bytes (1..SLAB_MAX_CHUNK), or 0 when the region
 * is exhausted or the kernel refuses to commit more memory. */
uint32_t slab_alloc(struct slab *s, size_t size);
/* Pages in the span that the class of a `size`-byte request carves: 1 for
 * the small classes, 2..16 for the medium ones; 0 if size is out of range. */
size_t slab_span_pages(size_t size);
/* Give back a chunk; `size` is the size it was allocated with (same class).
 * Finds the chunk's page or span from the reference alone, O(1). */
void slab_free(struct slab *s, uint32_t ref, size_t size);

static inline void *
slab_ptr(const struct slab *s, uint32_t ref)
{
    return s->base + (size_t)ref * SLAB_UNIT;
}

static inline uint32_t
slab_ref(const struct slab *s, const void *p)
{
    return (uint32_t)(((const char *)p - s->base) / SLAB_UNIT);
}

/* Bytes of the chunks handed out (their class sizes). */
static inline size_t
slab_chunk_bytes(const struct slab *s)
{
    return s->chunk_bytes;
}

/* Bytes of pages of spans holding chunks or pooled but still resident: an
 * upper bound of what the slab adds to RSS, short of the bookkeeping (the
 * never-touched end of a fresh span is counted but not resident). */
size_t slab_resident(const struct slab *s);

#endif
