/*
 * Rules engine: text folding, the query language and its errors, matching
 * and scoring, evidence and snippets, hostile input, concurrency, the
 * shipped examples/rules.json, and the classify / rules test commands.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmd_classify.h"
#include "feed.h"
#include "newsalert/hash.h"
#include "newsalert/limits.h"
#include "newsalert/util.h"
#include "rules.h"
#include "rules_match.h"

/* ---- helpers ---- */

static const char *src_dir(void) {
    const char *d = getenv("NA_SOURCE_DIR");
    return d && *d ? d : ".";
}

static void src_path(char *buf, size_t size, const char *rel) {
    snprintf(buf, size, "%s/%s", src_dir(), rel);
}

/* Rules of one topic "t" from query, exclude (or NULL) and threshold. */
static char *topic_json(const char *query, const char *exclude, double threshold) {
    json_t *topic =
        json_pack("{s:s, s:s, s:f}", "name", "t", "query", query, "threshold", threshold);
    if (exclude) {
        json_object_set_new(topic, "exclude", json_string(exclude));
    }
    json_t *root = json_pack("{s:[o]}", "topics", topic);
    char *s = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    assert_non_null(s);
    return s;
}

static na_rules_t *load_ok(const char *json) {
    na_rules_t *rules = NULL;
    char errstr[512] = "";
    na_err_t err = na_rules_load_buf(json, strlen(json), "rules.json", &rules, errstr,
                                     sizeof(errstr));
    if (err) {
        print_error("unexpected rules error: %s\n", errstr);
    }
    assert_int_equal(err, NA_OK);
    assert_non_null(rules);
    return rules;
}

static na_rules_t *load_topic(const char *query, const char *exclude, double threshold) {
    char *json = topic_json(query, exclude, threshold);
    na_rules_t *rules = load_ok(json);
    free(json);
    return rules;
}

/* Expect a load error; errstr must contain every NULL-terminated needle. */
static void load_fails(const char *json, na_err_t want, ...) {
    na_rules_t *rules = NULL;
    char errstr[512] = "";
    va_list ap;
    const char *needle;
    na_err_t err = na_rules_load_buf(json, strlen(json), "rules.json", &rules, errstr,
                                     sizeof(errstr));
    assert_null(rules);
    if (err != want) {
        print_error("got %s (%s), want %s\n", na_err2str(err), errstr, na_err2str(want));
    }
    assert_int_equal(err, want);
    assert_null(strchr(errstr, '\n'));
    va_start(ap, want);
    while ((needle = va_arg(ap, const char *))) {
        if (!strstr(errstr, needle)) {
            print_error("error \"%s\" lacks \"%s\"\n", errstr, needle);
            fail();
        }
    }
    va_end(ap);
}

static void query_fails(const char *query, const char *msg, const char *col) {
    char *json = topic_json(query, NULL, 1);
    load_fails(json, NA_ERR_CONFIG, "rules.json:1:", "topic \"t\"", col, msg, NULL);
    free(json);
}

static void article(struct na_article *a, const char *title, const char *summary,
                    const char *content) {
    na_article_init(a);
    a->title = na_strdup(title);
    a->summary = na_strdup(summary);
    a->content = na_strdup(content);
}

/* Classify; @returns the score of topic "t", or -1 when it did not match. */
static double score_of(const na_rules_t *rules, const char *title, const char *summary,
                       const char *content) {
    struct na_article a;
    struct na_classification c;
    double score = -1;
    article(&a, title, summary, content);
    assert_int_equal(na_rules_classify(rules, &a, &c), NA_OK);
    for (size_t i = 0; i < c.matches_cnt; i++) {
        if (!strcmp(c.matches[i].topic, "t")) {
            score = c.matches[i].score;
        }
    }
    na_classification_cleanup(&c);
    na_article_cleanup(&a);
    return score;
}

static bool matches(const char *query, const char *title, const char *content) {
    na_rules_t *rules = load_topic(query, NULL, 0);
    double s = score_of(rules, title, NULL, content);
    na_rules_destroy(rules);
    return s >= 0;
}

static void assert_score(double got, double want) {
    if (got < want - 1e-9 || got > want + 1e-9) {
        print_error("score %g, want %g\n", got, want);
        fail();
    }
}

/* ---- text ---- */

static void fold_all(const char *text, char out[][80], size_t max, size_t *cnt) {
    struct na_rtoks t;
    na_rtoks_init(&t);
    t.split_decimals = true;
    assert_int_equal(na_rules_tokenize(text, strlen(text), &t), NA_OK);
    *cnt = 0;
    for (size_t i = 0; i < t.cnt && *cnt < max; i++) {
        size_t n = na_rtok_stem(&t, &t.v[i], out[*cnt]);
        out[*cnt][n] = '\0';
        (*cnt)++;
    }
    na_rtoks_cleanup(&t);
}

static void test_fold_case_and_accents(void **state) {
    (void)state;
    char w[16][80];
    size_t n;
    fold_all("CAFÉ Ünïcode Łódź Øresund Straße ÆSIR œuvre Şişli Čapek İzmir façade", w,
             16, &n);
    assert_int_equal(n, 11);
    assert_string_equal(w[0], "cafe");
    assert_string_equal(w[1], "unicode");
    assert_string_equal(w[2], "lodz");
    assert_string_equal(w[3], "oresund");
    assert_string_equal(w[4], "strasse");
    assert_string_equal(w[5], "aesir");
    assert_string_equal(w[6], "oeuvre");
    assert_string_equal(w[7], "sisli");
    assert_string_equal(w[8], "capek");
    assert_string_equal(w[9], "izmir");
    assert_string_equal(w[10], "facade");
    /* decomposed accents (e + U+0301) and Greek / Cyrillic capitals */
    fold_all(
        "Cafe\xcc\x81 \xce\x91\xce\x98\xce\x97\xce\x9d\xce\x91 \xd0\x9c\xd0\x98\xd0\xa0",
        w, 16, &n);
    assert_int_equal(n, 3);
    assert_string_equal(w[0], "cafe");
    assert_string_equal(w[1], "\xce\xb1\xce\xb8\xce\xb7\xce\xbd\xce\xb1");
    assert_string_equal(w[2], "\xd0\xbc\xd0\xb8\xd1\x80");
}

