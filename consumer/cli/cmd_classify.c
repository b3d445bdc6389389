/*
 * newsalert-consumer classify / rules test: the rules engine from the
 * command line, for trying rules on articles and for rule regression tests.
 */
#include "cmd_classify.h"

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "input.h"
#include "newsalert/article.h"
#include "newsalert/hash.h"
#include "newsalert/limits.h"
#include "newsalert/util.h"
#include "rules.h"

#define DEFAULT_RULES "examples/rules.json"
#define EXIT_OK 0
#define EXIT_BAD 1
#define EXIT_USAGE 2

static const char classify_usage[] =
    "usage: newsalert-consumer classify [--rules FILE] [FILE..|-]\n"
    "\n"
    "Classify articles by the topic rules and print one JSON line per article:\n"
    "  {\"id\",\"title\",\"topics\":[{\"topic\",\"score\",\"threshold\",\n"
    "    \"evidence\":[{\"term\",\"matched\",\"field\",\"offset\"}],\"snippet\"}],\n"
    "   \"rules_version\"}\n"
    "\n"
    "Input (files, or stdin when none or '-'): one article per line, as\n"
    "article/v1 JSON; a line that does not start with '{' or '[' is plain text\n"
    "and is classified as the content of an article without a title (its id is\n"
    "the SHA-256 of the line). Blank lines are skipped, and a byte order mark\n"
    "before the first line.\n"
    "\n"
    "  --rules FILE   rules file (precedence: --rules > $NEWSALERT_RULES >\n"
    "                 " DEFAULT_RULES ")\n"
    "  -h, --help     this help\n"
    "\n"
    "Exit: 0 ok; 1 bad rules, an unreadable file or a bad line (reported on\n"
    "stderr with its line number; the other lines are still classified);\n"
    "2 bad usage.\n";

static const char rules_usage[] =
    "usage: newsalert-consumer rules test FILE [--rules FILE]\n"
    "\n"
    "Run rule test cases: FILE holds JSON lines (or one JSON array) of\n"
    "  {\"name\": \"...\", \"title\": \"...\", \"summary\": \"...\", \"text\": \"...\",\n"
    "   \"labels\": [\"topic\", ...]}\n"
    "(\"text\" is the content; other keys are ignored). Each case prints\n"
    "'ok' or 'FAIL' with the topics that differed and why; the last line is\n"
    "'N passed, M failed'.\n"
    "\n"
    "  --rules FILE   rules file (precedence: --rules > $NEWSALERT_RULES >\n"
    "                 " DEFAULT_RULES ")\n"
    "  -h, --help     this help\n"
    "\n"
    "Exit: 0 all passed; 1 a case failed, or bad rules or input; 2 bad usage.\n";

/* Options shared by both commands. */
struct opts {
    const char *rules;
    const char **files;
    size_t files_cnt;
    bool help;
};

/* @returns 0, or EXIT_USAGE after one stderr line. */
static int parse_opts(const char *cmd, int argc, char **argv, int first, struct opts *o) {
    bool dashdash = false;
    memset(o, 0, sizeof(*o));
    o->files = calloc((size_t)(argc > 0 ? argc : 1), sizeof(*o->files));
    if (!o->files) {
        fprintf(stderr, "newsalert-consumer %s: out of memory\n", cmd);
        return EXIT_BAD;
    }
    for (int i = first; i < argc; i++) {
        const char *arg = argv[i];
        if (!dashdash && (!strcmp(arg, "-h") || !strcmp(arg, "--help"))) {
            o->help = true;
        } else if (!dashdash && !strcmp(arg, "--rules")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "newsalert-consumer %s: --rules needs a FILE\n", cmd);
                return EXIT_USAGE;
            }
            o->rules = argv[++i];
        } else if (!dashdash && !strncmp(arg, "--rules=", 8)) {
            o->rules = arg + 8;
        } else if (!dashdash && !strcmp(arg, "--")) {
            dashdash = true;
        } else if (!dashdash && arg[0] == '-' && arg[1]) {
            fprintf(stderr, "newsalert-consumer %s: unknown option %s (see --help)\n",
                    cmd, arg);
            return EXIT_USAGE;
        } else {
            o->files[o->files_cnt++] = arg;
        }
    }
    if (!o->rules || !*o->rules) {
        const char *env = getenv("NEWSALERT_RULES");
        o->rules = env && *env ? env : DEFAULT_RULES;
    }
    return 0;
}

