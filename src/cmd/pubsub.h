/*
 * pubsub.h -- Pub/Sub across worker threads, and keyspace notifications.
 *
 * Subscriptions live in one registry (channel -> subscribers, pattern ->
 * subscribers) behind a read-write lock: PUBLISH takes it for reading,
 * (P)(UN)SUBSCRIBE and a closing subscriber for writing. A connection stays
 * on the worker thread that accepted it, so a message is never written to a
 * subscriber's connection by the publisher's thread: PUBLISH appends one
 * (subscriber, message) item per receiver to the mailbox of the receiver's
 * worker (a mutex-guarded vector, one per worker) and wakes that worker (a
 * uv_async of its own, sent only when the mailbox was empty, so a burst costs
 * one wake-up). The worker drains its mailbox at the next turn of its loop,
 * encodes each message in the subscriber's protocol (RESP2 array or RESP3
 * push) into the connection's output, and sends it (net/psnet.c). The
 * publisher thus pays a lookup, a reference count and a vector append per
 * receiver, never a socket write or a wait on the subscriber.
 *
 * A subscriber that does not read its messages is disconnected by its
 * worker once its unsent output passes pubsub.output_buffer_limit, or stays
 * above pubsub.output_buffer_soft_limit for output_buffer_soft_seconds (as
 * Redis's `client-output-buffer-limit pubsub 32mb 8mb 60`).
 *
 * A subscriber's state (struct ps_sub) is reference counted: the client,
 * every registry entry and every mailbox item holding it keep one. When the
 * connection closes, it leaves the registry and is marked gone; items still
 * in a mailbox are then dropped by their worker.
 */
#ifndef CRAB_CMD_PUBSUB_H
#define CRAB_CMD_PUBSUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cmd/client.h"

struct ps_sub;

/* One published message, shared by all its deliveries (reference counted).
 * data: the pattern that matched (plen bytes; `pattern` false for a plain
 * message), channel, message. */
struct ps_msg {
    unsigned ref;
    bool pattern;
    uint32_t plen, clen, mlen;
    char data[];
};

struct ps_item {
    struct ps_sub *sub;
    struct ps_msg *msg;
};

/* Set up the mailboxes for n workers; wake(i) signals worker i's loop (any
 * thread). Called by net_start before the workers run. */
void pubsub_init(unsigned nworkers, void (*wake)(unsigned worker));
/* Worker i is going away: later messages for it are dropped. */
void pubsub_worker_stop(unsigned worker);
/* Take every item waiting in worker i's mailbox (the caller owns the array
 * and each item's references: pubsub_item_done). *n = 0 when empty. */
void pubsub_take(unsigned worker, struct ps_item **items, size_t *n);
/* The client an item is for, or NULL when it has gone away. Owner worker
 * only. */
struct client *pubsub_item_client(const struct ps_item *it);
/* Append the item's message to its client's output, in the client's
 * protocol. */
void pubsub_item_write(const struct ps_item *it, struct client *c);
void pubsub_item_done(struct ps_item *it);

/* The connection closes (owner thread): leave every channel and pattern. */
void pubsub_client_gone(struct client *c);
/* RESET: the same, without replies. */
void pubsub_client_reset(struct client *c);
/* In RESP2 a client with subscriptions may only run (P)(UN)SUBSCRIBE, PING,
 * QUIT and RESET. */
static inline bool
pubsub_context(const struct client *c)
{
    return (c->ps_nch | c->ps_npat) != 0;
}

/* Limits for subscribers' unsent output (bytes; 0 = none) and the soft
 * limit's grace (seconds). Any thread. */
void pubsub_set_limits(size_t hard, size_t soft, int64_t soft_seconds);
/* Whether a subscriber with `queued` unsent bytes at now_ms must be cut off
 * (tracks how long it has been over the soft limit). Owner thread. */
bool pubsub_over_limit(struct client *c, size_t queued, int64_t now_ms);
/* A subscriber was cut off (counted for INFO). */
void pubsub_count_dropped(void);

/* Figures for INFO. */
struct pubsub_stats {
    size_t channels;      /* channels with a subscriber */
    size_t patterns;      /* distinct patterns with a subscriber */
    uint64_t messages;    /* PUBLISH calls and notifications published */
    uint64_t deliveries;  /* messages handed to subscribers */
    uint64_t dropped;     /* subscribers cut off by the output limits */
    uint64_t notifications; /* keyspace notifications published */
};
void pubsub_stats(struct pubsub_stats *out);

/* ---- keyspace notifications ---------------------------------------------- */

enum notify_class {
    NOTIFY_KEYSPACE = 1 << 0, /* K */
    NOTIFY_KEYEVENT = 1 << 1, /* E */
    NOTIFY_GENERIC = 1 << 2,  /* g */
    NOTIFY_STRING = 1 << 3,   /* $ */
    NOTIFY_LIST = 1 << 4,     /* l */
    NOTIFY_SET = 1 << 5,      /* s */
    NOTIFY_HASH = 1 << 6,     /* h */
    NOTIFY_ZSET = 1 << 7,     /* z */
    NOTIFY_EXPIRED = 1 << 8,  /* x */
    NOTIFY_EVICTED = 1 << 9,  /* e */
    NOTIFY_STREAM = 1 << 10,  /* t */
    NOTIFY_KEY_MISS = 1 << 11, /* m */
    NOTIFY_LOADED = 1 << 12,  /* module only */
    NOTIFY_MODULE = 1 << 13,  /* d */
    NOTIFY_NEW = 1 << 14,     /* n */
};
#define NOTIFY_ALL                                                                        \
    (NOTIFY_GENERIC | NOTIFY_STRING | NOTIFY_LIST | NOTIFY_SET | NOTIFY_HASH | NOTIFY_ZSET | \
     NOTIFY_EXPIRED | NOTIFY_EVICTED | NOTIFY_STREAM | NOTIFY_MODULE)

/* Parse Redis's notify-keyspace-events string; -1 on a bad character. */
int notify_parse(const char *s);
/* The canonical string of flags (as Redis's CONFIG GET shows it) into out
 * (at least 20 bytes). */
void notify_format(int flags, char *out);
/* Set the active classes (any thread). Registers or removes the mutation
 * stream consumer that reports expired and evicted keys: the caller holds
 * no shard lock. */
void notify_set(int flags);

extern int notify_flags_; /* read with notify_wanted() */
static inline bool
notify_wanted(int type)
{
    int f = __atomic_load_n(&notify_flags_, __ATOMIC_RELAXED);
    return (f & type) && (f & (NOTIFY_KEYSPACE | NOTIFY_KEYEVENT));
}
/* Publish `event` for key: __keyspace@0__:<key> and/or __keyevent@0__:<event>
 * per the flags. c is the client whose command caused it (NULL: the store). */
void notify_key_slow(struct client *c, int type, const char *event, const char *key,
                     size_t klen);
static inline void
notify_key(struct client *c, int type, const char *event, const char *key, size_t klen)
{
    if (__builtin_expect(notify_wanted(type), 0)) {
        notify_key_slow(c, type, event, key, klen);
    }
}

#endif
