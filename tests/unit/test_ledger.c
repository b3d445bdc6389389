/* The alert ledger: in-memory answers, record format read back, and a
 * round trip through librdkafka's mock cluster (record, confirm, reopen:
 * the new instance knows what the old one sent). */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ledger.h"
#include "newsalert/limits.h"
#include "route.h"
#include "newsalert/metrics.h"
#include "newsalert/timeutil.h"
#include "newsalert/util.h"

#define ID_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define ID_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

struct confirms {
    int ok;
    int failed;
    void *last;
};

static void on_confirm(void *opaque, na_err_t err, void *ctx) {
    struct confirms *c = ctx;
    if (err) {
        c->failed++;
    } else {
        c->ok++;
    }
    c->last = opaque;
}

static void test_memory_ledger_marks_and_confirms(void **state) {
    (void)state;
    struct confirms c = {0, 0, NULL};
    int token = 7;
    na_ledger_t *l = na_ledger_new_memory(on_confirm, &c);
    struct na_ledger_delivery d = {"delivered", 200, 1, 1767686400000, 0};
    assert_false(na_ledger_delivered(l, ID_A, "desk"));
    assert_false(na_ledger_known(l, ID_A));
    assert_int_equal(na_ledger_record(l, ID_A, "desk", &d, NULL, &token), NA_OK);
    /* Marked at once, confirmed at the next poll. */
    assert_true(na_ledger_delivered(l, ID_A, "desk"));
    assert_false(na_ledger_delivered(l, ID_A, "other"));
    assert_false(na_ledger_delivered(l, ID_B, "desk"));
    assert_int_equal(na_ledger_outstanding(l), 1);
    assert_int_equal(c.ok, 0);
    na_ledger_poll(l, 0);
    assert_int_equal(c.ok, 1);
    assert_ptr_equal(c.last, &token);
    assert_int_equal(na_ledger_outstanding(l), 0);
    /* "linked" is known but not sent, and never downgrades "delivered". */
    struct na_ledger_delivery linked = {"linked", 0, 0, 1, 0};
    assert_int_equal(na_ledger_record(l, ID_B, "desk", &linked, NULL, NULL), NA_OK);
    assert_true(na_ledger_known(l, ID_B));
    assert_false(na_ledger_delivered(l, ID_B, "desk"));
    assert_int_equal(na_ledger_record(l, ID_A, "desk", &linked, NULL, NULL), NA_OK);
    assert_true(na_ledger_delivered(l, ID_A, "desk"));
    assert_int_equal(na_ledger_count(l), 2);
    na_ledger_destroy(l);
    na_ledger_destroy(NULL);
}

static void test_apply_reads_records_and_tombstones(void **state) {
    (void)state;
    na_ledger_t *l = na_ledger_new_memory(NULL, NULL);
    const char *v = "{\"schema\":\"alert/v1\",\"id\":\"" ID_A "\",\"deliveries\":{"
                    "\"desk\":{\"outcome\":\"delivered\",\"status\":200,\"attempts\":1},"
                    "\"ops\":{\"outcome\":\"digest\",\"status\":204},"
                    "\"late\":{\"outcome\":\"linked\"}}}";
    assert_int_equal(na_ledger_apply(l, ID_A, 64, v, strlen(v)), NA_OK);
    assert_true(na_ledger_delivered(l, ID_A, "desk"));
    assert_true(na_ledger_delivered(l, ID_A, "ops"));
    assert_false(na_ledger_delivered(l, ID_A, "late"));
    /* Not a ledger record: skipped, state unchanged. */
    assert_int_equal(na_ledger_apply(l, ID_B, 64, "{\"x\":1}", 7), NA_ERR_INVALID);
    assert_int_equal(na_ledger_apply(l, ID_B, 64, "not json", 8), NA_ERR_INVALID);
    assert_int_equal(na_ledger_apply(l, NULL, 0, v, strlen(v)), NA_ERR_INVALID);
    assert_false(na_ledger_known(l, ID_B));
    /* Tombstone forgets the alert. */
    assert_int_equal(na_ledger_apply(l, ID_A, 64, NULL, 0), NA_OK);
    assert_false(na_ledger_delivered(l, ID_A, "desk"));
    assert_int_equal(na_ledger_count(l), 0);
    na_ledger_destroy(l);
}

