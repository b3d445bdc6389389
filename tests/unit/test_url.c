#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "url.h"

struct resolve_case {
    const char *base;
    const char *ref;
    const char *want; /* NULL: no result */
};

static const struct resolve_case resolve_cases[] = {
    {"https://news.example.org/a/b/feed.xml", "story.html",
     "https://news.example.org/a/b/story.html"},
    {"https://news.example.org/a/b/feed.xml", "../up.html",
     "https://news.example.org/a/up.html"},
    {"https://news.example.org/a/b/feed.xml", "/root?x=1",
     "https://news.example.org/root?x=1"},
    {"https://news.example.org/a/", "//cdn.example.net/p", "https://cdn.example.net/p"},
    {"https://news.example.org/a/", "?q=1", "https://news.example.org/a/?q=1"},
    {"https://news.example.org/a/", "#frag", "https://news.example.org/a/#frag"},
    {"https://news.example.org/a/", "http://other.example/x", "http://other.example/x"},
    {NULL, "https://news.example.org/x", "https://news.example.org/x"},
    {NULL, "HTTPS://News.Example.ORG", "https://News.Example.ORG/"},
    {"not a url", "https://ok.example/", "https://ok.example/"},
    {NULL, "relative/only", NULL},
    {"not a url", "relative/only", NULL},
    {"https://news.example.org/", "", NULL},
    {"https://news.example.org/", "   \n\t ", NULL},
    {"https://news.example.org/", "javascript:alert(1)", NULL},
    {"https://news.example.org/", "JavaScript:alert(1)", NULL},
    {"https://news.example.org/", "data:text/html,hi", NULL},
    {"https://news.example.org/", "mailto:desk@example.org", NULL},
    {"https://news.example.org/", "file:///etc/passwd", NULL},
    {"https://news.example.org/", "ftp://files.example.org/a", NULL},
    {"file:///tmp/feed.xml", "story.html", NULL},
    {NULL, "  https://news.example.org/spaced  \n", "https://news.example.org/spaced"},
    {NULL, "https://news.example.org/bro\nken\tlink",
     "https://news.example.org/brokenlink"},
    {NULL, "https://news.example.org/a b?q=c d#e f",
     "https://news.example.org/a%20b?q=c%20d#e%20f"},
    {NULL, "https://news.example.org/caf\xc3\xa9", "https://news.example.org/caf%C3%A9"},
    {NULL, "https://news.example.org/a/./b/../c", "https://news.example.org/a/c"},
    {NULL, "http://", NULL},
    /* found by fuzz_text: a host must be valid UTF-8 */
    {NULL, "http://news.\xb8.example/a", NULL},
    {"http://news.\xb8.example/a", "b", NULL},
    {NULL,
     "https://us\xff"
     "er@news.example.org/a",
     NULL},
};

static void test_resolve(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof(resolve_cases) / sizeof(resolve_cases[0]); i++) {
        const struct resolve_case *c = &resolve_cases[i];
        char *got = na_url_resolve(c->base, c->ref);
        if (!c->want) {
            if (got) {
                print_error("case %zu: want NULL, got %s\n", i, got);
            }
            assert_null(got);
            continue;
        }
        if (!got || strcmp(got, c->want)) {
            print_error("case %zu: want %s, got %s\n", i, c->want, got ? got : "NULL");
        }
        assert_non_null(got);
        assert_string_equal(got, c->want);
        free(got);
    }
    assert_null(na_url_resolve("https://news.example.org/", NULL));
}

struct canon_case {
    const char *in;
    const char *want;
};

