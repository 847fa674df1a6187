/*
 * t_pubsub.c -- PUBLISH, (P)SUBSCRIBE, (P)UNSUBSCRIBE, PUBSUB, the registry
 * of subscriptions, the workers' mailboxes and keyspace notifications (see
 * pubsub.h for the design).
 *
 * Replies follow Redis 7.0 (pubsub.c, notify.c) byte for byte: confirmations
 * are 3-element arrays in RESP2 and pushes in RESP3, UNSUBSCRIBE without
 * subscriptions confirms a null channel, PUBLISH counts every delivery (a
 * client whose two patterns match gets two pmessages), PUBSUB NUMPAT counts
 * distinct patterns.
 *
 * Locks: the registry's rwlock, then one mailbox's mutex. Keyspace
 * notifications may publish with a shard lock held (expiry, eviction); the
 * registry never takes a shard lock, so the order shard -> registry ->
 * mailbox has no cycle.
 */
#include "cmd/pubsub.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "cmd/args.h"
#include "cmd/clients.h"
#include "cmd/cmd.h"
#include "core/server.h"
#include "persist/mstream.h"
#include "store/item.h"
#include "util/clock.h"
#include "util/glob.h"
#include "util/log.h"
#include "util/mem.h"

/* ---- subscribers ----------------------------------------------------------- */

struct ps_name {
    uint64_t hash;
    size_t len;
    char *p;
};

struct ps_sub {
    unsigned ref;         /* atomic */
    bool gone;            /* atomic: the connection closed */
    struct client *c;     /* valid while !gone, on the owner worker */
    unsigned worker;
    /* owner thread only (and under the registry's write lock) */
    struct ps_name *ch, *pat;
    size_t nch, npat, chcap, patcap;
    int64_t soft_since;   /* over the soft limit since (ms), 0 = not */
};

static void
sub_ref(struct ps_sub *s)
{
    __atomic_add_fetch(&s->ref, 1, __ATOMIC_RELAXED);
}

static void
sub_unref(struct ps_sub *s)
{
    if (__atomic_sub_fetch(&s->ref, 1, __ATOMIC_ACQ_REL) == 0) {
        free(s->ch);
        free(s->pat);
        free(s);
    }
}

static void
msg_unref(struct ps_msg *m)
{
    if (__atomic_sub_fetch(&m->ref, 1, __ATOMIC_ACQ_REL) == 0) {
        free(m);
    }
}

/* ---- the registry: channels and patterns -> subscribers --------------------- */

struct ps_entry {
    struct ps_entry *next; /* hash chain */
    uint64_t hash;
    struct ps_sub **subs;
    size_t n, cap;
    size_t len;
    char name[];
};

struct ps_table {
    struct ps_entry **b;
    size_t nb, n;
};

static struct {
    pthread_rwlock_t lock;
    struct ps_table chans, pats;
} R = {.lock = PTHREAD_RWLOCK_INITIALIZER};

static uint64_t
name_hash(const char *p, size_t len)
{
    return XXH3_64bits(p, len);
}

static struct ps_entry *
table_find(const struct ps_table *t, const char *p, size_t len, uint64_t h)
{
    if (t->nb == 0) {
        return NULL;
    }
    for (struct ps_entry *e = t->b[h & (t->nb - 1)]; e; e = e->next) {
        if (e->hash == h && e->len == len && memcmp(e->name, p, len) == 0) {
            return e;
        }
    }
    return NULL;
}

static void
table_grow(struct ps_table *t)
{
    size_t nb = t->nb ? t->nb * 2 : 16;
    struct ps_entry **b = xcalloc(nb, sizeof(*b));
    for (size_t i = 0; i < t->nb; i++) {
        struct ps_entry *e = t->b[i];
        while (e) {
            struct ps_entry *next = e->next;
            e->next = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
            e = next;
        }
    }
    free(t->b);
    t->b = b;
    t->nb = nb;
}

