/*
 * shard.c -- a probe compiled as a source of cmd/ would be: it reads a field
 * of struct shard, whose definition is private to src/store/ (store_int.h).
 * It must not compile (ctest store_shard_is_private); store_shard_stats() is
 * the way to read a shard's figures.
 */
#include <stddef.h>

#include "store/store.h"

size_t probe_shard_mem(struct store *st);

size_t
probe_shard_mem(struct store *st)
{
    struct shard *sh = shard_lock(st, 0);
    size_t mem = sh->mem;
    shard_unlock(sh);
    return mem;
}
