/*
 * item.h -- one key/value pair, stored in a single allocation.
 *
 *   +------+-------+--------+------+------+-----+-----------+-------------+
 *   | next | evict | expire | klen | vlen | mem | key bytes | value bytes |
 *   | 8    | 16    | 8      | 4    | 4    | 4   | klen      | vlen        |
 *   +------+-------+--------+------+------+-----+-----------+-------------+
 *
 * next:   the hash-table chain (owned by ht.c, protected by the shard lock).
 * evict:  the eviction policy's links (evict/evict.h).
 * expire: absolute Unix time in ms, 0 = no expiry.
 * mem:    the allocator's size of this item, read once at creation (the
 *         memory accounting and the policy's weights use it on every change).
 * There is no terminator: values are parsed with their length, and a byte
 * saved here can be a whole size class (44 + 16 + 100 fits jemalloc's 160,
 * 44 + 16 + 100 + 1 needs 192).
 * All fields are protected by the lock of the shard that holds the item.
 */
#ifndef CRAB_STORE_ITEM_H
#define CRAB_STORE_ITEM_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "evict/evict.h"

struct item {
    struct item *next;
    struct evict_node evict;
    int64_t expire;
    uint32_t klen;
    uint32_t vlen;
    uint32_t mem;
    char data[];
};

#define ITEM_MAX_KEY ((size_t)UINT32_MAX - 1)
#define ITEM_MAX_VALUE ((size_t)UINT32_MAX - 1)

/* Allocate an item holding a copy of key and vlen bytes of uninitialised
 * value (the caller fills item_val()). The item is not in any table yet. */
struct item *item_create(const char *key, size_t klen, size_t vlen);
void item_free(struct item *it);
/* Bytes the allocator reserved for the item. */
static inline size_t
item_mem(const struct item *it)
{
    return it->mem;
}

static inline struct item *
item_of_node(const struct evict_node *n)
{
    return (struct item *)((const char *)n - offsetof(struct item, evict));
}

static inline const char *
item_key(const struct item *it)
{
    return it->data;
}

static inline char *
item_val(struct item *it)
{
    return it->data + it->klen;
}

static inline const char *
item_cval(const struct item *it)
{
    return it->data + it->klen;
}

static inline int
item_key_eq(const struct item *it, const char *key, size_t klen)
{
    return it->klen == klen && memcmp(it->data, key, klen) == 0;
}

static inline int
item_expired(const struct item *it, int64_t now_ms)
{
    return it->expire != 0 && it->expire <= now_ms;
}

#endif