static void test_fold_plurals(void **state) {
    (void)state;
    static const struct {
        const char *in;
        const char *out;
    } cases[] = {
        {"controls", "control"}, {"policies", "policy"},    {"licences", "licence"},
        {"taxes", "tax"},        {"switches", "switch"},    {"losses", "loss"},
        {"class", "class"},      {"status", "status"},      {"gas", "gas"},
        {"its", "its"},          {"bans", "ban"},           {"earths", "earth"},
        {"diseases", "disease"}, {"employees", "employee"}, {"days", "day"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char w[2][80];
        size_t n;
        fold_all(cases[i].in, w, 2, &n);
        assert_int_equal(n, 1);
        assert_string_equal(w[0], cases[i].out);
    }
}

static void test_tokenize_hyphens_possessives_acronyms(void **state) {
    (void)state;
    struct na_rtoks t;
    const char *text = "Taiwan's dual-use U.S. items";
    na_rtoks_init(&t);
    t.split_decimals = true;
    assert_int_equal(na_rules_tokenize(text, strlen(text), &t), NA_OK);
    /* taiwan dual use dualuse u s us items */
    assert_int_equal(t.cnt, 8);
    assert_int_equal(t.v[0].pos, 0);
    assert_int_equal(t.v[0].bend, 6); /* "'s" is not part of the word */
    assert_memory_equal(t.text + t.v[3].fold_off, "dualuse", 7);
    assert_int_equal(t.v[3].pos, 1);
    assert_int_equal(t.v[3].pos_end, 2);
    assert_int_equal(t.v[3].bstart, 9);
    assert_int_equal(t.v[3].bend, 17);
    assert_memory_equal(t.text + t.v[6].fold_off, "us", 2);
    assert_int_equal(t.v[6].pos, 3);
    assert_int_equal(t.v[6].pos_end, 4);
    assert_int_equal(t.v[7].pos, 5);
    na_rtoks_cleanup(&t);
}

static void test_tokenize_invalid_utf8_and_cjk(void **state) {
    (void)state;
    struct na_rtoks t;
    const char text[] = "\xff\xfe"
                        "abc\xc3 \xe5\x8f\xb0\xe6\xb9\xbe!\xed\xa0\x80x";
    na_rtoks_init(&t);
    t.split_decimals = true;
    assert_int_equal(na_rules_tokenize(text, sizeof(text) - 1, &t), NA_OK);
    assert_int_equal(t.cnt, 4); /* abc, two ideographs, x */
    assert_int_equal(t.v[0].bstart, 2);
    assert_int_equal(t.v[0].bend, 5);
    assert_int_equal(t.v[1].pos + 1, t.v[2].pos);
    assert_int_equal(t.v[3].fold_len, 1);
    na_rtoks_cleanup(&t);
}

/* ---- the query language ---- */

static void test_query_operators(void **state) {
    (void)state;
    /* bare terms, adjacency = AND, AND, OR, NOT */
    assert_true(matches("sanction", "New sanctions", NULL));
    assert_true(matches("china japan", "China and Japan", NULL));
    assert_false(matches("china japan", "China alone", NULL));
    assert_true(matches("china AND japan", NULL, "Japan, China"));
    assert_true(matches("china OR japan", NULL, "Japan only"));
    assert_false(matches("china NOT japan", NULL, "Japan and China"));
    assert_true(matches("china NOT japan", NULL, "China and Korea"));
    assert_true(matches("china AND NOT japan", NULL, "China and Korea"));
    /* precedence: AND binds tighter than OR; parentheses group */
    assert_true(matches("a b OR c", NULL, "c"));
    assert_false(matches("a (b OR c)", NULL, "c"));
    assert_true(matches("a (b OR c)", NULL, "a c"));
    assert_true(matches("((a))", NULL, "a"));
    /* phrases use positions */
    assert_true(matches("\"rare earth\"", NULL, "Rare-Earths supply"));
    assert_true(matches("\"rare earth\"", NULL, "rare, earth"));
    assert_false(matches("\"rare earth\"", NULL, "earth is rare"));
    assert_false(matches("\"rare earth\"", NULL, "rare earthworm"));
    /* prefixes, also inside phrases; prefixes do not plural-fold */
    assert_true(matches("export*", NULL, "EXPORTING"));
    assert_true(matches("\"export* ban*\"", NULL, "exporters banned"));
    assert_false(matches("export*", NULL, "exp"));
    assert_true(matches("policies*", NULL, "policies"));
}

static void test_query_near(void **state) {
    (void)state;
    /* NEAR/n: at most n words apart, either order */
    assert_true(matches("export NEAR/3 ban", NULL, "export ban"));
    assert_true(matches("export NEAR/3 ban", NULL, "ban on the export"));
    assert_true(matches("export NEAR/3 ban", NULL, "export of the ban"));
    assert_false(matches("export NEAR/3 ban", NULL, "export of all the ban"));
    assert_false(matches("export NEAR/3 ban", "export", "ban"));
    assert_true(matches("\"rare earth\" NEAR/2 magnet*", NULL, "magnets of rare earths"));
    assert_true(
        matches("(export OR shipment) NEAR/1 (ban OR curb)", NULL, "shipment curb"));
    assert_false(matches("export NEAR/1 export*", NULL, "export"));
    assert_true(matches("export NEAR/1 export*", NULL, "export exports"));
    assert_true(matches("NOT x export NEAR/2 ban", NULL, "export ban"));
}

static void test_query_fields_and_weights(void **state) {
    (void)state;
    na_rules_t *rules;
    assert_true(matches("title:taiwan", "Taiwan", NULL));
    assert_false(matches("title:taiwan", NULL, "Taiwan"));
    assert_true(matches("body:taiwan", NULL, "Taiwan"));
    assert_false(matches("body:taiwan", "Taiwan", NULL));
    assert_true(matches("title:(a OR \"b c\")", "b c", NULL));
    assert_false(matches("title:(a OR \"b c\")", NULL, "b c"));

    /* default field weights: title 3, summary 1.5, content 1 */
    rules = load_topic("taiwan", NULL, 0);
    assert_score(score_of(rules, "Taiwan", NULL, NULL), 3);
    assert_score(score_of(rules, NULL, "Taiwan", NULL), 1.5);
    assert_score(score_of(rules, NULL, NULL, "Taiwan"), 1);
    assert_score(score_of(rules, "Taiwan", "Taiwan", "Taiwan"), 5.5);
    /* a term counts with a saturating count per field: 1, 1.5, 1.75, ... */
    assert_score(score_of(rules, NULL, NULL, "Taiwan taiwan"), 1.5);
    assert_score(score_of(rules, NULL, NULL, "Taiwan taiwan TAIWAN"), 1.75);
    na_rules_destroy(rules);

    /* term weights, group weights */
    rules = load_topic("taiwan^2 OR (strait OR tsmc)^0.5", NULL, 0);
    assert_score(score_of(rules, NULL, NULL, "Taiwan strait"), 2.5);
    na_rules_destroy(rules);

    /* topic field weights; "body" sets summary and content */
    rules = load_ok("{\"topics\":[{\"name\":\"t\",\"query\":\"x\",\"threshold\":0,"
                    "\"weights\":{\"title\":10,\"body\":2}}]}");
    assert_score(score_of(rules, "x", "x", "x"), 14);
    na_rules_destroy(rules);
    /* defaults for all topics */
    rules = load_ok("{\"defaults\":{\"threshold\":5,\"weights\":{\"content\":4}},"
                    "\"topics\":[{\"name\":\"t\",\"query\":\"x\"}]}");
    assert_score(score_of(rules, NULL, NULL, "x"), -1);
    assert_score(score_of(rules, NULL, NULL, "x x"), 6);
    na_rules_destroy(rules);
}

static void test_query_scoring_counts_true_branches_only(void **state) {
    (void)state;
    /* a in a false AND branch adds nothing; NOT operands add nothing */
    na_rules_t *rules = load_topic("(a b) OR c OR (e NOT d)", NULL, 0);
    assert_score(score_of(rules, NULL, NULL, "a c"), 1);
    assert_score(score_of(rules, NULL, NULL, "a b c"), 3);
    na_rules_destroy(rules);
    /* NEAR counts only the occurrences that are near */
    rules = load_topic("export NEAR/1 ban", NULL, 0);
    /* (punctuation is no boundary: "ban. Export" would be adjacent) */
    assert_score(
        score_of(rules, NULL, NULL, "export ban and other words. Export. Export."), 2);
    na_rules_destroy(rules);
}

static void test_threshold_and_exclude(void **state) {
    (void)state;
    na_rules_t *rules = load_topic("taiwan", "\"bubble tea\"", 3);
    assert_score(score_of(rules, NULL, "Taiwan", "Taiwan"), -1); /* 2.5 < 3 */
    assert_score(score_of(rules, "Taiwan", NULL, NULL), 3);      /* equal passes */
    assert_score(score_of(rules, "Taiwan", NULL, "bubble teas"), -1);
    na_rules_destroy(rules);
    /* a query array is an OR of its clauses */
    rules = load_ok("{\"topics\":[{\"name\":\"t\",\"query\":[\"a b\",\"c\"],"
                    "\"exclude\":[\"x\",\"y z\"],\"threshold\":0}]}");
    assert_score(score_of(rules, NULL, NULL, "c"), 1);
    assert_score(score_of(rules, NULL, NULL, "c y"), 1);
    assert_score(score_of(rules, NULL, NULL, "c z y"), -1);
    assert_score(score_of(rules, NULL, NULL, "a"), -1);
    na_rules_destroy(rules);
}

static void test_hyphens_accents_plurals_match(void **state) {
    (void)state;
    assert_true(matches("dual-use", NULL, "dual use items"));
    assert_true(matches("dual-use", NULL, "dual-use items"));
    assert_true(matches("dual-use", NULL, "dualuse items"));
    assert_true(matches("dual-use", NULL, "Dual\xe2\x80\x91Use")); /* U+2011 */
    assert_false(matches("dual-use", NULL, "use dual"));
    assert_true(matches("dualuse", NULL, "dual-use"));
    assert_true(matches("\"dual use\"", NULL, "dual-use"));
    assert_true(matches("Łódź", NULL, "LODZ"));
    assert_true(matches("resume", NULL, "résumé"));
    assert_true(matches("résumé", NULL, "RESUME"));
    assert_true(matches("policy", NULL, "policies"));
    assert_true(matches("policies", NULL, "policy"));
    assert_true(matches("\"rare earths\"", NULL, "rare earth"));
    assert_true(matches("US", NULL, "the U.S. said"));
    assert_true(matches("U.S.", NULL, "the US said"));
    assert_true(matches("taiwan", NULL, "Taiwan\xe2\x80\x99s strait"));
    assert_true(matches("\"\xe5\x8f\xb0\xe6\xb9\xbe\"", NULL,
                        "\xe4\xb8\xad\xe5\x8f\xb0\xe6\xb9\xbe"));
}

/* Regression: the Latin Extended-A table had one "s" too many, so every
 * capital from U+0162 on folded to the letter before its own (Ţ→s, Ũ→t,
 * Ŵ→u, Ŷ→w, Ź→y). Each case is a capital, its small letter and the
 * decomposed spelling; tests/integration/test_folding.py checks every code
 * point against Unicode's data. */
static void test_latin_ext_a_capitals_fold_to_their_own_letter(void **state) {
    (void)state;
    assert_true(matches("tiriac", "\xc5\xa2iriac", NULL));  /* Ţiriac */
    assert_true(matches("tiriac", "\xc5\xa3iriac", NULL));  /* ţiriac */
    assert_true(matches("tiriac", "T\xcc\xa7iriac", NULL)); /* T + U+0327 */
    assert_false(matches("sara",
                         "\xc5\xa2"
                         "ara",
                         NULL)); /* Ţara */
    assert_true(matches("tara",
                        "\xc5\xa2"
                        "ara",
                        NULL));
    assert_true(matches("sara",
                        "\xc5\x9e"
                        "ara",
                        NULL));                            /* Şara */
    assert_true(matches("utopia", "\xc5\xa8topia", NULL)); /* Ũtopia */
    assert_false(matches("ttopia", "\xc5\xa8topia", NULL));
    assert_true(matches("wales",
                        "\xc5\xb4"
                        "ales",
                        NULL));                        /* Ŵales */
    assert_true(matches("york", "\xc5\xb6ork", NULL)); /* Ŷork */
    assert_true(matches("zagreb",
                        "\xc5\xb9"
                        "agreb",
                        NULL)); /* Źagreb */
    assert_false(matches("yagreb",
                         "\xc5\xb9"
                         "agreb",
                         NULL));
    assert_true(matches("\xc5\xa2iriac", "TIRIAC", NULL)); /* query side alike */
    /* Cyrillic and Greek: capital, small and accented letters agree */
    assert_true(matches("\xd0\xb5\xd0\xb6", "\xd0\x81\xd0\x96", NULL)); /* еж / ЁЖ */
    assert_true(matches("\xd1\x91\xd0\xb6", "\xd0\x95\xd0\x96", NULL)); /* ёж / ЕЖ */
    assert_true(matches("\xce\xb1\xce\xb8\xce\xae\xce\xbd\xce\xb1",     /* αθήνα */
                        "\xce\x91\xce\x98\xce\x97\xce\x9d\xce\x91", NULL)); /* ΑΘΗΝΑ */
    assert_true(matches("\xcf\x83\xce\xb5\xcf\x83", "\xce\xa3\xce\x95\xce\xa3",
                        NULL)); /* σεσ / ΣΕΣ */
    assert_true(matches("\xcf\x83\xce\xb5\xcf\x82", "\xce\xa3\xce\x95\xce\xa3",
                        NULL)); /* σες (final sigma) / ΣΕΣ */
}

static void test_query_errors(void **state) {
    (void)state;
    query_fails("export AND", "AND needs an operand", "query column 8");
    query_fails("(a OR b", "'(' is never closed", "query column 1");
    query_fails("a )", "unexpected ')'", "query column 3");
    query_fails("a \"rare earth", "unterminated phrase", "query column 3");
    query_fails("author:x", "unknown field \"author\"", "query column 1");
    query_fails("a NEAR b", "NEAR needs a distance", "query column 3");
    query_fails("a NEAR/0 b", "bad NEAR distance", "query column 3");
    query_fails("a NEAR/101 b", "bad NEAR distance", "query column 3");
    query_fails("a NEAR/3 (b AND c)", "NEAR works between", "query column 10");
    query_fails("a NEAR/3 b NEAR/3 c", "NEAR joins two operands", "query column 12");
    query_fails("ab*", "prefix before '*'", "query column 1");
    query_fails("ex*port", "'*' is allowed only at the end", "query column 3");
    query_fails("a or b", "operators are upper-case", "query column 3");
    query_fails("NOT a", "needs a term outside NOT", "query column 1");
    query_fails("a NOT", "NOT needs an operand", "query column 3");
    query_fails("a^x", "bad weight", "query column 2");
    query_fails("a^1000", "bad weight", "query column 2");
    query_fails("a ^2", "'^' must directly follow", "query column 3");
    query_fails("title:(body:x)", "field scope inside a different", "query column 8");
    query_fails("title: x", "must be followed directly", "query column 1");
    query_fails("a OR NOT b", "needs a term outside NOT", "query column 1");
    query_fails("\"\"", "empty phrase", "query column 1");
    query_fails("()", "empty parentheses", "query column 1");
    query_fails("", "empty query", "query column 1");
    query_fails("a ---", "has no letters or digits", "query column 3");
    query_fails("OR a", "OR needs an operand", "query column 1");
    /* terms that fold alike would count twice */
    query_fails("ban OR bans", "\"bans\" repeats \"ban\"", "query column 8");
    query_fails("x (Policy OR a OR policies)", "repeats \"Policy\"", "query column 19");
    assert_true(matches("title:ban OR ban", NULL, "bans"));
    /* columns count characters, not bytes */
    query_fails("\xc3\xa9t\xc3\xa9 )", "unexpected ')'", "query column 5");
    /* exclude errors name the exclude */
    char *json = topic_json("a", "b (", 1);
    load_fails(json, NA_ERR_CONFIG, "topic \"t\"", "exclude column 4", "at the end",
               NULL);
    free(json);
    /* array clauses are named by index */
    load_fails("{\"topics\":[{\"name\":\"t\",\"query\":[\"a\",\"b OR\"]}]}",
               NA_ERR_CONFIG, "rules.json:1:37:", "query[1] column 3", NULL);
}

static void test_query_hostile(void **state) {
    (void)state;
    /* nesting is capped */
    char deep[200];
    memset(deep, '(', 40);
    deep[40] = 'a';
    memset(deep + 41, ')', 40);
    deep[81] = '\0';
    query_fails(deep, "nested deeper than 32", "query column 33");
    memset(deep, 0, sizeof(deep));
    for (int i = 0; i < 40; i++) {
        memcpy(deep + i * 4, "NOT ", 4);
    }
    memcpy(deep + 160, "a b", 3);
    query_fails(deep, "nested deeper than 32", "query column ");
    /* 31 levels are fine */
    memset(deep, 0, sizeof(deep));
    memset(deep, '(', 31);
    deep[31] = 'a';
    memset(deep + 32, ')', 31);
    assert_true(matches(deep, "a", NULL));

    /* a huge query is refused before parsing */
    size_t len = NA_RULES_MAX_QUERY_BYTES + 10;
    char *huge = malloc(len + 1);
    assert_non_null(huge);
    for (size_t i = 0; i < len; i += 2) {
        huge[i] = 'a';
        huge[i + 1] = ' ';
    }
    huge[len] = '\0';
    query_fails(huge, "query longer than", "query column 1");
    /* many terms under the byte cap hit the node cap */
    for (size_t i = 0; i < 20000; i += 4) {
        memcpy(huge + i, "ab ", 3);
        huge[i + 3] = ' ';
    }
    huge[20000] = '\0';
    query_fails(huge, "more than 4096 terms", "query column");
    /* an over-long term */
    memset(huge, 'x', 100);
    huge[100] = '\0';
    query_fails(huge, "term longer than", "query column 1");
    free(huge);
}

static void test_rules_json_errors(void **state) {
    (void)state;
    load_fails("{\"topics\": [\n  {\"name\": \"t\",, }]}", NA_ERR_PARSE,
               "rules.json:2:", "JSON error", NULL);
    load_fails(
        "{\"topics\": [\n  {\"name\": \"t\",\n   \"query\": \"a\",\n   \"treshold\": 2}"
        "]}",
        NA_ERR_CONFIG, "rules.json:4:4:", "topic \"t\"", "unknown key \"treshold\"",
        NULL);
    load_fails("{\"topics\": [{\"name\": \"t\", \"query\": \"a\", \"weights\": "
               "{\"author\": 2}}]}",
               NA_ERR_CONFIG, "topic \"t\"", "unknown field \"author\"", NULL);
    load_fails("{\"topics\": [{\"name\": \"t\", \"query\": \"a\", \"threshold\": -1}]}",
               NA_ERR_CONFIG, "topic \"t\"", "threshold", NULL);
    load_fails("{\"topics\": [{\"name\": \"t\"}]}", NA_ERR_CONFIG, "topic \"t\"",
               "missing \"query\"", NULL);
    load_fails("{\"topics\": [{\"query\": \"a\"}]}", NA_ERR_CONFIG, "topic #1",
               "missing \"name\"", NULL);
    load_fails("{\"topics\": [{\"name\": \"t\", \"query\": \"a\"},\n"
               "             {\"name\": \"t\", \"query\": \"b\"}]}",
               NA_ERR_CONFIG, "rules.json:2:23:", "comes earlier", NULL);
    load_fails("{\"topics\": [], \"extra\": 1}", NA_ERR_CONFIG,
               "rules.json:1:16:", "unknown key \"extra\"", NULL);
    load_fails("{\"topics\": {}}", NA_ERR_CONFIG, "\"topics\" must be an array", NULL);
    load_fails("[]", NA_ERR_CONFIG, "must be a JSON object", NULL);
    load_fails("{\"topics\": [{\"name\": \"a b\", \"query\": \"a\"}]}", NA_ERR_CONFIG,
               "\"name\" must be", NULL);
    load_fails("{\"topics\": [{\"name\": \"t\", \"query\": 5}]}", NA_ERR_CONFIG,
               "\"query\" must be a query string", NULL);

    /* load_file: I/O errors name the path */
    na_rules_t *rules = NULL;
    char errstr[256] = "";
    assert_int_equal(
        na_rules_load_file("/nonexistent/rules.json", &rules, errstr, sizeof(errstr)),
        NA_ERR_IO);
    assert_non_null(strstr(errstr, "/nonexistent/rules.json"));
    assert_null(rules);
}

static void test_version_and_counts(void **state) {
    (void)state;
    const char *json = "{\"topics\":[{\"name\":\"a\",\"query\":\"x\"},"
                       "{\"name\":\"b\",\"query\":\"y\"}]}";
    char hex[NA_SHA256_HEX_LEN + 1];
    na_rules_t *rules = load_ok(json);
    assert_int_equal(na_sha256_hex(json, strlen(json), hex), NA_OK);
    hex[12] = '\0';
    assert_string_equal(na_rules_version(rules), hex);
    assert_int_equal(na_rules_topic_count(rules), 2);
    assert_string_equal(na_rules_topic_name(rules, 1), "b");
    assert_int_equal(na_rules_topic_index(rules, "b"), 1);
    assert_int_equal(na_rules_topic_index(rules, "c"), -1);
    na_rules_destroy(rules);
    na_rules_destroy(NULL);
    na_classification_cleanup(NULL);
}

/* ---- evidence and snippets ---- */

static void test_evidence_offsets(void **state) {
    (void)state;
    na_rules_t *rules = load_topic("\"rare earth\" OR export* OR dual-use", NULL, 0);
    struct na_article a;
    struct na_classification c;
    /* "Ünited" has a 2-byte letter before the match: offsets are bytes */
    article(&a, "Ünited exports", NULL, "Löw — Rare-Earths and dual use items.");
    assert_int_equal(na_rules_classify(rules, &a, &c), NA_OK);
    assert_int_equal(c.matches_cnt, 1);
    struct na_match *m = &c.matches[0];
    assert_string_equal(m->topic, "t");
    assert_int_equal(m->evidence_cnt, 3);
    /* in field order, then by offset */
    assert_string_equal(m->evidence[0].field, "title");
    assert_string_equal(m->evidence[0].term, "export*");
    assert_string_equal(m->evidence[0].matched, "exports");
    assert_int_equal(m->evidence[0].offset, 8);
    assert_string_equal(m->evidence[1].field, "content");
    assert_string_equal(m->evidence[1].term, "rare earth");
    assert_string_equal(m->evidence[1].matched, "Rare-Earths");
    assert_int_equal(m->evidence[1].offset, 9);
    assert_string_equal(m->evidence[2].term, "dual-use");
    assert_string_equal(m->evidence[2].matched, "dual use");
    assert_int_equal(m->evidence[2].offset, 25);
    assert_memory_equal(a.content + m->evidence[2].offset, "dual use", 8);
    /* the snippet comes from the body, which is short enough to show whole */
    assert_string_equal(m->snippet, "Löw — Rare-Earths and dual use items.");
    assert_score(m->score, 3 + 1 + 1);
    assert_score(m->threshold, 0);
    na_classification_cleanup(&c);
    assert_null(c.matches);
    na_article_cleanup(&a);
    na_rules_destroy(rules);
}

static void test_zero_weight_terms_are_not_evidence(void **state) {
    (void)state;
    na_rules_t *rules = load_topic("taiwan AND (china OR military)^0", NULL, 1);
    struct na_article a;
    struct na_classification c;
    article(&a, "Taiwan", NULL, "China and the military");
    assert_int_equal(na_rules_classify(rules, &a, &c), NA_OK);
    assert_int_equal(c.matches_cnt, 1);
    assert_score(c.matches[0].score, 3);
    assert_int_equal(c.matches[0].evidence_cnt, 1);
    assert_string_equal(c.matches[0].evidence[0].term, "taiwan");
    na_classification_cleanup(&c);
    na_article_cleanup(&a);
    /* without the context the query is false */
    assert_score(score_of(rules, "Taiwan", NULL, "bubble tea"), -1);
    na_rules_destroy(rules);
}

static void test_snippet_cut_at_utf8_boundaries(void **state) {
    (void)state;
    na_rules_t *rules = load_topic("neodymium", NULL, 0);
    struct na_article a;
    struct na_classification c;
    struct na_buf body;
    na_buf_init(&body);
    /* 3-byte letters everywhere, no spaces: every cut falls inside words */
    for (int i = 0; i < 150; i++) {
        na_buf_puts(&body, "\xe2\x82\xac"); /* € is a separator; use ideographs too */
        na_buf_puts(&body, "\xe4\xb8\xad");
    }
    na_buf_puts(&body, " neodymium ");
    for (int i = 0; i < 150; i++) {
        na_buf_puts(&body, "\xc3\xa9t\xc3\xa9\n\t");
    }
    article(&a, "Neodymium", NULL, body.data);
    assert_int_equal(na_rules_classify(rules, &a, &c), NA_OK);
    assert_int_equal(c.matches_cnt, 1);
    const char *snip = c.matches[0].snippet;
    assert_non_null(snip);
    assert_true(strlen(snip) <= NA_RULES_SNIPPET_BYTES);
    assert_true(strlen(snip) > 100);
    assert_true(na_utf8_valid(snip, strlen(snip)));
    assert_non_null(strstr(snip, "neodymium"));
    assert_memory_equal(snip, "\xe2\x80\xa6", 3); /* starts with … */
    assert_memory_equal(snip + strlen(snip) - 3, "\xe2\x80\xa6", 3);
    assert_null(strchr(snip, '\n')); /* whitespace runs become one space */
    assert_null(strchr(snip, '\t'));
    /* title evidence, then body evidence; the snippet is from the body */
    assert_int_equal(c.matches[0].evidence_cnt, 2);
    assert_int_equal(c.matches[0].evidence[1].offset, 900 + 1);
    na_classification_cleanup(&c);
    na_article_cleanup(&a);

    /* title-only match: snippet is the title */
    article(&a, "Neodymium prices", NULL, NULL);
    assert_int_equal(na_rules_classify(rules, &a, &c), NA_OK);
    assert_string_equal(c.matches[0].snippet, "Neodymium prices");
    na_classification_cleanup(&c);
    na_article_cleanup(&a);
    na_buf_cleanup(&body);
    na_rules_destroy(rules);
}

static void test_hostile_articles(void **state) {
    (void)state;
    na_rules_t *rules = load_topic("abc OR \"x y\" OR long*", NULL, 0);
    struct na_article a;
    struct na_classification c;

    /* empty article */
    na_article_init(&a);
    assert_int_equal(na_rules_classify(rules, &a, &c), NA_OK);
    assert_int_equal(c.matches_cnt, 0);
    na_classification_cleanup(&c);

    /* invalid UTF-8 is tolerated; evidence and snippet come out valid */
    const char bad[] = "\xff\xc3 abc\xed\xa0\x80 \xe2\x82";
    article(&a, NULL, NULL, bad);
    assert_int_equal(na_rules_classify(rules, &a, &c), NA_OK);
    assert_int_equal(c.matches_cnt, 1);
    assert_string_equal(c.matches[0].evidence[0].matched, "abc");
    assert_int_equal(c.matches[0].evidence[0].offset, 3);
    assert_true(na_utf8_valid(c.matches[0].snippet, strlen(c.matches[0].snippet)));
    na_classification_cleanup(&c);
    na_article_cleanup(&a);

    /* one huge word, and a megabyte of words: prefix still found, no crash */
    size_t len = 1024 * 1024;
    char *big = malloc(len + 1);
    assert_non_null(big);
    memcpy(big, "long", 4);
    memset(big + 4, 'g', 100000);
    for (size_t i = 100004; i < len; i += 2) {
        big[i] = ' ';
        big[i + 1] = 'x';
    }
    big[len] = '\0';
    na_article_init(&a);
    a.content = big;
    assert_int_equal(na_rules_classify(rules, &a, &c), NA_OK);
    assert_int_equal(c.matches_cnt, 1);
    assert_true(strlen(c.matches[0].evidence[0].matched) <= NA_RULES_MATCHED_BYTES);
    assert_int_equal(c.matches[0].evidence_cnt, 1); /* long*; there is no "x y" */
    na_classification_cleanup(&c);
    na_article_cleanup(&a);
    na_rules_destroy(rules);
}

/* ---- the percolator never misses: classify == evaluating every topic ---- */

static const char *const vocab[] = {"alpha",    "beta", "gamma", "delta", "dual-use",
                                    "policies", "Łódź", "rare",  "earth", "the"};

static unsigned rnd(unsigned *seed) {
    *seed = *seed * 1103515245u + 12345u;
    return (*seed >> 16) & 0x7fff;
}

static void random_atom(struct na_buf *q, unsigned *seed) {
    unsigned r = rnd(seed) % 10;
    const char *w = vocab[rnd(seed) % 10];
    if (r == 0) {
        na_buf_printf(q, "\"%s %s\"", w, vocab[rnd(seed) % 10]);
    } else if (r == 1) {
        na_buf_printf(q, "%.3s*", strcmp(w, "Łódź") ? w : "lod");
    } else if (r == 2) {
        na_buf_printf(q, "title:%s", w);
    } else if (r == 3) {
        na_buf_printf(q, "body:%s^2", w);
    } else {
        na_buf_puts(q, w);
    }
}

static void random_query(struct na_buf *q, unsigned *seed, int depth) {
    unsigned r = rnd(seed) % 7;
    if (depth > 3 || r == 0) {
        random_atom(q, seed);
        return;
    }
    switch (r) {
    case 1:
    case 2:
        na_buf_puts(q, "(");
        random_query(q, seed, depth + 1);
        na_buf_puts(q, r == 1 ? " AND " : " ");
        random_query(q, seed, depth + 1);
        na_buf_puts(q, ")");
        break;
    case 3:
    case 4:
        na_buf_puts(q, "(");
        random_query(q, seed, depth + 1);
        na_buf_puts(q, " OR ");
        random_query(q, seed, depth + 1);
        na_buf_puts(q, ")");
        break;
    case 5:
        na_buf_puts(q, "(");
        random_query(q, seed, depth + 1);
        na_buf_puts(q, " NOT ");
        random_atom(q, seed);
        na_buf_puts(q, ")");
        break;
    default:
        random_atom(q, seed);
        na_buf_printf(q, " NEAR/%u ", 1 + rnd(seed) % 4);
        na_buf_puts(q, "(");
        random_atom(q, seed);
        na_buf_puts(q, " OR ");
        random_atom(q, seed);
        na_buf_puts(q, ")");
        break;
    }
}

static void test_candidates_never_miss(void **state) {
    (void)state;
    unsigned seed = 20260106;
    struct na_buf json;
    size_t topics = 0;
    na_buf_init(&json);
    na_buf_puts(&json, "{\"topics\":[");
    for (int i = 0; i < 400; i++) {
        struct na_buf q;
        char errstr[256];
        na_rules_t *probe = NULL;
        na_buf_init(&q);
        random_query(&q, &seed, 0);
        char *one = topic_json(q.data, rnd(&seed) % 4 ? NULL : vocab[rnd(&seed) % 10],
                               (double)(rnd(&seed) % 4));
        /* keep the queries that compile (pure NOT queries are refused) */
        if (!na_rules_load_buf(one, strlen(one), "p", &probe, errstr, sizeof(errstr))) {
            char *start = strstr(one, "[") + 1;
            size_t len = strlen(start) - 2; /* drop "]}" */
            char name[32];
            snprintf(name, sizeof(name), "\"r%zu\"", topics++);
            na_buf_printf(&json, "%s", topics > 1 ? "," : "");
            /* rename "t" to a unique name */
            char *pos = strstr(start, "\"t\"");
            na_buf_append(&json, start, (size_t)(pos - start));
            na_buf_puts(&json, name);
            na_buf_append(&json, pos + 3, len - (size_t)(pos + 3 - start));
        }
        na_rules_destroy(probe);
        free(one);
        na_buf_cleanup(&q);
    }
    na_buf_puts(&json, "]}");
    assert_true(topics > 200);
    na_rules_t *rules = load_ok(json.data);
    size_t matched = 0;
    for (int i = 0; i < 300; i++) {
        struct na_buf text[3];
        struct na_article a;
        struct na_classification c;
        for (int f = 0; f < 3; f++) {
            na_buf_init(&text[f]);
            unsigned words = rnd(&seed) % (f ? 12 : 4);
            for (unsigned w = 0; w < words; w++) {
                const char *word = vocab[rnd(&seed) % 10];
                na_buf_printf(&text[f], "%s%s", w ? (rnd(&seed) % 3 ? " " : ", ") : "",
                              rnd(&seed) % 2 ? word : "lodz-alpha");
            }
        }
        article(&a, text[0].data, text[1].data, text[2].data);
        assert_int_equal(na_rules_classify(rules, &a, &c), NA_OK);
        size_t m = 0;
        for (size_t t = 0; t < na_rules_topic_count(rules); t++) {
            struct na_rules_verdict v;
            assert_int_equal(na_rules_explain(rules, &a, t, &v), NA_OK);
            bool got = m < c.matches_cnt &&
                       !strcmp(c.matches[m].topic, na_rules_topic_name(rules, t));
            if (got != v.matched) {
                print_error("topic %zu: classify %d, explain %d\n", t, got, v.matched);
                fail();
            }
            if (got) {
                assert_score(c.matches[m].score, v.score);
                m++;
            }
        }
        assert_int_equal(m, c.matches_cnt);
        matched += m;
        na_classification_cleanup(&c);
        na_article_cleanup(&a);
        for (int f = 0; f < 3; f++) {
            na_buf_cleanup(&text[f]);
        }
    }
    assert_true(matched > 100);
    na_rules_destroy(rules);
    na_buf_cleanup(&json);
}

/* ---- concurrency and scale ---- */

struct worker {
    const na_rules_t *rules;
    const char *text;
    size_t want;
    int ok;
};

static void *worker_run(void *arg) {
    struct worker *w = arg;
    w->ok = 1;
    for (int i = 0; i < 200; i++) {
        struct na_article a;
        struct na_classification c;
        article(&a, "Export ban", NULL, w->text);
        if (na_rules_classify(w->rules, &a, &c) || c.matches_cnt != w->want) {
            w->ok = 0;
        }
        na_classification_cleanup(&c);
        na_article_cleanup(&a);
    }
    return NULL;
}

static void test_concurrent_classify(void **state) {
    (void)state;
    na_rules_t *rules = load_ok(
        "{\"topics\":[{\"name\":\"a\",\"query\":\"export NEAR/2 ban\",\"threshold\":1},"
        "{\"name\":\"b\",\"query\":\"\\\"rare earth*\\\"\",\"threshold\":1},"
        "{\"name\":\"c\",\"query\":\"taiwan\",\"threshold\":1}]}");
    struct worker w[4] = {
        {rules, "rare earths and Taiwan", 3, 0},
        {rules, "nothing at all", 1, 0},
        {rules, "rare earth", 2, 0},
        {rules, "Taiwan", 2, 0},
    };
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_create(&th[i], NULL, worker_run, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].ok, 1);
    }
    na_rules_destroy(rules);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_thousands_of_topics(void **state) {
    (void)state;
    /* 3000 topics with distinct words; an article wakes only its own */
    struct na_buf json;
    na_buf_init(&json);
    na_buf_puts(&json, "{\"topics\":[");
    for (int i = 0; i < 3000; i++) {
        na_buf_printf(&json,
                      "%s{\"name\":\"t%d\",\"query\":\"(w%da OR \\\"w%db the\\\") "
                      "AND NOT w%dc OR pre%dx*\",\"threshold\":1}",
                      i ? "," : "", i, i, i, i, i);
    }
    na_buf_puts(&json, "]}");
    assert_false(json.oom);
    double t0 = now_s();
    na_rules_t *rules = load_ok(json.data);
    double t1 = now_s();
    assert_int_equal(na_rules_topic_count(rules), 3000);

    struct na_article a;
    struct na_classification c;
    article(&a, NULL, NULL,
            "the w17a and the w2999b the, and pre5xyz; w16a w16c, w15b alone");
    assert_int_equal(na_rules_classify(rules, &a, &c), NA_OK);
    assert_int_equal(c.matches_cnt, 3);
    assert_string_equal(c.matches[0].topic, "t5");
    assert_string_equal(c.matches[1].topic, "t17");
    assert_string_equal(c.matches[2].topic, "t2999");
    na_classification_cleanup(&c);
    na_article_cleanup(&a);

    double t2 = now_s();
    for (int i = 0; i < 200; i++) {
        article(
            &a, "w1a", NULL,
            "A common article text with the words the and the and the w9a, repeated. "
            "A common article text with the words the and the and the w9a, repeated.");
        assert_int_equal(na_rules_classify(rules, &a, &c), NA_OK);
        assert_int_equal(c.matches_cnt, 2);
        na_classification_cleanup(&c);
        na_article_cleanup(&a);
    }
    double t3 = now_s();
    print_message("3000 topics: compiled in %.1f ms, %.0f articles/s (debug build)\n",
                  (t1 - t0) * 1e3, 200 / (t3 - t2));
    na_rules_destroy(rules);
    na_buf_cleanup(&json);
}

