/*
 * The replay's merge of partitions (consumer/replay/merge.c): items go on
 * oldest head first (stamp, then partition) and only once every open
 * partition has one, whatever order they were pushed in; closed partitions
 * drop out once empty; end marks go on as soon as they head their queue.
 * tests/integration/test_replay.py shows two replays that fetch
 * differently giving the same lines.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>

#include "merge.h"

static int items[64];

static void *item(int i) {
    items[i] = i;
    return &items[i];
}

static int pop(na_merge_t *m, size_t *part) {
    int *x = na_merge_pop(m, part);
    return x ? *x : -1;
}

/* Nothing goes on while an open partition has nothing queued: its next
 * record may be the oldest. */
static void test_waits_for_every_open_partition(void **state) {
    (void)state;
    size_t part = 99;
    na_merge_t *m = na_merge_new(3);
    assert_non_null(m);
    assert_int_equal(pop(m, &part), -1);
    assert_true(na_merge_push(m, 0, 100, 10, item(0)));
    assert_true(na_merge_push(m, 2, 50, 10, item(1)));
    assert_int_equal(pop(m, &part), -1); /* partition 1 has none yet */
    assert_true(na_merge_push(m, 1, 70, 10, item(2)));
    assert_int_equal(pop(m, &part), 1); /* stamp 50 */
    assert_int_equal(part, 2);
    assert_int_equal(pop(m, &part), -1); /* partition 2 is empty again */
    na_merge_close(m, 2);
    assert_int_equal(pop(m, &part), 2); /* 70 before 100 */
    assert_int_equal(part, 1);
    assert_int_equal(pop(m, &part), -1);
    na_merge_close(m, 1);
    assert_int_equal(pop(m, &part), 0);
    assert_int_equal(pop(m, &part), -1);
    assert_int_equal(na_merge_count(m), 0);
    na_merge_destroy(m);
}

/* The same items pushed in two interleavings come out in one order: by
 * stamp, ties by partition, each partition's own order kept. */
static void test_the_order_does_not_depend_on_the_interleaving(void **state) {
    (void)state;
    /* partition, stamp of 12 items; each partition's items in its order */
    static const int part_of[12] = {0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2};
    static const int64_t ts[12] = {5, 9, 9, 30, 1, 9, 40, 41, 9, 10, 11, 12};
    static const int orders[2][12] = {{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11},
                                      {8, 4, 9, 0, 10, 5, 1, 11, 6, 2, 7, 3}};
    int out[2][12];
    for (int run = 0; run < 2; run++) {
        na_merge_t *m = na_merge_new(3);
        size_t n = 0, part;
        int x;
        assert_non_null(m);
        for (int k = 0; k < 12; k++) {
            int i = orders[run][k];
            assert_true(na_merge_push(m, (size_t)part_of[i], ts[i], 1, item(i)));
            while ((x = pop(m, &part)) >= 0) {
                assert_int_equal((int)part, part_of[x]);
                out[run][n++] = x;
            }
        }
        for (size_t p = 0; p < 3; p++) {
            na_merge_close(m, p);
        }
        while ((x = pop(m, &part)) >= 0) {
            out[run][n++] = x;
        }
        assert_int_equal(n, 12);
        na_merge_destroy(m);
    }
    /* 1(p1) 5(p0) 9(p0) 9(p0) 9(p1) 9(p2) 10 11 12 30 40 41 */
    static const int want[12] = {4, 0, 1, 2, 5, 8, 9, 10, 11, 3, 6, 7};
    assert_memory_equal(out[0], want, sizeof(want));
    assert_memory_equal(out[1], want, sizeof(want));
}

/* An end mark goes on as soon as it heads its partition; bytes are counted
 * per partition; a queue grows past its first allocation in order. */
static void test_end_marks_bytes_and_growth(void **state) {
    (void)state;
    size_t part;
    na_merge_t *m = na_merge_new(2);
    assert_non_null(m);
    assert_true(na_merge_push(m, 0, 7, 100, item(0)));
    assert_true(na_merge_push(m, 0, INT64_MIN, 0, item(1)));
    na_merge_close(m, 0);
    assert_int_equal(na_merge_bytes(m, 0), 100);
    assert_true(na_merge_push(m, 1, 3, 5, item(2)));
    assert_int_equal(pop(m, &part), 2);
    assert_int_equal(pop(m, &part), -1); /* partition 1 is open and empty */
    assert_true(na_merge_push(m, 1, 8, 5, item(3)));
    assert_int_equal(pop(m, &part), 0);
    assert_int_equal(na_merge_bytes(m, 0), 0);
    assert_int_equal(pop(m, &part), 1); /* the end mark, before stamp 8 */
    assert_int_equal(part, 0);
    assert_int_equal(pop(m, &part), 3);
    /* 200 items through one queue (its ring grows while it wraps) */
    for (int i = 0; i < 200; i++) {
        assert_true(na_merge_push(m, 1, 100 + i, 1, &items[i % 64]));
        if (i % 3 == 2) {
            assert_non_null(na_merge_pop(m, &part));
        }
    }
    na_merge_close(m, 1);
    size_t left = 0;
    while (na_merge_pop(m, &part)) {
        left++;
    }
    assert_int_equal(left, 200 - 66);
    assert_int_equal(na_merge_bytes(m, 1), 0);
    na_merge_destroy(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_waits_for_every_open_partition),
        cmocka_unit_test(test_the_order_does_not_depend_on_the_interleaving),
        cmocka_unit_test(test_end_marks_bytes_and_growth),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
