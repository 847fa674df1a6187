/*
 * tls.c -- OpenSSL server context and per-connection state on memory BIOs.
 *
 * Each connection has an SSL object whose read BIO receives what libuv read
 * from the socket and whose write BIO collects what must be sent. Nothing
 * blocks: OpenSSL reports SSL_ERROR_WANT_READ when a record is incomplete,
 * and the next feed continues it. The write BIO is drained into the
 * caller's buffer after every operation, so handshake messages and alerts
 * go out with the next socket write.
 *
 * OpenSSL 3 keeps its error queue per thread; every entry point clears it
 * first so a stale error from another connection is never reported here.
 */
#include "net/tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/mem.h"

static SSL_CTX *tls_ctx;

struct tls_conn {
    SSL *ssl;
    BIO *rbio; /* ciphertext in (owned by ssl) */
    BIO *wbio; /* ciphertext out (owned by ssl) */
    bool established;
    bool shutdown_sent;
    char err[160];
};

static void
openssl_error(char *out, size_t len, const char *what)
{
    unsigned long e = ERR_get_error();
    char msg[256] = "no OpenSSL error";
    if (e) {
        ERR_error_string_n(e, msg, sizeof(msg));
    }
    snprintf(out, len, "%s: %s", what, msg);
    ERR_clear_error();
}

int
tls_setup(const struct tls_options *opt, char *err, size_t errlen)
{
    ERR_clear_error();
    if (opt->cert_file == NULL || *opt->cert_file == '\0' || opt->key_file == NULL ||
        *opt->key_file == '\0') {
        snprintf(err, errlen, "TLS needs tls_cert_file and tls_key_file");
        return -1;
    }
    bool have_ca = opt->ca_cert_file && *opt->ca_cert_file;
    if (opt->auth_clients && !have_ca) {
        snprintf(err, errlen, "tls_auth_clients needs tls_ca_cert_file");
        return -1;
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        openssl_error(err, errlen, "SSL_CTX_new");
        return -1;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    /* Idle connections keep no 34 KiB record buffers. */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    static const unsigned char sid_ctx[] = "crabcache";
    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
    char what[600];
    if (SSL_CTX_use_certificate_chain_file(ctx, opt->cert_file) != 1) {
        snprintf(what, sizeof(what), "tls_cert_file %s", opt->cert_file);
        openssl_error(err, errlen, what);
        SSL_CTX_free(ctx);
        return -1;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, opt->key_file, SSL_FILETYPE_PEM) != 1) {
        snprintf(what, sizeof(what), "tls_key_file %s", opt->key_file);
        openssl_error(err, errlen, what);
        SSL_CTX_free(ctx);
        return -1;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        openssl_error(err, errlen, "tls_key_file does not match tls_cert_file");
        SSL_CTX_free(ctx);
        return -1;
    }
    if (have_ca) {
        if (SSL_CTX_load_verify_locations(ctx, opt->ca_cert_file, NULL) != 1) {
            snprintf(what, sizeof(what), "tls_ca_cert_file %s", opt->ca_cert_file);
            openssl_error(err, errlen, what);
            SSL_CTX_free(ctx);
            return -1;
        }
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(opt->ca_cert_file);
        if (names) {
            SSL_CTX_set_client_CA_list(ctx, names);
        }
    }
    if (opt->auth_clients) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    }
    if (tls_ctx) {
        SSL_CTX_free(tls_ctx);
    }
    tls_ctx = ctx;
    return 0;
}

void
tls_teardown(void)
{
    if (tls_ctx) {
        SSL_CTX_free(tls_ctx);
        tls_ctx = NULL;
    }
}

struct tls_conn *
tls_conn_new(void)
{
    if (tls_ctx == NULL) {
        return NULL;
    }
    ERR_clear_error();
    struct tls_conn *t = xcalloc(1, sizeof(*t));
    t->ssl = SSL_new(tls_ctx);
    t->rbio = BIO_new(BIO_s_mem());
    t->wbio = BIO_new(BIO_s_mem());
    if (t->ssl == NULL || t->rbio == NULL || t->wbio == NULL) {
        BIO_free(t->rbio);
        BIO_free(t->wbio);
        SSL_free(t->ssl);
        free(t);
        ERR_clear_error();
        return NULL;
    }
    /* an empty memory BIO means "retry later", not end of file */
    BIO_set_mem_eof_return(t->rbio, -1);
    BIO_set_mem_eof_return(t->wbio, -1);
    SSL_set_bio(t->ssl, t->rbio, t->wbio);
    SSL_set_accept_state(t->ssl);
    return t;
}

