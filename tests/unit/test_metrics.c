#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "newsalert/metrics.h"
#include "newsalert/util.h"

static void test_counters_gauges_and_labels(void **state) {
    (void)state;
    na_metrics_reset();
    na_metric_t *a = na_metrics_get(NA_METRIC_COUNTER, "newsalert_test_total", "Things.",
                                    "route=\"desk\"");
    na_metric_t *b = na_metrics_get(NA_METRIC_COUNTER, "newsalert_test_total", "Things.",
                                    "route=\"archive\"");
    assert_ptr_equal(a, na_metrics_get(NA_METRIC_COUNTER, "newsalert_test_total", "x",
                                       "route=\"desk\""));
    assert_ptr_not_equal(a, b);
    assert_null(na_metrics_get(NA_METRIC_GAUGE, "newsalert_test_total", "x", NULL));
    na_metric_add(a, 2);
    na_metrics_inc("newsalert_test_total", "Things.", "route=\"archive\"");
    na_metric_t *g = na_metrics_get(NA_METRIC_GAUGE, "newsalert_depth", "Depth.", NULL);
    na_metric_set(g, 7);
    char *text = na_metrics_render();
    assert_non_null(strstr(text, "# HELP newsalert_test_total Things.\n"
                                 "# TYPE newsalert_test_total counter\n"
                                 "newsalert_test_total{route=\"desk\"} 2\n"
                                 "newsalert_test_total{route=\"archive\"} 1\n"));
    assert_non_null(strstr(text, "# TYPE newsalert_depth gauge\nnewsalert_depth 7\n"));
    /* HELP and TYPE once per name. */
    assert_null(strstr(strstr(text, "# TYPE newsalert_test_total") + 1,
                       "# TYPE newsalert_test_total"));
    free(text);
    na_metrics_reset();
}

static void test_histogram_buckets_are_cumulative(void **state) {
    (void)state;
    na_metrics_reset();
    na_metric_t *h =
        na_metrics_get(NA_METRIC_HISTOGRAM, "newsalert_x_seconds", "X.", NULL);
    na_metric_observe(h, 0.0002);
    na_metric_observe(h, 0.003);
    na_metric_observe(h, 20);
    char *text = na_metrics_render();
    assert_non_null(strstr(text, "newsalert_x_seconds_bucket{le=\"0.0001\"} 0\n"));
    assert_non_null(strstr(text, "newsalert_x_seconds_bucket{le=\"0.00025\"} 1\n"));
    assert_non_null(strstr(text, "newsalert_x_seconds_bucket{le=\"0.005\"} 2\n"));
    assert_non_null(strstr(text, "newsalert_x_seconds_bucket{le=\"10\"} 2\n"));
    assert_non_null(strstr(text, "newsalert_x_seconds_bucket{le=\"+Inf\"} 3\n"));
    assert_non_null(strstr(text, "newsalert_x_seconds_count 3\n"));
    free(text);
    na_metrics_reset();
}

static void test_label_escape(void **state) {
    (void)state;
    char buf[64];
    assert_string_equal(na_metrics_label_escape("a\"b\\c\nd", buf, sizeof(buf)),
                        "a\\\"b\\\\c\\nd");
}

/* A value cut to its buffer is cut between characters: one label value
 * that is not UTF-8 makes a scraper refuse the whole /metrics text. */
static void test_label_escape_cut_keeps_utf8(void **state) {
    (void)state;
    /* "é" is 2 bytes, "€" 3, "😀" 4: every cut position of each */
    static const char *values[] = {"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9",
                                   "a\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac",
                                   "ab\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80",
                                   "\"\xc3\xa9\"\xc3\xa9\"\xc3\xa9\"\xc3\xa9"};
    for (size_t v = 0; v < sizeof(values) / sizeof(values[0]); v++) {
        for (size_t size = 1; size <= 24; size++) {
            char buf[24];
            const char *out = na_metrics_label_escape(values[v], buf, size);
            if (!na_utf8_valid(out, strlen(out))) {
                fail_msg("value %zu cut to %zu bytes: not UTF-8", v, size);
            }
            assert_true(strlen(out) < size);
        }
    }
    char buf[8];
    assert_string_equal(
        na_metrics_label_escape("\xc3\xa9\xc3\xa9\xc3\xa9", buf, sizeof(buf)),
        "\xc3\xa9\xc3\xa9");
}