static na_rules_t *load_rules(const char *cmd, const char *path) {
    char errstr[1024] = "";
    na_rules_t *rules = NULL;
    if (na_rules_load_file(path, &rules, errstr, sizeof(errstr))) {
        fprintf(stderr, "newsalert-consumer %s: %s\n", cmd, errstr);
        return NULL;
    }
    return rules;
}

/* ---- classify ---- */

static json_t *match_to_json(const struct na_match *m) {
    json_t *ev = json_array();
    json_t *obj;
    for (size_t i = 0; ev && i < m->evidence_cnt; i++) {
        const struct na_evidence *e = &m->evidence[i];
        json_array_append_new(ev,
                              json_pack("{s:s, s:s, s:s, s:I}", "term", e->term,
                                        "matched", e->matched ? e->matched : "", "field",
                                        e->field, "offset", (json_int_t)e->offset));
    }
    obj = json_pack("{s:s, s:f, s:f, s:o, s:o}", "topic", m->topic, "score", m->score,
                    "threshold", m->threshold, "evidence", ev ? ev : json_array(),
                    "snippet", m->snippet ? json_string(m->snippet) : json_null());
    if (obj && m->parties_cnt) {
        json_object_set_new(obj, "parties", na_match_parties_json(m));
    }
    return obj;
}

/* @returns the JSON line for one classified article; free(). */
static char *result_line(const struct na_article *a, const struct na_classification *c,
                         const char *rules_version) {
    json_t *topics = json_array();
    json_t *root;
    char *out;
    for (size_t i = 0; topics && i < c->matches_cnt; i++) {
        json_array_append_new(topics, match_to_json(&c->matches[i]));
    }
    root = json_pack("{s:s, s:o, s:o, s:s}", "id", a->id, "title",
                     a->title ? json_string(a->title) : json_null(), "topics",
                     topics ? topics : json_array(), "rules_version", rules_version);
    if (!root) {
        return NULL;
    }
    out = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    json_decref(root);
    return out;
}

/* na_input_cb: classify one article and print its line. */
static int classify_one(void *ctx, const char *where, const json_t *obj,
                        struct na_article *a) {
    const na_rules_t *rules = ctx;
    struct na_classification c = {0};
    char *out = NULL;
    (void)obj;
    na_err_t err = na_rules_classify(rules, a, &c);
    if (!err && !(out = result_line(a, &c, na_rules_version(rules)))) {
        err = NA_ERR_NOMEM;
    }
    if (!err) {
        fputs(out, stdout);
        fputc('\n', stdout);
    } else {
        fprintf(stderr, "newsalert-consumer classify: %s: %s\n", where, na_err2str(err));
    }
    free(out);
    na_classification_cleanup(&c);
    return err ? 1 : 0;
}

int na_cmd_classify(int argc, char **argv) {
    struct opts o;
    na_rules_t *rules = NULL;
    struct na_buf line;
    const char *stdin_only[] = {"-"};
    int rc = parse_opts("classify", argc, argv, 1, &o);

    na_buf_init(&line);
    if (rc) {
        goto out;
    }
    if (o.help) {
        fputs(classify_usage, stdout);
        goto out;
    }
    rules = load_rules("classify", o.rules);
    if (!rules) {
        rc = EXIT_BAD;
        goto out;
    }
    if (!o.files_cnt) {
        o.files[0] = stdin_only[0];
        o.files_cnt = 1;
    }
    for (size_t f = 0; f < o.files_cnt; f++) {
        if (na_input_each("classify", o.files[f], NA_INPUT_PLAIN, classify_one, rules)) {
            rc = EXIT_BAD;
        }
    }
    if (fflush(stdout) || ferror(stdout)) {
        fprintf(stderr, "newsalert-consumer classify: write error: %s\n",
                strerror(errno));
        rc = EXIT_BAD;
    }
out:
    na_buf_cleanup(&line);
    na_rules_destroy(rules);
    free(o.files);
    return rc;
}