/* Regression: an alert could carry the outcomes of 64 routes at most.
 * With more routes wanting it, the ledger refused the delivery of the 65th
 * (na_ledger_record() said "too large" every time: the daemon retried it
 * for good, a replay gave up and sent it again at every run), and a record
 * of more routes was skipped when read back, so every route of it was sent
 * the alert again after a restart. Every route a config may have fits. */
static void test_an_alert_of_many_routes_is_recorded_and_read_back(void **state) {
    (void)state;
    enum { ROUTES = 200 };
    na_ledger_t *l = na_ledger_new_memory(NULL, NULL);
    struct na_ledger_delivery d = {"delivered", 200, 1, 1767686400000, 0};
    char route[32];
    for (int i = 0; i < ROUTES; i++) {
        snprintf(route, sizeof(route), "team-%d", i);
        assert_int_equal(na_ledger_record(l, ID_A, route, &d, NULL, NULL), NA_OK);
    }
    na_ledger_poll(l, 0);
    /* The record a member writes for it, read back after a restart. */
    json_t *dels = json_object();
    for (int i = 0; i < ROUTES; i++) {
        snprintf(route, sizeof(route), "team-%d", i);
        assert_true(na_ledger_delivered(l, ID_A, route));
        json_object_set_new(dels, route,
                            json_pack("{s:s, s:i, s:i, s:I}", "outcome", "delivered",
                                      "status", 200, "attempts", 1, "at_ms",
                                      (json_int_t)1767686400000));
    }
    json_t *root = json_pack("{s:s, s:o}", "schema", "alert/v1", "deliveries", dels);
    char *v = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    na_ledger_t *reread = na_ledger_new_memory(NULL, NULL);
    assert_int_equal(na_ledger_apply(reread, ID_A, 64, v, strlen(v)), NA_OK);
    for (int i = 0; i < ROUTES; i++) {
        snprintf(route, sizeof(route), "team-%d", i);
        assert_true(na_ledger_delivered(reread, ID_A, route));
    }
    free(v);
    na_ledger_destroy(reread);
    na_ledger_destroy(l);
}

/* A config has no more routes than the ledger keeps for one alert. */
static void test_a_config_of_more_routes_than_the_ledger_keeps_is_refused(void **state) {
    (void)state;
    char errstr[256] = "";
    struct na_routes routes = {0};
    json_t *arr = json_array();
    for (unsigned i = 0; i <= NA_MAX_ROUTES; i++) {
        json_array_append_new(arr, json_pack("{s:s}", "url", "https://x.test/hook"));
    }
    assert_int_equal(na_routes_parse(arr, &routes, errstr, sizeof(errstr)),
                     NA_ERR_CONFIG);
    assert_non_null(strstr(errstr, "more than"));
    na_routes_cleanup(&routes);
    memset(&routes, 0, sizeof(routes));
    json_array_remove(arr, 0);
    assert_int_equal(na_routes_parse(arr, &routes, errstr, sizeof(errstr)), NA_OK);
    assert_int_equal(routes.cnt, NA_MAX_ROUTES);
    na_routes_cleanup(&routes);
    json_decref(arr);
}

/* Regression: every route name a record ever named stayed in memory, also
 * once no alert had it any more (its alerts deleted by tombstones, or
 * forgotten past the horizon). Anyone who could write to the ledger topic
 * grew every consumer's memory without bound with records of new route
 * names and their tombstones, while the compacted topic stayed small. A
 * name is now kept as long as an alert in memory has an outcome of it. */
