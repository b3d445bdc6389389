/*
 * The prefetch refill's decision (na_kafka_refill_due(), common/kafka.c):
 * when a consumer reading a backlog wakes librdkafka's fetcher, and that a
 * consumer that keeps up never does. tests/integration/test_prefetch.py
 * shows the refill at work against the real broker.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "newsalert/kafka.h"

#define KB 1024.0
#define BOUND (4096 * KB) /* queued.max.messages.kbytes 4096 */
#define MSG (5 * KB)      /* a 5 KB article */
#define FULL ((size_t)(BOUND / MSG))

/* A queue the fetcher filled drains: nothing is due until it holds half
 * the bound, then a refill is. */
static void test_a_full_queue_is_refilled_at_half_the_bound(void **state) {
    (void)state;
    for (size_t q = FULL; q > FULL / 2; q--) {
        assert_false(na_kafka_refill_due(FULL, q, MSG, BOUND));
    }
    assert_true(na_kafka_refill_due(FULL, FULL / 2, MSG, BOUND));
    assert_true(na_kafka_refill_due(FULL, 1, MSG, BOUND));
    assert_true(na_kafka_refill_due(FULL, 0, MSG, BOUND));
}

/* A consumer that keeps up holds a few messages at a time: never due, not
 * even when its queue is empty (no request per poll of an idle consumer). */
static void test_a_short_queue_never_sends_one(void **state) {
    (void)state;
    for (size_t peak = 0; peak < FULL / 2; peak += 7) {
        for (size_t q = 0; q <= peak; q++) {
            assert_false(na_kafka_refill_due(peak, q, MSG, BOUND));
        }
    }
}

/* After a refill the peak restarts at the length it was sent at (half the
 * bound or less): the next is due only once the fetcher filled the queue
 * again, one refill per filling. */
static void test_one_refill_per_filling(void **state) {
    (void)state;
    size_t at = FULL / 2; /* the first refill */
    size_t peak = at;     /* what the note keeps after it */
    /* the peak is under half the bound: only a refilled queue (peak up
     * again) makes the next due */
    assert_false(na_kafka_refill_due(peak, at / 2, MSG, BOUND));
    assert_false(na_kafka_refill_due(peak, 0, MSG, BOUND));
    peak = FULL; /* the fetcher filled it again */
    assert_false(na_kafka_refill_due(peak, at + 1, MSG, BOUND));
    assert_true(na_kafka_refill_due(peak, at, MSG, BOUND));
}

/* The estimate is the queue's length times the mean message size; when it
 * is low (librdkafka also counts what the estimate misses), a queue that
 * stopped at the bound still counts as filled. */
static void test_an_estimate_below_the_truth_still_refills(void **state) {
    (void)state;
    double est = MSG * 0.6; /* 60 % of the bytes librdkafka counts */
    assert_true(na_kafka_refill_due(FULL, FULL / 2, est, BOUND));
    assert_true(na_kafka_refill_due(FULL, 0, est, BOUND));
    /* but not when the queue held under half the bound by the estimate */
    assert_false(na_kafka_refill_due(FULL, 0, MSG * 0.4, BOUND));
}

/* Before the first message no size is known, and without a bound there is
 * nothing to refill. */
static void test_nothing_is_due_without_a_size_or_a_bound(void **state) {
    (void)state;
    assert_false(na_kafka_refill_due(FULL, 0, 0, BOUND));
    assert_false(na_kafka_refill_due(FULL, 0, MSG, 0));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_full_queue_is_refilled_at_half_the_bound),
        cmocka_unit_test(test_a_short_queue_never_sends_one),
        cmocka_unit_test(test_one_refill_per_filling),
        cmocka_unit_test(test_an_estimate_below_the_truth_still_refills),
        cmocka_unit_test(test_nothing_is_due_without_a_size_or_a_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