/* ---- the shipped rules ---- */

static na_rules_t *shipped_rules(void) {
    char path[1024];
    char errstr[512] = "";
    na_rules_t *rules = NULL;
    src_path(path, sizeof(path), "examples/rules.json");
    if (na_rules_load_file(path, &rules, errstr, sizeof(errstr))) {
        print_error("%s\n", errstr);
        fail();
    }
    return rules;
}

/* Topics matched, as "a,b" in rules order. */
static void topics_of(const na_rules_t *rules, const char *title, const char *summary,
                      const char *content, char *out, size_t size) {
    struct na_article a;
    struct na_classification c;
    size_t used = 0;
    article(&a, title, summary, content);
    assert_int_equal(na_rules_classify(rules, &a, &c), NA_OK);
    out[0] = '\0';
    for (size_t i = 0; i < c.matches_cnt; i++) {
        used += (size_t)snprintf(out + used, size - used, "%s%s", i ? "," : "",
                                 c.matches[i].topic);
        assert_true(c.matches[i].evidence_cnt > 0);
        assert_non_null(c.matches[i].snippet);
    }
    na_classification_cleanup(&c);
    na_article_cleanup(&a);
}

static void test_shipped_rules_short_texts(void **state) {
    (void)state;
    static const struct {
        const char *title;
        const char *content;
        const char *want;
    } cases[] = {
        /* positives */
        {"Washington widens export controls on AI chips to China",
         "The rules require licences for more processors.", "export_controls"},
        {"Beijing halts gallium exports with new licence rule",
         "Gallium exporters need a licence; the critical mineral is used in chips and "
         "supply outside China is tight.",
         "export_controls,rare_earths"},
        {"Chipmaker added to US entity list", "", "export_controls"},
        {"Rare-earth magnet output climbs", "Neodymium magnets for EV motors.",
         "rare_earths"},
        {"Dysprosium price doubles", "Heavy rare earths are scarce outside China.",
         "rare_earths"},
        {"PLA drills encircle Taiwan", "Warships crossed the Taiwan Strait median line.",
         "taiwan"},
        {"TSMC profit jumps on AI demand", "", "taiwan"},
        {"Tokyo and Beijing spar over remarks on Taiwan",
         "Japan's prime minister said a blockade of Taiwan could threaten Japan.",
         "taiwan"},
        /* hard negatives */
        {"Rare disease drug approved", "A rare disease affecting one in 50,000 children.",
         ""},
        {"Astronomers revisit the Rare Earth hypothesis",
         "Is Earth rare? The Rare Earth hypothesis says complex life is uncommon.", ""},
        {"Thai green curry in 20 minutes", "Thai basil, coconut milk, fish sauce.", ""},
        {"Thai parliament picks a new prime minister",
         "The military-backed parties lost seats in the election.", ""},
        {"Exports rise 4% in October", "Export statistics showed strong car shipments.",
         ""},
        {"Tariffs on steel take effect", "Exporters face new tariffs from Monday.", ""},
        {"Parental controls for teenagers' phones",
         "Set limits and control app downloads.", ""},
        {"Pest control demand rises", "Pest control firms are busy after a wet summer.",
         ""},
        {"Taiwanese bubble tea chain opens in London",
         "The Taipei-based chain serves boba tea and plans Chinese stores.", ""},
    };
    na_rules_t *rules = shipped_rules();
    assert_int_equal(na_rules_topic_count(rules), 3);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char got[128];
        topics_of(rules, cases[i].title, NULL, cases[i].content, got, sizeof(got));
        if (strcmp(got, cases[i].want)) {
            print_error("\"%s\": got [%s], want [%s]\n", cases[i].title, got,
                        cases[i].want);
            fail();
        }
    }
    na_rules_destroy(rules);
}

