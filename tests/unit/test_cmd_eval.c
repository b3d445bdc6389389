/*
 * The scores of `stories --eval` (na_cluster_score()): B-cubed and pairwise
 * precision, recall and F1 of small hand-made clusterings, each figure
 * worked out by hand in the comment above its check.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cmd_eval.h"

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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_in_one_story),
        cmocka_unit_test(test_all_singletons),
        cmocka_unit_test(test_mixed_clustering),
        cmocka_unit_test(test_same_partition_other_labels),
        cmocka_unit_test(test_no_items_is_invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
