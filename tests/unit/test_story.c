/*
 * Story grouping: paraphrased reports of one event form one story, other
 * stories of the same weeks stay apart (the development set's story keys
 * and the five seed reports of ../shared/seeds/ when present), the window,
 * signatures and seeding after a restart, alert ids.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd_eval.h"
#include "newsalert/article.h"
#include "newsalert/fault.h"
#include "newsalert/metrics.h"
#include "newsalert/timeutil.h"
#include "newsalert/util.h"
#include "story.h"
#include "story_internal.h"
#include "story_mem.h"
#include "story_text_ref.h"
#include "story_train.h"
#include "testenv.h"

#define DAY (24 * 3600)
#define SEED_STORY "cn-jp-dualuse-ban-2026"

static const char *src_dir(void) {
    const char *d = getenv("NA_SOURCE_DIR");
    return d && *d ? d : ".";
}

static void mk(struct na_article *a, const char *id, const char *title, const char *text,
               int64_t t) {
    na_article_init(a);
    snprintf(a->id, sizeof(a->id), "%s", id);
    a->title = na_strdup(title);
    a->content = na_strdup(text);
    a->published_at = t;
}

static void assign(na_stories_t *st, const char *id, const char *title, const char *text,
                   int64_t t, char story[65], bool *is_new) {
    struct na_article a;
    mk(&a, id, title, text, t);
    assert_int_equal(na_stories_assign(st, &a, story, is_new), NA_OK);
    na_article_cleanup(&a);
}

static const char *const ban_a_title = "China bans dual-use exports to Japan's military";
static const char *const ban_a =
    "China's Ministry of Commerce on January 6 banned exports of dual-use items to "
    "Japanese military end users, after Prime Minister Sanae Takaichi's remarks on "
    "Taiwan. Rare earths such as dysprosium could be affected, analysts said.";
static const char *const ban_b_title = "Tokyo protests Beijing's dual-use export ban";
static const char *const ban_b =
    "Japan lodged a protest after the Chinese Ministry of Commerce prohibited, from "
    "January 6, the sale of dual-use goods to Japan's armed forces. The measure follows "
    "Sanae Takaichi's comments about Taiwan; dysprosium and other rare earths may be "
    "covered.";
static const char *const other_title = "Dutch wasp season breaks records";
static const char *const other =
    "Pest control firms in Utrecht and Rotterdam answered 41,000 calls about wasp nests "
    "in August, the Netherlands Pest Association said, a record for the summer months.";

static void test_paraphrases_join_unrelated_apart(void **state) {
    (void)state;
    na_stories_t *st = na_stories_new(3 * DAY * 1000LL);
    char s1[65], s2[65], s3[65];
    bool n1, n2, n3;
    assert_non_null(st);
    assign(st, "a", ban_a_title, ban_a, 1767690000, s1, &n1);
    assign(st, "b", other_title, other, 1767693600, s2, &n2);
    assign(st, "c", ban_b_title, ban_b, 1767697200, s3, &n3);
    assert_true(n1);
    assert_true(n2);
    assert_false(n3);
    assert_string_equal(s1, s3);
    assert_string_not_equal(s1, s2);
    assert_int_equal(na_stories_count(st), 2);
    assert_int_equal(na_story_article_count(st, s1), 2);
    /* Counted: two new stories, one joined, two open. */
    assert_true(na_metric_value(na_metrics_get(NA_METRIC_COUNTER,
                                               "newsalert_story_articles_total", "x",
                                               "outcome=\"joined\"")) >= 1);
    assert_true(na_metric_value(na_metrics_get(NA_METRIC_GAUGE, "newsalert_story_open",
                                               "x", NULL)) == 2);
    /* Ids: SHA-256 of "story/v1" and the first article's id. */
    char want[65];
    const char *parts[] = {"story/v1", "a", NULL};
    assert_int_equal(na_sha256_hex_parts(parts, want), NA_OK);
    assert_string_equal(s1, want);
    na_stories_destroy(st);
}

/* The dictionary forgets what no open story has and recent documents do
 * not use: with 60,000 articles, each naming things of its own, it stays
 * bounded; a story open across the forgetting keeps its features and is
 * still found. */
static void test_dictionary_forgets_old_features(void **state) {
    (void)state;
    /* a one-minute window, stories kept a day past it */
    const struct na_stories_opts o = {
        .window_ms = 60 * 1000LL, .reorder_ms = DAY * 1000LL, .reorder_set = true};
    na_stories_t *st = na_stories_new_opts(&o);
    char story[65], ban[65];
    bool is_new;
    char id[32], title[128], text[256];
    size_t before = 0, after = 0, peak = 0;
    const int64_t base = 1767690000;
    assert_non_null(st);
    for (int i = 0; i < 60000; i++) {
        int64_t t = base + (int64_t)i * 10;
        snprintf(id, sizeof(id), "a%d", i);
        if (i == 29998) {
            assign(st, id, ban_a_title, ban_a, t, ban, &is_new);
            assert_true(is_new);
            continue;
        }
        if (i == 30001) {
            /* after the second halving of the document frequencies (the
             * 20,000th document, then 10,000 more), when features seen once
             * before it are forgotten: the same story */
            after = na_stories_feature_count(st);
            assign(st, id, ban_b_title, ban_b, t, story, &is_new);
            assert_false(is_new);
            assert_string_equal(story, ban);
            /* the stories' indexes, stale since the renumbering, rebuilt
             * whole when read */
            char why[256];
            if (!na_stories_check(st, NULL, why, sizeof(why))) {
                fail_msg("after the forgetting: %s", why);
            }
            continue;
        }
        if (i == 29999) {
            before = na_stories_feature_count(st);
        }
        snprintf(title, sizeof(title), "Qorvane%d unveils Trellix%d", i, i);
        snprintf(text, sizeof(text),
                 "Qorvane%d said on Tuesday its Trellix%d line would ship %d units "
                 "from Velmora%d, chief executive Andrin%d told reporters.",
                 i, i, 1000 + i, i, i);
        assign(st, id, title, text, t, story, &is_new);
        size_t n = na_stories_feature_count(st);
        peak = n > peak ? n : peak;
    }
    size_t end = na_stories_feature_count(st);
    print_message(
        "story dictionary: %zu features before the first forgetting, %zu after, "
        "%zu at the end, peak %zu\n",
        before, after, end, peak);
    /* Each article brings about 8 features of its own, 480,000 in all: before
     * the first forgetting the dictionary has them all; then it holds those
     * of the last 10,000 to 20,000 documents, so at the end it is smaller
     * than half-way. */
    assert_true(before > 7 * 29998);
    assert_true(after < before / 2);
    assert_true(end < before);
    assert_true(peak <= before + 100);
    na_stories_destroy(st);
}

static void test_window_closes_stories(void **state) {
    (void)state;
    const struct na_stories_opts o = {
        .window_ms = 2 * DAY * 1000LL, .reorder_ms = DAY * 1000LL, .reorder_set = true};
    na_stories_t *st = na_stories_new_opts(&o);
    char s1[65], s2[65], s3[65];
    bool is_new;
    assign(st, "a", ban_a_title, ban_a, 1767690000, s1, &is_new);
    /* A day later: same story. */
    assign(st, "b", ban_b_title, ban_b, 1767690000 + DAY, s2, &is_new);
    assert_string_equal(s1, s2);
    /* Three days after the newest (window and reorder allowance): the story
     * was closed, a new one opens. */
    assign(st, "c", ban_a_title, ban_a, 1767690000 + 4 * DAY + 1, s3, &is_new);
    assert_true(is_new);
    assert_string_not_equal(s1, s3);
    assert_int_equal(na_story_article_count(st, s1), 0);
    assert_null(na_story_signature(st, s1));
    assert_int_equal(na_stories_count(st), 1);
    /* Explicit eviction. */
    assert_int_equal(na_stories_evict(st, 1767690000 + 100 * DAY), 1);
    assert_int_equal(na_stories_count(st), 0);
    na_stories_destroy(st);
}

/* Regression: one article dated 2099 moved the story clock and closed every
 * open story, so each later report opened a new one (and alerted again);
 * its ledger record did the same at every restart. */
static void test_future_dated_article_closes_no_story(void **state) {
    (void)state;
    na_stories_t *st = na_stories_new(3 * DAY * 1000LL);
    char s1[65], s2[65], s3[65], s4[65];
    bool is_new;
    int64_t now = na_now_ms() / 1000;
    int64_t y2099 = 4070908800; /* 2099-01-01 */
    assign(st, "a", ban_a_title, ban_a, now - 3600, s1, &is_new);
    assert_true(is_new);
    /* Dated 2099 with no fetch time: taken as the wall clock (plus slack). */
    assign(st, "z", other_title, other, y2099, s2, &is_new);
    assert_true(is_new);
    /* Dated 2099, fetched now: taken as its fetch time. */
    struct na_article a;
    mk(&a, "y", other_title, other, y2099);
    a.fetched_at = now;
    assert_int_equal(na_stories_assign(st, &a, s3, &is_new), NA_OK);
    na_article_cleanup(&a);
    /* The story opened an hour ago is still open: the next report joins. */
    assign(st, "b", ban_b_title, ban_b, now, s4, &is_new);
    assert_false(is_new);
    assert_string_equal(s1, s4);
    /* A ledger record dated 2099 does not move the clock either. */
    json_t *sig = na_story_signature(st, s2);
    assert_non_null(sig);
    na_stories_t *st2 = na_stories_new(3 * DAY * 1000LL);
    assert_int_equal(na_stories_seed(st2, s2, sig, y2099), NA_OK);
    assign(st2, "c", ban_a_title, ban_a, now - 3600, s3, &is_new);
    assign(st2, "d", ban_b_title, ban_b, now, s4, &is_new);
    assert_false(is_new);
    assert_string_equal(s3, s4);
    assert_int_equal(na_stories_count(st2), 2);
    json_decref(sig);
    na_stories_destroy(st2);
    na_stories_destroy(st);
}

