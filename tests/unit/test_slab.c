/*
 * test_slab.c -- the slab allocator: class sizes (small and medium, the
 * span table), a randomized model test against a shadow record of live
 * chunks, page and span reuse, RSS going down after frees (slab_resident
 * and /proc/self/statm), reset, exhaustion of a tiny region, several
 * 16 GiB regions at once, and microbenchmarks (printed, not asserted).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "store/slab.h"
#include "util/clock.h"

/* xorshift64*: deterministic, seedable. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t
rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}

static size_t
rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, res = 0;
    assert_non_null(f);
    assert_int_equal(fscanf(f, "%lu %lu", &size, &res), 2);
    fclose(f);
    return res * (size_t)sysconf(_SC_PAGESIZE);
}

/* Fill / check a chunk with bytes derived from its reference and a tag. */
static void
fill(struct slab *s, uint32_t ref, size_t size, uint32_t tag)
{
    unsigned char *p = slab_ptr(s, ref);
    for (size_t i = 0; i < size; i++) {
        p[i] = (unsigned char)(ref * 31u + tag * 7u + i);
    }
}

static int
intact(const struct slab *s, uint32_t ref, size_t size, uint32_t tag)
{
    const unsigned char *p = slab_ptr(s, ref);
    for (size_t i = 0; i < size; i++) {
        if (p[i] != (unsigned char)(ref * 31u + tag * 7u + i)) {
            return 0;
        }
    }
    return 1;
}

/* ---- class sizes ---- */

static void
test_class_sizes(void **state)
{
    (void)state;
    assert_int_equal(SLAB_CLASSES, 320);
    assert_int_equal(SLAB_MAX_CHUNK, 16384);
    assert_int_equal(slab_class_size(1), 4);
    assert_int_equal(slab_class_size(4), 4);
    assert_int_equal(slab_class_size(5), 8);
    assert_int_equal(slab_class_size(29), 32);
    assert_int_equal(slab_class_size(33), 36);
    assert_int_equal(slab_class_size(1021), 1024);
    assert_int_equal(slab_class_size(1024), 1024);
    assert_int_equal(slab_class_size(1025), 1088);
    assert_int_equal(slab_class_size(1088), 1088);
    assert_int_equal(slab_class_size(1089), 1152);
    assert_int_equal(slab_class_size(2048), 2048);
    assert_int_equal(slab_class_size(2049), 2176);
    assert_int_equal(slab_class_size(4097), 4352);
    assert_int_equal(slab_class_size(8193), 8704);
    assert_int_equal(slab_class_size(15361), 15872);
    assert_int_equal(slab_class_size(15873), 16384);
    assert_int_equal(slab_class_size(16384), 16384);
    assert_int_equal(SLAB_REGION_MAX, (size_t)16 << 30);

    /* Every size: a class at least as big, 4-byte steps up to 1024, then
     * at most 6.25% above; classes never shrink; 320 of them. */
    size_t classes = 0, prev = 0;
    for (size_t size = 1; size <= SLAB_MAX_CHUNK; size++) {
        size_t c = slab_class_size(size);
        assert_true(c >= size);
        assert_int_equal(c % SLAB_UNIT, 0);
        assert_true(c >= prev);
        if (size <= 1024) {
            assert_true(c - size < SLAB_UNIT);
        } else {
            assert_true((c - size) * 16 <= size);
        }
        if (c != prev) {
            classes++;
            /* the span table: small classes take one page; medium spans
             * take at most 16, hold 4 chunks or more, waste under 3%
             * (4.2% at most for the six classes that no span of 16
             * pages or fewer fits better: slab.c) */
            size_t pages = slab_span_pages(size);
            assert_int_equal(slab_span_pages(c), pages);
            size_t span = pages * SLAB_PAGE, chunks = span / c;
            if (c <= 1024) {
                assert_int_equal(pages, 1);
            } else {
                assert_true(pages >= 1 && pages <= 16);
                assert_true(chunks >= 4);
                size_t tail = span - chunks * c;
                assert_true(tail * 100 <= 3 * span ||
                            (c >= 3968 && tail * 1000 <= 42 * span));
                print_message("class %5zu: %2zu pages, %2zu chunks, tail %4zu B (%.2f%%)\n",
                              c, pages, chunks, span - chunks * c,
                              100.0 * (double)(span - chunks * c) / (double)span);
            }
            prev = c;
        }
    }
    assert_int_equal(classes, SLAB_CLASSES);
    assert_int_equal(slab_span_pages(0), 0);
    assert_int_equal(slab_span_pages(SLAB_MAX_CHUNK + 1), 0);

    struct slab s;
    assert_int_equal(slab_init(&s, 0), 0);
    /* Every size: chunk_bytes grows by the class size, refs are aligned,
     * non-zero; small chunks lie inside one page. */
    int straddle = 0;
    for (size_t size = 1; size <= SLAB_MAX_CHUNK; size++) {
        size_t before = slab_chunk_bytes(&s);
        uint32_t r = slab_alloc(&s, size);
        assert_true(r != 0);
        assert_int_equal(slab_chunk_bytes(&s) - before, slab_class_size(size));
        assert_int_equal((uintptr_t)slab_ptr(&s, r) % SLAB_UNIT, 0);
        assert_int_equal(slab_ref(&s, slab_ptr(&s, r)), r);
        size_t off = (size_t)r * SLAB_UNIT % SLAB_PAGE;
        if (size <= 1024) {
            assert_true(off + slab_class_size(size) <= SLAB_PAGE);
        } else if (off + slab_class_size(size) > SLAB_PAGE) {
            straddle++;
        }
        memset(slab_ptr(&s, r), 0xAB, size);
    }
    assert_true(straddle > 0); /* medium chunks cross pages */
    /* Out-of-range requests are refused, not served. */
    assert_int_equal(slab_alloc(&s, 0), 0);
    assert_int_equal(slab_alloc(&s, SLAB_MAX_CHUNK + 1), 0);
    slab_deinit(&s);
}

