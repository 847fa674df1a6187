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
 * Chunks. Requests up to SLAB_MAX_CHUNK bytes are rounded up to a class, a
 * multiple of SLAB_UNIT (4 bytes: a 29-byte item takes 32, where jemalloc's
 * classes would give 32 and 48 for 33). Each class carves 4 KiB pages
 * into equal chunks; a page is handed back to the shard's pool when its
 * last chunk is freed, and pooled pages beyond a small reserve are returned
 * to the kernel (madvise), so RSS follows what is stored. Requests above
 * SLAB_MAX_CHUNK are not served here (the store keeps such values in their
 * own allocation).
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
#define SLAB_MAX_CHUNK 1024u
#define SLAB_CLASSES (SLAB_MAX_CHUNK / SLAB_UNIT)

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
    uint32_t partial[SLAB_CLASSES]; /* per class: pages with a free chunk */
    uint32_t pool_warm;    /* empty pages still resident (LIFO) */
    uint32_t pool_cold;    /* empty pages returned to the kernel */
    size_t pooled;         /* pages in pool_warm */
    size_t pages_used;     /* pages holding at least one chunk */
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

/* The class size a request of `size` bytes (1..SLAB_MAX_CHUNK) occupies. */
static inline size_t
slab_class_size(size_t size)
{
    return (size + SLAB_UNIT - 1) & ~(size_t)(SLAB_UNIT - 1);
}

/* A chunk of at least `size` bytes (1..SLAB_MAX_CHUNK), or 0 when the region
 * is exhausted or the kernel refuses to commit more memory. */
uint32_t slab_alloc(struct slab *s, size_t size);
/* Give back a chunk; `size` is the size it was allocated with (same class). */
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

/* Bytes of pages holding chunks or pooled but still resident: what the
 * slab adds to RSS, short of the bookkeeping arrays. */
size_t slab_resident(const struct slab *s);

#endif
