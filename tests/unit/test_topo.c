/*
 * test_topo.c -- the topology state machine (cluster/topo.c):
 *
 *  - every entry type's OK, NOOP, STALE and EINVAL paths, and for every
 *    result but OK that nothing but `applied` changed (the encodings before
 *    and after are compared);
 *  - encode -> decode -> encode gives the same bytes; every truncation of an
 *    encoding is refused, and every byte flip is refused or decodes to a
 *    state whose encoding is the flipped bytes (one encoding per state);
 *  - determinism: one sequence applied twice gives the same bytes, and the
 *    same sequence with retried duplicates (an entry applied again at a later
 *    index, at once or after others) gives the same placement;
 *  - topo_plan: joins, a leave and a forget, each followed by the plan's
 *    entries, converge (the plan is then empty);
 *  - the view: primary per slot, slots_assigned, self.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cluster/topo.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"

/* ---- helpers ------------------------------------------------------------ */

/* A topology and the next Raft index to apply at. */
struct fx {
    struct topo t;
    uint64_t idx;
    struct buf b;
};

static void
fx_init(struct fx *f)
{
    topo_init(&f->t);
    f->idx = 0;
    buf_init(&f->b);
}

static void
fx_deinit(struct fx *f)
{
    topo_deinit(&f->t);
    buf_deinit(&f->b);
}

static void
encode(const struct topo *t, struct buf *out)
{
    buf_reset(out, 0);
    topo_encode(t, out);
}

/* Apply f->b (one entry) at the next index, check the result and, unless it
 * is TOPO_OK, that only `applied` moved. Empties f->b. */
static enum topo_result
fx_apply(struct fx *f, enum topo_result want)
{
    struct buf before, after;
    buf_init(&before);
    buf_init(&after);
    uint64_t applied = f->t.applied, epoch = f->t.config_epoch;
    f->idx++;
    f->t.applied = f->idx; /* what a refused entry leaves */
    encode(&f->t, &before);
    f->t.applied = applied;

    enum topo_result r = topo_apply(&f->t, f->idx, f->b.data, f->b.len);
    if (r != want) {
        fail_msg("entry type %d at index %llu: result %d, expected %d",
                 f->b.len ? (uint8_t)f->b.data[0] : -1, (unsigned long long)f->idx, r, want);
    }
    assert_int_equal(f->t.applied, f->idx);
    encode(&f->t, &after);
    if (r == TOPO_OK) {
        assert_int_equal(f->t.config_epoch, f->idx);
    } else {
        assert_int_equal(f->t.config_epoch, epoch);
        assert_int_equal(after.len, before.len);
        assert_memory_equal(after.data, before.data, after.len);
    }
    buf_deinit(&before);
    buf_deinit(&after);
    buf_reset(&f->b, 0);
    return r;
}

static struct topo_node
mk_node(unsigned i)
{
    struct topo_node n;
    memset(&n, 0, sizeof(n));
    snprintf(n.id, sizeof(n.id), "%08x%032x", i * 2654435761u, i);
    n.raft_id = 100 + i;
    snprintf(n.ip, sizeof(n.ip), "10.0.0.%u", i);
    n.port = 7000;
    n.resp_port = 6379;
    n.bus_port = 16379;
    n.raft_port = 17379;
    return n;
}

static void
join(struct fx *f, unsigned i, enum topo_result want)
{
    struct topo_node n = mk_node(i);
    topo_entry_node_join(&f->b, &n);
    fx_apply(f, want);
}

static void
init(struct fx *f, uint32_t nvb, uint32_t rf, uint32_t vnodes, enum topo_result want)
{
    topo_entry_init(&f->b, nvb, rf, vnodes);
    fx_apply(f, want);
}

static void
vb_set(struct fx *f, uint32_t vb, uint64_t expect, unsigned n, const uint32_t *nums,
       enum topo_result want)
{
    topo_entry_vb_set(&f->b, vb, expect, n, nums);
    fx_apply(f, want);
}

/* Apply every entry of a buffer (as topo_plan makes), each expected OK
 * (without fx_apply's encodings: plans of 16384 entries are applied). */
static size_t
apply_all(struct fx *f, const struct buf *entries)
{
    size_t off = 0, n = 0;
    while (off < entries->len) {
        size_t len = topo_entry_len(entries->data + off, entries->len - off);
        assert_true(len > 0);
        f->idx++;
        assert_int_equal(topo_apply(&f->t, f->idx, entries->data + off, len), TOPO_OK);
        assert_int_equal(f->t.config_epoch, f->idx);
        off += len;
        n++;
    }
    return n;
}

static size_t
plan_and_apply(struct fx *f)
{
    struct buf plan;
    buf_init(&plan);
    size_t n = topo_plan(&f->t, &plan, 0);
    assert_int_equal(apply_all(f, &plan), n);
    buf_deinit(&plan);
    return n;
}

/* ---- INIT and the rules common to every entry ------------------------------ */