static void test_signature_seed_restart(void **state) {
    (void)state;
    na_stories_t *st = na_stories_new(0);
    char s1[65], s2[65], s3[65];
    bool is_new = true;
    assign(st, "a", ban_a_title, ban_a, 1767690000, s1, &is_new);
    json_t *sig = na_story_signature(st, s1);
    assert_non_null(sig);
    assert_int_equal(json_integer_value(json_object_get(sig, "n")), 1);
    assert_int_equal(json_integer_value(json_object_get(sig, "t")), 1767690000);
    assert_true(json_object_size(json_object_get(sig, "f")) > 10);
    assert_true(json_object_size(json_object_get(sig, "f")) <= 200);
    /* Through text, as the ledger stores it. */
    char *text = json_dumps(sig, JSON_COMPACT);
    json_decref(sig);
    json_t *back = json_loads(text, 0, NULL);
    free(text);
    assert_non_null(back);
    na_stories_destroy(st);

    /* A restarted daemon seeds from the ledger: the next report joins. */
    st = na_stories_new(0);
    assert_int_equal(na_stories_seed(st, s1, back, NA_TIME_UNKNOWN), NA_OK);
    assert_int_equal(na_stories_count(st), 1);
    assign(st, "b", ban_b_title, ban_b, 1767697200, s2, &is_new);
    assert_false(is_new);
    assert_string_equal(s1, s2);
    assert_int_equal(na_story_article_count(st, s1), 2);
    /* Seeding an older snapshot of an open story (a second ledger record
     * of it) counts nothing twice: the open story holds more articles. */
    assert_int_equal(na_stories_seed(st, s1, back, 1767697200), NA_OK);
    assert_int_equal(na_stories_count(st), 1);
    assert_int_equal(na_story_article_count(st, s1), 2);
    assert_int_equal(na_story_first_seen(st, s1), 1767690000);
    /* Unrelated article: its own story. */
    assign(st, "c", other_title, other, 1767697300, s3, &is_new);
    assert_true(is_new);
    /* Bad seeds. */
    assert_int_equal(na_stories_seed(st, "xyz", back, 1), NA_ERR_INVALID);
    json_t *bad = json_pack("{s:i, s:i, s:{s:s}}", "v", 1, "n", 1, "f", "t:x", "y");
    assert_int_equal(na_stories_seed(st, s1, bad, 1767697200), NA_ERR_INVALID);
    json_decref(bad);
    bad = json_pack("{s:i, s:i}", "v", 1, "n", 1);
    assert_int_equal(na_stories_seed(st, s1, bad, 1767697200), NA_ERR_INVALID);
    json_decref(bad);
    /* A seed older than the window is ignored. */
    assert_int_equal(na_stories_seed(st, s3, back, 1767697300 - 30 * DAY), NA_OK);
    assert_int_equal(na_stories_count(st), 2);
    json_decref(back);
    na_stories_destroy(st);
}

/* Time is a bound, in any order: the same text dated more than the window
 * outside a story's span never joins it, whether it comes after the story's
 * articles or before them; within the window it joins in either order, and
 * the story's span (first seen) is its articles' times. */
static void test_time_bound_in_any_order(void **state) {
    (void)state;
    const int64_t t0 = 1767690000;
    const struct na_stories_opts o = {
        .window_ms = 2 * DAY * 1000LL, .reorder_ms = -1, .reorder_set = true};
    char s1[65], s2[65], s3[65];
    bool is_new;

    /* Later by the window and an hour: apart, in both orders. */
    for (int order = 0; order < 2; order++) {
        na_stories_t *st = na_stories_new_opts(&o);
        assert_non_null(st);
        int64_t first = order ? t0 + 2 * DAY + 3600 : t0;
        int64_t second = order ? t0 : t0 + 2 * DAY + 3600;
        assign(st, "a", ban_a_title, ban_a, first, s1, &is_new);
        assign(st, "b", ban_a_title, ban_a, second, s2, &is_new);
        assert_true(is_new);
        assert_string_not_equal(s1, s2);
        na_stories_destroy(st);
    }
    /* A day apart: together, in both orders; the span is the articles'. */
    for (int order = 0; order < 2; order++) {
        na_stories_t *st = na_stories_new_opts(&o);
        assert_non_null(st);
        assign(st, "a", ban_a_title, ban_a, order ? t0 + DAY : t0, s1, &is_new);
        assign(st, "b", ban_a_title, ban_a, order ? t0 : t0 + DAY, s2, &is_new);
        assert_false(is_new);
        assert_string_equal(s1, s2);
        assert_int_equal(na_story_first_seen(st, s1), t0);
        /* The span [t0, t0 + 1d] reaches 2 days either side of it. */
        assign(st, "c", ban_a_title, ban_a, t0 + 3 * DAY - 60, s3, &is_new);
        assert_false(is_new);
        assign(st, "d", ban_a_title, ban_a, t0 - 2 * DAY - 3600, s3, &is_new);
        assert_true(is_new);
        assert_int_equal(na_story_article_count(st, s1), 3);
        assert_int_equal(na_story_first_seen(st, s1), t0);
        na_stories_destroy(st);
    }
}

/* The reorder allowance closes stories by the story clock: with none, a
 * story closes once the newest time seen is a window past its newest
 * article, and an article of its days arriving later opens another; with
 * "unlimited" the story is still there. */
static void test_reorder_allowance(void **state) {
    (void)state;
    const int64_t t0 = 1767690000;
    char s1[65], s2[65], s3[65];
    bool is_new;
    for (int unlimited = 0; unlimited < 2; unlimited++) {
        const struct na_stories_opts o = {.window_ms = 2 * DAY * 1000LL,
                                          .reorder_ms = unlimited ? -1 : 0,
                                          .reorder_set = true};
        na_stories_t *st = na_stories_new_opts(&o);
        assert_non_null(st);
        assign(st, "a", ban_a_title, ban_a, t0, s1, &is_new);
        assign(st, "z", other_title, other, t0 + 3 * DAY, s2, &is_new);
        assign(st, "b", ban_b_title, ban_b, t0 + 3600, s3, &is_new);
        assert_int_equal(is_new, !unlimited);
        assert_int_equal(strcmp(s1, s3) == 0, unlimited);
        na_stories_destroy(st);
    }
}

/* The model decides: one that never joins opens a story per article, even
 * for the same text; one that always joins puts every candidate of the
 * window (a story sharing a feature with the article) into one story, and
 * the window still bounds it. */
static void test_model_weights_decide(void **state) {
    (void)state;
    static const char *const never =
        "{\"schema\":\"story-model/v1\",\"threshold\":0.5,"
        "\"weights\":{\"bias\":-40,\"terms\":0,\"names\":0,"
        "\"figures\":0,\"dates\":0,\"title\":0,\"figures_both\":0,"
        "\"dates_both\":0,\"gap\":0,\"size\":0,\"terms_x_names\":0,"
        "\"span\":0,\"title_text\":0,\"text_title\":0}}";
    char errstr[256];
    char text[1024];
    na_story_model_t *m = NULL;
    const int64_t t0 = 1767690000;
    char s1[65], s2[65], s3[65];
    bool is_new;
    for (int always = 0; always < 2; always++) {
        snprintf(text, sizeof(text), "%s", never);
        if (always) {
            memcpy(strstr(text, "-40"), " 40", 3);
        }
        assert_int_equal(
            na_story_model_parse(text, strlen(text), &m, errstr, sizeof(errstr)), NA_OK);
        const struct na_stories_opts o = {.window_ms = 2 * DAY * 1000LL, .model = m};
        na_stories_t *st = na_stories_new_opts(&o);
        assert_non_null(st);
        assign(st, "a", ban_a_title, ban_a, t0, s1, &is_new);
        /* the same text: apart when the model says never */
        assign(st, "b", ban_a_title, ban_a, t0 + 3600, s2, &is_new);
        assert_int_equal(strcmp(s1, s2) == 0, always);
        /* one word in common (what makes a candidate): together when it
         * says always */
        assign(st, "c", other_title, "Dysprosium was not among the finds, it said.",
               t0 + 7200, s2, &is_new);
        assert_int_equal(strcmp(s1, s2) == 0, always);
        assign(st, "d", ban_a_title, ban_a, t0 + 5 * DAY, s3, &is_new);
        assert_true(is_new);
        na_stories_destroy(st);
        na_story_model_destroy(m);
        m = NULL;
    }
}

/* Model files: the shipped one reads back as written; a file this engine
 * cannot use is refused with the reason. */
