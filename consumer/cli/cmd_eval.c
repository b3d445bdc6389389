/*
 * newsalert-consumer eval / stories: rules quality on labelled data, and
 * story grouping from the command line.
 */
#include "cmd_eval.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "input.h"
#include "newsalert/hash.h"
#include "newsalert/limits.h"
#include "newsalert/timeutil.h"
#include "newsalert/util.h"
#include "cmd_stories_train.h"
#include "rules.h"
#include "story.h"

#define DEFAULT_RULES "examples/rules.json"
#define EXIT_OK 0
#define EXIT_BAD 1
#define EXIT_USAGE 2
/** Largest input file of these commands (bytes). */

static const char eval_usage[] =
    "usage: newsalert-consumer eval --rules FILE [--json] DATA.jsonl\n"
    "\n"
    "Per-topic precision, recall and F1 (and tp/fp/fn) of the rules over\n"
    "labelled JSON lines: \"title\", \"text\" (or article/v1 \"summary\" and\n"
    "\"content\") and \"labels\" (a list of topic names); other fields are\n"
    "ignored. Text output lists the false negatives and positives by id.\n"
    "\n"
    "  --rules FILE   rules file (else $NEWSALERT_RULES, else " DEFAULT_RULES ")\n"
    "  --json         one JSON object:\n"
    "                 {\"topics\":{NAME:{\"precision\",\"recall\",\"f1\",\"tp\","
    "\"fp\",\"fn\"}},..}\n"
    "  -h, --help     this help\n"
    "\n"
    "Exit: 0 ok; 1 bad rules, an unreadable file or a bad line (named on stderr\n"
    "and left out: the figures cover the other lines); 2 bad usage.\n";

static const char stories_usage[] =
    "usage: newsalert-consumer stories [--window DUR] [--reorder DUR] [--model FILE]\n"
    "                                  [FILE..|-]\n"
    "       newsalert-consumer stories --eval DATA.jsonl [--json] [--explain]\n"
    "                                  [--split dev|heldout|all] [--shuffle SEED]\n"
    "                                  [--window DUR] [--model FILE]\n"
    "       newsalert-consumer stories --train DATA.jsonl --out FILE\n"
    "                                  [--split dev|heldout|all] [--window DUR]\n"
    "\n"
    "Group articles into stories and print `id<TAB>story` per article, in\n"
    "input order. Input: JSON lines, article/v1 or \"id\", \"title\", \"text\"\n"
    "and optional \"published_at\" (RFC 3339 or Unix seconds); files, or stdin\n"
    "when none or '-'.\n"
    "\n"
    "With --eval, group labelled lines (each also with an \"event\" key; lines\n"
    "of one event are reports of one real-world event) and print how far the\n"
    "stories agree with the events: counts, then B-cubed and pairwise\n"
    "precision, recall and F1 (docs/rules.md, \"Story grouping\").\n"
    "\n"
    "  --window DUR     an article dated more than DUR outside a story's span\n"
    "                   never joins it (e.g. 72h, 3d; default 3d)\n"
    "  --reorder DUR    close a story once the newest time seen is DUR past its\n"
    "                   window (how far out of order articles may come); default\n"
    "                   \"unlimited\": every story stays open (the input is a file)\n"
    "  --model FILE     the story model (default: the shipped one,\n"
    "                   data/story-model.json)\n"
    "  --eval FILE      labelled JSON lines to score the grouping on\n"
    "  --split NAME     only lines whose \"split\" is dev or heldout (default all)\n"
    "  --shuffle SEED   feed the lines in a random order drawn from SEED (an\n"
    "                   unsigned integer), as a replay of several partitions\n"
    "                   delivers them; default: published order\n"
    "  --json           one JSON object: {\"split\",\"order\",\"seed\",\"window_s\",\n"
    "                   \"articles\",\"events\",\"stories\",\"bcubed\":{\"precision\",\n"
    "                   \"recall\",\"f1\"},\"pairwise\":{..,\"tp\",\"fp\",\"fn\"}}\n"
    "  --explain        also list the stories that merge events and the events\n"
    "                   split over stories (text output)\n"
    "  --train FILE     fit the story model on labelled lines (as for --eval;\n"
    "                   use --split dev) in published order and 4 shuffled\n"
    "                   orders, and write it to --out FILE (docs/rules.md)\n"
    "  --out FILE       where --train writes the model ('-': stdout)\n"
    "  -h, --help       this help\n"
    "\n"
    "Exit status: 0 ok, 1 a bad line or file, 2 bad usage. A bad line is named\n"
    "on stderr and left out (--eval scores the other lines; --train writes no\n"
    "model).\n";