/* Chunks that start in every page of a span, freed in any order: each
 * finds its span, and the span goes back empty. */
static void
test_span_any_ref(void **state)
{
    (void)state;
    static const size_t sizes[] = {1100, 1400, 1900, 3800, 4500, 6600, 13000, 16384};
    struct slab s;
    assert_int_equal(slab_init(&s, 0), 0);
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        size_t size = sizes[k], c = slab_class_size(size);
        size_t per_span = slab_span_pages(size) * SLAB_PAGE / c;
        size_t n = per_span * 3;
        uint32_t refs[64 * 3];
        assert_true(n <= 64 * 3);
        for (size_t i = 0; i < n; i++) {
            refs[i] = slab_alloc(&s, size);
            assert_true(refs[i] != 0);
            fill(&s, refs[i], size, (uint32_t)i);
        }
        assert_int_equal(s.pages_used, 3 * slab_span_pages(size));
        /* free the middle span's chunks from last to first, then the rest
         * odd ones first */
        for (size_t i = 2 * per_span; i-- > per_span;) {
            assert_true(intact(&s, refs[i], size, (uint32_t)i));
            slab_free(&s, refs[i], size);
        }
        assert_int_equal(s.pages_used, 2 * slab_span_pages(size));
        for (size_t i = 0; i < n; i++) {
            if ((i < per_span || i >= 2 * per_span) && i % 2 == 1) {
                slab_free(&s, refs[i], size);
            }
        }
        for (size_t i = 0; i < n; i++) {
            if ((i < per_span || i >= 2 * per_span) && i % 2 == 0) {
                assert_true(intact(&s, refs[i], size, (uint32_t)i));
                slab_free(&s, refs[i], size);
            }
        }
        assert_int_equal(slab_chunk_bytes(&s), 0);
        assert_int_equal(s.pages_used, 0);
    }
    slab_deinit(&s);
}

/* ---- randomized model test ---- */

struct live {
    uint32_t ref;
    uint16_t size;
    uint32_t tag;
};

static int
cmp_ref(const void *a, const void *b)
{
    const struct live *x = a, *y = b;
    return x->ref < y->ref ? -1 : x->ref > y->ref;
}

static void
check_all(struct slab *s, struct live *lv, size_t n, size_t model_bytes)
{
    assert_int_equal(slab_chunk_bytes(s), model_bytes);
    assert_true(slab_resident(s) >= model_bytes);
    struct live *sorted = malloc(n * sizeof(*sorted) + 1);
    assert_non_null(sorted);
    memcpy(sorted, lv, n * sizeof(*sorted));
    qsort(sorted, n, sizeof(*sorted), cmp_ref);
    for (size_t i = 0; i < n; i++) {
        assert_true(intact(s, sorted[i].ref, sorted[i].size, sorted[i].tag));
        if (i > 0) {
            /* distinct and not overlapping: previous chunk ends before */
            size_t prev_end = (size_t)sorted[i - 1].ref * SLAB_UNIT +
                              slab_class_size(sorted[i - 1].size);
            assert_true(prev_end <= (size_t)sorted[i].ref * SLAB_UNIT);
        }
    }
    free(sorted);
}