static void test_shipped_rules_sample_feeds(void **state) {
    (void)state;
    static const char *const feeds[] = {"harbour-wire.xml", "meridian-post.atom",
                                        "lantern-daily.json", "northgate-review.xml"};
    char path[1024];
    char errstr[512] = "";
    char *buf = NULL;
    size_t len = 0;
    json_error_t jerr;
    size_t seen = 0;
    na_rules_t *rules = shipped_rules();
    src_path(path, sizeof(path), "examples/feeds/labels.json");
    json_t *labels = json_load_file(path, 0, &jerr);
    assert_non_null(labels);
    for (size_t f = 0; f < sizeof(feeds) / sizeof(feeds[0]); f++) {
        struct na_feed feed;
        char rel[256];
        snprintf(rel, sizeof(rel), "examples/feeds/%s", feeds[f]);
        src_path(path, sizeof(path), rel);
        assert_int_equal(
            na_read_file(path, NA_MAX_FEED_BYTES, &buf, &len, errstr, sizeof(errstr)),
            NA_OK);
        na_feed_init(&feed);
        if (na_feed_parse(buf, len, NULL, &feed, errstr, sizeof(errstr))) {
            print_error("%s: %s\n", path, errstr);
            fail();
        }
        for (size_t i = 0; i < feed.items_cnt; i++) {
            const struct na_article *a = &feed.items[i];
            json_t *want = json_object_get(labels, a->url ? a->url : "");
            char got[128];
            char exp[128] = "";
            size_t used = 0;
            size_t k;
            json_t *l;
            assert_non_null(want);
            topics_of(rules, a->title, a->summary, a->content, got, sizeof(got));
            /* labels are listed in rules order in labels.json; compare as sets */
            static const char *const order[] = {"export_controls", "rare_earths",
                                                "taiwan"};
            for (size_t o = 0; o < 3; o++) {
                json_array_foreach(want, k, l) {
                    if (!strcmp(json_string_value(l), order[o])) {
                        used += (size_t)snprintf(exp + used, sizeof(exp) - used, "%s%s",
                                                 used ? "," : "", order[o]);
                    }
                }
            }
            if (strcmp(got, exp)) {
                print_error("%s: got [%s], labelled [%s]\n", a->url, got, exp);
                fail();
            }
            seen++;
        }
        na_feed_cleanup(&feed);
        free(buf);
        buf = NULL;
    }
    assert_int_equal(seen, json_object_size(labels));
    json_decref(labels);
    na_rules_destroy(rules);
}

