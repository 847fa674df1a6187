/*
 * tstats.c -- per-thread counters (see server.h).
 *
 * Each thread that counts gets one block, allocated on first use and linked
 * into a global list that is never shrunk (threads live as long as the
 * server). Readers sum the blocks with relaxed loads: a figure may be a few
 * increments behind, never torn on x86-64 or aarch64 for aligned 64-bit words.
 */
#include "core/server.h"

#include <string.h>

#include "util/mem.h"

struct server server;

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tstats *reg_head;
static _Thread_local struct tstats *self;

struct tstats *
tstats_self(void)
{
    if (self == NULL) {
        self = xcalloc(1, sizeof(*self));
        pthread_mutex_lock(&reg_lock);
        self->next = reg_head;
        reg_head = self;
        pthread_mutex_unlock(&reg_lock);
    }
    return self;
}

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)

void
tstats_sum(struct tstats *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&reg_lock);
    for (struct tstats *t = reg_head; t; t = t->next) {
        out->hits += LOAD(t->hits);
        out->misses += LOAD(t->misses);
        out->net_in += LOAD(t->net_in);
        out->net_out += LOAD(t->net_out);
        for (int i = 0; i < CMD_COUNT; i++) {
            out->cmd[i].calls += LOAD(t->cmd[i].calls);
            out->cmd[i].usec += LOAD(t->cmd[i].usec);
            out->cmd[i].rejected += LOAD(t->cmd[i].rejected);
            out->cmd[i].failed += LOAD(t->cmd[i].failed);
        }
    }
    pthread_mutex_unlock(&reg_lock);
}

void
tstats_reset_all(void)
{
    pthread_mutex_lock(&reg_lock);
    for (struct tstats *t = reg_head; t; t = t->next) {
        __atomic_store_n(&t->hits, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&t->misses, 0, __ATOMIC_RELAXED);
        for (int i = 0; i < CMD_COUNT; i++) {
            __atomic_store_n(&t->cmd[i].calls, 0, __ATOMIC_RELAXED);
            __atomic_store_n(&t->cmd[i].usec, 0, __ATOMIC_RELAXED);
            __atomic_store_n(&t->cmd[i].rejected, 0, __ATOMIC_RELAXED);
            __atomic_store_n(&t->cmd[i].failed, 0, __ATOMIC_RELAXED);
        }
    }
    pthread_mutex_unlock(&reg_lock);
}
