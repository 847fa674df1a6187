/*
 * test_cluster_view.c -- publishing topology views and freeing old ones
 * (cluster/view.c): a retired view stays readable until every registered
 * worker has quiesced, then it is freed; the Raft info copy.
 *
 * Under ASan a read of a view freed too early is a use-after-free report, so
 * the reads below are the test as much as the asserts are.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster.h"
#include "util/mem.h"

/* A one-node view (as topo_view_free frees it: struct and arrays apart). */
static struct topo_view *
make_view(uint64_t epoch)
{
    struct topo_view *v = xcalloc(1, sizeof(*v));
    v->config_epoch = epoch;
    v->nvb = 1;
    v->rf = 1;
    v->slot_shift = 14;
    v->self = 0;
    v->nnodes = 1;
    v->nodes = xcalloc(1, sizeof(*v->nodes));
    v->nodes[0].num = 1;
    memset(v->nodes[0].id, 'a', TOPO_ID_LEN);
    v->vb_n = xcalloc(1, 1);
    v->vb_n[0] = 1;
    v->vb_nodes = xcalloc(1, sizeof(uint16_t));
    v->slots_assigned = TOPO_SLOTS;
    return v;
}

static void
test_publish_and_reclaim(void **state)
{
    (void)state;
    int w1 = cluster_worker_register();
    int w2 = cluster_worker_register();
    assert_true(w1 >= 0 && w2 > w1);

    struct topo_view *a = make_view(1);
    cluster_view_publish(a);
    assert_ptr_equal(cluster_view(), a);
    assert_int_equal(cluster_view_retired(), 0);

    /* both workers read a, then b replaces it */
    const struct topo_view *held1 = cluster_view();
    const struct topo_view *held2 = cluster_view();
    struct topo_view *b = make_view(2);
    cluster_view_publish(b);
    assert_ptr_equal(cluster_view(), b);
    assert_int_equal(cluster_view_retired(), 1);

    /* nobody quiesced: a must stay */
    cluster_view_reclaim();
    assert_int_equal(cluster_view_retired(), 1);
    assert_int_equal(held1->config_epoch, 1);

    /* one worker quiesced, the other still holds a */
    cluster_quiesce(w1);
    cluster_view_reclaim();
    assert_int_equal(cluster_view_retired(), 1);
    assert_int_equal(held2->config_epoch, 1);
    assert_int_equal(held2->nodes[0].num, 1);

    /* a third view: b retired too; a still waits for w2 */
    struct topo_view *c = make_view(3);
    cluster_view_publish(c);
    assert_int_equal(cluster_view_retired(), 2);
    assert_int_equal(held2->vb_n[0], 1);

    /* w2 quiesces: a can go; b was retired after w1's bump, so it waits for w1 */
    cluster_quiesce(w2);
    cluster_view_reclaim();
    assert_int_equal(cluster_view_retired(), 1);
    cluster_quiesce(w1);
    cluster_view_reclaim();
    assert_int_equal(cluster_view_retired(), 0);

    /* republishing the same view retires nothing; NULL retires the last one */
    cluster_view_publish(c);
    assert_int_equal(cluster_view_retired(), 0);
    cluster_view_publish(NULL);
    assert_null(cluster_view());
    assert_int_equal(cluster_view_retired(), 1);
    cluster_quiesce(w1);
    cluster_quiesce(w2);
    cluster_view_publish(NULL); /* publishing reclaims too */
    assert_int_equal(cluster_view_retired(), 0);
}

/* Readers on threads that quiesce between reads while the view changes under
 * them: every view a reader holds must stay intact until it quiesces. */
#define READERS 3
#define PUBLISHES 2000

static _Atomic bool stop;

