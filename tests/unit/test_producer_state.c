/* Seen-state, sources files and the shared config tables. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "newsalert/article.h"
#include "newsalert/config.h"
#include "newsalert/kafka.h"
#include "newsalert/limits.h"
#include "newsalert/timeutil.h"
#include "producer.h"
#include "seen.h"
#include "sources.h"

static char dir[] = "/tmp/na-test-XXXXXX";

static int setup(void **state) {
    (void)state;
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_seen_survives_reload(void **state) {
    (void)state;
    char path[256], errstr[256];
    na_seen_t *seen = NULL;
    snprintf(path, sizeof(path), "%s/seen.json", dir);
    unlink(path);
    assert_int_equal(na_seen_load(path, &seen, errstr, sizeof(errstr)), NA_OK);
    assert_false(na_seen_has(seen, "feed", "a1"));
    assert_int_equal(na_seen_add(seen, "feed", "a1"), NA_OK);
    assert_int_equal(na_seen_set_validators(seen, "feed", "\"etag-1\"", NULL), NA_OK);
    assert_int_equal(na_seen_save(seen, errstr, sizeof(errstr)), NA_OK);
    na_seen_destroy(seen);
    assert_int_equal(na_seen_load(path, &seen, errstr, sizeof(errstr)), NA_OK);
    assert_true(na_seen_has(seen, "feed", "a1"));
    assert_false(na_seen_has(seen, "other", "a1"));
    assert_string_equal(na_seen_validator(seen, "feed", "etag"), "\"etag-1\"");
    assert_null(na_seen_validator(seen, "feed", "last_modified"));
    na_seen_destroy(seen);
}

/* One fetch of @p n items numbered from @p first: every id touched, the
 * new ones put. @returns how many were new. */
static size_t poll_doc(na_seen_t *seen, unsigned first, unsigned n) {
    char id[32];
    size_t fresh = 0;
    int rev;
    na_seen_fetch_begin(seen, "f");
    for (unsigned i = first; i < first + n; i++) {
        snprintf(id, sizeof(id), "id%u", i);
        na_seen_touch(seen, "f", id);
    }
    for (unsigned i = first; i < first + n; i++) {
        snprintf(id, sizeof(id), "id%u", i);
        if (na_seen_check(seen, "f", id, NULL, &rev) == NA_SEEN_NEW) {
            fresh++;
            assert_int_equal(na_seen_put(seen, "f", id, NULL, rev), NA_OK);
        }
    }
    return fresh;
}

static void test_seen_is_bounded_oldest_first(void **state) {
    (void)state;
    char path[256], errstr[256], id[32];
    na_seen_t *seen = NULL;
    snprintf(path, sizeof(path), "%s/bounded.json", dir);
    assert_int_equal(na_seen_load(path, &seen, errstr, sizeof(errstr)), NA_OK);
    /* Fetches of 10 new items each: the history holds the most recent. */
    for (unsigned i = 0; i < NA_SEEN_IDS_PER_FEED + 300; i += 10) {
        assert_int_equal(poll_doc(seen, i, 10), 10);
    }
    assert_true(na_seen_count(seen, "f") <=
                NA_SEEN_IDS_PER_FEED + NA_SEEN_IDS_PER_FEED / 10 + 10);
    assert_false(na_seen_has(seen, "f", "id0"));
    snprintf(id, sizeof(id), "id%u", NA_SEEN_IDS_PER_FEED + 299);
    assert_true(na_seen_has(seen, "f", id));
    /* A caller that never begins a fetch still meets the hard cap. */
    for (unsigned i = 0; i < NA_SEEN_MAX_IDS_PER_FEED + 10; i++) {
        snprintf(id, sizeof(id), "g%u", i);
        assert_int_equal(na_seen_add(seen, "g", id), NA_OK);
    }
    assert_true(na_seen_count(seen, "g") <= NA_SEEN_MAX_IDS_PER_FEED);
    assert_false(na_seen_has(seen, "g", "g0"));
    na_seen_destroy(seen);
}

/* A feed carrying more items than the history holds was new again on every
 * poll (5,000, then 3,075, then 2,995 items): the ids of the latest fetch
 * are never evicted, so the second and third polls find nothing new. */