/* ---- the commands ---- */

/* Run fn with stdout and stderr sent to files; @returns its exit code. */
static int capture(int (*fn)(int, char **), int argc, char **argv, char **out,
                   char **err) {
    char out_path[] = "/tmp/na_test_rules_outXXXXXX";
    char err_path[] = "/tmp/na_test_rules_errXXXXXX";
    int ofd = mkstemp(out_path);
    int efd = mkstemp(err_path);
    size_t len;
    char errstr[256];
    assert_true(ofd >= 0 && efd >= 0);
    fflush(stdout);
    fflush(stderr);
    int saved_out = dup(1);
    int saved_err = dup(2);
    dup2(ofd, 1);
    dup2(efd, 2);
    int rc = fn(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(saved_out, 1);
    dup2(saved_err, 2);
    close(saved_out);
    close(saved_err);
    close(ofd);
    close(efd);
    assert_int_equal(na_read_file(out_path, 1 << 24, out, &len, errstr, sizeof(errstr)),
                     NA_OK);
    assert_int_equal(na_read_file(err_path, 1 << 24, err, &len, errstr, sizeof(errstr)),
                     NA_OK);
    unlink(out_path);
    unlink(err_path);
    return rc;
}

static void write_file(const char *path, const char *text) {
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static void test_cmd_classify(void **state) {
    (void)state;
    char rules_path[] = "/tmp/na_test_rules_rjXXXXXX";
    char in_path[] = "/tmp/na_test_rules_inXXXXXX";
    char *out = NULL;
    char *err = NULL;
    close(mkstemp(rules_path));
    close(mkstemp(in_path));
    write_file(rules_path,
               "{\"topics\":[{\"name\":\"ec\",\"query\":\"export* NEAR/2 ban*\","
               "\"threshold\":1}]}");
    write_file(in_path, "{\"id\":\""
                        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
                        "\",\"title\":\"Export ban\",\"content\":\"none\"}\n"
                        "\n"
                        "China banned exports of dual-use items\r\n"
                        "{\"id\": 5}\n"
                        "nothing to see\n");
    char *argv[] = {"classify", "--rules", rules_path, in_path, NULL};
    int rc = capture(na_cmd_classify, 4, argv, &out, &err);
    assert_int_equal(rc, 1); /* one bad line */
    /* the bad line is named with its number; the others are classified */
    assert_non_null(strstr(err, ":4: "));
    assert_null(strstr(err, ":3: "));
    char *l1 = out;
    char *l2 = strchr(l1, '\n') + 1;
    char *l3 = strchr(l2, '\n') + 1;
    assert_string_equal(strchr(l3, '\n'), "\n");
    json_error_t jerr;
    json_t *j1 = json_loadb(l1, (size_t)(l2 - l1), 0, &jerr);
    json_t *j2 = json_loadb(l2, (size_t)(l3 - l2), 0, &jerr);
    json_t *j3 = json_loads(l3, 0, &jerr);
    assert_non_null(j1);
    assert_non_null(j2);
    assert_non_null(j3);
    assert_string_equal(json_string_value(json_object_get(j1, "title")), "Export ban");
    json_t *t1 = json_array_get(json_object_get(j1, "topics"), 0);
    assert_string_equal(json_string_value(json_object_get(t1, "topic")), "ec");
    assert_true(json_real_value(json_object_get(t1, "score")) == 6.0);
    assert_true(json_real_value(json_object_get(t1, "threshold")) == 1.0);
    json_t *e1 = json_array_get(json_object_get(t1, "evidence"), 0);
    assert_string_equal(json_string_value(json_object_get(e1, "term")), "export*");
    assert_string_equal(json_string_value(json_object_get(e1, "matched")), "Export");
    assert_string_equal(json_string_value(json_object_get(e1, "field")), "title");
    assert_int_equal(json_integer_value(json_object_get(e1, "offset")), 0);
    assert_non_null(json_object_get(t1, "snippet"));
    /* the rules version that decided: 12 hex digits */
    const char *rv = json_string_value(json_object_get(j1, "rules_version"));
    assert_non_null(rv);
    assert_int_equal(strlen(rv), 12);
    assert_string_equal(json_string_value(json_object_get(j3, "rules_version")), rv);
    /* plain text: content, no title, id = SHA-256 of the line */
    char hex[NA_SHA256_HEX_LEN + 1];
    const char *line = "China banned exports of dual-use items";
    assert_int_equal(na_sha256_hex(line, strlen(line), hex), NA_OK);
    assert_string_equal(json_string_value(json_object_get(j2, "id")), hex);
    assert_true(json_is_null(json_object_get(j2, "title")));
    assert_int_equal(json_array_size(json_object_get(j2, "topics")), 1);
    assert_int_equal(json_array_size(json_object_get(j3, "topics")), 0);
    json_decref(j1);
    json_decref(j2);
    json_decref(j3);
    free(out);
    free(err);

    /* usage errors exit 2; --help exits 0 on stdout; bad rules exit 1 */
    char *argv_bad[] = {"classify", "--frobnicate", NULL};
    assert_int_equal(capture(na_cmd_classify, 2, argv_bad, &out, &err), 2);
    assert_non_null(strstr(err, "--frobnicate"));
    free(out);
    free(err);
    char *argv_norules[] = {"classify", "--rules", NULL};
    assert_int_equal(capture(na_cmd_classify, 2, argv_norules, &out, &err), 2);
    free(out);
    free(err);
    char *argv_help[] = {"classify", "--help", NULL};
    assert_int_equal(capture(na_cmd_classify, 2, argv_help, &out, &err), 0);
    assert_non_null(strstr(out, "usage: newsalert-consumer classify"));
    assert_string_equal(err, "");
    free(out);
    free(err);
    write_file(rules_path, "{\"topics\":[{\"name\":\"ec\",\"query\":\"(\"}]}");
    char *argv_badrules[] = {"classify", "--rules", rules_path, in_path, NULL};
    assert_int_equal(capture(na_cmd_classify, 4, argv_badrules, &out, &err), 1);
    assert_non_null(strstr(err, "topic \"ec\""));
    assert_string_equal(out, "");
    free(out);
    free(err);
    /* regression: a NUL byte inside a line once merged it with the next line;
     * an over-long line is reported and skipped */
    {
        write_file(rules_path, "{\"topics\":[{\"name\":\"ec\",\"query\":\"ban\"}]}");
        FILE *fp = fopen(in_path, "wb");
        assert_non_null(fp);
        fwrite("a\0b ban\nban two\n", 1, 17, fp);
        for (size_t i = 0; i < NA_MAX_ARTICLE_BYTES + 10; i++) {
            fputc('x', fp);
        }
        fputs("\nlast ban\n", fp);
        fclose(fp);
        char *argv_nul[] = {"classify", "--rules", rules_path, in_path, NULL};
        assert_int_equal(capture(na_cmd_classify, 4, argv_nul, &out, &err), 1);
        size_t lines = 0;
        for (const char *c = out; *c; c++) {
            lines += *c == '\n';
        }
        assert_int_equal(lines, 3);
        assert_non_null(strstr(out, "\"snippet\":\"a b ban\""));
        assert_non_null(strstr(out, "\"snippet\":\"last ban\""));
        assert_non_null(strstr(err, ":3: line longer than"));
        free(out);
        free(err);
    }
    /* $NEWSALERT_RULES is the default */
    write_file(rules_path, "{\"topics\":[{\"name\":\"x\",\"query\":\"nothing\"}]}");
    setenv("NEWSALERT_RULES", rules_path, 1);
    char *argv_env[] = {"classify", in_path, NULL};
    assert_int_equal(capture(na_cmd_classify, 2, argv_env, &out, &err), 1);
    assert_non_null(strstr(out, "\"topics\":[]"));
    unsetenv("NEWSALERT_RULES");
    free(out);
    free(err);
    unlink(rules_path);
    unlink(in_path);
}

/* Regression: classify refused an id that is not 64 hex digits, while
 * stories and eval took it; the subcommands now read through one reader. */
static void test_cmd_classify_takes_any_id(void **state) {
    (void)state;
    char rules_path[] = "/tmp/na_test_rules_rkXXXXXX";
    char in_path[] = "/tmp/na_test_rules_ikXXXXXX";
    char *out = NULL;
    char *err = NULL;
    close(mkstemp(rules_path));
    close(mkstemp(in_path));
    write_file(rules_path,
               "{\"topics\":[{\"name\":\"ec\",\"query\":\"export* NEAR/2 ban*\","
               "\"threshold\":1}]}");
    write_file(in_path,
               "{\"id\":\"case-7\",\"title\":\"Export ban\",\"text\":\"x\","
               "\"labels\":[\"ec\"],\"published_at\":\"2026-01-06T00:00:00Z\"}\n");
    char *argv[] = {"classify", "--rules", rules_path, in_path, NULL};
    int rc = capture(na_cmd_classify, 4, argv, &out, &err);
    assert_int_equal(rc, 0);
    json_error_t jerr;
    json_t *j = json_loads(out, 0, &jerr);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "id")), "case-7");
    assert_int_equal(json_array_size(json_object_get(j, "topics")), 1);
    json_decref(j);
    free(out);
    free(err);
    unlink(rules_path);
    unlink(in_path);
}

