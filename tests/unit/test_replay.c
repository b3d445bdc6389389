/*
 * Replay: bound parsing, range planning (clamping, empty partitions,
 * partition selection), resume arguments, progress text, the backtest
 * difference, the classified line, and whole runs on librdkafka's mock
 * cluster (stops by itself, empty partitions, offsets, dry-run dedup, a
 * ledger record the broker refuses).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "consumer.h"
#include "httpstub.h"
#include "newsalert/article.h"
#include "newsalert/config.h"
#include "newsalert/fault.h"
#include "newsalert/hash.h"
#include "newsalert/http.h"
#include "newsalert/kafka.h"
#include "newsalert/log.h"
#include "newsalert/metrics.h"
#include "newsalert/timeutil.h"
#include "newsalert/util.h"
#include "alert.h"
#include "cmd_replay.h"
#include "pipeline.h"
#include "replay.h"
#include "route.h"
#include "rules.h"

/* ---- bounds ---- */

static void test_bound_keywords_and_times(void **state) {
    (void)state;
    struct na_replay_bound b;
    char errstr[256];
    assert_int_equal(na_replay_bound_parse("beginning", &b, errstr, sizeof(errstr)),
                     NA_OK);
    assert_int_equal(b.kind, NA_REPLAY_BEGINNING);
    na_replay_bound_cleanup(&b);
    assert_int_equal(na_replay_bound_parse("end", &b, errstr, sizeof(errstr)), NA_OK);
    assert_int_equal(b.kind, NA_REPLAY_END);
    na_replay_bound_cleanup(&b);
    assert_int_equal(
        na_replay_bound_parse("2026-01-06T08:00:00Z", &b, errstr, sizeof(errstr)), NA_OK);
    assert_int_equal(b.kind, NA_REPLAY_TIME);
    assert_int_equal(b.time_ms, 1767686400000LL);
    na_replay_bound_cleanup(&b);
    assert_int_equal(
        na_replay_bound_parse("2026-01-06T16:00:00+08:00", &b, errstr, sizeof(errstr)),
        NA_OK);
    assert_int_equal(b.time_ms, 1767686400000LL);
    na_replay_bound_cleanup(&b);
    /* Record timestamps are milliseconds: so is a bound's fraction ([from,
     * to) holds a record at .100 only when from is .100 or before). */
    assert_int_equal(
        na_replay_bound_parse("2026-01-06T08:00:00.250Z", &b, errstr, sizeof(errstr)),
        NA_OK);
    assert_int_equal(b.time_ms, 1767686400250LL);
    na_replay_bound_cleanup(&b);
}

static void test_bound_offsets_sorted(void **state) {
    (void)state;
    struct na_replay_bound b;
    char errstr[256];
    assert_int_equal(na_replay_bound_parse("3:7,0:120,1:80", &b, errstr, sizeof(errstr)),
                     NA_OK);
    assert_int_equal(b.kind, NA_REPLAY_OFFSETS);
    assert_int_equal(b.pos_cnt, 3);
    assert_int_equal(b.pos[0].partition, 0);
    assert_int_equal(b.pos[0].offset, 120);
    assert_int_equal(b.pos[1].partition, 1);
    assert_int_equal(b.pos[1].offset, 80);
    assert_int_equal(b.pos[2].partition, 3);
    assert_int_equal(b.pos[2].offset, 7);
    na_replay_bound_cleanup(&b);
}

static void test_bound_rejects_bad_input(void **state) {
    (void)state;
    static const char *const bad[] = {"",
                                      "yesterday",
                                      "0:",
                                      ":5",
                                      "0:-1",
                                      "-1:5",
                                      "0:1,",
                                      "0:1,,1:2",
                                      "0:1,0:2",
                                      "0:1x",
                                      "2026-13-01T00:00:00Z",
                                      "2026-01-06T25:00:00Z",
                                      "0:99999999999999999999",
                                      NULL};
    for (size_t i = 0; bad[i]; i++) {
        struct na_replay_bound b;
        char errstr[256] = "";
        na_err_t err = na_replay_bound_parse(bad[i], &b, errstr, sizeof(errstr));
        if (err != NA_ERR_INVALID) {
            print_error("\"%s\" accepted\n", bad[i]);
        }
        assert_int_equal(err, NA_ERR_INVALID);
        assert_true(errstr[0] != '\0');
        assert_null(strchr(errstr, '\n'));
        na_replay_bound_cleanup(&b);
    }
}

/* ---- planning ---- */

static void bound(const char *s, struct na_replay_bound *b) {
    char errstr[256];
    assert_int_equal(na_replay_bound_parse(s, b, errstr, sizeof(errstr)), NA_OK);
}

static void test_plan_beginning_to_end_skips_empty_partitions(void **state) {
    (void)state;
    struct na_replay_bound from, to;
    struct na_replay_range r;
    char errstr[256];
    struct na_replay_wm wm[] = {
        {2, 5, 5, -1, -1}, {0, 10, 40, -1, -1}, {1, 0, 7, -1, -1}};
    bound("beginning", &from);
    bound("end", &to);
    assert_int_equal(na_replay_plan(&from, &to, wm, 3, &r, errstr, sizeof(errstr)),
                     NA_OK);
    assert_int_equal(r.cnt, 3);
    assert_int_equal(r.parts[0].partition, 0); /* sorted */
    assert_int_equal(r.parts[0].start, 10);
    assert_int_equal(r.parts[0].end, 40);
    assert_false(r.parts[0].done);
    assert_int_equal(r.parts[1].start, 0);
    assert_int_equal(r.parts[1].end, 7);
    /* An empty partition is done before anything is read. */
    assert_int_equal(r.parts[2].start, 5);
    assert_int_equal(r.parts[2].end, 5);
    assert_true(r.parts[2].done);
    assert_int_equal(na_replay_range_total(&r), 37);
    assert_int_equal(na_replay_range_done(&r), 0);
    assert_int_equal(r.ts_from_ms, NA_REPLAY_TS_NONE);
    assert_int_equal(r.ts_to_ms, NA_REPLAY_TS_NONE);
    na_replay_range_cleanup(&r);
    na_replay_bound_cleanup(&from);
    na_replay_bound_cleanup(&to);
}

static void test_plan_times(void **state) {
    (void)state;
    struct na_replay_bound from, to;
    struct na_replay_range r;
    char errstr[256];
    /* p0: both times inside; p1: nothing stamped at/after from (-1 -> high);
     * p2: to lies after every record (-1 -> high). */
    struct na_replay_wm wm[] = {
        {0, 0, 100, 20, 60}, {1, 0, 50, -1, -1}, {2, 3, 9, 4, -1}};
    bound("2026-01-06T00:00:00Z", &from);
    bound("2026-01-07T00:00:00Z", &to);
    assert_int_equal(na_replay_plan(&from, &to, wm, 3, &r, errstr, sizeof(errstr)),
                     NA_OK);
    assert_int_equal(r.parts[0].start, 20);
    assert_int_equal(r.parts[0].end, 60);
    assert_int_equal(r.parts[1].start, 50);
    assert_int_equal(r.parts[1].end, 50);
    assert_true(r.parts[1].done);
    assert_int_equal(r.parts[2].start, 4);
    assert_int_equal(r.parts[2].end, 9);
    assert_int_equal(r.ts_from_ms, from.time_ms);
    assert_int_equal(r.ts_to_ms, to.time_ms);
    na_replay_range_cleanup(&r);
    na_replay_bound_cleanup(&from);
    na_replay_bound_cleanup(&to);
}