static void
test_init(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    uint32_t one = 1;

    /* nothing about vbuckets before INIT */
    join(&f, 1, TOPO_OK);
    vb_set(&f, 0, 0, 1, &one, TOPO_STALE);
    topo_entry_migrate_begin(&f.b, 0, 0, 1, 7);
    fx_apply(&f, TOPO_STALE);
    topo_entry_migrate_commit(&f.b, 0, 7, 1, &one);
    fx_apply(&f, TOPO_STALE);
    topo_entry_migrate_abort(&f.b, 0, 7);
    fx_apply(&f, TOPO_STALE);

    init(&f, 0, 3, 256, TOPO_EINVAL);
    init(&f, 3, 3, 256, TOPO_EINVAL);
    init(&f, 32768, 3, 256, TOPO_EINVAL);
    init(&f, 256, 0, 256, TOPO_EINVAL);
    init(&f, 256, TOPO_MAX_RF + 1, 256, TOPO_EINVAL);
    init(&f, 256, 3, 0, TOPO_EINVAL);
    init(&f, 256, 3, TOPO_MAX_VNODES + 1, TOPO_EINVAL);
    assert_int_equal(f.t.nvb, 0);

    init(&f, 256, 3, 256, TOPO_OK);
    assert_int_equal(f.t.nvb, 256);
    assert_int_equal(f.t.rf, 3);
    assert_int_equal(f.t.vnodes, 256);
    assert_non_null(f.t.vb);
    init(&f, 256, 3, 256, TOPO_NOOP);
    init(&f, 256, 2, 256, TOPO_STALE);
    init(&f, 1024, 3, 256, TOPO_STALE);
    init(&f, 256, 3, 128, TOPO_STALE);
    init(&f, 1, 1, 1, TOPO_STALE);
    fx_deinit(&f);

    /* the extremes are accepted */
    fx_init(&f);
    init(&f, 1, 1, 1, TOPO_OK);
    fx_deinit(&f);
    fx_init(&f);
    init(&f, TOPO_MAX_VB, TOPO_MAX_RF, TOPO_MAX_VNODES, TOPO_OK);
    fx_deinit(&f);
}

static void
test_layout(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    init(&f, 16, 3, 8, TOPO_OK);

    /* every entry type, cut short at every length, or with a byte more */
    struct buf all;
    buf_init(&all);
    uint32_t nums[2] = { 1, 2 };
    struct topo_node n = mk_node(9);
    topo_entry_init(&all, 16, 3, 8);
    topo_entry_node_join(&all, &n);
    topo_entry_node_leave(&all, n.id);
    topo_entry_node_forget(&all, n.id);
    topo_entry_vb_set(&all, 1, 0, 2, nums);
    topo_entry_migrate_begin(&all, 1, 0, 2, 5);
    topo_entry_migrate_commit(&all, 1, 5, 2, nums);
    topo_entry_migrate_abort(&all, 1, 5);
    size_t off = 0;
    int types = 0;
    while (off < all.len) {
        const char *e = all.data + off;
        size_t len = topo_entry_len(e, all.len - off);
        assert_true(len > 0);
        assert_int_equal((uint8_t)e[0], TOPO_E_INIT + types);
        for (size_t cut = 0; cut < len; cut++) {
            assert_int_equal(topo_entry_len(e, cut), 0);
            buf_append(&f.b, e, cut);
            fx_apply(&f, TOPO_EINVAL);
        }
        buf_append(&f.b, e, len);
        buf_appendc(&f.b, 0);
        fx_apply(&f, TOPO_EINVAL);
        off += len;
        types++;
    }
    assert_int_equal(types, 8);
    buf_deinit(&all);

    /* unknown types */
    buf_appendc(&f.b, 0);
    fx_apply(&f, TOPO_EINVAL);
    buf_appendc(&f.b, TOPO_E_MIGRATE_ABORT + 1);
    fx_apply(&f, TOPO_EINVAL);

    /* an index not above applied is stale and leaves applied alone */
    uint64_t applied = f.t.applied;
    topo_entry_init(&f.b, 16, 3, 8);
    assert_int_equal(topo_apply(&f.t, applied, f.b.data, f.b.len), TOPO_STALE);
    assert_int_equal(topo_apply(&f.t, applied - 1, f.b.data, f.b.len), TOPO_STALE);
    assert_int_equal(f.t.applied, applied);
    buf_reset(&f.b, 0);
    fx_deinit(&f);
}

/* ---- nodes ------------------------------------------------------------------- */

/* A NODE_JOIN written by hand, to reach what the builder cannot write. */
static void
raw_join(struct buf *b, const char *id, size_t idlen, uint64_t raft_id, const char *ip,
         size_t iplen)
{
    buf_appendc(b, TOPO_E_NODE_JOIN);
    buf_appendc(b, (char)idlen);
    buf_append(b, id, idlen);
    for (int i = 0; i < 8; i++) {
        buf_appendc(b, (char)(raft_id >> (8 * i)));
    }
    buf_appendc(b, (char)iplen);
    buf_append(b, ip, iplen);
    for (int i = 0; i < 8; i++) {
        buf_appendc(b, 1);
    }
}

