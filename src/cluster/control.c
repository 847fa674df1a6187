/*
 * control.c -- the cluster's control thread: identity, forming and joining,
 * Raft for the topology, the bus, and the leader's placement.
 *
 * One thread with its own libuv loop, so that client load cannot starve
 * Raft's heartbeats. It owns struct topo; after each change it publishes an
 * immutable view for the workers (cluster_view_publish).
 *
 * How a node becomes a member (docs/cluster.md):
 *   - Its identity (node id, Raft id) lives in cluster.dir/node.id, its Raft
 *     log in cluster.dir/raft. A restarted node with its directory is the
 *     same member; a wiped one gets a new identity, never its old Raft id.
 *   - Seeds: nodes started with the same seed list that contains their own
 *     bus address bootstrap one identical Raft configuration (the first 3
 *     seeds as voters, or 5 of 5 or more; the rest standbys), each seed under
 *     a Raft id derived from the cluster name and its address. A pristine seed
 *     bootstraps only once a majority of the list answered "pristine" and
 *     none "member" -- or, when a member answers and the seed's Raft id is in
 *     no node of its topology, because the others formed without it. If a
 *     member knows that Raft id as a node, this directory was wiped: it joins
 *     under a new identity instead.
 *   - Every member that is not (or not as it is now) in the topology sends
 *     JOIN to the leader (to a seed until it knows one) until it is. The
 *     leader adds it to Raft as a standby, then commits NODE_JOIN.
 *   - A node with no seeds waits for CLUSTER MEET to name a member.
 * The leader then keeps the placement: INIT once, standbys promoted while
 * voters are short, and topo_plan's differences committed as they appear.
 *
 * The Raft transport listens on the bus port + 10000, so a bus address
 * gives the Raft address and back.
 */
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/ctl.h"
#include "cluster/wire.h"
#include "conf/config.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/mem.h"

struct ctl ctl;

/* ---- publishing -------------------------------------------------------------- */

/* How many vbuckets are not where the ring places them yet, or are being
 * copied: what is left of a join or a leave (for CLUSTER INFO and the tests'
 * "settled"). A report only: placement itself is the leader's. */
static uint32_t
pending_vbuckets(void)
{
    uint32_t nvb = ctl.topo.nvb, rf = ctl.topo.rf, n = 0;
    if (nvb == 0) {
        return 0;
    }
    uint32_t *place = xmalloc((size_t)nvb * rf * sizeof(*place));
    uint8_t *place_n = xmalloc(nvb);
    bool placed = topo_place_all(&ctl.topo, place, place_n) == 0;
    for (uint32_t vb = 0; vb < nvb; vb++) {
        n += ctl.topo.vb[vb].copy_id != 0 ||
             (placed && !topo_vb_list_equal(&ctl.topo, vb, place_n[vb], place + (size_t)vb * rf));
    }
    free(place);
    free(place_n);
    return n;
}

void
ctl_publish_view(void)
{
    struct topo_view *v = topo_view_build(&ctl.topo, ctl.node_id);
    if (v != NULL) {
        v->vb_pending = pending_vbuckets();
        cluster_view_publish(v);
        /* Requests kept for a handover run again against the new view. */
        if (ctl.wake_retries && ctl.started) {
            ctl.wake_retries();
        }
    }
}

void
ctl_publish_raft_info(void)
{
    struct cluster_raft_info in;
    memset(&in, 0, sizeof(in));
    in.raft_id = ctl.raft_id;
    if (ctl.raft == NULL) {
        in.role = "unavailable";
        cluster_raft_info_set(&in);
        return;
    }
    struct craft_status st;
    craft_status(ctl.raft, &st);
    in.role = st.role;
    in.leader_raft_id = st.leader_id;
    for (size_t i = 0; i < ctl.topo.nnodes; i++) {
        if (ctl.topo.nodes[i].raft_id == st.leader_id && st.leader_id) {
            snprintf(in.leader_node_id, sizeof(in.leader_node_id), "%s", ctl.topo.nodes[i].id);
        }
    }
    in.term = st.term;
    in.commit_index = st.commit_index;
    in.applied_index = st.applied_index;
    in.voters = st.voters;
    in.standbys = st.standbys;
    in.migrations_active = ctl_migrations_active();
    in.ncopies = ctl_migrate_progress(in.copies, CLUSTER_INFO_COPIES);
    in.migrations_completed = ctl.migrations_completed;
    in.keys_migrated = ctl.keys_migrated;
    in.bytes_migrated = ctl.bytes_migrated;
    bus_counts(&in.bus_sent, &in.bus_received);
    cluster_raft_info_set(&in);
}

