/**
 * @file cmd_eval.h
 * @brief The `eval` and `stories` commands of newsalert-consumer.
 *
 * main() dispatches `newsalert-consumer eval ...` as
 * na_cmd_eval(argc - 1, argv + 1) and `newsalert-consumer stories ...` as
 * na_cmd_stories(argc - 1, argv + 1), so argv[0] is the command name.
 */
#ifndef NEWSALERT_CMD_EVAL_H
#define NEWSALERT_CMD_EVAL_H

#include <jansson.h>

#include "newsalert/article.h"
#include "newsalert/err.h"

/**
 * @brief `eval --rules FILE [--json] DATA.jsonl`: per-topic precision,
 *        recall, F1, tp, fp, fn of the rules over labelled JSON lines
 *        (`title`, `text` or article/v1 `summary`/`content`, `labels`).
 *        Text output: one line per topic, then the misses by id; --json:
 *        {"topics":{NAME:{"precision","recall","f1","tp","fp","fn"}},
 *        "articles":N,"rules_version":V}.
 * @returns the exit code: 0 ok, 1 bad input or rules, 2 bad usage.
 */
int na_cmd_eval(int argc, char **argv);

/**
 * @brief `stories [--window DUR] [FILE..|-]`: group articles (article/v1,
 *        or `id`, `title`, `text`, optional `published_at`) into stories and
 *        print `id<TAB>story` per article, in input order.
 * @returns the exit code: 0 ok, 1 a bad line, 2 bad usage.
 */
int na_cmd_stories(int argc, char **argv);

/**
 * @brief Read an article from a JSON object that is article/v1 or a
 *        labelled line (`id`, `title`, `text`, `summary`, `published_at` as
 *        RFC 3339 or Unix s); fields that are absent stay unset; an absent
 *        id is the SHA-256 of title and text.
 * @param a initialised; filled (owned strings).
 * @returns NA_OK, NA_ERR_INVALID (errstr names the field) or NA_ERR_NOMEM.
 */
NA_WUR na_err_t na_eval_article(const json_t *obj, struct na_article *a, char *errstr,
                                size_t errstr_size);

#endif
