/* newsalert-consumer stories --train (cmd_stories_train.h). */
#include "cmd_stories_train.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd_eval.h"
#include "newsalert/hash.h"

/* The threshold is the most precise of those within this B-cubed F1 of the
 * best (averaged over the orders): a wrong merge hides an alert. On the dev
 * split, 0.01 rather than 0 raised the lowest B-cubed precision over ten
 * unseen shuffles from 0.955 to 0.978 for 0.01 of F1 (docs/rules.md). */
#define NA_TRAIN_F1_SLACK 0.01
/* L2 penalty of the weights. */
#define NA_TRAIN_L2 0.1

na_err_t na_stories_grouping_score(const struct na_story_labelled *items, size_t n,
                                   const na_story_model_t *m, int64_t window_ms,
                                   size_t shuffles, double *f1, double *precision) {
    struct na_story_labelled *order = malloc((n + 1) * sizeof(*order));
    char(*story)[NA_SHA256_HEX_LEN + 1] = malloc((n + 1) * sizeof(*story));
    const char **keys = malloc((n + 1) * sizeof(*keys));
    size_t *gold = malloc((n + 1) * sizeof(*gold));
    size_t *pred = malloc((n + 1) * sizeof(*pred));
    na_stories_t *st = NULL;
    na_err_t err = NA_OK;

    *f1 = *precision = 0;
    if (!order || !story || !keys || !gold || !pred) {
        err = NA_ERR_NOMEM;
        goto out;
    }
    for (size_t k = 0; k <= shuffles && n; k++) {
        struct na_stories_opts so = {
            .window_ms = window_ms, .reorder_ms = -1, .reorder_set = true, .model = m};
        struct na_cluster_scores sc;
        memcpy(order, items, n * sizeof(*order));
        if (k) {
            na_story_shuffle(order, n, (uint64_t)k);
        }
        if (!(st = na_stories_new_opts(&so))) {
            err = NA_ERR_NOMEM;
            goto out;
        }
        for (size_t i = 0; i < n && !err; i++) {
            err = na_stories_assign(st, order[i].a, story[i], NULL);
        }
        na_stories_destroy(st);
        st = NULL;
        for (size_t i = 0; i < n && !err; i++) {
            keys[i] = order[i].event;
        }
        if (err || (err = na_eval_number_keys(keys, n, gold))) {
            goto out;
        }
        for (size_t i = 0; i < n; i++) {
            keys[i] = story[i];
        }
        if ((err = na_eval_number_keys(keys, n, pred)) ||
            (err = na_cluster_score(gold, pred, n, &sc))) {
            goto out;
        }
        *f1 += sc.bcubed_f1 / (double)(shuffles + 1);
        *precision += sc.bcubed_precision / (double)(shuffles + 1);
    }
out:
    na_stories_destroy(st);
    free(order);
    free(story);
    free(keys);
    free(gold);
    free(pred);
    return err;
}

struct eval_ctx {
    const struct na_story_labelled *items;
    size_t n;
    const struct na_stories_train_cli *o;
};

static na_err_t evaluate(void *vctx, const na_story_model_t *m, double *f1,
                         double *precision) {
    const struct eval_ctx *c = vctx;
    return na_stories_grouping_score(c->items, c->n, m, c->o->window_ms, c->o->shuffles,
                                     f1, precision);
}

int na_stories_train_run(const struct na_story_labelled *items, size_t n,
                         const struct na_stories_train_cli *o) {
    struct eval_ctx ctx = {items, n, o};
    struct na_story_train_opts to = {
        .window_ms = o->window_ms,
        .shuffles = o->shuffles,
        .l2 = NA_TRAIN_L2,
        .f1_slack = NA_TRAIN_F1_SLACK,
        .evaluate = evaluate,
        .evaluate_ctx = &ctx,
    };
    char errstr[512] = "";
    na_story_model_t *m = NULL;
    json_t *about = NULL, *root = NULL;
    char *text = NULL;
    FILE *f = NULL;
    size_t events = 0;
    char threshold_by[160];
    int rc = 1;
    na_err_t err;

    /* Events: distinct labels (items are few; quadratic is fine here). */
    for (size_t i = 0; i < n; i++) {
        size_t j = 0;
        while (j < i && strcmp(items[j].event, items[i].event)) {
            j++;
        }
        events += j == i;
    }
    snprintf(threshold_by, sizeof(threshold_by),
             "the best mean B-cubed precision over the orders among the thresholds "
             "within %g of the best mean B-cubed F1",
             NA_TRAIN_F1_SLACK);
    about = json_pack("{s:s, s:s, s:I, s:I, s:I, s:s}", "data", o->data, "split",
                      o->split ? o->split : "all", "articles", (json_int_t)n, "events",
                      (json_int_t)events, "window_s", (json_int_t)(o->window_ms / 1000),
                      "threshold_by", threshold_by);
    if (!about) {
        fprintf(stderr, "newsalert-consumer stories: out of memory\n");
        goto out;
    }
    if ((err = na_story_train(items, n, &to, about, &m, errstr, sizeof(errstr)))) {
        fprintf(stderr, "newsalert-consumer stories: --train: %s\n",
                errstr[0] ? errstr : na_err2str(err));
        goto out;
    }
    root = na_story_model_to_json(m);
    text = root ? json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER |
                                       JSON_REAL_PRECISION(6))
                : NULL;
    if (!text) {
        fprintf(stderr, "newsalert-consumer stories: out of memory\n");
        goto out;
    }
    f = strcmp(o->out, "-") ? fopen(o->out, "w") : stdout;
    if (!f || fputs(text, f) < 0 || fputc('\n', f) < 0 || (f != stdout && fclose(f))) {
        fprintf(stderr, "newsalert-consumer stories: %s: cannot write\n", o->out);
        if (f && f != stdout) {
            f = NULL; /* fclose() was called or failed: do not close twice */
        }
        goto out;
    }
    f = NULL;
    json_t *tr = json_object_get(root, "trained");
    fprintf(stderr,
            "newsalert-consumer stories: trained on %zu articles (%zu events), %lld "
            "examples (%lld same event); threshold %.3f (mean B-cubed F1 %.3f, "
            "precision %.3f over %zu orders); wrote %s\n",
            n, events, (long long)json_integer_value(json_object_get(tr, "examples")),
            (long long)json_integer_value(json_object_get(tr, "positives")),
            json_real_value(json_object_get(root, "threshold")),
            json_real_value(json_object_get(tr, "threshold_f1")),
            json_real_value(json_object_get(tr, "threshold_precision")), o->shuffles + 1,
            o->out);
    rc = 0;
out:
    if (f && f != stdout) {
        fclose(f);
    }
    free(text);
    json_decref(root);
    json_decref(about);
    na_story_model_destroy(m);
    return rc;
}
