/*
 * auth.c -- authentication: the AUTH command and the token check that AUTH,
 * HELLO AUTH and the native protocol's AUTH share (auth.h).
 */
#include "cmd/auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdatomic.h>
#include <string.h>

#include "cmd/cmd.h"
#include "cmd/keys.h"
#include "util/log.h"
#include "util/throttle.h"

/* SHA-256 of n bytes into out[32]. */
static void
token_digest(const char *p, size_t n, unsigned char out[32])
{
    unsigned int len = 32;
    if (EVP_Digest(p, n, out, &len, EVP_sha256(), NULL) != 1) {
        memset(out, 0, 32); /* cannot happen with the default provider */
    }
}

/*
 * Does tok match one of the configured tokens? The guess and every token are
 * hashed (SHA-256) and the digests compared with CRYPTO_memcmp, over all the
 * tokens with no early exit: the time taken depends neither on how much of a
 * guess is right nor on the lengths of the real tokens. Pure; any thread.
 */
static bool
token_matches(const char *tok, size_t len)
{
    unsigned char want[32], have[32];
    token_digest(tok, len, have);
    int ok = 0;
    for (char **t = server.auth_tokens; t && *t; t++) {
        token_digest(*t, strlen(*t), want);
        ok |= CRYPTO_memcmp(want, have, sizeof(want)) == 0;
    }
    return ok != 0;
}

/* A failed authentication: counted (server.auth_failures), and logged with
 * the client's address, at most 10 lines a second (a flood of wrong AUTHs
 * must not flood the log; the next line says how many were skipped). */
void
auth_failed(struct client *c, const char *how)
{
    static struct log_throttle t;
    atomic_fetch_add(&server.auth_failures, 1);
    uint64_t skipped;
    if (log_throttle_allow(&t, 10, &skipped)) {
        log_warn("authentication failed",
                 "\"addr\":\"%s\",\"client_id\":%llu,\"via\":\"%s\",\"failures\":%llu,"
                 "\"suppressed\":%llu",
                 c->addr, (unsigned long long)c->id, how,
                 (unsigned long long)atomic_load(&server.auth_failures),
                 (unsigned long long)skipped);
    }
}

bool
auth_check_token(struct client *c, const char *tok, size_t len)
{
    if (token_matches(tok, len)) {
        c->authed = true;
        return true;
    }
    auth_failed(c, c->native ? "native AUTH" : "AUTH");
    return false;
}

void
cmd_auth(struct client *c, int argc, struct proto_arg *argv)
{
    if (argc > 3) {
        reply_error(&c->r, ERR_SYNTAX);
        return;
    }
    bool tokens = server.auth_tokens && server.auth_tokens[0];
    if (argc == 2 && !tokens) {
        reply_error(&c->r, "ERR AUTH <password> called without any password configured for "
                           "the default user. Are you sure your configuration is correct?");
        return;
    }
    const struct proto_arg *pw = &argv[argc - 1];
    if (argc == 3 && !proto_arg_is(&argv[1], "default")) {
        auth_failed(c, "AUTH user");
        reply_error(&c->r, ERR_WRONGPASS);
        return;
    }
    if (!tokens) {
        c->authed = true;
        reply_ok(&c->r);
        return;
    }
    if (auth_check_token(c, pw->ptr, pw->len)) {
        reply_ok(&c->r);
    } else {
        reply_error(&c->r, ERR_WRONGPASS);
    }
}