static struct ps_entry *
table_add(struct ps_table *t, const char *p, size_t len, uint64_t h)
{
    struct ps_entry *e = table_find(t, p, len, h);
    if (e) {
        return e;
    }
    if (t->n >= t->nb) {
        table_grow(t);
    }
    e = xcalloc(1, sizeof(*e) + len);
    e->hash = h;
    e->len = len;
    memcpy(e->name, p, len);
    e->next = t->b[h & (t->nb - 1)];
    t->b[h & (t->nb - 1)] = e;
    t->n++;
    return e;
}

static void
entry_add_sub(struct ps_entry *e, struct ps_sub *s)
{
    if (e->n == e->cap) {
        e->cap = e->cap ? e->cap * 2 : 4;
        e->subs = xrealloc(e->subs, e->cap * sizeof(*e->subs));
    }
    e->subs[e->n++] = s;
    sub_ref(s);
}

/* Remove s from the entry named p; the entry goes when it has no one left. */
static void
table_remove_sub(struct ps_table *t, const char *p, size_t len, uint64_t h, struct ps_sub *s)
{
    if (t->nb == 0) {
        return;
    }
    struct ps_entry **pp = &t->b[h & (t->nb - 1)];
    while (*pp) {
        struct ps_entry *e = *pp;
        if (e->hash == h && e->len == len && memcmp(e->name, p, len) == 0) {
            for (size_t i = 0; i < e->n; i++) {
                if (e->subs[i] == s) {
                    e->subs[i] = e->subs[--e->n];
                    sub_unref(s);
                    break;
                }
            }
            if (e->n == 0) {
                *pp = e->next;
                free(e->subs);
                free(e);
                t->n--;
            }
            return;
        }
        pp = &e->next;
    }
}

/* Redis's stringmatchlen for channels: an empty channel matches only the
 * empty pattern (its matcher stops before a '*' gets to match nothing). */
static bool
channel_match(const char *pat, size_t plen, const char *ch, size_t clen)
{
    if (clen == 0) {
        return plen == 0;
    }
    return glob_match(pat, plen, ch, clen, false);
}

/* ---- mailboxes ---------------------------------------------------------------- */

struct ps_box {
    pthread_mutex_t lock;
    struct ps_item *v;
    size_t n, cap;
    bool alive;
} __attribute__((aligned(64)));

static struct ps_box *boxes;
static unsigned nboxes;
static void (*wake_fn)(unsigned);

static struct {
    _Atomic uint64_t messages, deliveries, dropped, notifications;
    _Atomic size_t hard, soft;
    _Atomic int64_t soft_s;
} S = {.hard = 32u << 20, .soft = 8u << 20, .soft_s = 60};

void
pubsub_init(unsigned nworkers, void (*wake)(unsigned worker))
{
    if (boxes) {
        for (unsigned i = 0; i < nboxes; i++) {
            pthread_mutex_destroy(&boxes[i].lock);
            free(boxes[i].v);
        }
        free(boxes);
    }
    nboxes = nworkers;
    boxes = xcalloc(nworkers ? nworkers : 1, sizeof(*boxes));
    for (unsigned i = 0; i < nworkers; i++) {
        pthread_mutex_init(&boxes[i].lock, NULL);
        boxes[i].alive = true;
    }
    wake_fn = wake;
}

void
pubsub_worker_stop(unsigned worker)
{
    if (worker >= nboxes) {
        return;
    }
    struct ps_box *b = &boxes[worker];
    pthread_mutex_lock(&b->lock);
    b->alive = false;
    struct ps_item *v = b->v;
    size_t n = b->n;
    b->v = NULL;
    b->n = b->cap = 0;
    pthread_mutex_unlock(&b->lock);
    for (size_t i = 0; i < n; i++) {
        pubsub_item_done(&v[i]);
    }
    free(v);
}

