/*
 * test_netsec.c -- the network layer's security pieces that need no socket:
 * the allowed_ips matcher (net/acl_ip.c: IPv4, IPv6, CIDR edges, mapped
 * addresses, rejected syntax), the per-address token buckets
 * (net/ratelimit.c: burst, refill, sharing, live reconfiguration, bounded
 * memory, threads) and the log throttle (util/throttle.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <netinet/in.h>
#include <pthread.h>

#include "net/acl_ip.h"
#include "net/ratelimit.h"
#include "util/throttle.h"

/* ---- helpers ---- */

static struct sockaddr_storage
sa_of(const char *ip)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, ip, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons(1234);
    } else {
        assert_int_equal(inet_pton(AF_INET6, ip, &a6->sin6_addr), 1);
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(1234);
    }
    return ss;
}

static bool
allows(const struct acl_ip *acl, const char *ip)
{
    struct sockaddr_storage ss = sa_of(ip);
    return acl_ip_allows(acl, (struct sockaddr *)&ss);
}

static void
build(struct acl_ip *acl, const char *const *items, size_t n)
{
    char err[128];
    int rc = acl_ip_parse(acl, (char *const *)items, n, err, sizeof(err));
    if (rc != 0) {
        fail_msg("parse failed: %s", err);
    }
}

/* ---- allow-list ---- */

static void
test_acl_empty_allows_all(void **state)
{
    (void)state;
    struct acl_ip acl;
    build(&acl, NULL, 0);
    assert_true(allows(&acl, "203.0.113.9"));
    assert_true(allows(&acl, "2001:db8::1"));
    acl_ip_free(&acl);
}

static void
test_acl_ipv4_hosts_and_cidrs(void **state)
{
    (void)state;
    const char *items[] = {"127.0.0.1", "10.0.0.0/8", "192.168.1.128/25", "172.16.5.77/32"};
    struct acl_ip acl;
    build(&acl, items, 4);
    assert_true(allows(&acl, "127.0.0.1"));
    assert_false(allows(&acl, "127.0.0.2"));
    assert_true(allows(&acl, "10.0.0.0"));
    assert_true(allows(&acl, "10.255.255.255"));
    assert_false(allows(&acl, "11.0.0.0"));
    assert_false(allows(&acl, "9.255.255.255"));
    assert_true(allows(&acl, "192.168.1.128"));
    assert_true(allows(&acl, "192.168.1.255"));
    assert_false(allows(&acl, "192.168.1.127"));
    assert_true(allows(&acl, "172.16.5.77"));
    assert_false(allows(&acl, "172.16.5.76"));
    /* IPv4 rules do not match unrelated IPv6 peers */
    assert_false(allows(&acl, "::1"));
    assert_false(allows(&acl, "2001:db8::a00:1"));
    acl_ip_free(&acl);
}

static void
test_acl_ipv4_mapped_peer_matches_ipv4_rules(void **state)
{
    (void)state;
    const char *items[] = {"10.0.0.0/8"};
    struct acl_ip acl;
    build(&acl, items, 1);
    /* what a dual-stack socket reports for an IPv4 client */
    assert_true(allows(&acl, "::ffff:10.1.2.3"));
    assert_false(allows(&acl, "::ffff:11.1.2.3"));
    acl_ip_free(&acl);
}

static void
test_acl_ipv6_hosts_and_cidrs(void **state)
{
    (void)state;
    const char *items[] = {"::1", "2001:db8:abcd::/48", "fe80::/10", "2001:db8:1::5/127"};
    struct acl_ip acl;
    build(&acl, items, 4);
    assert_true(allows(&acl, "::1"));
    assert_false(allows(&acl, "::2"));
    assert_true(allows(&acl, "2001:db8:abcd::"));
    assert_true(allows(&acl, "2001:db8:abcd:ffff:ffff:ffff:ffff:ffff"));
    assert_false(allows(&acl, "2001:db8:abce::1"));
    assert_true(allows(&acl, "fe80::1"));
    assert_true(allows(&acl, "febf:ffff::1"));
    assert_false(allows(&acl, "fec0::1"));
    assert_true(allows(&acl, "2001:db8:1::4"));
    assert_true(allows(&acl, "2001:db8:1::5"));
    assert_false(allows(&acl, "2001:db8:1::6"));
    assert_false(allows(&acl, "127.0.0.1"));
    acl_ip_free(&acl);
}

static void
test_acl_zero_prefixes_and_host_bits(void **state)
{
    (void)state;
    /* 0.0.0.0/0: every IPv4 client, no IPv6 one; host bits are ignored */
    const char *v4all[] = {"1.2.3.4/0"};
    struct acl_ip acl;
    build(&acl, v4all, 1);
    assert_true(allows(&acl, "8.8.8.8"));
    assert_true(allows(&acl, "::ffff:8.8.8.8"));
    assert_false(allows(&acl, "2001:db8::1"));
    acl_ip_free(&acl);
    const char *v6all[] = {"::/0"};
    build(&acl, v6all, 1);
    assert_true(allows(&acl, "2001:db8::1"));
    assert_true(allows(&acl, "8.8.8.8")); /* seen as ::ffff:8.8.8.8 */
    acl_ip_free(&acl);
    const char *hostbits[] = {"10.1.2.3/8"};
    build(&acl, hostbits, 1);
    assert_true(allows(&acl, "10.200.0.1"));
    acl_ip_free(&acl);
}

