/*
 * later.h -- a reply that another thread produces.
 *
 * A command that cannot answer at once (CLUSTER MEET waits for Raft to
 * commit a join; forwarded requests, WAIT and blocking commands will too)
 * takes a handle with later_begin() and returns without a reply. The
 * connection then runs none of its later requests and stops reading, so
 * replies stay in request order; whatever it had already answered still
 * goes out. Any thread finishes the handle exactly once; the connection's
 * worker then writes the reply and carries on with the input it holds.
 * If the client disconnects first, the finish is simply dropped.
 *
 * The network layer implements this (net/later.c): the command layer only
 * sees the handle.
 */
#ifndef CRAB_CMD_LATER_H
#define CRAB_CMD_LATER_H

#include <stddef.h>

struct client;
struct later;

/* Block c until the handle is finished. NULL when c cannot wait (a
 * connection that is closing): reply at once then. Worker thread of c. */
struct later *later_begin(struct client *c);

/* Any thread, once per handle: the reply is +OK when err is NULL, else the
 * error err (RESP: "-<err>", native: "ERROR: <err>"). */
void later_finish(struct later *l, const char *err);

/* Any thread, once per handle: the reply is these bytes, as they are
 * (already in the client's protocol). */
void later_finish_raw(struct later *l, const void *bytes, size_t len);

/*
 * The current request cannot run yet (its vbucket is paused for a handover):
 * it is kept, unanswered, and run again -- with the connection's later
 * requests behind it -- after the next later_retry_wake(). The command must
 * not have replied. Worker thread of c.
 */
void later_retry(struct client *c);

/* Run every kept request again (any thread; the cluster layer calls it when
 * the topology or a pause changes). */
void later_retry_wake(void);

#endif
