/*
 * fuzz_topo.c -- libFuzzer target for the topology state machine
 * (src/cluster/topo.c): its snapshot decoder and its entries.
 *
 * The input is used twice:
 *  - whole, as a snapshot: topo_decode must refuse it or give a state whose
 *    encoding is exactly the input (one encoding per state);
 *  - as entries, each a length byte then that many bytes (a length byte with
 *    its top bit set re-uses the previous index, which must be STALE),
 *    applied to an initialised topology of 4 nodes and 16 vbuckets. After
 *    each: applied is the index, and when the result is not TOPO_OK the
 *    encoding is unchanged but for applied.
 * Every state reached (decoded or applied) must then survive encode -> decode
 * -> encode unchanged, build a view whose lists point at its nodes, and take
 * its plan: every planned entry applies with TOPO_OK and the plan after them
 * is empty.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/topo.h"
#include "util/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(bool ok)
{
    if (!ok) {
        abort();
    }
}

static bool
same(const struct buf *a, const struct buf *b)
{
    return a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}

static void
check_state(struct topo *t)
{
    struct buf a, b;
    buf_init(&a);
    buf_init(&b);
    topo_encode(t, &a);
    struct topo t2;
    topo_init(&t2);
    check(topo_decode(&t2, a.data, a.len) == TOPO_OK);
    topo_encode(&t2, &b);
    check(same(&a, &b));
    topo_deinit(&t2);

    struct topo_view *v = topo_view_build(t, t->nnodes ? t->nodes[0].id : NULL);
    check(v != NULL && v->nnodes == t->nnodes);
    check(t->nnodes == 0 ? v->self == TOPO_VIEW_NONE : v->self == 0);
    uint32_t assigned = 0;
    for (uint32_t vb = 0; vb < t->nvb; vb++) {
        check(v->vb_n[vb] == t->vb[vb].n);
        for (unsigned i = 0; i < v->vb_n[vb]; i++) {
            uint16_t k = v->vb_nodes[(size_t)vb * v->rf + i];
            check(k < v->nnodes && v->nodes[k].num == t->vb[vb].nodes[i]);
        }
        assigned += v->vb_n[vb] ? TOPO_SLOTS / t->nvb : 0;
    }
    check(v->slots_assigned == assigned);
    topo_view_free(v);

    /* the plan applies and converges (if the indexes it needs exist) */
    buf_reset(&a, 0);
    if (t->applied > UINT64_MAX - t->nvb - 1) {
        buf_deinit(&a);
        buf_deinit(&b);
        return;
    }
    size_t n = topo_plan(t, &a, 0), off = 0, seen = 0;
    while (off < a.len) {
        size_t len = topo_entry_len(a.data + off, a.len - off);
        check(len > 0);
        check(topo_apply(t, t->applied + 1, a.data + off, len) == TOPO_OK);
        off += len;
        seen++;
    }
    check(seen == n);
    buf_reset(&a, 0);
    check(topo_plan(t, &a, 0) == 0);
    buf_deinit(&a);
    buf_deinit(&b);
}

static void
setup(struct topo *t)
{
    struct buf e;
    buf_init(&e);
    topo_init(t);
    uint64_t idx = 0;
    topo_entry_init(&e, 16, 3, 8);
    check(topo_apply(t, ++idx, e.data, e.len) == TOPO_OK);
    for (unsigned i = 1; i <= 4; i++) {
        struct topo_node n;
        memset(&n, 0, sizeof(n));
        memset(n.id, 'a' + i, TOPO_ID_LEN);
        n.raft_id = i;
        memcpy(n.ip, "127.0.0.1", 10);
        buf_reset(&e, 0);
        topo_entry_node_join(&e, &n);
        check(topo_apply(t, ++idx, e.data, e.len) == TOPO_OK);
    }
    buf_deinit(&e);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* an exact-size heap copy, so ASan sees reads past the end */
    uint8_t *in = malloc(size ? size : 1);
    memcpy(in, data, size);

    struct topo t;
    topo_init(&t);
    if (topo_decode(&t, in, size) == TOPO_OK) {
        struct buf out;
        buf_init(&out);
        topo_encode(&t, &out);
        check(out.len == size && memcmp(out.data, in, size) == 0);
        buf_deinit(&out);
        check_state(&t);
    }
    topo_deinit(&t);

    setup(&t);
    struct buf before, after;
    buf_init(&before);
    buf_init(&after);
    for (size_t off = 0; off < size;) {
        bool reuse = in[off] & 0x80;
        size_t len = in[off] & 0x7f;
        off++;
        if (len > size - off) {
            len = size - off;
        }
        uint64_t applied = t.applied, index = reuse ? applied : applied + 1;
        buf_reset(&before, 0);
        t.applied = index;
        topo_encode(&t, &before);
        t.applied = applied;
        /* an exact-size copy of the entry, for the same reason */
        uint8_t *e = malloc(len ? len : 1);
        memcpy(e, in + off, len);
        enum topo_result r = topo_apply(&t, index, e, len);
        free(e);
        off += len;
        check(r <= TOPO_EINVAL);
        if (reuse) {
            check(r == TOPO_STALE && t.applied == applied);
            continue;
        }
        check(t.applied == index);
        check(r != TOPO_OK || t.config_epoch == index);
        if (r != TOPO_OK) {
            buf_reset(&after, 0);
            topo_encode(&t, &after);
            check(same(&before, &after));
        }
    }
    check_state(&t);
    topo_deinit(&t);
    buf_deinit(&before);
    buf_deinit(&after);
    free(in);
    return 0;
}