static void test_route_names_of_deleted_alerts_are_forgotten(void **state) {
    (void)state;
    na_ledger_t *l = na_ledger_new_memory(NULL, NULL);
    char id[32], v[256];
    for (int i = 0; i < 2000; i++) {
        snprintf(id, sizeof(id), "alert-%d", i);
        snprintf(v, sizeof(v),
                 "{\"deliveries\":{\"desk\":{\"outcome\":\"delivered\"},"
                 "\"junk-%d\":{\"outcome\":\"delivered\"}}}",
                 i);
        assert_int_equal(na_ledger_apply(l, id, strlen(id), v, strlen(v)), NA_OK);
        if (i) { /* alert-0 stays */
            assert_int_equal(na_ledger_apply(l, id, strlen(id), NULL, 0), NA_OK);
        }
    }
    assert_int_equal(na_ledger_count(l), 1);
    assert_int_equal(na_ledger_route_names(l), 2); /* desk, junk-0 */
    assert_true(na_ledger_delivered(l, "alert-0", "desk"));
    assert_true(na_ledger_delivered(l, "alert-0", "junk-0"));
    /* Forgotten past the horizon: their names too. */
    na_ledger_set_horizon(l, 1000);
    struct na_ledger_delivery d = {"delivered", 200, 1, 5000, 0};
    assert_int_equal(na_ledger_record(l, "alert-x", "ops", &d, NULL, NULL), NA_OK);
    na_ledger_poll(l, 0);
    assert_int_equal(na_ledger_route_names(l), 3);
    assert_int_equal(na_ledger_prune(l, 1000000), 1); /* alert-x; alert-0 has no time */
    assert_int_equal(na_ledger_route_names(l), 2);
    /* A name used again is known again. */
    assert_int_equal(na_ledger_record(l, "alert-y", "ops", &d, NULL, NULL), NA_OK);
    na_ledger_poll(l, 0);
    assert_true(na_ledger_delivered(l, "alert-y", "ops"));
    assert_int_equal(na_ledger_route_names(l), 3);
    na_ledger_destroy(l);
}

/* Enough alerts to grow the table several times, then erase half. */
static void test_table_grows_and_erases(void **state) {
    (void)state;
    na_ledger_t *l = na_ledger_new_memory(NULL, NULL);
    struct na_ledger_delivery d = {"delivered", 200, 1, 1, 0};
    char id[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(id, sizeof(id), "alert-%d", i);
        assert_int_equal(na_ledger_record(l, id, i % 2 ? "a" : "b", &d, NULL, NULL),
                         NA_OK);
    }
    na_ledger_poll(l, 0);
    for (int i = 0; i < 5000; i += 2) {
        snprintf(id, sizeof(id), "alert-%d", i);
        assert_int_equal(na_ledger_apply(l, id, strlen(id), NULL, 0), NA_OK);
    }
    assert_int_equal(na_ledger_count(l), 2500);
    for (int i = 0; i < 5000; i++) {
        snprintf(id, sizeof(id), "alert-%d", i);
        assert_int_equal(na_ledger_delivered(l, id, "a"), i % 2 == 1);
        assert_false(na_ledger_delivered(l, id, "b"));
    }
    na_ledger_destroy(l);
}

/* Each loaded record: the alert/v1 body is there with "deliveries". */
static void on_load(const char *alert_id, const json_t *value, void *ctx) {
    int *n = ctx;
    assert_true(json_is_object(json_object_get(value, "deliveries")));
    if (!strcmp(alert_id, ID_A)) {
        assert_string_equal(json_string_value(json_object_get(value, "topic")), "taiwan");
    }
    (*n)++;
}

