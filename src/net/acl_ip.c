/*
 * acl_ip.c -- the allowed_ips list: parsing and matching.
 *
 * Every address is normalised to 16 bytes, IPv4 as the IPv4-mapped IPv6
 * address ::ffff:a.b.c.d, and an IPv4 prefix /p becomes /(96 + p). Matching
 * is then one loop of byte compares for both families, and an IPv4 client
 * seen through a dual-stack socket matches the IPv4 rules with no special
 * case. Lists are short (a handful of networks), so a linear scan at accept
 * time costs less than the accept itself.
 */
#include "net/acl_ip.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/mem.h"

static const uint8_t v4mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

bool
acl_ip_key(const struct sockaddr *sa, uint8_t out[16])
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
        memcpy(out, v4mapped_prefix, 12);
        memcpy(out + 12, &a->sin_addr, 4);
        return true;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
        memcpy(out, &a->sin6_addr, 16);
        return true;
    }
    return false;
}

/* First `bits` bits of a and b equal? */
static bool
prefix_equal(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned whole = bits / 8, rest = bits % 8;
    if (memcmp(a, b, whole) != 0) {
        return false;
    }
    if (rest == 0) {
        return true;
    }
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

static int
parse_one(const char *s, struct acl_ip_rule *r)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *slash = strchr(s, '/');
    size_t hl = slash ? (size_t)(slash - s) : strlen(s);
    if (hl == 0 || hl >= sizeof(host)) {
        return -1;
    }
    memcpy(host, s, hl);
    host[hl] = '\0';
    uint8_t raw[16];
    unsigned maxbits;
    memset(r, 0, sizeof(*r));
    if (inet_pton(AF_INET, host, raw) == 1) {
        r->family = AF_INET;
        memcpy(r->addr, v4mapped_prefix, 12);
        memcpy(r->addr + 12, raw, 4);
        maxbits = 32;
    } else if (inet_pton(AF_INET6, host, raw) == 1) {
        r->family = AF_INET6;
        memcpy(r->addr, raw, 16);
        maxbits = 128;
    } else {
        return -1;
    }
    unsigned bits = maxbits;
    if (slash) {
        const char *p = slash + 1;
        if (*p == '\0' || strlen(p) > 3) {
            return -1;
        }
        bits = 0;
        for (; *p; p++) {
            if (!isdigit((unsigned char)*p)) {
                return -1;
            }
            bits = bits * 10 + (unsigned)(*p - '0');
        }
        if (bits > maxbits) {
            return -1;
        }
    }
    r->prefix = r->family == AF_INET ? 96 + bits : bits;
    /* clear host bits so the rule prints and compares as its network */
    for (unsigned i = r->prefix; i < 128; i++) {
        r->addr[i / 8] &= (uint8_t)~(0x80u >> (i % 8));
    }
    return 0;
}

int
acl_ip_parse(struct acl_ip *acl, char *const *items, size_t n, char *err, size_t errlen)
{
    acl->rules = NULL;
    acl->n = 0;
    if (n == 0) {
        return 0;
    }
    struct acl_ip_rule *rules = xcalloc(n, sizeof(*rules));
    for (size_t i = 0; i < n; i++) {
        if (items[i] == NULL || parse_one(items[i], &rules[i]) != 0) {
            if (err && errlen) {
                snprintf(err, errlen, "allowed_ips: \"%s\" is not an IP address or CIDR",
                         items[i] ? items[i] : "(null)");
            }
            free(rules);
            return -1;
        }
    }
    acl->rules = rules;
    acl->n = n;
    return 0;
}

void
acl_ip_free(struct acl_ip *acl)
{
    free(acl->rules);
    acl->rules = NULL;
    acl->n = 0;
}

bool
acl_ip_allows(const struct acl_ip *acl, const struct sockaddr *sa)
{
    if (acl->n == 0) {
        return true;
    }
    uint8_t key[16];
    if (!acl_ip_key(sa, key)) {
        return false;
    }
    for (size_t i = 0; i < acl->n; i++) {
        if (prefix_equal(key, acl->rules[i].addr, acl->rules[i].prefix)) {
            return true;
        }
    }
    return false;
}
