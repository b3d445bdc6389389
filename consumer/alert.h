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
    char id[NA_SHA256_HEX_LEN + 1]; /**< stable: hash of article id and topic */
    const struct na_article *article;
    const struct na_match *match;
    const char *rules_version;
};

/** @brief Fill @p alert and compute its id. All pointers are borrowed. */
void na_alert_init(struct na_alert *alert, const struct na_article *article,
                   const struct na_match *match, const char *rules_version);

/**
 * @brief alert/v1 as a JSON object.
 * @returns new reference; json_decref() it.
 */
json_t *na_alert_to_json(const struct na_alert *alert);

#endif