/* ---- the state machine under Raft ------------------------------------------------ */

static int
fsm_apply(void *ctx, uint64_t index, const void *data, size_t len)
{
    (void)ctx;
    uint64_t before = ctl.topo.config_epoch;
    enum topo_result r = topo_apply(&ctl.topo, index, data, len);
    if (ctl.topo.config_epoch != before) {
        ctl_publish_view();
        ctl_migrate_on_topology();
        /* Rare (joins, leaves, placement): worth a line each. */
        const uint8_t type = len ? *(const uint8_t *)data : 0;
        if (type != TOPO_E_VB_SET) {
            log_info("cluster: topology changed",
                     "\"epoch\":%llu,\"entry\":%u,\"nodes\":%zu",
                     (unsigned long long)ctl.topo.config_epoch, type, ctl.topo.nnodes);
        }
    }
    return (int)r;
}

static void
fsm_snapshot(void *ctx, struct buf *out)
{
    (void)ctx;
    topo_encode(&ctl.topo, out);
}

static int
fsm_restore(void *ctx, const void *data, size_t len)
{
    (void)ctx;
    if (topo_decode(&ctl.topo, data, len) != TOPO_OK) {
        log_error("cluster: a topology snapshot could not be read", NULL);
        return -1;
    }
    ctl_publish_view();
    ctl_migrate_on_topology();
    return 0;
}

/* ---- Raft start ---------------------------------------------------------------- */

int
ctl_raft_open(char *err, size_t errlen)
{
    char rdir[PATH_MAX + 8];
    snprintf(rdir, sizeof(rdir), "%s/raft", ctl.dir);
    if (ctl_mkdir_p(rdir, err, errlen) != 0) {
        return -1;
    }
    struct craft_fsm fsm = {
        .ctx = &ctl, .apply = fsm_apply, .snapshot = fsm_snapshot, .restore = fsm_restore,
    };
    struct craft_opts o = {.election_ms = ctl.election_ms, .snapshot_threshold = 256};
    ctl.raft = craft_create(&ctl.loop, rdir, ctl.raft_id, ctl.raft_addr, &fsm, &o, err, errlen);
    return ctl.raft ? 0 : -1;
}

/* The seeds' common configuration: the first voters, the rest standbys. */
static int
raft_bootstrap_seeds(char *err, size_t errlen)
{
    struct craft_member m[MAX_SEEDS];
    char addrs[MAX_SEEDS][64];
    size_t voters = ctl.nseeds >= 5 ? 5 : ctl.nseeds < 3 ? ctl.nseeds : 3;
    for (size_t i = 0; i < ctl.nseeds; i++) {
        ctl_raft_addr_of(ctl.seeds[i], addrs[i], sizeof(addrs[i]));
        m[i].id = ctl_seed_raft_id(ctl.seeds[i]);
        m[i].addr = addrs[i];
        m[i].role = i < voters ? CRAFT_VOTER : CRAFT_STANDBY;
    }
    return craft_bootstrap(ctl.raft, m, ctl.nseeds, err, errlen) < 0 ? -1 : 0;
}

void
ctl_go_running(void)
{
    char err[256];
    if (craft_start(ctl.raft, err, sizeof(err)) != 0) {
        /* libraft cannot be started twice: this node stays out of the
         * cluster (every key answers CLUSTERDOWN) until it is restarted. */
        log_error("cluster: Raft did not start; this node serves no slot until restarted",
                  "\"error\":\"%s\",\"raft\":\"%s\"", err, ctl.raft_addr);
        ctl.phase = PH_BROKEN;
        return;
    }
    ctl.phase = PH_RUNNING;
    log_info("cluster: Raft started",
             "\"node_id\":\"%s\",\"raft_id\":%llu,\"raft\":\"%s\",\"bus\":\"%s\"", ctl.node_id,
             (unsigned long long)ctl.raft_id, ctl.raft_addr, ctl.bus_addr);
}

/* Become a new member under a fresh identity (no seeds of ours, or a wiped
 * directory): save it, open Raft without bootstrapping, and let JOIN do the
 * rest. */
