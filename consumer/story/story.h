/**
 * @file story.h
 * @brief Story grouping: articles about one real-world event, from any
 *        outlet and in any order, share one story id.
 *
 * Evidence, not one threshold: each article is read as several views —
 * its words (TF-IDF), its title, the names it gives (people, places,
 * organisations), its figures (numbers with their unit) and the dates it
 * mentions. For each open story that shares a rare feature with the
 * article (an inverted index finds them), the cosine similarities of
 * each view, whether both sides give figures and dates, the time between
 * the article and the story's own span, and the story's size are combined
 * by a logistic model into the probability that they report one event.
 * The article joins the most probable story when that probability reaches
 * the model's threshold, else it opens a story. The model's weights are
 * data (data/story-model.json, compiled in as the default; trained on the
 * labelled events by `newsalert-consumer stories --train`; docs/rules.md,
 * "Story grouping").
 *
 * Time is evidence and a bound. A story's time is its own articles' times
 * (published_at, else fetched_at): its span runs from the oldest to the
 * newest. An article dated more than the window outside a story's span
 * never joins it, whatever order articles arrive in, so reading partitions
 * in offset order gives the stories that reading in time order gives.
 *
 * Memory is bounded by the open stories. The newest article time seen is
 * the story clock (never the wall clock). A story closes once its newest
 * article is older than that clock minus the window minus the reorder
 * allowance (how far out of time order articles may still arrive and find
 * their story); a negative allowance keeps every story open (a finite
 * file), and at most NA_STORY_MAX_OPEN stories are open (the one with the
 * oldest newest article closes first).
 *
 * Story ids: the hex SHA-256 of "story/v1" and the id of the story's first
 * article (na_sha256_hex_parts()), so they are stable across restarts.
 *
 * For the daemon (one alert per story and topic):
 *   - the alert id of a match is na_story_alert_id(story_id, topic) = hex
 *     SHA-256 over the parts ("alert/v1", story id, topic); a later article
 *     of the same story yields the same alert id, which the ledger already
 *     knows, so it is recorded as "linked" (counted, not sent again);
 *   - the ledger record (not the alert users get) stores
 *     na_story_signature() of the story ("story": {"id":..,
 *     "signature": {...}}); at start, after loading the ledger, call
 *     na_stories_seed_record() for each record so a restart or replay joins
 *     the same stories and never alerts a story twice.
 *
 * Metrics (process-wide): newsalert_story_articles_total{outcome="new_story"|
 * "joined"}, newsalert_story_closed_total, newsalert_story_open,
 * newsalert_story_features.
 *
 * Threading: a stories object belongs to one thread. A model is read-only
 * once loaded and may be shared.
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

/** Default reorder allowance: seven days (a feed read for the first time
 *  hands over a week or more of items, newest first). */
#define NA_STORY_REORDER_MS_DEFAULT (7 * 24 * 3600 * 1000LL)

/** Most stories open at once; beyond, the one whose newest article is
 *  oldest closes. */
#define NA_STORY_MAX_OPEN 1000000u

typedef struct na_stories_s na_stories_t;

/** The model that decides "same event" (weights and threshold). */
typedef struct na_story_model_s na_story_model_t;

/**
 * @brief The shipped model (data/story-model.json, compiled in).
 * @returns borrowed, valid for the life of the process; NULL only if the
 *          compiled-in file is broken (a build error; tests catch it).
 */
const na_story_model_t *na_story_model_default(void);

/**
 * @brief Read a model file (schema "story-model/v1": the input names, one
 *        weight each, the threshold; what `stories --train` writes).
 * @param out set to a new model; destroy with na_story_model_destroy().
 * @returns NA_OK, NA_ERR_INVALID (errstr says why: not JSON, another
 *          schema, inputs this engine does not compute, a weight that is
 *          not a finite number), NA_ERR_IO or NA_ERR_NOMEM.
 */
NA_WUR na_err_t na_story_model_load(const char *path, na_story_model_t **out,
                                    char *errstr, size_t errstr_size);

/** @brief As na_story_model_load(), from @p len bytes of JSON text. */
NA_WUR na_err_t na_story_model_parse(const char *text, size_t len, na_story_model_t **out,
                                     char *errstr, size_t errstr_size);

/** @returns the model as a "story-model/v1" JSON object; new; json_decref(). */
json_t *na_story_model_to_json(const na_story_model_t *m);

/** @brief Free a model from na_story_model_load(). NULL-safe. */
void na_story_model_destroy(na_story_model_t *m);

/** How a set of stories groups; zero-initialise for the defaults. */
struct na_stories_opts {
    int64_t window_ms;  /**< <= 0: NA_STORY_WINDOW_MS_DEFAULT ("story_window") */
    int64_t reorder_ms; /**< allowance ("story_reorder"); 0: none; < 0: keep
                             every story open */
    bool reorder_set;   /**< false: NA_STORY_REORDER_MS_DEFAULT */
    const na_story_model_t *model; /**< borrowed, must outlive the set;
                                        NULL: na_story_model_default() */
};

