#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "date.h"

/* 2026-01-06T08:00:00Z */
#define T0 1767686400LL
#define H 3600LL
#define M 60LL

struct date_case {
    const char *in;
    int ok;
    int64_t want;
};

static const struct date_case cases[] = {
    /* RFC 822 / 1123 */
    {"Tue, 06 Jan 2026 08:00:00 GMT", 1, T0},
    {"Tue, 06 Jan 2026 08:00:00 +0000", 1, T0},
    {"Tue, 06 Jan 2026 16:00:00 +0800", 1, T0},
    {"Tue, 06 Jan 2026 03:00:00 -0500", 1, T0},
    {"Tue, 06 Jan 2026 13:30:00 +0530", 1, T0},
    {"06 Jan 2026 08:00:00 GMT", 1, T0},
    {"Tue, 6 Jan 2026 08:00 GMT", 1, T0},
    {"Tue, 06 Jan 26 08:00:00 GMT", 1, T0},
    {"Fri, 31 Dec 99 23:59 GMT", 1, 946684740LL},
    {"Tue, 06 Jan 2026 08:00:00 UT", 1, T0},
    {"Tue, 06 Jan 2026 08:00:00 UTC", 1, T0},
    {"Tue, 06 Jan 2026 08:00:00 Z", 1, T0},
    {"Tue, 06 Jan 2026 03:00:00 EST", 1, T0},
    {"Tue, 06 Jan 2026 04:00:00 EDT", 1, T0},
    {"Tue, 06 Jan 2026 02:00:00 CST", 1, T0},
    {"Tue, 06 Jan 2026 03:00:00 CDT", 1, T0},
    {"Tue, 06 Jan 2026 01:00:00 MST", 1, T0},
    {"Tue, 06 Jan 2026 02:00:00 MDT", 1, T0},
    {"Tue, 06 Jan 2026 00:00:00 PST", 1, T0},
    {"Tue, 06 Jan 2026 01:00:00 PDT", 1, T0},
    {"Tue, 06 Jan 2026 17:00:00 JST", 1, T0},
    {"Tue, 06 Jan 2026 09:00:00 CET", 1, T0},
    /* military letters: Z is UTC, others carry no information (RFC 5322) */
    {"Tue, 06 Jan 2026 08:00:00 A", 1, T0},
    {"Tue, 06 Jan 2026 08:00:00 N", 1, T0},
    {"Tue, 06 Jan 2026 08:00:00 J", 1, T0}, /* not a zone: trailing junk */
    /* broken but common */
    {"  Tue,  06   Jan  2026  08:00:00   GMT  ", 1, T0},
    {"Tuesday, 06 January 2026 08:00:00 GMT", 1, T0},
    {"Tues, 6 Jan. 2026 08:00:00 GMT", 1, T0},
    {"Wed, 06 Jan 2026 08:00:00 GMT", 1, T0}, /* wrong day name ignored */
    {"Tuesday, 06-Jan-26 08:00:00 GMT", 1, T0},
    {"Tue, 06 Jan 2026 16:00:00 +08:00", 1, T0},
    {"Tue, 06 Jan 2026 16:00:00 GMT+0800", 1, T0},
    {"Tue, 06 Jan 2026 16:00:00 +08", 1, T0},
    {"Tue Jan  6 08:00:00 2026", 1, T0},
    {"Tue Jan 6 08:00:00 UTC 2026", 1, T0},
    {"Tue, 06 Jan 2026 08:00:00.250 GMT", 1, T0},
    {"Tue, 06 Jan 2026 8:00 AM GMT", 1, T0},
    {"Tue, 06 Jan 2026 8:00 PM GMT", 1, T0 + 12 * H},
    {"Tue, 06 Jan 2026 12:30 AM GMT", 1, T0 - 8 * H + 30 * M},
    {"6th January 2026 08:00 GMT", 1, T0},
    {"Tue, 06 Jan 2026 08:00:00 +0000 (Coordinated Universal Time)", 1, T0},
    {"Tue, 06 Jan 2026 08:00:00 GMT trailing words", 1, T0},
    {"Tue, 06 Jan 2026 08:00:00 XYZ", 1, T0}, /* unknown zone: UTC */
    {"Tue, 06 Jan 2026", 1, T0 - 8 * H},
    {"06 Sept 2026 08:00 GMT", 1, 1788681600LL},
    {"Thu, 29 Feb 2024 12:00:00 GMT", 1, 1709208000LL},
    /* RFC 3339 / ISO 8601 */
    {"2026-01-06T08:00:00Z", 1, T0},
    {"2026-01-06T16:00:00+08:00", 1, T0},
    {"2026-01-06T16:00:00.123456+08:00", 1, T0},
    {"2026-01-06T16:00:00+0800", 1, T0},
    {"2026-01-06t08:00:00z", 1, T0},
    {"2026-01-06 08:00:00", 1, T0},
    {"2026-01-06T08:00", 1, T0},
    {"2026-01-06", 1, T0 - 8 * H},
    {" 2026-01-06T08:00:00Z \n", 1, T0},
    {"2026-01-06T16:00:00 +08:00", 1, T0},
    {"2026-01-06T08:00:00Z (UTC)", 1, T0},
    {"2026-01-06 08:00:00 some junk", 1, T0},
    {"2026/01/06 08:00:00", 1, T0},
    {"2026/01/06 16:00:00 +08:00", 1, T0},
    {"2026/01/06", 1, T0 - 8 * H},
    {"2026-01-06T16:00:00+08:00Z", 1, T0},
    {"2026-01-06T08:00:00.000+0000", 1, T0},
    {"2026/13/06 08:00:00", 0, 0},
    /* a zone name after an ISO time: a known one counts, an unknown one
     * refuses the date (it was read as UTC) */
    {"2026-01-06T03:00:00 EST", 1, T0},
    {"2026-01-06 17:00:00 JST", 1, T0},
    {"2026-01-06 03:00:00 est", 1, T0},
    {"2026/01/06 03:00 EST", 1, T0},
    {"2026-01-06T08:00:00 UTC", 1, T0},
    {"2026-01-06T08:00:00 GMT", 1, T0},
    {"2026-01-06T08:00:00Z UTC", 1, T0},
    {"2026-01-06T16:00:00+08:00 HKT", 1, T0},
    {"2026-01-06T16:00:00 +08:00 HKT", 1, T0},
    {"2026-01-06T03:00:00 EST (Eastern)", 1, T0},
    {"2026-01-06 EST", 1, T0 - 3 * H},
    {"2026-01-06T08:00:00Z EST", 0, 0},      /* contradicts the Z */
    {"2026-01-06T16:00:00+08:00 JST", 0, 0}, /* contradicts the offset */
    {"2026-01-06T08:00:00 XYZ", 0, 0},
    {"2026-01-06T08:00:00 A", 0, 0}, /* military letters: not ISO */
    {"2026-01-06T16:00:00 GMT+0800", 0, 0},
    /* a time after an ISO date that the strict reader cannot take: never
     * midnight, never the morning for the evening */
    {"2026-01-06 8:00:00", 0, 0},
    {"2026-01-06 8:00 PM", 0, 0},
    {"2026-01-06 at 08:00", 0, 0},
    {"2026-01-06 08:00 pm", 1, T0 + 12 * H},
    {"2026-01-06 08:00 PM", 1, T0 + 12 * H},
    {"2026-01-06T03:00:00-05:00 p.m.", 1, T0 + 12 * H},
    {"2026-01-06 12:30 a.m.", 1, T0 - 8 * H + 30 * M},
    {"2026-01-06 08:00 p.m", 1, T0 + 12 * H},
    {"2026-01-06 08:00:00 am", 1, T0},
    {"2026-01-06 13:00 pm", 0, 0},
    {"2026-01-06 00:30 am", 0, 0},
    /* the day must exist, in every form */
    {"2026-02-30", 0, 0},
    {"2026-02-30T08:00:00Z", 0, 0},
    {"2026-02-30 08:00:00", 0, 0},
    {"2026/02/30 08:00", 0, 0},
    {"2026-02-30T08:00:00 EST", 0, 0},
    {"2026-02-30 08:00:00 junk", 0, 0},
    {"2026-04-31T00:00:00+02:00", 0, 0},
    {"2025-02-29", 0, 0},
    {"2100-02-29T00:00:00Z", 0, 0},
    {"2000-02-29", 1, 951782400LL},
    {"2024-02-29T12:00:00Z", 1, 1709208000LL},
    {"Mon, 30 Feb 2026 08:00:00 GMT", 0, 0},
    {"30 Feb 2026 08:00 GMT", 0, 0},
    {"Mon Feb 30 08:00:00 2026", 0, 0},
    {"Tue, 29 Feb 2100 08:00:00 GMT", 0, 0},
    {"Wed, 31 Jun 26 08:00:00 GMT", 0, 0},
    {"2026/01 08:00", 0, 0},
    /* rejected */
    {"", 0, 0},
    {"   ", 0, 0},
    {"yesterday", 0, 0},
    {"Tue, 06 Foo 2026 08:00:00 GMT", 0, 0},
    {"Tue, 32 Jan 2026 08:00:00 GMT", 0, 0},
    {"Tue, 31 Apr 2026 08:00:00 GMT", 0, 0},
    {"Thu, 29 Feb 2025 12:00:00 GMT", 0, 0},
    {"Tue, 06 Jan 2026 24:00:00 GMT", 0, 0},
    {"Tue, 06 Jan 2026 08:61:00 GMT", 0, 0},
    {"Tue, 06 Jan 2026 08:00:00 +2500", 0, 0},
    {"Tue, 06 Jan 2026 13:00 PM GMT", 0, 0},
    {"Jan 2026", 0, 0},
    {"06 Jan", 0, 0},
    {"2026-13-06T08:00:00Z", 0, 0},
    {"2026-01-06T08:00:00Q", 0, 0},
    {"20260106T080000Z", 0, 0},
    {"1767686400", 0, 0},
    {"junk Tue, 06 Jan 2026 08:00:00 GMT", 0, 0},
};