static void
test_model_random(void **state)
{
    (void)state;
    enum { CAP = 4000, STEPS = 200000 };
    struct live *lv = calloc(CAP, sizeof(*lv));
    assert_non_null(lv);
    size_t n = 0, model_bytes = 0;
    struct slab s;
    assert_int_equal(slab_init(&s, 0), 0);
    rng_state = 12345;
    for (uint32_t step = 1; step <= STEPS; step++) {
        /* Phases: grow to CAP, shrink to almost nothing, repeat. */
        int growing = (step / 20000) % 2 == 0;
        int do_alloc = n == 0 || (n < CAP && (rng() % 100) < (growing ? 65u : 35u));
        if (do_alloc) {
            size_t size;
            uint64_t k = rng() % 20;
            if (k < 11) {
                size = 1 + rng() % 64; /* typical small items */
            } else if (k < 16) {
                size = 1 + rng() % 256;
            } else if (k < 18) {
                size = 1 + rng() % 1024;
            } else if (k < 19) {
                size = 1025 + rng() % 3072; /* medium */
            } else {
                size = 1 + rng() % SLAB_MAX_CHUNK;
            }
            uint32_t r = slab_alloc(&s, size);
            assert_true(r != 0);
            assert_int_equal((uintptr_t)slab_ptr(&s, r) % SLAB_UNIT, 0);
            lv[n] = (struct live){r, (uint16_t)size, step};
            fill(&s, r, size, step);
            n++;
            model_bytes += slab_class_size(size);
        } else {
            size_t i = rng() % n;
            assert_true(intact(&s, lv[i].ref, lv[i].size, lv[i].tag));
            slab_free(&s, lv[i].ref, lv[i].size);
            model_bytes -= slab_class_size(lv[i].size);
            lv[i] = lv[--n];
        }
        assert_int_equal(slab_chunk_bytes(&s), model_bytes);
        /* A few random live chunks every step, all of them regularly. */
        for (int k = 0; k < 4 && n > 0; k++) {
            size_t i = rng() % n;
            assert_true(intact(&s, lv[i].ref, lv[i].size, lv[i].tag));
        }
        if (step % 1000 == 0) {
            check_all(&s, lv, n, model_bytes);
        }
    }
    check_all(&s, lv, n, model_bytes);
    while (n > 0) {
        n--;
        slab_free(&s, lv[n].ref, lv[n].size);
    }
    assert_int_equal(slab_chunk_bytes(&s), 0);
    /* Every page is back in the pool, at most a few of them resident. */
    assert_int_equal(s.pages_used, 0);
    assert_true(slab_resident(&s) <= 48 * SLAB_PAGE);
    slab_deinit(&s);
    free(lv);
}

/* ---- page reuse ---- */

static void
test_pages_reused(void **state)
{
    (void)state;
    enum { N = 100000 };
    uint32_t *refs = malloc(N * sizeof(*refs));
    assert_non_null(refs);
    struct slab s;
    assert_int_equal(slab_init(&s, 0), 0);

    for (int i = 0; i < N; i++) {
        refs[i] = slab_alloc(&s, 40);
        assert_true(refs[i] != 0);
    }
    /* 40-byte chunks: 102 per page. */
    size_t pages = (N + 101) / 102;
    assert_int_equal(slab_resident(&s), pages * SLAB_PAGE);
    size_t frontier = s.frontier;
    for (int i = 0; i < N; i++) {
        slab_free(&s, refs[i], 40);
    }
    assert_int_equal(slab_chunk_bytes(&s), 0);
    assert_true(slab_resident(&s) <= 48 * SLAB_PAGE);

    /* Same again, another class: the emptied pages serve it, the region
     * does not grow. */
    for (int i = 0; i < N; i++) {
        refs[i] = slab_alloc(&s, 37); /* class 40 too */
        assert_true(refs[i] != 0);
    }
    assert_int_equal(s.frontier, frontier);
    assert_int_equal(slab_resident(&s), pages * SLAB_PAGE);
    for (int i = 0; i < N; i++) {
        slab_free(&s, refs[i], 37);
    }
    for (int i = 0; i < N / 2; i++) {
        refs[i] = slab_alloc(&s, 80); /* a different class: 51 per page */
        assert_true(refs[i] != 0);
    }
    assert_int_equal(s.frontier, frontier);
    assert_int_equal(slab_resident(&s), (size_t)((N / 2 + 50) / 51) * SLAB_PAGE);

    /* Holes are refilled before a new page is opened. */
    for (int i = 0; i < N / 2; i += 2) {
        slab_free(&s, refs[i], 80);
    }
    size_t resident = slab_resident(&s);
    for (int i = 0; i < N / 2; i += 2) {
        refs[i] = slab_alloc(&s, 80);
        assert_true(refs[i] != 0);
    }
    assert_int_equal(slab_resident(&s), resident);
    slab_deinit(&s);
    free(refs);
}

