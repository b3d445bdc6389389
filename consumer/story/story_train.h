/**
 * @file story_train.h
 * @brief Fitting the story model (story.h) on labelled events: what
 *        `newsalert-consumer stories --train` runs.
 *
 * Examples come from the engine itself, in teacher mode: the labelled
 * articles are fed in published order and in @p shuffles seeded random
 * orders (seeds 1..shuffles, the orders of `stories --eval --shuffle
 * SEED`); for each article, every candidate story the engine would score
 * gives one example (its inputs; same event or not), and the article then
 * goes into the story of its own event, so the examples are those of a
 * grouping without mistakes. A logistic regression with an L2 penalty (not
 * on the bias) is fitted to them by Newton's method (deterministic: the
 * same data give the same weights). The threshold is then chosen on the
 * grouping the caller's @p evaluate callback measures (e.g. B-cubed over
 * the same orders): of the thresholds 0.05, 0.075, .. 0.95, those whose F1
 * is within f1_slack of the best, the one with the best precision (the
 * higher threshold on ties).
 *
 * Threading: any thread; it uses only its own stories objects.
 */
#ifndef NEWSALERT_STORY_TRAIN_H
#define NEWSALERT_STORY_TRAIN_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "newsalert/article.h"
#include "newsalert/err.h"
#include "story.h"

/** One labelled article (both borrowed). */
struct na_story_labelled {
    const struct na_article *a;
    const char *event;
};

/**
 * Scores a candidate model on the labelled data (the caller's grouping
 * measure, e.g. B-cubed over several orders).
 * @param f1 set to the score to maximise
 * @param precision set to the precision of that grouping
 * @returns NA_OK, or an error that stops the training.
 */
typedef na_err_t(na_story_evaluate_cb)(void *ctx, const na_story_model_t *m, double *f1,
                                       double *precision);

struct na_story_train_opts {
    int64_t window_ms; /**< the grouping window (<= 0: default) */
    size_t shuffles;   /**< shuffled orders besides the published one */
    double l2;         /**< L2 penalty on the weights (not the bias) */
    double f1_slack;   /**< the threshold is the most precise of those whose F1
                            is within this of the best */
    na_story_evaluate_cb *evaluate; /**< NULL: threshold 0.5 */
    void *evaluate_ctx;
};

/**
 * @brief Fit a model on @p items (in published order, oldest first).
 * @param about borrowed; stored as the model's "trained" member (with what
 *        the fit adds: examples, positives, orders, l2, the threshold's
 *        score).
 * @param out set to a new model; na_story_model_destroy().
 * @returns NA_OK, NA_ERR_INVALID (no positive or no negative example:
 *          errstr says so) or NA_ERR_NOMEM.
 */
NA_WUR na_err_t na_story_train(const struct na_story_labelled *items, size_t n,
                               const struct na_story_train_opts *o, const json_t *about,
                               na_story_model_t **out, char *errstr, size_t errstr_size);

/**
 * @brief Put @p items in the order of `stories --eval --shuffle SEED`
 *        (splitmix64 from SEED, Fisher-Yates over the published order).
 */
void na_story_shuffle(struct na_story_labelled *items, size_t n, uint64_t seed);

#endif
