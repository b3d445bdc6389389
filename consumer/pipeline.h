/**
 * @file pipeline.h
 * @brief One article's road through the consumer, written once for both
 *        drivers: the daemon (daemon/consumer.c) and replay
 *        (replay/replay.c).
 *
 * Bytes of an article/v1 record in; decisions out: the decoded article
 * (or why it is not one), its matches with their evidence, its story (new,
 * or one it joins), one alert per match with its id, and for each alert
 * and route what the route still needs, the ledger consulted. A new rule
 * or a new story outcome is decided here, once; the drivers only act on
 * the decisions: the daemon delivers, parks, links or waits; replay prints
 * or posts.
 *
 * The pipeline knows nothing of consumer groups, offsets, time bounds,
 * HTTP or the wall clock: the drivers read Kafka their own way, drop
 * records outside their bounds, and decide what "in flight" means.
 *
 * Stages, each called by the driver in turn:
 *   na_pipeline_decode()   -> d->decoded, d->article (or d->error)
 *   na_pipeline_classify() -> d->cls (and d->story_read: p->read_stories)
 *   na_pipeline_alerts()   -> d->story_*, d->alerts[] with need[] per route
 *   na_pipeline_signature() -> d->story_signature, for a ledger record
 * A driver may stop after any stage (a record too old for the ledger, a
 * replay that only writes classified lines).
 *
 * Ownership: struct na_pipeline is the caller's (its members borrowed, and
 * the caller may swap rules and routes between records). A na_decision is
 * caller-embedded (na_decision_init()/na_decision_cleanup()) and owns what
 * the stages put in it; d->alerts[i].alert borrows d->article and d->cls,
 * valid until na_decision_cleanup().
 *
 * Failures: a stage returns NA_ERR_NOMEM when it could not allocate; the
 * decision is then incomplete and the driver processes the record again
 * later (cleanup first). Note that na_pipeline_alerts() has assigned the
 * story by then, so a second pass counts the article in its story again.
 *
 * Threading: a pipeline and its stories belong to one thread.
 */
#ifndef NEWSALERT_PIPELINE_H
#define NEWSALERT_PIPELINE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alert.h"
#include "ledger.h"
#include "newsalert/article.h"
#include "newsalert/err.h"
#include "newsalert/hash.h"
#include "route.h"
#include "rules.h"
#include "story.h"

/** What the drivers give the pipeline; all borrowed. */
struct na_pipeline {
    const na_rules_t *rules;        /**< the rules in force */
    na_stories_t *stories;          /**< NULL: every article is its own story */
    const na_ledger_t *ledger;      /**< NULL: no route is known to have anything */
    const struct na_routes *routes; /**< the routes alerts may go to */
    bool read_stories;              /**< na_pipeline_classify() also reads a matching
                                         article's story features (na_story_read()), so
                                         that a worker thread does it: set where stories
                                         are on, stories itself being NULL there */
};

/** What a route still needs of an alert. */
enum na_route_need {
    NA_NEED_NONE = 0, /**< the route does not want this topic or score */
    NA_NEED_SEND,     /**< nothing says the route has it: it is to be sent */
    NA_NEED_SENT,     /**< the ledger says the route has it */
    NA_NEED_DEAD,     /**< the ledger says it was dead-lettered for the route */
    NA_NEED_PENDING,  /**< another member is sending it, until pending_until_ms */
    NA_NEED_PARKED,   /**< it waits in retry_topic: that topic's reader sends it */
};

/** One alert of an article: one per matched topic. */
struct na_decided_alert {
    struct na_alert alert;     /**< id (story's when grouped), article, match */
    enum na_route_need *need;  /**< per route of na_pipeline.routes */
    int64_t *pending_until_ms; /**< per route: with NA_NEED_PENDING, the Unix ms
                                    until which the hand-over holds */
};

struct na_decision {
    struct na_article article;
    bool decoded;    /**< false: not article/v1 (error says why) */
    char error[512]; /**< why decoding failed */
    struct na_classification cls;
    na_story_read_t *story_read; /**< its features read for its story, or NULL
                                      (then na_pipeline_alerts() reads them) */
    bool has_story;              /**< grouped (stories on and the article matched) */
    bool story_new;              /**< it opened its story (or has none) */
    char story_id[NA_SHA256_HEX_LEN + 1];
    json_t *story;           /**< alert/v1 "story" member ({id, articles, first_seen}) */
    json_t *story_signature; /**< what restarts need of the story, for ledger
                                  records: made by na_pipeline_signature(),
                                  NULL until then */
    struct na_decided_alert *alerts;
    size_t alerts_cnt;
    size_t routes_cnt; /**< length of each alert's need[] */
};

void na_decision_init(struct na_decision *d);

/** @brief Free what @p d holds and make it empty again. */
void na_decision_cleanup(struct na_decision *d);

/**
 * @brief Decode an article/v1 record (no value, too large, not JSON, not
 *        article/v1: d->decoded false and d->error says why).
 * @returns NA_OK (decoded or not), or NA_ERR_NOMEM.
 */
NA_WUR na_err_t na_pipeline_decode(const struct na_pipeline *p, const void *value,
                                   size_t len, struct na_decision *d);

/** @brief Classify the decoded article with p->rules into d->cls.
 *  @returns NA_OK or NA_ERR_NOMEM. */
NA_WUR na_err_t na_pipeline_classify(const struct na_pipeline *p, struct na_decision *d);

/**
 * @brief Group the article into its story (when it matched and stories are
 *        on), make one alert per match, and consult the ledger for each
 *        alert and route.
 * @returns NA_OK or NA_ERR_NOMEM.
 */
NA_WUR na_err_t na_pipeline_alerts(const struct na_pipeline *p, struct na_decision *d);

/**
 * @brief Make d->story_signature (what a ledger record needs to re-open the
 *        story after a restart) and lend it to d->alerts[].alert.story_state,
 *        for na_alert_to_ledger_json(). Call after na_pipeline_alerts() of
 *        this record and before that of the next (the story changes then);
 *        nothing is made twice, nor without a story or a ledger.
 * @returns NA_OK or NA_ERR_NOMEM.
 */
NA_WUR na_err_t na_pipeline_signature(const struct na_pipeline *p, struct na_decision *d);

#endif
