/*
 * The scores of `stories --eval` (na_cluster_score()): B-cubed and pairwise
 * precision, recall and F1 of small hand-made clusterings, each figure
 * worked out by hand in the comment above its check. Then the lines these
 * commands read (na_eval_article(), cli/input.c).
 */
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

#include "cmd_eval.h"
#include "input.h"
#include "newsalert/timeutil.h"

#define EPS 1e-9

/* Events of the four items below: items 0 and 1 report event A, item 2
 * event B, item 3 event C. */
static const size_t gold4[] = {10, 10, 20, 30};

static void test_all_in_one_story(void **state) {
    (void)state;
    static const size_t pred[] = {7, 7, 7, 7};
    struct na_cluster_scores sc;

    assert_int_equal(na_cluster_score(gold4, pred, 4, &sc), NA_OK);
    assert_int_equal(sc.items, 4);
    assert_int_equal(sc.gold_clusters, 3);
    assert_int_equal(sc.pred_clusters, 1);
    /* B-cubed precision: an A item shares its story of 4 with 2 of its
     * event (2/4), B and C with 1 (1/4): (1/2 + 1/2 + 1/4 + 1/4) / 4. */
    assert_float_equal(sc.bcubed_precision, 0.375, EPS);
    /* Every event lies whole inside the one story. */
    assert_float_equal(sc.bcubed_recall, 1.0, EPS);
    /* 2 * 0.375 * 1 / 1.375 = 6/11. */
    assert_float_equal(sc.bcubed_f1, 6.0 / 11.0, EPS);
    /* Pairs: 6 in the story, 1 in the events (the two A items), so
     * tp 1, fp 5, fn 0; precision 1/6, recall 1, F1 2/7. */
    assert_int_equal(sc.pair_tp, 1);
    assert_int_equal(sc.pair_fp, 5);
    assert_int_equal(sc.pair_fn, 0);
    assert_float_equal(sc.pair_precision, 1.0 / 6.0, EPS);
    assert_float_equal(sc.pair_recall, 1.0, EPS);
    assert_float_equal(sc.pair_f1, 2.0 / 7.0, EPS);
}

static void test_all_singletons(void **state) {
    (void)state;
    static const size_t pred[] = {3, 2, 1, 0};
    struct na_cluster_scores sc;

    assert_int_equal(na_cluster_score(gold4, pred, 4, &sc), NA_OK);
    assert_int_equal(sc.pred_clusters, 4);
    /* Each story holds only its own item: precision 1. */
    assert_float_equal(sc.bcubed_precision, 1.0, EPS);
    /* Recall: A items see half their event, B and C all of theirs:
     * (1/2 + 1/2 + 1 + 1) / 4 = 0.75; F1 2 * 0.75 / 1.75 = 6/7. */
    assert_float_equal(sc.bcubed_recall, 0.75, EPS);
    assert_float_equal(sc.bcubed_f1, 6.0 / 7.0, EPS);
    /* No pair put together: precision 0/0, which counts as 1 (no wrong
     * merge); the A pair is missed: recall 0, F1 0. */
    assert_int_equal(sc.pair_tp, 0);
    assert_int_equal(sc.pair_fp, 0);
    assert_int_equal(sc.pair_fn, 1);
    assert_float_equal(sc.pair_precision, 1.0, EPS);
    assert_float_equal(sc.pair_recall, 0.0, EPS);
    assert_float_equal(sc.pair_f1, 0.0, EPS);
}

static void test_mixed_clustering(void **state) {
    (void)state;
    /* Events: A = {0,1,2}, B = {3,4}, C = {5}.
     * Stories: x = {0,1}, y = {2,3,4}, z = {5}: A is split over x and y,
     * and y merges one A report with both B reports. */
    static const size_t gold[] = {1, 1, 1, 2, 2, 3};
    static const size_t pred[] = {900, 900, 5, 5, 5, 42};
    struct na_cluster_scores sc;

    assert_int_equal(na_cluster_score(gold, pred, 6, &sc), NA_OK);
    assert_int_equal(sc.gold_clusters, 3);
    assert_int_equal(sc.pred_clusters, 3);
    /* Per item (precision, recall): 0 and 1: (2/2, 2/3); 2: (1/3, 1/3);
     * 3 and 4: (2/3, 2/2); 5: (1, 1).
     * Precision (1 + 1 + 1/3 + 2/3 + 2/3 + 1) / 6 = 7/9; recall
     * (2/3 + 2/3 + 1/3 + 1 + 1 + 1) / 6 = 7/9; F1 7/9. */
    assert_float_equal(sc.bcubed_precision, 7.0 / 9.0, EPS);
    assert_float_equal(sc.bcubed_recall, 7.0 / 9.0, EPS);
    assert_float_equal(sc.bcubed_f1, 7.0 / 9.0, EPS);
    /* Event pairs: 3 (A) + 1 (B) = 4; story pairs: 1 (x) + 3 (y) = 4;
     * together in both: {0,1} and {3,4}: tp 2, fp 2, fn 2, all 0.5. */
    assert_int_equal(sc.pair_tp, 2);
    assert_int_equal(sc.pair_fp, 2);
    assert_int_equal(sc.pair_fn, 2);
    assert_float_equal(sc.pair_precision, 0.5, EPS);
    assert_float_equal(sc.pair_recall, 0.5, EPS);
    assert_float_equal(sc.pair_f1, 0.5, EPS);
}

