/*
 * auth.h -- authentication (auth.c): the token check shared by AUTH, HELLO
 * AUTH and the native protocol's AUTH, and whether a client must still
 * authenticate (cmd.c, inline in dispatch there).
 *
 * Tokens are server.auth_tokens (none = no authentication). Any worker
 * thread, on its own client.
 */
#ifndef CRAB_CMD_AUTH_H
#define CRAB_CMD_AUTH_H

#include <stdbool.h>
#include <stddef.h>

struct client;

#define ERR_WRONGPASS "WRONGPASS invalid username-password pair or user is disabled."

/* True when tokens are configured and c has not authenticated (cmd.c). */
bool cmd_auth_required(const struct client *c);

/* Does tok match a configured token? On success the client is
 * authenticated, on failure the attempt is counted and logged. */
bool auth_check_token(struct client *c, const char *tok, size_t len);

/* Count and log (throttled) a failed authentication; how names the way it
 * was tried ("AUTH", "HELLO AUTH user", ...). */
void auth_failed(struct client *c, const char *how);

#endif
