/*
 * acl_ip.h -- client address allow-list (security.allowed_ips).
 *
 * Entries are IPv4 or IPv6 addresses, each optionally with a CIDR prefix
 * length ("10.0.0.0/8", "fd00::/8", "127.0.0.1", "::1"). A peer is allowed
 * when any entry covers it; an empty list allows everyone. An IPv4-mapped
 * IPv6 peer (::ffff:a.b.c.d, what a socket bound to "::" reports for IPv4
 * clients) is matched as the IPv4 address a.b.c.d, so IPv4 rules keep
 * working on dual-stack listeners; an IPv6 rule like ::ffff:0:0/96 matches
 * it too.
 *
 * Thread-safety: build once (acl_ip_parse), then acl_ip_allows may be called
 * from any number of threads; the list is never changed while in use.
 */
#ifndef CRAB_NET_ACL_IP_H
#define CRAB_NET_ACL_IP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct acl_ip_rule {
    int family;          /* AF_INET or AF_INET6 */
    uint8_t addr[16];    /* network order; IPv4 in the first 4 bytes */
    unsigned prefix;     /* significant leading bits */
};

struct acl_ip {
    struct acl_ip_rule *rules; /* owned */
    size_t n;
};

/*
 * Parse n textual entries into acl (which is overwritten: call
 * acl_ip_free first if it held rules). Host bits beyond the prefix are
 * ignored ("10.1.2.3/8" means 10.0.0.0/8). Returns 0, or -1 with a message
 * naming the bad entry in err (acl is then left empty).
 */
int acl_ip_parse(struct acl_ip *acl, char *const *items, size_t n, char *err, size_t errlen);

/* Release the rules; acl is left empty (allows everyone). */
void acl_ip_free(struct acl_ip *acl);

/* True when acl is empty or one rule covers the address in sa (AF_INET or
 * AF_INET6; any other family is refused by a non-empty list). */
bool acl_ip_allows(const struct acl_ip *acl, const struct sockaddr *sa);

/*
 * The address of sa as the 16-byte key used by the rate limiter and rules:
 * IPv4 (and IPv4-mapped IPv6) as ::ffff:a.b.c.d, IPv6 as is. Returns false
 * for other families.
 */
bool acl_ip_key(const struct sockaddr *sa, uint8_t out[16]);

#endif
