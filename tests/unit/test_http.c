/* HTTP helpers shared by the producer and the consumer (newsalert/http.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "newsalert/http.h"

#define DAY_MS (24LL * 3600 * 1000)
/* Sun, 06 Nov 1994 08:49:37 GMT */
#define T1994 784111777LL

/* Retry-After in seconds: what it says, at most a day; a delay too long
 * to write in eight digits is the longest wait too (it read as none, so
 * a server asking for the longest wait was asked again after the plain
 * backoff). */
static void test_retry_after_seconds(void **state) {
    (void)state;
    assert_int_equal(na_http_retry_after_ms("120", 0), 120000);
    assert_int_equal(na_http_retry_after_ms("  0", 0), 0);
    assert_int_equal(na_http_retry_after_ms("120 ", 0), 120000);
    assert_int_equal(na_http_retry_after_ms("86400", 0), DAY_MS);
    assert_int_equal(na_http_retry_after_ms("86401", 0), DAY_MS);
    assert_int_equal(na_http_retry_after_ms("100000000", 0), DAY_MS);
    assert_int_equal(na_http_retry_after_ms("100000001", 0), DAY_MS);
    assert_int_equal(na_http_retry_after_ms("4294967295", 0), DAY_MS);
    assert_int_equal(na_http_retry_after_ms("99999999999999999999999999999999999999", 0),
                     DAY_MS);
    assert_int_equal(na_http_retry_after_ms("000000000000000000000000000000000000030", 0),
                     30000);
    assert_int_equal(na_http_retry_after_ms(NULL, 0), -1);
    assert_int_equal(na_http_retry_after_ms("", 0), -1);
    assert_int_equal(na_http_retry_after_ms("12x", 0), -1);
    assert_int_equal(na_http_retry_after_ms("-5", 0), -1);
}

/* Retry-After as an HTTP date: the time until then, 0 when past, at most
 * a day. */
static void test_retry_after_date(void **state) {
    (void)state;
    const char *date = "Sun, 06 Nov 1994 08:49:37 GMT";
    assert_int_equal(na_http_retry_after_ms(date, T1994 - 90), 90000);
    assert_int_equal(na_http_retry_after_ms(date, T1994 + 90), 0);
    assert_int_equal(na_http_retry_after_ms(date, T1994 - 3 * 86400), DAY_MS);
    assert_int_equal(na_http_retry_after_ms("not a date", T1994), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retry_after_seconds),
        cmocka_unit_test(test_retry_after_date),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
