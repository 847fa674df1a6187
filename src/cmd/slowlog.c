/*
 * slowlog.c -- see slowlog.h.
 *
 * A ring of at most max_len entries under a mutex, newest at `head`, the
 * others following it in age order. Entries own copies of the (cut)
 * arguments. Changing max_len rebuilds the ring keeping the newest entries.
 * Only slow commands get here, so the lock is off the fast path.
 */
#include "cmd/slowlog.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/clock.h"
#include "util/mem.h"

#define SLOWLOG_ARGS 32
#define SLOWLOG_ARGLEN 128

struct entry {
    uint64_t id;
    int64_t time_s;
    int64_t usec;
    int argc;
    char *argv[SLOWLOG_ARGS];
    size_t lens[SLOWLOG_ARGS];
    char addr[64];
    char name[64];
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct entry *ring;     /* cap entries; NULL until the first add */
static size_t cap = SLOWLOG_DEFAULT_MAX_LEN;
static size_t head, count;
static uint64_t next_id;
_Atomic int64_t slowlog_threshold_us = SLOWLOG_DEFAULT_THRESHOLD;

void
slowlog_set_threshold(int64_t usec)
{
    atomic_store(&slowlog_threshold_us, usec);
}

static void
entry_free(struct entry *e)
{
    for (int i = 0; i < e->argc; i++) {
        free(e->argv[i]);
    }
    memset(e, 0, sizeof(*e));
}

/* The i-th newest entry (0 = newest); lock held, i < count. */
static struct entry *
nth(size_t i)
{
    return &ring[(head + i) % cap];
}

void
slowlog_set_max_len(size_t n)
{
    pthread_mutex_lock(&lock);
    if (n != cap) {
        struct entry *fresh = n ? xcalloc(n, sizeof(*fresh)) : NULL;
        size_t keep = count < n ? count : n;
        for (size_t i = 0; i < count; i++) {
            if (i < keep) {
                fresh[i] = *nth(i); /* moves the argument copies */
            } else {
                entry_free(nth(i));
            }
        }
        free(ring);
        ring = fresh;
        cap = n;
        head = 0;
        count = keep;
    }
    pthread_mutex_unlock(&lock);
}

size_t
slowlog_max_len(void)
{
    pthread_mutex_lock(&lock);
    size_t n = cap;
    pthread_mutex_unlock(&lock);
    return n;
}

static void
copy_args(struct entry *e, int argc, const struct proto_arg *argv)
{
    int n = argc > SLOWLOG_ARGS ? SLOWLOG_ARGS : argc;
    for (int i = 0; i < n; i++) {
        char tmp[SLOWLOG_ARGLEN + 64];
        size_t len = argv[i].len;
        if (i == SLOWLOG_ARGS - 1 && argc > SLOWLOG_ARGS) {
            len = (size_t)snprintf(tmp, sizeof(tmp), "... (%d more arguments)",
                                   argc - SLOWLOG_ARGS + 1);
            e->argv[i] = xstrndup(tmp, len);
        } else if (len > SLOWLOG_ARGLEN) {
            len = (size_t)snprintf(tmp, sizeof(tmp), "%.*s... (%zu more bytes)",
                                   SLOWLOG_ARGLEN, argv[i].ptr, argv[i].len - SLOWLOG_ARGLEN);
            e->argv[i] = xstrndup(tmp, len);
        } else {
            e->argv[i] = xmalloc(len + 1);
            memcpy(e->argv[i], argv[i].ptr, len);
            e->argv[i][len] = '\0';
        }
        e->lens[i] = len;
    }
    e->argc = n;
}

void
slowlog_add(const struct client *c, int argc, const struct proto_arg *argv, int64_t usec)
{
    pthread_mutex_lock(&lock);
    if (cap == 0) {
        next_id++;
        pthread_mutex_unlock(&lock);
        return;
    }
    if (ring == NULL) {
        ring = xcalloc(cap, sizeof(*ring));
    }
    head = (head + cap - 1) % cap;
    struct entry *e = &ring[head];
    entry_free(e);
    e->id = next_id++;
    e->time_s = clock_ms() / 1000;
    e->usec = usec;
    copy_args(e, argc, argv);
    snprintf(e->addr, sizeof(e->addr), "%s", c->addr);
    if (c->name) {
        snprintf(e->name, sizeof(e->name), "%s", c->name);
    }
    if (count < cap) {
        count++;
    }
    pthread_mutex_unlock(&lock);
}

size_t
slowlog_len(void)
{
    pthread_mutex_lock(&lock);
    size_t n = count;
    pthread_mutex_unlock(&lock);
    return n;
}

void
slowlog_reset(void)
{
    pthread_mutex_lock(&lock);
    for (size_t i = 0; ring && i < cap; i++) {
        entry_free(&ring[i]);
    }
    count = 0;
    head = 0;
    pthread_mutex_unlock(&lock);
}

void
slowlog_reply(struct reply *r, long long n)
{
    pthread_mutex_lock(&lock);
    size_t k = (n < 0 || (unsigned long long)n > count) ? count : (size_t)n;
    reply_array(r, k);
    for (size_t i = 0; i < k; i++) {
        struct entry *e = nth(i);
        reply_array(r, 6);
        reply_int(r, (int64_t)e->id);
        reply_int(r, e->time_s);
        reply_int(r, e->usec);
        reply_array(r, (size_t)e->argc);
        for (int a = 0; a < e->argc; a++) {
            reply_bulk(r, e->argv[a], e->lens[a]);
        }
        reply_bulkstr(r, e->addr);
        reply_bulkstr(r, e->name);
    }
    pthread_mutex_unlock(&lock);
}
