/**
 * @file story.h
 * @brief Story grouping: articles about one event from different outlets,
 *        within a time window, share one story id.
 *
 * Outlets paraphrase, so the grouping compares what makes a story rather
 * than its wording: each article gets a weighted signature of features —
 * names (capitalised multi-word names, acronyms, organisations), places,
 * dates, figures (numbers with their unit) and rare terms (IDF over the
 * articles of the rolling window). An article joins the most similar open
 * story when the weighted similarity passes a threshold; candidates come
 * from an inverted index over signature features, so assigning stays fast
 * with many open stories. A story is open while its newest article is
 * younger than the window (measured in article time, the newest
 * published_at seen, not in wall-clock time), so a replay of the same
 * articles gives the same stories.
 *
 * Story ids: the hex SHA-256 of "story/v1" and the id of the story's first
 * article (na_sha256_hex_parts()), so they are stable across restarts.
 *
 * For the daemon (one alert per story and topic):
 *   - the alert id of a match is na_story_alert_id(story_id, topic) = hex
 *     SHA-256 over the parts ("alert/v1", story id, topic); a later article
 *     of the same story yields the same alert id, which the ledger already
 *     knows, so it is recorded as "linked" (counted, not sent again);
 *   - store na_story_signature() of the story in the alert record (e.g. as
 *     "story": {"id":..., "signature": {...}}); at start, after loading the
 *     ledger, call na_stories_seed() for each record younger than the
 *     window so a restart or replay joins the same stories and never
 *     alerts a story twice.
 *
 * Metrics (process-wide): newsalert_story_articles_total{outcome="new_story"|
 * "joined"}, newsalert_story_closed_total, newsalert_story_open.
 *
 * Threading: a stories object belongs to one thread.
 */
#ifndef NEWSALERT_STORY_H
#define NEWSALERT_STORY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "newsalert/article.h"
#include "newsalert/err.h"
#include "newsalert/hash.h"

/** An article or ledger time later than the wall clock by more than this
 *  (s) counts as the wall clock plus this: future dates never move the
 *  story clock (an article's time is also never later than its fetch). */
#define NA_STORY_FUTURE_SLACK_S 3600

/** Default grouping window: three days. */
#define NA_STORY_WINDOW_MS_DEFAULT (3 * 24 * 3600 * 1000LL)

typedef struct na_stories_s na_stories_t;

/**
 * @brief Make an empty set of open stories.
 * @param window_ms how long a story stays open after its newest article
 *        (<= 0: NA_STORY_WINDOW_MS_DEFAULT).
 * @returns new; destroy with na_stories_destroy(); NULL on no memory.
 */
na_stories_t *na_stories_new(int64_t window_ms);

/** @brief Free @p st and all its stories. NULL-safe. */
void na_stories_destroy(na_stories_t *st);

/**
 * @brief Find the story of @p a, or open a new one. Articles of the window
 *        older than the window relative to the newest article time seen
 *        are evicted first. The article's time is published_at, else
 *        fetched_at, else the newest time seen.
 * @param story_id set to the story's id (64 hex digits and a NUL).
 * @param is_new set to true when @p a opened a new story; may be NULL.
 * @returns NA_OK or NA_ERR_NOMEM (no story changed).
 */
NA_WUR na_err_t na_stories_assign(na_stories_t *st, const struct na_article *a,
                                  char story_id[NA_SHA256_HEX_LEN + 1], bool *is_new);

/**
 * @brief The signature of an open story, to store beside its alerts.
 * @returns new JSON object ({"v":1,"t":LAST_UNIX_S,"n":ARTICLES,
 *          "f":{FEATURE:ARTICLES_WITH_IT,..}}, at most 200 features, a few
 *          KB); json_decref(); NULL when the story is not open (unknown or
 *          evicted) or on no memory.
 */
json_t *na_story_signature(const na_stories_t *st, const char *story_id);

/**
 * @brief Re-open a story from a stored signature (ledger records at start).
 *        Seeding a story that is already open merges the signature into it.
 *        A story older than the window relative to the newest time seen is
 *        ignored (NA_OK).
 * @param signature borrowed; what na_story_signature() returned.
 * @param published_at Unix s of the story's newest article (the signature's
 *        "t" is used when this is NA_TIME_UNKNOWN).
 * @returns NA_OK, NA_ERR_INVALID (bad id or signature) or NA_ERR_NOMEM.
 */
NA_WUR na_err_t na_stories_seed(na_stories_t *st, const char *story_id,
                                const json_t *signature, int64_t published_at);

/**
 * @brief Re-open the story of one alert/v1 ledger record (its "story" member
 *        with "id" and "signature", and "article"."published_at"): what the
 *        consumer and replay do for every record they load from the ledger.
 *        Records without a story are ignored.
 * @returns NA_OK (also when there is nothing to seed), or na_stories_seed()'s
 *          error; @p story_id names the story for the caller's log line.
 */
NA_WUR na_err_t na_stories_seed_record(na_stories_t *st, const json_t *value,
                                       const char **story_id);

/**
 * @brief Close stories whose newest article is older than @p now (Unix s)
 *        minus the window.
 * @returns the number of stories closed.
 */
size_t na_stories_evict(na_stories_t *st, int64_t now);

/** @returns open stories. */
size_t na_stories_count(const na_stories_t *st);

/** @returns features in the dictionary (names, dates, figures, terms). It
 *  holds what open stories and recent documents use: each time the
 *  document frequencies are halved (every 20,000 documents counted), the
 *  features no open story has and whose frequency fell below 0.3 are
 *  forgotten. */
size_t na_stories_feature_count(const na_stories_t *st);

/** @returns articles assigned to (or seeded into) an open story; 0 if none. */
size_t na_story_article_count(const na_stories_t *st, const char *story_id);

/** @brief The alert id of (@p story_id, @p topic): hex SHA-256 over the
 *         parts ("alert/v1", story id, topic). */
void na_story_alert_id(const char *story_id, const char *topic,
                       char alert_id[NA_SHA256_HEX_LEN + 1]);

#endif