na_err_t na_eval_article(const json_t *obj, struct na_article *a, char *errstr,
                         size_t errstr_size) {
    return na_input_article(obj, a, errstr, errstr_size);
}

struct line_fn {
    int (*fn)(void *ctx, const char *where, json_t *obj);
    void *ctx;
};

static int line_adapter(void *vl, const char *where, const json_t *obj,
                        struct na_article *a) {
    struct line_fn *l = vl;
    (void)a;
    return l->fn(l->ctx, where, (json_t *)obj);
}

/* Calls fn for every article line of @p path ("-": stdin), read by the
 * subcommands' one reader (input.h). @returns 0; 1 when a line was bad or
 * fn returned 1 (the other lines are read); NA_INPUT_UNREAD when the file
 * could not be read. */
static int each_line(const char *cmd, const char *path,
                     int (*fn)(void *ctx, const char *where, json_t *obj), void *ctx) {
    struct line_fn l = {fn, ctx};
    return na_input_each(cmd, path, 0, line_adapter, &l);
}

/* ---- eval ---- */

struct tstat {
    size_t tp, fp, fn;
    struct na_buf fn_ids, fp_ids;
};

struct eval {
    const na_rules_t *rules;
    const char **names;
    struct tstat *st;
    size_t topics;
    size_t articles;
    bool failed;
};

static bool has_label(const json_t *labels, const char *name) {
    size_t i;
    json_t *v;
    json_array_foreach(labels, i, v) {
        if (json_is_string(v) && !strcmp(json_string_value(v), name)) {
            return true;
        }
    }
    return false;
}

static int eval_one(void *ctx, const char *where, json_t *obj) {
    struct eval *ev = ctx;
    struct na_article a;
    struct na_classification c = {0};
    char errstr[256] = "";
    json_t *labels = json_object_get(obj, "labels");
    int bad = 0;
    na_err_t err;

    na_article_init(&a);
    if (!json_is_array(labels)) {
        fprintf(stderr, "newsalert-consumer eval: %s: labels: not a list\n", where);
        bad = 1;
        goto out;
    }
    if ((err = na_eval_article(obj, &a, errstr, sizeof(errstr))) ||
        (err = na_rules_classify(ev->rules, &a, &c))) {
        fprintf(stderr, "newsalert-consumer eval: %s: %s\n", where,
                errstr[0] ? errstr : na_err2str(err));
        bad = 1;
        goto out;
    }
    ev->articles++;
    for (size_t t = 0; t < ev->topics; t++) {
        bool want = has_label(labels, ev->names[t]);
        bool got = false;
        for (size_t m = 0; m < c.matches_cnt; m++) {
            got = got || !strcmp(c.matches[m].topic, ev->names[t]);
        }
        struct tstat *s = &ev->st[t];
        if (want && got) {
            s->tp++;
        } else if (want) {
            s->fn++;
            na_buf_printf(&s->fn_ids, " %s", a.id);
        } else if (got) {
            s->fp++;
            na_buf_printf(&s->fp_ids, " %s", a.id);
        }
    }
out:
    na_classification_cleanup(&c);
    na_article_cleanup(&a);
    return bad;
}

static double ratio(size_t a, size_t b) {
    return b ? (double)a / (double)b : 0.0;
}

