/* item.c -- see item.h. */
#include "store/item.h"

#include <stdlib.h>

#include "util/log.h"
#include "util/mem.h"

static bool
is_wide(size_t klen, size_t vlen)
{
    return klen > 255 || vlen > 255;
}

/* Bytes before the key (or before the body pointer of a large item). */
static size_t
head_size(size_t klen, size_t vlen, bool expires)
{
    return offsetof(struct item, data) + (expires ? 8 : 0) + (is_wide(klen, vlen) ? 8 : 0);
}

static bool
is_large(size_t klen, size_t vlen, bool expires)
{
    return head_size(klen, vlen, expires) + klen + vlen > SLAB_MAX_CHUNK;
}

size_t
item_chunk_size(size_t klen, size_t vlen, bool expires)
{
    size_t h = head_size(klen, vlen, expires);
    return is_large(klen, vlen, expires) ? h + sizeof(char *) : h + klen + vlen;
}

static struct item *
chunk_alloc(struct slab *s, size_t size)
{
    uint32_t ref = slab_alloc(s, size);
    if (ref == 0) {
        log_error("out of memory: the shard's slab region cannot grow",
                  "\"bytes\":%zu,\"resident\":%zu", size, slab_resident(s));
        abort();
    }
    return item_at(s, ref);
}

struct item *
item_new(struct slab *s, const char *key, size_t klen, size_t vlen, int64_t expire,
         bool expire_field)
{
    bool exp = expire_field || expire != 0;
    struct item *it = chunk_alloc(s, item_chunk_size(klen, vlen, exp));
    it->hnext = 0;
    evict_node_init(&it->evict);
    uint8_t f = 0;
    char *p = it->data;
    if (exp) {
        f |= ITEM_EXPIRES;
        memcpy(p, &expire, 8);
        p += 8;
    }
    if (is_wide(klen, vlen)) {
        f |= ITEM_WIDE;
        uint32_t k = (uint32_t)klen, v = (uint32_t)vlen;
        memcpy(p, &k, 4);
        memcpy(p + 4, &v, 4);
        p += 8;
        it->evict.user[1] = it->evict.user[2] = 0;
    } else {
        it->evict.user[1] = (uint8_t)klen;
        it->evict.user[2] = (uint8_t)vlen;
    }
    if (is_large(klen, vlen, exp)) {
        f |= ITEM_LARGE;
        char *body = xmalloc(klen + vlen);
        memcpy(p, &body, sizeof(body));
        p = body;
    }
    ITEM_FLAGS(it) = f;
    memcpy(p, key, klen);
    return it;
}

static size_t
chunk_size_of(const struct item *it)
{
    return item_chunk_size(item_klen(it), item_vlen(it), item_has_expire_field(it));
}

size_t
item_mem(const struct item *it)
{
    size_t m = slab_class_size(chunk_size_of(it));
    if (ITEM_FLAGS(it) & ITEM_LARGE) {
        m += mem_usable(item_body(it));
    }
    return m;
}

void
item_free(struct slab *s, struct item *it)
{
    if (ITEM_FLAGS(it) & ITEM_LARGE) {
        free(item_body(it));
    }
    slab_free(s, item_ref(s, it), chunk_size_of(it));
}

struct item *
item_grow_expire(struct slab *s, struct item *it)
{
    size_t klen = item_klen(it), vlen = item_vlen(it);
    struct item *nit = item_new(s, item_key(it), klen, vlen, 0, true);
    memcpy(item_val(nit), item_cval(it), vlen);
    /* the policy's node goes with it; the caller relinks, then frees it */
    nit->evict.prev = it->evict.prev;
    nit->evict.next = it->evict.next;
    nit->evict.seg = it->evict.seg;
    return nit;
}