void
pubsub_take(unsigned worker, struct ps_item **items, size_t *n)
{
    *items = NULL;
    *n = 0;
    if (worker >= nboxes) {
        return;
    }
    struct ps_box *b = &boxes[worker];
    pthread_mutex_lock(&b->lock);
    *items = b->v;
    *n = b->n;
    b->v = NULL;
    b->n = b->cap = 0;
    pthread_mutex_unlock(&b->lock);
}

struct client *
pubsub_item_client(const struct ps_item *it)
{
    return __atomic_load_n(&it->sub->gone, __ATOMIC_ACQUIRE) ? NULL : it->sub->c;
}

static void
write_msg(struct client *c, const struct ps_msg *m)
{
    bool r3 = c->r.proto == REPLY_RESP3;
    if (m->pattern) {
        buf_appendstr(c->r.out, r3 ? ">4\r\n$8\r\npmessage\r\n" : "*4\r\n$8\r\npmessage\r\n");
        reply_bulk(&c->r, m->data, m->plen);
    } else {
        buf_appendstr(c->r.out, r3 ? ">3\r\n$7\r\nmessage\r\n" : "*3\r\n$7\r\nmessage\r\n");
    }
    reply_bulk(&c->r, m->data + m->plen, m->clen);
    reply_bulk(&c->r, m->data + m->plen + m->clen, m->mlen);
}

void
pubsub_item_write(const struct ps_item *it, struct client *c)
{
    write_msg(c, it->msg);
    atomic_fetch_add_explicit(&S.deliveries, 1, memory_order_relaxed);
}

void
pubsub_item_done(struct ps_item *it)
{
    msg_unref(it->msg);
    sub_unref(it->sub);
}

/* A publish in progress: the mailbox locked last (kept while consecutive
 * receivers live on the same worker). */
struct pub {
    struct client *self; /* the publishing client: written to directly */
    struct ps_box *box;
    size_t receivers;
};

static void
pub_to(struct pub *p, struct ps_sub *s, struct ps_msg *m)
{
    p->receivers++;
    if (s->c == p->self && p->self != NULL) {
        /* RESP3: the publisher's own subscription, delivered before its reply
         * as Redis does. */
        write_msg(p->self, m);
        atomic_fetch_add_explicit(&S.deliveries, 1, memory_order_relaxed);
        return;
    }
    if (s->worker >= nboxes) {
        return;
    }
    struct ps_box *b = &boxes[s->worker];
    if (p->box != b) {
        if (p->box) {
            pthread_mutex_unlock(&p->box->lock);
        }
        pthread_mutex_lock(&b->lock);
        p->box = b;
    }
    if (!b->alive) {
        return;
    }
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 64;
        b->v = xrealloc(b->v, b->cap * sizeof(*b->v));
    }
    sub_ref(s);
    __atomic_add_fetch(&m->ref, 1, __ATOMIC_RELAXED);
    b->v[b->n++] = (struct ps_item){s, m};
    if (b->n == 1 && wake_fn) {
        /* the mailbox was empty: no wake-up is pending */
        wake_fn(s->worker);
    }
}

static struct ps_msg *
msg_new(const char *pat, size_t plen, const char *ch, size_t clen, const char *msg, size_t mlen)
{
    struct ps_msg *m = xmalloc(sizeof(*m) + plen + clen + mlen);
    m->ref = 1;
    m->pattern = pat != NULL;
    m->plen = (uint32_t)plen;
    m->clen = (uint32_t)clen;
    m->mlen = (uint32_t)mlen;
    if (plen) {
        memcpy(m->data, pat, plen);
    }
    memcpy(m->data + plen, ch, clen);
    memcpy(m->data + plen + clen, msg, mlen);
    return m;
}

/* Deliver msg on channel to its subscribers and the matching patterns'.
 * Returns the receivers (as PUBLISH's reply). */