void
ctl_start_as_joiner(void)
{
    char err[256];
    if (ctl.raft == NULL) {
        if (ctl.raft_id == 0 || ctl.self_seed >= 0) {
            ctl.raft_id = ctl_random_raft_id();
        }
        if (ctl_identity_save() != 0) {
            log_error("cluster: cannot write the node identity", "\"dir\":\"%s\"", ctl.dir);
            return;
        }
        if (ctl_raft_open(err, sizeof(err)) != 0) {
            log_error("cluster: Raft did not open", "\"error\":\"%s\"", err);
            return;
        }
    }
    ctl_go_running();
}

void
ctl_start_as_seed(void)
{
    char err[256];
    if (ctl.raft != NULL) {
        ctl_go_running(); /* bootstrapped before; starting failed then */
        return;
    }
    ctl.raft_id = ctl_seed_raft_id(ctl.bus_addr);
    if (ctl_identity_save() != 0) {
        log_error("cluster: cannot write the node identity", "\"dir\":\"%s\"", ctl.dir);
        return;
    }
    if (ctl_raft_open(err, sizeof(err)) != 0 || raft_bootstrap_seeds(err, sizeof(err)) != 0) {
        log_error("cluster: Raft bootstrap failed", "\"error\":\"%s\"", err);
        return;
    }
    log_info("cluster: bootstrapped from the seed list", "\"seeds\":%zu", ctl.nseeds);
    ctl_go_running();
}

void
ctl_reply_code(struct bus_conn *from, uint32_t reqid, uint8_t type, uint8_t code, const char *text)
{
    struct buf r;
    buf_init(&r);
    wire_u8(&r, code);
    wire_str(&r, text);
    bus_reply(from, reqid, type | BUS_REPLY, r.data, r.len);
    buf_deinit(&r);
}

void
ctl_leader_bus_addr(char *out, size_t len)
{
    out[0] = '\0';
    if (ctl.raft == NULL) {
        return;
    }
    struct craft_status st;
    craft_status(ctl.raft, &st);
    if (st.leader_addr) {
        ctl_bus_addr_of_raft(st.leader_addr, out, len);
    }
}

bool
ctl_is_leader(void)
{
    if (ctl.raft == NULL || ctl.phase != PH_RUNNING) {
        return false;
    }
    struct craft_status st;
    craft_status(ctl.raft, &st);
    return st.leader;
}

/* ---- bus requests ------------------------------------------------------------------- */

static void
handle_status(struct bus_conn *from, uint32_t reqid, const uint8_t *p, size_t n)
{
    struct wire_rd r = {p, p + n, false};
    uint64_t asked = wire_get_u64(&r);
    bool known = false;
    for (size_t i = 0; i < ctl.topo.nnodes; i++) {
        known |= ctl.topo.nodes[i].raft_id == asked;
    }
    char lb[64];
    ctl_leader_bus_addr(lb, sizeof(lb));
    struct buf out;
    buf_init(&out);
    wire_u8(&out, ctl.phase == PH_RUNNING);
    wire_u8(&out, known);
    wire_str(&out, lb);
    wire_u64(&out, ctl.topo.config_epoch); /* how far this node has applied */
    bus_reply(from, reqid, BUS_STATUS | BUS_REPLY, out.data, out.len);
    buf_deinit(&out);
}

/* CLUSTER MEET on another node named us: join through the member it names. */

/* A proposal from another node (CLUSTER FORGET given there): the leader
 * commits it and answers with the apply's result. */
struct propose_op {
    struct bus_conn *from;
    uint32_t reqid;
};

static void
on_forwarded_applied(void *arg, int status, int result)
{
    struct propose_op *op = arg;
    struct buf r;
    buf_init(&r);
    wire_u8(&r, status == 0 ? RC_OK : craft_is_not_leader(status) ? RC_NOT_LEADER : RC_BUSY);
    wire_u8(&r, (uint8_t)result);
    wire_str(&r, status == 0 ? "" : craft_strerror(status));
    bus_reply(op->from, op->reqid, BUS_PROPOSE | BUS_REPLY, r.data, r.len);
    buf_deinit(&r);
    bus_conn_release(op->from);
    free(op);
}

