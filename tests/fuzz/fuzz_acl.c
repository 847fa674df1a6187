/*
 * fuzz_acl.c -- libFuzzer target for the allowed_ips list (src/net/acl_ip.c).
 *
 * Input: the first 17 bytes are a peer (byte 0 even: IPv4 from bytes 1..4,
 * odd: IPv6 from bytes 1..16); the rest, split at '\n', are the entries.
 * Parsing must never crash, and must accept exactly the entries a separate
 * reference (inet_pton plus a decimal prefix in range) accepts. When the list
 * parses, acl_ip_allows must agree with a reference matcher written
 * differently: addresses as two 64-bit halves, masks built by shifting.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/acl_ip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct ref_rule {
    uint64_t hi, lo;
    unsigned bits; /* of 128 */
};

static void
halves(const uint8_t a[16], uint64_t *hi, uint64_t *lo)
{
    *hi = *lo = 0;
    for (int i = 0; i < 8; i++) {
        *hi = (*hi << 8) | a[i];
        *lo = (*lo << 8) | a[8 + i];
    }
}

static uint64_t
mask64(unsigned bits)
{
    return bits == 0 ? 0 : bits >= 64 ? ~0ULL : ~0ULL << (64 - bits);
}

/* Reference parser: 0 and the rule, or -1. */
static int
ref_parse(const char *s, struct ref_rule *r)
{
    char host[64];
    const char *slash = strchr(s, '/');
    size_t hl = slash ? (size_t)(slash - s) : strlen(s);
    if (hl == 0 || hl >= sizeof(host)) {
        return -1;
    }
    memcpy(host, s, hl);
    host[hl] = '\0';
    uint8_t a[16] = {0};
    unsigned max;
    if (inet_pton(AF_INET, host, a + 12) == 1) {
        a[10] = a[11] = 0xff;
        max = 32;
    } else if (inet_pton(AF_INET6, host, a) == 1) {
        max = 128;
    } else {
        return -1;
    }
    unsigned bits = max;
    if (slash) {
        const char *p = slash + 1;
        size_t n = strlen(p);
        if (n == 0 || n > 3 || strspn(p, "0123456789") != n) {
            return -1;
        }
        bits = (unsigned)atoi(p);
        if (bits > max) {
            return -1;
        }
    }
    r->bits = max == 32 ? 96 + bits : bits;
    halves(a, &r->hi, &r->lo);
    return 0;
}

static int
ref_match(const struct ref_rule *r, const uint8_t key[16])
{
    uint64_t hi, lo;
    halves(key, &hi, &lo);
    unsigned bh = r->bits > 64 ? 64 : r->bits;
    unsigned bl = r->bits > 64 ? r->bits - 64 : 0;
    return ((hi ^ r->hi) & mask64(bh)) == 0 && ((lo ^ r->lo) & mask64(bl)) == 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 17 || size > 4096) {
        return 0;
    }
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    if (data[0] % 2 == 0) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        memcpy(&a->sin_addr, data + 1, 4);
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        memcpy(&a->sin6_addr, data + 1, 16);
    }
    /* entries: the rest, one per line, NUL-terminated copies */
    char *text = malloc(size - 17 + 1);
    memcpy(text, data + 17, size - 17);
    text[size - 17] = '\0';
    char *items[64];
    size_t n = 0;
    for (char *p = text; n < 64;) {
        items[n++] = p;
        char *nl = strchr(p, '\n');
        if (nl == NULL) {
            break;
        }
        *nl = '\0';
        p = nl + 1;
    }
    struct ref_rule ref[64];
    int ref_ok = 1;
    for (size_t i = 0; i < n && ref_ok; i++) {
        ref_ok = ref_parse(items[i], &ref[i]) == 0;
    }
    struct acl_ip acl;
    char err[128];
    int rc = acl_ip_parse(&acl, items, n, err, sizeof(err));
    if ((rc == 0) != ref_ok) {
        abort();
    }
    if (rc == 0) {
        uint8_t key[16];
        if (!acl_ip_key((struct sockaddr *)&ss, key)) {
            abort();
        }
        int want = n == 0;
        for (size_t i = 0; i < n; i++) {
            want |= ref_match(&ref[i], key);
        }
        if (acl_ip_allows(&acl, (struct sockaddr *)&ss) != (want != 0)) {
            abort();
        }
        acl_ip_free(&acl);
    } else if (acl.n != 0 || acl.rules != NULL || strstr(err, "allowed_ips") == NULL) {
        abort();
    }
    free(text);
    return 0;
}
