/* Seen-state, sources files and the shared config tables. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "newsalert/config.h"
#include "newsalert/limits.h"
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

static void test_seen_is_bounded_oldest_first(void **state) {
    (void)state;
    char path[256], errstr[256], id[32];
    na_seen_t *seen = NULL;
    snprintf(path, sizeof(path), "%s/bounded.json", dir);
    assert_int_equal(na_seen_load(path, &seen, errstr, sizeof(errstr)), NA_OK);
    for (unsigned i = 0; i < NA_SEEN_IDS_PER_FEED + 10; i++) {
        snprintf(id, sizeof(id), "id%u", i);
        assert_int_equal(na_seen_add(seen, "f", id), NA_OK);
    }
    assert_true(na_seen_count(seen, "f") <= NA_SEEN_IDS_PER_FEED);
    assert_false(na_seen_has(seen, "f", "id0"));
    snprintf(id, sizeof(id), "id%u", NA_SEEN_IDS_PER_FEED + 9);
    assert_true(na_seen_has(seen, "f", id));
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
    const char *ok = "{\"sources\":[{\"id\":\"a\",\"name\":\"A\",\"url\":\"http://x/a.xml\","
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
        {"{\"sources\":[{\"url\":\"http://x/\",\"intervall\":5}]}", "unknown key \"intervall\""},
        {"{\"sources\":[{\"url\":\"http://x/\",\"interval\":\"soon\"}]}", "interval"},
        {"{\"sources\":[{\"id\":\"a\",\"url\":\"http://x/\"},{\"id\":\"a\",\"url\":\"http://y/\"}]}",
         "duplicate id"},
        {"{\"sources\":[{\"url\":\"http://x/\",\"headers\":{\"X\":\"a\\r\\nInjected: 1\"}}]}",
         "not a valid header"},
        {"{\"feeds\":[]}", "unknown key \"feeds\""},
        {"[{\"url\": ", "t:1:"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        errstr[0] = '\0';
        assert_int_not_equal(na_sources_load_buf(bad[i][0], strlen(bad[i][0]), "t", &s, errstr,
                                                 sizeof(errstr)),
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
    assert_int_equal(na_conf_defaults(na_producer_conf_table, &conf, errstr, sizeof(errstr)),
                     NA_OK);
    assert_string_equal(conf.topic, "news.articles");
    assert_int_equal(conf.fetch_timeout_ms, 30000);
    json_t *file = json_loads("{\"topic\":\"t.file\",\"fetch_timeout\":\"5s\"}", 0, &jerr);
    assert_int_equal(na_conf_apply_json(na_producer_conf_table, &conf, file, "f.json", NULL,
                                        errstr, sizeof(errstr)),
                     NA_OK);
    json_decref(file);
    assert_string_equal(conf.topic, "t.file");
    setenv("NEWSALERT_TOPIC", "t.env", 1);
    assert_int_equal(na_conf_apply_env(na_producer_conf_table, &conf, errstr, sizeof(errstr)),
                     NA_OK);
    unsetenv("NEWSALERT_TOPIC");
    assert_string_equal(conf.topic, "t.env");
    assert_int_equal(conf.fetch_timeout_ms, 5000);
    assert_int_equal(na_conf_set(na_conf_find(na_producer_conf_table, "fetch-timeout"), &conf,
                                 "2m", "flag", errstr, sizeof(errstr)),
                     NA_OK);
    assert_int_equal(conf.fetch_timeout_ms, 120000);

    json_t *unknown = json_loads("{\"fetch_timout\":\"5s\"}", 0, &jerr);
    assert_int_equal(na_conf_apply_json(na_producer_conf_table, &conf, unknown, "f.json", NULL,
                                        errstr, sizeof(errstr)),
                     NA_ERR_CONFIG);
    assert_non_null(strstr(errstr, "unknown key \"fetch_timout\""));
    json_decref(unknown);
    assert_int_equal(na_conf_set(na_conf_find(na_producer_conf_table, "fetch_concurrency"),
                                 &conf, "0", "flag", errstr, sizeof(errstr)),
                     NA_ERR_CONFIG);
    assert_non_null(strstr(errstr, "fetch_concurrency"));
    assert_int_equal(na_conf_set(na_conf_find(na_producer_conf_table, "once"), &conf, "maybe",
                                 "flag", errstr, sizeof(errstr)),
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
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seen_survives_reload),
        cmocka_unit_test(test_seen_is_bounded_oldest_first),
        cmocka_unit_test(test_corrupt_seen_state_is_an_error),
        cmocka_unit_test(test_sources_valid_and_invalid),
        cmocka_unit_test(test_config_table_precedence_and_errors),
        cmocka_unit_test(test_redact_url),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
