/*
 * test_cluster_cmds.c -- what Redis Cluster clients see (cmd/t_cluster.c):
 * routing of keyed commands through the real dispatch (cmd_dispatch,
 * cmd_dispatch_native) with a hand-built topology view published through
 * cluster_view_publish, and the reply bytes of every CLUSTER subcommand.
 *
 * The view: 3 nodes, 4 vbuckets of 4096 slots, replication factor 2:
 *   vb0, vb1  slots     0- 8191  node 1 (self), replica node 2
 *   vb2       slots  8192-12287  node 2,        replica node 3
 *   vb3       slots 12288-16383  node 3,        replica node 1
 * The expected shapes are Redis 7.0.15's, captured from a real 3-node Redis
 * Cluster with tests/integration/redis_cluster_capture.py (RESP2 and RESP3):
 * CLUSTER SLOTS entries [start, end, [ip, port, id, {}]...], SHARDS maps
 * {slots, nodes: [{id, port, ip, endpoint, role, replication-offset,
 * health}]}, NODES lines, INFO's fields, and the redirection errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster.h"
#include "cmd/cmd.h"
#include "cmd/keys.h"
#include "cmd/tstats.h"
#include "core/server.h"
#include "store/slot.h"
#include "util/buf.h"
#include "util/mem.h"

#define ID1 "1111111111111111111111111111111111111111"
#define ID2 "2222222222222222222222222222222222222222"
#define ID3 "3333333333333333333333333333333333333333"

static struct buf out;
static struct client cli;
static char *last;
static int wslot; /* this test thread as a worker */

/* A view as topo_view_build makes them: struct and arrays allocated apart
 * (what topo_view_free frees). lists: per vbucket, n then node indexes. */
static struct topo_view *
make_view(uint32_t nvb, const uint8_t *n, const uint16_t (*lists)[2], uint16_t self)
{
    struct topo_view *v = xcalloc(1, sizeof(*v));
    v->config_epoch = 7;
    v->nvb = nvb;
    v->rf = 2;
    v->slot_shift = (uint32_t)__builtin_ctz(TOPO_SLOTS / nvb);
    v->self = self;
    v->nnodes = 3;
    v->nodes = xcalloc(3, sizeof(*v->nodes));
    const char *ids[3] = {ID1, ID2, ID3};
    for (unsigned i = 0; i < 3; i++) {
        struct topo_node *nd = &v->nodes[i];
        nd->num = i + 1;
        strcpy(nd->id, ids[i]);
        strcpy(nd->ip, "127.0.0.1");
        nd->resp_port = (uint16_t)(7001 + i);
        nd->port = (uint16_t)(8001 + i);
        nd->bus_port = (uint16_t)(17001 + i);
    }
    v->vb_n = xcalloc(nvb, 1);
    v->vb_nodes = xcalloc((size_t)nvb * 2, sizeof(uint16_t));
    for (uint32_t vb = 0; vb < nvb; vb++) {
        v->vb_n[vb] = n[vb];
        v->vb_nodes[vb * 2] = lists[vb][0];
        v->vb_nodes[vb * 2 + 1] = lists[vb][1];
        if (n[vb]) {
            v->slots_assigned += TOPO_SLOTS / nvb;
        }
    }
    return v;
}

static const uint8_t full_n[4] = {2, 2, 2, 2};
static const uint16_t full_lists[4][2] = {{0, 1}, {0, 1}, {1, 2}, {2, 0}};

static void
publish(struct topo_view *v)
{
    cluster_view_publish(v);
    cluster_quiesce(wslot); /* the old view is not held by this "worker" */
    cluster_view_reclaim();
}

/* A key (static buffer per vbucket) whose slot is in vbucket vb of 4. */
static const char *
key_in(unsigned vb, const char *prefix)
{
    static char keys[8][32];
    static unsigned next;
    char *k = keys[next++ % 8];
    for (int i = 0;; i++) {
        snprintf(k, 32, "%s%d", prefix, i);
        if (slot_of(k, strlen(k)) >> 12 == vb) {
            return k;
        }
    }
}