static void test_cmd_rules_test(void **state) {
    (void)state;
    char rules_path[] = "/tmp/na_test_rules_rjXXXXXX";
    char cases_path[] = "/tmp/na_test_rules_tcXXXXXX";
    char *out = NULL;
    char *err = NULL;
    close(mkstemp(rules_path));
    close(mkstemp(cases_path));
    write_file(rules_path,
               "{\"topics\":[{\"name\":\"a\",\"query\":\"alpha\",\"threshold\":2},"
               "{\"name\":\"b\",\"query\":\"beta\",\"exclude\":\"gamma\"}]}");
    write_file(cases_path,
               "{\"name\":\"both\",\"title\":\"alpha beta\",\"labels\":[\"a\",\"b\"]}\n"
               "{\"name\":\"none\",\"text\":\"nothing\",\"labels\":[]}\n"
               "{\"name\":\"low\",\"text\":\"alpha\",\"labels\":[\"a\"]}\n"
               "{\"name\":\"excl\",\"text\":\"beta gamma\",\"labels\":[\"b\"]}\n"
               "{\"name\":\"extra\",\"text\":\"beta\",\"labels\":[]}\n"
               "{\"name\":\"unknown\",\"text\":\"x\",\"labels\":[\"zzz\"]}\n");
    char *argv[] = {"rules", "test", cases_path, "--rules", rules_path, NULL};
    assert_int_equal(capture(na_cmd_rules, 5, argv, &out, &err), 1);
    assert_non_null(strstr(out, "ok   both (line 1)\n"));
    assert_non_null(strstr(out, "ok   none (line 2)\n"));
    assert_non_null(strstr(out, "FAIL low (line 3): missing a (score 1 < threshold 2)"));
    assert_non_null(strstr(out, "FAIL excl (line 4): missing b (excluded"));
    assert_non_null(
        strstr(out, "FAIL extra (line 5): unexpected b (score 1 >= threshold 1"));
    assert_non_null(strstr(out, "beta=\"beta\"@content"));
    assert_non_null(strstr(out, "FAIL unknown (line 6): label zzz is not a topic"));
    assert_non_null(strstr(out, "\n2 passed, 4 failed\n"));
    free(out);
    free(err);

    /* a JSON array of cases that all pass */
    write_file(cases_path, "[{\"title\":\"alpha\",\"labels\":[\"a\"]},"
                           "{\"summary\":\"beta\",\"labels\":[\"b\"]}]");
    assert_int_equal(capture(na_cmd_rules, 5, argv, &out, &err), 0);
    assert_non_null(strstr(out, "ok   case 1\n"));
    assert_non_null(strstr(out, "2 passed, 0 failed\n"));
    free(out);
    free(err);

    char *argv_usage[] = {"rules", "frob", NULL};
    assert_int_equal(capture(na_cmd_rules, 2, argv_usage, &out, &err), 2);
    free(out);
    free(err);
    char *argv_nofile[] = {"rules", "test", NULL};
    assert_int_equal(capture(na_cmd_rules, 2, argv_nofile, &out, &err), 2);
    free(out);
    free(err);
    char *argv_help[] = {"rules", "--help", NULL};
    assert_int_equal(capture(na_cmd_rules, 2, argv_help, &out, &err), 0);
    assert_non_null(strstr(out, "usage: newsalert-consumer rules test"));
    free(out);
    free(err);
    unlink(rules_path);
    unlink(cases_path);
}