void
tls_conn_free(struct tls_conn *t)
{
    if (t == NULL) {
        return;
    }
    SSL_free(t->ssl); /* frees both BIOs */
    free(t);
}

static void
drain(struct tls_conn *t, struct buf *wire)
{
    size_t pending;
    while ((pending = BIO_ctrl_pending(t->wbio)) > 0) {
        char *p = buf_reserve(wire, pending);
        int n = BIO_read(t->wbio, p, (int)(pending > INT32_MAX ? INT32_MAX : pending));
        if (n <= 0) {
            break;
        }
        wire->len += (size_t)n;
    }
}

static int
fail(struct tls_conn *t, const char *what, int ssl_err, struct buf *wire)
{
    unsigned long e = ERR_peek_error();
    if (e) {
        char msg[128];
        ERR_error_string_n(e, msg, sizeof(msg));
        snprintf(t->err, sizeof(t->err), "%s: %s", what, msg);
    } else {
        snprintf(t->err, sizeof(t->err), "%s: SSL error %d", what, ssl_err);
    }
    ERR_clear_error();
    drain(t, wire); /* the alert, if OpenSSL produced one */
    return TLS_ERROR;
}

int
tls_conn_feed(struct tls_conn *t, const char *data, size_t n, struct buf *plain,
              struct buf *wire)
{
    ERR_clear_error();
    while (n > 0) {
        int w = BIO_write(t->rbio, data, (int)(n > INT32_MAX ? INT32_MAX : n));
        if (w <= 0) {
            return fail(t, "buffering input", 0, wire);
        }
        data += w;
        n -= (size_t)w;
    }
    if (!t->established) {
        int r = SSL_do_handshake(t->ssl);
        if (r == 1) {
            t->established = true;
        } else {
            int e = SSL_get_error(t->ssl, r);
            if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
                return fail(t, "handshake", e, wire);
            }
            drain(t, wire);
            return TLS_OK;
        }
    }
    for (;;) {
        char *p = buf_reserve(plain, 16 * 1024);
        size_t room = plain->cap - plain->len;
        int r = SSL_read(t->ssl, p, (int)(room > INT32_MAX ? INT32_MAX : room));
        if (r > 0) {
            plain->len += (size_t)r;
            continue;
        }
        int e = SSL_get_error(t->ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            break;
        }
        if (e == SSL_ERROR_ZERO_RETURN) {
            drain(t, wire);
            return TLS_CLOSED;
        }
        return fail(t, "read", e, wire);
    }
    drain(t, wire);
    return TLS_OK;
}

int
tls_conn_encrypt(struct tls_conn *t, struct buf *plain, struct buf *wire)
{
    if (!t->established) {
        return TLS_OK;
    }
    ERR_clear_error();
    while (buf_unread(plain) > 0) {
        size_t n = buf_unread(plain);
        int r = SSL_write(t->ssl, buf_rptr(plain), (int)(n > (1u << 30) ? (1u << 30) : n));
        if (r <= 0) {
            return fail(t, "write", SSL_get_error(t->ssl, r), wire);
        }
        buf_consume(plain, (size_t)r);
        drain(t, wire);
    }
    drain(t, wire);
    return TLS_OK;
}

void
tls_conn_shutdown(struct tls_conn *t, struct buf *wire)
{
    if (t->shutdown_sent || !t->established) {
        return;
    }
    t->shutdown_sent = true;
    ERR_clear_error();
    SSL_shutdown(t->ssl);
    ERR_clear_error();
    drain(t, wire);
}

bool
tls_conn_established(const struct tls_conn *t)
{
    return t->established;
}

const char *
tls_conn_error(const struct tls_conn *t)
{
    return t->err[0] ? t->err : "unknown TLS error";
}

const char *
tls_conn_version(const struct tls_conn *t)
{
    return t->established ? SSL_get_version(t->ssl) : "";
}
