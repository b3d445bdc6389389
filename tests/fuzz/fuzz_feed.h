/*
 * fuzz_feed.h: the body shared by the feed fuzz targets (fuzz_rss.c,
 * fuzz_atom.c, fuzz_json.c). Each target feeds its input to the one entry
 * point, na_feed_parse_ex(), which detects the format from the bytes; the
 * targets differ in their seeds and dictionaries (tests/fuzz/run), which
 * keep the fuzzer inside one format.
 *
 * Beyond the sanitizers, a parse that succeeds must keep the contract of
 * feed.h: valid UTF-8 within the caps of limits.h, http(s) links only,
 * no more than NA_MAX_FEED_ITEMS items. A parse that fails must leave the
 * feed clean and say why in one line.
 */
#ifndef NA_FUZZ_FEED_H
#define NA_FUZZ_FEED_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "feed.h"
#include "newsalert/limits.h"
#include "newsalert/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_check_str(const char *s, size_t max) {
    if (s && (strlen(s) > max || !na_utf8_valid(s, strlen(s)))) {
        abort();
    }
}

static void fuzz_check_feed(const struct na_feed *feed) {
    if (feed->items_cnt > NA_MAX_FEED_ITEMS) {
        abort();
    }
    fuzz_check_str(feed->title, NA_MAX_TITLE_BYTES);
    fuzz_check_str(feed->link, NA_MAX_URL_BYTES);
    for (size_t i = 0; i < feed->items_cnt; i++) {
        const struct na_article *a = &feed->items[i];
        fuzz_check_str(a->url, NA_MAX_URL_BYTES);
        fuzz_check_str(a->guid, NA_MAX_URL_BYTES);
        fuzz_check_str(a->title, NA_MAX_TITLE_BYTES);
        fuzz_check_str(a->summary, NA_MAX_SUMMARY_BYTES);
        fuzz_check_str(a->content, NA_MAX_CONTENT_BYTES);
        fuzz_check_str(a->lang, 35);
        if (a->url && strncmp(a->url, "http://", 7) && strncmp(a->url, "https://", 8)) {
            abort();
        }
        if (a->authors_cnt > NA_MAX_AUTHORS || a->categories_cnt > NA_MAX_CATEGORIES) {
            abort();
        }
        for (size_t k = 0; k < a->authors_cnt; k++) {
            fuzz_check_str(a->authors[k], NA_MAX_TITLE_BYTES);
        }
        for (size_t k = 0; k < a->categories_cnt; k++) {
            fuzz_check_str(a->categories[k], NA_MAX_TITLE_BYTES);
        }
        char *json = na_article_to_json(a);
        fuzz_check_str(json, NA_MAX_FEED_BYTES);
        free(json);
    }
}

static int fuzz_feed_one(const uint8_t *data, size_t size) {
    static const unsigned flags[] = {0, NA_FEED_LITERAL};
    for (size_t f = 0; f < sizeof(flags) / sizeof(flags[0]); f++) {
        struct na_feed feed;
        char errstr[512];
        na_feed_init(&feed);
        na_err_t err =
            na_feed_parse_ex((const char *)data, size, "https://fuzz.example.org/feed/",
                             flags[f], &feed, errstr, sizeof(errstr));
        if (err) {
            /* failure: a clean feed and one line of valid UTF-8 */
            if (feed.items_cnt || feed.items || !errstr[0] || strchr(errstr, '\n')) {
                abort();
            }
            fuzz_check_str(errstr, sizeof(errstr));
        } else {
            fuzz_check_feed(&feed);
        }
        na_feed_cleanup(&feed);
    }
    return 0;
}

#endif