static void test_seen_feed_larger_than_history_is_not_new_again(void **state) {
    (void)state;
    char errstr[256], id[32];
    na_seen_t *seen = NULL;
    assert_int_equal(na_seen_load(NULL, &seen, errstr, sizeof(errstr)), NA_OK);
    assert_int_equal(poll_doc(seen, 0, NA_MAX_FEED_ITEMS), NA_MAX_FEED_ITEMS);
    assert_int_equal(poll_doc(seen, 0, NA_MAX_FEED_ITEMS), 0);
    assert_int_equal(poll_doc(seen, 0, NA_MAX_FEED_ITEMS), 0);
    assert_int_equal(na_seen_count(seen, "f"), NA_MAX_FEED_ITEMS);
    /* A rolling window of 3,000 items, 100 new per fetch, the oldest 100
     * dropped: only the 100 new ones are new, every time, and the state
     * stays bounded. */
    for (unsigned k = 0; k < 60; k++) {
        assert_int_equal(poll_doc(seen, 10000 + k * 100, 3000), k ? 100 : 3000);
        assert_true(na_seen_count(seen, "f") <= NA_SEEN_MAX_IDS_PER_FEED);
    }
    /* Ids that left the document are forgotten past the history, oldest
     * first; the latest 3,000 and the 2,048 before them stay. */
    assert_false(na_seen_has(seen, "f", "id0"));
    snprintf(id, sizeof(id), "id%u", 10000 + 59 * 100 - NA_SEEN_IDS_PER_FEED);
    assert_true(na_seen_has(seen, "f", id));
    assert_int_equal(poll_doc(seen, 10000 + 59 * 100, 3000), 0);
    na_seen_destroy(seen);
}

static void test_corrupt_seen_state_is_an_error(void **state) {
    (void)state;
    char path[256], errstr[256] = "";
    na_seen_t *seen = NULL;
    snprintf(path, sizeof(path), "%s/corrupt.json", dir);
    FILE *fp = fopen(path, "w");
    fputs("{\"feeds\": {\"x\": ", fp);
    fclose(fp);
    assert_int_equal(na_seen_load(path, &seen, errstr, sizeof(errstr)), NA_ERR_PARSE);
    assert_null(seen);
    assert_non_null(strstr(errstr, "corrupt seen-state"));
}