static void test_round_trip_through_a_cluster(void **state) {
    (void)state;
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    assert_non_null(rk);
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, 1);
    assert_non_null(mc);
    const char *brokers = rd_kafka_mock_cluster_bootstraps(mc);
    assert_int_equal(rd_kafka_mock_topic_create(mc, "alerts", 3, 1), 0);

    struct confirms c = {0, 0, NULL};
    int loaded = 0;
    struct na_ledger_opts opts = {.brokers = brokers,
                                  .topic = "alerts",
                                  .load_timeout_ms = 20000,
                                  .confirm_cb = on_confirm,
                                  .ctx = &c};
    na_ledger_t *l = NULL;
    assert_int_equal(na_ledger_open(&opts, &l, errstr, sizeof(errstr)), NA_OK);
    assert_int_equal(na_ledger_count(l), 0);
    struct na_ledger_delivery d = {"delivered", 200, 1, 1767686400000, 0};
    const char *alert =
        "{\"schema\":\"alert/v1\",\"id\":\"" ID_A "\",\"topic\":\"taiwan\"}";
    assert_int_equal(na_ledger_record(l, ID_A, "desk", &d, alert, NULL), NA_OK);
    assert_int_equal(na_ledger_record(l, ID_A, "ops", &d, alert, NULL), NA_OK);
    assert_int_equal(na_ledger_record(l, ID_B, "desk", &d, NULL, NULL), NA_OK);
    assert_int_equal(na_ledger_mark_owner(l, "articles", 0, NA_OWNER_TAKEN, "m1"), NA_OK);
    assert_int_equal(na_ledger_mark_owner(l, "articles", 1, NA_OWNER_TAKEN, "m1"), NA_OK);
    assert_int_equal(na_ledger_mark_owner(l, "articles", 1, NA_OWNER_RELEASED, "m1"),
                     NA_OK);
    int64_t deadline = na_mono_ms() + 20000;
    while (na_ledger_outstanding(l) && na_mono_ms() < deadline) {
        na_ledger_poll(l, 100);
    }
    assert_int_equal(c.ok, 6);
    assert_int_equal(c.failed, 0);
    na_ledger_destroy(l);

    /* A new instance reads the topic to its end before answering, and
     * shows each record to the load callback. */
    l = NULL;
    opts.load_cb = on_load;
    opts.load_ctx = &loaded;
    assert_int_equal(na_ledger_open(&opts, &l, errstr, sizeof(errstr)), NA_OK);
    assert_int_equal(na_ledger_count(l), 2);
    assert_true(na_ledger_delivered(l, ID_A, "desk"));
    assert_true(na_ledger_delivered(l, ID_A, "ops"));
    assert_true(na_ledger_delivered(l, ID_B, "desk"));
    assert_false(na_ledger_delivered(l, ID_B, "ops"));
    assert_int_equal(loaded, 3); /* owner records are not alerts */
    /* the newest owner record of each partition, read back */
    assert_int_equal(na_ledger_owner(l, "articles", 0, NULL), NA_OWNER_TAKEN);
    assert_int_equal(na_ledger_owner(l, "articles", 1, NULL), NA_OWNER_RELEASED);
    assert_int_equal(na_ledger_owner(l, "articles", 2, NULL), NA_OWNER_UNKNOWN);
    na_ledger_destroy(l);

    /* With a horizon of a day, the records of 2026-01-06 are forgotten at
     * load: not answered, not shown to the load callback. */
    loaded = 0;
    opts.horizon_ms = 86400000;
    assert_int_equal(na_ledger_open(&opts, &l, errstr, sizeof(errstr)), NA_OK);
    assert_int_equal(na_ledger_count(l), 0);
    assert_false(na_ledger_delivered(l, ID_A, "desk"));
    assert_int_equal(loaded, 0);
    na_ledger_destroy(l);
    opts.horizon_ms = 0;

    /* A topic that does not exist is an empty ledger. */
    opts.topic = "no-such-ledger";
    assert_int_equal(na_ledger_open(&opts, &l, errstr, sizeof(errstr)), NA_OK);
    assert_int_equal(na_ledger_count(l), 0);
    na_ledger_destroy(l);

    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
}