static void
test_node_join(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);

    join(&f, 1, TOPO_OK);
    join(&f, 2, TOPO_OK);
    uint64_t joined2 = f.idx;
    join(&f, 3, TOPO_OK);
    assert_int_equal(f.t.nnodes, 3);
    for (unsigned i = 1; i <= 3; i++) {
        struct topo_node n = mk_node(i);
        const struct topo_node *got = topo_node_by_id(&f.t, n.id);
        assert_non_null(got);
        assert_int_equal(got->num, i);
        assert_ptr_equal(topo_node_by_num(&f.t, i), got);
        assert_string_equal(got->ip, n.ip);
        assert_int_equal(got->raft_id, n.raft_id);
        assert_int_equal(got->resp_port, 6379);
        assert_int_equal(got->flags, 0);
    }
    assert_null(topo_node_by_num(&f.t, 4));
    assert_null(topo_node_by_num(&f.t, 0));
    assert_null(topo_node_by_id(&f.t, "nobody"));
    assert_int_equal(topo_node_by_num(&f.t, 2)->join_epoch, joined2);

    /* the same again: nothing; a new address: same num, new join epoch */
    join(&f, 2, TOPO_NOOP);
    struct topo_node n2 = mk_node(2);
    n2.resp_port = 6380;
    strcpy(n2.ip, "10.0.1.2");
    topo_entry_node_join(&f.b, &n2);
    fx_apply(&f, TOPO_OK);
    const struct topo_node *got = topo_node_by_id(&f.t, n2.id);
    assert_int_equal(got->num, 2);
    assert_int_equal(got->resp_port, 6380);
    assert_string_equal(got->ip, "10.0.1.2");
    assert_int_equal(got->join_epoch, f.idx);
    /* a new raft id (its raft directory was lost) is an address change too */
    n2.raft_id = 555;
    topo_entry_node_join(&f.b, &n2);
    fx_apply(&f, TOPO_OK);
    assert_int_equal(topo_node_by_num(&f.t, 2)->raft_id, 555);

    /* another node's raft id is refused, for a new id and a known one */
    struct topo_node n4 = mk_node(4);
    n4.raft_id = 101;
    topo_entry_node_join(&f.b, &n4);
    fx_apply(&f, TOPO_STALE);
    struct topo_node n3 = mk_node(3);
    n3.raft_id = 101;
    topo_entry_node_join(&f.b, &n3);
    fx_apply(&f, TOPO_STALE);

    /* malformed: raft id 0, ids of 0 or 41 bytes, a space or a control byte,
     * an ip of 46 bytes */
    char id[48];
    memset(id, 'a', sizeof(id));
    raw_join(&f.b, id, 40, 0, "1.2.3.4", 7);
    fx_apply(&f, TOPO_EINVAL);
    raw_join(&f.b, id, 0, 9, "1.2.3.4", 7);
    fx_apply(&f, TOPO_EINVAL);
    raw_join(&f.b, id, 41, 9, "1.2.3.4", 7);
    fx_apply(&f, TOPO_EINVAL);
    raw_join(&f.b, "ab cd", 5, 9, "1.2.3.4", 7);
    fx_apply(&f, TOPO_EINVAL);
    raw_join(&f.b, "ab\ncd", 5, 9, "1.2.3.4", 7);
    fx_apply(&f, TOPO_EINVAL);
    raw_join(&f.b, "ab\0cd", 5, 9, "1.2.3.4", 7);
    fx_apply(&f, TOPO_EINVAL);
    raw_join(&f.b, "ab\xc3\xa9", 4, 9, "1.2.3.4", 7);
    fx_apply(&f, TOPO_EINVAL);
    raw_join(&f.b, id, 40, 9, id, TOPO_IP_LEN);
    fx_apply(&f, TOPO_EINVAL);
    /* the longest id and ip, and no ip, are fine */
    raw_join(&f.b, id, 40, 9, id, TOPO_IP_LEN - 1);
    fx_apply(&f, TOPO_OK);
    raw_join(&f.b, "x", 1, 10, "", 0);
    fx_apply(&f, TOPO_OK);
    assert_int_equal(topo_node_by_id(&f.t, "x")->num, 5);
    assert_int_equal(f.t.nnodes, 5);
    fx_deinit(&f);
}

static void
test_node_leave_forget(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    init(&f, 16, 2, 16, TOPO_OK);
    for (unsigned i = 1; i <= 4; i++) {
        join(&f, i, TOPO_OK);
    }
    struct topo_node n1 = mk_node(1), n2 = mk_node(2), n4 = mk_node(4), n9 = mk_node(9);

    topo_entry_node_leave(&f.b, n9.id);
    fx_apply(&f, TOPO_STALE);
    topo_entry_node_leave(&f.b, n2.id);
    fx_apply(&f, TOPO_OK);
    assert_int_equal(topo_node_by_num(&f.t, 2)->flags, TOPO_NODE_LEAVING);
    topo_entry_node_leave(&f.b, n2.id);
    fx_apply(&f, TOPO_NOOP);
    /* joining again changes the address only: it stays LEAVING */
    n2.port = 7001;
    topo_entry_node_join(&f.b, &n2);
    fx_apply(&f, TOPO_OK);
    assert_int_equal(topo_node_by_num(&f.t, 2)->flags, TOPO_NODE_LEAVING);

    /* in a list, or a copy's target: refused */
    uint32_t l12[2] = { 1, 2 }, l1[1] = { 1 };
    vb_set(&f, 3, 0, 2, l12, TOPO_OK);
    uint64_t vb3 = f.idx;
    topo_entry_node_forget(&f.b, n2.id);
    fx_apply(&f, TOPO_STALE);
    vb_set(&f, 3, vb3, 1, l1, TOPO_OK);
    vb3 = f.idx;
    topo_entry_migrate_begin(&f.b, 3, vb3, 4, 77);
    fx_apply(&f, TOPO_OK);
    topo_entry_node_forget(&f.b, n4.id);
    fx_apply(&f, TOPO_STALE);
    topo_entry_migrate_abort(&f.b, 3, 77);
    fx_apply(&f, TOPO_OK);

    /* out of every list: gone, and a repeat finds nothing to do */
    topo_entry_node_forget(&f.b, n2.id);
    fx_apply(&f, TOPO_OK);
    assert_null(topo_node_by_id(&f.t, n2.id));
    assert_null(topo_node_by_num(&f.t, 2));
    assert_int_equal(f.t.nnodes, 3);
    assert_int_equal(topo_node_by_num(&f.t, 4)->num, 4);
    topo_entry_node_forget(&f.b, n2.id);
    fx_apply(&f, TOPO_NOOP);
    topo_entry_node_leave(&f.b, n2.id);
    fx_apply(&f, TOPO_STALE);
    topo_entry_node_forget(&f.b, n4.id);
    fx_apply(&f, TOPO_OK);
    topo_entry_node_forget(&f.b, n1.id);
    fx_apply(&f, TOPO_STALE);

    /* nums are never reused */
    topo_entry_node_join(&f.b, &n2);
    fx_apply(&f, TOPO_OK);
    assert_int_equal(topo_node_by_id(&f.t, n2.id)->num, 5);
    assert_int_equal(topo_node_by_id(&f.t, n2.id)->flags, 0);
    assert_int_equal(f.t.next_num, 6);
    fx_deinit(&f);
}

