/**
 * @file format.h
 * @brief Chat-service payload formats, one file per service
 *        (format_slack.c, format_mattermost.c, format_discord.c,
 *        format_teams.c, format_googlechat.c, format_json.c), one table in
 *        format.c. Each renders one alert, and one digest of many alerts
 *        (sent instead of a flood), within its service's documented limits.
 */
#ifndef NEWSALERT_FORMAT_H
#define NEWSALERT_FORMAT_H

#include "alert.h"
#include "newsalert/util.h"

/** One alert inside a digest: copies of what a digest line shows. */
struct na_digest_item {
    char alert_id[NA_SHA256_HEX_LEN + 1];
    char *topic; /**< owned */
    double score;
    char *title;  /**< owned, may be NULL */
    char *url;    /**< owned, may be NULL (only http(s) is ever shown) */
    char *source; /**< owned, may be NULL */
};

/** @returns new item from @p alert; free with na_digest_item_free(); NULL on no memory.
 */
struct na_digest_item *na_digest_item_new(const struct na_alert *alert);
void na_digest_item_free(struct na_digest_item *item);

struct na_format {
    const char *name;
    /**
     * Render the HTTP request body for @p alert into @p out. Article text is
     * escaped for the service; limits of the service are respected.
     */
    na_err_t (*render)(const struct na_alert *alert, struct na_buf *out);
    /**
     * Render one message listing @p cnt alerts (a digest). As many items as
     * fit the service's limits are listed; the rest are counted ("and N
     * more").
     */
    na_err_t (*render_digest)(const struct na_digest_item *const *items, size_t cnt,
                              struct na_buf *out);
    double rate_per_s; /**< default pacing (route "rate_per_s") */
    double burst;      /**< default bucket size (route "burst") */
};

/** @returns the format called @p name, or NULL. */
const struct na_format *na_format_find(const char *name);

/** @returns a static '|'-separated list of format names (for messages). */
const char *na_format_names(void);

/**
 * @brief Copy @p s into @p out escaped for Slack mrkdwn/plain text:
 *        & < > become &amp; &lt; &gt; (which also neutralises <!channel>,
 *        <@U..> and <url|text> injected by article text), control bytes a
 *        space, cut at @p max bytes on a UTF-8 boundary with an ellipsis.
 */
void na_format_slack_escape(struct na_buf *out, const char *s, size_t max);

/** How na_format_md_escape() makes article text inert. */
enum na_md_mode {
    NA_MD_BACKSLASH,  /**< Discord: backslash before Markdown punctuation */
    NA_MD_ZWSP,       /**< Teams Adaptive Cards: U+200B after * _ [ ] ~ ` # (no
                           backslash escapes there) */
    NA_MD_HTML,       /**< Google Chat card text: & < > as HTML entities */
    NA_MD_MATTERMOST, /**< Mattermost attachment text: & < > as entities (its
                           Slack-style <!channel> and <url|text> stay inert)
                           and a backslash before Markdown punctuation */
};

/**
 * @brief Copy @p s into @p out for services that render Markdown (Discord,
 *        Teams, Google Chat, Mattermost): Markdown made inert as @p mode
 *        says, and every '@' followed by U+200B ZERO WIDTH SPACE so
 *        @everyone, @here, @channel and user or role pings cannot fire;
 *        control bytes become a space. Cut at @p max bytes of input on a
 *        UTF-8 boundary with an ellipsis.
 */
void na_format_md_escape(struct na_buf *out, const char *s, size_t max,
                         enum na_md_mode mode);

/** @returns up to @p max bytes of @p s as a new string, cut on a UTF-8 boundary with "…".
 */
char *na_format_truncate(const char *s, size_t max);

/** @returns true for an absolute http:// or https:// URL with no space or control byte.
 */
bool na_format_http_url(const char *url);

/**
 * @brief Cut @p buf back to at most @p max bytes on a UTF-8 boundary and end
 *        it with "…" (no-op when it fits).
 */
void na_format_buf_cut(struct na_buf *buf, size_t max);

/** Most parties of a watchlist match listed in one chat message; the rest
 *  are counted ("+N more"). */
#define NA_FORMAT_PARTIES_MAX 10u

/**
 * @brief One line of plain text naming a listed party, as every chat format
 *        shows it (escaped by the format): `NAME (as "ALIAS") · SOURCE ·
 *        programs P · country C`; parts the list leaves empty are left out,
 *        and the alias when it is the name.
 * @returns new string; free(). NULL on no memory.
 */
char *na_format_party_text(const struct na_party *p);

/** @brief Serialise @p root (stolen) compactly into @p out. */
NA_WUR na_err_t na_format_dump_steal(json_t *root, struct na_buf *out);

extern const struct na_format na_format_slack;
extern const struct na_format na_format_mattermost;
extern const struct na_format na_format_discord;
extern const struct na_format na_format_teams;
extern const struct na_format na_format_googlechat;
extern const struct na_format na_format_json;

#endif
