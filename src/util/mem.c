/* mem.c -- see mem.h. */
#include "util/mem.h"

#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
oom(size_t size)
{
    fprintf(stderr, "crabcache: out of memory allocating %zu bytes\n", size);
    abort();
}

void *
xmalloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (p == NULL) {
        oom(size);
    }
    return p;
}

void *
xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL) {
        oom(n * size);
    }
    return p;
}

void *
xrealloc(void *ptr, size_t size)
{
    void *p = realloc(ptr, size ? size : 1);
    if (p == NULL) {
        oom(size);
    }
    return p;
}

char *
xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

char *
xstrndup(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

size_t
mem_usable(const void *ptr)
{
    return ptr ? malloc_usable_size((void *)ptr) : 0;
}

static size_t
page_round(size_t size)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    return (size + pg - 1) & ~(pg - 1);
}

void *
big_alloc(size_t size)
{
    if (size < BIG_MIN) {
        return xcalloc(1, size);
    }
    void *p = mmap(NULL, page_round(size), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
    if (p == MAP_FAILED) {
        oom(size);
    }
    return p; /* anonymous pages read as zero */
}

void
big_free(void *ptr, size_t size)
{
    if (ptr == NULL) {
        return;
    }
    if (size < BIG_MIN) {
        free(ptr);
    } else {
        munmap(ptr, page_round(size));
    }
}

size_t
big_size(const void *ptr, size_t size)
{
    return size < BIG_MIN ? mem_usable(ptr) : page_round(size);
}
