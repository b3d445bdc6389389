/* The full-text stage (producer/fulltext.h) against a local HTTP stub:
 * what a site's robots.txt answer lets the stage fetch. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fetch.h"
#include "fulltext.h"
#include "httpstub.h"
#include "newsalert/timeutil.h"
#include "newsalert/util.h"
#include "robots.h"
#include "url.h"

#define PAGE                                                                             \
    "<html><body><article><p>Beijing banned exports of dual-use items to Japanese "      \
    "military end users on Tuesday, the commerce ministry said, citing remarks on "      \
    "Taiwan.</p></article></body></html>"

struct outcome {
    int reports;
    enum na_fulltext_status status;
    char reason[64];
};

static void on_done(void *item, const struct na_fulltext_result *res, void *ctx) {
    struct outcome *o = item;
    (void)ctx;
    o->reports++;
    o->status = res->status;
    snprintf(o->reason, sizeof(o->reason), "%s", res->reason);
}

static enum na_fulltext_slot slot_acquire(void *ctx, const char *url) {
    (void)ctx;
    (void)url;
    return NA_FULLTEXT_SLOT_OK;
}

static void slot_release(void *ctx, const char *url) {
    (void)ctx;
    (void)url;
}

static void fetch_done(struct na_fetch_res *res, void *ctx) {
    (void)res;
    (void)ctx;
}

/* Submit the stub's /story and run the stage until it reports (5 s). */
static void fetch_story(struct na_stub *stub, struct outcome *o) {
    struct na_fetch_opts fopts = {
        .connect_timeout_ms = 2000,
        .timeout_ms = 5000,
        .max_redirects = 5,
        .max_bytes = 1024 * 1024,
        .user_agent = "newsalert/test",
    };
    struct na_fulltext_opts opts = {
        .wait_ms = 5000,
        .retry_base_ms = 1000,
        .retry_max_ms = 60000,
        .timeout_ms = 5000,
        .max_bytes = 1024 * 1024,
        .user_agent = "newsalert/test",
    };
    struct na_fulltext_slots slots = {slot_acquire, slot_release, NULL};
    char url[128];
    na_fetcher_t *fetcher = na_fetcher_new(&fopts);
    assert_non_null(fetcher);
    na_fulltext_t *ft = na_fulltext_new(&opts, fetcher, &slots, on_done, NULL);
    assert_non_null(ft);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/story", stub->port);
    struct na_fulltext_req req = {.url = url, .allow_private = true, .item = o};
    assert_int_equal(na_fulltext_submit(ft, &req), NA_OK);
    int64_t until = na_mono_ms() + 5000;
    while (!o->reports && na_mono_ms() < until) {
        na_fulltext_run(ft);
        na_fetcher_run(fetcher, 50, fetch_done, NULL);
    }
    assert_int_equal(o->reports, 1);
    na_fulltext_destroy(ft);
    na_fetcher_destroy(fetcher);
}

/* A body of @p c past NA_ROBOTS_MAX_BYTES (4 KiB more), to free. */
static char *over_the_cap(char c) {
    size_t big = NA_ROBOTS_MAX_BYTES + 4096;
    char *b = malloc(big + 1);
    assert_non_null(b);
    memset(b, c, big);
    b[big] = '\0';
    return b;
}

/* A robots.txt that answers 5xx is unreachable (RFC 9309 2.3.1.4): nothing
 * may be fetched, also when its error page is larger than
 * NA_ROBOTS_MAX_BYTES (the cut body was read as rules, and allowed all). */
static void test_robots_5xx_large_body_allows_nothing(void **state) {
    (void)state;
    struct na_stub stub;
    struct outcome o = {0};
    char *error_page = over_the_cap('x');
    assert_int_equal(na_stub_start(&stub), 0);
    na_stub_set_status(&stub, "/robots.txt", 503, error_page);
    na_stub_set(&stub, "/story", PAGE);
    fetch_story(&stub, &o);
    assert_int_equal(o.status, NA_FULLTEXT_FAILED);
    assert_string_equal(o.reason, "robots_unreachable");
    na_stub_stop(&stub);
    free(error_page);
}

/* The same page with a robots.txt that allows it, with one over the cap
 * that answers 200 (its first NA_ROBOTS_MAX_BYTES are the rules), and with
 * a 404 whose page is over the cap (missing: everything allowed). */
static void test_robots_allows(void **state) {
    (void)state;
    struct na_stub stub;
    struct outcome o = {0};
    char *robots = over_the_cap('#');
    assert_int_equal(na_stub_start(&stub), 0);
    na_stub_set(&stub, "/robots.txt", "User-agent: *\nDisallow: /admin/\n");
    na_stub_set(&stub, "/story", PAGE);
    fetch_story(&stub, &o);
    assert_int_equal(o.status, NA_FULLTEXT_OK);

    memset(&o, 0, sizeof(o));
    na_stub_set(&stub, "/robots.txt", robots);
    fetch_story(&stub, &o);
    assert_int_equal(o.status, NA_FULLTEXT_OK);

    /* a 404 with a page over the cap: missing, everything allowed */
    memset(&o, 0, sizeof(o));
    na_stub_set_status(&stub, "/robots.txt", 404, robots);
    fetch_story(&stub, &o);
    assert_int_equal(o.status, NA_FULLTEXT_OK);
    na_stub_stop(&stub);
    free(robots);
}

