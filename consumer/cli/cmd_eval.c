/*
 * newsalert-consumer eval / stories: rules quality on labelled data, and
 * story grouping from the command line.
 */
#include "cmd_eval.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "newsalert/hash.h"
#include "newsalert/limits.h"
#include "newsalert/timeutil.h"
#include "newsalert/util.h"
#include "rules.h"
#include "rules_internal.h"
#include "story.h"

#define DEFAULT_RULES "examples/rules.json"
#define EXIT_OK 0
#define EXIT_BAD 1
#define EXIT_USAGE 2
/** Largest input file of these commands (bytes). */
#define NA_EVAL_MAX_INPUT (512u * 1024u * 1024u)

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
    "  -h, --help     this help\n";

static const char stories_usage[] =
    "usage: newsalert-consumer stories [--window DUR] [FILE..|-]\n"
    "\n"
    "Group articles into stories and print `id<TAB>story` per article, in\n"
    "input order. Input: JSON lines, article/v1 or \"id\", \"title\", \"text\"\n"
    "and optional \"published_at\" (RFC 3339 or Unix seconds); files, or stdin\n"
    "when none or '-'.\n"
    "\n"
    "  --window DUR   how long a story stays open after its newest article\n"
    "                 (e.g. 72h, 3d; default 3d)\n"
    "  -h, --help     this help\n";

static const char *str_field(const json_t *obj, const char *key) {
    json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static na_err_t dup_field(const json_t *obj, const char *key, char **out) {
    const char *s = str_field(obj, key);
    if (!s || *out) {
        return NA_OK;
    }
    *out = na_strdup(s);
    return *out ? NA_OK : NA_ERR_NOMEM;
}

na_err_t na_eval_article(const json_t *obj, struct na_article *a, char *errstr,
                         size_t errstr_size) {
    json_t *pub = json_object_get(obj, "published_at");
    const char *id = str_field(obj, "id");
    na_err_t err;

    if (!json_is_object(obj)) {
        snprintf(errstr, errstr_size, "not a JSON object");
        return NA_ERR_INVALID;
    }
    if ((err = dup_field(obj, "title", &a->title)) ||
        (err = dup_field(obj, "summary", &a->summary)) ||
        (err = dup_field(obj, "content", &a->content)) ||
        (err = dup_field(obj, "text", &a->content)) ||
        (err = dup_field(obj, "url", &a->url))) {
        return err;
    }
    if (json_is_string(pub)) {
        if (na_time_parse_rfc3339(json_string_value(pub), &a->published_at)) {
            snprintf(errstr, errstr_size, "published_at: not an RFC 3339 time");
            return NA_ERR_INVALID;
        }
    } else if (json_is_integer(pub)) {
        a->published_at = (int64_t)json_integer_value(pub);
    } else if (pub && !json_is_null(pub)) {
        snprintf(errstr, errstr_size, "published_at: not a time");
        return NA_ERR_INVALID;
    }
    if (id && *id) {
        if (strlen(id) > NA_SHA256_HEX_LEN) {
            snprintf(errstr, errstr_size, "id: longer than %d bytes", NA_SHA256_HEX_LEN);
            return NA_ERR_INVALID;
        }
        snprintf(a->id, sizeof(a->id), "%s", id);
    } else {
        const char *parts[] = {a->title ? a->title : "", a->summary ? a->summary : "",
                               a->content ? a->content : "", NULL};
        na_sha256_hex_parts(parts, a->id);
    }
    return NA_OK;
}

/* Calls fn for every non-blank line of @p path ("-": stdin).
 * @returns 0, or 1 when the file could not be read or fn returned 1. */
static int each_line(const char *cmd, const char *path,
                     int (*fn)(void *ctx, const char *where, json_t *obj), void *ctx) {
    char errstr[512] = "";
    char *buf = NULL;
    size_t len = 0;
    size_t line_no = 0;
    int bad = 0;

    if (na_read_file(path, NA_EVAL_MAX_INPUT, &buf, &len, errstr, sizeof(errstr))) {
        fprintf(stderr, "newsalert-consumer %s: %s\n", cmd, errstr);
        return 1;
    }
    for (size_t i = 0; i < len;) {
        const char *nl = memchr(buf + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - buf) : len;
        char where[600];
        json_error_t jerr;
        size_t k = i;
        line_no++;
        while (k < end && (buf[k] == ' ' || buf[k] == '\t' || buf[k] == '\r')) {
            k++;
        }
        snprintf(where, sizeof(where), "%s:%zu", path, line_no);
        if (k < end) {
            json_t *obj = json_loadb(buf + i, end - i, JSON_REJECT_DUPLICATES, &jerr);
            if (!obj) {
                fprintf(stderr, "newsalert-consumer %s: %s:%d: %s\n", cmd, where,
                        jerr.column, jerr.text);
                bad = 1;
            } else {
                bad |= fn(ctx, where, obj);
                json_decref(obj);
            }
        }
        i = end + 1;
    }
    free(buf);
    return bad;
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
    if (each_line("eval", data, eval_one, &ev)) {
        rc = EXIT_BAD;
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

int na_cmd_stories(int argc, char **argv) {
    int64_t window_ms = NA_STORY_WINDOW_MS_DEFAULT;
    const char **files = calloc((size_t)argc + 1, sizeof(*files));
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
            if (na_duration_parse_ms(argv[++i], &window_ms) || window_ms <= 0) {
                fprintf(stderr, "newsalert-consumer stories: bad --window %s\n", argv[i]);
                rc = EXIT_USAGE;
                goto out;
            }
        } else if (argv[i][0] == '-' && strcmp(argv[i], "-")) {
            fprintf(stderr, "newsalert-consumer stories: unknown option %s\n%s", argv[i],
                    stories_usage);
            rc = EXIT_USAGE;
            goto out;
        } else {
            files[nfiles++] = argv[i];
        }
    }
    if (!nfiles) {
        files[nfiles++] = "-";
    }
    if (!(st = na_stories_new(window_ms))) {
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
    free(files);
    return rc;
}