static void
handle_propose(struct bus_conn *from, uint32_t reqid, const uint8_t *p, size_t n)
{
    if (!ctl_is_leader()) {
        char lb[64];
        ctl_leader_bus_addr(lb, sizeof(lb));
        struct buf r;
        buf_init(&r);
        wire_u8(&r, RC_NOT_LEADER);
        wire_u8(&r, 0);
        wire_str(&r, lb);
        bus_reply(from, reqid, BUS_PROPOSE | BUS_REPLY, r.data, r.len);
        buf_deinit(&r);
        return;
    }
    struct propose_op *op = xcalloc(1, sizeof(*op));
    op->from = from;
    op->reqid = reqid;
    bus_conn_hold(from);
    int rv = craft_propose(ctl.raft, p, n, on_forwarded_applied, op);
    if (rv != 0) {
        on_forwarded_applied(op, rv, 0);
    }
}

static void
on_bus_request(void *ctx, struct bus_conn *from, uint32_t reqid, uint8_t type, const uint8_t *p,
               size_t n)
{
    (void)ctx;
    switch (type) {
    case BUS_STATUS:
        handle_status(from, reqid, p, n);
        break;
    case BUS_JOIN:
        ctl_handle_join(from, reqid, p, n);
        break;
    case BUS_MEET:
        ctl_handle_meet(from, reqid, p, n);
        break;
    case BUS_PROPOSE:
        handle_propose(from, reqid, p, n);
        break;
    case BUS_MIG_BEGIN:
    case BUS_MIG_DATA:
    case BUS_MIG_MARK:
        ctl_migrate_frame(from, reqid, type, p, n);
        break;
    case BUS_MIG_DONE:
        ctl_handle_migrate_done(from, reqid, p, n);
        break;
    default:
        ctl_reply_code(from, reqid, type, RC_REFUSED, "unknown message");
    }
}

/* ---- the loop ------------------------------------------------------------------------ */

static void
on_tick(uv_timer_t *t)
{
    (void)t;
    if (ctl.stopping) {
        return;
    }
    cluster_view_reclaim();
    ctl_admin_tick();
    switch (ctl.phase) {
    case PH_WAIT_MEET:
    case PH_BROKEN:
        break;
    case PH_DISCOVER:
        ctl_discover_tick();
        break;
    case PH_RUNNING:
        if (ctl_is_leader()) {
            ctl_leader_tick();
        }
        ctl_join_tick();
        ctl_migrate_tick();
        break;
    }
    ctl_publish_raft_info();
}

static void
on_wake(uv_async_t *a)
{
    (void)a;
    if (!ctl.stopping) {
        ctl_admin_tick();
        return;
    }
    ctl_admin_fail_all();
    ctl_migrate_stop();
    uv_timer_stop(&ctl.tick);
    uv_close((uv_handle_t *)&ctl.tick, NULL);
    if (ctl.bus) {
        bus_close(ctl.bus);
        ctl.bus = NULL;
    }
    if (ctl.raft) {
        /*
         * Raft is left as it is, not closed: libraft 0.15's raft_close can
         * crash while log entries are in flight (a NULL entry in its log's
         * reference table, refsDecr; seen about once in fifty stops of a
         * node that had just joined or led a change). The log is on disk as
         * far as libraft wrote it, which is what a restart after kill -9
         * reads too. The loop just stops running; the process is ending.
         */
        ctl.raft_left_open = true;
        uv_stop(&ctl.loop);
    } else {
        uv_close((uv_handle_t *)&ctl.wake, NULL);
    }
}

static void
control_main(void *arg)
{
    (void)arg;
    uv_run(&ctl.loop, UV_RUN_DEFAULT);
    ctl_admin_free_all();
}

/* ---- start and stop ------------------------------------------------------------------- */

/* host:port -> "a.b.c.d:port" (IPv4; names resolved once, at start). */
static int
resolve_seed(const char *s, char *out, size_t len)
{
    const char *colon = strrchr(s, ':');
    if (colon == NULL || s[0] == '[') {
        return -1;
    }
    char host[256];
    snprintf(host, sizeof(host), "%.*s", (int)(colon - s), s);
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, NULL, &hints, &res) != 0 || res == NULL) {
        return -1;
    }
    char ip[INET_ADDRSTRLEN];
    uv_ip4_name((const struct sockaddr_in *)res->ai_addr, ip, sizeof(ip));
    freeaddrinfo(res);
    snprintf(out, len, "%s:%s", ip, colon + 1);
    return 0;
}