/* ---- vbuckets ---------------------------------------------------------------- */

static void
test_vb_set(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    init(&f, 16, 3, 16, TOPO_OK);
    for (unsigned i = 1; i <= 4; i++) {
        join(&f, i, TOPO_OK);
    }
    uint32_t l123[3] = { 1, 2, 3 }, l321[3] = { 3, 2, 1 }, l4123[4] = { 4, 1, 2, 3 };
    uint32_t l11[2] = { 1, 1 }, l19[2] = { 1, 9 };

    vb_set(&f, 5, 0, 3, l123, TOPO_OK);
    uint64_t e5 = f.idx;
    assert_int_equal(f.t.vb[5].epoch, e5);
    assert_int_equal(f.t.vb[5].n, 3);
    assert_memory_equal(f.t.vb[5].nodes, l123, sizeof(l123));
    assert_int_equal(f.t.vb[4].epoch, 0);

    vb_set(&f, 5, e5, 3, l123, TOPO_NOOP);
    vb_set(&f, 5, 0, 3, l123, TOPO_NOOP);     /* a retry after it was applied */
    vb_set(&f, 5, 0, 3, l321, TOPO_STALE);    /* the order matters, the epoch moved on */
    vb_set(&f, 5, e5 + 1, 3, l321, TOPO_STALE);
    vb_set(&f, 16, 0, 3, l123, TOPO_EINVAL);
    vb_set(&f, UINT32_MAX, 0, 3, l123, TOPO_EINVAL);
    vb_set(&f, 5, e5, 4, l4123, TOPO_EINVAL); /* longer than rf */
    vb_set(&f, 5, e5, 2, l11, TOPO_EINVAL);
    vb_set(&f, 5, e5, 2, l19, TOPO_EINVAL);
    uint32_t zero = 0;
    vb_set(&f, 5, e5, 1, &zero, TOPO_EINVAL);
    /* a list longer than TOPO_MAX_RF is a bad layout */
    uint32_t many[TOPO_MAX_RF + 1] = { 0 };
    vb_set(&f, 5, e5, TOPO_MAX_RF + 1, many, TOPO_EINVAL);

    vb_set(&f, 5, e5, 3, l321, TOPO_OK);
    e5 = f.idx;
    assert_memory_equal(f.t.vb[5].nodes, l321, sizeof(l321));
    /* unassigned again; then a shorter list than rf */
    vb_set(&f, 5, e5, 0, NULL, TOPO_OK);
    e5 = f.idx;
    assert_int_equal(f.t.vb[5].n, 0);
    assert_int_equal(f.t.vb[5].nodes[0], 0);
    vb_set(&f, 5, e5, 0, NULL, TOPO_NOOP);
    vb_set(&f, 5, e5, 1, l123, TOPO_OK);
    e5 = f.idx;

    /* a copy in flight: only MIGRATE_* change the list */
    topo_entry_migrate_begin(&f.b, 5, e5, 4, 1);
    fx_apply(&f, TOPO_OK);
    vb_set(&f, 5, f.idx, 3, l123, TOPO_STALE);
    fx_deinit(&f);
}

