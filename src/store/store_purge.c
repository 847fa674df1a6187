/*
 * store_purge.c -- giving memory freed by eviction back to the kernel.
 */
#include "store/store.h"
#include "store/store_int.h"

#include <stdatomic.h>
#include <stddef.h>

/*
 * Giving evicted memory back. The allocator keeps the pages of freed items
 * as dirty pages for a while (jemalloc's dirty decay is 10 s), so under a
 * write flood of mixed sizes RSS ran at 1.07-1.20 x max_memory above the
 * empty server while used memory stayed at 0.86 x max_memory (24 MB limit,
 * values 10 B-100 KB). Once eviction has freed 1/64 of max_memory (at
 * least 64 KiB), the evicting thread (a writer in store_make_room, or the
 * cron) asks the allocator to return its dirty pages: the peak RSS of that
 * flood fell to 0.97-1.10 x max_memory above the empty server.
 * Both symbols are weak: a build without jemalloc uses glibc's malloc_trim,
 * one with neither (or a sanitizer's allocator) skips the step.
 *
 * The bytes freed since the last purge are counted per store
 * (st->purge_pending; they were one process-wide counter): the allocator is
 * the process's, but the threshold is a store's max_memory, and a second
 * store in the process (tests, a staging keyspace) must neither trigger
 * nor delay the purges of the first.
 */
extern int mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen)
    __attribute__((weak));
extern int malloc_trim(size_t pad) __attribute__((weak));

void
store__maybe_purge(struct store *st)
{
    size_t max = atomic_load_explicit(&st->max_memory, memory_order_relaxed);
    size_t threshold = max / 64 > 64 * 1024 ? max / 64 : 64 * 1024;
    if (atomic_load_explicit(&st->purge_pending, memory_order_relaxed) < threshold) {
        return;
    }
    atomic_store_explicit(&st->purge_pending, 0, memory_order_relaxed);
    atomic_fetch_add_explicit(&st->purges, 1, memory_order_relaxed);
    if (mallctl) {
        /* "arena.<MALLCTL_ARENAS_ALL>.purge": every arena's dirty pages */
        mallctl("arena.4096.purge", NULL, NULL, NULL, 0);
    } else if (malloc_trim) {
        malloc_trim(0);
    }
}