static void produce_raw(rd_kafka_t *rk, const char *topic, const char *key,
                        const char *value) {
    assert_int_equal(
        rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(0),
                          RD_KAFKA_V_KEY(key, strlen(key)),
                          RD_KAFKA_V_VALUE((void *)value, strlen(value)),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
        RD_KAFKA_RESP_ERR_NO_ERROR);
}

static double invalid_total(void) {
    return na_metric_value(
        na_metrics_get(NA_METRIC_COUNTER, "newsalert_ledger_invalid_total",
                       "Ledger records that could not be read (skipped).", NULL));
}

static size_t count_of(const char *s, const char *what) {
    size_t n = 0;
    for (const char *p = s; (p = strstr(p, what)); p += strlen(what)) {
        n++;
    }
    return n;
}

/* Regression: records of the ledger topic that are not ledger records, met
 * while the ledger is loaded at start, were only counted as skipped= in
 * the "loaded" line: no metric, and no word of which record or why, while
 * records met later count in newsalert_ledger_invalid_total. Both now
 * count there, and each is logged with its partition, offset and reason,
 * a few lines a minute at most (a topic others write to may hold many). */
static void test_invalid_records_at_load_are_counted_and_named(void **state) {
    (void)state;
    char errstr[512];
    char path[] = "/tmp/na_test_ledger_errXXXXXX";
    char *err = NULL;
    size_t len;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    assert_non_null(rk);
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, 1);
    assert_non_null(mc);
    assert_int_equal(rd_kafka_mock_topic_create(mc, "bad", 1, 1), 0);
    conf = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers",
                                       rd_kafka_mock_cluster_bootstraps(mc), errstr,
                                       sizeof(errstr)),
                     RD_KAFKA_CONF_OK);
    rd_kafka_t *prod = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    assert_non_null(prod);
    produce_raw(prod, "bad", ID_A,
                "{\"deliveries\":{\"desk\":{\"outcome\":\"delivered\",\"at_ms\":1}}}");
    produce_raw(prod, "bad", ID_B, "not json");                  /* offset 1 */
    produce_raw(prod, "bad", ID_B, "{\"schema\":\"alert/v1\"}"); /* offset 2 */
    for (int i = 0; i < 40; i++) {
        produce_raw(prod, "bad", ID_B, "[");
    }
    assert_int_equal(rd_kafka_flush(prod, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);

    struct na_ledger_opts opts = {.brokers = rd_kafka_mock_cluster_bootstraps(mc),
                                  .topic = "bad",
                                  .load_timeout_ms = 20000};
    na_ledger_t *l = NULL;
    double before = invalid_total();
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    na_err_t oerr = na_ledger_open(&opts, &l, errstr, sizeof(errstr));
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    close(fd);
    assert_int_equal(oerr, NA_OK);
    assert_int_equal(na_read_file(path, 1 << 20, &err, &len, errstr, sizeof(errstr)),
                     NA_OK);
    unlink(path);

    /* the good record is read; the 42 others are counted and skipped */
    assert_int_equal(na_ledger_count(l), 1);
    assert_true(na_ledger_delivered(l, ID_A, "desk"));
    assert_true(invalid_total() - before == 42.0);
    assert_non_null(strstr(err, "skipped=42"));
    /* named, with the reason */
    assert_non_null(strstr(
        err,
        "event=invalid_record topic=\"bad\" partition=0 offset=1 reason=\"not JSON"));
    assert_non_null(strstr(err, "partition=0 offset=2 reason=\"no deliveries"));
    /* but not one line each */
    assert_int_equal(count_of(err, "event=invalid_record"), 10);
    free(err);
    na_ledger_destroy(l);
    rd_kafka_destroy(prod);
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
}

/* Partition owner records: marked in memory at once, read back from their
 * own key only, never counted as alerts. */