int na_cmd_eval(int argc, char **argv) {
    const char *rules_path = NULL;
    const char *data = NULL;
    bool as_json = false;
    char errstr[1024] = "";
    na_rules_t *rules = NULL;
    struct eval ev = {0};
    int rc = EXIT_OK;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(eval_usage, stdout);
            return EXIT_OK;
        } else if (!strcmp(argv[i], "--json")) {
            as_json = true;
        } else if (!strcmp(argv[i], "--rules") && i + 1 < argc) {
            rules_path = argv[++i];
        } else if (!strncmp(argv[i], "--rules=", 8)) {
            rules_path = argv[i] + 8;
        } else if (argv[i][0] == '-' && strcmp(argv[i], "-")) {
            fprintf(stderr, "newsalert-consumer eval: unknown option %s\n%s", argv[i],
                    eval_usage);
            return EXIT_USAGE;
        } else if (!data) {
            data = argv[i];
        } else {
            fprintf(stderr, "newsalert-consumer eval: one data file only\n%s",
                    eval_usage);
            return EXIT_USAGE;
        }
    }
    if (!data) {
        fprintf(stderr, "newsalert-consumer eval: no data file\n%s", eval_usage);
        return EXIT_USAGE;
    }
    if (!rules_path) {
        const char *env = getenv("NEWSALERT_RULES");
        rules_path = env && *env ? env : DEFAULT_RULES;
    }
    if (na_rules_load_file(rules_path, &rules, errstr, sizeof(errstr))) {
        fprintf(stderr, "newsalert-consumer eval: %s\n", errstr);
        return EXIT_BAD;
    }
    ev.rules = rules;
    ev.topics = na_rules_topic_count(rules);
    ev.names = calloc(ev.topics + 1, sizeof(*ev.names));
    ev.st = calloc(ev.topics + 1, sizeof(*ev.st));
    if (!ev.names || !ev.st) {
        fprintf(stderr, "newsalert-consumer eval: out of memory\n");
        rc = EXIT_BAD;
        goto out;
    }
    for (size_t t = 0; t < ev.topics; t++) {
        ev.names[t] = na_rules_topic_name(rules, t);
        na_buf_init(&ev.st[t].fn_ids);
        na_buf_init(&ev.st[t].fp_ids);
    }
    /* A bad line is named on stderr and left out of the figures, which
     * cover the other lines (exit 1); an unread file gives none. */
    int lines = each_line("eval", data, eval_one, &ev);
    if (lines) {
        rc = EXIT_BAD;
    }
    if (lines == NA_INPUT_UNREAD) {
        goto out;
    }
    json_t *root = json_object();
    json_t *topics = json_object();
    for (size_t t = 0; t < ev.topics; t++) {
        const struct tstat *s = &ev.st[t];
        double p = ratio(s->tp, s->tp + s->fp);
        double r = ratio(s->tp, s->tp + s->fn);
        double f1 = p + r > 0 ? 2 * p * r / (p + r) : 0.0;
        if (as_json) {
            json_object_set_new(topics, ev.names[t],
                                json_pack("{s:f, s:f, s:f, s:I, s:I, s:I}", "precision",
                                          p, "recall", r, "f1", f1, "tp",
                                          (json_int_t)s->tp, "fp", (json_int_t)s->fp,
                                          "fn", (json_int_t)s->fn));
        } else {
            printf("%-20s precision %.3f  recall %.3f  f1 %.3f  tp %zu  fp %zu  fn %zu\n",
                   ev.names[t], p, r, f1, s->tp, s->fp, s->fn);
            if (s->fn) {
                printf("  fn:%s\n", s->fn_ids.data);
            }
            if (s->fp) {
                printf("  fp:%s\n", s->fp_ids.data);
            }
        }
    }
    if (as_json) {
        json_object_set_new(root, "topics", topics);
        json_object_set_new(root, "articles", json_integer((json_int_t)ev.articles));
        json_object_set_new(root, "rules_version", json_string(na_rules_version(rules)));
        char *out =
            json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
        if (out) {
            puts(out);
        }
        free(out);
    } else {
        json_decref(topics);
        printf("%zu articles, rules %s\n", ev.articles, na_rules_version(rules));
    }
    json_decref(root);
out:
    for (size_t t = 0; ev.st && t < ev.topics; t++) {
        na_buf_cleanup(&ev.st[t].fn_ids);
        na_buf_cleanup(&ev.st[t].fp_ids);
    }
    free(ev.st);
    free(ev.names);
    na_rules_destroy(rules);
    return rc;
}

/* ---- stories ---- */

static int story_one(void *ctx, const char *where, json_t *obj) {
    na_stories_t *st = ctx;
    struct na_article a;
    char errstr[256] = "";
    char story[NA_SHA256_HEX_LEN + 1];
    int bad = 0;
    na_err_t err;

    na_article_init(&a);
    if ((err = na_eval_article(obj, &a, errstr, sizeof(errstr))) ||
        (err = na_stories_assign(st, &a, story, NULL))) {
        fprintf(stderr, "newsalert-consumer stories: %s: %s\n", where,
                errstr[0] ? errstr : na_err2str(err));
        bad = 1;
    } else {
        printf("%s\t%s\n", a.id, story);
    }
    na_article_cleanup(&a);
    return bad;
}

/* ---- stories --eval: scoring a clustering ---- */

