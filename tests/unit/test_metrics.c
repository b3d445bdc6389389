#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "newsalert/metrics.h"

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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counters_gauges_and_labels),
        cmocka_unit_test(test_histogram_buckets_are_cumulative),
        cmocka_unit_test(test_label_escape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