static void test_sources_valid_and_invalid(void **state) {
    (void)state;
    struct na_sources s;
    char errstr[256];
    const char *ok =
        "{\"sources\":[{\"id\":\"a\",\"name\":\"A\",\"url\":\"http://x/a.xml\","
        "\"interval\":\"90s\",\"headers\":{\"X-Key\":\"v\"}},"
        "{\"url\":\"https://x/b.xml\",\"interval\":120}]}";
    assert_int_equal(na_sources_load_buf(ok, strlen(ok), "t", &s, errstr, sizeof(errstr)),
                     NA_OK);
    assert_int_equal(s.cnt, 2);
    assert_int_equal(s.v[0].interval_ms, 90000);
    assert_string_equal(s.v[0].headers[0], "X-Key: v");
    assert_string_equal(s.v[1].id, "https://x/b.xml");
    assert_int_equal(s.v[1].interval_ms, 120000);
    na_sources_cleanup(&s);

    static const char *const bad[][2] = {
        {"{\"sources\":[{\"url\":\"file:///etc/passwd\"}]}", "only http and https"},
        {"{\"sources\":[{\"url\":\"http://x/\",\"intervall\":5}]}",
         "unknown key \"intervall\""},
        {"{\"sources\":[{\"url\":\"http://x/\",\"interval\":\"soon\"}]}", "interval"},
        {"{\"sources\":[{\"id\":\"a\",\"url\":\"http://x/"
         "\"},{\"id\":\"a\",\"url\":\"http://y/\"}]}",
         "duplicate id"},
        {"{\"sources\":[{\"url\":\"http://x/\",\"headers\":{\"X\":\"a\\r\\nInjected: "
         "1\"}}]}",
         "not a valid header"},
        {"{\"feeds\":[]}", "unknown key \"feeds\""},
        {"[{\"url\": ", "t:1:"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        errstr[0] = '\0';
        assert_int_not_equal(na_sources_load_buf(bad[i][0], strlen(bad[i][0]), "t", &s,
                                                 errstr, sizeof(errstr)),
                             NA_OK);
        assert_non_null(strstr(errstr, bad[i][1]));
        assert_int_equal(s.cnt, 0);
    }
}

static void test_config_table_precedence_and_errors(void **state) {
    (void)state;
    struct na_producer_conf conf;
    char errstr[256];
    json_error_t jerr;
    memset(&conf, 0, sizeof(conf));
    assert_int_equal(
        na_conf_defaults(na_producer_conf_table, &conf, errstr, sizeof(errstr)), NA_OK);
    assert_string_equal(conf.topic, "news.articles");
    assert_int_equal(conf.fetch_timeout_ms, 30000);
    json_t *file =
        json_loads("{\"topic\":\"t.file\",\"fetch_timeout\":\"5s\"}", 0, &jerr);
    assert_int_equal(na_conf_apply_json(na_producer_conf_table, &conf, file, "f.json",
                                        NULL, errstr, sizeof(errstr)),
                     NA_OK);
    json_decref(file);
    assert_string_equal(conf.topic, "t.file");
    setenv("NEWSALERT_TOPIC", "t.env", 1);
    assert_int_equal(
        na_conf_apply_env(na_producer_conf_table, &conf, errstr, sizeof(errstr)), NA_OK);
    unsetenv("NEWSALERT_TOPIC");
    assert_string_equal(conf.topic, "t.env");
    assert_int_equal(conf.fetch_timeout_ms, 5000);
    assert_int_equal(na_conf_set(na_conf_find(na_producer_conf_table, "fetch-timeout"),
                                 &conf, "2m", "flag", errstr, sizeof(errstr)),
                     NA_OK);
    assert_int_equal(conf.fetch_timeout_ms, 120000);

    json_t *unknown = json_loads("{\"fetch_timout\":\"5s\"}", 0, &jerr);
    assert_int_equal(na_conf_apply_json(na_producer_conf_table, &conf, unknown, "f.json",
                                        NULL, errstr, sizeof(errstr)),
                     NA_ERR_CONFIG);
    assert_non_null(strstr(errstr, "unknown key \"fetch_timout\""));
    json_decref(unknown);
    assert_int_equal(
        na_conf_set(na_conf_find(na_producer_conf_table, "fetch_concurrency"), &conf, "0",
                    "flag", errstr, sizeof(errstr)),
        NA_ERR_CONFIG);
    assert_non_null(strstr(errstr, "fetch_concurrency"));
    assert_int_equal(na_conf_set(na_conf_find(na_producer_conf_table, "once"), &conf,
                                 "maybe", "flag", errstr, sizeof(errstr)),
                     NA_ERR_CONFIG);
    na_conf_cleanup(na_producer_conf_table, &conf);
}

static void test_redact_url(void **state) {
    (void)state;
    char *r = na_conf_redact_url("https://user:pw@hooks.example/services/T0/B0/XXXX?x=1");
    assert_string_equal(r, "https://hooks.example/***");
    free(r);
    r = na_conf_redact_url("http://127.0.0.1:9");
    assert_string_equal(r, "http://127.0.0.1:9");
    free(r);
    /* feed URLs keep their path; user info and query go */
    static const char *const feeds[][2] = {
        {"https://user:pw@feeds.example/rss/world.xml?token=abc&x=1",
         "https://feeds.example/rss/world.xml?***"},
        {"http://127.0.0.1:8080/a.xml", "http://127.0.0.1:8080/a.xml"},
        {"https://feeds.example/a.xml#k=1", "https://feeds.example/a.xml#***"},
        {"https://feeds.example?token=abc", "https://feeds.example?***"},
        {"https://u@feeds.example", "https://feeds.example"},
        {"not a url?token=abc", "***"},
    };
    for (size_t i = 0; i < sizeof(feeds) / sizeof(feeds[0]); i++) {
        r = na_conf_redact_url_query(feeds[i][0]);
        assert_non_null(r);
        assert_string_equal(r, feeds[i][1]);
        free(r);
    }
}

static void make_article(struct na_article *a, const char *title, const char *content) {
    na_article_init(a);
    a->title = strdup(title);
    a->content = content ? strdup(content) : NULL;
}

static void test_fingerprint_normalises_and_needs_text(void **state) {
    (void)state;
    struct na_article a, b, c;
    char fa[NA_SEEN_FP_LEN + 1], fb[NA_SEEN_FP_LEN + 1], fc[NA_SEEN_FP_LEN + 1];
    make_article(&a, "China bans exports", "Dual-use items   to Japan's\n military.");
    make_article(&b, "  china BANS exports ", "dual-use items to japan's military.");
    make_article(&c, "China bans exports", "Dual-use items to Korea's military.");
    assert_true(na_seen_fingerprint(&a, fa));
    assert_true(na_seen_fingerprint(&b, fb));
    assert_true(na_seen_fingerprint(&c, fc));
    assert_int_equal(strlen(fa), NA_SEEN_FP_LEN);
    assert_string_equal(fa, fb);
    assert_string_not_equal(fa, fc);
    na_article_cleanup(&a);
    make_article(&a, "Short", "x"); /* too little text to tell items apart */
    assert_false(na_seen_fingerprint(&a, fa));
    assert_string_equal(fa, "");
    na_article_cleanup(&a);
    /* A title alone, however long, is no fingerprint: titles recur. */
    make_article(&a, "Morning briefing: what you need to know today", NULL);
    assert_false(na_seen_fingerprint(&a, fa));
    na_article_cleanup(&a);
    make_article(&a, "Briefing", NULL);
    a.summary = strdup("Summary text long enough to count here.");
    assert_true(na_seen_fingerprint(&a, fa));
    na_article_cleanup(&a);
    na_article_cleanup(&b);
    na_article_cleanup(&c);
}

static void test_seen_verdicts_new_same_edited_duplicate(void **state) {
    (void)state;
    char path[256], errstr[256];
    na_seen_t *seen = NULL;
    int rev = 0;
    snprintf(path, sizeof(path), "%s/verdicts.json", dir);
    assert_int_equal(na_seen_load(path, &seen, errstr, sizeof(errstr)), NA_OK);
    assert_int_equal(na_seen_check(seen, "f", "id1", "aaaa", &rev), NA_SEEN_NEW);
    assert_int_equal(rev, 1);
    assert_int_equal(na_seen_put(seen, "f", "id1", "aaaa", 1), NA_OK);
    assert_int_equal(na_seen_check(seen, "f", "id1", "aaaa", &rev), NA_SEEN_SAME);
    /* Same id, new text: an update, revision 2. */
    assert_int_equal(na_seen_check(seen, "f", "id1", "bbbb", &rev), NA_SEEN_EDITED);
    assert_int_equal(rev, 2);
    assert_int_equal(na_seen_put(seen, "f", "id1", "bbbb", rev), NA_OK);
    /* New GUID (new id), text already known: not new. */
    assert_int_equal(na_seen_check(seen, "f", "id2", "bbbb", &rev), NA_SEEN_DUPLICATE);
    /* ...but only within the same feed. */
    assert_int_equal(na_seen_check(seen, "g", "id2", "bbbb", &rev), NA_SEEN_NEW);
    /* No fingerprint: no edit detection, no duplicate detection. */
    assert_int_equal(na_seen_check(seen, "f", "id1", "", &rev), NA_SEEN_SAME);
    assert_int_equal(rev, 2);
    assert_int_equal(na_seen_check(seen, "f", "id3", NULL, &rev), NA_SEEN_NEW);
    assert_int_equal(na_seen_save(seen, errstr, sizeof(errstr)), NA_OK);
    na_seen_destroy(seen);
    assert_int_equal(na_seen_load(path, &seen, errstr, sizeof(errstr)), NA_OK);
    assert_int_equal(na_seen_check(seen, "f", "id1", "bbbb", &rev), NA_SEEN_SAME);
    assert_int_equal(rev, 2);
    assert_int_equal(na_seen_check(seen, "f", "id1", "cccc", &rev), NA_SEEN_EDITED);
    assert_int_equal(rev, 3);
    na_seen_destroy(seen);
}

/* Breaking news comes as a bare headline; the text follows under the same
 * guid. The text that appeared is an edit, produced again as revision 2. */
static void test_seen_headline_only_item_gets_its_body(void **state) {
    (void)state;
    char errstr[256];
    na_seen_t *seen = NULL;
    int rev = 0;
    assert_int_equal(na_seen_load(NULL, &seen, errstr, sizeof(errstr)), NA_OK);
    assert_int_equal(na_seen_check(seen, "f", "h1", "", &rev), NA_SEEN_NEW);
    assert_int_equal(na_seen_put(seen, "f", "h1", "", rev), NA_OK);
    assert_int_equal(na_seen_check(seen, "f", "h1", NULL, &rev), NA_SEEN_SAME);
    assert_int_equal(rev, 1);
    assert_int_equal(na_seen_check(seen, "f", "h1", "0123456789abcdef", &rev),
                     NA_SEEN_EDITED);
    assert_int_equal(rev, 2);
    assert_int_equal(na_seen_put(seen, "f", "h1", "0123456789abcdef", rev), NA_OK);
    assert_int_equal(na_seen_check(seen, "f", "h1", "0123456789abcdef", &rev),
                     NA_SEEN_SAME);
    assert_int_equal(rev, 2);
    /* The text going away again is no news. */
    assert_int_equal(na_seen_check(seen, "f", "h1", "", &rev), NA_SEEN_SAME);
    /* A title-only id survives a dump and load (topic mode) as such. */
    assert_int_equal(na_seen_put(seen, "f", "h2", NULL, 1), NA_OK);
    char *json = na_seen_feed_dump(seen, "f");
    assert_non_null(json);
    na_seen_feed_drop(seen, "f");
    assert_int_equal(
        na_seen_feed_load(seen, "f", json, strlen(json), errstr, sizeof(errstr)), NA_OK);
    free(json);
    assert_int_equal(na_seen_check(seen, "f", "h2", "fedcba9876543210", &rev),
                     NA_SEEN_EDITED);
    na_seen_destroy(seen);
}

static void test_seen_version1_file_loads(void **state) {
    (void)state;
    char path[256], errstr[256];
    na_seen_t *seen = NULL;
    int rev;
    snprintf(path, sizeof(path), "%s/v1.json", dir);
    FILE *fp = fopen(path, "w");
    fputs("{\"version\":1,\"feeds\":{\"f\":{\"etag\":\"\\\"e\\\"\",\"seq\":2,"
          "\"ids\":{\"a\":1,\"b\":2}}}}",
          fp);
    fclose(fp);
    assert_int_equal(na_seen_load(path, &seen, errstr, sizeof(errstr)), NA_OK);
    assert_true(na_seen_has(seen, "f", "a"));
    assert_string_equal(na_seen_validator(seen, "f", "etag"), "\"e\"");
    /* Known id without fingerprint: adopting one is no edit. */
    assert_int_equal(na_seen_check(seen, "f", "b", "ffff", &rev), NA_SEEN_SAME);
    na_seen_destroy(seen);
    /* Version 2 wrote null both for "no text" and for ids it took over from
     * version 1: unknown as well, so an upgrade publishes nothing again. */
    fp = fopen(path, "w");
    fputs("{\"version\":2,\"feeds\":{\"f\":{\"seq\":2,"
          "\"ids\":{\"a\":[1,null,1],\"b\":[2,\"aaaa\",1]},\"fps\":{\"aaaa\":\"b\"}}}}",
          fp);
    fclose(fp);
    assert_int_equal(na_seen_load(path, &seen, errstr, sizeof(errstr)), NA_OK);
    assert_int_equal(na_seen_check(seen, "f", "a", "ffff", &rev), NA_SEEN_SAME);
    assert_int_equal(na_seen_check(seen, "f", "b", "ffff", &rev), NA_SEEN_EDITED);
    na_seen_destroy(seen);
}

static void test_seen_eviction_drops_fingerprints(void **state) {
    (void)state;
    char errstr[256], id[32], fp[32];
    na_seen_t *seen = NULL;
    int rev;
    assert_int_equal(na_seen_load(NULL, &seen, errstr, sizeof(errstr)), NA_OK);
    /* One item per fetch: all but the last belong to earlier fetches. */
    for (unsigned i = 0; i < NA_SEEN_IDS_PER_FEED + NA_SEEN_IDS_PER_FEED / 10 + 2; i++) {
        snprintf(id, sizeof(id), "id%u", i);
        snprintf(fp, sizeof(fp), "fp%u", i);
        na_seen_fetch_begin(seen, "f");
        assert_int_equal(na_seen_put(seen, "f", id, fp, 1), NA_OK);
    }
    assert_false(na_seen_has(seen, "f", "id0"));
    assert_int_equal(na_seen_check(seen, "f", "new", "fp0", &rev), NA_SEEN_NEW);
    snprintf(fp, sizeof(fp), "fp%u", NA_SEEN_IDS_PER_FEED);
    assert_int_equal(na_seen_check(seen, "f", "new", fp, &rev), NA_SEEN_DUPLICATE);
    /* Memory only: saving is a no-op. */
    assert_int_equal(na_seen_save(seen, errstr, sizeof(errstr)), NA_OK);
    na_seen_destroy(seen);
}

static void test_seen_feed_dump_load_and_schedule_fields(void **state) {
    (void)state;
    char errstr[256];
    na_seen_t *a = NULL, *b = NULL;
    int rev;
    assert_int_equal(na_seen_load(NULL, &a, errstr, sizeof(errstr)), NA_OK);
    assert_int_equal(na_seen_load(NULL, &b, errstr, sizeof(errstr)), NA_OK);
    assert_int_equal(na_seen_put(a, "f", "id1", "aaaa", 1), NA_OK);
    assert_int_equal(na_seen_set_str(a, "f", "url", "http://new/feed"), NA_OK);
    assert_int_equal(na_seen_dirty(a), 2);
    assert_int_equal(na_seen_save(a, errstr, sizeof(errstr)), NA_OK);
    assert_int_equal(na_seen_dirty(a), 0);
    assert_int_equal(na_seen_set_int(a, "f", "next_at", 12345, true), NA_OK);
    assert_int_equal(na_seen_dirty(a), 1); /* schedules alone are soft */
    char *json = na_seen_feed_dump(a, "f");
    assert_non_null(json);
    assert_null(na_seen_feed_dump(a, "nope"));
    assert_int_equal(
        na_seen_feed_load(b, "f", json, strlen(json), errstr, sizeof(errstr)), NA_OK);
    free(json);
    assert_int_equal(na_seen_check(b, "f", "id1", "aaaa", &rev), NA_SEEN_SAME);
    assert_string_equal(na_seen_get_str(b, "f", "url"), "http://new/feed");
    assert_int_equal(na_seen_get_int(b, "f", "next_at", 0), 12345);
    assert_int_equal(na_seen_get_int(b, "f", "ttl", -7), -7);
    assert_int_equal(na_seen_feed_load(b, "f", "[1]", 3, errstr, sizeof(errstr)),
                     NA_ERR_PARSE);
    assert_true(na_seen_has(b, "f", "id1")); /* the old state stays */
    na_seen_feed_drop(b, "f");
    assert_int_equal(na_seen_feeds(b), 0);
    na_seen_destroy(a);
    na_seen_destroy(b);
}

/* A source's new URL must not inherit the old URL's validators: the new
 * feed would answer 304 until it changed after the old date. */
static void test_seen_new_url_forgets_the_old_urls_validators(void **state) {
    (void)state;
    char errstr[256];
    na_seen_t *seen = NULL;
    bool reset = true;
    assert_int_equal(na_seen_load(NULL, &seen, errstr, sizeof(errstr)), NA_OK);
    assert_int_equal(na_seen_bind_url(seen, "f", "http://a/feed", &reset), NA_OK);
    assert_false(reset);
    assert_int_equal(na_seen_set_validators(seen, "f", "\"e-a\"", "Mon, 05 Jan 2026"),
                     NA_OK);
    assert_int_equal(na_seen_set_str(seen, "f", "url", "http://a2/feed"), NA_OK);
    assert_int_equal(na_seen_set_str(seen, "f", "moved_from", "http://a/feed"), NA_OK);
    assert_int_equal(na_seen_set_int(seen, "f", "ttl", 60, false), NA_OK);
    assert_int_equal(na_seen_set_int(seen, "f", "skip_hours", 7, false), NA_OK);
    assert_int_equal(na_seen_set_int(seen, "f", "next_at", 99, true), NA_OK);
    assert_int_equal(na_seen_set_str(seen, "f", "retired", "hash"), NA_OK);
    assert_int_equal(na_seen_put(seen, "f", "a1", "0123456789abcdef", 1), NA_OK);
    /* The same URL again (a restart, a reload of an unchanged entry). */
    assert_int_equal(na_seen_bind_url(seen, "f", "http://a/feed", &reset), NA_OK);
    assert_false(reset);
    assert_string_equal(na_seen_validator(seen, "f", "etag"), "\"e-a\"");
    /* Another URL: what was learnt from the old one goes, the ids stay. */
    assert_int_equal(na_seen_bind_url(seen, "f", "http://b/feed", &reset), NA_OK);
    assert_true(reset);
    assert_null(na_seen_validator(seen, "f", "etag"));
    assert_null(na_seen_validator(seen, "f", "last_modified"));
    assert_null(na_seen_get_str(seen, "f", "url"));
    assert_null(na_seen_get_str(seen, "f", "moved_from"));
    assert_int_equal(na_seen_get_int(seen, "f", "ttl", -1), -1);
    assert_int_equal(na_seen_get_int(seen, "f", "skip_hours", -1), -1);
    assert_int_equal(na_seen_get_int(seen, "f", "next_at", -1), -1);
    assert_string_equal(na_seen_get_str(seen, "f", "retired"), "hash");
    assert_true(na_seen_has(seen, "f", "a1"));
    /* State of an older version knows no source URL: a move from another
     * URL says it changed; no move says nothing. */
    assert_int_equal(na_seen_set_validators(seen, "old", "\"e\"", NULL), NA_OK);
    assert_int_equal(na_seen_set_str(seen, "old", "moved_from", "http://x/feed"), NA_OK);
    assert_int_equal(na_seen_bind_url(seen, "old", "http://y/feed", &reset), NA_OK);
    assert_true(reset);
    assert_int_equal(na_seen_set_validators(seen, "older", "\"e\"", NULL), NA_OK);
    assert_int_equal(na_seen_bind_url(seen, "older", "http://y/feed", &reset), NA_OK);
    assert_false(reset);
    assert_string_equal(na_seen_validator(seen, "older", "etag"), "\"e\"");
    na_seen_destroy(seen);
}

static int only_f_active(const char *id, void *ctx) {
    (void)ctx;
    return !strcmp(id, "f");
}

static void test_seen_prune_after_grace(void **state) {
    (void)state;
    char errstr[256];
    na_seen_t *seen = NULL;
    assert_int_equal(na_seen_load(NULL, &seen, errstr, sizeof(errstr)), NA_OK);
    assert_int_equal(na_seen_add(seen, "f", "a"), NA_OK);
    assert_int_equal(na_seen_add(seen, "gone", "a"), NA_OK);
    /* The first sight of an inactive feed starts its grace period. */
    assert_int_equal(na_seen_prune(seen, only_f_active, NULL, 1000, 100), 0);
    assert_int_equal(na_seen_prune(seen, only_f_active, NULL, 1100, 100), 0);
    assert_true(na_seen_has(seen, "gone", "a"));
    assert_int_equal(na_seen_prune(seen, only_f_active, NULL, 1101, 100), 1);
    assert_false(na_seen_has(seen, "gone", "a"));
    assert_true(na_seen_has(seen, "f", "a"));
    assert_int_equal(na_seen_prune(seen, only_f_active, NULL, 99999, 100), 0);
    na_seen_destroy(seen);
}

/* kill -9 at random moments while a child rewrites the state in a loop: the
 * file always loads, and holds a whole state (never a torn one). */
static void test_seen_survives_kill_9(void **state) {
    (void)state;
    char path[256], errstr[256];
    snprintf(path, sizeof(path), "%s/killed.json", dir);
    unlink(path);
    srandom((unsigned)time(NULL));
    size_t seen_ids = 0;
    for (int round = 0; round < 25; round++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            na_seen_t *seen = NULL;
            char id[64], fp[32], e[256];
            if (na_seen_load(path, &seen, e, sizeof(e))) {
                _exit(3);
            }
            for (unsigned i = 0;; i++) {
                snprintf(id, sizeof(id), "r%d-%u", round, i);
                snprintf(fp, sizeof(fp), "%016u", i);
                if (na_seen_put(seen, "feed", id, fp, 1) ||
                    na_seen_set_validators(seen, "feed", id, NULL) ||
                    na_seen_save(seen, e, sizeof(e))) {
                    _exit(4);
                }
            }
        }
        struct timespec ts = {0, (long)(1 + random() % 40) * 1000000L};
        nanosleep(&ts, NULL);
        assert_int_equal(kill(pid, SIGKILL), 0);
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        na_seen_t *seen = NULL;
        assert_int_equal(na_seen_load(path, &seen, errstr, sizeof(errstr)), NA_OK);
        /* A whole state: the validator names an id that is in it. */
        const char *etag = na_seen_validator(seen, "feed", "etag");
        if (etag) {
            assert_true(na_seen_has(seen, "feed", etag));
        }
        seen_ids = na_seen_count(seen, "feed");
        na_seen_destroy(seen);
    }
    /* The children did write (and were killed while writing). */
    assert_true(seen_ids > 25);
}

