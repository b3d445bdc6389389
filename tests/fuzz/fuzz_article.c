/*
 * libFuzzer target: the article/v1 reader, na_article_from_json(), against
 * the jansson decoder it replaced (tests/ref/article_jansson.c).
 *
 * Contract checked (article.h, common/article_decode.c): for every input
 * both decoders return the same na_err_t; when they accept, the same
 * article field by field (caps and UTF-8 cuts included); when they refuse,
 * the reader leaves the article clean, gives the same message for
 * NA_ERR_INVALID, NA_ERR_UNSUPPORTED and NA_ERR_TOO_LARGE, and for
 * NA_ERR_PARSE "JSON error at line L column C: TEXT" on one line of valid
 * UTF-8. Any disagreement prints it and aborts. Besides, an accepted
 * article must have its strings valid UTF-8 within the caps of limits.h.
 *
 * Seeds: tests/fuzz/seeds/fuzz_article/ (real-looking records and edge
 * cases); dictionary: article.dict.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "article_jansson.h"
#include "newsalert/article.h"
#include "newsalert/limits.h"
#include "newsalert/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_str(const char *s, size_t max) {
    if (s && (strlen(s) > max || !na_utf8_valid(s, strlen(s)))) {
        fprintf(stderr, "fuzz_article: a string is over its cap or not UTF-8\n");
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char why[1024];
    struct na_article a;
    char errstr[256];
    const char *buf = (const char *)data;

    if (!na_article_decoders_agree(buf, size, why, sizeof(why))) {
        fprintf(stderr, "fuzz_article: decoders disagree: %s\n", why);
        abort();
    }
    na_article_init(&a);
    if (!na_article_from_json(buf, size, &a, errstr, sizeof(errstr))) {
        check_str(a.url, NA_MAX_URL_BYTES);
        check_str(a.title, NA_MAX_TITLE_BYTES);
        check_str(a.summary, NA_MAX_SUMMARY_BYTES);
        check_str(a.content, NA_MAX_CONTENT_BYTES);
        check_str(a.lang, 64);
        check_str(a.source_id, 256);
        check_str(a.source_name, 1024);
        check_str(a.source_feed_url, NA_MAX_URL_BYTES);
        for (size_t i = 0; i < a.authors_cnt; i++) {
            check_str(a.authors[i], NA_MAX_ARTICLE_BYTES);
        }
        for (size_t i = 0; i < a.categories_cnt; i++) {
            check_str(a.categories[i], NA_MAX_ARTICLE_BYTES);
        }
        if (a.authors_cnt > NA_MAX_AUTHORS || a.categories_cnt > NA_MAX_CATEGORIES) {
            abort();
        }
    }
    na_article_cleanup(&a);
    return 0;
}