static void
test_migrate(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    init(&f, 16, 3, 16, TOPO_OK);
    for (unsigned i = 1; i <= 5; i++) {
        join(&f, i, TOPO_OK);
    }
    uint32_t l123[3] = { 1, 2, 3 }, l412[3] = { 4, 1, 2 }, l512[3] = { 5, 1, 2 };
    uint32_t l142[3] = { 1, 4, 2 };
    vb_set(&f, 7, 0, 3, l123, TOPO_OK);
    uint64_t e7 = f.idx;
    struct topo_node n5 = mk_node(5);
    topo_entry_node_leave(&f.b, n5.id);
    fx_apply(&f, TOPO_OK);

    /* BEGIN */
    topo_entry_migrate_begin(&f.b, 7, e7, 4, 0);
    fx_apply(&f, TOPO_EINVAL);  /* copy id 0 */
    topo_entry_migrate_begin(&f.b, 7, e7, 9, 11);
    fx_apply(&f, TOPO_EINVAL);  /* unknown target */
    topo_entry_migrate_begin(&f.b, 7, e7, 0, 11);
    fx_apply(&f, TOPO_EINVAL);
    topo_entry_migrate_begin(&f.b, 16, e7, 4, 11);
    fx_apply(&f, TOPO_EINVAL);
    topo_entry_migrate_begin(&f.b, 7, e7 - 1, 4, 11);
    fx_apply(&f, TOPO_STALE);   /* epoch */
    topo_entry_migrate_begin(&f.b, 7, e7, 1, 11);
    fx_apply(&f, TOPO_STALE);   /* primary already */
    topo_entry_migrate_begin(&f.b, 7, e7, 5, 11);
    fx_apply(&f, TOPO_STALE);   /* leaving */
    topo_entry_migrate_begin(&f.b, 6, 0, 4, 11);
    fx_apply(&f, TOPO_STALE);   /* unassigned: nothing to copy from */
    topo_entry_migrate_begin(&f.b, 7, e7, 4, 11);
    fx_apply(&f, TOPO_OK);
    uint64_t begun = f.idx;
    assert_int_equal(f.t.vb[7].target, 4);
    assert_int_equal(f.t.vb[7].copy_id, 11);
    assert_int_equal(f.t.vb[7].epoch, begun);
    assert_memory_equal(f.t.vb[7].nodes, l123, sizeof(l123)); /* still serving */
    topo_entry_migrate_begin(&f.b, 7, e7, 4, 11);
    fx_apply(&f, TOPO_NOOP);    /* a retry */
    topo_entry_migrate_begin(&f.b, 7, begun, 4, 12);
    fx_apply(&f, TOPO_STALE);   /* one copy at a time */
    topo_entry_migrate_begin(&f.b, 7, begun, 2, 11);
    fx_apply(&f, TOPO_STALE);

    /* COMMIT */
    topo_entry_migrate_commit(&f.b, 7, 12, 3, l412);
    fx_apply(&f, TOPO_STALE);   /* not the copy in flight */
    topo_entry_migrate_commit(&f.b, 7, 0, 3, l412);
    fx_apply(&f, TOPO_EINVAL);
    topo_entry_migrate_commit(&f.b, 7, 11, 0, NULL);
    fx_apply(&f, TOPO_EINVAL);
    topo_entry_migrate_commit(&f.b, 7, 11, 3, l142);
    fx_apply(&f, TOPO_EINVAL);  /* the target must come first */
    topo_entry_migrate_commit(&f.b, 16, 11, 3, l412);
    fx_apply(&f, TOPO_EINVAL);
    topo_entry_migrate_commit(&f.b, 7, 11, 3, l412);
    fx_apply(&f, TOPO_OK);
    assert_int_equal(f.t.vb[7].target, 0);
    assert_int_equal(f.t.vb[7].copy_id, 0);
    assert_int_equal(f.t.vb[7].epoch, f.idx);
    assert_memory_equal(f.t.vb[7].nodes, l412, sizeof(l412));
    e7 = f.idx;
    topo_entry_migrate_commit(&f.b, 7, 11, 3, l412);
    fx_apply(&f, TOPO_NOOP);    /* a retry */
    topo_entry_migrate_commit(&f.b, 7, 11, 3, l512);
    fx_apply(&f, TOPO_STALE);

    /* ABORT */
    topo_entry_migrate_abort(&f.b, 7, 11);
    fx_apply(&f, TOPO_NOOP);    /* nothing in flight */
    topo_entry_migrate_begin(&f.b, 7, e7, 2, 13);
    fx_apply(&f, TOPO_OK);
    topo_entry_migrate_abort(&f.b, 7, 0);
    fx_apply(&f, TOPO_EINVAL);
    topo_entry_migrate_abort(&f.b, 16, 13);
    fx_apply(&f, TOPO_EINVAL);
    topo_entry_migrate_abort(&f.b, 7, 14);
    fx_apply(&f, TOPO_STALE);   /* another copy */
    topo_entry_migrate_abort(&f.b, 7, 13);
    fx_apply(&f, TOPO_OK);
    assert_int_equal(f.t.vb[7].target, 0);
    assert_int_equal(f.t.vb[7].copy_id, 0);
    assert_int_equal(f.t.vb[7].epoch, f.idx);
    assert_memory_equal(f.t.vb[7].nodes, l412, sizeof(l412));
    topo_entry_migrate_abort(&f.b, 7, 13);
    fx_apply(&f, TOPO_NOOP);
    fx_deinit(&f);
}

/* ---- the snapshot ------------------------------------------------------------- */

/* A state with a bit of everything: forgotten and leaving nodes, assigned,
 * unassigned and short lists, a copy in flight. */
static void
build_rich(struct fx *f)
{
    init(f, 64, 3, 32, TOPO_OK);
    for (unsigned i = 1; i <= 6; i++) {
        join(f, i, TOPO_OK);
    }
    struct topo_node n6 = mk_node(6), n5 = mk_node(5);
    topo_entry_node_forget(&f->b, n6.id);
    fx_apply(f, TOPO_OK);
    topo_entry_node_leave(&f->b, n5.id);
    fx_apply(f, TOPO_OK);
    plan_and_apply(f);
    uint32_t l1[1] = { 1 };
    vb_set(f, 3, f->t.vb[3].epoch, 0, NULL, TOPO_OK);
    vb_set(f, 4, f->t.vb[4].epoch, 1, l1, TOPO_OK);
    uint32_t to = f->t.vb[9].nodes[0] == 1 ? 2 : 1;
    topo_entry_migrate_begin(&f->b, 9, f->t.vb[9].epoch, to, 99);
    fx_apply(f, TOPO_OK);
}

static void
test_encode_roundtrip(void **state)
{
    (void)state;
    struct fx f;
    struct topo t2;
    struct buf a, b;
    buf_init(&a);
    buf_init(&b);

    /* a fresh state, one before INIT, and a rich one */
    for (int which = 0; which < 3; which++) {
        fx_init(&f);
        if (which == 1) {
            join(&f, 1, TOPO_OK);
        } else if (which == 2) {
            build_rich(&f);
        }
        encode(&f.t, &a);
        assert_int_equal((uint8_t)a.data[0], 1);
        topo_init(&t2);
        assert_int_equal(topo_decode(&t2, a.data, a.len), TOPO_OK);
        encode(&t2, &b);
        assert_int_equal(a.len, b.len);
        assert_memory_equal(a.data, b.data, a.len);
        assert_int_equal(t2.nnodes, f.t.nnodes);
        assert_int_equal(t2.applied, f.t.applied);
        topo_deinit(&t2);
        fx_deinit(&f);
    }

    /* the rich state's bytes: every cut refused, every flip refused or
     * canonical; t is left as it was when refused */
    fx_init(&f);
    build_rich(&f);
    encode(&f.t, &a);
    fx_deinit(&f);
    struct buf keep;
    buf_init(&keep);
    topo_init(&t2);
    assert_int_equal(topo_decode(&t2, a.data, a.len), TOPO_OK);
    encode(&t2, &keep);
    for (size_t cut = 0; cut < a.len; cut++) {
        assert_int_equal(topo_decode(&t2, a.data, cut), TOPO_EINVAL);
    }
    encode(&t2, &b);
    assert_memory_equal(b.data, keep.data, keep.len);
    char *flip = malloc(a.len);
    size_t accepted = 0;
    for (size_t i = 0; i < a.len; i++) {
        for (int bit = 0; bit < 8; bit += 3) {
            memcpy(flip, a.data, a.len);
            flip[i] ^= (char)(1 << bit);
            struct topo t3;
            topo_init(&t3);
            if (topo_decode(&t3, flip, a.len) == TOPO_OK) {
                encode(&t3, &b);
                assert_int_equal(b.len, a.len);
                assert_memory_equal(b.data, flip, a.len);
                accepted++;
            }
            topo_deinit(&t3);
        }
    }
    print_message("encoding of %zu bytes: %zu of %zu single-bit flips decode (to "
                  "themselves)\n", a.len, accepted, a.len * 3);
    /* a byte more, another version */
    memcpy(flip, a.data, a.len);
    assert_int_equal(topo_decode(&t2, flip, a.len - 1), TOPO_EINVAL);
    flip[0] = 2;
    assert_int_equal(topo_decode(&t2, flip, a.len), TOPO_EINVAL);
    buf_append(&a, "", 1);
    assert_int_equal(topo_decode(&t2, a.data, a.len), TOPO_EINVAL);
    free(flip);
    topo_deinit(&t2);
    buf_deinit(&keep);
    buf_deinit(&a);
    buf_deinit(&b);
}

