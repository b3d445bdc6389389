/**
 * @file input.h
 * @brief The one reader of the subcommands that take articles from files
 *        (classify, stories, eval), so that they take the same input.
 *
 * A line is one article: a JSON object (article/v1, or the looser labelled
 * form: id, title, summary, content or text, url, published_at, fetched_at;
 * other fields ignored, for the caller to read from the object), or, where
 * the command allows it, plain text (the text is the content and the id its
 * SHA-256). Blank lines are skipped, and a byte order mark before the
 * first line. Any id string of at most 64 bytes works; without one, the id is the SHA-256
 * of the title, summary and content. (article/v1 records from Kafka keep their strict
 * check: na_article_from_json().)
 *
 * Files are read line by line (a line of at most NA_MAX_ARTICLE_BYTES), so
 * any file size works and stdin ("-") streams.
 */
#ifndef NEWSALERT_CLI_INPUT_H
#define NEWSALERT_CLI_INPUT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "newsalert/article.h"
#include "newsalert/err.h"

/**
 * Called for each article line. @p where is "FILE:LINE" for messages;
 * @p obj the line's JSON object (NULL for a plain text line) and @p a the
 * article made from it, both borrowed for the call (the callback may take
 * @p a's strings, setting them to NULL).
 * @returns 0, or 1 for a bad line (the callback reports it).
 */
typedef int(na_input_cb)(void *ctx, const char *where, const json_t *obj,
                         struct na_article *a);

/** Plain text lines are articles (else they are bad lines). */
#define NA_INPUT_PLAIN 1u

/**
 * @brief Bytes of a UTF-8 byte order mark at the start of @p s[0..len) (3),
 *        or 0: some editors save one before a file's first line, and it is
 *        no part of the line.
 */
size_t na_input_bom(const char *s, size_t len);

/** na_input_each(): the file could not be opened, or reading it failed. */
#define NA_INPUT_UNREAD 2

/**
 * @brief Call @p cb for each article line of @p path ("-": stdin).
 * @param cmd the subcommand's name, for messages on stderr
 *        ("newsalert-consumer CMD: FILE:LINE: why").
 * @returns 0; 1 when a line was bad (the other lines are still read); or
 *          NA_INPUT_UNREAD when the file could not be opened or read.
 */
int na_input_each(const char *cmd, const char *path, unsigned flags, na_input_cb *cb,
                  void *ctx);

/**
 * @brief The article of one JSON object, as described above.
 * @param a initialised by the caller (na_article_init()); filled.
 * @returns NA_OK, NA_ERR_INVALID (errstr says why) or NA_ERR_NOMEM.
 */
NA_WUR na_err_t na_input_article(const json_t *obj, struct na_article *a, char *errstr,
                                 size_t errstr_size);

#endif
