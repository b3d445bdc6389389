/**
 * @file article.h
 * @brief The article model and its article/v1 JSON codec (the value of
 *        `news.articles`; see DESIGN.md "Contracts").
 */
#ifndef NEWSALERT_ARTICLE_H
#define NEWSALERT_ARTICLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "newsalert/err.h"
#include "newsalert/hash.h"

#define NA_ARTICLE_SCHEMA "article/v1"
#define NA_ARTICLE_CONTENT_TYPE "application/json"

/**
 * One normalised news item. Every string is owned by the article (heap,
 * NUL-terminated, valid UTF-8) or NULL; na_article_cleanup() frees them.
 */
struct na_article {
    char id[NA_SHA256_HEX_LEN + 1]; /**< hex SHA-256; see na_article_set_id() */
    char *url;                      /**< canonical link, or NULL */
    char *guid;                     /**< feed's item id (not serialised), or NULL */
    char *title;
    char *summary; /**< plain text */
    char *content; /**< plain text */
    char **authors;
    size_t authors_cnt;
    char **categories;
    size_t categories_cnt;
    char *lang;           /**< BCP 47 tag or NULL */
    int64_t published_at; /**< Unix s, or NA_TIME_UNKNOWN */
    int64_t updated_at;   /**< Unix s, or NA_TIME_UNKNOWN (not serialised) */
    int64_t fetched_at;   /**< Unix s */
    char *source_id;
    char *source_name;
    char *source_feed_url;
    bool id_by_guid; /**< the id comes from feed URL + GUID although there
                          is a link (na_article_set_id()); not serialised */
};

/** @brief Zero @p a with unknown times. */
void na_article_init(struct na_article *a);
/** @brief Free everything @p a owns and re-init it. NULL-safe. */
void na_article_cleanup(struct na_article *a);

/**
 * @brief Set a->id per DESIGN.md: SHA-256 of the canonical URL (a->url),
 *        or of feed URL + GUID when there is no link or when
 *        a->id_by_guid is set (items of one document with the same link but
 *        their own guids, see feed.h); without link and GUID, of feed URL +
 *        title, and without a title, of feed URL + the item's text (its
 *        summary, else its content), so that an item known only by its
 *        text has an id of its own (docs/producer.md, "Identity and dedup").
 * @returns NA_OK, or NA_ERR_NOMEM (a->id then empty).
 */
NA_WUR na_err_t na_article_set_id(struct na_article *a);

/**
 * @brief Append a string to a list field (authors/categories), skipping
 *        duplicates and stopping at @p max entries.
 * @returns NA_OK or NA_ERR_NOMEM.
 */
NA_WUR na_err_t na_article_list_add(char ***list, size_t *cnt, size_t max, const char *s);

/**
 * @brief Encode @p a as compact article/v1 JSON.
 * @returns new string; free(); NULL on no memory.
 */
char *na_article_to_json(const struct na_article *a);

/**
 * @brief Decode article/v1 JSON (at most NA_MAX_ARTICLE_BYTES) into @p a,
 *        which must be initialised; on failure @p a is left clean.
 *        A single pass over @p buf without a JSON tree
 *        (common/article_decode.c): it accepts exactly the documents that
 *        jansson's json_loadb(JSON_REJECT_DUPLICATES) accepts (strict
 *        UTF-8, escapes and surrogate pairs, unique member names at every
 *        depth, nesting up to 2048, 64-bit integers, finite reals) and
 *        makes the article the jansson decoder made; strings are cut at
 *        their caps (limits.h) on a UTF-8 boundary. Fields are checked in
 *        a fixed order (schema, id, url, title, summary, content, lang,
 *        authors, categories, published_at, fetched_at, source and its
 *        id, name, feed_url): the first bad one gives the error.
 * @returns NA_OK, NA_ERR_TOO_LARGE, NA_ERR_PARSE (errstr is "JSON error at
 *          line L column C: TEXT"), NA_ERR_UNSUPPORTED (a schema other
 *          than article/v1) or NA_ERR_INVALID (errstr names the field);
 *          NA_ERR_NOMEM.
 */
NA_WUR na_err_t na_article_from_json(const char *buf, size_t len, struct na_article *a,
                                     char *errstr, size_t errstr_size);

/**
 * @brief Test support: na_article_from_json(), and in *@p probes the slots
 *        of its member-name table that the duplicate check looked at (a few
 *        per name on average, however the names are chosen). A test
 *        bounds it where timing would be a guess.
 */
NA_WUR na_err_t na_article_from_json_probes(const char *buf, size_t len,
                                            struct na_article *a, char *errstr,
                                            size_t errstr_size, size_t *probes);

#endif
