/* Sources files, the shared config tables, schedules and record times
 * (the seen-state has its own: test_seen.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "newsalert/article.h"
#include "newsalert/config.h"
#include "newsalert/fault.h"
#include "newsalert/kafka.h"
#include "newsalert/limits.h"
#include "newsalert/timeutil.h"
#include "newsalert/util.h"
#include "producer.h"
#include "seen.h"
#include "producer_reload.h"
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

/* Entries of @p path (a folder), "." and ".." included; -1: unreadable. */
static int entries(const char *path) {
    DIR *d = opendir(path);
    int n = 0;
    if (!d) {
        return -1;
    }
    while (readdir(d)) {
        n++;
    }
    closedir(d);
    return n;
}

/* A state file whose fsync fails (a failing disk) is an error each time,
 * and leaves neither a descriptor nor its temporary file behind: the
 * producer retries a dirty feed's save about every second, so one leaked
 * descriptor a try ran it out of sockets. Then the disk is back. */
static void test_write_file_fsync_failure_leaks_nothing(void **state) {
    (void)state;
    char sub[256], path[300], errstr[512];
    snprintf(sub, sizeof(sub), "%s/fsync", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    snprintf(path, sizeof(path), "%s/state.json", sub);
    int fds = entries("/proc/self/fd");
    assert_true(fds > 0);
    na_fault_arm("file_fsync:40");
    for (int i = 0; i < 40; i++) {
        errstr[0] = '\0';
        na_err_t err = i % 2
                           ? na_write_file_replace(path, "{}", 2, errstr, sizeof(errstr))
                           : na_write_file_atomic(path, "{}", 2, errstr, sizeof(errstr));
        assert_int_equal(err, NA_ERR_IO);
        assert_non_null(strstr(errstr, strerror(EIO)));
    }
    na_fault_arm(NULL);
    assert_int_equal(entries("/proc/self/fd"), fds);
    assert_int_equal(entries(sub), 2); /* no temporary file, no state file */
    assert_int_equal(na_write_file_replace(path, "{\"v\":1}", 7, errstr, sizeof(errstr)),
                     NA_OK);
    assert_int_equal(entries(sub), 3);
    assert_int_equal(entries("/proc/self/fd"), fds);
}

/* A source without an id has its URL as id; one with user info or a query
 * is never shown whole, in errors either (they reach the logs): a
 * duplicate entry, a source record that is not JSON or names another id,
 * a state record of another feed. */
static void test_source_ids_with_secrets_are_shown_redacted(void **state) {
    (void)state;
    const char *u1 = "http://alice:PLANTEDPW@feeds.example/rss.xml?token=PLANTEDTOKEN";
    const char *u2 = "https://feeds.example/b.xml?key=PLANTEDKEY";
    char errstr[1024], buf[1024];
    char *shown = na_conf_shown_id(u1);
    assert_non_null(shown);
    assert_int_equal(strncmp(shown, "http://feeds.example/rss.xml?***~", 33), 0);
    assert_int_equal(strlen(shown), 33 + 8);
    assert_string_equal(na_conf_shown_id_buf("plain-id", buf, sizeof(buf)), "plain-id");
    assert_string_not_equal(na_conf_shown_id_buf(u2, buf, sizeof(buf)), shown);
    free(shown);

    struct na_sources s;
    snprintf(buf, sizeof(buf), "[{\"url\":\"%s\"},{\"url\":\"%s\"}]", u1, u1);
    assert_int_equal(
        na_sources_load_buf(buf, strlen(buf), "t", &s, errstr, sizeof(errstr)),
        NA_ERR_CONFIG);
    assert_non_null(strstr(errstr, "duplicate id \"http://feeds.example/rss.xml?***~"));
    assert_null(strstr(errstr, "PLANTED"));

    /* a file or record that is not JSON: its text is not shown (a secret
     * in an unterminated string) */
    static const char broken[] = "[{\"url\": \"http://feeds.example/x\", \"password\": "
                                 "\"PLANTEDpw\n}]";
    assert_int_equal(
        na_sources_load_buf(broken, strlen(broken), "t", &s, errstr, sizeof(errstr)),
        NA_ERR_PARSE);
    assert_non_null(strstr(errstr, "t:1:"));
    assert_null(strstr(errstr, "PLANTED"));
    struct na_source src;
    assert_int_not_equal(na_source_parse_json(broken + 1, strlen(broken) - 2, "k", &src,
                                              errstr, sizeof(errstr)),
                         NA_OK);
    assert_null(strstr(errstr, "PLANTED"));
    assert_int_not_equal(
        na_source_parse_json("{oops", 5, u1, &src, errstr, sizeof(errstr)), NA_OK);
    assert_non_null(strstr(errstr, "source http://feeds.example/rss.xml?***~"));
    assert_null(strstr(errstr, "PLANTED"));
    snprintf(buf, sizeof(buf), "{\"id\":\"%s\",\"url\":\"%s\"}", u2, u2);
    assert_int_equal(
        na_source_parse_json(buf, strlen(buf), u1, &src, errstr, sizeof(errstr)),
        NA_ERR_CONFIG);
    assert_non_null(strstr(errstr, "differs from the record key"));
    assert_null(strstr(errstr, "PLANTED"));

    char sdir[256];
    snprintf(sdir, sizeof(sdir), "%s/redact", dir);
    assert_int_equal(mkdir(sdir, 0700), 0);
    na_seen_t *seen = NULL;
    assert_int_equal(na_seen_load(sdir, &seen, errstr, sizeof(errstr)), NA_OK);
    assert_int_equal(na_seen_add(seen, u1, "a1"), NA_OK);
    size_t len = 0;
    char *dump = na_seen_feed_dump(seen, u1, &len);
    assert_non_null(dump);
    assert_int_not_equal(na_seen_feed_load(seen, u2, dump, len, errstr, sizeof(errstr)),
                         NA_OK);
    assert_non_null(strstr(errstr, "not of"));
    assert_null(strstr(errstr, "PLANTED"));
    free(dump);
    na_seen_destroy(seen);
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
    /* full text off by default; the threshold has its default anyway */
    assert_int_equal(s.v[1].full_text, NA_FULLTEXT_OFF);
    assert_int_equal(s.v[1].full_text_min_chars, NA_SOURCE_DEFAULT_FULL_TEXT_MIN_CHARS);
    assert_false(s.v[1].allow_private_addresses);
    na_sources_cleanup(&s);

    const char *ft = "[{\"url\":\"http://x/a\",\"full_text\":true},"
                     "{\"url\":\"http://x/b\",\"full_text\":\"auto\","
                     "\"full_text_min_chars\":200,\"allow_private_addresses\":true},"
                     "{\"url\":\"http://x/c\",\"full_text\":false}]";
    assert_int_equal(na_sources_load_buf(ft, strlen(ft), "t", &s, errstr, sizeof(errstr)),
                     NA_OK);
    assert_int_equal(s.v[0].full_text, NA_FULLTEXT_ON);
    assert_int_equal(s.v[1].full_text, NA_FULLTEXT_AUTO);
    assert_int_equal(s.v[1].full_text_min_chars, 200);
    assert_true(s.v[1].allow_private_addresses);
    assert_int_equal(s.v[2].full_text, NA_FULLTEXT_OFF);
    na_sources_cleanup(&s);

    /* 30 days is the longest interval, in either form */
    const char *slow = "[{\"url\":\"http://x/a\",\"interval\":\"30d\"},"
                       "{\"url\":\"http://x/b\",\"interval\":2592000}]";
    assert_int_equal(
        na_sources_load_buf(slow, strlen(slow), "t", &s, errstr, sizeof(errstr)), NA_OK);
    assert_int_equal(s.v[0].interval_ms, 30LL * 86400 * 1000);
    assert_int_equal(s.v[1].interval_ms, 30LL * 86400 * 1000);
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
        {"[{\"url\":\"http://x/\",\"full_text\":\"always\"}]",
         "full_text: want true, false or \"auto\""},
        {"[{\"url\":\"http://x/\",\"full_text_min_chars\":-1}]", "full_text_min_chars"},
        {"[{\"url\":\"http://x/\",\"allow_private_addresses\":\"yes\"}]",
         "allow_private_addresses: want true or false"},
        {"[{\"url\": ", "t:1:"},
        /* a duration past 30 days, as a number is: as a string it overflowed
         * the schedule (three times it, plus the clock, plus jitter) */
        {"[{\"url\":\"http://x/\",\"interval\":\"3.1e18ms\"}]", "interval"},
        {"[{\"url\":\"http://x/\",\"interval\":\"31d\"}]", "interval"},
        {"[{\"url\":\"http://x/\",\"stale_after\":\"1e11d\"}]", "stale_after"},
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

/* The sources of @p n entries, ids in a mixed order; entry @p dup_at (if
 * below n) repeats the id of entry @p dup_of. New; free(). */
static char *many_sources(unsigned n, unsigned dup_at, unsigned dup_of) {
    struct na_buf b;
    na_buf_init(&b);
    na_buf_puts(&b, "{\"sources\": [");
    for (unsigned i = 0; i < n; i++) {
        unsigned k = (unsigned)(((unsigned long long)i * 7919u) % n);
        if (i == dup_at) {
            k = (unsigned)(((unsigned long long)dup_of * 7919u) % n);
        }
        na_buf_printf(&b, "%s{\"id\":\"feed-%06u\",\"url\":\"http://x.example/%u\"}",
                      i ? "," : "", k, i);
    }
    na_buf_puts(&b, "]}");
    assert_false(b.oom);
    return na_buf_steal(&b);
}

/*
 * A sources file of NA_MAX_SOURCES entries: each was checked against every
 * earlier one for a duplicate id, and a reload looked each feed up by a scan
 * of the new list (O(n^2): a Release producer took 111 s to start on
 * 100,000 sources, and stalled as long at every SIGHUP or change of the
 * file). Here: the whole list loads, every id is found where it is (and
 * five times as many ids that are not there are not), the
 * first duplicate in file order is the one named, and a bad entry after
 * it does not hide it. Not timed: the old loader, or the old look-up alone,
 * under the sanitizers runs past ctest's timeout on it (the look-up alone
 * took 560 s with one absent id per feed).
 */
static void test_many_sources_load_and_are_found(void **state) {
    (void)state;
    const unsigned n = NA_MAX_SOURCES;
    char errstr[512], want[128];
    struct na_sources s;
    char *doc = many_sources(n, n, 0);
    assert_int_equal(
        na_sources_load_buf(doc, strlen(doc), "t", &s, errstr, sizeof(errstr)), NA_OK);
    assert_int_equal(s.cnt, n);
    for (unsigned i = 0; i < n; i++) {
        assert_int_equal(na_producer_source_find(&s, s.v[i].id), (long)i);
        for (const char *c = "-+~a0"; *c; c++) {
            char absent[64]; /* feeds the new list no longer has */
            snprintf(absent, sizeof(absent), "%s%c", s.v[i].id, *c);
            assert_int_equal(na_producer_source_find(&s, absent), -1);
        }
    }
    assert_int_equal(na_producer_source_find(&s, "feed-"), -1);
    assert_int_equal(na_producer_source_find(&s, "feed-999999"), -1);
    na_sources_cleanup(&s);
    free(doc);

    /* the last entry repeats the first's id */
    doc = many_sources(n, n - 1, 0);
    assert_int_equal(
        na_sources_load_buf(doc, strlen(doc), "t", &s, errstr, sizeof(errstr)),
        NA_ERR_CONFIG);
    snprintf(want, sizeof(want), "t: sources[%u]: duplicate id \"feed-000000\"", n - 1);
    assert_string_equal(errstr, want);
    assert_int_equal(s.cnt, 0);
    free(doc);

    /* the first duplicate in file order, before a bad entry; a bad entry
     * before any duplicate */
    static const char *const cases[][2] = {
        {"[{\"id\":\"c\",\"url\":\"http://x/\"},{\"id\":\"b\",\"url\":\"http://x/\"},"
         "{\"id\":\"b\",\"url\":\"http://x/\"},{\"id\":\"c\",\"url\":\"http://x/\"},"
         "{\"id\":\"d\"}]",
         "t: sources[2]: duplicate id \"b\""},
        {"[{\"id\":\"c\",\"url\":\"http://x/\"},{\"id\":\"d\"},"
         "{\"id\":\"c\",\"url\":\"http://x/\"}]",
         "t: sources[1]: missing \"url\""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(na_sources_load_buf(cases[i][0], strlen(cases[i][0]), "t", &s,
                                             errstr, sizeof(errstr)),
                         NA_ERR_CONFIG);
        assert_string_equal(errstr, cases[i][1]);
        assert_int_equal(s.cnt, 0);
    }
}

/* A source's id (its url by default) is the key of its records in topic
 * mode, whose readers hold any id of up to NA_MAX_URL_BYTES: a longer id or
 * url is refused when the file is loaded, naming the entry, not the URL
 * (it may carry a token), instead of being cut by a reader. */
static void test_source_id_and_url_longer_than_the_bound_are_refused(void **state) {
    (void)state;
    const char *head = "https://feeds.example/rss?token=PLANTED";
    size_t size = 2 * NA_MAX_URL_BYTES + 256;
    char *url = malloc(NA_MAX_URL_BYTES + 2);
    char *buf = malloc(size);
    char errstr[512];
    struct na_sources s;
    struct na_source src;
    assert_non_null(url);
    assert_non_null(buf);
    memset(url, 'a', NA_MAX_URL_BYTES + 1);
    memcpy(url, head, strlen(head));
    url[NA_MAX_URL_BYTES] = '\0'; /* at the bound */

    snprintf(buf, size, "[{\"url\":\"%s\"},{\"id\":\"b%s\",\"url\":\"http://x/\"}]", url,
             url + 1);
    assert_int_equal(
        na_sources_load_buf(buf, strlen(buf), "t", &s, errstr, sizeof(errstr)), NA_OK);
    assert_string_equal(s.v[0].id, url);
    assert_int_equal(strlen(s.v[1].id), NA_MAX_URL_BYTES);
    na_sources_cleanup(&s);
    snprintf(buf, size, "{\"url\":\"%s\"}", url);
    assert_int_equal(
        na_source_parse_json(buf, strlen(buf), url, &src, errstr, sizeof(errstr)), NA_OK);
    assert_string_equal(src.id, url);
    na_source_cleanup(&src);

    url[NA_MAX_URL_BYTES] = 'a'; /* one byte more */
    url[NA_MAX_URL_BYTES + 1] = '\0';
    static const char *const forms[][3] = {
        /* before the URL, after, entry named */
        {"[{\"id\":\"a\",\"url\":\"http://x/\"},{\"url\":\"", "\"}]",
         "t: sources[1].url"},
        {"[{\"url\":\"http://x/\",\"id\":\"", "\"}]", "t: sources[0].id"},
        {"[{\"id\":\"a\",\"url\":\"", "\"}]", "t: sources[0].url"},
    };
    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        char want[128];
        snprintf(buf, size, "%s%s%s", forms[i][0], url, forms[i][1]);
        snprintf(want, sizeof(want), "%s: longer than %u bytes", forms[i][2],
                 NA_MAX_URL_BYTES);
        errstr[0] = '\0';
        assert_int_equal(
            na_sources_load_buf(buf, strlen(buf), "t", &s, errstr, sizeof(errstr)),
            NA_ERR_CONFIG);
        assert_string_equal(errstr, want);
        assert_null(strstr(errstr, "PLANTED"));
        assert_int_equal(s.cnt, 0);
    }
    /* A sources record carrying such a url is refused too. */
    snprintf(buf, size, "{\"id\":\"a\",\"url\":\"%s\"}", url);
    assert_int_equal(
        na_source_parse_json(buf, strlen(buf), "a", &src, errstr, sizeof(errstr)),
        NA_ERR_CONFIG);
    assert_non_null(strstr(errstr, "sources[0].url: longer than"));
    assert_null(strstr(errstr, "PLANTED"));
    assert_null(src.id);
    free(url);
    free(buf);
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
        cmocka_unit_test(test_write_file_fsync_failure_leaks_nothing),
        cmocka_unit_test(test_source_ids_with_secrets_are_shown_redacted),
        cmocka_unit_test(test_sources_valid_and_invalid),
        cmocka_unit_test(test_source_id_and_url_longer_than_the_bound_are_refused),
        cmocka_unit_test(test_many_sources_load_and_are_found),
        cmocka_unit_test(test_config_table_precedence_and_errors),
        cmocka_unit_test(test_redact_url),
        cmocka_unit_test(test_schedule_ttl_skip_and_backoff),
        cmocka_unit_test(test_source_json_and_hash),
        cmocka_unit_test(test_future_published_at_is_bounded_by_the_fetch),
        cmocka_unit_test(test_record_timestamp_policy),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