/* Lines of the rendered text that start with @p prefix. */
static size_t count_lines(const char *text, const char *prefix) {
    size_t n = 0;
    size_t len = strlen(prefix);
    for (const char *p = text; p && *p;) {
        if (!strncmp(p, prefix, len)) {
            n++;
        }
        p = strchr(p, '\n');
        p = p ? p + 1 : NULL;
    }
    return n;
}

/* Many series: each is found again (through the table's growth), and /metrics
 * lists each name's HELP and TYPE once, then all its series together, even
 * when names were registered interleaved. */
static void test_index_finds_every_series_and_groups_names(void **state) {
    (void)state;
    enum { FEEDS = 5000 };
    static na_metric_t *h[FEEDS][2];
    char labels[64];
    na_metrics_reset();
    for (int i = 0; i < FEEDS; i++) {
        snprintf(labels, sizeof(labels), "feed=\"f%d\"", i);
        h[i][0] =
            na_metrics_get(NA_METRIC_COUNTER, "newsalert_t_fetches_total", "F.", labels);
        h[i][1] =
            na_metrics_get(NA_METRIC_GAUGE, "newsalert_t_last_seconds", "L.", labels);
        assert_non_null(h[i][0]);
        assert_non_null(h[i][1]);
        assert_ptr_not_equal(h[i][0], h[i][1]);
        na_metric_add(h[i][0], i);
    }
    for (int i = 0; i < FEEDS; i++) {
        snprintf(labels, sizeof(labels), "feed=\"f%d\"", i);
        assert_ptr_equal(
            h[i][0],
            na_metrics_get(NA_METRIC_COUNTER, "newsalert_t_fetches_total", "x", labels));
        assert_ptr_equal(
            h[i][1],
            na_metrics_get(NA_METRIC_GAUGE, "newsalert_t_last_seconds", "x", labels));
        assert_true(na_metric_value(h[i][0]) == i);
    }
    /* no labels and empty labels are one series */
    assert_ptr_equal(na_metrics_get(NA_METRIC_GAUGE, "newsalert_t_up", "U.", NULL),
                     na_metrics_get(NA_METRIC_GAUGE, "newsalert_t_up", "U.", ""));
    char *text = na_metrics_render();
    assert_int_equal(count_lines(text, "# TYPE newsalert_t_fetches_total counter"), 1);
    assert_int_equal(count_lines(text, "newsalert_t_fetches_total{"), FEEDS);
    assert_int_equal(count_lines(text, "newsalert_t_last_seconds{"), FEEDS);
    /* grouped: from the first fetches line, FEEDS such lines in a row */
    const char *p = strstr(text, "newsalert_t_fetches_total{feed=\"f0\"} 0\n");
    assert_non_null(p);
    for (int i = 0; i < FEEDS; i++) {
        snprintf(labels, sizeof(labels), "newsalert_t_fetches_total{feed=\"f%d\"} %d\n",
                 i, i);
        assert_memory_equal(p, labels, strlen(labels));
        p += strlen(labels);
    }
    free(text);
    na_metrics_reset();
}

/* na_metrics_remove() and na_metrics_remove_label(): the series leave
 * /metrics, handles stay usable, a later get brings the series back from
 * zero with the same handle; only exact label pairs match. */