#define FNV_PRIME 1099511628211ULL
#define LOW_BITS 15 /* the index bits of a table of 32,768 buckets */
#define LOW_MASK ((1ULL << LOW_BITS) - 1)

/* FNV-1a (64 bits, the standard basis) of @p s from state @p h. */
static uint64_t fnv(uint64_t h, const char *s) {
    for (; *s; s++) {
        h = (h ^ (unsigned char)*s) * FNV_PRIME;
    }
    return h;
}

/* @p n page URLs of one site. With @p collide, every URL's key has the
 * same low LOW_BITS under the stage's page-table hash as it once was,
 * FNV-1a from its standard basis: the last three characters are chosen
 * for it (in FNV-1a the last bytes steer the low bits, so that costs a
 * few thousand tries per URL), and every page then sits in one chain. */
static char **page_urls(size_t n, bool collide) {
    static const char set[] = "abcdefghijklmnopqrstuvwxyz0123456789-_";
    const size_t set_len = sizeof(set) - 1;
    uint64_t inv = FNV_PRIME; /* FNV_PRIME^-1 mod 2^64 (Newton) */
    for (int i = 0; i < 6; i++) {
        inv *= 2 - FNV_PRIME * inv;
    }
    const uint64_t want = 0x5a5aULL & LOW_MASK;
    const uint64_t before = want * inv; /* the state before the last multiply */
    char **urls = calloc(n, sizeof(*urls));
    assert_non_null(urls);
    size_t made = 0;
    for (unsigned k = 0; made < n; k++) {
        char url[128];
        int len = snprintf(url, sizeof(url), "http://news.example/world/story-%u-", k);
        if (!collide) {
            snprintf(url + len, sizeof(url) - (size_t)len, "abc");
            urls[made++] = strdup(url);
            continue;
        }
        uint64_t h0 = fnv(1469598103934665603ULL, url);
        bool found = false;
        for (size_t a = 0; a < set_len && !found; a++) {
            for (size_t b = 0; b < set_len && !found; b++) {
                uint64_t h =
                    ((h0 ^ (unsigned char)set[a]) * FNV_PRIME ^ (unsigned char)set[b]) *
                    FNV_PRIME;
                /* the last byte only changes the low 8 bits */
                uint64_t c = (h ^ before) & LOW_MASK;
                if (c > 0x7f || !memchr(set, (int)c, set_len) || !c) {
                    continue;
                }
                url[len] = set[a];
                url[len + 1] = set[b];
                url[len + 2] = (char)c;
                url[len + 3] = '\0';
                found = true;
            }
        }
        if (found) {
            assert_int_equal(fnv(1469598103934665603ULL, url) & LOW_MASK, want);
            urls[made++] = strdup(url);
        }
    }
    for (size_t i = 0; i < n; i++) {
        /* the canonical form is the key: these URLs are canonical already */
        char *canon = na_url_canonical(urls[i]);
        assert_non_null(urls[i]);
        assert_string_equal(canon, urls[i]);
        free(canon);
    }
    return urls;
}

/* The most entries in one chain of the stage's tables after submitting
 * @p n pages (one item each) to a new stage. */
static size_t submit_longest_chain(char **urls, size_t n) {
    struct na_fetch_opts fopts = {.timeout_ms = 5000, .max_bytes = 1024};
    struct na_fulltext_opts opts = {
        .wait_ms = 60000, .timeout_ms = 5000, .max_bytes = 1024, .user_agent = "t"};
    struct na_fulltext_slots slots = {slot_acquire, slot_release, NULL};
    static struct outcome o;
    na_fetcher_t *fetcher = na_fetcher_new(&fopts);
    assert_non_null(fetcher);
    na_fulltext_t *ft = na_fulltext_new(&opts, fetcher, &slots, on_done, NULL);
    assert_non_null(ft);
    for (size_t i = 0; i < n; i++) {
        struct na_fulltext_req req = {.url = urls[i], .item = &o};
        assert_int_equal(na_fulltext_submit(ft, &req), NA_OK);
    }
    assert_int_equal(na_fulltext_pending(ft), n);
    size_t longest = na_fulltext_longest_chain(ft);
    na_fulltext_destroy(ft);
    na_fetcher_destroy(fetcher);
    return longest;
}

/* The stage's tables (pages waiting, sites, the page cache) are keyed by
 * URLs that a feed chooses. With a hash known in advance, a feed of links
 * made to share one chain cost n^2/2 string comparisons: 10,000 such
 * pages took seconds to submit, and a cache of them every later look-up.
 * Now those links spread over the buckets as ordinary ones do: no chain
 * holds more than a few (10,000 keys in 16,384 buckets: rarely above 8
 * with a random hash; all 10,000 in one with the old hash). */
static void test_pages_made_to_collide_cost_little(void **state) {
    (void)state;
    const size_t n = 10000;
    char **bad = page_urls(n, true);
    char **good = page_urls(n, false);
    size_t c_bad = submit_longest_chain(bad, n);
    size_t c_good = submit_longest_chain(good, n);
    print_message("%zu pages: longest chain %zu made to collide, %zu ordinary\n", n,
                  c_bad, c_good);
    assert_true(c_good <= 32);
    assert_true(c_bad <= 32);
    for (size_t i = 0; i < n; i++) {
        free(bad[i]);
        free(good[i]);
    }
    free(bad);
    free(good);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_robots_5xx_large_body_allows_nothing),
        cmocka_unit_test(test_robots_allows),
        cmocka_unit_test(test_pages_made_to_collide_cost_little),
    };
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