/* One item with its reference and found cluster (and where it sits). */
struct cell {
    size_t gold, pred, idx;
};

static int cmp_gold_pred(const void *x, const void *y) {
    const struct cell *a = x, *b = y;
    if (a->gold != b->gold) {
        return a->gold < b->gold ? -1 : 1;
    }
    if (a->pred != b->pred) {
        return a->pred < b->pred ? -1 : 1;
    }
    return 0;
}

static int cmp_pred(const void *x, const void *y) {
    const struct cell *a = x, *b = y;
    return a->pred < b->pred ? -1 : a->pred > b->pred;
}

static double share(uint64_t a, uint64_t b) {
    return b ? (double)a / (double)b : 1.0;
}

static double f1_of(double p, double r) {
    return p + r > 0 ? 2 * p * r / (p + r) : 0.0;
}

na_err_t na_cluster_score(const size_t *gold, const size_t *pred, size_t n,
                          struct na_cluster_scores *out) {
    struct cell *c = NULL;
    size_t *gsize = NULL, *psize = NULL, *jsize = NULL;
    double bp = 0, br = 0;
    uint64_t tp2 = 0, pp2 = 0, gp2 = 0; /* twice the pair counts */
    na_err_t err = NA_OK;

    memset(out, 0, sizeof(*out));
    if (!n) {
        return NA_ERR_INVALID;
    }
    c = calloc(n, sizeof(*c));
    gsize = calloc(n, sizeof(*gsize));
    psize = calloc(n, sizeof(*psize));
    jsize = calloc(n, sizeof(*jsize));
    if (!c || !gsize || !psize || !jsize) {
        err = NA_ERR_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        c[i] = (struct cell){gold[i], pred[i], i};
    }
    /* Runs of equal gold are the reference clusters; runs of equal (gold,
     * pred) inside them are the cells of the contingency table. */
    qsort(c, n, sizeof(*c), cmp_gold_pred);
    for (size_t i = 0, j; i < n; i = j) {
        for (j = i; j < n && c[j].gold == c[i].gold; j++) {
        }
        out->gold_clusters++;
        for (size_t k = i; k < j; k++) {
            gsize[c[k].idx] = j - i;
        }
        for (size_t k = i, l; k < j; k = l) {
            for (l = k; l < j && c[l].pred == c[k].pred; l++) {
            }
            for (size_t m = k; m < l; m++) {
                jsize[c[m].idx] = l - k;
            }
        }
    }
    qsort(c, n, sizeof(*c), cmp_pred);
    for (size_t i = 0, j; i < n; i = j) {
        for (j = i; j < n && c[j].pred == c[i].pred; j++) {
        }
        out->pred_clusters++;
        for (size_t k = i; k < j; k++) {
            psize[c[k].idx] = j - i;
        }
    }
    for (size_t i = 0; i < n; i++) {
        bp += (double)jsize[i] / (double)psize[i];
        br += (double)jsize[i] / (double)gsize[i];
        tp2 += jsize[i] - 1;
        pp2 += psize[i] - 1;
        gp2 += gsize[i] - 1;
    }
    out->items = n;
    out->bcubed_precision = bp / (double)n;
    out->bcubed_recall = br / (double)n;
    out->bcubed_f1 = f1_of(out->bcubed_precision, out->bcubed_recall);
    out->pair_tp = tp2 / 2;
    out->pair_fp = (pp2 - tp2) / 2;
    out->pair_fn = (gp2 - tp2) / 2;
    out->pair_precision = share(out->pair_tp, out->pair_tp + out->pair_fp);
    out->pair_recall = share(out->pair_tp, out->pair_tp + out->pair_fn);
    out->pair_f1 = f1_of(out->pair_precision, out->pair_recall);
out:
    free(c);
    free(gsize);
    free(psize);
    free(jsize);
    return err;
}

/* ---- stories --eval: the command ---- */

/* A labelled line: the article and the key of its event. */
struct labelled {
    struct na_article a;
    char *event;
    size_t line; /* input order, to keep sorting stable */
};

struct story_eval {
    struct labelled *items;
    size_t n, cap;
    const char *split; /* NULL: all */
};

