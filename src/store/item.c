/* item.c -- see item.h. */
#include "store/item.h"

#include <stdlib.h>

#include "util/mem.h"

struct item *
item_create(const char *key, size_t klen, size_t vlen)
{
    struct item *it = xmalloc(offsetof(struct item, data) + klen + vlen);
    it->next = NULL;
    evict_node_init(&it->evict);
    it->expire = 0;
    it->klen = (uint32_t)klen;
    it->vlen = (uint32_t)vlen;
    memcpy(it->data, key, klen);
    size_t m = mem_usable(it);
    it->mem = m > UINT32_MAX ? UINT32_MAX : (uint32_t)m;
    return it;
}

void
item_free(struct item *it)
{
    free(it);
}

