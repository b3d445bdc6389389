/**
 * @file format.h
 * @brief Chat-service payload formats, one file per service
 *        (format_slack.c, format_json.c, ...), one table in format.c.
 */
#ifndef NEWSALERT_FORMAT_H
#define NEWSALERT_FORMAT_H

#include "alert.h"
#include "newsalert/util.h"

struct na_format {
    const char *name;
    /**
     * Render the HTTP request body for @p alert into @p out. Article text is
     * escaped for the service; limits of the service are respected.
     */
    na_err_t (*render)(const struct na_alert *alert, struct na_buf *out);
};

/** @returns the format called @p name, or NULL. */
const struct na_format *na_format_find(const char *name);

/** @returns a static comma-separated list of format names (for messages). */
const char *na_format_names(void);

/**
 * @brief Copy @p s into @p out escaped for Slack mrkdwn/plain text:
 *        & < > become &amp; &lt; &gt; (which also neutralises <!channel>,
 *        <@U..> and <url|text> injected by article text), cut at @p max
 *        bytes on a UTF-8 boundary with an ellipsis.
 */
void na_format_slack_escape(struct na_buf *out, const char *s, size_t max);

/** @returns up to @p max bytes of @p s as a new string, cut on a UTF-8 boundary with "…". */
char *na_format_truncate(const char *s, size_t max);

extern const struct na_format na_format_slack;
extern const struct na_format na_format_json;

#endif
