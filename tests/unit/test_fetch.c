/*
 * The fetcher's address policy for redirects (fetch.h): which addresses a
 * redirect may not reach, IPv4 and IPv6, also IPv4 dressed as IPv6. The
 * behaviour over HTTP (headers per origin, refusals, DNS names) is covered
 * by tests/integration/test_fetch_policy.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "fetch.h"

struct addr_case {
    const char *ip;
    const char *want; /* class, or NULL for a public address */
};

static const struct addr_case cases[] = {
    {"93.184.215.14", NULL},
    {"8.8.8.8", NULL},
    {"1.1.1.1", NULL},
    {"172.32.0.1", NULL},  /* just past 172.16/12 */
    {"100.128.0.1", NULL}, /* just past 100.64/10 */
    {"192.169.0.1", NULL},
    {"127.0.0.1", "loopback"},
    {"127.255.255.254", "loopback"},
    {"0.0.0.0", "unspecified"},
    {"10.0.0.1", "private"},
    {"172.16.0.1", "private"},
    {"172.31.255.255", "private"},
    {"192.168.1.1", "private"},
    {"169.254.169.254", "link-local"},
    {"100.64.0.1", "shared (carrier-grade NAT)"},
    {"192.0.0.8", "reserved"},
    {"198.18.0.1", "reserved"},
    {"224.0.0.1", "multicast"},
    {"255.255.255.255", "reserved"},
    {"2606:2800:220:1:248:1893:25c8:1946", NULL},
    {"2001:4860:4860::8888", NULL},
    {"::1", "loopback"},
    {"::", "unspecified"},
    {"fc00::1", "private"},
    {"fd12:3456::1", "private"},
    {"fe80::1", "link-local"},
    {"febf::1", "link-local"},
    {"fec0::1", "private"},
    {"ff02::1", "multicast"},
    {"::ffff:127.0.0.1", "loopback"},
    {"::ffff:169.254.169.254", "link-local"},
    {"::ffff:10.1.2.3", "private"},
    {"::ffff:93.184.215.14", NULL},
    {"::127.0.0.1", "loopback"},
    {"64:ff9b::a00:1", "private"}, /* NAT64 of 10.0.0.1 */
    {"64:ff9b::5db8:d70e", NULL},
    {"2002:7f00:1::", "loopback"}, /* 6to4 of 127.0.0.1 */
    {"2002:5db8:d70e::", NULL},
};

static void test_redirect_address_classes(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sockaddr_in sin;
        struct sockaddr_in6 sin6;
        const struct sockaddr *sa;
        memset(&sin, 0, sizeof(sin));
        memset(&sin6, 0, sizeof(sin6));
        if (inet_pton(AF_INET, cases[i].ip, &sin.sin_addr) == 1) {
            sin.sin_family = AF_INET;
            sa = (const struct sockaddr *)&sin;
        } else {
            assert_int_equal(inet_pton(AF_INET6, cases[i].ip, &sin6.sin6_addr), 1);
            sin6.sin6_family = AF_INET6;
            sa = (const struct sockaddr *)&sin6;
        }
        const char *got = na_fetch_addr_class(sa);
        if (!cases[i].want != !got || (got && strcmp(got, cases[i].want))) {
            print_error("case %zu [%s]: want %s, got %s\n", i, cases[i].ip,
                        cases[i].want ? cases[i].want : "public", got ? got : "public");
        }
        if (cases[i].want) {
            assert_non_null(got);
            assert_string_equal(got, cases[i].want);
        } else {
            assert_null(got);
        }
    }
    struct sockaddr other;
    memset(&other, 0, sizeof(other));
    other.sa_family = AF_UNIX;
    assert_string_equal(na_fetch_addr_class(&other), "not an IP");
}

static void test_reason_names_a_refused_redirect(void **state) {
    (void)state;
    struct na_fetch_res res;
    memset(&res, 0, sizeof(res));
    res.code = CURLE_COULDNT_CONNECT;
    assert_string_equal(na_fetch_reason(&res), "connect");
    res.redirect_refused = true;
    assert_string_equal(na_fetch_reason(&res), "redirect_refused");
    res.code = CURLE_ABORTED_BY_CALLBACK;
    assert_string_equal(na_fetch_reason(&res), "redirect_refused");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redirect_address_classes),
        cmocka_unit_test(test_reason_names_a_refused_redirect),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