static void test_model_file(void **state) {
    (void)state;
    static const struct {
        const char *text, *want;
    } bad[] = {
        {"{", "line 1"},
        {"{\"schema\":\"story-model/v2\",\"weights\":{},\"threshold\":0.5}", "schema"},
        {"{\"schema\":\"story-model/v1\",\"weights\":[],\"threshold\":0.5}", "weights"},
        {"{\"schema\":\"story-model/v1\",\"weights\":{},\"threshold\":1.5}", "threshold"},
        {"{\"schema\":\"story-model/v1\",\"weights\":{\"bias\":1},\"threshold\":0.5}",
         "no \"terms\""},
        {"{\"schema\":\"story-model/v1\",\"weights\":{\"bias\":1,\"colour\":2},"
         "\"threshold\":0.5}",
         "\"colour\" is not an input"},
        {"{\"schema\":\"story-model/v1\",\"weights\":{\"bias\":\"1\"},\"threshold\":0.5}",
         "\"bias\": not a finite number"},
    };
    char errstr[256];
    na_story_model_t *m = NULL;
    const na_story_model_t *def = na_story_model_default();
    assert_non_null(def);
    json_t *root = na_story_model_to_json(def);
    assert_non_null(root);
    char *text = json_dumps(root, JSON_COMPACT);
    assert_int_equal(na_story_model_parse(text, strlen(text), &m, errstr, sizeof(errstr)),
                     NA_OK);
    json_t *again = na_story_model_to_json(m);
    assert_true(json_equal(root, again));
    assert_non_null(json_object_get(root, "trained"));
    json_decref(again);
    json_decref(root);
    free(text);
    na_story_model_destroy(m);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        m = (na_story_model_t *)1;
        errstr[0] = '\0';
        assert_int_equal(na_story_model_parse(bad[i].text, strlen(bad[i].text), &m,
                                              errstr, sizeof(errstr)),
                         NA_ERR_INVALID);
        assert_null(m);
        if (!strstr(errstr, bad[i].want)) {
            print_error("%s: \"%s\" does not say %s\n", bad[i].text, errstr, bad[i].want);
            fail();
        }
    }
    assert_int_not_equal(
        na_story_model_load("/nonexistent/model.json", &m, errstr, sizeof(errstr)),
        NA_OK);
    assert_null(m);
    na_story_model_destroy(NULL);
}

static void test_alert_id(void **state) {
    (void)state;
    char a[65], b[65], c[65], want[65];
    const char *parts[] = {"alert/v1", "s1", "taiwan", NULL};
    assert_int_equal(na_story_alert_id("s1", "taiwan", a), NA_OK);
    assert_int_equal(na_story_alert_id("s1", "taiwan", b), NA_OK);
    assert_int_equal(na_story_alert_id("s1", "rare_earths", c), NA_OK);
    assert_int_equal(na_sha256_hex_parts(parts, want), NA_OK);
    assert_string_equal(a, want);
    assert_string_equal(a, b);
    assert_string_not_equal(a, c);
}

/* The features of one title, as the story's signature lists them. */
static json_t *features_of(const char *title) {
    na_stories_t *st = na_stories_new(3 * DAY * 1000LL);
    char story[65];
    assert_non_null(st);
    assign(st, "a", title, "", 1767690000, story, NULL);
    json_t *sig = na_story_signature(st, story);
    assert_non_null(sig);
    json_t *f = json_incref(json_object_get(sig, "f"));
    assert_non_null(f);
    json_decref(sig);
    na_stories_destroy(st);
    return f;
}

/* Regression: grouping folds words through the rules tokeniser, whose Latin
 * Extended-A table folded capitals from U+0162 on to the letter before
 * theirs, so "Ţiriac" gave the feature of "siriac" and "Ţara" that of
 * "sara": a capital and its small letter must give the same features. */
static void test_story_features_fold_latin_ext_a_capitals(void **state) {
    (void)state;
    static const char *const pairs[][2] = {
        {"talks with \xc5\xa2iriac in Bucharest",
         "talks with \xc5\xa3iriac in Bucharest"},
        {"floods in \xc5\xa2"
         "ara Hategului",
         "floods in \xc5\xa3"
         "ara Hategului"},
        {"the \xc5\xb9"
         "agreb summit",
         "the \xc5\xba"
         "agreb summit"},
    };
    static const char *const want[] = {"tiriac", "tara", "zagreb"};
    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
        json_t *upper = features_of(pairs[i][0]);
        json_t *lower = features_of(pairs[i][1]);
        if (!json_equal(upper, lower)) {
            char *u = json_dumps(upper, JSON_SORT_KEYS);
            char *l = json_dumps(lower, JSON_SORT_KEYS);
            print_error("features differ:\n  %s\n  %s\n", u, l);
            free(u);
            free(l);
            fail();
        }
        bool found = false;
        const char *key;
        json_t *v;
        json_object_foreach(upper, key, v) {
            found = found || strstr(key, want[i]) != NULL;
        }
        assert_true(found);
        json_decref(upper);
        json_decref(lower);
    }
}

static void test_hostile_input(void **state) {
    (void)state;
    na_stories_t *st = na_stories_new(1000);
    struct na_article a;
    char s[65];
    na_article_init(&a);
    snprintf(a.id, sizeof(a.id), "empty");
    /* No fields, no time. */
    assert_int_equal(na_stories_assign(st, &a, s, NULL), NA_OK);
    a.content = malloc(200001);
    for (size_t i = 0; i < 200000; i++) {
        a.content[i] = "Aa1 .\n\xc3\xa9"[i % 8];
    }
    a.content[200000] = '\0';
    assert_int_equal(na_stories_assign(st, &a, s, NULL), NA_OK);
    na_article_cleanup(&a);
    na_stories_destroy(st);
}

/* ---- the development set and the seed reports ---- */

struct item {
    struct na_article a;
    char *story; /* gold key */
    char got[65];
};

static int item_cmp(const void *x, const void *y) {
    const struct item *a = x;
    const struct item *b = y;
    if (a->a.published_at != b->a.published_at) {
        return a->a.published_at < b->a.published_at ? -1 : 1;
    }
    return strcmp(a->a.id, b->a.id);
}

static size_t load_dev(struct item **out) {
    char path[4096];
    char *buf = NULL;
    size_t len = 0;
    char errstr[256];
    size_t n = 0;
    struct item *v = calloc(1000, sizeof(*v));
    assert_non_null(v);
    snprintf(path, sizeof(path), "%s/data/dev.jsonl", src_dir());
    assert_int_equal(na_read_file(path, 16u << 20, &buf, &len, errstr, sizeof(errstr)),
                     NA_OK);
    for (char *line = buf; line && *line && n < 1000;) {
        char *nl = strchr(line, '\n');
        if (nl) {
            *nl = '\0';
        }
        if (*line) {
            json_t *obj = json_loads(line, 0, NULL);
            assert_non_null(obj);
            na_article_init(&v[n].a);
            assert_int_equal(na_eval_article(obj, &v[n].a, errstr, sizeof(errstr)),
                             NA_OK);
            v[n].story = na_strdup(json_string_value(json_object_get(obj, "story")));
            assert_non_null(v[n].story);
            json_decref(obj);
            n++;
        }
        line = nl ? nl + 1 : NULL;
    }
    free(buf);
    *out = v;
    return n;
}

/* Adds the seed reports (first line = title) at @p v[n..]; @returns how many. */
static size_t load_seeds(struct item *v, size_t n) {
    char dir[4096];
    struct dirent **names = NULL;
    size_t added = 0;
    snprintf(dir, sizeof(dir), "%s/../shared/seeds", src_dir());
    int cnt = scandir(dir, &names, NULL, alphasort);
    for (int i = 0; i < cnt; i++) {
        char path[8192];
        char *buf = NULL;
        size_t len = 0;
        char errstr[256];
        if (strstr(names[i]->d_name, ".txt") && n + added < 1000) {
            snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
            assert_int_equal(
                na_read_file(path, 1u << 20, &buf, &len, errstr, sizeof(errstr)), NA_OK);
            struct item *it = &v[n + added];
            char *nl = strchr(buf, '\n');
            na_article_init(&it->a);
            snprintf(it->a.id, sizeof(it->a.id), "seed-%.40s", names[i]->d_name);
            it->a.title = na_strndup(buf, nl ? (size_t)(nl - buf) : len);
            it->a.content = na_strdup(nl ? nl + 1 : "");
            /* Reports of 7 and 8 January 2026, a few hours apart. */
            it->a.published_at = 1767744000 + (int64_t)added * 7 * 3600;
            it->story = na_strdup(SEED_STORY);
            free(buf);
            added++;
        }
        free(names[i]);
    }
    free(names);
    return added;
}

