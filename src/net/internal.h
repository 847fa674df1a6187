/*
 * internal.h -- types shared by the files of net/ (not for other layers).
 */
#ifndef CRAB_NET_INTERNAL_H
#define CRAB_NET_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <uv.h>

#include "cmd/client.h"
#include "net/net.h"
#include "proto/resp.h"
#include "proto/text.h"
#include "util/buf.h"

struct worker {
    unsigned id;
    pthread_t thread;
    uv_loop_t loop;
    uv_tcp_t listen[2];      /* native port, RESP port */
    bool listening[2];
    uv_async_t wake;         /* stop / kill requests from other threads */
    uv_timer_t cron;
    struct conn *conns;      /* doubly linked list of this worker's conns */
    struct conn *parked;     /* conns whose replies wait for the WAL (sync) */
    unsigned nconns;
    bool stopping;
    const struct net_options *opt;
};

enum conn_mode { MODE_UNKNOWN = 0, MODE_RESP, MODE_NATIVE };

struct conn {
    uv_tcp_t tcp;            /* first: handle->data not needed for casts */
    struct client c;
    struct worker *w;
    struct conn *prev, *next;
    struct conn *reg_prev, *reg_next; /* global registry (net_client_*) */
    enum conn_mode mode;
    struct buf in;
    struct buf out;          /* replies being built */
    struct buf wbuf;         /* replies handed to uv_write */
    uv_write_t wreq;
    bool writing;
    bool closing;
    bool reading;
    bool parked;             /* in w->parked */
    struct conn *park_prev, *park_next;
    struct resp_parser resp;
    struct text_parser text;
};

/* conn.c */
void conn_accept(struct worker *w, uv_stream_t *server, bool resp_port);
void conn_close(struct conn *cn);
void conn_check_idle(struct worker *w, int64_t now_ms, int64_t idle_s);
void conn_kill_marked(struct worker *w);
void conn_release_parked(struct worker *w);

/* worker.c: registry of all clients, for CLIENT LIST/KILL */
void registry_add(struct conn *cn);
void registry_del(struct conn *cn);

#endif