static size_t
publish(struct client *self, const char *ch, size_t clen, const char *msg, size_t mlen)
{
    struct pub p = {self, NULL, 0};
    atomic_fetch_add_explicit(&S.messages, 1, memory_order_relaxed);
    pthread_rwlock_rdlock(&R.lock);
    struct ps_entry *e = table_find(&R.chans, ch, clen, name_hash(ch, clen));
    if (e) {
        struct ps_msg *m = msg_new(NULL, 0, ch, clen, msg, mlen);
        for (size_t i = 0; i < e->n; i++) {
            pub_to(&p, e->subs[i], m);
        }
        msg_unref(m);
    }
    for (size_t b = 0; b < R.pats.nb && R.pats.n; b++) {
        for (struct ps_entry *pe = R.pats.b[b]; pe; pe = pe->next) {
            if (!channel_match(pe->name, pe->len, ch, clen)) {
                continue;
            }
            struct ps_msg *m = msg_new(pe->name, pe->len, ch, clen, msg, mlen);
            for (size_t i = 0; i < pe->n; i++) {
                pub_to(&p, pe->subs[i], m);
            }
            msg_unref(m);
        }
    }
    if (p.box) {
        pthread_mutex_unlock(&p.box->lock);
    }
    pthread_rwlock_unlock(&R.lock);
    return p.receivers;
}

/* ---- limits and statistics ------------------------------------------------------ */

void
pubsub_set_limits(size_t hard, size_t soft, int64_t soft_seconds)
{
    atomic_store(&S.hard, hard);
    atomic_store(&S.soft, soft);
    atomic_store(&S.soft_s, soft_seconds);
}

bool
pubsub_over_limit(struct client *c, size_t queued, int64_t now_ms)
{
    struct ps_sub *s = c->ps;
    if (s == NULL || !pubsub_context(c)) {
        return false;
    }
    size_t hard = atomic_load_explicit(&S.hard, memory_order_relaxed);
    size_t soft = atomic_load_explicit(&S.soft, memory_order_relaxed);
    if (hard != 0 && queued >= hard) {
        return true;
    }
    if (soft != 0 && queued >= soft) {
        if (s->soft_since == 0) {
            s->soft_since = now_ms;
        } else if (now_ms - s->soft_since >=
                   atomic_load_explicit(&S.soft_s, memory_order_relaxed) * 1000) {
            return true;
        }
    } else {
        s->soft_since = 0;
    }
    return false;
}

void
pubsub_count_dropped(void)
{
    atomic_fetch_add_explicit(&S.dropped, 1, memory_order_relaxed);
}

void
pubsub_stats(struct pubsub_stats *out)
{
    pthread_rwlock_rdlock(&R.lock);
    out->channels = R.chans.n;
    out->patterns = R.pats.n;
    pthread_rwlock_unlock(&R.lock);
    out->messages = atomic_load(&S.messages);
    out->deliveries = atomic_load(&S.deliveries);
    out->dropped = atomic_load(&S.dropped);
    out->notifications = atomic_load(&S.notifications);
}

/* ---- a client's subscriptions ---------------------------------------------------- */

static struct ps_sub *
client_sub(struct client *c)
{
    if (c->ps == NULL) {
        struct ps_sub *s = xcalloc(1, sizeof(*s));
        s->ref = 1; /* the client's */
        s->c = c;
        s->worker = cmd_clients_worker_index(c->worker);
        c->ps = s;
    }
    return c->ps;
}

static ssize_t
names_find(const struct ps_name *v, size_t n, const char *p, size_t len, uint64_t h)
{
    for (size_t i = 0; i < n; i++) {
        if (v[i].hash == h && v[i].len == len && memcmp(v[i].p, p, len) == 0) {
            return (ssize_t)i;
        }
    }
    return -1;
}

static void
names_add(struct ps_name **v, size_t *n, size_t *cap, const char *p, size_t len, uint64_t h)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 4;
        *v = xrealloc(*v, *cap * sizeof(**v));
    }
    char *copy = xmalloc(len ? len : 1);
    memcpy(copy, p, len);
    (*v)[(*n)++] = (struct ps_name){h, len, copy};
}