static void test_dev_set_and_seeds(void **state) {
    (void)state;
    struct item *v = NULL;
    size_t n = load_dev(&v);
    size_t seeds = load_seeds(v, n);
    assert_true(n >= 150);
    n += seeds;
    qsort(v, n, sizeof(*v), item_cmp);
    na_stories_t *st = na_stories_new(NA_STORY_WINDOW_MS_DEFAULT);
    for (size_t i = 0; i < n; i++) {
        char why[256];
        assert_int_equal(na_stories_assign(st, &v[i].a, v[i].got, NULL), NA_OK);
        /* the index whole after each report (joins at the places the
         * scoring found, closing, pruning) */
        if (!na_stories_check(st, NULL, why, sizeof(why))) {
            fail_msg("after %s: %s", v[i].a.id, why);
        }
    }
    /* Pairwise precision and recall of the grouping against the story keys. */
    size_t tp = 0, fp = 0, fn = 0;
    for (size_t i = 0; i < n; i++) {
        for (size_t j = i + 1; j < n; j++) {
            bool gold = !strcmp(v[i].story, v[j].story);
            bool got = !strcmp(v[i].got, v[j].got);
            tp += gold && got;
            fp += got && !gold;
            fn += gold && !got;
            if (got && !gold) {
                print_message("joined across stories: %s (%s) and %s (%s)\n", v[i].a.id,
                              v[i].story, v[j].a.id, v[j].story);
            }
        }
    }
    double p = tp + fp ? (double)tp / (double)(tp + fp) : 1.0;
    double r = tp + fn ? (double)tp / (double)(tp + fn) : 1.0;
    print_message("story grouping: %zu articles (%zu seed reports), pairwise precision "
                  "%.3f recall %.3f (tp %zu fp %zu fn %zu)\n",
                  n, seeds, p, r, tp, fp, fn);
    assert_true(p >= 0.95);
    assert_true(r >= 0.50);

    /* The seed reports: one story, and nothing from another story in it. */
    const char *seed_story = NULL;
    for (size_t i = 0; i < n; i++) {
        if (!strncmp(v[i].a.id, "seed-", 5)) {
            if (!seed_story) {
                seed_story = v[i].got;
            }
            assert_string_equal(v[i].got, seed_story);
        }
    }
    for (size_t i = 0; seed_story && i < n; i++) {
        if (!strcmp(v[i].got, seed_story)) {
            assert_string_equal(v[i].story, SEED_STORY);
        }
    }
    na_stories_destroy(st);
    for (size_t i = 0; i < n; i++) {
        na_article_cleanup(&v[i].a);
        free(v[i].story);
    }
    free(v);
    if (!seeds) {
        /* The rest of the test ran; this part needs data outside the repo. */
        NA_TEST_SKIP("../shared/seeds not present: the seed reports were not checked");
    }
}

/* A made-up word: @p prefix and @p v in five letters. */
static void made_word(char *buf, size_t size, const char *prefix, unsigned v) {
    snprintf(buf, size, "%s%c%c%c%c%c", prefix, 'a' + v % 26, 'a' + v / 26 % 26,
             'a' + v / 676 % 26, 'a' + v / 17576 % 26, 'a' + v / 456976 % 26);
}

/* Long report @p i of a made-up corpus (4 reports an event, 10 minutes
 * apart): 70 words of its own, then 40 of a pool of 60 that most reports
 * share (so that they are in more stories than a scan reads, and found by
 * the common-feature pass, at the article's index 70 and later), then 10
 * of its event. */
static void long_report(unsigned i, struct na_article *a) {
    char text[4096], w[16];
    size_t n = 0;
    for (unsigned k = 0; k < 120; k++) {
        if (k < 70) {
            made_word(w, sizeof(w), "uq", i * 70 + k);
        } else if (k < 110) {
            made_word(w, sizeof(w), "bg", (i + (k - 70) * 7) % 60);
        } else {
            made_word(w, sizeof(w), "ev", i / 4 * 10 + (k - 110));
        }
        n += (size_t)snprintf(text + n, sizeof(text) - n, "%s%s", k ? " " : "", w);
    }
    char id[32];
    snprintf(id, sizeof(id), "long-%u", i);
    mk(a, id, "", text, 1767225600 + (int64_t)i * 600);
}

/* Fisher-Yates over @p v[0..n), from @p seed; @p with (may be NULL), an
 * array of as many pointers, moved with them. */
static void shuffle_with(struct item *v, na_story_read_t **with, size_t n,
                         uint64_t seed) {
    uint64_t r = seed;
    for (size_t i = n - 1; i > 0; i--) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        size_t j = (size_t)((r >> 33) % (i + 1));
        struct item tmp = v[i];
        v[i] = v[j];
        v[j] = tmp;
        if (with) {
            na_story_read_t *w = with[i];
            with[i] = with[j];
            with[j] = w;
        }
    }
}

/* Fisher-Yates over @p v[0..n), from @p seed. */
static void shuffle_items(struct item *v, size_t n, uint64_t seed) {
    shuffle_with(v, NULL, n, seed);
}

/* The scoring's shortcuts (the features scanned chosen by classes in one
 * pass; each candidate's common features filtered, probed and added from
 * a bit mask) give what the plain computations give: over the dev set and
 * a made-up corpus of long reports, each in published order and in two
 * shuffles, every article's scanned features and every candidate's dot
 * products are checked (na_stories_set_verify()); the check meets common
 * features past the article's 64th. */
static void test_scoring_matches_plain_computation(void **state) {
    (void)state;
    struct item *dev = NULL;
    size_t dev_n = load_dev(&dev);
    const size_t long_n = 360;
    struct item *lng = calloc(long_n, sizeof(*lng));
    size_t late_hits = 0, cut = 0;
    assert_true(dev_n >= 150);
    assert_non_null(lng);
    qsort(dev, dev_n, sizeof(*dev), item_cmp);
    for (unsigned i = 0; i < long_n; i++) {
        long_report(i, &lng[i].a);
    }
    for (unsigned corpus = 0; corpus < 2; corpus++) {
        struct item *v = corpus ? lng : dev;
        size_t n = corpus ? long_n : dev_n;
        for (unsigned order = 0; order < 3; order++) {
            struct na_story_verify check = {0};
            /* every story kept open, as `stories` reads a file */
            struct na_stories_opts o = {.reorder_ms = -1, .reorder_set = true};
            na_stories_t *st = na_stories_new_opts(&o);
            assert_non_null(st);
            if (order) {
                shuffle_items(v, n, order);
            }
            na_stories_set_verify(st, &check);
            for (size_t i = 0; i < n; i++) {
                assert_int_equal(na_stories_assign(st, &v[i].a, v[i].got, NULL), NA_OK);
            }
            print_message(
                "%s, order %u: %zu articles, %zu candidates checked (%zu cut), %zu "
                "common features past the 64th; %zu failed%s%s\n",
                corpus ? "long reports" : "dev set", order, check.articles,
                check.candidates, check.cut, check.late_hits, check.bad,
                check.bad ? ": " : "", check.why);
            assert_int_equal(check.articles, n);
            assert_true(check.candidates >= n / 4);
            assert_int_equal(check.bad, 0);
            late_hits += check.late_hits;
            cut += check.cut;
            na_stories_destroy(st);
        }
    }
    assert_true(late_hits > 0);
    assert_true(cut > 0); /* the rank cut was checked where it dropped some */
    for (size_t i = 0; i < dev_n; i++) {
        na_article_cleanup(&dev[i].a);
        free(dev[i].story);
    }
    for (size_t i = 0; i < long_n; i++) {
        na_article_cleanup(&lng[i].a);
    }
    free(dev);
    free(lng);
}

/* Features as the text reader emits them, each distinct one counted
 * (what na_story_read() must keep of them). */
struct emitted {
    char text[NA_STORY_FEATURE_BYTES];
    size_t len;
    unsigned cnt;
    bool title;
};

struct emits {
    struct emitted v[1024];
    size_t n;
    bool in_title;
};

static bool collect_emit(void *ctx, const char *text, size_t len) {
    struct emits *e = ctx;
    assert_true(len < NA_STORY_FEATURE_BYTES);
    for (size_t i = 0; i < e->n; i++) {
        if (e->v[i].len == len && !memcmp(e->v[i].text, text, len)) {
            e->v[i].cnt++;
            return true;
        }
    }
    assert_true(e->n < sizeof(e->v) / sizeof(e->v[0]));
    memcpy(e->v[e->n].text, text, len);
    e->v[e->n] = (struct emitted){.len = len, .cnt = 1, .title = e->in_title};
    memcpy(e->v[e->n].text, text, len);
    e->n++;
    return true;
}

/* An article read apart from the engine (na_story_read(), as the
 * pipeline's worker threads read): each distinct feature the text reader
 * gives, once, in the order it first gave it, with its text, its key, how
 * often it was given and whether first by the title, and the id of the
 * story it would open; assigning reads made ahead of time gives the
 * stories na_stories_assign() gives, in order and shuffled; a read of
 * another article is not used. */