static void test_cmd_rules_test_shipped_cases(void **state) {
    (void)state;
    char cases[1024];
    char rules[1024];
    char *out = NULL;
    char *err = NULL;
    src_path(cases, sizeof(cases), "examples/rules.tests.jsonl");
    src_path(rules, sizeof(rules), "examples/rules.json");
    char *argv[] = {"rules", "test", cases, "--rules", rules, NULL};
    int rc = capture(na_cmd_rules, 5, argv, &out, &err);
    if (rc) {
        print_error("%s%s", out, err);
    }
    assert_int_equal(rc, 0);
    assert_null(strstr(out, "FAIL"));
    assert_non_null(strstr(out, " passed, 0 failed\n"));
    free(out);
    free(err);
}

/* ---- the matcher's chunked scan reads words exactly as the tokeniser ---- */

struct seen_words {
    char fold[4096][NA_RULES_MAX_TERM_BYTES + 1];
    uint32_t v[4096][4];
    bool trunc[4096];
    size_t cnt;
};

static void seen_word(void *ctx, const char *fold, size_t len, bool truncated,
                      uint32_t pos, uint32_t pos_end, uint32_t bstart, uint32_t bend) {
    struct seen_words *sw = ctx;
    if (sw->cnt == 4096) {
        return;
    }
    snprintf(sw->fold[sw->cnt], sizeof(sw->fold[0]), "%.*s", (int)len, fold);
    sw->v[sw->cnt][0] = pos;
    sw->v[sw->cnt][1] = pos_end;
    sw->v[sw->cnt][2] = bstart;
    sw->v[sw->cnt][3] = bend;
    sw->trunc[sw->cnt] = truncated;
    sw->cnt++;
}

static void test_scan_matches_tokenizer(void **state) {
    (void)state;
    static const char *const parts[] = {
        "dual",
        "use",
        "-",
        "-",
        "'s",
        "'",
        ".",
        ".",
        "U",
        "S",
        "Taiwan",
        "export",
        " ",
        " ",
        " ",
        ",",
        ";",
        "\n",
        "\xc3\xa9",
        "\xc3\x89t\xc3\xa9",
        "\xe2\x80\x99s",
        "\xe2\x80\x99",
        "\xc2\xad",
        "\xe4\xb8\xad",
        "\xe2\x80\x91",
        "\xff",
        "2026",
        "A",
        "b",
        "\"",
        "(",
        "x1",
        "Stra\xc3\x9f"
        "e",
        "\xcc\x81",
        "policies",
        "--",
        "...",
        "e.g.",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
    struct seen_words *fast = calloc(1, sizeof(*fast));
    unsigned seed = 12345;
    assert_non_null(fast);
    for (int round = 0; round < 3000; round++) {
        char text[512];
        size_t len = 0;
        int n = 1 + (int)(rand_r(&seed) % 40);
        for (int i = 0; i < n; i++) {
            const char *p = parts[rand_r(&seed) % (sizeof(parts) / sizeof(parts[0]))];
            size_t l = strlen(p);
            if (len + l >= sizeof(text)) {
                break;
            }
            memcpy(text + len, p, l);
            len += l;
        }
        text[len] = '\0';
        struct na_rtoks t;
        na_rtoks_init(&t);
        t.split_decimals = true;
        t.split_decimals = true;
        assert_int_equal(na_rules_tokenize(text, len, &t), NA_OK);
        fast->cnt = 0;
        assert_int_equal(na_rules_scan_words(text, len, seen_word, fast), NA_OK);
        if (fast->cnt != t.cnt) {
            print_error("text \"%s\": %zu words, tokeniser %zu\n", text, fast->cnt,
                        t.cnt);
        }
        assert_int_equal(fast->cnt, t.cnt);
        for (size_t i = 0; i < t.cnt; i++) {
            const struct na_rtok *k = &t.v[i];
            char want[NA_RULES_MAX_TERM_BYTES + 1];
            snprintf(want, sizeof(want), "%.*s", (int)k->fold_len, t.text + k->fold_off);
            if (strcmp(want, fast->fold[i]) || k->pos != fast->v[i][0] ||
                k->pos_end != fast->v[i][1] || k->bstart != fast->v[i][2] ||
                k->bend != fast->v[i][3] || (bool)k->truncated != fast->trunc[i]) {
                print_error("text \"%s\" word %zu: \"%s\"@%u..%u [%u,%u) vs tokeniser "
                            "\"%s\"@%u..%u [%u,%u)\n",
                            text, i, fast->fold[i], fast->v[i][0], fast->v[i][1],
                            fast->v[i][2], fast->v[i][3], want, k->pos, k->pos_end,
                            k->bstart, k->bend);
                fail();
            }
        }
        na_rtoks_cleanup(&t);
    }
    free(fast);
}

/* ---- the fast scan gives the tokeniser's hits ---- */

/* Everything a classification says, as one string (caller frees). */
static char *classification_text(const na_rules_t *rules, const struct na_article *a) {
    struct na_classification c;
    struct na_buf b;
    assert_int_equal(na_rules_classify(rules, a, &c), NA_OK);
    na_buf_init(&b);
    for (size_t i = 0; i < c.matches_cnt; i++) {
        const struct na_match *m = &c.matches[i];
        na_buf_printf(&b, "%s %.17g [%s]", m->topic, m->score, m->snippet);
        for (size_t e = 0; e < m->evidence_cnt; e++) {
            const struct na_evidence *ev = &m->evidence[e];
            na_buf_printf(&b, " %s=%s@%s:%zu", ev->term, ev->matched, ev->field,
                          ev->offset);
        }
        na_buf_puts(&b, "\n");
    }
    na_classification_cleanup(&c);
    return na_buf_steal(&b);
}

/* Regression: with at most 256 keys of 4 bytes or more, the default scan
 * marked word starts with libvectorscan's literal database and looked up
 * only the words it reported. Version 5.4.9 misses literals next to bytes
 * >= 0x80 depending on where the buffer sits (a title in Chinese or
 * Russian naming Huawei: no topic). The default scan must find every key,
 * wherever the field sits in memory. */
static void test_default_scan_finds_keys_beside_non_ascii_text(void **state) {
    (void)state;
    static const char *const titles[] = {
        "\xe5\xaf\xb9\xe5\x8d\x8e \xe5\xaf\xb9\xe5\x8d\x8e \xe9\x87\x87\xe5\x8f\x96 "
        "\xe5\xaf\xb9\xe5\x8d\x8e \xe5\xbf\x85\xe8\xa6\x81 \xe5\x8f\x8d\xe5\xaf\xb9 "
        "\xe5\x95\x86\xe5\x8a\xa1\xe9\x83\xa8 \xe5\x90\x88\xe6\xb3\x95 Huawei's "
        "\xe8\x8a\xaf\xe7\x89\x87",
        "\xd0\x9f\xd0\xb5\xd0\xba\xd0\xb8\xd0\xbd "
        "\xd0\xb7\xd0\xb0\xd1\x8f\xd0\xb2\xd0\xb8"
        "\xd0\xbb, \xd1\x87\xd1\x82\xd0\xbe \xd0\xbd\xd0\xbe\xd0\xb2\xd1\x8b\xd0\xb5 "
        "\xd0\xbe\xd0\xb3\xd1\x80\xd0\xb0\xd0\xbd\xd0\xb8\xd1\x87\xd0\xb5\xd0\xbd\xd0\xb8"
        "\xd1\x8f \xd0\xa1\xd0\xa8\xd0\x90 \xd0\xbf\xd1\x80\xd0\xbe\xd1\x82\xd0\xb8\xd0"
        "\xb2 Nvidia \xd0\xbd\xd0\xb5\xd0\xb7\xd0\xb0\xd0\xba\xd0\xbe\xd0\xbd\xd0\xbd\xd1"
        "\x8b",
    };
    na_rules_t *rules = load_topic("Huawei OR Nvidia", NULL, 0.1);
    char *buf = aligned_alloc(64, 1024);
    assert_non_null(buf);
    assert_int_equal(na_rules_db_mode, NA_RULES_DB_AUTO);
    for (size_t t = 0; t < sizeof(titles) / sizeof(titles[0]); t++) {
        for (size_t off = 0; off < 64; off++) {
            struct na_article a;
            struct na_classification c;
            memset(buf, 0xe5, 1024);
            memcpy(buf + off, titles[t], strlen(titles[t]) + 1);
            na_article_init(&a);
            a.title = buf + off;
            assert_int_equal(na_rules_classify(rules, &a, &c), NA_OK);
            if (c.matches_cnt != 1) {
                print_error("title %zu at offset %zu: %zu topics\n", t, off,
                            c.matches_cnt);
                fail();
            }
            na_classification_cleanup(&c);
            a.title = NULL;
            na_article_cleanup(&a);
        }
    }
    free(buf);
    na_rules_destroy(rules);
}

/* Classify @p a with every scan mode; all must say the same. @returns how
 * many topics matched. */
static size_t same_in_every_mode(const na_rules_t *rules, const struct na_article *a) {
    static const enum na_rules_db_mode modes[] = {NA_RULES_DB_AUTO, NA_RULES_DB_BITMAP,
                                                  NA_RULES_DB_ALWAYS};
    na_rules_db_mode = NA_RULES_DB_OFF;
    char *want = classification_text(rules, a);
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        na_rules_db_mode = modes[i];
        char *got = classification_text(rules, a);
        if (strcmp(want, got)) {
            print_error("mode %d differs on title [%s] content [%s]:\n%s---\n%s\n",
                        (int)modes[i], a->title, a->content, want, got);
            fail();
        }
        free(got);
    }
    na_rules_db_mode = NA_RULES_DB_AUTO;
    size_t n = 0;
    for (const char *p = want; *p; p++) {
        n += *p == '\n';
    }
    free(want);
    return n;
}

static const char *const fast_words[] = {
    "export",
    "Exports",
    "EXPORTED",
    "policy",
    "policies",
    "Policies's",
    "army",
    "armies",
    "spy",
    "spies",
    "taxes",
    "tax",
    "U.S.",
    "us",
    "e.g.",
    "3.5",
    "a.1",
    "F.3",
    "dual-use",
    "dual",
    "use",
    "Taiwan's",
    "Taiwan’s",
    "taiwan",
    "Éxport",
    "éxports",
    "Łódź",
    "lodz",
    "台湾",
    "rare",
    "earth",
    "earths",
    "rare-earth",
    "x",
    "y",
    "it's",
    "o'clock",
    "semi\xc2\xad"
    "conductor",
    "semiconductor",
    "chip-making",
    "chips",
    "a.b",
    "-export",
    "export-",
    "'export'",
    "...",
    "-",
    "'s",
    "9",
    "2024",
    "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijexportxyz"};