static void test_plan_offsets_select_and_clamp(void **state) {
    (void)state;
    struct na_replay_bound from, to;
    struct na_replay_range r;
    char errstr[256];
    struct na_replay_wm wm[] = {
        {0, 10, 40, -1, -1}, {1, 0, 7, -1, -1}, {2, 0, 9, -1, -1}};
    /* Below the low watermark (deleted by retention) clamps up; the end is
     * exclusive and clamps to the high watermark; partition 2 is not named. */
    bound("0:3,1:5", &from);
    bound("end", &to);
    assert_int_equal(na_replay_plan(&from, &to, wm, 3, &r, errstr, sizeof(errstr)),
                     NA_OK);
    assert_int_equal(r.cnt, 2);
    assert_int_equal(r.parts[0].start, 10);
    assert_int_equal(r.parts[0].end, 40);
    assert_int_equal(r.parts[1].start, 5);
    assert_int_equal(r.parts[1].end, 7);
    na_replay_range_cleanup(&r);
    na_replay_bound_cleanup(&to);
    /* Both offset bounds: only partitions named by both; end < start is empty. */
    bound("1:900", &to);
    assert_int_equal(na_replay_plan(&from, &to, wm, 3, &r, errstr, sizeof(errstr)),
                     NA_OK);
    assert_int_equal(r.cnt, 1);
    assert_int_equal(r.parts[0].partition, 1);
    assert_int_equal(r.parts[0].end, 7);
    na_replay_range_cleanup(&r);
    na_replay_bound_cleanup(&to);
    bound("0:12,1:2", &to);
    assert_int_equal(na_replay_plan(&from, &to, wm, 3, &r, errstr, sizeof(errstr)),
                     NA_OK);
    assert_int_equal(r.parts[0].end, 12);
    assert_int_equal(r.parts[1].start, 5);
    assert_int_equal(r.parts[1].end, 5);
    assert_true(r.parts[1].done);
    na_replay_range_cleanup(&r);
    na_replay_bound_cleanup(&to);
    /* A partition the topic lacks is an error naming it. */
    bound("7:1", &to);
    assert_int_equal(na_replay_plan(&from, &to, wm, 3, &r, errstr, sizeof(errstr)),
                     NA_ERR_INVALID);
    assert_non_null(strstr(errstr, "partition 7"));
    na_replay_bound_cleanup(&to);
    na_replay_bound_cleanup(&from);
}

/* ---- resume and progress ---- */

/* A progress interval of 0 is refused (it was taken as 1 ms: a log line
 * every millisecond), before anything is read. */
static void test_progress_interval_zero_is_refused(void **state) {
    (void)state;
    char *argv[] = {
        "replay", "--brokers", "127.0.0.1:1",         "--from", "beginning", "--to",
        "end",    "--dry-run", "--progress-interval", "0",      NULL};
    assert_int_equal(na_cmd_replay(10, argv), 2);
}

static void test_resume_args(void **state) {
    (void)state;
    struct na_replay_part parts[] = {{0, 0, 100, 10, 90, 50, 42, false},
                                     {1, 0, 100, 0, 80, 80, 80, true}};
    struct na_replay_range r = {parts, 2, NA_REPLAY_TS_NONE, NA_REPLAY_TS_NONE};
    char *s = na_replay_resume_args(&r);
    assert_string_equal(s, "--from 0:42,1:80 --to 0:90,1:80");
    free(s);
    assert_int_equal(na_replay_range_total(&r), 160);
    assert_int_equal(na_replay_range_done(&r), 40 + 80);
    r.ts_from_ms = 1767657600000LL;
    r.ts_to_ms = 1767744000000LL;
    s = na_replay_resume_args(&r);
    assert_string_equal(s,
                        "--from 0:42,1:80 --to 0:90,1:80 --ts-from 2026-01-06T00:00:00Z "
                        "--ts-to 2026-01-07T00:00:00Z");
    free(s);
    /* Bounds of a fraction of a second are carried to the millisecond. */
    r.ts_from_ms = 1767657600250LL;
    s = na_replay_resume_args(&r);
    assert_string_equal(s, "--from 0:42,1:80 --to 0:90,1:80 --ts-from "
                           "2026-01-06T00:00:00.250Z --ts-to 2026-01-07T00:00:00Z");
    free(s);
}

/* The resume command goes to stderr, where no secret may appear: a password
 * given with -X and a --webhook URL (both forms) are shown as "***"; a
 * "@FILE" value, a key's file name, the bounds and every other argument
 * stay as given. */
static void test_resume_command_shows_no_secret(void **state) {
    (void)state;
    char *argv[] = {"replay",
                    "--config",
                    "replay.json",
                    "-X",
                    "sasl.password=PLANTEDPW",
                    "-X",
                    "ssl.key.password=@key-file",
                    "-X",
                    "sasl.username=desk",
                    "-X",
                    "ssl.key.location=/etc/k.pem",
                    "--webhook",
                    "https://hooks.test/PLANTEDHOOK",
                    "--webhook=https://hooks.test/PLANTEDHOOK2",
                    "--from",
                    "beginning",
                    "--to=end",
                    "--routes",
                    "--append",
                    NULL};
    int argc = (int)(sizeof(argv) / sizeof(argv[0])) - 1;
    bool redacted = false;
    char *s =
        na_replay_resume_command(argc, argv, "--from 0:4 --to 0:9", true, &redacted);
    assert_non_null(s);
    assert_null(strstr(s, "PLANTED"));
    assert_true(redacted);
    assert_string_equal(s, "newsalert-consumer replay --config replay.json -X "
                           "'sasl.password=***' -X ssl.key.password=@key-file -X "
                           "sasl.username=desk -X ssl.key.location=/etc/k.pem --webhook "
                           "'***' --webhook='***' --routes "
                           "--append --from 0:4 --to 0:9");
    free(s);
    /* Nothing secret: the line as given, and nothing said. */
    char *plain[] = {"replay", "--config",    "r.json", "--dry-run",
                     "-X",     "debug=fetch", NULL};
    s = na_replay_resume_command(6, plain, "--from 0:1 --to 0:2", false, &redacted);
    assert_string_equal(s, "newsalert-consumer replay --config r.json --dry-run -X "
                           "debug=fetch --from 0:1 --to 0:2");
    assert_false(redacted);
    free(s);
}

static void test_progress_text(void **state) {
    (void)state;
    char buf[256];
    na_replay_progress_format(buf, sizeof(buf), 420, 1000, 100.0, false);
    assert_string_equal(buf, "done=420 total=1000 pct=42.0 rate=100 eta_s=6");
    na_replay_progress_format(buf, sizeof(buf), 0, 1000, -1, false);
    assert_string_equal(buf, "done=0 total=1000 pct=0.0 rate=0 eta_s=-1");
    na_replay_progress_format(buf, sizeof(buf), 500, 1000, 2.0, true);
    assert_non_null(strstr(buf, "[###############...............]"));
    assert_non_null(strstr(buf, " 50.0%"));
    assert_non_null(strstr(buf, "500/1000"));
    assert_non_null(strstr(buf, "2 msg/s"));
    assert_non_null(strstr(buf, "ETA 4:10"));
    na_replay_progress_format(buf, sizeof(buf), 0, 0, -1, true);
    assert_non_null(strstr(buf, "100.0%"));
    assert_non_null(strstr(buf, "ETA --:--"));
}

/* ---- backtest ---- */

