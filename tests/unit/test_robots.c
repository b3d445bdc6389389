/* robots.txt rules and matching (producer/robots.h, RFC 9309). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "newsalert/timeutil.h"
#include "newsalert/util.h"
#include "robots.h"

static na_robots_t *parse(const char *text, const char *agent) {
    na_robots_t *r = na_robots_parse(text, strlen(text), agent);
    assert_non_null(r);
    return r;
}

static bool ok(const na_robots_t *r, const char *path) {
    char url[512];
    snprintf(url, sizeof(url), "https://news.example%s", path);
    return na_robots_allowed(r, url);
}

/* Our group when one names us, else "*"'s; several groups naming us add
 * up; lines before any user-agent belong to nobody. */
static void test_groups(void **state) {
    (void)state;
    static const char text[] = "Disallow: /orphan\n"
                               "User-agent: *\n"
                               "Disallow: /\n"
                               "\n"
                               "User-agent: OtherBot\n"
                               "User-agent: NewsAlert\n"
                               "Disallow: /private/\n"
                               "\n"
                               "User-agent: newsalert/2.0\n"
                               "Disallow: /drafts/\n";
    na_robots_t *r = parse(text, "newsalert");
    assert_true(ok(r, "/world/story-1"));
    assert_false(ok(r, "/private/x"));
    assert_false(ok(r, "/drafts/y"));
    assert_true(ok(r, "/orphan"));
    assert_int_equal(na_robots_count(r), 2);
    na_robots_destroy(r);

    r = parse(text, "somebot");
    assert_false(ok(r, "/world/story-1")); /* "*": disallow all */
    na_robots_destroy(r);

    /* "newsalertx" is another product */
    r = parse("User-agent: newsalertx\nDisallow: /\n", "newsalert");
    assert_true(ok(r, "/a"));
    na_robots_destroy(r);
}

/* Longest match wins; allow wins a tie; no rule allows. */
static void test_longest_match(void **state) {
    (void)state;
    na_robots_t *r = parse("User-agent: *\n"
                           "Disallow: /news/\n"
                           "Allow: /news/public/\n"
                           "Disallow: /news/public/embargo\n"
                           "Allow: /tie\n"
                           "Disallow: /tie\n",
                           "newsalert");
    assert_false(ok(r, "/news/2026/a"));
    assert_true(ok(r, "/news/public/a"));
    assert_false(ok(r, "/news/public/embargoed-story"));
    assert_true(ok(r, "/tie"));
    assert_true(ok(r, "/sport/a"));
    assert_true(ok(r, "/robots.txt"));
    na_robots_destroy(r);
}

/* '*' and '$'. */
static void test_wildcards(void **state) {
    (void)state;
    na_robots_t *r = parse("User-agent: *\n"
                           "Disallow: /*.pdf$\n"
                           "Disallow: /*?print=\n"
                           "Disallow: /amp$\n"
                           "Allow: /*/live/*\n"
                           "Disallow: /*/live\n",
                           "newsalert");
    assert_false(ok(r, "/files/report.pdf"));
    assert_true(ok(r, "/files/report.pdf.html"));
    assert_false(ok(r, "/story/1?print=1"));
    assert_true(ok(r, "/story/1?x=1"));
    assert_false(ok(r, "/amp"));
    assert_true(ok(r, "/amp/story"));
    assert_true(ok(r, "/world/live/taiwan"));
    assert_false(ok(r, "/world/live"));
    na_robots_destroy(r);
}

/* Comments, spaces, CRLF, case of field names, empty disallow, unknown
 * lines (they end nothing), percent escapes. */