static void test_read_apart_from_the_engine(void **state) {
    (void)state;
    struct item *v = NULL;
    size_t n = load_dev(&v);
    na_story_read_t **rd = calloc(n, sizeof(*rd));
    struct emits *e = calloc(1, sizeof(*e));
    struct na_story_text tx;
    assert_true(n >= 150);
    assert_non_null(rd);
    assert_non_null(e);
    na_story_text_init(&tx);
    size_t repeated = 0;
    for (size_t i = 0; i < n; i++) {
        const struct na_article *a = &v[i].a;
        assert_non_null(rd[i] = na_story_read_new());
        assert_int_equal(na_story_read(rd[i], a), NA_OK);
        e->n = 0;
        e->in_title = true;
        assert_int_equal(
            na_story_text_features(&tx, a->title, strlen(a->title), collect_emit, e),
            NA_OK);
        e->in_title = false;
        /* the development set's texts are shorter than what is read */
        assert_true(strlen(a->content) < NA_STORY_BODY_BYTES);
        assert_int_equal(
            na_story_text_features(&tx, a->content, strlen(a->content), collect_emit, e),
            NA_OK);
        const struct na_story_read_s *r = rd[i];
        assert_int_equal(r->pend_cnt, e->n);
        for (size_t k = 0; k < e->n; k++) {
            const struct na_story_pend *p = &r->pend[k];
            assert_int_equal(p->len, e->v[k].len);
            assert_memory_equal(r->ptext + p->off, e->v[k].text, p->len);
            assert_true(p->key == na_story_hash(e->v[k].text, e->v[k].len));
            assert_int_equal(p->tf, e->v[k].cnt);
            assert_int_equal(p->title, e->v[k].title);
            repeated += p->tf > 1;
        }
        const char *parts[] = {"story/v1", a->id, NULL};
        char id[NA_SHA256_HEX_LEN + 1];
        assert_int_equal(na_sha256_hex_parts(parts, id), NA_OK);
        assert_string_equal(r->new_id, id);
    }
    assert_true(repeated > n); /* the set repeats words, names and figures */
    for (unsigned order = 0; order < 2; order++) {
        if (order) {
            /* the reads move with their articles (each is read again: an
             * article's address changed) */
            shuffle_with(v, rd, n, 7);
            for (size_t i = 0; i < n; i++) {
                assert_int_equal(na_story_read(rd[i], &v[i].a), NA_OK);
            }
        }
        na_stories_t *plain = na_stories_new(NA_STORY_WINDOW_MS_DEFAULT);
        na_stories_t *apart = na_stories_new(NA_STORY_WINDOW_MS_DEFAULT);
        assert_non_null(plain);
        assert_non_null(apart);
        for (size_t i = 0; i < n; i++) {
            char got[65];
            bool new_plain, new_apart;
            assert_int_equal(na_stories_assign(plain, &v[i].a, v[i].got, &new_plain),
                             NA_OK);
            assert_int_equal(
                na_stories_assign_read(apart, &v[i].a, rd[i], got, &new_apart), NA_OK);
            assert_string_equal(got, v[i].got);
            assert_int_equal(new_apart, new_plain);
        }
        /* a read of another article: this one is read instead */
        char got[65], want[65];
        struct na_article a;
        mk(&a, "read-apart-1", ban_b_title, ban_b, v[n - 1].a.published_at);
        assert_int_equal(na_stories_assign_read(apart, &a, rd[0], got, NULL), NA_OK);
        assert_int_equal(na_stories_assign(plain, &a, want, NULL), NA_OK);
        assert_string_equal(got, want);
        na_article_cleanup(&a);
        na_stories_destroy(plain);
        na_stories_destroy(apart);
    }
    for (size_t i = 0; i < n; i++) {
        na_story_read_destroy(rd[i]);
        na_article_cleanup(&v[i].a);
        free(v[i].story);
    }
    na_story_text_cleanup(&tx);
    free(rd);
    free(e);
    free(v);
}

/* Words of their own for article @p i (lower case: terms, no names). */
static void own_words(unsigned i, char *buf, size_t size) {
    size_t n = 0;
    buf[0] = '\0';
    for (unsigned k = 0; k < 8; k++) {
        unsigned v = i * 8 + k;
        n +=
            (size_t)snprintf(buf + n, size - n, "%sq%c%c%c%c", k ? " " : "", 'a' + v % 26,
                             'a' + v / 26 % 26, 'a' + v / 676 % 26, 'k' + k);
    }
}

/* A feature in more open stories than a scan reads keeps only their count;
 * when closing stories brings it down to half what a scan reads, it is
 * noted, and its postings are rebuilt when an article that has it is
 * scored. The index stays whole through all of it (na_stories_check()
 * after every article), and that article joins its story through them. */
static void test_common_features_unlisted_and_relisted(void **state) {
    (void)state;
    struct na_stories_opts o = {
        .window_ms = DAY * 1000LL, .reorder_ms = 0, .reorder_set = true};
    na_stories_t *st = na_stories_new_opts(&o);
    const int64_t t0 = 1767225600; /* 2026-01-01 */
    char words[128], title[192], text[512], id[32], story[65], why[256];
    char kept_story[65] = "";
    size_t unlisted = 0, most_unlisted = 0;
    bool is_new;
    assert_non_null(st);
    for (unsigned i = 0; i < 400; i++) {
        own_words(i, words, sizeof(words));
        snprintf(title, sizeof(title), "%s ubiquitous", words);
        snprintf(text, sizeof(text), "%s ubiquitous matter %s.", words, words);
        snprintf(id, sizeof(id), "a%u", i);
        assign(st, id, title, text, t0 + i, story, &is_new);
        assert_true(is_new);
        if (i == 350) {
            memcpy(kept_story, story, sizeof(kept_story));
        }
        if (!na_stories_check(st, &unlisted, why, sizeof(why))) {
            fail_msg("after article %u: %s", i, why);
        }
        most_unlisted = unlisted > most_unlisted ? unlisted : most_unlisted;
    }
    assert_true(most_unlisted >= 1); /* "ubiquitous" and "matter" */
    /* 250 more a day later, without the common words: each closes the
     * stories a day older than it, down to 51 of the first 400 (the
     * common words noted, not relisted: no article had them) */
    for (unsigned j = 0; j < 250; j++) {
        own_words(1000 + j, words, sizeof(words));
        snprintf(text, sizeof(text), "%s. %s", words, words);
        snprintf(id, sizeof(id), "b%u", j);
        assign(st, id, words, text, t0 + DAY + 100 + j, story, &is_new);
        if (!na_stories_check(st, &unlisted, why, sizeof(why))) {
            fail_msg("after article b%u: %s", j, why);
        }
    }
    assert_true(unlisted >= 1);
    /* story 350's report again: scanned through the relisted features */
    own_words(350, words, sizeof(words));
    snprintf(title, sizeof(title), "%s ubiquitous", words);
    snprintf(text, sizeof(text), "%s ubiquitous matter %s.", words, words);
    assign(st, "c350", title, text, t0 + DAY + 299, story, &is_new);
    assert_false(is_new);
    assert_string_equal(story, kept_story);
    if (!na_stories_check(st, &unlisted, why, sizeof(why))) {
        fail_msg("after the last article: %s", why);
    }
    assert_int_equal(unlisted, 0);
    na_stories_destroy(st);
}

/* Seed story @p i (an id of its own) with one article's worth of features
 * @p f ("K:word" 1 ...) and @p n articles, at @p t. */
static void seed_n(na_stories_t *st, unsigned i, unsigned n, int64_t t, const char *f) {
    char id[65];
    snprintf(id, sizeof(id), "%064x", i + 1);
    json_t *sig = json_pack("{s:i, s:I, s:I, s:i, s:o}", "v", 2, "t0", (json_int_t)t, "t",
                            (json_int_t)t, "n", (int)n, "f", json_loads(f, 0, NULL));
    assert_non_null(sig);
    assert_int_equal(na_stories_seed(st, id, sig, NA_TIME_UNKNOWN), NA_OK);
    json_decref(sig);
}

/* A signature's times are a stored record's word: one far outside what an
 * RFC 3339 time can say ("t" or "t0" near the ends of 64 bits) is refused,
 * and the story clock, the span and a later seed stay sound. */
static void test_seed_absurd_times(void **state) {
    (void)state;
    na_stories_t *st = na_stories_new(0);
    const char *id = "00000000000000000000000000000000000000000000000000000000000000a1";
    const json_int_t far[] = {INT64_MIN + 1, INT64_MIN / 2, -400000000000LL, INT64_MAX};
    for (size_t i = 0; i < sizeof(far) / sizeof(far[0]); i++) {
        json_t *sig = json_pack("{s:i, s:I, s:i, s:{s:i}}", "v", 2, "t", far[i], "n", 1,
                                "f", "t:abc", 1);
        assert_int_equal(na_stories_seed(st, id, sig, NA_TIME_UNKNOWN), NA_ERR_INVALID);
        json_decref(sig);
        sig = json_pack("{s:i, s:I, s:I, s:i, s:{s:i}}", "v", 2, "t0", far[i], "t",
                        (json_int_t)1767690000, "n", 1, "f", "t:abc", 1);
        assert_int_equal(na_stories_seed(st, id, sig, NA_TIME_UNKNOWN), NA_ERR_INVALID);
        json_decref(sig);
    }
    assert_int_equal(na_stories_count(st), 0);
    seed_n(st, 7, 1, 1767690000, "{\"t:abc\": 1}");
    assert_int_equal(na_stories_count(st), 1);
    na_stories_destroy(st);
}

/* Inputs the teacher saw: the candidates of one article. */
struct seen_x {
    double x[8][NA_SX_COUNT];
    size_t n;
};

static void note_x(void *ctx, const double x[NA_SX_COUNT], bool same) {
    struct seen_x *s = ctx;
    (void)same;
    if (s->n < 8) {
        memcpy(s->x[s->n++], x, sizeof(s->x[0]));
    }
}

