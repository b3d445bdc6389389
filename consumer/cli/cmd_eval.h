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
#include <stddef.h>
#include <stdint.h>

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
 *
 *        `stories --eval DATA.jsonl [--json] [--split dev|heldout|all]
 *        [--shuffle SEED] [--explain] [--window DUR]`: run the grouping over
 *        labelled lines (each with an `event` key; `split` selects lines),
 *        in published order or, with --shuffle, in a seeded random order,
 *        and print the agreement of the stories with the events
 *        (na_cluster_score()): counts, B-cubed and pairwise precision,
 *        recall and F1, one line each, or one JSON object with --json.
 * @returns the exit code: 0 ok, 1 a bad line, 2 bad usage.
 */
int na_cmd_stories(int argc, char **argv);

/** How far a clustering (stories) agrees with a reference one (events). */
struct na_cluster_scores {
    size_t items;         /**< items scored */
    size_t gold_clusters; /**< clusters of the reference (events) */
    size_t pred_clusters; /**< clusters found (stories) */
    double bcubed_precision, bcubed_recall, bcubed_f1;
    double pair_precision, pair_recall, pair_f1;
    uint64_t pair_tp; /**< pairs together in both */
    uint64_t pair_fp; /**< pairs together in the stories only (wrong merges) */
    uint64_t pair_fn; /**< pairs together in the events only (splits) */
};

/**
 * @brief Score a clustering against a reference clustering of the same items.
 *
 *        B-cubed (Bagga and Baldwin): for each item, precision is the share
 *        of its found cluster that is in its reference cluster, recall the
 *        share of its reference cluster that is in its found cluster; both
 *        are averaged over the items. Pairwise: over all unordered pairs of
 *        items, tp = together in both, fp = together only in @p pred, fn =
 *        together only in @p gold; precision tp / (tp + fp), recall
 *        tp / (tp + fn), where a ratio with no pairs at all (0 / 0) is 1.
 *        Each F1 is the harmonic mean of its precision and recall (0 when
 *        both are 0). O(n log n).
 * @param gold reference cluster of each item: equal values mean one cluster.
 * @param pred found cluster of each item, likewise.
 * @param n items, > 0.
 * @returns NA_OK, NA_ERR_INVALID (n is 0) or NA_ERR_NOMEM.
 */
NA_WUR na_err_t na_cluster_score(const size_t *gold, const size_t *pred, size_t n,
                                 struct na_cluster_scores *out);

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

/**
 * @brief labels[i] = the number of keys[i] among the distinct @p keys, in
 *        their sorted order (equal strings get equal labels). @p labels has
 *        @p n entries. @returns NA_OK or NA_ERR_NOMEM.
 */
na_err_t na_eval_number_keys(const char *const *keys, size_t n, size_t *labels);

#endif