static void
test_acl_rejects_bad_entries(void **state)
{
    (void)state;
    const char *bad[] = {"", "10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/8x", "300.1.1.1",
                         "localhost", "10.0.0.0/-1", "1.2.3", "::1/1000", "/8", "fe80::1%eth0"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct acl_ip acl;
        char err[128] = "";
        const char *one[] = {"127.0.0.1", bad[i]};
        assert_int_equal(acl_ip_parse(&acl, (char *const *)one, 2, err, sizeof(err)), -1);
        assert_non_null(strstr(err, "allowed_ips"));
        assert_int_equal(acl.n, 0);
        assert_null(acl.rules);
    }
}

static void
test_acl_other_family_refused(void **state)
{
    (void)state;
    const char *items[] = {"::/0"};
    struct acl_ip acl;
    build(&acl, items, 1);
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    ss.ss_family = AF_UNIX;
    assert_false(acl_ip_allows(&acl, (struct sockaddr *)&ss));
    acl_ip_free(&acl);
}

/* ---- rate limiter ---- */

static void
key_of(const char *ip, uint8_t key[16])
{
    struct sockaddr_storage ss = sa_of(ip);
    assert_true(acl_ip_key((struct sockaddr *)&ss, key));
}

static void
test_rl_burst_then_refill(void **state)
{
    (void)state;
    ratelimit_configure(true, 10, 5); /* 10/s, bucket of 5 */
    uint8_t k[16];
    key_of("192.0.2.1", k);
    struct ratelimit_entry *e = ratelimit_acquire(k);
    int64_t t = 1000000000;
    for (int i = 0; i < 5; i++) {
        assert_true(ratelimit_take(e, t));
    }
    assert_false(ratelimit_take(e, t));
    assert_false(ratelimit_take(e, t + 50000));  /* half a token after 50 ms */
    assert_true(ratelimit_take(e, t + 100000));  /* one token after 100 ms */
    assert_false(ratelimit_take(e, t + 100000));
    /* a long pause refills only up to the burst */
    int ok = 0;
    for (int i = 0; i < 20; i++) {
        ok += ratelimit_take(e, t + 60 * 1000000LL);
    }
    assert_int_equal(ok, 5);
    ratelimit_release(e);
    ratelimit_clear();
    assert_int_equal(ratelimit_entries(), 0);
}

static void
test_rl_shared_per_address_not_per_port(void **state)
{
    (void)state;
    ratelimit_configure(true, 1, 3);
    uint8_t a[16], a2[16], b[16];
    key_of("198.51.100.7", a);
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons(9999); /* another connection, another port */
    inet_pton(AF_INET, "198.51.100.7", &sin.sin_addr);
    assert_true(acl_ip_key((struct sockaddr *)&sin, a2));
    assert_memory_equal(a, a2, 16);
    key_of("198.51.100.8", b);
    struct ratelimit_entry *e1 = ratelimit_acquire(a);
    struct ratelimit_entry *e2 = ratelimit_acquire(a2);
    struct ratelimit_entry *other = ratelimit_acquire(b);
    assert_ptr_equal(e1, e2);
    assert_ptr_not_equal(e1, other);
    int64_t t = 5000000;
    assert_true(ratelimit_take(e1, t));
    assert_true(ratelimit_take(e2, t));
    assert_true(ratelimit_take(e1, t));
    assert_false(ratelimit_take(e2, t)); /* the address's 3 are spent */
    assert_true(ratelimit_take(other, t));
    ratelimit_release(e1);
    ratelimit_release(e2);
    ratelimit_release(other);
    ratelimit_clear();
}

static void
test_rl_reconnect_keeps_state_until_full(void **state)
{
    (void)state;
    ratelimit_configure(true, 2, 2);
    uint8_t k[16];
    key_of("203.0.113.50", k);
    struct ratelimit_entry *e = ratelimit_acquire(k);
    int64_t t = 7000000;
    assert_true(ratelimit_take(e, t));
    assert_true(ratelimit_take(e, t));
    assert_false(ratelimit_take(e, t));
    ratelimit_release(e);
    /* still refilling: a sweep keeps it, and a new connection finds it empty */
    assert_int_equal(ratelimit_sweep(0, 1, t + 100000), 0);
    assert_int_equal(ratelimit_entries(), 1);
    e = ratelimit_acquire(k);
    assert_false(ratelimit_take(e, t + 100000));
    ratelimit_release(e);
    /* full again after 1 s: the sweep drops it, nothing is lost */
    assert_int_equal(ratelimit_sweep(0, 1, t + 2000000), 1);
    assert_int_equal(ratelimit_entries(), 0);
}