/* A restart reads every ledger record of a story: snapshots of 1, then 2
 * articles. The later one replaces the earlier, and the engine counts the
 * story's articles once, as if it had read the later one only: the next
 * article is scored alike (the earlier snapshot's articles were counted as
 * documents again, lowering the story's features' weights). */
static void test_seed_later_snapshot_counts_once(void **state) {
    (void)state;
    na_stories_t *src = na_stories_new(0);
    char s1[65], s2[65], story[65];
    bool is_new;
    assign(src, "a", ban_a_title, ban_a, 1767690000, s1, &is_new);
    json_t *sig1 = na_story_signature(src, s1);
    assign(src, "b", ban_b_title, ban_b, 1767697200, s2, &is_new);
    json_t *sig2 = na_story_signature(src, s1);
    assert_string_equal(s1, s2);
    assert_non_null(sig1);
    assert_non_null(sig2);
    na_stories_destroy(src);

    struct seen_x both = {.n = 0}, later = {.n = 0};
    na_stories_t *a = na_stories_new(0), *b = na_stories_new(0);
    assert_int_equal(na_stories_seed(a, s1, sig1, NA_TIME_UNKNOWN), NA_OK);
    assert_int_equal(na_stories_seed(a, s1, sig2, NA_TIME_UNKNOWN), NA_OK);
    assert_int_equal(na_stories_seed(b, s1, sig2, NA_TIME_UNKNOWN), NA_OK);
    assert_int_equal(na_story_article_count(a, s1), 2);
    na_stories_set_teacher(a, note_x, &both);
    na_stories_set_teacher(b, note_x, &later);
    struct na_article art;
    mk(&art, "c", "Beijing widens its export ban", ban_a, 1767700000);
    assert_int_equal(na_stories_assign_labelled(a, &art, "ban", story, NULL), NA_OK);
    assert_int_equal(na_stories_assign_labelled(b, &art, "ban", story, NULL), NA_OK);
    na_article_cleanup(&art);
    assert_int_equal(both.n, 1);
    assert_int_equal(later.n, 1);
    for (size_t i = 0; i < NA_SX_COUNT; i++) {
        if (fabs(both.x[0][i] - later.x[0][i]) > 1e-9) {
            fail_msg("input %s: %g after both snapshots, %g after the later one",
                     na_story_input_names[i], both.x[0][i], later.x[0][i]);
        }
    }
    json_decref(sig1);
    json_decref(sig2);
    na_stories_destroy(a);
    na_stories_destroy(b);
}

/* At start the consumer reads the whole ledger (30 days by default) in
 * order: the stories its records re-open that the newest left more than
 * the window and the reorder allowance behind are closed as the seeding
 * goes, so memory follows the open stories, not the ledger's history. */
static void test_seeding_closes_what_the_window_left(void **state) {
    (void)state;
    const struct na_stories_opts o = {
        .window_ms = 2 * DAY * 1000LL, .reorder_ms = DAY * 1000LL, .reorder_set = true};
    na_stories_t *st = na_stories_new_opts(&o);
    char f[64];
    assert_non_null(st);
    for (unsigned d = 0; d < 30; d++) {
        snprintf(f, sizeof(f), "{\"t:day%c%c\": 1}", 'a' + d % 26, 'a' + d / 26);
        seed_n(st, d, 1, 1767225600 + (int64_t)d * DAY, f);
    }
    /* days 26..29: within 3 days of the newest */
    assert_int_equal(na_stories_count(st), 4);
    na_stories_destroy(st);
}

/* A signature holds at most 200 features (na_story_signature()): one with
 * thousands (a record no engine wrote) is refused, its features not taken
 * into the dictionary, where each stayed for some 40,000 articles. */
static void test_seed_too_many_features(void **state) {
    (void)state;
    na_stories_t *st = na_stories_new(0);
    const char *id = "00000000000000000000000000000000000000000000000000000000000000b2";
    json_t *f = json_object();
    char key[32];
    for (unsigned i = 0; i < 5000; i++) {
        snprintf(key, sizeof(key), "t:w%u", i);
        assert_int_equal(json_object_set_new(f, key, json_integer(1)), 0);
    }
    json_t *sig = json_pack("{s:i, s:I, s:i, s:o}", "v", 2, "t", (json_int_t)1767690000,
                            "n", 1, "f", f);
    assert_non_null(sig);
    assert_int_equal(na_stories_seed(st, id, sig, NA_TIME_UNKNOWN), NA_ERR_INVALID);
    assert_int_equal(na_stories_count(st), 0);
    assert_int_equal(na_stories_feature_count(st), 0);
    json_decref(sig);
    na_stories_destroy(st);
}

/* A common feature noted for relisting whose stories all went (replaced
 * here by snapshots without it) is forgotten when the dictionary next
 * forgets, like any feature no story has: its note must not keep it. */
static void test_forgetting_drops_noted_features_no_story_has(void **state) {
    (void)state;
    na_stories_t *st = na_stories_new(0);
    const int64_t t = 1767225600; /* 2026-01-01 */
    char f[256], why[256];
    assert_non_null(st);
    /* 130 stories with a common feature: unlisted at 129 */
    for (unsigned i = 1; i <= 130; i++) {
        snprintf(f, sizeof(f), "{\"t:kelpmarsh\": 1, \"t:own%c%c\": 1}", 'a' + i % 26,
                 'a' + i / 26 % 26);
        seed_n(st, i, 1, t, f);
    }
    /* each replaced by a later snapshot without it: in no story, noted */
    for (unsigned i = 1; i <= 130; i++) {
        snprintf(f, sizeof(f), "{\"t:own%c%c\": 2}", 'a' + i % 26, 'a' + i / 26 % 26);
        seed_n(st, i, 2, t, f);
    }
    assert_int_equal(na_stories_feature_count(st), 131);
    /* a halving of the document count, then a seed that forgets first */
    seed_n(st, 1000, 20000, t, "{\"t:bulkone\": 1}");
    seed_n(st, 1001, 1, t, "{\"t:lastseed\": 1}");
    if (!na_stories_check(st, NULL, why, sizeof(why))) {
        fail_msg("after forgetting: %s", why);
    }
    /* the stories' 130 features and the two seeds': the common one gone */
    assert_int_equal(na_stories_feature_count(st), 132);
    na_stories_destroy(st);
}

/* A restart seeds many stories: later snapshots of a story replace the
 * earlier (their features dropped), the document count halves and the
 * dictionary forgets features no story has, all before the first article.
 * A common feature noted for relisting while seeding must still be relisted
 * when the dictionary forgot features before it, and an article that has
 * it is then scored through its postings (it crashed: the note named the
 * feature by an id the forgetting had changed). */
static void test_seeding_relists_across_forgetting(void **state) {
    (void)state;
    na_stories_t *st = na_stories_new(0);
    const int64_t t = 1767225600; /* 2026-01-01 */
    char f[256], story[65], why[256];
    bool is_new;
    assert_non_null(st);
    /* features that no story will have, with the lowest ids */
    seed_n(st, 0, 1, t,
           "{\"t:fernwhistle\": 1, \"t:gloamcrust\": 1, \"t:haskbright\": 1}");
    seed_n(st, 0, 2, t, "{\"t:ivorytrellis\": 2}");
    /* 300 stories with a common feature: unlisted; then 200 of them
     * replaced by snapshots without it: 100 left, noted for relisting */
    for (unsigned i = 1; i <= 300; i++) {
        snprintf(f, sizeof(f), "{\"t:kelpmarsh\": 1, \"t:own%c%c%c\": 1}", 'a' + i % 26,
                 'a' + i / 26 % 26, 'a' + i / 676 % 26);
        seed_n(st, i, 1, t, f);
    }
    for (unsigned i = 1; i <= 200; i++) {
        snprintf(f, sizeof(f), "{\"t:own%c%c%c\": 2}", 'a' + i % 26, 'a' + i / 26 % 26,
                 'a' + i / 676 % 26);
        seed_n(st, i, 2, t, f);
    }
    /* two halvings of the document count (stories of many articles), then
     * a seed that forgets the features no story has */
    seed_n(st, 1000, 20000, t, "{\"t:bulkone\": 1}");
    seed_n(st, 1001, 20000, t, "{\"t:bulktwo\": 1}");
    seed_n(st, 1002, 1, t, "{\"t:lastseed\": 1}");
    if (!na_stories_check(st, NULL, why, sizeof(why))) {
        fail_msg("after seeding: %s", why);
    }
    /* an article with the common word: scored through its postings */
    assign(st, "k", "kelpmarsh kelpmarsh", "Kelpmarsh kelpmarsh, said the kelpmarsh.",
           t + 60, story, &is_new);
    if (!na_stories_check(st, NULL, why, sizeof(why))) {
        fail_msg("after the article: %s", why);
    }
    assert_int_equal(na_stories_feature_count(st) < 600, true);
    na_stories_destroy(st);
}

/* A snapshot that cannot be seeded for want of memory leaves the story as
 * the earlier snapshot made it (it was emptied first: the next report of
 * the story opened another, and its alert went out again). */