/* ---- determinism ---------------------------------------------------------------- */

/* Everything that places data, without the epochs and indexes that differ
 * when the same entries land at other indexes. */
static void
assert_same_placement(const struct topo *a, const struct topo *b)
{
    assert_int_equal(a->nvb, b->nvb);
    assert_int_equal(a->rf, b->rf);
    assert_int_equal(a->nnodes, b->nnodes);
    assert_int_equal(a->next_num, b->next_num);
    for (size_t i = 0; i < a->nnodes; i++) {
        const struct topo_node *x = &a->nodes[i], *y = &b->nodes[i];
        assert_int_equal(x->num, y->num);
        assert_string_equal(x->id, y->id);
        assert_string_equal(x->ip, y->ip);
        assert_int_equal(x->flags, y->flags);
    }
    for (uint32_t v = 0; v < a->nvb; v++) {
        assert_int_equal(a->vb[v].n, b->vb[v].n);
        assert_memory_equal(a->vb[v].nodes, b->vb[v].nodes, sizeof(a->vb[v].nodes));
        assert_int_equal(a->vb[v].target, b->vb[v].target);
        assert_int_equal(a->vb[v].copy_id, b->vb[v].copy_id);
    }
}

/*
 * A scripted history, as the leader would propose it: INIT, joins, the plan,
 * more joins, the plan, a leave, the plan, a forget, a migration. Each entry
 * is computed from the state so far, appended to `log` and applied. With
 * retry_every, every retry_every-th proposal is proposed again `delay`
 * proposals later (a proposer that lost track of its first copy, which was
 * committed all the same): the log then holds it twice, and later entries'
 * epochs are those of the state with the duplicates in it.
 */
struct proposer {
    struct fx *f;
    struct buf *log;
    unsigned retry_every, delay, count;
    struct buf retry[64];
    unsigned due[64], nretry;
};

static void
commit(struct proposer *p, const char *e, size_t len)
{
    buf_append(p->log, e, len);
    p->f->idx++;
    topo_apply(&p->f->t, p->f->idx, e, len);
}

static void
flush_retries(struct proposer *p, bool all)
{
    unsigned k = 0;
    for (unsigned i = 0; i < p->nretry; i++) {
        if (all || p->due[i] <= p->count) {
            commit(p, p->retry[i].data, p->retry[i].len);
            buf_deinit(&p->retry[i]);
        } else {
            p->retry[k] = p->retry[i];
            p->due[k++] = p->due[i];
        }
    }
    p->nretry = k;
}

/* Propose what p->f->b holds. */
static void
propose(struct proposer *p)
{
    struct fx *f = p->f;
    commit(p, f->b.data, f->b.len);
    p->count++;
    if (p->retry_every && p->count % p->retry_every == 0) {
        assert_true(p->nretry < 64);
        buf_init(&p->retry[p->nretry]);
        buf_append(&p->retry[p->nretry], f->b.data, f->b.len);
        p->due[p->nretry++] = p->count + p->delay;
    }
    buf_reset(&f->b, 0);
    flush_retries(p, false);
}

static void
propose_plan(struct proposer *p)
{
    struct buf plan;
    buf_init(&plan);
    topo_plan(&p->f->t, &plan, 0);
    for (size_t off = 0; off < plan.len;) {
        size_t len = topo_entry_len(plan.data + off, plan.len - off);
        buf_append(&p->f->b, plan.data + off, len);
        propose(p);
        off += len;
    }
    buf_deinit(&plan);
}

static void
script(struct fx *f, struct buf *log, unsigned retry_every, unsigned delay)
{
    struct proposer p = { .f = f, .log = log, .retry_every = retry_every, .delay = delay };
    topo_entry_init(&f->b, 128, 3, 64);
    propose(&p);
    for (unsigned i = 1; i <= 6; i++) {
        struct topo_node n = mk_node(i);
        topo_entry_node_join(&f->b, &n);
        propose(&p);
        if (i == 4 || i == 6) {
            propose_plan(&p);
        }
    }
    struct topo_node n2 = mk_node(2);
    topo_entry_node_leave(&f->b, n2.id);
    propose(&p);
    propose_plan(&p);
    flush_retries(&p, true); /* the forget needs every list without node 2 */
    topo_entry_node_forget(&f->b, n2.id);
    propose(&p);
    uint32_t primary = f->t.vb[0].nodes[0], to = primary == 1 ? 3 : 1;
    uint32_t list[3] = { to, primary, 0 };
    list[2] = f->t.vb[0].nodes[1] == to ? f->t.vb[0].nodes[2] : f->t.vb[0].nodes[1];
    topo_entry_migrate_begin(&f->b, 0, f->t.vb[0].epoch, to, 42);
    propose(&p);
    topo_entry_migrate_commit(&f->b, 0, 42, 3, list);
    propose(&p);
    flush_retries(&p, true);
}

