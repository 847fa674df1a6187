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

#endif
