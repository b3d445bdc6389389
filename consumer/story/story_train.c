/* Fitting the story model (story_train.h). */
#include "story_train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "newsalert/util.h"
#include "story_internal.h"

#define NA_TRAIN_MAX_ITER 100
#define NA_TRAIN_EPS 1e-9
/* Thresholds tried: 0.05, 0.075, .. 0.95. */
#define NA_TRAIN_THRESHOLDS 37u

static double threshold_at(size_t k) {
    return (double)(k + 2) / 40.0;
}

/* The examples: inputs and labels, growing. */
struct examples {
    double (*x)[NA_SX_COUNT];
    unsigned char *y;
    size_t n, cap;
    size_t positives;
    bool oom;
};

static void example_add(void *ctx, const double x[NA_SX_COUNT], bool same) {
    struct examples *e = ctx;
    if (e->oom) {
        return;
    }
    if (e->n == e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 1024;
        double(*nx)[NA_SX_COUNT] = realloc(e->x, cap * sizeof(*nx));
        if (!nx) {
            e->oom = true;
            return;
        }
        e->x = nx;
        unsigned char *ny = realloc(e->y, cap);
        if (!ny) {
            e->oom = true;
            return;
        }
        e->y = ny;
        e->cap = cap;
    }
    memcpy(e->x[e->n], x, sizeof(e->x[0]));
    e->y[e->n++] = same;
    e->positives += same;
}

static uint64_t splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

void na_story_shuffle(struct na_story_labelled *items, size_t n, uint64_t seed) {
    uint64_t state = seed;
    for (size_t i = n ? n - 1 : 0; i > 0; i--) {
        size_t j = (size_t)(splitmix64(&state) % (uint64_t)(i + 1));
        struct na_story_labelled t = items[i];
        items[i] = items[j];
        items[j] = t;
    }
}

/* Solve H w = g (H symmetric positive definite, NA_SX_COUNT square) by
 * Cholesky; @returns false when H is not positive definite. */
static bool solve(double h[NA_SX_COUNT][NA_SX_COUNT], const double g[NA_SX_COUNT],
                  double w[NA_SX_COUNT]) {
    double l[NA_SX_COUNT][NA_SX_COUNT] = {{0}};
    double y[NA_SX_COUNT];
    for (size_t i = 0; i < NA_SX_COUNT; i++) {
        for (size_t j = 0; j <= i; j++) {
            double sum = h[i][j];
            for (size_t k = 0; k < j; k++) {
                sum -= l[i][k] * l[j][k];
            }
            if (i == j) {
                if (sum <= 0) {
                    return false;
                }
                l[i][i] = sqrt(sum);
            } else {
                l[i][j] = sum / l[j][j];
            }
        }
    }
    for (size_t i = 0; i < NA_SX_COUNT; i++) {
        double sum = g[i];
        for (size_t k = 0; k < i; k++) {
            sum -= l[i][k] * y[k];
        }
        y[i] = sum / l[i][i];
    }
    for (size_t i = NA_SX_COUNT; i-- > 0;) {
        double sum = y[i];
        for (size_t k = i + 1; k < NA_SX_COUNT; k++) {
            sum -= l[k][i] * w[k];
        }
        w[i] = sum / l[i][i];
    }
    return true;
}

/* Newton's method on the penalised log-likelihood. */
static bool fit(const struct examples *e, double l2, double w[NA_SX_COUNT], int *iters) {
    memset(w, 0, NA_SX_COUNT * sizeof(*w));
    for (int it = 1; it <= NA_TRAIN_MAX_ITER; it++) {
        double h[NA_SX_COUNT][NA_SX_COUNT] = {{0}};
        double g[NA_SX_COUNT] = {0};
        double step[NA_SX_COUNT];
        for (size_t k = 0; k < e->n; k++) {
            const double *x = e->x[k];
            double z = 0;
            for (size_t i = 0; i < NA_SX_COUNT; i++) {
                z += w[i] * x[i];
            }
            double p = 1.0 / (1.0 + exp(-z));
            double r = (double)e->y[k] - p;
            double v = p * (1 - p);
            for (size_t i = 0; i < NA_SX_COUNT; i++) {
                g[i] += r * x[i];
                for (size_t j = 0; j <= i; j++) {
                    h[i][j] += v * x[i] * x[j];
                }
            }
        }
        for (size_t i = 0; i < NA_SX_COUNT; i++) {
            for (size_t j = 0; j < i; j++) {
                h[j][i] = h[i][j];
            }
            if (i != NA_SX_BIAS) {
                h[i][i] += l2;
                g[i] -= l2 * w[i];
            } else {
                h[i][i] += 1e-9; /* keeps H definite when the bias is free */
            }
        }
        if (!solve(h, g, step)) {
            return false;
        }
        double max = 0;
        for (size_t i = 0; i < NA_SX_COUNT; i++) {
            w[i] += step[i];
            max = fabs(step[i]) > max ? fabs(step[i]) : max;
        }
        *iters = it;
        if (max < NA_TRAIN_EPS) {
            break;
        }
    }
    return true;
}