static int eval_collect(void *ctx, const char *where, json_t *obj) {
    struct story_eval *ev = ctx;
    char errstr[256] = "";
    const char *event = json_string_value(json_object_get(obj, "event"));
    json_t *split = json_is_object(obj) ? json_object_get(obj, "split") : NULL;
    struct labelled *it;
    na_err_t err;

    if (!json_is_object(obj)) {
        fprintf(stderr, "newsalert-consumer stories: %s: not a JSON object\n", where);
        return 1;
    }
    if (!event || !*event) {
        fprintf(stderr,
                "newsalert-consumer stories: %s: event: missing or not a string\n",
                where);
        return 1;
    }
    if (split &&
        (!json_is_string(split) || (strcmp(json_string_value(split), "dev") &&
                                    strcmp(json_string_value(split), "heldout")))) {
        fprintf(stderr,
                "newsalert-consumer stories: %s: split: not \"dev\" or \"heldout\"\n",
                where);
        return 1;
    }
    if (ev->split && (!split || strcmp(json_string_value(split), ev->split))) {
        return 0;
    }
    if (ev->n == ev->cap) {
        size_t cap = ev->cap ? 2 * ev->cap : 256;
        struct labelled *items = realloc(ev->items, cap * sizeof(*items));
        if (!items) {
            fprintf(stderr, "newsalert-consumer stories: out of memory\n");
            return 1;
        }
        ev->items = items;
        ev->cap = cap;
    }
    it = &ev->items[ev->n];
    na_article_init(&it->a);
    it->line = ev->n;
    it->event = na_strdup(event);
    err = it->event ? na_eval_article(obj, &it->a, errstr, sizeof(errstr)) : NA_ERR_NOMEM;
    if (err) {
        fprintf(stderr, "newsalert-consumer stories: %s: %s\n", where,
                errstr[0] ? errstr : na_err2str(err));
        na_article_cleanup(&it->a);
        free(it->event);
        return 1;
    }
    ev->n++;
    return 0;
}

static int cmp_published(const void *x, const void *y) {
    const struct labelled *a = x, *b = y;
    if (a->a.published_at != b->a.published_at) {
        return a->a.published_at < b->a.published_at ? -1 : 1;
    }
    return a->line < b->line ? -1 : a->line > b->line;
}

static uint64_t splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* A string and the item it belongs to, to number equal strings alike. */
struct keyed {
    const char *key;
    size_t idx;
};

static int cmp_keyed(const void *x, const void *y) {
    const struct keyed *a = x, *b = y;
    int c = strcmp(a->key, b->key);
    return c ? c : (a->idx < b->idx ? -1 : a->idx > b->idx);
}

na_err_t na_eval_number_keys(const char *const *keys, size_t n, size_t *labels) {
    struct keyed *k = calloc(n ? n : 1, sizeof(*k));
    size_t label = 0;

    if (!k) {
        return NA_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        k[i] = (struct keyed){keys[i], i};
    }
    qsort(k, n, sizeof(*k), cmp_keyed);
    for (size_t i = 0; i < n; i++) {
        if (i && strcmp(k[i].key, k[i - 1].key)) {
            label++;
        }
        labels[k[i].idx] = label;
    }
    free(k);
    return NA_OK;
}

static int cmp_pred_gold(const void *x, const void *y) {
    const struct cell *a = x, *b = y;
    if (a->pred != b->pred) {
        return a->pred < b->pred ? -1 : 1;
    }
    return a->gold < b->gold ? -1 : a->gold > b->gold;
}

/* --explain: "split" lines for the events spread over several stories,
 * then "merged" lines for the stories that hold several events; each part
 * as NAME(REPORTS), stories by the first 12 digits of their id. */
static void explain(const struct story_eval *ev, const size_t *gold, const size_t *pred,
                    char (*story)[NA_SHA256_HEX_LEN + 1]) {
    struct cell *c = calloc(ev->n, sizeof(*c));

    if (!c) {
        fprintf(stderr, "newsalert-consumer stories: out of memory (--explain)\n");
        return;
    }
    for (size_t i = 0; i < ev->n; i++) {
        c[i] = (struct cell){gold[i], pred[i], i};
    }
    for (int merges = 0; merges < 2; merges++) {
        qsort(c, ev->n, sizeof(*c), merges ? cmp_pred_gold : cmp_gold_pred);
        for (size_t i = 0, j; i < ev->n; i = j) {
            size_t parts = 1;
            for (j = i + 1;
                 j < ev->n && (merges ? c[j].pred == c[i].pred : c[j].gold == c[i].gold);
                 j++) {
                parts += merges ? c[j].gold != c[j - 1].gold : c[j].pred != c[j - 1].pred;
            }
            if (parts < 2) {
                continue;
            }
            if (merges) {
                printf("merged  story %.12s:", story[c[i].idx]);
            } else {
                printf("split   %s:", ev->items[c[i].idx].event);
            }
            for (size_t k = i, l; k < j; k = l) {
                for (l = k + 1;
                     l < j && (merges ? c[l].gold == c[k].gold : c[l].pred == c[k].pred);
                     l++) {
                }
                if (merges) {
                    printf(" %s(%zu)", ev->items[c[k].idx].event, l - k);
                } else {
                    printf(" %.12s(%zu)", story[c[k].idx], l - k);
                }
            }
            printf("\n");
        }
    }
    free(c);
}