static const char *const fast_seps[] = {" ", "  ", ", ", ". ", "\n", " - ", "\xc2\xa0",
                                        "—", " (", ") ", "; ", "“",  "” ",  "_"};

static void random_fast_text(struct na_buf *b, unsigned *seed, unsigned words) {
    for (unsigned w = 0; w < words; w++) {
        if (w) {
            na_buf_puts(b, rnd(seed) % 4 ? " " : fast_seps[rnd(seed) % 14]);
        }
        na_buf_puts(b,
                    fast_words[rnd(seed) % (sizeof(fast_words) / sizeof(*fast_words))]);
    }
}

/* 400 random titles and bodies: the same classification in every scan
 * mode. @returns the matches (topics) found in all. */
static size_t random_texts_same_in_every_mode(const na_rules_t *rules, unsigned seed) {
    size_t matched = 0;
    for (int i = 0; i < 400; i++) {
        struct na_buf t, c;
        struct na_article a;
        na_buf_init(&t);
        na_buf_init(&c);
        random_fast_text(&t, &seed, rnd(&seed) % 6);
        random_fast_text(&c, &seed, rnd(&seed) % 150);
        article(&a, t.data ? t.data : "", "", c.data ? c.data : "");
        matched += same_in_every_mode(rules, &a);
        na_article_cleanup(&a);
        na_buf_cleanup(&t);
        na_buf_cleanup(&c);
    }
    return matched;
}

static void test_fast_scan_equivalence(void **state) {
    (void)state;
    na_rules_t *rules = load_ok(
        "{\"topics\":["
        "{\"name\":\"a\",\"query\":\"export* OR \\\"rare earth\\\"\"},"
        "{\"name\":\"b\",\"query\":\"policy AND (army OR spy)\",\"threshold\":1},"
        "{\"name\":\"c\",\"query\":\"taiwan NEAR/3 tax\"},"
        "{\"name\":\"d\",\"query\":\"title:us OR \\\"dual use\\\" OR dualuse\"},"
        "{\"name\":\"e\",\"query\":\"semiconductor OR chipmaking OR lodz OR x\"},"
        "{\"name\":\"f\",\"query\":\"台湾 OR y OR 35 OR eg OR a1 OR f3\"},"
        "{\"name\":\"g\",\"query\":\"abcdefghi* NEAR/2 earth\"},"
        "{\"name\":\"h\",\"query\":\"\\\"export policy\\\" OR \\\"it clock\\\"\"}]}");
    assert_true(random_texts_same_in_every_mode(rules, 20261125) > 400);
    na_rules_destroy(rules);
}

/* Few keys: most chunks with - ' . hold none and are never tokenised, yet
 * the positions after them (NEAR, phrases, evidence offsets) are the
 * tokeniser's. */
static void test_fast_scan_equivalence_sparse(void **state) {
    (void)state;
    na_rules_t *rules = load_ok("{\"topics\":["
                                "{\"name\":\"a\",\"query\":\"taiwan NEAR/2 tax\"},"
                                "{\"name\":\"b\",\"query\":\"\\\"rare earth\\\"\"},"
                                "{\"name\":\"c\",\"query\":\"spy NEAR/1 army\"}]}");
    assert_true(random_texts_same_in_every_mode(rules, 77) > 100);
    na_rules_destroy(rules);
}

/* Regression: a dot between one-character parts joined them whatever they
 * were, so "2.5" also read as the word "25" and "3.5" as "35": a rule
 * about a 25 % tariff fired on a 2.5 % one. Only letters join across a dot
 * ("U.S." is "us"); a figure keeps its parts. Each case is classified in
 * every scan mode (a field the key database finds no key in is skipped
 * unless a dot or hyphen may join one). */
static void test_decimals_are_not_joined(void **state) {
    (void)state;
    static const struct {
        const char *in;
        const char *out[4];
    } toks[] = {
        {"2.5", {"2", "5"}},
        {"3.5 billion", {"3", "5", "billion"}},
        {"\xef\xbc\x92.\xef\xbc\x95", {"2", "5"}},       /* full-width 2.5 */
        {"\xd9\xa2.\xd9\xa5", {"\xd9\xa2", "\xd9\xa5"}}, /* Arabic-Indic */
        {"F.3", {"f", "3"}},
        {"a.1", {"a", "1"}},
        {"F.35", {"f", "35"}},
        {"U.S.", {"u", "s", "us"}},
        {"E.U.", {"e", "u", "eu"}},
        {"U.S.2", {"u", "s", "us", "2"}},
        {"\xc3\x89.U.", {"e", "u", "eu"}}, /* É.U. */
    };
    for (size_t i = 0; i < sizeof(toks) / sizeof(toks[0]); i++) {
        char w[5][80];
        size_t n;
        size_t want = 0;
        while (want < 4 && toks[i].out[want]) {
            want++;
        }
        fold_all(toks[i].in, w, 5, &n);
        if (n != want) {
            print_error("\"%s\": %zu words, want %zu\n", toks[i].in, n, want);
            fail();
        }
        for (size_t k = 0; k < n; k++) {
            assert_string_equal(w[k], toks[i].out[k]);
        }
    }
    /* Without split_decimals (the story engine's reading) "2.5" is also 25. */
    struct na_rtoks t;
    na_rtoks_init(&t);
    assert_int_equal(na_rules_tokenize("2.5", 3, &t), NA_OK);
    assert_int_equal(t.cnt, 3);
    assert_memory_equal(t.text + t.v[2].fold_off, "25", 2);
    na_rtoks_cleanup(&t);
    static const struct {
        const char *query;
        const char *text;
        size_t want;
    } cases[] = {
        {"\"25 percent\" NEAR/3 tariff*", "imposed a 2.5 percent tariff", 0},
        {"\"35 billion\"", "a 3.5 billion dollar deal", 0},
        {"35", "a 3.5 billion dollar deal", 0},
        {"2.5", "a 25 percent tariff", 0},
        {"\"2.5 percent\"", "a 2.5 percent tariff", 1},
        {"2.5 NEAR/2 percent", "a 2.5 percent tariff", 1},
        {"\"25 percent\" NEAR/3 tariff*", "imposed a 25 percent tariff", 1},
        {"\"3.5 billion\"", "a 3.5 billion dollar deal", 1},
        {"a1", "see a.1 below", 0},
        {"us", "the U.S. said", 1},
        {"U.S.", "the US said", 1},
        {"\"u s\"", "the U.S. said", 1},
        {"eu NEAR/2 tariff*", "E.U. tariffs", 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        na_rules_t *rules = load_topic(cases[i].query, NULL, 0);
        struct na_article a;
        article(&a, "", "", cases[i].text);
        size_t got = same_in_every_mode(rules, &a);
        if (got != cases[i].want) {
            print_error("query [%s] on [%s]: %zu matches, want %zu\n", cases[i].query,
                        cases[i].text, got, cases[i].want);
            fail();
        }
        na_article_cleanup(&a);
        na_rules_destroy(rules);
    }
}

/* The shipped rules on the development set: the same in every mode. */
static void test_fast_scan_dev_set(void **state) {
    (void)state;
    char path[4096];
    char errstr[512];
    char *buf = NULL;
    size_t len = 0;
    na_rules_t *rules = NULL;
    src_path(path, sizeof(path), "examples/rules.json");
    assert_int_equal(na_rules_load_file(path, &rules, errstr, sizeof(errstr)), NA_OK);
    src_path(path, sizeof(path), "data/dev.jsonl");
    assert_int_equal(na_read_file(path, 64u << 20, &buf, &len, errstr, sizeof(errstr)),
                     NA_OK);
    size_t lines = 0;
    size_t matched = 0;
    for (char *line = buf; line && *line;) {
        char *nl = strchr(line, '\n');
        json_t *o = json_loadb(line, nl ? (size_t)(nl - line) : strlen(line), 0, NULL);
        if (o) {
            struct na_article a;
            const char *title = json_string_value(json_object_get(o, "title"));
            const char *text = json_string_value(json_object_get(o, "text"));
            article(&a, title ? title : "", "", text ? text : "");
            matched += same_in_every_mode(rules, &a);
            na_article_cleanup(&a);
            json_decref(o);
            lines++;
        }
        line = nl ? nl + 1 : NULL;
    }
    assert_true(lines >= 150);
    assert_true(matched > 30);
    free(buf);
    na_rules_destroy(rules);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fold_case_and_accents),
        cmocka_unit_test(test_scan_matches_tokenizer),
        cmocka_unit_test(test_fold_plurals),
        cmocka_unit_test(test_tokenize_hyphens_possessives_acronyms),
        cmocka_unit_test(test_tokenize_invalid_utf8_and_cjk),
        cmocka_unit_test(test_query_operators),
        cmocka_unit_test(test_query_near),
        cmocka_unit_test(test_query_fields_and_weights),
        cmocka_unit_test(test_query_scoring_counts_true_branches_only),
        cmocka_unit_test(test_threshold_and_exclude),
        cmocka_unit_test(test_hyphens_accents_plurals_match),
        cmocka_unit_test(test_latin_ext_a_capitals_fold_to_their_own_letter),
        cmocka_unit_test(test_query_errors),
        cmocka_unit_test(test_query_hostile),
        cmocka_unit_test(test_rules_json_errors),
        cmocka_unit_test(test_version_and_counts),
        cmocka_unit_test(test_evidence_offsets),
        cmocka_unit_test(test_zero_weight_terms_are_not_evidence),
        cmocka_unit_test(test_snippet_cut_at_utf8_boundaries),
        cmocka_unit_test(test_hostile_articles),
        cmocka_unit_test(test_candidates_never_miss),
        cmocka_unit_test(test_default_scan_finds_keys_beside_non_ascii_text),
        cmocka_unit_test(test_fast_scan_equivalence),
        cmocka_unit_test(test_fast_scan_equivalence_sparse),
        cmocka_unit_test(test_fast_scan_dev_set),
        cmocka_unit_test(test_decimals_are_not_joined),
        cmocka_unit_test(test_concurrent_classify),
        cmocka_unit_test(test_thousands_of_topics),
        cmocka_unit_test(test_shipped_rules_short_texts),
        cmocka_unit_test(test_shipped_rules_sample_feeds),
        cmocka_unit_test(test_cmd_classify),
        cmocka_unit_test(test_cmd_classify_takes_any_id),
        cmocka_unit_test(test_cmd_rules_test),
        cmocka_unit_test(test_cmd_rules_test_shipped_cases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