static na_rules_t *load_rules(const char *json) {
    na_rules_t *rules = NULL;
    char errstr[512] = "";
    na_err_t err = na_rules_load_buf(json, strlen(json), "rules.json", &rules, errstr,
                                     sizeof(errstr));
    if (err) {
        print_error("rules: %s\n", errstr);
    }
    assert_int_equal(err, NA_OK);
    return rules;
}

static const char old_rules[] =
    "{\"topics\":[{\"name\":\"taiwan\",\"query\":\"taiwan\",\"threshold\":1},"
    "{\"name\":\"rare_earths\",\"query\":\"\\\"rare earth\\\"\",\"threshold\":1}]}";
static const char new_rules[] =
    "{\"topics\":[{\"name\":\"taiwan\",\"query\":\"taiwan OR taipei\",\"threshold\":1},"
    "{\"name\":\"rare_earths\",\"query\":\"gallium\",\"threshold\":1}]}";

static void article(struct na_article *a, const char *id_seed, const char *title) {
    na_article_init(a);
    a->title = na_strdup(title);
    a->url = na_strdup(id_seed);
    assert_int_equal(na_sha256_hex(id_seed, strlen(id_seed), a->id), NA_OK);
}

static void test_diff_gained_lost_per_topic(void **state) {
    (void)state;
    na_rules_t *cur = load_rules(new_rules);
    na_rules_t *base = load_rules(old_rules);
    struct na_replay_diff diff;
    static const char *const titles[] = {
        "Taipei holds drills",           /* taiwan gained */
        "Taiwan votes",                  /* taiwan in both */
        "Rare earth prices climb",       /* rare_earths lost */
        "Gallium curbs, rare earth too", /* rare_earths in both */
        "Gallium output rises",          /* rare_earths gained */
        "Weather",                       /* nothing */
    };
    na_replay_diff_init(&diff);
    for (size_t i = 0; i < sizeof(titles) / sizeof(*titles); i++) {
        struct na_article a;
        struct na_classification c = {0}, b = {0};
        char seed[32];
        snprintf(seed, sizeof(seed), "https://x.test/%zu", i);
        article(&a, seed, titles[i]);
        assert_int_equal(na_rules_classify(cur, &a, &c), NA_OK);
        assert_int_equal(na_rules_classify(base, &a, &b), NA_OK);
        assert_int_equal(na_replay_diff_add(&diff, &a, &c, &b), NA_OK);
        na_classification_cleanup(&c);
        na_classification_cleanup(&b);
        na_article_cleanup(&a);
    }
    assert_int_equal(diff.articles, 6);
    assert_int_equal(diff.same, 2);
    assert_int_equal(diff.cnt, 3);

    char *text = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&text, &len);
    static const char *const topics[] = {"taiwan", "rare_earths", "export_controls",
                                         NULL};
    na_replay_diff_print(&diff, topics, fp);
    fclose(fp);
    assert_non_null(strstr(text, "+ taiwan  Taipei holds drills  ("));
    assert_non_null(strstr(text, "+ rare_earths  Gallium output rises  ("));
    assert_non_null(strstr(text, "- rare_earths  Rare earth prices climb  ("));
    assert_null(strstr(text, "Taiwan votes"));
    assert_null(strstr(text, "Weather"));
    assert_non_null(strstr(text, "\ntaiwan: +1 -0\n"));
    assert_non_null(strstr(text, "\nrare_earths: +1 -1\n"));
    assert_non_null(strstr(text, "\nexport_controls: +0 -0\n"));
    assert_non_null(strstr(text, "total: +2 -1 (unchanged 2, articles 6)"));
    /* Gained before lost within a topic. */
    assert_true(strstr(text, "+ rare_earths") < strstr(text, "- rare_earths"));
    free(text);
    na_replay_diff_cleanup(&diff);
    na_rules_destroy(cur);
    na_rules_destroy(base);
}

static void test_classified_line_shape(void **state) {
    (void)state;
    na_rules_t *rules = load_rules(new_rules);
    struct na_article a;
    struct na_classification c = {0};
    json_error_t jerr;
    article(&a, "https://x.test/1", "Taipei and gallium");
    assert_int_equal(na_rules_classify(rules, &a, &c), NA_OK);
    char *line = na_replay_classified_json(&a, &c);
    assert_non_null(line);
    assert_null(strchr(line, '\n'));
    json_t *root = json_loads(line, 0, &jerr);
    assert_non_null(root);
    assert_string_equal(json_string_value(json_object_get(root, "id")), a.id);
    assert_string_equal(json_string_value(json_object_get(root, "title")),
                        "Taipei and gallium");
    json_t *topics = json_object_get(root, "topics");
    assert_int_equal(json_array_size(topics), 2);
    json_t *t0 = json_array_get(topics, 0);
    assert_string_equal(json_string_value(json_object_get(t0, "topic")), "taiwan");
    assert_true(json_is_number(json_object_get(t0, "score")));
    assert_true(json_is_number(json_object_get(t0, "threshold")));
    assert_true(json_array_size(json_object_get(t0, "evidence")) >= 1);
    assert_non_null(json_object_get(t0, "snippet"));
    json_decref(root);
    free(line);
    na_classification_cleanup(&c);
    na_article_cleanup(&a);
    na_rules_destroy(rules);
}

/* ---- the linked line, written without jansson ---- */

/* What jansson's compact dump gives for @p s: the reference. */
static char *jansson_string(const char *s) {
    json_t *v = json_string(s);
    char *out = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(v);
    return out;
}

/* Every ASCII byte, quotes, backslashes, control bytes and multi-byte
 * UTF-8: the same bytes as jansson. */
static void test_json_string_escapes_as_jansson_does(void **state) {
    (void)state;
    char all[128];
    for (int i = 1; i < 128; i++) {
        all[i - 1] = (char)i;
    }
    all[127] = '\0';
    const char *cases[] = {
        all,
        "",
        "plain",
        "\"quoted\" \\ back\\slash",
        "tab\tnew\nline\r\x01\x1f\x7f end",
        "Taipei \xe5\x8f\xb0\xe5\x8c\x97 \xe2\x80\xa6 \xf0\x9f\x98\x80"};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *want = jansson_string(cases[i]);
        struct na_buf b;
        assert_non_null(want);
        na_buf_init(&b);
        na_buf_json_string(&b, cases[i]);
        assert_false(b.oom);
        assert_string_equal(b.data, want);
        na_buf_cleanup(&b);
        free(want);
    }
}

/* The linked line as jansson packed and dumped it before (the reference
 * here), for an article with every member and one with none of the
 * optional ones; an invalid UTF-8 title gives no line, as before. */
