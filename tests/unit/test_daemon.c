/* daemon.h: signals, drain deadline, listen addresses, reload that keeps the
 * old state when the new one does not load. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "newsalert/daemon.h"
/* after rdkafka.h (daemon.h includes it) */
#include <librdkafka/rdkafka_mock.h>
#include "newsalert/log.h"
#include "newsalert/metrics.h"
#include "newsalert/timeutil.h"
#include "consumer_reload.h"

static void test_signals_set_flags(void **state) {
    (void)state;
    char errstr[128];
    assert_int_equal(na_daemon_signals_install(errstr, sizeof(errstr)), NA_OK);
    assert_false(na_daemon_should_stop());
    assert_int_equal(*na_daemon_running(), 1);
    assert_false(na_daemon_take_reload());

    /* Several SIGHUPs before the loop looks count as one reload. */
    raise(SIGHUP);
    raise(SIGHUP);
    assert_false(na_daemon_should_stop());
    assert_true(na_daemon_take_reload());
    assert_false(na_daemon_take_reload());

    /* SIGPIPE is ignored: raising it must not kill the test. */
    raise(SIGPIPE);

    raise(SIGTERM);
    assert_true(na_daemon_should_stop());
    assert_int_equal(*na_daemon_running(), 0);
    assert_false(na_daemon_should_abort());
    int64_t deadline = na_daemon_deadline(10000);
    assert_true(na_daemon_deadline_left_ms(deadline, 100) == 100);
    raise(SIGINT); /* the second stop: abandon the drain */
    assert_true(na_daemon_should_abort());
    assert_int_equal(na_daemon_deadline_left_ms(deadline, 100), 0);

    /* Installing again starts over. */
    assert_int_equal(na_daemon_signals_install(errstr, sizeof(errstr)), NA_OK);
    assert_false(na_daemon_should_stop());
    na_daemon_request_reload();
    assert_true(na_daemon_take_reload());
    na_daemon_request_stop();
    assert_true(na_daemon_should_stop());
    assert_int_equal(na_daemon_signals_install(errstr, sizeof(errstr)), NA_OK);
}

static void test_deadline(void **state) {
    (void)state;
    int64_t d = na_daemon_deadline(120);
    int left = na_daemon_deadline_left_ms(d, 1000);
    assert_true(left > 0 && left <= 120);
    assert_int_equal(na_daemon_deadline_left_ms(d, 10), 10);
    na_sleep_ms(150);
    assert_int_equal(na_daemon_deadline_left_ms(d, 1000), 0);
    assert_int_equal(na_daemon_deadline_left_ms(na_daemon_deadline(0), 1000), 0);
}

static void test_parse_listen(void **state) {
    (void)state;
    char host[64];
    int port = -1;
    assert_int_equal(na_daemon_parse_listen("127.0.0.1:9464", host, sizeof(host), &port),
                     0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 9464);
    assert_int_equal(na_daemon_parse_listen("[::1]:0", host, sizeof(host), &port), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 0);
    assert_int_equal(na_daemon_parse_listen(":9465", host, sizeof(host), &port), 0);
    assert_string_equal(host, "");
    assert_int_equal(na_daemon_parse_listen("localhost:80", host, sizeof(host), &port),
                     0);
    static const char *const bad[] = {
        "",       "9464",    "host:", "host:x", "host:65536",
        "::1:80", "[::1]80", "h:-1",  "h:80 "};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (!na_daemon_parse_listen(bad[i], host, sizeof(host), &port)) {
            fail_msg("accepted \"%s\"", bad[i]);
        }
    }
    assert_int_equal(
        na_daemon_parse_listen("averyveryverylonghostname:1", host, 8, &port), -1);
}

static void test_conf_apply(void **state) {
    (void)state;
    char errstr[256];
    struct na_daemon_conf dc = {(char *)"json", (char *)""};
    assert_int_equal(na_daemon_conf_apply(&dc, errstr, sizeof(errstr)), NA_OK);
    dc.log_format = (char *)"yaml";
    assert_int_equal(na_daemon_conf_apply(&dc, errstr, sizeof(errstr)), NA_ERR_CONFIG);
    assert_non_null(strstr(errstr, "log_format"));
    dc.log_format = (char *)"logfmt";
    dc.http_listen = (char *)"nope";
    assert_int_equal(na_daemon_conf_apply(&dc, errstr, sizeof(errstr)), NA_ERR_CONFIG);
    assert_non_null(strstr(errstr, "http_listen"));
    na_log_set_format(NA_LOG_FORMAT_LOGFMT);
}

static const char *path_of(const char *rel) {
    static char path[PATH_MAX];
    const char *src = getenv("NA_SOURCE_DIR");
    snprintf(path, sizeof(path), "%s/%s", src ? src : "..", rel);
    return path;
}