/* Emptied spans serve the same class again, shorter spans and small pages
 * are cut from them, and the pieces merge back into long spans, all
 * without moving the frontier. */
static void
test_spans_reused(void **state)
{
    (void)state;
    enum { N = 4000 };
    static uint32_t refs[N];
    struct slab s;
    assert_int_equal(slab_init(&s, 0), 0);
    /* 5000 -> class 5120: 5 pages, 4 chunks a span */
    assert_int_equal(slab_span_pages(5000), 5);
    for (int i = 0; i < N; i++) {
        refs[i] = slab_alloc(&s, 5000);
        assert_true(refs[i] != 0);
    }
    size_t spans = N / 4;
    assert_int_equal(slab_resident(&s), spans * 5 * SLAB_PAGE);
    size_t frontier = s.frontier;
    /* holes are refilled before a span is opened */
    for (int i = 0; i < N; i += 3) {
        slab_free(&s, refs[i], 5000);
    }
    size_t used = s.pages_used;
    for (int i = 0; i < N; i += 3) {
        refs[i] = slab_alloc(&s, 4900);
        assert_true(refs[i] != 0);
    }
    assert_int_equal(s.pages_used, used);
    assert_int_equal(s.frontier, frontier);
    for (int i = 0; i < N; i++) {
        slab_free(&s, refs[i], 5000);
    }
    assert_int_equal(slab_chunk_bytes(&s), 0);
    assert_int_equal(s.pages_used, 0);
    assert_true(slab_resident(&s) <= 48 * SLAB_PAGE);

    /* the same class again */
    for (int i = 0; i < N; i++) {
        refs[i] = slab_alloc(&s, 5100);
        assert_true(refs[i] != 0);
        fill(&s, refs[i], 5100, (uint32_t)i);
    }
    assert_int_equal(s.frontier, frontier);
    assert_int_equal(slab_resident(&s), spans * 5 * SLAB_PAGE);
    for (int i = 0; i < N; i++) {
        assert_true(intact(&s, refs[i], 5100, (uint32_t)i));
        slab_free(&s, refs[i], 5100);
    }
    /* a class of 2-page spans (2048: 2 pages, 4 chunks) cut from them:
     * 5 pages give two spans of 2 and a page left over */
    assert_int_equal(slab_span_pages(2048), 2);
    for (int i = 0; i < N; i++) {
        refs[i] = slab_alloc(&s, 2048);
        assert_true(refs[i] != 0);
        fill(&s, refs[i], 2048, (uint32_t)i);
    }
    assert_int_equal(s.frontier, frontier);
    assert_int_equal(s.pages_used, (size_t)N / 4 * 2);
    for (int i = 0; i < N; i++) {
        assert_true(intact(&s, refs[i], 2048, (uint32_t)i));
        slab_free(&s, refs[i], 2048);
    }
    /* the pieces are merged again once cold: 16-page spans fit in the
     * pages that held 2-page ones (all but the warm reserve) */
    size_t big = (spans * 5 - 48) / 16 * 4;
    uint32_t *bigrefs = malloc(big * sizeof(*bigrefs));
    assert_non_null(bigrefs);
    for (size_t i = 0; i < big; i++) {
        bigrefs[i] = slab_alloc(&s, 16384);
        assert_true(bigrefs[i] != 0);
        fill(&s, bigrefs[i], 16384, (uint32_t)i);
    }
    assert_int_equal(s.frontier, frontier);
    for (size_t i = 0; i < big; i++) {
        assert_true(intact(&s, bigrefs[i], 16384, (uint32_t)i));
        slab_free(&s, bigrefs[i], 16384);
    }
    free(bigrefs);
    /* small classes use every page, the left-over ones included */
    size_t total = (frontier - SLAB_PAGE) / SLAB_PAGE;
    assert_int_equal(total, spans * 5);
    for (size_t i = 0; i < total * 4; i++) {
        uint32_t r = slab_alloc(&s, 1024);
        assert_true(r != 0);
    }
    assert_int_equal(s.frontier, frontier);
    assert_int_equal(s.pages_used, total);
    assert_int_equal(slab_resident(&s), total * SLAB_PAGE);
    slab_deinit(&s);
}