static const char *
announce_ip(const struct config *cfg)
{
    if (cfg->cluster.announce_ip && *cfg->cluster.announce_ip) {
        return cfg->cluster.announce_ip;
    }
    const char *b = cfg->bind && *cfg->bind ? cfg->bind : "127.0.0.1";
    struct sockaddr_in sa;
    static char first[64];
    snprintf(first, sizeof(first), "%.*s", (int)strcspn(b, " "), b);
    if (uv_ip4_addr(first, 0, &sa) != 0 || strcmp(first, "0.0.0.0") == 0) {
        return "127.0.0.1";
    }
    return first;
}

/* Whether ip:port can be bound now (the Raft transport binds it later,
 * inside libraft, where a failure has no clear message). */
static bool
port_free(const char *ip, int port)
{
    struct sockaddr_in sa;
    if (uv_ip4_addr(ip, port, &sa) != 0) {
        return false;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    bool ok = fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    if (fd >= 0) {
        close(fd);
    }
    return ok;
}

int
cluster_start(struct config *cfg, struct store *store, struct mstream *stream,
              void (*wake_retries)(void), uint64_t (*synced_lsn)(void))
{
    char err[512];
    memset(&ctl, 0, sizeof(ctl));
    topo_init(&ctl.topo);
    ctl.cfg = cfg;
    ctl.store = store;
    ctl.stream = stream;
    ctl.wake_retries = wake_retries;
    ctl.synced_lsn = synced_lsn;
    ctl.max_migrations = (unsigned)cfg->cluster.max_concurrent_migrations;
    ctl.batch = (unsigned)cfg->cluster.migration_batch_size;
    ctl.self_seed = -1;
    ctl.rf = (unsigned)cfg->cluster.replication_factor;
    ctl.vnodes = (unsigned)cfg->cluster.virtual_nodes;
    ctl.election_ms = (unsigned)cfg->cluster.raft_election_timeout_ms;
    snprintf(ctl.name, sizeof(ctl.name), "%s", cfg->cluster.cluster_name);

    int bus_port = config_cluster_port(cfg);
    const char *ip = announce_ip(cfg);
    struct sockaddr_in sa;
    if (uv_ip4_addr(ip, 0, &sa) != 0) {
        log_error("cluster: cluster.announce_ip must be an IPv4 address", "\"value\":\"%s\"", ip);
        return -1;
    }
    snprintf(ctl.self.ip, sizeof(ctl.self.ip), "%.45s", ip);
    ctl.self.port = (uint16_t)cfg->port;
    ctl.self.resp_port = (uint16_t)(cfg->resp_port ? cfg->resp_port : cfg->port);
    ctl.self.bus_port = (uint16_t)bus_port;
    ctl.self.raft_port = (uint16_t)(bus_port + RAFT_PORT_OFFSET);
    snprintf(ctl.bus_addr, sizeof(ctl.bus_addr), "%.45s:%d", ip, bus_port);
    snprintf(ctl.raft_addr, sizeof(ctl.raft_addr), "%.45s:%d", ip, bus_port + RAFT_PORT_OFFSET);

    for (size_t i = 0; i < cfg->cluster.seeds.n; i++) {
        if (ctl.nseeds == MAX_SEEDS) {
            log_error("cluster: too many seeds", "\"max\":%d", MAX_SEEDS);
            return -1;
        }
        if (resolve_seed(cfg->cluster.seeds.items[i], ctl.seeds[ctl.nseeds], 64) != 0) {
            log_error("cluster: a seed is not an IPv4 host:port that resolves",
                      "\"seed\":\"%s\"", cfg->cluster.seeds.items[i]);
            return -1;
        }
        if (strcmp(ctl.seeds[ctl.nseeds], ctl.bus_addr) == 0) {
            ctl.self_seed = (int)ctl.nseeds;
        }
        ctl.nseeds++;
    }

    if (cfg->cluster.dir && *cfg->cluster.dir) {
        snprintf(ctl.dir, sizeof(ctl.dir), "%s", cfg->cluster.dir);
    } else {
        snprintf(ctl.dir, sizeof(ctl.dir), "crabcache-cluster-%d", bus_port);
    }
    if (ctl_mkdir_p(ctl.dir, err, sizeof(err)) != 0) {
        log_error("cluster: start-up failed", "\"error\":\"%s\"", err);
        fprintf(stderr, "crabcache: %s\n", err);
        return -1;
    }
    int have = ctl_identity_load(err, sizeof(err));
    if (have < 0) {
        log_error("cluster: start-up failed", "\"error\":\"%s\"", err);
        fprintf(stderr, "crabcache: %s\n", err);
        return -1;
    }
    const char *want_id = cfg->cluster.node_id;
    if (have && want_id && *want_id && strcmp(want_id, ctl.node_id) != 0) {
        snprintf(err, sizeof(err), "cluster.node_id is '%.40s' but %.300s belongs to node '%.40s'",
                 want_id, ctl.dir, ctl.node_id);
        log_error("cluster: start-up failed", "\"error\":\"%s\"", err);
        fprintf(stderr, "crabcache: %s\n", err);
        return -1;
    }
    if (!have) {
        if (want_id && *want_id) {
            snprintf(ctl.node_id, sizeof(ctl.node_id), "%s", want_id);
        } else {
            ctl_random_node_id(ctl.node_id);
        }
    }
    snprintf(ctl.self.id, sizeof(ctl.self.id), "%s", ctl.node_id);

    if (uv_loop_init(&ctl.loop) != 0) {
        return -1;
    }
    /* Until the first topology arrives workers see an empty one: every
     * keyed command answers CLUSTERDOWN, none is served as if we owned it. */
    ctl_publish_view();
    const char *bind_ip = strcmp(ip, "127.0.0.1") == 0 ? ip : "0.0.0.0";
    ctl.bus = bus_listen(&ctl.loop, bind_ip, bus_port, on_bus_request, NULL, err, sizeof(err));
    if (ctl.bus == NULL) {
        log_error("cluster: start-up failed", "\"error\":\"%s\"", err);
        fprintf(stderr, "crabcache: %s\n", err);
        uv_run(&ctl.loop, UV_RUN_NOWAIT);
        uv_loop_close(&ctl.loop);
        return -1;
    }
    if (!port_free(bind_ip, bus_port + RAFT_PORT_OFFSET)) {
        snprintf(err, sizeof(err), "the Raft port %d (cluster port + 10000) is in use",
                 bus_port + RAFT_PORT_OFFSET);
        log_error("cluster: start-up failed", "\"error\":\"%s\"", err);
        fprintf(stderr, "crabcache: %s\n", err);
        bus_close(ctl.bus);
        uv_run(&ctl.loop, UV_RUN_NOWAIT);
        uv_loop_close(&ctl.loop);
        return -1;
    }
    if (have) {
        ctl.self.raft_id = ctl.raft_id;
        if (ctl_raft_open(err, sizeof(err)) != 0) {
            log_error("cluster: start-up failed", "\"error\":\"%s\"", err);
            fprintf(stderr, "crabcache: %s\n", err);
            return -1;
        }
        ctl_go_running();
    } else if (ctl.self_seed >= 0) {
        ctl.phase = PH_DISCOVER;
        if (ctl.nseeds == 1) {
            ctl_start_as_seed(); /* a cluster of one */
        }
    } else if (ctl.nseeds > 0) {
        ctl_start_as_joiner();
    } else {
        ctl.phase = PH_WAIT_MEET;
    }
    uv_async_init(&ctl.loop, &ctl.wake, on_wake);
    uv_timer_init(&ctl.loop, &ctl.tick);
    uv_timer_start(&ctl.tick, on_tick, TICK_MS, TICK_MS);
    ctl_publish_raft_info();
    if (uv_thread_create(&ctl.thread, control_main, NULL) != 0) {
        return -1;
    }
    ctl.started = true;
    log_info("cluster: control thread started",
             "\"node_id\":\"%s\",\"bus\":\"%s\",\"dir\":\"%s\",\"seeds\":%zu", ctl.node_id,
             ctl.bus_addr, ctl.dir, ctl.nseeds);
    return 0;
}

const char *
cluster_myid(void)
{
    return ctl.started ? ctl.node_id : NULL;
}

void
cluster_stop(void)
{
    if (!ctl.started) {
        return;
    }
    ctl.stopping = true;
    uv_async_send(&ctl.wake);
    uv_thread_join(&ctl.thread);
    if (!ctl.raft_left_open) {
        uv_run(&ctl.loop, UV_RUN_NOWAIT);
        if (uv_loop_close(&ctl.loop) != 0) {
            log_warn("cluster: the control loop still had handles at exit", NULL);
        }
    }
    /* With Raft left open (on_wake) its memory and the loop's stay as they
     * are, reachable from ctl, until the process ends. */
    topo_deinit(&ctl.topo);
    ctl.started = false;
}