static void test_syntax(void **state) {
    (void)state;
    na_robots_t *r = parse("# our rules\r\n"
                           "USER-AGENT : * # everyone\r\n"
                           "crawl-delay: 5\r\n"
                           "sitemap: https://news.example/sitemap.xml\r\n"
                           "DISALLOW:   /%7Ejoe/   \r\n"
                           "Disallow: /caf%c3%a9\r\n"
                           "garbage line without a colon\r\n"
                           "Disallow:\r\n",
                           "newsalert");
    assert_false(ok(r, "/~joe/page"));
    assert_false(ok(r, "/%7ejoe/page"));
    assert_false(ok(r, "/caf%C3%A9/menu"));
    assert_true(ok(r, "/joe/"));
    na_robots_destroy(r);

    r = parse("User-agent: *\nDisallow:\n", "newsalert");
    assert_true(ok(r, "/anything"));
    na_robots_destroy(r);

    r = parse("", "newsalert");
    assert_true(ok(r, "/"));
    na_robots_destroy(r);

    /* a URL without a path is "/" */
    r = parse("User-agent: *\nDisallow: /$\n", "newsalert");
    assert_false(na_robots_allowed(r, "https://news.example"));
    assert_true(na_robots_allowed(r, "https://news.example?x=1")); /* "/?x=1" */
    assert_true(ok(r, "/a"));
    na_robots_destroy(r);
}

/* RFC 9309's lines may start with whitespace: an indented rule is a rule
 * (they were ignored, and the pages they forbid were fetched). */
static void test_indented_lines(void **state) {
    (void)state;
    na_robots_t *r = parse("  User-agent: *\n"
                           "    Disallow: /private/\n"
                           "\tDisallow: /drafts/\n"
                           " \t Allow: /private/open/\n",
                           "newsalert");
    assert_int_equal(na_robots_count(r), 3);
    assert_false(ok(r, "/private/x"));
    assert_false(ok(r, "/drafts/y"));
    assert_true(ok(r, "/private/open/z"));
    assert_true(ok(r, "/news/a"));
    na_robots_destroy(r);
}

/* A UTF-8 byte order mark before the first line (files saved by some
 * editors) is not part of it: the first group keeps its user-agent line. */
static void test_byte_order_mark(void **state) {
    (void)state;
    na_robots_t *r = parse("\xef\xbb\xbfUser-agent: *\n"
                           "Disallow: /private/\n",
                           "newsalert");
    assert_int_equal(na_robots_count(r), 1);
    assert_false(ok(r, "/private/x"));
    assert_true(ok(r, "/news/a"));
    na_robots_destroy(r);
}

/* Paths written with raw UTF-8 (or a space) in robots.txt match the
 * percent-encoded URL, as RFC 9309 section 2.2.2 says ("/foo/bar/\u30c4"
 * is "/foo/bar/%E3%83%84"); they matched nothing, so the page was fetched. */
static void test_raw_bytes_in_patterns(void **state) {
    (void)state;
    na_robots_t *r = parse("User-agent: *\n"
                           "Disallow: /caf\xc3\xa9/\n"
                           "Disallow: /foo/bar/\xe3\x83\x84\n"
                           "Disallow: /two words\n",
                           "newsalert");
    assert_false(ok(r, "/caf%C3%A9/menu"));
    assert_false(ok(r, "/foo/bar/%E3%83%84"));
    assert_false(ok(r, "/two%20words/x"));
    assert_true(ok(r, "/cafe/menu"));
    na_robots_destroy(r);
}

static void test_all_and_token(void **state) {
    (void)state;
    char token[32];
    na_robots_t *yes = na_robots_new_all(true);
    na_robots_t *no = na_robots_new_all(false);
    assert_true(ok(yes, "/x"));
    assert_false(ok(no, "/x"));
    na_robots_destroy(yes);
    na_robots_destroy(no);
    na_robots_destroy(NULL);
    na_robots_agent_token("NewsAlert/0.1.0 (+https://newsalert.invalid/bot)", token,
                          sizeof(token));
    assert_string_equal(token, "newsalert");
    na_robots_agent_token("", token, sizeof(token));
    assert_string_equal(token, "");
}

/* Hostile files: past NA_ROBOTS_MAX_BYTES nothing is read, past
 * NA_ROBOTS_MAX_RULES nothing is kept, patterns made to backtrack are
 * dropped or cost little. */