static void test_seed_without_memory_keeps_the_story(void **state) {
    (void)state;
    na_stories_t *st = na_stories_new(0);
    char s1[65], s2[65], why[256];
    bool is_new = true;
    assert_non_null(st);
    assign(st, "a", ban_a_title, ban_a, 1767690000, s1, &is_new);
    json_t *sig1 = na_story_signature(st, s1);
    assign(st, "b", ban_b_title, ban_b, 1767697200, s2, &is_new);
    assert_string_equal(s1, s2);
    json_t *sig2 = na_story_signature(st, s1);
    assert_non_null(sig1);
    assert_non_null(sig2);
    assert_true(json_object_size(json_object_get(sig2, "f")) >
                json_object_size(json_object_get(sig1, "f")));
    na_stories_destroy(st);

    st = na_stories_new(0);
    assert_int_equal(na_stories_seed(st, s1, sig1, NA_TIME_UNKNOWN), NA_OK);
    assert_int_equal(na_story_article_count(st, s1), 1);
    /* the later snapshot: its first block of the engine's memory fails */
    na_fault_arm("story_alloc:1");
    assert_int_equal(na_stories_seed(st, s1, sig2, NA_TIME_UNKNOWN), NA_ERR_NOMEM);
    na_fault_arm(NULL);
    assert_int_equal(na_stories_count(st), 1);
    assert_int_equal(na_story_article_count(st, s1), 1);
    if (!na_stories_check(st, NULL, why, sizeof(why))) {
        fail_msg("after the failed seed: %s", why);
    }
    /* the second report still joins the story the first one opened */
    assign(st, "b", ban_b_title, ban_b, 1767697200, s2, &is_new);
    assert_false(is_new);
    assert_string_equal(s1, s2);
    assert_int_equal(na_story_article_count(st, s1), 2);
    /* and with memory the later snapshot replaces the earlier */
    na_stories_destroy(st);
    st = na_stories_new(0);
    assert_int_equal(na_stories_seed(st, s1, sig1, NA_TIME_UNKNOWN), NA_OK);
    assert_int_equal(na_stories_seed(st, s1, sig2, NA_TIME_UNKNOWN), NA_OK);
    assert_int_equal(na_story_article_count(st, s1), 2);
    /* a new story whose memory fails is not left open */
    na_fault_arm("story_alloc:1");
    assert_int_equal(na_stories_seed(st, "b2", sig1, NA_TIME_UNKNOWN), NA_ERR_INVALID);
    char fresh[65];
    snprintf(fresh, sizeof(fresh), "%064x", 7u);
    assert_int_equal(na_stories_seed(st, fresh, sig1, NA_TIME_UNKNOWN), NA_ERR_NOMEM);
    na_fault_arm(NULL);
    assert_int_equal(na_stories_count(st), 1);
    assert_int_equal(na_story_article_count(st, fresh), 0);
    if (!na_stories_check(st, NULL, why, sizeof(why))) {
        fail_msg("after the failed new story: %s", why);
    }
    json_decref(sig1);
    json_decref(sig2);
    na_stories_destroy(st);
}

/* The story tokeniser (its ASCII fast path, sixteen bytes at a time where
 * SSE2 is there) gives the tokens the rules tokeniser gives, on random
 * texts of words of every length (past sixteen and past the longest term),
 * mixed case, digits, hyphens, dots, apostrophes, white space and bytes
 * that are not ASCII, at every offset. */
static void test_story_tokens_match_the_rules_tokeniser(void **state) {
    (void)state;
    static const char pieces[] = "aZq09-.'s \t\n,\xc3\xa9\xe2\x80\x94";
    char text[600];
    struct na_rtoks a, b;
    uint64_t r = 777;
    na_rtoks_init(&a);
    na_rtoks_init(&b);
    for (int round = 0; round < 3000; round++) {
        size_t n = 0, len;
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        len = (size_t)(r >> 33) % (sizeof(text) - 80);
        while (n < len) {
            r = r * 6364136223846793005ull + 1442695040888963407ull;
            unsigned pick = (unsigned)(r >> 35) % 16;
            if (pick < 9) {
                /* a word of 1 to 70 letters and digits, some upper case */
                size_t w = 1 + (size_t)(r >> 20) % (pick < 2 ? 70 : 12);
                for (size_t k = 0; k < w && n < sizeof(text) - 8; k++) {
                    r = r * 6364136223846793005ull + 1442695040888963407ull;
                    unsigned c = (unsigned)(r >> 40) % 64;
                    text[n++] = (char)(c < 26   ? 'a' + c
                                       : c < 36 ? 'A' + (c - 26)
                                       : c < 46 ? '0' + (c - 36)
                                                : 'a' + (c - 46));
                }
            } else {
                size_t k = (size_t)(r >> 20) % (sizeof(pieces) - 1);
                if ((unsigned char)pieces[k] >= 0x80) {
                    /* a whole UTF-8 sequence: e with acute, or an em dash */
                    const char *seq = k < 13 ? "\xc3\xa9" : "\xe2\x80\x94";
                    size_t sl = strlen(seq);
                    memcpy(text + n, seq, sl);
                    n += sl;
                } else {
                    text[n++] = pieces[k];
                }
            }
        }
        text[n] = '\0';
        size_t from = (size_t)round % 17 < n ? (size_t)round % 17 : 0;
        assert_int_equal(na_story_tokenize(text + from, n - from, &a), NA_OK);
        b.cnt = 0;
        b.text_len = 0;
        assert_int_equal(na_rules_tokenize(text + from, n - from, &b), NA_OK);
        if (a.cnt != b.cnt) {
            fail_msg("round %d: %zu tokens, the rules tokeniser %zu: \"%s\"", round,
                     a.cnt, b.cnt, text + from);
        }
        for (size_t i = 0; i < a.cnt; i++) {
            const struct na_rtok *x = &a.v[i], *y = &b.v[i];
            if (x->bstart != y->bstart || x->bend != y->bend || x->pos != y->pos ||
                x->pos_end != y->pos_end || x->fold_len != y->fold_len ||
                x->stem_len != y->stem_len || x->stem_y != y->stem_y ||
                x->truncated != y->truncated ||
                memcmp(a.text + x->fold_off, b.text + y->fold_off, x->fold_len) != 0) {
                fail_msg("round %d, token %zu (bytes %u..%u) differs: \"%s\"", round, i,
                         y->bstart, y->bend, text + from);
            }
        }
    }
    na_rtoks_cleanup(&a);
    na_rtoks_cleanup(&b);
}

/* Features a text reader emitted, back to back, each as its length (two
 * bytes) then its text. */
struct feats_seen {
    char buf[65536];
    size_t len;
    size_t cnt;
};

static bool feats_note(void *ctx, const char *text, size_t len) {
    struct feats_seen *f = ctx;
    if (f->len + len + 2 > sizeof(f->buf)) {
        return false;
    }
    f->buf[f->len++] = (char)(len >> 8);
    f->buf[f->len++] = (char)len;
    memcpy(f->buf + f->len, text, len);
    f->len += len;
    f->cnt++;
    return true;
}

/* Fail, naming the first feature where @p a and @p b part. */
static void feats_compare(const struct feats_seen *a, const struct feats_seen *b,
                          const char *what, const char *text) {
    if (a->len == b->len && !memcmp(a->buf, b->buf, a->len)) {
        return;
    }
    size_t i = 0, k = 0;
    while (i < a->len && i < b->len) {
        size_t n = (size_t)(unsigned char)a->buf[i] << 8 | (unsigned char)a->buf[i + 1];
        size_t m = (size_t)(unsigned char)b->buf[i] << 8 | (unsigned char)b->buf[i + 1];
        if (n != m || memcmp(a->buf + i + 2, b->buf + i + 2, n)) {
            fail_msg("%s: feature %zu is \"%.*s\", the old reader's \"%.*s\": \"%s\"",
                     what, k, (int)n, a->buf + i + 2, (int)m, b->buf + i + 2, text);
        }
        i += 2 + n;
        k++;
    }
    fail_msg("%s: %zu features, the old reader %zu: \"%s\"", what, a->cnt, b->cnt, text);
}

/* Read @p text with the reader and with the old one (tests/ref), a
 * reader's buffers kept from text to text as the engine keeps them. */
static void features_match(struct na_story_text *tx, const char *text, size_t len,
                           const char *what) {
    static struct feats_seen a, b;
    a.len = a.cnt = b.len = b.cnt = 0;
    assert_int_equal(na_story_text_features(tx, text, len, feats_note, &a), NA_OK);
    assert_int_equal(na_story_text_features_ref(text, len, feats_note, &b), NA_OK);
    feats_compare(&a, &b, what, text);
}

/* The text reader (na_story_words(): one pass, words read straight from
 * the text) emits the features the old reader (tokens first, then words,
 * then features: tests/ref/story_text_ref.c) emits, in the same order, on
 * edge cases and on random texts of words of every length and case, stop
 * words, months, demonyms, figures with scales and percent signs, dates,
 * hyphens, dots, apostrophes, quotes, sentence ends and bytes that are not
 * ASCII (in every other text), at every offset. */
