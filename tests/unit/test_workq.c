/* The worker pool: items come back in submission order whatever order the
 * workers finish in; the capacity bounds what is in the queue; 0 threads
 * runs the work inline. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "newsalert/workq.h"

struct item {
    int n;
    int out;
    unsigned delay_us;
};

static atomic_int running, peak;

static void work(void *vi, void *ctx) {
    struct item *it = vi;
    (void)ctx;
    int now = atomic_fetch_add(&running, 1) + 1;
    int p = atomic_load(&peak);
    while (now > p && !atomic_compare_exchange_weak(&peak, &p, now)) {
    }
    struct timespec ts = {0, (long)it->delay_us * 1000L};
    nanosleep(&ts, NULL);
    it->out = it->n * 2;
    atomic_fetch_sub(&running, 1);
}

static void run_order(int threads) {
    enum { N = 2000, CAP = 16 };
    static struct item items[N];
    na_workq_t *q = na_workq_new(threads, CAP, work, NULL);
    assert_non_null(q);
    int submitted = 0, taken = 0;
    srand(7);
    atomic_store(&peak, 0);
    while (taken < N) {
        while (submitted < N && na_workq_has_room(q)) {
            items[submitted].n = submitted;
            items[submitted].out = -1;
            /* Later items often finish first. */
            items[submitted].delay_us = (unsigned)(rand() % 200);
            assert_true(na_workq_submit(q, &items[submitted]));
            submitted++;
        }
        assert_true(na_workq_pending(q) <= CAP);
        struct item *it = na_workq_take(q, 100);
        if (it) {
            assert_int_equal(it->n, taken);       /* in submission order */
            assert_int_equal(it->out, it->n * 2); /* its work is done */
            taken++;
        }
    }
    assert_null(na_workq_take(q, 0));
    assert_int_equal(na_workq_pending(q), 0);
    if (threads > 1) {
        assert_true(atomic_load(&peak) > 1); /* the work did run side by side */
    }
    na_workq_destroy(q);
}

static void test_items_come_back_in_order_with_4_threads(void **state) {
    (void)state;
    run_order(4);
}

static void test_items_come_back_in_order_with_1_thread(void **state) {
    (void)state;
    run_order(1);
}

static void test_no_threads_runs_inline(void **state) {
    (void)state;
    struct item a = {3, -1, 0};
    na_workq_t *q = na_workq_new(0, 2, work, NULL);
    assert_true(na_workq_submit(q, &a));
    assert_int_equal(a.out, 6); /* done at once */
    struct item b = {4, -1, 0}, c = {5, -1, 0};
    assert_true(na_workq_submit(q, &b));
    assert_false(na_workq_submit(q, &c)); /* full */
    assert_ptr_equal(na_workq_take(q, 0), &a);
    assert_ptr_equal(na_workq_take(q, 0), &b);
    assert_null(na_workq_take(q, 0));
    na_workq_destroy(q);
}

static void test_full_queue_refuses_and_take_waits(void **state) {
    (void)state;
    struct item it[3] = {{0, -1, 20000}, {1, -1, 0}, {2, -1, 0}};
    na_workq_t *q = na_workq_new(2, 2, work, NULL);
    assert_true(na_workq_submit(q, &it[0]));
    assert_true(na_workq_submit(q, &it[1]));
    assert_false(na_workq_submit(q, &it[2]));
    assert_false(na_workq_has_room(q));
    assert_null(na_workq_take(q, 0)); /* the first is still sleeping */
    assert_ptr_equal(na_workq_take(q, 5000), &it[0]);
    assert_true(na_workq_submit(q, &it[2]));
    assert_ptr_equal(na_workq_take(q, 5000), &it[1]);
    assert_ptr_equal(na_workq_take(q, 5000), &it[2]);
    na_workq_destroy(q);
    na_workq_destroy(NULL);
    assert_null(na_workq_new(-1, 4, work, NULL));
    assert_null(na_workq_new(1, 0, work, NULL));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_items_come_back_in_order_with_4_threads),
        cmocka_unit_test(test_items_come_back_in_order_with_1_thread),
        cmocka_unit_test(test_no_threads_runs_inline),
        cmocka_unit_test(test_full_queue_refuses_and_take_waits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