/* Remove entry i, keeping the order (UNSUBSCRIBE without arguments answers
 * in subscription order). */
static void
names_del(struct ps_name *v, size_t *n, size_t i)
{
    free(v[i].p);
    memmove(&v[i], &v[i + 1], (*n - i - 1) * sizeof(*v));
    (*n)--;
}

static void
sync_counts(struct client *c)
{
    struct ps_sub *s = c->ps;
    __atomic_store_n(&c->ps_nch, s ? (unsigned)s->nch : 0, __ATOMIC_RELAXED);
    __atomic_store_n(&c->ps_npat, s ? (unsigned)s->npat : 0, __ATOMIC_RELAXED);
}

static void
reply_confirm(struct client *c, const char *kind, const char *name, size_t len, bool null)
{
    if (c->r.proto == REPLY_RESP3) {
        buf_appendstr(c->r.out, ">3\r\n");
    } else {
        reply_array(&c->r, 3);
    }
    reply_bulkstr(&c->r, kind);
    if (null) {
        reply_null(&c->r);
    } else {
        reply_bulk(&c->r, name, len);
    }
    reply_int(&c->r, (int64_t)(c->ps ? c->ps->nch + c->ps->npat : 0));
}

static void
subscribe(struct client *c, int argc, struct proto_arg *argv, bool pattern)
{
    struct ps_sub *s = client_sub(c);
    for (int i = 1; i < argc; i++) {
        const char *p = argv[i].ptr;
        size_t len = argv[i].len;
        uint64_t h = name_hash(p, len);
        if (pattern ? names_find(s->pat, s->npat, p, len, h) < 0
                    : names_find(s->ch, s->nch, p, len, h) < 0) {
            pthread_rwlock_wrlock(&R.lock);
            if (pattern) {
                names_add(&s->pat, &s->npat, &s->patcap, p, len, h);
                entry_add_sub(table_add(&R.pats, p, len, h), s);
            } else {
                names_add(&s->ch, &s->nch, &s->chcap, p, len, h);
                entry_add_sub(table_add(&R.chans, p, len, h), s);
            }
            pthread_rwlock_unlock(&R.lock);
            sync_counts(c);
        }
        reply_confirm(c, pattern ? "psubscribe" : "subscribe", p, len, false);
    }
}

/* Leave one channel (or pattern) at index i of the client's list. */
static void
leave(struct client *c, bool pattern, size_t i)
{
    struct ps_sub *s = c->ps;
    struct ps_name *n = pattern ? &s->pat[i] : &s->ch[i];
    pthread_rwlock_wrlock(&R.lock);
    table_remove_sub(pattern ? &R.pats : &R.chans, n->p, n->len, n->hash, s);
    pthread_rwlock_unlock(&R.lock);
    if (pattern) {
        names_del(s->pat, &s->npat, i);
    } else {
        names_del(s->ch, &s->nch, i);
    }
    sync_counts(c);
}

/* Leave everything of one kind; with `confirm`, reply for each (and for
 * none at all, a null channel). */
static void
leave_all(struct client *c, bool pattern, bool confirm)
{
    const char *kind = pattern ? "punsubscribe" : "unsubscribe";
    struct ps_sub *s = c->ps;
    size_t n = s ? (pattern ? s->npat : s->nch) : 0;
    if (n == 0) {
        if (confirm) {
            reply_confirm(c, kind, NULL, 0, true);
        }
        return;
    }
    while (pattern ? s->npat : s->nch) {
        struct ps_name nm = pattern ? s->pat[0] : s->ch[0];
        char *copy = xmalloc(nm.len ? nm.len : 1);
        memcpy(copy, nm.p, nm.len);
        leave(c, pattern, 0);
        if (confirm) {
            reply_confirm(c, kind, copy, nm.len, false);
        }
        free(copy);
    }
}