static void test_story_text_reader_matches_the_old_one(void **state) {
    (void)state;
    static const char *const cases[] = {
        "",
        " ",
        "A",
        "Taiwan's dual-use chip ban: the U.S. and South Korea agree",
        "Exports fell 84 per cent to $11.2 billion on Jan 6, 2025; 41,000 jobs (3%).",
        "On March 14 the EU said. \"Japanese officials\" met NATO's chief in Seoul!",
        "Policies, taxes and companies' dual-use-export-control-list-of-items-x-y-z",
        "Caf\xc3\xa9 \xc3\x89lys\xc3\xa9"
        "e Palace \xe2\x80\x94 Z\xc3\xbcrich, \xc3\x9c"
        "ber-Alles 11bn 5m 3rd 12.5.6 1,2345 2,000,000 99 per",
        "x-\xc3\xa9-y a.b.c I.B.M. e.g. No.1 F-16s K-pop's 10 percent 7 pct 2 tn",
        "\n(Reuters) - Chinese and Philippine ships: Sept 3 | Dec. 25 May 5 may",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        "-bb studies-series's 'quoted' \"Quote\" (Paren) ?Why !Now",
        "a-b-c-d-e-f-g-h-i one-two-three-four-five-six-seven-eight and-nine-ten-"
        "eleven-twelve-thirteen-fourteen-fifteen-sixteen-seventeen-eighteen-nineteen",
        "Advertisement advertisement Wednesday's ADVERTISEMENT: Argentinian Thai",
    };
    static const char *const pieces[] = {
        "the",
        "The",
        "said",
        "Japanese",
        "japanese",
        "Jan",
        "January",
        "may",
        "May",
        "Sept",
        "dec",
        "NATO",
        "U.S.",
        "EU",
        "South",
        "Korea",
        "policies",
        "Policies",
        "taxes",
        "dual-use",
        "Dual-Use",
        "$11.2",
        "billion",
        "bn",
        "84",
        "per",
        "cent",
        "percent",
        "%",
        "41,000",
        "2025",
        "6",
        "14",
        "31",
        "32",
        "3.5",
        "11bn",
        "5m",
        "3rd",
        "'s",
        "'",
        "\"",
        "(",
        ")",
        ".",
        ",",
        ":",
        "|",
        "!",
        "?",
        "-",
        "\n",
        "\t",
        " ",
        "  ",
        "\xc3\xa9",
        "\xc3\x89",
        "\xc3\x97",
        "\xe2\x80\x94",
        "Z\xc3\xbcrich",
        "\xc3\x9c"
        "ber",
        "prohibitions",
        "reporting",
    };
    static const size_t npieces = sizeof(pieces) / sizeof(pieces[0]);
    char text[1700];
    struct na_story_text tx;
    uint64_t r = 4242;
    na_story_text_init(&tx);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = strlen(cases[i]);
        for (size_t from = 0; from <= n; from++) {
            features_match(&tx, cases[i] + from, n - from, "case");
        }
    }
    for (int round = 0; round < 4000; round++) {
        size_t n = 0, len;
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        len = (size_t)(r >> 33) % (round % 10 == 0 ? sizeof(text) - 100 : 300);
        while (n < len) {
            r = r * 6364136223846793005ull + 1442695040888963407ull;
            unsigned pick = (unsigned)(r >> 35) % 10;
            if (pick < 4) {
                /* a made-up word of 1 to 70 letters and digits, its case mixed */
                size_t w = 1 + (size_t)(r >> 20) % (pick == 0 ? 70 : 10);
                unsigned how = (unsigned)(r >> 50) % 4; /* lower, Capital, UPPER, mixed */
                for (size_t k = 0; k < w && n < sizeof(text) - 80; k++) {
                    r = r * 6364136223846793005ull + 1442695040888963407ull;
                    unsigned c = (unsigned)(r >> 40) % 40;
                    char ch = (char)(c < 26   ? 'a' + c
                                     : c < 30 ? '0' + (c - 26)
                                              : (unsigned char)"sseiy"[c % 5]);
                    if (ch >= 'a' && ch <= 'z' &&
                        (how == 2 || (how == 1 && k == 0) || (how == 3 && (r >> 62)))) {
                        ch = (char)(ch - 32);
                    }
                    text[n++] = ch;
                }
            } else {
                const char *pc = pieces[(size_t)(r >> 20) % npieces];
                size_t pl = strlen(pc);
                bool ascii = true;
                for (size_t k = 0; k < pl; k++) {
                    ascii = ascii && (unsigned char)pc[k] < 0x80;
                }
                /* every other text all ASCII: the reader reads those in
                 * one run, others chunk by chunk */
                if (n + pl < sizeof(text) - 80 && (ascii || round % 2)) {
                    memcpy(text + n, pc, pl);
                    n += pl;
                }
            }
            r = r * 6364136223846793005ull + 1442695040888963407ull;
            if ((r >> 60) < 9 && n < sizeof(text) - 80) {
                text[n++] = ' ';
            }
        }
        text[n] = '\0';
        size_t from = (size_t)round % 7 < n ? (size_t)round % 7 : 0;
        features_match(&tx, text + from, n - from, "random");
    }
    na_story_text_cleanup(&tx);
}

/* The engine's block allocator (story_mem.c): blocks of every class and
 * large ones, written whole, never overlap, keep their alignment, keep
 * their bytes through a move to another class, and a freed block is the
 * next one given out of its class. */
static void test_engine_memory_blocks(void **state) {
    (void)state;
    enum { N = 600 };
    struct na_smem m;
    unsigned char *p[N];
    size_t sz[N];
    uint64_t r = 12345;
    na_smem_init(&m);
    for (size_t i = 0; i < N; i++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        /* mostly small, some up to a chunk's eighth, a few large */
        sz[i] = i % 97 == 0  ? NA_SMEM_MAX_BLOCK + 1 + (size_t)(r >> 40) % 300000
                : i % 7 == 0 ? 1 + (size_t)(r >> 33) % NA_SMEM_MAX_BLOCK
                             : 1 + (size_t)(r >> 33) % 700;
        p[i] = na_smem_alloc(&m, sz[i]);
        assert_non_null(p[i]);
        if (sz[i] > NA_SMEM_MAX_BLOCK) {
            for (size_t k = 0; k < sz[i]; k += 4099) {
                assert_int_equal(p[i][k], 0); /* large blocks come zeroed */
            }
        }
        if (sz[i] % 64 == 0) {
            assert_int_equal((uintptr_t)p[i] % 64, 0);
        }
        if (sz[i] >= 8) {
            assert_int_equal((uintptr_t)p[i] % 8, 0);
        }
        memset(p[i], (int)(i & 0xff), sz[i]);
    }
    /* no block wrote over another */
    for (size_t i = 0; i < N; i++) {
        for (size_t k = 0; k < sz[i]; k++) {
            if (p[i][k] != (unsigned char)(i & 0xff)) {
                fail_msg("block %zu (%zu bytes) changed at byte %zu", i, sz[i], k);
            }
        }
    }
    /* a freed block is given out again for its class */
    na_smem_free(&m, p[1], sz[1]);
    unsigned char *again = na_smem_alloc(&m, sz[1]);
    assert_ptr_equal(again, p[1]);
    /* a move to a larger class keeps the bytes */
    size_t grown = sz[2] * 3 + 100;
    unsigned char *q = na_smem_realloc(&m, p[2], sz[2], grown);
    assert_non_null(q);
    for (size_t k = 0; k < sz[2]; k++) {
        assert_int_equal(q[k], 2);
    }
    p[2] = q;
    sz[2] = grown;
    memset(p[2], 2, grown);
    for (size_t i = 0; i < N; i++) {
        na_smem_free(&m, p[i], sz[i]);
    }
    assert_int_equal(m.bytes_in_use, 0);
    na_smem_cleanup(&m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paraphrases_join_unrelated_apart),
        cmocka_unit_test(test_window_closes_stories),
        cmocka_unit_test(test_dictionary_forgets_old_features),
        cmocka_unit_test(test_signature_seed_restart),
        cmocka_unit_test(test_seed_absurd_times),
        cmocka_unit_test(test_seed_later_snapshot_counts_once),
        cmocka_unit_test(test_seeding_closes_what_the_window_left),
        cmocka_unit_test(test_seed_too_many_features),
        cmocka_unit_test(test_time_bound_in_any_order),
        cmocka_unit_test(test_reorder_allowance),
        cmocka_unit_test(test_model_weights_decide),
        cmocka_unit_test(test_model_file),
        cmocka_unit_test(test_future_dated_article_closes_no_story),
        cmocka_unit_test(test_alert_id),
        cmocka_unit_test(test_story_features_fold_latin_ext_a_capitals),
        cmocka_unit_test(test_hostile_input),
        cmocka_unit_test(test_dev_set_and_seeds),
        cmocka_unit_test(test_scoring_matches_plain_computation),
        cmocka_unit_test(test_read_apart_from_the_engine),
        cmocka_unit_test(test_engine_memory_blocks),
        cmocka_unit_test(test_story_tokens_match_the_rules_tokeniser),
        cmocka_unit_test(test_story_text_reader_matches_the_old_one),
        cmocka_unit_test(test_common_features_unlisted_and_relisted),
        cmocka_unit_test(test_seeding_relists_across_forgetting),
        cmocka_unit_test(test_forgetting_drops_noted_features_no_story_has),
        cmocka_unit_test(test_seed_without_memory_keeps_the_story),
    };
    return na_test_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
