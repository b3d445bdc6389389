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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_robots_5xx_large_body_allows_nothing),
        cmocka_unit_test(test_robots_allows),
    };
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
