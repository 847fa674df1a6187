/*
 * tls.h -- TLS for client connections: OpenSSL over memory BIOs.
 *
 * The socket stays libuv's: ciphertext read from it is fed to the
 * connection's TLS state (tls_conn_feed), which returns the plaintext; the
 * plaintext replies go through tls_conn_encrypt, which returns the
 * ciphertext to write. OpenSSL never touches the file descriptor, so the
 * event loop, backpressure and buffers work the same with and without TLS.
 *
 * One server context (certificate, key, CA, verification mode) is shared by
 * every connection; TLS 1.2 and 1.3 only, no renegotiation, no compression.
 * With tls_auth_clients, a client must present a certificate signed by a CA
 * of tls_ca_cert_file or the handshake fails.
 *
 * Thread-safety: tls_setup/tls_teardown on the main thread while no
 * connection exists; a struct tls_conn belongs to one worker thread.
 */
#ifndef CRAB_NET_TLS_H
#define CRAB_NET_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include "util/buf.h"

struct tls_options {
    const char *cert_file;    /* PEM chain, required */
    const char *key_file;     /* PEM private key, required */
    const char *ca_cert_file; /* PEM CAs for client certificates, or NULL/"" */
    bool auth_clients;        /* require a client certificate (needs ca_cert_file) */
};

/* Load certificate and key and build the server context. Returns 0, or -1
 * with the reason (file, OpenSSL's message) in err. */
int tls_setup(const struct tls_options *opt, char *err, size_t errlen);
void tls_teardown(void);

struct tls_conn;

/* A new server-side TLS state (accept mode). NULL if tls_setup was not
 * done or OpenSSL is out of memory. Free with tls_conn_free. */
struct tls_conn *tls_conn_new(void);
void tls_conn_free(struct tls_conn *t);

enum {
    TLS_OK = 0,
    TLS_CLOSED = 1,     /* the peer sent close_notify */
    TLS_ERROR = -1,     /* handshake or record failure: drop the connection */
};

/*
 * Feed n bytes read from the socket. Advances the handshake; once it is
 * done, appends the decrypted bytes to plain. Records OpenSSL wants to send
 * (handshake messages, alerts, tickets) are appended to wire. Returns TLS_OK,
 * TLS_CLOSED or TLS_ERROR (tls_conn_error says why; an alert for the peer
 * may be in wire).
 */
int tls_conn_feed(struct tls_conn *t, const char *data, size_t n, struct buf *plain,
                  struct buf *wire);

/* Encrypt all of plain's unread bytes into wire (consuming them). Before
 * the handshake is done nothing is consumed: the bytes wait. Returns TLS_OK
 * or TLS_ERROR. */
int tls_conn_encrypt(struct tls_conn *t, struct buf *plain, struct buf *wire);

/* Append a close_notify alert to wire (once; later calls do nothing). */
void tls_conn_shutdown(struct tls_conn *t, struct buf *wire);

bool tls_conn_established(const struct tls_conn *t);

/* Why the last TLS_ERROR happened (static text for this connection). */
const char *tls_conn_error(const struct tls_conn *t);

/* Negotiated protocol ("TLSv1.3") or "" before the handshake. */
const char *tls_conn_version(const struct tls_conn *t);

#endif
