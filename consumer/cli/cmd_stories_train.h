/**
 * @file cmd_stories_train.h
 * @brief `newsalert-consumer stories --train DATA.jsonl --out FILE`: fit
 *        the story model on labelled events (story_train.h) and write it.
 *
 * cmd_eval.c reads and selects the labelled lines (as for --eval) and
 * hands them here in published order.
 */
#ifndef NEWSALERT_CMD_STORIES_TRAIN_H
#define NEWSALERT_CMD_STORIES_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "story_train.h"

struct na_stories_train_cli {
    const char *data;  /**< the labelled file (for the record) */
    const char *split; /**< NULL: all */
    const char *out;   /**< model file to write ("-": stdout) */
    int64_t window_ms;
    size_t shuffles; /**< shuffled orders besides the published one */
};

/**
 * @brief Fit the model on @p items (published order) and write it to o->out;
 *        a summary goes to stderr.
 * @returns the exit code: 0 ok, 1 failed.
 */
int na_stories_train_run(const struct na_story_labelled *items, size_t n,
                         const struct na_stories_train_cli *o);

/**
 * @brief Group @p items (published order) in published order and in
 *        @p shuffles seeded orders (seeds 1..shuffles) with model @p m, and
 *        average the B-cubed F1 and precision over the orders.
 * @returns NA_OK or NA_ERR_NOMEM.
 */
NA_WUR na_err_t na_stories_grouping_score(const struct na_story_labelled *items, size_t n,
                                          const na_story_model_t *m, int64_t window_ms,
                                          size_t shuffles, double *f1, double *precision);

#endif