static void test_remove_series_and_label_pairs(void **state) {
    (void)state;
    na_metrics_reset();
    na_metric_t *a =
        na_metrics_get(NA_METRIC_COUNTER, "newsalert_t_total", "T.", "feed=\"a\"");
    na_metric_t *a_err = na_metrics_get(NA_METRIC_COUNTER, "newsalert_t_errors_total",
                                        "E.", "feed=\"a\",reason=\"http\"");
    na_metric_t *a_last = na_metrics_get(NA_METRIC_HISTOGRAM, "newsalert_t_seconds", "S.",
                                         "route=\"x\",feed=\"a\"");
    na_metric_t *ab =
        na_metrics_get(NA_METRIC_COUNTER, "newsalert_t_total", "T.", "feed=\"ab\"");
    na_metric_t *tricky =
        na_metrics_get(NA_METRIC_COUNTER, "newsalert_t_total", "T.",
                       "feed=\"b,feed=\\\"a\\\"\""); /* feed="b,feed=\"a\"" */
    na_metric_t *other =
        na_metrics_get(NA_METRIC_COUNTER, "newsalert_t_total", "T.", "xfeed=\"a\"");
    na_metric_add(a, 5);
    na_metric_add(a_err, 2);
    na_metric_observe(a_last, 0.5);
    na_metric_add(ab, 1);

    assert_int_equal(na_metrics_remove_label("feed=\"a\""), 3);
    assert_int_equal(na_metrics_remove_label("feed=\"a\""), 0); /* already gone */
    char *text = na_metrics_render();
    assert_null(strstr(text, "{feed=\"a\"}"));
    assert_null(strstr(text, "feed=\"a\",reason"));
    assert_null(strstr(text, "newsalert_t_errors_total")); /* no live series: no HELP */
    assert_null(strstr(text, "newsalert_t_seconds"));
    assert_non_null(strstr(text, "newsalert_t_total{feed=\"ab\"} 1\n"));
    assert_non_null(strstr(text, "newsalert_t_total{xfeed=\"a\"} 0\n"));
    assert_non_null(strstr(text, "feed=\"b,feed=\\\"a\\\"\""));
    free(text);

    /* Handles of removed series stay safe to use (ASan checks). */
    na_metric_add(a, 1);
    na_metric_set(a_err, 3);
    na_metric_observe(a_last, 1);
    text = na_metrics_render();
    assert_null(strstr(text, "{feed=\"a\"}"));
    free(text);

    /* Registered again: the same handle, from zero, listed again. */
    assert_ptr_equal(
        a, na_metrics_get(NA_METRIC_COUNTER, "newsalert_t_total", "T.", "feed=\"a\""));
    assert_true(na_metric_value(a) == 0);
    na_metrics_inc("newsalert_t_total", "T.", "feed=\"a\"");
    text = na_metrics_render();
    assert_non_null(strstr(text, "newsalert_t_total{feed=\"a\"} 1\n"));
    assert_null(strstr(text, "newsalert_t_errors_total"));
    free(text);
    /* a type clash is still refused after a removal */
    assert_null(na_metrics_get(NA_METRIC_GAUGE, "newsalert_t_errors_total", "E.",
                               "feed=\"a\",reason=\"http\""));

    /* One series by name and labels. */
    assert_int_equal(na_metrics_remove("newsalert_t_total", "feed=\"ab\""), 1);
    assert_int_equal(na_metrics_remove("newsalert_t_total", "feed=\"ab\""), 0);
    assert_int_equal(na_metrics_remove("newsalert_t_nothing", NULL), 0);
    text = na_metrics_render();
    assert_null(strstr(text, "feed=\"ab\""));
    assert_non_null(strstr(text, "newsalert_t_total{feed=\"a\"} 1\n"));
    free(text);
    assert_true(na_metric_value(tricky) == 0 && na_metric_value(other) == 0);
    na_metrics_reset();
}

/* Threads that register, update, remove and render at once (ASan and the
 * lock keep it honest). */
struct churn {
    int id;
};

static void *churn_thread(void *arg) {
    const struct churn *c = arg;
    char labels[128], pair[32];
    for (int i = 0; i < 2000; i++) {
        snprintf(pair, sizeof(pair), "feed=\"f%d\"", i % 50);
        snprintf(labels, sizeof(labels), "%s,worker=\"%d\"", pair, c->id);
        na_metric_t *m =
            na_metrics_get(NA_METRIC_COUNTER, "newsalert_t_churn_total", "C.", labels);
        na_metric_add(m, 1);
        if (i % 7 == 0) {
            na_metrics_remove_label(pair);
            na_metric_add(m, 1); /* a handle of a removed series */
        }
        if (i % 101 == 0) {
            free(na_metrics_render());
        }
    }
    return NULL;
}

static void test_concurrent_get_remove_render(void **state) {
    (void)state;
    pthread_t t[4];
    struct churn c[4];
    na_metrics_reset();
    for (int i = 0; i < 4; i++) {
        c[i].id = i;
        assert_int_equal(pthread_create(&t[i], NULL, churn_thread, &c[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
    }
    char *text = na_metrics_render();
    assert_non_null(text);
    free(text);
    na_metrics_reset();
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counters_gauges_and_labels),
        cmocka_unit_test(test_histogram_buckets_are_cumulative),
        cmocka_unit_test(test_label_escape),
        cmocka_unit_test(test_label_escape_cut_keeps_utf8),
        cmocka_unit_test(test_index_finds_every_series_and_groups_names),
        cmocka_unit_test(test_remove_series_and_label_pairs),
        cmocka_unit_test(test_concurrent_get_remove_render),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
