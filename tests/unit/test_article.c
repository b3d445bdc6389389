#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "newsalert/article.h"
#include "newsalert/timeutil.h"

static void fill(struct na_article *a) {
    na_article_init(a);
    a->url = strdup("https://example.org/news/1");
    a->title = strdup("Beijing bans dual-use exports \xe2\x80\x94 Japan");
    a->summary = strdup("Short summary.");
    a->content = strdup("Body text with \"quotes\" and a\nnewline.");
    assert_int_equal(na_article_list_add(&a->authors, &a->authors_cnt, 8, "A. Writer"),
                     NA_OK);
    assert_int_equal(na_article_list_add(&a->categories, &a->categories_cnt, 8, "trade"),
                     NA_OK);
    assert_int_equal(na_article_list_add(&a->categories, &a->categories_cnt, 8, "trade"),
                     NA_OK);
    a->lang = strdup("en");
    a->published_at = 1767686400; /* 2026-01-06T08:00:00Z */
    a->fetched_at = 1767690000;
    a->source_id = strdup("harbour");
    a->source_name = strdup("Harbour Wire");
    a->source_feed_url = strdup("http://127.0.0.1/feed.xml");
    na_article_set_id(a);
}

static void test_round_trip(void **state) {
    (void)state;
    struct na_article a, b;
    char errstr[256];
    fill(&a);
    assert_int_equal(a.categories_cnt, 1);
    char *json = na_article_to_json(&a);
    assert_non_null(json);
    assert_non_null(strstr(json, "\"schema\":\"article/v1\""));
    assert_non_null(strstr(json, "\"published_at\":\"2026-01-06T08:00:00Z\""));
    na_article_init(&b);
    assert_int_equal(na_article_from_json(json, strlen(json), &b, errstr, sizeof(errstr)),
                     NA_OK);
    assert_string_equal(a.id, b.id);
    assert_string_equal(a.title, b.title);
    assert_string_equal(a.content, b.content);
    assert_string_equal(b.authors[0], "A. Writer");
    assert_int_equal(b.published_at, a.published_at);
    assert_int_equal(b.fetched_at, a.fetched_at);
    assert_string_equal(b.source_name, "Harbour Wire");
    char *json2 = na_article_to_json(&b);
    assert_string_equal(json, json2);
    free(json);
    free(json2);
    na_article_cleanup(&a);
    na_article_cleanup(&b);
}

static void test_id_is_sha256_of_url(void **state) {
    (void)state;
    struct na_article a;
    na_article_init(&a);
    a.url = strdup("https://example.org/");
    na_article_set_id(&a);
    /* sha256("https://example.org/") */
    char expect[65];
    na_sha256_hex("https://example.org/", 20, expect);
    assert_string_equal(a.id, expect);
    free(a.url);
    a.url = NULL;
    a.guid = strdup("tag:x,2026:1");
    a.source_feed_url = strdup("http://f/");
    na_article_set_id(&a);
    assert_string_not_equal(a.id, expect);
    na_article_cleanup(&a);
}

static void expect_reject(const char *json, na_err_t want, const char *needle) {
    struct na_article a;
    char errstr[256] = "";
    na_article_init(&a);
    assert_int_equal(na_article_from_json(json, strlen(json), &a, errstr, sizeof(errstr)),
                     want);
    assert_non_null(strstr(errstr, needle));
    assert_null(a.title);
}

static void test_rejects_bad_input(void **state) {
    (void)state;
    const char *id =
        "\"id\":\"0000000000000000000000000000000000000000000000000000000000000000\"";
    char buf[512];
    expect_reject("{", NA_ERR_PARSE, "line 1");
    expect_reject("[]", NA_ERR_INVALID, "not a JSON object");
    expect_reject("{\"id\":\"xyz\"}", NA_ERR_INVALID, "\"id\"");
    snprintf(buf, sizeof(buf), "{%s,\"title\":5}", id);
    expect_reject(buf, NA_ERR_INVALID, "\"title\"");
    snprintf(buf, sizeof(buf), "{%s,\"published_at\":\"yesterday\"}", id);
    expect_reject(buf, NA_ERR_INVALID, "published_at");
    snprintf(buf, sizeof(buf), "{%s,\"authors\":[1]}", id);
    expect_reject(buf, NA_ERR_INVALID, "authors");
    snprintf(buf, sizeof(buf), "{\"schema\":\"article/v9\",%s}", id);
    expect_reject(buf, NA_ERR_UNSUPPORTED, "schema");
    expect_reject("{\"title\":\"\xff\"}", NA_ERR_PARSE, "JSON");
}

static void test_time_rfc3339(void **state) {
    (void)state;
    int64_t t;
    char buf[NA_RFC3339_LEN];
    assert_int_equal(na_time_parse_rfc3339("2026-01-06T16:00:00+08:00", &t), NA_OK);
    assert_int_equal(t, 1767686400);
    na_time_format_rfc3339(t, buf);
    assert_string_equal(buf, "2026-01-06T08:00:00Z");
    assert_int_equal(na_time_parse_rfc3339("2026-01-06T08:00:00.250Z", &t), NA_OK);
    assert_int_equal(t, 1767686400);
    assert_int_equal(na_time_parse_rfc3339("2026-01-06", &t), NA_OK);
    assert_int_equal(t, 1767657600);
    assert_int_not_equal(na_time_parse_rfc3339("2026-13-06T00:00:00Z", &t), NA_OK);
    /* a day that does not exist is refused, not moved into the next month */
    assert_int_not_equal(na_time_parse_rfc3339("2026-02-30T00:00:00Z", &t), NA_OK);
    assert_int_not_equal(na_time_parse_rfc3339("2025-02-29", &t), NA_OK);
    assert_int_not_equal(na_time_parse_rfc3339("2026-04-31T12:00:00+02:00", &t), NA_OK);
    assert_int_equal(na_time_parse_rfc3339("2024-02-29T00:00:00Z", &t), NA_OK);
    assert_int_equal(t, 1709164800);
    assert_int_not_equal(na_time_parse_rfc3339("06 Jan 2026", &t), NA_OK);
    assert_int_not_equal(na_time_parse_rfc3339("2026-01-06T08:00:00Zjunk", &t), NA_OK);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_id_is_sha256_of_url),
        cmocka_unit_test(test_rejects_bad_input),
        cmocka_unit_test(test_time_rfc3339),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
