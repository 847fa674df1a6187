/*
 * slowlog.c -- see slowlog.h. A fixed ring of 128 entries under a mutex;
 * only slow commands get here, so the lock is off the fast path.
 */
#include "cmd/slowlog.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/clock.h"
#include "util/mem.h"

#define SLOWLOG_MAX 128
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
static struct entry ring[SLOWLOG_MAX];
static size_t head, count;
static uint64_t next_id;
static _Atomic int64_t threshold = 10000;

void
slowlog_set_threshold(int64_t usec)
{
    threshold = usec;
}

int64_t
slowlog_threshold(void)
{
    return threshold;
}

static void
entry_free(struct entry *e)
{
    for (int i = 0; i < e->argc; i++) {
        free(e->argv[i]);
    }
    memset(e, 0, sizeof(*e));
}

void
slowlog_add(const struct client *c, int argc, const struct proto_arg *argv, int64_t usec)
{
    pthread_mutex_lock(&lock);
    head = (head + SLOWLOG_MAX - 1) % SLOWLOG_MAX;
    struct entry *e = &ring[head];
    entry_free(e);
    e->id = next_id++;
    e->time_s = clock_ms() / 1000;
    e->usec = usec;
    int n = argc > SLOWLOG_ARGS ? SLOWLOG_ARGS : argc;
    for (int i = 0; i < n; i++) {
        const char *extra = "";
        size_t len = argv[i].len;
        char tmp[SLOWLOG_ARGLEN + 64];
        if (i == SLOWLOG_ARGS - 1 && argc > SLOWLOG_ARGS) {
            len = (size_t)snprintf(tmp, sizeof(tmp), "... (%d more arguments)",
                                   argc - SLOWLOG_ARGS + 1);
            e->argv[i] = xstrndup(tmp, len);
            e->lens[i] = len;
            continue;
        }
        if (len > SLOWLOG_ARGLEN) {
            len = (size_t)snprintf(tmp, sizeof(tmp), "%.*s... (%zu more bytes)",
                                   SLOWLOG_ARGLEN, argv[i].ptr, argv[i].len - SLOWLOG_ARGLEN);
            e->argv[i] = xstrndup(tmp, len);
        } else {
            e->argv[i] = xstrndup(argv[i].ptr, len);
        }
        (void)extra;
        e->lens[i] = len;
    }
    e->argc = n;
    strncpy(e->addr, c->addr, sizeof(e->addr) - 1);
    if (c->name) {
        strncpy(e->name, c->name, sizeof(e->name) - 1);
    }
    if (count < SLOWLOG_MAX) {
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
    for (size_t i = 0; i < SLOWLOG_MAX; i++) {
        entry_free(&ring[i]);
    }
    count = 0;
    pthread_mutex_unlock(&lock);
}

void
slowlog_reply(struct reply *r, long long n)
{
    pthread_mutex_lock(&lock);
    size_t k = (n < 0 || (size_t)n > count) ? count : (size_t)n;
    reply_array(r, k);
    for (size_t i = 0; i < k; i++) {
        struct entry *e = &ring[(head + i) % SLOWLOG_MAX];
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