static void test_linked_line_is_what_jansson_wrote(void **state) {
    (void)state;
    for (int variant = 0; variant < 3; variant++) {
        struct na_article a;
        struct na_match m;
        struct na_alert alert;
        struct na_decision d;
        na_decision_init(&d);
        memset(&a, 0, sizeof(a));
        memset(&m, 0, sizeof(m));
        snprintf(a.id, sizeof(a.id), "%064d", 7);
        a.published_at = variant == 1 ? NA_TIME_UNKNOWN : 1767657600;
        a.title = variant == 1 ? NULL
                  : variant == 2
                      ? "bad \xff title"
                      : "Beijing \"bans\" dual-use\texports \xe2\x80\x94 \\ Japan\x01";
        a.url = variant == 1 ? NULL : "https://news.test/a?b=1&c=\"2\"";
        a.source_name = variant == 1 ? NULL
                                     : "Wire \xc3\xa9"
                                       "dition";
        m.topic = "export_controls";
        snprintf(d.story_id, sizeof(d.story_id), "%064d", 9);
        d.story = variant == 1
                      ? NULL
                      : json_pack("{s:s, s:I, s:s?}", "id", d.story_id, "articles",
                                  (json_int_t)12, "first_seen", "2026-01-06T00:00:00Z");
        assert_int_equal(na_alert_init_story(&alert, &a, &m, "v1", d.story_id), NA_OK);
        char pub[NA_RFC3339_LEN] = "";
        if (a.published_at != NA_TIME_UNKNOWN) {
            na_time_format_rfc3339(a.published_at, pub);
        }
        json_t *root = json_pack(
            "{s:s, s:s, s:s, s:s, s:O?, s:{s:s, s:s?, s:s?, s:s?}}", "linked", alert.id,
            "article_id", a.id, "story_id", d.story_id, "topic", m.topic, "story",
            d.story, "article", "title", a.title ? a.title : "", "url", a.url, "source",
            a.source_name, "published_at", *pub ? pub : NULL);
        char *want = root ? json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        char *got = na_replay_linked_json(&d, &alert);
        if (variant == 2) {
            assert_null(want);
            assert_null(got);
        } else {
            assert_non_null(want);
            assert_non_null(got);
            assert_string_equal(got, want);
        }
        free(want);
        free(got);
        json_decref(root);
        a.title = a.url = a.source_name = NULL; /* borrowed literals */
        na_decision_cleanup(&d);
    }
}

/* ---- whole runs on the mock cluster ---- */

#define TOPIC "na.unit.replay"
/* The Kafka protocol's Produce request, for the mock cluster's errors. */
#define API_PRODUCE 0

struct mock {
    rd_kafka_t *prod; /* owns the mock cluster */
    const char *bootstraps;
};

static void produce_article_to(rd_kafka_t *rk, const char *topic, int32_t partition,
                               const char *url, const char *title) {
    struct na_article a;
    article(&a, url, title);
    a.fetched_at = 1767657600;
    a.source_id = na_strdup("unit");
    a.source_name = na_strdup("Unit");
    a.source_feed_url = na_strdup("https://x.test/feed");
    char *json = na_article_to_json(&a);
    assert_non_null(json);
    assert_int_equal(
        rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
                          RD_KAFKA_V_KEY(a.id, strlen(a.id)),
                          RD_KAFKA_V_VALUE(json, strlen(json)),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
        RD_KAFKA_RESP_ERR_NO_ERROR);
    free(json);
    na_article_cleanup(&a);
}

static void produce_article(rd_kafka_t *rk, int32_t partition, const char *url,
                            const char *title) {
    produce_article_to(rk, TOPIC, partition, url, title);
}