static void test_same_partition_other_labels(void **state) {
    (void)state;
    /* The same partition under other label values scores 1 everywhere:
     * only which items share a label counts. */
    static const size_t gold[] = {4, 9, 4, 9, 0};
    static const size_t pred[] = {77, 3, 77, 3, 78};
    struct na_cluster_scores sc;

    assert_int_equal(na_cluster_score(gold, pred, 5, &sc), NA_OK);
    assert_float_equal(sc.bcubed_precision, 1.0, EPS);
    assert_float_equal(sc.bcubed_recall, 1.0, EPS);
    assert_float_equal(sc.bcubed_f1, 1.0, EPS);
    assert_int_equal(sc.pair_tp, 2);
    assert_int_equal(sc.pair_fp, 0);
    assert_int_equal(sc.pair_fn, 0);
    assert_float_equal(sc.pair_f1, 1.0, EPS);
}

static void test_no_items_is_invalid(void **state) {
    (void)state;
    struct na_cluster_scores sc;
    assert_int_equal(na_cluster_score(gold4, gold4, 0, &sc), NA_ERR_INVALID);
}

/* A line's article from its JSON text; @returns the reader's answer. */
static na_err_t read_line(const char *text, struct na_article *a, char *errstr,
                          size_t size) {
    json_t *obj = json_loads(text, 0, NULL);
    na_err_t err;
    assert_non_null(obj);
    na_article_init(a);
    errstr[0] = '\0';
    err = na_eval_article(obj, a, errstr, size);
    json_decref(obj);
    return err;
}

/* Unix seconds are read as given from year 0 to 9999 (what RFC 3339 text
 * can say); a number past them is a bad line with its reason, not a time
 * that the story engine's sums of times overflow on. */
static void test_unix_seconds_out_of_range(void **state) {
    (void)state;
    static const char *const bad[] = {
        "{\"title\": \"x\", \"published_at\": -9223372036854775807}",
        "{\"title\": \"x\", \"published_at\": 9223372036854775807}",
        "{\"title\": \"x\", \"published_at\": 253402300800}",
        "{\"title\": \"x\", \"fetched_at\": -62167219201}",
    };
    struct na_article a;
    char errstr[256];

    assert_int_equal(read_line("{\"title\": \"x\", \"published_at\": 253402300799, "
                               "\"fetched_at\": -62167219200}",
                               &a, errstr, sizeof(errstr)),
                     NA_OK);
    assert_true(a.published_at == 253402300799LL);
    assert_true(a.fetched_at == -62167219200LL);
    na_article_cleanup(&a);
    assert_int_equal(read_line("{\"title\": \"x\", \"published_at\": "
                               "\"9999-12-31T23:59:59Z\"}",
                               &a, errstr, sizeof(errstr)),
                     NA_OK);
    assert_true(a.published_at == 253402300799LL);
    na_article_cleanup(&a);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(read_line(bad[i], &a, errstr, sizeof(errstr)), NA_ERR_INVALID);
        assert_non_null(strstr(errstr, "out of range"));
        na_article_cleanup(&a);
    }
}

/* What the reader handed over: each line's id and whether it was JSON. */
struct seen_lines {
    char ids[4][NA_SHA256_HEX_LEN + 1];
    bool json[4];
    size_t n;
};

static int note_line(void *ctx, const char *where, const json_t *obj,
                     struct na_article *a) {
    struct seen_lines *seen = ctx;
    (void)where;
    if (seen->n < 4) {
        snprintf(seen->ids[seen->n], sizeof(seen->ids[0]), "%s", a->id);
        seen->json[seen->n] = obj != NULL;
    }
    seen->n++;
    return 0;
}

/* A file saved with a byte order mark: its first line is still the JSON
 * article it holds (classify read it as plain text: another id, no title),
 * and a mark further on is left alone. */
static void test_byte_order_mark_before_first_line(void **state) {
    (void)state;
    static const char text[] = "\xef\xbb\xbf{\"id\": \"a1\", \"title\": \"China bans "
                               "gallium exports\"}\n"
                               "{\"id\": \"a2\", \"title\": \"x\"}\n";
    char path[] = "/tmp/na-test-input-XXXXXX";
    int fd = mkstemp(path);
    struct seen_lines seen = {0};

    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t)(sizeof(text) - 1));
    close(fd);
    assert_int_equal(na_input_each("test", path, NA_INPUT_PLAIN, note_line, &seen), 0);
    unlink(path);
    assert_int_equal(seen.n, 2);
    assert_true(seen.json[0]);
    assert_string_equal(seen.ids[0], "a1");
    assert_true(seen.json[1]);
    assert_string_equal(seen.ids[1], "a2");
    assert_int_equal(na_input_bom("\xef\xbb\xbf{", 4), 3);
    assert_int_equal(na_input_bom("\xef\xbb", 2), 0);
    assert_int_equal(na_input_bom("{}", 2), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_in_one_story),
        cmocka_unit_test(test_all_singletons),
        cmocka_unit_test(test_mixed_clustering),
        cmocka_unit_test(test_same_partition_other_labels),
        cmocka_unit_test(test_no_items_is_invalid),
        cmocka_unit_test(test_unix_seconds_out_of_range),
        cmocka_unit_test(test_byte_order_mark_before_first_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
