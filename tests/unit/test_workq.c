/* The worker pool: items come back in submission order whatever order the
 * workers finish in; the capacity bounds what is in the queue; 0 threads
 * runs the work inline; a wait for an item is not lengthened by the wall
 * clock being set back; the default thread count follows the CPUs the
 * process may run on. */
#define _GNU_SOURCE /* sched_setaffinity(), CPU_COUNT() */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

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

/* The wall clock as the code under test reads it: this many seconds ahead
 * of the kernel's, which is the wall clock being set back by as much while
 * a wait computed from it runs. */
static atomic_llong wall_ahead_s;

int clock_gettime(clockid_t clk, struct timespec *ts) {
    int rc = (int)syscall(SYS_clock_gettime, clk, ts);
    if (!rc && clk == CLOCK_REALTIME) {
        ts->tv_sec += (time_t)atomic_load(&wall_ahead_s);
    }
    return rc;
}

static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static bool gate_open;
static atomic_bool owner_back;

static void gate_set(bool open) {
    pthread_mutex_lock(&gate_lock);
    gate_open = open;
    pthread_cond_broadcast(&gate_cond);
    pthread_mutex_unlock(&gate_lock);
}

/* Work that waits until the test opens the gate. */
static void gated(void *vi, void *ctx) {
    struct item *it = vi;
    (void)ctx;
    pthread_mutex_lock(&gate_lock);
    while (!gate_open) {
        pthread_cond_wait(&gate_cond, &gate_lock);
    }
    pthread_mutex_unlock(&gate_lock);
    it->out = it->n * 2;
}

/* Opens the gate if the owner is not back from its wait within 10 s, so
 * that a wait lengthened by the clock ends (with the item: a failure). */
static void *watchdog(void *arg) {
    (void)arg;
    for (int i = 0; i < 1000 && !atomic_load(&owner_back); i++) {
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    gate_set(true);
    return NULL;
}

static void
test_take_waits_as_long_as_asked_when_the_wall_clock_is_set_back(void **state) {
    (void)state;
    struct item it = {7, -1, 0};
    pthread_t dog;
    gate_set(false);
    na_workq_t *q = na_workq_new(1, 2, gated, NULL);
    assert_non_null(q);
    assert_true(na_workq_submit(q, &it));
    atomic_store(&owner_back, false);
    assert_int_equal(pthread_create(&dog, NULL, watchdog, NULL), 0);
    atomic_store(&wall_ahead_s, 86400); /* set back by a day during the wait */
    void *got = na_workq_take(q, 20);
    atomic_store(&wall_ahead_s, 0);
    atomic_store(&owner_back, true);
    pthread_join(dog, NULL);
    /* Back after its 20 ms without the item, which was still being worked
     * on: not after the watchdog opened the gate (the day's wait cut short). */
    assert_null(got);
    assert_ptr_equal(na_workq_take(q, 5000), &it);
    assert_int_equal(it.out, 14);
    na_workq_destroy(q);
}

/* The default count (-1) follows the CPUs the thread may run on, not those
 * online: none on one CPU (taskset -c 0, a container's cpuset: a worker
 * would only add thread switches), one fewer on more, at most 8; a
 * configured count is taken as it is, up to NA_WORKQ_MAX_THREADS. */
static void test_default_threads_follow_the_cpus_it_may_run_on(void **state) {
    (void)state;
    cpu_set_t saved, some;
    int cpus[2] = {-1, -1};
    assert_int_equal(sched_getaffinity(0, sizeof(saved), &saved), 0);
    for (int i = 0, n = 0; i < CPU_SETSIZE && n < 2; i++) {
        if (CPU_ISSET(i, &saved)) {
            cpus[n++] = i;
        }
    }
    CPU_ZERO(&some);
    CPU_SET(cpus[0], &some);
    assert_int_equal(sched_setaffinity(0, sizeof(some), &some), 0);
    int on_one = na_workq_threads(-1);
    int asked = na_workq_threads(3), none = na_workq_threads(0);
    int most = na_workq_threads(NA_WORKQ_MAX_THREADS + 5);
    int on_two = -1;
    if (cpus[1] >= 0) {
        CPU_SET(cpus[1], &some);
        assert_int_equal(sched_setaffinity(0, sizeof(some), &some), 0);
        on_two = na_workq_threads(-1);
    }
    assert_int_equal(sched_setaffinity(0, sizeof(saved), &saved), 0);
    assert_int_equal(on_one, 0);
    assert_int_equal(asked, 3);
    assert_int_equal(none, 0);
    assert_int_equal(most, NA_WORKQ_MAX_THREADS);
    if (cpus[1] >= 0) {
        assert_int_equal(on_two, 1);
    }
    int all = CPU_COUNT(&saved);
    assert_int_equal(na_workq_threads(-1), all - 1 < 8 ? all - 1 : 8);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_items_come_back_in_order_with_4_threads),
        cmocka_unit_test(test_items_come_back_in_order_with_1_thread),
        cmocka_unit_test(test_no_threads_runs_inline),
        cmocka_unit_test(test_full_queue_refuses_and_take_waits),
        cmocka_unit_test(
            test_take_waits_as_long_as_asked_when_the_wall_clock_is_set_back),
        cmocka_unit_test(test_default_threads_follow_the_cpus_it_may_run_on),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