static void test_schedule_ttl_skip_and_backoff(void **state) {
    (void)state;
    /* 2026-01-05 is a Monday; 10:00 UTC. */
    const int64_t mon10 = 1767607200LL * 1000;
    int64_t d = na_producer_next_delay_ms(mon10, 60000, 0, 0, 0, 0);
    assert_int_equal(d, 60000);
    d = na_producer_next_delay_ms(mon10, 600000, 0, 0, 0, 10);
    assert_true(d >= 540000 && d <= 660000);
    /* <ttl> longer than the interval wins, capped at a day. */
    assert_int_equal(na_producer_next_delay_ms(mon10, 60000, 30, 0, 0, 0), 1800000);
    assert_int_equal(na_producer_next_delay_ms(mon10, 60000, 100000, 0, 0, 0),
                     24LL * 3600 * 1000);
    /* skipHours 10 and 11: the next poll is at 12:00. */
    assert_int_equal(
        na_producer_next_delay_ms(mon10, 60000, 0, (1u << 10) | (1u << 11), 0, 0),
        2 * 3600 * 1000);
    /* skipDays Monday (bit 1): Tuesday 00:00. */
    assert_int_equal(na_producer_next_delay_ms(mon10, 60000, 0, 0, 1u << 1, 0),
                     14LL * 3600 * 1000);
    /* Every hour skipped is nonsense: ignored. */
    assert_int_equal(na_producer_next_delay_ms(mon10, 60000, 0, 0xffffffu, 0, 0), 60000);

    int64_t prev = 0;
    for (unsigned e = 1; e <= 12; e++) {
        int64_t b = na_producer_backoff_ms(e, 1000, 60000, -1);
        int64_t want = 1000LL << (e - 1);
        if (want > 60000) {
            want = 60000;
        }
        assert_true(b >= want * 8 / 10 && b <= want * 12 / 10);
        assert_true(e < 3 || b >= prev * 8 / 12 || want == 60000);
        prev = b;
    }
    /* Retry-After longer than the backoff wins; never giving up: still finite. */
    assert_int_equal(na_producer_backoff_ms(1, 1000, 60000, 120000), 120000);
    assert_true(na_producer_backoff_ms(1000, 1000, 60000, -1) <= 72000);
}