static void test_caps(void **state) {
    (void)state;
    struct na_buf b;
    na_buf_init(&b);
    na_buf_puts(&b, "User-agent: *\n");
    for (unsigned i = 0; i < NA_ROBOTS_MAX_RULES + 100; i++) {
        na_buf_printf(&b, "Disallow: /r%u/\n", i);
    }
    na_robots_t *r = na_robots_parse(b.data, b.len, "newsalert");
    assert_non_null(r);
    assert_int_equal(na_robots_count(r), NA_ROBOTS_MAX_RULES);
    na_robots_destroy(r);
    na_buf_cleanup(&b);

    na_buf_puts(&b, "User-agent: *\n");
    while (b.len < NA_ROBOTS_MAX_BYTES) {
        na_buf_puts(&b, "# padding padding padding padding padding padding padding\n");
    }
    na_buf_puts(&b, "Disallow: /late\n");
    r = na_robots_parse(b.data, b.len, "newsalert");
    assert_true(ok(r, "/late"));
    na_robots_destroy(r);
    na_buf_cleanup(&b);

    /* many stars: dropped; ten: matched quickly against a long path */
    r = parse("User-agent: *\nDisallow: /a*a*a*a*a*a*a*a*a*a*a*b\n"
              "Disallow: /a*a*a*a*a*a*a*a*a*a*b\n",
              "newsalert");
    assert_int_equal(na_robots_count(r), 1);
    char url[3000] = "https://news.example/";
    memset(url + 21, 'a', 2500);
    url[2521] = '\0';
    int64_t t0 = na_mono_ms();
    for (int i = 0; i < 100; i++) {
        assert_true(na_robots_allowed(r, url));
    }
    print_message("100 matches of a backtracking pattern: %lld ms\n",
                  (long long)(na_mono_ms() - t0));
    na_robots_destroy(r);
}

/* A robots.txt of as many rules as 512 KiB holds, each of 500 characters
 * at most: a slash, a star, 490 'a's and a digit, which a matcher that
 * tries every place of the star in turn compares 490 times at each place
 * of a long path. */
static na_robots_t *long_star_rules(void) {
    struct na_buf b;
    na_buf_init(&b);
    na_buf_puts(&b, "User-agent: *\n");
    for (unsigned i = 0; b.len + 600 < NA_ROBOTS_MAX_BYTES; i++) {
        na_buf_puts(&b, "Disallow: /*");
        for (int k = 0; k < 490; k++) {
            na_buf_puts(&b, "a");
        }
        na_buf_printf(&b, "%u\n", i % 10);
    }
    assert_false(b.oom);
    na_robots_t *r = na_robots_parse(b.data, b.len, "newsalert");
    assert_non_null(r);
    assert_true(na_robots_count(r) > 1000);
    na_buf_cleanup(&b);
    return r;
}

/* A robots.txt of long patterns with a '*' (a site's own, read before
 * each of its pages) cost 0.7 s of the producer's main thread per page
 * (several seconds with sanitizers): a feed of such links stalled every
 * feed for hours. Matching is linear now: the characters compared for
 * one URL stay within twice each rule's pattern and the path (about 5,000
 * per rule here), where trying every place of the star compared some
 * 760,000 per rule. */
static void test_long_star_patterns_cost_little(void **state) {
    (void)state;
    const size_t path_len = 2041; /* "/" and 2,040 'a's */
    na_robots_t *hostile = long_star_rules();
    char url[2100] = "https://news.example/";
    size_t n = strlen(url), steps = 0;
    memset(url + n, 'a', path_len - 1);
    url[n + path_len - 1] = '\0';
    assert_true(na_robots_allowed_steps(hostile, url, &steps));
    size_t bound = na_robots_count(hostile) * 2 * (500 + path_len);
    print_message("one URL: %zu characters compared against %zu rules (bound %zu)\n",
                  steps, na_robots_count(hostile), bound);
    assert_true(steps > 0);
    assert_true(steps <= bound);
    /* and the rules still decide */
    memset(url + n, 'a', 600);
    memcpy(url + n + 600, "7/x", 4);
    assert_false(na_robots_allowed_steps(hostile, url, &steps));
    assert_false(na_robots_allowed(hostile, url));
    na_robots_destroy(hostile);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_groups),
        cmocka_unit_test(test_longest_match),
        cmocka_unit_test(test_wildcards),
        cmocka_unit_test(test_syntax),
        cmocka_unit_test(test_indented_lines),
        cmocka_unit_test(test_byte_order_mark),
        cmocka_unit_test(test_raw_bytes_in_patterns),
        cmocka_unit_test(test_all_and_token),
        cmocka_unit_test(test_caps),
        cmocka_unit_test(test_long_star_patterns_cost_little),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