static void *
reader(void *arg)
{
    int slot = *(int *)arg;
    uint64_t last = 0;
    while (!atomic_load(&stop)) {
        const struct topo_view *v = cluster_view();
        if (v) {
            /* read it all: a freed view is an ASan report */
            uint64_t e = v->config_epoch;
            assert_true(e >= last);
            last = e;
            assert_int_equal(v->nodes[0].num, 1);
            assert_int_equal(v->vb_n[0], 1);
            assert_int_equal(v->vb_nodes[0], 0);
            assert_int_equal(v->config_epoch, e);
        }
        cluster_quiesce(slot);
    }
    cluster_quiesce(slot);
    return NULL;
}

static void
test_concurrent_readers(void **state)
{
    (void)state;
    pthread_t th[READERS];
    int slots[READERS];
    atomic_store(&stop, false);
    for (int i = 0; i < READERS; i++) {
        slots[i] = cluster_worker_register();
        assert_true(slots[i] >= 0);
    }
    for (int i = 0; i < READERS; i++) {
        pthread_create(&th[i], NULL, reader, &slots[i]);
    }
    for (uint64_t e = 10; e < 10 + PUBLISHES; e++) {
        /* the first test's workers stay registered: keep them quiescing as
         * idle workers do, so views are freed while the readers run */
        for (int i = 0; i < slots[0]; i++) {
            cluster_quiesce(i);
        }
        cluster_view_publish(make_view(e));
        if (e % 7 == 0) {
            cluster_view_reclaim();
        }
    }
    atomic_store(&stop, true);
    for (int i = 0; i < READERS; i++) {
        pthread_join(th[i], NULL);
    }
    /* every reader has quiesced after the last swap */
    for (int i = 0; i < slots[0]; i++) {
        cluster_quiesce(i);
    }
    cluster_view_reclaim();
    assert_int_equal(cluster_view_retired(), 0);
    cluster_view_publish(NULL);
    for (int i = 0; i <= slots[READERS - 1]; i++) {
        cluster_quiesce(i);
    }
    cluster_view_reclaim();
    assert_int_equal(cluster_view_retired(), 0);
}

/* The static empty view is retired like any other but never freed (ASan
 * would report freeing a non-heap object). */
static void
test_empty_view_not_freed(void **state)
{
    (void)state;
    int w = cluster_worker_register();
    cluster_view_publish(&cluster_view_empty);
    assert_int_equal(topo_view_primary(cluster_view(), 12182), TOPO_VIEW_NONE);
    assert_int_equal(topo_view_primary(cluster_view(), 0), TOPO_VIEW_NONE);
    assert_int_equal(topo_view_primary(cluster_view(), 16383), TOPO_VIEW_NONE);
    cluster_view_publish(make_view(100));
    for (int i = 0; i <= w; i++) {
        cluster_quiesce(i);
    }
    cluster_view_reclaim();
    assert_int_equal(cluster_view_retired(), 0);
    cluster_view_publish(NULL);
    for (int i = 0; i <= w; i++) {
        cluster_quiesce(i);
    }
    cluster_view_reclaim();
    assert_int_equal(cluster_view_retired(), 0);
}

static void
test_raft_info(void **state)
{
    (void)state;
    struct cluster_raft_info ri;
    cluster_raft_info(&ri);
    assert_string_equal(ri.role, "unavailable");
    struct cluster_raft_info in = {.role = "leader", .raft_id = 7, .leader_raft_id = 7,
                                   .term = 3, .commit_index = 42, .applied_index = 41,
                                   .voters = 3, .standbys = 1};
    memset(in.leader_node_id, 'b', TOPO_ID_LEN);
    cluster_raft_info_set(&in);
    cluster_raft_info(&ri);
    assert_string_equal(ri.role, "leader");
    assert_int_equal(ri.term, 3);
    assert_int_equal(ri.commit_index, 42);
    assert_int_equal(ri.applied_index, 41);
    assert_int_equal(strlen(ri.leader_node_id), TOPO_ID_LEN);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_publish_and_reclaim),
        cmocka_unit_test(test_concurrent_readers),
        cmocka_unit_test(test_empty_view_not_freed),
        cmocka_unit_test(test_raft_info),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