/* ---- RSS follows what is stored ---- */

static void
test_resident_drops(void **state)
{
    (void)state;
    enum { SIZE = 64, N = (64 << 20) / SIZE }; /* 64 MiB of chunks */
    uint32_t *refs = malloc(N * sizeof(*refs));
    assert_non_null(refs);
    struct slab s;
    assert_int_equal(slab_init(&s, 0), 0);
    size_t rss0 = rss_bytes();
    for (uint32_t i = 0; i < N; i++) {
        refs[i] = slab_alloc(&s, SIZE);
        assert_true(refs[i] != 0);
        fill(&s, refs[i], SIZE, i);
    }
    assert_int_equal(slab_chunk_bytes(&s), (size_t)64 << 20);
    assert_int_equal(slab_resident(&s), (size_t)64 << 20);
    size_t rss_full = rss_bytes();
    assert_true(rss_full >= rss0 + ((size_t)60 << 20));

    /* Keep one chunk in every 16 pages (64 chunks a page), free the rest. */
    for (uint32_t i = 0; i < N; i++) {
        if (i % 1024 != 0) {
            slab_free(&s, refs[i], SIZE);
        }
    }
    size_t kept_pages = N / 1024;
    assert_int_equal(slab_chunk_bytes(&s), kept_pages * SIZE);
    assert_true(slab_resident(&s) >= kept_pages * SLAB_PAGE);
    assert_true(slab_resident(&s) <= (kept_pages + 48) * SLAB_PAGE);
    size_t rss_after = rss_bytes();
    print_message("rss: start %zu KiB, 64 MiB stored %zu KiB, 1/16 kept %zu KiB\n",
                  rss0 >> 10, rss_full >> 10, rss_after >> 10);
    assert_true(rss_after + ((size_t)56 << 20) <= rss_full);
    for (uint32_t i = 0; i < N; i += 1024) {
        assert_true(intact(&s, refs[i], SIZE, i));
    }

    /* The released pages come back (zeroed by the kernel) when needed. */
    for (uint32_t i = 0; i < N; i++) {
        if (i % 1024 != 0) {
            refs[i] = slab_alloc(&s, SIZE);
            assert_true(refs[i] != 0);
            fill(&s, refs[i], SIZE, i);
        }
    }
    assert_int_equal(slab_resident(&s), (size_t)64 << 20);
    for (uint32_t i = 0; i < N; i += 997) {
        assert_true(intact(&s, refs[i], SIZE, i));
    }
    slab_deinit(&s);
    free(refs);
}

/* Medium chunks: 64 MiB of them, one chunk kept in every 16 spans. */
static void
resident_drops_medium(size_t size)
{
    size_t c = slab_class_size(size);
    size_t per_span = slab_span_pages(size) * SLAB_PAGE / c;
    size_t n = ((size_t)64 << 20) / c / per_span * per_span;
    size_t span_bytes = slab_span_pages(size) * SLAB_PAGE;
    uint32_t *refs = malloc(n * sizeof(*refs));
    assert_non_null(refs);
    struct slab s;
    assert_int_equal(slab_init(&s, 0), 0);
    size_t rss0 = rss_bytes();
    for (size_t i = 0; i < n; i++) {
        refs[i] = slab_alloc(&s, size);
        assert_true(refs[i] != 0);
        fill(&s, refs[i], size, (uint32_t)i);
    }
    size_t spans = n / per_span;
    assert_int_equal(slab_chunk_bytes(&s), n * c);
    assert_int_equal(slab_resident(&s), spans * span_bytes);
    size_t rss_full = rss_bytes();
    assert_true(rss_full >= rss0 + ((size_t)60 << 20));

    size_t keep = 16 * per_span;
    for (size_t i = 0; i < n; i++) {
        if (i % keep != keep / 2) {
            slab_free(&s, refs[i], size);
        }
    }
    size_t kept = (n + keep - 1 - keep / 2) / keep;
    assert_int_equal(slab_chunk_bytes(&s), kept * c);
    assert_int_equal(s.pages_used * SLAB_PAGE, kept * span_bytes);
    assert_true(slab_resident(&s) <= kept * span_bytes + 48 * SLAB_PAGE);
    size_t rss_after = rss_bytes();
    print_message("rss, class %zu (%zu-page spans): start %zu KiB, 64 MiB stored %zu KiB, "
                  "1/16 spans kept %zu KiB\n", c, slab_span_pages(size),
                  rss0 >> 10, rss_full >> 10, rss_after >> 10);
    assert_true(rss_after + ((size_t)54 << 20) <= rss_full);
    for (size_t i = keep / 2; i < n; i += keep) {
        assert_true(intact(&s, refs[i], size, (uint32_t)i));
    }
    /* and the memory comes back when needed */
    for (size_t i = 0; i < n; i++) {
        if (i % keep != keep / 2) {
            refs[i] = slab_alloc(&s, size);
            assert_true(refs[i] != 0);
            fill(&s, refs[i], size, (uint32_t)i);
        }
    }
    assert_int_equal(slab_resident(&s), spans * span_bytes);
    for (size_t i = 0; i < n; i += 7) {
        assert_true(intact(&s, refs[i], size, (uint32_t)i));
    }
    slab_deinit(&s);
    free(refs);
}