static void test_cases(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t t = 42;
        na_err_t err = na_date_parse(cases[i].in, &t);
        if (cases[i].ok) {
            if (err || t != cases[i].want) {
                print_error("case %zu [%s]: err=%d t=%lld want %lld\n", i, cases[i].in,
                            (int)err, (long long)t, (long long)cases[i].want);
            }
            assert_int_equal(err, NA_OK);
            assert_int_equal(t, cases[i].want);
        } else {
            if (err != NA_ERR_INVALID) {
                print_error("case %zu [%s]: accepted as %lld\n", i, cases[i].in,
                            (long long)t);
            }
            assert_int_equal(err, NA_ERR_INVALID);
            assert_int_equal(t, 42); /* untouched */
        }
    }
}

static void test_null_and_long(void **state) {
    (void)state;
    int64_t t = 0;
    char buf[600];
    assert_int_equal(na_date_parse(NULL, &t), NA_ERR_INVALID);
    memset(buf, ' ', sizeof(buf) - 1);
    buf[sizeof(buf) - 1] = '\0';
    memcpy(buf + 10, "Tue, 06 Jan 2026 08:00:00 GMT", 29);
    assert_int_equal(na_date_parse(buf, &t), NA_OK); /* spaces trimmed first */
    memset(buf, 'x', sizeof(buf) - 1);
    assert_int_equal(na_date_parse(buf, &t), NA_ERR_INVALID);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),
        cmocka_unit_test(test_null_and_long),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