/* Run one command line ('' is an empty argument) through dispatch. */
static const char *
run_with(int proto, const char *line)
{
    char *copy = xstrdup(line);
    struct proto_arg argv[32];
    int argc = 0;
    for (char *save = NULL, *t = strtok_r(copy, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
        assert_true(argc < 32);
        if (strcmp(t, "''") == 0) {
            t[0] = '\0';
        }
        argv[argc].ptr = t;
        argv[argc].len = strlen(t);
        argc++;
    }
    struct proto_req req = {argc, argv};
    buf_reset(&out, 0);
    cli.r.proto = proto;
    if (proto == REPLY_NATIVE) {
        cmd_dispatch_native(&cli, &req);
    } else {
        cmd_dispatch(&cli, &req);
    }
    free(last);
    last = xstrndup(out.data, out.len);
    free(copy);
    return last;
}

static const char *
run(const char *line)
{
    return run_with(REPLY_RESP2, line);
}

static const char *
runf(const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    return run(line);
}

static int
setup(void **state)
{
    (void)state;
    server.store = store_create(8, 0, STORE_NOEVICTION);
    buf_init(&out);
    cli.r.out = &out;
    cli.authed = true;
    cli.readonly = false;
    publish(make_view(4, full_n, full_lists, 0));
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    publish(NULL);
    store_destroy(&server.store);
    buf_deinit(&out);
    free(last);
    last = NULL;
    return 0;
}

static uint64_t
rejected(unsigned id)
{
    struct tstats sum;
    tstats_sum(&sum);
    return sum.cmd[id].rejected;
}

static void
test_routing(void **state)
{
    (void)state;
    char exp[128];
    const char *mine = key_in(0, "a"), *mine2 = key_in(1, "b");
    const char *other = key_in(2, "c"), *third = key_in(3, "d");
    unsigned so = slot_of(other, strlen(other)), st = slot_of(third, strlen(third));

    /* primary here: executes */
    assert_string_equal(runf("SET %s v", mine), "+OK\r\n");
    assert_string_equal(runf("GET %s", mine), "$1\r\nv\r\n");
    /* elsewhere: MOVED to the primary's RESP port, counted as rejected */
    uint64_t rej = rejected(CMD_ID_get);
    snprintf(exp, sizeof(exp), "-MOVED %u 127.0.0.1:7002\r\n", so);
    assert_string_equal(runf("GET %s", other), exp);
    assert_int_equal(rejected(CMD_ID_get), rej + 1);
    snprintf(exp, sizeof(exp), "-MOVED %u 127.0.0.1:7003\r\n", st);
    assert_string_equal(runf("SET %s v", third), exp);
    /* several slots: CROSSSLOT, even when this node owns both */
    assert_string_equal(runf("MGET %s %s", mine, mine2),
                        "-CROSSSLOT Keys in request don't hash to the same slot\r\n");
    assert_string_equal(runf("MSET %s 1 %s 2", mine, other),
                        "-CROSSSLOT Keys in request don't hash to the same slot\r\n");
    assert_string_equal(runf("DEL %s %s", other, third),
                        "-CROSSSLOT Keys in request don't hash to the same slot\r\n");
    /* hash tags keep keys together */
    char tagged[64];
    snprintf(tagged, sizeof(tagged), "MSET {%s}a 1 {%s}b 2", mine, mine);
    assert_string_equal(run(tagged), "+OK\r\n");
    snprintf(tagged, sizeof(tagged), "MGET {%s}a {%s}b", other, other);
    snprintf(exp, sizeof(exp), "-MOVED %u 127.0.0.1:7002\r\n", so);
    assert_string_equal(run(tagged), exp);
    /* keyless commands run here */
    assert_string_equal(run("PING"), "+PONG\r\n");
    assert_string_equal(run("DBSIZE"), ":3\r\n");
    /* arity is checked before routing, as Redis does */
    assert_string_equal(runf("GET %s x", other),
                        "-ERR wrong number of arguments for 'get' command\r\n");
    /* RENAME's two keys */
    snprintf(exp, sizeof(exp), "-MOVED %u 127.0.0.1:7002\r\n", so);
    assert_string_equal(runf("RENAME {%s}x {%s}y", other, other), exp);
    assert_string_equal(runf("RENAME %s %s", mine, other),
                        "-CROSSSLOT Keys in request don't hash to the same slot\r\n");
    /* INFO errorstats counts them by code, as Redis */
    cmd_stats_reset();
    runf("GET %s", other);
    runf("GET %s", other);
    runf("MGET %s %s", mine, other);
    const char *es = run("INFO errorstats");
    assert_non_null(strstr(es, "# Errorstats\r\nerrorstat_CROSSSLOT:count=1\r\n"
                               "errorstat_MOVED:count=2\r\n"));
}

static void
test_readonly_replica_reads(void **state)
{
    (void)state;
    char exp[128];
    const char *third = key_in(3, "r"); /* vb3: node 3 primary, self replica */
    const char *other = key_in(2, "s"); /* vb2: self holds no copy */
    unsigned st = slot_of(third, strlen(third)), so = slot_of(other, strlen(other));
    snprintf(exp, sizeof(exp), "-MOVED %u 127.0.0.1:7003\r\n", st);
    assert_string_equal(runf("GET %s", third), exp);
    assert_string_equal(run("READONLY"), "+OK\r\n");
    assert_true(cli.readonly);
    /* reads of a slot this node replicates are served here */
    assert_string_equal(runf("GET %s", third), "$-1\r\n");
    assert_string_equal(runf("EXISTS %s", third), ":0\r\n");
    /* writes are not */
    assert_string_equal(runf("SET %s v", third), exp);
    assert_string_equal(runf("DEL %s", third), exp);
    /* nor reads of a slot it does not hold */
    snprintf(exp, sizeof(exp), "-MOVED %u 127.0.0.1:7002\r\n", so);
    assert_string_equal(runf("GET %s", other), exp);
    /* READWRITE and RESET end it */
    assert_string_equal(run("READWRITE"), "+OK\r\n");
    snprintf(exp, sizeof(exp), "-MOVED %u 127.0.0.1:7003\r\n", st);
    assert_string_equal(runf("GET %s", third), exp);
    run("READONLY");
    assert_string_equal(run("RESET"), "+RESET\r\n");
    assert_false(cli.readonly);
    assert_string_equal(runf("GET %s", third), exp);
    assert_string_equal(run("ASKING"), "+OK\r\n");
    assert_string_equal(run("READONLY x"),
                        "-ERR wrong number of arguments for 'readonly' command\r\n");
}

static void
test_clusterdown(void **state)
{
    (void)state;
    static const uint8_t n[4] = {2, 0, 2, 2}; /* vb1 unassigned */
    publish(make_view(4, n, full_lists, 0));
    const char *hole = key_in(1, "h"), *mine = key_in(0, "m");
    assert_string_equal(runf("GET %s", hole), "-CLUSTERDOWN Hash slot not served\r\n");
    assert_string_equal(runf("SET %s v", hole), "-CLUSTERDOWN Hash slot not served\r\n");
    /* as Redis: an unserved first key answers before the other keys are seen */
    assert_string_equal(runf("MGET %s %s", hole, mine), "-CLUSTERDOWN Hash slot not served\r\n");
    assert_string_equal(runf("MGET %s %s", mine, hole),
                        "-CROSSSLOT Keys in request don't hash to the same slot\r\n");
    assert_string_equal(runf("GET %s", mine), "$-1\r\n");
    char line[64];
    snprintf(line, sizeof(line), "GET %s", hole);
    assert_string_equal(run_with(REPLY_NATIVE, line),
                        "ERROR: CLUSTERDOWN Hash slot not served\r\n");
    /* CLUSTER INFO says fail */
    assert_non_null(strstr(run("CLUSTER INFO"), "cluster_state:fail\r\n"
                                                 "cluster_slots_assigned:12288\r\n"));
    /* a node that is not a member: unassigned slots are still CLUSTERDOWN */
    publish(make_view(4, n, full_lists, TOPO_VIEW_NONE));
    assert_string_equal(runf("GET %s", hole), "-CLUSTERDOWN Hash slot not served\r\n");
    assert_string_equal(run_with(REPLY_NATIVE, line),
                        "ERROR: CLUSTERDOWN Hash slot not served\r\n");
    /* and it redirects everything else */
    publish(make_view(4, full_n, full_lists, TOPO_VIEW_NONE));
    char exp[96];
    snprintf(exp, sizeof(exp), "-MOVED %u 127.0.0.1:7001\r\n", slot_of(mine, strlen(mine)));
    assert_string_equal(runf("GET %s", mine), exp);
}

static void
test_native_moved(void **state)
{
    (void)state;
    char line[64], exp[96];
    const char *other = key_in(2, "n"), *mine = key_in(0, "o");
    unsigned so = slot_of(other, strlen(other));
    /* A PEER connection (a node forwarding to this one) gets MOVED with the
     * owner's native port; any other client is forwarded, which needs the
     * network layer (tests/integration/test_cluster_forward.py). */
    assert_string_equal(run_with(REPLY_NATIVE, "PEER"), "OK\r\n");
    assert_true(cli.peer);
    snprintf(exp, sizeof(exp), "ERROR: MOVED %u 127.0.0.1:8002\r\n", so);
    snprintf(line, sizeof(line), "GET %s", other);
    assert_string_equal(run_with(REPLY_NATIVE, line), exp);
    snprintf(line, sizeof(line), "PUT %s v 10", other);
    assert_string_equal(run_with(REPLY_NATIVE, line), exp);
    snprintf(line, sizeof(line), "DEL %s", other);
    assert_string_equal(run_with(REPLY_NATIVE, line), exp);
    snprintf(line, sizeof(line), "PUT %s v", mine);
    assert_string_equal(run_with(REPLY_NATIVE, line), "OK\r\n");
    snprintf(line, sizeof(line), "GET %s", mine);
    assert_string_equal(run_with(REPLY_NATIVE, line), "v\r\n");
    assert_string_equal(run_with(REPLY_NATIVE, "PING"), "PONG\r\n");
    cli.peer = false;
}

static void
test_cluster_slots(void **state)
{
    (void)state;
    /* RESP2: three ranges (vb0 and vb1 merged), primary then replica */
    const char *node1 = "*4\r\n$9\r\n127.0.0.1\r\n:7001\r\n$40\r\n" ID1 "\r\n*0\r\n";
    const char *node2 = "*4\r\n$9\r\n127.0.0.1\r\n:7002\r\n$40\r\n" ID2 "\r\n*0\r\n";
    const char *node3 = "*4\r\n$9\r\n127.0.0.1\r\n:7003\r\n$40\r\n" ID3 "\r\n*0\r\n";
    char exp[2048];
    snprintf(exp, sizeof(exp),
             "*3\r\n*4\r\n:0\r\n:8191\r\n%s%s*4\r\n:8192\r\n:12287\r\n%s%s"
             "*4\r\n:12288\r\n:16383\r\n%s%s",
             node1, node2, node2, node3, node3, node1);
    assert_string_equal(run("CLUSTER SLOTS"), exp);
    /* RESP3: the metadata map is an empty map */
    const char *r3 = run_with(REPLY_RESP3, "CLUSTER SLOTS");
    assert_non_null(strstr(r3, "*4\r\n$9\r\n127.0.0.1\r\n:7001\r\n$40\r\n" ID1 "\r\n%0\r\n"));
    assert_null(strstr(r3, "*0\r\n"));
    /* lower case, as any subcommand */
    assert_string_equal(run("cluster slots"), exp);
}

static void
test_cluster_shards(void **state)
{
    (void)state;
    /* one shard per distinct replica list, by first slot */
    char n1p[512], n2r[512], n2p[512], n3r[512], n3p[512], n1r[512];
#define NODE(buf, id, port, role)                                                               \
    snprintf(buf, sizeof(buf),                                                                  \
             "*14\r\n$2\r\nid\r\n$40\r\n%s\r\n$4\r\nport\r\n:%d\r\n$2\r\nip\r\n$9\r\n127.0.0.1" \
             "\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$%zu\r\n%s\r\n$18\r\n"     \
             "replication-offset\r\n:0\r\n$6\r\nhealth\r\n$6\r\nonline\r\n",                   \
             id, port, strlen(role), role)
    NODE(n1p, ID1, 7001, "master");
    NODE(n2r, ID2, 7002, "replica");
    NODE(n2p, ID2, 7002, "master");
    NODE(n3r, ID3, 7003, "replica");
    NODE(n3p, ID3, 7003, "master");
    NODE(n1r, ID1, 7001, "replica");
    char exp[8192];
    snprintf(exp, sizeof(exp),
             "*3\r\n"
             "*4\r\n$5\r\nslots\r\n*2\r\n:0\r\n:8191\r\n$5\r\nnodes\r\n*2\r\n%s%s"
             "*4\r\n$5\r\nslots\r\n*2\r\n:8192\r\n:12287\r\n$5\r\nnodes\r\n*2\r\n%s%s"
             "*4\r\n$5\r\nslots\r\n*2\r\n:12288\r\n:16383\r\n$5\r\nnodes\r\n*2\r\n%s%s",
             n1p, n2r, n2p, n3r, n3p, n1r);
    assert_string_equal(run("CLUSTER SHARDS"), exp);
    /* RESP3: maps, %2 per shard and %7 per node */
    const char *r3 = run_with(REPLY_RESP3, "CLUSTER SHARDS");
    assert_memory_equal(r3, "*3\r\n%2\r\n$5\r\nslots\r\n*2\r\n:0\r\n:8191\r\n$5\r\nnodes\r\n*2\r\n"
                            "%7\r\n$2\r\nid\r\n",
                        strlen("*3\r\n%2\r\n$5\r\nslots\r\n*2\r\n:0\r\n:8191\r\n$5\r\nnodes\r\n"
                               "*2\r\n%7\r\n$2\r\nid\r\n"));

    /* a list that comes back later is one shard with two ranges */
    static const uint8_t n[4] = {2, 2, 2, 2};
    static const uint16_t lists[4][2] = {{0, 1}, {1, 2}, {0, 1}, {2, 0}};
    publish(make_view(4, n, lists, 0));
    const char *r = run("CLUSTER SHARDS");
    assert_memory_equal(r, "*3\r\n*4\r\n$5\r\nslots\r\n*4\r\n:0\r\n:4095\r\n:8192\r\n:12287\r\n",
                        strlen("*3\r\n*4\r\n$5\r\nslots\r\n*4\r\n:0\r\n:4095\r\n:8192\r\n"
                               ":12287\r\n"));
    /* and SLOTS does not merge across the gap */
    assert_memory_equal(run("CLUSTER SLOTS"), "*4\r\n*4\r\n:0\r\n:4095\r\n",
                        strlen("*4\r\n*4\r\n:0\r\n:4095\r\n"));
}

static void
test_cluster_nodes_info_myid(void **state)
{
    (void)state;
    char exp[1024];
    const char *body =
        ID1 " 127.0.0.1:7001@17001 myself,master - 0 0 7 connected 0-8191\n"
        ID2 " 127.0.0.1:7002@17002 master - 0 0 7 connected 8192-12287\n"
        ID3 " 127.0.0.1:7003@17003 master - 0 0 7 connected 12288-16383\n";
    snprintf(exp, sizeof(exp), "$%zu\r\n%s\r\n", strlen(body), body);
    assert_string_equal(run("CLUSTER NODES"), exp);
    snprintf(exp, sizeof(exp), "=%zu\r\ntxt:%s\r\n", strlen(body) + 4, body);
    assert_string_equal(run_with(REPLY_RESP3, "CLUSTER NODES"), exp);

    struct cluster_raft_info ri = {.role = "follower", .term = 5, .commit_index = 40,
                                   .applied_index = 39, .migrations_active = 2,
                                   .migrations_completed = 11, .keys_migrated = 1234,
                                   .bytes_migrated = 56789, .bus_sent = 101,
                                   .bus_received = 99};
    strcpy(ri.leader_node_id, ID2);
    cluster_raft_info_set(&ri);
    /* forwarding figures: this thread's counters (net/fwd.c counts them) */
    struct tstats *ts = tstats_self();
    ts->fwd_requests = 4;
    ts->fwd_failed = 1;
    ts->fwd_retries = 2;
    ts->fwd_usec = 1000;
    const char *info = "cluster_state:ok\r\n"
                       "cluster_slots_assigned:16384\r\n"
                       "cluster_slots_ok:16384\r\n"
                       "cluster_slots_pfail:0\r\n"
                       "cluster_slots_fail:0\r\n"
                       "cluster_known_nodes:3\r\n"
                       "cluster_size:3\r\n"
                       "cluster_current_epoch:7\r\n"
                       "cluster_my_epoch:7\r\n"
                       "cluster_stats_messages_sent:101\r\n"
                       "cluster_stats_messages_received:99\r\n"
                       "total_cluster_links_buffer_limit_exceeded:0\r\n"
                       "raft_role:follower\r\n"
                       "raft_leader_id:" ID2 "\r\n"
                       "raft_term:5\r\n"
                       "raft_commit_index:40\r\n"
                       "raft_applied_index:39\r\n"
                       "cluster_migrations_active:2\r\n"
                       "cluster_migrations_completed:11\r\n"
                       "cluster_keys_migrated:1234\r\n"
                       "cluster_bytes_migrated:56789\r\n"
                       "cluster_vbuckets_pending:0\r\n"
                       "cluster_forwarded_requests:4\r\n"
                       "cluster_forward_failed:1\r\n"
                       "cluster_forward_retries:2\r\n"
                       "cluster_forward_usec_per_call:250.00\r\n";
    snprintf(exp, sizeof(exp), "$%zu\r\n%s\r\n", strlen(info), info);
    assert_string_equal(run("CLUSTER INFO"), exp);
    snprintf(exp, sizeof(exp), "=%zu\r\ntxt:%s\r\n", strlen(info) + 4, info);
    assert_string_equal(run_with(REPLY_RESP3, "CLUSTER INFO"), exp);

    assert_string_equal(run("CLUSTER MYID"), "$40\r\n" ID1 "\r\n");
    /* cluster_size counts primaries: node 3 loses its vbucket */
    static const uint16_t lists[4][2] = {{0, 1}, {0, 1}, {1, 2}, {1, 0}};
    publish(make_view(4, full_n, lists, 1));
    assert_non_null(strstr(run("CLUSTER INFO"), "cluster_known_nodes:3\r\ncluster_size:2\r\n"));
    assert_string_equal(run("CLUSTER MYID"), "$40\r\n" ID2 "\r\n");
    assert_non_null(strstr(run("CLUSTER NODES"),
                           ID2 " 127.0.0.1:7002@17002 myself,master - 0 0 7 connected "
                               "8192-16383\n"));
    assert_non_null(strstr(last, ID3 " 127.0.0.1:7003@17003 master - 0 0 7 connected\n"));
    /* a node in no replica list is a shard of its own without slots, as Redis
     * shows a master without slots */
    static const uint16_t two[4][2] = {{0, 1}, {0, 1}, {1, 0}, {1, 0}};
    publish(make_view(4, full_n, two, 0));
    char n3[512];
    snprintf(n3, sizeof(n3),
             "*4\r\n$5\r\nslots\r\n*0\r\n$5\r\nnodes\r\n*1\r\n*14\r\n$2\r\nid\r\n$40\r\n%s"
             "\r\n$4\r\nport\r\n:7003\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9"
             "\r\n127.0.0.1\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$18\r\nreplication-offset\r\n:0\r\n"
             "$6\r\nhealth\r\n$6\r\nonline\r\n",
             ID3);
    const char *sh = run("CLUSTER SHARDS");
    assert_memory_equal(sh, "*3\r\n", 4);
    assert_true(strlen(sh) > strlen(n3));
    assert_string_equal(sh + strlen(sh) - strlen(n3), n3);
}

static void
test_cluster_keys_and_errors(void **state)
{
    (void)state;
    assert_string_equal(run("CLUSTER KEYSLOT foo"), ":12182\r\n"); /* as Redis */
    char ks[32];
    snprintf(ks, sizeof(ks), ":%u\r\n", slot_of("user1", 5));
    assert_string_equal(run("CLUSTER KEYSLOT {user1}:a"), ks);
    assert_string_equal(run("CLUSTER KEYSLOT"),
                        "-ERR wrong number of arguments for 'cluster|keyslot' command\r\n");
    assert_string_equal(run("CLUSTER nosuch"),
                        "-ERR unknown subcommand 'nosuch'. Try CLUSTER HELP.\r\n");
    assert_string_equal(run("CLUSTER"),
                        "-ERR wrong number of arguments for 'cluster' command\r\n");
    /* keys of one slot, from the store */
    const char *mine = key_in(0, "q");
    char a[64], b[64];
    snprintf(a, sizeof(a), "{%s}1", mine);
    snprintf(b, sizeof(b), "{%s}2", mine);
    unsigned slot = slot_of(mine, strlen(mine));
    runf("MSET %s 1 %s 2", a, b);
    char exp[256];
    assert_string_equal(runf("CLUSTER COUNTKEYSINSLOT %u", slot), ":2\r\n");
    assert_string_equal(runf("CLUSTER COUNTKEYSINSLOT %u", (slot + 1) % 16384), ":0\r\n");
    const char *r = runf("CLUSTER GETKEYSINSLOT %u 10", slot);
    snprintf(exp, sizeof(exp), "*2\r\n$%zu\r\n%s\r\n$%zu\r\n%s\r\n", strlen(a), a, strlen(b), b);
    char exp2[256];
    snprintf(exp2, sizeof(exp2), "*2\r\n$%zu\r\n%s\r\n$%zu\r\n%s\r\n", strlen(b), b, strlen(a),
             a);
    assert_true(strcmp(r, exp) == 0 || strcmp(r, exp2) == 0);
    assert_memory_equal(runf("CLUSTER GETKEYSINSLOT %u 1", slot), "*1\r\n", 4);
    assert_string_equal(runf("CLUSTER GETKEYSINSLOT %u 0", slot), "*0\r\n");
    /* Redis's errors */
    assert_string_equal(run("CLUSTER COUNTKEYSINSLOT 16384"), "-ERR Invalid slot\r\n");
    assert_string_equal(run("CLUSTER COUNTKEYSINSLOT -1"), "-ERR Invalid slot\r\n");
    assert_string_equal(run("CLUSTER COUNTKEYSINSLOT x"),
                        "-ERR value is not an integer or out of range\r\n");
    assert_string_equal(run("CLUSTER GETKEYSINSLOT 1 -1"),
                        "-ERR Invalid slot or number of keys\r\n");
    assert_string_equal(run("CLUSTER GETKEYSINSLOT 16384 1"),
                        "-ERR Invalid slot or number of keys\r\n");
    assert_string_equal(run("CLUSTER GETKEYSINSLOT x 1"),
                        "-ERR value is not an integer or out of range\r\n");
    assert_string_equal(run("CLUSTER GETKEYSINSLOT 1 y"),
                        "-ERR value is not an integer or out of range\r\n");
    /* HELP: Redis's header and wording, our subcommands */
    r = run("CLUSTER HELP");
    assert_memory_equal(r, "*21\r\n+CLUSTER <subcommand> [<arg> [value] [opt] ...]. "
                           "Subcommands are:\r\n+COUNTKEYSINSLOT <slot>\r\n",
                        strlen("*21\r\n+CLUSTER <subcommand> [<arg> [value] [opt] ...]. "
                               "Subcommands are:\r\n+COUNTKEYSINSLOT <slot>\r\n"));
    assert_non_null(strstr(r, "+HELP\r\n+    Prints this help.\r\n"));
    assert_string_equal(run("CLUSTER ADDSLOTS 1"),
                        "-ERR CLUSTER ADDSLOTS is not supported by CrabCache\r\n");
    assert_string_equal(run("INFO cluster"), "$30\r\n# Cluster\r\ncluster_enabled:1\r\n\r\n");
    /* as a Redis Cluster node */
    assert_string_equal(run("SELECT 1"), "-ERR SELECT is not allowed in cluster mode\r\n");
    assert_string_equal(run("SELECT 0"), "+OK\r\n");
    assert_non_null(strstr(run("INFO server"), "\r\nredis_mode:cluster\r\n"));
    assert_non_null(strstr(run("HELLO 2"), "$4\r\nmode\r\n$7\r\ncluster\r\n"));
}

static void
test_cluster_disabled(void **state)
{
    (void)state;
    publish(NULL);
    const char *off = "-ERR This instance has cluster support disabled\r\n";
    assert_string_equal(run("CLUSTER INFO"), off);
    assert_string_equal(run("CLUSTER KEYSLOT foo"), off);
    assert_string_equal(run("CLUSTER HELP"), off);
    assert_string_equal(run("READONLY"), off);
    assert_string_equal(run("READWRITE"), off);
    assert_string_equal(run("ASKING"), off);
    assert_string_equal(run("CLUSTER KEYSLOT"),
                        "-ERR wrong number of arguments for 'cluster|keyslot' command\r\n");
    /* every key is served here */
    const char *other = key_in(2, "z");
    assert_string_equal(runf("SET %s v", other), "+OK\r\n");
    assert_string_equal(run("INFO cluster"), "$30\r\n# Cluster\r\ncluster_enabled:0\r\n\r\n");
    assert_non_null(strstr(run("INFO server"), "\r\nredis_mode:standalone\r\n"));
}

int
main(void)
{
    wslot = cluster_worker_register();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_routing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readonly_replica_reads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clusterdown, setup, teardown),
        cmocka_unit_test_setup_teardown(test_native_moved, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cluster_slots, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cluster_shards, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cluster_nodes_info_myid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cluster_keys_and_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cluster_disabled, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