/* Issue: one item dated 2099 kept its date in article/v1 (only the record
 * timestamp was bounded) and turned the consumer's story grouping off. */
static void test_future_published_at_is_bounded_by_the_fetch(void **state) {
    (void)state;
    struct na_article a;
    const int64_t fetched = 1767686400; /* 2026-01-06T08:00:00Z */
    na_article_init(&a);
    a.fetched_at = fetched;
    a.published_at = 4102444800LL; /* 2100-01-01 */
    assert_true(na_producer_bound_published(&a));
    assert_int_equal(a.published_at, fetched);
    assert_false(na_producer_bound_published(&a)); /* now equal: left alone */
    a.published_at = fetched + 1;
    assert_true(na_producer_bound_published(&a));
    assert_int_equal(a.published_at, fetched);
    a.published_at = fetched - 3600; /* the past stays true */
    assert_false(na_producer_bound_published(&a));
    assert_int_equal(a.published_at, fetched - 3600);
    a.published_at = NA_TIME_UNKNOWN;
    assert_false(na_producer_bound_published(&a));
    assert_int_equal(a.published_at, NA_TIME_UNKNOWN);
}

/* DESIGN.md: the record timestamp is the published time, never later than
 * the fetch, never older than the fetch minus (retention - 1 day). */
static void test_record_timestamp_policy(void **state) {
    (void)state;
    struct na_article a;
    const int64_t fetched = 1767686400;
    const int64_t floor_ms = fetched * 1000 - (NA_ARTICLES_RETENTION_MS - 86400000LL);
    na_article_init(&a);
    a.fetched_at = fetched;
    a.published_at = fetched - 7200;
    assert_int_equal(na_producer_record_ts_ms(&a), (fetched - 7200) * 1000);
    a.published_at = fetched + 86400;
    assert_int_equal(na_producer_record_ts_ms(&a), fetched * 1000);
    a.published_at = NA_TIME_UNKNOWN;
    assert_int_equal(na_producer_record_ts_ms(&a), fetched * 1000);
    a.published_at = 978307200; /* 2001 */
    assert_int_equal(na_producer_record_ts_ms(&a), floor_ms);
    a.published_at = floor_ms / 1000 + 1; /* just inside the window */
    assert_int_equal(na_producer_record_ts_ms(&a), (floor_ms / 1000 + 1) * 1000);
}

