/*
 * later.c -- replies produced by another thread (cmd/later.h).
 *
 * A handle belongs to two parties, the connection and the finisher; it is
 * freed when both are done with it. Finished handles wait on their worker's
 * list (w->later_done, under later_lock) until the worker's wake-up takes
 * them: the reply is appended to the connection's output and the input it
 * kept is run. One global lock: finishes from other threads are rare
 * (cluster admin commands). A finish on the connection's own worker (a
 * forwarded request's reply, net/fwd.c) is delivered at once, unless the
 * connection is running its requests (then it waits for the wake-up).
 */
#include "cmd/later.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/reply.h"
#include "net/internal.h"
#include "net/net.h"
#include "util/buf.h"
#include "util/mem.h"

struct later {
    struct conn *cn;      /* NULL once the connection has gone */
    struct worker *w;
    bool finished;
    bool raw;
    char *err;            /* !raw: NULL = +OK */
    struct buf bytes;     /* raw */
    struct later *next;   /* on w->later_done */
};

static pthread_mutex_t later_lock = PTHREAD_MUTEX_INITIALIZER;

static void deliver(struct later *l);

static void
later_free(struct later *l)
{
    free(l->err);
    buf_deinit(&l->bytes);
    free(l);
}

struct later *
later_begin(struct client *c)
{
    struct conn *cn = (struct conn *)((char *)c - offsetof(struct conn, c));
    if (cn->closing || cn->later != NULL) {
        return NULL;
    }
    struct later *l = xcalloc(1, sizeof(*l));
    l->cn = cn;
    l->w = cn->w;
    buf_init(&l->bytes);
    cn->later = l;
    return l;
}

static void
finish(struct later *l)
{
    /* On the connection's own worker, from a callback (a forwarded reply):
     * deliver now. Only that thread clears l->cn, so no lock is needed. */
    if (pthread_equal(l->w->thread, pthread_self())) {
        if (l->cn == NULL) {
            later_free(l);
            return;
        }
        if (!l->cn->running) {
            deliver(l);
            return;
        }
    }
    pthread_mutex_lock(&later_lock);
    l->finished = true;
    if (l->cn == NULL) {
        /* The client has gone: nobody will take it. */
        pthread_mutex_unlock(&later_lock);
        later_free(l);
        return;
    }
    struct worker *w = l->w;
    l->next = w->later_done;
    w->later_done = l;
    pthread_mutex_unlock(&later_lock);
    uv_async_send(&w->wake);
}

void
later_finish(struct later *l, const char *err)
{
    l->err = err ? xstrdup(err) : NULL;
    finish(l);
}

void
later_finish_raw(struct later *l, const void *bytes, size_t len)
{
    l->raw = true;
    buf_append(&l->bytes, bytes, len);
    finish(l);
}

void
later_conn_gone(struct conn *cn)
{
    struct later *l = cn->later;
    if (l == NULL) {
        return;
    }
    cn->later = NULL;
    pthread_mutex_lock(&later_lock);
    bool done = l->finished;
    l->cn = NULL;
    if (done) {
        /* Finished but not yet taken: unlink it from the worker's list. */
        for (struct later **p = &l->w->later_done; *p; p = &(*p)->next) {
            if (*p == l) {
                *p = l->next;
                break;
            }
        }
    }
    pthread_mutex_unlock(&later_lock);
    if (done) {
        later_free(l);
    }
}

/* Put l's reply on its connection and run the input it kept. */
static void
deliver(struct later *l)
{
    struct conn *cn = l->cn;
    cn->later = NULL;
    if (l->raw) {
        buf_append(&cn->out, l->bytes.data, l->bytes.len);
    } else if (l->err) {
        reply_error(&cn->c.r, l->err);
    } else {
        reply_ok(&cn->c.r);
    }
    if (cn->mode == MODE_NATIVE && cn->bare_lf) {
        conn_native_bare_lf(&cn->out);
    }
    later_free(l);
    conn_resume(cn);
}

void
later_take_finished(struct worker *w)
{
    pthread_mutex_lock(&later_lock);
    struct later *list = w->later_done;
    w->later_done = NULL;
    pthread_mutex_unlock(&later_lock);
    while (list) {
        struct later *l = list;
        list = l->next;
        deliver(l);
    }
}

/* ---- requests run again (later_retry) ------------------------------------ */

void
later_retry(struct client *c)
{
    struct conn *cn = (struct conn *)((char *)c - offsetof(struct conn, c));
    cn->retry = true;
}

void
later_keep_retry(struct conn *cn)
{
    cn->retry_next = cn->w->retrying;
    cn->w->retrying = cn;
}

void
later_retry_wake(void)
{
    net_wake_all();
}

void
later_run_retries(struct worker *w)
{
    struct conn *list = w->retrying;
    w->retrying = NULL;
    while (list) {
        struct conn *cn = list;
        list = cn->retry_next;
        cn->retry_next = NULL;
        cn->retry = false;
        conn_resume(cn);
    }
}
