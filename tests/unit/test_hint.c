/*
 * test_hint.c -- the per-thread key hints of store/hint.h: a hint is used
 * only for the very bytes it was computed from (same pointer and length),
 * only while selected, never after hint_clear, never on another thread; and
 * the store's lookups
 * stay right when a buffer that was hinted is rewritten after the clear.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "store/hint.h"
#include "store/store.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Three "requests" in one buffer, as prefetch_pipeline sees them. */
static char buf[] = "GET user:1000 GET {tag}abc GET k";

static void
fill_three(const char **key, size_t *klen)
{
    key[0] = buf + 4, klen[0] = 9;  /* user:1000 */
    key[1] = buf + 18, klen[1] = 8; /* {tag}abc */
    key[2] = buf + 31, klen[2] = 1; /* k */
    hint_fill(key, klen, 3);
}

static void
test_hint_hits_the_filled_keys(void **state)
{
    (void)state;
    const char *key[3];
    size_t klen[3];
    fill_three(key, klen);
    assert_null(hint_find(key[0], klen[0])); /* none selected yet */
    for (int i = 0; i < 3; i++) {
        hint_select((unsigned)i);
        const struct key_hint *h = hint_find(key[i], klen[i]);
        assert_non_null(h);
        assert_ptr_equal(h->key, key[i]);
        assert_int_equal(h->hash, ht_hash(key[i], klen[i]));
        assert_int_equal(h->slot, slot_of(key[i], klen[i]));
        assert_int_equal(hint_hash(key[i], klen[i]), ht_hash(key[i], klen[i]));
        assert_int_equal(hint_slot(key[i], klen[i]), slot_of(key[i], klen[i]));
    }
    /* the slot of the hash tag, not of the whole key */
    hint_select(1);
    assert_int_equal(hint_slot(key[1], klen[1]), slot_of("tag", 3));
    hint_clear();
}

static void
test_hint_same_pointer_other_length_misses(void **state)
{
    (void)state;
    const char *key[3];
    size_t klen[3];
    fill_three(key, klen);
    hint_select(0);
    /* "user" at the pointer of "user:1000": computed, not the hint's */
    assert_null(hint_find(key[0], 4));
    assert_int_equal(hint_hash(key[0], 4), ht_hash("user", 4));
    assert_int_equal(hint_slot(key[0], 4), slot_of("user", 4));
    assert_true(hint_hash(key[0], 4) != ht_hash(key[0], 9));
    /* and longer: "{tag}abc GET" */
    hint_select(1);
    assert_null(hint_find(key[1], 12));
    assert_int_equal(hint_slot(key[1], 12), slot_of("{tag}abc GET", 12));
    /* the same bytes elsewhere are not hinted (and hash the same anyway) */
    char copy[16];
    memcpy(copy, key[0], klen[0]);
    assert_null(hint_find(copy, klen[0]));
    assert_int_equal(hint_hash(copy, klen[0]), ht_hash(key[0], klen[0]));
    /* inside a key, between keys */
    assert_null(hint_find(key[1] + 1, 7));
    assert_null(hint_find(buf, 3));
    /* the exact keys still hit afterwards, each when selected only */
    for (int i = 0; i < 3; i++) {
        hint_select((unsigned)i);
        for (int j = 0; j < 3; j++) {
            assert_true((hint_find(key[j], klen[j]) != NULL) == (i == j));
            assert_int_equal(hint_hash(key[j], klen[j]), ht_hash(key[j], klen[j]));
        }
    }
    hint_clear();
}

static void
test_hint_cleared_then_rewritten(void **state)
{
    (void)state;
    const char *key[3];
    size_t klen[3];
    fill_three(key, klen);
    hint_select(0);
    hint_clear();
    for (int i = 0; i < 3; i++) {
        hint_select((unsigned)i);
        assert_null(hint_find(key[i], klen[i]));
    }
    /* the buffer is refilled in place with other keys of the same lengths:
     * the values must be those of the new bytes */
    char saved[sizeof buf];
    memcpy(saved, buf, sizeof buf);
    memcpy(buf + 4, "order:777", 9);
    assert_int_equal(hint_hash(key[0], 9), ht_hash("order:777", 9));
    assert_int_equal(hint_slot(key[0], 9), slot_of("order:777", 9));
    assert_true(hint_hash(key[0], 9) != ht_hash("user:1000", 9));
    memcpy(buf, saved, sizeof buf);
}

/* Selecting past the filled keys, or filling again, selects none. */
static void
test_hint_select_bounds(void **state)
{
    (void)state;
    const char *key[3];
    size_t klen[3];
    fill_three(key, klen);
    hint_select(2);
    assert_non_null(hint_find(key[2], klen[2]));
    assert_non_null(hint_find(key[2], klen[2])); /* shard, then hash */
    hint_select(3);
    assert_null(hint_find(key[2], klen[2]));
    hint_select(1);
    fill_three(key, klen);
    assert_null(hint_find(key[1], klen[1]));
    hint_clear();
}