static void test_source_json_and_hash(void **state) {
    (void)state;
    struct na_source a, b;
    char errstr[256];
    const char *j1 = "{\"url\":\"http://x/a.xml\",\"interval\":\"90s\"}";
    const char *j2 = "{\"interval\":\"90s\",\"url\":\"http://x/a.xml\",\"id\":\"a\"}";
    const char *j3 = "{\"interval\":\"2m\",\"url\":\"http://x/a.xml\"}";
    assert_int_equal(
        na_source_parse_json(j1, strlen(j1), "a", &a, errstr, sizeof(errstr)), NA_OK);
    assert_int_equal(
        na_source_parse_json(j2, strlen(j2), "a", &b, errstr, sizeof(errstr)), NA_OK);
    assert_string_equal(a.id, "a");
    assert_string_equal(a.hash, b.hash); /* same entry, whatever the key order */
    assert_non_null(strstr(a.json, "\"id\":\"a\""));
    na_source_cleanup(&b);
    assert_int_equal(
        na_source_parse_json(j3, strlen(j3), "a", &b, errstr, sizeof(errstr)), NA_OK);
    assert_string_not_equal(a.hash, b.hash);
    na_source_cleanup(&b);
    assert_int_equal(
        na_source_parse_json(j2, strlen(j2), "other", &b, errstr, sizeof(errstr)),
        NA_ERR_CONFIG);
    assert_non_null(strstr(errstr, "differs from the record key"));
    assert_null(b.id);
    assert_int_equal(na_source_parse_json("{", 1, "a", &b, errstr, sizeof(errstr)),
                     NA_ERR_PARSE);
    na_source_cleanup(&a);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seen_survives_reload),
        cmocka_unit_test(test_seen_is_bounded_oldest_first),
        cmocka_unit_test(test_seen_feed_larger_than_history_is_not_new_again),
        cmocka_unit_test(test_corrupt_seen_state_is_an_error),
        cmocka_unit_test(test_sources_valid_and_invalid),
        cmocka_unit_test(test_config_table_precedence_and_errors),
        cmocka_unit_test(test_redact_url),
        cmocka_unit_test(test_fingerprint_normalises_and_needs_text),
        cmocka_unit_test(test_seen_verdicts_new_same_edited_duplicate),
        cmocka_unit_test(test_seen_headline_only_item_gets_its_body),
        cmocka_unit_test(test_seen_version1_file_loads),
        cmocka_unit_test(test_seen_eviction_drops_fingerprints),
        cmocka_unit_test(test_seen_feed_dump_load_and_schedule_fields),
        cmocka_unit_test(test_seen_new_url_forgets_the_old_urls_validators),
        cmocka_unit_test(test_seen_prune_after_grace),
        cmocka_unit_test(test_seen_survives_kill_9),
        cmocka_unit_test(test_schedule_ttl_skip_and_backoff),
        cmocka_unit_test(test_source_json_and_hash),
        cmocka_unit_test(test_future_published_at_is_bounded_by_the_fetch),
        cmocka_unit_test(test_record_timestamp_policy),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
