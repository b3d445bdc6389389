/**
 * @file article_jansson.h
 * @brief The article/v1 decoder as it was before the single-pass reader:
 *        json_loadb() with JSON_REJECT_DUPLICATES into a jansson tree, then
 *        each field copied out. Kept as the reference that the unit tests,
 *        the differential fuzz target (tests/fuzz/fuzz_article.c) and the
 *        decode benchmark compare na_article_from_json() with; no daemon
 *        links it.
 */
#ifndef NEWSALERT_TESTS_ARTICLE_JANSSON_H
#define NEWSALERT_TESTS_ARTICLE_JANSSON_H

#include <stdbool.h>
#include <stddef.h>

#include "newsalert/article.h"

/**
 * @brief Decode article/v1 JSON with jansson; same contract as
 *        na_article_from_json() (article.h).
 */
NA_WUR na_err_t na_article_from_json_jansson(const char *buf, size_t len,
                                             struct na_article *a, char *errstr,
                                             size_t errstr_size);

/**
 * @brief The first field in which @p a and @p b differ ("title",
 *        "source.id", ...), or NULL when they are the same article.
 */
const char *na_article_diff(const struct na_article *a, const struct na_article *b);

/**
 * @brief Decode @p buf with both decoders and check the contract of
 *        na_article_from_json() (article.h): the same na_err_t; on success
 *        the same article; on failure the article left clean, the same
 *        message for NA_ERR_INVALID, NA_ERR_UNSUPPORTED and
 *        NA_ERR_TOO_LARGE, and for NA_ERR_PARSE a message of the form
 *        "JSON error at line L column C: TEXT" on one line of valid UTF-8.
 * @returns true when it holds; else false with the difference in @p why.
 */
bool na_article_decoders_agree(const char *buf, size_t len, char *why, size_t why_size);

#endif