static void
test_hint_fill_caps_at_max(void **state)
{
    (void)state;
    enum { N = HINT_MAX + 8 };
    static char keys[N][16];
    const char *key[N];
    size_t klen[N];
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof keys[i], "k%d", i);
        key[i] = keys[i];
        klen[i] = strlen(keys[i]);
    }
    hint_fill(key, klen, N);
    assert_int_equal(hint_tl.n, HINT_MAX);
    hint_select(HINT_MAX - 1);
    assert_non_null(hint_find(key[HINT_MAX - 1], klen[HINT_MAX - 1]));
    volatile unsigned past = HINT_MAX; /* opaque: no bounds warning at -O2 */
    hint_select(past);
    assert_null(hint_find(key[HINT_MAX], klen[HINT_MAX]));
    assert_int_equal(hint_hash(key[N - 1], klen[N - 1]), ht_hash(key[N - 1], klen[N - 1]));
    hint_clear();
}

static void *
other_thread(void *arg)
{
    const char **key = arg;
    hint_select(0);
    return (void *)(uintptr_t)(hint_find(key[0], 9) != NULL || hint_tl.n != 0);
}

static void
test_hint_other_thread_sees_none(void **state)
{
    (void)state;
    const char *key[3];
    size_t klen[3];
    fill_three(key, klen);
    hint_select(0);
    pthread_t t;
    void *seen = NULL;
    assert_int_equal(pthread_create(&t, NULL, other_thread, key), 0);
    assert_int_equal(pthread_join(t, &seen), 0);
    assert_null(seen);
    assert_non_null(hint_find(key[0], klen[0]));
    hint_clear();
}

/*
 * The store's entry points with hints, as batches run: a batch SETs the
 * hinted keys and clears; the buffer is rewritten in place with other keys
 * and a second batch (one without hints, as when prefetch_pipeline finds a
 * single request) SETs those. Its lookups of the new bytes (same pointers,
 * same lengths) must use their own shard and hash: a stale hint would put
 * the keys in the wrong shard or bucket and the finds below would miss (or,
 * in a debug build, hint_verify would abort).
 */
static void
test_hint_store_batch_then_rewrite(void **state)
{
    (void)state;
    struct store *st = store_create(8, 0, STORE_NOEVICTION);
    char in[] = "aaaa:1 bbbb:2 cccc:3 dddd:4";
    const char *key[4];
    size_t klen[4];
    for (int i = 0; i < 4; i++) {
        key[i] = in + 7 * i;
        klen[i] = 6;
    }
    for (int round = 0; round < 2; round++) {
        if (round == 0) {
            hint_fill(key, klen, 4);
        }
        for (int i = 0; i < 4; i++) {
            hint_select((unsigned)i);
            unsigned s = store_shard_of(st, key[i], klen[i]);
            assert_int_equal(s, slot_of(key[i], klen[i]) & st->mask);
            struct shard *sh = shard_lock(st, s);
            struct item *it = shard_upsert(sh, key[i], klen[i], 1, 0);
            item_val(it)[0] = (char)('0' + round);
            shard_unlock(sh);
        }
        hint_clear();
        /* the next batch's bytes, at the same places */
        for (int i = 0; i < 4; i++) {
            memcpy(in + 7 * i, round == 0 ? "zzzz" : "yyyy", 4);
        }
    }
    /* "aaaa:1".."dddd:4" hold '0', "zzzz:1".."zzzz:4" hold '1' */
    const char *names[2][4] = {{"aaaa:1", "bbbb:2", "cccc:3", "dddd:4"},
                               {"zzzz:1", "zzzz:2", "zzzz:3", "zzzz:4"}};
    for (int r = 0; r < 2; r++) {
        for (int i = 0; i < 4; i++) {
            char k[8];
            memcpy(k, names[r][i], 6);
            struct shard *sh = shard_lock(st, store_shard_of(st, k, 6));
            struct item *it = shard_find(sh, k, 6, 0);
            assert_non_null(it);
            assert_int_equal(item_val(it)[0], '0' + r);
            shard_unlock(sh);
        }
    }
    assert_int_equal(store_count(st), 8);
    /* delete through hints too */
    memcpy(in, "aaaa:1 bbbb:2", 13);
    key[1] = in + 7;
    hint_fill(key, klen, 2);
    for (int i = 0; i < 2; i++) {
        hint_select((unsigned)i);
        struct shard *sh = shard_lock(st, store_shard_of(st, key[i], klen[i]));
        assert_true(shard_delete(sh, key[i], klen[i], 0));
        shard_unlock(sh);
    }
    hint_clear();
    assert_int_equal(store_count(st), 6);
    store_destroy(&st);
}

#ifndef NDEBUG
/* The debug check: a hint that does not match its bytes aborts. */
static void
test_hint_debug_check_catches_stale(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        const char *key[3];
        size_t klen[3];
        fill_three(key, klen);
        hint_select(0);
        buf[4] = 'U'; /* what must never happen while hinted */
        (void)hint_hash(key[0], klen[0]);
        _exit(0);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
}
#endif

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hint_hits_the_filled_keys),
        cmocka_unit_test(test_hint_same_pointer_other_length_misses),
        cmocka_unit_test(test_hint_cleared_then_rewritten),
        cmocka_unit_test(test_hint_select_bounds),
        cmocka_unit_test(test_hint_fill_caps_at_max),
        cmocka_unit_test(test_hint_other_thread_sees_none),
        cmocka_unit_test(test_hint_store_batch_then_rewrite),
#ifndef NDEBUG
        cmocka_unit_test(test_hint_debug_check_catches_stale),
#endif
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