struct eval_opts {
    const char *data;
    const char *split; /* NULL: all */
    bool as_json, shuffle, explain;
    uint64_t seed;
    int64_t window_ms;
    struct na_stories_opts so; /* window, reorder allowance and model */
    const char *train_out;     /* --train: the model file to write */
};

/* Shuffled orders --train fits on, besides the published one. */
#define NA_TRAIN_SHUFFLES 4

/* --train: fit the model on the collected lines (published order). */
static int stories_train(const struct eval_opts *o, const struct story_eval *ev) {
    struct na_story_labelled *items = calloc(ev->n + 1, sizeof(*items));
    struct na_stories_train_cli to = {o->data, o->split, o->train_out, o->window_ms,
                                      NA_TRAIN_SHUFFLES};
    int rc;
    if (!items) {
        fprintf(stderr, "newsalert-consumer stories: out of memory\n");
        return EXIT_BAD;
    }
    for (size_t i = 0; i < ev->n; i++) {
        items[i] = (struct na_story_labelled){&ev->items[i].a, ev->items[i].event};
    }
    rc = na_stories_train_run(items, ev->n, &to) ? EXIT_BAD : EXIT_OK;
    free(items);
    return rc;
}

static int stories_eval(const struct eval_opts *o) {
    struct story_eval ev = {.split = o->split};
    na_stories_t *st = NULL;
    char(*story)[NA_SHA256_HEX_LEN + 1] = NULL;
    const char **keys = NULL;
    size_t *gold = NULL, *pred = NULL;
    struct na_cluster_scores sc;
    int rc = EXIT_OK;
    na_err_t err;

    /* Bad lines are named and left out (exit 1); --train fits no model on
     * a file with any, an unread file gives nothing. */
    int lines = each_line("stories", o->data, eval_collect, &ev);
    if (lines) {
        rc = EXIT_BAD;
    }
    if (lines == NA_INPUT_UNREAD || (lines && o->train_out)) {
        goto out;
    }
    if (!ev.n) {
        fprintf(stderr, "newsalert-consumer stories: %s: no labelled lines%s%s\n",
                o->data, o->split ? " in split " : "", o->split ? o->split : "");
        rc = EXIT_BAD;
        goto out;
    }
    /* Published order (stable); a shuffle starts from it, so the order
     * depends on the lines and the seed, not on the file's order. */
    qsort(ev.items, ev.n, sizeof(*ev.items), cmp_published);
    if (o->train_out) {
        rc = stories_train(o, &ev);
        goto out;
    }
    if (o->shuffle) {
        uint64_t state = o->seed;
        for (size_t i = ev.n - 1; i > 0; i--) {
            size_t j = (size_t)(splitmix64(&state) % (uint64_t)(i + 1));
            struct labelled t = ev.items[i];
            ev.items[i] = ev.items[j];
            ev.items[j] = t;
        }
    }
    story = calloc(ev.n, sizeof(*story));
    keys = calloc(ev.n, sizeof(*keys));
    gold = calloc(ev.n, sizeof(*gold));
    pred = calloc(ev.n, sizeof(*pred));
    st = na_stories_new_opts(&o->so);
    if (!story || !keys || !gold || !pred || !st) {
        fprintf(stderr, "newsalert-consumer stories: out of memory\n");
        rc = EXIT_BAD;
        goto out;
    }
    for (size_t i = 0; i < ev.n; i++) {
        if ((err = na_stories_assign(st, &ev.items[i].a, story[i], NULL))) {
            fprintf(stderr, "newsalert-consumer stories: %s: %s\n", ev.items[i].a.id,
                    na_err2str(err));
            rc = EXIT_BAD;
            goto out;
        }
    }
    for (size_t i = 0; i < ev.n; i++) {
        keys[i] = ev.items[i].event;
    }
    if ((err = na_eval_number_keys(keys, ev.n, gold))) {
        goto nomem;
    }
    for (size_t i = 0; i < ev.n; i++) {
        keys[i] = story[i];
    }
    if ((err = na_eval_number_keys(keys, ev.n, pred)) ||
        (err = na_cluster_score(gold, pred, ev.n, &sc))) {
        goto nomem;
    }
    if (o->as_json) {
        json_t *root = json_pack(
            "{s:s, s:s, s:o, s:I, s:I, s:I, s:I, s:{s:f, s:f, s:f}, s:{s:f, s:f, s:f, "
            "s:I, s:I, "
            "s:I}}",
            "split", o->split ? o->split : "all", "order",
            o->shuffle ? "shuffled" : "published", "seed",
            o->shuffle ? json_integer((json_int_t)o->seed) : json_null(), "window_s",
            (json_int_t)(o->window_ms / 1000), "articles", (json_int_t)sc.items, "events",
            (json_int_t)sc.gold_clusters, "stories", (json_int_t)sc.pred_clusters,
            "bcubed", "precision", sc.bcubed_precision, "recall", sc.bcubed_recall, "f1",
            sc.bcubed_f1, "pairwise", "precision", sc.pair_precision, "recall",
            sc.pair_recall, "f1", sc.pair_f1, "tp", (json_int_t)sc.pair_tp, "fp",
            (json_int_t)sc.pair_fp, "fn", (json_int_t)sc.pair_fn);
        char *text = root ? json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER |
                                                 JSON_REAL_PRECISION(6))
                          : NULL;
        json_decref(root);
        if (!text) {
            err = NA_ERR_NOMEM;
            goto nomem;
        }
        puts(text);
        free(text);
    } else {
        printf("articles %zu  events %zu  stories %zu  (split %s, %s order", sc.items,
               sc.gold_clusters, sc.pred_clusters, o->split ? o->split : "all",
               o->shuffle ? "shuffled" : "published");
        if (o->shuffle) {
            printf(" seed %" PRIu64, o->seed);
        }
        printf(", window %gh)\n", (double)o->window_ms / 3600000.0);
        printf("b-cubed   precision %.3f  recall %.3f  f1 %.3f\n", sc.bcubed_precision,
               sc.bcubed_recall, sc.bcubed_f1);
        printf("pairwise  precision %.3f  recall %.3f  f1 %.3f  tp %" PRIu64
               "  fp %" PRIu64 "  fn %" PRIu64 "\n",
               sc.pair_precision, sc.pair_recall, sc.pair_f1, sc.pair_tp, sc.pair_fp,
               sc.pair_fn);
        if (o->explain) {
            explain(&ev, gold, pred, story);
        }
    }
    goto out;
