/*
 * item.h -- one key/value pair in its shard's slab memory (store/slab.h).
 *
 * An item is a chunk of the shard's slab, named by a 32-bit reference (the
 * hash index and the policy's queues hold those, 4 bytes each). The item
 * itself carries no links, only a 3-byte header:
 *
 *   +------+------+------+----------+-------------+-------------+
 *   | meta | klen | vlen | [expire] | [lens]      | key | value |
 *   | 1    | 1    | 1    | [8]      | [4 + 4]     |             |
 *   +------+------+------+----------+-------------+-------------+
 *
 * meta:  the low 5 bits are the eviction policy's (EVICT_META_MASK: its
 *        segment and CLOCK bits), the top 3 the item's flags below.
 * klen, vlen: the lengths when both fit in a byte (and see ITEM_WIDE).
 *   ITEM_EXPIRES  an 8-byte absolute expiry (Unix ms, 0 = none) follows. An
 *                 item created without it and given a TTL later is moved to
 *                 a larger chunk (shard_set_expire); one whose TTL is removed
 *                 keeps the field, set to 0.
 *   ITEM_WIDE     key or value longer than 255 bytes. With klen != 0 in the
 *                 header (a key of 1..255 bytes, a value of up to 65,535 in
 *                 an item that is not large): one byte follows, the value
 *                 length's high byte, vlen its low byte. With klen == 0: both
 *                 lengths follow as 4-byte integers (header bytes 0); large
 *                 items always take this form. A 256-byte value thus costs 1
 *                 byte of lengths instead of 8.
 *   ITEM_LARGE    the item would not fit a slab chunk: key and value live in
 *                 their own allocation, whose pointer follows.
 * Fields after the header are not aligned and are read with memcpy. There
 * is no terminator: values are parsed with their length.
 *
 * For the benchmark's 16-byte keys and 10-byte values: 3 + 26 = 29 bytes,
 * a 32-byte chunk (the first layout: 70 bytes in jemalloc's 80 class).
 *
 * All fields are protected by the lock of the shard that holds the item.
 */
#ifndef CRAB_STORE_ITEM_H
#define CRAB_STORE_ITEM_H

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "store/slab.h"

struct item {
    uint8_t meta;
    uint8_t klen8;
    uint8_t vlen8;
    char data[];
};

#define ITEM_EXPIRES 0x20u
#define ITEM_WIDE 0x40u
#define ITEM_LARGE 0x80u
#define ITEM_FLAG_MASK 0xe0u

#define ITEM_FLAGS(it) ((it)->meta & ITEM_FLAG_MASK)

#define ITEM_MAX_KEY ((size_t)UINT32_MAX - 1)
#define ITEM_MAX_VALUE ((size_t)UINT32_MAX - 1)

/* Bytes of the chunk an item with these sizes takes (before the slab's
 * class rounding); above SLAB_MAX_CHUNK the item is ITEM_LARGE. */
size_t item_chunk_size(size_t klen, size_t vlen, bool expires);

/*
 * A new item in slab s holding a copy of key, vlen bytes of uninitialised
 * value (the caller fills item_val()) and the expiry (0 = none; with
 * `expire_field` the item gets an expiry field even for 0, e.g. when a TTL
 * is likely to follow). Not in any table yet; its node is unlinked. Aborts
 * when the slab or the allocator is out of memory, like xmalloc.
 */
struct item *item_new(struct slab *s, const char *key, size_t klen, size_t vlen,
                      int64_t expire, bool expire_field);
/* Give the item's memory back (it must be unlinked everywhere). */
void item_free(struct slab *s, struct item *it);
/* item_free, returning what item_mem() said the item held (one size
 * computation instead of two). */
size_t item_free_mem(struct slab *s, struct item *it);
/* Whether the item's chunk can take a value of vlen bytes (and this expiry,
 * 0 = none) in place: same chunk class, same layout, not large. */
bool item_fits_in_place(const struct item *it, size_t vlen, int64_t expire);
/* Set the value length (after item_fits_in_place said yes); the caller
 * writes the value bytes and the expiry. */
void item_set_vlen(struct item *it, size_t vlen);

/* Free the body of an ITEM_LARGE item now (the chunk stays, its body
 * pointer NULL): a removed item waiting for the policy to release its chunk
 * holds no more than that chunk. Returns the bytes freed (0 if not large). */
size_t item_drop_body(struct item *it);
/* A copy of the item with an expiry field (set to 0), in a new chunk, its
 * policy's meta bits copied too. A large item's body is not copied: both
 * point at it until the caller, having relinked the copy in the old one's
 * place, calls item_disown_body(old); then it disposes of the old chunk. */