/**
 * @brief Make an empty set of open stories.
 * @returns new; destroy with na_stories_destroy(); NULL on no memory (or
 *          no model).
 */
na_stories_t *na_stories_new_opts(const struct na_stories_opts *opts);

/** @brief na_stories_new_opts() with @p window_ms (<= 0: default) and the
 *         other defaults. */
na_stories_t *na_stories_new(int64_t window_ms);

/** @brief Free @p st and all its stories. NULL-safe. */
void na_stories_destroy(na_stories_t *st);

/**
 * @brief Find the story of @p a, or open a new one. Stories past the
 *        reorder allowance are closed first. The article's time is
 *        published_at, else fetched_at, else the newest time seen.
 * @param story_id set to the story's id (64 hex digits and a NUL).
 * @param is_new set to true when @p a opened a new story; may be NULL.
 * @returns NA_OK or NA_ERR_NOMEM (no story changed).
 */
NA_WUR na_err_t na_stories_assign(na_stories_t *st, const struct na_article *a,
                                  char story_id[NA_SHA256_HEX_LEN + 1], bool *is_new);

/**
 * An article's features read from its text apart from any set of stories
 * (na_story_read()), and the id of the story it would open. Reading is
 * most of an article's cost that needs nothing of the engine: the
 * pipeline reads on its worker threads (na_pipeline_classify()) and the
 * engine's thread only looks the features up and decides
 * (na_stories_assign_read()). A read belongs to one thread at a time.
 */
typedef struct na_story_read_s na_story_read_t;

/** @returns a new, empty read; na_story_read_destroy(); NULL on no memory. */
na_story_read_t *na_story_read_new(void);

/** @brief Free @p r. NULL-safe. */
void na_story_read_destroy(na_story_read_t *r);

/**
 * @brief Read the features of @p a (its title and the first bytes of its
 *        summary and content) into @p r, replacing what it held. Uses no
 *        set of stories: any thread may call it.
 * @returns NA_OK or NA_ERR_NOMEM (@p r then holds nothing).
 */
NA_WUR na_err_t na_story_read(na_story_read_t *r, const struct na_article *a);

/**
 * @brief na_stories_assign() with @p a's features already read into @p r
 *        (na_story_read() of @p a as it is now: the same decisions as
 *        na_stories_assign()). @p r NULL, or read from another article
 *        (another address), and @p a is read here.
 */
NA_WUR na_err_t na_stories_assign_read(na_stories_t *st, const struct na_article *a,
                                       const na_story_read_t *r,
                                       char story_id[NA_SHA256_HEX_LEN + 1],
                                       bool *is_new);

/**
 * @brief The signature of an open story, what restarts need (stored in the
 *        ledger record, not in the alert users get).
 * @returns new JSON object ({"v":2,"t0":FIRST_UNIX_S,"t":LAST_UNIX_S,
 *          "n":ARTICLES,"f":{FEATURE:ARTICLES_WITH_IT,..},"tf":{FEATURE:
 *          TITLES_WITH_IT,..}}, at most 200 features, a few KB);
 *          json_decref(); NULL when the story is not open (unknown or
 *          closed) or on no memory.
 */
json_t *na_story_signature(const na_stories_t *st, const char *story_id);

/**
 * @brief Re-open a story from a stored signature (ledger records at start).
 *        Seeding a story that is already open keeps whichever of the two
 *        holds more articles (signatures are snapshots of one story, so
 *        the larger one is the later one); its span widens to cover both.
 *        A story older than the reorder allowance is ignored (NA_OK).
 *        Version 1 signatures (no "t0", no "tf") are read too.
 * @param signature borrowed; what na_story_signature() returned.
 * @param published_at Unix s of the story's newest article (the signature's
 *        "t" is used when this is NA_TIME_UNKNOWN).
 * @returns NA_OK, NA_ERR_INVALID (bad id or signature, such as a time
 *          outside the years 0000 to 9999 or more than 400 features) or
 *          NA_ERR_NOMEM.
 */
NA_WUR na_err_t na_stories_seed(na_stories_t *st, const char *story_id,
                                const json_t *signature, int64_t published_at);

/**
 * @brief Re-open the story of one ledger record (its "story" member with
 *        "id" and "signature", and "article"."published_at"): what the
 *        consumer and replay do for every record they load from the ledger.
 *        Records without a signature are ignored.
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

/**
 * @brief When an open story was first seen: the time of its oldest article.
 * @returns Unix s, or NA_TIME_UNKNOWN when the story is not open.
 */
int64_t na_story_first_seen(const na_stories_t *st, const char *story_id);

/** @brief The alert id of (@p story_id, @p topic): hex SHA-256 over the
 *         parts ("alert/v1", story id, topic).
 *  @returns NA_OK or NA_ERR_NOMEM (na_sha256_hex_parts()). */
NA_WUR na_err_t na_story_alert_id(const char *story_id, const char *topic,
                                  char alert_id[NA_SHA256_HEX_LEN + 1]);

#endif
