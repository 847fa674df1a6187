/*
 * internal.h -- types shared by the files of net/ (not for other layers).
 */
#ifndef CRAB_NET_INTERNAL_H
#define CRAB_NET_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <uv.h>

#include "cmd/client.h"
#include "cmd/tstats.h"
#include "net/acl_ip.h"
#include "net/net.h"
#include "net/ratelimit.h"
#include "net/tls.h"
#include "proto/resp.h"
#include "proto/text.h"
#include "util/buf.h"

struct worker {
    unsigned id;
    pthread_t thread;
    uv_loop_t loop;
    uv_tcp_t listen[4];      /* enum listen_kind */
    bool listening[4];
    uv_async_t wake;         /* stop / kill requests from other threads */
    uv_async_t ps_wake;      /* Pub/Sub messages in the mailbox (psnet.c) */
    uv_timer_t cron;
    uv_check_t quiesce;      /* cluster mode only: end of each loop turn */
    int qs_slot;             /* cluster_worker_register's slot */
    struct conn *conns;      /* doubly linked list of this worker's conns */
    struct conn *parked;     /* conns whose replies wait for the WAL (sync) */
    int durable_fd;          /* sync policy: eventfd the WAL's notify writes, else -1 */
    uv_poll_t durable_poll;
    struct later *later_done; /* finished replies to deliver (net/later.c) */
    struct conn *retrying;   /* conns holding a request to run again (later_retry) */
    struct fwd_worker *fwd;  /* links to other nodes (net/fwd.c), NULL until used */
    uv_idle_t turn;          /* runs while `ready` is not empty */
    struct conn *ready;      /* conns with input left over from their turn */
    bool turn_active;
    uv_timer_t deadline;     /* shutdown: force-close what is still open */
    bool drained;            /* shutdown: last handles closed */
    unsigned nconns;
    unsigned cron_ticks;
    bool stopping;
    const struct net_options *opt;
};

enum conn_mode { MODE_UNKNOWN = 0, MODE_RESP, MODE_NATIVE };

/* Which listener accepted a connection (index into worker.listen). */
enum listen_kind { LISTEN_NATIVE = 0, LISTEN_RESP = 1, LISTEN_TLS = 2, LISTEN_PROXY = 3, LISTEN_COUNT };

/* One connection's turn: requests are executed until this much time has
 * gone (checked every TURN_CHECK commands); what is left waits for the next
 * loop iteration, after every other ready connection had its turn. */
#define TURN_BUDGET_US 1000
#define TURN_CHECK 16

/* A TLS handshake must finish this soon after accept. */
#define TLS_HANDSHAKE_TIMEOUT_MS 10000

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
    bool queued;             /* in w->ready: complete requests wait for a turn */
    bool running;            /* process_input is executing its requests */
    struct later *later;     /* the reply another thread produces (cmd/later.h) */
    bool retry;              /* the request just run must run again: keep it */
    struct conn *retry_next; /* on w->retrying */
    struct conn *ready_prev, *ready_next;
    struct resp_parser resp;
    struct text_parser text;
    bool bare_lf;            /* native: the last line ended in a bare '\n' */
    /* TLS: ciphertext read (raw) and to send (tls_out); NULL tls = plain */
    struct tls_conn *tls;
    struct buf raw;
    struct buf tls_out;
    /* rate limiting: the peer's address key and its bucket (NULL until
     * the first request with the limiter on) */
    uint8_t addr_key[16];
    bool have_key;
    struct ratelimit_entry *rl;
    int64_t write_progress_ms; /* last time the socket took output */
    /* End-to-end latency (tstats_record_e2e): e2e_n requests have replies
     * not yet written, the oldest read at e2e_t (wall us); left_t: when the
     * whole requests a turn left in cn->in for the next one were read. */
    int64_t e2e_t, left_t;
    uint32_t e2e_n;
    bool ps_touched;         /* psnet.c: got messages in this delivery */
};

/* Settings read by every worker (live ones updated by net_set_live). */
struct net_shared {
    struct acl_ip acl;
    bool tls;                       /* TLS context loaded */
    _Atomic size_t max_command_size;
    _Atomic size_t max_output_buffer;
    _Atomic uint64_t output_limit_closed;
    _Atomic uint64_t input_limit_closed;
    _Atomic uint64_t tls_conns;
};
extern struct net_shared net_shared;

/* conn.c */
void conn_accept(struct worker *w, uv_stream_t *server, enum listen_kind kind);
void conn_close(struct conn *cn);
/* Shutdown: stop reading, send what is already built, then close. */
void conn_finish(struct conn *cn);
/* worker.c: the last connection of a stopping worker has closed. */
void worker_drained(struct worker *w);
void conn_check_idle(struct worker *w, int64_t now_ms, int64_t idle_s);
void conn_kill_marked(struct worker *w);
void conn_release_parked(struct worker *w);
void conn_run_ready(struct worker *w);
/* A reply that came later was appended: run the input the connection kept. */
void conn_resume(struct conn *cn);
/* Native: the CRLF ending the reply just appended to out becomes LF (the
 * request ended in a bare LF). */
void conn_native_bare_lf(struct buf *out);
/* Output was appended outside a turn (Pub/Sub): send it (checks the
 * general output limit too). */
void conn_push_out(struct conn *cn);
/* Unsent output bytes. */
size_t conn_queued(const struct conn *cn);

/* psnet.c: deliver the Pub/Sub messages waiting for this worker. */
void psnet_deliver(struct worker *w);

/* later.c */
void later_conn_gone(struct conn *cn);
void later_take_finished(struct worker *w);
void later_run_retries(struct worker *w);
void later_keep_retry(struct conn *cn);

/* fwd.c: route again the forwarded requests a MOVED kept waiting (the view
 * may have changed); close the links (worker stopping: what they hold fails) */
void fwd_wake(struct worker *w);
void fwd_close(struct worker *w);

/* worker.c: registry of all clients, for CLIENT LIST/KILL */
void registry_add(struct conn *cn);
void registry_del(struct conn *cn);

#endif