static const struct canon_case canon_cases[] = {
    {"HTTPS://News.EXAMPLE.org:443/Path/Keeps/Case",
     "https://news.example.org/Path/Keeps/Case"},
    {"http://news.example.org:80/a", "http://news.example.org/a"},
    {"http://news.example.org:8080/a", "http://news.example.org:8080/a"},
    {"https://news.example.org:80/a", "https://news.example.org:80/a"},
    {"https://news.example.org/a#section-2", "https://news.example.org/a"},
    {"https://news.example.org/a?utm_source=rss&utm_medium=feed&id=42&UTM_Campaign=x",
     "https://news.example.org/a?id=42"},
    {"https://news.example.org/a?b=2&fbclid=XYZ&a=1&gclid=1&mc_cid=2&mc_eid=3&ref_src=t",
     "https://news.example.org/a?b=2&a=1"},
    {"https://news.example.org/a?utm_source=rss", "https://news.example.org/a"},
    {"https://news.example.org/a?&&x=1&&", "https://news.example.org/a?x=1"},
    {"https://news.example.org/a?utm=keep&utmost=keep&refsrc=keep",
     "https://news.example.org/a?utm=keep&utmost=keep&refsrc=keep"},
    {"https://news.example.org/a?z=1&y=2&x=3", "https://news.example.org/a?z=1&y=2&x=3"},
    {"https://user:secret@news.example.org/a", "https://news.example.org/a"},
    {"https://news.example.org/%7euser/%e2%82%ac",
     "https://news.example.org/%7Euser/%E2%82%AC"},
    {"https://news.example.org", "https://news.example.org/"},
    {"https://news.example.org/a/../b", "https://news.example.org/b"},
    {"http://[::1]:80/x", "http://[::1]/x"},
    {"ftp://news.example.org/a", NULL},
    {"javascript:void(0)", NULL},
    {"/relative", NULL},
    {"", NULL},
    /* found by fuzz_text: raw bytes in the host came out as invalid UTF-8 */
    {"HtTP://Example..s\xb8"
     "c/a",
     NULL},
    {"https://us\xff"
     "er@news.example.org/a",
     "https://news.example.org/a"},
    {"https://b\xc3\xbc"
     "cher.example/a",
     "https://b\xc3\xbc"
     "cher.example/a"},
};

static void test_canonical(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof(canon_cases) / sizeof(canon_cases[0]); i++) {
        const struct canon_case *c = &canon_cases[i];
        char *got = na_url_canonical(c->in);
        if (!c->want) {
            if (got) {
                print_error("case %zu: want NULL, got %s\n", i, got);
            }
            assert_null(got);
            continue;
        }
        if (!got || strcmp(got, c->want)) {
            print_error("case %zu: want %s, got %s\n", i, c->want, got ? got : "NULL");
        }
        assert_non_null(got);
        assert_string_equal(got, c->want);
        /* canonical is a fixed point */
        char *again = na_url_canonical(got);
        assert_non_null(again);
        assert_string_equal(again, got);
        free(again);
        free(got);
    }
    assert_null(na_url_canonical(NULL));
}

/* NA_URL_KEEP_FRAGMENT: the rest canonical, the fragment kept (live-blog
 * posts are told apart by it); an empty fragment goes. */
static void test_canonical_keep_fragment(void **state) {
    (void)state;
    static const char *const cases[][2] = {
        {"HTTPS://News.Example:443/live/taiwan?utm_source=x#post-2",
         "https://news.example/live/taiwan#post-2"},
        {"https://u:p@news.example/a#x%2fy", "https://news.example/a#x%2Fy"},
        {"https://news.example/a#", "https://news.example/a"},
        {"https://news.example/a", "https://news.example/a"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *got = na_url_canonical_ex(cases[i][0], NA_URL_KEEP_FRAGMENT);
        assert_non_null(got);
        assert_string_equal(got, cases[i][1]);
        char *again = na_url_canonical_ex(got, NA_URL_KEEP_FRAGMENT);
        assert_string_equal(again, got);
        free(again);
        free(got);
    }
    char *plain = na_url_canonical_ex("https://news.example/a#post-2", 0);
    assert_string_equal(plain, "https://news.example/a");
    free(plain);
}

/* The per-host limit and the headers of a source key on this. */
static void test_origin(void **state) {
    (void)state;
    static const char *const cases[][2] = {
        {"HTTP://Feeds.Example.ORG/a/b.xml?x=1#f", "http://feeds.example.org:80"},
        {"https://feeds.example.org/", "https://feeds.example.org:443"},
        {"https://u:p@feeds.example.org:8443/x", "https://feeds.example.org:8443"},
        {"http://127.0.0.1:52549/feed.xml", "http://127.0.0.1:52549"},
        {"http://[::1]:8080/", "http://[::1]:8080"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *got = na_url_origin(cases[i][0]);
        assert_non_null(got);
        assert_string_equal(got, cases[i][1]);
        free(got);
    }
    assert_null(na_url_origin("ftp://feeds.example.org/"));
    assert_null(na_url_origin("/relative.xml"));
    assert_null(na_url_origin(NULL));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resolve),
        cmocka_unit_test(test_canonical),
        cmocka_unit_test(test_canonical_keep_fragment),
        cmocka_unit_test(test_origin),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