static void
unsubscribe(struct client *c, int argc, struct proto_arg *argv, bool pattern)
{
    if (argc == 1) {
        leave_all(c, pattern, true);
        return;
    }
    const char *kind = pattern ? "punsubscribe" : "unsubscribe";
    for (int i = 1; i < argc; i++) {
        struct ps_sub *s = c->ps;
        if (s) {
            uint64_t h = name_hash(argv[i].ptr, argv[i].len);
            ssize_t at = pattern ? names_find(s->pat, s->npat, argv[i].ptr, argv[i].len, h)
                                 : names_find(s->ch, s->nch, argv[i].ptr, argv[i].len, h);
            if (at >= 0) {
                leave(c, pattern, (size_t)at);
            }
        }
        reply_confirm(c, kind, argv[i].ptr, argv[i].len, false);
    }
}

void
pubsub_client_reset(struct client *c)
{
    if (c->ps) {
        leave_all(c, false, false);
        leave_all(c, true, false);
    }
}

void
pubsub_client_gone(struct client *c)
{
    struct ps_sub *s = c->ps;
    if (s == NULL) {
        return;
    }
    pubsub_client_reset(c);
    __atomic_store_n(&s->gone, true, __ATOMIC_RELEASE);
    c->ps = NULL;
    sync_counts(c);
    sub_unref(s);
}

/* ---- commands ------------------------------------------------------------------- */

void
cmd_subscribe(struct client *c, int argc, struct proto_arg *argv)
{
    subscribe(c, argc, argv, false);
}

void
cmd_psubscribe(struct client *c, int argc, struct proto_arg *argv)
{
    subscribe(c, argc, argv, true);
}

void
cmd_unsubscribe(struct client *c, int argc, struct proto_arg *argv)
{
    unsubscribe(c, argc, argv, false);
}

void
cmd_punsubscribe(struct client *c, int argc, struct proto_arg *argv)
{
    unsubscribe(c, argc, argv, true);
}

void
cmd_publish(struct client *c, int argc, struct proto_arg *argv)
{
    size_t n = publish(c, argv[1].ptr, argv[1].len, argv[2].ptr, argv[2].len);
    reply_int(&c->r, (int64_t)n);
}

static void
pubsub_help(struct client *c)
{
    static const char *help[] = {
        "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CHANNELS [<pattern>]",
        "    Return the currently active channels matching a <pattern> (default: '*').",
        "NUMPAT",
        "    Return number of subscriptions to patterns.",
        "NUMSUB [<channel> ...]",
        "    Return the number of subscribers for the specified channels, excluding",
        "    pattern subscriptions(default: no channels).",
        "SHARDCHANNELS [<pattern>]",
        "    Return the currently active shard level channels matching a <pattern> (default: "
        "'*').",
        "SHARDNUMSUB [<shardchannel> ...]",
        "    Return the number of subscribers for the specified shard level channel(s)",
        "HELP",
        "    Prints this help."};
    size_t n = sizeof(help) / sizeof(help[0]);
    reply_array(&c->r, n);
    for (size_t i = 0; i < n; i++) {
        reply_simple(&c->r, help[i]);
    }
}

static void
syntax_or_arity(struct client *c, const struct proto_arg *sub)
{
    int n = sub->len > 128 ? 128 : (int)sub->len;
    reply_errorf(&c->r,
                 "ERR unknown subcommand or wrong number of arguments for '%.*s'. Try PUBSUB "
                 "HELP.",
                 n, sub->ptr);
}

