/*
 * hint.c -- filling the per-thread table of key hints (see hint.h for why a
 * hint cannot be stale). The lookups are inline in hint.h.
 */
#include "store/hint.h"

#include <stdio.h>
#include <stdlib.h>

_Thread_local struct hint_table hint_tl;

const struct key_hint *
hint_fill(const char *const *key, const size_t *klen, unsigned n)
{
    struct hint_table *t = &hint_tl;
    if (n > HINT_MAX) {
        n = HINT_MAX;
    }
    for (unsigned i = 0; i < n; i++) {
        t->e[i].key = key[i];
        t->e[i].klen = klen[i];
        t->e[i].hash = ht_hash(key[i], klen[i]);
        t->e[i].slot = slot_of(key[i], klen[i]);
    }
    t->n = n;
    t->cur = NULL;
    return t->e;
}

void
hint_verify(const struct key_hint *h)
{
    if (h->hash != ht_hash(h->key, h->klen) || h->slot != slot_of(h->key, h->klen)) {
        fprintf(stderr, "hint: stale hint for a key of %zu bytes\n", h->klen);
        abort();
    }
}
