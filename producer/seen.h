/**
 * @file seen.h
 * @brief The producer's seen-state: per feed, the HTTP validators (ETag,
 *        Last-Modified), what the fetcher learnt about the feed (moved URL,
 *        retirement, schedule, RSS ttl and skip hours/days) and, per recently
 *        produced article id, its content fingerprint and revision.
 *
 * Invariants: an id is added only after Kafka confirmed its delivery, so a
 * crash may re-publish but never loses an article; the file is replaced
 * atomically (na_write_file_atomic), so kill -9 leaves the old or the new
 * state; a feed never forgets an id its latest fetch carried (see
 * na_seen_fetch_begin()), and of the ids of earlier fetches it keeps the
 * NA_SEEN_IDS_PER_FEED most recently seen; a feed that left the sources is
 * forgotten after a grace
 * period (na_seen_prune()), so the number of feeds is bounded too.
 *
 * Dedup (see docs/producer.md): an article is NEW unless its id is known
 * (SAME, or EDITED when its fingerprint changed) or its fingerprint is
 * known under another id of the same feed (DUPLICATE: the GUID or link
 * changed, the text did not).
 *
 * Format (version 3):
 *   {"version": 3, "feeds": {"<feed id>": {"etag": "..", "last_modified": "..",
 *     "source_url": "..", "url": "..", "moved_from": "..",
 *     "retired": "<source hash>",
 *     "next_at": <unix ms>, "ttl": <min>, "skip_hours": N, "skip_days": N,
 *     "active_at": <unix s>, "seq": N,
 *     "ids": {"<article id>": [seq, "<fingerprint>"|null|false, revision]},
 *     "fps": {"<fingerprint>": "<article id>"}}}}
 * null: the item had no fingerprint (no text); false: unknown. Version 1
 * files (ids map to a bare sequence number) and version 2 files (null for
 * both) load with false for every id without fingerprint.
 *
 * Single-threaded: the producer's main thread owns it.
 */
#ifndef NEWSALERT_SEEN_H
#define NEWSALERT_SEEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "newsalert/article.h"
#include "newsalert/err.h"

/** Hex digits of a content fingerprint (64 bits of SHA-256). */
#define NA_SEEN_FP_LEN 16
/** Shortest normalised title + text that gets a fingerprint (bytes). */
#define NA_SEEN_FP_MIN_TEXT 24
/** Most feeds kept in one seen-state (active ones are never dropped). */
#define NA_SEEN_MAX_FEEDS 200000u

typedef struct na_seen_s na_seen_t;

enum na_seen_verdict {
    NA_SEEN_NEW = 0,   /**< never produced: produce it */
    NA_SEEN_SAME,      /**< id known with this fingerprint (or none now): skip */
    NA_SEEN_EDITED,    /**< id known, fingerprint changed or appeared: an update */
    NA_SEEN_DUPLICATE, /**< another id of this feed had this fingerprint: skip */
};

/**
 * @brief Load the state from @p path; a missing file is an empty state.
 * @param path file, or NULL for a state kept only in memory (na_seen_save()
 *        is then a no-op; the Kafka-backed mode saves per feed instead).
 * @param seenp set to new state; destroy with na_seen_destroy().
 * @returns NA_OK, or NA_ERR_IO / NA_ERR_PARSE (a corrupt file is reported,
 *          never silently replaced).
 */
NA_WUR na_err_t na_seen_load(const char *path, na_seen_t **seenp, char *errstr,
                             size_t errstr_size);

void na_seen_destroy(na_seen_t *seen);

/**
 * @returns 2 when something that matters changed since the last save (ids,
 *          validators, URL, retirement), 1 when only schedules did, 0 else.
 */
int na_seen_dirty(const na_seen_t *seen);

/** @brief Write the state atomically if anything changed since the last save. */
NA_WUR na_err_t na_seen_save(na_seen_t *seen, char *errstr, size_t errstr_size);

/**
 * @brief Content fingerprint of an article: SHA-256 over the title and the
 *        content (or summary), lower-cased with whitespace runs collapsed.
 * @param fp receives NA_SEEN_FP_LEN hex digits and a NUL.
 * @returns false (fp empty) when the article has no content or summary, or
 *          when the text is shorter than NA_SEEN_FP_MIN_TEXT: too little to
 *          tell two articles apart.
 */
bool na_seen_fingerprint(const struct na_article *a, char fp[NA_SEEN_FP_LEN + 1]);

/**
 * @brief Classify an article of @p feed_id.
 * @param fp fingerprint or NULL/"" when there is none.
 * @param rev set to the revision to publish: 1 for NEW, stored + 1 for EDITED,
 *        the stored one otherwise.
 */
enum na_seen_verdict na_seen_check(const na_seen_t *seen, const char *feed_id,
                                   const char *article_id, const char *fp, int *rev);