void
cmd_pubsub(struct client *c, int argc, struct proto_arg *argv)
{
    struct proto_arg *sub = &argv[1];
    if (proto_arg_is(sub, "help")) {
        if (argc != 2) {
            cmd_reply_arity(c, "pubsub|help");
            return;
        }
        pubsub_help(c);
    } else if (proto_arg_is(sub, "channels") || proto_arg_is(sub, "shardchannels")) {
        if (argc > 3) {
            syntax_or_arity(c, sub);
            return;
        }
        bool shard = proto_arg_is(sub, "shardchannels");
        struct buf names;
        buf_init(&names);
        size_t count = 0;
        if (!shard) { /* shard channels (SSUBSCRIBE) do not exist here: none */
            pthread_rwlock_rdlock(&R.lock);
            for (size_t b = 0; b < R.chans.nb; b++) {
                for (struct ps_entry *e = R.chans.b[b]; e; e = e->next) {
                    if (argc == 3 &&
                        !channel_match(argv[2].ptr, argv[2].len, e->name, e->len)) {
                        continue;
                    }
                    uint32_t len = (uint32_t)e->len;
                    buf_append(&names, &len, sizeof(len));
                    buf_append(&names, e->name, e->len);
                    count++;
                }
            }
            pthread_rwlock_unlock(&R.lock);
        }
        reply_array(&c->r, count);
        size_t off = 0;
        for (size_t i = 0; i < count; i++) {
            uint32_t len;
            memcpy(&len, names.data + off, sizeof(len));
            reply_bulk(&c->r, names.data + off + sizeof(len), len);
            off += sizeof(len) + len;
        }
        buf_deinit(&names);
    } else if (proto_arg_is(sub, "numsub") || proto_arg_is(sub, "shardnumsub")) {
        bool shard = proto_arg_is(sub, "shardnumsub");
        /* an array in RESP3 too, as Redis 7.0 */
        reply_array(&c->r, (size_t)(argc - 2) * 2);
        for (int i = 2; i < argc; i++) {
            size_t n = 0;
            if (!shard) {
                pthread_rwlock_rdlock(&R.lock);
                struct ps_entry *e =
                    table_find(&R.chans, argv[i].ptr, argv[i].len, name_hash(argv[i].ptr,
                                                                              argv[i].len));
                n = e ? e->n : 0;
                pthread_rwlock_unlock(&R.lock);
            }
            reply_bulk(&c->r, argv[i].ptr, argv[i].len);
            reply_int(&c->r, (int64_t)n);
        }
    } else if (proto_arg_is(sub, "numpat")) {
        if (argc != 2) {
            cmd_reply_arity(c, "pubsub|numpat");
            return;
        }
        pthread_rwlock_rdlock(&R.lock);
        size_t n = R.pats.n;
        pthread_rwlock_unlock(&R.lock);
        reply_int(&c->r, (int64_t)n);
    } else {
        cmd_reply_unknown_subcommand(c, sub, "PUBSUB");
    }
}

/* ---- keyspace notifications ------------------------------------------------------- */

int notify_flags_;
static int notify_consumer_id;
static pthread_mutex_t notify_lock = PTHREAD_MUTEX_INITIALIZER;

int
notify_parse(const char *s)
{
    int flags = 0;
    for (; *s; s++) {
        switch (*s) {
        case 'A': flags |= NOTIFY_ALL; break;
        case 'g': flags |= NOTIFY_GENERIC; break;
        case '$': flags |= NOTIFY_STRING; break;
        case 'l': flags |= NOTIFY_LIST; break;
        case 's': flags |= NOTIFY_SET; break;
        case 'h': flags |= NOTIFY_HASH; break;
        case 'z': flags |= NOTIFY_ZSET; break;
        case 'x': flags |= NOTIFY_EXPIRED; break;
        case 'e': flags |= NOTIFY_EVICTED; break;
        case 'K': flags |= NOTIFY_KEYSPACE; break;
        case 'E': flags |= NOTIFY_KEYEVENT; break;
        case 't': flags |= NOTIFY_STREAM; break;
        case 'm': flags |= NOTIFY_KEY_MISS; break;
        case 'd': flags |= NOTIFY_MODULE; break;
        case 'n': flags |= NOTIFY_NEW; break;
        default: return -1;
        }
    }
    return flags;
}