static void
test_resident_drops_medium(void **state)
{
    (void)state;
    resident_drops_medium(3000);  /* 3072: 3 pages, 4 chunks */
    resident_drops_medium(3800);  /* 3840: 15 pages, 16 chunks */
    resident_drops_medium(16384); /* 16 pages, 4 chunks */
}

/* ---- reset ---- */

static void
test_reset(void **state)
{
    (void)state;
    struct slab s;
    assert_int_equal(slab_init(&s, 0), 0);
    size_t rss0 = rss_bytes();
    for (int i = 0; i < 100000; i++) {
        uint32_t r = slab_alloc(&s, 1 + (size_t)(i % 300));
        assert_true(r != 0);
        memset(slab_ptr(&s, r), 0x5A, 1 + (size_t)(i % 300));
    }
    assert_true(slab_resident(&s) > ((size_t)10 << 20));
    size_t rss_full = rss_bytes();
    char *base = s.base;
    slab_reset(&s);
    assert_int_equal(slab_chunk_bytes(&s), 0);
    assert_int_equal(slab_resident(&s), 0);
    assert_ptr_equal(s.base, base); /* the reservation is kept */
    assert_true(rss_bytes() + ((size_t)10 << 20) <= rss_full);
    (void)rss0;

    /* Usable again, from the start of the region, on zeroed memory. */
    uint32_t r = slab_alloc(&s, 100);
    assert_int_equal(r, SLAB_PAGE / SLAB_UNIT); /* first chunk of page 1 */
    unsigned char *p = slab_ptr(&s, r);
    for (int i = 0; i < 100; i++) {
        assert_int_equal(p[i], 0);
    }
    assert_int_equal(slab_chunk_bytes(&s), 100);
    assert_int_equal(slab_resident(&s), SLAB_PAGE);
    slab_free(&s, r, 100);
    slab_reset(&s); /* twice, and on an empty slab, is fine */
    slab_reset(&s);
    assert_int_equal(slab_resident(&s), 0);
    slab_deinit(&s);
}

/* ---- exhaustion ---- */

static void
test_exhaustion(void **state)
{
    (void)state;
    struct slab s;
    /* 4 pages, page 0 never served: 3 pages of four 1024-byte chunks. */
    assert_int_equal(slab_init(&s, 4 * SLAB_PAGE - 100), 0);
    assert_int_equal(s.reserved, 4 * SLAB_PAGE);
    uint32_t refs[12];
    for (int i = 0; i < 12; i++) {
        refs[i] = slab_alloc(&s, 1024);
        assert_true(refs[i] != 0);
        fill(&s, refs[i], 1024, (uint32_t)i);
    }
    assert_int_equal(slab_alloc(&s, 1024), 0);
    assert_int_equal(slab_alloc(&s, 4), 0); /* no page for another class */
    assert_int_equal(slab_chunk_bytes(&s), 12 * 1024);
    /* A freed chunk is served again; an emptied page serves another class. */
    slab_free(&s, refs[5], 1024);
    assert_int_equal(slab_alloc(&s, 1021), refs[5]); /* same class */
    for (int i = 8; i < 12; i++) {
        slab_free(&s, refs[i], 1024);
    }
    uint32_t small = slab_alloc(&s, 4);
    assert_true(small != 0);
    assert_int_equal(small >> 10, refs[8] >> 10); /* same page */
    for (int i = 0; i < 8; i++) {
        if (i != 5) {
            assert_true(intact(&s, refs[i], 1024, (uint32_t)i));
        }
    }
    slab_deinit(&s);

    /* A region of one page has nothing to serve. */
    assert_int_equal(slab_init(&s, 1), 0);
    assert_int_equal(slab_alloc(&s, 8), 0);
    slab_deinit(&s);
}