static void test_owner_records(void **state) {
    (void)state;
    struct confirms c = {0, 0, NULL};
    na_ledger_t *l = na_ledger_new_memory(on_confirm, &c);
    int64_t at = -1;
    assert_non_null(l);
    assert_int_equal(na_ledger_owner(l, "t", 3, &at), NA_OWNER_UNKNOWN);
    assert_int_equal(at, 0);
    assert_int_equal(na_ledger_mark_owner(l, "t", 3, NA_OWNER_TAKEN, "m"), NA_OK);
    assert_int_equal(na_ledger_owner(l, "t", 3, &at), NA_OWNER_TAKEN);
    assert_true(at > 0);
    assert_int_equal(na_ledger_owner(l, "t", 4, NULL), NA_OWNER_UNKNOWN);
    assert_int_equal(na_ledger_owner(l, "u", 3, NULL), NA_OWNER_UNKNOWN);
    assert_int_equal(na_ledger_mark_owner(l, "t", 3, NA_OWNER_RELEASED, "m"), NA_OK);
    assert_int_equal(na_ledger_owner(l, "t", 3, NULL), NA_OWNER_RELEASED);
    assert_int_equal(na_ledger_mark_owner(l, "t", 3, NA_OWNER_UNKNOWN, "m"),
                     NA_ERR_INVALID);

    const char *taken = "{\"owner\":{\"topic\":\"news\",\"partition\":2,"
                        "\"state\":\"taken\",\"member\":\"x\",\"at_ms\":5}}";
    const char *key = "owner/news/2";
    assert_int_equal(na_ledger_apply(l, key, strlen(key), taken, strlen(taken)), NA_OK);
    assert_int_equal(na_ledger_owner(l, "news", 2, &at), NA_OWNER_TAKEN);
    assert_int_equal(at, 5);
    /* a record under another partition's key is not trusted */
    const char *other = "owner/news/7";
    assert_int_equal(na_ledger_apply(l, other, strlen(other), taken, strlen(taken)),
                     NA_ERR_INVALID);
    assert_int_equal(na_ledger_owner(l, "news", 7, NULL), NA_OWNER_UNKNOWN);
    const char *bad = "{\"owner\":{\"topic\":\"news\",\"partition\":2,"
                      "\"state\":\"lost\"}}";
    assert_int_equal(na_ledger_apply(l, key, strlen(key), bad, strlen(bad)),
                     NA_ERR_INVALID);
    assert_int_equal(na_ledger_owner(l, "news", 2, NULL), NA_OWNER_TAKEN);
    /* a tombstone leaves the mark; none of this is an alert */
    assert_int_equal(na_ledger_apply(l, key, strlen(key), NULL, 0), NA_OK);
    assert_int_equal(na_ledger_owner(l, "news", 2, NULL), NA_OWNER_TAKEN);
    assert_int_equal(na_ledger_count(l), 0);
    assert_false(na_ledger_known(l, key));
    na_ledger_destroy(l);
}

/* A record of (id, route) whose outcome is at @p at_ms, as the topic holds it. */
static na_err_t apply_at(na_ledger_t *l, const char *id, const char *route,
                         int64_t at_ms) {
    char v[256];
    snprintf(v, sizeof(v),
             "{\"deliveries\":{\"%s\":{\"outcome\":\"delivered\",\"status\":200,"
             "\"attempts\":1,\"at_ms\":%lld}}}",
             route, (long long)at_ms);
    return na_ledger_apply(l, id, strlen(id), v, strlen(v));
}

/* The horizon: records older at load are forgotten, prune drops what aged
 * past it, an alert's newest outcome decides, and the table keeps working
 * after a prune rebuilt it. */