void
notify_format(int flags, char *out)
{
    char *p = out;
    if ((flags & NOTIFY_ALL) == NOTIFY_ALL) {
        *p++ = 'A';
    } else {
        static const struct {
            int bit;
            char c;
        } order[] = {{NOTIFY_GENERIC, 'g'}, {NOTIFY_STRING, '$'}, {NOTIFY_LIST, 'l'},
                     {NOTIFY_SET, 's'},     {NOTIFY_HASH, 'h'},   {NOTIFY_ZSET, 'z'},
                     {NOTIFY_EXPIRED, 'x'}, {NOTIFY_EVICTED, 'e'}, {NOTIFY_STREAM, 't'},
                     {NOTIFY_MODULE, 'd'},  {NOTIFY_NEW, 'n'}};
        for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
            if (flags & order[i].bit) {
                *p++ = order[i].c;
            }
        }
    }
    if (flags & NOTIFY_KEYSPACE) {
        *p++ = 'K';
    }
    if (flags & NOTIFY_KEYEVENT) {
        *p++ = 'E';
    }
    if (flags & NOTIFY_KEY_MISS) {
        *p++ = 'm';
    }
    *p = '\0';
}

void
notify_key_slow(struct client *c, int type, const char *event, const char *key, size_t klen)
{
    int f = __atomic_load_n(&notify_flags_, __ATOMIC_RELAXED);
    size_t elen = strlen(event);
    atomic_fetch_add_explicit(&S.notifications, 1, memory_order_relaxed);
    if (f & NOTIFY_KEYSPACE) {
        static const char pre[] = "__keyspace@0__:";
        size_t n = sizeof(pre) - 1 + klen;
        char small[256];
        char *ch = n <= sizeof(small) ? small : xmalloc(n);
        memcpy(ch, pre, sizeof(pre) - 1);
        memcpy(ch + sizeof(pre) - 1, key, klen);
        publish(c, ch, n, event, elen);
        if (ch != small) {
            free(ch);
        }
    }
    if (f & NOTIFY_KEYEVENT) {
        static const char pre[] = "__keyevent@0__:";
        char ch[128];
        int n = snprintf(ch, sizeof(ch), "%s%s", pre, event);
        publish(c, ch, (size_t)n, key, klen);
    }
    (void)type;
}

/* The store removed a key on its own (mutation stream consumer): "expired"
 * or "evicted". Runs under the key's shard lock. */
static int64_t
on_removed(void *ctx, const struct mstream_rec *recs, size_t n)
{
    (void)ctx;
    for (size_t i = 0; i < n; i++) {
        if (recs[i].cause == MSTREAM_EXPIRED) {
            notify_key(NULL, NOTIFY_EXPIRED, "expired", recs[i].rec.key, recs[i].rec.klen);
        } else if (recs[i].cause == MSTREAM_EVICTED) {
            notify_key(NULL, NOTIFY_EVICTED, "evicted", recs[i].rec.key, recs[i].rec.klen);
        }
    }
    return 0;
}

void
notify_set(int flags)
{
    pthread_mutex_lock(&notify_lock);
    __atomic_store_n(&notify_flags_, flags, __ATOMIC_RELAXED);
    bool want = (flags & (NOTIFY_EXPIRED | NOTIFY_EVICTED)) &&
                (flags & (NOTIFY_KEYSPACE | NOTIFY_KEYEVENT));
    if (want && notify_consumer_id <= 0 && server.store) {
        struct mstream_consumer mc = {
            .name = "keyspace-notifications",
            .accept = MSTREAM_EVICTED | MSTREAM_EXPIRED,
            .flags = MSTREAM_UNORDERED | MSTREAM_NO_SLOTS,
            .fn = on_removed,
            .ctx = NULL,
        };
        notify_consumer_id = mstream_register(&server.stream, &mc, NULL);
        if (notify_consumer_id < 0) {
            log_warn("keyspace notifications: cannot watch expiry and eviction",
                     "\"error\":%d", notify_consumer_id);
        }
    } else if (!want && notify_consumer_id > 0) {
        mstream_unregister(&server.stream, notify_consumer_id);
        notify_consumer_id = 0;
    }
    pthread_mutex_unlock(&notify_lock);
}
