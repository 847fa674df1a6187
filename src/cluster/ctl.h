/*
 * ctl.h -- the control thread's state, shared by the files of src/cluster/
 * that run on it (internal: the rest of the server uses cluster.h).
 *
 *   control.c  the thread and its loop, Raft start, the state machine's
 *              glue, publishing, bus requests, start and stop
 *   ident.c    identity on disk, ids, addresses
 *   join.c     forming from seeds, joining, and the leader's side of a join
 *   admin.c    CLUSTER MEET and FORGET as requests other threads submit
 *   leader.c   the leader's duties: INIT, voters, placement, leavers
 *
 * Everything here runs on the control thread, except where a comment says.
 */
#ifndef CRAB_CLUSTER_CTL_H
#define CRAB_CLUSTER_CTL_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "cluster/bus.h"
#include "cluster/cluster.h"
#include "cluster/craft.h"
#include "cluster/topo.h"

struct admin;
struct config;
struct mstream;
struct store;

#define RAFT_PORT_OFFSET 10000
#define DEFAULT_VBUCKETS 256
#define TICK_MS 50
#define CALL_TIMEOUT_MS 1000
#define MAX_SEEDS 64
#define MAX_VB_INFLIGHT 64
#define ADMIN_TIMEOUT_MS 15000

/* Bus message types: a request and its reply (type | 0x80). */
enum {
    BUS_STATUS = 1, /* u64 raft id asked about -> u8 member, u8 id known, str leader bus */
    BUS_JOIN,       /* str cluster name, node fields -> u8 code, str text */
    BUS_MEET,       /* str a member's bus address -> u8 code, str text */
    BUS_PROPOSE,    /* raw topology entry -> u8 code, u8 result, str text */
    BUS_MIG_BEGIN,  /* copy stream: u64 copy id, vb, first slot, last slot -> u8 code, str */
    BUS_MIG_DATA,   /* copy stream: WAL-format records, cut anywhere */
    BUS_MIG_MARK,   /* copy stream: u64 mark -> u64 mark once all before is applied */
    BUS_MIG_DONE,   /* to the leader: u64 vb, u64 copy id -> u8 code, str text */
    BUS_REPLY = 0x80,
};

/* Reply codes of JOIN, MEET and PROPOSE. */
enum { RC_OK = 0, RC_NOT_LEADER, RC_BUSY, RC_REFUSED };

enum phase {
    PH_WAIT_MEET,  /* no seeds, pristine: waiting for CLUSTER MEET */
    PH_DISCOVER,   /* pristine seed: asking the other seeds */
    PH_RUNNING,    /* Raft started */
    PH_BROKEN,     /* Raft could not start: out of the cluster until restarted */
};

struct ctl {
    struct config *cfg;
    uv_loop_t loop;
    uv_thread_t thread;
    uv_async_t wake;
    uv_timer_t tick;
    bool started;
    _Atomic bool stopping;
    bool raft_left_open;       /* stopped without raft_close (control.c on_wake) */

    struct craft *raft;
    struct bus *bus;
    struct topo topo;

    char dir[PATH_MAX];
    char node_id[TOPO_ID_LEN + 1];
    uint64_t raft_id;
    struct topo_node self;     /* as announced */
    char bus_addr[64], raft_addr[64];
    char name[128];            /* cluster name */
    unsigned election_ms;
    unsigned rf, vnodes;

    char seeds[MAX_SEEDS][64]; /* bus addresses, IPv4 literals */
    size_t nseeds;
    int self_seed;             /* index of our own bus address in seeds, -1 */
    enum phase phase;

    /* discovery round */
    unsigned disc_pristine, disc_answers, disc_round;
    bool disc_member, disc_known, disc_inflight;

    /* joining */
    bool join_inflight;
    unsigned join_rr;
    char meet_target[64];      /* from CLUSTER MEET: a member's bus address */
    char leader_hint[64];      /* the leader's bus address a member named */

    /* leader */
    bool change_inflight;      /* a Raft membership change (one at a time) */
    unsigned vb_inflight;      /* placement proposals not yet applied */
    bool init_inflight;
    bool forget_inflight;      /* a NODE_FORGET proposed, not yet applied */

    struct admin *admins;      /* MEET / FORGET being carried out */

    /* data (migrate.c) */
    struct store *store;
    struct mstream *stream;
    void (*wake_retries)(void); /* run the requests a paused gate kept */
    uint64_t (*synced_lsn)(void); /* the WAL's durable LSN; NULL: no sync WAL */
    unsigned max_migrations;   /* copies in flight, cluster-wide (leader) */
    unsigned batch;            /* keys walked per copy per tick */
    uint64_t migrations_completed, keys_migrated, bytes_migrated;
};
extern struct ctl ctl;

/* ident.c */
void ctl_raft_addr_of(const char *bus, char *out, size_t len);
void ctl_bus_addr_of_raft(const char *raft, char *out, size_t len);
uint64_t ctl_seed_raft_id(const char *bus);
void ctl_random_node_id(char out[TOPO_ID_LEN + 1]);
uint64_t ctl_random_raft_id(void);
int ctl_mkdir_p(const char *path, char *err, size_t errlen);
int ctl_identity_load(char *err, size_t errlen);
int ctl_identity_save(void);

/* control.c */
void ctl_publish_view(void);
void ctl_publish_raft_info(void);
int ctl_raft_open(char *err, size_t errlen);
void ctl_go_running(void);
void ctl_start_as_joiner(void);
void ctl_start_as_seed(void);
bool ctl_is_leader(void);
void ctl_leader_bus_addr(char *out, size_t len);
void ctl_reply_code(struct bus_conn *from, uint32_t reqid, uint8_t type, uint8_t code,
                    const char *text);

/* join.c */
void ctl_discover_tick(void);
bool ctl_self_in_topology(void);
void ctl_join_tick(void);
void ctl_handle_join(struct bus_conn *from, uint32_t reqid, const uint8_t *p, size_t n);
void ctl_handle_meet(struct bus_conn *from, uint32_t reqid, const uint8_t *p, size_t n);

/* admin.c */
void ctl_admin_tick(void);
void ctl_admin_fail_all(void);
void ctl_admin_free_all(void);

/* leader.c */
void ctl_leader_tick(void);

/* migrate.c */
void ctl_migrate_on_topology(void);
void ctl_migrate_tick(void);
void ctl_migrate_stop(void);
void ctl_migrate_frame(struct bus_conn *from, uint32_t reqid, uint8_t type, const uint8_t *p,
                       size_t n);
void ctl_handle_migrate_done(struct bus_conn *from, uint32_t reqid, const uint8_t *p, size_t n);
void ctl_migrate_done_request(const void *p, size_t n);
unsigned ctl_migrations_active(void);
/* The copies this node sends, at most max of them, into out: how many. */
unsigned ctl_migrate_progress(struct cluster_copy_progress *out, unsigned max);

#endif