static void
test_exhaustion_medium(void **state)
{
    (void)state;
    struct slab s;
    /* 17 pages, page 0 never served: one span of 16 pages. */
    assert_int_equal(slab_init(&s, 17 * SLAB_PAGE), 0);
    uint32_t refs[32];
    for (int i = 0; i < 4; i++) {
        refs[i] = slab_alloc(&s, 16384);
        assert_true(refs[i] != 0);
        fill(&s, refs[i], 16384, (uint32_t)i);
    }
    assert_int_equal(slab_alloc(&s, 16384), 0);
    assert_int_equal(slab_alloc(&s, 2048), 0);
    assert_int_equal(slab_alloc(&s, 4), 0);
    for (int i = 0; i < 4; i++) {
        assert_true(intact(&s, refs[i], 16384, (uint32_t)i));
    }
    slab_free(&s, refs[2], 16384);
    assert_int_equal(slab_alloc(&s, 15873), refs[2]);
    for (int i = 0; i < 4; i++) {
        slab_free(&s, refs[i], 16384);
    }
    assert_int_equal(slab_resident(&s), 16 * SLAB_PAGE); /* warm */
    /* The empty span is cut into 2-page spans: 8 of them, 4 chunks each. */
    for (int i = 0; i < 32; i++) {
        refs[i] = slab_alloc(&s, 2000);
        assert_true(refs[i] != 0);
        fill(&s, refs[i], 2000, (uint32_t)i);
    }
    assert_int_equal(slab_alloc(&s, 2000), 0);
    assert_int_equal(slab_alloc(&s, 4), 0);
    for (int i = 0; i < 32; i++) {
        assert_true(intact(&s, refs[i], 2000, (uint32_t)i));
    }
    /* One 2-page span back: two pages for small classes. */
    for (int i = 4; i < 8; i++) {
        slab_free(&s, refs[i], 2000);
    }
    uint32_t a = slab_alloc(&s, 1024), b;
    assert_true(a != 0);
    for (int i = 0; i < 7; i++) {
        assert_true(slab_alloc(&s, 1024) != 0);
    }
    assert_int_equal(slab_alloc(&s, 1024), 0);
    b = slab_alloc(&s, 2000); /* no room left for its span */
    assert_int_equal(b, 0);
    slab_deinit(&s);

    /* 15 pages of room: a 16-page span never fits, shorter ones do. */
    assert_int_equal(slab_init(&s, 16 * SLAB_PAGE), 0);
    assert_int_equal(slab_alloc(&s, 16384), 0);
    assert_true(slab_alloc(&s, 3840) != 0); /* 15 pages */
    assert_int_equal(slab_alloc(&s, 4), 0);
    slab_deinit(&s);
}

/* ---- several regions ---- */

static void
test_several_slabs(void **state)
{
    (void)state;
    enum { NS = 4, N = 20000 };
    struct slab s[NS]; /* 64 GiB of address space at once */
    static uint32_t refs[NS][N];
    for (int k = 0; k < NS; k++) {
        assert_int_equal(slab_init(&s[k], 0), 0);
        assert_int_equal(s[k].reserved, SLAB_REGION_MAX);
    }
    for (int i = 0; i < N; i++) {
        for (int k = 0; k < NS; k++) {
            refs[k][i] = slab_alloc(&s[k], 24);
            assert_true(refs[k][i] != 0);
            fill(&s[k], refs[k][i], 24, (uint32_t)(k * N + i));
        }
    }
    /* Same references in each, different memory, independent contents. */
    assert_int_equal(refs[0][N - 1], refs[1][N - 1]);
    assert_ptr_not_equal(slab_ptr(&s[0], refs[0][0]), slab_ptr(&s[1], refs[1][0]));
    for (int i = 0; i < N; i += 2) {
        slab_free(&s[1], refs[1][i], 24);
    }
    for (int k = 0; k < NS; k++) {
        for (int i = 0; i < N; i++) {
            if (k != 1 || i % 2 == 1) {
                assert_true(intact(&s[k], refs[k][i], 24, (uint32_t)(k * N + i)));
            }
        }
    }
    assert_int_equal(slab_chunk_bytes(&s[0]), (size_t)N * 24);
    assert_int_equal(slab_chunk_bytes(&s[1]), (size_t)N / 2 * 24);
    for (int k = 0; k < NS; k++) {
        slab_deinit(&s[k]);
    }
}