na_err_t na_story_train(const struct na_story_labelled *items, size_t n,
                        const struct na_story_train_opts *o, const json_t *about,
                        na_story_model_t **out, char *errstr, size_t errstr_size) {
    struct examples e = {0};
    struct na_story_labelled *order = NULL;
    na_story_model_t *m = NULL;
    na_stories_t *st = NULL;
    json_t *info = NULL, *orders = NULL, *sweep = NULL;
    size_t missed = 0;
    int iters = 0;
    na_err_t err = NA_OK;

    *out = NULL;
    order = malloc((n + 1) * sizeof(*order));
    m = calloc(1, sizeof(*m));
    info = about ? json_deep_copy(about) : json_object();
    orders = json_array();
    sweep = json_array();
    if (!order || !m || !info || !orders || !sweep) {
        err = NA_ERR_NOMEM;
        goto out;
    }
    m->threshold = 0.5;
    for (size_t k = 0; k <= o->shuffles; k++) {
        struct na_stories_opts so = {
            .window_ms = o->window_ms, .reorder_ms = -1, .reorder_set = true, .model = m};
        char story[NA_SHA256_HEX_LEN + 1];
        memcpy(order, items, n * sizeof(*order));
        if (k) {
            na_story_shuffle(order, n, (uint64_t)k);
        }
        if (!(st = na_stories_new_opts(&so))) {
            err = NA_ERR_NOMEM;
            goto out;
        }
        na_stories_set_teacher(st, example_add, &e);
        for (size_t i = 0; i < n && !err; i++) {
            err = na_stories_assign_labelled(st, order[i].a, order[i].event, story,
                                             &missed);
        }
        na_stories_destroy(st);
        st = NULL;
        if (err || e.oom) {
            err = err ? err : NA_ERR_NOMEM;
            goto out;
        }
        char name[32];
        if (k) {
            snprintf(name, sizeof(name), "shuffle %zu", k);
        } else {
            snprintf(name, sizeof(name), "published");
        }
        json_array_append_new(orders, json_string(name));
    }
    if (!e.positives || e.positives == e.n) {
        snprintf(errstr, errstr_size,
                 "%zu examples, %zu of one event: need both kinds (more labelled events)",
                 e.n, e.positives);
        err = NA_ERR_INVALID;
        goto out;
    }
    if (!fit(&e, o->l2, m->w, &iters)) {
        snprintf(errstr, errstr_size, "the fit did not converge (inputs collinear?)");
        err = NA_ERR_INVALID;
        goto out;
    }
    /* The threshold: the most precise grouping among those within
     * o->f1_slack of the best F1 (precision first: F1 is flat over a
     * range of thresholds while precision still climbs). */
    if (o->evaluate) {
        double f1s[NA_TRAIN_THRESHOLDS], ps[NA_TRAIN_THRESHOLDS];
        double best_f1 = -1;
        size_t pick = 0;
        for (size_t k = 0; k < NA_TRAIN_THRESHOLDS; k++) {
            m->threshold = threshold_at(k);
            if ((err = o->evaluate(o->evaluate_ctx, m, &f1s[k], &ps[k]))) {
                goto out;
            }
            json_array_append_new(sweep,
                                  json_pack("[f, f, f]", m->threshold, f1s[k], ps[k]));
            best_f1 = f1s[k] > best_f1 ? f1s[k] : best_f1;
        }
        for (size_t k = 0; k < NA_TRAIN_THRESHOLDS; k++) {
            if (f1s[k] >= best_f1 - o->f1_slack &&
                (f1s[pick] < best_f1 - o->f1_slack || ps[k] >= ps[pick])) {
                pick = k;
            }
        }
        m->threshold = threshold_at(pick);
        json_object_set_new(info, "threshold_f1", json_real(f1s[pick]));
        json_object_set_new(info, "threshold_precision", json_real(ps[pick]));
    }
    json_object_set_new(info, "orders", orders);
    orders = NULL;
    json_object_set_new(info, "examples", json_integer((json_int_t)e.n));
    json_object_set_new(info, "positives", json_integer((json_int_t)e.positives));
    json_object_set_new(info, "positives_not_candidates",
                        json_integer((json_int_t)missed));
    json_object_set_new(info, "l2", json_real(o->l2));
    json_object_set_new(info, "newton_iterations", json_integer(iters));
    json_object_set_new(info, "threshold_sweep [threshold, f1, precision]", sweep);
    sweep = NULL;
    m->about = info;
    info = NULL;
    *out = m;
    m = NULL;
out:
    na_stories_destroy(st);
    na_story_model_destroy(m);
    json_decref(info);
    json_decref(orders);
    json_decref(sweep);
    free(order);
    free(e.x);
    free(e.y);
    return err;
}