static void
replay(struct topo *t, const struct buf *log, uint64_t *idx)
{
    for (size_t off = 0; off < log->len;) {
        size_t len = topo_entry_len(log->data + off, log->len - off);
        assert_true(len > 0);
        topo_apply(t, ++*idx, log->data + off, len);
        off += len;
    }
}

static void
test_determinism(void **state)
{
    (void)state;
    struct fx f;
    struct buf log, a, b;
    buf_init(&log);
    buf_init(&a);
    buf_init(&b);
    fx_init(&f);
    script(&f, &log, 0, 0);
    encode(&f.t, &a);
    assert_int_equal(f.t.nnodes, 5);
    assert_int_equal(f.t.vb[0].target, 0);

    /* the same log again: the same bytes */
    struct topo t;
    uint64_t idx = 0;
    topo_init(&t);
    replay(&t, &log, &idx);
    encode(&t, &b);
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.data, b.data, a.len);
    topo_deinit(&t);

    /* with retried duplicates, at once or later: the same placement, and
     * again the same bytes when that log is replayed */
    static const unsigned dups[][2] = { { 1, 0 }, { 2, 0 }, { 3, 1 }, { 1, 5 }, { 4, 40 } };
    for (size_t d = 0; d < sizeof(dups) / sizeof(dups[0]); d++) {
        struct fx g;
        struct buf glog, c;
        buf_init(&glog);
        buf_init(&c);
        fx_init(&g);
        script(&g, &glog, dups[d][0], dups[d][1]);
        assert_true(glog.len > log.len);
        assert_same_placement(&f.t, &g.t);
        encode(&g.t, &b);
        topo_init(&t);
        idx = 0;
        replay(&t, &glog, &idx);
        encode(&t, &c);
        assert_int_equal(b.len, c.len);
        assert_memory_equal(b.data, c.data, b.len);
        topo_deinit(&t);
        fx_deinit(&g);
        buf_deinit(&glog);
        buf_deinit(&c);
    }

    /* and from a snapshot taken halfway, then the rest */
    size_t half = 0, count = 0;
    while (count < 20) {
        half += topo_entry_len(log.data + half, log.len - half);
        count++;
    }
    struct buf first, rest;
    buf_init(&first);
    buf_init(&rest);
    buf_append(&first, log.data, half);
    buf_append(&rest, log.data + half, log.len - half);
    topo_init(&t);
    idx = 0;
    replay(&t, &first, &idx);
    encode(&t, &b);
    topo_deinit(&t);
    topo_init(&t);
    assert_int_equal(topo_decode(&t, b.data, b.len), TOPO_OK);
    replay(&t, &rest, &idx);
    encode(&t, &b);
    assert_memory_equal(a.data, b.data, a.len);
    topo_deinit(&t);
    buf_deinit(&first);
    buf_deinit(&rest);

    fx_deinit(&f);
    buf_deinit(&log);
    buf_deinit(&a);
    buf_deinit(&b);
}

/* ---- the plan ---------------------------------------------------------------- */

static void
test_plan_converges(void **state)
{
    (void)state;
    struct fx f;
    struct buf plan;
    buf_init(&plan);
    fx_init(&f);
    assert_int_equal(topo_plan(&f.t, &plan, 0), 0); /* before INIT */
    init(&f, 256, 3, 256, TOPO_OK);
    assert_int_equal(topo_plan(&f.t, &plan, 0), 0); /* no node */
    join(&f, 1, TOPO_OK);

    /* one node: every vbucket, a list of one */
    assert_int_equal(plan_and_apply(&f), 256);
    assert_int_equal(topo_plan(&f.t, &plan, 0), 0);
    for (uint32_t v = 0; v < 256; v++) {
        assert_int_equal(f.t.vb[v].n, 1);
    }
    join(&f, 2, TOPO_OK);
    join(&f, 3, TOPO_OK);
    assert_int_equal(plan_and_apply(&f), 256);
    assert_int_equal(topo_plan(&f.t, &plan, 0), 0);
    for (uint32_t v = 0; v < 256; v++) {
        assert_int_equal(f.t.vb[v].n, 3);
    }

    /* a 4th node: the lists it enters change, and only those */
    join(&f, 4, TOPO_OK);
    size_t moved = plan_and_apply(&f);
    size_t with4 = 0;
    for (uint32_t v = 0; v < 256; v++) {
        with4 += f.t.vb[v].nodes[0] == 4 || f.t.vb[v].nodes[1] == 4 || f.t.vb[v].nodes[2] == 4;
    }
    print_message("3 -> 4 nodes: %zu of 256 lists changed, 4 is in %zu\n", moved, with4);
    assert_int_equal(moved, with4);
    assert_int_equal(topo_plan(&f.t, &plan, 0), 0);

    /* max_entries caps the plan; a copy in flight is left alone */
    struct topo_node n2 = mk_node(2);
    topo_entry_node_leave(&f.b, n2.id);
    fx_apply(&f, TOPO_OK);
    size_t want = topo_plan(&f.t, &plan, 0);
    assert_true(want > 10);
    buf_reset(&plan, 0);
    assert_int_equal(topo_plan(&f.t, &plan, 10), 10);
    buf_reset(&plan, 0);
    uint32_t busy = 0;
    while (f.t.vb[busy].nodes[0] != 2 && f.t.vb[busy].nodes[1] != 2 &&
           f.t.vb[busy].nodes[2] != 2) {
        busy++;
    }
    uint32_t to = f.t.vb[busy].nodes[0] == 1 ? 3 : 1;
    topo_entry_migrate_begin(&f.b, busy, f.t.vb[busy].epoch, to, 5);
    fx_apply(&f, TOPO_OK);
    assert_int_equal(topo_plan(&f.t, &plan, 0), want - 1);
    buf_reset(&plan, 0);
    topo_entry_migrate_abort(&f.b, busy, 5);
    fx_apply(&f, TOPO_OK);

    /* the leaving node's lists move; then it can be forgotten */
    assert_int_equal(plan_and_apply(&f), want);
    assert_int_equal(topo_plan(&f.t, &plan, 0), 0);
    for (uint32_t v = 0; v < 256; v++) {
        assert_int_equal(f.t.vb[v].n, 3);
        for (unsigned i = 0; i < 3; i++) {
            assert_int_not_equal(f.t.vb[v].nodes[i], 2);
        }
    }
    topo_entry_node_forget(&f.b, n2.id);
    fx_apply(&f, TOPO_OK);
    assert_int_equal(topo_plan(&f.t, &plan, 0), 0);

    /* everyone leaving: nowhere to go, nothing planned */
    for (unsigned i = 1; i <= 4; i++) {
        if (i != 2) {
            struct topo_node n = mk_node(i);
            topo_entry_node_leave(&f.b, n.id);
            fx_apply(&f, TOPO_OK);
        }
    }
    assert_int_equal(topo_plan(&f.t, &plan, 0), 0);
    buf_deinit(&plan);
    fx_deinit(&f);
}

