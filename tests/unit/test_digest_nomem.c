/*
 * SHA-256 when libcrypto has no memory: the digests return NA_ERR_NOMEM
 * (never the hex of whatever a buffer held), and what is built on them
 * (article ids, alert ids, the seen store's keys, story ids) fails cleanly
 * and changes nothing. libcrypto's allocator is replaced before its first
 * allocation (CRYPTO_set_mem_functions()), so that a test can make it fail.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <openssl/crypto.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "alert.h"
#include "newsalert/article.h"
#include "newsalert/hash.h"
#include "newsalert/util.h"
#include "seen.h"
#include "story.h"

/* libcrypto's allocations fail while this is set. */
static bool crypto_fails;
static unsigned long crypto_refused;

static void *crypto_malloc(size_t n, const char *file, int line) {
    (void)file;
    (void)line;
    if (crypto_fails) {
        crypto_refused++;
        return NULL;
    }
    return malloc(n);
}

static void *crypto_realloc(void *p, size_t n, const char *file, int line) {
    (void)file;
    (void)line;
    if (crypto_fails) {
        crypto_refused++;
        return NULL;
    }
    return realloc(p, n);
}

static void crypto_free(void *p, const char *file, int line) {
    (void)file;
    (void)line;
    free(p);
}

/* "abc" (FIPS 180-2, appendix B.1). */
static const char *const abc_sha256 =
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

static void test_digests_report_no_memory(void **state) {
    (void)state;
    unsigned char md[NA_SHA256_LEN];
    char hex[NA_SHA256_HEX_LEN + 1];
    const char *parts[] = {"ab", "c", NULL};

    crypto_fails = true;
    crypto_refused = 0;
    memset(md, 0xa5, sizeof(md));
    assert_int_equal(na_sha256("abc", 3, md), NA_ERR_NOMEM);
    for (size_t i = 0; i < sizeof(md); i++) {
        assert_int_equal(md[i], 0); /* not what the buffer held */
    }
    memset(hex, 'x', sizeof(hex));
    assert_int_equal(na_sha256_hex("abc", 3, hex), NA_ERR_NOMEM);
    assert_string_equal(hex, "");
    memset(hex, 'x', sizeof(hex));
    assert_int_equal(na_sha256_hex_parts(parts, hex), NA_ERR_NOMEM);
    assert_string_equal(hex, "");
    assert_true(crypto_refused >= 3);
    crypto_fails = false;

    /* and with memory, the digests they are */
    assert_int_equal(na_sha256_hex("abc", 3, hex), NA_OK);
    assert_string_equal(hex, abc_sha256);
    char joined[NA_SHA256_HEX_LEN + 1];
    assert_int_equal(na_sha256_hex("ab\0c\0", 5, joined), NA_OK);
    assert_int_equal(na_sha256_hex_parts(parts, hex), NA_OK);
    assert_string_equal(hex, joined);
}

static void test_article_and_alert_ids_no_memory(void **state) {
    (void)state;
    struct na_article a;
    struct na_match m = {0};
    struct na_alert alert;
    char want[NA_SHA256_HEX_LEN + 1];

    na_article_init(&a);
    a.url = na_strdup("https://news.example/a");
    assert_non_null(a.url);
    crypto_fails = true;
    assert_int_equal(na_article_set_id(&a), NA_ERR_NOMEM);
    assert_string_equal(a.id, "");
    crypto_fails = false;
    assert_int_equal(na_article_set_id(&a), NA_OK);
    assert_int_equal(na_sha256_hex(a.url, strlen(a.url), want), NA_OK);
    assert_string_equal(a.id, want);

    m.topic = "taiwan";
    crypto_fails = true;
    assert_int_equal(na_alert_init(&alert, &a, &m, "v1"), NA_ERR_NOMEM);
    assert_string_equal(alert.id, "");
    assert_int_equal(na_story_alert_id("s1", "taiwan", want), NA_ERR_NOMEM);
    assert_string_equal(want, "");
    crypto_fails = false;
    assert_int_equal(na_alert_init(&alert, &a, &m, "v1"), NA_OK);
    assert_int_equal(strlen(alert.id), NA_SHA256_HEX_LEN);
    na_article_cleanup(&a);
}