/**
 * @brief A new document of @p feed_id is about to be checked: the ids
 *        na_seen_touch()ed or na_seen_put() from now until the next call are
 *        those of its latest fetch, and eviction keeps every one of them.
 */
void na_seen_fetch_begin(na_seen_t *seen, const char *feed_id);

/**
 * @brief The latest fetch of @p feed_id carries @p article_id: call it for
 *        every item of the document before na_seen_put() of any, so that no
 *        put evicts an id still carried. Unknown ids are ignored.
 */
void na_seen_touch(na_seen_t *seen, const char *feed_id, const char *article_id);

/** @returns true when @p article_id is remembered for @p feed_id. */
bool na_seen_has(const na_seen_t *seen, const char *feed_id, const char *article_id);

/**
 * @brief Remember @p article_id (with fingerprint @p fp or NULL, revision
 *        @p rev) for @p feed_id as an id of its latest fetch; past the cap,
 *        evict the ids of earlier fetches least recently seen.
 */
NA_WUR na_err_t na_seen_put(na_seen_t *seen, const char *feed_id, const char *article_id,
                            const char *fp, int rev);

/** @brief na_seen_put() without fingerprint, revision 1. */
NA_WUR na_err_t na_seen_add(na_seen_t *seen, const char *feed_id, const char *article_id);

/** @returns borrowed validator ("etag" or "last_modified") or NULL; valid until changed.
 */
const char *na_seen_validator(const na_seen_t *seen, const char *feed_id,
                              const char *name);

/** @brief Set both validators of a feed (NULL clears one). */
NA_WUR na_err_t na_seen_set_validators(na_seen_t *seen, const char *feed_id,
                                       const char *etag, const char *last_modified);

/**
 * @returns borrowed string member @p key ("url", "moved_from", "retired") of
 *          the feed, or NULL; valid until changed.
 */
const char *na_seen_get_str(const na_seen_t *seen, const char *feed_id, const char *key);

/** @brief Set (NULL: remove) a string member; counts as a change that matters. */
NA_WUR na_err_t na_seen_set_str(na_seen_t *seen, const char *feed_id, const char *key,
                                const char *value);

/**
 * @brief The configured URL of @p feed_id is @p url (at start, on a reload,
 *        on a source record). When the state was learnt from another URL,
 *        forget what belongs to that URL: validators, where it moved, RSS
 *        ttl and skip hours/days, the next poll time. The ids stay, so the
 *        same items under the new URL are not new. State without a recorded
 *        URL (older versions) is reset only when its move names another.
 * @param reset set to true when state was forgotten.
 */
NA_WUR na_err_t na_seen_bind_url(na_seen_t *seen, const char *feed_id, const char *url,
                                 bool *reset);

/** @returns integer member @p key ("next_at", "ttl", ...) or @p def when absent. */
int64_t na_seen_get_int(const na_seen_t *seen, const char *feed_id, const char *key,
                        int64_t def);

/**
 * @brief Set an integer member. @p soft: only a schedule ("next_at"), which
 *        alone does not make the state worth saving at once (dirty 1).
 */
NA_WUR na_err_t na_seen_set_int(na_seen_t *seen, const char *feed_id, const char *key,
                                int64_t value, bool soft);

/** @returns the number of ids remembered for @p feed_id. */
size_t na_seen_count(const na_seen_t *seen, const char *feed_id);

/** @returns the number of feeds in the state. */
size_t na_seen_feeds(const na_seen_t *seen);

/**
 * @brief One feed's state as compact JSON (the value of a `news.fetchstate`
 *        record).
 * @returns new string; free(). NULL when the feed has no state or on no memory.
 */
char *na_seen_feed_dump(const na_seen_t *seen, const char *feed_id);

/**
 * @brief Replace one feed's state by @p buf (as na_seen_feed_dump() wrote it).
 * @returns NA_OK, NA_ERR_PARSE (errstr) or NA_ERR_NOMEM; the old state stays
 *          on failure.
 */
NA_WUR na_err_t na_seen_feed_load(na_seen_t *seen, const char *feed_id, const char *buf,
                                  size_t len, char *errstr, size_t errstr_size);

/** @brief Forget one feed. */
void na_seen_feed_drop(na_seen_t *seen, const char *feed_id);

/** @returns non-zero when @p feed_id is still in the sources. */
typedef int(na_seen_active_cb)(const char *feed_id, void *ctx);

/**
 * @brief Bound the number of feeds: stamp active feeds with @p now_s; drop
 *        the others once they have been inactive for more than @p grace_s
 *        (feeds without a stamp get one now and so a full grace period),
 *        and beyond NA_SEEN_MAX_FEEDS drop the inactive ones at once.
 * @returns the number of feeds dropped.
 */
size_t na_seen_prune(na_seen_t *seen, na_seen_active_cb *active, void *ctx, int64_t now_s,
                     int64_t grace_s);

#endif
