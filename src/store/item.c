/* item.c -- see item.h. */
#include "store/item.h"

#include <stdlib.h>

#include "util/log.h"
#include "util/mem.h"

/* Bytes of the length field after the header (and the expiry): 0 when both
 * lengths fit the header's bytes; 1 (ITEM_WIDE with klen8 != 0: the value
 * length's high byte) for a key of 1..255 bytes and a value of up to 65,535
 * whose item is certainly not large; 8 (two 4-byte lengths, klen8 == 0)
 * otherwise. */
static size_t
ext_size(size_t klen, size_t vlen)
{
    if (klen <= 255 && vlen <= 255) {
        return 0;
    }
    if (klen >= 1 && klen <= 255 && vlen <= 65535 &&
        offsetof(struct item, data) + 8 + 1 + klen + vlen <= SLAB_MAX_CHUNK) {
        return 1;
    }
    return 8;
}

/* Bytes before the key (or before the body pointer of a large item). */
static size_t
head_size(size_t klen, size_t vlen, bool expires)
{
    return offsetof(struct item, data) + (expires ? 8 : 0) + ext_size(klen, vlen);
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
    it->meta = 0;
    uint8_t f = 0;
    char *p = it->data;
    if (exp) {
        f |= ITEM_EXPIRES;
        memcpy(p, &expire, 8);
        p += 8;
    }
    size_t ext = ext_size(klen, vlen);
    if (ext == 1) {
        f |= ITEM_WIDE;
        it->klen8 = (uint8_t)klen;
        it->vlen8 = (uint8_t)vlen;
        *p++ = (char)(uint8_t)(vlen >> 8);
    } else if (ext == 8) {
        f |= ITEM_WIDE;
        uint32_t k = (uint32_t)klen, v = (uint32_t)vlen;
        memcpy(p, &k, 4);
        memcpy(p + 4, &v, 4);
        p += 8;
        it->klen8 = it->vlen8 = 0;
    } else {
        it->klen8 = (uint8_t)klen;
        it->vlen8 = (uint8_t)vlen;
    }
    if (is_large(klen, vlen, exp)) {
        f |= ITEM_LARGE;
        char *body = xmalloc(klen + vlen);
        memcpy(p, &body, sizeof(body));
        p = body;
    }
    it->meta = f;
    memcpy(p, key, klen);
    return it;
}

/* The chunk size item_new asked for: a large item's header and body
 * pointer, a small one's header, key and value. */
static size_t
chunk_size_of(const struct item *it)
{
    if (ITEM_FLAGS(it) & ITEM_LARGE) {
        return item_chunk_size(item_klen(it), item_vlen(it), item_has_expire_field(it));
    }
    return item_small_chunk(it);
}

bool
item_fits_in_place(const struct item *it, size_t vlen, int64_t expire)
{
    uint8_t f = ITEM_FLAGS(it);
    size_t klen = item_klen(it);
    bool exp = (f & ITEM_EXPIRES) != 0;
    if ((f & ITEM_LARGE) || (expire && !exp) || ext_size(klen, vlen) != item_ext_size(it) ||
        is_large(klen, vlen, exp)) {
        return false;
    }
    return slab_class_size(item_chunk_size(klen, vlen, exp)) ==
           slab_class_size(chunk_size_of(it));
}

void
item_set_vlen(struct item *it, size_t vlen)
{
    size_t ext = item_ext_size(it);
    if (ext == 8) {
        uint32_t v = (uint32_t)vlen;
        memcpy(it->data + item_lens_off(it) + 4, &v, 4);
    } else {
        it->vlen8 = (uint8_t)vlen;
        if (ext == 1) {
            it->data[item_lens_off(it)] = (char)(uint8_t)(vlen >> 8);
        }
    }
}

size_t
item__large_mem(const struct item *it)
{
    size_t m = slab_class_size(chunk_size_of(it));
    const char *body = item_body(it);
    return m + (body ? mem_usable(body) : 0);
}

void
item_free(struct slab *s, struct item *it)
{
    item_drop_body(it);
    slab_free(s, item_ref(s, it), chunk_size_of(it));
}

size_t
item_free_mem(struct slab *s, struct item *it)
{
    size_t chunk = chunk_size_of(it);
    size_t m = slab_class_size(chunk) + item_drop_body(it);
    slab_free(s, item_ref(s, it), chunk);
    return m;
}

static void
set_body(struct item *it, char *body)
{
    size_t off = item_lens_off(it) + item_ext_size(it); /* 8: a large item is wide */
    memcpy(it->data + off, &body, sizeof(body));
}

size_t
item_drop_body(struct item *it)
{
    if (!(ITEM_FLAGS(it) & ITEM_LARGE)) {
        return 0;
    }
    char *body = item_body(it);
    if (body == NULL) {
        return 0;
    }
    size_t n = mem_usable(body);
    free(body);
    set_body(it, NULL);
    return n;
}

void
item_disown_body(struct item *it)
{
    if (ITEM_FLAGS(it) & ITEM_LARGE) {
        set_body(it, NULL);
    }
}

struct item *
item_grow_expire(struct slab *s, struct item *it)
{
    size_t klen = item_klen(it), vlen = item_vlen(it);
    struct item *nit;
    if (ITEM_FLAGS(it) & ITEM_LARGE) {
        /* a large item is always wide: header, expiry, lengths, body pointer;
         * the body changes owner instead of being copied */
        nit = chunk_alloc(s, item_chunk_size(klen, vlen, true));
        memcpy(nit, it, offsetof(struct item, data));
        nit->meta |= ITEM_EXPIRES;
        int64_t zero = 0;
        memcpy(nit->data, &zero, 8);
        memcpy(nit->data + 8, it->data, 8 + sizeof(char *));
        return nit; /* both point at the body until item_disown_body(it) */
    }
    nit = item_new(s, item_key(it), klen, vlen, 0, true);
    memcpy(item_val(nit), item_cval(it), vlen);
    /* the policy's bits go with it; the caller relinks, then frees it */
    nit->meta = (uint8_t)(nit->meta | (it->meta & ~ITEM_FLAG_MASK));
    return nit;
}