/* Ids that are not SHA-256 hex (the seen store hashes them to keys). */
static void test_seen_store_no_memory_changes_nothing(void **state) {
    (void)state;
    na_seen_t *seen = NULL;
    char errstr[256];
    int rev = 0;
    bool has = true;

    assert_int_equal(na_seen_load(NULL, &seen, errstr, sizeof(errstr)), NA_OK);
    assert_int_equal(na_seen_put(seen, "f", "kept", "one fingerprint", 1), NA_OK);

    crypto_fails = true;
    assert_int_equal(na_seen_check(seen, "f", "kept", NULL, &rev), NA_SEEN_FAILED);
    assert_int_equal(na_seen_check(seen, "f", "other", NULL, &rev), NA_SEEN_FAILED);
    assert_int_equal(na_seen_touch(seen, "f", "kept", NULL), NA_ERR_NOMEM);
    assert_int_equal(na_seen_put(seen, "f", "other", NULL, 1), NA_ERR_NOMEM);
    assert_int_equal(na_seen_has(seen, "f", "kept", &has), NA_ERR_NOMEM);
    assert_false(has);
    crypto_fails = false;

    assert_int_equal(na_seen_has(seen, "f", "kept", &has), NA_OK);
    assert_true(has);
    assert_int_equal(na_seen_has(seen, "f", "other", &has), NA_OK);
    assert_false(has); /* the failed put left nothing */
    assert_int_equal(na_seen_count(seen, "f"), 1);
    assert_int_equal(na_seen_check(seen, "f", "other", NULL, &rev), NA_SEEN_NEW);
    assert_int_equal(na_seen_check(seen, "f", "kept", "one fingerprint", &rev),
                     NA_SEEN_SAME);
    /* the same text under another id: the fingerprint's key is kept */
    assert_int_equal(na_seen_check(seen, "f", "other", "one fingerprint", &rev),
                     NA_SEEN_DUPLICATE);
    na_seen_destroy(seen);
}

/* An article that would open a story whose id cannot be made: an error,
 * no story. */
static void test_story_open_no_memory(void **state) {
    (void)state;
    na_stories_t *st = na_stories_new(0);
    struct na_article a;
    char story[NA_SHA256_HEX_LEN + 1];
    bool is_new = false;

    assert_non_null(st);
    na_article_init(&a);
    snprintf(a.id, sizeof(a.id), "%s", "art-1");
    a.title = na_strdup("Export ban on gallium and germanium announced");
    a.content = na_strdup("The commerce ministry announced an export ban on gallium "
                          "and germanium to the named companies from March.");
    a.published_at = 1767657600;
    crypto_fails = true;
    assert_int_equal(na_stories_assign(st, &a, story, &is_new), NA_ERR_NOMEM);
    crypto_fails = false;
    assert_int_equal(na_stories_count(st), 0);
    assert_false(is_new);
    assert_int_equal(na_stories_assign(st, &a, story, &is_new), NA_OK);
    assert_true(is_new);
    assert_int_equal(na_stories_count(st), 1);
    na_article_cleanup(&a);
    na_stories_destroy(st);
}

int main(void) {
    /* before libcrypto allocates anything (it refuses later) */
    if (!CRYPTO_set_mem_functions(crypto_malloc, crypto_realloc, crypto_free)) {
        fprintf(stderr, "test_digest_nomem: libcrypto's allocator could not be set\n");
        return 1;
    }
    /* libcrypto's first use (its init, the digest's fetch) with memory:
     * a failure there would be remembered for the process */
    char hex[NA_SHA256_HEX_LEN + 1];
    if (na_sha256_hex("", 0, hex)) {
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_digests_report_no_memory),
        cmocka_unit_test(test_article_and_alert_ids_no_memory),
        cmocka_unit_test(test_seen_store_no_memory_changes_nothing),
        cmocka_unit_test(test_story_open_no_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