/* ---- microbenchmark (printed, not asserted) ---- */

static void
test_bench(void **state)
{
    (void)state;
    enum { LIVE = 1 << 16, OPS = 10000000 };
    static uint32_t ring[LIVE];
    static uint16_t sizes[LIVE];
    struct slab s;
    assert_int_equal(slab_init(&s, 0), 0);
    rng_state = 42;
    for (int i = 0; i < LIVE; i++) {
        sizes[i] = (uint16_t)(24 + rng() % 48);
        ring[i] = slab_alloc(&s, sizes[i]);
        assert_true(ring[i] != 0);
    }
    /* Steady state: each op frees the oldest live chunk and allocates a new
     * one of another small size (a write replacing an item). */
    double t0 = (double)clock_mono_ns();
    uint32_t x = 1;
    for (int i = 0; i < OPS; i++) {
        unsigned j = (unsigned)i & (LIVE - 1);
        slab_free(&s, ring[j], sizes[j]);
        x = x * 1103515245u + 12345u;
        sizes[j] = (uint16_t)(24 + (x >> 16) % 48);
        ring[j] = slab_alloc(&s, sizes[j]);
        *(uint32_t *)slab_ptr(&s, ring[j]) = x; /* touch it, as a store would */
    }
    double ns = ((double)clock_mono_ns() - t0) / OPS;
    assert_int_equal(slab_chunk_bytes(&s) > 0, 1);
    print_message("bench: %.1f ns per alloc+free pair (%d ops, %d live, resident %zu KiB)\n",
                  ns, OPS, LIVE, slab_resident(&s) >> 10);
    slab_deinit(&s);
}

static void
test_bench_medium(void **state)
{
    (void)state;
    enum { LIVE = 1 << 12, OPS = 4000000 };
    static uint32_t ring[LIVE];
    static uint16_t sizes[LIVE];
    struct slab s;
    assert_int_equal(slab_init(&s, 0), 0);
    rng_state = 43;
    for (int i = 0; i < LIVE; i++) {
        sizes[i] = (uint16_t)(1025 + rng() % (SLAB_MAX_CHUNK - 1024));
        ring[i] = slab_alloc(&s, sizes[i]);
        assert_true(ring[i] != 0);
    }
    double t0 = (double)clock_mono_ns();
    uint32_t x = 1;
    for (int i = 0; i < OPS; i++) {
        unsigned j = (unsigned)i & (LIVE - 1);
        slab_free(&s, ring[j], sizes[j]);
        x = x * 1103515245u + 12345u;
        /* mostly medium, one in 4 small */
        sizes[j] = (uint16_t)((x & 0x300) ? 1025 + (x >> 16) % (SLAB_MAX_CHUNK - 1024)
                                            : 1 + (x >> 16) % 1024);
        ring[j] = slab_alloc(&s, sizes[j]);
        *(uint32_t *)slab_ptr(&s, ring[j]) = x;
    }
    double ns = ((double)clock_mono_ns() - t0) / OPS;
    size_t live = slab_chunk_bytes(&s);
    print_message("bench medium: %.1f ns per alloc+free pair (%d ops, %d live, "
                  "chunks %zu KiB, resident %zu KiB, %.1f%% over)\n",
                  ns, OPS, LIVE, live >> 10, slab_resident(&s) >> 10,
                  100.0 * ((double)slab_resident(&s) / (double)live - 1));
    slab_deinit(&s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_class_sizes),
        cmocka_unit_test(test_span_any_ref),
        cmocka_unit_test(test_model_random),
        cmocka_unit_test(test_pages_reused),
        cmocka_unit_test(test_spans_reused),
        cmocka_unit_test(test_resident_drops),
        cmocka_unit_test(test_resident_drops_medium),
        cmocka_unit_test(test_reset),
        cmocka_unit_test(test_exhaustion),
        cmocka_unit_test(test_exhaustion_medium),
        cmocka_unit_test(test_several_slabs),
        cmocka_unit_test(test_bench),
        cmocka_unit_test(test_bench_medium),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