/* ---- rules test ---- */

static const char *opt_str(json_t *obj, const char *key) {
    json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Append " (term=matched@field, ...)" for up to 4 pieces of evidence. */
static void describe_evidence(struct na_buf *msg, const struct na_match *m) {
    na_buf_puts(msg, ": ");
    for (size_t i = 0; i < m->evidence_cnt && i < 4; i++) {
        const struct na_evidence *e = &m->evidence[i];
        na_buf_printf(msg, "%s%s=\"%s\"@%s", i ? ", " : "", e->term,
                      e->matched ? e->matched : "", e->field);
    }
    if (m->evidence_cnt > 4) {
        na_buf_printf(msg, ", +%zu", m->evidence_cnt - 4);
    }
}

/*
 * Run one case. @returns 0 passed, 1 failed; *bad set for invalid input.
 * The verdict line goes to stdout.
 */
static int run_case(const na_rules_t *rules, json_t *tc, const char *where) {
    struct na_article a;
    struct na_classification c = {0};
    struct na_buf msg;
    json_t *labels = json_object_get(tc, "labels");
    const char *name = NULL;
    char label[160];
    int failed = 0;
    size_t i;
    json_t *l;
    na_err_t err;

    na_article_init(&a);
    na_buf_init(&msg);
    if (json_is_object(tc)) {
        name = opt_str(tc, "name");
    }
    if (name) {
        snprintf(label, sizeof(label), "%s (%s)", name, where);
    } else {
        snprintf(label, sizeof(label), "%s", where);
    }
    if (!json_is_object(tc)) {
        na_buf_puts(&msg, "not a JSON object");
        failed = 1;
        goto out;
    }
    if (!json_is_array(labels)) {
        na_buf_puts(&msg, "\"labels\" (an array of topic names) is missing");
        failed = 1;
        goto out;
    }
    json_array_foreach(labels, i, l) {
        if (!json_is_string(l) || na_rules_topic_index(rules, json_string_value(l)) < 0) {
            na_buf_printf(&msg, "%slabel %s is not a topic of the rules",
                          failed ? "; " : "",
                          json_is_string(l) ? json_string_value(l) : "(not a string)");
            failed = 1;
        }
    }
    if (failed) {
        goto out;
    }
    a.title = na_strdup(opt_str(tc, "title"));
    a.summary = na_strdup(opt_str(tc, "summary"));
    a.content =
        na_strdup(opt_str(tc, "text") ? opt_str(tc, "text") : opt_str(tc, "content"));
    if ((err = na_rules_classify(rules, &a, &c))) {
        na_buf_printf(&msg, "classify failed: %s", na_err2str(err));
        failed = 1;
        goto out;
    }
    /* Unexpected topics: matched but not labelled. */
    for (size_t m = 0; m < c.matches_cnt; m++) {
        bool want = false;
        json_array_foreach(labels, i, l) {
            want = want || !strcmp(json_string_value(l), c.matches[m].topic);
        }
        if (!want) {
            na_buf_printf(&msg, "%sunexpected %s (score %g >= threshold %g",
                          failed ? "; " : "", c.matches[m].topic, c.matches[m].score,
                          c.matches[m].threshold);
            describe_evidence(&msg, &c.matches[m]);
            na_buf_puts(&msg, ")");
            failed = 1;
        }
    }
    /* Missing topics: labelled but not matched, and why. */
    json_array_foreach(labels, i, l) {
        const char *topic = json_string_value(l);
        bool got = false;
        struct na_rules_verdict v;
        for (size_t m = 0; m < c.matches_cnt; m++) {
            got = got || !strcmp(c.matches[m].topic, topic);
        }
        if (got) {
            continue;
        }
        if ((err = na_rules_explain(rules, &a, (size_t)na_rules_topic_index(rules, topic),
                                    &v))) {
            na_buf_printf(&msg, "%smissing %s (%s)", failed ? "; " : "", topic,
                          na_err2str(err));
        } else if (!v.query) {
            na_buf_printf(&msg, "%smissing %s (query not matched)", failed ? "; " : "",
                          topic);
        } else if (v.excluded) {
            na_buf_printf(&msg, "%smissing %s (excluded; score %g)", failed ? "; " : "",
                          topic, v.score);
        } else {
            na_buf_printf(&msg, "%smissing %s (score %g < threshold %g)",
                          failed ? "; " : "", topic, v.score, v.threshold);
        }
        failed = 1;
    }
out:
    if (failed) {
        printf("FAIL %s: %s\n", label, msg.data ? msg.data : "out of memory");
    } else {
        printf("ok   %s\n", label);
    }
    na_buf_cleanup(&msg);
    na_classification_cleanup(&c);
    na_article_cleanup(&a);
    return failed;
}

int na_cmd_rules(int argc, char **argv) {
    struct opts o = {0};
    na_rules_t *rules = NULL;
    char *buf = NULL;
    size_t len = 0;
    char errstr[1024] = "";
    size_t passed = 0;
    size_t failed = 0;
    int rc;

    if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        fputs(rules_usage, stdout);
        return EXIT_OK;
    }
    if (argc < 2 || strcmp(argv[1], "test")) {
        fprintf(stderr, "newsalert-consumer rules: expected 'rules test FILE' (see "
                        "--help)\n");
        return EXIT_USAGE;
    }
    rc = parse_opts("rules test", argc, argv, 2, &o);
    if (rc) {
        goto out;
    }
    if (o.help) {
        fputs(rules_usage, stdout);
        goto out;
    }
    if (o.files_cnt != 1) {
        fprintf(stderr, "newsalert-consumer rules test: expected one FILE of test cases "
                        "(see --help)\n");
        rc = EXIT_USAGE;
        goto out;
    }
    rules = load_rules("rules test", o.rules);
    if (!rules) {
        rc = EXIT_BAD;
        goto out;
    }
    if (na_read_file(o.files[0], NA_MAX_CONFIG_BYTES, &buf, &len, errstr,
                     sizeof(errstr))) {
        fprintf(stderr, "newsalert-consumer rules test: %s\n", errstr);
        rc = EXIT_BAD;
        goto out;
    }
    size_t bom = na_input_bom(buf, len);
    size_t start = bom + strspn(buf + bom, " \t\r\n");
    if (buf[start] == '[') {
        json_error_t jerr;
        json_t *arr = json_loadb(buf + bom, len - bom, JSON_REJECT_DUPLICATES, &jerr);
        size_t i;
        json_t *tc;
        if (!arr) {
            fprintf(stderr, "newsalert-consumer rules test: %s:%d:%d: %s\n", o.files[0],
                    jerr.line, jerr.column, jerr.text);
            rc = EXIT_BAD;
            goto out;
        }
        json_array_foreach(arr, i, tc) {
            char where[64];
            snprintf(where, sizeof(where), "case %zu", i + 1);
            if (run_case(rules, tc, where)) {
                failed++;
            } else {
                passed++;
            }
        }
        json_decref(arr);
    } else {
        size_t line_no = 0;
        char *p = buf + bom;
        while (p < buf + len) {
            char *nl = memchr(p, '\n', (size_t)(buf + len - p));
            size_t n = nl ? (size_t)(nl - p) : (size_t)(buf + len - p);
            char where[64];
            line_no++;
            snprintf(where, sizeof(where), "line %zu", line_no);
            if (strspn(p, " \t\r") < n) {
                json_error_t jerr;
                json_t *tc = json_loadb(p, n, JSON_REJECT_DUPLICATES, &jerr);
                if (!tc) {
                    printf("FAIL %s: JSON error at column %d: %s\n", where, jerr.column,
                           jerr.text);
                    failed++;
                } else {
                    if (run_case(rules, tc, where)) {
                        failed++;
                    } else {
                        passed++;
                    }
                    json_decref(tc);
                }
            }
            p += n + 1;
        }
    }
    printf("%zu passed, %zu failed\n", passed, failed);
    if (fflush(stdout) || ferror(stdout)) {
        fprintf(stderr, "newsalert-consumer rules test: write error\n");
        rc = EXIT_BAD;
    }
    if (failed) {
        rc = EXIT_BAD;
    }
out:
    free(buf);
    free(o.files);
    na_rules_destroy(rules);
    return rc;
}
