#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tracker.h"

static void test_in_order_commit_over_out_of_order_completion(void **state) {
    (void)state;
    na_tracker_t *t = na_tracker_new();
    int64_t off = -1;
    struct na_tracker_entry *e[4];
    for (int i = 0; i < 4; i++) {
        e[i] = na_tracker_add(t, 0, 10 + i);
        e[i]->pending++;       /* one alert each */
        na_tracker_done(e[i]); /* record processed; alert outstanding */
    }
    assert_int_equal(na_tracker_unfinished(t), 4);
    assert_false(na_tracker_committable(t, 0, &off));
    /* Later records finish first: nothing may be stored yet. */
    na_tracker_done(e[2]);
    na_tracker_done(e[3]);
    assert_false(na_tracker_committable(t, 0, &off));
    na_tracker_done(e[0]);
    assert_true(na_tracker_committable(t, 0, &off));
    assert_int_equal(off, 11);                        /* lowest unfinished */
    assert_false(na_tracker_committable(t, 0, &off)); /* no change, nothing new */
    na_tracker_done(e[1]);
    assert_true(na_tracker_committable(t, 0, &off));
    assert_int_equal(off, 14); /* one past the last */
    assert_int_equal(na_tracker_unfinished(t), 0);
    na_tracker_destroy(t);
}

static void test_partitions_are_independent(void **state) {
    (void)state;
    na_tracker_t *t = na_tracker_new();
    int64_t off;
    struct na_tracker_entry *a = na_tracker_add(t, 0, 5);
    struct na_tracker_entry *b = na_tracker_add(t, 1, 7);
    a->pending++;
    na_tracker_done(a);
    na_tracker_done(b);
    assert_false(na_tracker_committable(t, 0, &off));
    assert_true(na_tracker_committable(t, 1, &off));
    assert_int_equal(off, 8);
    assert_int_equal(na_tracker_partitions(t), 2);
    na_tracker_done(a);
    assert_true(na_tracker_committable(t, 0, &off));
    assert_int_equal(off, 6);
    na_tracker_destroy(t);
}

static void test_revoke_orphans_unfinished(void **state) {
    (void)state;
    na_tracker_t *t = na_tracker_new();
    int64_t off;
    struct na_tracker_entry *a = na_tracker_add(t, 3, 100);
    a->pending++;
    na_tracker_done(a);
    na_tracker_revoke(t, 3);
    assert_true(a->orphaned);
    assert_int_equal(na_tracker_partitions(t), 0);
    assert_false(na_tracker_committable(t, 3, &off));
    na_tracker_done(a); /* frees the orphan; ASan checks */
    assert_int_equal(na_tracker_unfinished(t), 0);
    na_tracker_destroy(t);
}

/* Regression: unfinished entries of a revoked partition whose work never
 * ends (a drain that timed out, work abandoned at exit) were never freed;
 * the sanitized consumer then exited 1 after SIGTERM. Destroy frees them
 * (ASan's leak check fails this test otherwise). */
static void test_destroy_frees_orphans_whose_work_never_ended(void **state) {
    (void)state;
    na_tracker_t *t = na_tracker_new();
    struct na_tracker_entry *e[40];
    for (int i = 0; i < 40; i++) {
        e[i] = na_tracker_add(t, i % 2, i); /* pending 1: never done */
    }
    na_tracker_done(e[38]); /* finished before the revocation */
    na_tracker_revoke(t, 0);
    na_tracker_revoke(t, 1);
    assert_true(e[0]->orphaned && e[39]->orphaned);
    e[5]->pending++;
    na_tracker_done(e[5]);
    na_tracker_done(e[5]); /* an orphan that does finish is freed at once */
    assert_int_equal(na_tracker_unfinished(t), 38);
    na_tracker_destroy(t);
}

static void test_many_entries_grow_the_queue(void **state) {
    (void)state;
    na_tracker_t *t = na_tracker_new();
    int64_t off;
    struct na_tracker_entry *first = na_tracker_add(t, 0, 0);
    first->pending++;
    na_tracker_done(first);
    for (int i = 1; i < 1000; i++) {
        na_tracker_done(na_tracker_add(t, 0, i));
    }
    assert_false(na_tracker_committable(t, 0, &off));
    na_tracker_done(first);
    assert_true(na_tracker_committable(t, 0, &off));
    assert_int_equal(off, 1000);
    na_tracker_destroy(t);
}

/* Regression: the consumer keeps two trackers (the articles topic, the
 * retry topic) and finished the retry topic's entries in the articles'
 * tracker: its unfinished count wrapped below zero (--exit-eof never
 * exited) and a revoked retry entry was freed twice. An entry now
 * finishes in the tracker that made it. */
static void test_an_entry_finishes_in_its_own_tracker(void **state) {
    (void)state;
    na_tracker_t *articles = na_tracker_new();
    na_tracker_t *retry = na_tracker_new();
    struct na_tracker_entry *a = na_tracker_add(articles, 0, 10);
    struct na_tracker_entry *r = na_tracker_add(retry, 0, 20);
    assert_ptr_equal(r->tracker, retry);
    r->pending++;
    na_tracker_done(r);
    na_tracker_revoke(retry, 0); /* r is an orphan of retry now */
    assert_true(r->orphaned);
    na_tracker_done(r);
    assert_int_equal(na_tracker_unfinished(retry), 0);
    assert_int_equal(na_tracker_unfinished(articles), 1);
    na_tracker_done(a);
    assert_int_equal(na_tracker_unfinished(articles), 0);
    na_tracker_destroy(articles);
    na_tracker_destroy(retry); /* ASan: r freed exactly once */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_in_order_commit_over_out_of_order_completion),
        cmocka_unit_test(test_partitions_are_independent),
        cmocka_unit_test(test_revoke_orphans_unfinished),
        cmocka_unit_test(test_destroy_frees_orphans_whose_work_never_ended),
        cmocka_unit_test(test_many_entries_grow_the_queue),
        cmocka_unit_test(test_an_entry_finishes_in_its_own_tracker),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
