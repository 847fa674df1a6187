/*
 * bus.h -- the cluster bus: small request/response messages between nodes.
 *
 * A frame is: u32 length of what follows, u8 type, u32 request id, payload
 * (all little-endian). A request goes out on its own short-lived TCP
 * connection (bus_call: connect, send, read one reply frame, close): the
 * control messages it carries (status, join, proposals, invitations) are a
 * few a second at most, so a pool would buy nothing yet. The server side
 * (bus_listen) hands each request frame to a handler, which answers at once
 * or later (a join answers once Raft committed it) through a held
 * connection. Everything runs on the control thread's loop.
 */
#ifndef CRAB_CLUSTER_BUS_H
#define CRAB_CLUSTER_BUS_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#define BUS_MAX_FRAME (16u << 20)

struct bus;
struct bus_conn;

/* A request arrived. p/n are valid during the call only; to answer later,
 * bus_conn_hold(from) first. */
typedef void bus_handler_fn(void *ctx, struct bus_conn *from, uint32_t reqid, uint8_t type,
                            const uint8_t *p, size_t n);

/* Listen on ip:port. NULL with err filled on failure. */
struct bus *bus_listen(uv_loop_t *loop, const char *ip, int port, bus_handler_fn *fn, void *ctx,
                       char *err, size_t errlen);

/* Answer a request (the connection may have gone: then nothing is sent). */
void bus_reply(struct bus_conn *c, uint32_t reqid, uint8_t type, const void *p, size_t n);
void bus_conn_hold(struct bus_conn *c);
void bus_conn_release(struct bus_conn *c);

/* State a handler keeps with a connection (a copy being received); freed
 * with free_fn when the connection goes. */
void *bus_conn_data(const struct bus_conn *c);
void bus_conn_set_data(struct bus_conn *c, void *data, void (*free_fn)(void *));

/* The reply to a bus_call: status 0 with the frame, or a negative libuv
 * error (UV_ETIMEDOUT, UV_ECONNREFUSED, UV_EOF, ...) and no frame. */
typedef void bus_resp_fn(void *arg, int status, uint8_t type, const uint8_t *p, size_t n);

/* Send one request to "ip:port" and call fn with its reply or failure
 * (always exactly once, from the loop). 0, or a negative libuv error when
 * the address is not an IPv4 literal (fn is not called then). */
int bus_call(uv_loop_t *loop, const char *addr, uint8_t type, const void *p, size_t n,
             unsigned timeout_ms, bus_resp_fn *fn, void *arg);

/*
 * A long-lived connection for a stream of frames (a vbucket copy): frames go
 * out in order; frames that come back are handed to fn; on an error or
 * close, fn gets status < 0 once and the stream must then be closed by
 * bus_stream_close (which never calls fn). Send as much as wanted:
 * bus_stream_queued says how many bytes are not yet taken by the socket,
 * for flow control.
 */
struct bus_stream;
struct bus_stream *bus_stream_open(uv_loop_t *loop, const char *addr, bus_resp_fn *fn, void *arg);
void bus_stream_send(struct bus_stream *s, uint8_t type, const void *p, size_t n);
size_t bus_stream_queued(const struct bus_stream *s);
void bus_stream_close(struct bus_stream *s);

/* Stop listening and drop the server's connections (calls in flight still
 * complete, with an error when their loop closes them). */
void bus_close(struct bus *b);

/* Frames sent and received by this process's bus, so far (any thread). */
void bus_counts(uint64_t *sent, uint64_t *received);

/* "ip:port" -> sockaddr (IPv4 literal only). 0 or a negative libuv error. */
int bus_parse_addr(const char *addr, struct sockaddr_in *out);

#endif