static int mock_setup(void **state) {
    struct mock *m = calloc(1, sizeof(*m));
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    na_log_set_level(NA_LOG_ERROR);
    assert_int_equal(
        rd_kafka_conf_set(conf, "test.mock.num.brokers", "1", errstr, sizeof(errstr)),
        RD_KAFKA_CONF_OK);
    m->prod = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    assert_non_null(m->prod);
    rd_kafka_mock_cluster_t *mc = rd_kafka_handle_mock_cluster(m->prod);
    assert_non_null(mc);
    assert_int_equal(rd_kafka_mock_topic_create(mc, TOPIC, 3, 1),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    m->bootstraps = rd_kafka_mock_cluster_bootstraps(mc);
    /* p0: 5 articles (2 about Taiwan, one of them twice), p1: 3, p2: none. */
    produce_article(m->prod, 0, "https://x.test/a0", "Taiwan drills");
    produce_article(m->prod, 0, "https://x.test/a1", "Weather");
    produce_article(m->prod, 0, "https://x.test/a0", "Taiwan drills");
    produce_article(m->prod, 0, "https://x.test/a3", "Taipei talks");
    produce_article(m->prod, 0, "https://x.test/a4", "Sports");
    produce_article(m->prod, 1, "https://x.test/b0", "Gallium curbs");
    produce_article(m->prod, 1, "https://x.test/b1", "Markets");
    produce_article(m->prod, 1, "https://x.test/b2", "Taiwan votes");
    assert_int_equal(rd_kafka_flush(m->prod, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
    *state = m;
    return 0;
}

static int mock_teardown(void **state) {
    struct mock *m = *state;
    rd_kafka_destroy(m->prod);
    free(m);
    return 0;
}

struct run_out {
    char *dry;
    size_t dry_len;
    char *classified;
    size_t classified_len;
    struct na_replay_stats stats;
    struct na_replay_range range;
};

static size_t count_lines(const char *s) {
    size_t n = 0;
    for (; s && *s; s++) {
        n += *s == '\n';
    }
    return n;
}

static na_err_t run_err(struct mock *m, const char *from_s, const char *to_s,
                        const char *rules_json, int running_flag, struct run_out *out,
                        char *errstr, size_t errstr_size) {
    struct na_consumer_conf conf;
    struct na_replay_bound from, to;
    volatile sig_atomic_t running = running_flag;
    na_rules_t *rules = load_rules(rules_json);
    rd_kafka_t *rk = na_replay_consumer_new(m->bootstraps, NULL, errstr, errstr_size);
    assert_non_null(rk);
    memset(&conf, 0, sizeof(conf));
    memset(out, 0, sizeof(*out));
    conf.brokers = (char *)m->bootstraps;
    conf.topic = (char *)TOPIC;
    conf.max_pending = 100;
    conf.drain_timeout_ms = 1000;
    bound(from_s, &from);
    bound(to_s, &to);
    assert_int_equal(na_replay_resolve(rk, TOPIC, &from, &to, 0, 10000, &out->range,
                                       errstr, errstr_size),
                     NA_OK);
    FILE *dry = open_memstream(&out->dry, &out->dry_len);
    FILE *cls = open_memstream(&out->classified, &out->classified_len);
    struct na_replay_opts opts = {
        .rk = rk,
        .conf = &conf,
        .rules = rules,
        .dry_run = dry,
        .output = cls,
        .running = &running,
    };
    na_err_t err = na_replay_run(&opts, &out->range, &out->stats, errstr, errstr_size);
    fclose(dry);
    fclose(cls);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    na_replay_bound_cleanup(&from);
    na_replay_bound_cleanup(&to);
    na_rules_destroy(rules);
    return err;
}

static void run(struct mock *m, const char *from_s, const char *to_s,
                const char *rules_json, int running_flag, struct run_out *out) {
    char errstr[512] = "";
    na_err_t err =
        run_err(m, from_s, to_s, rules_json, running_flag, out, errstr, sizeof(errstr));
    if (err) {
        fail_msg("replay: %s", errstr);
    }
}

static void run_cleanup(struct run_out *out) {
    free(out->dry);
    free(out->classified);
    na_replay_range_cleanup(&out->range);
}

static void test_run_whole_topic_stops_by_itself(void **state) {
    struct mock *m = *state;
    struct run_out o;
    run(m, "beginning", "end", new_rules, 1, &o);
    /* Ends without waiting on the empty partition 2. */
    assert_false(o.stats.interrupted);
    assert_int_equal(o.stats.read, 8);
    assert_int_equal(o.stats.articles, 8);
    assert_int_equal(count_lines(o.classified), 8);
    assert_int_equal(o.stats.output_lines, 8);
    /* Alerts: a0 (once, although read twice), a3, b0, b2. */
    assert_int_equal(count_lines(o.dry), 4);
    assert_int_equal(o.stats.alerts, 4);
    assert_non_null(strstr(o.dry, "\"schema\":\"alert/v1\""));
    assert_non_null(strstr(o.dry, "Taipei talks"));
    assert_null(strstr(o.dry, "Weather"));
    for (size_t i = 0; i < o.range.cnt; i++) {
        assert_true(o.range.parts[i].done);
        assert_int_equal(o.range.parts[i].resume, o.range.parts[i].end);
    }
    run_cleanup(&o);
}

static void test_run_offsets_range_exclusive_end(void **state) {
    struct mock *m = *state;
    struct run_out o;
    run(m, "0:1,1:2", "0:4,1:3", new_rules, 1, &o);
    /* p0 offsets 1,2,3 and p1 offset 2. */
    assert_false(o.stats.interrupted);
    assert_int_equal(o.stats.read, 4);
    assert_int_equal(count_lines(o.classified), 4);
    assert_non_null(strstr(o.classified, "\"Weather\""));
    assert_non_null(strstr(o.classified, "\"Taipei talks\""));
    assert_non_null(strstr(o.classified, "\"Taiwan votes\""));
    assert_null(strstr(o.classified, "\"Sports\""));
    assert_null(strstr(o.classified, "\"Gallium curbs\""));
    run_cleanup(&o);
}

static void test_run_empty_range_reads_nothing(void **state) {
    struct mock *m = *state;
    struct run_out o;
    run(m, "end", "end", new_rules, 1, &o);
    assert_int_equal(na_replay_range_total(&o.range), 0);
    assert_false(o.stats.interrupted);
    assert_int_equal(o.stats.read, 0);
    assert_int_equal(o.dry_len, 0);
    run_cleanup(&o);
}

static void test_run_interrupted_resumes_at_start(void **state) {
    struct mock *m = *state;
    struct run_out o;
    run(m, "beginning", "end", new_rules, 0, &o);
    assert_true(o.stats.interrupted);
    assert_int_equal(o.stats.read, 0);
    char *args = na_replay_resume_args(&o.range);
    assert_string_equal(args, "--from 0:0,1:0,2:0 --to 0:5,1:3,2:0");
    free(args);
    run_cleanup(&o);
}

/* Regression: when the set of alerts a run has raised could not take one
 * for want of memory, the alert was taken for one already raised: skipped
 * in silence (no line, nothing posted), its article finished and the run
 * said it succeeded. The run now fails with "out of memory". */
static void test_run_no_memory_for_a_raised_alert_fails_the_run(void **state) {
    struct mock *m = *state;
    struct run_out o;
    char errstr[512] = "";
    na_fault_arm("replay_seen:1");
    na_err_t err =
        run_err(m, "beginning", "end", new_rules, 1, &o, errstr, sizeof(errstr));
    na_fault_arm(NULL);
    assert_int_not_equal(err, NA_OK);
    assert_string_equal(errstr, "out of memory");
    run_cleanup(&o);
}

/* A temporary file holding @p text; its name in @p path (XXXXXX). */
static void temp_file(char *path, const char *text) {
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

/* Regression: --output FILE was truncated before the bounds were checked
 * against the topic, so a command refused as bad usage (a partition the
 * topic does not have, a bad --ts-from) or that could not resolve its
 * range emptied the file of an earlier run and read nothing. The file is
 * now opened once the range is resolved. */
static void test_refused_run_leaves_the_output_file_alone(void **state) {
    struct mock *m = *state;
    char rules_path[] = "/tmp/na_replay_rules_XXXXXX";
    char out_path[] = "/tmp/na_replay_out_XXXXXX";
    char brokers[256];
    char buf[64] = "";
    temp_file(rules_path, new_rules);
    temp_file(out_path, "an earlier run's line\n");
    snprintf(brokers, sizeof(brokers), "%s", m->bootstraps);
    char *bad_partition[] = {"replay",      "--brokers",  brokers,    "--topic",
                             (char *)TOPIC, "--rules",    rules_path, "--from",
                             "7:1",         "--to",       "end",      "--output",
                             out_path,      "--progress", "none",     NULL};
    assert_int_equal(na_cmd_replay(15, bad_partition), 2);
    char *bad_ts[] = {"replay",    "--brokers", brokers,  "--topic",    (char *)TOPIC,
                      "--rules",   rules_path,  "--from", "beginning",  "--to",
                      "end",       "--output",  out_path, "--progress", "none",
                      "--ts-from", "yesterday", NULL};
    assert_int_equal(na_cmd_replay(17, bad_ts), 2);
    FILE *fp = fopen(out_path, "r");
    assert_non_null(fp);
    size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    assert_string_equal(buf, "an earlier run's line\n");
    unlink(rules_path);
    unlink(out_path);
}

/* ---- --routes on the mock cluster: the ledger record of a delivery ---- */

/* A run of the whole of @p topic with --routes: one route to @p stub,
 * through the ledger @p ledger_topic. */
static void run_routes_with(struct mock *m, const char *topic, const char *ledger_topic,
                            struct na_stub *stub, long long write_stall_ms,
                            const char *const *sets, volatile sig_atomic_t *running,
                            struct run_out *out) {
    struct na_consumer_conf conf;
    struct na_replay_bound from, to;
    char errstr[512] = "", url[128];
    na_rules_t *rules = load_rules(new_rules);
    rd_kafka_t *rk = na_replay_consumer_new(m->bootstraps, NULL, errstr, sizeof(errstr));
    assert_non_null(rk);
    memset(&conf, 0, sizeof(conf));
    memset(out, 0, sizeof(*out));
    assert_int_equal(
        na_conf_defaults(na_consumer_conf_table, &conf, errstr, sizeof(errstr)), NA_OK);
#define SET(k, v)                                                                        \
    assert_int_equal(na_conf_set(na_conf_find(na_consumer_conf_table, k), &conf, v, "t", \
                                 errstr, sizeof(errstr)),                                \
                     NA_OK)
    SET("brokers", m->bootstraps);
    SET("topic", topic);
    SET("ledger_topic", ledger_topic);
    /* The mock cluster never creates topics: the ledger's attempt waits for
     * this (the topics are made in advance). */
    SET("ledger_timeout", "2s");
    SET("stories", "false");
    SET("workers", "0");
    for (size_t i = 0; sets && sets[i]; i += 2) {
        SET(sets[i], sets[i + 1]);
    }
#undef SET
    conf.write_stall_ms = write_stall_ms;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/hook", stub->port);
    json_t *routes =
        json_pack("[{s:s, s:s, s:s}]", "name", "r1", "url", url, "format", "json");
    assert_int_equal(na_routes_parse(routes, &conf.routes, errstr, sizeof(errstr)),
                     NA_OK);
    json_decref(routes);
    bound("beginning", &from);
    bound("end", &to);
    assert_int_equal(na_replay_resolve(rk, topic, &from, &to, 0, 10000, &out->range,
                                       errstr, sizeof(errstr)),
                     NA_OK);
    struct na_replay_opts opts = {
        .rk = rk,
        .conf = &conf,
        .rules = rules,
        .post_routes = true,
        .running = running,
    };
    na_err_t err = na_replay_run(&opts, &out->range, &out->stats, errstr, sizeof(errstr));
    if (err) {
        fail_msg("replay: %s", errstr);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    na_replay_bound_cleanup(&from);
    na_replay_bound_cleanup(&to);
    na_rules_destroy(rules);
    na_conf_cleanup(na_consumer_conf_table, &conf);
    na_kafka_props_cleanup(&conf.props);
    na_routes_cleanup(&conf.routes);
}

static void run_routes(struct mock *m, const char *topic, const char *ledger_topic,
                       struct na_stub *stub, long long write_stall_ms,
                       struct run_out *out) {
    volatile sig_atomic_t running = 1;
    run_routes_with(m, topic, ledger_topic, stub, write_stall_ms, NULL, &running, out);
}

static int stub_posts(struct na_stub *stub) {
    pthread_mutex_lock(&stub->lock);
    int n = stub->posts_cnt;
    pthread_mutex_unlock(&stub->lock);
    return n;
}

/* Regression: a ledger record the broker refused counted its article as
 * finished. The run said sent=1 failed=0 with the resume position past
 * the article, and the next run, finding nothing in the ledger, posted the
 * alert again. The record is now written again until the broker has it. */
static void test_run_refused_ledger_record_is_written_again(void **state) {
    struct mock *m = *state;
    struct na_stub stub;
    struct run_out o;
    rd_kafka_mock_cluster_t *mc = rd_kafka_handle_mock_cluster(m->prod);
    assert_int_equal(na_http_global_init(), NA_OK);
    assert_int_equal(na_stub_start(&stub), 0);
    assert_int_equal(rd_kafka_mock_topic_create(mc, TOPIC ".l1", 1, 1),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(rd_kafka_mock_topic_create(mc, TOPIC ".l1.alerts", 1, 1),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    produce_article_to(m->prod, TOPIC ".l1", 0, "https://x.test/l1", "Taiwan drills");
    assert_int_equal(rd_kafka_flush(m->prod, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);

    /* A refusal the client does not retry by itself, of the next produce
     * request: the run's ledger record. */
    rd_kafka_mock_push_request_errors(mc, API_PRODUCE, 1,
                                      RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
    run_routes(m, TOPIC ".l1", TOPIC ".l1.alerts", &stub, 60000, &o);
    assert_int_equal(o.stats.sent, 1);
    assert_int_equal(o.stats.failed, 0);
    assert_false(o.stats.interrupted);
    assert_int_equal(o.range.parts[0].resume, o.range.parts[0].end);
    assert_int_equal(stub_posts(&stub), 1);
    run_cleanup(&o);

    /* The same range again: the ledger has the delivery, nothing is sent. */
    run_routes(m, TOPIC ".l1", TOPIC ".l1.alerts", &stub, 60000, &o);
    assert_int_equal(o.stats.already_sent, 1);
    assert_int_equal(o.stats.sent, 0);
    assert_int_equal(stub_posts(&stub), 1);
    run_cleanup(&o);
    na_stub_stop(&stub);
    na_http_global_cleanup();
}

/* A ledger record the broker keeps refusing for write_stall: the alert was
 * delivered but cannot be recorded. The run does not call that a success:
 * the delivery counts as failed, the resume position stays below its
 * article, and the run stops (an alert sent now could not be recorded
 * either). */
static void test_run_ledger_record_refused_for_good_fails_the_run(void **state) {
    struct mock *m = *state;
    struct na_stub stub;
    struct run_out o;
    rd_kafka_resp_err_t refusals[64];
    rd_kafka_mock_cluster_t *mc = rd_kafka_handle_mock_cluster(m->prod);
    assert_int_equal(na_http_global_init(), NA_OK);
    assert_int_equal(na_stub_start(&stub), 0);
    assert_int_equal(rd_kafka_mock_topic_create(mc, TOPIC ".l2", 1, 1),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(rd_kafka_mock_topic_create(mc, TOPIC ".l2.alerts", 1, 1),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    produce_article_to(m->prod, TOPIC ".l2", 0, "https://x.test/l2", "Taipei talks");
    assert_int_equal(rd_kafka_flush(m->prod, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);

    /* More refusals than the run makes tries in one second of write_stall. */
    for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
        refusals[i] = RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED;
    }
    rd_kafka_mock_push_request_errors_array(
        mc, API_PRODUCE, sizeof(refusals) / sizeof(refusals[0]), refusals);
    run_routes(m, TOPIC ".l2", TOPIC ".l2.alerts", &stub, 1000, &o);
    rd_kafka_mock_clear_request_errors(mc, API_PRODUCE);
    assert_int_equal(o.stats.sent, 1);
    assert_int_equal(o.stats.failed, 1);
    assert_true(o.stats.interrupted);
    char *args = na_replay_resume_args(&o.range);
    assert_string_equal(args, "--from 0:0 --to 0:1");
    free(args);
    assert_int_equal(stub_posts(&stub), 1);
    run_cleanup(&o);

    /* Resumed once the broker takes records again: the alert is sent again,
     * with the same webhook-id (receivers that dedup drop it), and recorded. */
    run_routes(m, TOPIC ".l2", TOPIC ".l2.alerts", &stub, 1000, &o);
    assert_int_equal(o.stats.sent, 1);
    assert_int_equal(o.stats.failed, 0);
    assert_false(o.stats.interrupted);
    assert_int_equal(stub_posts(&stub), 2);
    assert_int_equal(na_stub_unique_posts(&stub), 1);
    run_cleanup(&o);
    na_stub_stop(&stub);
    na_http_global_cleanup();
}

/* The Ctrl-C of stop_on_first_post(): once the route has been tried. */
struct stopper {
    struct na_stub *stub;
    volatile sig_atomic_t *running;
};

static void *stop_on_first_post(void *arg) {
    struct stopper *s = arg;
    for (int i = 0; i < 2000; i++) {
        pthread_mutex_lock(&s->stub->lock);
        int seen = s->stub->posts_seen;
        pthread_mutex_unlock(&s->stub->lock);
        if (seen) {
            break;
        }
        na_sleep_ms(5);
    }
    *s->running = 0;
    return NULL;
}

/* Regression: a Ctrl-C that came once every record was read, while the
 * last deliveries were being retried, was ignored: the run went on until
 * the route answered or the deliveries gave up (minutes with the default
 * backoff), then called the alert failed and its article finished, with
 * no resume command. The deliveries now get drain_timeout from the
 * signal, and the run says it was interrupted below that article. */
static void test_run_stop_while_draining_ends_the_drain(void **state) {
    struct mock *m = *state;
    struct na_stub stub;
    struct run_out o;
    pthread_t t;
    volatile sig_atomic_t running = 1;
    /* Retries for ~10 s unless the stop ends them. */
    static const char *const sets[] = {"deliver_max_attempts",
                                       "200",
                                       "deliver_backoff",
                                       "50ms",
                                       "deliver_backoff_max",
                                       "50ms",
                                       "drain_timeout",
                                       "300ms",
                                       NULL};
    rd_kafka_mock_cluster_t *mc = rd_kafka_handle_mock_cluster(m->prod);
    assert_int_equal(na_http_global_init(), NA_OK);
    assert_int_equal(na_stub_start(&stub), 0);
    stub.post_status = 503;
    assert_int_equal(rd_kafka_mock_topic_create(mc, TOPIC ".d1", 1, 1),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(rd_kafka_mock_topic_create(mc, TOPIC ".d1.alerts", 1, 1),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    produce_article_to(m->prod, TOPIC ".d1", 0, "https://x.test/d1", "Taiwan drills");
    assert_int_equal(rd_kafka_flush(m->prod, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);

    struct stopper stop = {&stub, &running};
    assert_int_equal(pthread_create(&t, NULL, stop_on_first_post, &stop), 0);
    int64_t t0 = na_mono_ms();
    run_routes_with(m, TOPIC ".d1", TOPIC ".d1.alerts", &stub, 60000, sets, &running, &o);
    int64_t took_ms = na_mono_ms() - t0;
    pthread_join(t, NULL);
    assert_int_equal(o.stats.read, 1);
    assert_true(took_ms < 5000);
    assert_true(o.stats.interrupted);
    assert_int_equal(o.stats.sent, 0);
    char *args = na_replay_resume_args(&o.range);
    assert_string_equal(args, "--from 0:0 --to 0:1");
    free(args);
    run_cleanup(&o);
    na_stub_stop(&stub);
    na_http_global_cleanup();
}

/* ---- --routes and a hand-over in flight ("pending" in the ledger) ---- */

/* The alert id of the article at @p url for @p topic (no story). */
static void alert_id_of(const char *url, const char *topic,
                        char id[NA_SHA256_HEX_LEN + 1]) {
    char article_id[NA_SHA256_HEX_LEN + 1];
    assert_int_equal(na_sha256_hex(url, strlen(url), article_id), NA_OK);
    const char *parts[] = {"alert/v1", article_id, topic, NULL};
    assert_int_equal(na_sha256_hex_parts(parts, id), NA_OK);
}

/* A ledger record of route r1 for @p alert_id, as a member writes it. */
static void produce_mark(rd_kafka_t *rk, const char *ledger_topic, const char *alert_id,
                         const char *outcome, int64_t until_ms) {
    char value[256];
    snprintf(value, sizeof(value),
             "{\"deliveries\":{\"r1\":{\"outcome\":\"%s\",\"status\":0,"
             "\"attempts\":1,\"at_ms\":%lld,\"until_ms\":%lld}}}",
             outcome, (long long)na_now_ms(), (long long)until_ms);
    assert_int_equal(
        rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(ledger_topic), RD_KAFKA_V_PARTITION(0),
                          RD_KAFKA_V_KEY(alert_id, strlen(alert_id)),
                          RD_KAFKA_V_VALUE(value, strlen(value)),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
        RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(rd_kafka_flush(rk, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
}

/* The member holding the hand-over: once the replay has read the article
 * (and decided about its alert), it finishes the delivery and records it. */
struct other_member {
    rd_kafka_t *rk;
    const char *ledger_topic;
    const char *alert_id;
    struct na_stub *stub;
    int posts_before; /* what the route had when the member recorded its send */
};

static void *deliver_then_record(void *arg) {
    struct other_member *om = arg;
    na_metric_t *records =
        na_metrics_get(NA_METRIC_COUNTER, "newsalert_replay_records_total",
                       "Records read by replays.", NULL);
    double read0 = na_metric_value(records);
    for (int i = 0; i < 2000 && na_metric_value(records) <= read0; i++) {
        na_sleep_ms(5);
    }
    na_sleep_ms(300);
    pthread_mutex_lock(&om->stub->lock);
    om->posts_before = om->stub->posts_cnt;
    pthread_mutex_unlock(&om->stub->lock);
    produce_mark(om->rk, om->ledger_topic, om->alert_id, "delivered", 0);
    return NULL;
}

/* Regression: replay --routes sent an alert that the ledger marked
 * "pending" (another member gave the partition up with it in flight, and
 * was still sending it): that member then recorded it delivered, and the
 * route had it twice. The replay now waits for the hand-over, as the new
 * owner does, and sends nothing once the ledger says it was delivered. */
static void test_run_alert_pending_at_another_member_is_not_sent_twice(void **state) {
    struct mock *m = *state;
    struct na_stub stub;
    struct run_out o;
    pthread_t t;
    char id[NA_SHA256_HEX_LEN + 1];
    rd_kafka_mock_cluster_t *mc = rd_kafka_handle_mock_cluster(m->prod);
    assert_int_equal(na_http_global_init(), NA_OK);
    assert_int_equal(na_stub_start(&stub), 0);
    assert_int_equal(rd_kafka_mock_topic_create(mc, TOPIC ".h1", 1, 1),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(rd_kafka_mock_topic_create(mc, TOPIC ".h1.alerts", 1, 1),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    produce_article_to(m->prod, TOPIC ".h1", 0, "https://x.test/h1", "Taiwan drills");
    alert_id_of("https://x.test/h1", "taiwan", id);
    produce_mark(m->prod, TOPIC ".h1.alerts", id, "pending", na_now_ms() + 10000);

    struct other_member om = {m->prod, TOPIC ".h1.alerts", id, &stub, -1};
    assert_int_equal(pthread_create(&t, NULL, deliver_then_record, &om), 0);
    run_routes(m, TOPIC ".h1", TOPIC ".h1.alerts", &stub, 60000, &o);
    pthread_join(t, NULL);
    assert_int_equal(om.posts_before, 0); /* the replay waited */
    assert_int_equal(stub_posts(&stub), 0);
    assert_int_equal(o.stats.sent, 0);
    assert_int_equal(o.stats.already_sent, 1);
    assert_false(o.stats.interrupted);
    assert_int_equal(o.range.parts[0].resume, o.range.parts[0].end);
    run_cleanup(&o);
    na_stub_stop(&stub);
    na_http_global_cleanup();
}

/* Notes when the route first had the alert @p alert_id (wall ms). */
struct post_watch {
    struct na_stub *stub;
    const char *alert_id;
    volatile sig_atomic_t stop;
    int64_t seen_ms; /* 0: not seen */
};

static void *watch_post(void *arg) {
    struct post_watch *w = arg;
    for (;;) {
        bool stop = w->stop; /* one more look after the run ended */
        pthread_mutex_lock(&w->stub->lock);
        for (int i = 0; i < w->stub->posts_cnt; i++) {
            if (!strcmp(w->stub->posts[i].webhook_id, w->alert_id)) {
                w->seen_ms = na_now_ms();
            }
        }
        pthread_mutex_unlock(&w->stub->lock);
        if (stop || w->seen_ms) {
            return NULL;
        }
        na_sleep_ms(5);
    }
}

/* A hand-over whose member died never ends in the ledger: its "pending"
 * mark must not lose the alert. As the daemon does, the replay sends it
 * once the mark's until_ms has passed (at once for a mark already past). */
static void
test_run_alert_pending_at_a_dead_member_is_sent_when_the_mark_expires(void **state) {
    struct mock *m = *state;
    struct na_stub stub;
    struct run_out o;
    pthread_t t;
    char id1[NA_SHA256_HEX_LEN + 1], id2[NA_SHA256_HEX_LEN + 1];
    rd_kafka_mock_cluster_t *mc = rd_kafka_handle_mock_cluster(m->prod);
    assert_int_equal(na_http_global_init(), NA_OK);
    assert_int_equal(na_stub_start(&stub), 0);
    assert_int_equal(rd_kafka_mock_topic_create(mc, TOPIC ".h2", 1, 1),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(rd_kafka_mock_topic_create(mc, TOPIC ".h2.alerts", 1, 1),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    produce_article_to(m->prod, TOPIC ".h2", 0, "https://x.test/h2a", "Taiwan drills");
    produce_article_to(m->prod, TOPIC ".h2", 0, "https://x.test/h2b", "Taipei talks");
    alert_id_of("https://x.test/h2a", "taiwan", id1);
    alert_id_of("https://x.test/h2b", "taiwan", id2);
    /* Later than the run needs to read the article. */
    int64_t until_ms = na_now_ms() + 5000;
    produce_mark(m->prod, TOPIC ".h2.alerts", id1, "pending", until_ms);
    produce_mark(m->prod, TOPIC ".h2.alerts", id2, "pending", na_now_ms() - 1000);

    struct post_watch w = {&stub, id1, 0, 0};
    assert_int_equal(pthread_create(&t, NULL, watch_post, &w), 0);
    run_routes(m, TOPIC ".h2", TOPIC ".h2.alerts", &stub, 60000, &o);
    w.stop = 1;
    pthread_join(t, NULL);
    /* Not before the hand-over expired. */
    assert_true(w.seen_ms >= until_ms);
    assert_int_equal(stub_posts(&stub), 2);
    assert_int_equal(na_stub_unique_posts(&stub), 2);
    assert_int_equal(o.stats.sent, 2);
    assert_int_equal(o.stats.already_sent, 0);
    assert_false(o.stats.interrupted);
    assert_int_equal(o.range.parts[0].resume, o.range.parts[0].end);
    run_cleanup(&o);

    /* Recorded: the same range again sends nothing. */
    run_routes(m, TOPIC ".h2", TOPIC ".h2.alerts", &stub, 60000, &o);
    assert_int_equal(o.stats.already_sent, 2);
    assert_int_equal(stub_posts(&stub), 2);
    run_cleanup(&o);
    na_stub_stop(&stub);
    na_http_global_cleanup();
}

/* The Ctrl-C of stop_after(): a watchdog, so that a run that would hold
 * for an hour ends within the test. */
struct watchdog {
    volatile sig_atomic_t *running;
    int after_ms;
    volatile sig_atomic_t done;
};

static void *stop_after(void *arg) {
    struct watchdog *w = arg;
    for (int waited = 0; waited < w->after_ms && !w->done; waited += 10) {
        na_sleep_ms(10);
    }
    *w->running = 0;
    return NULL;
}

/* Regression: a "pending" mark whose until_ms lay far ahead (a member
 * whose clock runs ahead, or a bad record) held its alert, and with it
 * the whole run, until then: an hour here, forever for a mark of the year
 * 3000; the replay never ended by itself. No member holds a hand-over
 * longer than deliver_timeout plus a slack from when it wrote the mark,
 * so the replay holds it at most that long from when it read it. */
static void
test_run_alert_pending_until_far_ahead_is_held_no_longer_than_a_member_can(void **state) {
    struct mock *m = *state;
    struct na_stub stub;
    struct run_out o;
    pthread_t t;
    char id[NA_SHA256_HEX_LEN + 1];
    volatile sig_atomic_t running = 1;
    static const char *const sets[] = {"deliver_timeout", "1s", "drain_timeout", "1s",
                                       NULL};
    rd_kafka_mock_cluster_t *mc = rd_kafka_handle_mock_cluster(m->prod);
    assert_int_equal(na_http_global_init(), NA_OK);
    assert_int_equal(na_stub_start(&stub), 0);
    assert_int_equal(rd_kafka_mock_topic_create(mc, TOPIC ".h3", 1, 1),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(rd_kafka_mock_topic_create(mc, TOPIC ".h3.alerts", 1, 1),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    produce_article_to(m->prod, TOPIC ".h3", 0, "https://x.test/h3", "Taiwan drills");
    alert_id_of("https://x.test/h3", "taiwan", id);
    produce_mark(m->prod, TOPIC ".h3.alerts", id, "pending", na_now_ms() + 3600000);

    struct watchdog w = {&running, 30000, 0};
    assert_int_equal(pthread_create(&t, NULL, stop_after, &w), 0);
    int64_t t0 = na_mono_ms();
    run_routes_with(m, TOPIC ".h3", TOPIC ".h3.alerts", &stub, 60000, sets, &running, &o);
    int64_t took_ms = na_mono_ms() - t0;
    w.done = 1;
    pthread_join(t, NULL);
    assert_false(o.stats.interrupted);
    assert_int_equal(o.stats.sent, 1);
    assert_int_equal(stub_posts(&stub), 1);
    assert_int_equal(o.range.parts[0].resume, o.range.parts[0].end);
    /* deliver_timeout (1 s) plus the slack (10 s), not the mark's hour */
    assert_true(took_ms >= 1000 && took_ms < 25000);
    run_cleanup(&o);
    na_stub_stop(&stub);
    na_http_global_cleanup();
}

/* The replay consumer bounds its prefetch (most of a backfill's memory)
 * unless -X says otherwise. */
static void test_consumer_prefetch_bounded_and_overridable(void **state) {
    (void)state;
    struct {
        const char *x; /* -X, or NULL */
        const char *want;
    } cases[] = {
        {NULL, NA_KAFKA_PREFETCH_KBYTES},
        {"queued.max.messages.kbytes=8192", "8192"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct na_kafka_props props = {0};
        char errstr[512];
        char value[64];
        size_t value_size = sizeof(value);
        if (cases[i].x) {
            assert_int_equal(na_kafka_props_add(&props, cases[i].x), NA_OK);
        }
        rd_kafka_t *rk =
            na_replay_consumer_new("127.0.0.1:9", &props, errstr, sizeof(errstr));
        assert_non_null(rk);
        assert_int_equal(rd_kafka_conf_get(rd_kafka_conf(rk),
                                           "queued.max.messages.kbytes", value,
                                           &value_size),
                         RD_KAFKA_CONF_OK);
        assert_string_equal(value, cases[i].want);
        rd_kafka_destroy(rk);
        na_kafka_props_cleanup(&props);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bound_keywords_and_times),
        cmocka_unit_test(test_bound_offsets_sorted),
        cmocka_unit_test(test_bound_rejects_bad_input),
        cmocka_unit_test(test_plan_beginning_to_end_skips_empty_partitions),
        cmocka_unit_test(test_plan_times),
        cmocka_unit_test(test_plan_offsets_select_and_clamp),
        cmocka_unit_test(test_progress_interval_zero_is_refused),
        cmocka_unit_test(test_resume_args),
        cmocka_unit_test(test_resume_command_shows_no_secret),
        cmocka_unit_test(test_progress_text),
        cmocka_unit_test(test_diff_gained_lost_per_topic),
        cmocka_unit_test(test_classified_line_shape),
        cmocka_unit_test(test_consumer_prefetch_bounded_and_overridable),
    };
    const struct CMUnitTest mock_tests[] = {
        cmocka_unit_test(test_run_whole_topic_stops_by_itself),
        cmocka_unit_test(test_json_string_escapes_as_jansson_does),
        cmocka_unit_test(test_linked_line_is_what_jansson_wrote),
        cmocka_unit_test(test_run_offsets_range_exclusive_end),
        cmocka_unit_test(test_run_empty_range_reads_nothing),
        cmocka_unit_test(test_run_interrupted_resumes_at_start),
        cmocka_unit_test(test_run_no_memory_for_a_raised_alert_fails_the_run),
        cmocka_unit_test(test_refused_run_leaves_the_output_file_alone),
        cmocka_unit_test(test_run_refused_ledger_record_is_written_again),
        cmocka_unit_test(test_run_ledger_record_refused_for_good_fails_the_run),
        cmocka_unit_test(test_run_stop_while_draining_ends_the_drain),
        cmocka_unit_test(test_run_alert_pending_at_another_member_is_not_sent_twice),
        cmocka_unit_test(
            test_run_alert_pending_at_a_dead_member_is_sent_when_the_mark_expires),
        cmocka_unit_test(
            test_run_alert_pending_until_far_ahead_is_held_no_longer_than_a_member_can),
    };
    int failed = cmocka_run_group_tests_name("replay", tests, NULL, NULL);
    failed += cmocka_run_group_tests_name("replay on the mock cluster", mock_tests,
                                          mock_setup, mock_teardown);
    return failed;
}
