/**
 * @file alert.h
 * @brief An alert: one (article, topic) decision, and its alert/v1 JSON.
 */
#ifndef NEWSALERT_ALERT_H
#define NEWSALERT_ALERT_H

#include <jansson.h>

#include "newsalert/article.h"
#include "rules.h"

#define NA_ALERT_SCHEMA "alert/v1"

/** An alert borrows the article and the match it was made from. */
struct na_alert {
    char id[NA_SHA256_HEX_LEN +
            1]; /**< stable: hash of story (else article) id and topic */
    const struct na_article *article;
    const struct na_match *match;
    const char *rules_version;
    const char *story_id;      /**< NULL: the article is its own story */
    const json_t *story;       /**< borrowed "story" member users read ({id, articles,
                                    first_seen}), or NULL */
    const json_t *story_state; /**< borrowed: what restarts need of the story (its
                                    signature), for the ledger only; or NULL */
};

/**
 * @brief Fill @p alert and compute its id: hex SHA-256 over the parts
 *        ("alert/v1", article id, topic). All pointers are borrowed.
 * @returns NA_OK, or NA_ERR_NOMEM (no id: the alert must not be sent).
 */
NA_WUR na_err_t na_alert_init(struct na_alert *alert, const struct na_article *article,
                              const struct na_match *match, const char *rules_version);

/**
 * @brief As na_alert_init() for an article of story @p story_id: the id is
 *        over ("alert/v1", story id, topic), the same for every article of
 *        the story (story.h na_story_alert_id()), so a story alerts a topic
 *        once. @p story_id borrowed; NULL behaves as na_alert_init().
 */
NA_WUR na_err_t na_alert_init_story(struct na_alert *alert,
                                    const struct na_article *article,
                                    const struct na_match *match,
                                    const char *rules_version, const char *story_id);

/**
 * @brief alert/v1 as a JSON object: what webhooks, --dry-run and the
 *        dead-letter topic get (the story named, not its engine state).
 * @returns new reference; json_decref() it.
 */
json_t *na_alert_to_json(const struct na_alert *alert);

/**
 * @brief alert/v1 as the ledger records it: na_alert_to_json() with the
 *        story's signature in "story" ("signature"), which restarts and
 *        replays read back (story.h na_stories_seed_record()).
 * @returns new reference; json_decref() it.
 */
json_t *na_alert_to_ledger_json(const struct na_alert *alert);

#endif
