/*
 * mem.h -- allocation that never returns NULL.
 *
 * Small allocations that fail abort the process with a message (as Redis's
 * zmalloc and h2o do): there is no sane recovery from a failed 64-byte malloc.
 * Running out of the *dataset* budget (max_memory) is a different thing and is
 * handled by the store (eviction or an OOM reply), never here.
 */
#ifndef CRAB_UTIL_MEM_H
#define CRAB_UTIL_MEM_H

#include <stddef.h>

void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *ptr, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

/* Bytes the allocator really reserved for ptr (>= the size asked for). */
size_t mem_usable(const void *ptr);

/*
 * Big zeroed arrays (hash tables, frequency sketches) straight from the
 * kernel: freeing one returns its pages at once. Through malloc, jemalloc
 * keeps freed pages dirty for its decay time (10 s, and only while it is
 * called), so the tables a growing store leaves behind stayed in RSS:
 * 4.7 bytes per key after loading 1M keys. Arrays under BIG_MIN come from
 * calloc (a page each would waste more than it saves). big_alloc aborts on
 * failure like xmalloc; big_free and big_size take the size given to
 * big_alloc; big_size is the bytes really held (whole pages, or the
 * allocator's size), what memory accounting should count.
 */
#define BIG_MIN ((size_t)64 * 1024)
void *big_alloc(size_t size);
void big_free(void *ptr, size_t size);
size_t big_size(const void *ptr, size_t size);

#endif