static void
test_rl_referenced_entries_survive_sweep(void **state)
{
    (void)state;
    ratelimit_configure(true, 1000, 10);
    uint8_t k[16];
    key_of("2001:db8::77", k);
    struct ratelimit_entry *e = ratelimit_acquire(k);
    assert_int_equal(ratelimit_sweep(0, 1, 999999999999LL), 0);
    ratelimit_clear();
    assert_int_equal(ratelimit_entries(), 1);
    assert_true(ratelimit_take(e, 1));
    ratelimit_release(e);
    ratelimit_clear();
    assert_int_equal(ratelimit_entries(), 0);
}

static void
test_rl_live_reconfigure_clamps(void **state)
{
    (void)state;
    ratelimit_configure(true, 1, 100);
    uint8_t k[16];
    key_of("192.0.2.99", k);
    struct ratelimit_entry *e = ratelimit_acquire(k);
    int64_t t = 1000000;
    assert_true(ratelimit_take(e, t));
    ratelimit_configure(true, 1, 2); /* burst lowered: 99 tokens become 2 */
    assert_true(ratelimit_take(e, t));
    assert_true(ratelimit_take(e, t));
    assert_false(ratelimit_take(e, t));
    ratelimit_configure(false, 1, 2);
    assert_false(ratelimit_enabled());
    ratelimit_release(e);
    ratelimit_clear();
}

static void
test_rl_memory_bounded(void **state)
{
    (void)state;
    /* a flood of one-shot addresses (an IPv6 /64 has plenty): unreferenced
     * entries stay under the cap even when their buckets are not full */
    ratelimit_configure(true, 0.001, 5);
    for (uint32_t i = 0; i < 3 * RATELIMIT_MAX_IDLE; i++) {
        uint8_t k[16] = {0x20, 0x01, 0x0d, 0xb8};
        memcpy(k + 12, &i, 4);
        struct ratelimit_entry *e = ratelimit_acquire(k);
        assert_true(ratelimit_take(e, 1000000));
        ratelimit_release(e);
    }
    assert_true(ratelimit_entries() <= RATELIMIT_MAX_IDLE + RATELIMIT_SHARDS);
    assert_true(ratelimit_entries() >= RATELIMIT_MAX_IDLE / 2);
    ratelimit_clear();
    assert_int_equal(ratelimit_entries(), 0);
}

struct taker {
    struct ratelimit_entry *e;
    int allowed;
};

static void *
take_many(void *arg)
{
    struct taker *t = arg;
    for (int i = 0; i < 10000; i++) {
        t->allowed += ratelimit_take(t->e, 42000000);
    }
    return NULL;
}

static void
test_rl_threads_share_one_bucket(void **state)
{
    (void)state;
    ratelimit_configure(true, 1, 1000);
    uint8_t k[16];
    key_of("192.0.2.200", k);
    struct taker tk[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        tk[i].e = ratelimit_acquire(k);
        tk[i].allowed = 0;
    }
    for (int i = 0; i < 4; i++) {
        pthread_create(&th[i], NULL, take_many, &tk[i]);
    }
    int total = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        total += tk[i].allowed;
        ratelimit_release(tk[i].e);
    }
    assert_int_equal(total, 1000); /* exactly the burst, no token lost or doubled */
    ratelimit_clear();
}

/* ---- log throttle ---- */

static void
test_throttle_counts_suppressed(void **state)
{
    (void)state;
    struct log_throttle t;
    memset(&t, 0, sizeof(t));
    uint64_t skipped = 99;
    int allowed = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t s;
        if (log_throttle_allow(&t, 10, &s)) {
            allowed++;
            skipped = s;
        }
    }
    /* all in (almost certainly) one second: 10 lines, none skipped before them */
    assert_true(allowed >= 10 && allowed <= 20);
    assert_int_equal(skipped, 0);
    assert_true(atomic_load(&t.suppressed) >= 980);
    /* next second: the first line reports the skipped ones */
    atomic_store(&t.sec, 0);
    uint64_t s = 0;
    assert_true(log_throttle_allow(&t, 10, &s));
    assert_true(s >= 980);
    assert_int_equal(atomic_load(&t.suppressed), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_acl_empty_allows_all),
        cmocka_unit_test(test_acl_ipv4_hosts_and_cidrs),
        cmocka_unit_test(test_acl_ipv4_mapped_peer_matches_ipv4_rules),
        cmocka_unit_test(test_acl_ipv6_hosts_and_cidrs),
        cmocka_unit_test(test_acl_zero_prefixes_and_host_bits),
        cmocka_unit_test(test_acl_rejects_bad_entries),
        cmocka_unit_test(test_acl_other_family_refused),
        cmocka_unit_test(test_rl_burst_then_refill),
        cmocka_unit_test(test_rl_shared_per_address_not_per_port),
        cmocka_unit_test(test_rl_reconnect_keeps_state_until_full),
        cmocka_unit_test(test_rl_referenced_entries_survive_sweep),
        cmocka_unit_test(test_rl_live_reconfigure_clamps),
        cmocka_unit_test(test_rl_memory_bounded),
        cmocka_unit_test(test_rl_threads_share_one_bucket),
        cmocka_unit_test(test_throttle_counts_suppressed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