/* ---- the view ------------------------------------------------------------------ */

static void
test_view(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);

    /* before INIT: no slot assigned */
    join(&f, 1, TOPO_OK);
    struct topo_node n1 = mk_node(1), n2 = mk_node(2), n3 = mk_node(3);
    struct topo_view *v = topo_view_build(&f.t, n1.id);
    assert_non_null(v);
    assert_int_equal(v->nvb, 0);
    assert_int_equal(v->self, 0);
    assert_int_equal(v->slots_assigned, 0);
    for (unsigned s = 0; s < TOPO_SLOTS; s += 97) {
        assert_int_equal(topo_view_primary(v, s), TOPO_VIEW_NONE);
    }
    topo_view_free(v);

    init(&f, 256, 2, 64, TOPO_OK);
    join(&f, 2, TOPO_OK);
    join(&f, 3, TOPO_OK);
    topo_entry_node_forget(&f.b, n1.id);
    fx_apply(&f, TOPO_OK);
    plan_and_apply(&f);
    uint32_t l3[1] = { 3 };
    vb_set(&f, 10, f.t.vb[10].epoch, 0, NULL, TOPO_OK);
    vb_set(&f, 11, f.t.vb[11].epoch, 1, l3, TOPO_OK);

    v = topo_view_build(&f.t, n3.id);
    assert_non_null(v);
    assert_int_equal(v->config_epoch, f.t.config_epoch);
    assert_int_equal(v->nvb, 256);
    assert_int_equal(v->rf, 2);
    assert_int_equal(v->slot_shift, 6);
    assert_int_equal(v->nnodes, 2);
    assert_string_equal(v->nodes[0].id, n2.id);
    assert_string_equal(v->nodes[1].id, n3.id);
    assert_int_equal(v->self, 1);
    assert_int_equal(v->slots_assigned, TOPO_SLOTS - 64);
    for (unsigned s = 0; s < TOPO_SLOTS; s++) {
        uint32_t vb = s >> 6;
        assert_int_equal(topo_view_vb_of_slot(v, s), vb);
        uint16_t p = topo_view_primary(v, s);
        if (vb == 10) {
            assert_int_equal(p, TOPO_VIEW_NONE);
            continue;
        }
        assert_true(p < v->nnodes);
        assert_int_equal(v->nodes[p].num, f.t.vb[vb].nodes[0]);
        assert_int_equal(v->vb_n[vb], f.t.vb[vb].n);
        for (unsigned i = 0; i < v->vb_n[vb]; i++) {
            assert_int_equal(v->nodes[v->vb_nodes[vb * 2 + i]].num, f.t.vb[vb].nodes[i]);
        }
    }
    assert_int_equal(v->vb_n[11], 1);
    topo_view_free(v);

    v = topo_view_build(&f.t, n1.id); /* forgotten */
    assert_int_equal(v->self, TOPO_VIEW_NONE);
    topo_view_free(v);
    v = topo_view_build(&f.t, NULL);
    assert_int_equal(v->self, TOPO_VIEW_NONE);
    topo_view_free(v);
    topo_view_free(NULL);
    fx_deinit(&f);

    /* the slot shift at the extremes */
    static const uint32_t nvbs[] = { 1, 2, 16384 };
    for (size_t i = 0; i < 3; i++) {
        fx_init(&f);
        init(&f, nvbs[i], 1, 4, TOPO_OK);
        join(&f, 1, TOPO_OK);
        plan_and_apply(&f);
        v = topo_view_build(&f.t, NULL);
        assert_int_equal(TOPO_SLOTS >> v->slot_shift, nvbs[i]);
        assert_int_equal(topo_view_vb_of_slot(v, TOPO_SLOTS - 1), nvbs[i] - 1);
        assert_int_equal(v->slots_assigned, TOPO_SLOTS);
        assert_int_equal(topo_view_primary(v, TOPO_SLOTS - 1), 0);
        topo_view_free(v);
        fx_deinit(&f);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init),
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_node_join),
        cmocka_unit_test(test_node_leave_forget),
        cmocka_unit_test(test_vb_set),
        cmocka_unit_test(test_migrate),
        cmocka_unit_test(test_encode_roundtrip),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_plan_converges),
        cmocka_unit_test(test_view),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