static void test_horizon_forgets_old_alerts(void **state) {
    (void)state;
    const int64_t hour = 3600000;
    int64_t now = na_now_ms();
    na_ledger_t *l = na_ledger_new_memory(NULL, NULL);
    assert_non_null(l);
    na_ledger_set_horizon(l, hour);
    assert_int_equal(na_ledger_prune(l, now), 0);

    assert_int_equal(apply_at(l, ID_A, "desk", now - 2 * hour), NA_OK);
    assert_false(na_ledger_known(l, ID_A)); /* older than the horizon */
    assert_int_equal(apply_at(l, ID_B, "desk", now - hour / 6), NA_OK);
    assert_true(na_ledger_delivered(l, ID_B, "desk"));

    /* 3,000 alerts: even ones 30 minutes old, odd ones with an old outcome
     * on one route and a fresh one on another */
    char id[65];
    for (int i = 0; i < 3000; i++) {
        snprintf(id, sizeof(id), "%064d", i);
        if (i % 2 == 0) {
            assert_int_equal(apply_at(l, id, "desk", now - hour / 2), NA_OK);
        } else {
            assert_int_equal(apply_at(l, id, "desk", now - hour / 2), NA_OK);
            assert_int_equal(apply_at(l, id, "ops", now), NA_OK);
        }
    }
    assert_int_equal(na_ledger_count(l), 3001);

    /* 55 minutes later the even ones (85 minutes old) and B (65) are past
     * it; the odd ones' newest outcome is 55 minutes old */
    assert_int_equal(na_ledger_prune(l, now + hour * 11 / 12), 1501);
    assert_int_equal(na_ledger_count(l), 1500);
    assert_int_equal(na_ledger_prune(l, now + hour * 11 / 12), 0);
    assert_false(na_ledger_known(l, ID_B));
    for (int i = 0; i < 3000; i++) {
        snprintf(id, sizeof(id), "%064d", i);
        assert_int_equal(na_ledger_known(l, id), i % 2 == 1);
        assert_int_equal(na_ledger_delivered(l, id, "desk"), i % 2 == 1);
    }
    /* and new alerts go in and are found */
    struct na_ledger_delivery d = {"delivered", 200, 1, now + hour, 0};
    assert_int_equal(na_ledger_record(l, ID_A, "desk", &d, NULL, NULL), NA_OK);
    assert_true(na_ledger_delivered(l, ID_A, "desk"));

    /* an outcome without a time is of unknown age: kept */
    const char *untimed = "{\"deliveries\":{\"desk\":{\"outcome\":\"delivered\"}}}";
    assert_int_equal(na_ledger_apply(l, ID_B, strlen(ID_B), untimed, strlen(untimed)),
                     NA_OK);
    assert_int_equal(na_ledger_prune(l, now + 1000 * hour), 1501);
    assert_true(na_ledger_delivered(l, ID_B, "desk"));

    /* without a horizon nothing is forgotten */
    na_ledger_set_horizon(l, 0);
    assert_int_equal(na_ledger_apply(l, ID_A, strlen(ID_A), untimed, strlen(untimed)),
                     NA_OK);
    assert_int_equal(na_ledger_prune(l, now + 1000 * hour), 0);
    assert_int_equal(na_ledger_count(l), 2);
    na_ledger_destroy(l);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_memory_ledger_marks_and_confirms),
        cmocka_unit_test(test_apply_reads_records_and_tombstones),
        cmocka_unit_test(test_an_alert_of_many_routes_is_recorded_and_read_back),
        cmocka_unit_test(test_a_config_of_more_routes_than_the_ledger_keeps_is_refused),
        cmocka_unit_test(test_route_names_of_deleted_alerts_are_forgotten),
        cmocka_unit_test(test_table_grows_and_erases),
        cmocka_unit_test(test_horizon_forgets_old_alerts),
        cmocka_unit_test(test_round_trip_through_a_cluster),
        cmocka_unit_test(test_owner_records),
        cmocka_unit_test(test_invalid_records_at_load_are_counted_and_named),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