nomem:
    fprintf(stderr, "newsalert-consumer stories: %s\n", na_err2str(err));
    rc = EXIT_BAD;
out:
    for (size_t i = 0; i < ev.n; i++) {
        na_article_cleanup(&ev.items[i].a);
        free(ev.items[i].event);
    }
    free(ev.items);
    free(story);
    free(keys);
    free(gold);
    free(pred);
    na_stories_destroy(st);
    return rc;
}

/* Parses SEED: a decimal unsigned 64-bit integer. */
static bool parse_seed(const char *s, uint64_t *seed) {
    char *end = NULL;
    unsigned long long v;

    if (!*s || *s == '-' || *s == '+') {
        return false;
    }
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || *end) {
        return false;
    }
    *seed = (uint64_t)v;
    return true;
}

int na_cmd_stories(int argc, char **argv) {
    struct eval_opts o = {.window_ms = NA_STORY_WINDOW_MS_DEFAULT,
                          .so = {.reorder_ms = -1, .reorder_set = true}};
    const char **files = calloc((size_t)argc + 1, sizeof(*files));
    const char *only_with_eval = NULL;
    const char *model_path = NULL;
    na_story_model_t *model = NULL;
    char errstr[512];
    size_t nfiles = 0;
    na_stories_t *st = NULL;
    int rc = EXIT_OK;

    if (!files) {
        fprintf(stderr, "newsalert-consumer stories: out of memory\n");
        return EXIT_BAD;
    }
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(stories_usage, stdout);
            goto out;
        } else if (!strcmp(argv[i], "--window") && i + 1 < argc) {
            if (na_duration_parse_ms(argv[++i], &o.window_ms) || o.window_ms <= 0) {
                fprintf(stderr, "newsalert-consumer stories: bad --window %s\n", argv[i]);
                rc = EXIT_USAGE;
                goto out;
            }
        } else if (!strcmp(argv[i], "--reorder") && i + 1 < argc) {
            i++;
            if (!strcmp(argv[i], "unlimited")) {
                o.so.reorder_ms = -1;
            } else if (na_duration_parse_ms(argv[i], &o.so.reorder_ms) ||
                       o.so.reorder_ms < 0) {
                fprintf(stderr, "newsalert-consumer stories: bad --reorder %s\n",
                        argv[i]);
                rc = EXIT_USAGE;
                goto out;
            }
        } else if (!strcmp(argv[i], "--model") && i + 1 < argc) {
            model_path = argv[++i];
        } else if (!strcmp(argv[i], "--eval") && i + 1 < argc) {
            o.data = argv[++i];
        } else if (!strcmp(argv[i], "--train") && i + 1 < argc) {
            o.data = argv[++i];
            o.train_out = "";
        } else if (!strcmp(argv[i], "--out") && i + 1 < argc) {
            only_with_eval = argv[i];
            o.train_out = argv[++i];
        } else if (!strcmp(argv[i], "--split") && i + 1 < argc) {
            only_with_eval = argv[i];
            o.split = argv[++i];
            if (!strcmp(o.split, "all")) {
                o.split = NULL;
            } else if (strcmp(o.split, "dev") && strcmp(o.split, "heldout")) {
                fprintf(stderr,
                        "newsalert-consumer stories: bad --split %s (dev, heldout or "
                        "all)\n",
                        o.split);
                rc = EXIT_USAGE;
                goto out;
            }
        } else if (!strcmp(argv[i], "--shuffle") && i + 1 < argc) {
            only_with_eval = argv[i];
            o.shuffle = true;
            if (!parse_seed(argv[++i], &o.seed)) {
                fprintf(stderr,
                        "newsalert-consumer stories: bad --shuffle %s (an unsigned "
                        "integer)\n",
                        argv[i]);
                rc = EXIT_USAGE;
                goto out;
            }
        } else if (!strcmp(argv[i], "--json") || !strcmp(argv[i], "--explain")) {
            only_with_eval = argv[i];
            o.as_json = o.as_json || !strcmp(argv[i], "--json");
            o.explain = o.explain || !strcmp(argv[i], "--explain");
        } else if (argv[i][0] == '-' && strcmp(argv[i], "-")) {
            fprintf(stderr, "newsalert-consumer stories: unknown option %s\n%s", argv[i],
                    stories_usage);
            rc = EXIT_USAGE;
            goto out;
        } else {
            files[nfiles++] = argv[i];
        }
    }
    o.so.window_ms = o.window_ms;
    if (model_path) {
        if (na_story_model_load(model_path, &model, errstr, sizeof(errstr))) {
            fprintf(stderr, "newsalert-consumer stories: --model %s\n", errstr);
            rc = EXIT_BAD;
            goto out;
        }
        o.so.model = model;
    }
    if (o.train_out && (!o.data || !*o.train_out)) {
        fprintf(stderr, "newsalert-consumer stories: --train and --out go together\n%s",
                stories_usage);
        rc = EXIT_USAGE;
        goto out;
    }
    if (o.data) {
        if (nfiles) {
            fprintf(stderr,
                    "newsalert-consumer stories: --eval takes its data file only\n%s",
                    stories_usage);
            rc = EXIT_USAGE;
            goto out;
        }
        rc = stories_eval(&o);
        goto out;
    }
    if (only_with_eval) {
        fprintf(stderr, "newsalert-consumer stories: %s needs --eval\n%s", only_with_eval,
                stories_usage);
        rc = EXIT_USAGE;
        goto out;
    }
    if (!nfiles) {
        files[nfiles++] = "-";
    }
    if (!(st = na_stories_new_opts(&o.so))) {
        fprintf(stderr, "newsalert-consumer stories: out of memory\n");
        rc = EXIT_BAD;
        goto out;
    }
    for (size_t f = 0; f < nfiles; f++) {
        if (each_line("stories", files[f], story_one, st)) {
            rc = EXIT_BAD;
        }
    }
out:
    na_stories_destroy(st);
    na_story_model_destroy(model);
    free(files);
    return rc;
}
