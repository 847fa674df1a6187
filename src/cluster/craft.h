/*
 * craft.h -- the one module that talks to libraft (0.15, Debian's libraft-dev).
 *
 * Everything Raft-specific of the cluster layer is here, so that a vendored
 * cowsql/raft (the maintained fork) can replace the library by changing one
 * file. The state machine above it sees committed entries with their index,
 * snapshots as bytes, and proposals that complete with a status and the
 * apply's result. Every function runs on the loop thread given at creation.
 *
 * libraft facts this relies on (../shared/CLUSTER.md §1.4): the directory
 * must exist; bootstrap only on a pristine directory (RAFT_CANTBOOTSTRAP
 * after a restart is fine); a joining node does not bootstrap; one membership
 * change at a time; addresses are IPv4 literals "a.b.c.d:port"; pre-vote is
 * on here.
 */
#ifndef CRAB_CLUSTER_CRAFT_H
#define CRAB_CLUSTER_CRAFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

struct buf;
struct craft;

struct craft_fsm {
    void *ctx;
    /* A committed entry, in log order. The returned int reaches the proposer. */
    int (*apply)(void *ctx, uint64_t index, const void *data, size_t len);
    /* The whole state as bytes, and its inverse (0 or -1). */
    void (*snapshot)(void *ctx, struct buf *out);
    int (*restore)(void *ctx, const void *data, size_t len);
};

enum craft_role { CRAFT_VOTER, CRAFT_STANDBY, CRAFT_SPARE, CRAFT_NONE };

struct craft_member {
    uint64_t id;
    const char *addr;
    enum craft_role role;
};

struct craft_opts {
    unsigned election_ms;  /* heartbeats every tenth of it, 20 ms at most */
    unsigned snapshot_threshold; /* entries between snapshots; 0 = library default */
};

/* Create and initialise (the directory must exist). NULL on failure, with
 * err filled. */
struct craft *craft_create(uv_loop_t *loop, const char *dir, uint64_t id, const char *addr,
                           const struct craft_fsm *fsm, const struct craft_opts *o, char *err,
                           size_t errlen);

/* Bootstrap a pristine directory with this configuration: 0, 1 when the
 * directory already holds state (a restart), -1 on error. */
int craft_bootstrap(struct craft *c, const struct craft_member *m, size_t n, char *err,
                    size_t errlen);

/* Start: load the log, then take part. 0 or -1. */
int craft_start(struct craft *c, char *err, size_t errlen);

/* Completion of a proposal or a membership change: status 0 when committed
 * (result: what apply returned; 0 for changes), else a libraft error code. */
typedef void craft_done_fn(void *arg, int status, int result);

/* Leader only (elsewhere the callback is not called and RAFT_NOTLEADER is
 * returned). The data is copied. */
int craft_propose(struct craft *c, const void *data, size_t len, craft_done_fn *cb, void *arg);
int craft_add(struct craft *c, uint64_t id, const char *addr, craft_done_fn *cb, void *arg);
int craft_assign(struct craft *c, uint64_t id, enum craft_role role, craft_done_fn *cb,
                 void *arg);
int craft_remove(struct craft *c, uint64_t id, craft_done_fn *cb, void *arg);
/* Hand leadership to id (0: the most up-to-date voter). */
int craft_transfer(struct craft *c, uint64_t id, craft_done_fn *cb, void *arg);

struct craft_status {
    const char *role;          /* "leader", "follower", "candidate", "unavailable" */
    bool leader;
    uint64_t leader_id;        /* 0 = none known */
    const char *leader_addr;   /* NULL = none known; valid until the next loop turn */
    uint64_t term, commit_index, applied_index;
    unsigned voters, standbys, spares;
};
void craft_status(struct craft *c, struct craft_status *out);

/* This server's role in the current configuration, CRAFT_NONE if absent. */
enum craft_role craft_role_of(struct craft *c, uint64_t id);

/* Members of the current configuration (up to max); returns their count. */
size_t craft_members(struct craft *c, struct craft_member *out, size_t max);

const char *craft_strerror(int status);
bool craft_is_not_leader(int status); /* a status that says "ask the leader" */

/* Stop: the callback runs once the library has let go; then free with
 * craft_destroy. */
void craft_close(struct craft *c, void (*cb)(void *arg), void *arg);
void craft_destroy(struct craft *c);

#endif
