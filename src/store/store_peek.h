/*
 * store_peek.h -- look at a key without touching it (OBJECT, MEMORY USAGE):
 * no hit or miss counted, no access reported to the eviction policy, an
 * expired item not removed (reported absent).
 */
#ifndef CRAB_STORE_STORE_PEEK_H
#define CRAB_STORE_STORE_PEEK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;

struct store_key_info {
    size_t vlen;         /* value length */
    char head[24];       /* the value's first min(vlen, 24) bytes */
    size_t item_mem;     /* bytes of the item (chunk, or chunk + body) */
    size_t index_mem;    /* its share of the shard's index: table bytes / keys */
    bool freq_valid;     /* the policy is W-TinyLFU: freq is its sketch's */
    unsigned freq;       /* the sketch's estimate of recent accesses, 0..16 */
};

/* Fill *out for key; false when it does not exist (or its time is up).
 * Takes the key's shard lock. */
bool store_key_info(struct store *st, const char *key, size_t klen, int64_t now,
                    struct store_key_info *out);

/* Bytes of every shard's index tables (MEMORY STATS). */
size_t store_index_memory(struct store *st);

#endif