static const char *write_tmp(const char *text) {
    static char path[] = "/tmp/na-test-daemon-XXXXXX";
    snprintf(path, sizeof(path), "/tmp/na-test-daemon-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *fp = fdopen(fd, "w");
    fputs(text, fp);
    fclose(fp);
    return path;
}

static double reloads(const char *what, const char *result) {
    char labels[96];
    snprintf(labels, sizeof(labels), "what=\"%s\",result=\"%s\"", what, result);
    return na_metric_value(
        na_metrics_get(NA_METRIC_COUNTER, "newsalert_reloads_total", "R.", labels));
}

static void test_rules_reload_keeps_old_on_failure(void **state) {
    (void)state;
    char errstr[512];
    na_rules_t *rules = NULL;
    na_metrics_reset();
    assert_int_equal(na_rules_load_file(path_of("examples/rules.json"), &rules, errstr,
                                        sizeof(errstr)),
                     NA_OK);
    na_rules_t *before = rules;
    char version[128];
    snprintf(version, sizeof(version), "%s", na_rules_version(rules));

    /* A broken file: the live rules stay, the failure is counted. */
    const char *bad = write_tmp("{\"topics\": [ {\"name\": \"x\", ");
    assert_int_not_equal(na_consumer_reload_rules(bad, &rules), NA_OK);
    assert_ptr_equal(rules, before);
    assert_string_equal(na_rules_version(rules), version);
    assert_true(reloads("rules", "failed") == 1);
    remove(bad);
    assert_int_not_equal(na_consumer_reload_rules("/nonexistent/rules.json", &rules),
                         NA_OK);
    assert_ptr_equal(rules, before);

    /* A good file: swapped in. */
    assert_int_equal(na_consumer_reload_rules(path_of("examples/rules.json"), &rules),
                     NA_OK);
    assert_non_null(rules);
    assert_true(reloads("rules", "ok") == 1);
    assert_true(reloads("rules", "failed") == 2);
    na_rules_destroy(rules);
    na_metrics_reset();
}

static void test_routes_reload(void **state) {
    (void)state;
    struct na_routes staged;
    const char *cfg = write_tmp("{\"routes\": [{\"name\": \"desk\", \"url\": "
                                "\"http://127.0.0.1:1/hook\", \"format\": \"json\"}]}");
    assert_int_equal(
        na_consumer_reload_routes(cfg, "http://127.0.0.1:2/x", "json", &staged), NA_OK);
    assert_int_equal(staged.cnt, 2);
    assert_string_equal(staged.v[0].name, "desk");
    na_routes_cleanup(&staged);
    remove(cfg);
    cfg =
        write_tmp("{\"routes\": [{\"name\": \"desk\", \"format\": \"no-such-format\"}]}");
    assert_int_not_equal(na_consumer_reload_routes(cfg, NULL, NULL, &staged), NA_OK);
    assert_int_equal(staged.cnt, 0);
    remove(cfg);
}

/* Lag and queue gauges on librdkafka's mock cluster: 5 records, 2 consumed. */
static void test_kafka_gauges(void **state) {
    (void)state;
    char errstr[512];
    na_metrics_reset();
    rd_kafka_conf_t *kconf = rd_kafka_conf_new();
    assert_int_equal(
        rd_kafka_conf_set(kconf, "test.mock.num.brokers", "1", errstr, sizeof(errstr)),
        RD_KAFKA_CONF_OK);
    rd_kafka_t *prod = rd_kafka_new(RD_KAFKA_PRODUCER, kconf, errstr, sizeof(errstr));
    assert_non_null(prod);
    rd_kafka_mock_cluster_t *mc = rd_kafka_handle_mock_cluster(prod);
    assert_non_null(mc);
    assert_int_equal(rd_kafka_mock_topic_create(mc, "t", 1, 1), 0);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(
            rd_kafka_producev(prod, RD_KAFKA_V_TOPIC("t"), RD_KAFKA_V_PARTITION(0),
                              RD_KAFKA_V_VALUE("x", 1),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
            0);
    }
    na_daemon_kafka_gauges(prod, "articles");
    assert_int_equal(rd_kafka_flush(prod, 10000), 0);
    na_daemon_kafka_gauges(prod, "articles");

    kconf = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(kconf, "bootstrap.servers",
                                       rd_kafka_mock_cluster_bootstraps(mc), errstr,
                                       sizeof(errstr)),
                     RD_KAFKA_CONF_OK);
    assert_int_equal(rd_kafka_conf_set(kconf, "group.id", "g", errstr, sizeof(errstr)),
                     RD_KAFKA_CONF_OK);
    rd_kafka_t *cons = rd_kafka_new(RD_KAFKA_CONSUMER, kconf, errstr, sizeof(errstr));
    assert_non_null(cons);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(parts, "t", 0)->offset = 0;
    assert_int_equal(rd_kafka_assign(cons, parts), 0);
    rd_kafka_topic_partition_list_destroy(parts);
    int got = 0;
    for (int tries = 0; got < 2 && tries < 100; tries++) {
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(cons, 100);
        if (rkm) {
            got += !rkm->err;
            rd_kafka_message_destroy(rkm);
        }
    }
    assert_int_equal(got, 2);
    na_daemon_kafka_gauges(cons, "consumer");
    double lag =
        na_metric_value(na_metrics_get(NA_METRIC_GAUGE, "newsalert_consumer_lag_messages",
                                       "L.", "topic=\"t\",partition=\"0\""));
    assert_true(lag == 3);
    double queued = na_metric_value(na_metrics_get(
        NA_METRIC_GAUGE, "newsalert_kafka_queue_messages", "Q.", "client=\"articles\""));
    assert_true(queued == 0);
    rd_kafka_consumer_close(cons);
    rd_kafka_destroy(cons);
    rd_kafka_destroy(prod);
    na_metrics_reset();
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signals_set_flags),
        cmocka_unit_test(test_deadline),
        cmocka_unit_test(test_parse_listen),
        cmocka_unit_test(test_conf_apply),
        cmocka_unit_test(test_rules_reload_keeps_old_on_failure),
        cmocka_unit_test(test_routes_reload),
        cmocka_unit_test(test_kafka_gauges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
