/*
 * The pipeline's stages as the drivers call them: decoding and
 * classifying on a worker thread (the pipeline there has no stories, but
 * reads a matching article's story features when stories are on), then
 * grouping and alerts on the driver's thread.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "newsalert/article.h"
#include "newsalert/hash.h"
#include "newsalert/util.h"
#include "pipeline.h"
#include "rules.h"
#include "story.h"

static const char rules_json[] =
    "{\"topics\":[{\"name\":\"rare_earths\",\"query\":\"\\\"rare earth\\\" OR "
    "gallium\",\"threshold\":1}]}";

/* Reports of two events and one that matches no topic, in published order. */
static const struct {
    const char *url, *title, *text;
    int64_t t;
} reports[] = {
    {"https://a.example/1", "Ministry curbs gallium shipments to three buyers",
     "The trade ministry in Lisbon said on Monday that gallium and germanium "
     "shipments to three foreign buyers need a licence from 1 May, citing "
     "security; smelters in Porto expect orders to drop by 30%.",
     1767690000},
    {"https://b.example/2", "Lisbon licences gallium exports from May",
     "Portugal will require licences for gallium and germanium sold abroad from "
     "1 May, the trade ministry said, a step Porto smelters fear will cut orders "
     "by 30%.",
     1767693600},
    {"https://c.example/3", "Football: Porto beat Braga 2-1",
     "Porto came from behind to beat Braga 2-1 on Sunday night at the Dragao.",
     1767697200},
    {"https://d.example/4", "Rare earth magnet plant opens in Ostrava",
     "A rare earth magnet factory with 400 jobs opened in Ostrava on Tuesday, "
     "backed by 120 million euros of public money, its owner said.",
     1767700800},
    {"https://e.example/5", "Ostrava magnet works starts rare earth output",
     "Production of rare earth magnets began in Ostrava, where the new plant "
     "employs 400 people and received 120 million euros in state aid.",
     1767704400},
};
#define N_REPORTS (sizeof(reports) / sizeof(reports[0]))

static na_rules_t *load_rules(void) {
    na_rules_t *rules = NULL;
    char errstr[512] = "";
    assert_int_equal(na_rules_load_buf(rules_json, strlen(rules_json), "rules.json",
                                       &rules, errstr, sizeof(errstr)),
                     NA_OK);
    return rules;
}

static char *record(size_t i) {
    struct na_article a;
    na_article_init(&a);
    a.url = na_strdup(reports[i].url);
    a.title = na_strdup(reports[i].title);
    a.content = na_strdup(reports[i].text);
    a.published_at = reports[i].t;
    a.fetched_at = reports[i].t + 60;
    assert_int_equal(na_article_set_id(&a), NA_OK);
    char *json = na_article_to_json(&a);
    assert_non_null(json);
    na_article_cleanup(&a);
    return json;
}

struct work {
    const struct na_pipeline *p;
    const char *rec;
    struct na_decision *d;
    na_err_t decode, classify;
};

/* A worker thread's part: decode and classify. */
static void *worker(void *arg) {
    struct work *w = arg;
    w->decode = na_pipeline_decode(w->p, w->rec, strlen(w->rec), w->d);
    w->classify = na_pipeline_classify(w->p, w->d);
    return NULL;
}

/* Story features read on the worker thread (read_stories) give the
 * stories the driver's thread gives when it reads them itself; only
 * matching articles are read; the decision frees the read. */
static void test_story_features_read_on_the_worker(void **state) {
    (void)state;
    na_rules_t *rules = load_rules();
    na_stories_t *on_worker = na_stories_new(0);
    na_stories_t *here = na_stories_new(0);
    struct na_routes routes = {0};
    struct na_pipeline wp = {.rules = rules, .read_stories = true};
    struct na_pipeline wp_off = {.rules = rules};
    struct na_pipeline p1 = {rules, on_worker, NULL, &routes, false};
    struct na_pipeline p2 = {rules, here, NULL, &routes, false};
    char first_story[NA_SHA256_HEX_LEN + 1] = "";
    size_t grouped = 0;
    assert_non_null(on_worker);
    assert_non_null(here);
    for (size_t i = 0; i < N_REPORTS; i++) {
        char *rec = record(i);
        struct na_decision d1, d2;
        na_decision_init(&d1);
        na_decision_init(&d2);
        struct work w1 = {&wp, rec, &d1, NA_OK, NA_OK};
        struct work w2 = {&wp_off, rec, &d2, NA_OK, NA_OK};
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, worker, &w1), 0);
        assert_int_equal(pthread_join(th, NULL), 0);
        worker(&w2);
        assert_int_equal(w1.decode, NA_OK);
        assert_int_equal(w1.classify, NA_OK);
        assert_int_equal(w2.classify, NA_OK);
        assert_true(d1.decoded);
        bool matched = d1.cls.matches_cnt > 0;
        assert_int_equal(matched, i != 2);
        /* read on the worker only where stories are on and it matched */
        assert_int_equal(d1.story_read != NULL, matched);
        assert_null(d2.story_read);
        assert_int_equal(na_pipeline_alerts(&p1, &d1), NA_OK);
        assert_int_equal(na_pipeline_alerts(&p2, &d2), NA_OK);
        assert_int_equal(d1.has_story, matched);
        if (matched) {
            assert_string_equal(d1.story_id, d2.story_id);
            assert_int_equal(d1.story_new, d2.story_new);
            grouped++;
            if (i == 0) {
                memcpy(first_story, d1.story_id, sizeof(first_story));
            }
            /* the second report of each event joins its first's story */
            assert_int_equal(d1.story_new, i == 0 || i == 3);
            if (i == 1) {
                assert_string_equal(d1.story_id, first_story);
            }
        }
        na_decision_cleanup(&d1);
        na_decision_cleanup(&d2);
        assert_null(d1.story_read);
        free(rec);
    }
    assert_int_equal(grouped, 4);
    assert_int_equal(na_stories_count(on_worker), 2);
    na_stories_destroy(on_worker);
    na_stories_destroy(here);
    na_rules_destroy(rules);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_story_features_read_on_the_worker),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