struct item *item_grow_expire(struct slab *s, struct item *it);
/* The old copy of a large item no longer owns its body (see above). */
void item_disown_body(struct item *it);

static inline uint32_t
item_ref(const struct slab *s, const struct item *it)
{
    return slab_ref(s, it);
}

static inline struct item *
item_at(const struct slab *s, uint32_t ref)
{
    return (struct item *)slab_ptr(s, ref);
}

static inline size_t
item_lens_off(const struct item *it)
{
    return (ITEM_FLAGS(it) & ITEM_EXPIRES) ? 8 : 0;
}

/* Bytes of the length field after the expiry: 0, 1 or 8 (ITEM_WIDE above). */
static inline size_t
item_ext_size(const struct item *it)
{
    if (!(ITEM_FLAGS(it) & ITEM_WIDE)) {
        return 0;
    }
    return it->klen8 != 0 ? 1 : 8;
}

static inline size_t
item_klen(const struct item *it)
{
    if (!(ITEM_FLAGS(it) & ITEM_WIDE) || it->klen8 != 0) {
        return it->klen8;
    }
    uint32_t v;
    memcpy(&v, it->data + item_lens_off(it), 4);
    return v;
}

static inline size_t
item_vlen(const struct item *it)
{
    if (!(ITEM_FLAGS(it) & ITEM_WIDE)) {
        return it->vlen8;
    }
    if (it->klen8 != 0) {
        return it->vlen8 | (size_t)(uint8_t)it->data[item_lens_off(it)] << 8;
    }
    uint32_t v;
    memcpy(&v, it->data + item_lens_off(it) + 4, 4);
    return v;
}

/* Start of key + value. */
static inline char *
item_body(const struct item *it)
{
    uint8_t f = ITEM_FLAGS(it);
    const char *p = it->data + ((f & ITEM_EXPIRES) ? 8 : 0) + item_ext_size(it);
    if (f & ITEM_LARGE) {
        char *b;
        memcpy(&b, p, sizeof(b));
        return b;
    }
    return (char *)p;
}

static inline const char *
item_key(const struct item *it)
{
    return item_body(it);
}

static inline char *
item_val(struct item *it)
{
    return item_body(it) + item_klen(it);
}

static inline const char *
item_cval(const struct item *it)
{
    return item_body(it) + item_klen(it);
}

static inline int64_t
item_expire(const struct item *it)
{
    if (!(ITEM_FLAGS(it) & ITEM_EXPIRES)) {
        return 0;
    }
    int64_t v;
    memcpy(&v, it->data, 8);
    return v;
}

static inline bool
item_has_expire_field(const struct item *it)
{
    return (ITEM_FLAGS(it) & ITEM_EXPIRES) != 0;
}

/* Only for an item with the field (item_has_expire_field). */
static inline void
item_store_expire(struct item *it, int64_t ms)
{
    memcpy(it->data, &ms, 8);
}

/* Bytes of the chunk a non-ITEM_LARGE item takes, before the class
 * rounding (item_chunk_size of its lengths, read from its header). */
static inline size_t
item_small_chunk(const struct item *it)
{
    uint8_t f = ITEM_FLAGS(it);
    return offsetof(struct item, data) + ((f & ITEM_EXPIRES) ? 8 : 0) + item_ext_size(it) +
           item_klen(it) + item_vlen(it);
}

/* item_mem of an ITEM_LARGE item (item.c). */
size_t item__large_mem(const struct item *it);

/* Bytes this item holds: its chunk's class size, plus the allocator's size
 * of its body when ITEM_LARGE. Inline: the policy weighs items through it
 * on every eviction. */
static inline size_t
item_mem(const struct item *it)
{
    if (ITEM_FLAGS(it) & ITEM_LARGE) {
        return item__large_mem(it);
    }
    return slab_class_size(item_small_chunk(it));
}

/* item_free_mem for a caller that knows item_mem(it) already (`mem`, e.g.
 * the policy's weight of an evicted item): a small item's chunk is freed
 * by its class size (the class of its own size) without reading its header
 * again. Returns mem. */
static inline size_t
item_free_weighed(struct slab *s, struct item *it, size_t mem)
{
    if (ITEM_FLAGS(it) & ITEM_LARGE) {
        return item_free_mem(s, it);
    }
    assert(mem == item_mem(it));
    slab_free(s, item_ref(s, it), mem);
    return mem;
}

static inline int
item_key_eq(const struct item *it, const char *key, size_t klen)
{
    return item_klen(it) == klen && memcmp(item_key(it), key, klen) == 0;
}

static inline int
item_expired(const struct item *it, int64_t now_ms)
{
    int64_t e = item_expire(it);
    return e != 0 && e <= now_ms;
}

#endif
